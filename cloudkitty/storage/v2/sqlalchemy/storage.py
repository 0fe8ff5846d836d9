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
"""The SQL storage backend: SQLite (default), PostgreSQL and MariaDB/MySQL.

One ``sqlalchemy`` entry point serves the three databases; the
``[storage_sqlalchemy] connection`` URL picks the dialect (the package
re-exports :class:`SQLAlchemyStorage`, importing this module on first use).
The layout is
described in :mod:`cloudkitty.storage.v2.sqlalchemy.models`; the schema is
created and upgraded by alembic migrations when :meth:`init` runs.

Money is exact: every qty and price below ``10**20`` is kept as a pair of
integers (see :mod:`~cloudkitty.storage.v2.sqlalchemy.models`), and sums
are computed by the database on integers. PostgreSQL and MariaDB sum
integers into exact decimals; SQLite's 64-bit ``sum()`` overflows past about
92,000 points whose value modulo 100 is near 100, or 9 points near
``10**20``; the query is then run again with each column split in two
(``c // 10**9`` and ``c % 10**9``), whose sums do not overflow before
billions of points.
"""

import dataclasses
import functools
import itertools

from oslo_log import log
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy import exc as sa_exc

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage import v2
from cloudkitty.storage.v2 import bulk
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query as query_mod
from cloudkitty.storage.v2.sqlalchemy import counters
from cloudkitty.storage.v2.sqlalchemy import engine as engine_mod
from cloudkitty.storage.v2.sqlalchemy import fastpath
from cloudkitty.storage.v2.sqlalchemy import frames as frames_mod
from cloudkitty.storage.v2.sqlalchemy import labelsums
from cloudkitty.storage.v2.sqlalchemy import migration
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import options
from cloudkitty.storage.v2.sqlalchemy import partitions
from cloudkitty.storage.v2.sqlalchemy import presence
from cloudkitty.storage.v2.sqlalchemy import receipts
from cloudkitty.storage.v2.sqlalchemy import rollup
from cloudkitty.storage.v2.sqlalchemy import series as series_mod

LOG = log.getLogger(__name__)

# NOTE: how SQLite sums are split when a plain sum() overflows: a column c
# is summed as sum(c // _SPLIT) and sum(c % _SPLIT) (integer division).
_SPLIT = 10 ** 9
_MONEY_COLUMNS = models.POINT_MONEY
#: The columns a push writes, in the order of its encoded rows (see
#: :data:`fastpath.encode_known`); SQLite's rows start with the id.
POINT_COLUMNS = ('series_id', 'begin', 'end') + _MONEY_COLUMNS
# NOTE: the tables a roll-up adds a day to, whose statistics it refreshes.
_ROLLUP_TABLES = (models.daily.name, models.label_daily.name)
# NOTE: where a delete takes its points' sums out of the rollup in one
# statement (see SQLAlchemyStorage._subtract_points).
_SUBTRACTS_IN_DATABASE = ('sqlite', 'postgresql')
# NOTE: the members of a money value in the aggregates, with their weights
# in 10**-12 units: the rollup's (big, small, lo) triples and the points'
# (hundreds, rest) pairs, each source giving 0 for the others' members.
_LIMBS = (('big', rollup.BIG * money.SCALE), ('small', money.SCALE),
          ('hundreds', models.HUNDRED), ('lo', 1))
_WEIGHTS = tuple(weight for _, weight in _LIMBS)
#: Offsets from which retrieve() seeks the page's frame start first (see
#: SQLAlchemyStorage._seek); below it a plain OFFSET costs less.
_SEEK_FROM = 1000
#: A label-filtered read seeks each (frame, series) it needs when there are
#: this many times fewer of them than points in its window (see
#: SQLAlchemyStorage._frames_to_seek): a seek costs about as much as
#: scanning 16 index entries (measured, SQLite).
_SEEK_RATIO = 16
#: The most days a seek in the daily rollup names (one bound parameter
#: each); a longer window scans its days.
_SEEK_DAYS = 1000
# NOTE: PostgreSQL's settings for a total grouped by keys, for its
# transaction. The aggregate joins one row per series to the series'
# labels: a hash join is always right. Before autovacuum analyzed freshly
# filled tables, the planner took a nested loop instead (7.6 s instead of
# 0.08 s by project after loading a million points). It also guesses a
# group per point (it cannot know that a day's 40,800 points make 600
# (type, project) groups), and with 4 MB of work memory it sorted them on
# disk instead of hashing them: 57-63 ms instead of 28 for the unrolled
# day (measured). A hash aggregate that outgrows its memory spills.
_GROUPING_SETTINGS = ("SELECT set_config('enable_nestloop', 'off', true), "
                      "set_config('work_mem', '16MB', true)")
#: The most series a filtered delete, or a filtered read on PostgreSQL,
#: names by id (see _named_series_call); more keep the subquery. Also
#: the most series whose emptied rows of ck_daily a delete drops by id
#: (see SQLAlchemyStorage._drop_emptied_days).
_DELETE_SERIES = 1000
#: The most points in a filtered delete's window for it to take the rows
#: it deletes back (see SQLAlchemyStorage._delete_returning): they are
#: held in memory meanwhile.
_RETURNING_MAX = 100000
# NOTE: an offset and widths that turn a (hundreds, rest) pair into a
# fixed-width string of digits which sorts like the value, for SQLite's
# min()/max().
_HUNDREDS_OFFSET, _HUNDREDS_WIDTH = 10 ** 18, 19
_REST_WIDTH = 14


#: Microseconds since the epoch, the unit of every time column.
to_micros = query_mod.to_micros
from_micros = query_mod.from_micros


@dataclasses.dataclass(frozen=True)
class _Source:
    """A table aggregates can read: the points or a daily rollup.

    Both give each money value as the members of :data:`_LIMBS`: the
    rollup its ``(big, small, lo)`` triple (see :mod:`~cloudkitty.storage.
    v2.sqlalchemy.rollup`) and 0 hundreds, the points their ``(hundreds,
    rest)`` pair as hundreds and ``lo``, and 0 for the rest. So one query
    can add both up.
    """

    table: sa.Table
    start: str
    end: str = None
    count: str = None

    def time_columns(self):
        """The start and end columns labelled ``begin`` and ``end``.

        A rollup row ends a day after it starts.
        """
        start = self.table.c[self.start]
        if self.end:
            end = self.table.c[self.end]
        else:
            # NOTE: a literal, not a bound parameter, so that engines see
            # an expression of a grouped column.
            end = start + sa.literal_column(str(rollup.DAY))
        return [start.label('begin'), end.label('end')]

    def money(self):
        """``[(column or None, name)]`` of the eight money members."""
        if 'qty_big' in self.table.c:
            members = {'big': '_big', 'small': '_small', 'lo': '_lo'}
        else:
            members = {'hundreds': '_hundreds', 'lo': '_rest'}
        columns = []
        for field in ('qty', 'price'):
            for member, _ in _LIMBS:
                suffix = members.get(member)
                columns.append((None if suffix is None else
                                self.table.c[field + suffix],
                                field + '_' + member))
        return columns

    def counter(self):
        """The expression counting the points of a group."""
        if self.count:
            return sa.func.sum(self.table.c[self.count])
        return sa.func.count()


_POINTS = _Source(models.point, 'begin', end='end')
_DAILY = _Source(models.daily, 'day', count='n')
_LABEL_DAILY = _Source(models.label_daily, 'day', count='n')


@dataclasses.dataclass(frozen=True)
class _NamedQuery(query_mod.Query):
    """A query whose series filter is named by the ids of its series.

    For reads on PostgreSQL (see :meth:`SQLAlchemyStorage._named_query`);
    the read's WHERE clauses compare ``series_id`` with these ids instead
    of a subquery on the series and their labels.

    :ivar series_ids: tuple of ``ck_series`` ids.
    :ivar type_ranks: the rank of each series' type among theirs, in the
        database's order of types (``dense_rank()``), aligned with
        ``series_ids``: what reads order points by instead of joining
        ``ck_series`` (see :meth:`SQLAlchemyStorage._points_select`).
    """

    series_ids: tuple = ()
    type_ranks: tuple = ()


class SQLAlchemyFeatures(v2.Features):
    """Capabilities of the SQL backend: it honours the whole contract."""

    exact_decimal = True
    groupby_time = True
    custom_fields = True
    delete_with_filters = True
    eventually_consistent = False
    atomic_push = True
    concurrent_writers = True
    max_value_length = None
    idempotent_push = True
    max_magnitude = models.MAX_MAGNITUDE
    float_tolerance = 0


class _Overflow(Exception):
    """A SQLite integer sum overflowed; retry with split sums."""


