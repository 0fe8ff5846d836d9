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


class FakeClient:
    """Answers SHOW STATS from a script of ``(in progress, completed)``.

    The last state repeats once the script is used up. Records every
    DELETE it runs.
    """

    database = 'ck'
    location = 'http://127.0.0.1:8086'

    def __init__(self, states, refuse=False):
        self.states = list(states)
        self.refuse = refuse
        self.deletes = []
        self._pending = None

    def query(self, statement, params=None, database=True):
        if statement.startswith('DELETE'):
            self.deletes.append((statement, params))
            return []
        if self.refuse:
            raise exceptions.StorageError('not an admin')
        if 'tsm1_cache' in statement:
            self._pending = self.states.pop(0) if len(self.states) > 1 \
                else self.states[0]
            column, value = 'snapshotCount', self._pending[0]
        else:
            column, value = 'cacheCompactions', self._pending[1]
        # NOTE: two shards of ours (the counts add up) and one of another
        # database, which must not count.
        part = {'columns': ['time', column], 'values': [[0, value]]}
        return [dict(part, tags={'database': 'ck'}),
                dict(part, tags={'database': 'ck'}, values=[[0, 0]]),
                dict(part, tags={'database': 'other'},
                     values=[[0, 1000]])]


class SettleTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.deletes.POLL_S', 0))

    def test_snapshots_of_this_database_add_up(self):
        """Shards of another database do not count."""
        self.assertEqual((2, 7), deletes.snapshots(FakeClient([(2, 7)])))

    def test_no_snapshot_met_runs_once(self):
        client = FakeClient([(0, 5)])
        deletes.delete(client, DELETE, {'begin': 0, 'end': 1})
        self.assertEqual([(DELETE, {'begin': 0, 'end': 1})], client.deletes)

    def test_snapshot_completed_meanwhile_runs_again(self):
        """A snapshot that ended during the DELETE: once more."""
        client = FakeClient([(0, 5), (0, 6), (0, 6)])
        deletes.delete(client, DELETE)
        self.assertEqual(2, len(client.deletes))

    def test_snapshot_in_progress_is_waited_for(self):
        """In progress before: wait until it ends, then run again."""
        client = FakeClient([(1, 5), (1, 5), (1, 5), (0, 6), (0, 6)])
        deletes.delete(client, DELETE)
        self.assertEqual(2, len(client.deletes))
        self.assertEqual([(0, 6)], client.states)

    def test_snapshots_that_never_stop_give_up(self):
        """Bounded: MAX_RUNS runs, then a warning."""
        logged = self.useFixture(fixtures.FakeLogger())
        client = FakeClient([(0, n) for n in range(100)])
        deletes.delete(client, DELETE)
        self.assertEqual(deletes.MAX_RUNS, len(client.deletes))
        self.assertIn('may not hold', logged.output)

    def test_show_stats_refused_runs_once(self):
        """Without admin rights: the DELETE alone, and a warning."""
        logged = self.useFixture(fixtures.FakeLogger())
        client = FakeClient([], refuse=True)
        deletes.delete(client, DELETE)
        self.assertEqual(1, len(client.deletes))
        self.assertIn('SHOW STATS refused', logged.output)
