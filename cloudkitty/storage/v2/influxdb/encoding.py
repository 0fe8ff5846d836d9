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
"""How a rated point becomes an InfluxDB point, and back.

One point of a frame is one line of the ``rating`` measurement:

* **time**: the frame's start in nanoseconds, plus a *slot* modulo 1,000.
  InfluxDB keeps one point per measurement, tag set and time, so two
  identical points of one frame need two times; an offset below a
  microsecond keeps every point inside any window whose bounds are
  microseconds (the precision of a Python datetime). Slots from 1,000 on
  also set the tag ``ck_n`` (slot // 1000). :mod:`.slots` hands slots out.
* **tags**: ``ck_type`` (metric type), ``ck_unit``, ``ck_scope`` (absent
  when the push had no scope), ``ck_g`` (the groupby keys, joined by
  ``.``; absent when there are none) and one ``k_<key>`` per groupby or
  metadata key holding the point's value for it (groupby wins, as in
  :attr:`cloudkitty.dataframe.DataPoint.desc`).
* **fields**: the exact money, each value either as one *short* field,
  ``q`` (``p`` for the price) in millionths, when it has at most six
  fractional digits and below ``2**31`` millionths (about 2147.48) in
  magnitude, or else as 31-bit integer limbs of ``10**-12`` units
  (``qa``, ``qb`` and, for values beyond ``±2**62 * 1e-12``, ``qc``;
  ``pa``, ``pb``, ``pc`` for the price); either way InfluxDB's int64 sums
  of ``2**32`` points stay exact (:data:`MONEY_FIELDS`). Then, when
  needed, ``ck_len`` (the frame length in microseconds, when it is not
  :data:`DEFAULT_LENGTH_US`, an hour), ``ck_desc`` (the description, as
  JSON so that no line break reaches the line protocol) and ``ck_meta``
  (JSON of the metadata values that a groupby value of the same key
  hides). InfluxDB's cost of a point grows with its fields (it keys each
  field of each point by the series key): a point of an hour's frame
  whose money has short fields has two fields, not five, and costs
  influxd about half. Points written before short fields and a left-out
  ``ck_len`` carry limbs and ``ck_len`` always, and read the same: every
  reader sums all of :data:`MONEY_FIELDS` and counts :data:`COUNTED`.

Every key and value is *percent-encoded*: ASCII letters, digits and ``_``
stay, every other byte of its UTF-8 form becomes ``%XX``, and a value gets
a leading ``.``. The line protocol then needs no escaping at all, an empty
string is a tag (``.``), and a key is always a safe InfluxQL identifier.

A groupby or metadata value that is not a str leads with its kind instead
of ``.`` (see :func:`cloudkitty.storage.v2.query.encode_label`), followed
by its encoded string form: ``i3`` for ``3``, ``f3%2E5`` for ``3.5``,
``bTrue``, ``nNone``. So ``3`` and ``'3'`` are other tags (other groups),
and a filter on ``'3'`` asks for either (:func:`filter_tags`).
"""

import functools
import json
import urllib.parse

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query

#: The measurement of the rated points.
MEASUREMENT = 'rating'
#: Width of a money limb: sums of 2**32 limbs still fit an int64.
LIMB_BITS = 31
_LIMB_MASK = (1 << LIMB_BITS) - 1
#: Values whose units reach this magnitude get a third limb.
_TWO_LIMBS = 1 << (2 * LIMB_BITS)
#: The bound on qty and price magnitudes (``Features.max_magnitude``): a
#: third limb stays below ``2**28``, so that InfluxDB's int64 sums of it
#: stay exact over ``2**35`` points.
MAX_MAGNITUDE = 10 ** 15
#: Slots told apart by time alone (nanoseconds after the frame start).
SLOTS = 1000
#: InfluxDB 1.x keeps series keys (measurement and tags) below 64 KiB.
MAX_SERIES_KEY = 60000
#: ``10**-12`` units per unit of a short field (millionths).
SHORT_FACTOR = 10 ** 6
#: Short fields hold values below this many ``10**-12`` units (``2**31``
#: millionths) in magnitude: sums of ``2**32`` of them fit an int64.
_SHORT_BOUND = SHORT_FACTOR << LIMB_BITS
#: Every money field a point may have: name -> (money field, its weight
#: in ``10**-12`` units). A value is the sum of its fields times their
#: weights, and so are the sums of many values (absent fields are 0).
MONEY_FIELDS = {'qa': ('qty', 1), 'qb': ('qty', 1 << LIMB_BITS),
                'qc': ('qty', 1 << (2 * LIMB_BITS)),
                'q': ('qty', SHORT_FACTOR), 'pa': ('price', 1),
                'pb': ('price', 1 << LIMB_BITS),
                'pc': ('price', 1 << (2 * LIMB_BITS)),
                'p': ('price', SHORT_FACTOR)}
