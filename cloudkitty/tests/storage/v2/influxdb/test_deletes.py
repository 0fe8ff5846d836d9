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
"""DELETEs run again when an InfluxDB cache snapshot met them."""

import fixtures
import testtools

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.influxdb import deletes

DELETE = 'DELETE FROM "rating" WHERE time >= $begin AND time < $end'
SERIES = ['rating,k_id=.a', 'rating,k_id=.b']
DAY_NS = 86400 * 10 ** 9


class FakeClient:
    """Answers SHOW STATS from a script of snapshot states.

    A state is ``(in progress, bytes snapshotted)`` of shard 0, whose
    cache holds ``cached`` bytes; the last state repeats once the script
    is used up. Records every statement it runs and every line written;
    ``SHOW SERIES`` finds :data:`SERIES`, ``SHOW SHARDS`` one-day shards
    0 to 2 of days 0 to 2 (and one of another database).
    """

    database = 'ck'
    location = 'http://127.0.0.1:8086'

    def __init__(self, states, refuse=False, cached=100):
        self.states = list(states)
        self.refuse = refuse
        self.cached = cached
        self.statements = []
        self.written = []
        self._pending = None

    @property
    def deletes(self):
        return [(statement, params) for statement, params in
                self.statements if statement.startswith('DELETE')]

    def start_query(self, statement, params=None):
        self.query(statement, params)
        return lambda: []

    def write(self, lines):
        self.statements.append(('write', None))
        self.written.extend(lines)

    def query(self, statement, params=None, database=True):
        if not statement.startswith('SHOW STATS'):
            self.statements.append((statement, params))
        if statement.startswith('DELETE'):
            return []
        if statement.startswith('SHOW SERIES'):
            return [{'columns': ['key'], 'values': [[key] for key in SERIES]}]
        if statement == 'SHOW SHARDS':
            columns = ['id', 'start_time', 'end_time']
            return [{'name': 'ck', 'columns': columns, 'values': [
                [day, '1970-01-0%dT00:00:00Z' % (day + 1),
                 '1970-01-0%dT00:00:00Z' % (day + 2)] for day in range(3)]},
                {'name': 'other', 'columns': columns, 'values': [
                    [9, '1969-12-01T00:00:00Z', '1970-02-01T00:00:00Z']]}]
        if self.refuse:
            raise exceptions.StorageError('not an admin')
        self._pending = self.states.pop(0) if len(self.states) > 1 \
            else self.states[0]
        # NOTE: shard 0, shard 1 of ours (which the windows of most tests
        # do not meet) and one of another database, which never counts.
        columns = ['time', 'snapshotCount', 'cachedBytes', 'memBytes']
        return [
            {'columns': columns, 'tags': {'database': 'ck', 'id': '0'},
             'values': [[0] + list(self._pending) + [self.cached]]},
            {'columns': columns, 'tags': {'database': 'ck', 'id': '1'},
             'values': [[0, 0, 7, 50]]},
            {'columns': columns, 'tags': {'database': 'other', 'id': '9'},
             'values': [[0, 1000, 1000, 1000]]}]


class SettleTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.deletes.POLL_S', 0))

    def test_snapshots_of_this_database_add_up(self):
        """Shards of another database do not count."""
        self.assertEqual((2, 14, 150),
                         deletes.snapshots(FakeClient([(2, 7)])))

    def test_snapshots_of_some_shards(self):
        self.assertEqual((2, 7, 100),
                         deletes.snapshots(FakeClient([(2, 7)]), {'0'}))

    def test_shards_of_a_window(self):
        """Each with a time of the window in it."""
        self.assertEqual(
            {'1': DAY_NS + 5, '2': 2 * DAY_NS},
            deletes.shards_of(FakeClient([]), DAY_NS + 5, 2 * DAY_NS + 1))

    def test_empty_caches_need_no_listing(self):
        """Nothing cached in the window's shards: nothing to snapshot."""
        client = FakeClient([(0, 5)], cached=0)
        deletes.delete(client, DELETE, {}, (0, 1))
        self.assertEqual(['SHOW SHARDS', DELETE],
                         [statement for statement, _ in client.statements])

    def test_no_shard_no_look(self):
        """A window no shard meets holds nothing: the DELETE alone."""
        client = FakeClient([(1, 5)])
        deletes.delete(client, DELETE, {}, (10 * DAY_NS, 11 * DAY_NS))
        self.assertEqual(['SHOW SHARDS', DELETE],
                         [statement for statement, _ in client.statements])

    def test_no_snapshot_met_runs_once(self):
        """The series are listed first, with the DELETE's own WHERE."""
        client = FakeClient([(0, 5)])
        deletes.delete(client, DELETE, {'begin': 0, 'end': 1}, (0, 1))
        self.assertEqual([
            ('SHOW SHARDS', None),
            ('SHOW SERIES FROM "rating" WHERE time >= $begin AND time < '
             '$end', {'begin': 0, 'end': 1}),
            (DELETE, {'begin': 0, 'end': 1})], client.statements)
        self.assertEqual([], client.written)

    def test_snapshot_in_progress_is_waited_for_first(self):
        """A snapshot in progress ends before the DELETE starts."""
        client = FakeClient([(1, 5), (1, 5), (0, 6), (0, 6)])
        deletes.delete(client, DELETE, {}, (0, 1))
        self.assertEqual(1, len(client.deletes))
        self.assertEqual([(0, 6)], client.states)

    def test_snapshot_started_meanwhile_marks_then_runs_again(self):
        """A snapshot met the DELETE: mark, then run again.

        Every listed series gets a marker in every shard of the window.
        """
        client = FakeClient([(0, 5), (0, 6), (0, 6)])
        window = (DAY_NS // 2, 2 * DAY_NS + 1)
        deletes.delete(client, DELETE, {}, window)
        self.assertEqual(2, len(client.deletes))
        kinds = [statement.split(' ')[0] for statement, _ in
                 client.statements]
        self.assertEqual(['SHOW', 'SHOW', 'DELETE', 'write', 'DELETE'],
                         kinds)
        # NOTE: the window meets the shards of days 0, 1 and 2.
        self.assertEqual(sorted(
            '%s ck_gone=true %d' % (key, moment) for key in SERIES
            for moment in (DAY_NS // 2, DAY_NS, 2 * DAY_NS)),
            sorted(client.written))

    def test_snapshot_starting_during_the_listing_counts(self):
        """In progress when the DELETE ended: wait, mark, run again."""
        client = FakeClient([(0, 5), (1, 5), (0, 6), (0, 6)])
        deletes.delete(client, DELETE, {}, (0, 1))
        self.assertEqual(2, len(client.deletes))
        self.assertEqual(len(SERIES), len(client.written))

    def test_meanwhile_runs_during_the_first_run(self):
        """Work done while the DELETE runs; a snapshot still settles."""
        client = FakeClient([(0, 5), (0, 6), (0, 6)])
        seen = []
        deletes.delete(client, DELETE, {}, (0, 1),
                       meanwhile=lambda: seen.append(len(client.deletes)))
        self.assertEqual([1], seen)
        self.assertEqual(2, len(client.deletes))

    def test_meanwhile_failing_runs_no_more(self):
        """Its error comes once the first run ended; no second run."""
        client = FakeClient([(0, 5), (0, 6), (0, 6)])

        def fail():
            raise exceptions.StorageError('log unreadable')
        self.assertRaises(exceptions.StorageError, deletes.delete, client,
                          DELETE, {}, (0, 1), meanwhile=fail)
        self.assertEqual(1, len(client.deletes))

    def test_snapshots_that_never_stop_give_up(self):
        """Bounded: MAX_RUNS runs, then a warning."""
        logged = self.useFixture(fixtures.FakeLogger())
        client = FakeClient([(0, n) for n in range(100)])
        deletes.delete(client, DELETE, {}, (0, 1))
        self.assertEqual(deletes.MAX_RUNS, len(client.deletes))
        self.assertIn('may not hold', logged.output)

    def test_show_stats_refused_runs_once(self):
        """Without admin rights: the DELETE alone, and a warning."""
        logged = self.useFixture(fixtures.FakeLogger())
        client = FakeClient([], refuse=True)
        deletes.delete(client, DELETE, {}, (0, 1))
        self.assertEqual([('SHOW SHARDS', None), (DELETE, {})],
                         client.statements)
        self.assertIn('SHOW STATS refused', logged.output)
