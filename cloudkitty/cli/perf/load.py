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
"""``cloudkitty-storage load``: writers and readers at once, checked exactly.

:func:`run_load` starts ``writers`` processes that push into one store for
``seconds`` seconds while ``readers`` processes run total() in a loop, then
compares what the store holds with what the writers know they pushed. The
same function serves the ``load`` command (:class:`Load`) and the
functional test ``cloudkitty.tests.cli.test_load_functional``.

Every process is started with the ``spawn`` method and builds its own
storage object from a :class:`StorageSpec` (the same configuration files,
backend and connection URL), as separate services would.

Writers
    Writer ``w`` pushes one :class:`~cloudkitty.dataframe.DataFrame` per
    call, with ``scope_id`` and groupby ``project_id`` ``load-wNNN`` of its
    own, holding ``points_per_push`` points of two metric types over
    :data:`RESOURCES` resource ids per type (made by
    :func:`cloudkitty.cli.perf.workload.mixed_frame`). Each frame is one
    hour of the fixed window :data:`WINDOW_BEGIN` .. :data:`WINDOW_END`
    (March 2024); push ``i`` of writer ``w`` takes hour ``(i * writers + w)
    mod 744``, so the writers fill every day of the window and never share
    an hour at the same time. Each qty and price is a random exact Decimal
    with 0 to 12 fractional digits (prices may be negative). A writer adds a
    push to its exact sums (integers scaled by ``10**12``) only once push()
    returned; an exception is recorded with its traceback and the writer
    goes on.

Overlapping writers (``overlap``)
    Writer ``w`` pushes into one shared project, :data:`SHARED_PROJECT`
    (its ``scope_id`` too), so that every writer pushes the same series
    at the same time, each in an order of its own (the writer's random
    generator shuffles the points and the order of the types). Time is
    cut into generations of :data:`GENERATION_SECONDS` from the common
    start: a push's ``points_per_push`` points belong to series of its
    generation, new for every writer at once. Even pushes of a writer
    go into hour ``(i // 2) mod 744`` (push ``i``), moving forward (the
    SQL backend then rolls up the days before); odd ones push late data
    into the day before that one, already rolled up, at an hour drawn
    from the generation, so that writers add to the same rolled-up
    rows at once. Writers keep their exact sums as above; at the end
    the shared project must hold the sums of all of them.

Readers
    A reader runs ``total(groupby=['project_id'])`` over
    :data:`READ_BEGIN` .. :data:`READ_END`, a window that starts and ends
    inside a day, so that the SQL backend answers from its daily rollup for
    the whole days and from the points for the two partial days. It times
    every call and checks that each project's point count is a multiple of
    ``points_per_push`` (no push is ever seen in part) and that no count or
    qty sum ever decreases.

The end
    Once every writer has stopped, the readers are stopped and the
    coordinator compares ``total(groupby=['project_id'])`` sums and point
    counts, over the whole window and over the readers' window, with the
    writers' own sums: they must be equal (Decimal equality on backends
    with ``exact_decimal``, else within the backend's
    ``Features.float_tolerance``).

Example::

    result = run_load(StorageSpec(connection='sqlite:////tmp/load.sqlite'),
                      writers=4, readers=2, seconds=10)
    assert result.ok, result.errors + result.mismatches
    print(result.summary())
"""

import contextlib
import dataclasses
import datetime
import math
import multiprocessing
import queue
import random
import threading
import time
import traceback

from cliff import lister
from oslo_log import log

from cloudkitty.cli import args
from cloudkitty.cli import data
from cloudkitty.cli import main
from cloudkitty.cli.perf import scratch
from cloudkitty.cli.perf import workload
from cloudkitty.cli import rst
from cloudkitty.storage.v2 import money

