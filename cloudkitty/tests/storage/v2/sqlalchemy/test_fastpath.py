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
"""Unit tests of :mod:`cloudkitty.storage.v2.sqlalchemy.fastpath`.

Both forms of each function (the compiled one when it is built) run on the
same input and are held to the reference: for ``encode_known``, each
point's series key looked up as :func:`~cloudkitty.storage.v2.sqlalchemy.
series.series_key` makes it and its money as :func:`~cloudkitty.storage.
v2.money.point_units` stores it; for ``rebuild``, each value as
:func:`~cloudkitty.storage.v2.money.from_units` gives it back.
"""

import datetime
import decimal
import gc
import os
import random

import sqlalchemy as sa
import testtools

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query
from cloudkitty.storage.v2.sqlalchemy import engine as engine_mod
from cloudkitty.storage.v2.sqlalchemy import fastpath
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import series as series_mod
from cloudkitty.storage.v2.sqlalchemy import storage

D = decimal.Decimal
CONFIG = fastpath.money_config(models.MAX_MAGNITUDE, models.HUNDRED)
BEGIN, END = 1767225600000000, 1767229200000000

#: Values the compiled form takes itself, and values it leaves to Python
#: (more than 12 fractional digits, past 64 bits of units, NaN, exponent
#: forms, other types): each must come out as the reference stores it.
EDGE_VALUES = [
    D('0'), D('-0'), D('0.000'), D('0E-30'), D('0E+30'), D('1'), D('-1'),
    D('0.1'), D('-0.1'), D('0.000000000001'), D('-0.000000000001'),
    D('0.0000000000001'), D('0.0000000000015'), D('1.0000000000000'),
    D('123456.123456789012'), D('-123456.123456789012'),
    D('9223372.036854775807'), D('9223372.036854775808'),
    D('-9223372.036854775808'), D('-9223372.036854775809'),
    D('99999999999999999999.999999999999'), D('1E+19'), D('-1E+19'),
    D('1E+20'), D('1E-12'), D('1E-13'), D('12.5E+3'), D('12.5e-3'),
    D('1E+999999'), D('1E-999999'), D('NaN'), D('-Infinity'),
    D('100000000000000000000'), D('0.30000000000000004'),
    D('1.10'), D('1100E-3'), D('-5E-1'),
    1, 0, -3, 2.5, 0.1, True,
]


#: The usual point of the encoders' tests (points are immutable), and
#: the key its series is known under.
POINT = dataframe.DataPoint('u', D('1.5'), D('0.25'),
                            {'project_id': 'p', 'id': 'r'}, {'flavor': 'm1'})
POINT_KEY = series_mod.series_key(None, 'instance', POINT)


class _DecimalSubclass(decimal.Decimal):
    """A Decimal subclass: never on the fast path."""


def reference_row(series, point):
    """The row the full path stores for a point (or its error)."""
    qty_units, price_units = money.point_units(point[1], point[2],
                                               models.MAX_MAGNITUDE)
    return (series, BEGIN, END) + divmod(qty_units, models.HUNDRED) + \
        divmod(price_units, models.HUNDRED)


def encode_all(encode_known, run, known, scope_id=None, type_='instance'):
    """Encode a run as a push does: the fast path, then the full one."""
    out = []
    index = 0
    while True:
        index = encode_known(out, run, scope_id, type_, BEGIN, END, known,
                             fastpath.MAPPING_TYPES, CONFIG, index)
        if index >= len(run):
            return out
        point = run[index]
        series = known.get(series_mod.series_key(scope_id, type_, point))
        out.append(reference_row(series, point))
        index += 1


def forms(name='encode_known'):
    """``[(form, function)]``: the Python form, and the compiled one."""
    result = [('python', getattr(fastpath, 'python_' + name))]
    if fastpath._compiled() is not None:
        result.append(('compiled', getattr(
            fastpath, '_compiled_' + name, None) or getattr(
            fastpath._compiled(), name)))
    return result


