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
"""The head revision, and how init() waits for SQLite's locks."""

import os
import sqlite3
import threading

import fixtures
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
import testtools

from cloudkitty.storage.v2.sqlalchemy import engine as engine_mod
from cloudkitty.storage.v2.sqlalchemy import migration


class HeadTest(testtools.TestCase):
    """The constant head is the one the migration scripts end at."""

    def test_head_is_the_scripts_head(self):
        self.assertEqual(migration.scripts_head(), migration.head(),
                         'a new migration must set migration.HEAD')


class SQLiteRevisionTest(testtools.TestCase):
    """The revision read on SQLite's driver is what alembic reads."""

    def setUp(self):
        super().setUp()
        path = self.useFixture(fixtures.TempDir()).path
        self.engine = engine_mod.create_engine(
            'sqlite:///%s' % os.path.join(path, 'revision.sqlite'),
            busy_timeout=60)
        self.addCleanup(self.engine.dispose)

    def assertSameAsAlembic(self, expected):
        with self.engine.connect() as conn:
            alembic = migration.migration.MigrationContext.configure(
                conn, opts={'version_table': migration.VERSION_TABLE})
            self.assertEqual(expected, alembic.get_current_revision())
            self.assertEqual(expected, migration.current(conn))

    def test_new_file_empty_table_and_head(self):
        """No table, an empty one, then the schema at head."""
        self.assertSameAsAlembic(None)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(
                'CREATE TABLE %s (version_num VARCHAR(32) NOT NULL '
                'PRIMARY KEY)' % migration.VERSION_TABLE)
        self.assertSameAsAlembic(None)
        with self.engine.begin() as conn:
            conn.exec_driver_sql('DROP TABLE %s' % migration.VERSION_TABLE)
        self.assertTrue(migration.upgrade(self.engine))
        self.assertSameAsAlembic(migration.head())


class SQLiteLockTest(testtools.TestCase):
    """The migration lock on a SQLite file held by another connection."""

    def setUp(self):
        super().setUp()
        path = self.useFixture(fixtures.TempDir()).path
        self.url = 'sqlite:///%s' % os.path.join(path, 'lock.sqlite')
        self.holder = self._engine(busy_timeout=60)
        with self.holder.begin() as conn:
            conn.exec_driver_sql('CREATE TABLE t (v INTEGER)')

    def _engine(self, busy_timeout):
        engine = engine_mod.create_engine(self.url,
                                          busy_timeout=busy_timeout)
        self.addCleanup(engine.dispose)
        return engine

    def _hold(self, release, revision=None):
        """Hold the write lock until ``release`` is set; then write 1.

        With ``revision``, also stamp the schema at that revision.
        """
        held = threading.Event()

        def hold():
            with engine_mod.writing(self.holder) as conn:
                held.set()
                release.wait(60)
                conn.exec_driver_sql('INSERT INTO t VALUES (1)')
                if revision is not None:
                    conn.exec_driver_sql(
                        'CREATE TABLE %s (version_num VARCHAR(32) NOT NULL '
                        'PRIMARY KEY)' % migration.VERSION_TABLE)
                    conn.exec_driver_sql("INSERT INTO %s VALUES ('%s')" % (
                        migration.VERSION_TABLE, revision))
        thread = threading.Thread(target=hold)
        thread.start()
        self.addCleanup(thread.join, 60)
        self.addCleanup(release.set)
        self.assertTrue(held.wait(60))
        return thread

    def test_waits_for_the_lock_and_sees_what_its_holder_wrote(self):
        release = threading.Event()
        self._hold(release)
        waiter = self._engine(busy_timeout=60)
        # NOTE: released from another thread while this one waits.
        threading.Timer(0.2, release.set).start()
        with migration._locked(waiter) as conn:
            seen = conn.exec_driver_sql('SELECT v FROM t').scalars().all()
            conn.exec_driver_sql('INSERT INTO t VALUES (2)')
        self.assertEqual([1], seen)
        with waiter.connect() as conn:
            self.assertEqual([1, 2], conn.exec_driver_sql(
                'SELECT v FROM t ORDER BY v').scalars().all())
            # NOTE: the busy timeout is the engine's again after the wait.
            self.assertEqual(60000, conn.exec_driver_sql(
                'PRAGMA busy_timeout').scalar())

    def test_no_lock_for_a_waiter_that_finds_the_target_reached(self):
        release = threading.Event()
        self._hold(release, revision=migration.head())
        waiter = self._engine(busy_timeout=60)
        threading.Timer(0.2, release.set).start()
        with migration._locked(waiter, migration.head()) as conn:
            self.assertIsNone(conn)
            # NOTE: the write lock is free: another writer gets it at once.
            with engine_mod.writing(self._engine(busy_timeout=1)) as other:
                other.exec_driver_sql('INSERT INTO t VALUES (2)')
        self.assertFalse(migration.upgrade(waiter))

    def test_gives_up_after_the_busy_timeout(self):
        release = threading.Event()
        self._hold(release)
        waiter = self._engine(busy_timeout=1)
        error = self.assertRaises(sa_exc.OperationalError,
                                  migration._locked(waiter).__enter__)
        self.assertTrue(engine_mod.sqlite_busy(error.orig))
        release.set()
        with waiter.connect() as conn:
            self.assertEqual(1000, conn.exec_driver_sql(
                'PRAGMA busy_timeout').scalar())

    def test_error_in_the_block_rolls_back(self):
        waiter = self._engine(busy_timeout=60)
        with testtools.ExpectedException(ValueError):
            with migration._locked(waiter) as conn:
                conn.exec_driver_sql('INSERT INTO t VALUES (3)')
                raise ValueError('stop')
        with waiter.connect() as conn:
            self.assertEqual(0, conn.execute(
                sa.text('SELECT count(*) FROM t')).scalar())


class TurnToWALTest(testtools.TestCase):
    """A new file turns to WAL even while another connection locks it."""

    def test_tries_again_while_the_file_is_locked(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'new.sqlite')
        holder = sqlite3.connect(path, isolation_level=None,
                                 check_same_thread=False)
        self.addCleanup(holder.close)
        holder.execute('BEGIN EXCLUSIVE')
        # NOTE: no busy timeout: SQLite answers "locked" at once, as it
        # does for WAL while processes open a new file together.
        opener = sqlite3.connect(path, timeout=0, isolation_level=None)
        self.addCleanup(opener.close)
        release = threading.Timer(0.2, holder.execute, ('COMMIT',))
        release.start()
        self.addCleanup(release.join, 60)
        engine_mod._turn_to_wal(opener.cursor(), sqlite3, 60)
        self.assertEqual('wal', opener.execute(
            'PRAGMA journal_mode').fetchone()[0])

    def test_gives_up_after_the_busy_timeout(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'new.sqlite')
        holder = sqlite3.connect(path, isolation_level=None)
        self.addCleanup(holder.close)
        holder.execute('BEGIN EXCLUSIVE')
        opener = sqlite3.connect(path, timeout=0, isolation_level=None)
        self.addCleanup(opener.close)
        self.assertRaises(sqlite3.OperationalError, engine_mod._turn_to_wal,
                          opener.cursor(), sqlite3, 0.1)
