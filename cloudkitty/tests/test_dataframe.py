# Copyright 2024 CloudKitty contributors
#
#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.
"""Unit tests for :mod:`cloudkitty.dataframe`."""

import collections
import copy
import datetime
import decimal
import json
import operator
import pickle
import types

import testtools

from cloudkitty import dataframe

UTC = datetime.timezone.utc
D = decimal.Decimal


def make_point(**kwargs):
    """Build a valid DataPoint, overriding any field from ``kwargs``."""
    fields = {
        'unit': 'instance',
        'qty': 1,
        'price': D('0.5'),
        'groupby': {'project_id': 'p1'},
        'metadata': {'flavor': 'm1.small'},
    }
    fields.update(kwargs)
    return dataframe.DataPoint(**fields)


def make_frame(usage=None):
    """Build a one-hour DataFrame starting on 2024-01-01 UTC."""
    return dataframe.DataFrame(
        datetime.datetime(2024, 1, 1, tzinfo=UTC),
        datetime.datetime(2024, 1, 1, 1, tzinfo=UTC),
        usage=usage)


class ToDecimalTest(testtools.TestCase):

    def test_float_goes_through_str(self):
        """A float is converted from its str(), so 0.1 stays exact."""
        self.assertEqual('0.1', str(dataframe.to_decimal(0.1)))

    def test_int(self):
        """An int is converted exactly, however large."""
        self.assertEqual(D(10 ** 30), dataframe.to_decimal(10 ** 30))

    def test_str_is_stripped(self):
        """A str is parsed after stripping surrounding whitespace."""
        self.assertEqual(D('1.25'), dataframe.to_decimal(' 1.25\n'))

    def test_decimal_kept(self):
        """A Decimal is returned unchanged, precision included."""
        value = D('1.000')
        self.assertEqual('1.000', str(dataframe.to_decimal(value)))

    def test_bool_rejected(self):
        """A bool is a TypeError although bool subclasses int."""
        exc = self.assertRaises(TypeError, dataframe.to_decimal, True, 'qty')
        self.assertIn('qty', str(exc))

    def test_non_finite_rejected(self):
        """NaN, sNaN and infinities are ValueErrors naming the field."""
        for value in ('NaN', 'sNaN', 'Infinity', '-Infinity', float('nan'),
                      float('inf'), D('-Inf')):
            exc = self.assertRaises(ValueError, dataframe.to_decimal,
                                    value, 'price')
            self.assertIn('price', str(exc))


class ToUTCTest(testtools.TestCase):

    def test_naive_is_utc(self):
        """A naive datetime is taken as UTC and made aware."""
        result = dataframe.to_utc(datetime.datetime(2024, 1, 1, 12))
        self.assertEqual(datetime.datetime(2024, 1, 1, 12, tzinfo=UTC),
                         result)
        self.assertIs(UTC, result.tzinfo)

    def test_aware_is_converted(self):
        """An aware datetime is converted to UTC, not relabelled."""
        tz = datetime.timezone(datetime.timedelta(hours=2))
        result = dataframe.to_utc(datetime.datetime(2024, 1, 1, 12,
                                                    tzinfo=tz))
        self.assertEqual((2024, 1, 1, 10), (result.year, result.month,
                                            result.day, result.hour))
        self.assertIs(UTC, result.tzinfo)

    def test_date_rejected(self):
        """A date that is not a datetime is a TypeError."""
        self.assertRaises(TypeError, dataframe.to_utc,
                          datetime.date(2024, 1, 1))

    def test_string_rejected(self):
        """A string is a TypeError: to_utc does not parse."""
        self.assertRaises(TypeError, dataframe.to_utc, '2024-01-01')


