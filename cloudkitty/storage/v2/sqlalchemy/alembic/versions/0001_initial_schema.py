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
"""Initial schema: interned series, their labels, and point facts.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op
import sqlalchemy as sa

from cloudkitty.storage.v2.sqlalchemy import ddl

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    options = ddl.table_options(op.get_bind())
    op.create_table(
        'ck_series',
        sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
        sa.Column('fingerprint', sa.String(64), nullable=False),
        sa.Column('scope_id', sa.String(255), nullable=True),
        sa.Column('type', sa.String(255), nullable=False),
        sa.Column('unit', sa.String(255), nullable=False),
        sa.Column('groupby', sa.Text, nullable=False),
        sa.Column('metadata', sa.Text, nullable=False),
        sa.Column('description', sa.Text, nullable=True),
        sa.UniqueConstraint('fingerprint', name='ck_series_fingerprint'),
        **options)
    op.create_index('ck_series_type', 'ck_series', ['type'])
    op.create_table(
        'ck_label',
        sa.Column('series_id', sa.Integer, sa.ForeignKey('ck_series.id'),
                  primary_key=True),
        sa.Column('key', sa.String(255), primary_key=True),
        sa.Column('value', sa.Text, nullable=False),
        **options)
    op.create_index('ck_label_key_value', 'ck_label', ['key', 'value'],
                    mysql_length={'value': 255})
    op.create_table(
        'ck_point',
        sa.Column('id', BigInt, primary_key=True, autoincrement=True),
        sa.Column('series_id', sa.Integer, sa.ForeignKey('ck_series.id'),
                  nullable=False),
        sa.Column('begin', sa.BigInteger, nullable=False),
        sa.Column('end', sa.BigInteger, nullable=False),
        sa.Column('qty_hi', sa.BigInteger, nullable=False),
        sa.Column('qty_lo', sa.BigInteger, nullable=False),
        sa.Column('price_hi', sa.BigInteger, nullable=False),
        sa.Column('price_lo', sa.BigInteger, nullable=False),
        **options)
    op.create_index('ck_point_begin', 'ck_point',
                    ['begin', 'end', 'series_id', 'qty_hi', 'qty_lo',
                     'price_hi', 'price_lo'])
    checks = []
    if op.get_bind().dialect.name == 'sqlite':
        # NOTE: SQLite turns an integer sum that overflows 64 bits into a
        # float instead of failing; refusing non-integers makes such an
        # update fail (and its push roll back) instead of losing cents.
        checks = [sa.CheckConstraint(
            ' AND '.join("typeof(%s) = 'integer'" % c for c in (
                'n', 'qty_big', 'qty_small', 'qty_lo', 'price_big',
                'price_small', 'price_lo')),
            name='ck_daily_integers')]
    op.create_table(
        'ck_daily',
        sa.Column('day', sa.BigInteger, primary_key=True,
                  autoincrement=False),
        sa.Column('series_id', sa.Integer, sa.ForeignKey('ck_series.id'),
                  primary_key=True, autoincrement=False),
        sa.Column('n', sa.BigInteger, nullable=False),
        sa.Column('qty_big', sa.BigInteger, nullable=False),
        sa.Column('qty_small', sa.BigInteger, nullable=False),
        sa.Column('qty_lo', sa.BigInteger, nullable=False),
        sa.Column('price_big', sa.BigInteger, nullable=False),
        sa.Column('price_small', sa.BigInteger, nullable=False),
        sa.Column('price_lo', sa.BigInteger, nullable=False),
        *checks,
        sqlite_with_rowid=False,
        **options)