LOG = log.getLogger(__name__)

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
#: Start of the window the writers push into (inclusive).
WINDOW_BEGIN = datetime.datetime(2024, 3, 1, tzinfo=UTC)
#: End of the writers' window (exclusive): 31 whole UTC days.
WINDOW_END = datetime.datetime(2024, 4, 1, tzinfo=UTC)
#: Hourly periods in the writers' window.
HOURS = (WINDOW_END - WINDOW_BEGIN) // HOUR
#: Start of the readers' window: 05:00 on the first day, so that its first
#: day is a partial one, read from the points.
READ_BEGIN = WINDOW_BEGIN + 5 * HOUR
#: End of the readers' window: 17:00 on the last day, a partial day too.
READ_END = WINDOW_END - 7 * HOUR
#: Resource ids per writer and type.
RESOURCES = 4
#: What the readers ask total() for: the sums and the count in one query,
#: so that the count and the sums come from the same snapshot.
READ_FIELDS = 'sum(qty) AS qty, sum(price) AS rate, count(qty) AS n'
#: Seconds the processes may take to start and open their storage.
START_TIMEOUT = 300
#: Seconds a writer may overrun ``seconds`` (one push may wait for a lock
#: up to ``[storage_sqlalchemy] busy_timeout``, 60 s by default).
WRITER_GRACE = 180
#: Seconds the readers may take to stop and report.
READER_GRACE = 120
#: Seconds the processes may take to exit once they reported.
EXIT_TIMEOUT = 30
#: The one project (and scope) of every writer in ``overlap`` mode.
SHARED_PROJECT = 'load-shared'
#: Seconds of a generation of series in ``overlap`` mode.
GENERATION_SECONDS = 0.5
#: Errors (and problems seen by a reader) kept per process; more are only
#: counted, so that a failure repeated at every call cannot fill memory.
KEPT_ERRORS = 10


@dataclasses.dataclass(frozen=True)
class StorageSpec:
    """How every process of a load run builds its own storage object.

    It is pickled to the spawned processes, so it holds plain values only.

    :ivar connection: overrides the backend's ``connection`` option.
    :ivar backend: overrides ``[storage] backend``.
    :ivar config_files: configuration files, read in order.
    :ivar config_dirs: configuration directories.
    """

    connection: str = None
    backend: str = None
    config_files: tuple = ()
    config_dirs: tuple = ()

    def open(self):
        """Build and initialise a new storage object.

        :rtype: cloudkitty.storage.v2.BaseStorage
        """
        conf = main.make_conf(self.config_files, self.config_dirs)
        return main.load_storage(conf, backend=self.backend,
                                 connection=self.connection, create=True)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The parameters of a run, as the spawned processes get them."""

    writers: int
    readers: int
    seconds: float
    points_per_push: int
    seed: int
    overlap: bool = False


def project_id(writer):
    """Return the ``project_id`` (and scope) of writer number ``writer``.

    :rtype: str
    """
    return 'load-w%03d' % writer


def percentile(values, percent):
    """Return the nearest-rank percentile of ``values`` (None if empty).

    :param values: numbers, in any order.
    :param percent: from 0 (excluded) to 100.
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def make_frame(rng, writer, start, size):
    """Build the frame of one push and its exact sums.

    :param rng: the writer's :class:`random.Random`.
    :param writer: the writer's number.
    :param start: the start of the frame's hour.
    :param size: the number of points.
    :returns: ``(frame, (count, qty units, price units))``, units being
        ``10**-12`` (see :func:`cloudkitty.cli.perf.workload.mixed_frame`).
    """
    project = project_id(writer)
    return workload.mixed_frame(
        rng, start, start + HOUR, project,
        lambda type_, number: '%s-%s-%d' % (project, type_,
                                            number % RESOURCES), size)


