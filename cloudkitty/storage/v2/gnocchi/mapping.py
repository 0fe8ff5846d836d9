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
"""How rated points map onto Gnocchi resources, metrics and measures.

A *series* is what a point says besides its money: scope, metric type,
unit, frame length, groupby and metadata labels and description, per UTC
month of frame starts and *slot* (below). Points are not kept per series:
the series of one metric type, ``project_id`` value, frame length and month
share a *pack* (:class:`Pack`), one resource of type ``<prefix>pack`` with
three metrics, each series at its own *offset* (whole seconds) along the
time axis:

``qty``, ``price``
    One measure of each per point, at its frame's start plus its series'
    offset plus a few nanoseconds (:data:`CLOCK`). The archive policy has
    two granularities: one second, a bucket per series and frame (its
    points), and the collection period ``G``, a bucket per frame (the sums
    of the whole pack). Frames start on multiples of ``G`` and offsets stay
    below it (:func:`capacity`).
``day``
    The exact sums of each batch's points per series and frame, at the
    start of the frame's UTC day plus ``3 * offset + field`` seconds
    (field 0 the qty, 1 the price, 2 the count): one-second buckets of
    this metric are each series' daily sums, which totals grouped by any
    label read instead of every point.

A pack's id derives from its key (:class:`Pack`), so that a push needs no
lookup for it. The series themselves are kept as resources of type
``<prefix>rating`` without metrics, the *catalogue*: one per series and
pack, whose id derives from the pack and the offset (:func:`entry_id`), so
that creating it claims the offset (see
:mod:`cloudkitty.storage.v2.gnocchi.catalogue`). Its attributes are the
series' labels:

==============  ============================================================
``ck_type``     the metric type
``ck_unit``     the unit
``ck_scope``    the scope (absent when pushed without one)
``ck_desc``     the description (absent when None)
``ck_period``   the frame length, in seconds
``ck_month``    the month of the frame starts: ``year * 12 + month - 1``
``ck_slot``     the slot, 0 for most series
``ck_series``   the series' identity (:attr:`Series.id`)
``ck_pack``     the id of its pack
``ck_offset``   its offset in the pack, in seconds
``g_<h>``       the groupby value of label key ``k``, ``h`` a hash of ``k``
``m_<h>``       the metadata value of ``k``
``gt_<h>``      the kind of the groupby value when it is not a str
``mt_<h>``      likewise, of the metadata value
==============  ============================================================

A label value is stored as its string form (what filters compare with);
one that is not a str (int, float, bool or None) also sets its kind, one
letter (see :func:`cloudkitty.storage.v2.query.encode_label`), so that it
comes back typed and groups apart from the str of the same spelling.
Absent, the kind means str.

Gnocchi attribute names are restricted, so label keys become hashed column
names; the keys themselves are kept as ``<prefix>label`` resources whose
``name`` attribute holds them. A column is added to the resource type the
first time a key is pushed in that role.

Gnocchi keeps only the aggregates of a bucket (count, sum, minimum and
maximum), not its measures. Points of one series in one frame are
therefore given *slots* inside a push: equal points share a slot, each
other value gets the next slot (another series, so another offset), so
that every bucket a push writes holds copies of one point, which count,
min and max give back exactly. Only separate pushes of different values
into the same series, frame and slot make a bucket whose points cannot be
listed; then retrieve() refuses rather than guesses (total() stays right).

Pack attributes: ``ck_type``, ``ck_period``, ``ck_month``, ``ck_key``
(the :data:`SUMS_KEY` value's string form, absent when the points lack
the label), ``ck_kind`` (its kind when not a str), ``ck_part`` (a pack
whose offsets are all taken continues in part 1, 2...), ``ck_pack`` (the
pack's id, which a rewritten pack keeps) and ``ck_pending`` (set while a
delete rewrites it).
"""

import datetime
import hashlib
import json
import threading
import time
import uuid

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import query as query_mod
from cloudkitty.storage.v2 import timeutils

