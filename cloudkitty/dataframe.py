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

Both types validate everything they are given, so that storage backends can
trust them without checking again:

* quantities and prices are always :class:`decimal.Decimal` and finite;
* attribute mappings hold ``str`` keys; their values are ``str``, ``int``,
  finite ``float``, ``bool`` or ``None``, kept with their type; read-only;
* datetimes are always timezone-aware and in UTC (naive ones mean UTC).

The ``json()`` methods encode every :class:`~decimal.Decimal` as a JSON
*string* holding its exact ``str()``, never as a JSON number, because JSON
numbers are commonly decoded to binary floats, which would silently lose
precision. The ``from_dict()`` class methods accept those strings back.
"""

import collections
import collections.abc
import datetime
import decimal
import json
import math
import types

__all__ = ['DataFrame', 'DataPoint', 'to_decimal', 'to_utc']


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


def _frozen_str_mapping(value, field):
    """Validate a groupby/metadata mapping and return a read-only copy.

    Keys are str; values are str, int, float, bool or None (what
    collectors produce), kept with their type. A float must be finite.
    """
    if value is None:
        value = {}
    elif not isinstance(value, collections.abc.Mapping):
        raise TypeError(
            f"{field} must be a mapping, got {type(value).__name__}")
    # NOTE: copy first so that the caller keeping a reference to its own
    # dict cannot change the point afterwards.
    copy = dict(value)
    for key, val in copy.items():
        if not isinstance(key, str):
            raise TypeError(f"{field} key {key!r} is not a str")
        # NOTE: no silent str() here: anything else (a list, a datetime)
        # usually means the collector produced something unexpected.
        if val is not None and not isinstance(val, _LABEL_TYPES):
            raise TypeError(
                f"{field}[{key!r}] value {val!r} is not a str, int, float, "
                f"bool or None (got {type(val).__name__})")
        # NOTE: NaN equals nothing, not even itself: it could neither be
        # grouped nor filtered on, and JSON has no spelling for it.
        if isinstance(val, float) and not math.isfinite(val):
            raise ValueError(
                f"{field}[{key!r}] value {val!r} is not a finite float")
    return types.MappingProxyType(copy)


#: The types a groupby or metadata value may have (besides None).
_LABEL_TYPES = (str, int, float)


def _get(dict_, key, path):
    """Return ``dict_[key]``, or raise a ValueError naming ``path``."""
    try:
        return dict_[key]
    except KeyError:
        raise ValueError(f"missing key {path!r}") from None


def _check_mapping(value, path):
    if not isinstance(value, collections.abc.Mapping):
        raise TypeError(
            f"{path} must be a mapping, got {type(value).__name__}")
    return value


def _json_default(obj):
    """Encode the types :mod:`json` does not know about."""
    if isinstance(obj, decimal.Decimal):
        # NOTE: a string, not a float, so that no digit is lost.
        return str(obj)
    if isinstance(obj, datetime.datetime):
        return obj.isoformat()
    raise TypeError(
        f"Object of type {type(obj).__name__} is not JSON serializable")


_DataPointBase = collections.namedtuple(
    '_DataPointBase',
    ['unit', 'qty', 'price', 'groupby', 'metadata', 'description'])


class DataPoint(_DataPointBase):
    """One rated measure: an immutable, validated named tuple.

    :param unit: unit of ``qty``, for example ``'instance'`` or ``'GiB'``.
                 May be empty.
    :type unit: str
    :param qty: measured quantity; converted with :func:`to_decimal`.
    :type qty: decimal.Decimal or int or float or str
    :param price: rated price; converted with :func:`to_decimal`.
    :type price: decimal.Decimal or int or float or str
    :param groupby: attributes the data is grouped by (for example
                    ``project_id``). ``None`` means empty.
    :type groupby: collections.abc.Mapping of str to str or None
    :param metadata: other descriptive attributes (for example
                     ``flavor_name``). ``None`` means empty.
    :type metadata: collections.abc.Mapping of str to str or None
    :param description: optional free-form description.
    :type description: str or None
    :raises TypeError: if a field has the wrong type; the message names the
                       field.
    :raises ValueError: if ``qty`` or ``price`` cannot be parsed or is not
                        finite; the message names the field.

    ``qty`` and ``price`` are always finite :class:`~decimal.Decimal`
    values; ``groupby`` and ``metadata`` are read-only
    :class:`types.MappingProxyType` views over private copies.
    Every attribute is read-only.
    """

    __slots__ = ()

    def __new__(cls, unit, qty, price, groupby, metadata, description=None):
        if not isinstance(unit, str):
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
            _frozen_str_mapping(groupby, 'groupby'),
            _frozen_str_mapping(metadata, 'metadata'),
            description,
        )

    @classmethod
    def _make(cls, iterable):
        # NOTE: namedtuple's _make() (and so _replace()) calls
        # tuple.__new__ directly, which would skip validation.
        return cls(*iterable)

    def __getnewargs__(self):
        # NOTE: mappingproxy objects cannot be pickled; hand plain dicts to
        # __new__, which makes them read-only again.
        return (self.unit, self.qty, self.price, dict(self.groupby),
                dict(self.metadata), self.description)

    def __hash__(self):
        # NOTE: tuple.__hash__ would fail on the mappingproxy fields.
        return hash((self.unit, self.qty, self.price,
                     frozenset(self.groupby.items()),
                     frozenset(self.metadata.items()), self.description))

    def __repr__(self):
        return (f"DataPoint(unit={self.unit!r}, qty={self.qty!r}, "
                f"price={self.price!r}, groupby={dict(self.groupby)!r}, "
                f"metadata={dict(self.metadata)!r}, "
                f"description={self.description!r})")

    @property
    def desc(self):
        """All attributes of the point in one new, mutable dict.

        :returns: ``metadata`` merged with ``groupby``; on a key present in
                  both, the ``groupby`` value wins.
        :rtype: dict
        """
        output = dict(self.metadata)
        output.update(self.groupby)
        return output

    def as_dict(self, legacy=False, mutable=False):
        """Return the point as a dict.

        With ``legacy=False``::

            {'unit': str, 'qty': Decimal, 'price': Decimal,
             'groupby': {str: str}, 'metadata': {str: str},
             'description': str or None}

        With ``legacy=True`` (the format of upstream CloudKitty's v1 API)::

            {'vol': {'unit': str, 'qty': Decimal},
             'rating': {'price': Decimal},
             'groupby': {str: str}, 'metadata': {str: str}}

        :param legacy: whether to return the legacy format.
        :type legacy: bool
        :param mutable: whether to return plain dicts. If ``False``, the
                        result is a :class:`types.MappingProxyType`; in the
                        non-legacy format its ``groupby`` and ``metadata``
                        are read-only too, while in the legacy format every
                        nested mapping is a fresh plain dict.
        :type mutable: bool
        :returns: the point as a mapping.
        :rtype: dict or types.MappingProxyType
        """
        if legacy:
            # NOTE: legacy consumers expect plain nested dicts; they are
            # fresh copies, so changing them cannot alter the point.
            output = {
                'vol': {'unit': self.unit, 'qty': self.qty},
                'rating': {'price': self.price},
                'groupby': dict(self.groupby),
                'metadata': dict(self.metadata),
            }
        else:
            output = {
                'unit': self.unit,
                'qty': self.qty,
                'price': self.price,
                'groupby': (dict(self.groupby) if mutable
                            else self.groupby),
                'metadata': (dict(self.metadata) if mutable
                             else self.metadata),
                'description': self.description,
            }
        return output if mutable else types.MappingProxyType(output)

    def json(self, legacy=False):
        """Return the point as a JSON document with sorted keys.

        ``qty`` and ``price`` are encoded as JSON strings holding the exact
        ``str()`` of the Decimal (for example ``"0.1"`` or ``"1E-12"``), so
        that no precision is lost to binary floats.

        :param legacy: whether to use the legacy format (see
                       :meth:`as_dict`).
        :type legacy: bool
        :returns: the JSON document.
        :rtype: str
        """
        return json.dumps(self.as_dict(legacy=legacy, mutable=True),
                          default=_json_default, sort_keys=True)

    @classmethod
    def from_dict(cls, dict_, legacy=False):
        """Build a point from the output of :meth:`as_dict`.

        Numbers may be Decimals, ints, floats or strings (as produced by
        :meth:`json`), and are validated like in the constructor.

        :param dict_: the mapping to read, in the format selected by
                      ``legacy``. In the non-legacy format ``description``
                      is optional.
        :type dict_: collections.abc.Mapping
        :param legacy: whether ``dict_`` is in the legacy format.
        :type legacy: bool
        :returns: the new point.
        :rtype: DataPoint
        :raises ValueError: if a key is missing (the message names it) or a
                            value is invalid.
        :raises TypeError: if a value has the wrong type.
        """
        _check_mapping(dict_, 'DataPoint dict')
        if legacy:
            vol = _check_mapping(_get(dict_, 'vol', 'vol'), 'vol')
            rating = _check_mapping(_get(dict_, 'rating', 'rating'),
                                    'rating')
            return cls(
                unit=_get(vol, 'unit', 'vol.unit'),
                qty=_get(vol, 'qty', 'vol.qty'),
                price=_get(rating, 'price', 'rating.price'),
                groupby=_get(dict_, 'groupby', 'groupby'),
                metadata=_get(dict_, 'metadata', 'metadata'),
            )
        return cls(
            unit=_get(dict_, 'unit', 'unit'),
            qty=_get(dict_, 'qty', 'qty'),
            price=_get(dict_, 'price', 'price'),
            groupby=_get(dict_, 'groupby', 'groupby'),
            metadata=_get(dict_, 'metadata', 'metadata'),
            description=dict_.get('description'),
        )


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
                  :class:`DataPoint`. It is copied.
    :type usage: collections.abc.Mapping or None
    :raises TypeError: if an argument has the wrong type; the message names
                       it.
    :raises ValueError: if ``end <= start`` or a metric type is empty.

    ``start`` and ``end`` are read-only. Points can be added with
    :meth:`add_point` and :meth:`add_points` but never removed or changed.
    Metric types without any point are not kept.
    """

    __slots__ = ('_start', '_end', '_usage')

    def __init__(self, start, end, usage=None):
        start = to_utc(start, 'start')
        end = to_utc(end, 'end')
        if end <= start:
            raise ValueError(
                f"end ({end.isoformat()}) must be after "
                f"start ({start.isoformat()})")
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
        for type_, points in checked:
            if points:
                self._usage[type_] = points

    @property
    def start(self):
        """Start of the period (inclusive), aware, in UTC.

        :rtype: datetime.datetime
        """
        return self._start

    @property
    def end(self):
        """End of the period (exclusive), aware, in UTC.

        :rtype: datetime.datetime
        """
        return self._end

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
        is left unchanged.

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
        if points:
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
        counts = {type_: len(points) for type_, points in self._usage.items()}
        return (f"DataFrame(start={self._start.isoformat()}, "
                f"end={self._end.isoformat()}, points={counts!r})")

    def as_dict(self, legacy=False, mutable=False):
        """Return the frame as a dict::

            {'period': {'begin': datetime, 'end': datetime},
             'usage': {metric_type: [point dict, ...]}}

        Each point dict is :meth:`DataPoint.as_dict` called with the same
        ``legacy`` and ``mutable`` arguments. Datetimes are kept as aware
        UTC :class:`datetime.datetime` objects.

        :param legacy: whether points use the legacy format.
        :type legacy: bool
        :param mutable: whether to return plain dicts and lists. If
                        ``False``, every mapping is a
                        :class:`types.MappingProxyType` and the point lists
                        are tuples.
        :type mutable: bool
        :returns: the frame as a mapping.
        :rtype: dict or types.MappingProxyType
        """
        container = list if mutable else tuple
        usage = {
            type_: container(point.as_dict(legacy=legacy, mutable=mutable)
                             for point in points)
            for type_, points in self._usage.items()
        }
        period = {'begin': self._start, 'end': self._end}
        if mutable:
            return {'period': period, 'usage': usage}
        return types.MappingProxyType({
            'period': types.MappingProxyType(period),
            'usage': types.MappingProxyType(usage),
        })

    def json(self, legacy=False):
        """Return the frame as a JSON document with sorted keys.

        Datetimes are ISO 8601 strings ending in ``+00:00``; Decimals are
        JSON strings holding their exact ``str()`` (see
        :meth:`DataPoint.json`).

        :param legacy: whether points use the legacy format.
        :type legacy: bool
        :returns: the JSON document.
        :rtype: str
        """
        return json.dumps(self.as_dict(legacy=legacy, mutable=True),
                          default=_json_default, sort_keys=True)

    @classmethod
    def from_dict(cls, dict_, legacy=False):
        """Build a frame from the output of :meth:`as_dict`.

        ``period.begin`` and ``period.end`` may be datetimes or ISO 8601
        strings (a trailing ``Z`` is accepted); points are read with
        :meth:`DataPoint.from_dict`.

        :param dict_: the mapping to read.
        :type dict_: collections.abc.Mapping
        :param legacy: whether points are in the legacy format.
        :type legacy: bool
        :returns: the new frame.
        :rtype: DataFrame
        :raises ValueError: if a key is missing or a value is invalid; the
                            message names the field, for example
                            ``period.begin`` or
                            ``usage['cpu'][0]: missing key 'qty'``.
        :raises TypeError: if a value has the wrong type; the message names
                           the field.
        """
        _check_mapping(dict_, 'DataFrame dict')
        period = _check_mapping(_get(dict_, 'period', 'period'), 'period')
        start = _parse_datetime(_get(period, 'begin', 'period.begin'),
                                'period.begin')
        end = _parse_datetime(_get(period, 'end', 'period.end'),
                              'period.end')
        usage = _check_mapping(_get(dict_, 'usage', 'usage'), 'usage')
        parsed = {}
        for type_, points in usage.items():
            _check_type(type_)
            if (isinstance(points, (str, bytes))
                    or not isinstance(points, collections.abc.Iterable)):
                raise TypeError(
                    f"usage[{type_!r}] must be a list of point dicts, "
                    f"got {type(points).__name__}")
            parsed[type_] = []
            for index, point in enumerate(points):
                try:
                    parsed[type_].append(
                        DataPoint.from_dict(point, legacy=legacy))
                except (TypeError, ValueError) as exc:
                    # NOTE: same kind of error, with the position of the
                    # bad point prepended so the caller can find it.
                    kind = (TypeError if isinstance(exc, TypeError)
                            else ValueError)
                    raise kind(f"usage[{type_!r}][{index}]: {exc}") from exc
        return cls(start, end, usage=parsed)
