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
"""Unit tests for :mod:`cloudkitty.dataframe`.

Not named ``test_dataframe.py``: upstream CloudKitty ships its own tests of
its ``cloudkitty.dataframe`` under that name, and installing this library
over CloudKitty must not replace them (they pass against this module too).
"""

import collections
import copy
import datetime
import decimal
import enum
import json
import operator
import pickle
import re
import types

import hypothesis
from hypothesis import strategies as st
import testtools
from werkzeug import datastructures

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
        """An empty or None unit is 'undefined'; None or [] mappings empty.

        Upstream's orchestrator passes ``[]`` for a missing groupby.
        """
        for unit in ('', None):
            point = make_point(unit=unit, groupby=None, metadata=[])
            self.assertEqual('undefined', point.unit)
            self.assertEqual({}, dict(point.groupby))
            self.assertEqual({}, dict(point.metadata))

    def test_any_mapping_accepted(self):
        """Any Mapping, or a list of pairs, is accepted for the mappings."""
        point = make_point(
            groupby=types.MappingProxyType({'a': 'b'}),
            metadata=collections.OrderedDict([('c', 'd')]))
        self.assertEqual({'a': 'b'}, dict(point.groupby))
        self.assertEqual({'c': 'd'}, dict(point.metadata))
        point = make_point(groupby=[('a', 1)])
        self.assertEqual({'a': 1}, point.groupby)

    def test_frozen_attributes_are_shared(self):
        """A checked mapping is shared by the points built with it."""
        frozen = dataframe.frozen_attributes({'a': 1, 'b': 'x'})
        self.assertIsInstance(frozen, dataframe.FrozenAttributes)
        first = make_point(groupby=frozen, metadata=frozen)
        second = make_point(groupby=frozen)
        self.assertIs(frozen, first.groupby)
        self.assertIs(frozen, first.metadata)
        self.assertIs(frozen, second.groupby)
        self.assertRaises(TypeError, frozen.__setitem__, 'a', 2)
        # NOTE: a plain werkzeug ImmutableDict is not known to be checked.
        unchecked = datastructures.ImmutableDict({'a': 1})
        self.assertIsNot(unchecked, make_point(groupby=unchecked).groupby)
        self.assertRaises(TypeError, make_point,
                          groupby=datastructures.ImmutableDict({1: 'x'}))

    def test_scalar_values_kept_with_their_type(self):
        """str, int, float, bool and None values are kept as they are."""
        values = {'s': 'x', 'i': 2022, 'f': 0.5, 't': True, 'n': None,
                  'big': 10 ** 30, 'neg': -1.5e-300}
        point = make_point(groupby=values, metadata={'m': False})
        self.assertEqual(values, point.groupby)
        for key, value in values.items():
            self.assertIs(type(value), type(point.groupby[key]))
        self.assertIs(False, point.metadata['m'])
        self.assertIsInstance(point.groupby, dataframe.FrozenAttributes)
        self.assertIsInstance(point.groupby, dict)
        # NOTE: a dict subclass, so the stdlib encoder takes it as it is.
        self.assertEqual(values, json.loads(json.dumps(point.groupby)))

    def test_scalar_subclasses_become_plain(self):
        """Subclasses of str, int and float are stored as the plain type."""

        class Colour(enum.IntEnum):
            RED = 1

        class Name(str):
            def __str__(self):
                return 'changed'

        class Ratio(float):
            pass

        point = make_point(groupby={'c': Colour.RED, 'n': Name('x'),
                                    'r': Ratio(0.5)})
        self.assertEqual({'c': 1, 'n': 'x', 'r': 0.5}, point.groupby)
        self.assertEqual([int, str, float],
                         [type(point.groupby[key]) for key in 'cnr'])

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
        """groupby and metadata are frozen dicts: changes raise TypeError."""
        point = make_point()
        self.assertIsInstance(point.groupby, dataframe.FrozenAttributes)
        self.assertIsInstance(point.metadata, dataframe.FrozenAttributes)
        for mapping in (point.groupby, point.metadata):
            self.assertRaises(TypeError, operator.setitem, mapping, 'a', 'b')
            self.assertRaises(TypeError, mapping.update, {'a': 'b'})
            self.assertRaises(TypeError, mapping.pop, 'project_id', None)
            self.assertRaises(TypeError, mapping.clear)

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

    def test_hashable_with_scalar_values(self):
        """Points with non-str values hash and compare by value."""
        first = make_point(groupby={'year': 2022, 'ok': None, 'r': 0.5})
        second = make_point(groupby={'r': 0.5, 'ok': None, 'year': 2022})
        self.assertEqual(hash(first), hash(second))
        self.assertEqual(1, len({first, second}))
        self.assertNotEqual(first, make_point(groupby={'year': '2022'}))

    def test_pickle_and_deepcopy(self):
        """A point survives pickling and deepcopy unchanged."""
        point = make_point(description='d',
                           metadata={'i': 1, 'f': 0.5, 'n': None})
        self.assertEqual(point, pickle.loads(pickle.dumps(point)))
        clone = copy.deepcopy(point)
        self.assertEqual(point, clone)
        self.assertIsInstance(clone.groupby, dataframe.FrozenAttributes)
        self.assertIsInstance(pickle.loads(pickle.dumps(point)).metadata,
                              dataframe.FrozenAttributes)

    def test_set_price(self):
        """set_price() returns a new, validated point; the old one stays."""
        point = make_point(description='d')
        priced = point.set_price(0.1)
        self.assertIsInstance(priced, dataframe.DataPoint)
        self.assertEqual(D('0.1'), priced.price)
        self.assertEqual(D('0.5'), point.price)
        self.assertEqual(point._replace(price=D('0.1')), priced)
        self.assertEqual(D(42), point.set_price(42).price)
        self.assertEqual(D('1E-12'), point.set_price('1E-12').price)
        self.assertRaises(ValueError, point.set_price, 'NaN')
        self.assertRaises(TypeError, point.set_price, True)


