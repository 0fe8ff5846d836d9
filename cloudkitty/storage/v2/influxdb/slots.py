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
"""Slots, frame starts and push receipts: the backend's bookkeeping.

InfluxDB keeps one point per series and time, so a point's time is its
frame start plus a *slot* (see :mod:`.encoding`). Three small measurements
keep what a push needs to know, without transactions:

``ck_frames`` (tag ``ck_scope``, points of a scope at its frame starts)
    ``used``, the first slot no push of that scope took yet: the greatest
    ``used`` of the scope's points in ``[start, start + SLOTS)``. A push
    reads it, takes ``used`` to ``used + n - 1`` where ``n`` is how many
    identical points the push has at most for one series of the frame,
    and writes the new ``used`` *before* its points, as a point of its
    own: at the time and ``ck_n`` tag of slot ``used - 1`` (see
    :func:`.encoding.point_line`), never over an earlier one. InfluxDB
    1.x does not keep overwritten values reliably: a value written over
    another one while snapshots and compactions ran was read back, later,
    as the one it replaced, which gave a slot to two pushes (see
    :func:`reservation_line`). Points of other scopes are other series,
    so scopes never share slots. Slots are never given back (not even by
    a delete), so a slot names one push for ever: the daily records
    (:mod:`.rollup`) tell pushes apart by it, and a delete's correction
    takes one too. Read then written: only under the scope's lease
    (:mod:`.writers`), which keeps a second writer out meanwhile. Earlier
    versions wrote one point per scope and frame start, at the frame
    start, over and over; it is read as well.
``ck_starts`` (one point per distinct frame start)
    lets total() group by ``time`` server-side (see :func:`frame_starts`).
``ck_push`` (tag ``ck_key``, one point per idempotency key)
    the receipt of a push made with a key: scope, number of points, exact
    sums, first and last frame start, the slots it took and the layout of
    its points and records (:data:`LAYOUT`). It is written after the
    slots and before the points. A retry finds it and writes the very
    same points and records at the very same slots again, which InfluxDB
    stores once: a push that failed half-way is completed, one that
    landed is left as it was. A retry of a push begun by an earlier
    version writes what that version did: points in limbs
    (:func:`.encoding.legacy_point`) when its receipt names no layout,
    one push record per frame start below :data:`SPLIT_RECORDS`, sums
    in plain units below :data:`SCALED_RECORDS`. A
    delete forgets the receipts of pushes with a frame in its window.
``ck_open`` (one point per day a store wrote into)
    written alone, before anything else of the store goes into that day,
    lease marks included (see :meth:`Bookkeeper.open_days`); nothing
    reads it.
"""

import json
import time

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.influxdb import deletes
from cloudkitty.storage.v2.influxdb import encoding
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import timeutils

FRAMES = 'ck_frames'
STARTS = 'ck_starts'
RECEIPTS = 'ck_push'
OPENED = 'ck_open'
#: Seconds the server's clock may be off this machine's (see open_now).
CLOCK_SKEW_S = 300
_KEY_TAG = 'ck_key'
#: The layout of a push, in its receipt: receipts without it are of
#: pushes that wrote limbs and ``ck_len`` (1); :data:`SHORT_POINTS` and
#: later, money fields may be short and ``ck_len`` left out (see
#: :mod:`.encoding`); :data:`SPLIT_RECORDS` and later, a frame start of
#: many series has several push records, at slots of their own (see
#: :func:`.rollup.record_shares`); :data:`SCALED_RECORDS` and later, the
#: sums of a record share the powers of ten they have in common (see
#: :func:`.rollup.common_zeros`).
LAYOUT = 4
SHORT_POINTS = 2
SPLIT_RECORDS = 3
SCALED_RECORDS = 4
# NOTE: the receipt fields a retry must match to be recognised.
_COMPARED = ('scope', 'points', 'qty', 'price', 'first', 'last')


def plan(points):
    """Group a push's encoded points by frame start and series.

    :param points: the encoded points of the push (see
        :func:`.encoding.encode_point`).
    :returns: ``{start_ns: {identity: (encoded point, ...)}}``; the points
        of one series are sorted by content, so that a retry in any order
        gives each content the same slot.
    """
    grouped = {}
    duplicates = {}
    for point in points:
        start = point[encoding.START]
        series = grouped.get(start)
        if series is None:
            series = grouped[start] = {}
        identity = point[encoding.IDENTITY]
        if identity in series:
            duplicates.setdefault((start, identity), [
                series[identity][0]]).append(point)
        else:
            # NOTE: a tuple of tuples of str and int, which the garbage
            # collector stops tracking (see encoding.encode_points); no
            # list nor dict made per point, as setdefault() would.
            series[identity] = (point,)
    for (start, identity), same in duplicates.items():
        same.sort(key=_content)
        grouped[start][identity] = tuple(same)
    return grouped


def _content(point):
    return encoding.point_fields(point)