class SQLAlchemyStorage(v2.BaseStorage):
    """Rated data in a SQL database, through SQLAlchemy Core.

    :param conf: the conf to read (``cfg.CONF`` if None).
    :param connection: a SQLAlchemy URL overriding
        ``[storage_sqlalchemy] connection``.
    :param period: the collection period CloudKitty passes (unused).
    """

    name = 'sqlalchemy'
    features = SQLAlchemyFeatures

    def __init__(self, conf=None, connection=None, period=None):
        super().__init__(conf=conf, period=period)
        options.register_opts(self.conf)
        opts = self.conf.storage_sqlalchemy
        self.engine = engine_mod.create_engine(
            connection or opts.connection, busy_timeout=opts.busy_timeout,
            connect_timeout=opts.connect_timeout, pool_size=opts.pool_size)
        # NOTE: series rows never change once committed, so both caches
        # only ever grow; they hold committed rows only.
        self._series_ids = {}
        self._series_info = {}
        dialect = self.engine.dialect
        # NOTE: SQLite's points are numbered by the push (see counters);
        # the other databases number them.
        self._numbers_points = dialect.name == 'sqlite'
        self._insert_points = engine_mod.bulk_writer(
            dialect, models.point,
            ('id',) * self._numbers_points + POINT_COLUMNS)
        self._upsert_daily = rollup.upsert(dialect)
        self._delete_series_points = _delete_series_points(dialect)
        self._seek_series_points = _delete_series_points(
            dialect, seek=True) if self._joins_frames else None
        self._upsert_frames = frames_mod.upsert(dialect)
        self._streams = isinstance(self._insert_points, engine_mod.CopyWrite)
        self._partitions = partitions.Partitions(self.engine)
        self._series_created = 0
        self._money_config = fastpath.money_config(models.MAX_MAGNITUDE,
                                                   models.HUNDRED)
        self._labels = labelsums.LabelSums(dialect, opts.rollup_label_keys)

    @property
    def location(self):
        """The database URL, without its password."""
        return engine_mod.safe_location(self.engine.url)

    def describe(self):
        """Say where the database is and its size (see ``BaseStorage``).

        :rtype: cloudkitty.storage.v2.StoreDescription
        """
        memory = (self.engine.url.get_backend_name() == 'sqlite'
                  and presence.sqlite_path(self.engine.url) is None)
        return v2.StoreDescription(
            location=self.location,
            size_bytes=presence.size_bytes(self.engine),
            process_private=memory)

    def init(self):
        """Create or upgrade the schema to the latest migration.

        Idempotent, and safe when several processes call it at once.
        """
        with engine_mod.translate_errors(self.engine):
            migration.upgrade(self.engine)

    def check_initialised(self):
        """Raise unless init() made this store; create nothing.

        A missing SQLite file stays missing (see :mod:`~cloudkitty.storage.
        v2.sqlalchemy.presence`).

        :raises cloudkitty.storage.exceptions.NotInitialised: when the
            file, the schema or its latest revision is missing.
        """
        presence.check_initialised(self.engine)

    def push_landed(self, idempotency_key):
        """Tell whether a push with this key is stored; write nothing.

        Not part of the contract: ``cloudkitty-storage push`` asks it
        before a push with a key, to report that a re-run stored nothing
        again. A delete forgets the keys of its window (see
        :mod:`~cloudkitty.storage.v2.sqlalchemy.receipts`).

        :param idempotency_key: a key as push() takes it.
        :rtype: bool
        :raises cloudkitty.storage.exceptions.InvalidQuery: for a bad key.
        """
        key = query_mod.validate_idempotency_key(idempotency_key, self)
        with engine_mod.translate_errors(self.engine):
            with self.engine.connect() as conn:
                return receipts.landed(conn, key)

    def store_identity(self):
        """Return what names this store, whatever URL reached it.

        :rtype: tuple
        """
        return presence.identity(self.engine)

    def close(self):
        """Close every pooled connection (see :meth:`BaseStorage.close`)."""
        self.engine.dispose()

    # push ------------------------------------------------------------------

    def push(self, dataframes, scope_id=None, idempotency_key=None):
        """Store rated data in one transaction (see ``BaseStorage.push``).

        A key's receipt (see :mod:`~cloudkitty.storage.v2.sqlalchemy.
        receipts`) is written in the same transaction as the points. Once
        the push is stored, the days before the last frame's are rolled
        up if they were not (see :meth:`roll_up`).

        Every point is checked before the transaction commits, and a
        refused one rolls it back: nothing of the push is stored. On
        PostgreSQL the points are copied while they are checked (see
        :meth:`_push_streaming`); elsewhere all are checked first.
        """
        frames = query_mod.validate_dataframes(dataframes)
        if scope_id is not None:
            series_mod.check_name(scope_id, 'scope_id')
        key = query_mod.validate_idempotency_key(idempotency_key, self)
        counts = frames_mod.counts_of(frames)
        if not counts:
            return
        begins = {to_micros(frame.start) for frame in frames}
        with bulk.no_cyclic_gc():
            if self._streams and key is None:
                until = self._with_partitions(
                    begins, self._push_streaming, frames, scope_id, counts)
            else:
                points, new_series = self._encode(_runs(frames), scope_id)
                receipt = (receipts.receipt(key, scope_id, points)
                           if key is not None else None)
                until = self._with_partitions(
                    begins, self._write, points, new_series, counts,
                    receipt)
                # NOTE: freed while the collector is off (see
                # bulk.no_cyclic_gc).
                del points, new_series
        last_day = rollup.day_of(max(begins))
        if until is not None and until < last_day:
            self._roll_up_after_push(last_day)

    def _with_partitions(self, begins, write, *args):
        """Create the days of ``begins`` if missing, then ``write(*args)``.

        Each step is one transaction, made again if it loses a deadlock
        (see :func:`engine.retry_conflicts`); in the end a lasting
        conflict raises :class:`~cloudkitty.storage.exceptions.
        WriteConflict`.

        :returns: what ``write`` returns.
        """
        retry = engine_mod.retry_conflicts
        retry(self._ensure_partitions, begins)
        try:
            return retry(write, *args)
        except sa_exc.IntegrityError as exc:
            # NOTE: another process may have dropped a day this one
            # knew (a purge): find out, create it, push again.
            if not partitions.missing_partition(exc):
                raise
            self._partitions.reset()
            retry(self._ensure_partitions, begins)
            return retry(write, *args)

    def _ensure_partitions(self, begins):
        with engine_mod.translate_errors(self.engine):
            self._partitions.ensure(begins)

    def _roll_up_after_push(self, day):
        """Roll up the days before ``day``; a failure only logs.

        The push has landed: raising now would make its caller push it
        again. The days stay summed from the points meanwhile, and the next
        push into a later day tries again.
        """
        try:
            self.roll_up(day)
        except (exceptions.StorageError, sa_exc.SQLAlchemyError) as exc:
            LOG.warning('Rolling up the days before %s failed, a later '
                        'push will retry: %s', from_micros(day), exc)

    def roll_up(self, day):
        """Roll up the days before ``day``, if ``until`` is before it.

        The sums of their points move to the daily rollup, and ``until``
        to ``day``, in one transaction: the points of ``[until, day)`` are
        summed per day and series into ``ck_daily`` while ``ck_rollup`` is
        locked against pushes and deletes, so that none lands in those
        days meanwhile. Pushes call it; it is idempotent. On PostgreSQL the
        partitions before ``day`` get their index by series if they lack
        it, on another connection while the days are summed (see
        :meth:`partitions.Partitions.start_indexing`), and then the
        statistics of the partitions rolled up and of the rollup's tables
        are refreshed if stale (see :meth:`partitions.Partitions.
        overlapping`, :func:`engine.analyze_stale`). The label sums
        of the days rolled up are built in the same transaction, and
        those of a few stale days rebuilt (see :mod:`~cloudkitty.storage.
        v2.sqlalchemy.labelsums`).

        :param day: the start of a UTC day, in microseconds.
        """
        indexing = None
        try:
            with engine_mod.translate_errors(self.engine):
                with engine_mod.writing(self.engine) as conn:
                    until = rollup.until(conn, lock='update')
                    if until >= day:
                        return
                    # NOTE: no push or delete writes points meanwhile (they
                    # hold until first): the index of the days rolled up
                    # is built while they are summed (see partitions.
                    # Partitions.start_indexing).
                    indexing = self._partitions.start_indexing(day)
                    self._roll_up_days(conn, until, day)
        finally:
            if indexing is not None:
                indexing.join()
        if indexing is not None and indexing.error is not None:
            LOG.warning('Building the series indexes of the days before %s '
                        'failed, the next roll-up will retry: %s',
                        from_micros(day), indexing.error)
        if self.engine.dialect.name == 'postgresql':
            # NOTE: the statistics of the partitions rolled up and of the
            # new day's (see partitions.overlapping), and of the rollup's
            # tables, which grow a day at a time: planned on no
            # statistics, the update of ck_daily by a delete of one period
            # hashed its rows in two batches (65 ms against 44 with them,
            # on the benchmark's four days, measured), and the new day,
            # never analyzed, was grouped by a sort on disk (totals by
            # project 52-68 ms instead of 39). Analyzed with its first
            # push, its statistics scale with its size.
            with self.engine.connect() as conn:
                engine_mod.analyze_stale(conn, self._partitions.overlapping(
                    conn, None if until == rollup.NOTHING else until,
                    day + rollup.DAY) + list(_ROLLUP_TABLES))
                conn.commit()

    def _roll_up_days(self, conn, until, day):
        """Sum the days of ``[until, day)`` into the rollup, move until.

        In the roll-up's transaction (see :meth:`roll_up`).
        """
        point = models.point
        sums = []
        days = frames_mod.days_between(
            conn, None if until == rollup.NOTHING else until, day)
        # NOTE: a day at a time, grouped by series alone: SQLite sorts one
        # integer instead of (day, series), 40 % less time for a day of
        # the benchmark (measured).
        for first in days:
            if self._sum_day(conn, first):
                continue
            sums += self._day_sums(conn, [
                point.c.begin >= first,
                point.c.begin < first + rollup.DAY], day=first)
        self._upsert_daily.execute(conn, [
            tuple(int(value) for value in row[-2:] + row[:-2])
            for row in sums])
        rollup.move_until(conn, day)
        self._labels.adopt_keys(conn, until)
        self._labels.build(conn, days)
        self._labels.rebuild_stale(conn)

    def _sum_day(self, conn, day):
        """Roll up a day in the database, if it can; tell whether it did.

        See :func:`rollup.sum_day`; False leaves the day to the client
        (MariaDB, or sums past 64 bits).
        """
        if conn.dialect.name not in rollup.SUMS_IN_DATABASE:
            return False
        try:
            with engine_mod.undo_alone(conn):
                rollup.sum_day(conn, day)
        except sa_exc.DBAPIError as exc:
            if not engine_mod.overflowed(exc):
                raise
            LOG.debug('Day sums of %s overflow 64 bits; rolled up through '
                      'the client', from_micros(day))
            return False
        return True

    def _encode(self, runs, scope_id):
        """Check and encode points (all of a push, or the rest of one).

        A point's series is referred to by its id when the series is known,
        else by its key (see :func:`series.series_key`) until the write
        interns it.

        :param runs: ``(begin, end, type, points)`` tuples (see
            :func:`_runs`).
        :returns: ``(points, new_series)``: one ``(series, begin, end,
            qty_hundreds, qty_rest, price_hundreds, price_rest)`` tuple
            per point (see :func:`_point_row`) and the
            ``ck_series`` rows of the series not seen before.
        """
        points = []
        append = points.append
        new_series = {}
        known = self._series_ids
        series_key = series_mod.series_key
        row = _point_row
        exact_key = series_mod.exact_key
        encode_known, config = fastpath.encode_known, self._money_config
        mappings = fastpath.MAPPING_TYPES
        for begin, end, type_, run in runs:
            index, size = 0, len(run)
            while True:
                # NOTE: the usual points first, compiled where it can be;
                # the point it stops at takes the full checks below.
                index = encode_known(points, run, scope_id, type_, begin,
                                     end, known, mappings, config, index)
                if index >= size:
                    break
                point = run[index]
                index += 1
                key = series_key(scope_id, type_, point)
                series = known.get(key)
                if series is None:
                    key = exact_key(key, point)
                    series = known.get(key)
                    if series is None:
                        series = key
                        if key not in new_series:
                            new_series[key] = series_mod.series_row(
                                scope_id, type_, point)
                append(row(series, begin, end, point))
        return points, new_series

    def _write(self, points, new_series, counts, receipt=None):
        """Write encoded points in one transaction (see :meth:`_store`).

        With a ``receipt``, its key is claimed first: a retry of a push
        that landed writes nothing.

        :returns: ``until`` as the push saw it, or None when a retry of a
            landed push wrote nothing.
        """
        with engine_mod.translate_errors(self.engine):
            with engine_mod.writing(self.engine) as conn:
                until = rollup.until(conn, lock='share')
                if receipt is not None and not receipts.claim(conn,
                                                              receipt):
                    return None
                created = self._store(conn, until, points, new_series,
                                      counts)
        self._remember(created)
        return until

    def _push_streaming(self, frames, scope_id, counts):
        """Copy the points of a push while they are checked (PostgreSQL).

        In one transaction, which first takes a shared lock on ``until``:
        the points of known series are encoded and copied run by run, so
        that the server stores them while the next ones are checked. From
        the first point of a new series (or with money to check in full)
        on, the rest is encoded first and written once its series are
        interned (see :meth:`_store`), in order. A push into days already
        rolled up (late data) is encoded whole first: its daily sums need
        every point.

        :returns: ``until`` as the push saw it.
        """
        with engine_mod.translate_errors(self.engine):
            with engine_mod.writing(self.engine) as conn:
                until = rollup.until(conn, lock='share')
                runs = _runs(frames)
                if min(to_micros(frame.start) for frame in frames) < until:
                    points, new_series = self._encode(runs, scope_id)
                else:
                    points, new_series = self._copy_known(conn, runs,
                                                          scope_id)
                created = self._store(conn, until, points, new_series,
                                      counts)
        self._remember(created)
        return until

    def _copy_known(self, conn, runs, scope_id):
        """Copy points while they take the fast path; encode the rest.

        The fast path (:data:`fastpath.encode_known`) takes a point of a
        series this process knows, with money ready to store; from the
        first point it does not take on, the rest is encoded in full (see
        :meth:`_encode`) and written once its series are interned.

        :param runs: ``(begin, end, type, points)`` tuples (see
            :func:`_runs`).
        :returns: what :meth:`_encode` returns for the rest (nothing if
            there is none).
        """
        known, config = self._series_ids, self._money_config
        mappings = fastpath.MAPPING_TYPES
        rest = ()
        with self._insert_points.streaming(conn, blocks=True) as write:
            for begin, end, type_, run in runs:
                # NOTE: the rows as COPY's bytes, one write per run:
                # psycopg's step per row cost the client 0.9 us a point
                # (measured; the push waits for the server's COPY).
                encoded = bytearray()
                index = fastpath.encode_known(encoded, run, scope_id, type_,
                                              begin, end, known, mappings,
                                              config, 0)
                if encoded:
                    write(encoded)
                if index < len(run):
                    rest = itertools.chain(
                        [(begin, end, type_, run[index:])], runs)
                    break
        return self._encode(rest, scope_id)

    def _store(self, conn, until, points, new_series, counts):
        """Write encoded points, the sums of late ones and frame counts.

        In the caller's transaction: new series are interned first, the
        points of days before ``until`` (see :mod:`~cloudkitty.storage.v2.
        sqlalchemy.rollup`) are added to the daily rollup, and the frame
        counts come last (see :mod:`~cloudkitty.storage.v2.sqlalchemy.
        frames`).

        :returns: ``{series key: id}`` of the series interned.
        """
        created = series_mod.intern(conn, new_series)
        if created:
            points = [(created.get(p[0], p[0]),) + p[1:] for p in points]
        # NOTE: driver-level bulk writes of tuples: SQLAlchemy's per-row
        # parameter processing would cost more than the database's own
        # work here.
        if self._numbers_points and points:
            first = counters.take(conn, len(points))
            if len({begin for begin, _ in counts}) == 1 and \
                    self._insert_points.per_statement > 1:
                # NOTE: one frame start: sorted by series, the rows come
                # in the order of SQLite's key (begin, end, series_id,
                # id), which its multi-row statements need (see
                # engine.BulkWrite). Ids are push order, the tiebreak.
                self._insert_points.execute_chunks(
                    conn, *fastpath.statement_rows(
                        points, first, self._insert_points.per_statement))
            else:
                self._insert_points.execute(
                    conn, fastpath.numbered_rows(points, first))
        else:
            self._insert_points.execute(conn, points)
        # NOTE: the frame starts tell whether any point is late data,
        # without a step per point (most pushes have none).
        if min(begin for begin, _ in counts) < until:
            late = rollup.sums(points, until)
            self._upsert_daily.execute(conn, rollup.rows(late))
            self._labels.stale(conn, {day for day, _ in late})
        self._upsert_frames.execute(conn, frames_mod.rows(counts))
        return created

    def _remember(self, created):
        """Cache the ids of committed new series; refresh statistics."""
        self._series_ids.update(created)
        if created and self.engine.dialect.name == 'postgresql':
            self._analyze_series(len(created))

    def _analyze_series(self, created):
        """Refresh PostgreSQL's statistics of the series tables if stale.

        Every aggregate joins series and labels; planned on statistics
        that still say "empty" (autovacuum may be off, or not there yet),
        those joins went from milliseconds to seconds (measured). The
        tables are small, so an ANALYZE costs a few milliseconds; it runs
        when this process has created as many series as a tenth of what
        the statistics know.
        """
        self._series_created += created
        with engine_mod.translate_errors(self.engine):
            with self.engine.connect() as conn:
                known = conn.exec_driver_sql(
                    "SELECT reltuples FROM pg_class WHERE relname = "
                    "'ck_series'").scalar() or 0
                if self._series_created >= max(known, 1000) / 10:
                    conn.exec_driver_sql('ANALYZE ck_series, ck_label')
                    self._series_created = 0
                conn.commit()

    # reading ---------------------------------------------------------------

    def _conditions(self, query, source=_POINTS, window=True):
        """Translate a query's window, types and filters to WHERE clauses.

        Every value is a bound parameter; filter keys and values are data.

        :param window: False when the FROM clause already bounds the
            window (see :meth:`_reading`).
        """
        table = source.table
        clauses = []
        if window and query.begin is not None:
            clauses.append(table.c[source.start] >= to_micros(query.begin))
        if window and query.end is not None:
            clauses.append(table.c[source.start] < to_micros(query.end))
        if isinstance(query, _NamedQuery):
            clauses.append(engine_mod.in_ids(
                self.engine.dialect, table.c.series_id,
                list(query.series_ids)))
            return clauses
        series_clauses = self._series_clauses(query)
        if series_clauses:
            clauses.append(table.c.series_id.in_(
                sa.select(models.series.c.id).where(*series_clauses)))
        return clauses

    def _named_query(self, conn, query):
        """On PostgreSQL, name the series of a filtered read by their ids.

        The points of the days not rolled up yet have no index by series
        (see :mod:`~cloudkitty.storage.v2.sqlalchemy.partitions`). Joined
        to a subquery of series, PostgreSQL took one plan for every
        partition, a loop over the series that scanned the unindexed day
        once per series (0.46 s for one project of 102 series, measured);
        given the ids, each partition is read on its own, by its index or
        in one scan. ``conn`` reads one snapshot (see
        :meth:`_reading_connection`), so the ids are those the subquery
        would have found.

        :returns: a :class:`_NamedQuery`, or ``query`` itself elsewhere,
            without a filter, or past :data:`_DELETE_SERIES` series.
        """
        if conn.dialect.name != 'postgresql':
            return query
        call = _named_series_call(conn.dialect, query, ranked=True)
        ranked = None if call is None else engine_mod.run(conn, call)
        if ranked is None:
            return query
        values = {field.name: getattr(query, field.name)
                  for field in dataclasses.fields(query)}
        values['series_ids'] = tuple(sorted(ranked))
        values['type_ranks'] = tuple(ranked[series_id]
                                     for series_id in values['series_ids'])
        return _NamedQuery(**values)

    def _series_clauses(self, query):
        """The clauses on ``ck_series`` of a query's types and filters."""
        shape, params = _series_params(query)
        return [clause.params(params) for clause in _series_filter(
            self.engine.dialect, *shape)]

    def _frames_to_seek(self, conn, query):
        """Tell whether a read of ``query`` should seek frame by frame.

        A read filtered on labels (one project, say) needs a few series of
        every frame and day; it can then seek each (frame or day, series)
        instead of scanning every entry of the window and dropping the
        other series' (see :meth:`_reading`). That is worth it when the
        seeks are fewer than the window's points over
        :data:`_SEEK_RATIO`. Where the points are joined to their frames
        (see :attr:`_joins_frames`), it also needs the points of each
        frame start to share one frame end, else a seek would miss some of
        them.

        The frame counts (see :mod:`~cloudkitty.storage.v2.sqlalchemy.
        frames`) give the window's frame starts and points; ``conn`` must
        read one snapshot (see :meth:`_reading_connection`), so that the
        read sees the frames counted here.

        :rtype: bool
        """
        if frames_mod.usable(query):
            return False
        if self._joins_frames:
            frames = conn.execute(frames_mod.ends(query)).all()
            if any(first != last for _, _, first, last in frames):
                return False
        else:
            frames = conn.execute(frames_mod.starts(query)).all()
        if not frames:
            return False
        points = sum(int(row[1]) for row in frames)
        if isinstance(query, _NamedQuery):
            series = len(query.series_ids)
        else:
            series = conn.scalar(sa.select(sa.func.count()).select_from(
                models.series).where(*self._series_clauses(query)))
        return _seek_pays(len(frames), series, points)

    @property
    def _joins_frames(self):
        """Tell whether seeking reads join the points to their frames.

        Only SQLite's points have no index by series (a second index
        costs 5x on push, see :mod:`~cloudkitty.storage.v2.sqlalchemy.
        models`); its index leads with ``(begin, end, series_id)``, and a
        join on the window's frames makes it seek each (frame, series).
        PostgreSQL's (series_id, begin) index (migration 0003) and
        MariaDB's series_id one (InnoDB's, of the foreign key) are what
        their planners take for a few series; there a join would only get
        in the way (measured: 0.025 s to 0.65 s on MariaDB for one
        project of 245,000 points), and PostgreSQL would scan each frame
        to find its end, its key leading with ``begin`` alone.
        """
        return self.engine.dialect.name == 'sqlite'

    def _reading(self, query, source=_POINTS, seek=False):
        """The FROM clause and WHERE clauses that read a source of a query.

        With ``seek`` (see :meth:`_frames_to_seek`), the daily rollup is
        read through the list of the window's days, the first column of
        its key, and the points, where :attr:`_joins_frames`, through the
        window's frames (see :func:`frames.ends`), joined on the leading
        columns of their index: one seek per day or frame and series of
        the filter.

        :returns: ``(from_clause, [clause, ...])``.
        """
        table = source.table
        if source is _DAILY and seek:
            days = range(to_micros(query.begin), to_micros(query.end),
                         rollup.DAY)
            if len(days) <= _SEEK_DAYS:
                return table, [table.c.day.in_(list(days))] + \
                    self._conditions(query, source, window=False)
        if source is not _POINTS or not seek or not self._joins_frames:
            return table, self._conditions(query, source)
        point = models.point
        frames = frames_mod.ends(query).subquery('seek_frames')
        return frames.join(point, sa.and_(
            point.c.begin == frames.c.begin,
            point.c.end == frames.c.first_end)), self._conditions(
            query, source, window=False)

    def _reading_connection(self):
        """Open a connection whose statements read one snapshot.

        SQLite reads in a transaction and MariaDB's default is REPEATABLE
        READ; PostgreSQL's READ COMMITTED gives each statement its own
        snapshot, so a read planned by one statement (see
        :meth:`_frames_to_seek`) could miss part of a push committed
        before the next. A read-only REPEATABLE READ transaction never
        fails to serialize.
        """
        conn = self.engine.connect()
        if self.engine.dialect.name == 'postgresql':
            conn.execution_options(isolation_level='REPEATABLE READ')
        return conn

    @staticmethod
    def _plan(query, until, rollup_ok=True):
        """Split a query's window between the rollup and the points.

        :param until: the first day the rollup does not hold
            (:func:`rollup.until`).
        :returns: ``[(source, query), ...]``: whole UTC days from the daily
            rollup, the partial days at the edges and the days from
            ``until`` on from the points.
        """
        days = rollup.rolled_days(query.begin, query.end, until) \
            if rollup_ok else None
        if days is None:
            return [(_POINTS, query)]
        plan = [(_DAILY, dataclasses.replace(query, begin=days[0],
                                             end=days[1]))]
        if query.begin < days[0]:
            plan.append((_POINTS, dataclasses.replace(query, end=days[0])))
        if days[1] < query.end:
            plan.append((_POINTS, dataclasses.replace(query, begin=days[1])))
        return plan

    def retrieve(self, begin=None, end=None, filters=None, metric_types=None,
                 offset=0, limit=1000, paginate=True):
        """Return rated points as DataFrames (see ``BaseStorage.retrieve``).

        The tiebreak after frame start and type is push order. Without
        filters other than on type, the total and the frame start of a deep
        page come from the frame counts (see :mod:`~cloudkitty.storage.v2.
        sqlalchemy.frames`); otherwise the total reads whole days from the
        daily rollup and a deep page seeks through it (see :meth:`_seek`).
        Unpaginated, the total is the number of points read.
        """
        query = query_mod.validate_retrieve(
            begin=begin, end=end, filters=filters, metric_types=metric_types,
            offset=offset, limit=limit, paginate=paginate)
        by_frames = frames_mod.usable(query)
        with engine_mod.translate_errors(self.engine):
            with self._reading_connection() as conn:
                query = self._named_query(conn, query)
                # NOTE: only a count through the rollup's days, or points
                # joined to their frames, seek: elsewhere the frame counts
                # that tell whether to seek would be read for nothing (0.9
                # ms of a read of one project on PostgreSQL, measured).
                counted = query.paginate and not by_frames and \
                    query.offset < _SEEK_FROM
                seek = (counted or self._joins_frames) and \
                    self._frames_to_seek(conn, query)
                page = query
                if query.paginate and by_frames:
                    total = frames_mod.count(conn, query)
                    page = frames_mod.narrow(
                        query, frames_mod.page_cells(conn, query))
                elif query.paginate and query.offset >= _SEEK_FROM:
                    regions = self._regions(conn, query)
                    total = sum(count for _, _, count in regions)
                    page = self._seek(conn, query, regions)
                elif query.paginate:
                    total = sum(self._count(conn, source, part, seek)
                                for source, part in self._plan(
                                    query, rollup.until(conn)))
                rows = []
                if page is not None:
                    stmt = self._points_select(page, seek)
                    if page.paginate:
                        stmt = stmt.offset(page.offset).limit(page.limit)
                    rows = _driver_rows(conn, stmt)
                if not query.paginate:
                    total = len(rows)
                runs = self._rebuild(conn, rows, runs=True)
        return query_mod.build_retrieve_runs(total, runs)

    def _count(self, conn, source, query, seek):
        """Count the points of a query in one source of its plan."""
        from_, clauses = self._reading(query, source, seek)
        return int(conn.scalar(sa.select(source.counter()).select_from(
            from_).where(*clauses)) or 0)

    def _regions(self, conn, query):
        """Count a window's points per region, in the points' order.

        The regions are the whole UTC days the rollup holds (counted in
        the daily rollup, one row per day and series), and the partial
        days at the window's edges and the days not rolled up yet (counted
        on the points).

        :returns: ``[(begin, end, count)]``, ``begin`` ascending.
        """
        days = rollup.rolled_days(query.begin, query.end,
                                  rollup.until(conn))
        if days is None:
            edges = [(query.begin, query.end)]
            by_day = []
        else:
            edges = [(query.begin, days[0]), (days[1], query.end)]
            daily = models.daily
            by_day = conn.execute(
                sa.select(daily.c.day, sa.func.sum(daily.c.n)).where(
                    *self._conditions(dataclasses.replace(
                        query, begin=days[0], end=days[1]), _DAILY)).group_by(
                    daily.c.day).order_by(daily.c.day)).all()
        regions = [(from_micros(day), from_micros(day + rollup.DAY),
                    int(count)) for day, count in by_day]
        for begin, end in edges:
            if begin < end:
                regions.append((begin, end, int(conn.scalar(
                    sa.select(sa.func.count()).where(*self._conditions(
                        dataclasses.replace(query, begin=begin,
                                            end=end)))))))
        return sorted(regions)

    def _seek(self, conn, query, regions):
        """Narrow a deep page to the frame starts where it lies.

        Points are ordered by frame start first, so whole regions (see
        :meth:`_regions`) before the page are skipped by their counts, and
        the frame starts of the page's region by an index-only count of
        that region. The page is then read between the frame starts
        where it begins and ends, with the small offset left. The work is
        that of the rollup rows of the window and the index entries of
        one day, not that of every point before the page.

        :returns: ``query`` with a narrower window and a smaller
            ``offset``, or None when the page is past the last point.
        """
        left = query.offset
        point = models.point
        for begin, end, count in regions:
            if left >= count:
                left -= count
                continue
            by_start = conn.execute(
                sa.select(point.c.begin, sa.func.count()).where(
                    *self._conditions(dataclasses.replace(
                        query, begin=begin, end=end))).group_by(
                    point.c.begin).order_by(point.c.begin)).all()
            page = _narrow(query, left, by_start)
            if page is not None:
                return page
            # NOTE: a concurrent delete may have emptied the region since
            # it was counted: go on with what it still holds.
            left -= sum(count for _, count in by_start)
        return None

    def iter_points(self, begin=None, end=None, filters=None,
                    metric_types=None, batch_size=1000):
        """Stream points in retrieve()'s order (see ``BaseStorage``).

        One query reads the window through a server-side cursor
        (``stream_results``), ``batch_size`` rows at a time; series are
        read on a second connection (MySQL cannot run a query while a
        streaming one is open). Memory holds one batch and the series
        seen, whatever the number of points.
        """
        query = query_mod.validate_iter_points(
            begin=begin, end=end, filters=filters, metric_types=metric_types,
            batch_size=batch_size)
        return self._stream(query, batch_size)

    def _stream(self, query, batch_size):
        with engine_mod.translate_errors(self.engine):
            with self._reading_connection() as conn, \
                    self.engine.connect() as series_conn:
                stmt = self._points_select(self._named_query(conn, query))
                result = conn.execution_options(
                    stream_results=True, yield_per=batch_size).execute(stmt)
                for rows in result.partitions():
                    yield from self._rebuild(series_conn, rows)

    def _points_select(self, query, seek=False):
        """The SELECT of a query's points, in the contract's order.

        The tiebreak after frame start and type is push order (the id).

        :param seek: see :meth:`_reading`.
        """
        point, series = models.point, models.series
        from_, clauses = self._reading(query, _POINTS, seek)
        if isinstance(query, _NamedQuery) and query.type_ranks:
            # NOTE: the ranks of the named series' types, as a table of
            # two arrays: joined to ck_series instead, PostgreSQL hashed
            # all of its rows and sorted on text, 4-5 ms of a read of one
            # project's 10,200 points (measured).
            named = _named_ranks(query)
            from_ = from_.join(named, named.c.series_id == point.c.series_id)
            rank = named.c.rank
        else:
            from_ = from_.join(series, series.c.id == point.c.series_id)
            rank = series.c.type
        return sa.select(
            point.c.series_id, point.c.begin, point.c.end,
            *[point.c[name] for name in _MONEY_COLUMNS]).select_from(
            from_).where(*clauses).order_by(point.c.begin, rank, point.c.id)

    def _rebuild(self, conn, rows, runs=False):
        """Turn point rows into ``(start, end, type, DataPoint)`` tuples.

        The series' attributes are shared (frozen once, see
        :func:`series.load`); the rest is :func:`fastpath.rebuild`.

        :param runs: make runs of points of one frame and type instead,
            ``(start, end, type, [DataPoint, ...])`` (see
            :func:`fastpath.rebuild_runs`): what retrieve() groups into
            DataFrames, without a tuple per point.
        """
        info = series_mod.load(conn, [r[0] for r in rows],
                               self._series_info)
        rebuild = fastpath.rebuild_runs if runs else fastpath.rebuild
        return rebuild(rows, info, {}, from_micros, dataframe.DataPoint)

    def total(self, groupby=None, begin=None, end=None, metric_types=None,
              filters=None, custom_fields=None, offset=0, limit=1000,
              paginate=True):
        """Return grouped sums (see ``BaseStorage.total``).

        Whole UTC days are read from the daily rollup unless the query
        groups by single frames (``time``) or asks for ``min``/``max``;
        from the label sums when it groups by a label key they keep and
        every day is fresh (see :mod:`~cloudkitty.storage.v2.sqlalchemy.
        labelsums`).
        """
        query = query_mod.validate_total(
            groupby=groupby, begin=begin, end=end, metric_types=metric_types,
            filters=filters, custom_fields=custom_fields, offset=offset,
            limit=limit, paginate=paginate)
        rollup_ok = query.time_groupby != 'time' and not any(
            f.func in ('min', 'max') for f in query.fields)
        with engine_mod.translate_errors(self.engine):
            with self._reading_connection() as conn:
                query = self._named_query(conn, query)
                plan = self._plan(query, rollup.until(conn), rollup_ok)
                labelled, plan = self._label_part(conn, query, plan)
                seek = bool(plan) and self._frames_to_seek(conn, query)
                if conn.dialect.name == 'postgresql' and \
                        query.key_groupby and not seek:
                    conn.exec_driver_sql(_GROUPING_SETTINGS)
                try:
                    with engine_mod.undo_alone(conn):
                        groups, merged = self._sums(conn, query, labelled,
                                                    plan, False, seek)
                except _Overflow:
                    groups, merged = self._sums(conn, query, labelled,
                                                plan, True, seek)
        build = (query_mod.build_merged_total if merged
                 else query_mod.build_total)
        return build(query, groups, fastpath.decimal_of_units)

    def _label_part(self, conn, query, plan):
        """Take the rolled-up days of a plan to the label sums, if fresh.

        :returns: ``(label key, query of the days) or None`` and the rest
            of the plan.
        """
        key = self._labels.key_of(query)
        if key is None or plan[0][0] is not _DAILY:
            return None, plan
        days = plan[0][1]
        if not self._labels.covers(conn, key, to_micros(days.begin),
                                   to_micros(days.end)):
            return None, plan
        return (key, days), plan[1:]

    def _sums(self, conn, query, labelled, plan, split, seek):
        """The groups of the label sums' part and of the plan.

        Each part is one statement that groups by the groupby's values
        (and time), or by series (see :meth:`_per_series`); when one alone
        ran, with plain sums and neither time nor extremes, its rows are
        the groups, or finer ones that :func:`query.build_merged_total`
        merges.

        :returns: ``(groups, merged)``: the ``(keys, count, qty, price)``
            of each group when ``merged`` (see :func:`query.
            build_merged_total`), else a list of partial groups.
        """
        parts = []
        if labelled is not None:
            parts.append((self._label_rows(conn, query, *labelled,
                                           split=split), False, ()))
        if plan:
            parts.append(self._aggregate(conn, query, plan, split, seek))
        if len(parts) == 1 and not split and not any(parts[0][1:]):
            return _plain_groups(parts[0][0], query.key_groupby), True
        partials = []
        for rows, time, extremes in parts:
            partials += _partials(rows, query.key_groupby, time, extremes,
                                  split, self._unsortable)
        return partials, False

    def _label_rows(self, conn, query, key, days, split):
        """Sum the label sums of ``key`` over the whole ``days`` of a plan.

        A row per group, as :meth:`_aggregate`'s (see :func:`_partials`).
        """
        table = models.label_daily
        group = []
        for entry in query.key_groupby:
            group += ([table.c.type] if entry == 'type'
                      else [table.c.value, table.c.kind])
        clauses = [table.c.key == key,
                   table.c.day >= to_micros(days.begin),
                   table.c.day < to_micros(days.end)] + [
            table.c.type.in_(types) for types in _type_sets(query)]
        stmt = sa.select(*group, *_money_sums(
            _LABEL_DAILY, split, self._casts_sums(split))).where(
            *clauses).group_by(*group)
        return _fetch_sums(conn, stmt, split)

    def _aggregate(self, conn, query, plan, split, seek=False):
        """Run the aggregate query of a plan; return its partial groups.

        On SQLite each source of the plan is first summed per series (and
        frame or day, when grouping by time); the sources are put together
        with UNION ALL, joined to the series' labels and summed again, so
        that its joins, a lookup per row, work on series, not on points.
        PostgreSQL joins each source to the labels by hash, where that
        first grouping by series costs more than it saves for keys of few
        values (a total by project: 34 ms of the points' part against 19,
        measured), and less for keys of a value per series (by id: 131 ms
        against 150): when every key of the groupby is the type or a key
        of ``rollup_label_keys`` (which the option says have few values),
        each source is grouped by the groupby's values directly, and the
        union summed again by them.

        :param seek: see :meth:`_reading`.
        :returns: ``(rows, time, extremes)``: a row per group, or per
            series (see :meth:`_per_series`) (see :func:`_partials`),
            whether they are grouped by time, and the extremes they end
            with.
        """
        time = query.time_groupby is not None
        extremes = sorted({(f.func, f.field) for f in query.fields
                           if f.func in ('min', 'max')})
        labelled = bool(query.key_groupby) and \
            conn.dialect.name == 'postgresql' and all(
                key == 'type' or key in self._labels.keys
                for key in query.key_groupby)
        select = self._labelled_select if labelled else self._partial_select
        inners = [select(source, part, time, extremes, split, seek)
                  for source, part in plan]
        inner = (inners[0] if len(inners) == 1
                 else sa.union_all(*inners)).subquery('partial')
        values = []
        cast = self._casts_sums(split)
        for column in inner.c:
            if column.name in ('series_id', 'begin', 'end') or \
                    column.name.startswith('group_'):
                continue
            if column.name.startswith(('min_', 'max_')):
                func = (sa.func.min if column.name.startswith('min_')
                        else sa.func.max)
                values.append(func(column).label(column.name))
            else:
                value = sa.func.sum(column)
                values.append((sa.cast(value, sa.BigInteger) if cast
                               else value).label(column.name))
        if self._per_series(query, labelled, time, extremes):
            return _fetch_sums(conn, _labels_of_series(
                inner, values, len(inners) > 1, query.key_groupby),
                split), time, extremes
        joined, group = inner, []
        if labelled:
            group = [column for column in inner.c
                     if column.name.startswith('group_')]
        elif query.key_groupby:
            joined, group = _with_labels(inner, inner.c.series_id,
                                         query.key_groupby)
        if time:
            group += [inner.c.begin, inner.c.end]
        stmt = sa.select(*group, *values).select_from(joined)
        if group:
            stmt = stmt.group_by(*group)
        return _fetch_sums(conn, stmt, split), time, extremes

    def _per_series(self, query, labelled, time, extremes):
        """Tell whether an aggregate's rows stay one per series.

        For a groupby of one label key outside ``rollup_label_keys`` (an
        id, say: a value per series or nearly), the database sums each
        series and joins its label, and the groups of one value are
        merged after (see :func:`query.build_merged_total`): summing
        again by the label's text cost more than the merge (by id on
        SQLite: 79-85 ms of SQL instead of 94-98, measured).
        """
        return not (labelled or time or extremes) and \
            len(query.key_groupby) == 1 and \
            query.key_groupby[0] != 'type' and \
            query.key_groupby[0] not in self._labels.keys

    def _partial_select(self, source, query, time, extremes, split, seek):
        """Sum one source of a plan per series (and time, if grouped)."""
        table = source.table
        from_, clauses = self._reading(query, source, seek)
        group = [table.c.series_id] if query.key_groupby else []
        if time:
            group += source.time_columns()
        stmt = sa.select(*group, *self._source_values(
            source, extremes, split)).select_from(from_).where(*clauses)
        if group:
            stmt = stmt.group_by(*group)
        return stmt

    def _labelled_select(self, source, query, time, extremes, split, seek):
        """Sum one source of a plan per groupby value (and time)."""
        table = source.table
        from_, clauses = self._reading(query, source, seek)
        from_, group = _with_labels(from_, table.c.series_id,
                                    query.key_groupby)
        if time:
            group += source.time_columns()
        return sa.select(*group, *self._source_values(
            source, extremes, split)).select_from(from_).where(
            *clauses).group_by(*group)

    def _source_values(self, source, extremes, split):
        """The count, money sums and extremes a source's groups give."""
        table = source.table
        columns = _money_sums(source, split, self._casts_sums(split))
        for func, field in extremes:
            columns.append(getattr(sa.func, func)(self._sortable(
                table.c[field + '_hundreds'], table.c[field + '_rest'])).label(
                '%s_%s' % (func, field)))
        return columns

    def _casts_sums(self, split):
        """Tell whether a read's plain sums are cast (see :func:`_sum`).

        Only reads: the roll-up's day sums read 10,200 rows from 244,800
        points, where the cast saved nothing (measured, PostgreSQL).
        """
        return not split and self.engine.dialect.name == 'postgresql'

    def _sortable(self, hundreds, rest):
        """An expression ordered like the value of a point's pair."""
        if self.engine.dialect.name == 'sqlite':
            return sa.func.printf('%0*d%0*d', _HUNDREDS_WIDTH,
                                  hundreds + _HUNDREDS_OFFSET, _REST_WIDTH,
                                  rest)
        return sa.cast(hundreds, sa.Numeric(40, 0)) * models.HUNDRED + rest

    def _unsortable(self, value):
        """The Decimal of a :meth:`_sortable` value."""
        if self.engine.dialect.name == 'sqlite':
            return money.from_units(models.join(
                int(value[:_HUNDREDS_WIDTH]) - _HUNDREDS_OFFSET,
                value[_HUNDREDS_WIDTH:]))
        return money.from_units(int(value))

    # delete ----------------------------------------------------------------

    def delete(self, begin=None, end=None, filters=None):
        """Delete points (see :meth:`BaseStorage.delete`).

        The daily rollup and the frame counts lose exactly the sums and
        counts of the deleted points, in the same transaction, which also
        forgets the idempotency keys of the pushes in the window (see
        :meth:`BaseStorage.push`).

        One transaction, made again if it loses a deadlock (see
        :func:`engine.retry_conflicts`).

        :returns: the number of points deleted.
        """
        query = query_mod.validate_delete(begin=begin, end=end,
                                          filters=filters)
        return engine_mod.retry_conflicts(self._delete, query)

    def _delete(self, query):
        """Delete the points of a validated query, in one transaction.

        It first takes ``until`` exclusively: pushes wait for the delete,
        and the delete for the pushes under way, so that the sums and
        counts it takes from the rollup and the frame counts are those of
        the very points it deletes (see :mod:`~cloudkitty.storage.v2.
        sqlalchemy.rollup`). Under that lock it brings ``until`` back to
        the day after the last point left, if later (see
        :func:`rollup.move_back`).
        """
        with engine_mod.translate_errors(self.engine):
            with engine_mod.writing(self.engine) as conn:
                until, named, known = self._delete_prelude(conn, query)
                if query.begin is None and query.end is None \
                        and not query.filters:
                    conn.execute(models.daily.delete())
                    self._labels.drop_days(conn)
                    frames_mod.forget(conn)
                    rollup.move_back(conn, until)
                    return conn.execute(models.point.delete()).rowcount
                dropped = 0
                if not query.filters:
                    dropped = self._drop_partitions(conn, query)
                if named is None:
                    conditions = self._conditions(query)
                else:
                    if known is not None:
                        return self._delete_returning(
                            conn, until, query, named, known)
                    conditions = self._conditions(dataclasses.replace(
                        query, filters=(), metric_types=None)) + [
                        engine_mod.in_ids(self.engine.dialect,
                                          models.point.c.series_id, named)]
                deleted = frames_mod.deleted(conn, conditions) \
                    if query.filters else None
                # NOTE: only the points of rolled-up days are in the rollup.
                if until != rollup.NOTHING:
                    self._take_out_of_rollup(conn, query, conditions, until,
                                             deleted)
                if deleted is not None:
                    frames_mod.subtract(conn, deleted)
                else:
                    # NOTE: every point of the window's frames goes: so do
                    # their counts, without reading the points to count
                    # them.
                    frames_mod.forget(conn, *_window_micros(query))
                count = conn.execute(models.point.delete().where(
                    *conditions)).rowcount
                if count or dropped:
                    rollup.move_back(conn, until)
                return dropped + count

    @staticmethod
    def _delete_prelude(conn, query):
        """Lock ``until``, forget receipts, read what a delete starts from.

        One :func:`engine.run_in_turn`: on PostgreSQL one round trip for
        the ``BEGIN``, the lock and up to three statements, where each
        took its own (0.15-0.3 ms apiece on loopback, measured). The lock
        comes first and every read after it: each statement reads once
        the previous one has run, the lock held.

        A filtered delete names the ids of its series instead of a
        subquery (see :func:`_named_series_call`). Where the database
        returns deleted rows, a filtered delete whose window holds at
        most :data:`_RETURNING_MAX` points (its frame counts tell) takes
        its rows back (see :meth:`_delete_returning`).

        :returns: ``(until, named, known)``: ``until`` locked for update;
            the ``{series id: type}`` of a filtered delete, or None; the
            ``{(begin, type): n}`` of the window's frames (see
            :func:`frames.counts_between`) when the delete takes its rows
            back, else None.
        """
        begin, end = _window_micros(query)
        calls = [rollup.until_call('update'),
                 receipts.forget_call(begin, end)]
        named_call = _named_series_call(conn.dialect, query)
        if named_call is not None:
            calls.append(named_call)
            if conn.dialect.delete_returning and begin is not None \
                    and end is not None:
                calls.append(frames_mod.counts_between_call(begin, end))
        until, _, *read = engine_mod.run_in_turn(conn, calls)
        named = read[0] if read else None
        known = read[1] if named is not None and len(read) > 1 else None
        if known is not None and sum(known.values()) > _RETURNING_MAX:
            known = None
        return until, named, known

    def _delete_returning(self, conn, until, query, types, known):
        """Delete points and take their rows back; update sums and counts.

        One statement finds and deletes the points, where a delete
        otherwise reads them twice first (their day sums, their frame
        counts): the rows it returns are summed here, exactly, as a push
        sums its own (see :func:`rollup.sums`), and their sums leave the
        rollup, their counts the frame counts, in the caller's
        transaction. ``until`` moves back only when a frame count was
        emptied: otherwise the last frame start stays (see
        :func:`rollup.move_back`).

        :param until: :func:`rollup.until`, locked by the caller.
        :param query: the delete's query, bounded.
        :param types: ``{series id: type}`` of every series the query's
            filters match (see :func:`_named_series_call`).
        :param known: the window's frame counts (see
            :meth:`_delete_prelude`).
        :returns: the number of points deleted.
        """
        statement = self._delete_series_points
        if self._joins_frames and _seek_pays(
                len({begin for begin, _ in known}), len(types),
                sum(known.values())):
            statement = self._seek_series_points
        rows = _driver_rows(conn, statement, {
            'b_begin': to_micros(query.begin), 'b_end': to_micros(query.end),
            'b_series': sorted(types)})
        if not rows:
            return 0
        removed = rollup.rows(rollup.sums(rows, until))
        counts = {}
        for series_id, begin, *_ in rows:
            key = (begin, types[series_id])
            counts[key] = counts.get(key, 0) + 1
        # NOTE: the writes after the DELETE go in one round trip (1.8 ms
        # instead of 3.3 for a project of a past day, measured), but for
        # more rollup rows than arrays take: psycopg cannot COPY in a
        # pipeline.
        with engine_mod.pipelined(
                conn, not self._upsert_daily.sends_copy(len(removed))):
            if removed:
                self._subtract_days(conn, [
                    row[:2] + tuple(-value for value in row[2:])
                    for row in removed])
                self._labels.stale(conn, {row[0] for row in removed})
            emptied = frames_mod.subtract(conn, counts, known)
        if emptied:
            rollup.move_back(conn, until)
        return len(rows)

    def _take_out_of_rollup(self, conn, query, conditions, until,
                            deleted=None):
        """Take the points a delete removes out of the daily rollup.

        A delete without filters removes every point of the whole days of
        its window: their rows in the rollup go as they are, and only the
        points of the partial days at its edges are summed and
        subtracted (see :meth:`_subtract_points`), where summing every
        point of the window cost seconds for a million (measured, SQLite).

        :param conditions: the delete's WHERE clauses, on ``ck_point``.
        :param until: :func:`rollup.until`, locked by the caller.
        :param deleted: the counts of the deleted points per frame start
            and type (see :func:`frames.deleted`), or None.
        """
        point, daily = models.point, models.daily
        rolled = conditions + [point.c.begin < until]
        days = whole = None
        if not query.filters and query.begin is not None and \
                query.end is not None:
            days = rollup.rolled_days(query.begin, query.end, until)
        if days is not None:
            whole = first, last = to_micros(days[0]), to_micros(days[1])
            conn.execute(daily.delete().where(daily.c.day >= first,
                                              daily.c.day < last))
            self._labels.drop_days(conn, first, last)
            rolled.append(sa.or_(point.c.begin < first,
                                 point.c.begin >= last))
            if query.begin == days[0] and (query.end == days[1] or
                                           last == until):
                # NOTE: no partial day of the window is in the rollup.
                return
        self._subtract_points(conn, query, rolled, until, whole,
                              self._rolled_points(conn, query, until,
                                                  deleted, whole))

    @staticmethod
    def _rolled_points(conn, query, until, deleted, whole):
        """How many points of the rollup's days a delete removes, if known.

        The frame counts tell, without reading a point: those of the
        filtered points (``deleted``), or those of the window's frames
        before ``until`` but for the ``whole`` days. Known only when each
        of those days has one frame start in the window, where points
        rarely share a (day, series) row of the rollup (see
        :meth:`_subtract_in_database`): a window of several frames of a
        day holds several points of most series.

        :returns: the number of points, or None (also where the client
            takes the points out: MariaDB).
        """
        if conn.dialect.name not in _SUBTRACTS_IN_DATABASE:
            return None
        if deleted is None:
            if query.begin is None or query.end is None:
                return None
            deleted = frames_mod.counts_between(
                conn, to_micros(query.begin),
                min(to_micros(query.end), until))
        begins = {}
        points = 0
        for (begin, _), n in deleted.items():
            if begin >= until or (whole is not None and
                                  whole[0] <= begin < whole[1]):
                continue
            if begins.setdefault(rollup.day_of(begin), begin) != begin:
                return None
            points += n
        return points

    def _subtract_points(self, conn, query, conditions, until, whole=None,
                         points=None):
        """Take the sums of the points ``conditions`` match out of the rollup.

        On SQLite and PostgreSQL in one statement (:meth:`_subtract_in_
        database`), then the rows it emptied go; on MariaDB, or when a
        limb overflows 64 bits, through the client (:meth:`_day_sums`,
        :meth:`_subtract_days`). The label sums of the window's rolled-up
        days go stale (see :mod:`~cloudkitty.storage.v2.sqlalchemy.
        labelsums`), but for the ``whole`` days, which the caller dropped.

        :param until: :func:`rollup.until`, locked by the caller.
        :param whole: ``(first, last)`` days, in microseconds, the last
            excluded, or None.
        :param points: the number of points ``conditions`` match, or None
            when unknown.
        """
        first = None if query.begin is None \
            else rollup.day_of(to_micros(query.begin))
        last = until - rollup.DAY if query.end is None \
            else min(until - rollup.DAY,
                     rollup.day_of(to_micros(query.end) - 1))
        self._labels.stale_between(conn, first, last, whole)
        if conn.dialect.name in _SUBTRACTS_IN_DATABASE:
            try:
                self._subtract_in_database(
                    conn, conditions, points,
                    first if first is not None and first == last else None)
            except sa_exc.DBAPIError as exc:
                if not engine_mod.overflowed(exc):
                    raise
                LOG.debug('Day sums of a delete overflow 64 bits; taken '
                          'out exactly, through the client')
            else:
                # NOTE: the rollup holds no day from until on.
                self._drop_emptied_days(conn, first, last)
                return
        removed = self._day_sums(conn, conditions)
        if removed:
            self._subtract_days(conn, rollup.opposites(removed))

    @staticmethod
    def _subtract_in_database(conn, conditions, points, day=None):
        """Take the points' sums out of ``ck_daily`` in the database.

        When the number of points is known, each point is first taken out
        of its row as it is (:func:`rollup.subtract_each_point`), in a
        savepoint: if the statement updated as many rows as there are
        points, no two shared a row and it is exact; otherwise it is
        undone, and the points are summed per day and series first
        (:func:`rollup.subtract_points`, in a savepoint on PostgreSQL,
        so that an overflow ends it alone).

        :param points: the number of points ``conditions`` match, or None.
        :param day: the day (microseconds) when the conditions hold the
            points to one rolled-up day, or None.
        :raises sqlalchemy.exc.DBAPIError: on overflow, the statement
            undone.
        """
        if points == 0:
            return
        if points is not None:
            with conn.begin_nested() as savepoint:
                if conn.execute(rollup.subtract_each_point(
                        conditions, day)).rowcount == points:
                    return
                savepoint.rollback()
        with engine_mod.undo_alone(conn):
            conn.execute(rollup.subtract_points(conditions, day))

    def _subtract_days(self, conn, opposites):
        """Add opposite day sums to ``ck_daily``; drop the rows emptied.

        :param opposites: ``(day, series_id, -count, -qty_big, ...)``
            tuples in ``(day, series_id)`` order (see
            :func:`rollup.opposites`).
        """
        self._upsert_daily.execute(conn, opposites)
        series = {row[1] for row in opposites}
        self._drop_emptied_days(conn, opposites[0][0], opposites[-1][0],
                                series if len(series) <= _DELETE_SERIES
                                else None)

    @staticmethod
    def _drop_emptied_days(conn, first, last, series=None):
        """Drop the ``ck_daily`` rows a subtraction left without a point.

        Only the days touched can have emptied rows; bounding them keeps
        this off the whole rollup. Naming the series touched keeps it off
        the others' rows of those days: 0.3 ms instead of 1.4 for the
        delete of one project of a rolled-up day of the benchmark, which
        otherwise read the day's 10,200 rows (measured, PostgreSQL).

        :param first: the first day touched (microseconds), None for no
            bound.
        :param last: the last one, likewise.
        :param series: the ids of the series touched, or None for all.
        """
        daily = models.daily
        emptied = [daily.c.n == 0]
        if first is not None and first == last:
            # NOTE: with the day as an equality, PostgreSQL looks the
            # series up in the key; with a range it read the whole day.
            emptied.append(daily.c.day == first)
        else:
            if first is not None:
                emptied.append(daily.c.day >= first)
            if last is not None:
                emptied.append(daily.c.day <= last)
        if series is not None:
            emptied.append(engine_mod.in_ids(conn.dialect,
                                             daily.c.series_id, series))
        conn.execute(daily.delete().where(*emptied))

    def _drop_partitions(self, conn, query):
        """Drop or empty the partitions that a delete's window holds.

        PostgreSQL; the window has no filter: every point of those days
        goes. Their points are counted through the frame counts, which
        count exactly the points of every frame start, and their days
        removed from the rollup. A window open at its start (the
        retention purge) drops the partitions of its whole days. Any
        other empties them (``TRUNCATE``) and drops their index by series
        (see :func:`partitions.empty_sql`): pushes may come back to those
        days at once (a service that rates them again), and a push racing
        the delete would find its day's partition gone. Either way nothing
        is left behind, where deleting the rows left them dead in the
        table and its indexes until a vacuum: three purges of the
        benchmark's window (four days), with autovacuum off, left each
        day's partition 171 MB for 10,200 live points, and each round
        pushed slower (205,899, 167,128, then 117,407 points a second,
        measured).

        A day at an edge of the window whose every frame starts inside
        it is emptied too (never dropped: the window ends or starts
        inside it, and pushes may come back there): the frame counts
        tell, and the delete holds ``until``, so no push adds a frame
        meanwhile. The benchmark's purge ends four hours into its last
        day, whose 40,800 points it otherwise deleted row by row.

        :param query: the delete's query.
        :returns: the number of points dropped.
        """
        begin, end = _window_micros(query)
        if begin is not None and end is not None and end - begin < rollup.DAY:
            # NOTE: no day fits in the window (a period, say): the catalog
            # is not read.
            return 0
        dropped = 0
        for name, start, stop, whole in self._partitions.in_window(
                conn, begin, end):
            count = frames_mod.count_between(conn, start, stop)
            if not whole and not (count and count == frames_mod.count_between(
                    conn, start if begin is None else max(start, begin),
                    stop if end is None else min(stop, end))):
                # NOTE: a frame of the day starts outside the window (or
                # the day holds nothing): its rows are deleted one by one.
                continue
            dropped += count
            self._forget_days(conn, start, stop)
            if begin is None and whole:
                # NOTE: the name comes from the catalog and is quoted.
                conn.exec_driver_sql('DROP TABLE %s' % (
                    conn.dialect.identifier_preparer.quote(name)))
                self._partitions.forget(start, stop)
                continue
            for statement in partitions.empty_sql(name):
                conn.exec_driver_sql(statement)
        return dropped

    def _forget_days(self, conn, start, stop):
        """Take days out of the rollup, label sums and frame counts.

        For the days of a partition dropped or emptied whole (see
        :meth:`_drop_partitions`).

        :param start: the first day, in microseconds.
        :param stop: the day after the last, in microseconds.
        """
        daily = models.daily
        conn.execute(daily.delete().where(daily.c.day >= start,
                                          daily.c.day < stop))
        self._labels.drop_days(conn, start, stop)
        frames_mod.forget(conn, start, stop)

    def _day_sums(self, conn, conditions, day=None):
        """Sum the points that match ``conditions``, per (day, series).

        For a delete (its points' sums leave the rollup) and a roll-up
        (they enter it). Plain sums first; split ones if SQLite's overflow.

        :param day: the day (microseconds) when the conditions hold the
            points to one day: they are then grouped by series alone.
        :returns: ``(count, qty_big, qty_small, qty_lo, price_big,
            price_small, price_lo, day, series_id)`` tuples.
        """
        try:
            return self._split_day_sums(conn, conditions, False, day)
        except _Overflow:
            return self._split_day_sums(conn, conditions, True, day)

    def _split_day_sums(self, conn, conditions, split, day=None):
        """:meth:`_day_sums`, with sums of split columns if ``split``."""
        point = models.point
        sums = [sa.func.count().label('n')]
        for name in _MONEY_COLUMNS:
            sums += _sum(point.c[name], name, split)
        keys = [point.c.series_id]
        if day is None:
            keys.insert(0, rollup.day_sql(point.c.begin).label('day'))
        stmt = sa.select(*keys, *sums).where(*conditions).group_by(*keys)
        rows = _fetch_sums(conn, stmt, split)
        if day is not None:
            rows = [(day,) + tuple(row) for row in rows]
        if split:
            rows = [row[:3] + tuple(_unsplit(row[i:i + 2])
                                    for i in range(3, 11, 2))
                    for row in rows]
        limbs, join = rollup.limbs, models.join
        return [(count,) + limbs(join(qty_hundreds, qty_rest))
                + limbs(join(price_hundreds, price_rest)) + (day, series_id)
                for day, series_id, count, qty_hundreds, qty_rest,
                price_hundreds, price_rest in rows]


