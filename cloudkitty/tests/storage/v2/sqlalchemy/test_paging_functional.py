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
"""Deep pages: the seek through the daily rollup gives the same pages.

retrieve() seeks the frame start of pages at large offsets (see
``SQLAlchemyStorage._seek``) instead of an OFFSET over every earlier point.
Here the threshold is lowered to 0, so that every page seeks, and every
page of random data over several days (partial days at both edges,
several types per frame, filters, deletes that empty whole days) must
equal the same slice of the unpaginated answer.
"""

import datetime
import decimal
import random

import fixtures
import testtools

from cloudkitty import dataframe
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision

T0 = datetime.datetime(2024, 5, 30, 17, tzinfo=datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)
WINDOW = dict(begin=T0 + HOUR, end=T0 + 60 * HOUR)


def _flatten(answer):
    return [(frame.start, type_, point.qty, point.price,
             tuple(sorted(point.groupby.items())))
            for frame in answer['dataframes']
            for type_, point in frame.iterpoints()]


class _PagingMixin:
    """The tests; a subclass provides ``self.url`` for an empty database."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.sqlalchemy.storage._SEEK_FROM', 0))
        self.store = self.new_store()
        rng = random.Random(7)
        for hour in rng.sample(range(64), 40):
            frame = dataframe.DataFrame(T0 + hour * HOUR,
                                        T0 + (hour + 1) * HOUR)
            for n in range(rng.randint(1, 12)):
                frame.add_point(dataframe.DataPoint(
                    'u', n, decimal.Decimal(rng.randint(0, 999)) / 100,
                    {'project_id': rng.choice('ab'), 'id': str(n)}, {}),
                    rng.choice(['cpu', 'image', 'ip']))
            self.store.push([frame])

    def assertPagesMatch(self, **kwargs):
        """Every page of every size equals the slice of the whole answer."""
        whole = _flatten(self.store.retrieve(paginate=False, **WINDOW,
                                             **kwargs))
        for limit in (1, 7, 50):
            for offset in range(0, len(whole) + limit + 1, limit):
                page = self.store.retrieve(offset=offset, limit=limit,
                                           **WINDOW, **kwargs)
                self.assertEqual(len(whole), page['total'])
                self.assertEqual(whole[offset:offset + limit],
                                 _flatten(page), (offset, limit, kwargs))

    def test_pages_after_a_seek(self):
        """Pages at every offset, with and without filters."""
        self.assertPagesMatch()
        self.assertPagesMatch(filters={'project_id': 'a'})
        self.assertPagesMatch(metric_types=['image', 'ip'],
                              filters={'id': ['1', '2', '3']})

    def test_pages_after_deletes(self):
        """Days emptied by deletes are skipped by their (empty) counts."""
        self.store.delete(begin=T0 + 20 * HOUR, end=T0 + 50 * HOUR,
                          filters={'project_id': 'a'})
        self.store.delete(begin=T0 + 30 * HOUR, end=T0 + 40 * HOUR)
        self.assertPagesMatch()
        self.assertPagesMatch(filters={'project_id': 'b'})

    def test_named_series_order_as_joined_ones(self):
        """Reads that name their series order types as the database does.

        On PostgreSQL a filtered read names its series by id and orders
        by the rank of their types (see ``_NamedQuery``); past
        ``_DELETE_SERIES`` series it joins ``ck_series`` and orders by
        the type itself. Both give the same pages, with types whose
        order depends on case.
        """
        start = T0 + 70 * HOUR
        for hour in range(3):
            frame = dataframe.DataFrame(start + hour * HOUR,
                                        start + (hour + 1) * HOUR)
            for n, type_ in enumerate(['ip', 'IP', 'Image', 'cpu', 'ip',
                                       'image', 'CPU', 'Image']):
                frame.add_point(dataframe.DataPoint(
                    'u', n, hour, {'project_id': 'c', 'id': str(n)}, {}),
                    type_)
            self.store.push([frame])
        window = dict(begin=start, end=start + 3 * HOUR,
                      filters={'project_id': 'c'})
        named = _flatten(self.store.retrieve(paginate=False, **window))
        self.assertEqual(24, len(named))
        with fixtures.MonkeyPatch(
                'cloudkitty.storage.v2.sqlalchemy.storage._DELETE_SERIES',
                0):
            joined = _flatten(self.store.retrieve(paginate=False, **window))
            self.assertEqual(joined[5:12], _flatten(self.store.retrieve(
                offset=5, limit=7, **window)))
        self.assertEqual(joined, named)
        self.assertEqual(named[5:12], _flatten(self.store.retrieve(
            offset=5, limit=7, **window)))


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class SQLitePagingTest(sql_provision.SQLiteURLMixin, _PagingMixin,
                       testtools.TestCase):
    """Deep pages on SQLite."""


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLPagingTest(sql_provision.ServerURLMixin, _PagingMixin,
                           testtools.TestCase):
    """Deep pages on PostgreSQL."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class MariaDBPagingTest(sql_provision.ServerURLMixin, _PagingMixin,
                        testtools.TestCase):
    """Deep pages on MariaDB."""

    url_variable = 'CLOUDKITTY_TEST_MYSQL_URL'