def needed(grouped, records=None):
    """Return ``{start_ns: slots the push needs for that frame start}``.

    :param records: ``records(series count)``, the number of push records
        of a frame start of that many series, each at a slot of its own
        (:func:`.rollup.record_shares`); one when not given.
    """
    return {start: max(max(len(same) for same in series.values()),
                       records(len(series)) if records else 1)
            for start, series in grouped.items()}


def lines(grouped, bases):
    """Yield the line protocol of a planned push, given its slots.

    Lazily: :meth:`.client.Client.start_write` formats a batch while the
    ones before it are being written.
    """
    for start, series in grouped.items():
        base = bases[start]
        for same in series.values():
            for index, point in enumerate(same):
                yield encoding.point_line(point, base + index)


class Bookkeeper:
    """Reads and writes the bookkeeping measurements of one database.

    :param client: the :class:`.client.Client`.
    :param source: ``source(measurement)`` returns the InfluxQL ``FROM``
        target (with the retention policy).
    """

    def __init__(self, client, source):
        self.client = client
        self.source = source
        # NOTE: the days (ns) this store wrote into; see open_days().
        self._opened = set()

    def open_days(self, moments):
        """Write alone into each day of a push before it writes in parallel.

        InfluxDB 1.6 (``inmem`` index) can hide every point of one of two
        write requests that reach a shard it creates for them, at once:
        acknowledged, kept on disk, and seen by queries only after the
        server restarted. Measured with pushes of 36 points in two
        requests, each into a new database: 12 of 18,286 pushes lost half
        of their points that way, and none of 6,000 once one point was
        written alone into the shard first. So the first write of this
        store into a day (whose shard may be new) is one point per day, in
        a request of its own; shards shorter than a day are opened at
        their day's start only.

        :param moments: times (ns), such as a push's frame starts: their
            days are opened, not those between them.
        """
        day = timeutils.DAY_NS
        # NOTE: InfluxDB keeps no time before MIN_NS, within its first day.
        days = sorted({max(moment - moment % day, encoding.MIN_NS)
                       for moment in moments} - self._opened)
        if days:
            self.client.write(['%s n=1i %d' % (OPENED, start)
                               for start in days])
            self._opened.update(days)

    def forget_opened_days(self):
        """Open every day again before writing into it.

        For :meth:`.InfluxDBStorage.init`: the database may have been
        dropped and created again, its shards with it.
        """
        self._opened = set()

    def open_now(self):
        """:meth:`open_days` for the points the server stamps (leases).

        The server's clock may be ahead of or behind this machine's: every
        day within :data:`CLOCK_SKEW_S` of this machine's clock is opened.
        """
        now = time.time_ns()
        margin = CLOCK_SKEW_S * 10 ** 9
        self.open_days((now - margin, now + margin))

    def reservations(self, scope_tag, first, last):
        """The SELECT of the slots a scope took at some frame starts.

        :param first: the first frame start (ns).
        :param last: the last frame start (ns).
        :returns: ``(statement, params)``; :meth:`take` reads its rows.
        """
        return ('SELECT "used", "ck_scope" FROM %s WHERE "ck_scope" = '
                '$scope AND time >= $first AND time < $end'
                % self.source(FRAMES),
                {'scope': scope_tag, 'first': first,
                 'end': last + encoding.SLOTS})

    def take(self, scope_tag, slots, taken=None):
        """Take the slots of a push; write nothing.

        :param scope_tag: the push's encoded scope (``.`` for no scope).
        :param slots: ``{start_ns: number of slots needed}``.
        :param taken: the rows of :meth:`reservations` over those frame
            starts, read under the scope's lease; read here when None.
        :returns: ``(bases, lines)``: ``{start_ns: first slot}``, and the
            lines that record the slots taken, to be written before or
            with any point that uses them.
        """
        if taken is None:
            statement, params = self.reservations(scope_tag, min(slots),
                                                  max(slots))
            taken = self.client.rows(statement, params)
        used = _taken(taken)
        bases = {start: used.get((scope_tag, start), 0) for start in slots}
        return bases, (
            [reservation_line(scope_tag, start, bases[start] + count)
             for start, count in slots.items()]
            + ['%s n=1i %d' % (STARTS, start) for start in slots])

    def reserve(self, scope_tag, slots, taken=None):
        """:meth:`take` the slots of a push and record them at once.

        :returns: ``{start_ns: first slot}``.
        """
        bases, lines = self.take(scope_tag, slots, taken)
        self.client.write(lines)
        return bases

    def receipt(self, key):
        """Return the stored receipt of ``key``, or None."""
        rows = self.client.rows(
            'SELECT * FROM %s WHERE "ck_key" = $key'
            % self.source(RECEIPTS), {'key': encoding.encode_value(key)})
        if not rows:
            return None
        row = rows[-1]
        row['bases'] = {int(start): base for start, base in
                        json.loads(row['bases']).items()}
        return row

    def write_receipt(self, receipt, bases):
        """Store a push's receipt (see :func:`make_receipt`)."""
        fields = dict(receipt, bases=json.dumps(
            {str(start): base for start, base in sorted(bases.items())}))
        body = ','.join('%s=%s' % (name, _field(value))
                        for name, value in sorted(fields.items())
                        if name != 'key')
        self.client.write(['%s,%s=%s %s %d' % (
            RECEIPTS, _KEY_TAG, encoding.encode_value(receipt['key']), body,
            receipt['first'])])

    def forget(self, begin_ns=None, end_ns=None):
        """Forget the receipts of pushes whose frames meet a window."""
        clauses = []
        params = {}
        if end_ns is not None:
            clauses.append('time < $end')
            params['end'] = end_ns
        where = ' WHERE ' + ' AND '.join(clauses) if clauses else ''
        firsts = {}
        for row in self.client.rows('SELECT "last", "ck_key" FROM %s%s' % (
                self.source(RECEIPTS), where), params):
            if begin_ns is None or row['last'] >= begin_ns:
                key = row[_KEY_TAG]
                firsts[key] = min(firsts.get(key, row['time']), row['time'])
        for key, first in sorted(firsts.items()):
            # NOTE: a receipt a cache snapshot kept would come back with
            # the next push of the same key (see deletes).
            deletes.delete(
                self.client, 'DELETE FROM %s WHERE "ck_key" = $key AND '
                'time >= $first' % encoding.quote_identifier(RECEIPTS),
                {'key': key, 'first': first}, (first, encoding.MAX_NS))

    def used(self, begin_ns, end_ns):
        """Return the ``(scope tag, frame start)`` that took slots.

        :returns: ``{(scope tag, frame start): slots taken}`` for frame
            starts in ``[begin_ns, end_ns)``; frame starts of deleted
            points may be among them.
        """
        # NOTE: a frame start's reservations lie within its slots.
        return {where: used for where, used in _taken(self.client.rows(
            'SELECT "used", "ck_scope" FROM %s WHERE time >= $begin AND '
            'time < $end' % self.source(FRAMES),
            {'begin': begin_ns, 'end': end_ns + encoding.SLOTS})).items()
            if used and where[1] < end_ns}

    def start_range(self):
        """Return the first and last frame starts ever pushed, or None."""
        found = []
        for order in ('ASC', 'DESC'):
            found += self.client.rows('SELECT "n" FROM %s ORDER BY time %s '
                                      'LIMIT 1' % (self.source(STARTS),
                                                   order))
        if not found:
            return None
        return found[0]['time'], found[-1]['time']

    def frame_starts(self, begin_ns, end_ns):
        """Return the sorted frame starts (ns) pushed in a window.

        Frame starts of deleted points may be among them.
        """
        return [row['time'] for row in self.client.rows(
            'SELECT "n" FROM %s WHERE time >= $begin AND time < $end'
            % self.source(STARTS), {'begin': begin_ns, 'end': end_ns})]