UTC = datetime.timezone.utc
#: Longest label value, description, unit or key Gnocchi keeps (its string
#: attributes hold at most 255 characters).
MAX_VALUE_LENGTH = 255
#: The names of the metrics of a pack.
QTY = 'qty'
PRICE = 'price'
DAY = 'day'
#: The aggregation methods the archive policy must offer.
AGGREGATION_METHODS = ('sum', 'count', 'min', 'max')
#: The fixed attributes of the catalogue (``<prefix>rating``) type.
FIXED_ATTRIBUTES = {
    'ck_type': {'type': 'string', 'required': True,
                'max_length': MAX_VALUE_LENGTH},
    'ck_unit': {'type': 'string', 'required': True,
                'max_length': MAX_VALUE_LENGTH},
    'ck_scope': {'type': 'string', 'required': False,
                 'max_length': MAX_VALUE_LENGTH},
    'ck_desc': {'type': 'string', 'required': False,
                'max_length': MAX_VALUE_LENGTH},
    'ck_period': {'type': 'number', 'required': True},
    'ck_month': {'type': 'number', 'required': True},
    'ck_slot': {'type': 'number', 'required': True},
    'ck_series': {'type': 'uuid', 'required': False},
    'ck_pack': {'type': 'uuid', 'required': False},
    'ck_offset': {'type': 'number', 'required': False},
}
#: The attributes of the pack type (see :class:`Pack`).
PACK_ATTRIBUTES = {
    'ck_type': {'type': 'string', 'required': True,
                'max_length': MAX_VALUE_LENGTH},
    'ck_period': {'type': 'number', 'required': True},
    'ck_month': {'type': 'number', 'required': True},
    'ck_key': {'type': 'string', 'required': False,
               'max_length': MAX_VALUE_LENGTH},
    'ck_kind': {'type': 'string', 'required': False, 'max_length': 1},
    'ck_part': {'type': 'number', 'required': True},
    'ck_pack': {'type': 'uuid', 'required': True},
    'ck_pending': {'type': 'string', 'required': False,
                   'max_length': MAX_VALUE_LENGTH},
}
#: The label the packs are kept per value of, beside the metric type: the
#: scope key of CloudKitty (every rated point of a project carries it).
SUMS_KEY = 'project_id'
#: Seconds of a day, the span of the ``day`` metric's offsets.
DAY_SECONDS = 86400
#: The fields of the ``day`` metric, at ``3 * offset + field`` seconds.
DAY_FIELDS = 3
#: The attribute of a label resource.
LABEL_ATTRIBUTES = {'name': {'type': 'string', 'required': True,
                             'max_length': MAX_VALUE_LENGTH}}
GROUPBY = 'g'
METADATA = 'm'
#: The role of the kind column of a label in each role.
KIND_OF = {GROUPBY: 'gt', METADATA: 'mt'}
#: The attribute of a kind column.
KIND_ATTRIBUTE = {'type': 'string', 'required': False, 'max_length': 1}

_NAMESPACE = uuid.UUID('6c1d2a8e-3f4b-5c7d-9e0f-1a2b3c4d5e6f')
_NS = 10 ** 9


def column(role, key):
    """Return the attribute name of label ``key`` in ``role`` (g or m).

    Gnocchi accepts ``[a-zA-Z0-9][a-zA-Z0-9_]*`` of at most 63 characters:
    a 96-bit hash of the key in hex keeps any key safe and short.
    """
    return '%s_%s' % (role, hashlib.sha256(key.encode('utf-8'))
                      .hexdigest()[:24])


def label_id(resource_type, key):
    """Return the id of the label resource that records ``key``.

    Resource ids are unique across a whole Gnocchi, so the type (which
    holds the store's prefix) is part of the id.
    """
    return str(uuid.uuid5(_NAMESPACE, resource_type + '\x00' + key))


#: An aware datetime as integer nanoseconds since the epoch.
to_ns = timeutils.to_ns


def iso_ns(ns):
    """Format epoch nanoseconds as the ISO 8601 text Gnocchi parses."""
    seconds, fraction = divmod(ns, _NS)
    return '%s.%09d+00:00' % (
        time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds)), fraction)


def month_number(moment):
    """Return ``year * 12 + month - 1`` of an aware UTC datetime."""
    return moment.year * 12 + moment.month - 1


