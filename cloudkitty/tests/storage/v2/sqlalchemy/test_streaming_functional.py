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

The points of known series are copied run by run as they are encoded,
as the bytes of COPY's binary rows (see ``SQLAlchemyStorage.
_push_streaming``), by the compiled encoder or its Python form, which
must store the same exact money. A refused value met after some of them
were sent must still leave nothing behind, the same connection must serve
the next push, and a push that meets new series half way must store its
points in push order, which is retrieve()'s tiebreak.
"""

import datetime
import decimal
from unittest import mock

import sqlalchemy as sa
import testtools

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import query
from cloudkitty.storage.v2.sqlalchemy import fastpath
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

    def test_both_encoders_copy_exact_money(self):
        values = ['0', '-0.000000000001', '1.5', '-7', '123456.789012345678',
                  '-9223372.036854775807', '0.25', '3E-12', '1E+6']
        resources = ['r%d' % i for i in range(len(values))]
        frames = []
        for step, encoder in enumerate((fastpath.encode_known,
                                        fastpath.python_encode_known)):
            start = T0 + 2 * step * HOUR
            # NOTE: the first push interns the series; the second takes
            # the fast path, which writes COPY's bytes.
            for index in range(2):
                frame = dataframe.DataFrame(start + index * HOUR,
                                            start + (index + 1) * HOUR)
                for resource, value in zip(resources, values):
                    frame.add_point(dataframe.DataPoint(
                        'u', decimal.Decimal(value),
                        -decimal.Decimal(value),
                        {'id': resource, 'project_id': 'p'}, {}), 'cpu')
                with mock.patch.object(fastpath, 'encode_known', encoder):
                    self.store.push([frame])
                frames.append(frame)
        self.assertEqual(
            query.evaluate_retrieve(query.validate_retrieve(
                paginate=False, **WINDOW), frames),
            self.store.retrieve(paginate=False, **WINDOW))
