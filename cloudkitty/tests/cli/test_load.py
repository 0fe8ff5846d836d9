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
"""Tests of ``cloudkitty-storage load``: options, checks and a short run.

The short runs start real processes on a SQLite file for about a second;
the full-size load test is
:mod:`cloudkitty.tests.storage.v2.sqlalchemy.test_load_functional`.
"""

import decimal
import json
import os
import random

import fixtures
import testtools

from cloudkitty.cli import main
from cloudkitty.cli.perf import load
from cloudkitty.tests.cli import base

D = decimal.Decimal
#: Arguments of a short run: about a second of pushing.
SHORT = ['--seconds', '1', '--writers', '2', '--readers', '1',
         '--points-per-push', '10']


def _rows(out):
    """Return the command's JSON output as ``{metric: (value, unit)}``."""
    return {row['metric']: (row['value'], row['unit'])
            for row in json.loads(out)}


class ParserTest(base.CLITestCase):
    """The options of ``load`` and their checks."""

    def _parse(self, argv):
        parser = load.Load(main.StorageApp(), None).get_parser('load')
        return parser.parse_args(argv)

    def test_defaults(self):
        """8 writers and 2 readers for 60 s, 100 points per push."""
        args = self._parse([])
        self.assertEqual((8, 2, 60.0, 100, 0, None, False, False),
                         (args.writers, args.readers, args.seconds,
                          args.points_per_push, args.seed, args.database,
                          args.keep, args.overlap))

    def test_sizes(self):
        """Every option is read, zero readers included."""
        args = self._parse(['--writers', '3', '--readers', '0', '--seconds',
                            '0.5', '--points-per-push', '7'])
        self.assertEqual((3, 0, 0.5, 7), (args.writers, args.readers,
                                          args.seconds, args.points_per_push))

    def test_rejects_bad_values(self):
        """Zero writers, negative readers or no time are refused."""
        for argv in (['--writers', '0'], ['--readers', '-1'],
                     ['--seconds', '0'], ['--seconds', 'inf'],
                     ['--points-per-push', '0']):
            code, _, err = self.run_main(['load'] + argv)
            self.assertEqual(2, code, argv)
            self.assertIn('invalid', err, argv)


