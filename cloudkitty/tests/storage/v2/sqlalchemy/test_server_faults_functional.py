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
"""The SQL backend when the server kills our connections.

A large push runs in a thread while a second, independent connection
watches the server's own view of the sessions (``pg_stat_activity`` on
PostgreSQL, ``information_schema.innodb_trx`` and ``processlist`` on
MariaDB) and kills the push's connection once its transaction has written
rows (``pg_terminate_backend()`` / ``KILL``). The push must fail with
:class:`~cloudkitty.storage.exceptions.BackendUnavailable`, leave nothing
behind, and the same storage object must then push it again, counted once.
Another test kills every idle pooled connection between two calls: the
storage object must recover by itself.

To make the kill deterministic, a third connection holds a lock on
``ck_frame`` for the whole time: the push writes its series and points,
then waits for that lock before its frame counts, so it can never commit
before it is killed. A server that is down when :meth:`init` runs is
covered by ``test_processes_functional.UnreachableServerTest``.
"""

import contextlib
import datetime
import decimal
import threading
import time
import uuid

from oslo_config import cfg
import sqlalchemy as sa
import testtools

from cloudkitty import dataframe
from cloudkitty import storage
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision

T0 = datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
#: Whole days: total() reads the daily rollup once they are rolled up.
ROLLUP_WINDOW = {'begin': T0, 'end': T0 + DAY}
#: Part of a day: total() reads the points only.
POINTS_WINDOW = {'begin': T0, 'end': T0 + 12 * HOUR}
TOTALS = 'count(qty) AS n, sum(qty) AS qty, sum(price) AS rate'
#: The large push: FRAMES frames of POINTS_PER_FRAME points (60,000 points
#: take about a second to write; their INSERT into ck_point runs for
#: hundreds of milliseconds, which the watcher samples every few).
FRAMES = 6
POINTS_PER_FRAME = 10000
PROJECTS = 20
#: Seconds between two looks at the server's sessions.
POLL = 0.002
#: Seconds a push may take to reach the phase the test waits for, and to
#: return once its connection was killed.
DEADLINE = 20
#: The phases of a push the watcher tells apart.
WRITING_POINTS = 'writing points'
WAITING_FOR_COUNTS = 'waiting for the frame counts lock'
_PHASES = (WRITING_POINTS, WAITING_FOR_COUNTS)
#: Seconds between two reads of MariaDB's information_schema.innodb_trx.
TRX_CACHE = sql_provision.INNODB_TRX_POLL


def _frames(tag, frames=FRAMES, points=POINTS_PER_FRAME, start=T0):
    """``frames`` hourly frames of ``points`` points each, from ``start``.

    Their projects are named after ``tag``, so that each call makes series
    the store has never seen.
    """
    result = []
    for index in range(frames):
        begin = start + index * HOUR
        frame = dataframe.DataFrame(begin, begin + HOUR)
        frame.add_points([dataframe.DataPoint(
            'unit', decimal.Decimal(i % 13 + 1) / 1000,
            decimal.Decimal(i % 97 - 48) / 100,
            {'project_id': '%s-%d' % (tag, i % PROJECTS)},
            {'flavor': 'm%d' % (i % 3)}) for i in range(points)], 'cpu')
        result.append(frame)
    return result


def _sums(frames):
    """``(count, qty sum, price sum)`` of frames, exactly."""
    count, qty, price = 0, decimal.Decimal(0), decimal.Decimal(0)
    for frame in frames:
        for _, point in frame.iterpoints():
            count += 1
            qty += point.qty
            price += point.price
    return count, qty, price


class _Pusher(threading.Thread):
    """Runs one push in a thread; keeps what it raised in ``error``."""

    def __init__(self, store, frames, key=None):
        super().__init__(name='killed-push', daemon=True)
        self.store = store
        self.frames = frames
        self.key = key
        self.error = None

    def run(self):
        try:
            self.store.push(self.frames, idempotency_key=self.key)
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout=DEADLINE):
        """Wait for the push to return, if it was started."""
        if self.ident is not None:
            self.join(timeout)


