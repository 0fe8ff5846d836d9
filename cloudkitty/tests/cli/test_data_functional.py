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
"""``push``, ``total``, ``delete`` and ``purge`` on a real PostgreSQL server.

The server is named by ``CLOUDKITTY_TEST_POSTGRESQL_URL``; the class gets a
throw-away database on it, emptied after each test and dropped at the end.
"""

import sqlalchemy as sa
import testtools

from cloudkitty.tests.cli import test_admin
from cloudkitty.tests.cli import test_data
from cloudkitty.tests.functional_env import is_functional_test
from cloudkitty.tests import sql_provision


class _PostgreSQLConnection(sql_provision.ServerDatabaseMixin):
    """Runs the commands on a throw-away PostgreSQL database."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'

    def make_connection(self):
        self.addCleanup(self.database.empty)
        return self.database_url


@testtools.skipUnless(is_functional_test(), 'Test is not a functional test')
class PostgreSQLPurgeTest(_PostgreSQLConnection, test_admin.PurgeTest):
    """``purge`` with ``--connection postgresql+psycopg://...``."""


@testtools.skipUnless(is_functional_test(), 'Test is not a functional test')
class PostgreSQLDataCommandsTest(_PostgreSQLConnection,
                                 test_data.DataCLITestCase):
    """The data commands with ``--connection postgresql+psycopg://...``."""

    def stored_points(self):
        """Count every stored point through the CLI itself."""
        # NOTE: retrieve refuses a database init never ran on.
        self.ok(['init'])
        return len(self.retrieved('--begin', '0001-01-01', '--end',
                                  '9999-01-01'))

    def test_reads_create_nothing(self):
        """A database without the schema is refused and left alone."""
        engine = sa.create_engine(self.database_url)
        self.addCleanup(engine.dispose)
        with engine.begin() as conn:
            for table in reversed(sa.inspect(conn).get_table_names()):
                conn.exec_driver_sql(
                    'DROP TABLE IF EXISTS %s CASCADE' % table)
        for argv in (['total'], ['retrieve'], ['delete', '--yes'],
                     ['purge', '--dry-run']):
            code, out, err = self.run_main(argv)
            self.assertOneLineError(code, out, err, 'is not initialised',
                                    'no cloudkitty-storage schema')
        with engine.connect() as conn:
            self.assertEqual([], sa.inspect(conn).get_table_names())
        self.ok(['init'])
        self.assertEqual([], self.ok(['total']))

    def test_init_hides_the_password(self):
        shown = self.ok(['init'])
        self.assertEqual(self.database.url.render_as_string(
            hide_password=True), shown['location'])

    def test_push_total_delete(self):
        shown = self.push_frames(test_data.sample_frames(), '--batch-size',
                                 '2')
        self.assertEqual((3, 5, 2), (shown['frames'], shown['points'],
                                     shown['batches']))
        rows = self.ok(['total', '--groupby', 'type,project_id']
                       + test_data.WINDOW)
        self.assertEqual(
            [('instance', 'p1', '2', '0.025'),
             ('instance', 'p2', '1', '0.05'),
             ('volume', 'p1', '20', '0.008'),
             ('volume', 'p2', '100', '0.04')],
            [(r['type'], r['project_id'], r['qty'], r['rate'])
             for r in rows])
        self.assertEqual(test_data.rows_of(test_data.sample_frames()),
                         self.retrieved(*test_data.WINDOW))
        code, _, _ = self.run_main(['delete', '--type', 'volume'],
                                   stdin='n\n')
        self.assertEqual(1, code)
        self.assertEqual(5, self.stored_points())
        self.assertEqual({'deleted': 2},
                         self.ok(['delete', '--type', 'volume'],
                                 stdin='y\n'))
        self.assertEqual({'deleted': 3}, self.ok(['delete', '--yes']))
        self.assertEqual(0, self.stored_points())

    def test_bad_input_writes_nothing(self):
        code, out, err = self.run_main(['push', '-'], stdin='{"period": 1}')
        self.assertOneLineError(code, out, err, '<stdin>: frame 1:')
        self.assertEqual(0, self.stored_points())
