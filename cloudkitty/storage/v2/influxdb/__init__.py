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
"""The InfluxDB 1.x backend (entry point ``influxdb``).

The data model is in :mod:`.encoding` (one ``rating`` point per rated
point, money as exact integers), the bookkeeping that replaces
transactions in :mod:`.writers` (leases), :mod:`.slots` (slots, frame
starts, receipts) and :mod:`.rollup` (daily records), the HTTP API in
:mod:`.client`. This module translates a validated
:class:`cloudkitty.storage.v2.query.Query` into InfluxQL, every value a
bound parameter and every identifier one this backend encoded itself:

* total() without filters, types nor keys to group by, and every ``time``
  groupby without them, sums the *frame totals* of the daily records;
  grouped by keys, filtered or by type, it sums their per-series entries
  in Python, exactly; parts of the window the records cannot answer are
  summed server-side from the points, grouped by tags and by ``time(1d)``
  (calendar groupbys) or ``time(<g>u, <offset>u)`` (``time``, where ``g``
  is the greatest common divisor of the gaps between frame starts);
  ``min`` and ``max`` read the points;
* retrieve() counts (frame totals, or InfluxDB for filtered queries),
  then reads whole frame starts in time order and sorts each by type and
  series in Python (InfluxDB orders by time only);
* delete() learns the sums of what it removes, deletes the points, and
  writes *corrections*: push records of the negated sums. Whole days
  without filters just lose their records; other windows without filters
  take their sums from the *frame log* (``ck_flog``, a copy of every push
  record that is never compacted, see :meth:`.rollup.Rollup.read_log`),
  so that they read no point; filtered deletes read the few points they
  remove.

Invariants the protocol keeps, and the tests that guard them
(``test_*`` of :mod:`cloudkitty.tests.storage.v2.base_functional`, or of
``cloudkitty/tests/storage/v2/influxdb/``):

1. **One writer per scope; a delete alone.** Every read-then-write step
   (slots, receipts, compactions, corrections) runs under a lease
   (:mod:`.writers`): a push holds its scope's, a delete everybody's.
   Guards: ``LeaseTest`` (test_writers_functional),
   ``test_concurrent_writers_lose_nothing``,
   ``test_concurrent_writers_same_labels``,
   ``test_deletes_racing_late_pushes_leave_no_ghosts``,
   ``test_processes_share_new_series_and_late_days``.
2. **A slot names one push for ever.** Slots of a scope and frame start
   are read from ``ck_frames`` under the lease (in the request of its
   last check), recorded before any point is written or in every request
   of points (which InfluxDB writes all or none within a shard), and
   never given back, not even by a delete, so two points never share a
   time and series, and a push record's id (its time and ``ck_n``) is
   unique.
   Each reservation is a point of its own: InfluxDB may give an older
   value of an overwritten point back (:mod:`.slots`). Guards:
   ``test_concurrent_writers_same_labels``,
   ``test_push_after_delete_by_another_instance``,
   ``test_reservations_never_overwrite_one_another``,
   ``test_slots_of_a_push_without_key_go_with_each_request``,
   ``test_then_is_read_with_the_last_check`` (test_writers_functional),
   ``StoreUnderSnapshotsTest`` (test_deletes_functional).
3. **A keyed retry writes the same points again.** The receipt is written
   before the points and fixes their slots and their layout (a push an
   earlier version began is completed in its layout, its points and its
   records: one per frame start where it took one slot): a retry rewrites
   identical points and records, which InfluxDB stores once. Guards:
   ``test_half_done_push_completed_by_its_retry``,
   ``test_retry_of_a_push_begun_in_the_older_layout``,
   ``test_retry_of_a_push_begun_with_one_record_per_frame``,
   ``test_retry_of_a_push_begun_with_plain_sums``,
   ``test_concurrent_retries_with_one_key_count_once``,
   ``test_retry_after_compaction_counts_once``.
4. **Push records follow their points.** A push that fails before its
   records are written is completed by its retry; records never count a
   point that was not written. Guard:
   ``test_half_done_push_completed_by_its_retry``. Once they are written,
   the push has landed: a server error in the compaction that follows
   is logged, and fails no push (retried without a key, it would count
   twice). Guards: ``test_crash_between_commit_and_drop_counts_once``,
   ``test_compactions_never_write_a_record_where_one_was``,
   ``test_legacy_records_read_compacted_and_deleted``.
5. **A commit is the only switch.** A compaction writes the day record to
   the buffer the commit does not point to, then the commit (listing the
   push records it includes, those of earlier compactions too), both at
   a new version of the day, then drops what it replaced; readers take
   the latest commit, and skip included push records and parts of other
   buffers and versions. No commit nor part is written where one was
   (InfluxDB may keep an older value of a point written again, see
   :func:`.rollup.next_version`). Guards:
   ``test_uncommitted_compaction_is_invisible``,
   ``test_crash_between_commit_and_drop_counts_once``,
   ``test_day_goes_on_after_compaction_from_memory``,
   ``test_compactions_never_write_a_record_where_one_was``,
   ``test_days_of_earlier_versions_go_on_at_new_versions``,
   ``VersionTest`` (test_rollup).
6. **Memory is trusted only for what the server shows unchanged.** A day
   is compacted from a writer's memory only when its listing is exactly
   the records that writer wrote and its own commit, told from others by
   its version and the records it includes
   (:func:`.rollup.commit_identity`): after a delete of the whole day,
   another writer's compaction commits the day again, at its first
   version. Guards: ``test_open_day_compacts_from_memory``,
   ``test_day_another_writer_pushed_into_is_read_back``,
   ``test_commit_another_writer_made_after_a_delete_is_read_back``,
   ``test_missing_part_makes_the_day_read_back``,
   ``test_deletes_racing_late_pushes_leave_no_ghosts``.
7. **Records name every series they count.** Digests resolve within the
   records of their scope and day (push records, day records); a day
   whose digests no record resolves is read from the points. Guard:
   ``test_open_day_names_each_series_once``,
   ``test_day_record_names_the_series_of_later_records``,
   ``test_missing_part_makes_the_day_read_back``.
8. **A delete leaves the records equal to the points.** Whole days of an
   unfiltered delete lose their records (and their frame log); elsewhere
   a correction at a slot of its own subtracts exactly the points
   removed: read from the points with filters, else from the frame log,
   whose records at a scope's frame start add up to what the records
   count there (a push writes each record and its copy in one request,
   after its points; a correction goes to both). A frame start that took
   slots but has no log record (pushed before the log existed) is read
   from the points. Guards: ``test_filtered_delete_corrects_days``,
   ``test_records_and_their_log_copies_go_in_one_request``,
   ``test_partial_day_delete_keeps_the_rest_of_the_day``,
   ``test_unfiltered_delete_reads_no_point``,
   ``test_unfiltered_delete_after_a_filtered_one``,
   ``test_delete_without_frame_log_reads_the_points``,
   ``test_deletes_racing_late_pushes_leave_no_ghosts``.
9. **Values are data.** Every time, type and filter value is a bound
   parameter. Guard: ``test_filter_value_is_never_influxql``.
10. **A DELETE of records empties every series it matches** in the
    shards it touches (InfluxDB would drop a series from its index when
    the rest of its points is being snapshotted; see :mod:`.rollup`).
    Guards: ``test_record_deletes_empty_every_series_they_match``,
    ``test_legacy_records_read_compacted_and_deleted``.
11. **A delete holds.** Every DELETE (of points, of records, a
    compaction's too) lists the series it matches first (an unfiltered
    delete of frames the frame log covers names them from the records
    instead, once it needs them), and when an InfluxDB cache snapshot met
    it, marks them back into the index and runs again: a snapshot would
    otherwise keep what it deleted, out of sight until the next write
    into its series (:mod:`.deletes`).
    Guards: ``DeletesHoldTest`` and ``StoreUnderSnapshotsTest``
    (test_deletes_functional), ``SettleTest`` (test_deletes),
    ``bench --reuse``.
12. **A reader survives a torn record.** InfluxDB keeps each field of a
    point on its own: a query running while a point is written or
    deleted can see some of its fields only (measured on influxd 1.6.7:
    31 of 103,723 commit rows read during a minute of compactions).
    Readers pass over a commit without its buffer, parts or included
    records (:func:`.rollup._torn`): the commit it replaces, or that
    replaced it, is whole, since a compaction deletes the old commit
    only once the new one is acknowledged. Guards:
    ``test_torn_commits_are_passed_over``,
    ``VersionTest.test_a_torn_commit_leaves_the_whole_one_the_switch``
    (test_rollup), ``test_processes_share_new_series_and_late_days``.
13. **A store writes alone into a day first.** InfluxDB 1.6 can hide,
    until it restarts, every point of one of two requests that reach a
    shard it creates for them at once; so a push's first write into a
    day this store has not written into yet is one point of ``ck_open``
    per such day, alone (:meth:`.slots.Bookkeeper.open_days`); before a
    lease mark, which the server stamps, the days around this machine's
    clock. Then any write that meets a shard InfluxDB creates is a
    ``ck_open`` point, which nothing reads. Guard:
    ``test_first_write_into_a_day_goes_alone``.

Known limits: a delete that dies between deleting its points and writing
its corrections leaves the records counting those points (the points are
gone, a retry finds nothing to correct); a writer stalled for longer than
:data:`.writers.TTL_S` loses its lease without knowing it; an unfiltered
delete subtracts, and reports, what the records count: the points of a
push that failed before writing its records and was never retried are
deleted without being counted (no record counted them either); a
delete that dies between marking series back into InfluxDB's index and
deleting again leaves the markers (:data:`.encoding.MARKER_FIELD`),
which no reader counts; where ``SHOW STATS`` is refused (no admin
rights), a DELETE that meets a cache snapshot may not hold.

What it cannot do is declared in :class:`InfluxDBFeatures`.
"""