def _partials(rows, key_groupby, time, extremes, split, unsortable):
    """Build the partial groups of the aggregate's rows, in one loop.

    A row starts with the group's values (the type for ``type``, the text
    and kind of the label for any other key), then its frame's bounds
    when grouped by time, its count, the sums of the money members of
    :data:`_LIMBS` (qty's, then price's; each a pair when ``split``) and
    the ``extremes``. A total by id builds 10,000 groups or more.

    :param unsortable: turns an extreme back into its Decimal (see
        :meth:`SQLAlchemyStorage._unsortable`).
    :returns: a list of :class:`cloudkitty.storage.v2.query.Partial`,
        without the rows of no point.
    """
    if not time and not extremes and not split:
        return query_mod.partials_of_groups(_plain_groups(rows, key_groupby))
    keys_at, index = _keys_at(key_groupby)
    time_at = index if time else None
    count_at = index + (2 if time else 0)
    sums_at = count_at + 1
    members = 2 * len(_LIMBS)
    extremes_at = sums_at + members * (2 if split else 1)
    w0, w1, w2, w3 = _WEIGHTS
    decode = query_mod.decode_label
    aggregate, partial = query_mod.Aggregate, query_mod.Partial
    partials = []
    for row in rows:
        count = row[count_at]
        if not count:
            continue
        keys = tuple([row[at] if is_type else decode(row[at + 1], row[at])
                      for at, is_type in keys_at])
        start = end = None
        if time_at is not None:
            start = from_micros(row[time_at])
            end = from_micros(row[time_at + 1])
        if split:
            limbs = [_unsplit(row[at:at + 2])
                     for at in range(sums_at, extremes_at, 2)]
        else:
            # NOTE: NUMERIC sums come as Decimal: int() keeps them exact;
            # a source without a member gives None.
            limbs = [int(value or 0) for value in row[sums_at:extremes_at]]
        q0, q1, q2, q3, p0, p1, p2, p3 = limbs
        mins = maxs = None
        if extremes:
            mins, maxs = {}, {}
            for at, (func, field) in enumerate(extremes, extremes_at):
                (mins if func == 'min' else maxs)[field] = unsortable(
                    row[at])
        partials.append(partial(keys, start, end, aggregate(
            int(count), q0 * w0 + q1 * w1 + q2 * w2 + q3 * w3,
            p0 * w0 + p1 * w1 + p2 * w2 + p3 * w3, mins or None,
            maxs or None)))
    return partials


