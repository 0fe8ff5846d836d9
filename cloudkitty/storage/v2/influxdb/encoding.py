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
* **fields**: the exact money as 31-bit integer limbs (``qa``, ``qb`` and,
  for values beyond ``±2**62 * 1e-12``, ``qc``; ``pa``, ``pb``, ``pc`` for
  the price), and when needed ``ck_len`` (the frame length in
  microseconds, when it is not :data:`DEFAULT_LENGTH_US`, an hour),
  ``ck_desc`` (the description, as JSON so that no line break reaches the
  line protocol) and ``ck_meta`` (JSON of the metadata values that a
  groupby value of the same key hides). InfluxDB's cost of a point grows
  with its fields (it keys each field of each point by the series key):
  without ``ck_len`` it parses and caches a fifth less. Points written
  before ``ck_len`` could be left out carry it always, and read the same.

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
#: The fields summed by total(): name -> (money field, limb weight).
LIMBS = {'qa': ('qty', 0), 'qb': ('qty', LIMB_BITS),
         'qc': ('qty', 2 * LIMB_BITS), 'pa': ('price', 0),
         'pb': ('price', LIMB_BITS), 'pc': ('price', 2 * LIMB_BITS)}

TYPE_TAG = 'ck_type'
UNIT_TAG = 'ck_unit'
SCOPE_TAG = 'ck_scope'
GROUPBY_TAG = 'ck_g'
EXTRA_SLOT_TAG = 'ck_n'
_TAGS = frozenset((TYPE_TAG, UNIT_TAG, SCOPE_TAG, GROUPBY_TAG,
                   EXTRA_SLOT_TAG))
KEY_PREFIX = 'k_'
LENGTH_FIELD = 'ck_len'
#: The frame length (µs) of a point without ``ck_len``: an hour, the
#: default period of CloudKitty. A constant, never a setting: points
#: written under one setting must read the same under another.
DEFAULT_LENGTH_US = 3600 * 10 ** 6
DESCRIPTION_FIELD = 'ck_desc'
HIDDEN_FIELD = 'ck_meta'

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


def join_units(a, b, c=0):
    """Inverse of :func:`split_units`, also for sums of limbs."""
    return (a or 0) + ((b or 0) << LIMB_BITS) + ((c or 0) << (2 * LIMB_BITS))


def field_string(text):
    """Return ``text`` as a line-protocol string field value."""
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"')


#: What an encoded point (a plain tuple, see :func:`encode_point`) holds,
#: by index: the frame start in ns; ``measurement,tags`` (what InfluxDB
#: keys the point by, with the time); the qty and the price in ``10**-12``
#: units; the frame length in µs; the encoded metric type; the fields
#: after the money limbs (``,ck_len=...`` unless the length is
#: :data:`DEFAULT_LENGTH_US`, ``,ck_desc=...``, ``,ck_meta=...``), usually
#: empty.
START, IDENTITY, QTY, PRICE, LENGTH, TYPE, EXTRA = range(7)


def point_fields(point):
    """An encoded point's line-protocol fields."""
    qty, price = point[QTY], point[PRICE]
    # NOTE: one format for the usual two limbs each; see split_units().
    if -_TWO_LIMBS <= qty < _TWO_LIMBS and \
            -_TWO_LIMBS <= price < _TWO_LIMBS:
        return _TWO_LIMB_FIELDS % (
            qty & _LIMB_MASK, qty >> LIMB_BITS, price & _LIMB_MASK,
            price >> LIMB_BITS, point[EXTRA])
    return '%s,%s%s' % (_limb_fields('q', qty), _limb_fields('p', price),
                        point[EXTRA])


def point_line(point, slot):
    """An encoded point's line protocol for a slot (an int >= 0).

    Slot ``s`` is the time ``start + s % SLOTS`` ns, and from ``SLOTS`` on
    also the tag ``ck_n = s // SLOTS``: a frame start holds any number of
    identical points.
    """
    start_ns, identity, qty, price, _, _, extra = point
    if slot < SLOTS and -_TWO_LIMBS <= qty < _TWO_LIMBS and \
            -_TWO_LIMBS <= price < _TWO_LIMBS:
        # NOTE: the usual line in one format: a push formats millions.
        return _TWO_LIMB_LINE % (
            identity, qty & _LIMB_MASK, qty >> LIMB_BITS,
            price & _LIMB_MASK, price >> LIMB_BITS, extra, start_ns + slot)
    extra_slot, offset = divmod(slot, SLOTS)
    if extra_slot:
        return '%s,%s=%d %s %d' % (identity, EXTRA_SLOT_TAG, extra_slot,
                                   point_fields(point), start_ns + offset)
    return '%s %s %d' % (identity, point_fields(point), start_ns + offset)


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