import dataclasses
import datetime
import functools
import math
import time

from oslo_log import log

from cloudkitty.storage import exceptions
from cloudkitty.storage import v2
from cloudkitty.storage.v2 import bulk
from cloudkitty.storage.v2.influxdb import client as client_mod
from cloudkitty.storage.v2.influxdb import deletes
from cloudkitty.storage.v2.influxdb import encoding
from cloudkitty.storage.v2.influxdb import options
from cloudkitty.storage.v2.influxdb import rollup
from cloudkitty.storage.v2.influxdb import slots
from cloudkitty.storage.v2.influxdb import writers
from cloudkitty.storage.v2 import query as query_mod
from cloudkitty.storage.v2 import timeutils

LOG = log.getLogger(__name__)

MIN_NS, MAX_NS = encoding.MIN_NS, encoding.MAX_NS
_DAY_US = 86400 * 10 ** 6
#: Rows an unpaginated retrieve() reads per query: its answer holds them
#: all anyway, and each query costs a round trip and a frame start read
#: twice (see _frames_from).
UNPAGINATED_BATCH = 50000
#: More buckets than this for a ``time`` groupby are summed in Python.
MAX_TIME_BUCKETS = 100000
#: The fields a delete reads of the points it removes.
_DELETED_FIELDS = ', '.join('"%s"' % name for name in encoding.MONEY_FIELDS)
#: Counts of points: each has exactly one of encoding.COUNTED, so their
#: counts (``n0``, ``n1``...) add up to the points (see _counted).
_COUNTS = ', '.join('count("%s") AS "n%d"' % (name, index)
                    for index, name in enumerate(encoding.COUNTED))
_SUMS = ', '.join(['sum("%s") AS "%s"' % (name, name)
                   for name in encoding.MONEY_FIELDS] + [_COUNTS])
#: What a ``time`` groupby also reads: the longest frame of a bucket is
#: ``len``, or an hour when points without ``ck_len`` (``n`` > ``nlen``)
#: are among them (see encoding.DEFAULT_LENGTH_US).
_LENGTHS = 'max("{0}") AS "len", count("{0}") AS "nlen"'.format(
    encoding.LENGTH_FIELD)


class InfluxDBFeatures(v2.Features):
    """What the InfluxDB backend can do (see :class:`v2.Features`)."""

    exact_decimal = True
    groupby_time = True
    # NOTE: sum, avg and count come from the exact sums; min() and max()
    # cannot be computed over integer limbs, so they read the points.
    custom_fields = True
    delete_with_filters = True
    eventually_consistent = False
    # NOTE: InfluxDB has no transactions; a push is written in batches.
    atomic_push = False
    # NOTE: writers take turns per scope, deletes alone (writers.py).
    concurrent_writers = True
    # NOTE: a value's encoded form (up to 12 bytes per character) must fit
    # InfluxDB's 64 KiB series key.
    max_value_length = 4096
    idempotent_push = True
    # NOTE: fields are int64: see encoding.MAX_MAGNITUDE.
    max_magnitude = encoding.MAX_MAGNITUDE
    float_tolerance = 0


def to_ns(moment):
    """Return an aware datetime as ns since the epoch, in InfluxDB's range.

    :returns: the ns, or None when ``moment`` is None.
    """
    ns = timeutils.to_ns(moment)
    return None if ns is None else min(max(ns, MIN_NS), MAX_NS)


