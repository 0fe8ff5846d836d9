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
"""Labels keep their type: ``ck_label.kind``.

Groupby and metadata values may be str, int, float, bool or None.
``ck_label.value`` keeps the value's string form (what a filter compares
with) and the new ``kind`` column its type (``s``, ``i``, ``f``, ``b``,
``n``; see :func:`cloudkitty.storage.v2.query.encode_label`). Every label
stored so far is a str: the column's default, ``s``, says so, so the
upgrade rewrites no row (``ck_series`` already keeps typed JSON).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('ck_label', sa.Column('kind', sa.String(1), nullable=False,
                                        server_default='s'))


def downgrade():
    with op.batch_alter_table('ck_label') as batch:
        batch.drop_column('kind')