class EncodeKnownTest(testtools.TestCase):
    """Every form encodes exactly as the full path, and stops where due."""

    def setUp(self):
        super().setUp()
        self.point = POINT
        self.known = {POINT_KEY: 7}

    def _point(self, qty, price, groupby=None, metadata=None):
        # NOTE: built as a stored point is, unchecked, so that values
        # DataPoint() would convert or refuse reach the encoders too.
        freeze = dataframe.frozen_attributes
        return tuple.__new__(dataframe.DataPoint, (
            'u', qty, price,
            freeze(groupby or {'project_id': 'p', 'id': 'r'}, 'groupby'),
            freeze(metadata or {'flavor': 'm1'}, 'metadata'), None))

    def test_usual_points_are_taken_whole(self):
        run = [self.point] * 5
        for name, encode_known in forms():
            out = []
            self.assertEqual(5, encode_known(
                out, run, None, 'instance', BEGIN, END, self.known,
                fastpath.MAPPING_TYPES, CONFIG, 0), name)
            self.assertEqual([reference_row(7, self.point)] * 5, out, name)

    def test_starts_at_the_index_given(self):
        run = [self.point] * 5
        for name, encode_known in forms():
            out = []
            self.assertEqual(5, encode_known(
                out, run, None, 'instance', BEGIN, END, self.known,
                fastpath.MAPPING_TYPES, CONFIG, 3), name)
            self.assertEqual(2, len(out), name)

    def test_stops_at_an_unknown_series(self):
        other = self._point(D('1'), D('1'), groupby={'project_id': 'q'})
        run = [self.point, other, self.point]
        for name, encode_known in forms():
            out = []
            self.assertEqual(1, encode_known(
                out, run, None, 'instance', BEGIN, END, self.known,
                fastpath.MAPPING_TYPES, CONFIG, 0), name)
            self.assertEqual([reference_row(7, self.point)], out, name)

    def test_the_scope_and_type_are_part_of_the_key(self):
        for name, encode_known in forms():
            for scope_id, type_ in (('s', 'instance'), (None, 'volume')):
                self.assertEqual(0, encode_known(
                    [], [self.point], scope_id, type_, BEGIN, END,
                    self.known, fastpath.MAPPING_TYPES, CONFIG, 0), name)

    def test_other_mappings_and_values_take_the_full_path(self):
        subclass = self._point(_DecimalSubclass('1'), D('1'))
        for name, encode_known in forms():
            self.assertEqual(0, encode_known(
                [], [subclass], None, 'instance', BEGIN, END, self.known,
                fastpath.MAPPING_TYPES, CONFIG, 0), name)
            self.assertEqual(0, encode_known(
                [], [('u', D(1), D(1), {}, {})], None, 'instance', BEGIN,
                END, self.known, fastpath.MAPPING_TYPES, CONFIG, 0), name)

    def test_edge_values_are_stored_as_the_full_path_stores_them(self):
        for name, encode_known in forms():
            for value in EDGE_VALUES:
                for qty, price in ((value, D('1')), (D('1'), value)):
                    point = self._point(qty, price)
                    try:
                        expected = [reference_row(7, point)]
                    except exceptions.InvalidQuery:
                        self.assertRaises(
                            exceptions.InvalidQuery, encode_all,
                            encode_known, [point], self.known)
                        continue
                    self.assertEqual(expected, encode_all(
                        encode_known, [point], self.known),
                        '%s: %r' % (name, value))

    def test_random_values_are_stored_as_the_full_path_stores_them(self):
        rng = random.Random(int(os.environ.get('CLOUDKITTY_TEST_SEED', 0)))
        values = []
        for _ in range(3000):
            digits = rng.randrange(1, 34)
            mantissa = rng.randrange(10 ** digits)
            # NOTE: below 10**20, the bound: out of range is refused
            # alike, as the edge values show.
            exponent = rng.randrange(-30, 21 - digits)
            sign = rng.choice('+-')
            values.append(D('%s%dE%d' % (sign, mantissa, exponent)))
            values.append(D('%s%d.%0*d' % (sign, rng.randrange(10 ** 7), 6,
                                           rng.randrange(10 ** 6))))
        run = [self._point(qty, price)
               for qty, price in zip(values, reversed(values))]
        expected = [reference_row(7, point) for point in run]
        for name, encode_known in forms():
            self.assertEqual(expected, encode_all(encode_known, run,
                                                  self.known), name)

    def test_the_form_asked_for_runs(self):
        # NOTE: tox builds the compiled form and says so with
        # CLOUDKITTY_STORAGE_EXPECT_COMPILED: a failed build would
        # otherwise run the slower form unnoticed.
        if os.environ.get('CLOUDKITTY_STORAGE_PURE_PYTHON') == '1':
            self.assertFalse(fastpath.COMPILED)
            self.assertIs(fastpath.python_encode_known, fastpath.encode_known)
        elif os.environ.get('CLOUDKITTY_STORAGE_EXPECT_COMPILED') == '1':
            self.assertTrue(fastpath.COMPILED)
            self.assertIsNot(fastpath.python_encode_known,
                             fastpath.encode_known)
        else:
            self.skipTest('neither form asked for')


