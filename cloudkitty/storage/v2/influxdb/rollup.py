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
record*: the count and exact sums of each of its series, as JSON in string
fields (split in parts below InfluxDB's 64 KiB). When a push reaches a new
day, the writer *compacts* the previous days of its scope into one *day
record* per series set; total() and the counts of retrieve() then read a
few records per day and scope, and sum them in Python, exactly.

Records of a scope and day (tags ``ck_scope``, ``ck_rec``, ``ck_part``):

``ck_rec=p`` (push record)
    at the frame start plus the push's slot (``ck_n`` too past 1,000, as
    for points): unique per push, so a retried push rewrites it unchanged.
``ck_rec=d`` (day parts)
    at the day start plus a buffer number, 0 or 1: a compaction writes the
    buffer the day does not use, so a crash never damages the day record
    readers see.
``ck_rec=c`` (commit)
    at the day start: which buffer is current, how many parts it has and
    which push records it includes. Written last; readers skip the push
    records it lists, so a crash between the commit and the deletion of
    those push records never counts a point twice.

A delete fixes the days it touched by summing them again from the points
(:meth:`Rollup.rebuild`).
"""

import json

from cloudkitty.storage.v2.influxdb import encoding

DAILY = 'ck_daily'
DAY_NS = 86400 * 10 ** 9
#: Bytes of JSON per string field (InfluxDB keeps up to 64 KiB).
PART_BYTES = 60000
#: Days before the latest one of a push that it compacts.
COMPACT_DAYS = 7
_PUSH, _DAY, _COMMIT = 'p', 'd', 'c'


def day_of(nanos):
    """Return the start (ns) of the UTC day holding a time (ns)."""
    return nanos // DAY_NS * DAY_NS


def summarize(series):
    """Return the entries and totals of one frame start of a planned push.

    :param series: ``{identity: [EncodedPoint, ...]}`` (see
        :func:`.slots.plan`).
    :returns: ``({series key: [count, qty units, price units]}, [count,
        qty units, price units, frame length in microseconds, {type tag:
        count}]``).
    """
    entries = {}
    types = {}
    total = [0, 0, 0, 0, types]
    for identity, same in series.items():
        qty = price = 0
        for point in same:
            qty += point.qty_units
            price += point.price_units
            if point.length_us > total[3]:
                total[3] = point.length_us
        entries[encoding.series_key_of(identity)] = [len(same), qty, price]
        type_tag = same[0].type_tag
        types[type_tag] = types.get(type_tag, 0) + len(same)
        total[0] += len(same)
        total[1] += qty
        total[2] += price
    return entries, total


def _parts(entries):
    """Split ``{key: [count, qty, price]}`` into bounded strings.

    An entry is ``key count qty price``, entries are joined by ``;``:
    series keys hold letters, digits and ``_ % . = , - ~`` only, so
    neither the line protocol nor InfluxDB's JSON answers escape anything
    (a JSON list would have every quote escaped twice).
    """
    parts = []
    current = []
    size = 0
    for key, (count, qty, price) in entries.items():
        item = '%s %d %d %d' % (key, count, qty, price)
        if current and size + len(item) > PART_BYTES:
            parts.append(';'.join(current))
            current, size = [], 0
        current.append(item)
        size += len(item) + 1
    if current or not parts:
        parts.append(';'.join(current))
    return parts


def _entries(part):
    """Inverse of :func:`_parts` for one part: a list of entries."""
    found = []
    for item in part.split(';') if part else ():
        key, count, qty, price = item.split(' ')
        found.append((key, int(count), int(qty), int(price)))
    return found


def add_totals(totals, start, values):
    """Add ``[count, qty, price, length, types]`` to a frame start's totals.

    ``types`` (``{type tag: count}``) may be None: unknown.
    """
    have = totals.get(start)
    if have is None:
        totals[start] = list(values[:4]) + [
            dict(values[4]) if values[4] is not None else None]
        return
    have[0] += values[0]
    have[1] += values[1]
    have[2] += values[2]
    have[3] = max(have[3], values[3])
    if have[4] is not None and values[4] is not None:
        for type_tag, count in values[4].items():
            have[4][type_tag] = have[4].get(type_tag, 0) + count
    else:
        have[4] = None


def _series(kind, scope_tag):
    return '%s,ck_rec=%s,ck_scope=%s' % (DAILY, kind, scope_tag)


def _record_id(row):
    return '%d:%s' % (row['time'], row.get(encoding.EXTRA_SLOT_TAG) or '')


def _frame_start(row):
    return row['time'] // 1000 * 1000


class Rollup:
    """Writes and reads the daily sums of one database.

    :param client: the :class:`.client.Client`.
    :param source: ``source(measurement)`` returns the ``FROM`` target.
    """

    def __init__(self, client, source):
        self.client = client
        self.source = source

    # writing ---------------------------------------------------------------

    def push_lines(self, scope_tag, grouped, bases):
        """Return the push records of a planned push, as line protocol.

        Part 0 of a record also holds ``tot``, the frame start's totals.
        """
        lines = []
        for start, series in grouped.items():
            extra, offset = divmod(bases[start], encoding.SLOTS)
            tags = _series(_PUSH, scope_tag)
            if extra:
                tags += ',%s=%d' % (encoding.EXTRA_SLOT_TAG, extra)
            entries, total = summarize(series)
            for index, part in enumerate(_parts(entries)):
                fields = 'd=%s' % encoding.field_string(part)
                if index == 0:
                    fields += ',tot=%s' % encoding.field_string(
                        json.dumps(total))
                lines.append('%s,ck_part=%d %s %d' % (
                    tags, index, fields, start + offset))
        return lines

    def compact_before(self, scope_tag, latest_ns):
        """Compact the recent days of a scope before the day of a time."""
        day = day_of(latest_ns)
        found = self.client.query(
            'SELECT count("d") FROM %s WHERE "ck_scope" = $scope AND '
            '"ck_rec" = $rec AND time >= $begin AND time < $end '
            'GROUP BY time(1d)' % self.source(DAILY),
            {'scope': scope_tag, 'rec': _PUSH,
             'begin': day - COMPACT_DAYS * DAY_NS, 'end': day})
        for part in found:
            for stamp, count in part['values']:
                if count:
                    self.compact(scope_tag, stamp)

    def compact(self, scope_tag, day, entries=None, frames=None):
        """Write the day record of a scope and day, then drop its pushes.

        :param entries: the day's ``{series key: [count, qty, price]}``
            (a rebuild from the points); None to merge what the day's
            records hold. Either way the new day record replaces every
            push record of the day.
        :param frames: with ``entries``, the day's ``{frame start (ns):
            [count, qty, price, length, {type tag: count}]}``, or None
            when unknown.
        """
        rows = self._rows(day, day + DAY_NS, scope_tag)
        state = self._days(rows).get((scope_tag, day), _NO_DAY)
        pushes = [row for row in rows if row['ck_rec'] == _PUSH]
        if entries is None:
            entries = {}
            frames = dict(state.frames) if state.frames is not None else (
                None if state.committed else {})
            fresh = [row for row in pushes
                     if _record_id(row) not in state.included]
            for values in state.entries(rows) + [_entries(row['d'])
                                                 for row in fresh]:
                for key, count, qty, price in values:
                    have = entries.setdefault(key, [0, 0, 0])
                    have[0] += count
                    have[1] += qty
                    have[2] += price
            for row in fresh:
                if frames is not None and row['tot']:
                    add_totals(frames, _frame_start(row),
                               json.loads(row['tot']))
        included = sorted({_record_id(row) for row in pushes})
        buffer = 1 - state.buffer if state.committed else 0
        parts = _parts(entries)
        lines = ['%s,ck_part=%d d=%s %d' % (
            _series(_DAY, scope_tag), index, encoding.field_string(part),
            day + buffer) for index, part in enumerate(parts)]
        self.client.write(lines)
        commit = 'buffer=%di,parts=%di,inc=%s' % (
            buffer, len(parts), encoding.field_string(json.dumps(included)))
        if frames is not None:
            commit += ',frames=%s' % encoding.field_string(json.dumps(
                {str(start): values for start, values in frames.items()}))
        self.client.write(['%s %s %d' % (_series(_COMMIT, scope_tag),
                                         commit, day)])
        # NOTE: what follows only saves space and reading time: the commit
        # already hides the old buffer and the compacted push records.
        statement = ('DELETE FROM %s WHERE "ck_scope" = $scope AND '
                     '"ck_rec" = $rec AND time >= $begin AND time < $end'
                     % encoding.quote_identifier(DAILY))
        if pushes:
            self.client.query(statement, {
                'scope': scope_tag, 'rec': _PUSH, 'begin': day,
                'end': day + DAY_NS})
        if state.committed:
            old = day + state.buffer
            self.client.query(statement, {
                'scope': scope_tag, 'rec': _DAY, 'begin': old,
                'end': old + 1})

    def rebuild(self, sums, frames, begin_ns, end_ns):
        """Replace the records of whole days by sums read from the points.

        :param sums: ``{(scope tag, day): {series key: [count, qty,
            price]}}`` for every scope and day of the window that still
            has points.
        :param frames: ``{(scope tag, day): {frame start: [count, qty,
            price, length, {type tag: count}]}}``, or None when unknown.
        :param begin_ns: first day (ns, a day start).
        :param end_ns: end of the last day (ns, a day start).
        """
        rows = self._rows(begin_ns, end_ns)
        touched = {(row['ck_scope'], day_of(row['time'])) for row in rows}
        for scope_tag, day in sorted(touched | set(sums)):
            self.compact(scope_tag, day, sums.get((scope_tag, day), {}),
                         None if frames is None else frames.get(
                             (scope_tag, day), {}))

    def forget(self, begin_ns, end_ns):
        """Delete every record of whole days ``[begin_ns, end_ns)``."""
        self.client.query(
            'DELETE FROM %s WHERE time >= $begin AND time < $end'
            % encoding.quote_identifier(DAILY),
            {'begin': begin_ns, 'end': end_ns})

    # reading ---------------------------------------------------------------

    def _rows(self, begin_ns, end_ns, scope_tag=None, fields='"d", "tot"'):
        condition = 'time >= $begin AND time < $end'
        params = {'begin': begin_ns, 'end': end_ns}
        if scope_tag is not None:
            condition += ' AND "ck_scope" = $scope'
            params['scope'] = scope_tag
        return self.client.rows(
            'SELECT %s, "buffer", "parts", "inc", "frames", '
            '"ck_rec", "ck_scope", "ck_part", "%s" FROM %s WHERE %s' % (
                fields, encoding.EXTRA_SLOT_TAG, self.source(DAILY),
                condition), params)

    @staticmethod
    def _days(rows):
        days = {}
        for row in rows:
            if row['ck_rec'] == _COMMIT:
                days[(row['ck_scope'], row['time'])] = _DayState(row)
        return days

    def _plan(self, begin_ns, end_ns, rows):
        """Decide how each day of a window is read.

        :returns: ``(days, span, pieces, raw)``: the commits, the whole
            days, the parts of other days read from push records (days
            nothing compacted yet) and those read from the points.
        """
        days = self._days(rows)
        committed = {day for _, day in days}
        span = whole_days(begin_ns, end_ns)
        pieces, raw = [], []
        for low, high in outside(begin_ns, end_ns, span):
            (raw if day_of(low) in committed else pieces).append((low, high))
        return days, span, pieces, raw

    def read(self, begin_ns, end_ns):
        """Return what the daily records know of a window.

        :returns: ``(entries, raw)``: ``entries`` is a list of
            ``(start_ns, [[series key, count, qty units, price units],
            ...])`` (``start_ns`` a day start for day records, a frame
            start for push records), ``raw`` the ``(begin_ns, end_ns)``
            parts of the window to read from the points instead.
        """
        rows = self._rows(day_of(begin_ns), end_ns)
        days, span, pieces, raw = self._plan(begin_ns, end_ns, rows)
        found = []
        for row in rows:
            kind = row['ck_rec']
            if kind == _COMMIT:
                continue
            day = day_of(row['time'])
            state = days.get((row['ck_scope'], day), _NO_DAY)
            whole = span is not None and span[0] <= day < span[1]
            if kind == _DAY:
                if whole and state.accepts(row):
                    found.append((day, _entries(row['d'])))
            elif _record_id(row) not in state.included and (
                    whole or _inside(row['time'], pieces)):
                found.append((_frame_start(row), _entries(row['d'])))
        return found, raw

    def read_frames(self, begin_ns, end_ns):
        """Return the totals per frame start of a window.

        :returns: ``(totals, raw)``: ``{frame start (ns): [count, qty
            units, price units, length, {type tag: count}]}`` and the
            parts of the window to read from the points instead (days
            compacted without frame totals included).
        """
        rows = self._rows(day_of(begin_ns), end_ns, fields='"tot"')
        days, span, pieces, raw = self._plan(begin_ns, end_ns, rows)
        totals = {}
        for (_, day), state in days.items():
            if span is None or not span[0] <= day < span[1]:
                continue
            if state.frames is None:
                raw.append((day, day + DAY_NS))
                continue
            for start, values in state.frames.items():
                add_totals(totals, int(start), values)
        for row in rows:
            if row['ck_rec'] != _PUSH or not row['tot']:
                continue
            day = day_of(row['time'])
            state = days.get((row['ck_scope'], day), _NO_DAY)
            whole = span is not None and span[0] <= day < span[1]
            if _record_id(row) in state.included or state.frames is None \
                    and state.committed:
                continue
            if whole or _inside(row['time'], pieces):
                add_totals(totals, _frame_start(row),
                           json.loads(row['tot']))
        return totals, _merge(raw)


class _DayState:
    """The commit record of a scope and day (or none yet)."""

    def __init__(self, row=None):
        self.committed = row is not None
        self.buffer = row['buffer'] if row else 0
        self.parts = row['parts'] if row else 0
        self.included = frozenset(json.loads(row['inc'])) if row else ()
        self.frames = None
        if row is None:
            self.frames = {}
        elif row.get('frames'):
            self.frames = json.loads(row['frames'])

    def accepts(self, row):
        """Tell whether a day part belongs to the committed buffer."""
        return (self.committed and row['time'] % DAY_NS == self.buffer
                and int(row['ck_part']) < self.parts)

    def entries(self, rows):
        """The committed day parts among ``rows``, decoded."""
        return [_entries(row['d']) for row in rows
                if row['ck_rec'] == _DAY and self.accepts(row)]


_NO_DAY = _DayState()


def whole_days(begin_ns, end_ns):
    """Return the whole UTC days of a window, as day starts in ns.

    :returns: ``(first, end)``, or None when the window holds no whole day.
    """
    first = -(-begin_ns // DAY_NS) * DAY_NS
    last = day_of(end_ns)
    return (first, last) if first < last else None


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