def _seek_pays(frames, series, points):
    """Tell whether seeking each (frame, series) beats a scan of the window.

    True when the seeks are fewer than the window's points over
    :data:`_SEEK_RATIO`.

    :param frames: the number of frame starts in the window.
    :param series: the number of series sought.
    :param points: the number of points in the window.
    """
    return frames * series * _SEEK_RATIO <= points


def _window_micros(query):
    """A query's ``(begin, end)`` in microseconds, None where unbounded."""
    return tuple(None if moment is None else to_micros(moment)
                 for moment in (query.begin, query.end))


def _series_params(query):
    """The shape of a query's series filter, and its parameters.

    :returns: ``((type sets, label filters), params)``: the arguments of
        :func:`_series_filter` and the values of its parameters.
    """
    type_sets = _type_sets(query)
    labels = [(key, values) for key, values in query.filters
              if key != 'type']
    params = {'b_types%d' % index: list(types)
              for index, types in enumerate(type_sets)}
    for index, (key, values) in enumerate(labels):
        params['b_key%d' % index] = key
        params['b_values%d' % index] = list(values)
    return (len(type_sets), len(labels)), params


@functools.lru_cache(maxsize=None)
def _series_filter(dialect, type_sets, labels):
    """The clauses on ``ck_series`` of a series filter of one shape.

    A series' type is in each of ``type_sets`` sets (parameters
    ``b_types<i>``), and for each of ``labels`` filters it has the label
    ``b_key<i>`` with one of the values ``b_values<i>`` (lists: see
    :func:`engine.in_values`). Built once per dialect and shape and given
    values per query (see :func:`_series_params`): building them cost
    about as much as running the statement that reads the series of a
    project to delete (0.15 ms on SQLite, measured).
    """
    series, label = models.series, models.label
    clauses = [engine_mod.in_values(dialect, series.c.type,
                                    'b_types%d' % index)
               for index in range(type_sets)]
    for index in range(labels):
        clauses.append(series.c.id.in_(sa.select(label.c.series_id).where(
            label.c.key == sa.bindparam('b_key%d' % index),
            engine_mod.in_values(dialect, label.c.value,
                                 'b_values%d' % index))))
    return tuple(clauses)


