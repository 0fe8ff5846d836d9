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
"""``push``, ``retrieve``, ``total`` and ``delete`` on SQLite files."""

import datetime
import decimal
import io
import json
import os
import subprocess
import sys

import fixtures

from cloudkitty.cli import data
from cloudkitty.cli import main
from cloudkitty import dataframe
from cloudkitty.storage.v2 import sqlalchemy as sql_storage
from cloudkitty.tests.cli import base

D = decimal.Decimal
UTC = datetime.timezone.utc
JAN = datetime.datetime(2026, 1, 1, tzinfo=UTC)
HOUR = datetime.timedelta(hours=1)
WINDOW = ['--begin', '2026-01-01', '--end', '2026-02-01']


def make_frame(start, points, hours=1):
    """A frame from ``[(type, qty, price, groupby, metadata), ...]``."""
    frame = dataframe.DataFrame(start, start + hours * HOUR)
    for type_, qty, price, groupby, metadata in points:
        unit = 'GiB' if type_ == 'volume' else type_
        frame.add_point(dataframe.DataPoint(unit, qty, price, groupby,
                                            metadata), type_)
    return frame


def sample_frames(start=JAN):
    """Three hourly frames, two projects, exact prices.

    ::

        hour 0: instance p1 1 x 0.0125, volume p1 20 GiB 0.008,
                instance p2 1 x 0.05
        hour 1: instance p1 1 x 0.0125
        hour 2: volume p2 100 GiB 0.04
    """
    p1 = {'project_id': 'p1', 'id': 'i1'}
    p2 = {'project_id': 'p2', 'id': 'i2'}
    return [
        make_frame(start, [
            ('instance', D('1'), D('0.0125'), p1, {'flavor': 'm1.small'}),
            ('volume', D('20'), D('0.008'),
             {'project_id': 'p1', 'id': 'v1'}, {'volume_type': 'ssd'}),
            ('instance', D('1'), D('0.05'), p2, {'flavor': 'm1.large'})]),
        make_frame(start + HOUR, [
            ('instance', D('1'), D('0.0125'), p1, {'flavor': 'm1.small'})]),
        make_frame(start + 2 * HOUR, [
            ('volume', D('100'), D('0.04'),
             {'project_id': 'p2', 'id': 'v2'}, {})]),
    ]


def as_jsonl(frames):
    return ''.join(frame.json() + '\n' for frame in frames)


def rows_of(frames):
    """The rows ``retrieve -f json`` prints for ``frames``."""
    rows = []
    for frame in frames:
        for type_, point in frame.iterpoints():
            rows.append({
                'begin': frame.start.isoformat(),
                'end': frame.end.isoformat(), 'type': type_,
                'unit': point.unit, 'qty': str(point.qty),
                'price': str(point.price),
                'groupby': dict(point.groupby),
                'metadata': dict(point.metadata)})
    return rows


class _TTY(io.StringIO):
    """A captured stream that claims to be a terminal."""

    def isatty(self):
        return True


class DataCLITestCase(base.CLITestCase):
    """Runs commands on ``self.db``, a SQLite file in a temporary dir."""

    def setUp(self):
        super().setUp()
        self.db = os.path.join(self.tmp, 'rated.sqlite')
        self.connection = self.make_connection()

    def make_connection(self):
        """The ``--connection`` URL of the tests: here ``self.db``."""
        return main.sqlite_url(self.db)

    def run_main(self, argv, stdin='', stderr=None):
        """Run on ``self.db``; return ``(exit code, stdout, stderr)``."""
        stdout = io.StringIO()
        stderr = stderr if stderr is not None else io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', stderr))
        code = main.main(['--connection', self.connection] + list(argv),
                         stdin=io.StringIO(stdin), stdout=stdout,
                         stderr=stderr)
        return code, stdout.getvalue(), stderr.getvalue()

    def ok(self, argv, stdin=''):
        """Run a command that must succeed; return its stdout, as JSON."""
        code, out, err = self.run_main(list(argv) + ['-f', 'json'], stdin)
        self.assertEqual(0, code, err)
        return json.loads(out)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, 'w', encoding='utf-8') as stream:
            stream.write(text)
        return path

    def push_frames(self, frames, *extra):
        path = self.write('frames.jsonl', as_jsonl(frames))
        return self.ok(['push', path] + list(extra))

    def retrieved(self, *extra, everything=True):
        """The rows of ``retrieve [--all]``, groupby/metadata decoded."""
        rows = self.ok(['retrieve'] + (['--all'] if everything else [])
                       + list(extra))
        for row in rows:
            row['groupby'] = json.loads(row['groupby'])
            row['metadata'] = json.loads(row['metadata'])
        return rows

    def stored_points(self):
        """Count every stored point, whatever its date."""
        if self.connection == main.sqlite_url(self.db) and \
                not os.path.exists(self.db):
            # NOTE: no file, no point; opening it would create it.
            return 0
        store = sql_storage.SQLAlchemyStorage(
            main.make_conf(), connection=self.connection)
        self.addCleanup(store.close)
        store.init()
        return data.count_points(store)

    def assertOneLineError(self, code, out, err, *fragments):
        self.assertEqual(1, code, err)
        self.assertEqual('', out)
        lines = err.strip().splitlines()
        self.assertEqual(1, len(lines), err)
        self.assertNotIn('Traceback', err)
        for fragment in fragments:
            self.assertIn(fragment, lines[0])


