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
"""The daily rollup: exact per-(UTC day, series) sums kept beside points.

``ck_daily`` holds, for every UTC day and series, the number of points whose
frame starts that day and the sums of their ``(hi, lo)`` money pairs, each
sum kept as three integers ``(big, small, lo)`` worth ``big * 10**9 + small
+ lo / 10**12``: every ``hi`` adds ``hi // 10**9`` to ``big`` and ``hi %
10**9`` to ``small``, so that no column of a day overflows 64 bits before
billions of points, even at the largest values. Push
adds to it and delete subtracts from it in the same transaction as the
points, so it always equals the points it summarises. A total() whose window
covers whole days reads those days here (one row per series and day instead
of one per point) and only the partial days at its edges from the points.

A query that needs single frames (``groupby`` ``time``) or single values
(``min``/``max`` custom fields) reads points only.
"""

import datetime

from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2.sqlalchemy import engine
from cloudkitty.storage.v2.sqlalchemy import models

#: A UTC day, in microseconds.
DAY = 24 * 3600 * 10 ** 6
_DAY = datetime.timedelta(days=1)
#: Weight of the ``big`` column.
BIG = 10 ** 9
#: The money columns: the sums of the points' ``(hi, lo)`` pairs.
MONEY_COLUMNS = ('qty_big', 'qty_small', 'qty_lo', 'price_big',
                 'price_small', 'price_lo')
_COLUMNS = ('day', 'series_id', 'n') + MONEY_COLUMNS


def day_of(micros):
    """Return the start of the UTC day holding ``micros`` (floor)."""
    return micros - micros % DAY


def day_sql(column):
    """A SQL expression for :func:`day_of` that floors negatives too."""
    # NOTE: SQL's % keeps the sign of the dividend; adding DAY and taking
    # the remainder again gives the floor modulo on every engine.
    return column - ((column % DAY) + DAY) % DAY


def whole_days(begin, end):
    """Return ``(first, last)`` whole UTC days in ``[begin, end)``.

    :param begin: aware datetime.
    :param end: aware datetime.
    :returns: the start of the first whole day and the end of the last one,
        or None when the window holds no whole day.
    """
    first = begin.replace(hour=0, minute=0, second=0, microsecond=0)
    last = end.replace(hour=0, minute=0, second=0, microsecond=0)
    if first < begin:
        if first >= last:
            # NOTE: also keeps the last day of year 9999 from overflowing.
            return None
        first += _DAY
    return (first, last) if first < last else None


def rows(daily):
    """The rows to add to ``ck_daily`` for the sums of a push.

    :param daily: ``{(day, series_id): [count, qty_hi, qty_lo, price_hi,
        price_lo]}``, the sums of the pushed points' pairs.
    :returns: ``(day, series_id, n, qty_big, qty_small, qty_lo,
        price_big, price_small, price_lo)`` tuples (see :func:`limbs`).
    """
    return [key + (n,) + limbs(qty_hi, qty_lo) + limbs(price_hi, price_lo)
            for key, (n, qty_hi, qty_lo, price_hi, price_lo)
            in daily.items()]


def limbs(hi, lo):
    """Split a sum of ``(hi, lo)`` pairs into ``(big, small, lo)``.

    ``lo`` is carried into the units first, so ``0 <= lo < 10**12``.
    """
    carry, lo = divmod(lo, money.SCALE)
    big, small = divmod(hi + carry, BIG)
    return big, small, lo


def pair(big, small, lo):
    """Return the ``(hi, lo)`` pair worth ``(big, small, lo)``."""
    return big * BIG + small, lo


def upsert(dialect):
    """The bulk ``INSERT`` into ``ck_daily`` that adds to existing rows.

    :returns: an :class:`~cloudkitty.storage.v2.sqlalchemy.engine.
        BulkWrite` taking the rows of :func:`sums`.
    """
    quote = dialect.identifier_preparer.quote
    if dialect.name == 'mysql':
        suffix = ' ON DUPLICATE KEY UPDATE ' + ', '.join(
            '%s = %s + VALUES(%s)' % (quote(c), quote(c), quote(c))
            for c in _COLUMNS[2:])
    else:
        suffix = ' ON CONFLICT (%s, %s) DO UPDATE SET ' % (
            quote('day'), quote('series_id')) + ', '.join(
            '%s = ck_daily.%s + excluded.%s' % (quote(c), quote(c),
                                                quote(c))
            for c in _COLUMNS[2:])
    return engine.bulk_writer(dialect, models.daily, _COLUMNS, suffix)


def subtract_sql(dialect):
    """``UPDATE`` of ``ck_daily`` taking deleted sums away, as text."""
    quote = dialect.identifier_preparer.quote
    marker = '?' if dialect.paramstyle == 'qmark' else '%s'
    return 'UPDATE ck_daily SET %s WHERE %s = %s AND %s = %s' % (
        ', '.join('%s = %s - %s' % (quote(c), quote(c), marker)
                  for c in _COLUMNS[2:]),
        quote('day'), marker, quote('series_id'), marker)