#: Every point has exactly one of these fields: its qty's short field or
#: its first limb. A count of points adds up their counts.
COUNTED = ('qa', 'q')

TYPE_TAG = 'ck_type'
UNIT_TAG = 'ck_unit'
SCOPE_TAG = 'ck_scope'
GROUPBY_TAG = 'ck_g'
EXTRA_SLOT_TAG = 'ck_n'
_TAGS = frozenset((TYPE_TAG, UNIT_TAG, SCOPE_TAG, GROUPBY_TAG,
                   EXTRA_SLOT_TAG))
KEY_PREFIX = 'k_'
#: InfluxDB's time range, in nanoseconds since the epoch (1677 to 2262).
MIN_NS = -(2 ** 63) + 2
MAX_NS = 2 ** 63 - 2
LENGTH_FIELD = 'ck_len'
#: The frame length (µs) of a point without ``ck_len``: an hour, the
#: default period of CloudKitty. A constant, never a setting: points
#: written under one setting must read the same under another.
DEFAULT_LENGTH_US = 3600 * 10 ** 6
DESCRIPTION_FIELD = 'ck_desc'
HIDDEN_FIELD = 'ck_meta'
#: The only field of a *marker*: a point a delete writes into a series to
#: put it back in InfluxDB's index, then deletes (see :mod:`.deletes`).
MARKER_FIELD = 'ck_gone'

# NOTE: quote() never escapes these; they are not kept as they are.
_ALWAYS_SAFE = str.maketrans({'.': '%2E', '-': '%2D', '~': '%7E'})


@functools.lru_cache(maxsize=65536)
def _encode(text):
    # NOTE: labels repeat from point to point, hence the cache.
    if '\x00' in text:
        query.check_text(text, 'dataframes')
    try:
        return urllib.parse.quote(text, safe='').translate(_ALWAYS_SAFE)
    except UnicodeEncodeError:
        # NOTE: refused like on every backend, with the same message.
        query.check_text(text, 'dataframes')
        raise


@functools.lru_cache(maxsize=65536)
def _unescape(text):
    # NOTE: encoded text is ASCII letters, digits, _ and %XX of UTF-8
    # bytes: exactly what unquote() reverses. Labels repeat from point to
    # point, hence the cache.
    return urllib.parse.unquote(text, errors='strict')


def encode_value(value):
    """Return the tag value (or bound parameter) that stands for ``value``.

    The result is never empty and needs no escaping anywhere.
    """
    return '.' + _encode(value)


def decode_value(tag):
    """Return the str a tag value stands for; None for an absent tag."""
    if not tag:
        return None
    return _unescape(tag[1:])


def encode_label(value):
    """Return the tag value of a groupby/metadata value of any kind."""
    if isinstance(value, str):
        return '.' + _encode(value)
    kind, text = query.encode_label(value)
    return kind + _encode(text)


def decode_label(tag):
    """Return the value a label tag stands for, typed; None if absent."""
    if not tag:
        return None
    if tag[0] == '.':
        return _unescape(tag[1:])
    return query.decode_label(tag[0], _unescape(tag[1:]))


