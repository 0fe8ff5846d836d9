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
"""PostgreSQL merges a few rows as arrays and more through a staging table.

:class:`engine.CopyWrite` with an ``ON CONFLICT`` suffix sends at most
:data:`engine.ARRAY_ROWS` rows as one array per column, more through a
temporary table: both must leave the same table, apply the suffix to
each conflicting row and return what its ``RETURNING`` clause returns.
As arrays, a value out of its column's range is the server's overflow
error, as one of the merge's own sums would be.
"""

from unittest import mock

import sqlalchemy as sa
import testtools

from cloudkitty.storage.v2.sqlalchemy import engine as engine_mod
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision

SUFFIX = (' ON CONFLICT (day, series_id) DO UPDATE SET n = t.n + excluded.n,'
          ' label = excluded.label')


def _table():
    return sa.Table(
        't', sa.MetaData(),
        sa.Column('day', sa.BigInteger, primary_key=True),
        sa.Column('series_id', sa.Integer, primary_key=True),
        sa.Column('n', sa.BigInteger, nullable=False),
        sa.Column('label', sa.Text, nullable=False),
        prefixes=['TEMPORARY'])


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLCopyMergeTest(sql_provision.ServerDatabaseMixin,
                              testtools.TestCase):
    """Merged as arrays or staged, the same rows land."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'

    def setUp(self):
        super().setUp()
        self.engine = sa.create_engine(self.database_url)
        self.addCleanup(self.engine.dispose)
        self.table = _table()

    def _merge(self, batches, array_rows, suffix=SUFFIX):
        """Merge each batch in turn; return the table and what came back.

        :param array_rows: :data:`engine.ARRAY_ROWS` for this run.
        """
        writer = engine_mod.CopyWrite(
            self.engine.dialect, self.table,
            ('day', 'series_id', 'n', 'label'), suffix)
        returned = []
        with mock.patch.object(engine_mod, 'ARRAY_ROWS', array_rows), \
                self.engine.connect() as conn:
            self.table.create(conn)
            try:
                for rows in batches:
                    returned.append(writer.execute(conn, rows))
                return conn.execute(sa.select(self.table).order_by(
                    'day', 'series_id')).all(), returned
            finally:
                conn.rollback()

    def test_arrays_and_staging_merge_alike(self):
        first = [(day, series, 1, 'a') for day in (5, 2 ** 40)
                 for series in range(30)]
        # NOTE: half of them meet rows of the first batch.
        second = [(2 ** 40, series, 2 ** 62, "o'b\\") for series in
                  range(15, 45)]
        arrays = self._merge([first, second], engine_mod.ARRAY_ROWS)
        staged = self._merge([first, second], 0)
        self.assertEqual(staged, arrays)
        table = {(day, series): (n, label)
                 for day, series, n, label in arrays[0]}
        self.assertEqual(75, len(table))
        self.assertEqual((1, 'a'), table[(5, 29)])
        self.assertEqual((1 + 2 ** 62, "o'b\\"), table[(2 ** 40, 20)])
        self.assertEqual((2 ** 62, "o'b\\"), table[(2 ** 40, 44)])

    def test_returning_comes_back_either_way(self):
        rows = [(1, series, series, 'x') for series in (3, 1, 2)]
        suffix = SUFFIX + ' RETURNING series_id, n'
        for array_rows in (engine_mod.ARRAY_ROWS, 0):
            _, returned = self._merge([rows, rows], array_rows, suffix)
            self.assertEqual(
                [[(1, 1), (2, 2), (3, 3)], [(1, 2), (2, 4), (3, 6)]],
                [sorted(batch) for batch in returned], array_rows)

    def test_more_rows_than_arrays_take_are_staged(self):
        count = engine_mod.ARRAY_ROWS + 1
        rows = [(7, series, 1, 's') for series in range(count)]
        table, _ = self._merge([rows, rows[:3]], engine_mod.ARRAY_ROWS)
        self.assertEqual(count, len(table))
        self.assertEqual([2, 2, 2, 1], [row.n for row in table[:4]])

    def test_out_of_range_is_an_overflow(self):
        # NOTE: staged, psycopg refuses the value itself (OverflowError).
        for value in (2 ** 63, -2 ** 63 - 1):
            error = self.assertRaises(
                sa.exc.DBAPIError, self._merge, [[(1, 1, value, 'x')]],
                engine_mod.ARRAY_ROWS)
            self.assertTrue(engine_mod.overflowed(error), error)
