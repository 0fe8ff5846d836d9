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
"""Pushes that meet other transactions on a real server.

A push that creates a series another transaction is creating waits for
it, and its labels are written once: on PostgreSQL by whichever
transaction created the series (a push writes labels only for the series
it created), on MariaDB by an insert that ignores the labels present.

A push that loses a real deadlock is made again, on a real server.

Pushes no longer deadlock each other (see the shared suite's
``test_processes_share_new_series_and_late_days``); an outside transaction
can still close a cycle with one, as a delete or a purge may. Here it does
so on purpose: it takes the push's frame counts row first, waits until the
push waits for it, then creates the push's new series, which the push
holds. The server must pick the push as the victim (on PostgreSQL the
outside session waits longer before it looks for deadlocks; on MariaDB
it has written more rows). The push must then be made again by the
backend and land once, without the caller seeing an error.
"""

import datetime
import decimal
import threading
import uuid

import fixtures
import sqlalchemy as sa
import testtools

from cloudkitty import dataframe
from cloudkitty.storage.v2 import query
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import series
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision

T0 = datetime.datetime(2024, 6, 3, tzinfo=datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)
#: Seconds the push may take to wait for the outside lock, and to end.
DEADLINE = 60
#: Seconds between two looks at the server's lock waits.
POLL = 0.01


class _Pusher(threading.Thread):
    """Runs one push in a thread; keeps what it raised in ``error``."""

    def __init__(self, store, frames, scope_id):
        super().__init__(name='deadlocked-push', daemon=True)
        self.store = store
        self.frames = frames
        self.scope_id = scope_id
        self.error = None

    def run(self):
        try:
            self.store.push(self.frames, scope_id=self.scope_id)
        except BaseException as exc:
            self.error = exc


#: PostgreSQL: the sessions of this database waiting for a lock.
_POSTGRESQL_WAITING = ("SELECT count(*) FROM pg_stat_activity WHERE "
                       "wait_event_type = 'Lock' AND "
                       "datname = current_database()")
# NOTE: innodb_trx lists the whole server's transactions: a test of
# another worker waiting for a lock elsewhere made the deadlock test close
# its cycle before the push waited, and the push then met no deadlock
# (seen once in CI). Only the sessions of this class's database count.
_MARIADB_WAITING = ("SELECT count(*) FROM information_schema.innodb_trx "
                    "AS t JOIN information_schema.processlist AS p "
                    "ON p.id = t.trx_mysql_thread_id "
                    "WHERE t.trx_state = 'LOCK WAIT' AND p.db = DATABASE()")
# NOTE: polled every 10 ms, innodb_trx kept showing the first look's
# transactions (see sql_provision.INNODB_TRX_POLL): a push that waited
# after that look was never seen, and timed out after 50 s (one CI run in
# several; every run while another process polled innodb_trx).
_MARIADB_POLL = sql_provision.INNODB_TRX_POLL


class _PostgreSQL:
    """PostgreSQL's server, and how to see its sessions wait for locks."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'
    waiting_sql = _POSTGRESQL_WAITING


class _MariaDB:
    """MariaDB's server, and how to see its sessions wait for locks."""

    url_variable = 'CLOUDKITTY_TEST_MYSQL_URL'
    waiting_sql = _MARIADB_WAITING
    poll_interval = _MARIADB_POLL


class _OutsideMixin(sql_provision.ServerURLMixin):
    """A store, and an engine for transactions outside it."""

    #: A query counting the sessions waiting for a lock.
    waiting_sql = None
    #: Seconds between two runs of ``waiting_sql``.
    poll_interval = POLL

    def setUp(self):
        super().setUp()
        self.store = self.new_store()
        self.outside = sa.create_engine(self.url)
        self.addCleanup(self.outside.dispose)
        self.log = self.useFixture(fixtures.FakeLogger(
            name='cloudkitty.storage.v2.sqlalchemy.engine'))

    def _wait_for_lock_wait(self, pusher):
        if not sql_provision.wait_for_lock_wait(
                self.outside, self.waiting_sql, pusher, DEADLINE,
                self.poll_interval):
            self.fail('the push never waited for the outside lock (%r)'
                      % (pusher.error,))


