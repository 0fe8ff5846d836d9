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
    indexed equality joins: ``value`` is the value's string form (what a
    filter compares with), ``kind`` its type (``s``, ``i``, ``f``, ``b``,
    ``n``; see :func:`cloudkitty.storage.v2.query.encode_label`).
``ck_daily``
    per UTC day and series, the number of points and their exact sums (see
    :mod:`cloudkitty.storage.v2.sqlalchemy.rollup`).
``ck_rollup``
    one row: ``until``, the first day not in ``ck_daily`` yet (see
    :mod:`cloudkitty.storage.v2.sqlalchemy.rollup`).
``ck_frame``
    per frame start and type, the number of points (see
    :mod:`cloudkitty.storage.v2.sqlalchemy.frames`).
``ck_push``
    one row per push made with an idempotency key: the key, and what the
    push stored (scope, number of points, exact sums, first and last frame
    start), so that a retry is recognised and a reused key is refused.
``ck_point``
    one row per pushed point: an id in push order, its series, its frame's
    bounds as integer microseconds since the epoch (UTC), and qty and price
    each as an exact pair of integers (see :func:`split`): ``hundreds``,
    the floor of the value divided by 100, and ``rest``, what remains, in
    ``10**-12`` units (``0 <= rest < 10**14``). Both fit a signed 64-bit
    column for every value below ``10**20`` (:data:`MAX_MAGNITUDE`), and
    pairs compare like the values they encode.

``ck_label_daily``, ``ck_label_fresh``, ``ck_label_stale``, ``ck_label_keys``
    SQLite and PostgreSQL only: per label key kept, day, type and label
    value, the number of points and their exact sums; the days whose
    sums are exact per key, the days to rebuild, and the keys kept (see
    :mod:`~cloudkitty.storage.v2.sqlalchemy.labelsums`).
``ck_counter``
    SQLite only: per name, the next id to take (see
    :mod:`~cloudkitty.storage.v2.sqlalchemy.counters`); ``ck_point``'s ids
    come from there.

Series rows are never deleted: processes cache series ids, and a point
always finds its series. (On PostgreSQL and SQLite that is all that ties
them. On PostgreSQL the foreign keys from ``ck_point`` and ``ck_daily``
are dropped for push speed (and from ``ck_label``, see migration
0011), ``ck_point`` is partitioned by day (see
migrations 0003 and 0011, and :mod:`~cloudkitty.storage.v2.sqlalchemy.
partitions` for its index by series) and its primary key holds the columns of
``ck_point_begin``, which it replaces (see migration 0006). On SQLite
``ck_point`` is a ``WITHOUT ROWID`` table whose primary key is ``(begin,
end, series_id, id)``, in place of ``ck_point_begin`` and without a
foreign key (see migration 0009).)
"""

import sqlalchemy as sa

from cloudkitty.storage.v2 import money

#: Longest type, unit and groupby/metadata key accepted (values are Text).
MAX_NAME_LENGTH = 255
#: The bound on qty and price magnitudes that ``ck_point`` keeps exactly.
MAX_MAGNITUDE = 10 ** 20
#: The weight of a ``hundreds`` column, in ``10**-12`` units.
HUNDRED = 100 * money.SCALE

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
    # NOTE: the type of the value (see query.encode_label), so that
    # filters compare the string form alone and groups keep the type.
    sa.Column('kind', sa.String(1), nullable=False, server_default='s'),
    sa.Index('ck_label_key_value', 'key', 'value',
             mysql_length={'value': 255}),
)

# NOTE: SQLite only aliases the rowid for an "INTEGER PRIMARY KEY" column,
# so the big integer id is a plain Integer there (64-bit in SQLite anyway).
BigInt = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

#: The money columns of a point: the ``(hundreds, rest)`` pairs of its qty
#: and price (see :func:`split`).
POINT_MONEY = ('qty_hundreds', 'qty_rest', 'price_hundreds', 'price_rest')

point = sa.Table(
    'ck_point', metadata,
    sa.Column('id', BigInt, primary_key=True, autoincrement=True),
    sa.Column('series_id', sa.Integer, sa.ForeignKey('ck_series.id'),
              nullable=False),
    sa.Column('begin', sa.BigInteger, nullable=False),
    sa.Column('end', sa.BigInteger, nullable=False),
    sa.Column('qty_hundreds', sa.BigInteger, nullable=False),
    sa.Column('qty_rest', sa.BigInteger, nullable=False),
    sa.Column('price_hundreds', sa.BigInteger, nullable=False),
    sa.Column('price_rest', sa.BigInteger, nullable=False),
    # NOTE: the index covers every column an aggregate or a page reads, so
    # that windows, time buckets and pages scan it in time order without
    # touching the table. Pushes mostly arrive in time order, so both the
    # table (by id) and this index grow at their end: inserts stay cheap.
    # A second covering index by series would make grouping by series
    # attributes sort-free but costs 5x on push (measured, SQLite).
    sa.Index('ck_point_begin', 'begin', 'end', 'series_id', 'qty_hundreds',
             'qty_rest', 'price_hundreds', 'price_rest'),
)


#: The columns of a day's count and exact sums (see ``rollup``).
DAY_SUMS = ('n', 'qty_big', 'qty_small', 'qty_lo', 'price_big',
            'price_small', 'price_lo')


def _day_sums():
    """New columns of a day's count and exact sums (see ``rollup``)."""
    return [sa.Column(name, sa.BigInteger, nullable=False)
            for name in DAY_SUMS]


