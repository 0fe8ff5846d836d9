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
"""The InfluxDB encoding: line protocol, tags and money limbs (no server)."""

import decimal
import re

import testtools

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.influxdb import encoding
from cloudkitty.storage.v2.influxdb import slots
from cloudkitty.storage.v2 import money
from cloudkitty.tests import fixtures as builders

D = decimal.Decimal
TRICKY = builders.TRICKY_VALUES + builders.LONG_VALUES + (
    '', ' ', 'a,b=c d', 'line\nbreak', 'back\\', '"', "'", '%41', '.',
    '\u00e9\u4e2d\U0001f600')
#: What a tag value or key may hold: no line-protocol escape is needed.
_SAFE = re.compile(r'\A[A-Za-z0-9_.%]+\Z')


def point(**kwargs):
    values = {'unit': 'u', 'qty': 1, 'price': 1, 'groupby': None,
              'metadata': None}
    values.update(kwargs)
    return dataframe.DataPoint(**values)


def row_of(encoded, slot=0):
    """Parse our own line protocol back into a SELECT * row."""
    line = encoding.point_line(encoded, slot)
    head, rest = line.split(' ', 1)
    fields, stamp = rest.rsplit(' ', 1)
    row = {'time': int(stamp)}
    for pair in head.split(',')[1:]:
        key, value = pair.split('=')
        row[key] = value
    for pair in re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|-?\d+i)', fields):
        key, value = pair
        if value.endswith('i'):
            row[key] = int(value[:-1])
        else:
            row[key] = value[1:-1].replace('\\"', '"').replace('\\\\', '\\')
    return row


class ValueEncodingTest(testtools.TestCase):

    def test_round_trip_and_safe(self):
        """Every value comes back, and never needs escaping."""
        for value in TRICKY:
            tag = encoding.encode_value(value)
            self.assertRegex(tag, _SAFE)
            self.assertEqual(value, encoding.decode_value(tag))

    def test_keys_are_safe_identifiers(self):
        """A tag key is k_ and safe characters; distinct keys differ."""
        keys = {encoding.key_tag(value) for value in TRICKY if value}
        self.assertEqual(len({v for v in TRICKY if v}), len(keys))
        for key in keys:
            self.assertTrue(key.startswith('k_'))
            self.assertRegex(key, _SAFE)
        self.assertEqual('ck_type', encoding.tag_key_of('type'))

    def test_absent_tag_is_none(self):
        """An empty tag (absent) is None; the empty string is '.'."""
        self.assertIsNone(encoding.decode_value(''))
        self.assertIsNone(encoding.decode_value(None))
        self.assertEqual('.', encoding.encode_value(''))

    def test_injection_is_an_identifier(self):
        """quote_identifier keeps any name one identifier."""
        self.assertEqual('"a\\"b\\\\"', encoding.quote_identifier('a"b\\'))


class TypedLabelTest(testtools.TestCase):
    """Groupby/metadata values that are not str keep their type."""

    VALUES = ('3', 3, 3.0, -0.0, 0.0, True, 1, 1.0, None, 'None', 10 ** 30,
              -2.5e-300)

    def test_round_trip_and_safe(self):
        """A label tag gives its value back, typed; kinds differ."""
        tags = set()
        for value in self.VALUES:
            tag = encoding.encode_label(value)
            self.assertRegex(tag, _SAFE)
            back = encoding.decode_label(tag)
            self.assertEqual((type(value), repr(value)),
                             (type(back), repr(back)))
            tags.add(tag)
        self.assertEqual(len(self.VALUES), len(tags))
        self.assertEqual('.3', encoding.encode_label('3'))
        self.assertEqual('i3', encoding.encode_label(3))

    def test_filter_tags(self):
        """A filter value asks for every kind spelled that way."""
        self.assertEqual(['.3', 'i3'], encoding.filter_tags('3'))
        self.assertEqual(['.None', 'nNone'], encoding.filter_tags('None'))
        self.assertEqual(['.3%2E0', 'f3%2E0'], encoding.filter_tags('3.0'))
        self.assertEqual(['.x'], encoding.filter_tags('x'))
        self.assertEqual('', encoding.group_value(None))

    def test_equal_values_of_other_types_are_other_series(self):
        """1, 1.0 and True (equal in Python) encode to other series."""
        identities = set()
        for value in (1, 1.0, True, 1, '1'):
            encoded = encoding.encode_point(0, 1, None, 'cpu', point(
                groupby={'k': value}, metadata={'m': value}))
            row = row_of(encoded)
            _, decoded = encoding.decode_row(row)
            self.assertIs(type(value), type(decoded.groupby['k']))
            self.assertIs(type(value), type(decoded.metadata['m']))
            identities.add(encoded[encoding.IDENTITY])
        self.assertEqual(4, len(identities))

    def test_hidden_metadata_keeps_its_type(self):
        """A metadata value hidden by a groupby key keeps its type."""
        encoded = encoding.encode_point(0, 1, None, 'cpu', point(
            groupby={'k': 'g'}, metadata={'k': 2.5}))
        _, decoded = encoding.decode_row(row_of(encoded))
        self.assertEqual(2.5, decoded.metadata['k'])
        self.assertIs(float, type(decoded.metadata['k']))


