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
"""Rated data value types: :class:`DataPoint` and :class:`DataFrame`.

A :class:`DataPoint` is one immutable rated measure (a quantity of some unit,
its price and its describing attributes). A :class:`DataFrame` groups the
points collected for one period, ``[start, end)``, keyed by metric type.

Both types offer the interface of upstream CloudKitty's
``cloudkitty.dataframe`` (same constructors, ``set_price()``, ``desc``,
``as_dict()``, ``json()`` and ``from_dict()`` in the same formats) and
validate everything they are given, so that storage backends can trust them
without checking again:

* quantities and prices are always finite :class:`decimal.Decimal` values;
* ``groupby`` and ``metadata`` are read-only :class:`FrozenAttributes`
  (``dict`` subclasses, so JSON-serialisable) with ``str`` keys and JSON
  values:
  ``str``, ``int``, finite ``float``, ``bool`` or ``None`` (what the
  storage backends keep, with their type), or, as upstream's data has
  (Nova's instance ``metadata``), dicts and lists of those, frozen too
  (which of those a backend can store is for the storage contract to say);
* datetimes are always timezone-aware and in UTC (naive ones mean UTC).

Dict formats of a point (see :meth:`DataPoint.as_dict`):

* current, the default::

    {'vol': {'unit': str, 'qty': Decimal}, 'rating': {'price': Decimal},
     'groupby': {...}, 'metadata': {...}}

  plus ``'description': str`` when the point has one;
* legacy (``legacy=True``, upstream's v1 storage format): ``groupby`` and
  ``metadata`` merged into ``'desc'`` (``groupby`` wins), no description;
* flat, written by earlier versions of this library and still read by
  :meth:`DataPoint.from_dict`::

    {'unit': str, 'qty': ..., 'price': ..., 'groupby': {...},
     'metadata': {...}, 'description': str or None}

The ``json()`` methods write every :class:`~decimal.Decimal` as a JSON
*number* holding its exact digits (``0.30000000000000004``, ``1E-12``), never
rounded through a binary float: ``json.loads()`` gives what upstream's
encoder gives, and ``json.loads(text, parse_float=decimal.Decimal)`` gives
back the exact value. ``from_dict()`` also accepts numbers as strings.
"""

import collections
import collections.abc
import datetime
import decimal
import json
import math

from werkzeug import datastructures

__all__ = ['DataFormatError', 'DataFormatTypeError', 'DataFrame',
           'DataPoint', 'FrozenAttributes', 'dumps', 'frozen_attributes',
           'to_decimal', 'to_utc']


class DataFormatError(ValueError):
    """A dict given to a ``from_dict()`` method is not a valid point/frame.

    A :class:`ValueError`, as upstream CloudKitty raises for the same input
    (its API answers it with HTTP 400). The message names the faulty field.
    """


class DataFormatTypeError(DataFormatError, TypeError):
    """A :class:`DataFormatError` due to a value of the wrong type.

    Also a :class:`TypeError`, which is what earlier versions of this
    library raised in that case.
    """


def to_decimal(value, field='value'):
    """Convert a quantity or a price to a finite :class:`~decimal.Decimal`.

    :param value: the number to convert. A ``Decimal`` is kept as is, an
                  ``int`` is converted exactly, a ``float`` goes through
                  ``str()`` first (so ``0.1`` becomes ``Decimal('0.1')``,
                  not its binary approximation) and a ``str`` is parsed
                  after stripping surrounding whitespace.
    :type value: decimal.Decimal or int or float or str
    :param field: name of the field being converted, used in error messages.
    :type field: str
    :returns: the converted value.
    :rtype: decimal.Decimal
    :raises TypeError: if ``value`` is of any other type, including ``bool``
                       and ``None``.
    :raises ValueError: if ``value`` cannot be parsed, or is NaN or infinite.
    """
    # NOTE: bool is a subclass of int, but True is almost certainly a bug
    # in the caller rather than a quantity of 1.
    if isinstance(value, bool):
        raise TypeError(f"{field} must be a number, got bool {value!r}")
    if isinstance(value, decimal.Decimal):
        result = value
    elif isinstance(value, int):
        result = decimal.Decimal(value)
    elif isinstance(value, float):
        # NOTE: Decimal(0.1) is 0.1000000000000000055511151231257827...;
        # str() gives the shortest repr that round-trips, which is what the
        # user meant.
        result = decimal.Decimal(str(value))
    elif isinstance(value, str):
        try:
            result = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            raise ValueError(
                f"{field} is not a valid number: {value!r}") from None
    else:
        raise TypeError(
            f"{field} must be a Decimal, int, float or str, "
            f"got {type(value).__name__} {value!r}")
    # NOTE: NaN never compares equal to itself and infinities cannot be
    # summed meaningfully, so neither can be stored or aggregated.
    if not result.is_finite():
        raise ValueError(f"{field} must be finite, got {value!r}")
    return result