class DataPointConversionTest(testtools.TestCase):

    def test_field_order(self):
        """Fields are unit, qty, price, groupby, metadata, description."""
        self.assertEqual(
            ('unit', 'qty', 'price', 'groupby', 'metadata', 'description'),
            dataframe.DataPoint._fields)

    def test_positional_and_default_description(self):
        """Positional arguments work and description defaults to None."""
        point = dataframe.DataPoint('GiB', 2, 3, {}, {})
        self.assertEqual(('GiB', D(2), D(3)), tuple(point[:3]))
        self.assertIsNone(point.description)

    def test_float_qty_and_price(self):
        """Float qty and price become the Decimal of their str()."""
        point = make_point(qty=0.1, price=0.2)
        self.assertEqual(('0.1', '0.2'), (str(point.qty), str(point.price)))
        self.assertIsInstance(point.qty, D)

    def test_int_qty_and_price(self):
        """Int qty and price become Decimals."""
        point = make_point(qty=3, price=-2)
        self.assertEqual((D(3), D(-2)), (point.qty, point.price))
        self.assertIsInstance(point.price, D)

    def test_str_qty_and_price(self):
        """Str qty and price are parsed, whitespace stripped."""
        point = make_point(qty=' 1E-12 ', price='42.000')
        self.assertEqual('1E-12', str(point.qty))
        self.assertEqual('42.000', str(point.price))

    def test_empty_unit_and_mappings(self):
        """An empty unit is allowed and None mappings become empty."""
        point = make_point(unit='', groupby=None, metadata=None)
        self.assertEqual('', point.unit)
        self.assertEqual({}, dict(point.groupby))
        self.assertEqual({}, dict(point.metadata))

    def test_any_mapping_accepted(self):
        """Any Mapping is accepted for groupby and metadata."""
        point = make_point(
            groupby=types.MappingProxyType({'a': 'b'}),
            metadata=collections.OrderedDict([('c', 'd')]))
        self.assertEqual({'a': 'b'}, dict(point.groupby))
        self.assertEqual({'c': 'd'}, dict(point.metadata))

    def test_mappings_are_copied(self):
        """Changing the caller's dict afterwards does not change the point."""
        groupby = {'project_id': 'p1'}
        point = make_point(groupby=groupby)
        groupby['project_id'] = 'p2'
        self.assertEqual('p1', point.groupby['project_id'])

    def test_repr(self):
        """repr shows every field with plain dicts."""
        text = repr(make_point(description='x'))
        self.assertEqual(
            "DataPoint(unit='instance', qty=Decimal('1'), "
            "price=Decimal('0.5'), groupby={'project_id': 'p1'}, "
            "metadata={'flavor': 'm1.small'}, description='x')", text)


class DataPointImmutabilityTest(testtools.TestCase):

    def test_attributes_cannot_be_set(self):
        """Assigning a field or a new attribute raises AttributeError."""
        point = make_point()
        self.assertRaises(AttributeError, setattr, point, 'qty', D(2))
        self.assertRaises(AttributeError, setattr, point, 'other', 1)

    def test_groupby_and_metadata_read_only(self):
        """Item assignment on groupby or metadata raises TypeError."""
        point = make_point()
        self.assertIsInstance(point.groupby, types.MappingProxyType)
        self.assertRaises(TypeError, operator.setitem, point.groupby,
                          'a', 'b')
        self.assertRaises(TypeError, operator.setitem, point.metadata,
                          'a', 'b')

    def test_replace_validates(self):
        """_replace() goes through validation like the constructor."""
        point = make_point()
        self.assertEqual(D('0.1'), point._replace(qty=0.1).qty)
        self.assertRaises(ValueError, point._replace, qty='bad')

    def test_hashable_and_equal(self):
        """Equal points are equal and hash the same."""
        first, second = make_point(qty='1.0'), make_point(qty=1)
        self.assertEqual(first, second)
        self.assertEqual(hash(first), hash(second))
        self.assertEqual(1, len({first, second}))

    def test_pickle_and_deepcopy(self):
        """A point survives pickling and deepcopy unchanged."""
        point = make_point(description='d')
        self.assertEqual(point, pickle.loads(pickle.dumps(point)))
        clone = copy.deepcopy(point)
        self.assertEqual(point, clone)
        self.assertIsInstance(clone.groupby, types.MappingProxyType)