class ChecksTest(testtools.TestCase):
    """The checks of the readers and of the end of a run."""

    def test_check_read_accepts_whole_pushes(self):
        """Counts that are multiples of a push and grow are fine."""
        last = {'p': (10, D(5), D(1))}
        seen = {'p': (20, D(7), D(-1)), 'q': (10, D(1), D(1))}
        self.assertEqual([], load.check_read(seen, last, 10))

    def test_check_read_finds_partial_push(self):
        """A count that is not a multiple of the push size is reported."""
        problems = load.check_read({'p': (15, D(1), D(1))}, {}, 10)
        self.assertEqual(1, len(problems))
        self.assertIn('not a multiple of 10', problems[0])

    def test_check_read_finds_decrease(self):
        """A count or qty that goes down, or a lost group, is reported."""
        last = {'p': (20, D(5), D(1)), 'q': (10, D(1), D(1))}
        problems = load.check_read({'p': (10, D(4), D(1))}, last, 10)
        self.assertEqual(['p: 10 points after 20', 'p: qty 4 after 5',
                          'q: 0 points after 10', 'q: qty 0 after 1'],
                         problems)

    def test_compare_exact(self):
        """Equal Decimals pass; one unit of 10**-12 off is a mismatch."""
        expected = {'p': (2, 1500000000001, -25)}
        good = {'p': (2, D('1.500000000001'), D('-2.5E-11'))}
        self.assertEqual([], load.compare('w', good, expected))
        bad = {'p': (2, D('1.500000000002'), D('-2.5E-11'))}
        self.assertEqual(1, len(load.compare('w', bad, expected)))
        self.assertEqual(1, len(load.compare(
            'w', {'p': (2, 1.500000000001, D('-2.5E-11'))}, expected)))

    def test_compare_counts_and_groups(self):
        """A wrong count, a missing or an unexpected group is reported."""
        expected = {'p': (2, 10 ** 12, 0), 'q': (1, 0, 0)}
        actual = {'p': (3, D(1), D(0)), 'r': (1, D(0), D(0))}
        mismatches = load.compare('w', actual, expected)
        self.assertEqual(3, len(mismatches))
        self.assertIn('p holds 3 points', mismatches[0])
        self.assertIn('q is missing', mismatches[1])
        self.assertIn('unexpected group r', mismatches[2])

    def test_compare_with_tolerance(self):
        """Backends summing floats are compared within a tolerance."""
        expected = {'p': (1, 10 ** 12 // 10, 0)}
        self.assertEqual([], load.compare(
            'w', {'p': (1, 0.1000000000001, 0.0)}, expected, D('1e-9')))

    def test_make_frame_sums(self):
        """A frame's points add up to the sums make_frame() reports."""
        frame, (count, qty_units, price_units) = load.make_frame(
            random.Random(1), 3, load.WINDOW_BEGIN, 50)
        points = [point for _, point in frame.iterpoints()]
        self.assertEqual(50, count)
        self.assertEqual(50, len(points))
        self.assertEqual(D(qty_units).scaleb(-12), sum(p.qty for p in points))
        self.assertEqual(D(price_units).scaleb(-12),
                         sum(p.price for p in points))
        self.assertEqual({'load-w003'},
                         {p.groupby['project_id'] for p in points})
        for point in points:
            self.assertGreaterEqual(point.qty.as_tuple().exponent, -12)
            self.assertGreaterEqual(point.price.as_tuple().exponent, -12)

    def test_overlap_hours(self):
        """Even pushes move forward; odd ones go back to the day before."""
        for number in range(0, 2000, 2):
            self.assertEqual((number // 2) % load.HOURS,
                             load.overlap_hour(number, 7))
        for number in range(49, 2000, 2):
            forward = (number // 2) % load.HOURS
            late = load.overlap_hour(number, 7)
            if forward >= 24:
                self.assertEqual(forward // 24 - 1, late // 24, number)
                self.assertEqual(7, late % 24)

    def test_make_shared_frame(self):
        """Writers share a round's series, in orders of their own."""
        frames = [load.make_shared_frame(random.Random(writer), 5,
                                         load.WINDOW_BEGIN, 40)
                  for writer in range(2)]
        series = []
        for frame, (count, qty_units, price_units) in frames:
            points = [(type_, point) for type_, point in frame.iterpoints()]
            self.assertEqual(40, count)
            self.assertEqual(D(qty_units).scaleb(-12),
                             sum(p.qty for _, p in points))
            self.assertEqual(D(price_units).scaleb(-12),
                             sum(p.price for _, p in points))
            self.assertEqual({load.SHARED_PROJECT},
                             {p.groupby['project_id'] for _, p in points})
            series.append([(type_, p.groupby['id']) for type_, p in points])
        self.assertEqual(40, len(set(series[0])))
        self.assertEqual(sorted(series[0]), sorted(series[1]))
        self.assertNotEqual(series[0], series[1])
        # NOTE: the next generation's series are new.
        later, _ = load.make_shared_frame(random.Random(0), 6,
                                          load.WINDOW_BEGIN, 40)
        self.assertFalse(set(series[0]) & {
            (type_, p.groupby['id']) for type_, p in later.iterpoints()})

    def test_percentile(self):
        """Nearest-rank percentiles; None without samples."""
        values = list(range(1, 101))
        self.assertEqual((50, 95, 100), (load.percentile(values, 50),
                                         load.percentile(values, 95),
                                         load.percentile(values, 100)))
        self.assertEqual(7, load.percentile([7], 95))
        self.assertIsNone(load.percentile([], 50))

    def test_windows(self):
        """The readers' window has a partial day at each end."""
        self.assertEqual(744, load.HOURS)
        self.assertTrue(load.READ_BEGIN.hour and load.READ_END.hour)
        self.assertTrue(load.WINDOW_BEGIN < load.READ_BEGIN
                        < load.READ_END < load.WINDOW_END)


class LoadCommandTest(base.CLITestCase):
    """``cloudkitty-storage load``: short real runs and the exit code."""

    def test_short_run(self):
        """Two writers and a reader for a second: figures, exit code 0."""
        code, out, err = self.run_main(['load'] + SHORT + ['-f', 'json'])
        self.assertEqual(0, code, err)
        rows = _rows(out)
        self.assertTrue(rows['backend'][0].startswith('sqlalchemy'))
        self.assertEqual((2, 'processes'), rows['writers'])
        self.assertEqual((0, ''), rows['errors'])
        self.assertEqual((0, ''), rows['mismatches'])
        self.assertGreater(rows['min_pushes_per_writer'][0], 0)
        self.assertGreater(rows['reads'][0], 0)
        self.assertEqual(rows['points'][0], rows['pushes'][0] * 10)
        self.assertEqual(rows['points'], rows['checked_points'])
        self.assertEqual('pushes/s', rows['push_rate'][1])
        for name in ('push_p50', 'push_p95', 'push_max', 'read_p50',
                     'read_p95', 'read_max'):
            self.assertEqual('s', rows[name][1], name)
            self.assertGreater(rows[name][0], 0, name)

    def test_short_overlap_run(self):
        """--overlap: writers share series and late days; all checked."""
        code, out, err = self.run_main(['load'] + SHORT + ['--overlap',
                                                           '-f', 'json'])
        self.assertEqual(0, code, err)
        rows = _rows(out)
        self.assertEqual(('overlap', ''), rows['mode'])
        self.assertEqual((0, ''), rows['errors'])
        self.assertEqual((0, ''), rows['mismatches'])
        self.assertEqual(rows['points'], rows['checked_points'])

    def test_configured_backend_kept_then_refused(self):
        """With --keep the data stays; a second run refuses the window."""
        path = os.path.join(self.tmp, 'configured.sqlite')
        argv = ['--connection', main.sqlite_url(path), 'load'] + SHORT
        code, _, err = self.run_main(argv + ['--keep'])
        self.assertEqual(0, code, err)
        code, _, err = self.run_main(argv)
        self.assertEqual(1, code)
        self.assertIn('load needs an empty window', err)
        # NOTE: the refused run deleted nothing.
        store = main.load_storage(main.make_conf(), backend='sqlalchemy',
                                  connection=main.sqlite_url(path))
        self.addCleanup(store.close)
        self.assertGreater(load.points_in_window(store), 0)

    def test_failure_exits_non_zero_after_the_figures(self):
        """An error of the run prints the figures, then exits with 1."""
        failed = load.LoadResult('fake', 1, 0, 1.0, 10, elapsed=1.0,
                                 pushes_by_writer=[3],
                                 errors=['writer 0: push 4: Boom: no'])
        self.useFixture(fixtures.MockPatch(
            'cloudkitty.cli.perf.load.run_load', autospec=True,
            return_value=failed))
        code, out, err = self.run_main(['load', '-f', 'json'])
        self.assertEqual(1, code)
        self.assertEqual((30, 'points'), _rows(out)['points'])
        self.assertIn('load failed: 1 errors, 0 mismatches', err)
        self.assertIn('writer 0: push 4: Boom: no', err)
