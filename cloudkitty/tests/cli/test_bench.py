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
"""Tests of ``bench``: its answer checks, ``--sizes`` and ``--plot``."""

import argparse
import decimal
import gc
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import weakref

import fixtures
import testtools

from cloudkitty.cli import main
from cloudkitty.cli.perf import bench
from cloudkitty.cli.perf import load
from cloudkitty.cli.perf import plot
from cloudkitty.cli.perf import upstream_driver
from cloudkitty.cli.perf import workload
from cloudkitty.tests.cli import base

D = decimal.Decimal


def answer(rows, total=None):
    return {'total': len(rows) if total is None else total,
            'results': rows}


class CheckTotalTest(testtools.TestCase):
    """check_total() accepts exact answers only."""

    expected = {('p1',): (D('1.5'), D('0.0125')),
                ('p2',): (D('2'), D('0.5'))}

    def rows(self, **changes):
        rows = [{'project_id': 'p1', 'qty': D('1.500'), 'rate': D('0.0125')},
                {'project_id': 'p2', 'qty': D('2'), 'rate': D('0.50')}]
        rows[0].update(changes)
        return rows

    def check(self, result, tolerance=0):
        bench.check_total('t', result, ('project_id',), self.expected,
                          tolerance)

    def test_exact_answer_passes(self):
        self.check(answer(self.rows()))

    def test_wrong_sum_fails(self):
        exc = self.assertRaises(bench.CheckFailed, self.check,
                                answer(self.rows(rate=D('0.0126'))))
        self.assertIn('1 wrong', str(exc))
        self.assertIn("('p1',)", str(exc))

    def test_float_fails_when_exact(self):
        self.assertRaises(bench.CheckFailed, self.check,
                          answer(self.rows(qty=1.5)))

    def test_float_passes_with_tolerance(self):
        self.check(answer(self.rows(qty=1.5000000000001)), D('1e-9'))

    def test_missing_group_fails(self):
        exc = self.assertRaises(bench.CheckFailed, self.check,
                                answer(self.rows()[:1]))
        self.assertIn('1 missing', str(exc))

    def test_unexpected_group_fails(self):
        rows = self.rows() + [{'project_id': 'p3', 'qty': D(1),
                               'rate': D(1)}]
        exc = self.assertRaises(bench.CheckFailed, self.check, answer(rows))
        self.assertIn('1 unexpected', str(exc))

    def test_duplicate_group_fails(self):
        rows = self.rows() + self.rows()[:1]
        self.assertRaises(bench.CheckFailed, self.check, answer(rows))

    def test_wrong_total_count_fails(self):
        self.assertRaises(bench.CheckFailed, self.check,
                          answer(self.rows(), total=3))

    def test_empty_without_groupby(self):
        bench.check_total('t', answer([]), (), {})
        bench.check_total('t', answer([{'qty': D(0), 'rate': D(0)}]), (), {})
        self.assertRaises(
            bench.CheckFailed, bench.check_total, 't',
            answer([{'qty': D(1), 'rate': D(0)}]), (), {})


def _cyclic_garbage(test):
    """A weak reference to an object only a reference cycle keeps.

    The collector is off meanwhile (on again at the test's end), so that
    only an explicit collection frees it.
    """
    if gc.isenabled():
        gc.disable()
        test.addCleanup(gc.enable)

    class Node:
        pass

    node = Node()
    node.itself = node
    return weakref.ref(node)


class TimedTest(testtools.TestCase):
    """A timed call starts with no garbage owed to earlier work."""

    def test_garbage_is_collected_before_the_clock_starts(self):
        dead = _cyclic_garbage(self)
        self.assertIsNotNone(dead())
        _, alive = bench._timed(lambda: dead() is not None)
        self.assertFalse(alive)

    def test_upstream_driver_collects_before_each_call(self):
        dead = _cyclic_garbage(self)
        seen = []

        class Store:
            def total(self, **kwargs):
                seen.append(dead())
                return {'total': 0, 'results': []}

        out = io.StringIO()
        upstream_driver.serve(Store(), None, ['{"op": "total"}'], out)
        self.assertEqual([None], seen)
        self.assertEqual({'total': 0, 'results': []},
                         json.loads(out.getvalue())['answer'])