def month_range(month):
    """Return the ``[begin, end)`` datetimes of a month number."""
    year, index = divmod(int(month), 12)
    begin = datetime.datetime(year, index + 1, 1, tzinfo=UTC)
    return begin, query_mod.next_month(begin)


def label_items(labels):
    """Return a label mapping's items, sorted, as a cache key.

    Items compare with ``==``, under which ``1``, ``1.0`` and ``True`` are
    one value: when a value is not a str, it is given by its identity
    (:func:`~cloudkitty.storage.v2.query.encode_label`) instead.
    """
    items = tuple(sorted(labels.items()))
    for _, value in items:
        if not isinstance(value, str):
            encode = query_mod.encode_label
            return tuple((key, encode(value)) for key, value in items)
    return items


def check_label(value, argument, what):
    """Refuse a text Gnocchi would not keep (too long, NUL, not unicode)."""
    if not isinstance(value, str):
        raise exceptions.InvalidQuery(
            argument, '%s: expected a str, got %s'
            % (what, type(value).__name__), value)
    query_mod.check_text(value, argument)
    if len(value) > MAX_VALUE_LENGTH:
        raise exceptions.InvalidQuery(
            argument, '%s of %d characters: Gnocchi keeps at most %d'
            % (what, len(value), MAX_VALUE_LENGTH), value)


class Series:
    """The resource one point goes to: its id and its attributes.

    :param resource_type: the rating resource type (resource ids are
        unique across a Gnocchi: two stores must not share them).
    :param scope_id: the push's scope, or None.
    :param type_: the metric type.
    :param point: the DataPoint (its money is ignored).
    :param period: the frame length in seconds.
    :param month: the month number of the frame start.
    :param slot: the slot (see the module docstring).
    """

    __slots__ = ('id', 'attributes', 'keys')

    def __init__(self, resource_type, scope_id, type_, point, period,
                 month, slot):
        groupby = sorted(point.groupby.items())
        metadata = sorted(point.metadata.items())
        identity = json.dumps(
            [resource_type, scope_id, type_, point.unit, period, month,
             slot, groupby, metadata, point.description], ensure_ascii=False,
            separators=(',', ':'))
        self.id = str(uuid.uuid5(_NAMESPACE, identity))
        attributes = {'ck_type': type_, 'ck_unit': point.unit,
                      'ck_period': period, 'ck_month': month,
                      'ck_slot': slot}
        if scope_id is not None:
            attributes['ck_scope'] = scope_id
        if point.description is not None:
            attributes['ck_desc'] = point.description
        keys = []
        for role, labels in ((GROUPBY, groupby), (METADATA, metadata)):
            for key, value in labels:
                kind, text = query_mod.encode_label(value)
                attributes[column(role, key)] = text
                keys.append((role, key))
                if kind != query_mod.STR:
                    attributes[column(KIND_OF[role], key)] = kind
                    keys.append((KIND_OF[role], key))
        self.attributes = attributes
        self.keys = keys


