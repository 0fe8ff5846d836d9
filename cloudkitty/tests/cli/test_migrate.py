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
"""Tests of ``cloudkitty-storage migrate``, SQLite to SQLite, in-process."""

import argparse
import datetime
import decimal
import io
import json
import os

import fixtures
import testtools

from cloudkitty.cli import main
from cloudkitty.cli import migrate
from cloudkitty import dataframe
from cloudkitty.storage.v2 import sqlalchemy as sql_storage
from cloudkitty.tests.cli import base

UTC = datetime.timezone.utc
D = decimal.Decimal

#: The window the tests migrate: four days.
BEGIN = datetime.datetime(2026, 3, 1, tzinfo=UTC)
END = datetime.datetime(2026, 3, 5, tzinfo=UTC)
#: Frame starts inside the window: odd hours, a frame across a chunk
#: boundary of 5 h (05:00), minutes and seconds that are not round.
OFFSETS = (datetime.timedelta(hours=1),
           datetime.timedelta(hours=4, minutes=30),
           datetime.timedelta(hours=7, minutes=13, seconds=5),
           datetime.timedelta(hours=13),
           datetime.timedelta(hours=23, minutes=59))
PROJECTS = ('p-alpha', 'p-beta', 'p-gamma')
TYPES = (('instance', 'instance'), ('volume', 'GiB'), ('image', 'GiB'))


def sample_frames(begin=BEGIN, days=4):
    """Return ``[(project, frame), ...]``: 3 types x 3 projects per frame.

    Frames start at the :data:`OFFSETS` of each day from ``begin`` and last
    one hour; every point has its own qty and price with up to 12
    fractional digits, so sums are exact only if nothing is lost.
    """
    frames = []
    serial = 0
    for day in range(days):
        for offset in OFFSETS:
            start = begin + datetime.timedelta(days=day) + offset
            for project in PROJECTS:
                frame = dataframe.DataFrame(
                    start, start + datetime.timedelta(hours=1))
                for type_, unit in TYPES:
                    serial += 1
                    qty = D(serial) / D(8)
                    price = (D(serial) * D('0.000000000007')
                             + D('1.25')).quantize(D('1e-12'))
                    frame.add_point(dataframe.DataPoint(
                        unit, qty, price,
                        {'project_id': project, 'id': 'r-%d' % serial},
                        {'flavor': 'm1.%d' % (serial % 3)}), type_)
                frames.append((project, frame))
    return frames


#: Points of :func:`sample_frames` in the window.
SAMPLE_POINTS = 4 * len(OFFSETS) * len(PROJECTS) * len(TYPES)


class MigrateTestCase(base.CLITestCase):
    """Two SQLite files: a filled source and an empty destination."""

    def setUp(self):
        """Open both sides and fill the source."""
        super().setUp()
        self.source_url = main.sqlite_url(os.path.join(self.tmp, 'src.db'))
        self.dest_url = main.sqlite_url(os.path.join(self.tmp, 'dst.db'))
        self.state = os.path.join(self.tmp, 'migrate.state')
        self.source = self.open(self.source_url)
        self.dest = self.open(self.dest_url)
        for project, frame in sample_frames():
            self.source.push([frame], scope_id=project)
        # NOTE: data just outside the window must stay where it is.
        outside = (sample_frames(BEGIN - datetime.timedelta(days=1), 1)
                   + sample_frames(END, 1))
        self.source.push([frame for _, frame in outside])

    def open(self, url):
        """Return an initialised backend on ``url``, closed at cleanup."""
        store = main.load_storage(main.make_conf(), connection=url,
                                  create=True)
        self.addCleanup(store.close)
        return store

    def migrate(self, *extra, window=True, fmt='json'):
        """Run migrate from the source to the destination.

        :returns: ``(exit code, stdout, stderr)``.
        """
        argv = ['--connection', self.source_url, 'migrate',
                '--dest-connection', self.dest_url, '--state', self.state]
        if window:
            argv += ['--begin', BEGIN.isoformat(), '--end', END.isoformat()]
        if fmt:
            argv += ['-f', fmt]
        return self.run_main(argv + list(extra))

    def summary(self, out):
        """Turn the JSON summary into ``{metric: value}``."""
        return {row['metric']: row['value'] for row in json.loads(out)}

    def count(self, store, begin=BEGIN, end=END, **kwargs):
        """Return the number of points of a window."""
        return store.retrieve(begin=begin, end=end, limit=1,
                              **kwargs)['total']

    def assertSameData(self, begin=BEGIN, end=END, filters=None):
        """Both sides hold the same points and the same exact sums."""
        for groupby in (['time'], ['type', 'project_id'], ['id'], None):
            kwargs = dict(groupby=groupby, begin=begin, end=end,
                          filters=filters, paginate=False)
            self.assertEqual(self.source.total(**kwargs),
                             self.dest.total(**kwargs))
        self.assertEqual(self.count(self.source, begin, end,
                                    filters=filters),
                         self.count(self.dest, begin, end, filters=filters))

    def assertOneLineError(self, code, err, text):
        """The command failed with one line on stderr holding ``text``."""
        self.assertEqual(1, code)
        lines = err.strip().splitlines()
        self.assertEqual(1, len(lines), err)
        self.assertIn(text, lines[0])
        self.assertNotIn('Traceback', err)


