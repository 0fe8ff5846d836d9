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
"""What an operator meets first: wrong answers and silent no-ops.

Each class runs the real ``cloudkitty-storage`` commands (in-process, as
the other CLI tests do) on what tripped a new operator up: a sort by cost,
a mistyped path or key, the step after ``demo``, a migration onto itself.
"""

import configparser
import datetime
import decimal
import io
import json
import os
import shlex
import sqlite3

import fixtures

from cloudkitty.cli import main
from cloudkitty import dataframe
from cloudkitty.storage.v2.gnocchi import client as gnocchi_client
from cloudkitty.tests.cli import base
from cloudkitty.tests.cli import test_data
from cloudkitty.tests.cli import test_migrate
from cloudkitty.tests import test_tox

D = decimal.Decimal
UTC = datetime.timezone.utc
JAN = test_data.JAN
WINDOW = test_data.WINDOW


def priced_frames():
    """One frame, four projects whose rates sort differently as text.

    ::

        p1: qty 1   rate 39.15
        p2: qty 2   rate 7.2
        p3: qty 10  rate 100.5
        p4: qty 9   rate 7.200000000001
    """
    frame = dataframe.DataFrame(JAN, JAN + test_data.HOUR)
    for project, qty, rate in (('p1', '1', '39.15'), ('p2', '2', '7.2'),
                               ('p3', '10', '100.5'),
                               ('p4', '9', '7.200000000001')):
        frame.add_point(dataframe.DataPoint(
            'unit', D(qty), D(rate), {'project_id': project}, {}), 'cpu')
    return [frame]


class SortTest(test_data.DataCLITestCase):
    """Item 1: ``--sort-column`` sorts numbers as exact numbers."""

    def setUp(self):
        super().setUp()
        self.push_frames(priced_frames())

    def order(self, fmt, *extra):
        code, out, err = self.run_main(
            ['total', '--groupby', 'project_id', '-f', fmt, '-c',
             'project_id'] + list(extra) + WINDOW)
        self.assertEqual(0, code, err)
        if fmt == 'json':
            return [row['project_id'] for row in json.loads(out)]
        if fmt == 'csv':
            return [line.strip('"') for line in out.split()[1:]]
        if fmt == 'yaml':
            return [line.split()[-1] for line in out.splitlines()]
        if fmt == 'table':
            return [line.split('|')[1].strip()
                    for line in out.splitlines()[3:-1]]
        return out.split()

    def test_rate_descending_in_every_format(self):
        for fmt in ('json', 'csv', 'value', 'yaml', 'table'):
            self.assertEqual(
                ['p3', 'p1', 'p4', 'p2'],
                self.order(fmt, '--sort-column', 'rate',
                           '--sort-descending'), fmt)

    def test_qty_ascending(self):
        self.assertEqual(['p1', 'p2', 'p4', 'p3'],
                         self.order('value', '--sort-column', 'qty'))

    def test_custom_field_and_retrieve(self):
        code, out, err = self.run_main(
            ['total', '--groupby', 'project_id', '--custom-fields',
             'sum(price) AS cost', '--sort-column', 'cost', '-f', 'value',
             '-c', 'project_id'] + WINDOW)
        self.assertEqual(0, code, err)
        self.assertEqual(['p2', 'p4', 'p1', 'p3'], out.split())
        rows = self.ok(['retrieve', '--sort-column', 'price',
                        '--sort-descending'] + WINDOW)
        self.assertEqual(['100.5', '39.15', '7.200000000001', '7.2'],
                         [row['price'] for row in rows])