class _SharedSeriesMixin(_OutsideMixin):
    """A push creates a series that an outside transaction is creating."""

    def _race(self, commit):
        scope_id, project_id = str(uuid.uuid4()), str(uuid.uuid4())
        point = dataframe.DataPoint('unit', 1, decimal.Decimal('0.5'),
                                    {'project_id': project_id},
                                    {'flavor': 'm1'})
        frame = dataframe.DataFrame(T0, T0 + HOUR)
        frame.add_point(point, 'cpu')
        row = series.series_row(scope_id, 'cpu', point)
        pusher = _Pusher(self.store, [frame], scope_id)
        with self.outside.connect() as conn:
            # NOTE: begun here, as pushes do: intern() may write through
            # the driver alone, which SQLAlchemy would not commit.
            transaction = conn.begin()
            series.intern(conn, {series.series_key(scope_id, 'cpu', point):
                                 row})
            pusher.start()
            self._wait_for_lock_wait(pusher)
            if commit:
                transaction.commit()
            else:
                transaction.rollback()
        pusher.join(DEADLINE)
        self.assertFalse(pusher.is_alive())
        self.assertIsNone(pusher.error)
        label, ck_series = models.label, models.series
        with self.outside.connect() as conn:
            labels = conn.execute(
                sa.select(label.c.key, label.c.value).join(
                    ck_series, ck_series.c.id == label.c.series_id).where(
                    ck_series.c.fingerprint == row['fingerprint']).order_by(
                    label.c.key)).all()
        self.assertEqual([('flavor', 'm1'), ('project_id', project_id)],
                         [tuple(r) for r in labels])
        # NOTE: the series the push used is the one committed first.
        with self.outside.connect() as conn:
            self.assertEqual(1, conn.scalar(
                sa.select(sa.func.count()).select_from(ck_series).where(
                    ck_series.c.fingerprint == row['fingerprint'])))
        result = self.store.total(begin=T0, end=T0 + HOUR,
                                  filters={'project_id': project_id},
                                  groupby=['flavor'])
        self.assertEqual([('m1', decimal.Decimal('0.5'))],
                         [(r['flavor'], r['rate'])
                          for r in result['results']])

    def test_series_created_by_another_transaction(self):
        """The push waits, then uses the series and labels it committed."""
        self._race(commit=True)

    def test_series_another_transaction_gave_up(self):
        """The push waits, then creates the series and its labels."""
        self._race(commit=False)


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLSharedSeriesTest(_PostgreSQL, _SharedSeriesMixin,
                                 testtools.TestCase):
    """PostgreSQL: labels are written by the series' creator only."""


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class MariaDBSharedSeriesTest(_MariaDB, _SharedSeriesMixin,
                              testtools.TestCase):
    """MariaDB: the push waits for the series, labels land once."""


class _DeadlockMixin(_OutsideMixin):
    """The test; subclasses name the server and how to wait for locks."""

    def prepare_victim(self, conn):
        """Make the server prefer the push as the deadlock's victim."""

    def test_push_that_loses_a_deadlock_is_made_again(self):
        scope_id, project_id = str(uuid.uuid4()), str(uuid.uuid4())
        point = dataframe.DataPoint('unit', 1, decimal.Decimal('0.5'),
                                    {'project_id': project_id}, {})
        frame = dataframe.DataFrame(T0, T0 + HOUR)
        frame.add_point(point, 'cpu')
        new_series = {name: value for name, value in series.series_row(
            scope_id, 'cpu', point).items() if name != 'labels'}
        pusher = _Pusher(self.store, [frame], scope_id)
        with self.outside.connect() as conn:
            self.prepare_victim(conn)
            conn.execute(models.frame.insert().values(
                begin=query.to_micros(T0), type='cpu', n=0))
            pusher.start()
            self._wait_for_lock_wait(pusher)
            # NOTE: the push holds this series: the cycle is closed, and
            # the server breaks it by rolling the push back.
            conn.execute(models.series.insert().values(new_series))
            conn.rollback()
        pusher.join(DEADLINE)
        self.assertFalse(pusher.is_alive())
        self.assertIsNone(pusher.error)
        self.assertIn('Write conflict (attempt 1', self.log.output)
        result = self.store.total(begin=T0, end=T0 + HOUR,
                                  filters={'project_id': project_id},
                                  custom_fields='count(qty) AS n, '
                                                'sum(price) AS rate')
        self.assertEqual([1], [int(r['n']) for r in result['results']])
        self.assertEqual([decimal.Decimal('0.5')],
                         [r['rate'] for r in result['results']])


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLDeadlockTest(_PostgreSQL, _DeadlockMixin,
                             testtools.TestCase):
    """PostgreSQL: the push looks for deadlocks first, and loses."""

    def prepare_victim(self, conn):
        """The session that checks for a deadlock first is rolled back."""
        conn.exec_driver_sql("SET deadlock_timeout = '30s'")


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class MariaDBDeadlockTest(_MariaDB, _DeadlockMixin, testtools.TestCase):
    """MariaDB: the transaction that wrote less is rolled back."""

    def prepare_victim(self, conn):
        """Write (and later roll back) many more rows than the push."""
        conn.execute(models.push.insert(), [
            {'key': 'outside-%d' % index, 'scope_id': None, 'points': 1,
             'qty': '1', 'price': '1', 'first_begin': 0, 'last_begin': 0,
             'pushed_at': 0} for index in range(2000)])
