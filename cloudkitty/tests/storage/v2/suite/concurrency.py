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
"""Concurrency: threads and processes writing, reading and deleting."""

import concurrent.futures
import multiprocessing
import os
import queue
import random
import tempfile
import threading
import time
import uuid

from oslo_config import cfg

from cloudkitty import storage
from cloudkitty.storage.v2 import query
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import D
from cloudkitty.tests.storage.v2.suite.common import DAY
from cloudkitty.tests.storage.v2.suite.common import expect
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import requires
from cloudkitty.tests.storage.v2.suite.common import T0


class ConcurrencyTests:
    """Several writers, each with its own storage instance, at once (rule 9).

    Threads share nothing but the store: each gets an instance of its own
    from :meth:`~.base.StorageTestBase.make_storage`; processes build
    theirs from :meth:`~.base.StorageTestBase.process_settings` with
    :func:`spawned_storage`. Needs ``concurrent_writers``.

    Data: each test pushes its own points under fresh project ids and reads
    back only those, but each racing deleter deletes by window alone, which
    reaches every scope of the store: parallel workers need a database
    each. ``cleanup_backend()`` runs after every test.
    """

    #: Pushes per writer, and deletes, of the racing delete test.
    racing_rounds = 30

    @requires('concurrent_writers')
    def test_concurrent_writers_lose_nothing(self):
        """Rule 9: concurrent pushes from many instances all land."""
        per_push = 10

        def make_frames(writer, push):
            return [builders.make_frame(T0 + push * HOUR, [
                ('cpu', builders.make_point(
                    self.project_id, 1, D(writer + 1) / 1000,
                    metadata={'writer': str(writer), 'n': str(n)}))
                for n in range(per_push)])]

        self._run_writers(make_frames)
        count = self.pushes_per_writer * per_push
        self.assertEqual(self.writers * count, self.retrieve(
            begin=T0, end=T0 + DAY, limit=1)['total'])
        self.assertTotalEqual({'total': self.writers, 'results': [
            expect(T0, T0 + DAY, count, D(count * (writer + 1)) / 1000,
                   writer=str(writer))
            for writer in range(self.writers)]},
            self.totals(begin=T0, end=T0 + DAY, groupby=['writer']))

    @requires('concurrent_writers')
    def test_concurrent_writers_same_labels(self):
        """Rule 9: identical points pushed at once are all counted."""
        point = builders.make_point(self.project_id, 1, D('0.1'),
                                    groupby={'flavor': 'shared'},
                                    metadata={'az': 'shared'})

        def make_frames(writer, push):
            return [builders.make_frame(T0, [('cpu', point)] * 3)]

        self._run_writers(make_frames)
        count = self.writers * self.pushes_per_writer * 3
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + HOUR, count, D(count) / 10)]},
            self.totals(begin=T0, end=T0 + HOUR))

    @requires('concurrent_writers')
    def test_deletes_racing_late_pushes_leave_no_ghosts(self):
        """Rule 9: a day deleted while late data lands reads consistently.

        Two writers push late data into a day while a third instance
        deletes that day again and again. Afterwards total() (which a
        backend may answer from per-day sums) and retrieve() (the points
        themselves, and their count) must agree: no sum of a deleted
        point may stay behind, nor one of a stored point go missing.
        """
        day = T0 + 2 * DAY
        self.push([builders.make_frame(T0 + 5 * DAY, [
            ('cpu', builders.make_point(self.project_id, 1, 1))])])
        stores = [self.make_storage() for _ in range(3)]
        barrier = threading.Barrier(len(stores))

        def push(store, writer):
            barrier.wait(timeout=60)
            for index in range(self.racing_rounds):
                store.push([builders.make_frame(
                    day + index % 24 * HOUR, [
                        ('cpu', builders.make_point(
                            self.project_id, writer + 1, D(index + 1) / 10,
                            groupby={'res': str(series)}))
                        for series in range(10)])], scope_id=self.scope_id)

        def delete(store):
            barrier.wait(timeout=60)
            for _ in range(self.racing_rounds):
                store.delete(begin=day, end=day + DAY)

        with concurrent.futures.ThreadPoolExecutor(len(stores)) as pool:
            futures = [pool.submit(push, stores[0], 0),
                       pool.submit(push, stores[1], 1),
                       pool.submit(delete, stores[2])]
            for future in futures:
                future.result(timeout=300)
        self.wait_for_backend()
        window = {'begin': day, 'end': day + DAY}
        points = [point for frame in self.retrieve(
            paginate=False, **window)['dataframes']
            for _, point in frame.iterpoints()]
        self.assertEqual(len(points), self.retrieve(limit=1,
                                                    **window)['total'])
        totals = self.totals(**window)['results']
        self.assertEqual(
            [(sum((p.qty for p in points), D(0)),
              sum((p.price for p in points), D(0)))] if points else [],
            [(row['qty'], row['rate']) for row in totals if row['qty']])

    @requires('concurrent_writers')
    def test_processes_share_new_series_and_late_days(self):
        """Rule 9: processes sharing new series and late days all land.

        :data:`OVERLAP_WRITERS` processes push, round after round and all
        at once, the same new series into a day already rolled up and
        into a later one, each in a point and frame order of its own
        (:func:`overlap_frames`), while another process runs total() and
        a third pushes into and deletes (or purges) another window. Every
        push must succeed, and the store hold exactly what was pushed.
        """
        seed = [builders.make_frame(OVERLAP_SEED, [
            ('cpu', builders.make_point(self.project_id, 1, 1))])]
        self.push(seed)
        deleted_project = self.new_project_id()
        context = multiprocessing.get_context('spawn')
        barrier = context.Barrier(OVERLAP_WRITERS, timeout=PROCESS_TIMEOUT)
        stop = context.Event()
        results = context.Queue()
        settings = self.process_settings()
        processes = [context.Process(target=overlap_writer, args=(
            settings, writer, self.project_id, self.scope_id, barrier,
            results)) for writer in range(OVERLAP_WRITERS)]
        processes.append(context.Process(target=overlap_reader, args=(
            settings, self.project_id, stop, results)))
        processes.append(context.Process(target=overlap_deleter, args=(
            settings, deleted_project, str(uuid.uuid4()), stop, results)))
        reports = self._run_processes(processes, stop, results)
        errors = [error for _, _, _, found in reports.values()
                  for error in found]
        self.assertEqual([], errors)
        acked = {index: rounds for (role, index), (_, _, rounds, _)
                 in reports.items() if role == 'writer'}
        self.assertEqual({writer: list(range(OVERLAP_ROUNDS))
                          for writer in range(OVERLAP_WRITERS)}, acked)
        self.assertGreater(reports[('reader', 0)][2], 0)
        self.wait_for_backend()
        frames = seed + [
            frame for writer, rounds in acked.items() for round_ in rounds
            for frame in overlap_frames(self.project_id, writer, round_)]
        window = {'begin': T0, 'end': T0 + 7 * DAY}
        self.assertOracle(frames, groupby=['res'], **window)
        self.assertOracle(frames, groupby=['type', 'round'], **window)
        self.assertEqual(
            1 + 2 * OVERLAP_SERIES * OVERLAP_ROUNDS * OVERLAP_WRITERS,
            self.retrieve(limit=1, **window)['total'])
        self.assertEqual(0, self.retrieve(
            begin=OVERLAP_DELETED, end=OVERLAP_DELETED + DAY, limit=1,
            filters={'project_id': deleted_project})['total'])

    def _run_processes(self, processes, stop, results):
        """Start processes; collect one report each; stop the others.

        Once every writer reported, ``stop`` is set for the others. Waits
        are bounded by :data:`PROCESS_TIMEOUT`; a process still running
        then is terminated and the test fails.

        :returns: ``{(role, index): (role, index, value, errors)}``.
        """
        for process in processes:
            process.start()
            self.addCleanup(process.join, 10)
            self.addCleanup(process.terminate)
        reports = {}
        deadline = time.monotonic() + PROCESS_TIMEOUT
        try:
            while len(reports) < len(processes):
                if sum(1 for role, _ in reports if role == 'writer') \
                        == OVERLAP_WRITERS:
                    stop.set()
                report = results.get(
                    timeout=max(1, deadline - time.monotonic()))
                reports[report[:2]] = report
        except queue.Empty:
            self.fail('processes still running after %d s; reports: %r'
                      % (PROCESS_TIMEOUT, reports))
        finally:
            stop.set()
        for process in processes:
            process.join(PROCESS_TIMEOUT)
        return reports