class CopyTest(MigrateTestCase):
    """A migration copies the window exactly and verifies it."""

    def test_copy_and_verify(self):
        """Every point of the window is copied; the sums are equal."""
        code, out, err = self.migrate('--chunk', '1d')
        self.assertEqual(0, code, err)
        summary = self.summary(out)
        self.assertEqual(SAMPLE_POINTS, summary['points_copied'])
        self.assertEqual(SAMPLE_POINTS, summary['points_total'])
        self.assertEqual(4, summary['chunks_copied'])
        self.assertEqual('4/4', summary['chunks_done'])
        self.assertEqual('verified', summary['status'])
        self.assertEqual(4 * len(OFFSETS),
                         summary['verified_time_groups'])
        self.assertEqual(len(TYPES), summary['verified_type_groups'])
        self.assertEqual('exact', summary['verified_within'])
        self.assertFalse(summary['resumed'])
        self.assertSameData()
        self.assertEqual(SAMPLE_POINTS, self.count(self.dest))
        # NOTE: nothing outside the window.
        self.assertEqual(SAMPLE_POINTS, self.count(
            self.dest, BEGIN - datetime.timedelta(days=2),
            END + datetime.timedelta(days=2)))

    def test_odd_chunks_and_small_pages(self):
        """Chunks of 5 h and pages of 7 points lose nothing."""
        code, out, err = self.migrate('--chunk', 'PT5H', '--page-size', '7')
        self.assertEqual(0, code, err)
        summary = self.summary(out)
        self.assertEqual(SAMPLE_POINTS, summary['points_copied'])
        self.assertEqual(20, summary['chunks_copied'])
        self.assertSameData()

    def test_pages_are_bounded(self):
        """No retrieve() asks for more than --page-size points."""
        calls = []
        original = sql_storage.SQLAlchemyStorage.retrieve

        def retrieve(store, *args, **kwargs):
            """Record the page size, then retrieve."""
            calls.append((kwargs.get('limit'), kwargs.get('paginate', True)))
            return original(store, *args, **kwargs)

        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.sqlalchemy.SQLAlchemyStorage.retrieve',
            retrieve))
        code, _, err = self.migrate('--page-size', '10')
        self.assertEqual(0, code, err)
        self.assertTrue(calls)
        for limit, paginate in calls:
            self.assertTrue(paginate)
            self.assertLessEqual(limit, 10)

    def test_state_file(self):
        """The state file names both sides without password and the end."""
        code, _, err = self.migrate()
        self.assertEqual(0, code, err)
        with open(self.state) as stream:
            state = json.load(stream)
        self.assertEqual(END.isoformat(), state['done'])
        self.assertEqual(BEGIN.isoformat(), state['begin'])
        self.assertEqual(self.source_url, state['source']['connection'])
        self.assertEqual(self.dest_url, state['dest']['connection'])
        self.assertEqual(SAMPLE_POINTS, state['points_copied'])
        self.assertIsNone(state['filters'])

    def test_run_again_when_complete(self):
        """A finished migration run again copies nothing and verifies."""
        self.assertEqual(0, self.migrate()[0])
        code, out, err = self.migrate()
        self.assertEqual(0, code, err)
        summary = self.summary(out)
        self.assertTrue(summary['resumed'])
        self.assertEqual(0, summary['chunks_copied'])
        self.assertEqual('verified', summary['status'])
        self.assertEqual(SAMPLE_POINTS, self.count(self.dest))

    def test_filters(self):
        """--type and --filter restrict the copy and the verification."""
        code, out, err = self.migrate('--type', 'instance', '--type',
                                      'volume', '--filter',
                                      'project_id=p-beta')
        self.assertEqual(0, code, err)
        summary = self.summary(out)
        expected = SAMPLE_POINTS // len(PROJECTS) * 2 // len(TYPES)
        self.assertEqual(expected, summary['points_copied'])
        self.assertEqual(expected, self.count(self.dest))
        self.assertEqual(2, summary['verified_type_groups'])
        self.assertSameData(filters={'project_id': 'p-beta',
                                     'type': ['instance', 'volume']})

    def test_table_output(self):
        """The default output is a table."""
        code, out, err = self.migrate(fmt=None)
        self.assertEqual(0, code, err)
        self.assertIn('| points_copied', out)
        self.assertIn('| verified ', out)

    def test_log_lines_when_not_a_terminal(self):
        """Progress is logged, one line per chunk, off a terminal."""
        code, _, err = self.migrate()
        self.assertEqual(0, code, err)
        self.assertIn('Chunk 1/4', err)
        self.assertIn('Chunk 4/4', err)