class ReadsCreateNothingTest(test_data.DataCLITestCase):
    """Item 2: a read of a missing store fails, naming it; nothing made."""

    def setUp(self):
        super().setUp()
        self.dest = os.path.join(self.tmp, 'dest.sqlite')

    READS = (['total'], ['retrieve'], ['delete', '--yes'],
             ['delete', '--end', '2026-01-01'], ['purge', '--yes'],
             ['purge', '--dry-run'])

    def assertRefused(self, argv, *fragments):
        code, out, err = self.run_main(argv)
        self.assertOneLineError(code, out, err, 'ERROR cloudkitty-storage',
                                'is not initialised', 'nothing was created',
                                *fragments)

    def test_missing_file(self):
        for argv in self.READS + (
                ['migrate', '--dest-connection', main.sqlite_url(self.dest),
                 '--begin', '2026-01-01', '--end', '2026-02-01'],):
            self.assertRefused(argv, 'no such file: %s' % self.db)
            self.assertFalse(os.path.exists(self.db), argv)
            self.assertFalse(os.path.exists(self.dest), argv)
        self.assertEqual([], os.listdir(self.tmp))

    def test_empty_file_is_left_alone(self):
        open(self.db, 'w').close()
        for argv in self.READS:
            self.assertRefused(argv, 'the file %s is empty' % self.db)
            self.assertEqual(0, os.path.getsize(self.db))

    def test_database_without_the_schema(self):
        with sqlite3.connect(self.db) as conn:
            conn.execute('CREATE TABLE other (x INTEGER)')
        conn.close()
        for argv in self.READS:
            self.assertRefused(argv, 'no cloudkitty-storage schema')
        with sqlite3.connect(self.db) as conn:
            tables = [row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
        conn.close()
        self.assertEqual(['other'], tables)

    def test_after_init_reads_work(self):
        self.assertEqual('sqlalchemy', self.ok(['init'])['backend'])
        self.assertEqual([], self.ok(['total']))
        self.assertEqual({'deleted': 0}, self.ok(['delete', '--yes']))

    def test_push_creates(self):
        self.push_frames(test_data.sample_frames())
        self.assertEqual(5, len(self.retrieved(*WINDOW)))


class InfluxDBReadsCreateNothingTest(base.CLITestCase):
    """Item 2 on InfluxDB: ``total`` sends no CREATE DATABASE."""

    def setUp(self):
        super().setUp()
        self.statements = []

        def query(client, statement, params=None, database=True):
            self.statements.append(statement)
            return []

        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.client.Client.query', query))

    def test_total_on_a_missing_database(self):
        code, out, err = self.run_main(['--backend', 'influxdb', 'total'])
        self.assertEqual(1, code, err)
        self.assertEqual('', out)
        self.assertIn('is not initialised: no database cloudkitty', err)
        self.assertEqual(['SHOW DATABASES'], self.statements)

    def test_init_creates(self):
        code, _, err = self.run_main(['--backend', 'influxdb', 'init'])
        self.assertEqual(0, code, err)
        self.assertTrue(self.statements[0].startswith('CREATE DATABASE'))


class GnocchiReadsCreateNothingTest(base.CLITestCase):
    """Item 2 on Gnocchi: ``total`` creates no resource type."""

    def setUp(self):
        super().setUp()
        self.calls = []
        self.conf = os.path.join(self.tmp, 'gnocchi.conf')
        with open(self.conf, 'w') as stream:
            stream.write('[storage]\nbackend = gnocchi\n'
                         '[storage_gnocchi]\nendpoint = '
                         'http://127.0.0.1:9\n')

        def call(client, function, *args, **kwargs):
            name = '%s.%s' % (type(function.__self__).__name__,
                              function.__name__)
            self.calls.append(name)
            raise gnocchi_client.gnocchi_exc.NotFound(404)

        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.gnocchi.client.Client.call', call))

    def test_total_without_resource_types(self):
        code, out, err = self.run_main(['--config-file', self.conf,
                                        'total'])
        self.assertEqual(1, code, err)
        self.assertIn('is not initialised: no resource type ', err)
        self.assertEqual(['ResourceTypeManager.get'], self.calls)

    def test_init_creates(self):
        self.run_main(['--config-file', self.conf, 'init'])
        self.assertIn('ArchivePolicyManager.create', self.calls)


class DemoNextStepTest(test_data.DataCLITestCase):
    """Item 3: ``demo`` prints commands that show what it wrote."""

    def test_printed_commands_show_the_demo_data(self):
        path = os.path.join(self.tmp, 'demo.sqlite')
        stderr = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', stderr))
        stdout = io.StringIO()
        code = main.main(['demo', '--database', path, '--month', '2026-01',
                          '-f', 'json'], stdout=stdout, stderr=stderr)
        self.assertEqual(0, code, stderr.getvalue())
        demo_rows = json.loads(stdout.getvalue())
        commands = [shlex.split(line)
                    for line in stderr.getvalue().splitlines()
                    if line.startswith('  cloudkitty-storage ')]
        self.assertEqual(3, len(commands), stderr.getvalue())
        by_project = {}
        for row in demo_rows:
            by_project[row['project_id']] = (
                by_project.get(row['project_id'], 0) + D(row['rate']))
        for argv in commands:
            code, out, err = base.CLITestCase.run_main(
                self, argv[1:] + ['-f', 'json'])
            self.assertEqual(0, code, err)
            self.assertNotIn('No rated data', err)
            self.assertTrue(json.loads(out), argv)
            if argv[3] == 'total' and 'project_id' in argv:
                self.assertEqual(
                    by_project, {row['project_id']: D(row['rate'])
                                 for row in json.loads(out)})

    def test_empty_answer_says_so(self):
        self.ok(['init'])
        now = datetime.datetime.now(UTC)
        month = datetime.datetime(now.year, now.month, 1, tzinfo=UTC)
        for command in ('total', 'retrieve'):
            code, out, err = self.run_main([command])
            self.assertEqual(0, code, err)
            lines = err.splitlines()
            self.assertEqual(1, len(lines), err)
            self.assertIn('WARNING', lines[0])
            self.assertIn('No rated data from %s to ' % month.isoformat(),
                          lines[0])
            self.assertIn(self.db, lines[0])


class GroupByKeyTest(test_data.DataCLITestCase):
    """Item 4: a group-by key found in no point is warned about."""

    def setUp(self):
        super().setUp()
        self.push_frames(test_data.sample_frames())

    def test_mistyped_key(self):
        code, out, err = self.run_main(
            ['total', '--groupby', 'projectid', '-f', 'json'] + WINDOW)
        self.assertEqual(0, code, err)
        self.assertEqual([''], [row['projectid'] for row in json.loads(out)])
        lines = err.splitlines()
        self.assertEqual(1, len(lines), err)
        self.assertIn("WARNING cloudkitty.cli.report groupby key "
                      "'projectid' is in no point from 2026-01-01", lines[0])
        self.assertIn("did you mean 'project_id'?", lines[0])

    def test_real_keys_are_quiet(self):
        for keys in ('project_id', 'type,flavor', 'volume_type,time-d'):
            code, _, err = self.run_main(
                ['total', '--groupby', keys] + WINDOW)
            self.assertEqual(0, code, err)
            self.assertEqual('', err, keys)


class ConfigDirTest(base.CLITestCase):
    """Item 5: a missing --config-dir fails like a missing --config-file."""

    def setUp(self):
        super().setUp()
        # NOTE: the default SQLite file is relative to the working
        # directory: nothing may appear there.
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(self.tmp)

    def test_missing_dir(self):
        missing = os.path.join(self.tmp, 'nonexistent')
        code, out, err = self.run_main(['--config-dir', missing, 'total'])
        self.assertEqual(1, code)
        self.assertEqual('', out)
        self.assertEqual('ERROR cloudkitty-storage Failed to read config '
                         'file directory: %s\n' % missing, err)
        self.assertEqual([], os.listdir(self.tmp))

    def test_missing_file_has_the_same_form(self):
        missing = os.path.join(self.tmp, 'nonexistent.conf')
        code, out, err = self.run_main(['--config-file', missing, 'total'])
        self.assertEqual(1, code)
        self.assertEqual('ERROR cloudkitty-storage Failed to find some '
                         'config files: %s\n' % missing, err)

    def test_existing_dir_is_read(self):
        conf_dir = os.path.join(self.tmp, 'conf.d')
        os.mkdir(conf_dir)
        with open(os.path.join(conf_dir, 'a.conf'), 'w') as stream:
            stream.write('[storage]\nbackend = nope\n')
        code, _, err = self.run_main(['--config-dir', conf_dir, 'total'])
        self.assertEqual(1, code)
        self.assertIn("Unknown storage backend 'nope'", err)


class MigrateFailureTest(test_migrate.MigrateTestCase):
    """Item 6: a failed verification shows whatever columns are chosen."""

    def setUp(self):
        super().setUp()
        self.assertEqual(0, self.migrate()[0])
        # NOTE: the destination holds a point the source has not.
        frame = dataframe.DataFrame(test_migrate.BEGIN,
                                    test_migrate.BEGIN + test_data.HOUR)
        frame.add_point(dataframe.DataPoint('GiB', '1', '1', {}, {}),
                        'volume')
        self.dest.push([frame])

    def test_columns_of_the_docs(self):
        code, out, err = self.migrate('--verify-only', '-c', 'metric', '-c',
                                      'value', fmt='value')
        self.assertEqual(1, code)
        self.assertIn('status verification failed\n', out)
        self.assertIn('mismatching_groups 2\n', out)
        self.assertNotIn('No recognized column names', err)
        self.assertIn('ERROR cloudkitty-storage verification failed: 2 '
                      'mismatching groups', err)

    def test_same_columns_as_success(self):
        code, out, err = self.migrate('--verify-only', '-c', 'value')
        self.assertEqual(1, code)
        self.assertIn({'value': 'verification failed'}, json.loads(out))
        self.assertIn('verification failed', err)

    def test_unknown_column_still_fails_loudly(self):
        code, _, err = self.migrate('--verify-only', '-c', 'nope')
        self.assertEqual(1, code)
        self.assertIn('ERROR cloudkitty-storage verification failed', err)


class MigrateOntoItselfTest(test_migrate.MigrateTestCase):
    """Item 7: the same store under another name is refused."""

    def test_symlink(self):
        source = self.source_url[len('sqlite:///'):]
        link = os.path.join(self.tmp, 'link.db')
        os.symlink(source, link)
        before = self.count(self.source)
        self.assertGreater(before, 0)
        self.dest_url = main.sqlite_url(link)
        code, out, err = self.migrate('--replace')
        self.assertOneLineError(code, err, 'are the same store')
        self.assertIn('nothing was copied', err)
        self.assertEqual('', out)
        self.assertEqual(before, self.count(self.source))
        code, _, err = self.migrate('--verify-only')
        self.assertOneLineError(code, err, 'are the same store')

    def test_relative_and_absolute_path(self):
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(self.tmp)
        self.dest_url = 'sqlite:///src.db'
        code, _, err = self.migrate('--replace')
        self.assertOneLineError(code, err, 'are the same store')


class IdempotentPushTest(test_data.DataCLITestCase):
    """Item 8: a push whose key had landed reports that it stored 0."""

    def test_rerun_reports_nothing_stored(self):
        path = self.write('rated.jsonl',
                          test_data.as_jsonl(test_data.sample_frames()))
        argv = ['push', path, '--idempotency-key', 'k1', '-f', 'json']
        code, out, err = self.run_main(argv)
        self.assertEqual(0, code, err)
        self.assertEqual((5, 0), (json.loads(out)['points'],
                                  json.loads(out)['landed_before']))
        self.assertEqual('', err)
        code, out, err = self.run_main(argv)
        self.assertEqual(0, code, err)
        shown = json.loads(out)
        self.assertEqual((3, 0, 1, 1), (shown['frames'], shown['points'],
                                        shown['batches'],
                                        shown['landed_before']))
        self.assertIn('1 batch of 1 had landed before with the same '
                      'idempotency key: stored nothing again', err)
        self.assertEqual(5, self.stored_points())

    def test_partly_landed(self):
        path = self.write('rated.jsonl',
                          test_data.as_jsonl(test_data.sample_frames()[:2]))
        self.ok(['push', path, '--idempotency-key', 'k', '--batch-size',
                 '1'])
        path = self.write('rated.jsonl',
                          test_data.as_jsonl(test_data.sample_frames()))
        shown = self.ok(['push', path, '--idempotency-key', 'k',
                         '--batch-size', '1'])
        self.assertEqual((1, 2), (shown['points'], shown['landed_before']))
        self.assertEqual(5, self.stored_points())


class SmallerOnesTest(test_data.DataCLITestCase):
    """Item 9: help, CSV quotes, plurals, quiet INFO lines."""

    COMMANDS = ('backends', 'init', 'purge', 'push', 'retrieve', 'total',
                'delete', 'migrate', 'demo', 'bench', 'load')

    def test_help_is_plain_text(self):
        code, out, err = self.run_main(['help'])
        self.assertEqual(0, code, err)
        texts = [out]
        for command in self.COMMANDS:
            code, out, err = self.run_main([command, '--help'])
            self.assertEqual(0, code, err)
            texts.append(out)
        for text in texts:
            self.assertNotIn('``', text)
            self.assertNotRegex(text, r':[a-z]+:`')
            self.assertNotRegex(text, r'(?<!`)`[^`\s][^`]*`')
        self.assertIn('usage: cloudkitty-storage delete', texts[7])
        self.assertIn('Unless --yes is given', texts[7])
        self.assertIn('[storage] retention_period', texts[0])

    def test_unterminated_quote(self):
        text = ('begin,end,type,qty,price\n'
                '2026-01-01,2026-01-02,cpu,1,1\n'
                '2026-01-01,2026-01-02,"cpu,1,1\n'
                '2026-01-01,2026-01-02,cpu,1,1\n')
        path = self.write('bad.csv', text)
        code, out, err = self.run_main(['push', path])
        self.assertOneLineError(
            code, out, err, 'bad.csv: line 3 column 23: invalid CSV: the '
            'quote opened here is never closed')
        self.assertFalse(os.path.exists(self.db))

    def test_quote_closed_too_late(self):
        text = ('begin,end,type,qty,price\n'
                '2026-01-01,2026-01-02,"cpu,1,1\n'
                '2026-01-01,2026-01-02,"cpu",1,1\n')
        code, out, err = self.run_main(['push', self.write('bad.csv', text)])
        self.assertOneLineError(code, out, err, 'bad.csv: line 2 column 23',
                                'runs to line 3')

    def test_one_point(self):
        self.push_frames(test_data.sample_frames()[1:2])
        code, _, err = self.run_main(['delete'], stdin='n\n')
        self.assertEqual(1, code)
        self.assertIn('Delete 1 point from the start to the end? [y/N]',
                      err)

    def test_quiet_by_default(self):
        path = self.write('rated.jsonl',
                          test_data.as_jsonl(test_data.sample_frames()))
        code, _, err = self.run_main(['push', path])
        self.assertEqual(0, code, err)
        self.assertEqual('', err)
        for argv in (['total'] + WINDOW, ['retrieve'] + WINDOW,
                     ['delete', '--yes', '--type', 'volume']):
            code, _, err = self.run_main(argv)
            self.assertEqual(0, code, err)
            self.assertEqual('', err, argv)
        code, _, err = self.run_main(['-v', 'push', path])
        self.assertIn('INFO cloudkitty.cli.data Stored 5 points from 3 '
                      'frames', err)

    def test_log_file_keeps_the_info_lines(self):
        path = self.write('rated.jsonl',
                          test_data.as_jsonl(test_data.sample_frames()))
        log_file = os.path.join(self.tmp, 'push.log')
        code, _, err = self.run_main(['--log-file', log_file, 'push', path])
        self.assertEqual(0, code, err)
        self.assertEqual('', err)
        with open(log_file) as stream:
            self.assertIn('Stored 5 points from 3 frames', stream.read())

    def test_long_work_keeps_its_progress(self):
        code, _, err = base.CLITestCase.run_main(
            self, ['bench', '--projects', '1', '--resources', '1',
                   '--periods', '2', '--repeat', '1'])
        self.assertEqual(0, code, err)
        self.assertIn('INFO', err)


class DocsTest(test_data.DataCLITestCase):
    """Item 9: the user guide matches what is installed and run."""

    DOCS = os.path.join(test_tox.REPO, 'doc', 'source', 'user')

    def read(self, name):
        with open(os.path.join(self.DOCS, name), encoding='utf-8') as f:
            return ' '.join(f.read().split())

    def test_configuration_names_every_backend(self):
        code, out, err = self.run_main(['backends', '-f', 'value', '-c',
                                        'name', '-c', 'module:class'])
        self.assertEqual(0, code, err)
        # NOTE: third-party backends may be installed too.
        names = [line.split()[0] for line in out.splitlines()
                 if line.split()[1].startswith('cloudkitty.storage.')]
        self.assertIn('influxdb', names)
        text = self.read('configuration.rst')
        self.assertNotIn('only one', text)
        for name in names:
            self.assertIn('``%s``' % name, text)

    def test_install_names_every_tox_environment(self):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(os.path.join(test_tox.REPO, 'tox.ini'))
        envs = parser['tox']['envlist'].split(',')
        text = self.read('install.rst')
        words = ('zero one two three four five six seven eight nine '
                 'ten').split()
        self.assertIn('runs its %s environments' % words[len(envs)], text)
        for env in envs:
            self.assertIn('``%s``' % env, text)
