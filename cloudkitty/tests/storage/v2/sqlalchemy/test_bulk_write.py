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
"""SQLite's bulk writes land every row once, whatever their number.

Rows laid out in chunks go :data:`engine.SQLITE_ROWS` at a time in
multi-row statements and the rest one by one; an ``ON CONFLICT`` suffix
applies to each row in order, as it does one row at a time.
"""

import sqlalchemy as sa
import testtools

from cloudkitty.storage.v2.sqlalchemy import engine as engine_mod

SIZE = engine_mod.SQLITE_ROWS


class SQLiteBulkWriteTest(testtools.TestCase):
    """Multi-row and one-row writes give the same table."""

    def setUp(self):
        super().setUp()
        self.engine = sa.create_engine('sqlite://')
        self.addCleanup(self.engine.dispose)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(
                'CREATE TABLE t (k INTEGER PRIMARY KEY, a BIGINT NOT NULL, '
                'b TEXT NOT NULL)')

    def _write(self, rows, chunked, suffix=''):
        writer = engine_mod.BulkWrite(self.engine.dialect, 't',
                                      ('k', 'a', 'b'), suffix)
        with self.engine.begin() as conn:
            if chunked:
                size = writer.per_statement
                whole = len(rows) // size * size
                flat = [value for row in rows[:whole] for value in row]
                writer.execute_chunks(conn, [
                    tuple(flat[at:at + 3 * size])
                    for at in range(0, len(flat), 3 * size)], rows[whole:])
            else:
                writer.execute(conn, rows)
            return conn.exec_driver_sql(
                'SELECT k, a, b FROM t ORDER BY k').all()

    def test_every_row_lands_once(self):
        for count in (0, 1, SIZE - 1, SIZE, SIZE + 1, 3 * SIZE + 7):
            for chunked in (True, False):
                with self.engine.begin() as conn:
                    conn.exec_driver_sql('DELETE FROM t')
                rows = [(k, k * 10 ** 12 - 7, 'v%d' % k)
                        for k in range(count)]
                self.assertEqual(rows, [tuple(r) for r in self._write(
                    rows, chunked)], (count, chunked))

    def test_conflicts_apply_row_by_row(self):
        suffix = ' ON CONFLICT (k) DO UPDATE SET a = t.a + excluded.a'
        rows = [(k % 3, 1, 'x') for k in range(2 * SIZE + 5)]
        expected = [(k, len([r for r in rows if r[0] == k]), 'x')
                    for k in range(3)]
        self.assertEqual(expected, [tuple(r) for r in self._write(
            rows, True, suffix)])