def to_utc(dt, field='dt'):
    """Normalise a datetime to a timezone-aware datetime in UTC.

    A naive datetime is taken to be in UTC already and is given
    ``tzinfo=datetime.timezone.utc``; an aware one is converted with
    :meth:`~datetime.datetime.astimezone`.

    :param dt: the datetime to normalise.
    :type dt: datetime.datetime
    :param field: name of the field being converted, used in error messages.
    :type field: str
    :returns: an equivalent datetime whose ``tzinfo`` is
              ``datetime.timezone.utc``.
    :rtype: datetime.datetime
    :raises TypeError: if ``dt`` is not a :class:`datetime.datetime` (a
                       plain :class:`datetime.date` is rejected too).
    :raises ValueError: if ``dt`` falls outside years 1 to 9999 once in UTC
                        (``0001-01-01T00:00+01:00``, for example).
    """
    if not isinstance(dt, datetime.datetime):
        raise TypeError(
            f"{field} must be a datetime.datetime, "
            f"got {type(dt).__name__} {dt!r}")
    # NOTE: a tzinfo whose utcoffset() returns None makes the datetime
    # naive as far as Python is concerned, so test the offset, not tzinfo.
    if dt.utcoffset() is None:
        return dt.replace(tzinfo=datetime.timezone.utc)
    try:
        return dt.astimezone(datetime.timezone.utc)
    except OverflowError as exc:
        raise ValueError(
            f"{field} {dt.isoformat()} is outside years 1 to 9999 in UTC"
        ) from exc


def _parse_datetime(value, field):
    """Accept a datetime or an ISO 8601 string and return it in UTC."""
    if isinstance(value, str):
        text = value.strip()
        # NOTE: fromisoformat() only understands a trailing 'Z' from
        # Python 3.11 on; translating it keeps older interpreters working.
        if text.endswith(('Z', 'z')):
            text = text[:-1] + '+00:00'
        try:
            value = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{field} is not an ISO 8601 datetime: {value!r}") from None
    return to_utc(value, field)


#: Scalar types a groupby or metadata value may have (``None`` too).
_SCALAR_TYPES = (str, bool, int, float)
#: Those of them taken as they are (a float must be checked finite).
_PLAIN_TYPES = frozenset((str, bool, int))


def _label_value(value, where):
    """Check one groupby/metadata value; return a frozen, plain copy.

    Scalars are returned with their plain type: subclasses (an ``IntEnum``
    member, ``numpy.float64``...) are converted, so that a value reads
    back, hashes and serialises the same whatever produced it. Mappings
    (``str`` keys) become :class:`~werkzeug.datastructures.ImmutableDict`
    and lists or tuples :class:`~werkzeug.datastructures.ImmutableList`,
    their items checked the same way.

    :param where: the value's place, for messages: ``groupby['k']``.
    """
    kind = type(value)
    if value is None or kind in _SCALAR_TYPES:
        pass
    elif isinstance(value, str):
        value = str.__str__(value)
    elif isinstance(value, collections.abc.Mapping):
        frozen = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} key {key!r} is not a str")
            frozen[str.__str__(key)] = _label_value(
                item, f"{where}[{key!r}]")
        return datastructures.ImmutableDict(frozen)
    elif isinstance(value, (list, tuple)):
        return datastructures.ImmutableList(
            _label_value(item, f"{where}[{index}]")
            for index, item in enumerate(value))
    elif isinstance(value, int):
        value = int.__int__(value)
    elif isinstance(value, float):
        value = float.__float__(value)
    else:
        raise TypeError(
            f"{where} value {value!r} is a {kind.__name__}; expected str, "
            f"int, float, bool, None, or a dict or list of them")
    # NOTE: NaN never equals itself and neither it nor the infinities is
    # valid JSON, so such a value could neither be matched nor exported.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} value {value!r} is not finite")
    return value


def _read_only(self, *args, **kwargs):
    raise TypeError('%s objects are immutable' % type(self).__name__)


class FrozenAttributes(dict):
    """A checked, deep-frozen groupby or metadata mapping.

    What :attr:`DataPoint.groupby` and :attr:`DataPoint.metadata` hold: a
    read-only :class:`dict` (so JSON-serialisable, like upstream's werkzeug
    ``ImmutableDict``), whose nested dicts and lists are frozen too. Being
    immutable and checked already, it is shared, not copied, by every
    point built with it: storage backends freeze a series' attributes once
    (with :func:`frozen_attributes`) for all of its points.
    """

    # NOTE: no instance __dict__ (werkzeug's ImmutableDict has one): the
    # cyclic garbage collector walks every point's two mappings, and a
    # push of many points paid for it.
    __slots__ = ()

    __setitem__ = __delitem__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __hash__(self):
        return hash(frozenset(self.items()))

    def __reduce__(self):
        return type(self), (dict(self),)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __repr__(self):
        return '%s(%s)' % (type(self).__name__, dict.__repr__(self))


