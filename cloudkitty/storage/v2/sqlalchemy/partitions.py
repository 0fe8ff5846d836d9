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
"""Daily partitions of ``ck_point`` on PostgreSQL.

On PostgreSQL ``ck_point`` is partitioned by range of ``begin`` (the frame
start, integer microseconds), one partition per UTC day, named
``ck_point_pYYYYMMDD``. A query with a window only reads the partitions of
its days, and the retention purge drops whole days instead of deleting
their rows one by one. Partitions of other bounds are read as they are:
databases upgraded from before revision 0011 keep their monthly
partitions (``ck_point_pYYYYMM``), and a day that one of them holds gets
no partition of its own.

A push creates the partitions of its days before its own transaction,
in a short transaction of their own under an advisory lock, so that
concurrent pushes into a new day do not race and a push never holds the
parent table's lock for its whole length. Partitions are never created
inside a transaction that writes points.

The index by series (``<partition>_series``, on ``(series_id, begin)``),
which the reads and deletes of a few series use, is built on a
partition once its day is rolled up (:meth:`Partitions.index_series`),
not kept up by every push: its entries go to random places of the
index, which cost a push about as much as the rest of its work on the
server (measured: 103,000-115,000 points per second with it, 167,000-
174,000 without, at a million points). Until then a day's few series are
read from the primary key, which holds the series of every point: a
day's points at most.

SQLite has no partitioning; MariaDB's would forbid the foreign key from
points to series and buys little here, so both keep one table.
"""

import threading

from cloudkitty.storage.v2 import query
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2 import timeutils

#: The partitioned table.
TABLE = 'ck_point'
# NOTE: arbitrary constants naming our locks among advisory locks (the
# migration lock is another one): partitions are created under the first,
# series indexes built under the second.
_LOCK_ID = 0x636b7370
_INDEX_LOCK_ID = 0x636b7371


def month_of(micros):
    """Return ``(start, end)`` in microseconds of the UTC month of a time.

    Revisions 0003 to 0010 made monthly partitions.
    """
    moment = query.from_micros(micros)
    return (query.to_micros(query.month_start(moment)),
            query.to_micros(query.next_month(moment)))


def day_of(micros):
    """Return ``(start, end)`` in microseconds of the UTC day of a time."""
    start = timeutils.day_of(micros)
    return start, start + timeutils.DAY_US


def name_of(start):
    """Return the partition name of the day starting at ``start``."""
    moment = query.from_micros(start)
    return '%s_p%04d%02d%02d' % (TABLE, moment.year, moment.month,
                                 moment.day)


def create_sql(start, end, name=None):
    """The DDL creating the partition of ``[start, end)``, if missing.

    :param name: the partition's name; by default that of the day
        starting at ``start``.
    """
    # NOTE: the name and bounds are generated from integers here, never
    # from input, so quoting them into DDL (which takes no parameters) is
    # safe.
    return ('CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM '
            '(%d) TO (%d)' % (name or name_of(start), TABLE, start, end))


def no_statistics_sql(name, table=TABLE, target=0):
    """The DDL that keeps no statistics of a table's unread columns.

    :param name: the table (a partition of ``table``, or ``table``).
    :param table: the key of :data:`models.NO_STATISTICS` for its columns.
    :param target: their statistics target: 0 for none, -1 for the
        server's default (a downgrade).
    """
    # NOTE: names come from the catalog, from name_of() or from models.
    return 'ALTER TABLE %s %s' % (name, ', '.join(
        'ALTER COLUMN "%s" SET STATISTICS %d' % (column, target)
        for column in models.NO_STATISTICS[table]))


def series_index_of(name):
    """Return the name of the index by series of a partition."""
    return name + '_series'


def empty_sql(name):
    """The DDL that empties a partition and drops its index by series.

    For a delete of a whole day that keeps its partition: the pushes
    into the day that follow write without the index, which the roll-up
    builds again (see :meth:`Partitions.index_series`).

    :returns: the statements, in order.
    """
    # NOTE: names come from the catalog, made of letters, digits and
    # underscores.
    return ['TRUNCATE %s' % name,
            'DROP INDEX IF EXISTS %s' % series_index_of(name)]


def index_series_sql(name):
    """The DDL building the index by series of a partition, if missing."""
    # NOTE: names come from the catalog or from name_of(), and are made of
    # letters, digits and underscores.
    return ('CREATE INDEX IF NOT EXISTS %s ON %s (series_id, begin)'
            % (series_index_of(name), name))


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


def series_indexed(conn):
    """Return the names of the partitions that have their series index."""
    return set(conn.exec_driver_sql(
        "SELECT c.relname FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'ck_point'::regclass AND EXISTS ("
        "SELECT 1 FROM pg_index x JOIN pg_class ix ON ix.oid = x.indexrelid "
        "WHERE x.indrelid = c.oid AND ix.relname = c.relname || %s)",
        (series_index_of(''),)).scalars())


def is_partitioned(conn):
    """Tell whether ``ck_point`` is a partitioned table."""
    return conn.exec_driver_sql(
        "SELECT relkind = 'p' FROM pg_class WHERE relname = 'ck_point' "
        "AND relnamespace = current_schema()::regnamespace").scalar() is True


