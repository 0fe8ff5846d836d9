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
"""The daily rollup covers the days before ``ck_rollup.until``.

Until this revision every push kept ``ck_daily`` up to date, so every day
that holds points is rolled up: ``until`` starts the day after the last one
(or before every day, in an empty store). See
:mod:`cloudkitty.storage.v2.sqlalchemy.rollup`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

from cloudkitty.storage.v2.sqlalchemy import ddl

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# NOTE: the values of cloudkitty.storage.v2.sqlalchemy.rollup at this
# revision, copied so that later changes there cannot change this one.
_DAY = 24 * 3600 * 10 ** 6
_NOTHING = -2 ** 63


def upgrade():
    bind = op.get_bind()
    state = op.create_table(
        'ck_rollup',
        sa.Column('id', sa.Integer, primary_key=True, autoincrement=False),
        sa.Column('until', sa.BigInteger, nullable=False),
        **ddl.table_options(bind))
    last = bind.scalar(sa.text('SELECT max(day) FROM ck_daily'))
    op.bulk_insert(state, [{'id': 1, 'until': _NOTHING if last is None
                            else int(last) + _DAY}])


def downgrade():
    op.drop_table('ck_rollup')