class SeriesReaderTest(testtools.TestCase):
    """Rows are decoded by series: labels once, money per row."""

    def rows(self, *points):
        return [row_of(encoding.encode_point(0, 1, None, 'cpu', p), slot)
                for slot, p in enumerate(points)]

    def test_points_of_a_series_share_their_labels(self):
        """Two rows of one series: one Series, equal labels, own money."""
        rows = self.rows(point(qty='1.5', groupby={'id': 'a'},
                               metadata={'m': 3, 'n': None}),
                         point(qty='2', price='0.000000000001',
                               groupby={'id': 'a'},
                               metadata={'m': 3, 'n': None}))
        read = encoding.SeriesReader(encoding.tag_columns(rows[0]))
        first, second = (read(row) for row in rows)
        self.assertIs(first, second)
        one, two = (first.point(row) for row in rows)
        self.assertEqual((D('1.5'), D('1')), (one.qty, one.price))
        self.assertEqual((D('2'), D('1E-12')), (two.qty, two.price))
        self.assertIs(one.groupby, two.groupby)
        self.assertEqual(point(qty='1.5', groupby={'id': 'a'},
                               metadata={'m': 3, 'n': None}), one)
        self.assertEqual('cpu', first.type)

    def test_other_series_and_hidden_metadata(self):
        """Another label is another Series; hidden metadata is the row's."""
        rows = self.rows(point(groupby={'id': 'a'}),
                         point(groupby={'id': 'b'}),
                         point(groupby={'id': 'a'}, metadata={'id': 7}),
                         point(groupby={'id': 'a'}, description='d'))
        read = encoding.SeriesReader(encoding.tag_columns(
            set().union(*rows)))
        series = [read(row) for row in rows]
        self.assertIsNot(series[0], series[1])
        self.assertIs(series[0], series[2])
        self.assertEqual({}, dict(series[0].point(rows[0]).metadata))
        hidden = series[2].point(rows[2])
        self.assertEqual({'id': 7}, dict(hidden.metadata))
        self.assertEqual({'id': 'a'}, dict(hidden.groupby))
        self.assertEqual('d', series[3].point(rows[3]).description)
        self.assertIsNone(series[0].point(rows[0]).description)
        self.assertLess(series[0].order, series[1].order)


def joined(limbs):
    """The qty units of limbs (or sums of limbs), as readers add them."""
    return encoding.money_units(dict(zip(('qa', 'qb', 'qc'), limbs)))[0]


class LimbTest(testtools.TestCase):

    def test_split_join(self):
        """Limbs give back the units, small, big and negative."""
        top = encoding.MAX_MAGNITUDE * money.SCALE - 1
        for units in (0, 1, -1, 2 ** 31, -2 ** 31, 2 ** 62 - 1, -2 ** 62,
                      2 ** 62, -2 ** 62 - 1, top, -top):
            limbs = encoding.split_units(units)
            self.assertEqual(units, joined(limbs))
            self.assertTrue(0 <= limbs[0] < 2 ** 31)
            self.assertTrue(all(abs(limb) <= 2 ** 31 for limb in limbs))

    def test_sums_of_limbs_are_exact(self):
        """Summing limbs field by field sums the values exactly."""
        values = [units for units in (2 ** 70 + 3, -5, 2 ** 61, -2 ** 63,
                                      10 ** 26, 123456789)]
        sums = [0, 0, 0]
        for units in values:
            for index, limb in enumerate(encoding.split_units(units)):
                sums[index] += limb
        self.assertEqual(sum(values), joined(sums))

    def test_short_fields_or_limbs(self):
        """Six fractional digits and below 2**31 millionths: one field.

        Any mix of both layouts sums field by field to the exact total,
        and every point has exactly one of the counted fields.
        """
        bound = 2 ** 31 * 10 ** 6
        cases = {0: True, 10 ** 6: True, -10 ** 6: True,
                 bound - 10 ** 6: True, -bound + 10 ** 6: True,
                 bound: False, -bound: False, 1: False, 10 ** 6 + 1: False,
                 -10 ** 6 - 1: False, 2 ** 70: False, -2 ** 70: False}
        sums = {}
        for units, short in cases.items():
            fields = dict(
                (name, int(value[:-1])) for name, value in (
                    pair.split('=') for pair in encoding.money_fields(
                        units, 'p').split(',')))
            self.assertEqual(short, set(fields) == {'p'}, units)
            self.assertEqual((0, units), encoding.money_units(fields))
            self.assertTrue(all(abs(value) <= 2 ** 31
                                for value in fields.values()), units)
            for name, value in fields.items():
                sums[name] = sums.get(name, 0) + value
            qty = dict((name.replace('p', 'q'), value)
                       for name, value in fields.items())
            self.assertEqual(1, len(set(qty) & set(encoding.COUNTED)))
        self.assertEqual((0, sum(cases)), encoding.money_units(sums))