class DataPointValidationTest(testtools.TestCase):

    def assertRaisesNaming(self, exc_class, words, **kwargs):
        """Assert make_point(**kwargs) raises naming every word."""
        exc = self.assertRaises(exc_class, make_point, **kwargs)
        for word in words:
            self.assertIn(word, str(exc))
        return exc

    def test_unit_not_str(self):
        """A non-str unit is a TypeError naming 'unit'."""
        self.assertRaisesNaming(TypeError, ['unit'], unit=1)
        self.assertRaisesNaming(TypeError, ['unit'], unit=None)

    def test_unparsable_numbers(self):
        """Unparsable qty or price is a ValueError naming field and value."""
        self.assertRaisesNaming(ValueError, ['qty', 'abc'], qty='abc')
        self.assertRaisesNaming(ValueError, ['price', '1,5'], price='1,5')
        self.assertRaisesNaming(ValueError, ['qty', "''"], qty='')

    def test_non_finite_numbers(self):
        """NaN, sNaN and infinities are ValueErrors naming the field."""
        for value in ('nan', 'sNaN', 'inf', '-Infinity', float('-inf'),
                      D('NaN')):
            self.assertRaisesNaming(ValueError, ['qty'], qty=value)
            self.assertRaisesNaming(ValueError, ['price'], price=value)

    def test_bad_number_types(self):
        """None, bool and other types are TypeErrors naming the field."""
        for value in (None, True, False, [1], object(), b'1'):
            self.assertRaisesNaming(TypeError, ['qty'], qty=value)
            self.assertRaisesNaming(TypeError, ['price'], price=value)

    def test_mapping_not_a_mapping(self):
        """A non-Mapping groupby or metadata is a TypeError naming it."""
        self.assertRaisesNaming(TypeError, ['groupby'], groupby=[('a', 'b')])
        self.assertRaisesNaming(TypeError, ['metadata'], metadata='a=b')

    def test_mapping_key_not_str(self):
        """A non-str key is a TypeError naming the field and the key."""
        exc = self.assertRaisesNaming(TypeError, ['groupby'],
                                      groupby={1: 'a'})
        self.assertEqual('groupby key 1 is not a str', str(exc))

    def test_mapping_values_keep_their_type(self):
        """str, int, float, bool and None values are kept as they are."""
        values = {'s': '3', 'i': 3, 'f': 3.5, 't': True, 'n': None,
                  'big': 10 ** 30}
        point = make_point(groupby=values, metadata=values)
        for mapping in (point.groupby, point.metadata):
            self.assertEqual([(k, type(v), v) for k, v in values.items()],
                             [(k, type(v), v) for k, v in mapping.items()])

    def test_mapping_value_of_other_type(self):
        """Any other value is a TypeError naming the key, never str()-ed."""
        for value in ([1], {'a': 1}, b'1', object(), D(1)):
            self.assertRaisesNaming(TypeError, ["metadata['x']"],
                                    metadata={'x': value})
            self.assertRaisesNaming(TypeError, ["groupby['y']"],
                                    groupby={'y': value})

    def test_mapping_value_not_finite(self):
        """A NaN or infinite float is a ValueError naming the key."""
        for value in (float('nan'), float('inf'), float('-inf')):
            self.assertRaisesNaming(ValueError, ["groupby['y']"],
                                    groupby={'y': value})

    def test_description_not_str(self):
        """A non-str description is a TypeError naming 'description'."""
        self.assertRaisesNaming(TypeError, ['description'], description=5)


