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
"""``cloudkitty-storage migrate`` from SQLite to a real PostgreSQL server.

The server is named by ``CLOUDKITTY_TEST_POSTGRESQL_URL``; the class gets a
database of its own on it, emptied after every test and dropped at the end.
"""

import json
import os
import subprocess
import sys

import testtools

from cloudkitty.cli import main
from cloudkitty.tests.cli import test_migrate
from cloudkitty.tests.functional_env import is_functional_test
from cloudkitty.tests import sql_provision

BEGIN = test_migrate.BEGIN
END = test_migrate.END


@testtools.skipUnless(is_functional_test(), 'Test is not a functional test')
class PostgreSQLMigrateTest(sql_provision.ServerDatabaseMixin,
                            test_migrate.MigrateTestCase):
    """SQLite source, PostgreSQL destination (psycopg 3)."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'

    def setUp(self):
        """Empty the class database after the test."""
        # NOTE: the destination URL must be known before the base class
        # opens both sides.
        self.addCleanup(self.database.empty)
        super().setUp()

    def open(self, url):
        """Open the class database instead of the SQLite destination."""
        if url.endswith('dst.db'):
            url = self.database_url
            self.dest_url = url
        return super().open(url)

    def test_copy_resume_and_verify(self):
        """A copy stopped halfway resumes; both sides verify exactly."""
        code, out, err = self.migrate('--chunk', '1d', '--max-chunks', '1',
                                      '--page-size', '50')
        self.assertEqual(0, code, err)
        self.assertEqual('incomplete', self.summary(out)['status'])
        code, out, err = self.migrate('--page-size', '50')
        self.assertEqual(0, code, err)
        summary = self.summary(out)
        self.assertEqual('verified', summary['status'])
        self.assertEqual(test_migrate.SAMPLE_POINTS,
                         summary['points_total'])
        self.assertNotIn(self.database.url.password or '\0',
                         summary['destination'])
        self.assertSameData()

    def test_verify_only_detects_a_tampered_destination(self):
        """A point deleted on PostgreSQL fails --verify-only."""
        self.assertEqual(0, self.migrate()[0])
        start = BEGIN + test_migrate.OFFSETS[0]
        self.dest.delete(begin=start, end=END,
                         filters={'id': 'r-1'})
        code, _, err = self.migrate('--verify-only', '-q')
        self.assertOneLineError(code, err, 'verification failed')

    def test_same_server_under_another_name(self):
        """localhost and 127.0.0.1 reach one database: refused."""
        self.assertEqual(0, self.migrate()[0])
        url = self.database.url
        other = url.set(host='localhost' if url.host != 'localhost'
                        else '127.0.0.1')
        code, _, err = self.run_main(
            ['--connection', self.dest_url, 'migrate',
             '--dest-connection', other.render_as_string(
                 hide_password=False), '--replace', '--state', self.state,
             '--begin', BEGIN.isoformat(), '--end', END.isoformat()])
        self.assertOneLineError(code, err, 'are the same store')
        self.assertSameData()

    def test_console_script(self):
        """The real program, run as a subprocess, migrates and verifies."""
        env = dict(os.environ)
        code = subprocess.run(
            [sys.executable, '-m', 'cloudkitty.cli.main', '--connection',
             self.source_url, 'migrate', '--dest-connection', self.dest_url,
             '--begin', BEGIN.isoformat(), '--end', END.isoformat(),
             '--state', self.state, '--chunk', '12h', '-f', 'json'],
            capture_output=True, text=True, env=env, timeout=300,
            cwd=self.tmp)
        self.assertEqual(0, code.returncode, code.stderr)
        summary = self.summary(code.stdout)
        self.assertEqual('verified', summary['status'])
        self.assertEqual(8, summary['chunks_copied'])
        self.assertEqual(test_migrate.SAMPLE_POINTS,
                         summary['points_copied'])
        self.assertIn('Chunk 8/8', code.stderr)
        self.assertSameData()
        with open(self.state) as stream:
            state = json.load(stream)
        self.assertEqual(END.isoformat(), state['done'])
        self.assertEqual(main.sqlite_url(os.path.join(self.tmp, 'src.db')),
                         state['source']['connection'])