class PushTest(DataCLITestCase):
    """``push``: every input format, checked before anything is written."""

    def test_jsonl_round_trip(self):
        """A JSON Lines push comes back equal from retrieve -f json."""
        frames = sample_frames()
        shown = self.push_frames(frames, '--scope-id', 'p1')
        self.assertEqual({'format': 'jsonl', 'frames': 3, 'points': 5,
                          'batches': 1, 'landed_before': 0,
                          'scope_id': 'p1'}, shown)
        self.assertEqual(rows_of(frames), self.retrieved(*WINDOW))

    def test_json_single_frame(self):
        frame = sample_frames()[0]
        path = self.write('one.json', frame.json())
        shown = self.ok(['push', path])
        self.assertEqual(('json', 1, 3), (shown['format'], shown['frames'],
                                          shown['points']))
        self.assertEqual(rows_of([frame]), self.retrieved(*WINDOW))

    def test_json_list(self):
        frames = sample_frames()
        text = json.dumps([json.loads(f.json()) for f in frames], indent=2)
        shown = self.ok(['push', self.write('list.json', text)])
        self.assertEqual(('json', 3, 5), (shown['format'], shown['frames'],
                                          shown['points']))
        self.assertEqual(rows_of(frames), self.retrieved(*WINDOW))

    def test_json_lines_in_a_json_file(self):
        """auto reads JSON Lines even from a .json file."""
        path = self.write('lines.json', as_jsonl(sample_frames()))
        self.assertEqual('jsonl', self.ok(['push', path])['format'])

    def test_stdin(self):
        shown = self.ok(['push', '-'], stdin=as_jsonl(sample_frames()))
        self.assertEqual(('jsonl', 5), (shown['format'], shown['points']))
        self.assertEqual(5, len(self.retrieved(*WINDOW)))

    def test_csv_with_json_columns_from_stdin(self):
        """retrieve -f csv output is push input (auto detects CSV)."""
        self.push_frames(sample_frames())
        code, csv_text, err = self.run_main(
            ['retrieve', '--all', '-f', 'csv'] + WINDOW)
        self.assertEqual(0, code, err)
        before = self.retrieved(*WINDOW)
        shown = self.ok(['push', '-'], stdin=csv_text)
        self.assertEqual(('csv', 3, 5), (shown['format'], shown['frames'],
                                         shown['points']))
        self.assertEqual(sorted(before * 2, key=json.dumps),
                         sorted(self.retrieved(*WINDOW), key=json.dumps))

    def test_csv_key_columns(self):
        text = ('begin,end,type,unit,qty,price,groupby.project_id,'
                'metadata.flavor\n'
                '2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,instance,'
                'instance,1,0.0125,p1,m1.small\n'
                '2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,volume,GiB,'
                '20,0.008,p1,\n'
                '2026-01-01 01:00,2026-01-01 02:00,instance,instance,1,'
                '0.0125,p1,m1.small\n')
        shown = self.ok(['push', self.write('points.csv', text)])
        self.assertEqual(('csv', 2, 3), (shown['format'], shown['frames'],
                                         shown['points']))
        rows = self.retrieved(*WINDOW)
        self.assertEqual({'project_id': 'p1'}, rows[0]['groupby'])
        self.assertEqual({'flavor': 'm1.small'}, rows[0]['metadata'])
        # NOTE: an empty KEY cell leaves the key out.
        self.assertEqual({}, rows[1]['metadata'])
        self.assertEqual('2026-01-01T01:00:00+00:00', rows[2]['begin'])

    def test_json_numbers_are_exact(self):
        """JSON numbers are read as Decimals, never through a float."""
        frame = json.loads(sample_frames()[0].json())
        point = frame['usage']['volume'][0]
        point['vol']['qty'] = D('20.000000000001')
        point['rating']['price'] = D('0.123456789012')
        text = dataframe.dumps(frame)
        self.assertIn('"qty": 20.000000000001', text)
        self.assertIn('"price": 0.123456789012', text)
        self.ok(['push', '-'], stdin=text)
        rows = self.ok(['total', '--type', 'volume'] + WINDOW)
        self.assertEqual(('20.000000000001', '0.123456789012'),
                         (rows[0]['qty'], rows[0]['rate']))

    def test_flat_points_of_earlier_versions(self):
        """Points in the flat format, numbers as strings, are still read."""
        frame = json.loads(sample_frames()[0].json())
        for points in frame['usage'].values():
            for index, point in enumerate(points):
                points[index] = {
                    'unit': point['vol']['unit'],
                    'qty': str(point['vol']['qty']),
                    'price': str(point['rating']['price']),
                    'groupby': point['groupby'],
                    'metadata': point['metadata'], 'description': None}
        self.ok(['push', '-'], stdin=json.dumps(frame))
        rows = self.ok(['total', '--type', 'volume'] + WINDOW)
        self.assertEqual(('20', '0.008'), (rows[0]['qty'], rows[0]['rate']))

    def test_explicit_format(self):
        path = self.write('data.txt', as_jsonl(sample_frames()))
        shown = self.ok(['push', path, '--input-format', 'jsonl'])
        self.assertEqual('jsonl', shown['format'])
        code, out, err = self.run_main(
            ['push', path, '--input-format', 'json'])
        self.assertOneLineError(code, out, err, 'line 2 column 1',
                                'invalid JSON')

    def test_batches(self):
        shown = self.push_frames(sample_frames(), '--batch-size', '2')
        self.assertEqual((3, 5, 2), (shown['frames'], shown['points'],
                                     shown['batches']))
        shown = self.push_frames(sample_frames(), '--batch-size', '0')
        self.assertEqual(1, shown['batches'])
        self.assertEqual(10, self.stored_points())

    def test_progress_on_a_terminal_only(self):
        path = self.write('frames.jsonl', as_jsonl(sample_frames()))
        tty = _TTY()
        code, _, err = self.run_main(['push', path, '--batch-size', '1'],
                                     stderr=tty)
        self.assertEqual(0, code, err)
        self.assertIn('\rpush [', err)
        self.assertIn('3/3 frames\n', err)
        code, _, err = self.run_main(['push', path, '--batch-size', '1'])
        self.assertEqual(0, code, err)
        self.assertNotIn('push [', err)

    def test_failed_batch_reports_what_landed(self):
        """Batch 2 fails: the message says batch 1 (2 frames) stayed."""
        real_push = sql_storage.SQLAlchemyStorage.push
        calls = []

        def push(store, frames, scope_id=None, idempotency_key=None):
            calls.append(len(frames))
            if len(calls) == 2:
                raise RuntimeError('disk full')
            return real_push(store, frames, scope_id=scope_id)

        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.sqlalchemy.SQLAlchemyStorage.push', push))
        path = self.write('frames.jsonl', as_jsonl(sample_frames()))
        code, out, err = self.run_main(['push', path, '--batch-size', '2'])
        self.assertOneLineError(
            code, out, err, 'batch 2 of 2 (frames 3-3) failed: disk full',
            'batch 1 was stored and kept (4 points, input frames up to 2)',
            'run again with --skip 2 to push the rest')
        self.assertEqual(4, self.stored_points())
        calls.append('the disk was emptied')
        shown = self.ok(['push', path, '--batch-size', '2', '--skip', '2'])
        self.assertEqual((1, 1, 1), (shown['frames'], shown['points'],
                                     shown['batches']))
        self.assertEqual(rows_of(sample_frames()), self.retrieved(*WINDOW))

    def test_rerun_with_idempotency_key_stores_the_rest_once(self):
        """Batch 2 fails; the same command run again stores it only."""
        real_push = sql_storage.SQLAlchemyStorage.push
        keys = []

        def push(store, frames, scope_id=None, idempotency_key=None):
            keys.append(idempotency_key)
            if len(keys) == 2:
                raise RuntimeError('timeout')
            return real_push(store, frames, scope_id=scope_id,
                             idempotency_key=idempotency_key)

        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.sqlalchemy.SQLAlchemyStorage.push', push))
        path = self.write('frames.jsonl', as_jsonl(sample_frames()))
        argv = ['push', path, '--batch-size', '2', '--idempotency-key', 'r1']
        code, out, err = self.run_main(argv)
        self.assertNotEqual(0, code)
        self.assertEqual(4, self.stored_points())
        self.ok(argv)
        self.ok(argv)
        self.assertEqual(['r1:1-2', 'r1:3-3'] * 3, keys)
        self.assertEqual(rows_of(sample_frames()), self.retrieved(*WINDOW))

    def test_failure_after_skip_counts_input_frames(self):
        def push(store, frames, scope_id=None, idempotency_key=None):
            raise RuntimeError('disk full')

        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.sqlalchemy.SQLAlchemyStorage.push', push))
        code, out, err = self.run_main(
            ['push', '-', '--skip', '1', '--batch-size', '1'],
            stdin=as_jsonl(sample_frames()))
        self.assertOneLineError(code, out, err,
                                'batch 1 of 2 (frames 2-2) failed',
                                'this run stored nothing')

    def test_skip_beyond_the_input(self):
        code, out, err = self.run_main(['push', '-', '--skip', '4'],
                                       stdin=as_jsonl(sample_frames()))
        self.assertOneLineError(code, out, err,
                                '--skip 4: <stdin> holds only 3')

    def test_first_batch_failure(self):
        code, out, err = self.run_main(
            ['push', '-', '--scope-id', 'x' * 10000],
            stdin=as_jsonl(sample_frames()))
        self.assertOneLineError(code, out, err, 'batch 1 of 1',
                                'this run stored nothing')

    def test_empty_input(self):
        shown = self.ok(['push', '-'], stdin='\n\n')
        self.assertEqual((0, 0, 0), (shown['frames'], shown['points'],
                                     shown['batches']))