def frozen_attributes(value, field='groupby'):
    """Check a groupby or metadata mapping; return it frozen.

    :param value: ``None`` (empty), a mapping, or an iterable of
                  ``(key, value)`` pairs.
    :param field: the field's name, for messages.
    :rtype: FrozenAttributes
    :raises TypeError: for a key that is not a ``str`` or a value that is
                       not a JSON value.
    :raises ValueError: for a NaN or infinite float.
    """
    return _frozen_mapping(value, field)


def _frozen_mapping(value, field):
    """Validate a groupby/metadata mapping; return a read-only copy.

    :param value: ``None`` (empty), a mapping, or an iterable of
                  ``(key, value)`` pairs (anything :class:`dict` accepts,
                  as upstream does, for example ``[]``).
    :returns: a :class:`FrozenAttributes` (``value`` itself when it is
              one), nested dicts and lists frozen too (see
              :func:`_label_value`).
    :raises TypeError: if ``value`` is not one of those, a key is not a
                       ``str`` or a value is not a JSON value (the message
                       names the key).
    :raises ValueError: if a float value is NaN or infinite.
    """
    if type(value) is FrozenAttributes:
        return value
    if value is None:
        value = {}
    elif not isinstance(value, collections.abc.Mapping):
        if isinstance(value, (str, bytes)):
            raise TypeError(f"{field} must be a mapping, got "
                            f"{type(value).__name__}")
        try:
            value = dict(value)
        except (TypeError, ValueError):
            raise TypeError(f"{field} must be a mapping, got "
                            f"{type(value).__name__}") from None
    # NOTE: always a fresh copy, so that the caller keeping a reference to
    # its own dict cannot change the point afterwards.
    checked = {}
    for key, val in value.items():
        if type(key) is not str:
            if not isinstance(key, str):
                raise TypeError(f"{field} key {key!r} is not a str")
            key = str.__str__(key)
        # NOTE: the common plain values skip the call, which matters on
        # pushes of many points.
        if val is None or type(val) in _PLAIN_TYPES:
            checked[key] = val
        else:
            checked[key] = _label_value(val, f"{field}[{key!r}]")
    return FrozenAttributes(checked)


def _thaw(value):
    """Return a plain, mutable deep copy of a frozen groupby/metadata."""
    if isinstance(value, dict):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_thaw(item) for item in value]
    return value


def _decimals_to_floats(value):
    """Turn the Decimals of a decoded JSON attribute mapping into floats.

    A reader using ``parse_float=Decimal`` (as it should, for qty and
    price) gets Decimals in attribute values too; they are read as the
    floats a plain reader would get, so that both give the same point.
    """
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, collections.abc.Mapping):
        return {key: _decimals_to_floats(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_decimals_to_floats(item) for item in value]
    return value


# NOTE: the C implementation when available; it also adds the quotes.
_json_str = json.encoder.encode_basestring_ascii


def _write_json(value, out):
    """Append the JSON text of ``value`` to the list ``out``.

    Like :func:`json.dumps` with ``sort_keys=True`` and
    ``allow_nan=False``, plus :class:`~decimal.Decimal` written as a JSON
    number with its exact digits (its ``str()`` is always a valid JSON
    number once finite) and datetimes as ISO 8601 strings.
    """
    if isinstance(value, str):
        out.append(_json_str(value))
    elif value is None:
        out.append('null')
    elif value is True:
        out.append('true')
    elif value is False:
        out.append('false')
    elif isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"{value!r} is not finite")
        out.append(str(value))
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not finite")
        out.append(float.__repr__(value))
    elif isinstance(value, datetime.datetime):
        out.append(_json_str(value.isoformat()))
    elif isinstance(value, collections.abc.Mapping):
        out.append('{')
        for index, key in enumerate(sorted(value)):
            if not isinstance(key, str):
                raise TypeError(f"JSON object key {key!r} is not a str")
            if index:
                out.append(', ')
            out.append(_json_str(key))
            out.append(': ')
            _write_json(value[key], out)
        out.append('}')
    elif isinstance(value, (list, tuple)):
        out.append('[')
        for index, item in enumerate(value):
            if index:
                out.append(', ')
            _write_json(item, out)
        out.append(']')
    else:
        raise TypeError(
            f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value):
    """Encode ``value`` as JSON, writing Decimals as exact JSON numbers.

    This is the encoder of the ``json()`` methods; it accepts what they
    produce: mappings with ``str`` keys (written with sorted keys), lists,
    tuples, ``str``, ``int``, finite ``float`` and
    :class:`~decimal.Decimal`, ``bool``, ``None`` and
    :class:`datetime.datetime` (as an ISO 8601 string).

    :param value: the value to encode.
    :returns: the JSON document, ASCII only.
    :rtype: str
    :raises TypeError: for a value of another type or a non-str key.
    :raises ValueError: for a NaN or infinite number.
    """
    out = []
    _write_json(value, out)
    return ''.join(out)


