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
"""Receipts of pushes made with an idempotency key (``ck_push``).

A push with a key first *claims* the key, in its own transaction, by
inserting the receipt: what the push stores (scope, number of points, exact
sums, first and last frame start). If the key is already there, the push
is a retry of one that landed: when the receipt matches, it stores nothing;
when it does not, the key was reused for other data and the push is refused.
Because the claim is part of the push's transaction, a push that fails
leaves no receipt, and two processes claiming one key at once queue on the
key's unique index: the second one sees the first one's outcome.

A delete *forgets* the receipt of every push whose frame starts range over
some of its window (whatever its filters), so that a period deleted to be
rated again can be pushed again with the same key.
"""

import time

from oslo_log import log
import sqlalchemy as sa

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2.sqlalchemy import engine
from cloudkitty.storage.v2.sqlalchemy import models

LOG = log.getLogger(__name__)
# NOTE: the columns that must match for a retry to be recognised.
_COMPARED = ('scope_id', 'points', 'qty', 'price', 'first_begin',
             'last_begin')


def receipt(key, scope_id, points):
    """Return the ``ck_push`` row of a push of encoded points.

    :param points: the push's ``(series, begin, end, qty_hundreds,
        qty_rest, price_hundreds, price_rest)`` tuples (at least one; see
        :mod:`~cloudkitty.storage.v2.sqlalchemy.models`).
    """
    qty_hundreds = qty_rest = price_hundreds = price_rest = 0
    first = last = points[0][1]
    for _, begin, _, q_hundreds, q_rest, p_hundreds, p_rest in points:
        qty_hundreds += q_hundreds
        qty_rest += q_rest
        price_hundreds += p_hundreds
        price_rest += p_rest
        if begin < first:
            first = begin
        elif begin > last:
            last = begin
    return {'key': key, 'scope_id': scope_id, 'points': len(points),
            'qty': str(money.from_units(models.join(qty_hundreds,
                                                    qty_rest))),
            'price': str(money.from_units(models.join(price_hundreds,
                                                      price_rest))),
            'first_begin': first, 'last_begin': last,
            'pushed_at': time.time_ns() // 1000}


def claim(conn, row):
    """Claim a push's key in the push's transaction.

    :returns: True when the push is new and must be written, False when
        it is a retry of a push that landed (nothing must be written).
    :raises cloudkitty.storage.exceptions.InvalidQuery: when the key was
        used by a push of other data.
    """
    if engine.insert_ignoring_duplicates(conn, models.push, row).rowcount:
        return True
    table = models.push
    # NOTE: a locking read sees the latest committed receipt, even under
    # MySQL's REPEATABLE READ snapshot.
    stored = conn.execute(
        sa.select(*[table.c[name] for name in _COMPARED]).where(
            table.c.key == row['key']).with_for_update(read=True)).one()
    differences = [name for name in _COMPARED
                   if getattr(stored, name) != row[name]]
    if differences:
        raise exceptions.InvalidQuery(
            'idempotency_key', 'already used by a push of other data '
            '(%s differ)' % ', '.join(differences), row['key'])
    LOG.info('Push %r landed before; nothing stored again', row['key'])
    return False


def landed(conn, key):
    """Tell whether a push with ``key`` is stored (its receipt is there).

    :rtype: bool
    """
    table = models.push
    return conn.scalar(sa.select(table.c.key).where(
        table.c.key == key)) is not None


def forget(conn, begin_micros=None, end_micros=None):
    """Forget the receipts of pushes whose frame starts meet a window.

    :param begin_micros: start of the window (inclusive) or None.
    :param end_micros: end of the window (exclusive) or None.
    """
    engine.run(conn, forget_call(begin_micros, end_micros))


def forget_call(begin_micros=None, end_micros=None):
    """:func:`forget` as a call of :func:`engine.run_in_turn`.

    Its value is the number of receipts forgotten.
    """
    return engine.Call(
        _FORGET[begin_micros is not None, end_micros is not None],
        {'b_begin': begin_micros, 'b_end': end_micros}, int)


def _forget(begin, end):
    """The ``DELETE`` of :func:`forget` for a window bounded or not."""
    table = models.push
    clauses = []
    if end:
        clauses.append(table.c.first_begin < sa.bindparam('b_end'))
    if begin:
        clauses.append(table.c.last_begin >= sa.bindparam('b_begin'))
    return table.delete().where(*clauses)


# NOTE: built once, by bound (begin, end): every delete runs one (see
# rollup._UNTIL).
_FORGET = {(begin, end): _forget(begin, end)
           for begin in (False, True) for end in (False, True)}