class InfluxDBStorage(v2.BaseStorage):
    """Rated data in InfluxDB 1.x (see the module docstring)."""

    name = 'influxdb'
    features = InfluxDBFeatures

    def __init__(self, conf=None, period=None):
        super().__init__(conf=conf, period=period)
        options.register_opts(self.conf)
        opts = self.conf.storage_influxdb
        if opts.version != 1:
            # NOTE: upstream CloudKitty's option also selects InfluxDB 2.x
            # (Flux, buckets and tokens), which this backend does not speak.
            raise exceptions.StorageError(
                'Storage backend influxdb speaks the InfluxDB 1.x API '
                '(InfluxQL) only: [storage_influxdb] version = %s is not '
                'supported (set it to 1)' % opts.version)
        self.client = client_mod.Client(opts)
        self.location = self.client.location
        self._rp = opts.retention_policy
        self.books = slots.Bookkeeper(self.client, self.source)
        self.rollup = rollup.Rollup(self.client, self.source)
        self.leases = writers.Leases(self.client, self.source,
                                     before_mark=self.books.open_now)
        # NOTE: learnt by init(); 0 means that the policy keeps everything.
        self._retention_ns = None

    def source(self, measurement):
        """Return the InfluxQL ``FROM`` target of a measurement."""
        return '%s.%s' % (encoding.quote_identifier(self._rp),
                          encoding.quote_identifier(measurement))

    # init ------------------------------------------------------------------

    def init(self):
        """Create the database and the retention policy; idempotent.

        With ``manage_retention_policy`` the policy's duration is set to
        ``[storage] retention_period``, and its shards to a week (see
        :func:`_shard_hours`); without, a policy whose shards do not
        divide a week gets a warning (see :mod:`.rollup`). The store then
        opens each day again before it writes into it (invariant 13):
        call it after dropping the database under a running store.
        """
        opts = self.conf.storage_influxdb
        database = encoding.quote_identifier(self.client.database)
        self.client.query('CREATE DATABASE %s' % database, database=False)
        # NOTE: a database dropped under this store is new: so are its
        # shards, and the days this store opened are gone.
        self.books.forget_opened_days()
        policies = {}
        shards = {}
        for part in self.client.query('SHOW RETENTION POLICIES ON %s'
                                      % database, database=False):
            for values in part['values']:
                row = dict(zip(part['columns'], values))
                policies[row['name']] = _duration_ns(row['duration'])
                shards[row['name']] = _duration_ns(
                    row.get('shardGroupDuration') or '0s')
        wanted = self.get_retention() // datetime.timedelta(hours=1)
        name = encoding.quote_identifier(self._rp)
        if opts.manage_retention_policy:
            verb = 'ALTER' if self._rp in policies else 'CREATE'
            # NOTE: a new shard duration applies to new shards only.
            if policies.get(self._rp) != wanted * 3600 * 10 ** 9 or \
                    shards.get(self._rp) != \
                    _shard_hours(wanted) * 3600 * 10 ** 9:
                self.client.query(
                    '%s RETENTION POLICY %s ON %s DURATION %dh%s SHARD '
                    'DURATION %dh' % (
                        verb, name, database, wanted,
                        ' REPLICATION 1' if verb == 'CREATE' else '',
                        _shard_hours(wanted)), database=False)
            policies[self._rp] = wanted * 3600 * 10 ** 9
            shards[self._rp] = _shard_hours(wanted) * 3600 * 10 ** 9
        elif self._rp not in policies:
            raise exceptions.StorageError(
                'InfluxDB at %s has no retention policy %s on %s, and '
                'manage_retention_policy is off' % (
                    self.location, name, database))
        self._retention_ns = policies[self._rp]
        week = rollup.WEEK_DAYS * rollup.DAY_NS
        if shards[self._rp] and week % shards[self._rp]:
            LOG.warning(
                'InfluxDB at %s: the shards of retention policy %s last '
                '%d h, which does not divide a week; deleting daily '
                'records may hide points of other days until the server '
                'restarts (see cloudkitty.storage.v2.influxdb.rollup)',
                self.location, name, shards[self._rp] // (3600 * 10 ** 9))

    def close(self):
        """Give the last lease back, close the pooled HTTP connections."""
        self.leases.close()
        self.client.close()

    def check_initialised(self):
        """Raise unless init() made the database and its policy.

        Only ``SHOW`` statements are sent: nothing is created.

        :raises cloudkitty.storage.exceptions.NotInitialised: when the
            database or the retention policy is missing.
        """
        database = self.client.database
        names = {values[0]
                 for part in self.client.query('SHOW DATABASES',
                                               database=False)
                 for values in part['values']}
        if database not in names:
            raise exceptions.NotInitialised(
                self.name, self.location, 'no database %s' % database)
        policies = {values[part['columns'].index('name')]
                    for part in self.client.query(
                        'SHOW RETENTION POLICIES ON %s'
                        % encoding.quote_identifier(database),
                        database=False)
                    for values in part['values']}
        if self._rp not in policies:
            raise exceptions.NotInitialised(
                self.name, self.location, 'no retention policy %s on %s'
                % (self._rp, database))

    def store_identity(self):
        """Return what names this store, whatever URL reached it.

        The server is named by its host name, process and start time as
        ``SHOW DIAGNOSTICS`` tells them (by the URL when it is refused),
        the store by its database and retention policy.

        :rtype: tuple
        """
        server = self.location
        try:
            found = {}
            for part in self.client.query('SHOW DIAGNOSTICS',
                                          database=False):
                for values in part['values'][:1]:
                    found[part['name']] = dict(zip(part['columns'],
                                                   values))
            system = found.get('system', {})
            network = found.get('network', {})
            if system.get('started'):
                server = (network.get('hostname'), system.get('PID'),
                          system['started'])
        except exceptions.StorageError as exc:
            if isinstance(exc, exceptions.BackendUnavailable):
                raise
            # NOTE: SHOW DIAGNOSTICS needs admin rights; the URL is
            # what is left to tell servers apart.
            server = self.location
        return ('influxdb', server, self.client.database, self._rp)

    def _retention(self):
        if self._retention_ns is None:
            self.init()
        return self._retention_ns

    # push ------------------------------------------------------------------

    def push(self, dataframes, scope_id=None, idempotency_key=None):
        """Store rated data (see ``BaseStorage.push``); not atomic.

        Everything is validated and encoded before the first point, slot
        or record is written; the scope's lease is taken meanwhile, and
        given back when the push is refused (see
        :meth:`.writers.Leases.hold_while`). A push that fails half-way
        may leave some of its points: retry it with the same
        ``idempotency_key`` to complete it without counting anything
        twice.
        """
        frames = query_mod.validate_dataframes(dataframes)
        key = query_mod.validate_idempotency_key(idempotency_key, self)
        if scope_id is not None:
            if not isinstance(scope_id, str):
                raise exceptions.InvalidQuery(
                    'scope_id', 'expected a str, got %s'
                    % type(scope_id).__name__, scope_id)
            query_mod.check_text(scope_id, 'scope_id')
        starts = self._frame_starts(frames)
        filled = [start for frame, start in zip(frames, starts) if len(frame)]
        if not filled:
            return
        scope_tag = encoding.encode_value(scope_id or '')
        with bulk.no_cyclic_gc():
            # NOTE: the lease is taken while the points are encoded; the
            # slots taken are read with its last check.
            with self.leases.hold_while(
                    functools.partial(self._prepare, frames, starts,
                                      scope_id), scope_tag,
                    then=self.books.reservations(
                        scope_tag, min(filled), max(filled))) as (
                    taken, (points, grouped)):
                self._push(points, grouped, taken, scope_tag, scope_id, key)
            # NOTE: freed while the collector is off: alive at its end, the
            # push's objects would all be walked by its first collection.
            del points, grouped

    def _prepare(self, frames, starts, scope_id):
        """Encode and plan a push, open its days; return both.

        :returns: ``(points, grouped)`` (see :func:`.slots.plan`).
        :raises InvalidQuery: for money out of range, before any write.
        """
        points = self._encode(frames, starts, scope_id)
        grouped = slots.plan(points)
        self.books.open_days(grouped)
        return points, grouped

    def _push(self, points, grouped, taken, scope_tag, scope_id, key):
        """Write encoded points, holding the lease of their scope.

        :param grouped: the points planned (see :func:`.slots.plan`).
        :param taken: the slots their frame starts took, read under the
            lease (see :meth:`.slots.Bookkeeper.take`).
        """
        receipt = stored = None
        if key is not None:
            receipt = slots.make_receipt(key, scope_id, points)
            stored = self.books.receipt(key)
            if stored is not None:
                slots.check_retry(stored, receipt)
        layout = slots.LAYOUT
        reservation = ()
        if stored is not None:
            bases = stored['bases']
            layout = stored.get('layout') or 1
            if layout < slots.SHORT_POINTS:
                # NOTE: begun by an earlier version: the points it may have
                # written are rewritten as they are, not merged with
                # fields of another layout into one point.
                points = [encoding.legacy_point(point) for point in points]
                grouped = slots.plan(points)
        else:
            bases, reservation = self.books.take(scope_tag, slots.needed(
                grouped, rollup.record_shares), taken)
            if receipt is not None:
                # NOTE: the slots a receipt fixes are taken before it.
                self.client.write(reservation)
                reservation = ()
                self.books.write_receipt(receipt, bases)
        # NOTE: the slots of a push without key are recorded in every
        # request of its points: none is written without them, and two
        # round trips are saved.
        wait = self.client.start_write(slots.lines(grouped, bases),
                                       len(points), with_each=reservation)
        try:
            # NOTE: a retry writes the records its first attempt may have
            # written: split only where its slots were taken for it, and
            # its sums in the same form.
            records = self.rollup.push_records(
                scope_tag, grouped, bases,
                split=layout >= slots.SPLIT_RECORDS,
                scaled=layout >= slots.SCALED_RECORDS)
            self.rollup.track(scope_tag, records)
        finally:
            wait()
        # NOTE: after the points: a push that fails before this line is
        # completed by its retry, which writes the same records again.
        # The open days learn the records while they travel.
        try:
            self.client.write_all(records.requests(), meanwhile=(
                functools.partial(self.rollup.remember, scope_tag, records)))
        except Exception:
            self.rollup.distrust(scope_tag, records)
            raise
        # NOTE: the push landed and its records count it: a compaction
        # only moves what reads parse. A server error in it fails no push,
        # whose retry without key would count it twice; the days it left
        # are exact as they are, and the next compaction takes them up.
        try:
            self.rollup.compact_before(scope_tag, max(grouped), min(grouped))
        except exceptions.StorageError:
            LOG.warning('InfluxDB at %s: compacting the days of scope %r '
                        'after a push failed; they stay exact, and wait '
                        'for the next compaction', self.location, scope_id,
                        exc_info=True)

    def _frame_starts(self, frames):
        """Check the times of frames; return their starts (ns).

        :raises InvalidQuery: for a start InfluxDB cannot keep, or a frame
            of points older than the retention policy keeps.
        """
        retention = self._retention()
        oldest = time.time_ns() - retention if retention else MIN_NS
        starts = []
        for frame in frames:
            start_ns = query_mod.to_micros(frame.start) * 1000
            if not MIN_NS <= start_ns <= MAX_NS - encoding.SLOTS:
                raise exceptions.InvalidQuery(
                    'dataframes', 'InfluxDB keeps times from 1677-09-22 to '
                    '2262-04-11 only, not %s' % frame.start.isoformat())
            if start_ns < oldest and len(frame):
                raise exceptions.InvalidQuery(
                    'dataframes', 'the frame starting at %s is older than '
                    'the retention policy keeps' % frame.start.isoformat())
            starts.append(start_ns)
        return starts

    @staticmethod
    def _encode(frames, starts, scope_id):
        """Encode the points of frames whose starts (ns) were checked."""
        scope_tag = (None if scope_id is None
                     else encoding.encode_value(scope_id))
        points = []
        for frame, start_ns in zip(frames, starts):
            length_us = query_mod.to_micros(frame.end) - start_ns // 1000
            points.extend(encoding.encode_points(
                start_ns, length_us, scope_tag, frame.iterpoints()))
        return points

    # conditions ------------------------------------------------------------

    @staticmethod
    def _where(query, begin_ns=None, end_ns=None):
        """Return ``(condition, params)`` selecting a query's points.

        :param begin_ns: overrides the query's begin (ns), when given.
        :param end_ns: overrides the query's end (ns), when given.
        """
        clauses = []
        params = {}
        begin_ns = to_ns(query.begin) if begin_ns is None else begin_ns
        end_ns = to_ns(query.end) if end_ns is None else end_ns
        if begin_ns is not None:
            clauses.append('time >= $begin')
            params['begin'] = begin_ns
        if end_ns is not None:
            clauses.append('time < $end')
            params['end'] = end_ns
        selectors = list(query.filters)
        if query.metric_types is not None:
            selectors.append(('type', query.metric_types))
        for index, (key, values) in enumerate(selectors):
            clauses.append(_any_of(
                encoding.tag_key_of(key), _tags_of(key, values), params,
                'v%d_' % index))
        return ' AND '.join(clauses), params

    def _raw_count(self, condition, params):
        where = ' WHERE ' + condition if condition else ''
        found = self.client.query('SELECT %s FROM %s%s' % (
            _COUNTS, self.source(encoding.MEASUREMENT), where), params)
        if not found:
            return 0
        return _counted(dict(zip(found[0]['columns'],
                                 found[0]['values'][0])))

    def _select(self, condition, params, extra='', limit=None):
        statement = 'SELECT * FROM %s WHERE %s%s' % (
            self.source(encoding.MEASUREMENT), condition, extra)
        if limit is not None:
            statement += ' LIMIT %d' % limit
        return self.client.rows(statement, params)

    # retrieve --------------------------------------------------------------

    def _frames_from(self, query, cursor, need, whole=True):
        """Read frame starts from ``cursor`` (ns) in time order.

        :param whole: False to read, of the last frame start, only the
            types that the first ``need`` rows reach (retrieve() pages).
        :returns: ``(rows, next_cursor)``: at least ``need`` raw rows
            unless the window ends first (then ``next_cursor`` is None),
            sorted in retrieve() order; :func:`_points` decodes them.
        """
        condition, params = self._where(query, begin_ns=cursor)
        rows = self._select(condition, params, limit=need)
        next_cursor = None
        if len(rows) == need:
            last = encoding.frame_start(rows[-1]['time'])
            rows = [row for row in rows if row['time'] < last]
            rest, rest_params = self._where(query, begin_ns=last,
                                            end_ns=last + 1000)
            if not whole:
                rest = self._first_types(rest, rest_params, need - len(rows))
            rows.extend(self._select(rest, rest_params))
            next_cursor = last + 1000
        return _sort_rows(rows), next_cursor

    def _first_types(self, condition, params, need):
        """Restrict a frame start's condition to the types ``need`` reach.

        Rows come by type within a frame start, so a page that ends in it
        needs its first types only (by name), not the whole frame start.
        """
        counts = sorted(
            (encoding.decode_value(part['tags'][encoding.TYPE_TAG]),
             part['tags'][encoding.TYPE_TAG],
             _counted(dict(zip(part['columns'], part['values'][0]))))
            for part in self.client.query(
                'SELECT %s FROM %s WHERE %s GROUP BY %s' % (
                    _COUNTS, self.source(encoding.MEASUREMENT), condition,
                    encoding.TYPE_TAG), params))
        types = []
        for _, type_tag, count in counts:
            types.append(type_tag)
            need -= count
            if need <= 0:
                break
        return '%s AND %s' % (condition, _any_of(encoding.TYPE_TAG, types,
                                                 params, 't'))

    def retrieve(self, begin=None, end=None, filters=None, metric_types=None,
                 offset=0, limit=1000, paginate=True):
        """Return rated points as DataFrames (see ``BaseStorage``).

        Without filters, a page is found through the daily records' frame
        totals and reads the points of its frame starts and types only.
        With filters, its cost grows with its offset: InfluxDB finds the
        offset's frame start by skipping points.
        """
        query = query_mod.validate_retrieve(
            begin, end, filters, metric_types, offset, limit, paginate)
        if paginate:
            page = self._page_by_frames(query)
            if page is not None:
                return page
        condition, params = self._where(query)
        total = self._count(query)
        if not paginate:
            rows = list(self._iter_rows(query, UNPAGINATED_BATCH))
            return query_mod.build_retrieve(total, rows)
        if offset >= total:
            return query_mod.build_retrieve(total, [])
        cursor = to_ns(query.begin)
        skipped = 0
        if offset:
            # NOTE: a row per point that has any of the fields selected.
            found = self.client.query(
                'SELECT %s FROM %s WHERE %s LIMIT 1 OFFSET %d' % (
                    ', '.join('"%s"' % name for name in encoding.COUNTED),
                    self.source(encoding.MEASUREMENT), condition, offset),
                params)
            cursor = encoding.frame_start(found[0]['values'][0][0])
            skipped = self._count(query, end_ns=cursor)
        rows, _ = self._frames_from(query, cursor, offset - skipped + limit,
                                    whole=False)
        first = offset - skipped
        return query_mod.build_retrieve(
            total, _points(rows[first:first + limit]))

    def _page_by_frames(self, query):
        """A page of a query without filters, through the frame totals.

        :returns: the retrieve() answer, or None when the totals do not
            cover the window (filters, or days compacted without them).
        """
        if query.filters:
            return None
        totals, raw = self.rollup.read_frames(to_ns(query.begin),
                                              to_ns(query.end))
        if raw or any(total.types is None for total in totals.values()):
            return None
        wanted = None
        if query.metric_types is not None:
            wanted = set(map(encoding.encode_value, query.metric_types))
        groups = []
        total = skipped = 0
        last = query.offset + query.limit
        for start in sorted(totals):
            for type_tag, count in sorted(
                    totals[start].types.items(),
                    key=lambda item: encoding.decode_value(item[0])):
                if wanted is not None and type_tag not in wanted:
                    continue
                if total + count <= query.offset:
                    skipped += count
                elif total < last:
                    groups.append((start, type_tag))
                total += count
        if not groups:
            return query_mod.build_retrieve(total, [])
        condition, params = self._where(query, groups[0][0],
                                        groups[-1][0] + 1000)
        condition += ' AND ' + _any_of(
            encoding.TYPE_TAG, sorted({g[1] for g in groups}), params, 'g')
        wanted_groups = set(groups)
        rows = _sort_rows([
            row for row in self._select(condition, params)
            if (encoding.frame_start(row['time']), row[encoding.TYPE_TAG])
            in wanted_groups])
        first = query.offset - skipped
        return query_mod.build_retrieve(
            total, _points(rows[first:first + query.limit]))

    def _iter_rows(self, query, batch_size):
        cursor = to_ns(query.begin)
        while cursor is not None:
            rows, cursor = self._frames_from(query, cursor, batch_size)
            yield from _points(rows)

    def iter_points(self, begin=None, end=None, filters=None,
                    metric_types=None, batch_size=1000):
        """Yield matching points in retrieve() order (see ``BaseStorage``).

        Reads ``batch_size`` points at a time, completed to whole frame
        starts, keyed on time: the cost of a batch does not grow with how
        far the iteration went.
        """
        query = query_mod.validate_iter_points(begin, end, filters,
                                               metric_types, batch_size)
        return self._iter_rows(query, batch_size)

    # total -----------------------------------------------------------------

    def total(self, groupby=None, begin=None, end=None, metric_types=None,
              filters=None, custom_fields=None, offset=0, limit=1000,
              paginate=True):
        """Return exact sums, grouped (see ``BaseStorage.total``).

        ``sum``, ``avg`` and ``count`` custom fields cost what a plain
        total() costs; ``min`` and ``max`` read every point of the window
        (InfluxDB cannot compare values split into limbs).
        """
        query = query_mod.validate_total(
            groupby, begin, end, metric_types, filters, custom_fields,
            offset, limit, paginate)
        begin_ns, end_ns = to_ns(query.begin), to_ns(query.end)
        if any(field.func in ('min', 'max') for field in query.fields):
            partials = self._partials_in_python(query, begin_ns, end_ns)
        elif query.time_groupby == 'time' or not (
                query.filters or query.metric_types is not None
                or query.key_groupby):
            # NOTE: what the frame totals answer, and a "time" groupby
            # (which reads the points where they cannot).
            partials, raw = self._frame_totals(query, begin_ns, end_ns)
            for low, high in raw:
                partials.extend(
                    self._frame_partials(query, low, high)
                    if query.time_groupby == 'time'
                    else self._raw_partials(query, low, high))
        else:
            entries, raw = self.rollup.read(begin_ns, end_ns)
            partials = self._rollup_partials(query, entries)
            for low, high in raw:
                partials.extend(self._raw_partials(query, low, high))
        return query_mod.build_total(query, partials)

    def _frame_totals(self, query, begin_ns, end_ns):
        """Partials per frame start from the daily records, where they can.

        :returns: ``(partials, raw)``, ``raw`` the parts of the window to
            read from the points. Frame totals know no labels: a query
            with filters, types or keys reads the points.
        """
        if query.filters or query.metric_types is not None \
                or query.key_groupby:
            return [], [(begin_ns, end_ns)]
        totals, raw = self.rollup.read_frames(begin_ns, end_ns)
        partials = []
        for start, total in totals.items():
            begin = query_mod.from_micros(start // 1000)
            partials.append(query_mod.Partial(
                (), begin, begin + datetime.timedelta(
                    microseconds=total.length),
                query_mod.Aggregate.from_units(total.count, total.qty,
                                               total.price)))
        return partials, raw

    def _frame_partials(self, query, begin_ns, end_ns):
        """Partials of a ``time`` groupby from the points of a window."""
        starts = self.books.frame_starts(begin_ns, end_ns)
        if not starts:
            return []
        bucket = _frame_buckets(starts)
        if bucket is None:
            return self._partials_in_python(query, begin_ns, end_ns)
        return self._raw_partials(query, starts[0], starts[-1] + 1000,
                                  bucket)

    def _raw_partials(self, query, begin_ns, end_ns, bucket=None):
        """Sum the points of a window server-side, grouped.

        :param bucket: ``(bucket_us, offset_us)`` of a ``time`` groupby;
            calendar groupbys bucket by day (weeks from Sunday are made
            of days, see :func:`query.calendar_value`).
        """
        entry = query.time_groupby
        if entry in query_mod.CALENDAR_KEYS:
            bucket = (_DAY_US, 0)
        group = []
        for key in query.key_groupby:
            tag = encoding.quote_identifier(encoding.tag_key_of(key))
            if tag not in group:
                group.append(tag)
        if bucket is not None:
            group.append('time(%du, %du)' % bucket)
        condition, params = self._where(query, begin_ns, end_ns)
        fields = _SUMS + (', ' + _LENGTHS if entry == 'time' else '')
        statement = 'SELECT %s FROM %s WHERE %s' % (
            fields, self.source(encoding.MEASUREMENT), condition)
        if group:
            statement += ' GROUP BY %s' % ', '.join(group)
        if bucket is not None:
            statement += ' fill(none)'
        partials = []
        for part in self.client.query(statement, params):
            found = part.get('tags') or {}
            keys = tuple(_group_value(k, found.get(encoding.tag_key_of(k)))
                         for k in query.key_groupby)
            columns = part['columns']
            for values in part['values']:
                row = dict(zip(columns, values))
                row['n'] = _counted(row)
                start = end = None
                if bucket is not None:
                    start = query_mod.from_micros(row['time'] // 1000)
                    end = start + datetime.timedelta(microseconds=(
                        _bucket_length(row) if entry == 'time'
                        else bucket[0]))
                partials.append(query_mod.Partial(
                    keys, start, end, _aggregate(row)))
        return partials

    def _rollup_partials(self, query, entries):
        """Sum daily records (see :meth:`.rollup.Rollup.read`) exactly."""
        wanted = [(encoding.tag_key_of(key),
                   frozenset(_tags_of(key, values)))
                  for key, values in query.filters]
        if query.metric_types is not None:
            wanted.append((encoding.TYPE_TAG, frozenset(
                map(encoding.encode_value, query.metric_types))))
        wanted = tuple(wanted)
        group_tags = tuple(encoding.tag_key_of(k) for k in query.key_groupby)
        by_time = query.time_groupby is not None
        groups = {}
        selected = {}
        for start_ns, values in entries:
            # NOTE: calendar groupbys need the day only; merged per day,
            # a correction cancels the series it corrects (see _corrections).
            start = rollup.day_of(start_ns) if by_time else None
            for key, count, qty, price in values:
                keys = selected.get(key, _UNKNOWN)
                if keys is _UNKNOWN:
                    keys = selected[key] = _group_of(key, wanted,
                                                     group_tags)
                if keys is None:
                    continue
                sums = groups.get((keys, start))
                if sums is None:
                    groups[(keys, start)] = [count, qty, price]
                else:
                    sums[0] += count
                    sums[1] += qty
                    sums[2] += price
        partials = []
        for (keys, start), (count, qty, price) in groups.items():
            if not count:
                continue
            if start is not None:
                start = query_mod.from_micros(start // 1000)
            keys = tuple(_group_value(key, tag)
                         for key, tag in zip(query.key_groupby, keys))
            partials.append(query_mod.Partial(
                keys, start, start, query_mod.Aggregate.from_units(
                    count, qty, price)))
        return partials

    def _count(self, query, begin_ns=None, end_ns=None):
        """Count a retrieve() query's points.

        Frame totals answer a query without filters or types. InfluxDB
        counts the others: their tags select few series, which costs less
        than reading every series of the daily records.
        """
        begin_ns = to_ns(query.begin) if begin_ns is None else begin_ns
        end_ns = to_ns(query.end) if end_ns is None else end_ns
        if query.filters or query.metric_types is not None:
            return self._raw_count(*self._where(query, begin_ns, end_ns))
        partials, raw = self._frame_totals(query, begin_ns, end_ns)
        count = sum(partial.aggregate.count for partial in partials)
        for low, high in raw:
            condition, params = self._where(query, low, high)
            count += self._raw_count(condition, params)
        return count

    def _partials_in_python(self, query, begin_ns, end_ns):
        """Partials read point by point, for what InfluxDB cannot sum.

        Reads every point of the window: for ``min``/``max`` custom
        fields, and for a ``time`` groupby whose frame starts share no
        common step (which a rating service never produces).
        """
        window = dataclasses.replace(
            query, begin=query_mod.from_micros(begin_ns // 1000),
            end=query_mod.from_micros(end_ns // 1000))
        for start, end, type_, point in self._iter_rows(window, 10000):
            agg = query_mod.Aggregate()
            agg.add_point(point)
            keys = tuple(query_mod.group_value(type_, point, k)
                         for k in query.key_groupby)
            yield query_mod.Partial(keys, start, end, agg)

    # delete ----------------------------------------------------------------

    def delete(self, begin=None, end=None, filters=None):
        """Delete the points of a window (see ``BaseStorage.delete``).

        Holds the lease on everything (see :mod:`.writers`): no push
        writes meanwhile.

        :returns: the number of points deleted.
        """
        query = query_mod.validate_delete(begin, end, filters)
        with self.leases.hold():
            return self._delete(query)

    def _delete(self, query):
        """Delete what a validated query selects; the lease is held.

        Whole days of a delete without filters lose their records with
        their points. Elsewhere each scope gets a *correction*: a push
        record of the negated sums of what it removes, at a slot of its
        own (see :meth:`_corrections`). Without filters those sums come from
        the frame log (:meth:`.rollup.Rollup.read_log`), as the records
        count them, so that no point is read; with filters (few points),
        or where the log cannot tell, from the points themselves.
        """
        begin_ns, end_ns = to_ns(query.begin), to_ns(query.end)
        self.books.forget(begin_ns, end_ns)
        stored = self.books.start_range()
        if stored is None:
            return 0
        low = stored[0] if begin_ns is None else max(begin_ns, stored[0])
        high = stored[1] + 1000
        if end_ns is not None:
            high = min(end_ns, high)
        if low >= high:
            return 0
        span = None
        if not query.filters:
            low, high = self._widen_to_days(low, high)
            span = rollup.whole_days(low, high)
        deleted = 0
        if span is not None:
            condition, params = self._where(query, *span)
            deleted = self._raw_count(condition, params)
        parts = ([(low, high)] if span is None
                 else rollup.outside(low, high, span))
        logged = []
        sums = {}
        taken = {}
        for part in parts:
            used = None if query.filters else self.books.used(*part)
            if used is not None and self.rollup.log_covers(*part, used):
                logged.append(part)
                taken.update(used)
                continue
            condition, params = self._where(query, *part)
            _add_sums(sums, _sums_of(self.client.query(
                'SELECT %s, *::tag FROM %s WHERE %s' % (
                    _DELETED_FIELDS, self.source(encoding.MEASUREMENT),
                    condition), params)))
        condition, params = self._where(query, low, high)
        statement = 'DELETE FROM %s WHERE %s' % (
            encoding.quote_identifier(encoding.MEASUREMENT), condition)
        if not logged and not deleted + _count(sums):
            return 0
        corrections = []

        def prepare():
            # NOTE: the log is not the points: InfluxDB deletes them
            # meanwhile. A log that fails to read leaves the delete
            # without corrections, as a crash after it would.
            for part in logged:
                _add_sums(sums, self.rollup.read_log(*part))
            corrections.extend(self._corrections(sums))

        named = None
        if span is None and logged == parts:
            # NOTE: the records name every series of these frame starts:
            # nothing to list unless a snapshot meets the DELETE.
            named = functools.partial(self._series_named, low, high, taken)
        deletes.delete(self.client, statement, params, (low, high),
                       meanwhile=prepare, named=named)
        deleted += _count(sums)
        if not deleted:
            return 0
        if span is not None:
            self.rollup.forget(*span)
        for requests in corrections:
            self.client.write_all(requests)
        return deleted

    def _series_named(self, low, high, taken):
        """The series an unfiltered delete of logged frames may match.

        Every series key the records of its days name
        (:meth:`.rollup.Rollup.series_named`), also with each ``ck_n``
        its frame starts' slots reached (see :func:`.encoding.point_line`).

        :param taken: ``{(scope tag, frame start): slots taken}`` of the
            window (:meth:`.slots.Bookkeeper.used`).
        """
        extra = (max(taken.values(), default=1) - 1) // encoding.SLOTS
        prefix = encoding.MEASUREMENT + ','
        return [prefix + key + encoding.extra_slot_tag(n)
                for key in sorted(self.rollup.series_named(low, high))
                for n in range(extra + 1)]

    def _widen_to_days(self, low, high):
        """Widen a window to the whole days it holds every frame start of.

        A delete without filters of every frame a day ever had (a purge
        that ends with the data, say) can drop the day's records, as for a
        whole day, rather than add corrections that reads would parse
        until a compaction drops them.

        :returns: ``(low, high)``, wider or not.
        """
        first = rollup.day_of(low)
        if first < low and not self.books.frame_starts(first, low):
            low = first
        last = rollup.day_of(high - 1) + rollup.DAY_NS
        if high < last and not self.books.frame_starts(high, last):
            high = last
        return low, high

    def _corrections(self, sums):
        """Take the slots of a delete's corrections and return their lines.

        A correction is a push record like any other (:mod:`.rollup`),
        whose counts and sums are negative: reads and compactions add it
        to the day's other records, which then count the points that are
        left. It takes a slot of the scope's frame start (:mod:`.slots`),
        so that no other record has its id, and goes to the frame log
        too. Its frame length is 0: the frame's own stays the longest.
        :meth:`_delete` calls this while InfluxDB deletes (slots are never
        given back: a delete that fails leaves them unused) and writes
        the corrections once the DELETE held.

        :param sums: ``{scope tag: {frame start: ({series key or digest:
            [count, qty, price]}, FrameTotal)}}`` of what was deleted
            (digests are named by the day's records, see
            :func:`.rollup.key_digest`).
        :returns: the write requests of each scope's corrections (see
            :meth:`.rollup.Records.requests`).
        """
        corrections = []
        for scope_tag, frames in sorted(sums.items()):
            negated = {}
            for start, (entries, total) in frames.items():
                types = total.types
                negated[start] = [(
                    {key: [-count, -qty, -price]
                     for key, (count, qty, price) in entries.items()},
                    rollup.FrameTotal(
                        -total.count, -total.qty, -total.price, 0,
                        None if types is None else
                        {tag: -count for tag, count in types.items()}))]
            self.rollup.drop_open(rollup.day_of(min(frames)),
                                  max(frames) + 1)
            bases = self.books.reserve(scope_tag, dict.fromkeys(frames, 1))
            corrections.append(self.rollup.records(
                scope_tag, negated, bases).requests())
        return corrections


def _count(sums):
    """The points counted by a delete's sums (see :func:`_add_sums`)."""
    return sum(total.count for frames in sums.values()
               for _, total in frames.values())


def _add_sums(sums, found):
    """Add the sums of a part of a delete's window to the others."""
    for scope_tag, frames in found.items():
        sums.setdefault(scope_tag, {}).update(frames)


def _sums_of(removed):
    """The sums of the points of a ``SELECT <money fields>, *::tag``.

    :returns: as :meth:`.rollup.Rollup.read_log`: ``{scope tag: {frame
        start: ({series key: [count, qty, price]}, FrameTotal)}}``.
    """
    sums = {}
    for part in removed:
        columns = part['columns']
        tags = sorted((column, index) for index, column in
                      enumerate(columns) if encoding.is_tag(column)
                      and column != encoding.EXTRA_SLOT_TAG)
        scope_at = columns.index(encoding.SCOPE_TAG) \
            if encoding.SCOPE_TAG in columns else None
        type_at = columns.index(encoding.TYPE_TAG)
        time_at = columns.index('time')
        limbs = [(columns.index(name), field, weight) for name, (
            field, weight) in encoding.MONEY_FIELDS.items()
            if name in columns]
        for values in part['values']:
            key = ','.join(['%s=%s' % (column, values[index])
                            for column, index in tags if values[index]])
            units = {'qty': 0, 'price': 0}
            for index, field, weight in limbs:
                units[field] += (values[index] or 0) * weight
            scope_tag = (scope_at is not None and values[scope_at]) \
                or encoding.encode_value('')
            start = encoding.frame_start(values[time_at])
            entries, total = sums.setdefault(scope_tag, {}).setdefault(
                start, ({}, rollup.FrameTotal(0, 0, 0, 0, {})))
            have = entries.setdefault(key, [0, 0, 0])
            have[0] += 1
            have[1] += units['qty']
            have[2] += units['price']
            total.count += 1
            total.qty += units['qty']
            total.price += units['price']
            type_tag = values[type_at]
            total.types[type_tag] = total.types.get(type_tag, 0) + 1
    return sums


def _any_of(tag, tag_values, params, prefix):
    """An InfluxQL condition: ``tag`` equals one of the encoded values.

    The values go into ``params`` (as ``<prefix><n>``), never into the
    text; the tag is an identifier this backend built.
    """
    alternatives = []
    for number, value in enumerate(tag_values):
        name = '%s%d' % (prefix, number)
        params[name] = value
        alternatives.append('%s = $%s' % (encoding.quote_identifier(tag),
                                          name))
    return '(%s)' % ' OR '.join(alternatives)


def _sort_rows(rows):
    """Sort raw rows in retrieve() order: start, type, series, slot.

    Markers a delete left (:data:`.encoding.MARKER_FIELD`) go.

    :returns: ``[(series, row)]`` in that order, each row with its
        :class:`.encoding.Series`, for :func:`_points`.
    """
    if any(row.get(encoding.MARKER_FIELD) for row in rows):
        rows = [row for row in rows if not row.get(encoding.MARKER_FIELD)]
    if not rows:
        return []
    series_of = encoding.SeriesReader(
        encoding.tag_columns(set().union(*rows)))
    keyed = [(series_of(row), row) for row in rows]
    keyed.sort(key=lambda item: (item[1]['time'] // 1000, item[0].type,
                                 item[0].order, item[1]['time']))
    return keyed


def _points(keyed):
    """Decode sorted rows into ``(start, end, type, DataPoint)``.

    :param keyed: what :func:`_sort_rows` returns, or a slice of it.
    """
    found = []
    append = found.append
    # NOTE: the frames of a response are few: their bounds, made once.
    bounds = {}
    for series, row in keyed:
        start = row['time'] // 1000
        length = row.get(encoding.LENGTH_FIELD)
        frame = bounds.get((start, length))
        if frame is None:
            frame = bounds[(start, length)] = (
                query_mod.from_micros(start), query_mod.from_micros(
                    start + encoding.frame_length(row)))
        append((frame[0], frame[1], series.type, series.point(row)))
    return found


_UNKNOWN = object()


@functools.lru_cache(maxsize=1 << 17)
def _group_of(key, wanted, group_tags):
    """The group tags of a series key, or None when filtered out.

    Cached across calls: every total() over the same days meets the same
    keys, and parsing them was a third of its time.

    :param wanted: ``((tag, frozenset of tags it may have), ...)``.
    :param group_tags: the tags to group by, in order.
    :returns: a tuple of tags (``''`` when absent), or None.
    """
    labels = encoding.parse_series_key(key)
    # NOTE: keys stay tags here: decoded, 1 and True would be one dict key.
    if not query_mod.selected(wanted, labels.get):
        return None
    return tuple(labels.get(tag) or '' for tag in group_tags)


def _frame_buckets(starts):
    """Return ``(bucket_us, offset_us)`` giving each frame start a bucket.

    Every gap between frame starts is a multiple of the bucket, and every
    start is a bucket start, so each bucket holds one frame start (and its
    slots, below a microsecond). Returns None when that takes
    more than :data:`MAX_TIME_BUCKETS` buckets.
    """
    micros = [start // 1000 for start in starts]
    step = 0
    for value in micros[1:]:
        step = math.gcd(step, value - micros[0])
    if step == 0:
        step = _DAY_US
    if (micros[-1] - micros[0]) // step + 1 > MAX_TIME_BUCKETS:
        return None
    return step, micros[0] % step


def _tags_of(key, values):
    """The tag values a filter on ``key`` (or the metric type) matches."""
    if key == 'type':
        return [encoding.encode_value(value) for value in values]
    return [tag for value in values for tag in encoding.filter_tags(value)]


def _group_value(key, tag):
    """The value a group's tag for ``key`` stands for (``''`` if absent)."""
    if key == 'type':
        return encoding.decode_value(tag) or ''
    return encoding.group_value(tag)


def _bucket_length(row):
    """The longest frame of a ``time`` bucket (see :data:`_LENGTHS`)."""
    if row['nlen'] == row['n']:
        return row['len']
    return max(row['len'] or 0, encoding.DEFAULT_LENGTH_US)


def _counted(row):
    """The points a row of :data:`_COUNTS` counts."""
    return sum(row.get('n%d' % index) or 0
               for index in range(len(encoding.COUNTED)))


def _aggregate(row):
    """The Aggregate of a row of :data:`_SUMS` (``n`` set by _counted)."""
    qty, price = encoding.money_units(row)
    return query_mod.Aggregate.from_units(row['n'], qty, price)


def _shard_hours(retention_hours):
    """The shard duration of the retention policy init() manages.

    A week whenever the retention is one at least: InfluxDB's DELETE
    works through every shard of the database, and with its own default
    (a day, for retentions up to six months) a delete of one period took
    twice as long at a million points (0.73-0.85 s against 0.34 s, in the
    same run as upstream's 0.36 s). Shorter retentions get InfluxDB's
    defaults. Each divides a week, as :mod:`.rollup` needs. Given
    explicitly because ALTER keeps the old one, which InfluxDB refuses
    when it is longer than the new retention.
    """
    if retention_hours < 48:
        return 1
    if retention_hours < 24 * 7:
        return 24
    return 24 * 7


def _duration_ns(text):
    """Parse an InfluxDB duration such as ``2400h0m0s`` (``0s``: forever)."""
    total = 0
    number = ''
    scale = {'h': 3600, 'm': 60, 's': 1}
    for char in text:
        if char.isdigit():
            number += char
        elif char in scale:
            total += int(number) * scale[char]
            number = ''
    return total * 10 ** 9