def decode_copy_rows(data):
    """The row tuples in bytes of binary COPY rows, read field by field.

    Written from the format's description (a 16-bit field count, then
    each field's 32-bit length and its big-endian value), not from
    :func:`fastpath.copy_row`, so that both are checked against it.
    """
    rows = []
    at = 0
    while at < len(data):
        count = int.from_bytes(data[at:at + 2], 'big', signed=True)
        at += 2
        row = []
        for _ in range(count):
            length = int.from_bytes(data[at:at + 4], 'big', signed=True)
            at += 4
            row.append(int.from_bytes(data[at:at + length], 'big',
                                      signed=True))
            at += length
        rows.append(tuple(row))
    return rows


class EncodeKnownCopyTest(testtools.TestCase):
    """Into a bytearray, every form writes the rows it would list."""

    point = POINT

    def _encode(self, encode_known, out, run, series=7, start=0):
        return encode_known(out, run, None, 'instance', BEGIN, END,
                            {POINT_KEY: series}, fastpath.MAPPING_TYPES,
                            CONFIG, start)

    def test_rows_are_the_listed_ones_in_copy_layout(self):
        # NOTE: units that fit 64 bits, which every form takes.
        rng = random.Random(int(os.environ.get('CLOUDKITTY_TEST_SEED', 0)))
        run = [self.point._replace(
            qty=D(rng.randrange(-10 ** 18, 10 ** 18)).scaleb(-12),
            price=D(rng.randrange(-10 ** 12, 10 ** 12)).scaleb(-6))
            for _ in range(500)]
        for name, encode_known in forms():
            listed, copied = [], bytearray()
            self.assertEqual(500, self._encode(encode_known, listed, run),
                             name)
            self.assertEqual(500, self._encode(encode_known, copied, run),
                             name)
            self.assertEqual(listed, decode_copy_rows(copied), name)
            self.assertEqual(b''.join(map(fastpath.copy_row, listed)),
                             bytes(copied), name)

    def test_stops_where_the_list_stops(self):
        other = self.point._replace(unit='other')
        run = [self.point, self.point, other, self.point]
        for name, encode_known in forms():
            copied = bytearray()
            self.assertEqual(2, self._encode(encode_known, copied, run),
                             name)
            self.assertEqual([reference_row(7, self.point)] * 2,
                             decode_copy_rows(copied), name)

    def test_series_ids_past_int4_are_left_to_the_caller(self):
        for name, encode_known in forms():
            for series in (2 ** 31, -2 ** 31 - 1, True, 7.0):
                copied = bytearray()
                self.assertEqual(0, self._encode(
                    encode_known, copied, [self.point], series), name)
                self.assertEqual(b'', bytes(copied), name)
            for series in (2 ** 31 - 1, -2 ** 31):
                copied = bytearray()
                self.assertEqual(1, self._encode(
                    encode_known, copied, [self.point], series), name)
                self.assertEqual([reference_row(series, self.point)],
                                 decode_copy_rows(copied), name)

    def test_appends_to_what_the_bytearray_holds(self):
        for name, encode_known in forms():
            copied = bytearray(b'head')
            self.assertEqual(1, self._encode(encode_known, copied,
                                             [self.point]), name)
            self.assertEqual(b'head' + fastpath.copy_row(
                reference_row(7, self.point)), bytes(copied), name)

    def test_postgresql_writes_points_in_copy_row_layout(self):
        dialect = sa.create_engine(
            'postgresql+psycopg://127.0.0.1:9/ck').dialect
        writer = engine_mod.bulk_writer(dialect, models.point,
                                        storage.POINT_COLUMNS)
        self.assertEqual(fastpath.COPY_COLUMNS,
                         tuple(zip(storage.POINT_COLUMNS, writer.types)))


def from_micros(micros):
    """A bound from microseconds, as the backend makes it."""
    return datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + \
        datetime.timedelta(microseconds=micros)