def filter_tags(text):
    """Return the tag values a filter value matches (one per kind).

    See :func:`cloudkitty.storage.v2.query.filter_candidates`.
    """
    return [('.' if kind == query.STR else kind) + _encode(value)
            for kind, value in query.filter_candidates(text)]


def group_value(tag):
    """Return the value a label tag groups as: ``''`` when absent."""
    return '' if not tag else decode_label(tag)


def key_tag(key):
    """Return the tag key of a groupby/metadata key (a safe identifier)."""
    return KEY_PREFIX + _encode(key)


def tag_key_of(key):
    """Return the tag key a filter or groupby entry reads (``type`` too)."""
    return TYPE_TAG if key == 'type' else key_tag(key)


def quote_identifier(name):
    """Quote an InfluxQL identifier (database, retention policy, tag key).

    Double quotes and backslashes are escaped, so any name is one
    identifier; the names this module builds are plain ASCII anyway.
    """
    return '"%s"' % name.replace('\\', '\\\\').replace('"', '\\"')


def split_units(units):
    """Split an int of ``10**-12`` units into its limbs.

    :returns: ``(a, b)`` or ``(a, b, c)`` with ``units == a + b * 2**31 +
        c * 2**62``; ``a`` and (with three limbs) ``b`` are in
        ``[0, 2**31)``, so a sum of up to ``2**32`` limbs fits an int64.
    """
    low = units & _LIMB_MASK
    if -_TWO_LIMBS <= units < _TWO_LIMBS:
        return low, units >> LIMB_BITS
    return low, (units >> LIMB_BITS) & _LIMB_MASK, units >> (2 * LIMB_BITS)


def money_units(row):
    """Return ``(qty, price)`` in ``10**-12`` units of a row of fields.

    :param row: ``{field: value}`` holding some of :data:`MONEY_FIELDS`
        (values, or sums of them), absent or None for 0.
    """
    # NOTE: MONEY_FIELDS spelt out: retrieve() calls this per point.
    get = row.get
    return ((get('q') or 0) * SHORT_FACTOR + (get('qa') or 0)
            + ((get('qb') or 0) << LIMB_BITS)
            + ((get('qc') or 0) << (2 * LIMB_BITS)),
            (get('p') or 0) * SHORT_FACTOR + (get('pa') or 0)
            + ((get('pb') or 0) << LIMB_BITS)
            + ((get('pc') or 0) << (2 * LIMB_BITS)))


