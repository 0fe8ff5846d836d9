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
"""Tests of the ``cloudkitty-storage`` application: options and errors."""

import datetime
import os

import fixtures
from oslo_config import cfg

from cloudkitty.cli import demo
from cloudkitty.cli import main
from cloudkitty.cli.perf import bench
from cloudkitty.tests.cli import base


class GlobalOptionsTest(base.CLITestCase):
    """The global options, parsed by the application's parser."""

    def parse(self, argv):
        application = main.StorageApp()
        options, remainder = application.parser.parse_known_args(argv)
        return options, remainder

    def test_defaults(self):
        options, remainder = self.parse(['demo'])
        self.assertEqual([], options.config_files)
        self.assertEqual([], options.config_dirs)
        self.assertIsNone(options.backend)
        self.assertIsNone(options.connection)
        self.assertFalse(options.debug)
        self.assertEqual(['demo'], remainder)

    def test_repeated_config_files_and_overrides(self):
        options, remainder = self.parse([
            '--config-file', 'a.conf', '--config-file', 'b.conf',
            '--config-dir', 'conf.d', '--backend', 'sqlalchemy',
            '--connection', 'sqlite://', '--debug', 'bench', '--keep'])
        self.assertEqual(['a.conf', 'b.conf'], options.config_files)
        self.assertEqual(['conf.d'], options.config_dirs)
        self.assertEqual('sqlalchemy', options.backend)
        self.assertEqual('sqlite://', options.connection)
        self.assertTrue(options.debug)
        self.assertEqual(['bench', '--keep'], remainder)

    def test_uses_configured_backend(self):
        application = main.StorageApp()
        application.options, _ = application.parser.parse_known_args([])
        self.assertFalse(application.uses_configured_backend())
        application.options, _ = application.parser.parse_known_args(
            ['--backend', 'sqlalchemy'])
        self.assertTrue(application.uses_configured_backend())


class CommandOptionsTest(base.CLITestCase):
    """The options of each command."""

    def test_demo_defaults(self):
        parser = demo.Demo(main.StorageApp(), None).get_parser('demo')
        args = parser.parse_args([])
        self.assertEqual('cloudkitty-demo.sqlite', args.database)
        self.assertIsNone(args.month)

    def test_demo_month(self):
        parser = demo.Demo(main.StorageApp(), None).get_parser('demo')
        args = parser.parse_args(['--month', '2026-02', '--database', 'x'])
        self.assertEqual((2026, 2, 1, 0), (args.month.year, args.month.month,
                                           args.month.day, args.month.hour))
        self.assertIsNotNone(args.month.utcoffset())
        self.assertEqual('x', args.database)

    def test_bench_defaults(self):
        parser = bench.Bench(main.StorageApp(), None).get_parser('bench')
        args = parser.parse_args([])
        self.assertEqual((100, 17, 100, 3, 0, None, False),
                         (args.projects, args.resources, args.periods,
                          args.repeat, args.seed, args.database, args.keep))

    def test_bench_sizes(self):
        parser = bench.Bench(main.StorageApp(), None).get_parser('bench')
        args = parser.parse_args(['--projects', '2', '--resources', '3',
                                  '--periods', '4', '--repeat', '1'])
        self.assertEqual((2, 3, 4, 1), (args.projects, args.resources,
                                        args.periods, args.repeat))

    def test_bench_start(self):
        parser = bench.Bench(main.StorageApp(), None).get_parser('bench')
        self.assertIsNone(parser.parse_args([]).start)
        args = parser.parse_args(['--start', '2026-01-01'])
        self.assertEqual(datetime.datetime(2026, 1, 1,
                                           tzinfo=datetime.timezone.utc),
                         args.start)
        code, _, err = self.run_main(['bench', '--start', '2026-01-01T05'])
        self.assertEqual(2, code)
        self.assertIn('not a UTC day', err)

    def test_bench_rejects_zero(self):
        code, _, err = self.run_main(['bench', '--projects', '0'])
        self.assertEqual(2, code)
        self.assertIn('--projects', err)

    def test_demo_rejects_bad_month(self):
        code, _, err = self.run_main(['demo', '--month', '2026-13'])
        self.assertEqual(2, code)
        self.assertIn('--month', err)