class DataPointOutputTest(testtools.TestCase):

    def test_desc_groupby_wins(self):
        """desc merges metadata and groupby, groupby winning on clashes."""
        point = make_point(groupby={'k': 'group', 'g': '1'},
                           metadata={'k': 'meta', 'm': '2'})
        desc = point.desc
        self.assertEqual({'k': 'group', 'g': '1', 'm': '2'}, desc)
        desc['k'] = 'changed'
        self.assertEqual('group', point.desc['k'])

    def test_as_dict_default_read_only(self):
        """as_dict() is a read-only mapping with read-only nested dicts."""
        result = make_point().as_dict()
        self.assertIsInstance(result, types.MappingProxyType)
        self.assertEqual(
            {'unit', 'qty', 'price', 'groupby', 'metadata', 'description'},
            set(result))
        self.assertIsNone(result['description'])
        self.assertRaises(TypeError, operator.setitem, result['groupby'],
                          'a', 'b')

    def test_as_dict_mutable(self):
        """as_dict(mutable=True) is made of plain dicts."""
        point = make_point(description='text')
        result = point.as_dict(mutable=True)
        self.assertEqual(
            {'unit': 'instance', 'qty': D(1), 'price': D('0.5'),
             'groupby': {'project_id': 'p1'},
             'metadata': {'flavor': 'm1.small'}, 'description': 'text'},
            result)
        self.assertIs(dict, type(result['groupby']))
        result['groupby']['project_id'] = 'other'
        self.assertEqual('p1', point.groupby['project_id'])

    def test_as_dict_legacy(self):
        """as_dict(legacy=True) has the vol/rating shape with plain dicts."""
        result = make_point().as_dict(legacy=True)
        self.assertIsInstance(result, types.MappingProxyType)
        self.assertEqual(
            {'vol': {'unit': 'instance', 'qty': D(1)},
             'rating': {'price': D('0.5')},
             'groupby': {'project_id': 'p1'},
             'metadata': {'flavor': 'm1.small'}},
            dict(result))
        self.assertIs(dict, type(result['groupby']))
        self.assertIs(dict, type(result['metadata']))
        self.assertIs(dict, type(make_point().as_dict(legacy=True,
                                                      mutable=True)))

    def test_json_decimals_as_strings(self):
        """json() writes Decimals as exact strings and sorts keys."""
        text = make_point(qty=0.1).json()
        self.assertEqual(
            '{"description": null, "groupby": {"project_id": "p1"}, '
            '"metadata": {"flavor": "m1.small"}, "price": "0.5", '
            '"qty": "0.1", "unit": "instance"}', text)

    def test_json_round_trip_extreme_decimals(self):
        """Huge, tiny and negative Decimals survive a JSON round trip."""
        for value in (D('999999999999999.999999999999'), D('1E-12'),
                      D('-0.000000000000000000000001'), D('-12345.6789'),
                      D('1E+30'), D('0.00')):
            point = make_point(qty=value, price=-value)
            back = dataframe.DataPoint.from_dict(json.loads(point.json()))
            self.assertEqual(str(value), str(back.qty))
            self.assertEqual(str(-value), str(back.price))
            self.assertEqual(point, back)

    def test_json_round_trip_unicode_and_quotes(self):
        """Unicode, quotes and backslashes survive a JSON round trip."""
        point = make_point(
            unit='m³',
            groupby={'projet "é"': "l'été\\"},
            metadata={'名前': '値\n"quoted"'},
            description='\u2603 "snow"')
        for legacy in (False, True):
            back = dataframe.DataPoint.from_dict(
                json.loads(point.json(legacy=legacy)), legacy=legacy)
            expected = point if not legacy else point._replace(
                description=None)
            self.assertEqual(expected, back)

    def test_from_dict_round_trip(self):
        """from_dict(as_dict()) gives back an equal point in both modes."""
        point = make_point(description='d')
        self.assertEqual(point,
                         dataframe.DataPoint.from_dict(point.as_dict()))
        legacy = dataframe.DataPoint.from_dict(
            point.as_dict(legacy=True), legacy=True)
        self.assertEqual(point._replace(description=None), legacy)

    def test_from_dict_description_optional(self):
        """from_dict() without 'description' gives description None."""
        data = {'unit': 'u', 'qty': '1', 'price': 2, 'groupby': {},
                'metadata': {}}
        self.assertIsNone(dataframe.DataPoint.from_dict(data).description)

    def test_from_dict_missing_key(self):
        """A missing key is a ValueError naming the key."""
        full = make_point().as_dict(mutable=True)
        for key in ('unit', 'qty', 'price', 'groupby', 'metadata'):
            data = dict(full)
            del data[key]
            exc = self.assertRaises(ValueError,
                                    dataframe.DataPoint.from_dict, data)
            self.assertIn(repr(key), str(exc))

    def test_from_dict_legacy_missing_key(self):
        """A missing legacy key is a ValueError naming its path."""
        full = make_point().as_dict(legacy=True, mutable=True)
        del full['vol']['qty']
        exc = self.assertRaises(ValueError, dataframe.DataPoint.from_dict,
                                full, legacy=True)
        self.assertIn('vol.qty', str(exc))

    def test_from_dict_validates(self):
        """from_dict() validates values like the constructor does."""
        data = make_point().as_dict(mutable=True)
        data['price'] = 'NaN'
        exc = self.assertRaises(ValueError, dataframe.DataPoint.from_dict,
                                data)
        self.assertIn('price', str(exc))
        self.assertRaises(TypeError, dataframe.DataPoint.from_dict, [1])
        legacy = make_point().as_dict(legacy=True, mutable=True)
        legacy['vol'] = 'x'
        exc = self.assertRaises(TypeError, dataframe.DataPoint.from_dict,
                                legacy, legacy=True)
        self.assertIn('vol', str(exc))


