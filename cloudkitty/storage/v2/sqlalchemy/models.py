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
"""The tables of the SQL backend.

Rated points are stored as facts that reference interned series:

``ck_series``
    one row per distinct (scope, type, unit, groupby, metadata,
    description), found by ``fingerprint`` (SHA-256 of its canonical JSON);
    groupby and metadata are kept as canonical JSON to rebuild points.
``ck_label``
    one row per (series, key) of the series' merged groupby and metadata
    (groupby wins), so that filters and groupbys on any key are plain
    indexed equality joins.
``ck_push``
    one row per push, whose id and the point's position in the push
    identify a point and order points pushed in the same frame.
``ck_point``
    one row per pushed point: its series, its frame's bounds as integer
    microseconds since the epoch (UTC), its push and position, and qty and
    price each as the exact ``(hi, lo)`` integer pair of
    :mod:`cloudkitty.storage.v2.money`.

Series rows are never deleted: processes cache series ids, and a point
always finds its series.
"""

import sqlalchemy as sa

#: Longest type, unit and groupby/metadata key accepted (values are Text).
MAX_NAME_LENGTH = 255

metadata = sa.MetaData()

series = sa.Table(
    'ck_series', metadata,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('fingerprint', sa.String(64), nullable=False),
    sa.Column('scope_id', sa.String(MAX_NAME_LENGTH), nullable=True),
    sa.Column('type', sa.String(MAX_NAME_LENGTH), nullable=False),
    sa.Column('unit', sa.String(MAX_NAME_LENGTH), nullable=False),
    sa.Column('groupby', sa.Text, nullable=False),
    sa.Column('metadata', sa.Text, nullable=False),
    sa.Column('description', sa.Text, nullable=True),
    sa.UniqueConstraint('fingerprint', name='ck_series_fingerprint'),
    sa.Index('ck_series_type', 'type'),
)

label = sa.Table(
    'ck_label', metadata,
    sa.Column('series_id', sa.Integer, sa.ForeignKey('ck_series.id'),
              primary_key=True),
    sa.Column('key', sa.String(MAX_NAME_LENGTH), primary_key=True),
    sa.Column('value', sa.Text, nullable=False),
    sa.Index('ck_label_key_value', 'key', 'value',
             mysql_length={'value': 255}),
)

push = sa.Table(
    'ck_push', metadata,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('scope_id', sa.String(MAX_NAME_LENGTH), nullable=True),
    sa.Column('pushed_at', sa.BigInteger, nullable=False),
    sa.Column('points', sa.Integer, nullable=False),
)

point = sa.Table(
    'ck_point', metadata,
    sa.Column('series_id', sa.Integer, sa.ForeignKey('ck_series.id'),
              primary_key=True, autoincrement=False),
    sa.Column('begin', sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column('push_id', sa.Integer, sa.ForeignKey('ck_push.id'),
              primary_key=True, autoincrement=False),
    sa.Column('seq', sa.Integer, primary_key=True, autoincrement=False),
    sa.Column('end', sa.BigInteger, nullable=False),
    sa.Column('qty_hi', sa.BigInteger, nullable=False),
    sa.Column('qty_lo', sa.BigInteger, nullable=False),
    sa.Column('price_hi', sa.BigInteger, nullable=False),
    sa.Column('price_lo', sa.BigInteger, nullable=False),
    # NOTE: the index covers every column an aggregate or a page reads,
    # so that time windows, time buckets and pages scan it in time order
    # without touching the table. The table itself is clustered on its
    # primary key (series first) where the engine clusters (SQLite WITHOUT
    # ROWID, InnoDB), which serves everything grouped by series.
    sa.Index('ck_point_begin', 'begin', 'end', 'series_id', 'qty_hi',
             'qty_lo', 'price_hi', 'price_lo'),
    sqlite_with_rowid=False,
)
