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
"""Write conflicts: how driver errors are typed, and the bounded retries.

No database: driver errors are stand-ins carrying the attributes the real
ones carry (psycopg's ``sqlstate``, PyMySQL's ``args[0]``).
"""

from unittest import mock

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
import testtools

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.sqlalchemy import engine
from cloudkitty.storage.v2.sqlalchemy import models


class _PgError(Exception):
    def __init__(self, sqlstate, message):
        super().__init__(message)
        self.sqlstate = sqlstate


def _pg(sqlstate, message='deadlock detected'):
    return sa_exc.OperationalError('INSERT ...', None,
                                   _PgError(sqlstate, message))


def _mysql(code, message='Deadlock found when trying to get lock'):
    return sa_exc.OperationalError('INSERT ...', None,
                                   Exception(code, message))


class TranslateTest(testtools.TestCase):
    """Conflicts are WriteConflict, never BackendUnavailable."""

    def setUp(self):
        super().setUp()
        self.engine = sa.create_engine(
            'postgresql+psycopg://ck:s3cret@127.0.0.1:9/ck')

    def _raised(self, error):
        def fail():
            with engine.translate_errors(self.engine):
                raise error
        return self.assertRaises(exceptions.StorageError, fail)

    def test_postgresql_deadlock(self):
        error = self._raised(_pg('40P01'))
        self.assertIsInstance(error, exceptions.WriteConflict)
        self.assertNotIsInstance(error, exceptions.BackendUnavailable)
        self.assertTrue(error.retryable)
        self.assertEqual(1, error.attempts)
        self.assertNotIn('s3cret', str(error))

    def test_postgresql_serialization_failure(self):
        self.assertIsInstance(self._raised(_pg('40001', 'could not '
                                               'serialize access')),
                              exceptions.WriteConflict)

    def test_postgresql_lock_timeout(self):
        self.assertIsInstance(self._raised(_pg('55P03', 'lock timeout')),
                              exceptions.WriteConflict)

    def test_mysql_deadlock_and_lock_wait_timeout(self):
        for code in (1213, 1205):
            self.assertIsInstance(self._raised(_mysql(code)),
                                  exceptions.WriteConflict)

    def test_lost_connection_stays_unavailable(self):
        self.assertIsInstance(self._raised(_pg('08006', 'server closed')),
                              exceptions.BackendUnavailable)
        self.assertIsInstance(self._raised(_mysql(2013, 'Lost connection')),
                              exceptions.BackendUnavailable)


class RetryTest(testtools.TestCase):
    """retry_conflicts() makes a transaction again, a bounded number."""

    def setUp(self):
        super().setUp()
        self.engine = sa.create_engine('postgresql+psycopg://127.0.0.1:9/ck')
        # NOTE: the pauses between attempts are only recorded.
        patcher = mock.patch.object(engine.time, 'sleep', autospec=True)
        self.sleep = patcher.start()
        self.addCleanup(patcher.stop)

    def _failing(self, errors, result='stored'):
        """A call that raises the next of ``errors``, then returns."""
        calls = []

        def call(*args):
            calls.append(args)
            if len(calls) <= len(errors):
                with engine.translate_errors(self.engine):
                    raise errors[len(calls) - 1]
            return result
        return call, calls

    def test_deadlock_then_success(self):
        call, calls = self._failing([_pg('40P01'), _mysql(1213)])
        self.assertEqual('stored', engine.retry_conflicts(call, 1, 2))
        self.assertEqual([(1, 2)] * 3, calls)
        self.assertEqual(2, self.sleep.call_count)
        # NOTE: each pause is drawn below a bound that doubles.
        first, second = [c.args[0] for c in self.sleep.call_args_list]
        self.assertLessEqual(first, engine.CONFLICT_PAUSE)
        self.assertLessEqual(second, 2 * engine.CONFLICT_PAUSE)

    def test_lasting_deadlocks_give_write_conflict(self):
        attempts = engine.CONFLICT_ATTEMPTS
        call, calls = self._failing([_pg('40P01')] * attempts)
        error = self.assertRaises(exceptions.WriteConflict,
                                  engine.retry_conflicts, call)
        self.assertEqual(attempts, len(calls))
        self.assertEqual(attempts, error.attempts)
        self.assertIn('after %d attempt' % attempts, str(error))
        self.assertIsInstance(error.__cause__, sa_exc.OperationalError)

    def test_lock_wait_timeout_is_not_retried(self):
        call, calls = self._failing([_mysql(1205, 'Lock wait timeout')])
        error = self.assertRaises(exceptions.WriteConflict,
                                  engine.retry_conflicts, call)
        self.assertEqual(1, len(calls))
        self.assertEqual(1, error.attempts)
        self.sleep.assert_not_called()

    def test_other_errors_are_not_retried(self):
        call, calls = self._failing([_pg('08006', 'server closed')])
        self.assertRaises(exceptions.BackendUnavailable,
                          engine.retry_conflicts, call)
        self.assertEqual(1, len(calls))


class LockOrderTest(testtools.TestCase):
    """Rows that concurrent writers may share are written in key order."""

    def test_unique_keys(self):
        self.assertEqual(['fingerprint'], engine.unique_key(
            models.series, ['fingerprint', 'scope_id', 'type']))
        self.assertEqual(['series_id', 'key'], engine.unique_key(
            models.label, ['series_id', 'key', 'value']))
        self.assertEqual(['day', 'series_id'], engine.unique_key(
            models.daily, ['day', 'series_id', 'n']))
        self.assertEqual([], engine.unique_key(models.point,
                                               ['series_id', 'begin']))

    def test_staged_merge_is_ordered(self):
        dialect = sa.create_engine(
            'postgresql+psycopg://127.0.0.1:9/ck').dialect
        writer = engine.CopyWrite(dialect, models.series,
                                  ('fingerprint', 'type'),
                                  ' ON CONFLICT DO NOTHING')
        self.assertIn('ORDER BY fingerprint ON CONFLICT', writer.merge)