class PeakRssTest(testtools.TestCase):
    """peak_rss_mib() reports a plausible size."""

    def test_positive(self):
        self.assertGreater(bench.peak_rss_mib(), 1)

    @testtools.skipUnless(sys.platform.startswith('linux'),
                          'VmHWM is read on Linux only')
    def test_own_peak_after_exec(self):
        # NOTE: ru_maxrss survives exec, so a process started by a big
        # parent reports the parent's peak; VmHWM is the process's own.
        ballast = b'x' * (200 * 2 ** 20)
        out = subprocess.run(
            [sys.executable, '-c',
             'import resource\n'
             'from cloudkitty.cli.perf import bench\n'
             'print(bench.peak_rss_mib(),\n'
             '      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)'],
            check=True, capture_output=True, text=True).stdout
        del ballast
        own, inherited = out.split()
        self.assertGreater(int(inherited) / 1024, 200)
        self.assertLess(float(own), 200)


#: Why the drawing tests are skipped.
NO_MATPLOTLIB = ('matplotlib is not installed (pip install '
                 '"cloudkitty-storage[plot]" to run the drawing tests)')
HAS_MATPLOTLIB = importlib.util.find_spec('matplotlib') is not None

#: The rows of a single-size run, in order.
SINGLE_METRICS = [
    'backend', 'points', 'pushes', 'push', 'push_time', 'total_no_groupby',
    'total_by_project_id', 'total_by_type_project_id', 'total_by_id',
    'total_by_time', 'total_one_day', 'retrieve_first_page',
    'retrieve_total', 'retrieve_page_90pct', 'retrieve_project',
    'delete_period', 'deleted_points', 'delete_project',
    'delete_project_past', 'deleted_project_points', 'database_size',
    'peak_rss', 'checks_passed']
#: A tiny ``--sizes`` run: 576 and 1992 points.
TINY_SIZES = ['--sizes', '2000,500', '--projects', '2', '--resources', '2',
              '--repeat', '1']


class ParseSizesTest(testtools.TestCase):
    """``--sizes`` takes point counts with k and M suffixes."""

    def test_suffixes(self):
        self.assertEqual([10000], bench.parse_sizes('10k'))
        self.assertEqual([10000], bench.parse_sizes('10K'))
        self.assertEqual([10 ** 6], bench.parse_sizes('1M'))
        self.assertEqual([1500000], bench.parse_sizes('1.5M'))
        self.assertEqual([500], bench.parse_sizes('0.5k'))
        self.assertEqual([2000], bench.parse_sizes('2000'))

    def test_list_in_increasing_order(self):
        self.assertEqual([10 ** 4, 10 ** 5, 10 ** 6, 10 ** 7],
                         bench.parse_sizes('10k,100k,1M,10M'))
        self.assertEqual([500, 2000], bench.parse_sizes(' 2000 , 500 '))

    def test_bad_values(self):
        for text in ('', ',', '10x', '1m', '1e6', '-5', '0', '1.5', '0.5',
                     '1.0001k', '5', '10k,', '10k,10000', 'M', '1 M'):
            self.assertRaises(argparse.ArgumentTypeError,
                              bench.parse_sizes, text)

    def test_messages(self):
        exc = self.assertRaises(argparse.ArgumentTypeError,
                                bench.parse_sizes, '10k,10000')
        self.assertIn("'10000' (10000 points) is given twice", str(exc))
        exc = self.assertRaises(argparse.ArgumentTypeError,
                                bench.parse_sizes, '3')
        self.assertIn('at least 6 points', str(exc))

    def test_labels(self):
        self.assertEqual(
            ['500', '2500', '10k', '1500k', '1M', '10M'],
            [bench.size_label(n) for n in (500, 2500, 10 ** 4, 1500000,
                                           10 ** 6, 10 ** 7)])

    def test_sized_path(self):
        self.assertEqual('/x/b-10k.sqlite',
                         bench.sized_path('/x/b.sqlite', '10k'))
        self.assertEqual('b-1M', bench.sized_path('b', '1M'))


class OutcomeRowsTest(testtools.TestCase):
    """A failed size raises the error its process reported."""

    def outcome(self, exc, plain=True):
        return {'error': str(exc), 'type': type(exc).__name__,
                'plain': plain, 'traceback': 'Traceback...'}

    def test_rows(self):
        self.assertEqual([('points', 6, 'points')], bench.outcome_rows(
            '6', {'rows': [('points', 6, 'points')]}))

    def test_check_failed(self):
        exc = self.assertRaises(
            bench.CheckFailed, bench.outcome_rows, '10k',
            self.outcome(bench.CheckFailed('total_by_id: 1 wrong')))
        self.assertEqual('size 10k: total_by_id: 1 wrong', str(exc))

    def test_plain_error(self):
        exc = self.assertRaises(bench.BenchFailed, bench.outcome_rows, '1M',
                                self.outcome(ValueError('not empty')))
        self.assertEqual('size 1M: not empty', str(exc))

    def test_other_error_is_named(self):
        exc = self.assertRaises(bench.BenchFailed, bench.outcome_rows, '1M',
                                self.outcome(KeyError('x'), plain=False))
        self.assertEqual("size 1M: KeyError: 'x'", str(exc))


class DatabaseSizeTest(base.CLITestCase):
    """The SQL backend's describe() reads the SQLite file and its log.

    A :class:`base.CLITestCase` because main.make_conf() adds a handler to
    the root logger (oslo.log does), which the case removes again.
    """

    def open(self, connection):
        store = main.load_storage(main.make_conf(), backend='sqlalchemy',
                                  connection=connection, create=True)
        self.addCleanup(store.close)
        return store

    def test_sqlite_file(self):
        path = os.path.join(self.tmp, 'size.sqlite')
        store = self.open(main.sqlite_url(path))
        work = workload.Workload(projects=1, resources=1, periods=2)
        for scope_id, frame in work.iter_frames():
            store.push([frame], scope_id=scope_id)
        description = store.describe()
        wal = path + '-wal'
        self.assertEqual(os.path.getsize(path) + (
            os.path.getsize(wal) if os.path.exists(wal) else 0),
            description.size_bytes)
        self.assertGreater(description.size_bytes, 0)
        self.assertEqual(main.sqlite_url(path), description.location)
        self.assertFalse(description.process_private)
        self.assertEqual('sqlalchemy (sqlite)', main.describe_store(store))

    def test_memory(self):
        description = self.open('sqlite://').describe()
        self.assertIsNone(description.size_bytes)
        self.assertTrue(description.process_private)


class MeasureSizeTest(base.CLITestCase):
    """measure_size() as a size's process runs it, here in-process."""

    def plan(self, **changes):
        plan = {'projects': 1, 'resources': 1, 'periods': 4,
                'push_per': 'period', 'seed': 0, 'repeat': 1,
                'configured': False, 'keep': False}
        plan.update(changes)
        return plan

    def spec(self):
        path = os.path.join(self.tmp, 'm.sqlite')
        return load.StorageSpec(connection=main.sqlite_url(path),
                                backend='sqlalchemy')

    def test_rows(self):
        outcome = bench.measure_size(self.spec(), self.plan())
        rows = {metric: value for metric, value, _ in outcome['rows']}
        self.assertEqual(SINGLE_METRICS, [row[0] for row in outcome['rows']])
        self.assertEqual(24, rows['points'])

    def test_configured_window_must_be_empty(self):
        spec = self.spec()
        plan = self.plan(configured=True, keep=True, periods=6)
        self.assertIn('rows', bench.measure_size(spec, plan))
        outcome = bench.measure_size(spec, plan)
        self.assertEqual('ValueError', outcome['type'])
        self.assertTrue(outcome['plain'])
        # NOTE: one period of six points was deleted, then the project of
        # two others at the end and two in the middle (the first delete
        # of a project is not timed).
        self.assertIn('already holds 6 points', outcome['error'])
        self.assertIn('Traceback', outcome['traceback'])


