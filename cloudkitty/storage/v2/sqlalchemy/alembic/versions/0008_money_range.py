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
"""Money up to 10**20: ck_point keeps (hundreds, rest) pairs.

A point's qty and price were ``(hi, lo)`` pairs, ``hi`` the floor of the
value (``|value| < 10**15``) and ``lo`` the fraction in ``10**-12`` units.
They become ``(hundreds, rest)`` pairs (see :mod:`cloudkitty.storage.v2.
sqlalchemy.models`): ``hundreds = hi // 100`` and ``rest = (hi % 100) *
10**12 + lo`` (floor division and modulo), the same value exactly. The
columns are renamed so that code of an earlier revision fails on the new
layout instead of misreading it. ``ck_daily`` keeps exact sums of values,
whatever their encoding, and is unchanged.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_SCALE = 10 ** 12


def upgrade():
    bind = op.get_bind()
    # NOTE: SQLite (3.25+), PostgreSQL and MariaDB (10.5+) rename in
    # place, indexes and partitions included.
    for field in ('qty', 'price'):
        for old, new in (('hi', 'hundreds'), ('lo', 'rest')):
            bind.exec_driver_sql(
                'ALTER TABLE ck_point RENAME COLUMN %s_%s TO %s_%s'
                % (field, old, field, new))
    point = sa.table('ck_point', *[
        sa.column(field + suffix, sa.BigInteger)
        for field in ('qty', 'price') for suffix in ('_hundreds', '_rest')])
    assignments = []
    for field in ('qty', 'price'):
        hi, lo = point.c[field + '_hundreds'], point.c[field + '_rest']
        # NOTE: SQL's % truncates towards 0; adding 100 and taking it
        # again gives the floor modulo, and the division is then exact
        # (// is DIV on MySQL, whose / gives a DECIMAL).
        modulo = ((hi % 100) + 100) % 100
        # NOTE: rest first: MySQL assigns from left to right, and later
        # assignments see the new values of earlier ones.
        assignments += [(lo, modulo * _SCALE + lo),
                        (hi, (hi - modulo) // 100)]
    # NOTE: pairs with hi == 0 are the same in both encodings.
    bind.execute(point.update().where(sa.or_(
        point.c.qty_hundreds != 0, point.c.price_hundreds != 0)
    ).ordered_values(*assignments))