class ErrorReportingTest(base.CLITestCase):
    """Errors reach the user as one line on stderr and a non-zero code."""

    def test_help(self):
        code, out, _ = self.run_main(['--help'])
        self.assertEqual(0, code)
        self.assertIn('--config-file', out)
        self.assertIn('demo', out)
        self.assertIn('bench', out)

    def test_unknown_command(self):
        code, _, _ = self.run_main(['no-such-command'])
        self.assertEqual(2, code)

    def test_unknown_backend_is_one_line(self):
        code, out, err = self.run_main(
            ['--backend', 'no-such-backend', 'bench', '--periods', '1'])
        self.assertEqual(1, code)
        self.assertEqual('', out)
        lines = err.strip().splitlines()
        self.assertEqual(1, len(lines), err)
        self.assertIn("Unknown storage backend 'no-such-backend'", lines[0])
        self.assertNotIn('Traceback', err)

    def test_debug_shows_traceback(self):
        code, _, err = self.run_main(
            ['--debug', '--backend', 'no-such-backend', 'bench'])
        self.assertEqual(1, code)
        self.assertIn('Traceback', err)

    def test_connection_for_unknown_backend(self):
        code, _, err = self.run_main(
            ['--backend', 'no-such-backend', '--connection', 'x://', 'bench'])
        self.assertEqual(1, code)
        self.assertIn("Unknown storage backend 'no-such-backend'", err)

    def test_connection_without_connection_option(self):
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.available_backends',
            lambda: ['no-connection']))
        code, _, err = self.run_main(
            ['--backend', 'no-connection', '--connection', 'x://', 'bench'])
        self.assertEqual(1, code)
        self.assertIn('--connection does not apply to storage backend '
                      "'no-connection'", err)

    def test_missing_config_file(self):
        missing = os.path.join(self.tmp, 'missing.conf')
        code, _, err = self.run_main(['--config-file', missing, 'bench'])
        self.assertEqual(1, code)
        self.assertIn('missing.conf', err)

    def test_config_file_is_read(self):
        path = os.path.join(self.tmp, 'storage.conf')
        with open(path, 'w') as stream:
            stream.write('[storage]\nbackend = from-the-file\n')
        code, _, err = self.run_main(['--config-file', path, 'bench'])
        self.assertEqual(1, code)
        self.assertIn("'from-the-file'", err)

    def test_demo_refuses_to_replace_other_files(self):
        path = os.path.join(self.tmp, 'notes.txt')
        with open(path, 'w') as stream:
            stream.write('precious\n')
        code, _, err = self.run_main(['demo', '--database', path])
        self.assertEqual(1, code)
        self.assertIn('not a SQLite file', err)
        with open(path) as stream:
            self.assertEqual('precious\n', stream.read())

    def test_bench_refuses_existing_database(self):
        path = os.path.join(self.tmp, 'exists.sqlite')
        open(path, 'w').close()
        code, _, err = self.run_main(['bench', '--database', path])
        self.assertEqual(1, code)
        self.assertIn('already exists', err)


class MakeConfTest(base.CLITestCase):
    """make_conf() and load_storage() build a fresh conf per run."""

    def test_fresh_conf_has_defaults(self):
        conf = main.make_conf()
        self.assertIsInstance(conf, cfg.ConfigOpts)
        self.assertEqual('sqlalchemy', conf.storage.backend)
        self.assertEqual(2, conf.storage.version)
        self.assertTrue(conf.use_stderr)

    def test_confs_are_independent(self):
        first = main.make_conf()
        first.set_override('backend', 'other', group='storage')
        self.assertEqual('sqlalchemy', main.make_conf().storage.backend)

    def test_sqlite_url_is_absolute(self):
        url = main.sqlite_url('relative.sqlite')
        self.assertTrue(url.startswith('sqlite:////'), url)
        self.assertTrue(url.endswith('/relative.sqlite'), url)