class Clock:
    """Hands out nanosecond offsets no other push of this process gets.

    A push reserves one offset per measure; offsets grow with the wall
    clock and never repeat in a process. A point's measure goes to its
    series' one-second bucket at the offset modulo a second; a daily sum
    to its series' bucket of the day at the offset modulo the share of
    the second its frame has (a day's frames each have their own share).
    Measures of one push never collide. Only separate pushes of one
    series into one frame (re-rating without a delete) meet in a bucket,
    and collide only if their clocks differed by a multiple of the
    modulus to the nanosecond, within the number of measures pushed:
    about one chance in 10**9 per point, and one in
    ``10**9 / frames per day`` (42 million with hourly frames) per
    series' daily sum.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._next = 0

    def reserve(self, count):
        """Return the first of ``count`` consecutive fresh offsets."""
        with self._lock:
            first = max(time.time_ns(), self._next)
            self._next = first + count
            return first


CLOCK = Clock()


def value_of(attributes, key):
    """Return label ``key`` of a resource (groupby wins), typed.

    :returns: the value, or ``''`` when the resource lacks the label (it
        groups with the str ``''``).
    """
    for role in (GROUPBY, METADATA):
        text = attributes.get(column(role, key))
        if text is not None:
            return query_mod.decode_label(
                attributes.get(column(KIND_OF[role], key)), text)
    return ''


def label_condition(key, values, columns):
    """Build the search matching resources whose label ``key`` is in values.

    Groupby wins over metadata: a resource matches on its metadata value
    only when it has no groupby value for the key.

    :param columns: the attribute names the resource type has.
    :returns: a search dict, or None when nothing can match.
    """
    values = list(values)
    g_col = column(GROUPBY, key)
    m_col = column(METADATA, key)
    alternatives = []
    if g_col in columns:
        alternatives.append({'in': {g_col: values}})
    if m_col in columns:
        by_metadata = {'in': {m_col: values}}
        if g_col in columns:
            by_metadata = {'and': [{'=': {g_col: None}}, by_metadata]}
        alternatives.append(by_metadata)
    if not alternatives:
        return None
    return alternatives[0] if len(alternatives) == 1 else {
        'or': alternatives}


class Pack:
    """The pack a point's series goes to: per type, key value, period, month.

    Its id derives from all of that and the part, so that a push names it
    without a lookup (Gnocchi creates it on the first batch that names
    it).

    :param pack_type: the pack resource type (ids are unique across a
        Gnocchi, so it is part of the id).
    :param type_: the metric type.
    :param period: the frame length in seconds.
    :param month: the month number of the frame starts.
    :param kind: the :data:`SUMS_KEY` value's kind, None when absent.
    :param text: its string form, None when absent.
    :param part: 0, or the part a full pack continues in.
    """

    __slots__ = ('id', 'attributes', '_key')

    def __init__(self, pack_type, type_, period, month, kind, text, part=0):
        period, month = whole(period), whole(month)
        self._key = (pack_type, type_, period, month, kind, text)
        identity = [pack_type, type_, period, month, kind, text]
        if part:
            identity.append(part)
        self.id = str(uuid.uuid5(_NAMESPACE, json.dumps(
            identity, ensure_ascii=False, separators=(',', ':'))))
        self.attributes = {'ck_type': type_, 'ck_period': period,
                           'ck_month': month, 'ck_part': part,
                           'ck_pack': self.id}
        if text is not None:
            self.attributes['ck_key'] = text
            if kind != query_mod.STR:
                self.attributes['ck_kind'] = kind

    def part(self, part):
        """Return part ``part`` of this pack."""
        return Pack(*self._key, part=part)

    @classmethod
    def of_point(cls, pack_type, type_, point, period, month):
        """Return the pack of a point about to be pushed."""
        value = query_mod.label(type_, point, SUMS_KEY, _ABSENT)
        kind, text = (None, None) if value is _ABSENT else \
            query_mod.encode_label(value)
        return cls(pack_type, type_, period, month, kind, text)


def capacity(granularity):
    """Return how many offsets a pack has with frames of ``granularity`` s.

    An offset must stay inside its frame's bucket, and ``3 * offset + 2``
    inside the day (the ``day`` metric).
    """
    return int(min(granularity, DAY_SECONDS // DAY_FIELDS))


def entry_id(catalogue_type, pack_id, offset):
    """Return the id of the catalogue resource of a pack's offset."""
    return str(uuid.uuid5(_NAMESPACE, '%s\x00%s\x00%d'
                          % (catalogue_type, pack_id, offset)))


def epoch_id(label_type):
    """Return the id of the marker of a store's catalogue epoch.

    It is a resource of the label type that names no label key (see
    :mod:`cloudkitty.storage.v2.gnocchi.catalogue`).
    """
    return str(uuid.uuid5(_NAMESPACE, label_type + '\x00epoch'))


def whole(number):
    """Return a number Gnocchi gave back as a float as an int if whole."""
    return int(number) if number == int(number) else number


_ABSENT = object()


def sums_value(attributes):
    """Return the :data:`SUMS_KEY` value of a pack, typed.

    :returns: the value, or ``''`` when its points lack the label (they
        group with the str ``''``).
    """
    text = attributes.get('ck_key')
    if text is None:
        return ''
    return query_mod.decode_label(attributes.get('ck_kind'), text)


