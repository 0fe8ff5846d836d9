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
"""Statements run in turn, pipelined by psycopg, on each real database.

:func:`engine.run_in_turn` must give what the statements give one by one:
their values in order, each statement reading once the previous one ran
(a lock first, then reads that see what the lock's holder committed), the
errors SQLAlchemy would raise, and a connection that goes on working.
"""

import datetime
import threading
from unittest import mock

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
import testtools

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.sqlalchemy import engine as engine_mod
from cloudkitty.storage.v2.sqlalchemy import frames
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import receipts
from cloudkitty.storage.v2.sqlalchemy import rollup
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision

UTC = datetime.timezone.utc
HOUR = 3600 * 10 ** 6
#: Seconds a locked statement may wait, and the watcher may look for it.
DEADLINE = 30
#: Seconds between two looks at the sessions waiting for a lock.
POLL = 0.01


class _RunInTurnMixin:
    """The tests; subclasses give ``self.url``."""

    def setUp(self):
        super().setUp()
        self.store = self.new_store()
        self.engine = self.store.engine
        with engine_mod.writing(self.engine) as conn:
            conn.execute(models.frame.insert(), [
                {'begin': 0, 'type': 'cpu', 'n': 3},
                {'begin': HOUR, 'type': 'cpu', 'n': 4},
                {'begin': HOUR, 'type': 'ram', 'n': 5}])
            conn.execute(models.push.insert(), [
                {'key': key, 'scope_id': None, 'points': 1, 'qty': '1',
                 'price': '1', 'first_begin': begin, 'last_begin': begin,
                 'pushed_at': 0}
                for key, begin in (('a', 0), ('b', HOUR), ('c', 2 * HOUR))])

    def test_values_in_order(self):
        """Each call's value is what its statement alone would give."""
        with engine_mod.writing(self.engine) as conn:
            values = engine_mod.run_in_turn(conn, [
                rollup.until_call('update'),
                receipts.forget_call(HOUR, 2 * HOUR),
                frames.counts_between_call(HOUR, 2 * HOUR),
                frames.counts_between_call(0, HOUR)])
            left = conn.scalars(sa.select(models.push.c.key).order_by(
                models.push.c.key)).all()
        self.assertEqual([rollup.NOTHING, 1,
                          {(HOUR, 'cpu'): 4, (HOUR, 'ram'): 5},
                          {(0, 'cpu'): 3}], values)
        self.assertEqual(['a', 'c'], left)

    def test_a_failed_statement_raises_and_rolls_back(self):
        """An error is SQLAlchemy's, the transaction undone, the pool fine.

        The first statement writes, the second fails: nothing stays.
        """
        failing = engine_mod.Call(
            sa.select(sa.cast(sa.bindparam('b_text'), sa.Integer)),
            {'b_text': 'not a number'}, list)
        if self.engine.dialect.name != 'postgresql':
            # NOTE: SQLite and MariaDB cast any text to a number.
            failing = engine_mod.Call(
                models.frame.insert(), {'begin': 0, 'type': 'cpu', 'n': 1},
                int)

        def forget_all_then_fail():
            with engine_mod.writing(self.engine) as conn:
                engine_mod.run_in_turn(conn, [
                    receipts.forget_call(None, None), failing])

        self.assertRaises(sa_exc.DBAPIError, forget_all_then_fail)
        with engine_mod.writing(self.engine) as conn:
            self.assertEqual([1, {(0, 'cpu'): 3}], engine_mod.run_in_turn(
                conn, [receipts.forget_call(0, HOUR),
                       frames.counts_between_call(0, HOUR)]))

    def test_pipelined_writes_land(self):
        """Writes of a pipelined block land as they would one by one."""
        with engine_mod.writing(self.engine) as conn:
            with engine_mod.pipelined(conn):
                self.assertTrue(frames.subtract(
                    conn, {(HOUR, 'cpu'): 4, (HOUR, 'ram'): 2},
                    {(HOUR, 'cpu'): 4, (HOUR, 'ram'): 5}))
                receipts.forget(conn, HOUR, 2 * HOUR)
            left = conn.scalars(sa.select(models.push.c.key).order_by(
                models.push.c.key)).all()
        self.assertEqual(['a', 'c'], left)
        with engine_mod.writing(self.engine) as conn:
            self.assertEqual({(0, 'cpu'): 3, (HOUR, 'ram'): 3},
                             frames.counts_between(conn, 0, 2 * HOUR))

    def test_a_failed_pipelined_write_raises_and_rolls_back(self):
        """An error in a pipelined block is a DBAPIError; nothing stays."""
        def forget_all_then_fail():
            with engine_mod.writing(self.engine) as conn:
                with engine_mod.pipelined(conn):
                    receipts.forget(conn, None, None)
                    # NOTE: ck_frame's key (begin, type) is taken.
                    conn.execute(models.frame.insert(),
                                 {'begin': 0, 'type': 'cpu', 'n': 1})

        self.assertRaises(sa_exc.DBAPIError, forget_all_then_fail)
        with engine_mod.writing(self.engine) as conn:
            self.assertEqual(3, conn.scalar(sa.select(
                sa.func.count()).select_from(models.push)))
            self.assertEqual({(0, 'cpu'): 3}, frames.counts_between(
                conn, 0, HOUR))


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class SQLiteRunInTurnTest(sql_provision.SQLiteURLMixin, _RunInTurnMixin,
                          testtools.TestCase):
    """SQLite runs the calls one by one."""


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class MariaDBRunInTurnTest(sql_provision.ServerURLMixin, _RunInTurnMixin,
                           testtools.TestCase):
    """MariaDB runs the calls one by one."""

    url_variable = 'CLOUDKITTY_TEST_MYSQL_URL'


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLRunInTurnTest(sql_provision.ServerURLMixin, _RunInTurnMixin,
                              testtools.TestCase):
    """psycopg sends the calls in one pipeline."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'

    def test_pipelined(self):
        """The calls and their BEGIN reach the server in one round trip."""
        self.assertTrue(engine_mod.pipelines(self.engine.dialect))

    def test_without_pipelines_one_by_one(self):
        """A psycopg whose libpq cannot pipeline runs the calls in turn."""
        dbapi = self.engine.dialect.loaded_dbapi
        with mock.patch.object(dbapi.Pipeline, 'is_supported',
                               autospec=True, return_value=False), \
                mock.patch.object(dbapi.Connection, 'pipeline',
                                  autospec=True,
                                  side_effect=AssertionError('pipelined')):
            self.assertFalse(engine_mod.pipelines(self.engine.dialect))
            self.test_values_in_order()

    def test_reads_after_the_lock_see_what_its_holder_committed(self):
        """A read queued behind a lock reads once the lock is granted.

        An outside transaction holds ``until`` and adds a frame; the
        pipeline's lock waits for it, and its read of the frame counts,
        sent in the same round trip, sees the frame committed meanwhile.
        """
        outside = sa.create_engine(self.url)
        self.addCleanup(outside.dispose)
        values = []
        with outside.connect() as holder:
            rollup.until(holder, lock='update')
            holder.execute(models.frame.insert().values(
                begin=2 * HOUR, type='cpu', n=6))

            def pipelined():
                with engine_mod.writing(self.engine) as conn:
                    values.extend(engine_mod.run_in_turn(conn, [
                        rollup.until_call('update'),
                        frames.counts_between_call(2 * HOUR, 3 * HOUR)]))

            thread = threading.Thread(target=pipelined, daemon=True)
            thread.start()
            self._wait_for_lock_wait(outside, thread)
            holder.commit()
        thread.join(DEADLINE)
        self.assertFalse(thread.is_alive())
        self.assertEqual([rollup.NOTHING, {(2 * HOUR, 'cpu'): 6}], values)

    def test_a_session_killed_in_the_pipeline(self):
        """A delete whose session ends while it waits: BackendUnavailable.

        The error of the pipeline is translated as any other, its dead
        connection leaves the pool, and the next delete works.
        """
        outside = sa.create_engine(self.url)
        self.addCleanup(outside.dispose)
        invalidated = []
        sa.event.listen(self.engine, 'invalidate',
                        lambda *args: invalidated.append(args[0]))
        errors = []
        window = {'begin': datetime.datetime(1970, 1, 1, tzinfo=UTC),
                  'end': datetime.datetime(1970, 1, 2, tzinfo=UTC),
                  'filters': {'project_id': 'p'}}
        with outside.connect() as holder:
            rollup.until(holder, lock='update')

            def delete():
                try:
                    self.store.delete(**window)
                except Exception as exc:
                    errors.append(exc)

            thread = threading.Thread(target=delete, daemon=True)
            thread.start()
            waiting = self._wait_for_lock_wait(outside, thread)
            holder.exec_driver_sql('SELECT pg_terminate_backend(%s)' % waiting)
            thread.join(DEADLINE)
            holder.rollback()
        self.assertFalse(thread.is_alive())
        self.assertEqual([exceptions.BackendUnavailable],
                         [type(error) for error in errors])
        self.assertEqual(1, len(invalidated))
        self.assertEqual(0, self.store.delete(**window))

    def _wait_for_lock_wait(self, engine, thread):
        """Wait until a session of this database waits for a lock.

        :returns: its process id.
        """
        waiting = sql_provision.wait_for_lock_wait(
            engine, "SELECT pid FROM pg_stat_activity WHERE "
            "wait_event_type = 'Lock' AND datname = current_database()",
            thread, DEADLINE, POLL)
        if not waiting:
            self.fail('the pipeline never waited for the lock')
        return waiting

    def test_an_expanding_parameter_is_refused(self):
        """Its text depends on its values: it cannot be compiled once."""
        call = engine_mod.Call(
            sa.select(models.frame.c.n).where(models.frame.c.type.in_(
                sa.bindparam('b_types', expanding=True))),
            {'b_types': ['cpu']}, list)
        with engine_mod.writing(self.engine) as conn:
            self.assertRaises(ValueError, engine_mod.run_in_turn, conn,
                              [call])
