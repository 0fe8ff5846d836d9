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
"""DELETEs that meet InfluxDB's cache snapshots, on a real influxd.

A private server with a 256 KiB cache snapshots it every few writes, and
a thread keeps writing beside the test, so that snapshots meet its
DELETEs. Each round writes one point into each of a few series, deletes
them with :func:`cloudkitty.storage.v2.influxdb.deletes.delete`, then
writes a new point into each: a deleted point that a snapshot kept out
of InfluxDB's index would come back with it (see the module docstring of
:mod:`~cloudkitty.storage.v2.influxdb.deletes`).
"""

import threading
import time

import fixtures
from oslo_config import cfg
import testtools

from cloudkitty.storage.v2.influxdb import client as client_mod
from cloudkitty.storage.v2.influxdb import deletes
from cloudkitty.storage.v2.influxdb import options
from cloudkitty.tests import functional_env
from cloudkitty.tests import influxdb_server

#: Snapshots every 256 KiB of writes, and of any cache idle for a second.
SMALL_CACHE = {'cache-snapshot-memory-size': '256k',
               'cache-snapshot-write-cold-duration': '1s'}
SERIES = 50
#: The test stops once this many DELETEs met a snapshot...
ENOUGH_MET = 5
#: ...or after this many rounds or seconds.
MAX_ROUNDS = 400
MAX_SECONDS = 120
T0 = 1700000000 * 10 ** 9
DELETE = ('DELETE FROM "m" WHERE "r" = $r AND time >= $begin AND '
          'time < $end')


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class DeletesHoldTest(testtools.TestCase):
    """No point a DELETE removed comes back, snapshots or not."""

    def setUp(self):
        super().setUp()
        try:
            server = self.useFixture(influxdb_server.InfluxDBServerFixture(
                data_options=SMALL_CACHE))
        except influxdb_server.NotInstalled as exc:
            self.skipTest(str(exc))
        self.client = self.new_client(server.url)
        self.client.query('CREATE DATABASE "ck_deletes"', database=False)

    def new_client(self, url):
        conf = cfg.ConfigOpts()
        options.register_opts(conf)
        host, port = url.rsplit('/', 1)[1].split(':')
        for name, value in (('host', host), ('port', int(port)),
                            ('database', 'ck_deletes')):
            conf.set_override(name, value, group='storage_influxdb')
        client = client_mod.Client(conf.storage_influxdb)
        self.addCleanup(client.close)
        return client

    def fill(self, client, stop):
        """Write beside the test until ``stop`` is set."""
        batch = 0
        while not stop.is_set():
            client.write(['fill,k=%d v=%di %d' % (n % 50, n, T0 + batch * 10
                                                  ** 6 + n)
                          for n in range(5000)])
            batch += 1

    def test_deleted_points_stay_deleted(self):
        stop = threading.Event()
        filler = threading.Thread(target=self.fill, args=(
            self.new_client(self.client.location), stop))
        filler.start()
        self.addCleanup(filler.join)
        self.addCleanup(stop.set)
        met = rounds = 0
        came_back = []
        deadline = time.monotonic() + MAX_SECONDS
        while (met < ENOUGH_MET and rounds < MAX_ROUNDS
               and time.monotonic() < deadline):
            tag = str(rounds)
            self.client.write(['m,r=%s,s=%d v=1i %d' % (tag, n, T0)
                               for n in range(SERIES)])
            met += bool(deletes.delete(
                self.client, DELETE, {'r': tag, 'begin': T0,
                                      'end': T0 + 1}, (T0, T0 + 1)))
            self.client.write(['m,r=%s,s=%d v=2i %d' % (tag, n, T0 + 10)
                               for n in range(SERIES)])
            for part in self.client.query(
                    'SELECT count("v") FROM "m" WHERE "r" = $r GROUP BY "s"',
                    {'r': tag}):
                if part['values'][0][1] != 1:
                    came_back.append((tag, part['tags']['s']))
            rounds += 1
        stop.set()
        self.assertEqual([], came_back)
        if not met:
            self.skipTest('no cache snapshot met any of %d DELETEs: '
                          'nothing was tested' % rounds)

    def test_series_listed_in_chunks_are_all_found(self):
        """SHOW SERIES answers in nameless chunks; every key is kept."""
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.client.CHUNK_SIZE', 10))
        self.client.write(['m,r=x,s=%d v=1i %d' % (n, T0)
                           for n in range(25)])
        run = deletes.Run(self.client, DELETE, {
            'r': 'x', 'begin': T0, 'end': T0 + 1}, (T0, T0 + 1))
        run.prepare()
        self.assertEqual(sorted('m,r=x,s=%d' % n for n in range(25)),
                         sorted(run.series))