class ResumeTest(MigrateTestCase):
    """An interrupted migration resumes without counting twice."""

    def test_resume_after_max_chunks(self):
        """A run stopped after two chunks goes on from the third."""
        code, out, err = self.migrate('--max-chunks', '2')
        self.assertEqual(0, code, err)
        summary = self.summary(out)
        self.assertEqual('incomplete', summary['status'])
        self.assertEqual('2/4', summary['chunks_done'])
        self.assertEqual(SAMPLE_POINTS // 2, self.count(self.dest))
        code, out, err = self.migrate()
        self.assertEqual(0, code, err)
        summary = self.summary(out)
        self.assertTrue(summary['resumed'])
        self.assertEqual(2, summary['chunks_copied'])
        self.assertEqual(SAMPLE_POINTS // 2, summary['points_copied'])
        self.assertEqual(SAMPLE_POINTS, summary['points_total'])
        self.assertEqual('verified', summary['status'])
        self.assertSameData()

    def test_resume_after_failure_inside_a_chunk(self):
        """A chunk pushed halfway when the run failed is replaced."""
        pushes = []
        original = sql_storage.SQLAlchemyStorage.push

        def push(store, frames, scope_id=None):
            """Push, failing or dropping data as the test needs."""
            pushes.append(len(frames))
            # NOTE: the third chunk has 15 pages of 3 points; fail after
            # five of them were written.
            if len(pushes) == 2 * 15 + 5:
                raise ConnectionError('the network went away')
            return original(store, frames, scope_id)

        with fixtures.MonkeyPatch(
                'cloudkitty.storage.v2.sqlalchemy.SQLAlchemyStorage.push',
                push):
            code, _, err = self.migrate('--page-size', '3', '-q')
        self.assertOneLineError(code, err, 'the network went away')
        with open(self.state) as stream:
            state = json.load(stream)
        self.assertEqual(2, state['chunks_done'])
        partial = self.count(self.dest)
        self.assertGreater(partial, SAMPLE_POINTS // 2)
        code, out, err = self.migrate('--page-size', '3')
        self.assertEqual(0, code, err)
        summary = self.summary(out)
        self.assertTrue(summary['resumed'])
        self.assertEqual(SAMPLE_POINTS, summary['points_total'])
        self.assertEqual(SAMPLE_POINTS, self.count(self.dest))
        self.assertSameData()

    def test_failure_in_the_first_chunk_resumes(self):
        """A failure in the first chunk still resumes, without --replace."""
        original = sql_storage.SQLAlchemyStorage.push
        pushes = []

        def push(store, frames, scope_id=None):
            """Push, failing or dropping data as the test needs."""
            pushes.append(1)
            if len(pushes) == 2:
                raise ConnectionError('lost')
            return original(store, frames, scope_id)

        with fixtures.MonkeyPatch(
                'cloudkitty.storage.v2.sqlalchemy.SQLAlchemyStorage.push',
                push):
            code, _, err = self.migrate('--page-size', '4', '-q')
        self.assertOneLineError(code, err, 'lost')
        self.assertEqual(4, self.count(self.dest))
        code, out, err = self.migrate()
        self.assertEqual(0, code, err)
        self.assertTrue(self.summary(out)['resumed'])
        self.assertSameData()

    def test_resume_with_another_chunk_length(self):
        """The chunk length may change between runs."""
        self.assertEqual(0, self.migrate('--max-chunks', '1')[0])
        code, out, err = self.migrate('--chunk', '7h')
        self.assertEqual(0, code, err)
        summary = self.summary(out)
        self.assertEqual('verified', summary['status'])
        self.assertEqual(SAMPLE_POINTS, summary['points_total'])
        self.assertSameData()

    def test_state_of_another_migration(self):
        """A state file for another window is refused unless --restart."""
        self.assertEqual(0, self.migrate('--max-chunks', '1')[0])
        code, _, err = self.run_main([
            '--connection', self.source_url, 'migrate', '--dest-connection',
            self.dest_url, '--state', self.state, '--begin',
            BEGIN.isoformat(), '--end', '2026-03-03'])
        self.assertOneLineError(code, err, 'belongs to another migration')
        self.assertIn('(different end)', err)
        self.assertIn('--restart', err)
        code, out, err = self.run_main([
            '--connection', self.source_url, 'migrate', '--dest-connection',
            self.dest_url, '--state', self.state, '--begin',
            BEGIN.isoformat(), '--end', '2026-03-03', '--restart',
            '--replace', '-f', 'json'])
        self.assertEqual(0, code, err)
        self.assertFalse(self.summary(out)['resumed'])
        self.assertSameData(end=datetime.datetime(2026, 3, 3, tzinfo=UTC))

    def test_unreadable_state(self):
        """A state file that is not JSON is refused unless --restart."""
        with open(self.state, 'w') as stream:
            stream.write('not json\n')
        code, _, err = self.migrate()
        self.assertOneLineError(code, err, 'cannot read the state file')
        code, _, err = self.migrate('--restart')
        self.assertEqual(0, code, err)


class DestinationTest(MigrateTestCase):
    """A new migration refuses a destination that holds data."""

    def setUp(self):
        """Put one stale point in the destination window."""
        super().setUp()
        frame = dataframe.DataFrame(BEGIN + datetime.timedelta(hours=2),
                                    BEGIN + datetime.timedelta(hours=3))
        frame.add_point(dataframe.DataPoint(
            'GiB', '5', '0.5', {'project_id': 'p-stale'}, {}), 'volume')
        self.dest.push([frame])

    def test_refuses_non_empty_destination(self):
        """Data in the window stops the migration before any write."""
        code, out, err = self.migrate()
        self.assertOneLineError(code, err, 'already holds 1 points')
        self.assertIn('--replace', err)
        self.assertEqual('', out)
        self.assertEqual(1, self.count(self.dest))
        self.assertFalse(os.path.exists(self.state))

    def test_replace(self):
        """--replace replaces the destination's data of the window."""
        code, out, err = self.migrate('--replace')
        self.assertEqual(0, code, err)
        self.assertEqual('verified', self.summary(out)['status'])
        self.assertEqual(SAMPLE_POINTS, self.count(self.dest))
        self.assertEqual(0, self.count(self.dest,
                                       filters={'project_id': 'p-stale'}))
        self.assertSameData()

    def test_data_outside_the_window_is_kept(self):
        """A destination with data only outside the window is accepted."""
        self.dest.delete()
        frame = dataframe.DataFrame(END, END + datetime.timedelta(hours=1))
        frame.add_point(dataframe.DataPoint(
            'GiB', '5', '0.5', {'project_id': 'p-later'}, {}), 'volume')
        self.dest.push([frame])
        code, _, err = self.migrate()
        self.assertEqual(0, code, err)
        self.assertEqual(1, self.count(self.dest, END,
                                       END + datetime.timedelta(days=1)))


class VerifyTest(MigrateTestCase):
    """--verify-only compares both sides and fails on any difference."""

    def test_verify_only_detects_a_missing_point(self):
        """One point deleted on the destination fails the verification."""
        self.assertEqual(0, self.migrate()[0])
        start = BEGIN + datetime.timedelta(days=2) + OFFSETS[2]
        deleted = self.dest.delete(
            begin=start, end=start + datetime.timedelta(seconds=1),
            filters={'project_id': 'p-beta', 'type': 'volume'})
        self.assertEqual(1, deleted)
        code, out, err = self.migrate('--verify-only', '-q')
        self.assertOneLineError(code, err, 'verification failed')
        self.assertIn('2 mismatching groups', err)
        rows = json.loads(out)
        summary = self.summary(out)
        self.assertEqual('verification failed', summary['status'])
        self.assertEqual(2, summary['mismatching_groups'])
        mismatches = [row['value'] for row in rows
                      if row['metric'] == 'mismatch']
        self.assertEqual(2, len(mismatches))
        self.assertTrue(mismatches[0].startswith(
            'time=%s: source qty=' % start.isoformat()), mismatches[0])
        self.assertTrue(mismatches[1].startswith('type=volume: '),
                        mismatches[1])

    def test_verify_only_detects_an_extra_frame(self):
        """A frame only the destination has is a mismatch."""
        self.assertEqual(0, self.migrate()[0])
        frame = dataframe.DataFrame(BEGIN + datetime.timedelta(minutes=1),
                                    BEGIN + datetime.timedelta(hours=1))
        frame.add_point(dataframe.DataPoint('GiB', '0', '0', {}, {}),
                        'volume')
        self.dest.push([frame])
        code, out, err = self.migrate('--verify-only', '-q')
        self.assertOneLineError(code, err, 'verification failed')
        mismatches = [row['value'] for row in json.loads(out)
                      if row['metric'] == 'mismatch']
        self.assertIn('source qty= rate=, destination qty=0 rate=0',
                      mismatches[0])

    def test_verify_only_copies_nothing(self):
        """--verify-only writes nothing, not even a state file."""
        code, out, err = self.migrate('--verify-only', '-q')
        self.assertOneLineError(code, err, 'verification failed')
        self.assertEqual(0, self.count(self.dest))
        self.assertFalse(os.path.exists(self.state))

    def test_verify_only_passes(self):
        """Equal sides verify."""
        self.assertEqual(0, self.migrate()[0])
        code, out, err = self.migrate('--verify-only')
        self.assertEqual(0, code, err)
        summary = self.summary(out)
        self.assertEqual('verified', summary['status'])
        self.assertNotIn('points_copied', summary)

    def test_copy_ends_with_failed_verification(self):
        """A copy that went wrong ends with an error, not a summary."""
        original = sql_storage.SQLAlchemyStorage.push

        def push(store, frames, scope_id=None):
            """Push, failing or dropping data as the test needs."""
            # NOTE: drop the last frame of every page: a lossy copy.
            return original(store, frames[:-1] or frames, scope_id)

        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.sqlalchemy.SQLAlchemyStorage.push', push))
        code, _, err = self.migrate('-q')
        self.assertOneLineError(code, err, 'verification failed')


class BadArgumentsTest(MigrateTestCase):
    """Bad arguments are one-line errors, before anything is written."""

    def test_window_is_required(self):
        """Without --end the command refuses to guess a window."""
        code, _, err = self.migrate('--begin', BEGIN.isoformat(),
                                    window=False)
        self.assertOneLineError(code, err, 'explicit window')

    def test_begin_after_end(self):
        """An empty or reversed window is refused."""
        code, _, err = self.migrate('--begin', '2026-03-05', '--end',
                                    '2026-03-01', window=False)
        self.assertOneLineError(code, err, 'must be before --end')

    def test_bad_date(self):
        """A date that is not ISO 8601 is a usage error."""
        code, _, err = self.migrate('--begin', 'yesterday', '--end',
                                    '2026-03-01', window=False)
        self.assertEqual(2, code)
        self.assertIn('not an ISO 8601 date', err)

    def test_bad_chunk(self):
        """A zero chunk length is a usage error."""
        code, _, err = self.migrate('--chunk', '0h')
        self.assertEqual(2, code)
        self.assertIn('not a positive duration', err)

    def test_destination_is_required(self):
        """Without any --dest-* option nothing runs."""
        code, _, err = self.run_main([
            '--connection', self.source_url, 'migrate', '--begin',
            BEGIN.isoformat(), '--end', END.isoformat()])
        self.assertOneLineError(code, err, 'needs a destination')

    def test_source_is_not_the_destination(self):
        """Migrating a store into itself is refused."""
        code, _, err = self.run_main([
            '--connection', self.source_url, 'migrate', '--dest-connection',
            self.source_url, '--begin', BEGIN.isoformat(), '--end',
            END.isoformat(), '--state', self.state])
        self.assertOneLineError(code, err, 'are the same')

    def test_disjoint_types(self):
        """--type and --filter type= with nothing in common are refused."""
        code, _, err = self.migrate('--type', 'volume', '--filter',
                                    'type=image')
        self.assertOneLineError(code, err, 'no type in common')


class SourceOptionsTest(MigrateTestCase):
    """The source may come from its own options or configuration file."""

    def test_source_connection(self):
        """--source-connection replaces the global options."""
        code, out, err = self.run_main([
            'migrate', '--source-connection', self.source_url,
            '--dest-connection', self.dest_url, '--begin',
            BEGIN.isoformat(), '--end', END.isoformat(), '--state',
            self.state, '-f', 'json'])
        self.assertEqual(0, code, err)
        self.assertEqual(SAMPLE_POINTS,
                         self.summary(out)['points_copied'])

    def test_config_files(self):
        """Each side may come from its own configuration file."""
        paths = []
        for name, url in (('src.conf', self.source_url),
                          ('dst.conf', self.dest_url)):
            path = os.path.join(self.tmp, name)
            with open(path, 'w') as stream:
                stream.write('[storage]\nbackend = sqlalchemy\n'
                             '[storage_sqlalchemy]\nconnection = %s\n' % url)
            paths.append(path)
        code, out, err = self.run_main([
            'migrate', '--source-config-file', paths[0],
            '--dest-config-file', paths[1], '--begin', BEGIN.isoformat(),
            '--end', END.isoformat(), '--state', self.state, '-f', 'json'])
        self.assertEqual(0, code, err)
        summary = self.summary(out)
        self.assertEqual('sqlalchemy %s' % self.dest_url,
                         summary['destination'])
        self.assertSameData()


class HelpersTest(testtools.TestCase):
    """The helpers of the command, without a backend."""

    def test_duration(self):
        """Short and ISO 8601 durations parse; others are refused."""
        hour = datetime.timedelta(hours=1)
        for text, expected in (('1d', 24 * hour), ('6h', 6 * hour),
                               ('1d12h', 36 * hour), ('30m', hour / 2),
                               ('1w', 7 * 24 * hour), ('PT6H', 6 * hour),
                               ('P1DT12H', 36 * hour), ('P1D', 24 * hour),
                               ('90s', hour / 40)):
            self.assertEqual(expected, migrate.duration(text), text)
        for text in ('', '0d', '-1d', 'P', 'PT', 'P1DT', '1y', 'day'):
            self.assertRaises(argparse.ArgumentTypeError, migrate.duration,
                              text)

    def test_chunks(self):
        """Chunks partition the window from begin; the last is short."""
        hour = datetime.timedelta(hours=1)
        parts = list(migrate.chunks(BEGIN, BEGIN + 5 * hour, 2 * hour))
        self.assertEqual([(BEGIN, BEGIN + 2 * hour),
                          (BEGIN + 2 * hour, BEGIN + 4 * hour),
                          (BEGIN + 4 * hour, BEGIN + 5 * hour)], parts)
        self.assertEqual(3, migrate.count_chunks(BEGIN, BEGIN + 5 * hour,
                                                 2 * hour))
        self.assertEqual(2, migrate.count_chunks(BEGIN, BEGIN + 4 * hour,
                                                 2 * hour))
        self.assertEqual(0, migrate.count_chunks(BEGIN, BEGIN, hour))

    def test_redact_url(self):
        """Passwords never reach the state file or the output."""
        self.assertEqual('postgresql+psycopg://ck:***@db:5432/ck',
                         migrate.redact_url(
                             'postgresql+psycopg://ck:s3cr%40t@db:5432/ck'))
        self.assertEqual('mysql://ck@db/ck?password=***&charset=utf8',
                         migrate.redact_url(
                             'mysql://ck@db/ck?password=x&charset=utf8'))
        self.assertEqual('sqlite:///%s' % os.path.abspath('a.db'),
                         migrate.redact_url('sqlite:///a.db'))
        self.assertEqual('sqlite:////tmp/a.db',
                         migrate.redact_url('sqlite:////tmp/a.db'))
        self.assertEqual('sqlite://', migrate.redact_url('sqlite://'))
        self.assertIsNone(migrate.redact_url(None))

    def test_merge_type_filter(self):
        """--type is folded into the filters, AND-ed with type=."""
        self.assertIsNone(migrate.merge_type_filter(None, None))
        self.assertEqual({'type': ['a', 'b']},
                         migrate.merge_type_filter(None, ['b', 'a']))
        self.assertEqual({'type': ['b'], 'k': ['v']},
                         migrate.merge_type_filter(
                             {'type': ['b', 'c'], 'k': ['v']}, ['a', 'b']))
        self.assertRaises(migrate.MigrationError, migrate.merge_type_filter,
                          {'type': ['c']}, ['a'])

    def test_compare_totals(self):
        """Missing groups, wrong sums and wrong counts are mismatches."""
        def answer(*rows):
            """Build a total() answer grouped by type."""
            return {'total': len(rows), 'results': [
                {'type': key, 'qty': D(qty), 'rate': D(rate)}
                for key, qty, rate in rows]}

        same = answer(('a', '1.50', '2'), ('b', '3', '0.1'))
        self.assertEqual((2, []), migrate.compare_totals(
            'type', same, answer(('a', '1.5', '2.0'), ('b', '3', '0.1'))))
        compared, wrong = migrate.compare_totals(
            'type', same, answer(('a', '1.5', '2.000000000001')))
        self.assertEqual(2, compared)
        self.assertEqual([('type', 'a', D('1.50'), D('1.5'), D('2'),
                           D('2.000000000001')),
                          ('type', 'b', D('3'), None, D('0.1'), None)],
                         wrong)
        liar = answer(('a', '1.5', '2'), ('b', '3', '0.1'))
        liar['total'] = 3
        self.assertEqual('(group count, destination)',
                         migrate.compare_totals('type', same, liar)[1][0][1])

    def test_float_sums_compare_with_tolerance(self):
        """Float sums compare within the tolerance only when not exact."""
        left = {'total': 1, 'results': [{'type': 'a', 'qty': D('0.3'),
                                         'rate': D('1')}]}
        right = {'total': 1, 'results': [{'type': 'a',
                                          'qty': 0.30000000000000004,
                                          'rate': 1.0}]}
        self.assertEqual([], migrate.compare_totals('type', left, right,
                                                    D('1e-9'))[1])
        self.assertEqual(1, len(migrate.compare_totals('type', left, right,
                                                       0)[1]))

    def test_state_round_trip(self):
        """A state file reads back equal; the write leaves no temp file."""
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, 'state')
        self.assertIsNone(migrate.read_state(path))
        state = migrate.new_state({'backend': 'x', 'connection': None},
                                  {'backend': 'y', 'connection': 'u'},
                                  BEGIN, END, {'type': ['a']})
        migrate.write_state(path, state)
        self.assertEqual(state, migrate.read_state(path))
        self.assertEqual([], migrate.same_migration(state, dict(state)))
        self.assertEqual(['filters'], migrate.same_migration(
            state, dict(state, filters=None)))
        self.assertEqual(['state'], os.listdir(tmp))
        with open(path, 'w') as stream:
            stream.write('[1, 2]')
        self.assertRaises(migrate.StateMismatch, migrate.read_state, path)

    def test_progress_on_a_terminal(self):
        """On a terminal, progress is one redrawn line."""
        class Terminal(io.StringIO):
            """A stream that claims to be a terminal."""
            def isatty(self):
                """Claim to be a terminal."""
                return True

        stream = Terminal()
        progress = migrate._Progress(stream, 4, 1)
        progress.page(BEGIN, 10)
        progress.chunk(BEGIN, END, 10)
        progress.close()
        text = stream.getvalue()
        self.assertTrue(text.startswith('\rchunk 2/4 2026-03-01'), text)
        self.assertIn('10 points copied', text)
        self.assertTrue(text.endswith('\n'))
