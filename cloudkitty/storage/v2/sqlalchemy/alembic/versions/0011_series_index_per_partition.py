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
"""PostgreSQL: an index by series per partition, fewer statistics.

``ck_point_series``, on ``(series_id, begin)``, was an index of the
partitioned table, so every partition had it and every push kept it up.
From this revision on, pushes create daily partitions without it and the
roll-up builds it on each day it rolled up (see
:mod:`~cloudkitty.storage.v2.sqlalchemy.partitions`). The partitioned
index is dropped (which drops those of the partitions), and each existing
partition gets its own, named ``<partition>_series``: the monthly
partitions of the earlier revisions keep their index, the current month's
too, which keeps receiving points until its end.

The columns of :data:`~cloudkitty.storage.v2.sqlalchemy.models.
NO_STATISTICS`, which no statement filters on, get no statistics (the
roll-up's ANALYZE of a day's partition and of ``ck_daily`` costs half
as much, a push's of ``ck_series`` a fifth).

The foreign key from ``ck_label`` to ``ck_series`` is dropped, as those
of ``ck_point`` and ``ck_daily`` were (revision 0003): its check per
label cost 215 of the 293 ms that the 30,600 labels of 10,200 new series
took to insert (measured). Series rows are never deleted, and a series'
labels are written in the transaction that creates it.

SQLite and MariaDB keep their layout.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from alembic import op

from cloudkitty.storage.v2.sqlalchemy import partitions

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


# NOTE: the tables (other than ck_point's partitions) whose unread columns
# get no statistics.
_TABLES = ('ck_daily', 'ck_label_daily', 'ck_series', 'ck_label')


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    bind.exec_driver_sql('ALTER TABLE ck_label DROP CONSTRAINT '
                         'ck_label_series_id_fkey')
    for table in _TABLES:
        bind.exec_driver_sql(partitions.no_statistics_sql(table, table))
    if not partitions.is_partitioned(bind):
        return
    bind.exec_driver_sql('DROP INDEX ck_point_series')
    for name in sorted(partitions.existing(bind)):
        bind.exec_driver_sql(partitions.index_series_sql(name))
        bind.exec_driver_sql(partitions.no_statistics_sql(name))


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    bind.exec_driver_sql(
        'ALTER TABLE ck_label ADD CONSTRAINT ck_label_series_id_fkey '
        'FOREIGN KEY (series_id) REFERENCES ck_series (id)')
    for table in _TABLES:
        bind.exec_driver_sql(partitions.no_statistics_sql(table, table, -1))
    if not partitions.is_partitioned(bind):
        return
    for name in sorted(partitions.existing(bind)):
        bind.exec_driver_sql('DROP INDEX IF EXISTS %s'
                             % partitions.series_index_of(name))
        bind.exec_driver_sql(partitions.no_statistics_sql(
            name, target=-1))
    bind.exec_driver_sql(
        'CREATE INDEX ck_point_series ON ck_point (series_id, begin)')
