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
"""Day sums per type and label value, for totals grouped by a label.

``ck_daily`` holds a row per day and series: a total grouped by project
over a few days of 10,000 series sums every one of them, then joins each
series to its label. ``ck_label_daily`` holds, for the label keys of
``[storage_sqlalchemy] rollup_label_keys``, a row per (key, day, type,
label value): the sums of the ``ck_daily`` rows of that day, type and
value, with the series that lack the key under the value a total gives
them (``''``, kind ``s``). A total grouped by such a key (and, if asked,
by type) whose filters are on types alone reads its whole rolled-up days
there: 600 rows a day for 100 projects and 6 types instead of 10,200.

The sums are exact where they are trusted: a day is *fresh* for a key
(a row in ``ck_label_fresh``) only while its rows equal the ``ck_daily``
rows they sum. The roll-up builds the rows of the days it rolls up, from
``ck_daily``, in its own transaction, and marks them fresh. Every other
write into ``ck_daily`` (late data, deletes) makes its days stale in its
own transaction instead: their fresh marks go, and the days are listed in
``ck_label_stale``, which the next roll-ups rebuild (the newest first, at
most :data:`REBUILT_PER_ROLL_UP` each). A delete that drops whole days
from ``ck_daily`` drops their rows here as well: they stay exact. A key
the option gains lists every day rolled up before as stale (see
:meth:`LabelSums.adopt_keys`). Readers
use this table only when every day of their window that has frames is
fresh for their key; otherwise they read ``ck_daily`` as before, which
gives the same sums.

A sum that overflows 64 bits (tens of millions of points near ``10**20``
in one day and value) leaves its day not fresh, for good: totals of that
day read ``ck_daily``, whose reads split sums that overflow. MariaDB and
MySQL keep no such table (a key of a ``TEXT`` value would need a prefix,
which would merge values that share it): their totals read ``ck_daily``.
"""

from oslo_log import log
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy import exc as sa_exc

from cloudkitty.storage.v2.sqlalchemy import engine
from cloudkitty.storage.v2.sqlalchemy import frames
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import rollup

LOG = log.getLogger(__name__)

#: The databases that keep ``ck_label_daily``.
KEPT_ON = ('sqlite', 'postgresql')
#: The most stale days a roll-up rebuilds: about 20 ms a day and key for
#: 10,000 series on SQLite (measured).
REBUILT_PER_ROLL_UP = 7

#: The value and kind a total gives a series that lacks the key.
MISSING_VALUE, MISSING_KIND = '', 's'

_SUMS = ('n',) + rollup.MONEY_COLUMNS