class BadInputTest(DataCLITestCase):
    """Invalid input: one line naming the place, exit 1, nothing written."""

    def assertRejected(self, name, text, *fragments):
        path = self.write(name, text)
        code, out, err = self.run_main(['push', path])
        self.assertOneLineError(code, out, err, name, *fragments)
        self.assertEqual(0, self.stored_points())
        # NOTE: input is checked before the backend is even built.
        self.assertFalse(os.path.exists(self.db))

    def test_invalid_jsonl_line(self):
        lines = as_jsonl(sample_frames()).splitlines()
        lines[1] = lines[1][:40]
        self.assertRejected('bad.jsonl', '\n'.join(lines),
                            'line 2: invalid JSON at column')

    def test_invalid_json_position(self):
        first, second, third = (f.json() for f in sample_frames())
        # NOTE: the comma after the second frame is missing.
        text = '[\n%s,\n%s\n%s\n]\n' % (first, second, third)
        self.assertRejected('bad.json', text, 'line 4 column 1: invalid '
                            "JSON: Expecting ',' delimiter")

    def test_end_not_after_begin(self):
        frame = json.loads(sample_frames()[0].json())
        frame['period']['end'] = frame['period']['begin']
        text = as_jsonl(sample_frames()) + json.dumps(frame) + '\n'
        self.assertRejected('bad.jsonl', text, 'line 4:',
                            'must be after start')

    def test_end_not_after_begin_in_a_list(self):
        frames = [json.loads(f.json()) for f in sample_frames()]
        frames[1]['period']['end'] = '2025-01-01T00:00:00Z'
        self.assertRejected('bad.json', json.dumps(frames), 'frame 2:',
                            'must be after start')

    def test_bad_date_in_csv(self):
        text = ('begin,end,type,qty,price\n'
                '2026-01-01,2026-01-02,cpu,1,1\n'
                '2026-01-32,2026-02-02,cpu,1,1\n')
        self.assertRejected('bad.csv', text, 'line 3:', 'Invalid begin')

    def test_csv_end_not_after_begin(self):
        text = ('begin,end,type,qty,price\n'
                '2026-01-02,2026-01-01,cpu,1,1\n')
        self.assertRejected('bad.csv', text, 'line 2:', 'must be after')

    def test_csv_unknown_column(self):
        self.assertRejected('bad.csv', 'begin,end,type,qty,price,flavor\n',
                            'line 1:', "unknown column 'flavor'")

    def test_csv_missing_column(self):
        self.assertRejected('bad.csv', 'begin,end,type,qty\n',
                            "missing column(s) price")

    def test_csv_field_count(self):
        self.assertRejected('bad.csv', 'begin,end,type,qty,price\n'
                            '2026-01-01,2026-01-02,cpu,1\n',
                            'line 2: expected 5 fields, got 4')

    def test_csv_bad_groupby_json(self):
        self.assertRejected('bad.csv', 'begin,end,type,qty,price,groupby\n'
                            '2026-01-01,2026-01-02,cpu,1,1,[1]\n',
                            'line 2: groupby: expected a JSON object')

    def test_bad_number(self):
        frame = json.loads(sample_frames()[0].json())
        frame['usage']['instance'][0]['vol']['qty'] = 'lots'
        self.assertRejected('bad.jsonl', json.dumps(frame), 'line 1:',
                            "qty is not a valid number")

    def test_price_out_of_exact_range(self):
        """What push() would reject is caught before any batch."""
        frames = [json.loads(f.json()) for f in sample_frames()]
        frames[2]['usage']['volume'][0]['rating']['price'] = '1E+20'
        self.assertRejected('bad.jsonl', ''.join(
            json.dumps(f) + '\n' for f in frames), 'line 3:',
            'absolute value must be below 10**20')

    def test_not_a_frame(self):
        self.assertRejected('bad.json', '[1]',
                            'frame 1: expected a DataFrame object')

    def test_missing_file(self):
        code, out, err = self.run_main(
            ['push', os.path.join(self.tmp, 'missing.json')])
        self.assertOneLineError(code, out, err, 'cannot read',
                                'missing.json')

    def test_negative_batch_size(self):
        code, out, err = self.run_main(['push', '-', '--batch-size', '-1'],
                                       stdin=as_jsonl(sample_frames()))
        self.assertOneLineError(code, out, err, '--batch-size')


