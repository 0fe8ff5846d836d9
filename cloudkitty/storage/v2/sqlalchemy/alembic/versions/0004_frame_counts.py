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
"""Point counts per frame start and type (``ck_frame``), for deep pages.

The counts of the points already stored are computed here, in the
migration's transaction. See :mod:`cloudkitty.storage.v2.sqlalchemy.
frames`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

from cloudkitty.storage.v2.sqlalchemy import ddl

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    op.create_table(
        'ck_frame',
        sa.Column('begin', sa.BigInteger, primary_key=True,
                  autoincrement=False),
        sa.Column('type', sa.String(255), primary_key=True),
        sa.Column('n', sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
        **ddl.table_options(bind))
    point = sa.table('ck_point', sa.column('series_id'), sa.column('begin'))
    series = sa.table('ck_series', sa.column('id'), sa.column('type'))
    frame = sa.table('ck_frame', sa.column('begin'), sa.column('type'),
                     sa.column('n'))
    op.execute(frame.insert().from_select(
        ['begin', 'type', 'n'],
        sa.select(point.c.begin, series.c.type, sa.func.count()).select_from(
            point.join(series, series.c.id == point.c.series_id)).group_by(
            point.c.begin, series.c.type)))


def downgrade():
    op.drop_table('ck_frame')