def _mapping(value, path):
    """Return ``value`` if it is a mapping, else raise naming ``path``."""
    if not isinstance(value, collections.abc.Mapping):
        raise DataFormatTypeError(
            f"{path} must be a mapping, got {type(value).__name__}")
    return value


def _get(dict_, key, path):
    """Return ``dict_[key]``, or raise a DataFormatError naming ``path``."""
    try:
        return dict_[key]
    except KeyError:
        raise DataFormatError(f"missing key {path!r}") from None


def _only(dict_, allowed, path):
    """Refuse keys of ``dict_`` outside ``allowed`` (as upstream does)."""
    unknown = sorted(map(repr, set(dict_) - allowed))
    if unknown:
        where = f" in {path}" if path else ''
        raise DataFormatError(f"unknown key(s) {', '.join(unknown)}{where}")


#: Keys of each point dict format; see :meth:`DataPoint.from_dict`.
_LEGACY_KEYS = frozenset(('vol', 'rating', 'desc'))
_CURRENT_KEYS = frozenset(('vol', 'rating', 'groupby', 'metadata',
                           'description'))
_FLAT_KEYS = frozenset(('unit', 'qty', 'price', 'groupby', 'metadata',
                        'description'))


def _point_fields(dict_):
    """Return the constructor arguments read from a point dict."""
    _mapping(dict_, 'point')
    if 'vol' in dict_:
        legacy = 'desc' in dict_
        _only(dict_, _LEGACY_KEYS if legacy else _CURRENT_KEYS, '')
        vol = _mapping(dict_['vol'], 'vol')
        _only(vol, {'unit', 'qty'}, 'vol')
        # NOTE: as in upstream's schema, 'rating' and its 'price' may be
        # left out for a point not rated yet; the price is then 0.
        rating = _mapping(dict_.get('rating', {}), 'rating')
        _only(rating, {'price'}, 'rating')
        fields = {
            'unit': _get(vol, 'unit', 'vol.unit'),
            'qty': _get(vol, 'qty', 'vol.qty'),
            'price': rating.get('price', 0),
        }
        if legacy:
            fields['groupby'] = _decimals_to_floats(dict_['desc'])
            fields['metadata'] = {}
            return fields
    elif dict_.keys() & {'unit', 'qty', 'price'}:
        _only(dict_, _FLAT_KEYS, '')
        fields = {key: _get(dict_, key, key)
                  for key in ('unit', 'qty', 'price')}
    else:
        raise DataFormatError("missing key 'vol'")
    fields['groupby'] = _decimals_to_floats(_get(dict_, 'groupby', 'groupby'))
    fields['metadata'] = _decimals_to_floats(
        _get(dict_, 'metadata', 'metadata'))
    fields['description'] = dict_.get('description')
    return fields


_DataPointBase = collections.namedtuple(
    '_DataPointBase',
    ['unit', 'qty', 'price', 'groupby', 'metadata', 'description'])