class _DyingSpec(load.StorageSpec):
    """A spec whose process ends before it reports.

    It exits with ``exit_code``, or kills itself with SIGKILL when that is
    None.
    """

    exit_code = None

    def open(self):
        if self.exit_code is None:
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(self.exit_code)


class _ExitingSpec(_DyingSpec):
    """A spec whose process exits with code 3 before it reports."""

    exit_code = 3


class SizeProcessTest(testtools.TestCase):
    """A size's process that ends without an outcome is reported."""

    plan = {'label': '1k', 'projects': 1, 'resources': 1, 'periods': 1,
            'push_per': 'period', 'seed': 0, 'repeat': 1,
            'configured': False, 'keep': False}

    def test_exit_without_outcome(self):
        exc = self.assertRaises(bench.BenchFailed, bench._run_size_process,
                                _ExitingSpec(), self.plan)
        self.assertIn('size 1k: the benchmark process ended with code 3 '
                      'before it reported', str(exc))

    def test_killed(self):
        exc = self.assertRaises(bench.BenchFailed, bench._run_size_process,
                                _DyingSpec(), self.plan)
        self.assertIn('code -9 before it reported (killed by signal 9',
                      str(exc))


def results(backend, sizes, seconds=0.01):
    """A results document as ``--json-out`` writes it, made up."""
    document = bench.new_results({'projects': 2, 'resources': 2,
                                  'periods': None, 'push_per': 'period',
                                  'repeat': 1, 'seed': 0})
    document['backend'] = backend
    for number, size in enumerate(sizes, 1):
        rows = [['backend', backend, ''], ['points', size, 'points'],
                ['push', 1000 * number, 'points/s'],
                ['push_time', 1.0, 's'],
                ['total_no_groupby', seconds * number, 's'],
                ['total_one_day', seconds, 's'],
                ['retrieve_page_90pct', seconds * number * 2, 's'],
                ['database_size', size / 10000, 'MiB'],
                ['run_time', 3.5, 's']]
        document['runs'].append({'size': size,
                                 'label': bench.size_label(size),
                                 'projects': 1, 'resources': 1,
                                 'periods': 1, 'rows': rows})
    return document