daily = sa.Table(
    'ck_daily', metadata,
    sa.Column('day', sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column('series_id', sa.Integer, sa.ForeignKey('ck_series.id'),
              primary_key=True, autoincrement=False),
    *_day_sums(),
    sqlite_with_rowid=False,
)

rollup_state = sa.Table(
    'ck_rollup', metadata,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=False),
    sa.Column('until', sa.BigInteger, nullable=False),
)

frame = sa.Table(
    'ck_frame', metadata,
    sa.Column('begin', sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column('type', sa.String(MAX_NAME_LENGTH), primary_key=True),
    sa.Column('n', sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

#: The tables that some databases alone have: ``{name: (dialect name,
#: ...)}``.
ONLY_ON = {'ck_counter': ('sqlite',),
           'ck_label_daily': ('sqlite', 'postgresql'),
           'ck_label_fresh': ('sqlite', 'postgresql'),
           'ck_label_stale': ('sqlite', 'postgresql'),
           'ck_label_keys': ('sqlite', 'postgresql')}

counter = sa.Table(
    'ck_counter', metadata,
    sa.Column('name', sa.String(64), primary_key=True, autoincrement=False),
    sa.Column('next', sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

label_daily = sa.Table(
    'ck_label_daily', metadata,
    sa.Column('key', sa.String(MAX_NAME_LENGTH), primary_key=True),
    sa.Column('day', sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column('type', sa.String(MAX_NAME_LENGTH), primary_key=True),
    sa.Column('kind', sa.String(1), primary_key=True),
    sa.Column('value', sa.Text, primary_key=True),
    *_day_sums(),
    sqlite_with_rowid=False,
)

label_fresh = sa.Table(
    'ck_label_fresh', metadata,
    sa.Column('day', sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column('key', sa.String(MAX_NAME_LENGTH), primary_key=True),
    sqlite_with_rowid=False,
)

label_stale = sa.Table(
    'ck_label_stale', metadata,
    sa.Column('day', sa.BigInteger, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

label_keys = sa.Table(
    'ck_label_keys', metadata,
    sa.Column('key', sa.String(MAX_NAME_LENGTH), primary_key=True),
    sqlite_with_rowid=False,
)

push = sa.Table(
    'ck_push', metadata,
    sa.Column('key', sa.String(MAX_NAME_LENGTH), primary_key=True,
              autoincrement=False),
    sa.Column('scope_id', sa.String(MAX_NAME_LENGTH), nullable=True),
    sa.Column('points', sa.BigInteger, nullable=False),
    # NOTE: exact sums as canonical decimal text: they are compared, never
    # added up.
    sa.Column('qty', sa.String(64), nullable=False),
    sa.Column('price', sa.String(64), nullable=False),
    sa.Column('first_begin', sa.BigInteger, nullable=False),
    sa.Column('last_begin', sa.BigInteger, nullable=False),
    sa.Column('pushed_at', sa.BigInteger, nullable=False),
    sa.Index('ck_push_window', 'first_begin', 'last_begin'),
)


#: Per table, the columns that no statement filters, joins or groups on:
#: PostgreSQL keeps no statistics of them (revision 0011, and every
#: partition of ``ck_point`` as it is created). The roll-up analyzes the
#: partition of each day and ``ck_daily``; without these columns' sorted
#: samples, that took 26-29 ms instead of 61-70 and 16-20 instead of
#: 39-50 (measured, a day of the benchmark).
NO_STATISTICS = {
    'ck_point': ('id', 'end') + POINT_MONEY,
    'ck_daily': DAY_SUMS,
    'ck_label_daily': DAY_SUMS,
    # NOTE: a push that creates many series analyzes ck_series and
    # ck_label: 5 ms instead of 21-25 for 10,200 series without these.
    'ck_series': ('fingerprint', 'unit', 'groupby', 'metadata',
                  'description'),
    'ck_label': ('kind',),
}


def between(column, start=None, stop=None):
    """WHERE clauses that bound a column to ``[start, stop)``.

    :param start: the lowest value kept, or None for no lower bound.
    :param stop: the first value past them, or None for no upper bound.
    :returns: a list of clauses (empty for no bound).
    """
    clauses = []
    if start is not None:
        clauses.append(column >= start)
    if stop is not None:
        clauses.append(column < stop)
    return clauses


def split(value_units):
    """Return a value, in ``10**-12`` units, as its ``(hundreds, rest)``.

    ``value_units == hundreds * HUNDRED + rest`` and ``0 <= rest <
    HUNDRED``.
    """
    return divmod(value_units, HUNDRED)


def join(hundreds, rest):
    """Return the ``10**-12`` units of a pair, or of a pair of sums."""
    return int(hundreds) * HUNDRED + int(rest)
