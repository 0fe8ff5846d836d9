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
"""The per-point steps of the SQL backend, compiled where they can be.

A push checks and encodes every point it carries, and a read turns every
row back into a point; in pure Python the first costs about 2 us a point,
as much as the database's own insert of the row, and the second a third
of a read of one project (measured on SQLite and PostgreSQL, see the
admin guide's benchmark page). :data:`encode_known` is the first step for
the usual point: one of a series this process has seen, with a qty and
price that are Decimals ready to store; :data:`rebuild` is the second;
:data:`rebuild_runs` makes the points in runs of one frame and type;
:data:`statement_rows` numbers and lays out a SQLite push's rows for its
multi-row statements; :data:`decimal_of_units` makes the sums of totals,
and :data:`label_groups` their groups by one label.
Each is written twice, here in Python and in ``_speedups.c``, which ``pip
install`` compiles when it can (an optional extension: without a compiler
the package installs with this module alone). The encoders stop at the
first point they cannot take, and the caller takes that one through the
full checks (:func:`cloudkitty.storage.v2.money.point_units`, the series'
exact key), so every refusal and every rounding stays in Python.

:data:`COMPILED` tells which forms run. Setting the environment variable
``CLOUDKITTY_STORAGE_PURE_PYTHON`` to ``1`` before the import keeps the
compiled ones out (``tox -e pure`` runs the unit tests and the SQLite
suite so).
"""

import decimal
import functools
import itertools
import operator
import os
import struct

from cloudkitty import dataframe
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query
from cloudkitty.storage.v2.sqlalchemy import models

_DECIMAL = decimal.Decimal

#: The mapping types whose ``items()`` are a dict's: the series key is
#: built from them directly. Others go through the full path.
MAPPING_TYPES = (dataframe.FrozenAttributes, dict)


def money_config(max_magnitude, hundred):
    """What :data:`encode_known` checks and splits money with.

    :param max_magnitude: the backend's bound (``Features.max_magnitude``).
    :param hundred: what a point's units are divided by: a row keeps
        ``divmod(units, hundred)``.
    :returns: an opaque tuple, made once per store.
    """
    return (_DECIMAL, max_magnitude * money.SCALE, hundred)


def python_encode_known(out, run, scope_id, type_, begin, end, known,
                        mapping_types, config, start):
    """Encode the points of a run while they take the fast path.

    The reference form of :data:`encode_known`; ``_speedups.c`` does the
    same, with one difference that changes no result: it takes money
    whose units fit 64 bits (magnitudes below about 9.2 million) and
    leaves larger values to the caller's full checks.

    :param out: the list to append each point's row to: ``(series id,
        begin, end, qty_hundreds, qty_rest, price_hundreds, price_rest)``
        (see :func:`money_config` for the pairs); or a bytearray, to
        append each row to as :func:`copy_row` lays it out for
        PostgreSQL's binary ``COPY``. A series id that does not fit the
        row's ``int4`` is then left to the caller, as a point it does not
        take.
    :param run: a list of :class:`~cloudkitty.dataframe.DataPoint` of
        one frame and type.
    :param scope_id: the push's scope.
    :param type_: the run's metric type.
    :param begin: the frame's start, in microseconds.
    :param end: the frame's end, in microseconds.
    :param known: ``{series key: id}`` (see :func:`cloudkitty.storage.v2.
        sqlalchemy.series.series_key`).
    :param mapping_types: :data:`MAPPING_TYPES`.
    :param config: :func:`money_config`.
    :param start: the index of the first point to encode.
    :returns: the index of the first point not encoded: ``len(run)``
        when all were, else that of a point whose series key is not in
        ``known``, whose groupby or metadata is of another type, or whose
        qty or price :func:`cloudkitty.storage.v2.money.fast_units` does
        not take (a Decimal with at most 12 fractional digits inside the
        bound).
    """
    _, bound, hundred = config
    # NOTE: money's own test of a value ready to store, so that one rule
    # says which values the full checks would round or refuse.
    fast_units = money.fast_units
    copying = isinstance(out, bytearray)
    append = _copy_appender(out) if copying else out.append
    get = known.get
    for index in range(start, len(run)):
        point = run[index]
        if not isinstance(point, tuple) or len(point) != 6:
            return index
        unit, qty, price, groupby, metadata, description = point
        if type(groupby) not in mapping_types or \
                type(metadata) not in mapping_types:
            return index
        series = get((scope_id, type_, unit, tuple(dict.items(groupby)),
                      tuple(dict.items(metadata)), description))
        if series is None or copying and not (
                type(series) is int and _INT4_MIN <= series <= _INT4_MAX):
            return index
        qty_units = fast_units(qty, bound)
        price_units = fast_units(price, bound)
        if qty_units is None or price_units is None:
            return index
        append((series, begin, end) + divmod(qty_units, hundred)
               + divmod(price_units, hundred))
    return len(run)