def money_fields(units, prefix):
    """The line-protocol fields of one money value (``q`` or ``p``).

    Its short field when it fits one (see the module docstring), else its
    limbs (see :func:`split_units`).
    """
    if not units % SHORT_FACTOR and -_SHORT_BOUND < units < _SHORT_BOUND:
        return '%s=%di' % (prefix, units // SHORT_FACTOR)
    return _limb_fields(units, prefix)


def _limb_fields(units, prefix):
    """The limbs of a money value, as line-protocol fields."""
    limbs = split_units(units)
    if len(limbs) == 2:
        return '%sa=%di,%sb=%di' % (prefix, limbs[0], prefix, limbs[1])
    return '%sa=%di,%sb=%di,%sc=%di' % (prefix, limbs[0], prefix, limbs[1],
                                        prefix, limbs[2])


def field_string(text):
    """Return ``text`` as a line-protocol string field value."""
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"')


#: What an encoded point (a plain tuple, see :func:`encode_point`) holds,
#: by index: the frame start in ns; ``measurement,tags`` (what InfluxDB
#: keys the point by, with the time); the qty and the price in ``10**-12``
#: units; the frame length in µs; the encoded metric type; its
#: line-protocol fields (money, then ``ck_len`` unless the length is
#: :data:`DEFAULT_LENGTH_US`, ``ck_desc``, ``ck_meta``); the last two
#: alone (``,ck_desc=...,ck_meta=...``), usually empty.
START, IDENTITY, QTY, PRICE, LENGTH, TYPE, FIELDS, EXTRA = range(8)


def point_fields(point):
    """An encoded point's line-protocol fields."""
    return point[FIELDS]


def legacy_point(point):
    """An encoded point with the fields earlier versions wrote.

    Limbs for every money value and ``ck_len`` always: a keyed retry of a
    push an earlier version began must write the very points it may have
    written, or InfluxDB would merge both sets of fields into one point
    (see :data:`.slots.LAYOUT`).
    """
    fields = '%s,%s,%s=%di%s' % (
        _limb_fields(point[QTY], 'q'), _limb_fields(point[PRICE], 'p'),
        LENGTH_FIELD, point[LENGTH], point[EXTRA])
    return point[:FIELDS] + (fields, point[EXTRA])


def slot_place(start_ns, slot):
    """Where a slot (an int >= 0) of a frame start lies.

    Slot ``s`` is the time ``start + s % SLOTS`` ns, and from ``SLOTS`` on
    also the tag ``ck_n = s // SLOTS``: a frame start holds any number of
    identical points (and of records, and of reservations).

    :returns: ``(ck_n, time)``; ``ck_n`` 0 means no such tag.
    """
    extra, offset = divmod(slot, SLOTS)
    return extra, start_ns + offset


def extra_slot_tag(extra):
    """The ``,ck_n=...`` tag of a :func:`slot_place`, or ``''`` for 0."""
    return ',%s=%d' % (EXTRA_SLOT_TAG, extra) if extra else ''


def frame_start(nanos):
    """The frame start (ns) of a time among its slots."""
    return nanos // SLOTS * SLOTS


def point_line(point, slot):
    """An encoded point's line protocol at a slot (see slot_place)."""
    if slot < SLOTS:
        return '%s %s %d' % (point[IDENTITY], point[FIELDS],
                             point[START] + slot)
    extra, moment = slot_place(point[START], slot)
    return '%s%s %s %d' % (point[IDENTITY], extra_slot_tag(extra),
                           point[FIELDS], moment)


def series_key(tags):
    """Return the series key of ``{tag: encoded value}``, sans measurement."""
    return ','.join('%s=%s' % item for item in sorted(tags.items()))


_PREFIX = len(MEASUREMENT) + 1


def series_key_of(identity):
    """Return the series key of a point's :data:`IDENTITY`."""
    return identity[_PREFIX:]


def parse_series_key(key):
    """Return ``{tag: encoded value}`` of a series key."""
    return dict(item.split('=', 1) for item in key.split(','))


@functools.lru_cache(maxsize=65536)
def _labels(scope_tag, type_, unit, groupby, metadata):
    """What a point's labels (given as item tuples) encode to.

    The cache compares values with ``==``, under which ``1``, ``1.0`` and
    ``True`` are one: the last item of the answer says whether any value
    was not a str, and then the caller asks :func:`_typed_labels`.

    :returns: ``(identity, type tag, hidden, typed)``: the series key with
        its measurement, the encoded type, the metadata keys a groupby key
        of the same name hides, and whether a value is not a str.
    """
    tags = {TYPE_TAG: encode_value(type_), UNIT_TAG: encode_value(unit)}
    if scope_tag is not None:
        tags[SCOPE_TAG] = scope_tag
    if groupby:
        tags[GROUPBY_TAG] = '.'.join(sorted(_encode(k) for k, _ in groupby))
    typed = False
    for key, value in metadata + groupby:
        if not isinstance(value, str):
            typed = True
        tags[key_tag(key)] = encode_label(value)
    identity = MEASUREMENT + ',' + series_key(tags)
    if len(identity) > MAX_SERIES_KEY:
        raise exceptions.InvalidQuery(
            'dataframes', 'the labels of a %s point take %d bytes once '
            'encoded; InfluxDB keeps at most %d' % (type_, len(identity),
                                                    MAX_SERIES_KEY))
    grouped = {key for key, _ in groupby}
    hidden = tuple(key for key, _ in metadata if key in grouped)
    return identity, tags[TYPE_TAG], hidden, typed


@functools.lru_cache(maxsize=4096)
def _typed_labels(scope_tag, type_, unit, groupby, metadata, identities):
    """:func:`_labels` for values not all str, cached on their identities.

    :param identities: the :func:`~cloudkitty.storage.v2.query.
        encode_label` of every groupby then metadata value.
    """
    return _labels.__wrapped__(scope_tag, type_, unit, groupby, metadata)


def encode_point(start_ns, length_us, scope_tag, type_, point):
    """Encode one DataPoint of a frame (see :func:`encode_points`)."""
    return encode_points(start_ns, length_us, scope_tag,
                         ((type_, point),))[0]


def encode_points(start_ns, length_us, scope_tag, points):
    """Encode the DataPoints of a frame, checked and ready but for slots.

    A point's line is formatted only by :func:`point_line`, once its slot
    is known, so that a push formats its lines while the first ones are
    being written. An encoded point is a plain tuple (see :data:`START`
    and the other indices) of str and int, which the garbage collector
    stops tracking after its first pass: as objects, the points of a push
    were walked by every collection, which took a seventh of a
    million-point push's time. One loop for a frame: a push encodes
    millions of points, and a call per point was a tenth of its Python.

    :param start_ns: the frame start, in nanoseconds.
    :param length_us: the frame length, in microseconds.
    :param scope_tag: the encoded scope, or None.
    :param points: ``(metric type, DataPoint)`` pairs.
    :returns: a list of encoded points, in the order of ``points``.
    :raises InvalidQuery: for money that is not finite or not below
        :data:`MAX_MAGNITUDE` (see :func:`cloudkitty.storage.v2.money.
        check`), or labels too long for an InfluxDB series key.
    """
    # NOTE: what every point of the frame shares, and locals, hoisted.
    length_field = ''
    if length_us != DEFAULT_LENGTH_US:
        length_field = ',%s=%di' % (LENGTH_FIELD, length_us)
    labels = _labels
    units = money.point_units
    factor = SHORT_FACTOR
    bound = _SHORT_BOUND
    encoded = []
    append = encoded.append
    for type_, point in points:
        unit, qty, price, groupby, metadata, description = point
        groupby = tuple(groupby.items())
        metadata = tuple(metadata.items())
        identity, type_tag, hidden, typed = labels(
            scope_tag, type_, unit, groupby, metadata)
        if typed:
            # NOTE: the cached answer may be that of equal values of other
            # types (1 for True): values not all str are encoded by
            # identity.
            encode = query.encode_label
            identity, type_tag, hidden, _ = _typed_labels(
                scope_tag, type_, unit, groupby, metadata,
                tuple(encode(v) for _, v in groupby + metadata))
        qty, price = units(qty, price, MAX_MAGNITUDE)
        if not (qty % factor or price % factor) and -bound < qty < bound \
                and -bound < price < bound:
            # NOTE: the usual fields, in one format (see money_fields).
            fields = 'q=%di,p=%di%s' % (qty // factor, price // factor,
                                        length_field)
        else:
            fields = '%s,%s%s' % (money_fields(qty, 'q'),
                                  money_fields(price, 'p'), length_field)
        extra = ''
        if description is not None:
            extra = ',%s=%s' % (DESCRIPTION_FIELD,
                                field_string(json.dumps(description)))
        if hidden:
            metadata = point.metadata
            extra += ',%s=%s' % (HIDDEN_FIELD, field_string(json.dumps(
                {key: metadata[key] for key in hidden}, sort_keys=True)))
        if extra:
            fields += extra
        append((start_ns, identity, qty, price, length_us, type_tag,
                fields, extra))
    return encoded


def decode_row(row):
    """Rebuild ``(type, DataPoint)`` from a ``SELECT *`` row.

    :param row: ``{column: value}``; absent tags and fields are None or
        missing.
    """
    series = Series(row, tag_columns(row))
    return series.type, series.point(row)


class Series:
    """What the rows of one series share, decoded once.

    Reading a point was mostly decoding its labels, the same for every
    point of its series: :class:`SeriesReader` decodes them once per
    series of a response, and :meth:`point` adds what is the row's own.

    :param row: a ``SELECT *`` row of the series.
    :param columns: the :func:`tag_columns` of its response.
    :ivar type: the metric type.
    :ivar order: how the series sorts among others of a frame start and
        type (its tags), for retrieve()'s order.
    """

    __slots__ = ('type', 'order', '_unit', '_groupby', '_metadata')

    def __init__(self, row, columns):
        self.order = tuple((column, row[column]) for column in columns
                           if row.get(column))
        groupby, metadata = _decoded_labels(row.get(GROUPBY_TAG), tuple(
            item for item in self.order if item[0].startswith(KEY_PREFIX)))
        # NOTE: built and checked once; every point of the series shares
        # its read-only attributes (see dataframe.stored_point).
        shared = dataframe.DataPoint(decode_value(row[UNIT_TAG]), 0, 0,
                                     dict(groupby), dict(metadata))
        self.type = decode_value(row[TYPE_TAG])
        self._unit = shared.unit
        self._groupby = shared.groupby
        self._metadata = shared.metadata

    def point(self, row):
        """Rebuild the DataPoint of one row of the series."""
        qty, price = money_units(row)
        description = row.get(DESCRIPTION_FIELD)
        if description is not None:
            description = json.loads(description)
        hidden = row.get(HIDDEN_FIELD)
        if hidden:
            # NOTE: metadata a groupby value hides: the row's own.
            metadata = dict(self._metadata)
            metadata.update(json.loads(hidden))
            return dataframe.DataPoint(
                self._unit, money.from_units(qty), money.from_units(price),
                self._groupby, metadata, description)
        return dataframe.stored_point(
            self._unit, money.from_units(qty), money.from_units(price),
            self._groupby, self._metadata, description)


class SeriesReader:
    """Finds the :class:`Series` of each row of a response, decoded once.

    :param columns: the :func:`tag_columns` of the response's rows.
    """

    __slots__ = ('_columns', '_found')

    def __init__(self, columns):
        self._columns = columns
        self._found = {}

    def __call__(self, row):
        """Return the :class:`Series` of a row."""
        key = tuple(map(row.get, self._columns))
        series = self._found.get(key)
        if series is None:
            series = self._found[key] = Series(row, self._columns)
        return series


@functools.lru_cache(maxsize=1 << 16)
def _decoded_labels(groupby_tag, items):
    """Decode the label tags of a row: ``(groupby, metadata)`` items.

    Cached: the points of one series, read over many frames, share their
    tags, and decoding them was most of what reading a point cost.

    :param groupby_tag: the row's groupby-keys tag, or None.
    :param items: the row's ``(column, tag value)`` of label columns.
    """
    groupby_keys = set()
    if groupby_tag:
        groupby_keys = {_unescape(k) for k in groupby_tag.split('.')}
    groupby = []
    metadata = []
    for column, value in items:
        key = _unescape(column[len(KEY_PREFIX):])
        target = groupby if key in groupby_keys else metadata
        target.append((key, decode_label(value)))
    return tuple(groupby), tuple(metadata)


def frame_length(row):
    """Return the frame length (µs) of a ``SELECT *`` row.

    A point whose frame lasts :data:`DEFAULT_LENGTH_US` has no ``ck_len``
    (older points have it whatever their length).
    """
    length = row.get(LENGTH_FIELD)
    return DEFAULT_LENGTH_US if length is None else length


def is_tag(column):
    """Tell whether a column of the ``rating`` measurement is a tag."""
    return column.startswith(KEY_PREFIX) or column in _TAGS


def tag_columns(columns):
    """Return the sorted tag columns among a response's columns."""
    return sorted(column for column in columns if is_tag(column))
