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
"""Idempotency keys of pushes (``ck_push``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op
import sqlalchemy as sa

from cloudkitty.storage.v2.sqlalchemy import ddl

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'ck_push',
        sa.Column('key', sa.String(255), primary_key=True,
                  autoincrement=False),
        sa.Column('scope_id', sa.String(255), nullable=True),
        sa.Column('points', sa.BigInteger, nullable=False),
        sa.Column('qty', sa.String(64), nullable=False),
        sa.Column('price', sa.String(64), nullable=False),
        sa.Column('first_begin', sa.BigInteger, nullable=False),
        sa.Column('last_begin', sa.BigInteger, nullable=False),
        sa.Column('pushed_at', sa.BigInteger, nullable=False),
        **ddl.table_options(op.get_bind()))
    op.create_index('ck_push_window', 'ck_push',
                    ['first_begin', 'last_begin'])


def downgrade():
    op.drop_index('ck_push_window', table_name='ck_push')
    op.drop_table('ck_push')