class RetrieveTest(DataCLITestCase):
    """``retrieve``: one row per point; the count goes to stderr."""

    def setUp(self):
        super().setUp()
        self.frames = sample_frames()
        self.push_frames(self.frames)

    def test_count_on_stderr(self):
        code, out, err = self.run_main(
            ['retrieve', '--limit', '2', '-f', 'json', '-v'] + WINDOW)
        self.assertEqual(0, code, err)
        self.assertEqual(rows_of(self.frames)[:2],
                         [dict(row, groupby=json.loads(row['groupby']),
                               metadata=json.loads(row['metadata']))
                          for row in json.loads(out)])
        self.assertIn('Matching points: 5; shown: 2', err)
        code, out, err = self.run_main(
            ['retrieve', '--limit', '2', '-f', 'json'] + WINDOW)
        self.assertEqual(
            'WARNING cloudkitty.cli.report Showing points 1 to 2 of 5; '
            '--offset or --all shows the others\n', err)

    def test_offset(self):
        rows = self.retrieved('--limit', '2', '--offset', '4', *WINDOW,
                              everything=False)
        self.assertEqual(rows_of(self.frames)[4:], rows)

    def test_filters_and_type(self):
        rows = self.retrieved('--filter', 'project_id=p1', '--type',
                              'instance', *WINDOW)
        self.assertEqual(2, len(rows))
        self.assertEqual({'p1'}, {r['groupby']['project_id'] for r in rows})
        rows = self.retrieved('--filter', 'project_id=p1', '--filter',
                              'project_id=p2', '--type', 'volume', *WINDOW)
        self.assertEqual(2, len(rows))

    def test_default_window_is_the_current_month(self):
        self.assertEqual([], self.retrieved())

    def test_bad_window(self):
        code, out, err = self.run_main(
            ['retrieve', '--begin', '2026-02-01', '--end', '2026-01-01'])
        self.assertOneLineError(code, out, err, 'Invalid begin')

    def test_bad_date_is_a_usage_error(self):
        code, _, err = self.run_main(['retrieve', '--begin', '2026-13-01'])
        self.assertEqual(2, code)
        self.assertIn('not an ISO 8601 date', err)