def _named_series_call(dialect, query, ranked=False):
    """Read the series a filtered query matches, by id, with their types.

    A filtered delete names the ids of its series instead of a subquery:
    planned with one, PostgreSQL walked the window's points and probed the
    labels of each (its statistics had not seen the last pushes' frames
    yet, and so guessed one point), 60 ms for the 102 points of one
    project among 10,200 (measured). The delete holds ``until``
    exclusively: no push interns a series meanwhile, so the ids are those
    the subquery would have found. Reads on PostgreSQL name them too (see
    :meth:`SQLAlchemyStorage._named_query`).

    :param ranked: read ``{series id: rank of its type}`` instead (see
        :class:`_NamedQuery`), for reads.
    :returns: an :class:`engine.Call` whose value is ``{series id:
        type}``, or None when it matches more than :data:`_DELETE_SERIES`
        series; or None when the query has no filter.
    """
    shape, params = _series_params(query)
    if not any(shape):
        return None
    params['b_limit'] = _DELETE_SERIES + 1
    return engine_mod.Call(_series_of_filter(dialect, *shape, ranked),
                           params, _named_or_none)


def _named_or_none(rows):
    named = dict(rows)
    return named if len(named) <= _DELETE_SERIES else None


def _named_ranks(query):
    """The table of a named query's ``(series_id, rank)`` (PostgreSQL).

    Two arrays unnested side by side, bound as two parameters whatever
    the number of series (see :class:`_NamedQuery`).
    """
    return sa.func.unnest(
        sa.bindparam('b_named_ids', list(query.series_ids),
                     type_=postgresql.ARRAY(sa.Integer)),
        sa.bindparam('b_named_ranks', list(query.type_ranks),
                     type_=postgresql.ARRAY(sa.Integer))).table_valued(
        'series_id', 'rank', name='named').render_derived()


