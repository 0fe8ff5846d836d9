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
"""The commands on a real InfluxDB server: reads create no database.

The server is named by ``CLOUDKITTY_TEST_INFLUXDB_URL`` (``tox -e
functional-influxdb`` starts one); the class gets a database name of its
own, dropped after every test.
"""

import json

from oslo_config import cfg
import testtools

from cloudkitty.storage.v2.influxdb import client as client_mod
from cloudkitty.storage.v2.influxdb import options
from cloudkitty.tests.cli import base
from cloudkitty.tests.cli import test_data
from cloudkitty.tests.functional_env import is_functional_test
from cloudkitty.tests import influxdb_provision

WINDOW = test_data.WINDOW


@testtools.skipUnless(is_functional_test(), 'Test is not a functional test')
class InfluxDBCommandsTest(influxdb_provision.InfluxDBDatabaseMixin,
                           test_data.DataCLITestCase):
    """Read commands on a database that does not exist, then migrate."""

    def setUp(self):
        super().setUp()
        self.addCleanup(self.drop_database)
        self.conf_file = self.config_file('storage.conf', self.host)

    def config_file(self, name, host):
        """Write a configuration naming the class database on ``host``."""
        return self.write(name, (
            '[storage]\nbackend = influxdb\nretention_period = %d\n'
            '[storage_influxdb]\nhost = %s\nport = %d\ndatabase = %s\n'
            % (influxdb_provision.TEST_RETENTION_HOURS, host, self.port,
               self.database)))

    def run_main(self, argv, stdin='', stderr=None):
        """Run on the class database (no --connection: InfluxDB has none)."""
        return base.CLITestCase.run_main(
            self, ['--config-file', self.conf_file] + list(argv))

    def databases(self):
        """The databases the server holds."""
        conf = cfg.ConfigOpts()
        options.register_opts(conf)
        for name in ('host', 'port'):
            conf.set_override(name, getattr(self, name),
                              group='storage_influxdb')
        client = client_mod.Client(conf.storage_influxdb)
        try:
            return [values[0] for part in client.query(
                'SHOW DATABASES', database=False)
                for values in part['values']]
        finally:
            client.close()

    def test_reads_create_nothing(self):
        for argv in (['total'], ['retrieve'], ['delete', '--yes'],
                     ['purge', '--dry-run']):
            code, out, err = self.run_main(argv)
            self.assertOneLineError(code, out, err, 'is not initialised',
                                    'no database %s' % self.database)
        self.assertNotIn(self.database, self.databases())
        self.assertEqual(0, self.run_main(['init'])[0])
        self.assertIn(self.database, self.databases())
        code, out, err = self.run_main(['total', '-f', 'json'] + WINDOW)
        self.assertEqual((0, '[]'), (code, out.strip()), err)

    def test_migrate_onto_itself_under_another_name(self):
        path = self.write('frames.jsonl',
                          test_data.as_jsonl(test_data.sample_frames()))
        code, _, err = self.run_main(['push', path])
        self.assertEqual(0, code, err)
        other = 'localhost' if self.host != 'localhost' else '127.0.0.1'
        dest = self.config_file('dest.conf', other)
        code, out, err = self.run_main(
            ['migrate', '--dest-config-file', dest, '--replace', '--state',
             self.write('state', '') + '.json'] + WINDOW)
        self.assertOneLineError(code, out, err, 'are the same store')
        code, out, err = self.run_main(['total', '-f', 'json'] + WINDOW)
        self.assertEqual('123', json.loads(out)[0]['qty'])

    def test_bench_with_the_default_retention(self):
        """bench works on a server configured with the defaults.

        ``init()`` sets the retention policy from ``[storage]
        retention_period`` (2400 hours by default): the workload must lie
        within it, whatever the date.
        """
        conf = self.write('default.conf', (
            '[storage]\nbackend = influxdb\n'
            '[storage_influxdb]\nhost = %s\nport = %d\ndatabase = %s\n'
            % (self.host, self.port, self.database)))
        code, out, err = base.CLITestCase.run_main(
            self, ['-q', '--config-file', conf, 'bench', '--projects', '1',
                   '--resources', '2', '--periods', '30', '--repeat', '1',
                   '-f', 'json'])
        self.assertEqual(0, code, err)
        rows = {row['metric']: row['value'] for row in json.loads(out)}
        self.assertEqual(360, rows['points'])
        self.assertEqual('influxdb (http)', rows['backend'])
        self.assertGreater(rows['checks_passed'], 0)
