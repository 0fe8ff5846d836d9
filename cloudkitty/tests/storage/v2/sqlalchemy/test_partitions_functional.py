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
"""PostgreSQL's daily partitions of ck_point.

Pushes create the partitions of their days; a delete without filters
drops the whole days of its window when it is open at its start (the
retention purge) and empties them otherwise, empties a day at its edges
whose every frame it holds, keeps the rollup exact and counts what it
dropped; a process that still believes a
dropped day exists recreates it when it pushes there again. Monthly
partitions made before revision 0011 keep their days. A roll-up builds
the index by series of the days before its end, and refreshes the
statistics of the partitions and rollup tables it wrote, when stale.
"""

import datetime
import decimal
from unittest import mock

import fixtures
from oslo_config import cfg
import testtools

from cloudkitty import storage
from cloudkitty.storage.v2.sqlalchemy import engine as engine_mod
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import partitions
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision

UTC = datetime.timezone.utc
D = decimal.Decimal
JAN = datetime.datetime(2025, 1, 20, tzinfo=UTC)
FEB = datetime.datetime(2025, 2, 10, tzinfo=UTC)
MAR = datetime.datetime(2025, 3, 5, tzinfo=UTC)
WINDOW = dict(begin=builders.EVER[0], end=builders.EVER[1])


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLPartitionsTest(sql_provision.ServerDatabaseMixin,
                               testtools.TestCase):
    """Daily partitions: created by push, indexed by roll-up, dropped."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'

    def setUp(self):
        super().setUp()
        self.addCleanup(self.database.empty)
        self.store = self.new_store()
        # NOTE: emptying the database keeps partitions; this drops them.
        self.addCleanup(self.store.delete, end=WINDOW['end'])

    def new_store(self):
        """A storage object of its own, as another process would have."""
        store = storage.get_storage(conf=cfg.ConfigOpts(),
                                    backend='sqlalchemy',
                                    connection=self.database_url)
        self.addCleanup(store.close)
        store.init()
        return store

    def names(self):
        with self.store.engine.connect() as conn:
            return sorted(partitions.existing(conn))

    def push(self, store, start, project='p'):
        store.push(builders.sample_frames(project, start=start))

    def test_push_creates_daily_partitions(self):
        """One partition per day pushed into, with exact bounds."""
        for start in (JAN, FEB, FEB + datetime.timedelta(hours=3), MAR):
            self.push(self.store, start)
        self.assertEqual(['ck_point_p20250120', 'ck_point_p20250210',
                          'ck_point_p20250305'], self.names())
        with self.store.engine.connect() as conn:
            bounds = partitions.existing(conn)['ck_point_p20250210']
        self.assertEqual(partitions.day_of(
            int(FEB.timestamp()) * 10 ** 6), bounds)
        self.assertEqual(
            (int(FEB.timestamp()) * 10 ** 6,
             int((FEB + datetime.timedelta(days=1)).timestamp()) * 10 ** 6),
            bounds)
        self.assertEqual(24, self.store.retrieve(limit=1,
                                                 **WINDOW)['total'])

    def test_purge_drops_whole_days(self):
        """delete(end=...) drops the days before end, rows of the rest."""
        for start in (JAN, FEB, MAR):
            self.push(self.store, start)
        cutoff = MAR + datetime.timedelta(hours=1)
        deleted = self.store.delete(end=cutoff)
        # NOTE: 6 points in each of Jan and Feb, 3 of Mar's first hour.
        self.assertEqual(6 + 6 + 3, deleted)
        self.assertEqual(['ck_point_p20250305'], self.names())
        self.assertEqual([{'begin': WINDOW['begin'], 'end': WINDOW['end'],
                           'qty': D(23), 'rate': D('1.77')}],
                         self.store.total(**WINDOW)['results'])
        # NOTE: the rollup lost exactly the dropped days: whole-day
        # totals (read from it) equal the points.
        march = dict(begin=datetime.datetime(2025, 3, 1, tzinfo=UTC),
                     end=datetime.datetime(2025, 4, 1, tzinfo=UTC))
        self.assertEqual(self.store.total(**march)['results'][0]['qty'],
                         D(23))

    def _totals(self, begin, end):
        results = self.store.total(begin=begin, end=end)['results']
        return (results[0]['qty'], results[0]['rate']) if results \
            else (D(0), D(0))

    def test_a_bounded_delete_empties_the_whole_days_inside(self):
        """delete(begin, end) empties its whole days, deletes its edges.

        The partitions of the whole days stay, empty and without their
        index by series, for the pushes that may come back. The rollup
        (the days are rolled up: March's push came later) and the frame
        counts lose exactly what went.
        """
        day, hour = datetime.timedelta(days=1), datetime.timedelta(hours=1)
        for start in (JAN, FEB, FEB + day, MAR):
            self.push(self.store, start)
        self.assertIn('ck_point_p20250210', self.indexed())
        kept = [(WINDOW['begin'], FEB), (FEB + day + hour, WINDOW['end'])]
        expected = [self._totals(*window) for window in kept]
        self.assertEqual(6 + 3, self.store.delete(begin=FEB,
                                                  end=FEB + day + hour))
        names = ['ck_point_p20250120', 'ck_point_p20250210',
                 'ck_point_p20250211', 'ck_point_p20250305']
        self.assertEqual(names, self.names())
        self.assertNotIn('ck_point_p20250210', self.indexed())
        self.assertIn('ck_point_p20250211', self.indexed())
        with self.store.engine.connect() as conn:
            self.assertEqual(0, conn.exec_driver_sql(
                'SELECT count(*) FROM ck_point_p20250210').scalar())
        self.assertEqual(expected, [self._totals(*w) for w in kept])
        self.assertEqual((D(0), D(0)), self._totals(FEB, FEB + day + hour))
        # NOTE: whole-day and whole-month totals read the rollup.
        february = (datetime.datetime(2025, 2, 1, tzinfo=UTC),
                    datetime.datetime(2025, 3, 1, tzinfo=UTC))
        self.assertEqual(self._totals(FEB + day + hour, FEB + 2 * day),
                         self._totals(*february))
        # NOTE: January's 6 points, February 11th's last 3, March's 6.
        self.assertEqual(6 + 3 + 6, self.store.retrieve(limit=1,
                                                        **WINDOW)['total'])

    def test_a_delete_open_at_its_end_empties_the_days_after_begin(self):
        """delete(begin=...) empties the days from begin on; they stay."""
        for start in (JAN, FEB, MAR):
            self.push(self.store, start)
        self.assertEqual(12, self.store.delete(begin=FEB))
        self.assertEqual(['ck_point_p20250120', 'ck_point_p20250210',
                          'ck_point_p20250305'], self.names())
        self.assertEqual(6, self.store.retrieve(limit=1, **WINDOW)['total'])
        january = self._totals(JAN, FEB)
        self.assertEqual(january, self._totals(WINDOW['begin'],
                                               WINDOW['end']))
        # NOTE: the same sample frames, pushed again into the emptied day.
        self.push(self.store, FEB)
        self.assertEqual(12, self.store.retrieve(limit=1,
                                                 **WINDOW)['total'])
        self.assertEqual(january, self._totals(FEB, MAR))

    def heap_pages(self, name):
        with self.store.engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT pg_relation_size('%s')" % name).scalar()

    def test_an_edge_day_whose_frames_the_window_holds_is_emptied(self):
        """A day at an edge of the window is emptied when it holds it all.

        February 10th's frames (3:00 and 4:00) start inside a window that
        starts at 1:00: its partition is emptied (no page left, where a
        delete row by row leaves its dead rows), as a whole day is. March
        5th has a frame (1:00) after the window's end: its first hour is
        deleted row by row.
        """
        hour = datetime.timedelta(hours=1)
        for start in (JAN, FEB + 3 * hour, MAR):
            self.push(self.store, start)
        self.assertEqual(6 + 3, self.store.delete(begin=FEB + hour,
                                                  end=MAR + hour))
        self.assertEqual(['ck_point_p20250120', 'ck_point_p20250210',
                          'ck_point_p20250305'], self.names())
        self.assertEqual(0, self.heap_pages('ck_point_p20250210'))
        self.assertNotEqual(0, self.heap_pages('ck_point_p20250305'))
        self.assertEqual(6 + 3, self.store.retrieve(limit=1,
                                                    **WINDOW)['total'])
        self.assertEqual((D(0), D(0)), self._totals(FEB, MAR + hour))
        self.assertEqual(self._totals(JAN, FEB),
                         self._totals(WINDOW['begin'], MAR))
        # NOTE: the day takes pushes again, and counts them once.
        self.push(self.store, FEB + 3 * hour)
        self.assertEqual(6 + 6 + 3, self.store.retrieve(
            limit=1, **WINDOW)['total'])

    def test_a_purge_empties_the_edge_day_it_holds_whole(self):
        """delete(end=...) drops whole days, empties a held edge day.

        March 5th's frames (0:00, 1:00) all start before the cutoff
        (3:00): its partition is emptied, not dropped, since pushes may
        still come to the rest of that day.
        """
        hour = datetime.timedelta(hours=1)
        for start in (JAN, FEB, MAR):
            self.push(self.store, start)
        self.assertEqual(6 + 6 + 6, self.store.delete(end=MAR + 3 * hour))
        self.assertEqual(['ck_point_p20250305'], self.names())
        self.assertEqual(0, self.heap_pages('ck_point_p20250305'))
        self.assertEqual(0, self.store.retrieve(limit=1, **WINDOW)['total'])
        self.push(self.store, MAR + 3 * hour)
        self.assertEqual(6, self.store.retrieve(limit=1, **WINDOW)['total'])

    def test_push_into_a_day_another_process_dropped(self):
        """A stale process recreates the day it believed existed."""
        other = self.new_store()
        self.push(self.store, JAN)
        self.push(other, JAN, project='q')
        self.assertEqual(12, other.delete(end=FEB))
        self.assertEqual([], self.names())
        self.push(self.store, JAN)
        self.assertEqual(['ck_point_p20250120'], self.names())
        self.assertEqual(6, self.store.retrieve(limit=1, **WINDOW)['total'])

    def indexed(self):
        with self.store.engine.connect() as conn:
            return sorted(partitions.series_indexed(conn))

    def test_roll_up_indexes_the_days_before_it_by_series(self):
        """Days get their series index once rolled up, late days later."""
        day = datetime.timedelta(days=1)
        self.push(self.store, JAN)
        self.assertEqual([], self.indexed())
        self.push(self.store, JAN + day)
        self.assertEqual(['ck_point_p20250120'], self.indexed())
        # NOTE: a late push makes an older day's partition, which the
        # next roll-up indexes.
        self.push(self.store, JAN - 3 * day, project='late')
        self.assertEqual(['ck_point_p20250117', 'ck_point_p20250120',
                          'ck_point_p20250121'], self.names())
        self.assertEqual(['ck_point_p20250120'], self.indexed())
        self.push(self.store, JAN + 2 * day)
        self.assertEqual(['ck_point_p20250117', 'ck_point_p20250120',
                          'ck_point_p20250121'], self.indexed())
        # NOTE: reads of a project, and its delete, find the same points
        # through the index and without it (the last day).
        for start in (JAN - 3 * day, JAN, JAN + 2 * day):
            window = dict(begin=start, end=start + day)
            project = 'late' if start < JAN else 'p'
            self.assertEqual(6, self.store.retrieve(
                filters={'project_id': project}, limit=1,
                **window)['total'])
            self.assertEqual(6, self.store.delete(
                filters={'project_id': project}, **window))
        self.assertEqual(6, self.store.retrieve(limit=1, **WINDOW)['total'])

    def test_a_failed_index_build_is_made_at_the_next_roll_up(self):
        """The push lands, the failure is logged, the next one builds."""
        day = datetime.timedelta(days=1)
        log = self.useFixture(fixtures.FakeLogger(
            name='cloudkitty.storage.v2.sqlalchemy.storage'))
        self.push(self.store, JAN)
        build = partitions.Partitions.index_series
        with mock.patch.object(partitions.Partitions, 'index_series',
                               side_effect=RuntimeError('no room'),
                               autospec=True) as failing:
            self.push(self.store, JAN + day)
        self.assertEqual(1, failing.call_count)
        self.assertIn('series indexes of the days before 2025-01-21',
                      log.output)
        self.assertIn('no room', log.output)
        self.assertEqual(['ck_point_p20250120', 'ck_point_p20250121'],
                         self.names())
        self.assertEqual([], self.indexed())
        self.assertEqual(12, self.store.retrieve(limit=1,
                                                 **WINDOW)['total'])
        with mock.patch.object(partitions.Partitions, 'index_series',
                               side_effect=build, autospec=True):
            self.push(self.store, JAN + 2 * day)
        self.assertEqual(['ck_point_p20250120', 'ck_point_p20250121'],
                         self.indexed())

    def test_unread_columns_have_no_statistics(self):
        """New partitions and the tables of migration 0011 skip them."""
        self.push(self.store, JAN)
        for name, table in (('ck_point_p20250120', 'ck_point'),
                            ('ck_daily', 'ck_daily'),
                            ('ck_label_daily', 'ck_label_daily'),
                            ('ck_series', 'ck_series'),
                            ('ck_label', 'ck_label')):
            self.assertEqual(
                sorted(models.NO_STATISTICS[table]),
                sql_provision.no_statistics(self.store.engine, name))
        # NOTE: and ANALYZE keeps none of them.
        with self.store.engine.connect() as conn:
            conn.exec_driver_sql('ANALYZE ck_point_p20250120')
            analyzed = conn.exec_driver_sql(
                "SELECT attname FROM pg_stats WHERE tablename = "
                "'ck_point_p20250120'").scalars().all()
        self.assertEqual(['begin', 'series_id'], sorted(analyzed))

    def test_a_monthly_partition_keeps_its_days(self):
        """A month made before revision 0011 takes its days' points."""
        with self.store.engine.connect() as conn:
            conn.exec_driver_sql(partitions.create_sql(
                *partitions.month_of(int(JAN.timestamp()) * 10 ** 6),
                name='ck_point_p202501'))
            conn.commit()
        other = self.new_store()
        self.push(self.store, JAN)
        self.push(other, JAN + datetime.timedelta(days=1))
        self.push(self.store, FEB)
        self.assertEqual(['ck_point_p202501', 'ck_point_p20250210'],
                         self.names())
        self.assertEqual(['ck_point_p202501'], self.indexed())
        self.assertEqual(18, self.store.retrieve(limit=1,
                                                 **WINDOW)['total'])
        # NOTE: the purge drops the month once its end is passed.
        self.assertEqual(6, self.store.delete(end=JAN + datetime.timedelta(
            days=1)))
        self.assertEqual(['ck_point_p202501', 'ck_point_p20250210'],
                         self.names())
        self.assertEqual(6, other.delete(end=FEB))
        self.assertEqual(['ck_point_p20250210'], self.names())
        self.push(other, JAN)
        self.assertEqual(['ck_point_p20250120', 'ck_point_p20250210'],
                         self.names())

    def _flush_statistics(self, conn):
        """Make this session's counts visible to the next transaction."""
        conn.exec_driver_sql('SELECT pg_stat_force_next_flush()')
        conn.commit()

    def _analyzed(self, conn, name):
        self._flush_statistics(conn)
        row = conn.exec_driver_sql(
            'SELECT n_mod_since_analyze, last_analyze FROM '
            'pg_stat_user_tables WHERE relname = %s', (name,)).one()
        conn.commit()
        return row

    def _analyze_stale(self, conn, name):
        self._flush_statistics(conn)
        engine_mod.analyze_stale(conn, [name])
        conn.commit()

    def test_stale_statistics_are_refreshed(self):
        """A table whose rows changed by a tenth is analyzed, not others."""
        with self.store.engine.connect() as conn:
            conn.exec_driver_sql('DROP TABLE IF EXISTS ck_stats_probe')
            conn.exec_driver_sql('CREATE TABLE ck_stats_probe (n int)')
            conn.commit()
            self.addCleanup(self._drop_probe)
            conn.exec_driver_sql(
                'INSERT INTO ck_stats_probe SELECT generate_series(1, 100)')
            conn.commit()
            self._analyze_stale(conn, 'ck_stats_probe')
            changed, analyzed = self._analyzed(conn, 'ck_stats_probe')
            self.assertEqual(0, changed)
            self.assertIsNotNone(analyzed)
            # NOTE: 5 rows changed of 100: not stale; 10 more: stale.
            conn.exec_driver_sql(
                'UPDATE ck_stats_probe SET n = -n WHERE n <= 5')
            conn.commit()
            self._analyze_stale(conn, 'ck_stats_probe')
            self.assertEqual(5, self._analyzed(conn, 'ck_stats_probe')[0])
            conn.exec_driver_sql(
                'UPDATE ck_stats_probe SET n = -n WHERE n > 90')
            conn.commit()
            self._analyze_stale(conn, 'ck_stats_probe')
            self.assertEqual(0, self._analyzed(conn, 'ck_stats_probe')[0])

    def _drop_probe(self):
        with self.store.engine.connect() as conn:
            conn.exec_driver_sql('DROP TABLE IF EXISTS ck_stats_probe')
            conn.commit()

    def test_roll_up_refreshes_the_rollup_statistics(self):
        """A roll-up analyzes its partitions' and the rollup's tables."""
        self.push(self.store, JAN)
        with mock.patch.object(engine_mod, 'analyze_stale',
                               wraps=engine_mod.analyze_stale) as analyze:
            self.push(self.store, JAN + datetime.timedelta(days=1))
        tables = [sorted(call.args[1]) for call in analyze.call_args_list]
        # NOTE: the day rolled up, and the new day with its first push.
        self.assertEqual([['ck_daily', 'ck_label_daily',
                           'ck_point_p20250120', 'ck_point_p20250121']],
                         tables)