def overlap_hour(number, generation):
    """Return the hour (from :data:`WINDOW_BEGIN`) of a push, ``overlap``.

    :param number: the writer's count of pushes before this one. Even
        ones move forward an hour every two pushes; odd ones go back to
        the day before (late data).
    :param generation: the push's generation: it sets the late hour, the
        same for every writer in that day.
    """
    forward = (number // 2) % HOURS
    if number % 2 == 0 or forward < 24:
        return forward
    return (forward // 24 - 1) * 24 + generation % 24


def make_shared_frame(rng, generation, start, size):
    """Build a push of ``overlap`` mode and its exact sums.

    :param rng: the writer's :class:`random.Random`: it draws the amounts
        and the order of the points.
    :param generation: its series are those of this generation, the same
        for every writer.
    :param start: the start of the frame's hour.
    :param size: the number of points, each of its own series.
    :returns: as :func:`make_frame`.
    """
    return workload.mixed_frame(
        rng, start, start + HOUR, SHARED_PROJECT,
        lambda type_, number: '%s-g%d-%d' % (SHARED_PROJECT, generation,
                                             number), size, shuffle=True)


class _Report(dict):
    """What a process sends back: plain values, so that it pickles."""

    def __init__(self, role, index):
        super().__init__(role=role, index=index, errors=[], error_count=0,
                         tracebacks=[])

    def error(self, where, exc):
        """Record an exception; the first one keeps its traceback."""
        self['error_count'] += 1
        if len(self['errors']) < KEPT_ERRORS:
            self['errors'].append('%s %d: %s: %s: %s' % (
                self['role'], self['index'], where, type(exc).__name__, exc))
        if not self['tracebacks']:
            self['tracebacks'].append('%s %d, %s:\n%s' % (
                self['role'], self['index'], where, ''.join(
                    traceback.format_exception(exc))))


def _open_and_wait(spec, report, barrier):
    """Open a storage, then wait for every process; None on failure.

    The barrier is reached even when the storage cannot be opened, so that
    one failing process does not leave the others waiting for it.
    """
    store = None
    try:
        store = spec.open()
    except Exception as exc:
        report.error('opening the storage', exc)
    try:
        barrier.wait()
    except threading.BrokenBarrierError as exc:
        report.error('waiting for the start', exc)
        if store is not None:
            store.close()
        return None
    return store


def _run(spec, barrier, results, report, loop):
    """Open a storage, run ``loop(store)`` on it, close it; always report.

    Whatever happens, the coordinator gets ``report`` on ``results``.
    """
    try:
        store = _open_and_wait(spec, report, barrier)
        if store is not None:
            try:
                loop(store)
            finally:
                store.close()
    except Exception as exc:
        report.error('%s loop' % report['role'], exc)
    results.put(dict(report))


def _writer(spec, plan, index, barrier, results):
    """Child process: push for ``plan.seconds``; report the exact sums."""
    report = _Report('writer', index)
    report.update(pushes=0, sums=(0, 0, 0), read_sums=(0, 0, 0),
                  latencies=[], elapsed=0.0)
    _run(spec, barrier, results, report,
         lambda store: _push_loop(store, plan, index, report))


def _push_loop(store, plan, index, report):
    """Push frames until the deadline; keep the sums of successful ones."""
    rng = random.Random('%d-writer-%d' % (plan.seed, index))
    every, inside = [0, 0, 0], [0, 0, 0]
    latencies = report['latencies']
    scope = SHARED_PROJECT if plan.overlap else project_id(index)
    start = time.perf_counter()
    deadline = start + plan.seconds
    number = 0
    try:
        while time.perf_counter() < deadline:
            if plan.overlap:
                # NOTE: from the common start, so that every writer is in
                # the same generation at the same time.
                generation = int((time.perf_counter() - start)
                                 / GENERATION_SECONDS)
                hour = overlap_hour(number, generation)
                frame, sums = make_shared_frame(
                    rng, generation, WINDOW_BEGIN + hour * HOUR,
                    plan.points_per_push)
            else:
                hour = (number * plan.writers + index) % HOURS
                frame, sums = make_frame(rng, index,
                                         WINDOW_BEGIN + hour * HOUR,
                                         plan.points_per_push)
            begin = WINDOW_BEGIN + hour * HOUR
            number += 1
            before = time.perf_counter()
            try:
                store.push([frame], scope_id=scope)
            except Exception as exc:
                report.error('push %d (%s)' % (number, begin.isoformat()),
                             exc)
                continue
            latencies.append(time.perf_counter() - before)
            report['pushes'] += 1
            targets = ((every, inside) if READ_BEGIN <= begin < READ_END
                       else (every,))
            for target in targets:
                for position, value in enumerate(sums):
                    target[position] += value
    finally:
        # NOTE: even if the loop itself failed, the sums match the pushes
        # counted so far, so the final check stays meaningful.
        report.update(sums=tuple(every), read_sums=tuple(inside),
                      elapsed=time.perf_counter() - start)


def _reader(spec, plan, index, barrier, stop, results):
    """Child process: run total() until stopped; report latencies."""
    report = _Report('reader', index)
    report.update(latencies=[], problems=[], problem_count=0)
    _run(spec, barrier, results, report,
         lambda store: _read_loop(store, plan, stop, report))


def _read_loop(store, plan, stop, report):
    """Read until ``stop`` is set; check every answer on the way."""
    latencies = report['latencies']
    custom = bool(store.features.custom_fields)
    last = {}
    # NOTE: a safety net: the coordinator sets stop long before this.
    deadline = (time.perf_counter() + plan.seconds + WRITER_GRACE
                + READER_GRACE)
    while not stop.is_set() and time.perf_counter() < deadline:
        before = time.perf_counter()
        try:
            seen = read_sums(store, READ_BEGIN, READ_END, custom)
        except Exception as exc:
            report.error('read %d' % (len(latencies) + 1), exc)
            continue
        latencies.append(time.perf_counter() - before)
        for problem in check_read(seen, last, plan.points_per_push):
            report['problem_count'] += 1
            if len(report['problems']) < KEPT_ERRORS:
                report['problems'].append('reader %d, read %d: %s' % (
                    report['index'], len(latencies), problem))
        last = seen


def read_sums(store, begin, end, custom_fields=True):
    """Return ``{project_id: (count, qty, rate)}`` of a window.

    :param store: the storage to read.
    :param begin: start of the window.
    :param end: end of the window.
    :param custom_fields: the backend accepts ``custom_fields``: one
        total() call gives the sums and the counts together. Otherwise the
        counts come from one retrieve() per project.
    :rtype: dict
    """
    if custom_fields:
        answer = store.total(groupby=['project_id'], begin=begin, end=end,
                             custom_fields=READ_FIELDS, paginate=False)
        return {row['project_id']: (int(row['n']), row['qty'], row['rate'])
                for row in answer['results']}
    answer = store.total(groupby=['project_id'], begin=begin, end=end,
                         paginate=False)
    return {row['project_id']: (store.retrieve(
        begin=begin, end=end, filters={'project_id': row['project_id']},
        limit=1)['total'], row['qty'], row['rate'])
        for row in answer['results']}


def check_read(seen, last, points_per_push):
    """Check one read against the previous one of the same reader.

    :param seen: ``{project_id: (count, qty, rate)}`` just read.
    :param last: the previous read (``{}`` at first).
    :param points_per_push: the number of points of every push.
    :returns: a list of problems, as text; empty when all is well.
    """
    problems = []
    for project in sorted(set(seen) | set(last)):
        count, qty, _ = seen.get(project, (0, 0, 0))
        old_count, old_qty, _ = last.get(project, (0, 0, 0))
        if count % points_per_push:
            problems.append('%s: %d points, not a multiple of %d (a push '
                            'was seen in part)' % (project, count,
                                                   points_per_push))
        if count < old_count:
            problems.append('%s: %d points after %d' % (project, count,
                                                        old_count))
        if qty < old_qty:
            problems.append('%s: qty %s after %s' % (project, qty, old_qty))
    return problems


def compare(label, actual, expected, tolerance=0):
    """Compare the store's sums with the writers' sums.

    :param label: names the window in messages.
    :param actual: ``{project_id: (count, qty, rate)}``, from
        :func:`read_sums`.
    :param expected: ``{project_id: (count, qty units, price units)}``,
        units being ``10**-12``; projects without points are left out.
    :param tolerance: the backend's ``features.float_tolerance`` (0:
        Decimal equality), see :func:`cloudkitty.storage.v2.money.agrees`.
    :returns: the differences, as text; empty when equal.
    """
    mismatches = []
    for project in sorted(set(actual) | set(expected)):
        if project not in expected:
            mismatches.append('%s: unexpected group %s: %r'
                              % (label, project, actual[project]))
            continue
        if project not in actual:
            mismatches.append('%s: group %s is missing (%d points pushed)'
                              % (label, project, expected[project][0]))
            continue
        count, qty, rate = actual[project]
        want_count, qty_units, price_units = expected[project]
        want_qty = money.from_units(qty_units)
        want_rate = money.from_units(price_units)
        if (count != want_count
                or not money.agrees(qty, want_qty, tolerance)
                or not money.agrees(rate, want_rate, tolerance)):
            mismatches.append(
                '%s: %s holds %r points, qty=%r, rate=%r; the writer pushed '
                '%d points, qty=%s, rate=%s' % (
                    label, project, count, qty, rate, want_count, want_qty,
                    want_rate))
    return mismatches


def points_in_window(store):
    """Return the number of points in the load window of ``store``.

    :rtype: int
    """
    return data.count_points(store, WINDOW_BEGIN, WINDOW_END)


@dataclasses.dataclass
class LoadResult:
    """The figures and the findings of a :func:`run_load` run.

    :ivar backend: the backend and its URL scheme.
    :ivar writers: number of writer processes.
    :ivar readers: number of reader processes.
    :ivar seconds: how long each writer was asked to push.
    :ivar points_per_push: points of every push.
    :ivar elapsed: seconds of the longest writer run, the time base of the
        rates.
    :ivar pushes_by_writer: successful pushes of each writer.
    :ivar reads_by_reader: successful total() calls of each reader.
    :ivar push_latencies: seconds of every successful push().
    :ivar read_latencies: seconds of every successful total().
    :ivar errors: exceptions and process failures, as text.
    :ivar mismatches: reader problems and final differences, as text.
    :ivar tracebacks: the first traceback of each failing process.
    :ivar checked_points: points of the store compared with the writers'
        sums at the end.
    :ivar mode: ``own`` (each writer its own project and hours) or
        ``overlap`` (shared series and late data, see the module doc).
    """

    backend: str
    writers: int
    readers: int
    seconds: float
    points_per_push: int
    mode: str = 'own'
    elapsed: float = 0.0
    pushes_by_writer: list = dataclasses.field(default_factory=list)
    reads_by_reader: list = dataclasses.field(default_factory=list)
    push_latencies: list = dataclasses.field(default_factory=list)
    read_latencies: list = dataclasses.field(default_factory=list)
    errors: list = dataclasses.field(default_factory=list)
    mismatches: list = dataclasses.field(default_factory=list)
    tracebacks: list = dataclasses.field(default_factory=list)
    checked_points: int = 0

    @property
    def ok(self):
        """True when there was no error and no mismatch."""
        return not self.errors and not self.mismatches

    @property
    def pushes(self):
        """Successful pushes of all writers."""
        return sum(self.pushes_by_writer)

    @property
    def points(self):
        """Points of all successful pushes."""
        return self.pushes * self.points_per_push

    @property
    def reads(self):
        """Successful total() calls of all readers."""
        return sum(self.reads_by_reader)

    @property
    def pushes_per_second(self):
        """Successful pushes per second, all writers together."""
        return self.pushes / self.elapsed if self.elapsed else 0.0

    @property
    def points_per_second(self):
        """Points pushed per second, all writers together."""
        return self.points / self.elapsed if self.elapsed else 0.0

    def rows(self):
        """Return the figures as ``[(metric, value, unit)]``.

        Latencies are in seconds, rounded to the microsecond; a latency
        without any sample is None.
        """
        def seconds(value):
            return None if value is None else round(value, 6)

        rows = [('backend', self.backend, ''),
                ('mode', self.mode, ''),
                ('writers', self.writers, 'processes'),
                ('readers', self.readers, 'processes'),
                ('points_per_push', self.points_per_push, 'points'),
                ('elapsed', round(self.elapsed, 3), 's'),
                ('pushes', self.pushes, 'calls'),
                ('points', self.points, 'points'),
                ('push_rate', round(self.pushes_per_second, 1), 'pushes/s'),
                ('point_rate', round(self.points_per_second, 1),
                 'points/s')]
        for name, values in (('push', self.push_latencies),
                             ('read', self.read_latencies)):
            rows += [('%s_p50' % name, seconds(percentile(values, 50)), 's'),
                     ('%s_p95' % name, seconds(percentile(values, 95)), 's'),
                     ('%s_max' % name,
                      seconds(max(values) if values else None), 's')]
        rows += [('reads', self.reads, 'calls'),
                 ('min_pushes_per_writer',
                  min(self.pushes_by_writer, default=0), 'calls'),
                 ('min_reads_per_reader',
                  min(self.reads_by_reader, default=0), 'calls'),
                 ('checked_points', self.checked_points, 'points'),
                 ('errors', len(self.errors), ''),
                 ('mismatches', len(self.mismatches), '')]
        return rows

    def summary(self):
        """Return the figures, the errors and the mismatches as text."""
        lines = ['%s = %s %s' % row for row in self.rows()]
        lines += ['pushes_by_writer = %s' % self.pushes_by_writer,
                  'reads_by_reader = %s' % self.reads_by_reader]
        lines += ['error: %s' % e for e in self.errors]
        lines += ['mismatch: %s' % m for m in self.mismatches]
        return '\n'.join(line.rstrip() for line in lines) + '\n'


def run_load(spec, writers=8, readers=2, seconds=60.0, points_per_push=100,
             seed=0, overlap=False):
    """Run writers and readers against one store; check it at the end.

    :param spec: how each process builds its storage.
    :type spec: StorageSpec
    :param writers: writer processes (>= 1).
    :param readers: reader processes (>= 0).
    :param seconds: how long each writer pushes.
    :param points_per_push: points of every push (>= 1).
    :param seed: seed of the writers' random values.
    :param overlap: every writer pushes the same new series and late data
        into the same days (see the module doc), instead of its own.
    :returns: the figures and findings; :attr:`LoadResult.ok` tells whether
        the run was clean. Failures of the processes are reported there,
        not raised.
    :rtype: LoadResult
    :raises ValueError: for bad sizes, an in-memory SQLite database (which
        processes cannot share) or points already in the load window.
    """
    if writers < 1 or readers < 0 or points_per_push < 1 or seconds <= 0:
        raise ValueError('run_load needs writers >= 1, readers >= 0, '
                         'points_per_push >= 1 and seconds > 0')
    plan = _Plan(writers, readers, float(seconds), points_per_push, seed,
                 bool(overlap))
    store = spec.open()
    try:
        if store.describe().process_private:
            raise ValueError('%s lives in this process only and cannot be '
                             'shared by processes (for SQLite, use a file)'
                             % main.describe_store(store))
        found = points_in_window(store)
        if found:
            raise ValueError(
                'the store already holds %d points between %s and %s; the '
                'load test needs an empty window' % (
                    found, WINDOW_BEGIN.isoformat(), WINDOW_END.isoformat()))
        result = LoadResult(main.describe_store(store), writers, readers,
                            float(seconds), points_per_push,
                            'overlap' if overlap else 'own')
        reports = _run_processes(spec, plan, result)
        _gather(reports, plan, result)
        if all('sums' in reports.get(('writer', i), {})
               for i in range(writers)):
            # NOTE: checked even after failed pushes: push() is all or
            # nothing, so a failed one must have left nothing behind.
            _final_check(store, reports, plan, result)
    finally:
        store.close()
    return result


def _run_processes(spec, plan, result):
    """Start, run and collect the processes; return their reports.

    :returns: ``{(role, index): report}``; a process that did not report
        is recorded in ``result.errors`` instead.
    """
    context = multiprocessing.get_context('spawn')
    barrier = context.Barrier(plan.writers + plan.readers + 1,
                              timeout=START_TIMEOUT)
    stop = context.Event()
    results = context.Queue()
    processes = {}
    for index in range(plan.writers):
        processes[('writer', index)] = context.Process(
            target=_writer, args=(spec, plan, index, barrier, results),
            name='load-writer-%d' % index, daemon=True)
    for index in range(plan.readers):
        processes[('reader', index)] = context.Process(
            target=_reader, args=(spec, plan, index, barrier, stop, results),
            name='load-reader-%d' % index, daemon=True)
    reports = {}
    try:
        for process in processes.values():
            process.start()
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            result.errors.append('the processes did not all start within '
                                 '%d s' % START_TIMEOUT)
            stop.set()
        LOG.info('%d writers and %d readers started for %.0f s',
                 plan.writers, plan.readers, plan.seconds)
        writers = {key for key in processes if key[0] == 'writer'}
        _collect(processes, results, writers, reports,
                 time.monotonic() + plan.seconds + WRITER_GRACE)
        stop.set()
        _collect(processes, results, set(processes), reports,
                 time.monotonic() + READER_GRACE)
    finally:
        stop.set()
        # NOTE: a process that sent its report still needs a moment to
        # exit; one that did not is stuck and is terminated.
        deadline = time.monotonic() + EXIT_TIMEOUT
        for key, process in processes.items():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                result.errors.append('%s %d did not exit in time; '
                                     'terminated' % key)
                process.terminate()
                process.join(EXIT_TIMEOUT)
        results.close()
    return reports


def _collect(processes, results, wanted, reports, deadline):
    """Receive reports until those of ``wanted`` are in or time is up.

    A process that exited without a report is recorded as a report with
    an error, once the queue stayed empty after its exit was seen: its
    report, if any, was flushed to the queue before the process ended.
    """
    suspects = set()
    while set(wanted) - set(reports):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            report = results.get(timeout=min(1.0, remaining))
        except queue.Empty:
            for key in sorted(set(processes) - set(reports)):
                if processes[key].exitcode is None:
                    continue
                if key in suspects:
                    report = _Report(*key)
                    report['error_count'] = 1
                    report['errors'].append(
                        '%s %d exited with code %s without a report'
                        % (key + (processes[key].exitcode,)))
                    reports[key] = report
                suspects.add(key)
            continue
        reports[(report['role'], report['index'])] = report


def _gather(reports, plan, result):
    """Put the processes' reports together into ``result``."""
    for key in sorted(reports):
        report = reports[key]
        result.errors += report['errors']
        hidden = report['error_count'] - len(report['errors'])
        if hidden > 0:
            result.errors.append('%s %d: %d more errors' % (key + (hidden,)))
        result.tracebacks += report['tracebacks']
        if report['role'] == 'writer':
            result.pushes_by_writer.append(report.get('pushes', 0))
            result.push_latencies += report.get('latencies', [])
            result.elapsed = max(result.elapsed, report.get('elapsed', 0.0))
        else:
            result.reads_by_reader.append(len(report.get('latencies', [])))
            result.read_latencies += report.get('latencies', [])
            result.mismatches += report.get('problems', [])
            hidden = report.get('problem_count', 0) - len(
                report.get('problems', []))
            if hidden > 0:
                result.mismatches.append('reader %d: %d more problems'
                                         % (key[1], hidden))
    for role, count in (('writer', plan.writers), ('reader', plan.readers)):
        missing = [i for i in range(count) if (role, i) not in reports]
        if missing:
            result.errors.append('no report from %s(s) %s' % (
                role, ', '.join(str(i) for i in missing)))


def _final_check(store, reports, plan, result):
    """Compare the store with the writers' sums, over both windows.

    Each window is read twice: with the readers' custom fields (sums and
    counts) and, when the backend has custom fields, with the default
    fields too, which take another path in the backend.
    """
    tolerance = store.features.float_tolerance
    custom = bool(store.features.custom_fields)
    for label, begin, end, field in (
            ('whole window', WINDOW_BEGIN, WINDOW_END, 'sums'),
            ("readers' window", READ_BEGIN, READ_END, 'read_sums')):
        expected = {}
        for index in range(plan.writers):
            sums = reports[('writer', index)][field]
            if not sums[0]:
                continue
            project = SHARED_PROJECT if plan.overlap else project_id(index)
            known = expected.get(project, (0, 0, 0))
            expected[project] = tuple(a + b for a, b in zip(known, sums))
        try:
            actual = read_sums(store, begin, end, custom)
            plain = None
            if custom:
                plain = store.total(groupby=['project_id'], begin=begin,
                                    end=end, paginate=False)
        except Exception as exc:
            result.errors.append('final total() over the %s: %s: %s' % (
                label, type(exc).__name__, exc))
            result.tracebacks.append(''.join(traceback.format_exception(exc)))
            continue
        if begin == WINDOW_BEGIN:
            result.checked_points = sum(row[0] for row in actual.values())
        result.mismatches += compare(label, actual, expected, tolerance)
        if plain is not None:
            # NOTE: the counts come from the first read, taken after every
            # writer stopped, so they are the counts of this one too.
            plain = {row['project_id']: (
                actual.get(row['project_id'], (0,))[0], row['qty'],
                row['rate']) for row in plain['results']}
            result.mismatches += compare(label + ', default fields', plain,
                                         expected, tolerance)


class LoadFailed(RuntimeError):
    """The load run saw an error or a mismatch."""


class Load(rst.PlainHelp, lister.Lister):
    """Push from several processes while others read; check every sum.

    ``--writers`` processes push frames of ``--points-per-push`` points
    into March 2024 for ``--seconds`` seconds while ``--readers`` processes
    run total() in a loop over a window with partial days at both ends.
    Readers check that they never see part of a push and that counts never
    go down; at the end the sums and counts of every writer's project are
    compared exactly with what the writer pushed. Prints the figures; the
    exit code is non-zero when anything failed or differed. With
    ``--overlap`` every writer pushes the same new series and late data
    into the same rolled-up days, in orders of its own, and the shared
    project must hold the sums of all writers.

    The target is a new SQLite file in a temporary directory (removed
    afterwards unless ``--keep``), or the file given with ``--database``.
    With ``--config-file``, ``--config-dir``, ``--backend`` or
    ``--connection`` (and no ``--database``) it is the configured backend,
    whose March 2024 must be empty; the pushed data is deleted afterwards
    unless ``--keep``.
    """

    #: Set by take_action() when the run failed; raised after the output.
    _failure = None

    #: Long work: its INFO messages report progress (see
    #: :meth:`cloudkitty.cli.main.StorageApp._console_level`).
    progress_logs = True

    def get_parser(self, prog_name):
        """Return the parser of ``load``'s own options.

        :rtype: argparse.ArgumentParser
        """
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--writers', type=args.positive_int, default=8, metavar='N',
            help='Writer processes (default: 8).')
        parser.add_argument(
            '--readers', type=args.non_negative_int, default=2, metavar='R',
            help='Reader processes (default: 2).')
        parser.add_argument(
            '--seconds', type=args.positive_float, default=60.0, metavar='S',
            help='How long the writers push (default: 60).')
        parser.add_argument(
            '--points-per-push', type=args.positive_int, default=100,
            metavar='K', help='Points in every push (default: 100).')
        parser.add_argument(
            '--overlap', action='store_true',
            help='Every writer pushes the same new series, and late data '
                 'into the same days already rolled up, each in an order '
                 'of its own (default: each writer its own project).')
        parser.add_argument(
            '--seed', type=int, default=0,
            help='Seed of the random quantities and prices (default: 0).')
        parser.add_argument(
            '--database', metavar='PATH', default=None,
            help='Load a new SQLite file at PATH (it must not exist) '
                 'instead of a temporary one or the configured backend.')
        parser.add_argument(
            '--keep', action='store_true',
            help='Keep the database and the pushed data afterwards.')
        return parser

    def _configured_spec(self):
        """The spec of the backend chosen by the global options."""
        opts = self.app.options
        return StorageSpec(connection=opts.connection, backend=opts.backend,
                           config_files=tuple(opts.config_files),
                           config_dirs=tuple(opts.config_dirs))

    @contextlib.contextmanager
    def _target(self, parsed_args):
        """Yield the spec of the store to load; clean it up afterwards."""
        keep = parsed_args.keep
        options = self.app.options
        if parsed_args.database is None and \
                self.app.uses_configured_backend():
            with self.app.opened_storage(create=True) as store:
                with scratch.empty_window(store, WINDOW_BEGIN, WINDOW_END,
                                          keep, 'load'):
                    yield self._configured_spec()
            return
        with scratch.new_sqlite_file(parsed_args.database, keep,
                                     'load') as path:
            yield StorageSpec(connection=main.sqlite_url(path),
                              backend='sqlalchemy',
                              config_files=tuple(options.config_files),
                              config_dirs=tuple(options.config_dirs))

    def take_action(self, parsed_args):
        """Run the load test.

        :returns: ``(('metric', 'value', 'unit'), rows)``.
        """
        self._failure = None
        with self._target(parsed_args) as spec:
            result = run_load(
                spec, writers=parsed_args.writers,
                readers=parsed_args.readers, seconds=parsed_args.seconds,
                points_per_push=parsed_args.points_per_push,
                seed=parsed_args.seed, overlap=parsed_args.overlap)
        for error in result.errors:
            LOG.error('%s', error)
        for trace in result.tracebacks:
            LOG.debug('%s', trace)
        for mismatch in result.mismatches:
            LOG.error('%s', mismatch)
        if not result.ok:
            self._failure = LoadFailed(
                'load failed: %d errors, %d mismatches (first: %s)' % (
                    len(result.errors), len(result.mismatches),
                    (result.errors + result.mismatches)[0]))
        return ('metric', 'value', 'unit'), result.rows()

    def run(self, parsed_args):
        """Print the figures, then fail if the run was not clean.

        :raises LoadFailed: after the output, on any error or mismatch,
            so that the exit code is non-zero.
        """
        code = super().run(parsed_args)
        if self._failure is not None:
            raise self._failure
        return code
