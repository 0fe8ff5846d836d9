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
"""The load test: many writers and readers on one store, checked exactly.

Each test runs :func:`cloudkitty.cli.perf.load.run_load` (the code of the
``cloudkitty-storage load`` command): :data:`WRITERS` processes push for a
while into one database as :data:`READERS` processes run total() in a loop;
then every writer's sums and counts must equal the store's, exactly. The
figures (pushes/s, points/s, reader latencies...) are attached to the test
as the ``load-figures`` detail, so they appear in the subunit stream. The
``overlap`` runs (every writer pushing the same new series and late data
into the same rolled-up days) last a third of that time, and also run on
MariaDB.

Environment:

``CLOUDKITTY_FUNCTIONAL_TESTS``
    Must be set, as for every ``*_functional`` module.
``CLOUDKITTY_TEST_POSTGRESQL_URL``
    The PostgreSQL server, for example
    ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``; each run
    gets a throw-away database on it.
``CLOUDKITTY_TEST_MYSQL_URL``
    The MariaDB server, for the ``overlap`` run.
``CLOUDKITTY_LOAD_SECONDS``
    How long the writers push, in seconds (default: 60). Use a few seconds
    while developing, for example ``CLOUDKITTY_LOAD_SECONDS=10``.
"""

import os

import fixtures
import testtools
from testtools import content

from cloudkitty.cli.perf import load
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision

#: The variable that sets how long the writers push.
SECONDS_ENV = 'CLOUDKITTY_LOAD_SECONDS'
#: How long the writers push when the variable is not set.
DEFAULT_SECONDS = 60.0
#: Writer processes.
WRITERS = 8
#: Reader processes.
READERS = 2


def load_seconds():
    """Return the writers' duration from :data:`SECONDS_ENV`.

    :raises ValueError: for a value that is not a number above zero.
    """
    text = os.environ.get(SECONDS_ENV, '').strip()
    if not text:
        return DEFAULT_SECONDS
    seconds = float(text)
    if not seconds > 0:
        raise ValueError('%s must be a number of seconds above 0, got %r'
                         % (SECONDS_ENV, text))
    return seconds


class _OverlapLoadMixin:
    """The overlap run; a subclass provides ``self.url`` (empty)."""

    def test_overlapping_writers_under_load(self):
        """Writers sharing new series and late days: no error, exact."""
        self.assertClean(load.run_load(
            load.StorageSpec(connection=self.url), writers=WRITERS,
            readers=READERS, seconds=load_seconds() / 3, overlap=True))

    def assertClean(self, result):
        """No error or mismatch; every process made progress."""
        self.addDetail('load-figures', content.text_content(
            result.summary()))
        if result.tracebacks:
            self.addDetail('load-tracebacks', content.text_content(
                '\n'.join(result.tracebacks)))
        self.assertEqual([], result.errors)
        self.assertEqual([], result.mismatches)
        self.assertEqual(WRITERS, len(result.pushes_by_writer))
        self.assertEqual(READERS, len(result.reads_by_reader))
        # NOTE: every process made progress: none was starved by the
        # others for the whole run.
        self.assertGreater(min(result.pushes_by_writer), 0,
                           result.pushes_by_writer)
        self.assertGreater(min(result.reads_by_reader), 0,
                           result.reads_by_reader)
        # NOTE: the final check read back every point that was pushed.
        self.assertEqual(result.points, result.checked_points)


class _LoadMixin(_OverlapLoadMixin):
    """Both runs; a subclass provides ``self.url`` for an empty database."""

    def test_writers_and_readers_under_load(self):
        """Writers and readers at once: no error, every sum exact."""
        self.assertClean(load.run_load(
            load.StorageSpec(connection=self.url), writers=WRITERS,
            readers=READERS, seconds=load_seconds()))


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class SQLiteLoadTest(_LoadMixin, testtools.TestCase):
    """Writers and readers on one SQLite file (WAL, busy timeout)."""

    def setUp(self):
        super().setUp()
        path = self.useFixture(fixtures.TempDir()).path
        self.url = 'sqlite:///%s' % os.path.join(path, 'load.sqlite')


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLLoadTest(sql_provision.ServerDatabaseMixin, _LoadMixin,
                         testtools.TestCase):
    """Writers and readers on one PostgreSQL database."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'

    def setUp(self):
        super().setUp()
        self.url = self.database_url
        self.addCleanup(self.database.empty)


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class MariaDBLoadTest(sql_provision.ServerDatabaseMixin, _OverlapLoadMixin,
                      testtools.TestCase):
    """Overlapping writers and readers on one MariaDB database."""

    url_variable = 'CLOUDKITTY_TEST_MYSQL_URL'

    def setUp(self):
        super().setUp()
        self.url = self.database_url
        self.addCleanup(self.database.empty)