class _ServerFaultsMixin(sql_provision.ServerDatabaseMixin):
    """The tests; a subclass speaks its server's monitoring dialect.

    A subclass sets ``url_variable`` and implements :meth:`_store_url`,
    :meth:`_sessions`, :meth:`_has_written`, :meth:`_kill` and
    :meth:`_hold_counts_lock`.
    """

    def setUp(self):
        super().setUp()
        self.addCleanup(self.database.empty)
        url, self.secret = self._store_url()
        self.store = storage.get_storage(
            conf=cfg.ConfigOpts(), backend='sqlalchemy',
            connection=url.render_as_string(hide_password=False))
        self.addCleanup(self.store.close)
        self.store.init()
        # NOTE: the watcher is on the admin URL: its own session is never
        # one of the test database's.
        self.watcher = sa.create_engine(self.database.admin_url,
                                        isolation_level='AUTOCOMMIT')
        self.addCleanup(self.watcher.dispose)
        # NOTE: no pool: the tests kill every session of the database.
        self.checker = sa.create_engine(self.database.url,
                                        poolclass=sa.pool.NullPool)
        self.addCleanup(self.checker.dispose)

    # per server ------------------------------------------------------------

    def _store_url(self):
        """The URL the storage uses, with a password; and that password."""
        raise NotImplementedError()

    def _sessions(self, conn):
        """The sessions on the test database, except ``conn``'s own.

        :returns: ``[(id, statement, waiting for a lock)]``;
            ``statement`` is the start of the running statement, or None
            when the session is idle.
        """
        raise NotImplementedError()

    def _has_written(self, conn, session_id):
        """Tell whether a session's open transaction has written rows.

        May answer False when the server cannot tell yet; it is asked
        again on the next look.
        """
        raise NotImplementedError()

    def _kill(self, conn, session_id):
        """Have the server end a session, as an administrator would."""
        raise NotImplementedError()

    def _hold_counts_lock(self):
        """Lock ``ck_frame`` against writes until the test ends.

        :returns: ``(session id of the lock holder, release)``; ``release``
            may be called more than once.
        """
        raise NotImplementedError()

    # helpers ---------------------------------------------------------------

    @staticmethod
    def _phase(statement, waiting):
        """Which part of a push a session is in, if it is our push."""
        text = ' '.join((statement or '').replace('"', '').replace(
            '`', '').split()).upper()
        # NOTE: PostgreSQL copies the points (COPY), MariaDB inserts them.
        if text.startswith(('INSERT INTO CK_POINT', 'COPY CK_POINT')):
            return WRITING_POINTS
        if text.startswith('INSERT INTO CK_FRAME') and waiting:
            return WAITING_FOR_COUNTS
        return None

    def _session_ids(self):
        with self.watcher.connect() as conn:
            return sorted(s[0] for s in self._sessions(conn))

    def _wait_until_gone(self, session_ids):
        """Wait until the server has ended every one of ``session_ids``."""
        deadline = time.monotonic() + DEADLINE
        while True:
            left = set(session_ids) & set(self._session_ids())
            if not left:
                return
            if time.monotonic() > deadline:
                self.fail('sessions %s still on the server %d s after they '
                          'were killed' % (sorted(left), DEADLINE))
            time.sleep(0.01)

    def _kill_all(self):
        """Kill every session on the test database; wait until they end.

        :returns: the killed session ids.
        """
        with self.watcher.connect() as conn:
            session_ids = [s[0] for s in self._sessions(conn)]
            for session_id in session_ids:
                self._kill(conn, session_id)
        self._wait_until_gone(session_ids)
        return session_ids

    def _row_counts(self):
        """``{table: rows}`` for every storage table, read independently."""
        with self.checker.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            return {table.name: conn.scalar(
                sa.select(sa.func.count()).select_from(table))
                for table in models.metadata.sorted_tables
                if table.name in tables}

    def _totals(self):
        """``(count, qty, price)`` from the rollup and from the points."""
        result = []
        for window in (ROLLUP_WINDOW, POINTS_WINDOW):
            rows = self.store.total(custom_fields=TOTALS, **window)['results']
            if rows:
                result.append((int(rows[0]['n']), rows[0]['qty'],
                               rows[0]['rate']))
            else:
                result.append((0, decimal.Decimal(0), decimal.Decimal(0)))
        return result

    def _snapshot(self):
        """What a reader sees: raw row counts, totals and retrieve()."""
        return {'rows': self._row_counts(), 'totals': self._totals(),
                'retrieved': self.store.retrieve(limit=1, **ROLLUP_WINDOW)[
                    'total']}

    def _assert_totals(self, expected):
        """total() over both windows gives ``expected`` exactly."""
        for window, (n, qty, rate) in zip(('rollup', 'points'),
                                          self._totals()):
            self.assertEqual(expected, (n, qty, rate),
                             'total() read from the %s' % window)

    def _assert_unavailable(self, error):
        """``error`` is a clean BackendUnavailable naming the server."""
        self.assertIsNotNone(error, 'the killed push raised nothing')
        self.assertIsInstance(
            error, exceptions.BackendUnavailable,
            'the killed push raised %s.%s: %s (from %r)' % (
                type(error).__module__, type(error).__name__, error,
                error.__cause__))
        message = str(error)
        self.assertEqual('sqlalchemy', error.backend)
        if self.database.url.host:
            self.assertIn(self.database.url.host, message)
        self.assertNotIn(self.secret, message)
        self.assertNotIn(':%s@' % self.secret, message)
        self.assertNotIn('\n', message)

    def _watch(self, conn, pusher, phase, guard_id):
        """Wait until the push is in ``phase`` and has written rows.

        Fails if the push returns first or is seen past ``phase``.

        :returns: the id of the push's session.
        """
        deadline = time.monotonic() + DEADLINE
        while True:
            for session_id, statement, waiting in self._sessions(conn):
                seen = self._phase(statement, waiting)
                if session_id == guard_id or seen is None:
                    continue
                if _PHASES.index(seen) > _PHASES.index(phase):
                    self.fail('the push was seen %s before it was seen %s '
                              'with rows written: make it larger (FRAMES, '
                              'POINTS_PER_FRAME)' % (seen, phase))
                if seen == phase and self._has_written(conn, session_id):
                    return session_id
            if not pusher.is_alive():
                self.fail('the push returned (raising %r) before it was '
                          'seen %s with rows written' % (pusher.error, phase))
            if time.monotonic() > deadline:
                self.fail('the push was not seen %s with rows written '
                          'within %d s' % (phase, DEADLINE))
            time.sleep(POLL)

    def _kill_push_while(self, phase):
        """Push a large push, kill its connection in ``phase``, then retry.

        Checks that the push failed with BackendUnavailable, that nothing
        of it was stored (not even its idempotency key), and that the same
        storage object then stores it, counted once even when the retry
        itself is retried.
        """
        before_frames = _frames('before', frames=1, points=10,
                                start=T0 + 8 * HOUR)
        self.store.push(before_frames)
        before = self._snapshot()
        frames = _frames('big')
        key = 'killed-%s' % uuid.uuid4()
        pusher = _Pusher(self.store, frames, key)
        # NOTE: cleanups run last first: the lock goes before the join.
        self.addCleanup(pusher.finish)
        guard_id, release = self._hold_counts_lock()
        pusher.start()
        with self.watcher.connect() as conn:
            self._kill(conn, self._watch(conn, pusher, phase, guard_id))
        pusher.join(DEADLINE)
        self.assertFalse(pusher.is_alive(), 'the push still runs %d s after '
                         'its connection was killed' % DEADLINE)
        release()
        self._assert_unavailable(pusher.error)

        self.assertEqual(before, self._snapshot(),
                         'the killed push left rows behind')

        self.store.push(frames, idempotency_key=key)
        self.store.push(frames, idempotency_key=key)
        count, qty, price = _sums(frames)
        n0, qty0, price0 = before['totals'][0]
        self._assert_totals((n0 + count, qty0 + qty, price0 + price))
        self.assertEqual(before['rows']['ck_point'] + count,
                         self._row_counts()['ck_point'])
        self.assertEqual(n0 + count, self.store.retrieve(
            limit=1, **ROLLUP_WINDOW)['total'])

    # tests -----------------------------------------------------------------

    def test_kill_while_writing_points(self):
        """Killed in its INSERT into ck_point: typed error, nothing kept.

        The retry on the same storage object stores the push once.
        """
        self._kill_push_while(WRITING_POINTS)

    def test_kill_while_waiting_for_frame_counts(self):
        """Killed with every point written, before its counts: no trace.

        The push waits for the lock on ``ck_frame`` when it is killed,
        so all its points are written and none may remain.
        """
        self._kill_push_while(WAITING_FOR_COUNTS)

    def test_recovers_after_idle_connections_killed(self):
        """All pooled connections killed between calls: the store recovers.

        push, total and retrieve each work as the first call after every
        connection of the storage object was ended by the server.
        """
        first = _frames('first', frames=2, points=100)
        self.store.push(first)
        # NOTE: several connections at once, so that the pool keeps more
        # than one when they are returned.
        with contextlib.ExitStack() as stack:
            for _ in range(3):
                stack.enter_context(self.store.engine.connect()).scalar(
                    sa.text('SELECT 1'))
        self.assertGreaterEqual(len(self._kill_all()), 3)

        second = _frames('second', frames=2, points=100)
        self.store.push(second)
        count, qty, price = _sums(first + second)
        self._assert_totals((count, qty, price))

        self._kill_all()
        self.assertEqual(count, self.store.retrieve(
            limit=1, **ROLLUP_WINDOW)['total'])

        self._kill_all()
        self._assert_totals((count, qty, price))
        self.assertEqual(count, self._row_counts()['ck_point'])


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLServerFaultsTest(_ServerFaultsMixin, testtools.TestCase):
    """PostgreSQL ends our sessions with pg_terminate_backend()."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'

    def _store_url(self):
        url = self.database.url
        if url.password:
            return url, url.password
        # NOTE: a server reached without a password trusts the client and
        # ignores the one given; it must still never be shown.
        secret = 's3cret-%s' % uuid.uuid4().hex[:8]
        return url.set(password=secret), secret

    def _sessions(self, conn):
        return [tuple(row) for row in conn.execute(sa.text(
            "SELECT pid, CASE WHEN state = 'idle' THEN NULL "
            "ELSE left(query, 64) END, "
            "coalesce(wait_event_type = 'Lock', false) "
            "FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid()"),
            {'name': self.database.url.database})]

    def _has_written(self, conn, session_id):
        # NOTE: a transaction gets an id when it first writes.
        return bool(conn.scalar(sa.text(
            'SELECT backend_xid IS NOT NULL FROM pg_stat_activity '
            'WHERE pid = :pid'), {'pid': session_id}))

    def _kill(self, conn, session_id):
        conn.execute(sa.text('SELECT pg_terminate_backend(:pid)'),
                     {'pid': session_id})

    def _hold_counts_lock(self):
        engine = sa.create_engine(self.database.url)
        conn = engine.connect()
        # NOTE: SHARE conflicts with the ROW EXCLUSIVE lock of an INSERT
        # and lets readers through.
        conn.begin()
        conn.exec_driver_sql('LOCK TABLE ck_frame IN SHARE MODE')
        session_id = conn.exec_driver_sql('SELECT pg_backend_pid()').scalar()

        def release():
            if not conn.closed:
                conn.rollback()
                conn.close()
            engine.dispose()
        self.addCleanup(release)
        return session_id, release


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLReadOnlyTest(sql_provision.ServerDatabaseMixin,
                             testtools.TestCase):
    """A PostgreSQL database turned read-only: writes refused."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'

    def test_read_only_database(self):
        """push and delete raise WriteRefused; nothing changes."""
        store = storage.get_storage(conf=cfg.ConfigOpts(),
                                    backend='sqlalchemy',
                                    connection=self.database_url)
        self.addCleanup(store.close)
        store.init()
        frames = _frames('before', frames=2, points=10)
        store.push(frames)
        store.close()
        admin = sa.create_engine(self.database.admin_url,
                                 isolation_level='AUTOCOMMIT')
        self.addCleanup(admin.dispose)
        name = self.database.url.database
        with admin.connect() as conn:
            conn.exec_driver_sql(
                'ALTER DATABASE "%s" SET default_transaction_read_only = on'
                % name)
        before = store.total(**ROLLUP_WINDOW)
        error = self.assertRaises(exceptions.WriteRefused, store.push,
                                  _frames('after', frames=1, points=10))
        self.assertIn('read-only', error.reason)
        self.assertRaises(exceptions.WriteRefused, store.delete)
        self.assertEqual(before, store.total(**ROLLUP_WINDOW))
        self.assertEqual(_sums(frames)[0], store.retrieve(
            limit=1, **ROLLUP_WINDOW)['total'])


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class MariaDBServerFaultsTest(_ServerFaultsMixin, testtools.TestCase):
    """MariaDB ends our sessions with KILL."""

    url_variable = 'CLOUDKITTY_TEST_MYSQL_URL'
    _trx_read = -TRX_CACHE

    def _store_url(self):
        # NOTE: a user of our own with a password, dropped at the end.
        user = 'ck_faults_%s' % uuid.uuid4().hex[:8]
        secret = 's3cret-%s' % uuid.uuid4().hex[:8]
        with self._admin_connection() as conn:
            # NOTE: the user name is made of hex digits: safe to quote.
            conn.execute(sa.text("CREATE USER '%s'@'%%' IDENTIFIED BY :pw"
                                 % user), {'pw': secret})
            self.addCleanup(self._drop_user, user)
            # NOTE: PyMySQL formats even an empty parameter list: %%.
            conn.exec_driver_sql(
                "GRANT ALL PRIVILEGES ON `%s`.* TO '%s'@'%%%%'"
                % (self.database.url.database, user))
        return self.database.url.set(username=user, password=secret), secret

    @contextlib.contextmanager
    def _admin_connection(self):
        """An autocommit connection on the admin URL."""
        engine = sa.create_engine(self.database.admin_url,
                                  isolation_level='AUTOCOMMIT')
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    def _drop_user(self, user):
        with self._admin_connection() as conn:
            conn.exec_driver_sql("DROP USER IF EXISTS '%s'@'%%%%'" % user)

    def _sessions(self, conn):
        return [(row[0], row[1], bool(row[2])) for row in conn.execute(
            sa.text("SELECT id, LEFT(info, 64), "
                    "COALESCE(state LIKE 'Waiting for%lock', 0) "
                    "FROM information_schema.processlist "
                    "WHERE db = :name AND id <> CONNECTION_ID()"),
            {'name': self.database.url.database})]

    def _has_written(self, conn, session_id):
        # NOTE: InnoDB refreshes innodb_trx only after nobody read it for
        # 0.1 s: read more often and it never changes. So it is read only
        # here, at most every TRX_CACHE seconds.
        now = time.monotonic()
        if now - self._trx_read < TRX_CACHE:
            return False
        self._trx_read = now
        return bool(conn.scalar(sa.text(
            'SELECT trx_rows_modified > 0 FROM information_schema.innodb_trx '
            'WHERE trx_mysql_thread_id = :id'), {'id': session_id}))

    def _kill(self, conn, session_id):
        conn.exec_driver_sql('KILL CONNECTION %d' % int(session_id))

    def _hold_counts_lock(self):
        engine = sa.create_engine(self.database.url,
                                  isolation_level='AUTOCOMMIT')
        conn = engine.connect()
        # NOTE: a READ lock makes writers of other sessions wait for the
        # table's metadata lock; readers go through.
        conn.exec_driver_sql('LOCK TABLES ck_frame READ')
        session_id = conn.exec_driver_sql('SELECT CONNECTION_ID()').scalar()

        def release():
            if not conn.closed:
                conn.exec_driver_sql('UNLOCK TABLES')
                conn.close()
            engine.dispose()
        self.addCleanup(release)
        return session_id, release