def _covered(day, bounds):
    """Tell whether one of ``bounds`` (``(start, end)`` pairs) holds a day."""
    return any(low <= day[0] and day[1] <= high for low, high in bounds)


class Partitions:
    """Creates missing daily partitions, indexes and finds droppable ones.

    Instances remember the days known to have a partition, so a push into
    a known day costs nothing. On any other engine than PostgreSQL, or
    before the schema is partitioned, every method does nothing.

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
        """Create the partitions of the days of ``begins`` if missing.

        A day that a partition of other bounds holds (a month, made before
        revision 0011) is not given one.

        :param begins: frame starts, in microseconds.
        """
        if self.engine.dialect.name != 'postgresql':
            return
        days = {day_of(begin) for begin in begins}
        days -= self._known
        if not days:
            return
        with self.engine.connect() as conn, conn.begin():
            if not self.enabled(conn):
                return
            bounds = existing(conn).values()
            missing = sorted(day for day in days if not _covered(day, bounds))
            if missing:
                conn.exec_driver_sql(
                    'SELECT pg_advisory_xact_lock(%d)' % _LOCK_ID)
                # NOTE: read again under the lock: another process may
                # have made them meanwhile (same names: IF NOT EXISTS).
                bounds = existing(conn).values()
                for start, end in missing:
                    if not _covered((start, end), bounds):
                        conn.exec_driver_sql(create_sql(start, end))
                        # NOTE: a partition does not inherit its parent's
                        # statistics targets.
                        conn.exec_driver_sql(no_statistics_sql(
                            name_of(start)))
        self._known |= days

    def index_series(self, conn, until):
        """Build the missing series indexes of partitions before ``until``.

        The roll-up calls it once it moved ``until`` (see the module's
        docstring): a partition wholly before it gets its index in one
        sorted pass over its rows, which the pushes into its day did not
        keep up. A partition made later for an older day (a late push)
        gets it at the next roll-up. It commits.

        :param until: the first day not rolled up, in microseconds.
        :returns: the names of the partitions indexed.
        """
        if not self.enabled(conn):
            return []
        indexed = series_indexed(conn)
        names = sorted(name for name, (low, high) in existing(conn).items()
                       if high <= until and name not in indexed)
        for name in names:
            # NOTE: two roll-ups may meet here; the index is looked for
            # again under the lock (two builds of one name would collide
            # in the catalog).
            conn.exec_driver_sql(
                'SELECT pg_advisory_xact_lock(%d)' % _INDEX_LOCK_ID)
            if name not in series_indexed(conn):
                conn.exec_driver_sql(index_series_sql(name))
            # NOTE: one transaction per partition: building the index
            # blocks the pushes into its day (late points) until then.
            conn.commit()
        return names

    def start_indexing(self, until):
        """Start :meth:`index_series` on a connection of its own.

        The roll-up starts it once it holds ``until`` and has days to
        roll up, so that the server builds the index of those days
        while it sums them on the roll-up's connection: the two read the
        same partition, neither waits for the other, and each is about a
        third of a roll-up (measured).

        :param until: as for :meth:`index_series`.
        :returns: the :class:`Indexing` thread, or None where there are
            no partitions.
        """
        if self.engine.dialect.name != 'postgresql':
            return None
        indexing = Indexing(self, until)
        indexing.start()
        return indexing

    def in_window(self, conn, start, end):
        """Return the partitions that meet a window, and which lie in it.

        :param start: the window's start, in microseconds, or None for a
            window open at its start.
        :param end: the window's exclusive end, in microseconds, or None
            for a window open at its end.
        :returns: ``[(name, start, end, whole)]`` sorted by name:
            ``whole`` when the partition's days lie wholly in the window,
            False for one at its edges.
        """
        if not self.enabled(conn):
            return []
        return [(name, low, high, (start is None or low >= start) and
                 (end is None or high <= end))
                for name, (low, high) in sorted(existing(conn).items())
                if (start is None or high > start) and
                (end is None or low < end)]

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
        return [name for name, *_ in self.in_window(conn, start, end)]

    def forget(self, start, end):
        """Forget the days of a dropped partition, so pushes create them."""
        self._known = {day for day in self._known
                       if not _covered(day, [(start, end)])}

    def reset(self):
        """Forget every day known to exist (others may be dropped)."""
        self._known.clear()
        self._partitioned = None


class Indexing(threading.Thread):
    """:meth:`Partitions.index_series` in a thread (see ``start_indexing``).

    :ivar error: what it raised, or None.
    """

    def __init__(self, owner, until):
        super().__init__(name='ck-index-series', daemon=True)
        self.owner = owner
        self.until = until
        self.error = None

    def run(self):
        """Build the missing indexes; keep what was raised in ``error``."""
        try:
            with self.owner.engine.connect() as conn:
                self.owner.index_series(conn, self.until)
        except Exception as exc:
            self.error = exc


def missing_partition(error):
    """Tell whether a driver error says a row found no partition."""
    # NOTE: SQLSTATE 23514 (check_violation) is also raised by CHECK
    # constraints; the message tells them apart.
    orig = getattr(error, 'orig', None)
    return (getattr(orig, 'sqlstate', None) == '23514'
            and 'no partition' in str(orig))
