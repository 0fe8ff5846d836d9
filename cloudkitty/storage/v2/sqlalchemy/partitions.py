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
"""Monthly partitions of ``ck_point`` on PostgreSQL.

On PostgreSQL ``ck_point`` is partitioned by range of ``begin`` (the frame
start, integer microseconds), one partition per UTC month, named
``ck_point_pYYYYMM``. A query with a window only reads the partitions of
its months, and the retention purge drops whole months instead of deleting
their rows one by one.

A push creates the partitions of its months before its own transaction,
in a short transaction of their own under an advisory lock, so that
concurrent pushes into a new month do not race and a push never holds the
parent table's lock for its whole length. Partitions are never created
inside a transaction that writes points.

SQLite has no partitioning; MariaDB's would forbid the foreign key from
points to series and buys little here, so both keep one table.
"""

from cloudkitty.storage.v2 import query

#: The partitioned table.
TABLE = 'ck_point'
# NOTE: an arbitrary constant naming our lock among advisory locks (the
# migration lock is another one).
_LOCK_ID = 0x636b7370


def month_of(micros):
    """Return ``(start, end)`` in microseconds of the UTC month of a time."""
    moment = query.from_micros(micros)
    return (query.to_micros(query.month_start(moment)),
            query.to_micros(query.next_month(moment)))


def name_of(start):
    """Return the partition name of the month starting at ``start``."""
    moment = query.from_micros(start)
    return '%s_p%04d%02d' % (TABLE, moment.year, moment.month)


def create_sql(start, end):
    """The DDL creating the partition of ``[start, end)``, if missing."""
    # NOTE: the name and bounds are generated from integers here, never
    # from input, so quoting them into DDL (which takes no parameters) is
    # safe.
    return ('CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM '
            '(%d) TO (%d)' % (name_of(start), TABLE, start, end))


def existing(conn):
    """Return ``{name: (start, end)}`` of the partitions of ``ck_point``."""
    rows = conn.exec_driver_sql(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'ck_point'::regclass").all()
    result = {}
    for name, bound in rows:
        if bound is None:
            # NOTE: a partition that a concurrent purge is dropping: its
            # catalog row is still seen, but no longer its bound.
            continue
        # NOTE: "FOR VALUES FROM ('123') TO ('456')"
        numbers = [int(part.strip(" ()'"))
                   for part in bound.split('FROM')[1].split('TO')]
        result[name] = (numbers[0], numbers[1])
    return result


def is_partitioned(conn):
    """Tell whether ``ck_point`` is a partitioned table."""
    return conn.exec_driver_sql(
        "SELECT relkind = 'p' FROM pg_class WHERE relname = 'ck_point' "
        "AND relnamespace = current_schema()::regnamespace").scalar() is True


class Partitions:
    """Creates missing monthly partitions and finds droppable ones.

    Instances remember the months known to exist, so a push into a known
    month costs nothing. On any other engine than PostgreSQL, or before
    the schema is partitioned, every method does nothing.

    :param engine: the storage's engine.
    """

    def __init__(self, engine):
        self.engine = engine
        self._known = set()
        self._partitioned = None

    def enabled(self, conn):
        """Tell whether ``ck_point`` is partitioned (asked once)."""
        if self._partitioned is None:
            self._partitioned = (conn.dialect.name == 'postgresql'
                                 and is_partitioned(conn))
        return self._partitioned

    def ensure(self, begins):
        """Create the partitions of the months of ``begins`` if missing.

        :param begins: frame starts, in microseconds.
        """
        if self.engine.dialect.name != 'postgresql':
            return
        months = {month_of(begin) for begin in begins}
        months -= self._known
        if not months:
            return
        with self.engine.connect() as conn, conn.begin():
            if not self.enabled(conn):
                return
            missing = sorted(months - set(existing(conn).values()))
            if missing:
                conn.exec_driver_sql(
                    'SELECT pg_advisory_xact_lock(%d)' % _LOCK_ID)
                for start, end in missing:
                    conn.exec_driver_sql(create_sql(start, end))
        self._known |= months

    def droppable(self, conn, end):
        """Return ``[(name, start, end)]`` of partitions wholly before end.

        :param end: the exclusive end of a window open at its start, in
            microseconds.
        """
        if not self.enabled(conn):
            return []
        return sorted((name, start, stop)
                      for name, (start, stop) in existing(conn).items()
                      if stop <= end)

    def overlapping(self, conn, start, end):
        """Return the names of the partitions that meet a window.

        The roll-up refreshes their statistics for the days it rolled up
        (see :func:`~cloudkitty.storage.v2.sqlalchemy.engine.
        analyze_stale`). Totals and pages are planned on them, which
        autovacuum may refresh late or, where it is off, never: planned on
        "a few thousand rows" for millions, grouping by frame went from
        1.1 s to 3-11 s at 10M points (measured).

        :param start: microseconds, or None for every partition before
            ``end``.
        :param end: microseconds.
        :returns: names, none when ``ck_point`` is not partitioned.
        """
        if not self.enabled(conn):
            return []
        return sorted(name for name, (low, high) in existing(conn).items()
                      if high > (start if start is not None else low)
                      and low < end)

    def forget(self, start, end):
        """Forget a dropped partition, so a later push creates it again."""
        self._known.discard((start, end))

    def reset(self):
        """Forget every month known to exist (others may be dropped)."""
        self._known.clear()
        self._partitioned = None


def missing_partition(error):
    """Tell whether a driver error says a row found no partition."""
    # NOTE: SQLSTATE 23514 (check_violation) is also raised by CHECK
    # constraints; the message tells them apart.
    orig = getattr(error, 'orig', None)
    return (getattr(orig, 'sqlstate', None) == '23514'
            and 'no partition' in str(orig))
