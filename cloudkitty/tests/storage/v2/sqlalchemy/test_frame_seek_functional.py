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
"""Label-filtered reads that seek frame by frame give the same answers.

A read filtered on labels seeks each (frame or day, series) it needs when
that costs less than scanning its window (see ``SQLAlchemyStorage.
_frames_to_seek``). The data of the conformance suite is too small for
that, so the conformance suite runs again here with the threshold at 0:
every label-filtered read that can seek does. The other tests check when
reads seek, and that frames whose points end at different times are read
whole.
"""

import datetime
import decimal

import fixtures
import testtools

from cloudkitty import dataframe
from cloudkitty.storage.v2 import query as query_mod
from cloudkitty.storage.v2.sqlalchemy import storage as storage_mod
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision
from cloudkitty.tests.storage.v2 import test_sql_servers_functional as servers
from cloudkitty.tests.storage.v2 import test_sqlite_functional

T0 = datetime.datetime(2024, 5, 30, 22, tzinfo=datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)
_RATIO = 'cloudkitty.storage.v2.sqlalchemy.storage._SEEK_RATIO'


class _AlwaysSeek:
    """Every label-filtered read that can seek frame by frame does."""

    def setUp(self):
        self.useFixture(fixtures.MonkeyPatch(_RATIO, 0))
        super().setUp()


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class SQLiteSeekingStorageTest(_AlwaysSeek,
                               test_sqlite_functional.SQLiteStorageTest):
    """The conformance suite on SQLite, seeking whenever possible."""


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLSeekingStorageTest(_AlwaysSeek,
                                   servers.PostgreSQLStorageTest):
    """The conformance suite on PostgreSQL, seeking whenever possible."""


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class MariaDBSeekingStorageTest(_AlwaysSeek, servers.MySQLStorageTest):
    """The conformance suite on MariaDB, seeking whenever possible."""


def _point(project, resource, qty):
    return dataframe.DataPoint(
        'u', decimal.Decimal(qty), decimal.Decimal('0.5'),
        {'project_id': project, 'id': resource}, {'flavor': 'small'})


def _flatten(answer):
    return [(frame.start, frame.end, type_, point)
            for frame in answer['dataframes']
            for type_, point in frame.iterpoints()]


