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
"""``bench --anchor``: the ratios, and the raw anchor end to end."""

import json
import os

import fixtures
import testtools

from cloudkitty.cli.perf import anchor
from cloudkitty.cli.perf import bench
from cloudkitty.tests.cli import base
from cloudkitty.tests import functional_env
from cloudkitty.tests import influxdb_server


class BesideTest(testtools.TestCase):

    def test_rounds_alternate(self):
        """Round n of ours, then round n of the anchor's, in turn."""
        calls = []

        def run_round(store, work, repeat, number, rounds, keep=False):
            calls.append((store, number, keep))
            return [('push', number, 'points/s')]

        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.cli.perf.bench.run_round', run_round))
        ours, theirs = bench.run_beside('ours', 'anchor', None, 1, 3,
                                        keep=True)
        self.assertEqual([('ours', 1, True), ('anchor', 1, False),
                          ('ours', 2, True), ('anchor', 2, False),
                          ('ours', 3, True), ('anchor', 3, False)], calls)
        self.assertEqual([[('push', n, 'points/s')] for n in (1, 2, 3)],
                         theirs)
        calls[:] = []
        self.assertEqual((ours, None), bench.run_beside(
            'ours', None, None, 1, 3, keep=True))
        self.assertEqual(['ours'] * 3, [call[0] for call in calls])


class RatioTest(testtools.TestCase):
    """ratio(): above 1 when ours is faster, only for timings."""

    def test_latency_and_throughput(self):
        self.assertEqual(4.0, anchor.ratio('total_by_id', 's', 0.5, 2.0))
        self.assertEqual(0.25, anchor.ratio('push', 'points/s', 10, 40))
        self.assertEqual(0.333, anchor.ratio('total_by_time', 's', 3, 1))

    def test_not_a_timing(self):
        self.assertIsNone(anchor.ratio('points', 'points', 10, 10))
        self.assertIsNone(anchor.ratio('push_time', 's', 1.0, 2.0,
                                       ('push_time',)))
        self.assertIsNone(anchor.ratio('database_size', 'MiB', 1.0, None))
        self.assertIsNone(anchor.ratio('backend', '', 'a', 'b'))

    def test_side_by_side(self):
        columns, rows = anchor.side_by_side(
            [('backend', 'ours', ''), ('total_by_id', 0.5, 's')],
            [('backend', 'raw', ''), ('total_by_id', 0.25, 's')], 'raw')
        self.assertEqual(('metric', 'ours', 'raw', 'ratio', 'unit'),
                         columns)
        self.assertEqual([('backend', 'ours', 'raw', None, ''),
                          ('total_by_id', 0.5, 0.25, 0.5, 's')], rows)


class RawAnchorTest(base.CLITestCase):
    """``bench --anchor raw`` checks both sides and prints the ratios."""

    def test_bench_beside_raw(self):
        code, out, err = self.run_main(
            ['-q', 'bench', '--projects', '1', '--resources', '2',
             '--periods', '25', '--repeat', '1', '--anchor', 'raw',
             '-f', 'json'])
        self.assertEqual(0, code, err)
        rows = {row['metric']: row for row in json.loads(out)}
        self.assertEqual('raw (sqlite)', rows['backend']['raw'])
        self.assertEqual(rows['checks_passed']['ours'],
                         rows['checks_passed']['raw'])
        self.assertEqual(300, rows['points']['raw'])
        for metric in ('push', 'total_by_id', 'total_by_time',
                       'retrieve_project', 'delete_period',
                       'delete_project', 'delete_project_past'):
            self.assertGreater(rows[metric]['ratio'], 0, metric)
        self.assertIsNone(rows['push_time']['ratio'])

    def test_rounds_beside_raw(self):
        code, out, err = self.run_main(
            ['-q', 'bench', '--projects', '1', '--resources', '2',
             '--periods', '25', '--repeat', '1', '--anchor', 'raw',
             '--reuse', '2', '-f', 'json'])
        self.assertEqual(0, code, err)
        rows = {row['metric']: row for row in json.loads(out)}
        self.assertEqual(['metric', 'round 1', 'round 2', 'raw round 1',
                          'raw round 2', 'ratio', 'median ratio', 'unit'],
                         list(rows['backend']))
        self.assertEqual('raw (sqlite)', rows['backend']['raw round 2'])
        self.assertEqual(rows['checks_passed']['round 2'],
                         rows['checks_passed']['raw round 2'])
        # NOTE: the ratio compares the last rounds.
        self.assertEqual(anchor.ratio(
            'purge', 's', rows['purge']['round 2'],
            rows['purge']['raw round 2']), rows['purge']['ratio'])
        # NOTE: the median of two rounds' ratios is their mean.
        ratios = [anchor.ratio('push', 'points/s', rows['push'][mine],
                               rows['push'][theirs])
                  for mine, theirs in (('round 1', 'raw round 1'),
                                       ('round 2', 'raw round 2'))]
        self.assertAlmostEqual(sum(ratios) / 2,
                               rows['push']['median ratio'], delta=0.01)
        self.assertIsNone(rows['push_time']['median ratio'])

    def test_refused_with_sizes(self):
        code, _, err = self.run_main(['bench', '--anchor', 'raw',
                                      '--sizes', '1k'])
        self.assertEqual(1, code)
        self.assertIn('--anchor', err)

    def test_upstream_needs_its_python(self):
        code, _, err = self.run_main(
            ['bench', '--anchor', 'upstream-influxdb', '--upstream-python',
             '', '--periods', '1', '--projects', '1', '--resources', '1'])
        self.assertEqual(1, code)
        self.assertIn('pip install cloudkitty==25.0.0', err)


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
@testtools.skipUnless(os.environ.get(anchor.UPSTREAM_PYTHON_ENV),
                      '%s is not set (%s)' % (anchor.UPSTREAM_PYTHON_ENV,
                                              anchor.UPSTREAM_HINT))
@testtools.skipUnless(influxdb_server.find_influxd(),
                      'influxd is not installed')
class UpstreamAnchorTest(base.CLITestCase):
    """``--anchor upstream-influxdb``: upstream's own class, checked."""

    def test_bench_beside_upstream(self):
        code, out, err = self.run_main(
            ['-q', 'bench', '--projects', '1', '--resources', '2',
             '--periods', '25', '--repeat', '1', '--anchor',
             'upstream-influxdb', '-f', 'json'])
        self.assertEqual(0, code, err)
        rows = {row['metric']: row for row in json.loads(out)}
        self.assertEqual('upstream-influxdb (http)',
                         rows['backend']['upstream-influxdb'])
        self.assertEqual(rows['checks_passed']['ours'],
                         rows['checks_passed']['upstream-influxdb'])
        self.assertGreater(rows['total_by_time']['ratio'], 0)
