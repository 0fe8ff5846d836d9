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
"""Exact daily sums per series (``ck_daily``), so total() reads days.

InfluxDB's cost grows with the number of series a query touches, whatever
the number of points: summing a million points over ten thousand series
takes seconds. So every push also writes, per frame start, one *push
record*: the count and exact sums of each of its series, as text in string
fields (split in parts below InfluxDB's 64 KiB; the sums divided by the
power of ten they all share, which the part names: see :func:`_parts`); a
frame start of many series gets a few, each with its share of the series,
written at once (see :func:`record_shares`). When a push reaches a new
day, the writer *compacts* the previous days of its scope into one *day
record* per series set; total() and the counts of retrieve() then read a
few records per day and scope, and sum them in Python, exactly.

Records of a scope and day (tags ``ck_scope``, ``ck_rec``, ``ck_part``):

``ck_rec=p`` (push record)
    at the frame start plus a slot of the push (``ck_n`` too past 1,000,
    as for points; its first slot, and the next ones for the other shares
    of a split record): unique per push, so a retried push rewrites it
    unchanged.
``ck_rec=d`` (day parts)
    at the day start plus the compaction's *version*, in one of two
    buffers (0 or 1, the version's parity): a compaction writes the
    buffer the day does not use, so a crash never damages the day record
    readers see.
``ck_rec=c`` (commit)
    at the same version and in the same buffer as its parts: which buffer
    is current, how many parts it has and which push records it
    includes. Written last; readers take the commit of the latest
    version, and skip the push records it lists, so a crash between the
    commit and the deletion of those push records never counts a point
    twice. Versions grow with every compaction of the day (see
    :func:`next_version`): no commit nor part is ever written where one
    was, as InfluxDB may keep an older value of an overwritten point.

A delete adds a *correction* to the days it touched: a push record of the
negated sums of the points it removed, at a slot of its own (whole days
of a delete without filters simply lose their records). Reads and
compactions add it like any other record; series and frames it brings to
zero are dropped.

Every push record, corrections included, is also written to the *frame
log* (``ck_flog``, same tags and fields), which compactions leave alone:
a delete without filters sums the log records of the frame starts it
removes instead of reading their points (:meth:`Rollup.read_log`). It
costs a push one more copy of its records, each in the same request as
the record (see :meth:`Records.requests`).

A compaction that reads a day's push records back moves as many bytes as
the day's pushes wrote. So the writer also keeps, in memory, the sums of
the *open* days it alone wrote into (:class:`_OpenDay`): a day it found
without any record when it first pushed into it. Its compaction then only
lists the day's records (a few small fields) and, when they are exactly
the ones it wrote, writes the day record from memory. Anything else (a
record another process wrote, a commit, a part missing after a failed
write) makes it read the day back as before. Such a day is also compacted
every :data:`DAY_PUSHES` pushes, and stays open, so that reads of the
current day parse a day record and a few push records rather than one per
frame.

Records are written under the scope's lease (:mod:`.writers`): no other
writer adds records to the scope meanwhile, and a delete writes alone.

Every DELETE of records empties each series it matches in the shards it
touches. InfluxDB 1.x drops from its index every series a DELETE matches
that then holds no point in a TSM file nor in its live cache, and a cache
being snapshotted is neither: points written a moment earlier would go
out of sight until the server restarts (a cache snapshot runs every
25 MB of writes by default). So every record carries ``ck_dow``, its day
number modulo 7, which makes the records of a day a series set of their
own in any shard whose duration divides a week (InfluxDB's defaults: 1 h,
1 d, 7 d; :meth:`.InfluxDBStorage.init` warns about others), and day
parts carry ``ck_buf``, their buffer: compactions and deletes match the
day, and the buffer, they empty. Records written before these tags
(*legacy* records) are still read, and deleted with the day that holds
them. And every DELETE of records goes through :func:`.deletes.delete`:
the records it removed would otherwise stay in a snapshot, out of sight,
and come back with the next record written into their series, after the
commit that hid them is gone.
"""

import base64
import dataclasses
import functools
import hashlib
import itertools
import json
import math

from oslo_log import log

from cloudkitty.storage.v2.influxdb import deletes
from cloudkitty.storage.v2.influxdb import encoding
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import timeutils

LOG = log.getLogger(__name__)

DAILY = 'ck_daily'
#: The frame log: a copy of every push record, never compacted.
FRAME_LOG = 'ck_flog'
DAY_NS = timeutils.DAY_NS
#: Bytes of JSON per string field (InfluxDB keeps up to 64 KiB).
PART_BYTES = 60000
#: Days before the latest one of a push that it compacts.
COMPACT_DAYS = 7
#: Pushes a writer adds to an open day before it compacts the day (a push
#: may write several records into it, see :func:`record_shares`).
DAY_PUSHES = 4
#: Entries of open days a writer keeps in memory at most (about 300 bytes
#: each); a day past it is read back when compacted.
MAX_OPEN_ENTRIES = 500000
#: Push records a push writes for a frame start of many series (see
#: :func:`record_shares`), each in a request of its own.
RECORD_SHARES = 2
#: Series of a frame start from which a push splits its push record.
SHARE_SERIES = 1000
_PUSH, _DAY, _COMMIT = 'p', 'd', 'c'
#: What :attr:`_OpenDay.named` says of the series the day record names
#: (never a push record's id).
_DAY_RECORD = 'day'
#: The tag of a record's day number modulo :data:`WEEK_DAYS`.
DOW_TAG = 'ck_dow'
#: The tag of a day part's buffer (0 or 1).
BUFFER_TAG = 'ck_buf'
#: Days whose records never share a series within one shard.
WEEK_DAYS = 7
#: The version of a day's first compaction (see :func:`next_version`).
FIRST_VERSION = 2
#: Versions a day holds: a commit lies within the first microsecond of its
#: day, so that any window that reads part of the day reads it.
MAX_VERSIONS = 1000
#: What starts a series key's digest in a push record (never a key's first
#: character: keys are percent-encoded).
DIGEST_MARK = '#'
#: What starts a part whose sums are scaled: ``^k;`` (see :func:`_parts`);
#: neither a key nor a digest holds it.
SCALE_MARK = '^'
#: Sums are in ``10**-12`` units (see :mod:`cloudkitty.storage.v2.money`).
SCALE = money.SCALE


def day_of(nanos):
    """Return the start (ns) of the UTC day holding a time (ns)."""
    return timeutils.day_of(nanos, DAY_NS)