class DataFrameTest(testtools.TestCase):

    def test_naive_datetimes_are_utc(self):
        """Naive start and end are stored as aware UTC."""
        frame = dataframe.DataFrame(datetime.datetime(2024, 1, 1),
                                    datetime.datetime(2024, 1, 2))
        self.assertIs(UTC, frame.start.tzinfo)
        self.assertIs(UTC, frame.end.tzinfo)
        self.assertEqual(datetime.datetime(2024, 1, 1, tzinfo=UTC),
                         frame.start)

    def test_aware_datetimes_converted(self):
        """Aware non-UTC start and end are converted to UTC."""
        tz = datetime.timezone(datetime.timedelta(hours=-5))
        frame = dataframe.DataFrame(
            datetime.datetime(2024, 1, 1, 19, tzinfo=tz),
            datetime.datetime(2024, 1, 1, 20, tzinfo=tz))
        self.assertEqual(datetime.datetime(2024, 1, 2, 0, tzinfo=UTC),
                         frame.start)
        self.assertIs(UTC, frame.end.tzinfo)

    def test_start_end_read_only(self):
        """start and end cannot be reassigned; no new attributes either."""
        frame = make_frame()
        self.assertRaises(AttributeError, setattr, frame, 'start',
                          datetime.datetime(2020, 1, 1))
        self.assertRaises(AttributeError, setattr, frame, 'other', 1)

    def test_bad_datetime_types(self):
        """A non-datetime start or end is a TypeError naming it."""
        end = datetime.datetime(2024, 1, 2)
        exc = self.assertRaises(TypeError, dataframe.DataFrame,
                                datetime.date(2024, 1, 1), end)
        self.assertIn('start', str(exc))
        exc = self.assertRaises(TypeError, dataframe.DataFrame,
                                datetime.datetime(2024, 1, 1), '2024-01-02')
        self.assertIn('end', str(exc))

    def test_end_not_after_start(self):
        """end <= start is a ValueError naming both, across timezones."""
        start = datetime.datetime(2024, 1, 1, 12)
        for end in (start, start - datetime.timedelta(seconds=1),
                    datetime.datetime(
                        2024, 1, 1, 13,
                        tzinfo=datetime.timezone(datetime.timedelta(
                            hours=1)))):
            exc = self.assertRaises(ValueError, dataframe.DataFrame,
                                    start, end)
            self.assertIn('start', str(exc))
            self.assertIn('end', str(exc))

    def test_usage_validation(self):
        """Bad usage types and items raise errors naming the problem."""
        self.assertRaises(TypeError, make_frame, [('cpu', [])])
        exc = self.assertRaises(TypeError, make_frame, {1: []})
        self.assertIn('metric type', str(exc))
        self.assertRaises(ValueError, make_frame, {'': [make_point()]})
        exc = self.assertRaises(TypeError, make_frame, {'cpu': 3})
        self.assertIn('cpu', str(exc))
        exc = self.assertRaises(TypeError, make_frame,
                                {'cpu': [make_point(), {'qty': 1}]})
        self.assertIn("'cpu'", str(exc))
        exc = self.assertRaises(TypeError, make_frame,
                                {'cpu': make_point()})
        self.assertIn('single DataPoint', str(exc))

    def test_usage_is_copied(self):
        """The usage passed in is copied, not referenced."""
        points = [make_point()]
        frame = make_frame({'cpu': points})
        points.append(make_point(qty=2))
        self.assertEqual(1, len(frame))

    def test_usage_accepts_any_iterable(self):
        """Usage values may be any iterable, such as a generator."""
        frame = make_frame({'cpu': (make_point(qty=i) for i in range(3))})
        self.assertEqual(3, len(frame))

    def test_add_point(self):
        """add_point appends and checks both arguments."""
        frame = make_frame()
        frame.add_point(make_point(), 'cpu')
        self.assertEqual(1, len(frame))
        exc = self.assertRaises(TypeError, frame.add_point, {'qty': 1}, 'cpu')
        self.assertIn('DataPoint', str(exc))
        self.assertRaises(TypeError, frame.add_point, make_point(), None)
        self.assertRaises(ValueError, frame.add_point, make_point(), '')
        self.assertEqual(1, len(frame))

    def test_add_points_all_or_nothing(self):
        """add_points adds nothing when any point is invalid."""
        frame = make_frame({'cpu': [make_point()]})
        self.assertRaises(TypeError, frame.add_points,
                          [make_point(qty=2), 'bad', make_point(qty=3)],
                          'cpu')
        self.assertRaises(TypeError, frame.add_points,
                          [make_point(qty=2)], 7)
        self.assertRaises(TypeError, frame.add_points, 42, 'cpu')
        self.assertEqual([('cpu', make_point())], list(frame.iterpoints()))

    def test_iterpoints_order(self):
        """iterpoints yields types, then points, in insertion order."""
        frame = make_frame({'ram': [make_point(qty=1)]})
        frame.add_points([make_point(qty=2), make_point(qty=3)], 'cpu')
        frame.add_point(make_point(qty=4), 'ram')
        frame.add_point(make_point(qty=5), 'cpu')
        self.assertEqual(
            [('ram', D(1)), ('ram', D(4)), ('cpu', D(2)), ('cpu', D(3)),
             ('cpu', D(5))],
            [(type_, point.qty) for type_, point in frame.iterpoints()])

    def test_itertypes_returns_copies(self):
        """itertypes yields (type, list) and the lists are copies."""
        frame = make_frame({'cpu': [make_point()], 'ram': []})
        result = list(frame.itertypes())
        self.assertEqual([('cpu', [make_point()])], result)
        result[0][1].append(make_point(qty=9))
        self.assertEqual(1, len(frame))

    def test_equality(self):
        """Frames are equal on period and per-type ordered points."""
        one, two = make_point(qty=1), make_point(qty=2)
        self.assertEqual(make_frame({'a': [one], 'b': [two]}),
                         make_frame({'b': [two], 'a': [one]}))
        self.assertNotEqual(make_frame({'a': [one, two]}),
                            make_frame({'a': [two, one]}))
        other = dataframe.DataFrame(datetime.datetime(2024, 1, 1),
                                    datetime.datetime(2024, 1, 1, 2))
        self.assertNotEqual(make_frame(), other)
        self.assertEqual(make_frame(), make_frame({'a': []}))
        self.assertNotEqual(make_frame(), 'frame')

    def test_not_hashable(self):
        """Frames are mutable and therefore unhashable."""
        self.assertRaises(TypeError, hash, make_frame())

    def test_repr(self):
        """repr shows the period and the point counts per type."""
        frame = make_frame({'cpu': [make_point(), make_point()]})
        self.assertEqual(
            "DataFrame(start=2024-01-01T00:00:00+00:00, "
            "end=2024-01-01T01:00:00+00:00, points={'cpu': 2})",
            repr(frame))

    def test_pickle(self):
        """A frame survives pickling."""
        frame = make_frame({'cpu': [make_point()]})
        self.assertEqual(frame, pickle.loads(pickle.dumps(frame)))