class ResultsTest(testtools.TestCase):
    """Results documents: saved, read back, checked, side by side."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def save(self, name, document):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as stream:
            json.dump(document, stream)
        return path

    def test_round_trip(self):
        document = results('sqlalchemy (sqlite)', [1000, 10000])
        path = os.path.join(self.tmp, 'r.json')
        bench.save_results(document, path)
        self.assertEqual(document, bench.load_results(path))
        self.assertFalse(os.path.exists(path + '.tmp'))

    def test_bad_files(self):
        good = results('x', [1000])
        for name, content, message in (
                ('text', 'hello', 'not JSON'),
                ('list', [], 'not the figures of bench --json-out'),
                ('other', dict(good, format='other'), 'not the figures'),
                ('version', dict(good, version=2), 'version 2'),
                ('runs', dict(good, runs=[{'label': '1k', 'rows': [[1]]}]),
                 'malformed runs')):
            path = os.path.join(self.tmp, name)
            with open(path, 'w') as stream:
                if isinstance(content, str):
                    stream.write(content)
                else:
                    json.dump(content, stream)
            exc = self.assertRaises(ValueError, bench.load_results, path)
            self.assertIn(message, str(exc), name)

    def test_table_of_one_backend(self):
        document = results('b', [1000, 10000])
        columns, rows = bench.results_table([document], ['b'])
        self.assertEqual(('metric', '1k', '10k', 'unit'), columns)
        self.assertEqual(('points', 1000, 10000, 'points'), rows[1])

    def test_table_of_two_backends(self):
        first = results('b', [1000, 10000])
        second = results('c', [1000])
        second['runs'][0]['rows'].append(['extra', 1, 'x'])
        columns, rows = bench.results_table([first, second], ['b', 'c'])
        self.assertEqual(('metric', 'b 1k', 'b 10k', 'c 1k', 'unit'),
                         columns)
        self.assertEqual(('extra', None, None, 1, 'x'), rows[-1])

    def test_names_are_unique(self):
        same = results('sqlalchemy (sqlite)', [1000])
        other = results('sqlalchemy (postgresql)', [1000])
        self.assertEqual(
            ['sqlalchemy (sqlite) [a.json]', 'sqlalchemy (sqlite) [b.json]',
             'sqlalchemy (postgresql)', 'sqlalchemy (sqlite) [a.json] #2'],
            bench._names([same, same, other, same],
                         ['/x/a.json', '/y/b.json', 'p.json', '/z/a.json']))


class BenchRunTest(base.CLITestCase):
    """``bench`` end to end, on tiny workloads."""

    def ok(self, argv):
        code, out, err = self.run_main(argv)
        self.assertEqual(0, code, err)
        return out

    def test_single_size_rows(self):
        path = os.path.join(self.tmp, 'single.json')
        out = self.ok(['bench', '--projects', '2', '--resources', '2',
                       '--periods', '30', '--repeat', '1', '-f', 'json',
                       '--json-out', path])
        rows = json.loads(out)
        self.assertEqual(SINGLE_METRICS, [row['metric'] for row in rows])
        values = {row['metric']: (row['value'], row['unit']) for row in rows}
        self.assertEqual((720, 'points'), values['points'])
        for name in ('total_one_day', 'retrieve_page_90pct'):
            self.assertEqual('s', values[name][1])
            self.assertGreaterEqual(values[name][0], 0)
        self.assertEqual('MiB', values['database_size'][1])
        self.assertGreater(values['database_size'][0], 0)
        saved = bench.load_results(path)
        self.assertEqual('sqlalchemy (sqlite)', saved['backend'])
        self.assertEqual(30, saved['options']['periods'])
        [run] = saved['runs']
        self.assertEqual((720, '720'), (run['size'], run['label']))
        self.assertEqual([list(row.values()) for row in rows], run['rows'])

    def test_reuse_rounds_side_by_side(self):
        path = os.path.join(self.tmp, 'rounds.json')
        out = self.ok(['bench', '--projects', '2', '--resources', '2',
                       '--periods', '30', '--repeat', '1', '--reuse', '3',
                       '-f', 'json', '--json-out', path])
        rows = json.loads(out)
        self.assertEqual(['metric', 'round 1', 'round 2', 'round 3',
                          'unit'], list(rows[0]))
        metrics = [row['metric'] for row in rows]
        # NOTE: each round ends with the purge of the whole window, which
        # is checked (one check more).
        self.assertEqual(SINGLE_METRICS[:-1] + ['purge', 'checks_passed'],
                         metrics)
        values = {row['metric']: row for row in rows}
        for number in (1, 2, 3):
            column = 'round %d' % number
            self.assertEqual(720, values['points'][column])
            self.assertGreater(values['purge'][column], 0)
            self.assertEqual(values['checks_passed']['round 1'],
                             values['checks_passed'][column])
        saved = bench.load_results(path)
        self.assertEqual([1, 2, 3], [run['round'] for run in saved['runs']])

    def test_reuse_keeps_the_last_round(self):
        url = main.sqlite_url(os.path.join(self.tmp, 'reused.sqlite'))
        argv = ['--connection', url, 'bench', '--projects', '1',
                '--resources', '1', '--periods', '6', '--repeat', '1',
                '--reuse', '2']
        self.ok(argv + ['--keep'])
        code, _, err = self.run_main(argv)
        self.assertEqual(1, code)
        # NOTE: the last round's 36 points less one period and the
        # project of two others at the end and two in the middle (the
        # first delete of a project is not timed).
        self.assertIn('already holds 6 points', err)

    def test_reuse_is_refused_with_sizes(self):
        code, _, err = self.run_main(['bench', '--reuse', '2', '--sizes',
                                      '1k'])
        self.assertEqual(1, code)
        self.assertIn('--reuse', err)

    def test_sizes(self):
        json_out = os.path.join(self.tmp, 'sizes.json')
        database = os.path.join(self.tmp, 'b.sqlite')
        out = self.ok(['-q', 'bench'] + TINY_SIZES + [
            '-f', 'json', '--json-out', json_out, '--database', database,
            '--keep'])
        rows = {row['metric']: row for row in json.loads(out)}
        self.assertEqual(['metric', '500', '2k', 'unit'],
                         list(rows['points']))
        shape = [(rows[name]['500'], rows[name]['2k'])
                 for name in ('points', 'projects', 'resources', 'periods')]
        self.assertEqual([(576, 1992), (2, 2), (2, 2), (24, 83)], shape)
        self.assertEqual(({'500': 576, '2k': 1992, 'unit': 'points'}),
                         {k: v for k, v in rows['retrieve_total'].items()
                          if k != 'metric'})
        for name in ('total_one_day', 'retrieve_page_90pct', 'run_time',
                     'database_size', 'peak_rss'):
            self.assertGreater(rows[name]['500'], 0, name)
            self.assertGreater(rows[name]['2k'], 0, name)
        # NOTE: one file per size, kept; each size had one of its own.
        for label in ('500', '2k'):
            self.assertTrue(os.path.exists(
                os.path.join(self.tmp, 'b-%s.sqlite' % label)))
        saved = bench.load_results(json_out)
        self.assertEqual([500, 2000], [run['size'] for run in saved['runs']])
        self.assertIsNone(saved['options']['periods'])
        self.assertEqual(rows['points']['2k'],
                         dict((m, v) for m, v, _ in
                              saved['runs'][1]['rows'])['points'])

    def test_sizes_refuse_existing_files(self):
        database = os.path.join(self.tmp, 'b.sqlite')
        open(os.path.join(self.tmp, 'b-2k.sqlite'), 'w').close()
        code, _, err = self.run_main(['bench'] + TINY_SIZES + [
            '--database', database])
        self.assertEqual(1, code)
        self.assertIn('b-2k.sqlite already exists', err)

    def test_sizes_on_a_configured_backend(self):
        url = main.sqlite_url(os.path.join(self.tmp, 'configured.sqlite'))
        self.ok(['--connection', url, 'bench', '--projects', '1',
                 '--resources', '1', '--periods', '6', '--repeat', '1',
                 '--keep'])
        argv = ['-q', '--connection', url, 'bench', '--sizes', '100,200',
                '--repeat', '1']
        code, _, err = self.run_main(argv)
        self.assertEqual(1, code)
        self.assertIn('size 100: the configured backend already holds 6 '
                      'points', err)
        code, _, err = self.run_main(argv + ['--keep'])
        self.assertEqual(1, code)
        self.assertIn('--keep with several --sizes', err)

    def test_bad_sizes_is_a_usage_error(self):
        code, _, err = self.run_main(['bench', '--sizes', '10x'])
        self.assertEqual(2, code)
        self.assertIn("--sizes: bad size '10x'", err)

    def test_from_json_runs_nothing(self):
        path = os.path.join(self.tmp, 'r.json')
        bench.save_results(results('b', [1000, 10000]), path)
        out = self.ok(['bench', '--from-json', path, '-f', 'csv'])
        self.assertEqual('"metric","1k","10k","unit"', out.splitlines()[0])
        code, _, err = self.run_main(['bench', '--from-json', path,
                                      '--sizes', '1k'])
        self.assertEqual(1, code)
        self.assertIn('--from-json only reads saved figures', err)

    def test_output_directory_must_exist(self):
        for option in ('--json-out', '--plot'):
            if option == '--plot' and not HAS_MATPLOTLIB:
                continue
            code, _, err = self.run_main(
                ['bench', '--sizes', '100', option,
                 os.path.join(self.tmp, 'missing', 'out')])
            self.assertEqual(1, code)
            self.assertIn('does not exist', err)


class PlotTest(base.CLITestCase):
    """``--plot`` draws a picture, or says what to install."""

    def test_missing_matplotlib_fails_before_the_run(self):
        # NOTE: None in sys.modules makes an import fail; the import
        # system reads the dict itself, so an item is patched, not the
        # attribute.
        missing = object()
        saved = sys.modules.get('matplotlib', missing)
        sys.modules['matplotlib'] = None
        self.addCleanup(lambda: sys.modules.pop('matplotlib')
                        if saved is missing else
                        sys.modules.__setitem__('matplotlib', saved))
        code, _, err = self.run_main(
            ['bench', '--sizes', '100', '--plot',
             os.path.join(self.tmp, 'x.png')])
        self.assertEqual(1, code)
        self.assertIn(plot.INSTALL_HINT, err)
        self.assertNotIn('Size 100', err)

    @testtools.skipUnless(HAS_MATPLOTLIB, NO_MATPLOTLIB)
    def test_png_of_two_backends(self):
        paths = []
        for name, backend, seconds in (
                ('sqlite.json', 'sqlalchemy (sqlite)', 0.01),
                ('pg.json', 'sqlalchemy (postgresql)', 0.03)):
            paths.append(os.path.join(self.tmp, name))
            document = results(backend, [1000, 10000, 100000], seconds)
            if name == 'pg.json':
                for run in document['runs']:
                    run['rows'] = [row for row in run['rows']
                                   if row[0] != 'database_size']
            bench.save_results(document, paths[-1])
        png = os.path.join(self.tmp, 'both.png')
        code, _, err = self.run_main(
            ['bench', '--from-json', paths[0], '--from-json', paths[1],
             '--plot', png])
        self.assertEqual(0, code, err)
        with open(png, 'rb') as stream:
            self.assertEqual(b'\x89PNG\r\n\x1a\n', stream.read(8))

    @testtools.skipUnless(HAS_MATPLOTLIB, NO_MATPLOTLIB)
    def test_queries_of_the_picture(self):
        drawn = []
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.cli.perf.plot.draw',
            lambda *args: drawn.append(args)))
        document = results('b', [1000, 10000])
        bench.draw_results([document], ['b'], 'x.png')
        [(path, series, queries, title, subtitle)] = drawn
        # NOTE: push_time and run_time are in seconds but no query.
        self.assertEqual(['total_no_groupby', 'total_one_day',
                          'retrieve_page_90pct'], queries)
        self.assertEqual('cloudkitty-storage bench: b', title)
        self.assertIn('median of 1 run;', subtitle)
        [one] = series
        self.assertEqual([(1000, 1000), (10000, 2000)], one.push)
        self.assertEqual([(1000, 0.1), (10000, 1.0)], one.size)
        self.assertEqual([(1000, 0.01), (10000, 0.02)],
                         one.latency['total_no_groupby'])

    @testtools.skipUnless(HAS_MATPLOTLIB, NO_MATPLOTLIB)
    def test_tiny_sizes_run_with_a_picture(self):
        png = os.path.join(self.tmp, 'sizes.svg')
        code, out, err = self.run_main(
            ['-q', 'bench', '--sizes', '100,200', '--repeat', '1',
             '--plot', png, '-f', 'value', '-c', 'metric'])
        self.assertEqual(0, code, err)
        self.assertIn('total_one_day', out.split())
        with open(png) as stream:
            self.assertIn('<svg', stream.read())
