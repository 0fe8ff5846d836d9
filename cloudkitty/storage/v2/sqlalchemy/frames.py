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
points of every (frame start, type), the total of a window is a sum over a
few rows per frame, and a page, first or deep, is placed without reading
any point before it: the database numbers the counts in that order (a
window function) and returns the few cells the page spans, to whose frame
starts and types the page's query is then narrowed.
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
from cloudkitty.storage.v2 import timeutils

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
    for key, values in query.filters:
        # NOTE: other keys are the points' (see ends()).
        if key == 'type':
            clauses.append(frame.c.type.in_(values))
    return clauses


def page_cells(conn, query):
    """Find the (frame start, type) cells a page spans (see :func:`usable`).

    The database numbers the points of the window cell by cell, in
    ``retrieve()``'s order (frame start, then type in the collation the
    points' query sorts types with), and returns only the cells that hold
    a point of the page: however many frames the window has, a few rows
    come back.

    :returns: ``[(begin, type, n, first, frame_first)]``, in that order:
        ``first`` is the position in the window of the cell's first point
        and ``frame_first`` that of its frame start's first point.
    """
    frame = models.frame
    upto = sa.func.sum(frame.c.n).over(
        order_by=(frame.c.begin, frame.c.type), rows=(None, 0))
    in_frame = sa.func.sum(frame.c.n).over(
        partition_by=frame.c.begin, order_by=frame.c.type, rows=(None, 0))
    numbered = sa.select(
        frame.c.begin, frame.c.type, frame.c.n, upto.label('upto'),
        in_frame.label('in_frame')).where(
        frame.c.n > 0, *_conditions(query)).subquery('numbered')
    cells = sa.select(
        numbered.c.begin, numbered.c.type, numbered.c.n,
        (numbered.c.upto - numbered.c.n).label('first'),
        (numbered.c.upto - numbered.c.in_frame).label('frame_first')).where(
        numbered.c.upto > query.offset,
        numbered.c.upto - numbered.c.n < query.offset + query.limit).order_by(
        numbered.c.begin, numbered.c.type)
    return [(begin, type_, int(n), int(first), int(frame_first))
            for begin, type_, n, first, frame_first in conn.execute(cells)]


def narrow(query, cells):
    """Narrow a page to the frame starts and types it spans.

    :param cells: the page's :func:`page_cells`.
    :returns: ``query`` with the window of the frame starts the page spans,
        restricted to the types it spans when it lies in one frame start,
        and the offset left there; or None when the page is past the last
        point.
    """
    if not cells:
        return None
    begin, _, _, first, frame_first = cells[0]
    last = cells[-1][0]
    if last == begin:
        return dataclasses.replace(
            query, begin=query_mod.from_micros(begin),
            end=query_mod.from_micros(begin + 1),
            metric_types=tuple(cell[1] for cell in cells),
            offset=query.offset - first)
    return dataclasses.replace(
        query, begin=query_mod.from_micros(begin),
        end=query_mod.from_micros(last + 1),
        offset=query.offset - frame_first)


def starts(query):
    """The frame starts of a window, with their number of points.

    Only the window and the query's types count (its other filters are
    the points'), so ``n`` bounds the points the query reads there.

    :returns: a SELECT of ``(begin, n)`` per frame start.
    """
    frame = models.frame
    return sa.select(frame.c.begin, sa.func.sum(frame.c.n).label('n')).where(
        *_conditions(query)).group_by(frame.c.begin)


def ends(query):
    """:func:`starts`, with the first and last frame end of their points.

    For reads that seek their points by frame (see ``SQLAlchemyStorage.
    _frames_to_seek``): each end is one seek in an index of the points
    that leads with ``(begin, end)``.

    :returns: a SELECT of ``(begin, n, first_end, last_end)`` per frame
        start.
    """
    frame, point = models.frame, models.point
    end_of = [sa.select(func(point.c.end)).where(
        point.c.begin == frame.c.begin).scalar_subquery()
        for func in (sa.func.min, sa.func.max)]
    return starts(query).add_columns(end_of[0].label('first_end'),
                                     end_of[1].label('last_end'))