class RebuildTest(testtools.TestCase):
    """Every form gives back the stored values, exponent included."""

    INFO = {3: ('instance', 'u', dataframe.frozen_attributes({'id': 'r'}),
                dataframe.frozen_attributes({}, 'metadata'), 'd')}

    def _row(self, qty_units, price_units):
        return (3, BEGIN, END) + models.split(qty_units) + \
            models.split(price_units)

    def _check(self, units):
        rows = [self._row(value, units[-1 - index])
                for index, value in enumerate(units)]
        for name, rebuild in forms('rebuild'):
            times = {}
            points = rebuild(rows, self.INFO, times, from_micros,
                             dataframe.DataPoint)
            self.assertEqual(len(rows), len(points), name)
            for index, (start, stop, type_, point) in enumerate(points):
                value = units[index]
                self.assertEqual((from_micros(BEGIN), from_micros(END),
                                  'instance'), (start, stop, type_), name)
                self.assertIs(dataframe.DataPoint, type(point), name)
                expected = money.from_units(value)
                # NOTE: the exponent too: 1.5 and 1.50 are equal, but a
                # retrieve gives back the stored value's own digits.
                self.assertEqual(expected.as_tuple(), point.qty.as_tuple(),
                                 '%s: %d' % (name, value))
                self.assertEqual(
                    money.from_units(units[-1 - index]).as_tuple(),
                    point.price.as_tuple(), name)
                self.assertEqual(('u', self.INFO[3][2], self.INFO[3][3],
                                  'd'), (point.unit, point.groupby,
                                         point.metadata, point.description),
                                 name)
            self.assertEqual({BEGIN, END}, set(times), name)

    def test_edge_values(self):
        scale = money.SCALE
        self._check([0, 1, -1, scale, -scale, scale // 2, -scale // 2,
                     10 * scale, 1500000000000, 2 ** 63 - 1, -2 ** 63,
                     2 ** 63, -2 ** 63 - 1, 92232 * models.HUNDRED,
                     92233 * models.HUNDRED - 1, -92232 * models.HUNDRED,
                     -92233 * models.HUNDRED, 10 ** 32 - 1, -10 ** 32 + 1,
                     123456789012345678, -123456789012345678])

    def test_random_values(self):
        rng = random.Random(int(os.environ.get('CLOUDKITTY_TEST_SEED', 0)))
        self._check([rng.choice((1, -1)) * rng.randrange(
            10 ** rng.randrange(1, 33)) for _ in range(3000)])

    def test_rows_other_than_tuples(self):
        rows = [list(self._row(5, 7))]
        for name, rebuild in forms('rebuild'):
            (_, _, _, point), = rebuild(rows, self.INFO, {}, from_micros,
                                        dataframe.DataPoint)
            self.assertEqual((money.from_units(5), money.from_units(7)),
                             (point.qty, point.price), name)

    def test_a_series_missing_raises(self):
        for name, rebuild in forms('rebuild'):
            self.assertRaises(KeyError, rebuild, [self._row(1, 1)], {}, {},
                              from_micros, dataframe.DataPoint)


