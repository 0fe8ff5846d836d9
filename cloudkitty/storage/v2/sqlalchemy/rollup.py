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
frame starts that day and the exact sums of their qty and price, each sum
kept as three integers ``(big, small, lo)`` worth ``big * 10**9 + small +
lo / 10**12`` (see :func:`limbs`): ``small`` stays below ``10**9`` and
``lo`` below ``10**12`` for each push's or roll-up's share, so that no
column of a day overflows 64 bits before tens of millions of points at the
largest values (``10**20``) and billions at ordinary ones. Push
adds to it and delete subtracts from it in the same transaction as the
points, so it always equals the points it summarises. A total() whose window
covers whole days reads those days here (one row per series and day instead
of one per point) and only the partial days at its edges from the points.

The rollup covers the days before a moving day, ``until`` (``ck_rollup``);
the points of later days are summed from ``ck_point`` by the queries. A
push into a day before ``until`` (late data) adds its sums to the rollup
in its own transaction; a push into a later day writes points only, which
spares it an upsert per series. Once a push has stored a frame of a later
day, the days before that one are rolled up: summed from the points into
the rollup in one statement, with ``until`` moved forward in the same
transaction (see :meth:`~cloudkitty.storage.v2.sqlalchemy.
SQLAlchemyStorage.roll_up`). A delete that leaves no point from some day
on brings ``until`` back to that day (see :func:`move_back`), so that
pushing those days again is not late data. Pushes hold a shared lock on
``ck_rollup``, and the roll-up and deletes an exclusive one, so that no
write lands in a
day while it is being rolled up, and no push while a delete sums what it
removes (a push committed between that sum and the delete of its points
would have left its sums in the rollup; both measured, before). A reader
reads ``until`` once and bounds
both parts of its query by it: what a concurrent roll-up adds is beyond its
bound, so nothing is counted twice or missed.