#: A point's row in PostgreSQL's binary ``COPY``: the number of fields,
#: then each field's length and big-endian value; the series id is an
#: ``int4``, the frame's bounds and the money pairs ``int8`` each.
_COPY_ROW = struct.Struct('>hiiiqiqiqiqiqiq')
#: The columns a :func:`copy_row` fills, with their PostgreSQL types.
COPY_COLUMNS = (('series_id', 'int4'), ('begin', 'int8'), ('end', 'int8'),
                ('qty_hundreds', 'int8'), ('qty_rest', 'int8'),
                ('price_hundreds', 'int8'), ('price_rest', 'int8'))
_INT4_MIN, _INT4_MAX = -2 ** 31, 2 ** 31 - 1


def copy_row(row):
    """Lay out an encoded row as PostgreSQL's binary ``COPY`` reads it.

    What :data:`encode_known` appends to a bytearray for each point it
    takes: the same bytes psycopg writes for the row tuple with the types
    of :data:`COPY_COLUMNS`, without its per-row step (0.9 us a point,
    most of the client's time in a push after the encoding, measured).

    :param row: ``(series id, begin, end, qty_hundreds, qty_rest,
        price_hundreds, price_rest)``.
    :rtype: bytes
    """
    series, begin, end, qty_hundreds, qty_rest, price_hundreds, \
        price_rest = row
    return _COPY_ROW.pack(7, 4, series, 8, begin, 8, end, 8, qty_hundreds,
                          8, qty_rest, 8, price_hundreds, 8, price_rest)


def _copy_appender(out):
    """``append(row)`` that adds a row's :func:`copy_row` to ``out``."""
    extend = out.extend

    def append(row):
        extend(copy_row(row))
    return append


def decimal_of_pair(hundreds, rest):
    """The Decimal a stored ``(hundreds, rest)`` pair is worth.

    :func:`cloudkitty.storage.v2.money.from_units` of its units: an
    integer Decimal when the value is whole, else the exact quotient,
    without trailing zeros. The compiled :data:`rebuild` calls it for the
    pairs whose units do not fit 64 bits.
    """
    return money.from_units(hundreds * models.HUNDRED + rest)