class _SeekMixin:
    """The tests; a subclass provides ``self.url`` for an empty database.

    Three hourly frames of 20 projects with 3 resources each (180 points,
    60 series): one project's 3 series in 3 frames are 9 seeks, a 20th of
    the window's points: below the threshold.
    """

    def setUp(self):
        super().setUp()
        self.store = self.new_store()
        self.frames = []
        for hour in range(3):
            frame = dataframe.DataFrame(T0 + hour * HOUR,
                                        T0 + (hour + 1) * HOUR)
            frame.add_points([
                _point('p%02d' % project, 'r%d' % resource,
                       '%d.%d' % (hour + 1, project * 3 + resource))
                for project in range(20) for resource in range(3)], 'cpu')
            self.store.push([frame])
            self.frames.append(frame)
        self.window = dict(begin=T0, end=T0 + 5 * HOUR)

    def seeks(self, **kwargs):
        query = query_mod.validate_retrieve(**dict(self.window, **kwargs))
        with self.store._reading_connection() as conn:
            return self.store._frames_to_seek(conn, query)

    def assertSameAsScans(self, **kwargs):
        """Retrieve and totals are the same with seeks and without."""
        kwargs = dict(self.window, **kwargs)
        seeking = (self.store.retrieve(paginate=False, **kwargs),
                   self.store.total(groupby=['project_id', 'id'],
                                    paginate=False, **kwargs))
        with fixtures.MonkeyPatch(_RATIO, float('inf')):
            self.assertFalse(self.seeks(**kwargs))
            scanning = (self.store.retrieve(paginate=False, **kwargs),
                        self.store.total(groupby=['project_id', 'id'],
                                         paginate=False, **kwargs))
        self.assertEqual(_flatten(scanning[0]), _flatten(seeking[0]))
        self.assertEqual(scanning[0]['total'], seeking[0]['total'])
        self.assertEqual(scanning[1], seeking[1])
        return seeking

    def test_one_project_seeks(self):
        """A filter on a few series seeks, and answers as a scan does."""
        self.assertTrue(self.seeks(filters={'project_id': 'p07'}))
        answer, totals = self.assertSameAsScans(
            filters={'project_id': 'p07'})
        self.assertEqual(9, answer['total'])
        self.assertEqual(3, len(totals['results']))

    def test_wide_or_unlabelled_reads_scan(self):
        """Many series, a type alone or no filter: no seek."""
        self.assertFalse(self.seeks(
            filters={'project_id': ['p%02d' % i for i in range(10)]}))
        self.assertFalse(self.seeks(metric_types=['cpu']))
        self.assertFalse(self.seeks())

    def test_frame_with_two_ends_is_read_whole(self):
        """A frame start whose points end at two times is read whole.

        Where seeks join the points to their frames, such a frame start
        makes the read scan.
        """
        frame = dataframe.DataFrame(T0, T0 + 2 * HOUR)
        frame.add_points([_point('p07', 'long', '7')], 'cpu')
        self.store.push([frame])
        # NOTE: the new series is a fourth seek per frame for p07.
        self.useFixture(fixtures.MonkeyPatch(_RATIO, 1))
        self.assertEqual(not self.store._joins_frames,
                         self.seeks(filters={'project_id': 'p07'}))
        answer, _ = self.assertSameAsScans(filters={'project_id': 'p07'})
        self.assertEqual(10, answer['total'])
        self.assertIn((T0, T0 + 2 * HOUR), [
            (frame.start, frame.end) for frame in answer['dataframes']])

    def test_later_frames_seek_again(self):
        """Rolled-up days and the days after them give the same sums."""
        frame = dataframe.DataFrame(T0 + 50 * HOUR, T0 + 51 * HOUR)
        frame.add_points([_point('p%02d' % project, 'r0', '1')
                          for project in range(20)], 'cpu')
        self.store.push([frame])
        self.window = dict(begin=T0 - 2 * HOUR, end=T0 + 60 * HOUR)
        self.assertTrue(self.seeks(filters={'project_id': 'p03'}))
        answer, _ = self.assertSameAsScans(filters={'project_id': 'p03'})
        self.assertEqual(10, answer['total'])

    def test_filtered_delete_seeks(self):
        """A filtered delete seeks frame by frame where points are joined.

        It removes what the window and filter hold, the points of a frame
        start that end at two times included, and nothing else.
        """
        for start, stop in ((T0, T0 + 2 * HOUR), (T0 + HOUR, T0 + 3 * HOUR)):
            frame = dataframe.DataFrame(start, stop)
            frame.add_points([_point('p07', 'long', '7'),
                              _point('p08', 'long', '8')], 'cpu')
            self.store.push([frame])
            self.frames.append(frame)
        statements = []
        real_rows = storage_mod._driver_rows

        def driver_rows(conn, statement, params=None):
            statements.append(statement)
            return real_rows(conn, statement, params)

        window = dict(begin=T0 + HOUR, end=T0 + 3 * HOUR,
                      filters={'project_id': 'p07'})
        with fixtures.MonkeyPatch(_RATIO, 1), fixtures.MonkeyPatch(
                'cloudkitty.storage.v2.sqlalchemy.storage._driver_rows',
                driver_rows):
            # NOTE: p07's 3 series in 2 hourly frames, its long series in
            # the frame that starts in the window.
            self.assertEqual(7, self.store.delete(**window))
        self.assertEqual(self.store._joins_frames,
                         self.store._seek_series_points in statements)
        _, left = query_mod.evaluate_delete(
            query_mod.validate_delete(**window), self.frames)
        self.assertEqual(
            _flatten(query_mod.evaluate_retrieve(query_mod.validate_retrieve(
                paginate=False, **self.window), left)),
            _flatten(self.store.retrieve(paginate=False, **self.window)))


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class SQLiteSeekTest(sql_provision.SQLiteURLMixin, _SeekMixin,
                     testtools.TestCase):
    """Seeks on SQLite."""


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLSeekTest(sql_provision.ServerURLMixin, _SeekMixin,
                         testtools.TestCase):
    """Seeks on PostgreSQL."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class MariaDBSeekTest(sql_provision.ServerURLMixin, _SeekMixin,
                      testtools.TestCase):
    """Seeks on MariaDB."""

    url_variable = 'CLOUDKITTY_TEST_MYSQL_URL'