@functools.lru_cache(maxsize=None)
def _series_of_filter(dialect, type_sets, labels, ranked=False):
    """The ``SELECT`` of the ids and types of a series filter's series.

    For :func:`_named_series_call`, built once per dialect and shape of
    :func:`_series_filter`; at most ``b_limit`` rows. ``ranked`` reads
    the rank of each one's type among theirs in the database's order of
    types (``dense_rank()``) instead of the type, which reads order by.
    """
    series = models.series
    second = sa.func.dense_rank().over(order_by=series.c.type) \
        if ranked else series.c.type
    return sa.select(series.c.id, second).where(
        *_series_filter(dialect, type_sets, labels)).limit(
        sa.bindparam('b_limit'))


def _type_sets(query):
    """The sets of types a query allows: a point's type is in each.

    :returns: ``metric_types`` (if given), then the values of each filter
        on ``type``.
    """
    sets = [] if query.metric_types is None else [query.metric_types]
    return sets + [values for key, values in query.filters if key == 'type']


def _with_labels(from_, series_id, key_groupby):
    """Join a FROM clause to what a groupby groups by.

    :param series_id: the series id column of ``from_``.
    :returns: the joined FROM clause and the group columns, in the
        groupby's order: the type for ``type`` (from ``ck_series``,
        joined only then: every point has its series), the text and kind
        of the label (``''`` and ``s`` when a series lacks it) for any
        other key.
    """
    group = []
    if 'type' in key_groupby:
        from_ = from_.join(models.series, models.series.c.id == series_id)
    for index, key in enumerate(key_groupby):
        if key == 'type':
            group.append(models.series.c.type.label('group_%d' % index))
            continue
        alias = models.label.alias('label_%d' % index)
        from_ = from_.outerjoin(alias, sa.and_(alias.c.series_id == series_id,
                                               alias.c.key == key))
        group += [sa.func.coalesce(alias.c.value, '').label(
            'group_%d_value' % index),
            series_mod.kind_of(alias).label('group_%d_kind' % index)]
    return from_, group