class TotalTest(DataCLITestCase):
    """``total``: exact decimal sums, grouped."""

    def setUp(self):
        super().setUp()
        self.push_frames(sample_frames())

    def test_no_groupby(self):
        rows = self.ok(['total'] + WINDOW)
        self.assertEqual([{'begin': '2026-01-01T00:00:00+00:00',
                           'end': '2026-02-01T00:00:00+00:00',
                           'qty': '123', 'rate': '0.123'}], rows)

    def test_groupby_comma_separated(self):
        rows = self.ok(['total', '--groupby', 'type,project_id'] + WINDOW)
        self.assertEqual(
            [('instance', 'p1', '2', '0.025'),
             ('instance', 'p2', '1', '0.05'),
             ('volume', 'p1', '20', '0.008'),
             ('volume', 'p2', '100', '0.04')],
            [(r['type'], r['project_id'], r['qty'], r['rate'])
             for r in rows])
        self.assertEqual(['begin', 'end', 'type', 'project_id', 'qty',
                          'rate'], list(rows[0]))

    def test_groupby_repeated_with_time(self):
        rows = self.ok(['total', '--groupby', 'project_id', '--groupby',
                        'time'] + WINDOW)
        self.assertEqual(
            [('p1', '2026-01-01T00:00:00+00:00', '21', '0.0205'),
             ('p1', '2026-01-01T01:00:00+00:00', '1', '0.0125'),
             ('p2', '2026-01-01T00:00:00+00:00', '1', '0.05'),
             ('p2', '2026-01-01T02:00:00+00:00', '100', '0.04')],
            [(r['project_id'], r['begin'], r['qty'], r['rate'])
             for r in rows])
        self.assertNotIn('time', rows[0])
        self.assertEqual('2026-01-01T01:00:00+00:00', rows[0]['end'])

    def test_groupby_day(self):
        """time-d groups by upstream's day_of_the_year label value."""
        rows = self.ok(['total', '--groupby', 'time-d'] + WINDOW)
        self.assertEqual([('2026-01-01T00:00:00+00:00',
                           '2026-02-01T00:00:00+00:00', '1', '123',
                           '0.123')],
                         [(r['begin'], r['end'], r['day_of_the_year'],
                           r['qty'], r['rate']) for r in rows])

    def test_custom_fields(self):
        rows = self.ok(['total', '--groupby', 'type', '--custom-fields',
                        'sum(price) AS cost, max(qty) AS biggest'] + WINDOW)
        self.assertEqual(
            [{'type': 'instance', 'cost': '0.075', 'biggest': '1'},
             {'type': 'volume', 'cost': '0.048', 'biggest': '100'}],
            [{k: r[k] for k in ('type', 'cost', 'biggest')} for r in rows])
        self.assertNotIn('qty', rows[0])

    def test_filters_and_page(self):
        code, out, err = self.run_main(
            ['total', '--groupby', 'project_id', '--type', 'instance',
             '--limit', '1', '--offset', '1', '-f', 'json', '-v'] + WINDOW)
        self.assertEqual(0, code, err)
        rows = json.loads(out)
        self.assertEqual([('p2', '1', '0.05')],
                         [(r['project_id'], r['qty'], r['rate'])
                          for r in rows])
        self.assertIn('Groups: 2; shown: 1', err)

    def test_unknown_time_groupby(self):
        code, out, err = self.run_main(['total', '--groupby', 'time-x'])
        self.assertOneLineError(code, out, err, "unknown time grouping "
                                "'time-x'")

    def test_bad_custom_fields(self):
        code, out, err = self.run_main(
            ['total', '--custom-fields', 'median(qty) AS m'])
        self.assertOneLineError(code, out, err, 'custom_fields')


