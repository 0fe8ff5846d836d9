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
"""Write leases (:mod:`cloudkitty.storage.v2.influxdb.writers`), for real.

Against the server of ``CLOUDKITTY_TEST_INFLUXDB_URL``. A push waits for
another writer of its scope and a delete for every writer; a lease left
by a dead writer expires; a writer that waits too long gets a
``WriteConflict`` and stores nothing. The shared suite's concurrency tests
show that writers taking turns lose nothing and count nothing twice.
"""

import decimal
import gc
import threading
import uuid

import fixtures
import testtools

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.influxdb import encoding
from cloudkitty.storage.v2.influxdb import writers
from cloudkitty.storage.v2 import query
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests import functional_env
from cloudkitty.tests import influxdb_provision

D = decimal.Decimal
T0 = builders.T0


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class LeaseTest(influxdb_provision.InfluxDBDatabaseMixin,
                testtools.TestCase):
    """Who may write while another writer holds a lease."""

    def setUp(self):
        super().setUp()
        self.use_influxdb_conf()
        self.addCleanup(type(self).drop_database)
        self.store = self.new_store()
        self.other = self.new_store()
        self.project_id = str(uuid.uuid4())

    def frames(self):
        return [builders.make_frame(T0, [('cpu', builders.make_point(
            self.project_id, 1, D('0.5')))])]

    def count(self):
        return self.store.retrieve(begin=T0, end=T0 + builders.HOUR,
                                   limit=1)['total']

    def patch(self, name, value):
        old = getattr(writers, name)
        setattr(writers, name, value)
        self.addCleanup(setattr, writers, name, old)

    def test_same_scope_waits_then_gives_up_storing_nothing(self):
        """A push into a held scope raises WriteConflict, stores nothing."""
        self.patch('WAIT_S', 0.5)
        with self.other.leases.hold(encoding.encode_value('s')):
            error = self.assertRaises(exceptions.WriteConflict,
                                      self.store.push, self.frames(),
                                      scope_id='s')
        self.assertIn(self.other.leases.writer, str(error))
        self.assertTrue(error.retryable)
        self.assertEqual(0, self.count())
        self.store.push(self.frames(), scope_id='s')
        self.assertEqual(1, self.count())

    def test_other_scope_goes_on(self):
        """A lease on one scope does not hold back pushes of another."""
        self.patch('WAIT_S', 0.5)
        with self.other.leases.hold(encoding.encode_value('s')):
            self.store.push(self.frames(), scope_id='t')
            self.store.push(self.frames())
        self.assertEqual(2, self.count())

    def test_delete_waits_for_every_writer(self):
        """A delete waits for a push of any scope, and a push for it."""
        self.patch('WAIT_S', 0.5)
        self.store.push(self.frames(), scope_id='t')
        with self.other.leases.hold(encoding.encode_value('s')):
            self.assertRaises(exceptions.WriteConflict, self.store.delete)
        self.assertEqual(1, self.count())
        with self.other.leases.hold():
            self.assertRaises(exceptions.WriteConflict, self.store.push,
                              self.frames(), scope_id='t')
        self.assertEqual(1, self.count())

    def hold_scope_s(self):
        """Make the other store hold scope s's lease until the event is set.

        :returns: the event that releases it (set at cleanup anyway).
        """
        held = threading.Event()
        release = threading.Event()

        def hold():
            with self.other.leases.hold(encoding.encode_value('s')):
                held.set()
                release.wait(60)

        holder = threading.Thread(target=hold)
        holder.start()
        self.addCleanup(holder.join)
        self.addCleanup(release.set)
        self.assertTrue(held.wait(60))
        return release

    def test_waiting_push_goes_on_once_released(self):
        """A push waiting for a lease is written once it is released."""
        release = self.hold_scope_s()
        timer = threading.Timer(1, release.set)
        timer.start()
        self.store.push(self.frames(), scope_id='s')
        self.assertTrue(release.is_set())
        self.assertEqual(1, self.count())

    def test_waiting_push_lets_the_collector_run(self):
        """A push that waits for a lease has the collector on meanwhile.

        It pauses the collector for its own points (bulk.no_cyclic_gc),
        but the rest of the process must not go without collections for
        as long as another writer holds the lease.
        """
        release = self.hold_scope_s()
        naps = []
        sleep = writers.time.sleep

        def nap(seconds):
            naps.append(gc.isenabled())
            if len(naps) >= 3:
                release.set()
            sleep(seconds)

        self.addCleanup(gc.enable if gc.isenabled() else gc.disable)
        gc.enable()
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.writers.time.sleep', nap))
        self.store.push(self.frames(), scope_id='s')
        self.assertGreaterEqual(len(naps), 3)
        self.assertEqual([True] * len(naps), naps)
        self.assertTrue(gc.isenabled())
        self.assertEqual(1, self.count())

    def test_dead_writers_lease_expires(self):
        """A lease nobody writes again is over after TTL_S seconds."""
        self.patch('TTL_S', 2)
        self.patch('HEARTBEAT_S', 0.5)
        # NOTE: what a writer that died while pushing leaves behind.
        self.other.leases._mark(encoding.encode_value('s'), True)
        self.store.push(self.frames(), scope_id='s')
        self.assertEqual(1, self.count())

    def test_lease_is_written_again_while_held(self):
        """A long write keeps its lease past TTL_S by writing it again."""
        self.patch('TTL_S', 2)
        self.patch('HEARTBEAT_S', 0.3)
        self.patch('WAIT_S', 0.5)
        scope_tag = encoding.encode_value('s')
        with self.other.leases.hold(scope_tag):
            threading.Event().wait(3)
            self.assertRaises(exceptions.WriteConflict, self.store.push,
                              self.frames(), scope_id='s')
        self.assertEqual(0, self.count())

    def last_marks(self):
        """Return ``{writer: on}``: the last lease mark of every writer."""
        rows = self.store.client.rows(
            'SELECT last("on") AS "on" FROM %s GROUP BY "ck_w"'
            % self.store.source(writers.WRITERS))
        return {row['ck_w']: row['on'] for row in rows}

    def assertGivenBack(self):
        """Close the store: its last mark is off, the other writer goes on.

        The other writer takes scope s at once (WAIT_S 0).
        """
        self.store.close()
        self.assertIs(False, self.last_marks()[self.store.leases.writer])
        self.patch('WAIT_S', 0)
        with self.other.leases.hold(encoding.encode_value('s')):
            pass

    def test_lease_is_given_back_after_the_push(self):
        """A push's lease is off once the store is closed.

        It is given back from another thread; every later mark of the
        store waits for it, so that back-to-back pushes leave the last
        mark off, and another writer takes the scope at once.
        """
        for _ in range(3):
            self.store.push(self.frames(), scope_id='s')
        self.assertGivenBack()
        self.assertEqual(3, self.count())

    def test_push_takes_its_lease_while_it_encodes(self):
        """hold_while() takes the lease while the work runs, in parallel.

        The work (a push's encoding) waits until the lease's mark was
        written: were they one after the other, it would wait in vain.
        """
        scope_tag = encoding.encode_value('s')
        marked = threading.Event()
        real = self.store.client.write

        def spy(lines):
            if lines[0].startswith(writers.WRITERS):
                marked.set()
            return real(lines)
        self.store.client.write = spy
        with self.store.leases.hold_while(
                lambda: marked.wait(30), scope_tag) as (rows, seen):
            self.assertIsNone(rows)
            self.assertIs(True, seen)
            self.assertEqual(
                {self.store.leases.writer: True}, self.last_marks())
        self.store.close()
        self.assertEqual({self.store.leases.writer: False},
                         self.last_marks())

    def test_push_refused_while_encoding_gives_its_lease_back(self):
        """Bad money found while the lease is taken: given back, no data.

        The push raises the encoding's InvalidQuery, not a lease error;
        another writer takes the scope at once.
        """
        bad = builders.forge(builders.make_point(self.project_id, 1, 1),
                             price=D('NaN'))
        frames = [builders.make_frame(T0, [('cpu', bad)])]
        self.assertRaises(exceptions.InvalidQuery, self.store.push, frames,
                          scope_id='s')
        self.assertGivenBack()
        self.assertEqual(0, self.count())

    def test_failed_work_gives_up_a_lease_held_elsewhere(self):
        """Work that fails while the lease is held elsewhere ends at once.

        Its error is raised without waiting for the other writer (nor for
        WAIT_S), and this writer holds nothing afterwards.
        """
        release = self.hold_scope_s()

        def work():
            # NOTE: a few attempts find the lease held first.
            threading.Event().wait(0.3)
            raise exceptions.InvalidQuery('dataframes', 'refused', None)

        self.assertRaises(
            exceptions.InvalidQuery, self.store.leases.hold_while(
                work, encoding.encode_value('s')).__enter__)
        self.assertFalse(release.is_set())
        self.store.close()
        self.assertIs(False, self.last_marks()[self.store.leases.writer])

    def test_then_is_read_with_the_last_check(self):
        """hold(then=) gives the block the rows of its SELECT.

        Read in the request that found the lease free, after waiting for
        the writer that held it.
        """
        scope_tag = encoding.encode_value('s')
        self.store.push(self.frames(), scope_id='s')
        release = self.hold_scope_s()
        threading.Timer(1, release.set).start()
        start = query.to_micros(T0) * 1000
        then = self.store.books.reservations(scope_tag, start, start)
        queries = []
        real = self.store.client.query

        def spy(statement, params=None, database=True):
            queries.append(statement)
            return real(statement, params, database)
        self.store.client.query = spy
        with self.store.leases.hold(scope_tag, then=then) as rows:
            self.assertTrue(release.is_set())
            self.assertEqual([1], [row['used'] for row in rows])
        self.assertEqual(
            [], [q for q in queries if q.startswith(then[0])])
        self.assertTrue(queries[-1].endswith('; ' + then[0]))
