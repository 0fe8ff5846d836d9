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
"""Run the commands end to end on SQLite, in-process and as a script."""

import json
import os
import subprocess
import sys

from cloudkitty.cli import demo
from cloudkitty.tests.cli import base


class DemoCommandTest(base.CLITestCase):
    """``cloudkitty-storage demo`` on a temporary file."""

    def run_demo(self, *extra):
        path = os.path.join(self.tmp, 'demo.sqlite')
        code, out, err = self.run_main(
            ['demo', '--database', path, '--month', '2026-02', '-f', 'json']
            + list(extra))
        self.assertEqual(0, code, err)
        return path, json.loads(out)

    def test_totals_by_project_and_type(self):
        path, rows = self.run_demo()
        self.assertTrue(os.path.exists(path))
        self.assertEqual(16, len(rows))
        self.assertEqual({'project_id', 'type', 'qty', 'rate'},
                         set(rows[0]))
        self.assertEqual(4, len({r['project_id'] for r in rows}))
        self.assertEqual({'image', 'instance', 'network.bw', 'volume'},
                         {r['type'] for r in rows})
        self.assertEqual(sorted((r['project_id'], r['type']) for r in rows),
                         [(r['project_id'], r['type']) for r in rows])
        # NOTE: the totals are the exact sums of the generated points.
        sums = {}
        for project_id, frame in demo.generate(demo._month('2026-02')):
            for type_, point in frame.iterpoints():
                qty, rate = sums.get((project_id, type_), (0, 0))
                sums[(project_id, type_)] = (qty + point.qty,
                                             rate + point.price)
        got = {(r['project_id'], r['type']): (demo.D(r['qty']),
                                              demo.D(r['rate']))
               for r in rows}
        self.assertEqual(sums, got)
        # NOTE: a second run recreates the file rather than adding to it.
        _, again = self.run_demo()
        self.assertEqual(rows, again)


class BenchCommandTest(base.CLITestCase):
    """``cloudkitty-storage bench`` on a tiny workload."""

    def test_tiny_bench(self):
        code, out, err = self.run_main(
            ['bench', '--projects', '2', '--resources', '2', '--periods',
             '3', '-f', 'json'])
        self.assertEqual(0, code, err)
        rows = {row['metric']: (row['value'], row['unit'])
                for row in json.loads(out)}
        self.assertEqual((72, 'points'), rows['points'])
        self.assertEqual((3, 'calls'), rows['pushes'])
        self.assertEqual('points/s', rows['push'][1])
        self.assertGreater(rows['push'][0], 0)
        for name in ('total_no_groupby', 'total_by_project_id',
                     'total_by_type_project_id', 'total_by_id',
                     'total_by_time', 'retrieve_first_page',
                     'retrieve_project', 'delete_period', 'delete_project'):
            self.assertEqual('s', rows[name][1], name)
            self.assertGreaterEqual(rows[name][0], 0, name)
        self.assertEqual((72, 'points'), rows['retrieve_total'])
        self.assertEqual((24, 'points'), rows['deleted_points'])
        # NOTE: one project of a period: 6 types x 2 resources.
        self.assertEqual((12, 'points'), rows['deleted_project_points'])
        self.assertEqual('MiB', rows['peak_rss'][1])
        self.assertTrue(rows['backend'][0].startswith('sqlalchemy'))

    def test_keep_database(self):
        path = os.path.join(self.tmp, 'kept.sqlite')
        code, _, err = self.run_main(
            ['bench', '--projects', '1', '--resources', '1', '--periods',
             '2', '--repeat', '1', '--database', path, '--keep'])
        self.assertEqual(0, code, err)
        self.assertTrue(os.path.exists(path))

    def test_database_removed_without_keep(self):
        path = os.path.join(self.tmp, 'gone.sqlite')
        code, _, err = self.run_main(
            ['bench', '--projects', '1', '--resources', '1', '--periods',
             '2', '--repeat', '1', '--database', path])
        self.assertEqual(0, code, err)
        self.assertFalse(os.path.exists(path))

    def test_configured_backend_is_cleaned_up(self):
        path = os.path.join(self.tmp, 'configured.sqlite')
        argv = ['--connection', 'sqlite:///' + path, 'bench', '--projects',
                '1', '--resources', '1', '--periods', '2', '--repeat', '1']
        code, _, err = self.run_main(argv)
        self.assertEqual(0, code, err)
        # NOTE: the data was deleted, so a second run finds an empty window.
        code, _, err = self.run_main(argv)
        self.assertEqual(0, code, err)

    def test_configured_backend_must_be_empty(self):
        path = os.path.join(self.tmp, 'busy.sqlite')
        argv = ['--connection', 'sqlite:///' + path, 'bench', '--projects',
                '1', '--resources', '1', '--periods', '6', '--repeat', '1']
        code, _, err = self.run_main(argv + ['--keep'])
        self.assertEqual(0, code, err)
        code, _, err = self.run_main(argv)
        self.assertEqual(1, code)
        # NOTE: of 36 points, one period and the project of two others
        # at the end and two in the middle were deleted (the first delete
        # of a project is not timed).
        self.assertIn('already holds 6 points', err)


class ConsoleScriptTest(base.CLITestCase):
    """The module runs as a script, as the console entry point does."""

    def run_script(self, *args):
        return subprocess.run(
            [sys.executable, '-m', 'cloudkitty.cli.main'] + list(args),
            capture_output=True, text=True, cwd=self.tmp, timeout=300)

    def test_help(self):
        proc = self.run_script('--help')
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertIn('demo', proc.stdout)

    def test_demo_in_working_directory(self):
        proc = self.run_script('demo', '--month', '2026-02', '-f', 'csv')
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertTrue(
            os.path.exists(os.path.join(self.tmp, demo.DEFAULT_DATABASE)))
        lines = proc.stdout.strip().splitlines()
        self.assertEqual('"project_id","type","qty","rate"', lines[0])
        self.assertEqual(17, len(lines))

    def test_error_exit_code(self):
        proc = self.run_script('--backend', 'nope', 'bench')
        self.assertEqual(1, proc.returncode)
        self.assertEqual(1, len(proc.stderr.strip().splitlines()),
                         proc.stderr)