#: Writer processes of the overlap test, and the pushes of each.
OVERLAP_WRITERS = 4


OVERLAP_ROUNDS = 8


#: New series of each round, all pushed by every writer.
OVERLAP_SERIES = 250


#: The day the overlap test rolls up before its writers push into it.
OVERLAP_LATE = T0 + 2 * DAY


#: A push here, before the writers start, puts OVERLAP_LATE in the past.
OVERLAP_SEED = T0 + 5 * DAY


#: The writers' other frames, after the seed: they move the rollup on.
OVERLAP_NEXT = T0 + 6 * DAY


#: The window the deleter process pushes into and deletes, and the end of
#: its purges (every month before the writers' one).
OVERLAP_DELETED = T0 - 28 * DAY


OVERLAP_PURGE_END = query.month_start(T0)


#: Seconds a process may take to start, and a whole run to end.
PROCESS_TIMEOUT = 600


def spawned_storage(settings):
    """Build and initialise a storage in a spawned process.

    The option values are handed over as a configuration file, which
    oslo.config also reads for options registered later: those of a
    third-party backend, which registers its own.

    :param settings: what :meth:`BaseFunctionalStorageTest.process_settings`
        returned.
    """
    sections = {}
    for group, name, value in settings['options']:
        sections.setdefault(group, []).append('%s = %s' % (
            name, _config_text(value)))
    fd, path = tempfile.mkstemp(suffix='.conf')
    try:
        with os.fdopen(fd, 'w') as config_file:
            for group, lines in sorted(sections.items()):
                config_file.write('[%s]\n%s\n' % (group, '\n'.join(lines)))
        conf = cfg.ConfigOpts()
        for group, opts in storage.list_opts():
            conf.register_opts(opts, group=group)
        conf(args=[], default_config_files=[path])
    finally:
        os.unlink(path)
    store = storage.get_storage(conf=conf, backend=settings['backend'],
                                version=settings['version'])
    store.init()
    return store