class DataPoint(_DataPointBase):
    """One rated measure: an immutable, validated named tuple.

    :param unit: unit of ``qty``, for example ``'instance'`` or ``'GiB'``.
                 ``None`` or ``''`` becomes ``'undefined'``, as upstream.
    :type unit: str or None
    :param qty: measured quantity; converted with :func:`to_decimal`.
    :type qty: decimal.Decimal or int or float or str
    :param price: rated price; converted with :func:`to_decimal`.
    :type price: decimal.Decimal or int or float or str
    :param groupby: attributes the data is grouped by (for example
                    ``project_id``): ``str`` keys, values ``str``,
                    ``int``, finite ``float``, ``bool`` or ``None``, or
                    dicts (``str`` keys) and lists of such values. May
                    also be ``None`` (empty) or a list of pairs.
    :type groupby: collections.abc.Mapping or None
    :param metadata: other descriptive attributes (for example
                     ``flavor_name``), same rules as ``groupby``.
    :type metadata: collections.abc.Mapping or None
    :param description: optional free-form description.
    :type description: str or None
    :raises TypeError: if a field has the wrong type; the message names the
                       field (and the key, for a mapping value).
    :raises ValueError: if ``qty`` or ``price`` cannot be parsed or is not
                        finite, or a float attribute value is not finite.

    ``groupby`` and ``metadata`` are :class:`FrozenAttributes` (shared
    when given as such, else checked copies), whose nested dicts and lists
    are werkzeug ``ImmutableDict`` and
    :class:`~werkzeug.datastructures.ImmutableList`. Every attribute
    is read-only; :meth:`set_price` and ``_replace()`` return a new,
    validated point.
    """

    __slots__ = ()

    def __new__(cls, unit, qty, price, groupby, metadata, description=None):
        if unit is None or unit == '':
            unit = 'undefined'
        elif not isinstance(unit, str):
            raise TypeError(
                f"unit must be a str, got {type(unit).__name__} {unit!r}")
        if description is not None and not isinstance(description, str):
            raise TypeError(
                f"description must be a str or None, "
                f"got {type(description).__name__} {description!r}")
        return super().__new__(
            cls,
            unit,
            to_decimal(qty, 'qty'),
            to_decimal(price, 'price'),
            _frozen_mapping(groupby, 'groupby'),
            _frozen_mapping(metadata, 'metadata'),
            description,
        )

    @classmethod
    def _make(cls, iterable):
        # NOTE: namedtuple's _make() (and so _replace()) calls
        # tuple.__new__ directly, which would skip validation.
        return cls(*iterable)

    def __getnewargs__(self):
        return (self.unit, self.qty, self.price, dict(self.groupby),
                dict(self.metadata), self.description)

    def __hash__(self):
        return hash((self.unit, self.qty, self.price,
                     frozenset(self.groupby.items()),
                     frozenset(self.metadata.items()), self.description))

    def __repr__(self):
        return (f"DataPoint(unit={self.unit!r}, qty={self.qty!r}, "
                f"price={self.price!r}, groupby={dict(self.groupby)!r}, "
                f"metadata={dict(self.metadata)!r}, "
                f"description={self.description!r})")

    def set_price(self, price):
        """Return a copy of the point with another price.

        :param price: the new price; converted with :func:`to_decimal`.
        :type price: decimal.Decimal or int or float or str
        :returns: the new point; this one is unchanged.
        :rtype: DataPoint
        :raises TypeError: if ``price`` has the wrong type.
        :raises ValueError: if ``price`` cannot be parsed or is not finite.
        """
        return self._replace(price=price)

    @property
    def desc(self):
        """All attributes of the point in one read-only dict.

        :returns: ``metadata`` merged with ``groupby``; on a key present in
                  both, the ``groupby`` value wins.
        :rtype: werkzeug.datastructures.ImmutableDict
        """
        output = dict(self.metadata)
        output.update(self.groupby)
        return datastructures.ImmutableDict(output)

    def as_dict(self, legacy=False, mutable=False):
        """Return the point as a dict, in upstream CloudKitty's formats.

        With ``legacy=False``::

            {'vol': {'unit': str, 'qty': Decimal},
             'rating': {'price': Decimal},
             'groupby': {str: value}, 'metadata': {str: value}}

        plus ``'description': str`` if the point has a description (the key
        is left out when it is ``None``, so the dict equals upstream's).

        With ``legacy=True`` (upstream's v1 storage format), ``groupby`` and
        ``metadata`` are replaced by ``'desc'``, their merge (see
        :attr:`desc`), and the description is left out.

        :param legacy: whether to return the legacy format.
        :type legacy: bool
        :param mutable: whether to return fresh plain dicts, which the
                        caller may change. If ``False``, the result and
                        every dict in it are
                        :class:`werkzeug.datastructures.ImmutableDict`.
        :type mutable: bool
        :returns: the point as a dict.
        :rtype: dict
        """
        kind = dict if mutable else datastructures.ImmutableDict
        output = {
            'vol': kind(unit=self.unit, qty=self.qty),
            'rating': kind(price=self.price),
        }
        if mutable:
            thaw = _thaw
        else:
            # NOTE: already frozen all the way down.
            thaw = datastructures.ImmutableDict
        if legacy:
            output['desc'] = thaw(self.desc)
        else:
            output['groupby'] = thaw(self.groupby)
            output['metadata'] = thaw(self.metadata)
            if self.description is not None:
                output['description'] = self.description
        return kind(output)

    def json(self, legacy=False):
        """Return :meth:`as_dict` as a JSON document with sorted keys.

        ``qty`` and ``price`` are JSON numbers with the exact digits of the
        Decimal (for example ``0.30000000000000004`` or ``1E-12``); see
        :func:`dumps`.

        :param legacy: whether to use the legacy format.
        :type legacy: bool
        :returns: the JSON document.
        :rtype: str
        """
        return dumps(self.as_dict(legacy=legacy, mutable=True))

    @classmethod
    def from_dict(cls, dict_, legacy=False):
        """Build a point from a dict in any of the point formats.

        The format is recognised by its keys, whatever ``legacy`` says:

        * ``vol`` and ``desc``: legacy (``desc`` becomes ``groupby``,
          ``metadata`` is empty);
        * ``vol``: current; ``rating`` (and its ``price``) may be left
          out, the price is then 0, as upstream's schema says;
        * ``unit``, ``qty`` or ``price`` at the top: flat, as written by
          earlier versions of this library.

        Numbers may be Decimals, ints, floats or strings and are validated
        like in the constructor; ``description`` is optional. Decimals in
        attribute values become floats (a JSON reader with
        ``parse_float=Decimal`` gives them). ``dict_`` is not changed.

        :param dict_: the mapping to read.
        :type dict_: collections.abc.Mapping
        :param legacy: accepted for compatibility with upstream; the format
                       is recognised from the keys.
        :type legacy: bool
        :returns: the new point.
        :rtype: DataPoint
        :raises DataFormatError: (a ValueError) if a key is missing or
                                 unknown, or a value is invalid; the message
                                 names the field.
        :raises DataFormatTypeError: (a DataFormatError and a TypeError) if
                                     a value has the wrong type.
        """
        return _as_format_error(lambda: cls(**_point_fields(dict_)))