def reservation_line(scope_tag, start, used):
    """The ``ck_frames`` point that takes a frame start's slots.

    Up to ``used - 1``; at that slot's time and ``ck_n`` (see the module
    docstring), so that no reservation overwrites another.

    :param used: the first slot left free (>= 1).
    """
    extra, moment = encoding.slot_place(start, used - 1)
    return '%s,ck_scope=%s%s used=%di %d' % (
        FRAMES, scope_tag, encoding.extra_slot_tag(extra), used, moment)


def _taken(rows):
    """``{(scope tag, frame start): used}`` of ``ck_frames`` rows.

    The greatest ``used`` of each scope's points within a frame start's
    slots (frame starts are whole microseconds, slots nanoseconds).
    """
    taken = {}
    for row in rows:
        where = (row['ck_scope'], encoding.frame_start(row['time']))
        if row['used'] > taken.get(where, -1):
            taken[where] = row['used']
    return taken


def make_receipt(key, scope_id, points):
    """Return the receipt of a push of encoded points (at least one)."""
    starts = [point[encoding.START] for point in points]
    return {'key': key, 'scope': '' if scope_id is None else scope_id,
            'points': len(points),
            'qty': str(money.from_units(sum(p[encoding.QTY] for p in points))),
            'price': str(money.from_units(
                sum(p[encoding.PRICE] for p in points))),
            'first': min(starts), 'last': max(starts), 'layout': LAYOUT}


def check_retry(stored, receipt):
    """Raise unless a stored receipt is the receipt of the same push.

    :raises cloudkitty.storage.exceptions.InvalidQuery: when the key was
        used by a push of other data.
    """
    differences = [name for name in _COMPARED
                   if stored.get(name) != receipt[name]]
    if differences:
        raise exceptions.InvalidQuery(
            'idempotency_key', 'already used by a push of other data '
            '(%s differ)' % ', '.join(differences), receipt['key'])


def _field(value):
    if isinstance(value, int):
        return '%di' % value
    return encoding.field_string(value)