def _config_text(value):
    """An option value as a configuration file writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ','.join(str(item) for item in value)
    if isinstance(value, dict):
        return ','.join('%s:%s' % item for item in sorted(value.items()))
    return str(value)


def overlap_frames(project_id, writer, round_):
    """The frames of one push of the overlap test, the same in any process.

    Every writer pushes, in round ``round_``, one point of each of the
    round's :data:`OVERLAP_SERIES` new series into a day already rolled
    up (late data) and one into a later day; each writer shuffles its
    points and its frames in an order of its own. Qty and price depend on
    the writer and the series.
    """
    rng = random.Random('%d-%d' % (writer, round_))
    frames = []
    for start in (OVERLAP_LATE + round_ % 24 * HOUR,
                  OVERLAP_NEXT + round_ % 24 * HOUR):
        points = [('cpu' if index % 3 else 'ram', builders.make_point(
            project_id, D(writer + 1), D(index + 1) / 100,
            groupby={'res': 'r%d-%03d' % (round_, index)},
            metadata={'round': str(round_)}))
            for index in range(OVERLAP_SERIES)]
        rng.shuffle(points)
        frames.append(builders.make_frame(start, points))
    rng.shuffle(frames)
    return frames


def _report(results, role, index, work):
    """Run ``work(errors)`` and put ``(role, index, value, errors)``."""
    errors = []
    value = None
    try:
        value = work(errors)
    except Exception as exc:
        errors.append('%s %d: %s: %s' % (role, index, type(exc).__name__,
                                         exc))
    results.put((role, index, value, errors))


def overlap_writer(settings, writer, project_id, scope_id, barrier,
                   results):
    """Spawned writer: push each round once all writers are ready.

    Reports the rounds whose push returned.
    """
    def work(errors):
        acked = []
        try:
            store = spawned_storage(settings)
        except Exception:
            barrier.abort()
            raise
        try:
            for round_ in range(OVERLAP_ROUNDS):
                frames = overlap_frames(project_id, writer, round_)
                barrier.wait()
                try:
                    store.push(frames, scope_id=scope_id)
                except Exception as exc:
                    errors.append('writer %d, round %d: %s: %s' % (
                        writer, round_, type(exc).__name__, exc))
                    continue
                acked.append(round_)
        except threading.BrokenBarrierError:
            errors.append('writer %d: another writer failed to start'
                          % writer)
        finally:
            store.close()
        return acked
    _report(results, 'writer', writer, work)


def overlap_reader(settings, project_id, stop, results):
    """Spawned reader: total() until stopped; qty never goes down."""
    def work(errors):
        store = spawned_storage(settings)
        reads, last = 0, D(0)
        try:
            deadline = time.monotonic() + PROCESS_TIMEOUT
            while not stop.is_set() and time.monotonic() < deadline:
                answer = store.total(begin=T0, end=T0 + 7 * DAY,
                                     filters={'project_id': project_id})
                reads += 1
                qty = sum((row['qty'] for row in answer['results']), D(0))
                if qty < last:
                    errors.append('reader: qty %s after %s' % (qty, last))
                last = qty
        finally:
            store.close()
        return reads
    _report(results, 'reader', 0, work)


def overlap_deleter(settings, project_id, scope_id, stop, results):
    """Spawned deleter: push into another window and delete it, in turns.

    Every other delete is a purge of every month before the writers'
    one. It goes on until stopped, at least twice, and ends with the
    window empty.
    """
    def work(errors):
        store = spawned_storage(settings)
        rounds = 0
        try:
            deadline = time.monotonic() + PROCESS_TIMEOUT
            while (rounds < 2 or not stop.is_set()) and \
                    time.monotonic() < deadline:
                store.push([builders.make_frame(
                    OVERLAP_DELETED + rounds % 24 * HOUR,
                    [('cpu', builders.make_point(project_id, 1, 1))] * 5)],
                    scope_id=scope_id)
                if rounds % 2:
                    store.delete(end=OVERLAP_PURGE_END)
                else:
                    store.delete(begin=OVERLAP_DELETED,
                                 end=OVERLAP_DELETED + DAY)
                rounds += 1
        finally:
            store.close()
        return rounds
    _report(results, 'deleter', 0, work)
