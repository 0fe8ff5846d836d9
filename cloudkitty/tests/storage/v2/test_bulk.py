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
"""Unit tests of :mod:`cloudkitty.storage.v2.bulk`."""

import gc

import threading

import testtools

from cloudkitty.storage.v2 import bulk


class CollectorTestCase(testtools.TestCase):
    """Tests that start with the collector on and restore it after."""

    def setUp(self):
        super().setUp()
        # NOTE: whatever a test does, the process gets its collector back.
        self.addCleanup(gc.enable if gc.isenabled() else gc.disable)
        gc.enable()


class NoCyclicGcTest(CollectorTestCase):
    """The collector is off inside, as it was before afterwards."""

    def test_off_inside_and_on_again_after(self):
        with bulk.no_cyclic_gc():
            self.assertFalse(gc.isenabled())
        self.assertTrue(gc.isenabled())

    def test_on_again_after_an_exception(self):
        def fail():
            with bulk.no_cyclic_gc():
                raise ValueError('bad point')
        self.assertRaises(ValueError, fail)
        self.assertTrue(gc.isenabled())

    def test_stays_off_when_it_was_off(self):
        gc.disable()
        with bulk.no_cyclic_gc():
            self.assertFalse(gc.isenabled())
        self.assertFalse(gc.isenabled())

    def test_nested_turns_it_on_once_at_the_outer_end(self):
        with bulk.no_cyclic_gc():
            with bulk.no_cyclic_gc():
                pass
            self.assertFalse(gc.isenabled())
        self.assertTrue(gc.isenabled())


class CollectorRunsWhileWaitingTest(CollectorTestCase):
    """A paused push lets the collector run while it waits, and only then."""

    def test_on_while_waiting_off_again_after(self):
        with bulk.no_cyclic_gc():
            with bulk.collector_runs_while_waiting():
                self.assertTrue(gc.isenabled())
            self.assertFalse(gc.isenabled())
        self.assertTrue(gc.isenabled())

    def test_off_again_after_an_exception(self):
        def wait():
            with bulk.collector_runs_while_waiting():
                raise ValueError('gave up')
        with bulk.no_cyclic_gc():
            self.assertRaises(ValueError, wait)
            self.assertFalse(gc.isenabled())

    def test_stays_off_when_the_application_turned_it_off(self):
        gc.disable()
        with bulk.no_cyclic_gc():
            with bulk.collector_runs_while_waiting():
                self.assertFalse(gc.isenabled())
        self.assertFalse(gc.isenabled())

    def test_nothing_changes_outside_a_pause(self):
        with bulk.collector_runs_while_waiting():
            self.assertTrue(gc.isenabled())
        gc.disable()
        with bulk.collector_runs_while_waiting():
            self.assertFalse(gc.isenabled())

    def test_nested_pause_waits_with_the_collector_on(self):
        with bulk.no_cyclic_gc():
            with bulk.no_cyclic_gc():
                with bulk.collector_runs_while_waiting():
                    self.assertTrue(gc.isenabled())
                self.assertFalse(gc.isenabled())
            self.assertFalse(gc.isenabled())
        self.assertTrue(gc.isenabled())

    def test_another_threads_pause_is_its_own(self):
        """A thread that paused nothing leaves another's pause alone."""
        seen = []
        with bulk.no_cyclic_gc():
            def other():
                with bulk.collector_runs_while_waiting():
                    seen.append(gc.isenabled())
            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
            self.assertFalse(gc.isenabled())
        self.assertEqual([False], seen)

    def test_a_helper_waits_as_the_paused_thread_would(self):
        """helping() lends a thread's pause to the thread helping it.

        A push's lease is taken in a helper thread (see
        :meth:`cloudkitty.storage.v2.influxdb.writers.Leases.hold_while`):
        its waits let the collector run, as the push's own waits do; a
        helper of a thread that paused nothing changes nothing.
        """
        seen = []

        def helper(paused):
            with bulk.helping(paused):
                with bulk.collector_runs_while_waiting():
                    seen.append(gc.isenabled())
                seen.append(gc.isenabled())
            seen.append(bulk.paused_here())

        with bulk.no_cyclic_gc():
            for paused in (bulk.paused_here(), False):
                thread = threading.Thread(target=helper, args=(paused,))
                thread.start()
                thread.join()
            self.assertFalse(gc.isenabled())
        self.assertEqual([True, False, False, False, False, False], seen)
        self.assertTrue(gc.isenabled())