class DeleteTest(DataCLITestCase):
    """``delete``: counted, confirmed, open-ended."""

    def setUp(self):
        super().setUp()
        # NOTE: far from the current month, which retrieve defaults to.
        self.push_frames(sample_frames(datetime.datetime(2020, 3, 1,
                                                         tzinfo=UTC)))

    def test_declined_keeps_data(self):
        code, out, err = self.run_main(['delete'], stdin='n\n')
        self.assertEqual(1, code)
        self.assertEqual('', out)
        self.assertIn('Delete 5 points from the start to the end? [y/N]',
                      err)
        self.assertIn('Aborted: nothing was deleted', err)
        self.assertEqual(5, self.stored_points())

    def test_end_of_input_declines(self):
        code, _, _ = self.run_main(['delete', '--type', 'volume'])
        self.assertEqual(1, code)
        self.assertEqual(5, self.stored_points())

    def test_confirmed(self):
        code, out, err = self.run_main(
            ['delete', '--type', 'volume', '-f', 'json'], stdin='y\n')
        self.assertEqual(0, code, err)
        self.assertIn('Delete 2 points from the start to the end where '
                      'type in (volume)? [y/N]', err)
        self.assertEqual({'deleted': 2}, json.loads(out))
        self.assertEqual(3, self.stored_points())

    def test_yes_and_window(self):
        shown = self.ok(['delete', '--yes', '--begin', '2020-03-01T01:00',
                         '--filter', 'project_id=p1'])
        self.assertEqual({'deleted': 1}, shown)
        self.assertEqual(4, self.stored_points())

    def test_yes_deletes_everything(self):
        code, out, err = self.run_main(['delete', '--yes'])
        self.assertEqual(0, code, err)
        self.assertIn('| deleted | 5     |', out)
        self.assertEqual(0, self.stored_points())

    def test_nothing_matches(self):
        shown = self.ok(['delete', '--end', '2019-01-01'])
        self.assertEqual({'deleted': 0}, shown)
        self.assertEqual(5, self.stored_points())

    def test_bad_window(self):
        code, out, err = self.run_main(
            ['delete', '--yes', '--begin', '2020-02-01', '--end',
             '2020-01-01'])
        self.assertOneLineError(code, out, err, 'Invalid begin')
        self.assertEqual(5, self.stored_points())


