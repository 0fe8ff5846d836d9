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
"""The SQL backend under several processes, and when a server is down.

These tests start real processes (``multiprocessing``, spawn) that share one
database: concurrent schema upgrades, many writers with readers on one
SQLite file and on PostgreSQL, and a server that does not answer.
"""

import datetime
import decimal
import multiprocessing
import os
import uuid

import fixtures
import sqlalchemy as sa
import testtools

from cloudkitty import dataframe
from cloudkitty import storage
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.sqlalchemy import migration
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision

T0 = datetime.datetime(2024, 2, 1, tzinfo=datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)
WRITERS = 4
PUSHES = 10
POINTS = 50


def _storage(url):
    from oslo_config import cfg
    return storage.get_storage(conf=cfg.ConfigOpts(), backend='sqlalchemy',
                               connection=url)


def _init(url):
    """Child process: upgrade the schema; return the revision."""
    store = _storage(url)
    store.init()
    with store.engine.connect() as conn:
        return migration.current(conn)


def _upgrade(url, barrier, results):
    """Child process: upgrade once every process is ready.

    Puts ``(revision, whether this process ran the migrations)``.
    """
    store = _storage(url)
    barrier.wait()
    upgraded = migration.upgrade(store.engine)
    with store.engine.connect() as conn:
        results.put((migration.current(conn), upgraded))
    store.close()


def _init_at_once(url, barrier, results):
    """Child process: init() once every process is ready.

    Puts the revision the schema is at afterwards, or the error raised.
    """
    try:
        store = _storage(url)
        barrier.wait()
        store.init()
        store.check_initialised()
        with store.engine.connect() as conn:
            results.put(migration.current(conn))
        store.close()
    except Exception as exc:  # noqa: B902 the test reports it
        results.put('%s: %s' % (type(exc).__name__, exc))


def _write(url, writer, project_id):
    """Child process: push PUSHES frames of POINTS points each."""
    store = _storage(url)
    store.init()
    for push in range(PUSHES):
        frame = dataframe.DataFrame(T0 + push * HOUR, T0 + (push + 1) * HOUR)
        frame.add_points([dataframe.DataPoint(
            'unit', 1, decimal.Decimal(writer + 1) / 1000,
            {'project_id': project_id, 'writer': str(writer)}, {})
            for _ in range(POINTS)], 'cpu')
        store.push([frame], scope_id=project_id)
    store.close()
    return PUSHES * POINTS


def _read(url, project_id, rounds):
    """Child process: run total() while the writers push; return counts."""
    store = _storage(url)
    store.init()
    seen = []
    for _ in range(rounds):
        result = store.total(begin=T0, end=T0 + PUSHES * HOUR,
                             filters={'project_id': project_id},
                             custom_fields='count(qty) AS n')
        seen.append(int(result['results'][0]['n'])
                    if result['results'] else 0)
    store.close()
    return seen