_new_tuple = tuple.__new__
_new_object = object.__new__


def stored_point(unit, qty, price, groupby, metadata, description):
    """Rebuild a point a backend stored, without checking it again.

    For backends reading back the points they validated when they were
    pushed: the result is the :class:`DataPoint` the same arguments give,
    equal and alike in every attribute, made without the checks (a
    retrieve() makes one per point read).

    :param unit: a non-empty str.
    :param qty: a finite Decimal.
    :param price: a finite Decimal.
    :param groupby: a :class:`FrozenAttributes`.
    :param metadata: a :class:`FrozenAttributes`.
    :param description: a str or None.
    :rtype: DataPoint
    """
    return _new_tuple(DataPoint, (unit, qty, price, groupby, metadata,
                                  description))


def stored_frame(start, end, usage):
    """Rebuild a frame of points a backend stored, without checking each.

    For backends reading back frames they validated when they were pushed
    (see :func:`stored_point`): the result equals
    ``DataFrame(start, end, usage)``, but keeps the types in the order
    given (reads give them sorted) and the lists as they are, and checks
    the period and the types, not every point again (a retrieve() reads
    thousands).

    :param start: the start of the period, as for :class:`DataFrame`.
    :param end: its end, likewise.
    :param usage: ``{metric type: [DataPoint, ...]}``, a new dict of new
        lists, which the frame then owns.
    :raises TypeError: for a wrong period or type, as :class:`DataFrame`.
    :raises ValueError: likewise.
    :rtype: DataFrame
    """
    start = to_utc(start, 'start')
    end = to_utc(end, 'end')
    _check_period(start, end)
    for type_ in usage:
        _check_type(type_)
    frame = _new_object(DataFrame)
    frame._start = start
    frame._end = end
    frame._usage = usage
    return frame


def _as_format_error(build):
    """Call ``build()``; report its TypeError or ValueError as a format one.

    So that a caller of ``from_dict()`` catches one family of errors, and
    upstream's ValueError handlers keep working.
    """
    try:
        return build()
    except DataFormatError:
        raise
    except TypeError as exc:
        raise DataFormatTypeError(str(exc)) from exc
    except ValueError as exc:
        raise DataFormatError(str(exc)) from exc


def _check_type(type_):
    """Validate a metric type name."""
    if not isinstance(type_, str):
        raise TypeError(
            f"metric type must be a str, got {type(type_).__name__} "
            f"{type_!r}")
    if not type_:
        raise ValueError("metric type must not be empty")


def _check_points(points, type_):
    """Validate an iterable of points for ``type_``; return them as a list."""
    # NOTE: a DataPoint is itself an iterable (a tuple); without this check
    # it would be reported as a confusing "'str' is not a DataPoint".
    if isinstance(points, DataPoint):
        raise TypeError(
            f"points for {type_!r} must be an iterable of DataPoint, "
            f"got a single DataPoint (use add_point)")
    try:
        points = list(points)
    except TypeError:
        raise TypeError(
            f"points for {type_!r} must be an iterable of DataPoint, "
            f"got {type(points).__name__}") from None
    for index, point in enumerate(points):
        if not isinstance(point, DataPoint):
            raise TypeError(
                f"point {index} for {type_!r} is not a DataPoint: "
                f"{type(point).__name__} {point!r}")
    return points