def python_rebuild(rows, info, times, from_micros, point_type):
    """Turn point rows into ``(start, end, type, point)`` tuples.

    The reference form of :data:`rebuild`. Per point, the work is two
    integer joins, two Decimals (:func:`decimal_of_pair`, inlined) and
    two tuples: frame bounds are made once per distinct value, and the
    point is built as :func:`cloudkitty.dataframe.stored_point` builds
    it, without checking again what was checked when it was pushed.

    :param rows: ``(series_id, begin, end, qty_hundreds, qty_rest,
        price_hundreds, price_rest)`` tuples (or rows alike).
    :param info: ``{series_id: (type, unit, groupby, metadata,
        description)}`` of every series of the rows.
    :param times: ``{microseconds: datetime}``, filled as bounds are made.
    :param from_micros: makes a bound from its microseconds.
    :param point_type: :class:`cloudkitty.dataframe.DataPoint`.
    :returns: a list, in the rows' order.
    """
    hundred, scale = models.HUNDRED, money.SCALE
    divide, scale_decimal = money.CONTEXT.divide, money.SCALE_DECIMAL
    new_decimal, new_point = _DECIMAL, tuple.__new__
    points = []
    append = points.append
    for series_id, begin, end, qty_hundreds, qty_rest, price_hundreds, \
            price_rest in rows:
        type_, unit, groupby, metadata, description = info[series_id]
        start = times.get(begin)
        if start is None:
            start = times[begin] = from_micros(begin)
        stop = times.get(end)
        if stop is None:
            stop = times[end] = from_micros(end)
        qty = qty_hundreds * hundred + qty_rest
        qty = divide(new_decimal(qty), scale_decimal) if qty % scale \
            else new_decimal(qty // scale)
        price = price_hundreds * hundred + price_rest
        price = divide(new_decimal(price), scale_decimal) \
            if price % scale else new_decimal(price // scale)
        append((start, stop, type_, new_point(point_type, (
            unit, qty, price, groupby, metadata, description))))
    return points


def python_rebuild_runs(rows, info, times, from_micros, point_type):
    """Turn point rows into runs of points of one frame and type.

    The reference form of :data:`rebuild_runs`: :func:`python_rebuild`,
    in :func:`cloudkitty.storage.v2.query.point_runs`.

    :returns: a list of ``(start, end, type, [point, ...])``, in the
        rows' order.
    """
    return list(query.point_runs(python_rebuild(
        rows, info, times, from_micros, point_type)))


def label_group(row, weights, decode):
    """The group of one row of sums by one label (see :func:`label_groups`).

    :returns: ``((value,), count, qty, price)``, or None for a row of no
        point.
    """
    text, kind, count, q0, q1, q2, q3, p0, p1, p2, p3 = row
    if not count:
        return None
    w0, w1, w2, w3 = weights
    # NOTE: NUMERIC sums come as Decimal, which int() keeps exact.
    return ((decode(kind, text),), int(count),
            int(q0) * w0 + int(q1) * w1 + int(q2) * w2 + int(q3) * w3,
            int(p0) * w0 + int(p1) * w1 + int(p2) * w2 + int(p3) * w3)


def python_label_groups(rows, weights, decode):
    """The groups of a total's rows of sums by one label.

    The reference form of :data:`label_groups`: :func:`label_group` of
    each row, the rows of no point left out.

    :param rows: ``(text, kind, count, qty limbs x 4, price limbs x 4)``
        tuples: a label's text and kind (see :func:`cloudkitty.storage.
        v2.query.encode_label`), the number of points, and the sums of
        the money members, each worth its weight.
    :param weights: the four members' weights, in ``10**-12`` units.
    :param decode: :func:`cloudkitty.storage.v2.query.decode_label`.
    :returns: a list of ``((value,), count, qty, price)``, sums in
        ``10**-12`` units.
    """
    groups = []
    append = groups.append
    for row in rows:
        group = label_group(row, weights, decode)
        if group is not None:
            append(group)
    return groups


def _compiled_label_groups(rows, weights, decode):
    """:func:`python_label_groups`, compiled, for a list of tuples."""
    groups = None
    if type(rows) is list:
        groups = _SPEEDUPS.label_groups(
            rows, _halves(weights), decode, label_group, weights)
    if groups is None:
        groups = python_label_groups(rows, weights, decode)
    return groups


@functools.lru_cache(maxsize=4)
def _halves(weights):
    """Each weight as ``(w >> 62, w & (2**62 - 1))``, for ``_speedups.c``.

    Its 128-bit arithmetic takes weights that do not fit 64 bits so.
    """
    return tuple(itertools.chain.from_iterable(
        (weight >> 62, weight & (2 ** 62 - 1)) for weight in weights))


def numbered_rows(points, first):
    """``(id,) + point`` for each point, ids from ``first`` in push order.

    Each row is made in C by :func:`map` and :func:`zip`.
    """
    return list(map(operator.add, zip(range(first, first + len(points))),
                    points))


def python_statement_rows(points, first, per_statement):
    """Number a push's rows and lay them out for multi-row statements.

    The reference form of :data:`statement_rows`. Each point gets its id
    in push order (``first`` on), then the rows are sorted by series
    (stably: one frame start's rows then come in the order of SQLite's
    key, see :class:`~cloudkitty.storage.v2.sqlalchemy.engine.BulkWrite`)
    and flattened, ``per_statement`` rows to a tuple of parameters.

    :param points: ``(series_id, begin, end, qty_hundreds, qty_rest,
        price_hundreds, price_rest)`` tuples.
    :returns: ``(chunks, rest)``: tuples of ``per_statement`` rows' values
        each, and the ``(id,) + point`` rows left over.
    """
    rows = numbered_rows(points, first)
    rows.sort(key=_SERIES_OF_ROW)
    whole = len(rows) // per_statement * per_statement
    flat = list(itertools.chain.from_iterable(rows[:whole]))
    width = per_statement * 8
    return ([tuple(flat[at:at + width]) for at in range(0, len(flat), width)],
            rows[whole:])


_SERIES_OF_ROW = operator.itemgetter(1)


def _compiled_statement_rows(points, first, per_statement):
    """:func:`python_statement_rows`, compiled, for lists of 7-tuples."""
    laid_out = _SPEEDUPS.statement_rows(points, first, per_statement)
    if laid_out is None:
        return python_statement_rows(points, first, per_statement)
    return laid_out


def _compiled_rebuild(rows, info, times, from_micros, point_type):
    """:func:`python_rebuild`, compiled, for a list of plain tuples."""
    points = None
    if type(rows) is list:
        points = _SPEEDUPS.rebuild(rows, info, times, from_micros,
                                   point_type, _DECIMAL, decimal_of_pair)
    if points is None:
        # NOTE: streamed reads hand SQLAlchemy's rows over.
        points = python_rebuild(rows, info, times, from_micros, point_type)
    return points


def _compiled_rebuild_runs(rows, info, times, from_micros, point_type):
    """:func:`python_rebuild_runs`, compiled, for a list of plain tuples.

    The compiled form also leaves its points out of the cyclic garbage
    collector's walks: they cannot be part of a cycle.
    """
    runs = None
    if type(rows) is list:
        runs = _SPEEDUPS.rebuild(rows, info, times, from_micros, point_type,
                                 _DECIMAL, decimal_of_pair, True)
    if runs is None:
        runs = python_rebuild_runs(rows, info, times, from_micros,
                                   point_type)
    return runs


def _compiled():
    if os.environ.get('CLOUDKITTY_STORAGE_PURE_PYTHON') == '1':
        return None
    try:
        from cloudkitty.storage.v2.sqlalchemy import _speedups
    except ImportError:
        return None
    return _speedups


_SPEEDUPS = _compiled()
#: True when the compiled :data:`encode_known` runs.
COMPILED = _SPEEDUPS is not None
#: What a push calls: :func:`python_encode_known`, or its compiled form
#: when :data:`COMPILED`.
encode_known = _SPEEDUPS.encode_known if COMPILED else python_encode_known
#: What a read calls: :func:`python_rebuild`, or its compiled form when
#: :data:`COMPILED` (for lists of tuples, what the drivers fetch).
rebuild = _compiled_rebuild if COMPILED else python_rebuild
#: What a retrieve() calls: :func:`python_rebuild_runs`, or its compiled
#: form when :data:`COMPILED`.
rebuild_runs = _compiled_rebuild_runs if COMPILED else python_rebuild_runs
#: What a SQLite push of one frame start lays its rows out with:
#: :func:`python_statement_rows`, or its compiled form when
#: :data:`COMPILED`.
statement_rows = _compiled_statement_rows if COMPILED \
    else python_statement_rows
#: What a total grouped by one label turns its rows into:
#: :func:`python_label_groups`, or its compiled form when :data:`COMPILED`.
label_groups = _compiled_label_groups if COMPILED else python_label_groups
#: :func:`cloudkitty.storage.v2.money.from_units`, compiled when
#: :data:`COMPILED` for the units that fit 64 bits: what totals build
#: their sums with (a total by id builds two per resource).
decimal_of_units = functools.partial(
    _SPEEDUPS.decimal_of_units, _DECIMAL, money.from_units) \
    if COMPILED else money.from_units