class DataFrameSerialisationTest(testtools.TestCase):

    def test_as_dict_read_only(self):
        """as_dict() is read-only at every level and keeps datetimes."""
        frame = make_frame({'cpu': [make_point()]})
        result = frame.as_dict()
        self.assertIsInstance(result, types.MappingProxyType)
        self.assertEqual(frame.start, result['period']['begin'])
        self.assertRaises(TypeError, operator.setitem, result['usage'],
                          'x', [])
        self.assertIsInstance(result['usage']['cpu'], tuple)
        self.assertRaises(TypeError, operator.setitem,
                          result['usage']['cpu'][0], 'qty', 1)

    def test_as_dict_mutable(self):
        """as_dict(mutable=True) is plain dicts and lists."""
        frame = make_frame({'cpu': [make_point()]})
        self.assertEqual(
            {'period': {'begin': frame.start, 'end': frame.end},
             'usage': {'cpu': [make_point().as_dict(mutable=True)]}},
            frame.as_dict(mutable=True))

    def test_as_dict_legacy_points(self):
        """as_dict(legacy=True) uses the legacy format for points."""
        frame = make_frame({'cpu': [make_point()]})
        point = frame.as_dict(legacy=True, mutable=True)['usage']['cpu'][0]
        self.assertEqual({'vol', 'rating', 'groupby', 'metadata'},
                         set(point))

    def test_json(self):
        """json() writes ISO 8601 datetimes and Decimals as strings."""
        frame = make_frame({'cpu': [make_point(qty=0.1)]})
        data = json.loads(frame.json())
        self.assertEqual({'begin': '2024-01-01T00:00:00+00:00',
                          'end': '2024-01-01T01:00:00+00:00'},
                         data['period'])
        self.assertEqual('0.1', data['usage']['cpu'][0]['qty'])
        self.assertEqual(list(data), sorted(data))

    def test_json_round_trip(self):
        """from_dict(json.loads(json())) gives back an equal frame."""
        frame = make_frame({
            'cpu': [make_point(qty=D('999999999999999.999999999999')),
                    make_point(price=D('-1E-12'), description='é "q"')],
            'ram': [make_point(unit='GiB', metadata={'ключ': 'значение'})],
        })
        back = dataframe.DataFrame.from_dict(json.loads(frame.json()))
        self.assertEqual(frame, back)
        self.assertEqual(frame.json(), back.json())

    def test_legacy_round_trip(self):
        """A legacy round trip keeps everything but descriptions."""
        frame = make_frame({'cpu': [make_point(qty='1.50')]})
        back = dataframe.DataFrame.from_dict(
            json.loads(frame.json(legacy=True)), legacy=True)
        self.assertEqual(frame, back)

    def test_from_dict_accepts_datetimes_and_z(self):
        """from_dict() accepts datetime objects and a trailing 'Z'."""
        data = {'period': {'begin': datetime.datetime(2024, 1, 1),
                           'end': '2024-01-01T01:00:00Z'},
                'usage': {}}
        frame = dataframe.DataFrame.from_dict(data)
        self.assertEqual(make_frame(), frame)
        self.assertIs(UTC, frame.end.tzinfo)

    def test_from_dict_missing_keys(self):
        """A missing key is a ValueError naming its path."""
        good = make_frame().as_dict(mutable=True)
        for path, data in (
                ('period', {'usage': {}}),
                ('usage', {'period': good['period']}),
                ('period.begin', {'period': {'end': good['period']['end']},
                                  'usage': {}}),
                ('period.end', {'period': {'begin': good['period']['begin']},
                                'usage': {}})):
            exc = self.assertRaises(ValueError,
                                    dataframe.DataFrame.from_dict, data)
            self.assertIn(path, str(exc))

    def test_from_dict_bad_period(self):
        """A bad begin or end names period.begin or period.end."""
        exc = self.assertRaises(
            ValueError, dataframe.DataFrame.from_dict,
            {'period': {'begin': 'yesterday', 'end': '2024-01-01'},
             'usage': {}})
        self.assertIn('period.begin', str(exc))
        exc = self.assertRaises(
            TypeError, dataframe.DataFrame.from_dict,
            {'period': {'begin': '2024-01-01', 'end': 1704067200},
             'usage': {}})
        self.assertIn('period.end', str(exc))
        self.assertRaises(
            ValueError, dataframe.DataFrame.from_dict,
            {'period': {'begin': '2024-01-02', 'end': '2024-01-01'},
             'usage': {}})

    def test_from_dict_bad_usage(self):
        """Bad usage content raises errors naming the type and index."""
        period = {'begin': '2024-01-01', 'end': '2024-01-02'}
        self.assertRaises(TypeError, dataframe.DataFrame.from_dict,
                          {'period': period, 'usage': []})
        exc = self.assertRaises(TypeError, dataframe.DataFrame.from_dict,
                                {'period': period, 'usage': {'cpu': 'x'}})
        self.assertIn("usage['cpu']", str(exc))
        point = make_point().as_dict(mutable=True)
        point['qty'] = 'lots'
        exc = self.assertRaises(ValueError, dataframe.DataFrame.from_dict,
                                {'period': period, 'usage': {'cpu': [point]}})
        self.assertIn("usage['cpu'][0]", str(exc))
        self.assertIn('qty', str(exc))
        self.assertRaises(TypeError, dataframe.DataFrame.from_dict, None)
