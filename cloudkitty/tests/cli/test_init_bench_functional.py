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
"""``bench --concurrent-init``: processes that init() a new SQLite file."""

import json

import testtools

from cloudkitty.tests.cli import base
from cloudkitty.tests import functional_env


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class ConcurrentInitBenchTest(base.CLITestCase):
    """The figures of ``bench --concurrent-init`` (never their values)."""

    def test_prints_alone_slowest_and_ratio(self):
        code, out, err = self.run_main(
            ['-q', 'bench', '--concurrent-init', '2', '--init-runs', '1',
             '-f', 'json'])
        self.assertEqual(0, code, err)
        rows = {row['metric']: row for row in json.loads(out)}
        self.assertEqual(['init_alone', 'init_slowest_of_2', 'runs',
                          'slowest_to_alone', 'slowest_to_alone_max'],
                         sorted(rows))
        self.assertEqual(1, rows['runs']['value'])
        for metric in ('init_alone', 'init_slowest_of_2'):
            self.assertGreater(rows[metric]['value'], 0)
            self.assertEqual('s', rows[metric]['unit'])
        self.assertEqual('ratio', rows['slowest_to_alone']['unit'])

    def test_rejects_fewer_than_two_processes(self):
        code, _, err = self.run_main(['bench', '--concurrent-init', '1'])
        self.assertEqual(2, code)
        self.assertIn('--concurrent-init', err)
