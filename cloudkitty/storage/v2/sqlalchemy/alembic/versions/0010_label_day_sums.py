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
"""Day sums per label value, for totals grouped by a label (not MariaDB).

Creates ``ck_label_daily`` (per label key, day, type and value: the number
of points and their exact sums), ``ck_label_fresh`` (the days whose sums
are exact, per key), ``ck_label_stale`` (the days to rebuild) and
``ck_label_keys`` (the keys kept, empty until a roll-up); see
:mod:`cloudkitty.storage.v2.sqlalchemy.labelsums`. Every day the rollup
holds already is listed as stale: no day is fresh yet, so totals read
``ck_daily`` as before, and the roll-ups that follow rebuild a week of
them each, the newest first. MariaDB and MySQL get none of these tables.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_MONEY = ('qty_big', 'qty_small', 'qty_lo', 'price_big', 'price_small',
          'price_lo')


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name not in ('sqlite', 'postgresql'):
        return
    op.create_table(
        'ck_label_daily',
        sa.Column('key', sa.String(255), primary_key=True),
        sa.Column('day', sa.BigInteger, primary_key=True,
                  autoincrement=False),
        sa.Column('type', sa.String(255), primary_key=True),
        sa.Column('kind', sa.String(1), primary_key=True),
        sa.Column('value', sa.Text, primary_key=True),
        sa.Column('n', sa.BigInteger, nullable=False),
        *[sa.Column(name, sa.BigInteger, nullable=False) for name in _MONEY],
        sqlite_with_rowid=False)
    op.create_table(
        'ck_label_fresh',
        sa.Column('day', sa.BigInteger, primary_key=True,
                  autoincrement=False),
        sa.Column('key', sa.String(255), primary_key=True),
        sqlite_with_rowid=False)
    op.create_table(
        'ck_label_stale',
        sa.Column('day', sa.BigInteger, primary_key=True,
                  autoincrement=False),
        sqlite_with_rowid=False)
    op.create_table(
        'ck_label_keys',
        sa.Column('key', sa.String(255), primary_key=True),
        sqlite_with_rowid=False)
    # NOTE: ck_daily's key leads with the day: its distinct days are read
    # from the key alone.
    bind.exec_driver_sql(
        'INSERT INTO ck_label_stale (day) SELECT DISTINCT day FROM ck_daily')


def downgrade():
    for name in ('ck_label_keys', 'ck_label_stale', 'ck_label_fresh',
                 'ck_label_daily'):
        op.drop_table(name)