class ScriptTest(DataCLITestCase):
    """The real console script, in a subprocess."""

    def run_script(self, *argv, stdin=''):
        proc = subprocess.run(
            [sys.executable, '-m', 'cloudkitty.cli.main', '--connection',
             self.connection] + list(argv),
            input=stdin, capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout, proc.stderr

    def test_push_and_total(self):
        code, out, err = self.run_script(
            'push', '-', '-f', 'json', stdin=as_jsonl(sample_frames()))
        self.assertEqual(0, code, err)
        self.assertEqual(5, json.loads(out)['points'])
        code, out, err = self.run_script(
            'total', '--groupby', 'project_id', '-f', 'json', *WINDOW)
        self.assertEqual(0, code, err)
        self.assertEqual([('p1', '22', '0.033'), ('p2', '101', '0.09')],
                         [(r['project_id'], r['qty'], r['rate'])
                          for r in json.loads(out)])


class ParsingTest(DataCLITestCase):
    """The input parsers on their own."""

    def test_detect_format(self):
        self.assertEqual('jsonl', data.detect_format('a.ndjson', ''))
        self.assertEqual('csv', data.detect_format('a.csv', '{}'))
        self.assertEqual('json', data.detect_format('-', ' [{}]'))
        self.assertEqual('json', data.detect_format('-', '{\n"a": 1}'))
        self.assertEqual('jsonl', data.detect_format('a.json', '{}\n{}\n'))
        self.assertEqual('csv', data.detect_format('-', 'begin,end\n'))

    def test_csv_groups_rows_into_frames(self):
        text = ('begin,end,type,qty,price\n'
                '2026-01-01T01:00,2026-01-01T02:00,cpu,1,1\n'
                '2026-01-01T00:00,2026-01-01T01:00,cpu,2,2\n'
                '2026-01-01T01:00,2026-01-01T02:00,ram,3,3\n')
        frames = data.parse_csv(text, 'x.csv')
        self.assertEqual([2, 1], [len(f) for f in frames])
        self.assertEqual(JAN + HOUR, frames[0].start)
        # NOTE: no unit column: the unit is 'undefined', as upstream.
        self.assertEqual('undefined', next(frames[0].iterpoints())[1].unit)

    def test_csv_quoted_newline_counts_lines(self):
        text = ('begin,end,type,qty,price,metadata.note\n'
                '2026-01-01,2026-01-02,cpu,1,1,"two\nlines"\n'
                '2026-01-01,2026-01-02,cpu,1,x,\n')
        error = self.assertRaises(data.InputError, data.parse_csv, text,
                                  'x.csv')
        self.assertIn('x.csv: line 4:', str(error))
