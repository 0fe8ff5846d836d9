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
"""Point counts per frame start and type (``ck_frame``).

``retrieve()`` orders points by frame start, then type. With the number of
points of every (frame start, type), a page deep in a window is found by
skipping whole frame starts by their counts, reading nothing of the points
before it, and the total of a window is a sum over a few rows per frame.
That holds for queries that select points by window and type only; a
filter on any other key needs the points' series and falls back to the
daily rollup.

The table is small (one row per frame start and type, whatever the number
of series), and kept in the same transaction as every push and delete, like
:mod:`~cloudkitty.storage.v2.sqlalchemy.rollup`: it always counts exactly
the points stored. Pushes add their counts last, in key order, so that the
row locks of concurrent pushes into one frame are held only until their
commit and always taken in the same order.
"""

import dataclasses

import sqlalchemy as sa

from cloudkitty.storage.v2 import query as query_mod
from cloudkitty.storage.v2.sqlalchemy import engine
from cloudkitty.storage.v2.sqlalchemy import models

_COLUMNS = ('begin', 'type', 'n')


def counts_of(frames):
    """Count the points of ``frames`` per frame start and type.

    :returns: ``{(begin, type): n}``, ``begin`` in microseconds, ``n`` > 0.
    """
    counts = {}
    for frame in frames:
        begin = query_mod.to_micros(frame.start)
        for type_, points in frame.itertypes():
            if points:
                key = (begin, type_)
                counts[key] = counts.get(key, 0) + len(points)
    return counts


def rows(counts):
    """The ``(begin, type, n)`` rows of ``counts``, in key order."""
    return [key + (n,) for key, n in sorted(counts.items())]


def upsert(dialect):
    """The bulk ``INSERT`` into ``ck_frame`` that adds to existing rows.

    A push writes a few rows (one per frame and type), so a plain
    multi-row statement serves every dialect.
    """
    quote = dialect.identifier_preparer.quote
    if dialect.name == 'mysql':
        suffix = ' ON DUPLICATE KEY UPDATE n = n + VALUES(n)'
    else:
        suffix = (' ON CONFLICT (%s, %s) DO UPDATE SET n = ck_frame.n + '
                  'excluded.n' % (quote('begin'), quote('type')))
    return engine.BulkWrite(dialect, models.frame.name, _COLUMNS, suffix)


def usable(query):
    """Tell whether ``query`` selects points by window and type only."""
    return all(key == 'type' for key, _ in query.filters)


def _conditions(query):
    frame = models.frame
    clauses = []
    if query.begin is not None:
        clauses.append(frame.c.begin >= query_mod.to_micros(query.begin))
    if query.end is not None:
        clauses.append(frame.c.begin < query_mod.to_micros(query.end))
    if query.metric_types is not None:
        clauses.append(frame.c.type.in_(query.metric_types))
    for _, values in query.filters:
        clauses.append(frame.c.type.in_(values))
    return clauses


def cells(conn, query):
    """Count a window's points per frame start and type (see :func:`usable`).

    The order is the database's, as ``retrieve()``'s: frame start, then
    type in the collation the points' query sorts types with.

    :returns: ``[(begin, type, count)]``, ``begin`` in microseconds.
    """
    frame = models.frame
    return [(begin, type_, int(n)) for begin, type_, n in conn.execute(
        sa.select(frame.c.begin, frame.c.type, frame.c.n).where(
            frame.c.n > 0, *_conditions(query)).order_by(
            frame.c.begin, frame.c.type))]


def by_start(cells):
    """Add up :func:`cells` per frame start: ``[(begin, count)]``."""
    counts = []
    for begin, _, n in cells:
        if counts and counts[-1][0] == begin:
            counts[-1] = (begin, counts[-1][1] + n)
        else:
            counts.append((begin, n))
    return counts


def within_frame(query, cells, begin, offset):
    """Narrow a page that lies in one frame start to the types it spans.

    :param cells: the query's :func:`cells`.
    :param begin: the frame start where the page begins (microseconds).
    :param offset: the page's offset from that frame start's first point.
    :returns: ``query`` restricted to that frame start and to the types
        the page spans, with the offset left among them; or None when the
        page goes on into a later frame start.
    """
    types = []
    left, need = offset, offset + query.limit
    for cell_begin, type_, n in cells:
        if cell_begin != begin:
            continue
        if left >= n and not types:
            left -= n
        else:
            types.append(type_)
        need -= n
        if need <= 0:
            return dataclasses.replace(
                query, begin=query_mod.from_micros(begin),
                end=query_mod.from_micros(begin + 1), metric_types=tuple(
                    types), offset=left)
    return None


def count(conn, query):
    """Return the number of points of a window (see :func:`usable`)."""
    frame = models.frame
    return int(conn.scalar(sa.select(sa.func.coalesce(
        sa.func.sum(frame.c.n), 0)).where(*_conditions(query))))


def count_between(conn, start, stop):
    """Return the number of points whose frame starts in ``[start, stop)``.

    :param start: microseconds.
    :param stop: microseconds.
    """
    frame = models.frame
    return int(conn.scalar(sa.select(sa.func.coalesce(
        sa.func.sum(frame.c.n), 0)).where(frame.c.begin >= start,
                                          frame.c.begin < stop)))


def deleted(conn, conditions):
    """Count, per frame start and type, the points a delete removes.

    :param conditions: the WHERE clauses of the delete, on ``ck_point``.
    :returns: ``{(begin, type): n}``.
    """
    point, series = models.point, models.series
    return {(begin, type_): int(n) for begin, type_, n in conn.execute(
        sa.select(point.c.begin, series.c.type, sa.func.count()).select_from(
            point.join(series, series.c.id == point.c.series_id)).where(
            *conditions).group_by(point.c.begin, series.c.type))}


def subtract(conn, counts):
    """Take deleted counts away, dropping the rows they empty."""
    if not counts:
        return
    frame = models.frame
    conn.execute(frame.update().where(
        frame.c.begin == sa.bindparam('b_begin'),
        frame.c.type == sa.bindparam('b_type')).values(
        n=frame.c.n - sa.bindparam('b_n')),
        [{'b_begin': begin, 'b_type': type_, 'b_n': n}
         for (begin, type_), n in sorted(counts.items())])
    begins = [begin for begin, _ in counts]
    conn.execute(frame.delete().where(
        frame.c.n == 0, frame.c.begin >= min(begins),
        frame.c.begin <= max(begins)))


def forget(conn, start=None, stop=None):
    """Delete the counts of frames starting in ``[start, stop)`` (or all)."""
    frame = models.frame
    clauses = []
    if start is not None:
        clauses.append(frame.c.begin >= start)
    if stop is not None:
        clauses.append(frame.c.begin < stop)
    conn.execute(frame.delete().where(*clauses))