class LabelSums:
    """Keeps and reads ``ck_label_daily`` for some label keys.

    :param dialect: the database's SQLAlchemy dialect.
    :param keys: the label keys to keep (``rollup_label_keys``); on a
        database of :data:`KEPT_ON`'s complement every method is a no-op
        and :meth:`key_of` None.
    """

    def __init__(self, dialect, keys):
        self.keys = tuple(sorted(set(keys))) \
            if dialect.name in KEPT_ON else ()
        # NOTE: whatever the keys, writes must keep existing days honest:
        # a key dropped from the option keeps rows that a later option
        # may read again.
        self.kept = dialect.name in KEPT_ON
        self._insert_stale = _insert_ignoring(dialect, models.label_stale)

    # writing ---------------------------------------------------------------

    def build(self, conn, days):
        """Build the rows of ``days`` from ``ck_daily``; mark them fresh.

        In the caller's transaction, which holds ``until`` exclusively (a
        roll-up): no push or delete changes these days meanwhile.

        :param days: day starts in microseconds, all before ``until``.
        """
        if not self.kept or not days:
            return
        days = sorted(set(days))
        self._forget(conn, days)
        conn.execute(models.label_stale.delete().where(
            models.label_stale.c.day.in_(days)))
        for key in self.keys:
            built = self._insert(conn, key, days)
            if len(built) < len(days):
                # NOTE: a batch that overflows is tried a day at a time.
                built = [day for day in days if self._insert(conn, key,
                                                             [day])]
            if built:
                conn.execute(models.label_fresh.insert(), [
                    {'day': day, 'key': key} for day in built])

    def _insert(self, conn, key, days):
        """Insert the rows of ``key`` for ``days``; return the days built.

        :returns: ``days``, or ``[]`` when a sum overflows 64 bits (the
            statement is undone alone).
        """
        try:
            with engine.undo_alone(conn):
                conn.execute(_build_statement(key, days))
        except sa_exc.DBAPIError as exc:
            if not engine.overflowed(exc):
                raise
            if len(days) == 1:
                LOG.warning('The sums of label %r on day %s overflow 64 '
                            'bits; totals of that day read the daily '
                            'rollup', key, days[0])
            return []
        return days

    def adopt_keys(self, conn, until):
        """Record the keys kept; list every rolled-up day for new ones.

        A key the option gained has no sums for the days rolled up
        before: they are listed as stale (their fresh marks for the other
        keys stay, still exact), so that the roll-ups rebuild them for
        every key. A key the option lost is forgotten, so that adding it
        again lists them again. ``ck_label_keys`` holds the keys of the
        last roll-up: processes that share a database should share the
        option. In a roll-up's transaction (see :meth:`build`).

        :param until: :func:`rollup.until`, as the roll-up locked it.
        """
        if not self.kept:
            return
        table = models.label_keys
        known = set(conn.scalars(sa.select(table.c.key)).all())
        wanted = set(self.keys)
        if known == wanted:
            return
        if known - wanted:
            conn.execute(table.delete().where(
                table.c.key.in_(sorted(known - wanted))))
        if wanted - known:
            if until != rollup.NOTHING:
                days = frames.days_between(conn, None, until)
                if days:
                    conn.execute(self._insert_stale,
                                 [{'day': day} for day in days])
            conn.execute(table.insert(), [{'key': key}
                                          for key in sorted(wanted - known)])

    def rebuild_stale(self, conn, limit=REBUILT_PER_ROLL_UP):
        """Rebuild up to ``limit`` stale days, the newest first.

        In a roll-up's transaction (see :meth:`build`).
        """
        if not self.kept:
            return
        stale = models.label_stale
        days = conn.scalars(sa.select(stale.c.day).order_by(
            stale.c.day.desc()).limit(limit)).all()
        # NOTE: without keys, build() drops what the days had.
        self.build(conn, [int(day) for day in days])

    def stale(self, conn, days):
        """Make ``days`` stale: their sums changed in ``ck_daily``.

        :param days: day starts in microseconds.
        """
        if not self.kept:
            return
        days = sorted({int(day) for day in days})
        if not days:
            return
        fresh = models.label_fresh
        conn.execute(fresh.delete().where(fresh.c.day.in_(days)))
        conn.execute(self._insert_stale, [{'day': day} for day in days])

    def stale_between(self, conn, first, last, whole=None):
        """Make stale the days with frames from ``first`` to ``last``.

        :param first: the first day (microseconds), None for no bound.
        :param last: the last day (included).
        :param whole: ``(first, last)`` days (the last excluded) to leave
            as they are: days ``ck_daily`` lost whole (see
            :meth:`drop_days`).
        """
        if not self.kept:
            return
        self.stale(conn, [
            day for day in frames.days_between(conn, first,
                                               last + rollup.DAY)
            if whole is None or not whole[0] <= day < whole[1]])

    def drop_days(self, conn, first=None, last=None):
        """Drop the rows of the days ``ck_daily`` lost whole.

        The days stay fresh: they have no sums in either table.

        :param first: the first day (microseconds), None for no bound.
        :param last: the first day after them, None for no bound.
        """
        if not self.kept:
            return
        table = models.label_daily
        conn.execute(table.delete().where(
            *models.between(table.c.day, first, last)))

    def _forget(self, conn, days):
        """Drop the rows and fresh marks of ``days``, for every key."""
        for table in (models.label_daily, models.label_fresh):
            conn.execute(table.delete().where(table.c.day.in_(days)))

    # reading ---------------------------------------------------------------

    def key_of(self, query):
        """The kept label key a total can read its days by, or None.

        A total qualifies when it groups by one kept label key (and maybe
        ``type``), by no time, filters on types alone and asks for no
        ``min``/``max``.
        """
        if not self.keys or query.time_groupby is not None:
            return None
        if any(key != 'type' for key, _ in query.filters):
            return None
        if any(f.func in ('min', 'max') for f in query.fields):
            return None
        labels = [key for key in query.key_groupby if key != 'type']
        if len(labels) != 1 or labels[0] not in self.keys:
            return None
        return labels[0]

    @staticmethod
    def covers(conn, key, first, last):
        """Tell whether every day of ``[first, last)`` with frames is fresh.

        :param first: a day start in microseconds.
        :param last: a later day start.
        """
        fresh = models.label_fresh
        needed = set(frames.days_between(conn, first, last))
        if not needed:
            return True
        have = set(conn.scalars(sa.select(fresh.c.day).where(
            fresh.c.key == key, fresh.c.day >= first,
            fresh.c.day < last)).all())
        return needed <= {int(day) for day in have}


def _build_statement(key, days):
    """The INSERT of ``key``'s rows for ``days``, summed from ``ck_daily``.

    Each series of a day joins its own value of the key (a left join: a
    series without one counts under :data:`MISSING_VALUE`).
    """
    daily, series, label = models.daily, models.series, models.label
    value = sa.func.coalesce(label.c.value, MISSING_VALUE)
    kind = sa.func.coalesce(label.c.kind, MISSING_KIND)
    group = [daily.c.day, series.c.type, kind, value]
    select = sa.select(
        sa.literal(key, sa.String), *group,
        *[sa.func.sum(daily.c[name]) for name in _SUMS]).select_from(
        daily.join(series, series.c.id == daily.c.series_id).outerjoin(
            label, sa.and_(label.c.series_id == daily.c.series_id,
                           label.c.key == key))).where(
        daily.c.day.in_(days)).group_by(*group)
    return models.label_daily.insert().from_select(
        ('key', 'day', 'type', 'kind', 'value') + _SUMS, select)


def _insert_ignoring(dialect, table):
    """An INSERT into ``table`` that skips the rows it holds already."""
    flavour = postgresql if dialect.name == 'postgresql' else sqlite
    return flavour.insert(table).on_conflict_do_nothing()
