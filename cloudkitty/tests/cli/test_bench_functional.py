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
"""``bench --sizes`` against a real PostgreSQL server."""

import json

import psycopg
import testtools

from cloudkitty.tests.cli import base
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLBenchTest(sql_provision.ServerDatabaseMixin,
                          base.CLITestCase):
    """``bench --sizes`` on a throw-away PostgreSQL database."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'

    def test_sizes(self):
        """Two sizes, each on an emptied database, with its size."""
        self.addCleanup(self.database.empty)
        code, out, err = self.run_main(
            ['-q', '--connection', self.database_url, 'bench', '--sizes',
             '100,200', '--repeat', '1', '-f', 'json'])
        self.assertEqual(0, code, err)
        rows = {row['metric']: row for row in json.loads(out)}
        self.assertIn('postgresql', rows['backend']['100'])
        self.assertEqual((102, 144), (rows['points']['100'],
                                      rows['points']['200']))
        self.assertGreater(rows['database_size']['200'], 0)
        self.assertEqual('MiB', rows['database_size']['unit'])

    def test_raw_anchor(self):
        """--anchor raw: psycopg in the same database, its table dropped."""
        self.addCleanup(self.database.empty)
        code, out, err = self.run_main(
            ['-q', '--connection', self.database_url, 'bench', '--projects',
             '1', '--resources', '2', '--periods', '25', '--repeat', '1',
             '--anchor', 'raw', '-f', 'json'])
        self.assertEqual(0, code, err)
        rows = {row['metric']: row for row in json.loads(out)}
        self.assertEqual('raw (postgresql)', rows['backend']['raw'])
        self.assertEqual(rows['checks_passed']['ours'],
                         rows['checks_passed']['raw'])
        self.assertGreater(rows['push']['ratio'], 0)
        with psycopg.connect(self.database_url.replace('+psycopg', '')) \
                as conn:
            self.assertEqual([], conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE "
                "'bench_raw_%'").fetchall())