_TWO_LIMB_FIELDS = 'qa=%di,qb=%di,pa=%di,pb=%di%s'
_TWO_LIMB_LINE = '%s ' + _TWO_LIMB_FIELDS + ' %d'


def _limb_fields(prefix, units):
    """The line-protocol fields of one money value (see split_units)."""
    limbs = split_units(units)
    if len(limbs) == 2:
        return '%sa=%di,%sb=%di' % (prefix, limbs[0], prefix, limbs[1])
    return '%sa=%di,%sb=%di,%sc=%di' % (prefix, limbs[0], prefix, limbs[1],
                                        prefix, limbs[2])


def encode_point(start_ns, length_us, scope_tag, type_, point):
    """Encode one DataPoint of a frame, checked and ready but for its slot.

    Its line is formatted only by :func:`point_line`, once the slot is
    known, so that a push formats its lines while the first ones are being
    written. It is a plain tuple (see :data:`START` and the other indices)
    of str and int, which the garbage collector stops tracking after its
    first pass: as objects, the points of a push were walked by every
    collection, which took a seventh of a million-point push's time.

    :param start_ns: the frame start, in nanoseconds.
    :param length_us: the frame length, in microseconds.
    :param scope_tag: the encoded scope, or None.
    :param type_: the metric type.
    :param point: the :class:`cloudkitty.dataframe.DataPoint`.
    :raises InvalidQuery: for money that is not finite or not below
        :data:`MAX_MAGNITUDE` (see :func:`cloudkitty.storage.v2.money.
        check`), or labels too long for an InfluxDB series key.
    """
    groupby = tuple(point.groupby.items())
    metadata = tuple(point.metadata.items())
    identity, type_tag, hidden, typed = _labels(
        scope_tag, type_, point.unit, groupby, metadata)
    if typed:
        # NOTE: the cached answer may be that of equal values of other
        # types (1 for True): values not all str are encoded by identity.
        encode = query.encode_label
        identity, type_tag, hidden, _ = _typed_labels(
            scope_tag, type_, point.unit, groupby, metadata,
            tuple(encode(v) for _, v in groupby + metadata))
    qty, price = money.point_units(point.qty, point.price, MAX_MAGNITUDE)
    extra = ''
    if length_us != DEFAULT_LENGTH_US:
        extra = ',%s=%di' % (LENGTH_FIELD, length_us)
    if point.description is not None:
        extra += ',%s=%s' % (DESCRIPTION_FIELD,
                             field_string(json.dumps(point.description)))
    if hidden:
        metadata = point.metadata
        extra += ',%s=%s' % (HIDDEN_FIELD, field_string(json.dumps(
            {key: metadata[key] for key in hidden}, sort_keys=True)))
    return (start_ns, identity, qty, price, length_us, type_tag, extra)


def decode_row(row):
    """Rebuild ``(type, DataPoint)`` from a ``SELECT *`` row.

    :param row: ``{column: value}``; absent tags and fields are None or
        missing.
    """
    groupby, metadata = _decoded_labels(row.get(GROUPBY_TAG), tuple(
        item for item in row.items()
        if item[1] and item[0].startswith(KEY_PREFIX)))
    groupby = dict(groupby)
    metadata = dict(metadata)
    if row.get(HIDDEN_FIELD):
        metadata.update(json.loads(row[HIDDEN_FIELD]))
    qty = money.from_units(join_units(row.get('qa'), row.get('qb'),
                                      row.get('qc')))
    price = money.from_units(join_units(row.get('pa'), row.get('pb'),
                                        row.get('pc')))
    description = row.get(DESCRIPTION_FIELD)
    if description is not None:
        description = json.loads(description)
    point = dataframe.DataPoint(
        decode_value(row[UNIT_TAG]), qty, price, groupby, metadata,
        description)
    return decode_value(row[TYPE_TAG]), point


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


def series_order(row, columns):
    """A stable tiebreak for rows of one frame start and type.

    Sorts by the row's tags (its series) then its slot.

    :param columns: :func:`tag_columns` of the row's response; the key
        does not depend on them, only its cost.
    """
    return (tuple((column, row[column]) for column in columns
                  if row.get(column)), row['time'])