def frame_pairs(start, stop):
    """Every ``(begin, end)`` of the points of the frame starts in a window.

    For statements that seek their points by frame (``SQLAlchemyStorage.
    _delete_returning``) in an index of the points that leads with
    ``(begin, end)``: a recursive common table expression that takes,
    for each frame start of ``ck_frame`` in ``[start, stop)``, the
    smallest end of its points, then each next larger one, one seek each
    (a loose index scan). Exact whatever the number of ends a start has;
    its last row per start has a NULL end.

    :param start: the first frame start, a bound parameter or value.
    :param stop: the frame start past them, likewise.
    :returns: a recursive CTE of ``(begin, end)``.
    """
    frame, point = models.frame, models.point
    seek = point.alias('seek_point')
    begins = sa.select(frame.c.begin).where(
        frame.c.begin >= start, frame.c.begin < stop).distinct().cte(
        'frame_starts')
    pairs = sa.select(begins.c.begin, sa.select(
        sa.func.min(seek.c.end)).where(
        seek.c.begin == begins.c.begin).scalar_subquery().label(
        'end')).cte('frame_pairs', recursive=True)
    last = pairs.alias('last_pair')
    return pairs.union_all(sa.select(last.c.begin, sa.select(
        sa.func.min(seek.c.end)).where(
        seek.c.begin == last.c.begin,
        seek.c.end > last.c.end).scalar_subquery()).where(
        last.c.end.is_not(None)))


def count(conn, query):
    """Return the number of points of a window (see :func:`usable`)."""
    frame = models.frame
    return int(conn.scalar(sa.select(sa.func.coalesce(
        sa.func.sum(frame.c.n), 0)).where(*_conditions(query))))


# NOTE: built once: every delete of a bounded window runs them (see
# rollup._UNTIL).
_COUNTS_BETWEEN = sa.select(
    models.frame.c.begin, models.frame.c.type, models.frame.c.n).where(
    models.frame.c.begin >= sa.bindparam('b_start'),
    models.frame.c.begin < sa.bindparam('b_stop'))
_SUBTRACT = models.frame.update().where(
    models.frame.c.begin == sa.bindparam('b_begin'),
    models.frame.c.type == sa.bindparam('b_type')).values(
    n=models.frame.c.n - sa.bindparam('b_n'))
_DROP = models.frame.delete().where(
    models.frame.c.begin == sa.bindparam('b_begin'),
    models.frame.c.type == sa.bindparam('b_type'))


def counts_between(conn, start, stop):
    """Return ``{(begin, type): n}`` of the frames starting in a window.

    :param start: microseconds.
    :param stop: microseconds.
    """
    return engine.run(conn, counts_between_call(start, stop))


def counts_between_call(start, stop):
    """:func:`counts_between` as a call of :func:`engine.run_in_turn`."""
    return engine.Call(_COUNTS_BETWEEN, {'b_start': start, 'b_stop': stop},
                       _counts)


def _counts(rows):
    return {(begin, type_): int(n) for begin, type_, n in rows}


def count_between(conn, start, stop):
    """Return the number of points whose frame starts in ``[start, stop)``.

    :param start: microseconds.
    :param stop: microseconds.
    """
    frame = models.frame
    return int(conn.scalar(sa.select(sa.func.coalesce(
        sa.func.sum(frame.c.n), 0)).where(frame.c.begin >= start,
                                          frame.c.begin < stop)))


def days_between(conn, start, stop):
    """Return the UTC days where frames start in ``[start, stop)``.

    :param start: microseconds, or None for no bound.
    :param stop: microseconds.
    :returns: the days' starts in microseconds, ascending.
    """
    frame = models.frame
    clauses = [frame.c.begin < stop]
    if start is not None:
        clauses.append(frame.c.begin >= start)
    begins = conn.scalars(sa.select(frame.c.begin).where(
        *clauses).distinct()).all()
    return sorted({timeutils.day_of(int(begin)) for begin in begins})


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


def subtract(conn, counts, known=None):
    """Take deleted counts away, dropping the rows they empty.

    :param counts: ``{(begin, type): n}`` deleted.
    :param known: the counts of those frames before the delete, read in
        the delete's transaction (see :func:`counts_between`), or None.
        With them, the rows emptied are dropped and the others updated,
        without a statement to find the empty ones; without them, every
        row is updated, then the empty ones dropped.
    :returns: whether the delete may have emptied a row (always, without
        ``known``).
    """
    if not counts:
        return False
    frame = models.frame
    emptied = set() if known is None else {
        key for key, n in counts.items() if known.get(key) == n}
    left = sorted(counts.keys() - emptied)
    if left:
        conn.execute(
            _SUBTRACT,
            [{'b_begin': begin, 'b_type': type_, 'b_n': counts[begin, type_]}
             for begin, type_ in left])
    if known is None:
        begins = [begin for begin, _ in counts]
        conn.execute(frame.delete().where(
            frame.c.n == 0, frame.c.begin >= min(begins),
            frame.c.begin <= max(begins)))
        return True
    if emptied:
        conn.execute(
            _DROP,
            [{'b_begin': begin, 'b_type': type_}
             for begin, type_ in sorted(emptied)])
    return bool(emptied)


def forget(conn, start=None, stop=None):
    """Delete the counts of frames starting in ``[start, stop)`` (or all)."""
    frame = models.frame
    conn.execute(frame.delete().where(
        *models.between(frame.c.begin, start, stop)))