class DataPointValidationTest(testtools.TestCase):

    def assertRaisesNaming(self, exc_class, words, **kwargs):
        """Assert make_point(**kwargs) raises naming every word."""
        exc = self.assertRaises(exc_class, make_point, **kwargs)
        for word in words:
            self.assertIn(word, str(exc))
        return exc

    def test_unit_not_str(self):
        """A unit neither str nor None is a TypeError naming 'unit'."""
        self.assertRaisesNaming(TypeError, ['unit'], unit=1)
        self.assertRaisesNaming(TypeError, ['unit'], unit=b'GiB')

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
        """A groupby or metadata dict() refuses is a TypeError naming it."""
        self.assertRaisesNaming(TypeError, ['groupby'], groupby='ab')
        self.assertRaisesNaming(TypeError, ['metadata'], metadata=5)
        self.assertRaisesNaming(TypeError, ['groupby'], groupby=[1, 2])

    def test_mapping_key_not_str(self):
        """A non-str key is a TypeError naming the field and the key."""
        exc = self.assertRaisesNaming(TypeError, ['groupby'],
                                      groupby={1: 'a'})
        self.assertEqual('groupby key 1 is not a str', str(exc))

    def test_mapping_value_not_json(self):
        """A value that is no JSON value is a TypeError naming its place."""
        for value in (D('1'), b'x', object(), {1, 2},
                      datetime.datetime(2024, 1, 1)):
            self.assertRaisesNaming(TypeError, ["metadata['x']"],
                                    metadata={'x': value})
            self.assertRaisesNaming(TypeError, ["groupby['y']"],
                                    groupby={'y': value})
        self.assertRaisesNaming(TypeError, ["groupby['y'][1]", 'bytes'],
                                groupby={'y': ['a', b'b']})
        self.assertRaisesNaming(TypeError, ["groupby['y']", 'key 3'],
                                groupby={'y': {3: 'a'}})
        self.assertRaisesNaming(ValueError, ["groupby['y']['z']"],
                                groupby={'y': {'z': float('nan')}})

    def test_nested_values_frozen(self):
        """Dicts and lists, as in upstream's samples, are frozen deeply."""
        nested = {'metadata': {'farm': 'prod', 'n': [1, None]},
                  'tags': ('a', True)}
        point = make_point(metadata=nested)
        self.assertEqual({'metadata': {'farm': 'prod', 'n': [1, None]},
                          'tags': ['a', True]}, point.metadata)
        inner = point.metadata['metadata']
        self.assertIsInstance(inner, datastructures.ImmutableDict)
        self.assertIsInstance(inner['n'], datastructures.ImmutableList)
        self.assertIsInstance(point.metadata['tags'],
                              datastructures.ImmutableList)
        self.assertRaises(TypeError, operator.setitem, inner, 'farm', 'x')
        self.assertRaises(TypeError, inner['n'].append, 2)
        nested['metadata']['farm'] = 'changed'
        self.assertEqual('prod', inner['farm'])
        self.assertEqual(hash(point),
                         hash(make_point(metadata=point.metadata)))
        self.assertEqual(point, pickle.loads(pickle.dumps(point)))
        self.assertEqual(point, copy.deepcopy(point))
        thawed = point.as_dict(mutable=True)['metadata']
        self.assertIs(dict, type(thawed['metadata']))
        self.assertIs(list, type(thawed['metadata']['n']))
        self.assertIs(list, type(thawed['tags']))
        self.assertEqual(point, dataframe.DataPoint.from_dict(
            json.loads(point.json())))

    def test_mapping_value_not_finite(self):
        """A NaN or infinite float value is a ValueError naming the key."""
        for value in (float('nan'), float('inf'), float('-inf')):
            self.assertRaisesNaming(ValueError, ["groupby['y']"],
                                    groupby={'y': value})

    def test_description_not_str(self):
        """A non-str description is a TypeError naming 'description'."""
        self.assertRaisesNaming(TypeError, ['description'], description=5)