def pack_level(query):
    """Tell whether a query's filters name only the type and :data:`SUMS_KEY`.

    Such a query selects whole packs: no catalogue search is needed to
    tell which of their series match.
    """
    return all(key in ('type', SUMS_KEY) for key, _ in query.filters)


def sums_usable(query):
    """Tell whether the packs' frame sums can answer a total() query.

    They can when its filters and groupby name only the type,
    :data:`SUMS_KEY` and time, and its fields are sums, counts and
    averages (frame sums keep no minimum or maximum of the points).
    """
    names = ('type', SUMS_KEY)
    return (pack_level(query)
            and all(entry in names for entry in query.key_groupby)
            and all(field.func in ('sum', 'count', 'avg')
                    for field in query.fields))


def months_condition(query):
    """The conditions on ``ck_month`` of a query's window."""
    conditions = []
    if query.begin is not None:
        conditions.append({'>=': {'ck_month': month_number(query.begin)}})
    if query.end is not None:
        last = query.end - datetime.timedelta(microseconds=1)
        conditions.append({'<=': {'ck_month': month_number(last)}})
    return conditions


def pack_search_for(query, pack_ids=None):
    """The search for the live packs of a query's window and types.

    :param pack_ids: only the packs of these ids (``ck_pack``), or None
        for the packs the query's type and :data:`SUMS_KEY` filters name.
    """
    conditions = [live_condition()] + months_condition(query)
    if query.metric_types is not None:
        conditions.append({'in': {'ck_type': list(query.metric_types)}})
    if pack_ids is not None:
        conditions.append({'in': {'ck_pack': sorted(pack_ids)}})
    for key, values in query.filters:
        if key == 'type':
            conditions.append({'in': {'ck_type': list(values)}})
        elif key == SUMS_KEY:
            conditions.append({'in': {'ck_key': list(values)}})
    return {'and': conditions}


def split_search(search, parts):
    """Split a search of packs into ``parts`` searches of disjoint packs.

    A dynamic aggregate over many packs is one request, which one of
    Gnocchi's API processes serves on one core; several smaller ones are
    served at once. A search of explicit ids is split into chunks of ids;
    any other one into ranges of ids (pack ids are uniform UUIDs, so the
    ranges are about even).

    :returns: a list of searches, whose union matches what ``search``
        matches.
    """
    ids = search.get('in', {}).get('id') if len(search) == 1 else None
    if ids is not None:
        size = -(-len(ids) // parts)
        return [{'in': {'id': ids[first:first + size]}}
                for first in range(0, len(ids), max(size, 1))]
    if parts <= 1:
        return [search]
    edges = ['%08x-0000-0000-0000-000000000000' % (2 ** 32 * index // parts)
             for index in range(1, parts)]
    searches = []
    for index in range(parts):
        conditions = [search]
        if index:
            conditions.append({'>=': {'id': edges[index - 1]}})
        if index < parts - 1:
            conditions.append({'<': {'id': edges[index]}})
        searches.append({'and': conditions})
    return searches


def live_condition():
    """Match the packs no delete is rewriting."""
    return {'or': [{'=': {'ck_pending': None}}, {'=': {'ck_pending': ''}}]}


def search_for(query, columns):
    """Translate a query's window, types and filters into a catalogue search.

    Values are passed as data inside Gnocchi's JSON search syntax, never
    written into a query string.

    :returns: a search dict, or None when nothing can match (a filter on
        a key no point ever had).
    """
    conditions = months_condition(query)
    if query.metric_types is not None:
        conditions.append({'in': {'ck_type': list(query.metric_types)}})
    for key, values in query.filters:
        if key == 'type':
            conditions.append({'in': {'ck_type': list(values)}})
            continue
        condition = label_condition(key, values, columns)
        if condition is None:
            return None
        conditions.append(condition)
    if not conditions:
        return {'>=': {'ck_month': 0}}
    return {'and': conditions}


#: Whether a bucket starting at ``start`` is in a query's window.
in_window = query_mod.in_window