A query that needs single frames (``groupby`` ``time``) or single values
(``min``/``max`` custom fields) reads points only.
"""

import sqlalchemy as sa

from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query
from cloudkitty.storage.v2.sqlalchemy import engine
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2 import timeutils

#: A UTC day, in microseconds.
DAY = timeutils.DAY_US
#: Weight of the ``big`` column.
BIG = 10 ** 9
#: The money columns: the ``(big, small, lo)`` limbs of each sum.
MONEY_COLUMNS = ('qty_big', 'qty_small', 'qty_lo', 'price_big',
                 'price_small', 'price_lo')
_COLUMNS = ('day', 'series_id', 'n') + MONEY_COLUMNS


#: ``until`` of a store that has rolled up nothing: before every day.
NOTHING = -2 ** 63


# NOTE: the statements of the small reads and writes every delete makes
# are built once: building one cost more than running it (0.1 ms against
# 0.02 on SQLite, measured), and a delete of one project makes several.
_UNTIL = {
    None: sa.select(models.rollup_state.c.until),
    'share': sa.select(models.rollup_state.c.until).with_for_update(
        read=True),
    'update': sa.select(models.rollup_state.c.until).with_for_update(),
}
_MOVE_UNTIL = models.rollup_state.update().values(
    until=sa.bindparam('b_until'))
_LAST_FRAME = sa.select(sa.func.max(models.frame.c.begin))


def until(conn, lock=None):
    """Read the first day not in the rollup (microseconds).

    :param lock: None to read, ``'share'`` to keep it from moving until
        the end of the transaction (pushes), ``'update'`` to move it (the
        roll-up) or to keep every push out (deletes). SQLite takes no row
        lock: its writers take turns.
    """
    return conn.scalar(_UNTIL[lock])


def until_call(lock=None):
    """:func:`until` as a call of :func:`engine.run_in_turn`."""
    return engine.Call(_UNTIL[lock], None, _first_value)


def _first_value(rows):
    return rows[0][0] if rows else None


def move_until(conn, day):
    """Set the first day not in the rollup (in the roll-up transaction)."""
    conn.execute(_MOVE_UNTIL, {'b_until': day})


def move_back(conn, first_unrolled):
    """Bring ``until`` back to the day after the last point, if later.

    A delete calls it, holding ``until`` exclusively, once its points are
    gone and the frame counts (``ck_frame``, one row per frame start that
    still has points) say what is left: ``until`` goes back to the day
    after the last remaining frame start, or to :data:`NOTHING` when no
    point is left. The days it leaves have no point, so the rollup has no
    row there either (a delete drops the rows it empties): readers, which
    read ``until`` once without a lock, count the same with either bound.
    Without it, ``until`` would outlive a delete of the last days (or of
    everything), and pushing them again would take the late-data path,
    an upsert of the rollup per push, instead of a roll-up after it.

    :param first_unrolled: :func:`until`, as the delete locked it.
    """
    if first_unrolled == NOTHING:
        return
    last = conn.scalar(_LAST_FRAME)
    day = NOTHING if last is None else day_of(last) + DAY
    if day < first_unrolled:
        move_until(conn, day)


def sums(points, before):
    """Sum the points of the frames that start before a day, per day.

    :param points: ``(series_id, begin, end, qty_hundreds, qty_rest,
        price_hundreds, price_rest)`` tuples (see :mod:`~cloudkitty.
        storage.v2.sqlalchemy.models`).
    :param before: :func:`until`; later points are not summed.
    :returns: ``{(day, series_id): [count, qty_hundreds, qty_rest,
        price_hundreds, price_rest]}`` (sums of each), the input of
        :func:`rows`.
    """
    daily = {}
    for series, begin, _, qty_hundreds, qty_rest, price_hundreds, \
            price_rest in points:
        if begin >= before:
            continue
        key = (day_of(begin), series)
        total = daily.get(key)
        if total is None:
            daily[key] = [1, qty_hundreds, qty_rest, price_hundreds,
                          price_rest]
        else:
            total[0] += 1
            total[1] += qty_hundreds
            total[2] += qty_rest
            total[3] += price_hundreds
            total[4] += price_rest
    return daily


#: The start of the UTC day holding a time in microseconds (floor).
day_of = timeutils.day_of


def day_sql(column):
    """A SQL expression for :func:`day_of` that floors negatives too."""
    # NOTE: SQL's % keeps the sign of the dividend; adding DAY and taking
    # the remainder again gives the floor modulo on every engine.
    return column - ((column % DAY) + DAY) % DAY


#: ``(first, last)`` whole UTC days of ``[begin, end)`` (aware
#: datetimes), or None.
whole_days = timeutils.whole_days_of


def rolled_days(begin, end, first_unrolled):
    """Return the whole UTC days of ``[begin, end)`` that the rollup holds.

    :param begin: aware datetime.
    :param end: aware datetime.
    :param first_unrolled: :func:`until`.
    :returns: ``(first, last)`` as :func:`whole_days`, cut at
        ``first_unrolled``; or None when the rollup holds no whole day of
        the window.
    """
    days = whole_days(begin, end)
    if days is None or first_unrolled <= query.to_micros(days[0]):
        return None
    if first_unrolled < query.to_micros(days[1]):
        return days[0], query.from_micros(first_unrolled)
    return days


def rows(daily):
    """The rows to add to ``ck_daily`` for the sums of a push.

    :param daily: ``{(day, series_id): [count, qty_hundreds, qty_rest,
        price_hundreds, price_rest]}``, the sums of the pushed points'
        pairs (see :func:`sums`).
    :returns: ``(day, series_id, n, qty_big, qty_small, qty_lo,
        price_big, price_small, price_lo)`` tuples (see :func:`limbs`),
        in ``(day, series_id)`` order: concurrent pushes into one rolled-up
        day then lock its rows in one order, never in a cycle.
    """
    join = models.join
    return [key + (n,) + limbs(join(qty_hundreds, qty_rest))
            + limbs(join(price_hundreds, price_rest))
            for key, (n, qty_hundreds, qty_rest, price_hundreds, price_rest)
            in sorted(daily.items())]


def limbs(value_units):
    """Split an exact sum, in ``10**-12`` units, into ``(big, small, lo)``.

    ``0 <= small < 10**9`` and ``0 <= lo < 10**12``.
    """
    whole, lo = divmod(value_units, money.SCALE)
    big, small = divmod(whole, BIG)
    return big, small, lo


def units(big, small, lo):
    """Return the ``10**-12`` units worth ``(big, small, lo)``, or sums."""
    return (int(big) * BIG + int(small)) * money.SCALE + int(lo)


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


def subtract_points(conditions, day=None):
    """The ``UPDATE`` that takes the sums of some points out of ``ck_daily``.

    One statement, where :func:`opposites` moves every (day, series) sum
    to the client and back: the points that match ``conditions`` are
    summed per day and series, and each sum taken out of its row limb by
    limb, ``lo`` losing the ``rest`` of the points' pairs and ``small``
    a hundred times their ``hundreds`` (worth ``10**14`` units, a hundred
    ``small``). The rows exist: the rollup holds every point of the days
    before ``until``, which the conditions must bound.

    Exact, or an error: SQLite's ``sum()`` raises on overflow, and an
    overflowing limb turns into a float that ``ck_daily``'s check
    refuses; PostgreSQL refuses a limb out of ``BIGINT``'s range. The
    statement is then undone alone (by SQLite itself; PostgreSQL in a
    savepoint), and the caller takes :func:`opposites` instead. MariaDB
    does not run it: without a strict SQL mode, it would store what
    overflows clipped.

    :param conditions: WHERE clauses on ``ck_point``.
    :param day: the day (microseconds) when the conditions hold the
        points to one rolled-up day, or None (see :func:`_subtract`).
    """
    point = models.point
    keys = [point.c.series_id]
    if day is None:
        keys.insert(0, day_sql(point.c.begin).label('day'))
    removed = sa.select(
        *keys, sa.func.count().label('n'),
        *[sa.func.sum(point.c[name]).label(name)
          for name in models.POINT_MONEY]).where(*conditions).group_by(
        *keys).subquery('removed')
    return _subtract(removed.c.day if day is None else day, removed.c,
                     removed.c.n)


def subtract_each_point(conditions, day=None):
    """The ``UPDATE`` that takes each point out of its ``ck_daily`` row.

    :func:`subtract_points` without the grouping: each point that matches
    ``conditions`` is joined to the row of its day and series, which
    loses one point and its pairs. That is exact only when no two of the
    points share a row: where several match one row, SQLite and
    PostgreSQL update it once, from one of them. The caller compares the
    rows updated with the points it knows the conditions match, and
    undoes the statement (a savepoint) for :func:`subtract_points` when
    they differ. The usual delete removes one point per series and day
    (a period's points, one per resource), and grouping them cost most of
    the statement: 27 -> 18 ms on SQLite for the 10,200 points of one
    period (measured).

    Overflow as for :func:`subtract_points`.

    :param conditions: WHERE clauses on ``ck_point``.
    :param day: as for :func:`subtract_points`.
    """
    point = models.point
    return _subtract(day_sql(point.c.begin) if day is None else day,
                     point.c, 1).where(*conditions)


def _subtract(day, removed, count):
    """The ``UPDATE`` of ``ck_daily`` that takes ``removed``'s sums out.

    A day given as a value, not computed from each point, bounds the rows
    of ``ck_daily`` that PostgreSQL reads to those of that day: it hashed
    every row of ``ck_daily`` otherwise (30 ms instead of 44 for one
    period's 10,200 points among four days, measured; a year's rows,
    kept, would be read for one day's).

    :param day: the day of the removed sums, a SQL expression or a day in
        microseconds.
    :param removed: the columns of the removed sums: ``series_id`` and
        the pairs of :data:`~cloudkitty.storage.v2.sqlalchemy.models.
        POINT_MONEY`.
    :param count: the number of points the sums hold.
    """
    daily = models.daily
    hundred = models.HUNDRED // money.SCALE
    return daily.update().where(
        daily.c.day == day,
        daily.c.series_id == removed.series_id).values(
        n=daily.c.n - count,
        qty_small=daily.c.qty_small - removed.qty_hundreds * hundred,
        qty_lo=daily.c.qty_lo - removed.qty_rest,
        price_small=daily.c.price_small - removed.price_hundreds * hundred,
        price_lo=daily.c.price_lo - removed.price_rest)


#: Where the database sums a day into ``ck_daily`` itself (see
#: :func:`sum_day`); MariaDB's client path stays (its integer division and
#: upsert differ).
SUMS_IN_DATABASE = ('sqlite', 'postgresql')


def _limbs_sql(field):
    """SQL of the ``(big, small, lo)`` limbs of a field's summed pairs.

    The same as :func:`limbs` of ``hundreds * 10**14 + rest``, without
    forming that value (it overflows 64 bits first): ``rest`` sums are
    never negative, so ``whole = hundreds * 100 + rest // 10**12`` and
    ``lo = rest % 10**12``, and ``whole`` is split with a floor modulo
    (SQL's ``%`` keeps the dividend's sign).
    """
    whole = '%s_whole' % field
    modulo = '((%s %% %d) + %d) %% %d' % (whole, BIG, BIG, BIG)
    return ['(%s - %s) / %d' % (whole, modulo, BIG), modulo,
            '%s_rest %% %d' % (field, money.SCALE)]


def sum_day(conn, day):
    """Sum the points of one day into ``ck_daily``, in one statement.

    The roll-up's step on :data:`SUMS_IN_DATABASE`: the points' sums per
    series never leave the database (on SQLite, fetching them and sending
    them back cost 40 % of a roll-up, measured). Sums are 64-bit: a day
    whose sums overflow (SQLite's ``sum()`` raises; a product past 64
    bits becomes a float that ``ck_daily``'s check refuses; PostgreSQL
    raises on its ``BIGINT`` casts) raises, undone alone (on PostgreSQL
    the caller holds a savepoint), and the caller sums it through the
    client instead.

    :param day: the start of a UTC day, in microseconds.
    """
    hundred = models.HUNDRED // money.SCALE
    inner = ['count(*) AS n']
    for field in ('qty', 'price'):
        inner += [
            'CAST(sum(%s_hundreds) AS BIGINT) * %d + '
            'CAST(sum(%s_rest) AS BIGINT) / %d AS %s_whole' % (
                field, hundred, field, money.SCALE, field),
            'CAST(sum(%s_rest) AS BIGINT) AS %s_rest' % (field, field)]
    outer = _limbs_sql('qty') + _limbs_sql('price')
    columns = ', '.join(_COLUMNS)
    update = ', '.join('%s = ck_daily.%s + excluded.%s' % (c, c, c)
                       for c in _COLUMNS[2:])
    statement = sa.text(
        'INSERT INTO ck_daily (%s) '
        'SELECT CAST(:day AS BIGINT), series_id, n, %s FROM ('
        'SELECT series_id, %s FROM ck_point '
        'WHERE "begin" >= :first AND "begin" < :last '
        'GROUP BY series_id) AS sums WHERE 1 = 1 '
        'ON CONFLICT (day, series_id) DO UPDATE SET %s' % (
            columns, ', '.join(outer), ', '.join(inner), update))
    conn.execute(statement, {'day': day, 'first': day,
                             'last': day + DAY})


def opposites(day_sums):
    """The :func:`upsert` rows that take day sums away from ``ck_daily``.

    A delete takes the sums of its points away by adding their opposites
    with the push's bulk upsert: the rows exist (the rollup holds every
    point of the days before ``until``), and one bulk statement (a
    ``COPY`` on PostgreSQL) costs a fraction of an ``UPDATE`` per row
    (measured on PostgreSQL: psycopg runs ``executemany`` a statement at
    a time).

    :param day_sums: ``(count, qty_big, qty_small, qty_lo, price_big,
        price_small, price_lo, day, series_id)`` tuples.
    :returns: ``(day, series_id, -count, -qty_big, ...)`` tuples, in
        ``(day, series_id)`` order, as pushes add to them.
    """
    return sorted(row[-2:] + tuple(-value for value in row[:-2])
                  for row in day_sums)
