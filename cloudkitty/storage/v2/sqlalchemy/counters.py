# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""Ids taken in blocks from ``ck_counter`` (SQLite).

SQLite's ``ck_point`` is a ``WITHOUT ROWID`` table (migration 0009), which
numbers nothing itself; its ids, push order, come from here. A push takes
as many ids as it has points in one step, in its own write transaction:
SQLite's writers take turns, so two pushes never take the same ids, and a
push rolled back gives its ids back with the rest of its writes.
"""

import sqlalchemy as sa

from cloudkitty.storage.v2.sqlalchemy import models

#: The counter of ``ck_point``'s ids.
POINT_IDS = 'ck_point'


def take(conn, count, name=POINT_IDS):
    """Take ``count`` consecutive ids; return the first.

    :param conn: a connection in a write transaction.
    :param count: how many ids, at least 1.
    :param name: the counter.
    :rtype: int
    """
    counter = models.counter
    # NOTE: an UPDATE, then a read, where RETURNING would need SQLite 3.35.
    moved = conn.execute(counter.update().where(
        counter.c.name == name).values(next=counter.c.next + count)).rowcount
    if not moved:
        # NOTE: migration 0009 writes the row; should it be gone (a test
        # that empties every table, say), the ids start after the last.
        first = int(conn.scalar(sa.select(sa.func.coalesce(
            sa.func.max(models.point.c.id), 0)))) + 1
        conn.execute(counter.insert().values(name=name, next=first + count))
        return first
    return int(conn.scalar(sa.select(counter.c.next).where(
        counter.c.name == name))) - count