class _ProcessesMixin:
    """The tests; a subclass provides ``self.url`` for an empty database."""

    def _pool(self):
        context = multiprocessing.get_context('spawn')
        pool = context.Pool(WRITERS + 2)
        self.addCleanup(pool.terminate)
        return pool

    def test_concurrent_init(self):
        """init() run by several processes at once upgrades exactly once."""
        results = self._pool().map(_init, [self.url] * WRITERS, chunksize=1)
        self.assertEqual([migration.head()] * WRITERS, results)

    def run_at_once(self, target, processes):
        """Start ``processes`` processes of ``target`` behind one barrier.

        ``target(url, barrier, results)`` puts one outcome in ``results``.

        :returns: the outcomes, in the order they came.
        """
        context = multiprocessing.get_context('spawn')
        barrier = context.Barrier(processes, timeout=300)
        results = context.Queue()
        for _ in range(processes):
            process = context.Process(target=target,
                                      args=(self.url, barrier, results))
            process.start()
            self.addCleanup(process.join, 10)
            self.addCleanup(process.terminate)
        return [results.get(timeout=300) for _ in range(processes)]

    def test_concurrent_init_waits_for_one_upgrade(self):
        """Processes upgrading at once: one runs migrations, none in turn.

        The others see the schema at head once the first one committed
        (without queueing for the lock one after another, each loading
        the migrations again), so none waits for more than one upgrade.
        """
        processes = WRITERS + 2
        outcomes = self.run_at_once(_upgrade, processes)
        self.assertEqual([migration.head()] * processes,
                         [revision for revision, _ in outcomes])
        self.assertEqual(1, sum(upgraded for _, upgraded in outcomes))

    def test_six_processes_init_a_new_database_at_once(self):
        """Six processes call init() at once: all succeed, at head.

        (``cloudkitty-storage bench --concurrent-init 6`` times it.)
        """
        processes = 6
        outcomes = self.run_at_once(_init_at_once, processes)
        self.assertEqual([migration.head()] * processes, outcomes)
        store = _storage(self.url)
        self.addCleanup(store.close)
        with store.engine.connect() as conn:
            dialect = conn.dialect.name
            self.assertEqual(
                sorted([table.name for table in models.metadata.sorted_tables
                        if dialect in models.ONLY_ON.get(table.name,
                                                         (dialect,))]
                       + [migration.VERSION_TABLE]),
                sorted(name for name in sa.inspect(conn).get_table_names()
                       if name.startswith('ck_')))

    def test_writers_and_readers_lose_nothing(self):
        """Rule 9: processes push at once, readers read: all lands."""
        _init(self.url)
        project_id = str(uuid.uuid4())
        pool = self._pool()
        readers = [pool.apply_async(_read, (self.url, project_id, 20))
                   for _ in range(2)]
        writers = [pool.apply_async(_write, (self.url, w, project_id))
                   for w in range(WRITERS)]
        pushed = sum(w.get(timeout=300) for w in writers)
        for reader in readers:
            seen = reader.get(timeout=300)
            # NOTE: a reader sees whole pushes only, never a partial one.
            self.assertEqual([], [n for n in seen if n % POINTS])
            self.assertEqual(sorted(seen), seen)
        store = _storage(self.url)
        self.addCleanup(store.close)
        result = store.total(begin=T0, end=T0 + PUSHES * HOUR,
                             groupby=['writer'],
                             filters={'project_id': project_id})
        self.assertEqual(WRITERS * PUSHES * POINTS,
                         sum(r['qty'] for r in result['results']))
        self.assertEqual(
            [decimal.Decimal(PUSHES * POINTS * (w + 1)) / 1000
             for w in range(WRITERS)],
            [r['rate'] for r in result['results']])
        self.assertEqual(WRITERS * PUSHES * POINTS, pushed)


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class SQLiteProcessesTest(_ProcessesMixin, testtools.TestCase):
    """Several processes on one SQLite file (WAL, busy timeout)."""

    def setUp(self):
        super().setUp()
        path = self.useFixture(fixtures.TempDir()).path
        self.url = 'sqlite:///%s' % os.path.join(path, 'shared.sqlite')

    def test_integrity_after_writers(self):
        """The file passes PRAGMA integrity_check after concurrent pushes."""
        self.test_writers_and_readers_lose_nothing()
        engine = sa.create_engine(self.url)
        self.addCleanup(engine.dispose)
        with engine.connect() as conn:
            self.assertEqual(
                'ok', conn.exec_driver_sql('PRAGMA integrity_check').scalar())


class _ServerProcessesMixin(sql_provision.ServerDatabaseMixin,
                            _ProcessesMixin):
    """Each class gets a database of its own on the server."""

    def setUp(self):
        super().setUp()
        self.url = self.database_url
        self.addCleanup(self._drop_schema)

    def _drop_schema(self):
        # NOTE: test_concurrent_init needs an empty database: drop all.
        engine = sa.create_engine(self.url)
        try:
            with engine.begin() as conn:
                for table in reversed(models.metadata.sorted_tables):
                    conn.exec_driver_sql('DROP TABLE IF EXISTS %s'
                                         % table.name)
                conn.exec_driver_sql('DROP TABLE IF EXISTS %s'
                                     % migration.VERSION_TABLE)
        finally:
            engine.dispose()


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLProcessesTest(_ServerProcessesMixin, testtools.TestCase):
    """Several processes on one PostgreSQL database."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class MariaDBProcessesTest(_ServerProcessesMixin, testtools.TestCase):
    """Several processes on one MariaDB database."""

    url_variable = 'CLOUDKITTY_TEST_MYSQL_URL'


class UnreachableServerTest(testtools.TestCase):
    """A server that does not answer gives BackendUnavailable."""

    def _assert_unavailable(self, url):
        store = _storage(url)
        self.addCleanup(store.close)
        error = self.assertRaises(exceptions.BackendUnavailable, store.init)
        self.assertIn('127.0.0.1:9', str(error))
        self.assertNotIn('s3cret', str(error))
        self.assertNotIn('\n', str(error))
        self.assertEqual('sqlalchemy', error.backend)

    def test_postgresql_down(self):
        """PostgreSQL on a closed port: typed error, host, no secret."""
        self._assert_unavailable(
            'postgresql+psycopg://ck:s3cret@127.0.0.1:9/ck')

    def test_mysql_down(self):
        """MariaDB on a closed port: typed error, host named, no secret."""
        self._assert_unavailable('mysql+pymysql://ck:s3cret@127.0.0.1:9/ck')

    def test_sqlite_unopenable(self):
        """A SQLite file in a missing directory gives BackendUnavailable."""
        store = _storage('sqlite:////nonexistent-dir/%s/x.sqlite'
                         % uuid.uuid4().hex)
        self.addCleanup(store.close)
        self.assertRaises(exceptions.BackendUnavailable, store.init)

    def test_missing_driver(self):
        """An unknown driver names the extra to install."""
        error = self.assertRaises(
            exceptions.BackendUnavailable, _storage,
            'postgresql+nosuchdriver://ck:s3cret@127.0.0.1:9/ck')
        self.assertIn('cloudkitty-storage[postgresql]', str(error))
        self.assertNotIn('s3cret', str(error))