#: A JSON number token (RFC 8259, section 6).
JSON_NUMBER = re.compile(r'-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?')

#: Finite Decimals of every shape: huge, tiny, negative zero, exponents.
DECIMALS = st.decimals(allow_nan=False, allow_infinity=False)


class DataPointOutputTest(testtools.TestCase):

    def test_desc_groupby_wins(self):
        """desc merges metadata and groupby, groupby winning on clashes."""
        point = make_point(groupby={'k': 'group', 'g': 1},
                           metadata={'k': 'meta', 'm': None})
        desc = point.desc
        self.assertEqual({'k': 'group', 'g': 1, 'm': None}, desc)
        self.assertIsInstance(desc, datastructures.ImmutableDict)
        self.assertRaises(TypeError, operator.setitem, desc, 'k', 'x')

    def test_as_dict_default_read_only(self):
        """as_dict() is upstream's format, read-only at every level."""
        result = make_point().as_dict()
        self.assertEqual(
            {'vol': {'unit': 'instance', 'qty': D(1)},
             'rating': {'price': D('0.5')},
             'groupby': {'project_id': 'p1'},
             'metadata': {'flavor': 'm1.small'}}, result)
        self.assertIsInstance(result, datastructures.ImmutableDict)
        for key in ('vol', 'rating', 'groupby', 'metadata'):
            self.assertIsInstance(result[key], datastructures.ImmutableDict)
        self.assertRaises(TypeError, operator.setitem, result['vol'],
                          'qty', 2)
        self.assertRaises(TypeError, operator.setitem, result, 'x', 1)

    def test_as_dict_description_only_when_set(self):
        """'description' is in the dict only when the point has one."""
        self.assertNotIn('description', make_point().as_dict())
        self.assertEqual('text', make_point(description='text').as_dict()[
            'description'])
        self.assertEqual('', make_point(description='').as_dict(
            mutable=True)['description'])

    def test_as_dict_mutable(self):
        """as_dict(mutable=True) is made of fresh plain dicts."""
        point = make_point(description='text')
        result = point.as_dict(mutable=True)
        self.assertEqual(
            {'vol': {'unit': 'instance', 'qty': D(1)},
             'rating': {'price': D('0.5')},
             'groupby': {'project_id': 'p1'},
             'metadata': {'flavor': 'm1.small'}, 'description': 'text'},
            result)
        for value in (result, result['vol'], result['rating'],
                      result['groupby'], result['metadata']):
            self.assertIs(dict, type(value))
        result['groupby']['project_id'] = 'other'
        self.assertEqual('p1', point.groupby['project_id'])

    def test_as_dict_legacy(self):
        """as_dict(legacy=True) merges groupby and metadata into desc."""
        point = make_point(description='dropped',
                           metadata={'flavor': 'm1', 'project_id': 'lost'})
        expected = {'vol': {'unit': 'instance', 'qty': D(1)},
                    'rating': {'price': D('0.5')},
                    'desc': {'project_id': 'p1', 'flavor': 'm1'}}
        result = point.as_dict(legacy=True)
        self.assertEqual(expected, result)
        self.assertIsInstance(result, datastructures.ImmutableDict)
        self.assertIsInstance(result['desc'], datastructures.ImmutableDict)
        result = point.as_dict(legacy=True, mutable=True)
        self.assertEqual(expected, result)
        self.assertIs(dict, type(result['desc']))

    def test_json_exact_numbers(self):
        """json() writes Decimals as exact JSON numbers, keys sorted."""
        self.assertEqual(
            '{"groupby": {"project_id": "p1"}, '
            '"metadata": {"flavor": "m1.small"}, "rating": {"price": 0.5}, '
            '"vol": {"qty": 0.1, "unit": "instance"}}',
            make_point(qty=0.1).json())
        point = make_point(qty=D('0.30000000000000004'), price=D('1E-12'),
                           description='d')
        text = point.json()
        self.assertIn('"qty": 0.30000000000000004', text)
        self.assertIn('"price": 1E-12', text)
        self.assertIn('"description": "d"', text)
        exact = json.loads(text, parse_float=D)
        self.assertEqual('0.30000000000000004', str(exact['vol']['qty']))
        self.assertEqual('1E-12', str(exact['rating']['price']))
        # NOTE: a plain reader gets what upstream's float() encoder gives.
        plain = json.loads(text)
        self.assertEqual(0.30000000000000004, plain['vol']['qty'])
        self.assertEqual(1e-12, plain['rating']['price'])

    def test_json_precision_beyond_floats(self):
        """Digits a float cannot hold are written, not rounded."""
        value = D('123456789012345678.123456789012')
        text = make_point(qty=value).json()
        self.assertIn('"qty": 123456789012345678.123456789012', text)
        self.assertEqual(value, json.loads(
            text, parse_float=D)['vol']['qty'])

    def test_json_legacy(self):
        """json(legacy=True) writes the legacy format."""
        self.assertEqual(
            '{"desc": {"flavor": "m1.small", "project_id": "p1"}, '
            '"rating": {"price": 0.5}, "vol": {"qty": 1, '
            '"unit": "instance"}}', make_point().json(legacy=True))

    def test_json_scalar_values(self):
        """Non-str groupby and metadata values are written as JSON."""
        point = make_point(groupby={'i': 3, 'f': 0.25, 'b': False,
                                    'n': None})
        self.assertIn('"groupby": {"b": false, "f": 0.25, "i": 3, '
                      '"n": null}', point.json())

    @hypothesis.settings(max_examples=300, deadline=None, database=None,
                         derandomize=True)
    @hypothesis.given(DECIMALS)
    def test_json_decimal_is_valid_exact_number(self, value):
        """Any finite Decimal is written as one exact JSON number token."""
        text = dataframe.dumps(value)
        self.assertIsNotNone(JSON_NUMBER.fullmatch(text), text)
        self.assertEqual(value, json.loads(text, parse_float=D))
        self.assertEqual(float(value), float(json.loads(text)))

    def test_dumps_refuses_what_json_cannot_hold(self):
        """NaN, infinities, non-str keys and other types are refused."""
        for value in (D('NaN'), D('-Infinity'), float('nan'),
                      [float('inf')]):
            self.assertRaises(ValueError, dataframe.dumps, value)
        for value in ({1: 'a'}, object(), {'a': b'x'}, {'a', 'b'}):
            self.assertRaises(TypeError, dataframe.dumps, value)

    def test_dumps_like_stdlib(self):
        """Without Decimals, dumps() writes what json.dumps() does."""
        value = {'z': [1, -2.5, True, None, 'é\n"\\'], 'a': {'ü': ()},
                 'm': 1e300}
        self.assertEqual(json.dumps(value, sort_keys=True),
                         dataframe.dumps(value))

    def test_json_round_trip_extreme_decimals(self):
        """Huge, tiny and negative Decimals survive a JSON round trip."""
        for value in (D('999999999999999.999999999999'), D('1E-12'),
                      D('-0.000000000000000000000001'), D('-12345.6789'),
                      D('1E+30'), D('0.00')):
            point = make_point(qty=value, price=-value)
            back = dataframe.DataPoint.from_dict(
                json.loads(point.json(), parse_float=D))
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
        back = dataframe.DataPoint.from_dict(json.loads(point.json()))
        self.assertEqual(point, back)
        back = dataframe.DataPoint.from_dict(
            json.loads(point.json(legacy=True)), legacy=True)
        self.assertEqual(dataframe.DataPoint(
            point.unit, point.qty, point.price, point.desc, {}), back)

    def test_from_dict_round_trip(self):
        """from_dict(as_dict()) gives back an equal point in all formats."""
        point = make_point(description='d', groupby={'y': 2022})
        for mutable in (False, True):
            self.assertEqual(point, dataframe.DataPoint.from_dict(
                point.as_dict(mutable=mutable)))
            # NOTE: the legacy format has no metadata nor description.
            self.assertEqual(
                dataframe.DataPoint('instance', 1, D('0.5'), point.desc, {}),
                dataframe.DataPoint.from_dict(
                    point.as_dict(legacy=True, mutable=mutable),
                    legacy=True))

    def test_from_dict_upstream_shapes(self):
        """Upstream's dicts: rating optional, numbers as str or number."""
        read = dataframe.DataPoint.from_dict
        base = {'vol': {'unit': 'GiB', 'qty': '1.50'}, 'groupby': {},
                'metadata': {'m': 1}}
        point = read(base)
        self.assertEqual(('GiB', '1.50', D(0), {'m': 1}),
                         (point.unit, str(point.qty), point.price,
                          point.metadata))
        self.assertEqual(D(0), read(dict(base, rating={})).price)
        self.assertEqual(D('0.1'),
                         read(dict(base, rating={'price': 0.1})).price)
        self.assertEqual(D(3), read(dict(base, vol={'unit': 'u',
                                                    'qty': 3})).qty)
        legacy = read({'vol': {'unit': 'u', 'qty': 1},
                       'rating': {'price': '2'}, 'desc': {'a': 'b'}},
                      legacy=True)
        self.assertEqual(dataframe.DataPoint('u', 1, 2, {'a': 'b'}, {}),
                         legacy)

    def test_from_dict_does_not_change_input(self):
        """from_dict() leaves the dict it reads as it was."""
        data = {'vol': {'unit': 'u', 'qty': 1}, 'rating': {'price': 2},
                'desc': {'a': 'b'}}
        copied = copy.deepcopy(data)
        dataframe.DataPoint.from_dict(data, legacy=True)
        self.assertEqual(copied, data)

    def test_from_dict_flat_format(self):
        """The flat format of earlier versions is still read."""
        data = {'unit': 'u', 'qty': '1E-12', 'price': '2.50',
                'groupby': {'p': 'p1'}, 'metadata': {},
                'description': 'old'}
        self.assertEqual(
            dataframe.DataPoint('u', D('1E-12'), D('2.50'), {'p': 'p1'}, {},
                                'old'),
            dataframe.DataPoint.from_dict(data))
        del data['description']
        self.assertIsNone(dataframe.DataPoint.from_dict(data).description)
        self.assertEqual('undefined', dataframe.DataPoint.from_dict(
            dict(data, unit='')).unit)

    def test_from_dict_missing_key(self):
        """A missing key is a ValueError naming the key."""
        full = make_point().as_dict(mutable=True)
        for key in ('vol', 'groupby', 'metadata'):
            data = dict(full)
            del data[key]
            exc = self.assertRaises(dataframe.DataFormatError,
                                    dataframe.DataPoint.from_dict, data)
            self.assertIsInstance(exc, ValueError)
            self.assertIn(repr(key), str(exc))
        for key in ('unit', 'qty'):
            data = make_point().as_dict(mutable=True)
            del data['vol'][key]
            exc = self.assertRaises(ValueError,
                                    dataframe.DataPoint.from_dict, data)
            self.assertIn('vol.' + key, str(exc))
        flat = {'unit': 'u', 'qty': 1, 'price': 2, 'groupby': {},
                'metadata': {}}
        for key in flat:
            data = dict(flat)
            del data[key]
            exc = self.assertRaises(ValueError,
                                    dataframe.DataPoint.from_dict, data)
            self.assertIn(repr(key), str(exc))

    def test_from_dict_unknown_keys(self):
        """Unknown keys are refused, as upstream's schema does."""
        data = make_point().as_dict(mutable=True)
        data['extra'] = 1
        exc = self.assertRaises(ValueError, dataframe.DataPoint.from_dict,
                                data)
        self.assertIn("'extra'", str(exc))
        data = make_point().as_dict(mutable=True)
        data['vol']['price'] = 1
        exc = self.assertRaises(ValueError, dataframe.DataPoint.from_dict,
                                data)
        self.assertIn("'price' in vol", str(exc))
        data = make_point().as_dict(mutable=True)
        data['qty'] = 1
        self.assertRaises(ValueError, dataframe.DataPoint.from_dict, data)

    def test_from_dict_validates(self):
        """from_dict() validates values like the constructor does."""
        data = make_point().as_dict(mutable=True)
        data['rating']['price'] = 'NaN'
        exc = self.assertRaises(ValueError, dataframe.DataPoint.from_dict,
                                data)
        self.assertIn('price', str(exc))
        data = make_point().as_dict(mutable=True)
        data['metadata']['bad'] = object()
        exc = self.assertRaises(ValueError, dataframe.DataPoint.from_dict,
                                data)
        self.assertIn("metadata['bad']", str(exc))

    def test_from_dict_decimal_attributes_are_floats(self):
        """parse_float=Decimal and a plain reader give the same point."""
        point = make_point(groupby={'ratio': 0.1, 'n': {'x': [2.5]}},
                           metadata={'i': 3})
        text = point.json(legacy=False)
        exact = dataframe.DataPoint.from_dict(json.loads(
            text, parse_float=D))
        self.assertEqual(point, exact)
        self.assertIs(float, type(exact.groupby['ratio']))
        self.assertIs(float, type(exact.groupby['n']['x'][0]))
        self.assertIs(int, type(exact.metadata['i']))
        self.assertEqual(point, dataframe.DataPoint.from_dict(
            json.loads(text)))
        legacy = dataframe.DataPoint.from_dict(json.loads(
            point.json(legacy=True), parse_float=D))
        self.assertIs(float, type(legacy.groupby['ratio']))

    def test_from_dict_type_errors_are_value_errors_too(self):
        """Wrong types raise DataFormatTypeError: TypeError and ValueError.

        ValueError as upstream (its API answers 400), TypeError as earlier
        versions of this library.
        """
        for bad in ([1], None, 'vol'):
            exc = self.assertRaises(dataframe.DataFormatTypeError,
                                    dataframe.DataPoint.from_dict, bad)
            self.assertIsInstance(exc, TypeError)
            self.assertIsInstance(exc, ValueError)
        legacy = make_point().as_dict(legacy=True, mutable=True)
        legacy['vol'] = 'x'
        exc = self.assertRaises(TypeError, dataframe.DataPoint.from_dict,
                                legacy, legacy=True)
        self.assertIn('vol', str(exc))
        data = make_point().as_dict(mutable=True)
        data['vol']['unit'] = 5
        exc = self.assertRaises(ValueError, dataframe.DataPoint.from_dict,
                                data)
        self.assertIn('unit', str(exc))


