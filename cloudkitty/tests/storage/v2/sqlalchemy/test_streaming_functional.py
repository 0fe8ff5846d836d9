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
"""PostgreSQL pushes copy points while they are checked.

The points of known series are copied one by one as they are encoded (see
``SQLAlchemyStorage._push_streaming``). A refused value met after some of
them were sent must still leave nothing behind, the same connection must
serve the next push, and a push that meets new series half way must store
its points in push order, which is retrieve()'s tiebreak.
"""

import datetime
import decimal

import sqlalchemy as sa
import testtools

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import query
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision

T0 = datetime.datetime(2025, 3, 1, tzinfo=datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)
WINDOW = dict(begin=T0, end=T0 + 24 * HOUR)


def _frame(start, resources, qty='1'):
    frame = dataframe.DataFrame(start, start + HOUR)
    for resource in resources:
        frame.add_point(dataframe.DataPoint(
            'u', decimal.Decimal(qty), decimal.Decimal('0.5'),
            {'id': resource, 'project_id': 'p'}, {}), 'cpu')
    return frame


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLStreamingTest(sql_provision.ServerURLMixin,
                              testtools.TestCase):
    """Streamed pushes on PostgreSQL."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'

    def setUp(self):
        super().setUp()
        self.store = self.new_store()
        self.assertTrue(self.store._streams)

    def _rows(self):
        with self.store.engine.connect() as conn:
            return {table.name: conn.scalar(
                sa.select(sa.func.count()).select_from(table))
                for table in (models.point, models.daily, models.frame,
                              models.series)}

    def test_refused_value_after_streamed_points_stores_nothing(self):
        known = ['r%03d' % i for i in range(500)]
        self.store.push([_frame(T0, known)])
        before = self._rows()
        bad = _frame(T0 + HOUR, known)
        # NOTE: the last point is refused, after 500 were copied.
        refused = dataframe.DataPoint('u', decimal.Decimal('1E+20'), 0,
                                      {'id': 'r000', 'project_id': 'p'}, {})
        bad.add_point(refused, 'cpu')
        self.assertRaises(exceptions.InvalidQuery, self.store.push, [bad])
        self.assertEqual(before, self._rows())
        # NOTE: and the pooled connection serves the next push.
        self.store.push([_frame(T0 + HOUR, known)])
        self.assertEqual(1000, self.store.retrieve(**WINDOW,
                                                   limit=1)['total'])

    def test_new_series_half_way_keep_push_order(self):
        first = _frame(T0, ['a', 'c'])
        self.store.push([first])
        # NOTE: 'a' and 'c' stream; from 'b' on the rest waits for 'b' to
        # be interned. Same start and type: only the push order sorts them.
        second = _frame(T0 + HOUR, ['c', 'b', 'a', 'd', 'c'], qty='2')
        self.store.push([second])
        frames = [first, second]
        self.assertEqual(
            query.evaluate_retrieve(query.validate_retrieve(
                paginate=False, **WINDOW), frames),
            self.store.retrieve(paginate=False, **WINDOW))
        self.assertEqual(
            query.evaluate_total(query.validate_total(
                groupby=['id'], **WINDOW), frames),
            self.store.total(groupby=['id'], **WINDOW))