class PointEncodingTest(testtools.TestCase):

    def test_round_trip(self):
        """A point comes back from its line, labels and money exact."""
        for value in TRICKY:
            original = point(unit=value, qty=D('-123456789012.000000000001'),
                             price=D('999999999999999.999999999999'),
                             groupby={value: value, 'g': 'x'},
                             metadata={value: 'hidden', 'm': value},
                             description=value)
            encoded = encoding.encode_point(10 ** 18, 3600 * 10 ** 6,
                                            '.s', value, original)
            type_, back = encoding.decode_row(row_of(encoded))
            self.assertEqual(value, type_)
            self.assertEqual(original, back)

    def test_usual_point_has_two_fields(self):
        """An hour's point of few digits: q and p, and nothing else."""
        row = row_of(encoding.encode_point(10 ** 18, 3600 * 10 ** 6, None,
                                           't', point(qty=D('999.999'),
                                                      price=D('-0.0001'))))
        self.assertEqual({'q': 999999000, 'p': -100}, {
            key: value for key, value in row.items()
            if key != 'time' and not encoding.is_tag(key)})
        self.assertEqual((D('999.999'), D('-0.0001')), (
            encoding.decode_row(row)[1].qty,
            encoding.decode_row(row)[1].price))

    def test_frame_length_of_an_hour_is_no_field(self):
        """ck_len is left out for an hour, the default, and read back."""
        for length, field in ((3600 * 10 ** 6, None),
                              (300 * 10 ** 6, 300 * 10 ** 6), (1, 1)):
            for slot in (0, 1001):
                for qty in (1, D('999999999999999')):
                    row = row_of(encoding.encode_point(
                        10 ** 18, length, None, 't', point(
                            qty=qty, description='d')), slot)
                    self.assertEqual(field, row.get('ck_len'))
                    self.assertEqual(length, encoding.frame_length(row))
                    self.assertEqual(qty, encoding.decode_row(row)[1].qty)
        # NOTE: points written before ck_len could be left out have it.
        self.assertEqual(3600 * 10 ** 6, encoding.frame_length(
            {'ck_len': 3600 * 10 ** 6}))

    def test_slots(self):
        """Slots past 1000 add the ck_n tag; times stay in the frame µs."""
        encoded = encoding.encode_point(10 ** 18, 1, None, 't', point())
        self.assertTrue(encoding.point_line(encoded, 999).endswith(
            ' %d' % (10 ** 18 + 999)))
        line = encoding.point_line(encoded, 2001)
        self.assertIn(',ck_n=2 ', line)
        self.assertTrue(line.endswith(' %d' % (10 ** 18 + 1)))

    def test_bad_text_and_money(self):
        """NUL, surrogates and out-of-range money are InvalidQuery."""
        for bad in ({'unit': 'a\x00'}, {'groupby': {'k': '\udc80'}},
                    {'qty': D('1e15')}, {'price': D('-1e15')}):
            self.assertRaises(exceptions.InvalidQuery, encoding.encode_point,
                              0, 1, None, 't', point(**bad))

    def test_plan_gives_each_duplicate_a_slot(self):
        """Identical points of a frame start get consecutive slots."""
        same = [encoding.encode_point(0, 1, None, 't', point(qty=q))
                for q in (3, 1, 2)]
        other = encoding.encode_point(1000, 1, None, 't', point())
        grouped = slots.plan(same + [other])
        self.assertEqual({0: 3, 1000: 1}, slots.needed(grouped))
        lines = slots.lines(grouped, {0: 5, 1000: 0})
        self.assertEqual(['5', '6', '7', '1000'],
                         [line.rsplit(' ', 1)[1] for line in lines])