def _check_period(start, end):
    """Raise ValueError unless ``start < end`` (both aware)."""
    if end <= start:
        raise ValueError(
            f"end ({end.isoformat()}) must be after "
            f"start ({start.isoformat()})")


class DataFrame(object):
    """The rated points collected for one period, grouped by metric type.

    :param start: start of the period (inclusive). Normalised with
                  :func:`to_utc`.
    :type start: datetime.datetime
    :param end: end of the period (exclusive); must be after ``start``.
                Normalised with :func:`to_utc`.
    :type end: datetime.datetime
    :param usage: initial points, as a mapping of metric type (a non-empty
                  str such as ``'cpu'``) to an iterable of
                  :class:`DataPoint`. It is copied; types are added in
                  sorted order, as upstream does.
    :type usage: collections.abc.Mapping or None
    :raises TypeError: if an argument has the wrong type; the message names
                       it.
    :raises ValueError: if ``end <= start`` or a metric type is empty.

    ``start`` and ``end`` may be assigned (upstream's v1 storage adapter
    does), with the same checks. Points can be added with :meth:`add_point`
    and :meth:`add_points` but never removed or changed. As upstream, a
    metric type given an empty list of points is kept, with no point.
    """

    __slots__ = ('_start', '_end', '_usage')

    def __init__(self, start, end, usage=None):
        start = to_utc(start, 'start')
        end = to_utc(end, 'end')
        _check_period(start, end)
        self._start = start
        self._end = end
        # NOTE: dicts keep insertion order, which iterpoints() relies on.
        self._usage = {}
        if usage is None:
            return
        if not isinstance(usage, collections.abc.Mapping):
            raise TypeError(
                f"usage must be a mapping or None, "
                f"got {type(usage).__name__}")
        checked = []
        for type_, points in usage.items():
            _check_type(type_)
            checked.append((type_, _check_points(points, type_)))
        for type_, points in sorted(checked, key=lambda item: item[0]):
            self._usage[type_] = points

    @property
    def start(self):
        """Start of the period (inclusive), aware, in UTC.

        Assigning a datetime normalises it with :func:`to_utc`; it must
        stay before :attr:`end` (else ValueError).

        :rtype: datetime.datetime
        """
        return self._start

    @start.setter
    def start(self, value):
        value = to_utc(value, 'start')
        _check_period(value, self._end)
        self._start = value

    @property
    def end(self):
        """End of the period (exclusive), aware, in UTC.

        Assigning a datetime normalises it with :func:`to_utc`; it must
        stay after :attr:`start` (else ValueError).

        :rtype: datetime.datetime
        """
        return self._end

    @end.setter
    def end(self, value):
        value = to_utc(value, 'end')
        _check_period(self._start, value)
        self._end = value

    def add_point(self, point, type_):
        """Append one point to the points of a metric type.

        :param point: the point to add.
        :type point: DataPoint
        :param type_: the metric type, a non-empty str.
        :type type_: str
        :raises TypeError: if ``point`` is not a :class:`DataPoint` or
                           ``type_`` is not a str.
        :raises ValueError: if ``type_`` is empty.
        """
        _check_type(type_)
        if not isinstance(point, DataPoint):
            raise TypeError(
                f"point for {type_!r} is not a DataPoint: "
                f"{type(point).__name__} {point!r}")
        self._usage.setdefault(type_, []).append(point)

    def add_points(self, points, type_):
        """Append several points to the points of a metric type.

        Every point is checked before any is added, so on error the frame
        is left unchanged. An empty iterable still adds the type.

        :param points: the points to add, in order.
        :type points: iterable of DataPoint
        :param type_: the metric type, a non-empty str.
        :type type_: str
        :raises TypeError: if ``points`` is not an iterable of
                           :class:`DataPoint` or ``type_`` is not a str.
        :raises ValueError: if ``type_`` is empty.
        """
        _check_type(type_)
        points = _check_points(points, type_)
        self._usage.setdefault(type_, []).extend(points)

    def iterpoints(self):
        """Iterate over every point of the frame.

        Metric types come in the order they were first added, and the
        points of each type in the order they were added.

        :returns: an iterator of ``(metric_type, point)`` tuples.
        :rtype: iterator of tuple(str, DataPoint)
        """
        for type_, points in self._usage.items():
            for point in points:
                yield type_, point

    def itertypes(self):
        """Iterate over the metric types of the frame and their points.

        :returns: an iterator of ``(metric_type, points)`` tuples, in the
                  order the types were first added. ``points`` is a new
                  list, so changing it does not change the frame.
        :rtype: iterator of tuple(str, list of DataPoint)
        """
        for type_, points in self._usage.items():
            yield type_, list(points)

    def __len__(self):
        return sum(len(points) for points in self._usage.values())

    def __eq__(self, other):
        if not isinstance(other, DataFrame):
            return NotImplemented
        # NOTE: dict equality ignores the order of the types but list
        # equality keeps the order of the points within a type.
        return (self._start == other._start and self._end == other._end
                and self._usage == other._usage)

    # NOTE: frames are mutable (points can be added), so not hashable.
    __hash__ = None

    def __repr__(self):
        return f"DataFrame(metrics=[{','.join(self._usage)}])"

    def as_dict(self, legacy=False, mutable=False):
        """Return the frame as a dict, in upstream CloudKitty's format::

            {'period': {'begin': datetime, 'end': datetime},
             'usage': {metric_type: [point dict, ...]}}

        Each point dict is :meth:`DataPoint.as_dict` called with the same
        ``legacy`` and ``mutable`` arguments. Datetimes are aware UTC
        :class:`datetime.datetime` objects.

        :param legacy: whether points use the legacy format.
        :type legacy: bool
        :param mutable: whether to return fresh plain dicts and lists. If
                        ``False``, every dict is a
                        :class:`werkzeug.datastructures.ImmutableDict` and
                        the point lists are
                        :class:`werkzeug.datastructures.ImmutableList`.
        :type mutable: bool
        :returns: the frame as a dict.
        :rtype: dict
        """
        kind = dict if mutable else datastructures.ImmutableDict
        points = list if mutable else datastructures.ImmutableList
        usage = {
            type_: points(point.as_dict(legacy=legacy, mutable=mutable)
                          for point in type_points)
            for type_, type_points in self._usage.items()
        }
        return kind(period=kind(begin=self._start, end=self._end),
                    usage=kind(usage))

    def json(self, legacy=False):
        """Return :meth:`as_dict` as a JSON document with sorted keys.

        Datetimes are ISO 8601 strings ending in ``+00:00``; Decimals are
        JSON numbers with their exact digits (see :func:`dumps`).

        :param legacy: whether points use the legacy format.
        :type legacy: bool
        :returns: the JSON document.
        :rtype: str
        """
        return dumps(self.as_dict(legacy=legacy, mutable=True))

    @classmethod
    def from_dict(cls, dict_, legacy=False):
        """Build a frame from the output of :meth:`as_dict` or :meth:`json`.

        ``period.begin`` and ``period.end`` may be datetimes or ISO 8601
        strings (a trailing ``Z`` is accepted); each point may be a
        :class:`DataPoint` or a dict in any format
        :meth:`DataPoint.from_dict` reads. ``dict_`` is not changed.

        :param dict_: the mapping to read.
        :type dict_: collections.abc.Mapping
        :param legacy: accepted for compatibility with upstream; point
                       formats are recognised from their keys.
        :type legacy: bool
        :returns: the new frame.
        :rtype: DataFrame
        :raises DataFormatError: (a ValueError) if a key is missing or
                                 unknown or a value is invalid; the message
                                 names the field, for example
                                 ``usage['cpu'][0]: missing key 'vol'``.
        :raises DataFormatTypeError: (also a TypeError) if a value has the
                                     wrong type.
        """
        return _as_format_error(lambda: cls._from_dict(dict_))

    @classmethod
    def _from_dict(cls, dict_):
        _mapping(dict_, 'frame')
        _only(dict_, {'period', 'usage'}, '')
        period = _mapping(_get(dict_, 'period', 'period'), 'period')
        _only(period, {'begin', 'end'}, 'period')
        start = _parse_datetime(_get(period, 'begin', 'period.begin'),
                                'period.begin')
        end = _parse_datetime(_get(period, 'end', 'period.end'),
                              'period.end')
        usage = _mapping(_get(dict_, 'usage', 'usage'), 'usage')
        parsed = {}
        for type_, points in usage.items():
            _check_type(type_)
            if (isinstance(points, (str, bytes, collections.abc.Mapping))
                    or not isinstance(points, collections.abc.Iterable)):
                raise DataFormatTypeError(
                    f"usage[{type_!r}] must be a list of point dicts, "
                    f"got {type(points).__name__}")
            parsed[type_] = [
                _read_point(point, f"usage[{type_!r}][{index}]")
                for index, point in enumerate(points)]
        return cls(start, end, usage=parsed)


def _read_point(point, where):
    """Return ``point`` as a DataPoint; errors are prefixed with ``where``."""
    if isinstance(point, DataPoint):
        return point
    try:
        return DataPoint.from_dict(point)
    except DataFormatError as exc:
        # NOTE: same class of error, with the place of the bad point.
        raise type(exc)(f"{where}: {exc}") from exc