class RebuildRunsTest(testtools.TestCase):
    """Runs of points of one frame and type, as rebuild() would group them.

    retrieve() takes them to DataFrames without a tuple per point.
    """

    INFO = {3: ('instance', 'u', dataframe.frozen_attributes({'id': 'a'}),
                dataframe.frozen_attributes({}, 'metadata'), None),
            4: ('instance', 'u', dataframe.frozen_attributes({'id': 'b'}),
                dataframe.frozen_attributes({}, 'metadata'), None),
            5: ('volume', 'GiB', dataframe.frozen_attributes({'id': 'c'}),
                dataframe.frozen_attributes({}, 'metadata'), 'd')}

    def _rows(self):
        later, other_end = BEGIN + 3600000000, END + 3600000000
        # NOTE: runs break at a new type, a new start and a new end alone;
        # an instance after a volume of the same frame is a new run.
        keys = [(3, BEGIN, END), (4, BEGIN, END), (5, BEGIN, END),
                (3, BEGIN, END), (3, BEGIN, other_end), (4, later, other_end),
                (5, later, other_end), (5, later, other_end)]
        return [key + models.split(n * money.SCALE // 7) +
                models.split(-n) for n, key in enumerate(keys)]

    def test_runs_group_rebuild(self):
        rows = self._rows()
        flat = fastpath.python_rebuild(rows, self.INFO, {}, from_micros,
                                       dataframe.DataPoint)
        for name, rebuild_runs in forms('rebuild_runs'):
            runs = rebuild_runs(rows, self.INFO, {}, from_micros,
                                dataframe.DataPoint)
            self.assertEqual([2, 1, 1, 1, 1, 2],
                             [len(run[3]) for run in runs], name)
            self.assertEqual(flat, [(start, end, type_, point)
                                    for start, end, type_, points in runs
                                    for point in points], name)
            for point in runs[0][3]:
                self.assertIs(dataframe.DataPoint, type(point), name)

    def test_empty(self):
        for name, rebuild_runs in forms('rebuild_runs'):
            self.assertEqual([], rebuild_runs([], self.INFO, {}, from_micros,
                                              dataframe.DataPoint), name)

    @testtools.skipUnless(fastpath.COMPILED, 'no compiled form')
    def test_compiled_points_are_not_walked_by_the_collector(self):
        rows = self._rows()
        for rebuild in (fastpath.rebuild, fastpath.rebuild_runs):
            made = rebuild(rows, self.INFO, {}, from_micros,
                           dataframe.DataPoint)
            points = [item[3] for item in made]
            if rebuild is fastpath.rebuild_runs:
                points = [point for run in points for point in run]
            self.assertEqual(len(rows), len(points))
            self.assertFalse(any(gc.is_tracked(p) for p in points))

    def test_build_retrieve_runs_as_build_retrieve(self):
        rows = self._rows()
        flat = fastpath.python_rebuild(rows, self.INFO, {}, from_micros,
                                       dataframe.DataPoint)
        runs = fastpath.rebuild_runs(rows, self.INFO, {}, from_micros,
                                     dataframe.DataPoint)

        def frames(answer):
            return [(frame.start, frame.end,
                     [(type_, point) for type_, point in frame.iterpoints()])
                    for frame in answer['dataframes']]

        self.assertEqual(frames(query.build_retrieve(8, flat)),
                         frames(query.build_retrieve_runs(8, runs)))


class DecimalOfUnitsTest(testtools.TestCase):
    """Both forms make the Decimal money.from_units() makes, digit for digit.

    Totals build their sums with it; units past 64 bits, and ints of
    other types, go to money.from_units() itself.
    """

    def _forms(self):
        result = [('python', money.from_units)]
        if fastpath.COMPILED:
            result.append(('compiled', fastpath.decimal_of_units))
        return result

    def _check(self, units):
        for name, make in self._forms():
            for value in units:
                made = make(value)
                self.assertIs(decimal.Decimal, type(made), name)
                self.assertEqual(money.from_units(value).as_tuple(),
                                 made.as_tuple(), '%s: %d' % (name, value))

    def test_edge_values(self):
        scale = money.SCALE
        self._check([0, 1, -1, scale, -scale, scale // 2, -scale // 2,
                     10 * scale, 10 * scale + 1, 2 ** 63 - 1, -2 ** 63,
                     2 ** 63, -2 ** 63 - 1, 10 ** 40, -10 ** 40 - 7, True,
                     123456789012345678, -123456789012345678])

    def test_random_values(self):
        rng = random.Random(int(os.environ.get('CLOUDKITTY_TEST_SEED', 0)))
        self._check([rng.choice((1, -1)) * rng.randrange(
            10 ** rng.randrange(1, 40)) for _ in range(3000)])

    def test_other_values_raise_as_money_does(self):
        for name, make in self._forms():
            self.assertRaises(TypeError, make, None)
            self.assertRaises((TypeError, ValueError), make, 'x')


class StatementRowsTest(testtools.TestCase):
    """Both forms number rows in push order and lay them out alike."""

    def _reference(self, points, first, per):
        rows = [(first + index,) + point
                for index, point in enumerate(points)]
        # NOTE: by series, then push order (a stable sort).
        rows.sort(key=lambda row: (row[1], row[0]))
        whole = len(rows) // per * per
        chunks = [tuple(value for row in rows[at:at + per] for value in row)
                  for at in range(0, whole, per)]
        return chunks, rows[whole:]

    def test_random_points(self):
        rng = random.Random(int(os.environ.get('CLOUDKITTY_TEST_SEED', 0)))
        for count in (0, 1, 5, 255, 256, 257, 1000):
            points = [(rng.randrange(40), BEGIN, END,
                       rng.randrange(-10 ** 18, 10 ** 18),
                       rng.randrange(10 ** 14), rng.randrange(-5, 5),
                       rng.randrange(10 ** 14)) for _ in range(count)]
            for per in (1, 3, 256):
                expected = self._reference(points, 17, per)
                for name, lay_out in forms('statement_rows'):
                    chunks, rest = lay_out(points, 17, per)
                    self.assertEqual(expected, (list(chunks), list(rest)),
                                     (name, count, per))

    def test_points_the_compiled_form_leaves_to_python(self):
        points = [(2 ** 70, BEGIN, END, 1, 2, 3, 4), (1, BEGIN, END, 1, 2,
                                                      3, 4)]
        for name, lay_out in forms('statement_rows'):
            self.assertEqual(self._reference(points, 5, 1),
                             tuple(map(list, lay_out(points, 5, 1))), name)
            # NOTE: a tuple of another length (not a point row).
            self.assertEqual(
                ([], [(5, 1, 2, 3)]),
                tuple(map(list, lay_out([(1, 2, 3)], 5, 2))), name)


class LabelGroupsTest(testtools.TestCase):
    """Both forms make the groups of a total by one label alike."""

    #: The storage's weights: the rollup's limbs and the points' pair.
    WEIGHTS = (10 ** 21, 10 ** 12, 10 ** 14, 1)

    def _reference(self, rows):
        w0, w1, w2, w3 = self.WEIGHTS
        groups = []
        for text, kind, count, *limbs in rows:
            if count:
                limbs = [int(limb) for limb in limbs]
                groups.append((
                    (query.decode_label(kind, text),), int(count),
                    sum(v * w for v, w in zip(limbs[:4], self.WEIGHTS)),
                    sum(v * w for v, w in zip(limbs[4:], self.WEIGHTS))))
        return groups

    def _check(self, rows):
        expected = self._reference(rows)
        for name, make in forms('label_groups'):
            got = make(rows, self.WEIGHTS, query.decode_label)
            self.assertEqual(expected, got, name)
            for mine, theirs in zip(got, expected):
                self.assertIs(type(theirs[0][0]), type(mine[0][0]), name)
                self.assertIs(int, type(mine[2]), name)

    def test_random_rows(self):
        rng = random.Random(int(os.environ.get('CLOUDKITTY_TEST_SEED', 0)))
        kinds = (('s', 'r1'), (None, 'r2'), ('', 'r3'), ('i', '42'),
                 ('f', '2.5'), ('b', 'True'), ('n', 'None'))
        rows = []
        for _ in range(3000):
            kind, text = rng.choice(kinds)
            limbs = [rng.choice((0, 1, -1)) * rng.randrange(
                2 ** rng.randrange(1, 63)) for _ in range(8)]
            rows.append((text, kind, rng.randrange(0, 4), *limbs))
        self._check(rows)

    def test_edges(self):
        """Sums past 64 bits and 128, limbs of other types, empty rows."""
        big = 2 ** 63 - 1
        self._check([
            ('a', 's', 1, big, big, big, big, -big - 1, -big - 1, 0, 0),
            ('b', 's', 2, 2 ** 64, 1, 0, 0, 0, 0, 0, 0),
            ('c', 's', 3, 2 ** 200, 0, 0, 0, 1, 0, 0, 0),
            ('d', 's', 1, decimal.Decimal(5), 0, 0, 7, 0, 0, 0, 3),
            ('e', 's', 0, 1, 2, 3, 4, 5, 6, 7, 8),
            ('f', 's', decimal.Decimal(2), 1, 0, 0, 0, 0, 0, 0, 0),
            ('', 's', 1, 0, 0, 0, 0, 0, 0, 0, 0),
            ('g', 's', 1, True, 0, 0, 0, 0, 0, 0, 0)])
        self._check([])

    def test_rows_of_other_shapes(self):
        """Rows the compiled form leaves to Python: same groups."""
        row = ('a', 's', 1, 1, 2, 3, 4, 5, 6, 7, 8)
        for name, make in forms('label_groups'):
            self.assertEqual(self._reference([row]),
                             make([list(row)], self.WEIGHTS,
                                  query.decode_label), name)
            self.assertEqual(self._reference([row]),
                             make(iter([row]), self.WEIGHTS,
                                  query.decode_label), name)
            self.assertRaises(ValueError, make, [('a', 's', 1)],
                              self.WEIGHTS, query.decode_label)
            self.assertRaises(ValueError, make, [('a', '?') + row[2:]],
                              self.WEIGHTS, query.decode_label)