class DataFrameTest(testtools.TestCase):

    def test_stored_frame_equals_the_checked_one(self):
        """stored_frame() is DataFrame() without a check per point."""
        tz = datetime.timezone(datetime.timedelta(hours=2))
        start = datetime.datetime(2024, 1, 1, 2, tzinfo=tz)
        end = datetime.datetime(2024, 1, 1, 3, tzinfo=tz)
        points = [make_point(), make_point(qty=2)]
        usage = {'cpu': points, 'image': [make_point(unit='image')]}
        frame = dataframe.stored_frame(start, end, dict(usage))
        checked = dataframe.DataFrame(start, end, usage)
        self.assertEqual(checked, frame)
        self.assertEqual(checked.as_dict(), frame.as_dict())
        self.assertIs(UTC, frame.start.tzinfo)
        self.assertRaises(ValueError, dataframe.stored_frame, end, start,
                          {})
        self.assertRaises(ValueError, dataframe.stored_frame, start, end,
                          {'': []})

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

    def test_start_end_assignable(self):
        """start and end can be assigned, with the constructor's checks."""
        frame = make_frame()
        frame.start = datetime.datetime(2023, 12, 31, 23)
        self.assertEqual(datetime.datetime(2023, 12, 31, 23, tzinfo=UTC),
                         frame.start)
        tz = datetime.timezone(datetime.timedelta(hours=2))
        frame.end = datetime.datetime(2024, 1, 1, 4, tzinfo=tz)
        self.assertEqual(datetime.datetime(2024, 1, 1, 2, tzinfo=UTC),
                         frame.end)
        self.assertIs(UTC, frame.end.tzinfo)
        self.assertRaises(TypeError, setattr, frame, 'start', '2024-01-01')
        exc = self.assertRaises(ValueError, setattr, frame, 'end',
                                frame.start)
        self.assertIn('end', str(exc))
        self.assertRaises(ValueError, setattr, frame, 'start', frame.end)
        self.assertEqual(datetime.datetime(2023, 12, 31, 23, tzinfo=UTC),
                         frame.start)
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
        self.assertEqual([('cpu', [make_point()]), ('ram', [])], result)
        result[0][1].append(make_point(qty=9))
        self.assertEqual(1, len(frame))

    def test_usage_types_sorted(self):
        """Types given to the constructor are added in sorted order."""
        frame = make_frame({'ram': [make_point()], 'cpu': [make_point()],
                            'disk': []})
        self.assertEqual(['cpu', 'disk', 'ram'],
                         [type_ for type_, _ in frame.itertypes()])

    def test_empty_types_kept(self):
        """As upstream, a type given no point is kept, with no point."""
        frame = make_frame({'cpu': []})
        frame.add_points([], 'ram')
        self.assertEqual(0, len(frame))
        self.assertEqual({'cpu': [], 'ram': []},
                         frame.as_dict(mutable=True)['usage'])
        self.assertEqual([], list(frame.iterpoints()))

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
        self.assertEqual(make_frame({'a': []}), make_frame({'a': []}))
        self.assertNotEqual(make_frame(), make_frame({'a': []}))
        self.assertNotEqual(make_frame(), 'frame')

    def test_not_hashable(self):
        """Frames are mutable and therefore unhashable."""
        self.assertRaises(TypeError, hash, make_frame())

    def test_repr(self):
        """repr names the metric types, as upstream's does."""
        frame = make_frame({'ram': [make_point()], 'cpu': [make_point()]})
        self.assertEqual('DataFrame(metrics=[cpu,ram])', repr(frame))
        self.assertEqual('DataFrame(metrics=[])', repr(make_frame()))

    def test_pickle(self):
        """A frame survives pickling."""
        frame = make_frame({'cpu': [make_point()]})
        self.assertEqual(frame, pickle.loads(pickle.dumps(frame)))