def _keys_at(key_groupby):
    """Where a row of sums holds each groupby key (see :func:`_partials`).

    :returns: ``([(index, is the type)], index of the count)``.
    """
    keys_at = []
    index = 0
    for key in key_groupby:
        keys_at.append((index, key == 'type'))
        index += 1 if key == 'type' else 2
    return keys_at, index


def _labels_of_series(inner, values, several, key_groupby):
    """The SELECT of a groupby's values and a plan's sums, per series.

    :param inner: the plan's sources, summed per series each.
    :param values: the sums (and extremes) of ``inner``'s columns, named
        after them.
    :param several: whether ``inner`` unites several sources, which are
        then summed per series first.
    """
    if several:
        inner = sa.select(inner.c.series_id, *values).group_by(
            inner.c.series_id).subquery('per_series')
    joined, group = _with_labels(inner, inner.c.series_id, key_groupby)
    return sa.select(*group, *[inner.c[value.name] for value in values]
                     ).select_from(joined)


def _plain_groups(rows, key_groupby):
    """The groups of rows without time, extremes or split sums.

    The common case, in a loop of its own; by one label (a total by id:
    a group per resource, 10,000 or more), compiled (see
    :data:`fastpath.label_groups`).

    :returns: ``(keys, count, qty, price)`` of each row of points (see
        :func:`query.build_merged_total`).
    """
    keys_at, count_at = _keys_at(key_groupby)
    decode = query_mod.decode_label
    if keys_at == [(0, False)]:
        return fastpath.label_groups(rows, _WEIGHTS, decode)
    w0, w1, w2, w3 = _WEIGHTS
    sums = slice(count_at + 1, count_at + 1 + 2 * len(_LIMBS))
    groups = []
    append = groups.append
    for row in rows:
        count = row[count_at]
        if not count:
            continue
        keys = tuple([row[at] if is_type else decode(row[at + 1], row[at])
                      for at, is_type in keys_at])
        # NOTE: a group of points has no NULL sum; NUMERIC sums come as
        # Decimal, which int() keeps exact.
        q0, q1, q2, q3, p0, p1, p2, p3 = map(int, row[sums])
        append((keys, int(count), q0 * w0 + q1 * w1 + q2 * w2 + q3 * w3,
                p0 * w0 + p1 * w1 + p2 * w2 + p3 * w3))
    return groups


