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
"""``cloudkitty-storage bench`` on a real influxd configured by default.

The retention policy is the one ``init()`` makes of ``[storage]
retention_period``'s default (2400 hours): the workload must lie inside
it, whatever day the test runs.
"""

import json
import os

import testtools

from cloudkitty.tests.cli import base
from cloudkitty.tests import functional_env
from cloudkitty.tests import influxdb_provision


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class InfluxDBBenchTest(influxdb_provision.InfluxDBDatabaseMixin,
                        base.CLITestCase):
    """bench and bench --reuse against a default-configured InfluxDB."""

    def config_file(self):
        """A configuration that sets only where the server is."""
        path = os.path.join(self.tmp, 'cloudkitty.conf')
        with open(path, 'w', encoding='utf-8') as conf:
            conf.write('[storage]\nbackend = influxdb\n'
                       '[storage_influxdb]\nhost = %s\nport = %d\n'
                       'database = %s\n' % (self.host, self.port,
                                            self.database))
        return path

    def test_rounds_on_the_default_retention(self):
        code, out, err = self.run_main(
            ['-q', '--config-file', self.config_file(), 'bench',
             '--projects', '2', '--resources', '2', '--periods', '30',
             '--repeat', '2', '--reuse', '2', '-f', 'json'])
        self.assertEqual(0, code, err)
        rows = {row['metric']: row for row in json.loads(out)}
        self.assertEqual('influxdb (http)', rows['backend']['round 2'])
        for column in ('round 1', 'round 2'):
            self.assertEqual(720, rows['retrieve_total'][column])
            self.assertEqual(24, rows['deleted_points'][column])
            self.assertEqual(12, rows['deleted_project_points'][column])
            self.assertGreater(rows['purge'][column], 0)
        self.assertEqual(rows['checks_passed']['round 1'],
                         rows['checks_passed']['round 2'])
        # NOTE: the window was purged and the data is gone.
        code, out, err = self.run_main(
            ['-q', '--config-file', self.config_file(), 'bench',
             '--projects', '1', '--resources', '1', '--periods', '30',
             '--repeat', '1', '-f', 'json'])
        self.assertEqual(0, code, err)