class DataFrameSerialisationTest(testtools.TestCase):

    def test_as_dict_read_only(self):
        """as_dict() is read-only at every level and keeps datetimes."""
        frame = make_frame({'cpu': [make_point()]})
        result = frame.as_dict()
        self.assertIsInstance(result, datastructures.ImmutableDict)
        self.assertEqual(frame.start, result['period']['begin'])
        self.assertRaises(TypeError, operator.setitem, result['period'],
                          'begin', None)
        self.assertRaises(TypeError, operator.setitem, result['usage'],
                          'x', [])
        self.assertIsInstance(result['usage']['cpu'],
                              datastructures.ImmutableList)
        self.assertRaises(TypeError, result['usage']['cpu'].append, 1)
        self.assertRaises(TypeError, operator.setitem,
                          result['usage']['cpu'][0], 'vol', 1)
        # NOTE: equal to plain dicts and lists, as upstream's tests expect.
        self.assertEqual(frame.as_dict(mutable=True), result)

    def test_as_dict_mutable(self):
        """as_dict(mutable=True) is plain dicts and lists."""
        frame = make_frame({'cpu': [make_point()]})
        result = frame.as_dict(mutable=True)
        self.assertEqual(
            {'period': {'begin': frame.start, 'end': frame.end},
             'usage': {'cpu': [make_point().as_dict(mutable=True)]}},
            result)
        self.assertIs(list, type(result['usage']['cpu']))
        self.assertIs(dict, type(result['usage']['cpu'][0]))

    def test_as_dict_legacy_points(self):
        """as_dict(legacy=True) uses the legacy format for points."""
        frame = make_frame({'cpu': [make_point()]})
        point = frame.as_dict(legacy=True, mutable=True)['usage']['cpu'][0]
        self.assertEqual({'vol', 'rating', 'desc'}, set(point))

    def test_json(self):
        """json() writes ISO 8601 datetimes and Decimals as numbers."""
        frame = make_frame({'cpu': [make_point(qty=0.1)]})
        text = frame.json()
        data = json.loads(text)
        self.assertEqual({'begin': '2024-01-01T00:00:00+00:00',
                          'end': '2024-01-01T01:00:00+00:00'},
                         data['period'])
        self.assertEqual(0.1, data['usage']['cpu'][0]['vol']['qty'])
        self.assertEqual(D('0.1'), json.loads(text, parse_float=D)[
            'usage']['cpu'][0]['vol']['qty'])
        self.assertEqual(list(data), sorted(data))

    def test_json_round_trip(self):
        """from_dict(json.loads(json())) gives back an equal frame."""
        frame = make_frame({
            'cpu': [make_point(qty=D('999999999999999.999999999999')),
                    make_point(price=D('-1E-12'), description='é "q"')],
            'ram': [make_point(unit='GiB', metadata={'ключ': 'значение',
                                                     'n': None, 'i': 7})],
            'empty': [],
        })
        back = dataframe.DataFrame.from_dict(
            json.loads(frame.json(), parse_float=D))
        self.assertEqual(frame, back)
        self.assertEqual(frame.json(), back.json())

    def test_legacy_round_trip(self):
        """A legacy round trip merges metadata into groupby."""
        frame = make_frame({'cpu': [make_point(qty='1.50')]})
        back = dataframe.DataFrame.from_dict(
            json.loads(frame.json(legacy=True), parse_float=D), legacy=True)
        point = make_point(qty='1.50')
        self.assertEqual(
            make_frame({'cpu': [point._replace(groupby=point.desc,
                                               metadata={})]}), back)

    def test_from_dict_flat_points(self):
        """Frames whose points are in the flat format are still read."""
        data = {'period': {'begin': '2024-01-01T00:00:00+00:00',
                           'end': '2024-01-01T01:00:00+00:00'},
                'usage': {'cpu': [
                    {'unit': 'instance', 'qty': '1', 'price': '0.5',
                     'groupby': {'project_id': 'p1'},
                     'metadata': {'flavor': 'm1.small'},
                     'description': None}]}}
        self.assertEqual(make_frame({'cpu': [make_point()]}),
                         dataframe.DataFrame.from_dict(data))

    def test_from_dict_accepts_points(self):
        """DataPoint objects are accepted in place of point dicts."""
        data = make_frame().as_dict(mutable=True)
        data['usage'] = {'cpu': [make_point()]}
        self.assertEqual(make_frame({'cpu': [make_point()]}),
                         dataframe.DataFrame.from_dict(data))

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

    def test_from_dict_unknown_keys(self):
        """Unknown keys are refused, as upstream's schema does."""
        data = make_frame().as_dict(mutable=True)
        data['total'] = 3
        exc = self.assertRaises(ValueError, dataframe.DataFrame.from_dict,
                                data)
        self.assertIn("'total'", str(exc))

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
        self.assertIsInstance(exc, ValueError)
        self.assertRaises(
            ValueError, dataframe.DataFrame.from_dict,
            {'period': {'begin': '2024-01-02', 'end': '2024-01-01'},
             'usage': {}})

    def test_from_dict_bad_usage(self):
        """Bad usage content raises errors naming the type and index."""
        period = {'begin': '2024-01-01', 'end': '2024-01-02'}
        for usage in ([], None):
            exc = self.assertRaises(TypeError, dataframe.DataFrame.from_dict,
                                    {'period': period, 'usage': usage})
            self.assertIsInstance(exc, ValueError)
        exc = self.assertRaises(TypeError, dataframe.DataFrame.from_dict,
                                {'period': period, 'usage': {'cpu': 'x'}})
        self.assertIn("usage['cpu']", str(exc))
        point = make_point().as_dict(mutable=True)
        point['vol']['qty'] = 'lots'
        exc = self.assertRaises(dataframe.DataFormatError,
                                dataframe.DataFrame.from_dict,
                                {'period': period, 'usage': {'cpu': [point]}})
        self.assertIn("usage['cpu'][0]", str(exc))
        self.assertIn('qty', str(exc))
        exc = self.assertRaises(dataframe.DataFormatTypeError,
                                dataframe.DataFrame.from_dict,
                                {'period': period, 'usage': {'cpu': [3]}})
        self.assertIn("usage['cpu'][0]", str(exc))
        self.assertRaises(TypeError, dataframe.DataFrame.from_dict, None)
        self.assertRaises(ValueError, dataframe.DataFrame.from_dict,
                          {'usage': None})

    def test_from_dict_upstream_legacy_frame(self):
        """A frame as upstream's hashmap tests write it is read."""
        frame = dataframe.DataFrame.from_dict({
            'period': {'begin': datetime.datetime(2014, 10, 1),
                       'end': datetime.datetime(2014, 10, 1, 1)},
            'usage': {'compute': [{
                'desc': {'flavor': 'm1.nano', 'vcpus': 1,
                         'metadata': {'farm': 'prod'}},
                'vol': {'qty': 1, 'unit': 'instance'}}]}}, legacy=True)
        (type_, point), = frame.iterpoints()
        self.assertEqual('compute', type_)
        self.assertEqual(
            dataframe.DataPoint('instance', 1, 0, {
                'flavor': 'm1.nano', 'vcpus': 1,
                'metadata': {'farm': 'prod'}}, {}), point)
        self.assertEqual(datetime.datetime(2014, 10, 1, tzinfo=UTC),
                         frame.start)