def _point_row(series, begin, end, point):
    """Check a point's qty and price; return its ``ck_point`` row.

    :returns: ``(series, begin, end, qty_hundreds, qty_rest,
        price_hundreds, price_rest)`` (see :mod:`~cloudkitty.storage.v2.
        sqlalchemy.models`).
    :raises cloudkitty.storage.exceptions.InvalidQuery: as
        :func:`cloudkitty.storage.v2.money.check`, for values that are not
        finite or not below ``10**20``; more than 12 fractional digits are
        rounded there.
    """
    qty_units, price_units = _point_units(point[1], point[2],
                                          models.MAX_MAGNITUDE)
    qty_hundreds, qty_rest = divmod(qty_units, _HUNDRED)
    price_hundreds, price_rest = divmod(price_units, _HUNDRED)
    return (series, begin, end, qty_hundreds, qty_rest, price_hundreds,
            price_rest)


_point_units = money.point_units
_HUNDRED = models.HUNDRED


def _runs(frames):
    """Yield ``(begin, end, type, points)`` of each type of ``frames``.

    ``begin`` and ``end`` are the frame's bounds in microseconds; a push
    walks its points run by run, without a step per point.
    """
    for frame in frames:
        begin, end = to_micros(frame.start), to_micros(frame.end)
        for type_, points in frame.itertypes():
            yield begin, end, type_, points


def _narrow(query, left, by_start):
    """Narrow a page to the frame starts where it lies.

    :param left: the page's offset from the first of ``by_start``.
    :param by_start: ``[(begin, count)]`` in microseconds, ascending: the
        number of the query's points per frame start.
    :returns: ``query`` with the window from the frame start where the page
        begins to the one after its end, and the offset left in it; or
        None when the page is past the last point.
    """
    for index, (start, count) in enumerate(by_start):
        if left >= count:
            left -= count
            continue
        # NOTE: the page's end bounds what its query reads, whatever plan
        # the database picks.
        stop, need = query.end, left + query.limit
        for later, later_count in by_start[index:]:
            if need <= 0:
                stop = from_micros(later)
                break
            need -= later_count
        return dataclasses.replace(query, begin=from_micros(start), end=stop,
                                   offset=left)
    return None


def _delete_series_points(dialect, seek=False):
    """The ``DELETE`` of some series' points in a window, returning them.

    For :meth:`SQLAlchemyStorage._delete_returning`, built once per
    store, as the other statements of every delete are (see
    :func:`rollup.until`). Its parameters: ``b_begin`` and ``b_end``, the
    window in microseconds, and ``b_series``, the series' ids, sorted.

    :param seek: find the points by each ``(begin, end)`` of the window's
        frame starts (see :func:`frames.frame_pairs`) and series, where the
        index of the points leads with ``(begin, end, series_id)``
        (SQLite, see :attr:`SQLAlchemyStorage._joins_frames`): 0.3 ms
        instead of 1.3 for one project of a period of the benchmark, whose
        other 10,098 points of that frame the window's scan read
        (measured).
    """
    point = models.point
    if seek:
        pairs = frames_mod.frame_pairs(sa.bindparam('b_begin'),
                                       sa.bindparam('b_end'))
        window = [sa.tuple_(point.c.begin, point.c.end).in_(
            sa.select(pairs.c.begin, pairs.c.end).where(
                pairs.c.end.is_not(None)))]
    else:
        window = [point.c.begin >= sa.bindparam('b_begin'),
                  point.c.begin < sa.bindparam('b_end')]
    return point.delete().where(
        *window, engine_mod.in_ids(dialect, point.c.series_id,
                                   name='b_series')).returning(
        point.c.series_id, point.c.begin, point.c.end,
        *[point.c[name] for name in _MONEY_COLUMNS])


def _driver_rows(conn, stmt, params=None):
    """Run a SELECT; return the driver's row tuples.

    See :func:`engine.driver_rows`.

    :param params: the statement's parameters, if any.
    """
    return engine_mod.driver_rows(conn.execute(stmt, params), conn.dialect)


def _fetch_sums(conn, stmt, split):
    """Run a statement of sums; raise :class:`_Overflow` if they overflow.

    Plain sums are 64-bit: SQLite's ``sum()`` raises past 64 bits, and
    PostgreSQL's read sums are cast to ``BIGINT`` (see :func:`_sum`),
    which raises too. Only those are retried: split sums cannot
    overflow.
    """
    try:
        return _driver_rows(conn, stmt)
    except sa_exc.DBAPIError as exc:
        if not split and engine_mod.overflowed(exc):
            raise _Overflow() from exc
        raise


def _money_sums(source, split, cast=False):
    """The count and the sums of a source's money members, labelled.

    A member the source lacks is a literal 0, so that sources line up.

    :param cast: see :func:`_sum`.
    """
    counter = source.counter()
    if cast and source.count:
        counter = sa.cast(counter, sa.BigInteger)
    columns = [counter.label('n')]
    for column, name in source.money():
        if column is None:
            names = [name + '_div', name + '_mod'] if split else [name]
            columns += [sa.literal_column('0').label(n) for n in names]
        else:
            columns += _sum(column, name, split, cast)
    return columns


def _sum(column, name, split, cast=False):
    """The sum of a column, plain or split (see :func:`_unsplit`).

    :param cast: cast a plain sum to ``BIGINT`` (PostgreSQL's reads): it
        sums integers into NUMERIC, which its driver hands over as a
        Decimal each, and sums NUMERICs slower than integers. A sum past
        64 bits then raises, and the read is run again split.
    """
    if not split:
        total = sa.func.sum(column)
        if cast:
            total = sa.cast(total, sa.BigInteger)
        return [total.label(name)]
    # NOTE: // renders SQLite's integer division, which truncates like its
    # %, so that column == div * _SPLIT + mod holds exactly.
    return [sa.func.sum(column // _SPLIT).label(name + '_div'),
            sa.func.sum(column % _SPLIT).label(name + '_mod')]


def _unsplit(values):
    """Rebuild a sum from its one (plain) or two (split) summed parts."""
    # NOTE: PostgreSQL and MariaDB sum integers into NUMERIC, which the
    # drivers hand over as Decimal; int() keeps them exact, where Decimal
    # arithmetic would round to 28 digits.
    if len(values) == 1:
        return int(values[0] or 0)
    return int(values[0] or 0) * _SPLIT + int(values[1] or 0)