def day_tag(day):
    """Return the :data:`DOW_TAG` value of the records of a day (ns)."""
    return str(day // DAY_NS % WEEK_DAYS)


def record_shares(series_count):
    """Return how many push records a push writes for one frame start.

    InfluxDB parses one write request per core, and the push waits for
    its records: a frame start of :data:`SHARE_SERIES` series or more gets
    :data:`RECORD_SHARES` records, each with its share of the series, at
    slots of its own, written at once in requests of their own (each
    with its frame-log copy, see :meth:`Records.requests`). A push of a
    million points then waits about a third less for its records.
    """
    return RECORD_SHARES if series_count >= SHARE_SERIES else 1


def summarize(series, shares=1):
    """Return the entries and totals of one frame start of a planned push.

    :param series: ``{identity: (encoded point, ...)}`` (see
        :func:`.slots.plan`).
    :param shares: the number of records to split them in (see
        :func:`record_shares`); series keep their order.
    :returns: a list of ``shares`` pairs ``({series key: (count, qty
        units, price units)}, FrameTotal)``; tuples of ints, which the
        garbage collector stops tracking (see
        :func:`.encoding.encode_point`).
    """
    if shares == 1:
        return [_summarize(series.items())]
    items = list(series.items())
    return [_summarize(items[len(items) * share // shares:
                             len(items) * (share + 1) // shares])
            for share in range(shares)]


def _summarize(items):
    """:func:`summarize` of ``(identity, points)`` items, in one record."""
    entries = {}
    types = {}
    length = count = qty_total = price_total = 0
    key_of = encoding.series_key_of
    qty_at, price_at = encoding.QTY, encoding.PRICE
    length_at = encoding.LENGTH
    for identity, same in items:
        if len(same) == 1:
            # NOTE: the usual case: one point per series and frame start.
            point = same[0]
            qty, price = point[qty_at], point[price_at]
            if point[length_at] > length:
                length = point[length_at]
        else:
            qty = price = 0
            for point in same:
                qty += point[qty_at]
                price += point[price_at]
                if point[length_at] > length:
                    length = point[length_at]
        entries[key_of(identity)] = (len(same), qty, price)
        type_tag = point[encoding.TYPE]
        types[type_tag] = types.get(type_tag, 0) + len(same)
        count += len(same)
        qty_total += qty
        price_total += price
    return entries, FrameTotal(count, qty_total, price_total, length, types)


@dataclasses.dataclass(slots=True)
class FrameTotal:
    """What the points of one frame start add up to, exactly.

    Stored as the JSON list ``[count, qty, price, length, types]`` (the
    ``tot`` field of push records, the ``frames`` of commits).

    :ivar count: the number of points (negative in a correction).
    :ivar qty: the sum of their qty, in ``10**-12`` units.
    :ivar price: the sum of their price, likewise.
    :ivar length: the longest frame length, in microseconds.
    :ivar types: ``{type tag: count}``, or None when unknown (commits
        written before types were counted).
    """

    count: int
    qty: int
    price: int
    length: int
    types: dict = None

    @classmethod
    def from_json(cls, values):
        """Read the stored list form."""
        count, qty, price, length, types = values
        return cls(count, qty, price, length,
                   None if types is None else dict(types))

    def to_json(self):
        """Return the stored list form."""
        return [self.count, self.qty, self.price, self.length, self.types]

    def copy(self):
        """Return a copy that adding to does not change this one."""
        return FrameTotal(self.count, self.qty, self.price, self.length,
                          None if self.types is None else dict(self.types))

    def add(self, other):
        """Add another total of the same frame start."""
        self.count += other.count
        self.qty += other.qty
        self.price += other.price
        self.length = max(self.length, other.length)
        if self.types is not None and other.types is not None:
            for type_tag, count in other.types.items():
                self.types[type_tag] = self.types.get(type_tag, 0) + count
        else:
            self.types = None


@functools.lru_cache(maxsize=1 << 17)
def key_digest(key):
    """Return the short name of a series key in push records.

    ``#`` and the URL-safe base64 of the key's 128-bit BLAKE2b digest: 23
    characters instead of a key's 150 or so. A day's push records name a
    series by its key once, and by its digest afterwards, as do those
    written after a compaction that kept the day open and whose day
    record names it (see :class:`_Names`).
    """
    digest = hashlib.blake2b(key.encode('utf-8'), digest_size=16).digest()
    return DIGEST_MARK + base64.urlsafe_b64encode(digest).decode(
        'ascii').rstrip('=')


#: ``{2**a * 5**b: min(a, b)}`` for the divisors of ``10**12``.
_ZEROS = {2 ** a * 5 ** b: min(a, b) for a in range(13) for b in range(13)}


def common_zeros(entries):
    """The trailing decimal zeros every qty and price of entries shares.

    At most 12: sums are in ``10**-12`` units, and money of three or four
    decimals (the usual) leaves eight or nine zeros on every sum, which
    were more than a quarter of the bytes of a push record and of its log
    copy (579 KB against 416 KB for the 10,200 series of a bench push).

    :param entries: ``{key: (count, qty, price)}``.
    :returns: ``k``, such that every qty and price divides by ``10**k``.
    """
    shared = math.gcd(SCALE, *itertools.chain.from_iterable(
        values[1:] for values in entries.values()))
    return _ZEROS[shared]


def _parts(entries, named=None, record_id=None, scaled=True):
    """Split ``{key: [count, qty, price]}`` into bounded strings.

    An entry is ``key count qty price``, entries are joined by ``;``:
    series keys hold letters, digits and ``_ % . = , - ~`` only, so
    neither the line protocol nor InfluxDB's JSON answers escape anything
    (a JSON list would have every quote escaped twice). Digests (see
    :func:`key_digest`) add ``#`` only. Scaled, qty and price are written
    divided by ``10**k`` (:func:`common_zeros`), and a part of sums so
    scaled starts with ``^k;`` (:data:`SCALE_MARK`).

    :param named: ``{key: id of the push record that names it}``: a key
        named by another record than ``record_id`` is written as its
        digest. None writes every key.
    :param scaled: False for sums in plain units, as records of pushes
        begun before :data:`.slots.SCALED_RECORDS` were written.
    """
    zeros = common_zeros(entries) if scaled and entries else 0
    mark = '%s%d;' % (SCALE_MARK, zeros) if zeros else ''
    factor = 10 ** zeros
    # NOTE: one comprehension, then cuts at the last ";" that fits: a
    # loop over entries that kept count took a fifth to a half longer.
    if named:
        get = named.get
        text = ';'.join([
            '%s %d %d %d' % (key if get(key, record_id) == record_id
                             else key_digest(key), count, qty // factor,
                             price // factor)
            for key, (count, qty, price) in entries.items()])
    else:
        text = ';'.join(['%s %d %d %d' % (key, count, qty // factor,
                                          price // factor)
                         for key, (count, qty, price) in entries.items()])
    room = PART_BYTES - len(mark)
    parts = []
    begin = 0
    while len(text) - begin > room:
        cut = text.rfind(';', begin, begin + room + 1)
        if cut < 0:
            # NOTE: an entry longer than a part goes alone.
            cut = text.find(';', begin)
            if cut < 0:
                break
        parts.append(mark + text[begin:cut])
        begin = cut + 1
    parts.append(mark + text[begin:])
    return parts


def _entries(part):
    """Inverse of :func:`_parts` for one part: a list of entries."""
    if not part:
        return []
    factor = 1
    if part[0] == SCALE_MARK:
        mark, part = part.split(';', 1)
        factor = 10 ** int(mark[1:])
    # NOTE: one comprehension: a day record holds one entry per series.
    return [(key, int(count), int(qty) * factor, int(price) * factor)
            for key, count, qty, price in map(str.split, part.split(';'))]


def add_totals(totals, start, total):
    """Add a :class:`FrameTotal` to ``{frame start: FrameTotal}``."""
    have = totals.get(start)
    if have is None:
        totals[start] = total.copy()
    else:
        have.add(total)


def _series(kind, scope_tag, day):
    return '%s,%s=%s,ck_rec=%s,ck_scope=%s' % (DAILY, DOW_TAG, day_tag(day),
                                               kind, scope_tag)


def _tagged(row):
    """Tell whether a record row carries :data:`DOW_TAG` (not legacy)."""
    return row.get(DOW_TAG) is not None


def _without_copies(rows):
    """Drop legacy copies of push records that were written again.

    A keyed retry of a push written before the tags existed writes its
    records again with them: the same records in other series. The rows
    hold each record part once afterwards.
    """
    if all(map(_tagged, rows)):
        return rows
    seen = set()
    kept = []
    for row in sorted(rows, key=_tagged, reverse=True):
        if row['ck_rec'] == _PUSH:
            key = (row['ck_scope'], row['time'],
                   row.get(encoding.EXTRA_SLOT_TAG), row['ck_part'])
            if key in seen:
                continue
            seen.add(key)
        kept.append(row)
    return kept


def _record_id(row):
    return _id_of(row['time'], row.get(encoding.EXTRA_SLOT_TAG))


def _id_of(time_ns, extra):
    """The id of a push record: its time and ``ck_n`` tag (or none)."""
    return '%d:%s' % (time_ns, extra or '')


def _frame_start(row):
    return encoding.frame_start(row['time'])


def _torn(row):
    """Tell whether a commit row lacks a field every commit has.

    InfluxDB keeps each field of a point on its own: a query that runs
    while a point is written, or deleted, can see some of its fields
    only. A reader meets commits in both states (a writer's compaction
    writes one and deletes the one it replaces), and must not take one
    of them for the day's record. A compaction sees none: it runs under
    its scope's lease.
    """
    return row.get('buffer') is None or row.get('parts') is None or \
        row.get('inc') is None


def version_of(row):
    """The version of a commit or day part: its time in its day (ns)."""
    return row['time'] - day_of(row['time'])


def commit_identity(row, included=None):
    """What tells a day's commit from any other: its version and records.

    Not its presence alone: a delete of the whole day drops the commit a
    writer keeps in memory, and the next compaction of the day, by another
    writer, commits again at the day's first version. The push records a
    commit includes are its own (a slot names one push for ever), so two
    compactions never commit the same ones.

    :param included: the ids of the row's ``inc``, when the caller parsed
        them already.
    """
    if included is None and row.get('inc') is not None:
        included = frozenset(json.loads(row['inc']))
    return ('commit', version_of(row), included)


def _highest(rows):
    """The greatest version among the commits and day parts of rows."""
    return max((version_of(row) for row in rows
                if row['ck_rec'] in (_DAY, _COMMIT)), default=0)


def next_version(state, highest):
    """The version of a day's next compaction.

    InfluxDB 1.x may keep an older value of a point written again while
    its caches are snapshotted and compacted (as :mod:`.slots` met with
    reservations). So a compaction writes its day parts and its commit at
    a time of the day no record of it used yet, its *version*: past
    ``highest``, the greatest version of the day's commits and parts
    (those of a compaction that died before its commit too), and of the
    parity of the buffer the current commit does not use. Versions start
    at :data:`FIRST_VERSION`: earlier versions of this code wrote the
    commit at the day start and the parts at the day start plus their
    buffer, in place.

    :param state: the day's current :class:`_DayState`.
    :param highest: the greatest version the day's records use.
    """
    version = max(highest, state.version) + 1
    if state.committed and version % 2 == state.buffer:
        version += 1
    return version


class Rollup:
    """Writes and reads the daily sums of one database.

    :param client: the :class:`.client.Client`.
    :param source: ``source(measurement)`` returns the ``FROM`` target.
    """

    def __init__(self, client, source):
        self.client = client
        self.source = source
        # NOTE: {(scope tag, day): _OpenDay, or None for a day met with
        # records of others}.
        self._open = {}
        # NOTE: {scope tag: the day compact_before() last checked}.
        self._checked = {}

    # writing ---------------------------------------------------------------

    def push_records(self, scope_tag, grouped, bases, split=True,
                     scaled=True):
        """Return the push records of a planned push (see :class:`Records`).

        :param grouped: ``{start_ns: {identity: (encoded point, ...)}}``
            (see :func:`.slots.plan`).
        :param bases: ``{start_ns: first slot}``; a frame start split in
            ``n`` records took ``n`` slots at least (see
            :func:`.slots.needed`).
        :param split: False for a retry of a push begun by a version that
            wrote one record per frame start (see :data:`.slots.LAYOUT`).
        :param scaled: False for a retry of a push begun by a version that
            wrote sums in plain units (see :func:`_parts`).
        """
        return self.records(scope_tag, {
            start: summarize(series, record_shares(len(series))
                             if split else 1)
            for start, series in grouped.items()}, bases, scaled)

    def records(self, scope_tag, sums, bases, scaled=True):
        """Return the push records of sums per frame start.

        Part 0 of a record also holds ``tot``, the record's totals; every
        part holds ``np``, the record's number of parts, so that a listing
        of small fields finds every part. In a day open in memory, a
        series an earlier record of the day named is written as its
        digest (see :func:`key_digest`).

        :param sums: ``{start_ns: [({series key: [count, qty, price]},
            FrameTotal), ...]}``, one pair per record (negative for a
            delete's correction).
        :param bases: ``{start_ns: slot of the first record}``; the next
            ones take the slots after it.
        :param scaled: see :func:`_parts`.
        """
        records = Records()
        for start, shares in sums.items():
            day = day_of(start)
            opened = self._open.get((scope_tag, day))
            named = opened and opened.named
            day_series = _series(_PUSH, scope_tag, day)
            for share, (entries, total) in enumerate(shares):
                extra, moment = encoding.slot_place(start,
                                                    bases[start] + share)
                record_tags = day_series + encoding.extra_slot_tag(extra)
                record_id = _id_of(moment, extra)
                parts = _parts(entries, named, record_id, scaled)
                lines = records.share(share)
                for index, part in enumerate(parts):
                    # NOTE: parts hold no quote nor backslash (see _parts).
                    fields = 'd="%s",np=%di' % (part, len(parts))
                    if index == 0:
                        fields += ',tot=%s' % encoding.field_string(
                            json.dumps(total.to_json()))
                    lines.append('%s,ck_part=%d %s %d' % (
                        record_tags, index, fields, moment))
                records.days.setdefault(day, []).append((
                    record_id, len(parts), start, entries, total))
        return records

    def track(self, scope_tag, records):
        """Open the days of a push this writer had not met yet.

        Call it before the push records are written: a day opens only
        when it holds no record at all, so that its sums in memory are
        the whole day.
        """
        for day in records.days:
            if (scope_tag, day) not in self._open:
                self._open[(scope_tag, day)] = (
                    _OpenDay() if not self._listing(scope_tag, day)[0]
                    else None)

    def remember(self, scope_tag, records):
        """Add written push records to the open days they belong to.

        A record already added (a retry writes the same one again) is not
        added twice.
        """
        for day, items in records.days.items():
            opened = self._open.get((scope_tag, day))
            if opened is None:
                continue
            fresh = len(opened.fresh)
            for item in items:
                opened.add(*item)
            if len(opened.fresh) > fresh:
                opened.pushes += 1
            if sum(len(other.entries) for other in self._open.values()
                   if other is not None) > MAX_OPEN_ENTRIES:
                # NOTE: this day will be read back when it is compacted.
                self._open[(scope_tag, day)] = None

    def distrust(self, scope_tag, records):
        """Stop trusting memory for the days of records not all written.

        Called when writing push records failed, maybe after
        :meth:`remember` added them: those days are read back when
        compacted, and their later records name every series by its key
        (a digest must name a series some written record names).
        """
        for day in records.days:
            if (scope_tag, day) in self._open:
                self._open[(scope_tag, day)] = None

    def _listing(self, scope_tag, day):
        """List the push parts and commit of a scope's day, small fields.

        :returns: ``(listed, highest)``: a set of ``(record id, part)``
            for push records, with the :func:`commit_identity` of each
            commit of the day; and the greatest :func:`version_of` its
            commits and day parts use (see :func:`next_version`).
        """
        # NOTE: "tot" finds part 0 of records written before "np" was.
        rows = self.client.rows(
            'SELECT "np", "tot", "buffer", "inc", "ck_rec", "ck_part", "%s" '
            'FROM %s WHERE "ck_scope" = $scope AND time >= $begin AND '
            'time < $end' % (encoding.EXTRA_SLOT_TAG, self.source(DAILY)),
            {'scope': scope_tag, 'begin': day, 'end': day + DAY_NS})
        listed = set()
        for row in rows:
            if row['ck_rec'] == _COMMIT:
                listed.add(commit_identity(row))
            elif row['ck_rec'] == _PUSH:
                listed.add((_record_id(row), row['ck_part']))
        return listed, _highest(rows)

    def compact_before(self, scope_tag, latest_ns, earliest_ns=None):
        """Compact the recent days of a scope before the day of a time.

        :param earliest_ns: the push's earliest frame start. A push wholly
            inside the day this writer checked last for the scope checks
            nothing: the records others added to earlier days meanwhile
            are compacted on the next day (reads count them either way).
        """
        day = day_of(latest_ns)
        opened = self._open.get((scope_tag, day))
        if opened is not None and opened.pushes >= DAY_PUSHES:
            # NOTE: the day goes on: reads of it then parse a day record
            # and a few push records, not one push record per frame.
            self.compact(scope_tag, day, keep_open=True)
        if earliest_ns is not None and day_of(earliest_ns) == day == \
                self._checked.get(scope_tag):
            return
        oldest = day - COMPACT_DAYS * DAY_NS
        for key in [key for key in self._open
                    if key[0] == scope_tag and key[1] < oldest]:
            # NOTE: too old to be compacted here: not worth the memory.
            del self._open[key]
        # NOTE: "tot" is in part 0 of every push record and small; "d"
        # would have the server read every record whole.
        found = self.client.query(
            'SELECT count("tot") FROM %s WHERE "ck_scope" = $scope AND '
            '"ck_rec" = $rec AND time >= $begin AND time < $end '
            'GROUP BY time(1d)' % self.source(DAILY),
            {'scope': scope_tag, 'rec': _PUSH, 'begin': oldest, 'end': day})
        for part in found:
            for stamp, count in part['values']:
                if count:
                    self.compact(scope_tag, stamp)
        self._checked[scope_tag] = day

    def compact(self, scope_tag, day, keep_open=False):
        """Write the day record of a scope and day, then drop its pushes.

        The day record merges what the day's records hold: from memory
        when the day is open and its listing shows exactly the records
        this writer wrote, else read back. It replaces every push record
        of the day.

        :param keep_open: keep an open day open (the day goes on).
        """
        opened = self._open.pop((scope_tag, day), None)
        if opened is not None:
            listed, highest = self._listing(scope_tag, day)
            if listed == opened.listing():
                state = self._write_day(scope_tag, day, opened.state,
                                        opened.entries, opened.frames,
                                        sorted(opened.records),
                                        bool(opened.fresh), highest)
                if keep_open and state is not None:
                    opened.committed(state)
                    self._open[(scope_tag, day)] = opened
                return
        rows = self._rows(day, day + DAY_NS, scope_tag)
        state = self._days(rows).get((scope_tag, day), _NO_DAY)
        pushes = [row for row in rows if row['ck_rec'] == _PUSH]
        entries = {}
        frames = {start: total.copy() for start, total in
                  state.frames.items()} if state.frames is not None else (
            None if state.committed else {})
        fresh = [row for row in pushes
                 if _record_id(row) not in state.included]
        found = [((scope_tag, day), None, values) for values in
                 state.entries(rows) + [_entries(row['d'])
                                        for row in fresh]]
        if self._name_series(found, rows):
            # NOTE: reads sum this day from its points meanwhile.
            LOG.warning('InfluxDB daily records: day %d of scope %s '
                        'left uncompacted', day, scope_tag)
            return
        for _, _, values in found:
            _merge_entries(entries, values)
        for row in fresh:
            if frames is not None and row['tot']:
                add_totals(frames, _frame_start(row),
                           FrameTotal.from_json(json.loads(row['tot'])))
        # NOTE: ids of records compacted earlier stay included: a retry
        # may write such a record again.
        self._write_day(scope_tag, day, state, entries, frames, sorted(
            set(state.included) | {_record_id(row) for row in pushes}),
            bool(pushes), _highest(rows), legacy={
                row['ck_rec'] for row in rows if not _tagged(row)})

    def _write_day(self, scope_tag, day, state, entries, frames, included,
                   pushes, highest, legacy=()):
        """Write a day record and its commit, then drop what it replaces.

        Both at a new version of the day (see :func:`next_version`), in
        the buffer the current commit does not use: no point is ever
        written where one was.

        :param state: the day's current :class:`_DayState`.
        :param included: the ids of the push records it replaces.
        :param pushes: whether the day holds push records to drop.
        :param highest: the greatest version the day's records use.
        :param legacy: the kinds of the day's legacy records (see the
            module docstring), all of which it replaces.
        :returns: the :class:`_DayState` of the new commit, or None when
            the day used every version (it stays as it was).
        """
        version = next_version(state, highest)
        if version >= MAX_VERSIONS:
            LOG.warning('InfluxDB daily records: day %d of scope %s was '
                        'compacted %d times; its later push records stay '
                        'as they are', day, scope_tag, MAX_VERSIONS)
            return None
        buffer = version % 2
        moment = day + version
        # NOTE: corrections (see push_records) leave series and frame
        # starts whose points are all deleted at zero.
        entries = {key: sums for key, sums in entries.items() if sums[0]}
        if frames is not None:
            frames = _nonzero(frames)
        parts = _parts(entries)
        # NOTE: "np" makes the parts show in a listing of small fields,
        # which learns the versions taken (_listing).
        lines = ['%s,%s=%d,ck_part=%d d=%s,np=%di %d' % (
            _series(_DAY, scope_tag, day), BUFFER_TAG, buffer, index,
            encoding.field_string(part), len(parts), moment)
            for index, part in enumerate(parts)]
        self.client.write(lines)
        commit = 'buffer=%di,parts=%di,inc=%s' % (
            buffer, len(parts), encoding.field_string(json.dumps(included)))
        if frames is not None:
            commit += ',frames=%s' % encoding.field_string(json.dumps(
                {str(start): total.to_json()
                 for start, total in frames.items()}))
        self.client.write(['%s,%s=%d %s %d' % (
            _series(_COMMIT, scope_tag, day), BUFFER_TAG, buffer, commit,
            moment)])
        # NOTE: what follows only saves space and reading time: the commit
        # already hides the old buffer and the compacted push records.
        # Each statement matches the series it empties (module docstring).
        # Legacy records go first, their commit ("c") before all: until
        # then, either commit counts every point once.
        for kind in sorted(legacy):
            self._drop(scope_tag, day, [(kind, None)], legacy=True)
        # NOTE: one statement for both: InfluxDB takes tens of ms for any
        # DELETE, a tenth of a compaction.
        drops = [(_PUSH, None)] if pushes else []
        if state.committed and state.tagged:
            # NOTE: the commit of an earlier version, in place at the day
            # start, is in the series without a buffer.
            drops += [(_DAY, state.buffer), (_COMMIT, state.buffer),
                      (_COMMIT, '')]
        if drops:
            self._drop(scope_tag, day, drops)
        return _DayState({'buffer': buffer, 'parts': len(parts),
                          'inc': json.dumps(included), 'frames': None,
                          DOW_TAG: day_tag(day), BUFFER_TAG: str(buffer),
                          'time': moment})

    def _drop(self, scope_tag, day, kinds, legacy=False):
        """Delete a scope's records of some kinds (and buffers) of a day.

        :param kinds: ``[(kind, buffer or None)]``; one statement deletes
            the records of each (every buffer for None, records without
            a buffer for ``''``).
        :param legacy: delete the day's legacy records of those kinds
            instead. Their series hold other days too, but nobody writes
            into them any more, so none of their points is in the cache.
        """
        params = {'scope': scope_tag, 'day': '' if legacy
                  else day_tag(day), 'begin': day, 'end': day + DAY_NS}
        alternatives = []
        for number, (kind, buffer) in enumerate(kinds):
            params['rec%d' % number] = kind
            alternative = '"ck_rec" = $rec%d' % number
            if buffer is not None:
                # NOTE: "" matches the series without the tag.
                alternative = '(%s AND "%s" = $buffer%d)' % (
                    alternative, BUFFER_TAG, number)
                params['buffer%d' % number] = str(buffer)
            alternatives.append(alternative)
        # NOTE: records that a snapshot would hide and bring back with
        # the day's next record would count again once the commit that
        # hides them is gone (a purge): see deletes.
        deletes.delete(
            self.client,
            'DELETE FROM %s WHERE "ck_scope" = $scope AND "%s" = $day AND '
            '(%s) AND time >= $begin AND time < $end' % (
                encoding.quote_identifier(DAILY), DOW_TAG,
                ' OR '.join(alternatives)), params, (day, day + DAY_NS))

    def forget(self, begin_ns, end_ns):
        """Delete every record of whole days ``[begin_ns, end_ns)``.

        Their frame log goes too: those frames hold no point any more.
        """
        self.drop_open(begin_ns, end_ns)
        spans = {}
        for day in range(begin_ns, end_ns, DAY_NS):
            first, _ = spans.get(day_tag(day), (day, None))
            spans[day_tag(day)] = (first, day + DAY_NS)
        for measurement in (DAILY, FRAME_LOG):
            # NOTE: one day number at a time, from its first day in the
            # window to its last, so that each statement matches the
            # series it empties (module docstring).
            statements = sorted(spans.items())
            if self._legacy(measurement):
                statements.append(('', (begin_ns, end_ns)))
            for number, (low, high) in statements:
                # NOTE: records that came back would count again.
                deletes.delete(
                    self.client,
                    'DELETE FROM %s WHERE "%s" = $day AND time >= $begin '
                    'AND time < $end' % (
                        encoding.quote_identifier(measurement), DOW_TAG),
                    {'day': number, 'begin': low, 'end': high}, (low, high))

    def _legacy(self, measurement):
        """Tell whether a measurement holds legacy records at all."""
        return bool(self.client.query(
            'SHOW SERIES FROM %s WHERE "%s" = \'\' LIMIT 1' % (
                self.source(measurement), DOW_TAG)))

    def log_covers(self, begin_ns, end_ns, used):
        """Tell whether the frame log knows every frame start of ``used``.

        Reads small fields only. A frame start that took slots but has no
        log record was pushed before the log existed, or its whole day
        was deleted: only the points can tell what it holds.

        :param used: the ``(scope tag, frame start)`` that took slots in
            the window (the keys of :meth:`.slots.Bookkeeper.used`).
        """
        found = {(row['ck_scope'], _frame_start(row))
                 for row in self.client.rows(
                     'SELECT "np", "ck_scope" FROM %s WHERE time >= $begin '
                     'AND time < $end' % self.source(FRAME_LOG),
                     {'begin': begin_ns, 'end': end_ns})}
        return set(used) <= found

    def series_named(self, begin_ns, end_ns):
        """Return every series key the records of a window's days name.

        A record names a series by its key, or by a digest when another
        record of the same scope and day names it (:func:`key_digest`):
        a push record, whose copy stays in the frame log, or a day
        record. So the keys of both measurements over whole days are
        every series a push (or a correction) counted there: an
        unfiltered delete marks them when InfluxDB may have lost some
        from its index (:func:`.deletes.delete`).

        :returns: a set of series keys (without the measurement).
        """
        params = {'begin': day_of(begin_ns),
                  'end': day_of(end_ns - 1) + DAY_NS}
        keys = set()
        for measurement in (DAILY, FRAME_LOG):
            for row in self.client.rows(
                    'SELECT "d" FROM %s WHERE time >= $begin AND '
                    'time < $end' % self.source(measurement), params):
                keys.update(entry[0] for entry in _entries(row['d'])
                            if entry[0][0] != DIGEST_MARK)
        return keys

    def read_log(self, begin_ns, end_ns):
        """Return what the frame log says the frames of a window hold.

        The frame log (:data:`FRAME_LOG`) holds a copy of every push
        record, corrections included, and is never compacted: the sum of
        its records at a scope's frame start is what the records count of
        that frame start, per series, without reading its points. An
        unfiltered delete negates it (see :meth:`.InfluxDBStorage._delete`)
        where :meth:`log_covers` the window.

        :returns: ``{scope tag: {frame start: ({series key or digest:
            [count, qty, price]}, FrameTotal)}}`` without series and
            frame starts at 0.
        """
        rows = _without_copies(self.client.rows(
            'SELECT "d", "tot", "ck_rec", "ck_scope", "ck_part", "%s", "%s" '
            'FROM %s WHERE time >= $begin AND time < $end' % (
                encoding.EXTRA_SLOT_TAG, DOW_TAG, self.source(FRAME_LOG)),
            {'begin': begin_ns, 'end': end_ns}))
        sums = {}
        for row in rows:
            frames = sums.setdefault(row['ck_scope'], {})
            entries, total = frames.setdefault(
                _frame_start(row), ({}, FrameTotal(0, 0, 0, 0, {})))
            _merge_entries(entries, _entries(row['d']))
            if row['tot']:
                total.add(FrameTotal.from_json(json.loads(row['tot'])))
        found = {}
        for scope_tag, frames in sums.items():
            for start, (entries, total) in frames.items():
                entries = {key: sums for key, sums in entries.items()
                           if sums[0]}
                if entries:
                    found.setdefault(scope_tag, {})[start] = (entries,
                                                              total)
        return found

    def drop_open(self, begin_ns, end_ns):
        """Stop keeping the days of a window in memory (a delete's)."""
        self._checked.clear()
        for key in [key for key in self._open
                    if begin_ns <= key[1] < end_ns]:
            del self._open[key]

    # reading ---------------------------------------------------------------

    def _rows(self, begin_ns, end_ns, scope_tag=None, fields='"d", "tot"'):
        condition = 'time >= $begin AND time < $end'
        params = {'begin': begin_ns, 'end': end_ns}
        if scope_tag is not None:
            condition += ' AND "ck_scope" = $scope'
            params['scope'] = scope_tag
        return _without_copies(self.client.rows(
            'SELECT %s, "buffer", "parts", "inc", "frames", "ck_rec", '
            '"ck_scope", "ck_part", "%s", "%s", "%s" FROM %s WHERE %s' % (
                fields, encoding.EXTRA_SLOT_TAG, DOW_TAG, BUFFER_TAG,
                self.source(DAILY), condition), params))

    @staticmethod
    def _days(rows):
        """Return ``{(scope tag, day): _DayState}`` of the last commits.

        A commit lasts until the compaction that replaced it deletes it:
        the one of the latest version wins, a versioned one over one of
        an earlier version of this code, and that one over a legacy one.
        A commit seen with some of its fields only (see :func:`_torn`)
        does not count: the one it replaces, or will once deleted, is
        still whole.
        """
        days = {}
        for row in rows:
            if row['ck_rec'] == _COMMIT and not _torn(row):
                where = (row['ck_scope'], day_of(row['time']))
                state = _DayState(row)
                have = days.get(where)
                if have is None or have.rank < state.rank:
                    days[where] = state
        return days

    def _plan(self, begin_ns, end_ns, rows):
        """Decide how each day of a window is read.

        A day the window holds part of is read from its push records when
        nothing compacted it yet, and like a whole day when the window
        holds every frame start its records know of (the day's frames so
        far); otherwise from the points.

        :returns: ``(days, whole, pieces, raw)``: the commits, a function
            telling whether a day (ns) is read whole, the parts of other
            days read from push records and those read from the points.
        """
        days = self._days(rows)
        span = whole_days(begin_ns, end_ns)
        covered = set()
        pieces, raw = [], []
        for low, high in outside(begin_ns, end_ns, span):
            day = day_of(low)
            states = [state for (_, when), state in days.items()
                      if when == day]
            if not states:
                pieces.append((low, high))
            elif all(state.frames is not None and all(
                    low <= start < high for start in state.frames)
                    for state in states) and all(
                    low <= row['time'] < high for row in rows
                    if row['ck_rec'] == _PUSH and day_of(row['time']) == day):
                covered.add(day)
            else:
                raw.append((low, high))

        def whole(day):
            return day in covered or (
                span is not None and span[0] <= day < span[1])
        return days, whole, pieces, raw

    def read(self, begin_ns, end_ns):
        """Return what the daily records know of a window.

        :returns: ``(entries, raw)``: ``entries`` is a list of
            ``(start_ns, [[series key, count, qty units, price units],
            ...])`` (``start_ns`` a day start for day records, a frame
            start for push records), ``raw`` the ``(begin_ns, end_ns)``
            parts of the window to read from the points instead.
        """
        rows = self._rows(day_of(begin_ns), end_ns)
        days, whole, pieces, raw = self._plan(begin_ns, end_ns, rows)
        found = []
        for row in rows:
            kind = row['ck_rec']
            if kind == _COMMIT:
                continue
            where = (row['ck_scope'], day_of(row['time']))
            state = days.get(where, _NO_DAY)
            in_whole = whole(where[1])
            if kind == _DAY:
                if in_whole and state.accepts(row):
                    found.append((where, where[1], _entries(row['d'])))
            elif _record_id(row) not in state.included and (
                    in_whole or _inside(row['time'], pieces)):
                found.append((where, _frame_start(row),
                              _entries(row['d'])))
        unnamed = {day for _, day in self._name_series(found, rows, end_ns)}
        if unnamed:
            LOG.warning('InfluxDB daily records: %d days name series by '
                        'digests no record resolves; reading their points '
                        'instead', len(unnamed))
        for day in unnamed:
            # NOTE: the points know what no record names any more.
            raw.append((max(begin_ns, day), min(end_ns, day + DAY_NS)))
        return [(start, entries) for where, start, entries in found
                if where[1] not in unnamed], _merge(raw)

    def _name_series(self, found, rows, end_ns=None):
        """Replace the digests of ``found`` entries by their series keys.

        The names come from the entries themselves, then from the other
        ``rows`` of the same scope and day, then (when ``rows`` end
        before the day does, at ``end_ns``) from the rest of the day.

        :param found: ``[((scope tag, day), start, entries)]``, changed in
            place.
        :returns: the ``(scope tag, day)`` whose digests some record still
            lacks a name for (the record naming it was deleted).
        """
        digested = {where for where, _, entries in found
                    if any(entry[0][0] == DIGEST_MARK for entry in entries)}
        if not digested:
            return set()
        names = {where: _Names() for where in digested}
        for where, _, entries in found:
            if where in names:
                names[where].learn(entries)
        unnamed = _resolve(found, names)
        if unnamed:
            for row in rows:
                where = (row['ck_scope'], day_of(row['time']))
                if where in unnamed and row['ck_rec'] != _COMMIT:
                    names[where].learn(_entries(row['d']))
            unnamed = _resolve(found, names)
        for scope_tag, day in sorted(unnamed):
            if end_ns is not None and end_ns < day + DAY_NS:
                for row in self._rows(end_ns, day + DAY_NS, scope_tag):
                    if row['ck_rec'] != _COMMIT:
                        names[(scope_tag, day)].learn(_entries(row['d']))
        if unnamed and end_ns is not None:
            unnamed = _resolve(found, names)
        return unnamed

    def read_frames(self, begin_ns, end_ns):
        """Return the totals per frame start of a window.

        :returns: ``(totals, raw)``: ``{frame start (ns): [count, qty
            units, price units, length, {type tag: count}]}`` and the
            parts of the window to read from the points instead (days
            compacted without frame totals included).
        """
        rows = self._rows(day_of(begin_ns), end_ns, fields='"tot"')
        days, whole, pieces, raw = self._plan(begin_ns, end_ns, rows)
        totals = {}
        for (_, day), state in days.items():
            if not whole(day):
                continue
            if state.frames is None:
                raw.append((day, day + DAY_NS))
                continue
            for start, total in state.frames.items():
                add_totals(totals, start, total)
        for row in rows:
            if row['ck_rec'] != _PUSH or not row['tot']:
                continue
            day = day_of(row['time'])
            state = days.get((row['ck_scope'], day), _NO_DAY)
            if _record_id(row) in state.included or state.frames is None \
                    and state.committed:
                continue
            if whole(day) or _inside(row['time'], pieces):
                add_totals(totals, _frame_start(row),
                           FrameTotal.from_json(json.loads(row['tot'])))
        return _nonzero(totals), _merge(raw)


class _DayState:
    """The commit record of a scope and day (or none yet).

    :ivar versioned: whether it carries its buffer as a tag, at its
        version (see :func:`next_version`); commits of earlier versions
        of this code lie at the day start, their parts at the day start
        plus their buffer.
    :ivar version: its version; 1 for unversioned commits, below the
        first version (:data:`FIRST_VERSION`).
    :ivar rank: what orders two commits of one day (the greater wins).
    :ivar identity: its :func:`commit_identity`, None for no commit.
    """

    def __init__(self, row=None):
        self.committed = row is not None
        self.tagged = row is None or _tagged(row)
        self.versioned = bool(row and row.get(BUFFER_TAG))
        self.buffer = row['buffer'] if row else 0
        self.version = version_of(row) if self.versioned else \
            FIRST_VERSION - 1
        self.rank = (self.tagged, self.versioned, self.version)
        # NOTE: where its parts lie, from the day start.
        self._parts_at = self.version if self.versioned else self.buffer
        self.parts = row['parts'] if row else 0
        self.included = frozenset(json.loads(row['inc'])) if row else ()
        self.identity = None if row is None else commit_identity(
            row, self.included)
        self.frames = None
        if row is None:
            self.frames = {}
        elif row.get('frames'):
            # NOTE: JSON keys are str; a late push or a correction adds to
            # a frame start by its int.
            self.frames = {int(start): FrameTotal.from_json(values)
                           for start, values in
                           json.loads(row['frames']).items()}

    def accepts(self, row):
        """Tell whether a day part belongs to the committed buffer.

        A legacy commit (see the module docstring) takes legacy parts
        only, another one parts tagged with its buffer.
        """
        if not self.committed or int(row['ck_part']) >= self.parts or \
                version_of(row) != self._parts_at:
            return False
        if self.tagged:
            return row.get(BUFFER_TAG) == str(self.buffer)
        return not _tagged(row)

    def entries(self, rows):
        """The committed day parts among ``rows``, decoded."""
        return [_entries(row['d']) for row in rows
                if row['ck_rec'] == _DAY and self.accepts(row)]


_NO_DAY = _DayState()


class Records:
    """The push records of one push (see :meth:`Rollup.push_records`).

    :ivar shares: the line protocol of its records, one list per share
        (see :func:`record_shares`): share ``n`` holds the ``n``-th
        record of every frame start.
    :ivar days: ``{day: [(record id, parts, frame start, entries,
        totals)]}``: what each record adds to its day.
    """

    __slots__ = ('shares', 'days')

    def __init__(self):
        self.shares = []
        self.days = {}

    def share(self, index):
        """Return the list of lines of a share, made when first asked."""
        while len(self.shares) <= index:
            self.shares.append([])
        return self.shares[index]

    def requests(self):
        """The write requests of the records: one per share.

        Each holds the lines of its records, then the same records in
        the frame log. Written after the points, all at once
        (:meth:`.client.Client.write_all`): InfluxDB writes a request
        whole or not at all, so the log never holds a record the daily
        records lack, which a delete would subtract from them. A retry
        writes them all again, identical.
        """
        prefix = DAILY + ','
        return [lines + [FRAME_LOG + line[len(DAILY):] for line in lines
                         if line.startswith(prefix)]
                for lines in self.shares]


class _OpenDay:
    """The sums of a day a writer alone wrote push records into.

    :ivar records: the ids of those records.
    :ivar parts: their ``(record id, part)`` pairs, as a listing finds them
        (see :meth:`Rollup._listing`).
    :ivar entries: ``{series key: [count, qty, price]}`` of the day.
    :ivar frames: the day's totals per frame start (see
        :func:`add_totals`).
    :ivar named: ``{series key: id of the first of those records}``: the
        record that names the series by its key; later ones may use its
        digest. After a compaction, the day record names them.
    :ivar state: the :class:`_DayState` of the day's commit, once this
        writer compacted the day and kept it open.
    :ivar fresh: the ids of the records written since then.
    :ivar pushes: the pushes that wrote them (see :data:`DAY_PUSHES`).
    """

    __slots__ = ('records', 'parts', 'entries', 'frames', 'named', 'state',
                 'fresh', 'pushes')

    def __init__(self):
        self.records = set()
        self.parts = set()
        self.entries = {}
        self.frames = {}
        self.named = {}
        self.state = _NO_DAY
        self.fresh = set()
        self.pushes = 0

    def listing(self):
        """What :meth:`Rollup._listing` finds when nobody else wrote."""
        if self.state.committed:
            return self.parts | {self.state.identity}
        return self.parts

    def committed(self, state):
        """Go on after this writer compacted the day and kept it open.

        Its push records were dropped, but the day record names every
        series the day counts (a correction, which could bring one to
        zero, closes the day): later records of the day give them as
        digests, a third of the bytes of a push record naming each.
        """
        self.state = state
        self.parts = set()
        self.fresh = set()
        self.pushes = 0
        self.named = dict.fromkeys(
            (key for key, sums in self.entries.items() if sums[0]),
            _DAY_RECORD)

    def add(self, record_id, parts, start, entries, total):
        """Add one written push record, unless it was added already."""
        if record_id in self.records:
            return
        self.records.add(record_id)
        self.fresh.add(record_id)
        self.parts.update((record_id, str(part)) for part in range(parts))
        named = self.named
        for key in entries:
            if key not in named:
                named[key] = record_id
        _merge_entries(self.entries, ((key, count, qty, price) for key, (
            count, qty, price) in entries.items()))
        add_totals(self.frames, start, total)


class _Names:
    """The series keys a scope's day names, by digest (see key_digest)."""

    __slots__ = ('keys', 'clashes')

    def __init__(self):
        self.keys = {}
        self.clashes = set()

    def learn(self, entries):
        """Learn the keys of ``(key, count, qty, price)`` entries."""
        keys = self.keys
        for entry in entries:
            key = entry[0]
            if key[0] != DIGEST_MARK:
                have = keys.setdefault(key_digest(key), key)
                if have != key:
                    # NOTE: never seen, but a name must be certain.
                    self.clashes.add(key_digest(key))

    def name(self, entries):
        """Return entries with keys for digests, or None for an unknown."""
        named = []
        keys = self.keys
        for entry in entries:
            key = entry[0]
            if key[0] == DIGEST_MARK:
                key = keys.get(key)
                if key is None or entry[0] in self.clashes:
                    return None
                entry = (key,) + tuple(entry[1:])
            named.append(entry)
        return named


def _resolve(found, names):
    """Name the digests of ``found`` (see Rollup._name_series) in place.

    :returns: the ``(scope tag, day)`` whose entries still hold digests.
    """
    unnamed = set()
    for index, (where, start, entries) in enumerate(found):
        if where not in names:
            continue
        named = names[where].name(entries)
        if named is None:
            unnamed.add(where)
        else:
            found[index] = (where, start, named)
    return unnamed


def _nonzero(totals):
    """Frame totals without the frame starts and types counting 0.

    A correction (see :meth:`Rollup.push_records`) brings the totals of
    what a delete removed to 0.
    """
    kept = {}
    for start, total in totals.items():
        if total.count:
            if total.types is not None:
                total.types = {tag: count for tag, count in
                               total.types.items() if count}
            kept[start] = total
    return kept


def _merge_entries(entries, values):
    """Add ``(key, count, qty, price)`` items to ``{key: [...]}``."""
    for key, count, qty, price in values:
        have = entries.get(key)
        if have is None:
            entries[key] = [count, qty, price]
        else:
            have[0] += count
            have[1] += qty
            have[2] += price


def whole_days(begin_ns, end_ns):
    """Return the whole UTC days of a window, as day starts in ns.

    :returns: ``(first, end)``, or None when the window holds no whole day.
    """
    return timeutils.whole_days(begin_ns, end_ns, DAY_NS)


def outside(begin_ns, end_ns, span):
    """The parts of a window outside its whole days, one per day.

    :param span: :func:`whole_days` of the window.
    """
    if span is None:
        parts = []
        low = begin_ns
        while low < end_ns:
            high = min(end_ns, day_of(low) + DAY_NS)
            parts.append((low, high))
            low = high
        return parts
    return [(low, high) for low, high in ((begin_ns, span[0]),
                                          (span[1], end_ns)) if low < high]


def _inside(nanos, pieces):
    return any(low <= nanos < high for low, high in pieces)


def _merge(ranges):
    """Sort ``(begin, end)`` ranges and join those that touch."""
    merged = []
    for low, high in sorted(ranges):
        if merged and merged[-1][1] >= low:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged
