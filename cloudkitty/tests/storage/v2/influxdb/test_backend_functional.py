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
"""What the InfluxDB backend adds to the shared suite, on a real influxd.

Against the server of ``CLOUDKITTY_TEST_INFLUXDB_URL``. Without
transactions, the daily records (``ck_daily``) must always agree with the
points, whatever crashed when, and a push that failed half-way must be
completed, exactly once, by its retry. Also: pages through frame totals,
frames InfluxDB would drop, a server that is down, and upstream's
injection.
"""

import contextlib
import datetime
import decimal
import gc
import logging
import time
import uuid

import fixtures
import testtools

from cloudkitty import storage
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import influxdb
from cloudkitty.storage.v2.influxdb import client
from cloudkitty.storage.v2.influxdb import deletes
from cloudkitty.storage.v2.influxdb import encoding
from cloudkitty.storage.v2.influxdb import rollup
from cloudkitty.storage.v2.influxdb import slots
from cloudkitty.storage.v2 import query
from cloudkitty.tests import daemon
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests import functional_env
from cloudkitty.tests import influxdb_provision

D = decimal.Decimal
DAY = datetime.timedelta(days=1)
T0 = builders.T0
WINDOW = {'begin': T0 - DAY, 'end': T0 + 5 * DAY}


def earlier_line(measurement, part, values, dropped):
    """A record's line where code before versioned compactions wrote it.

    Commits at their day start, day parts at the day start plus their
    buffer and without "np", other records where they are.

    :param part: a series of ``SELECT * ... GROUP BY *``.
    :param values: one of its rows.
    :param dropped: the tags to leave out.
    """
    tags = part['tags']
    moment = values[0]
    if tags.get('ck_rec') == 'c':
        moment = rollup.day_of(moment)
    elif tags.get('ck_rec') == 'd':
        moment = rollup.day_of(moment) + int(tags[rollup.BUFFER_TAG])
    fields = ['%s=%s' % (column, '%di' % value if isinstance(value, int)
                         else encoding.field_string(value))
              for column, value in zip(part['columns'][1:], values[1:])
              if value is not None and not (
                  column == 'np' and tags.get('ck_rec') == 'd')]
    return '%s,%s %s %d' % (
        measurement, ','.join('%s=%s' % item for item in sorted(
            tags.items()) if item[1] and item[0] not in dropped),
        ','.join(fields), moment)


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class InfluxDBBackendTest(influxdb_provision.InfluxDBDatabaseMixin,
                          testtools.TestCase):
    """Daily records, retries, pages and refusals on a real influxd."""

    def setUp(self):
        super().setUp()
        self.use_influxdb_conf()
        # NOTE: six pushes a day, each day compacted once a later one
        # starts; test_day_goes_on_* compacts days that go on.
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.rollup.DAY_PUSHES', 1000))
        self.store = self.new_store()
        self.addCleanup(type(self).drop_database)
        self.project_id = str(uuid.uuid4())
        self.pushed = []

    def frames(self, days=3, per_frame=4, start=T0):
        """Hourly frames over ``days`` days, six per day."""
        made = []
        for day in range(days):
            for hour in range(0, 24, 4):
                begin = start + day * DAY + datetime.timedelta(hours=hour)
                made.append(builders.make_frame(begin, [
                    ('cpu', builders.make_point(
                        self.project_id, n + 1, D(n + day) / 8,
                        groupby={'id': 'vm-%d' % n},
                        metadata={'day': str(day)}))
                    for n in range(per_frame)]))
        return made

    def push(self, frames, **kwargs):
        self.store.push(frames, scope_id='scope', **kwargs)
        self.pushed.extend(frames)

    def assertAgrees(self, groupby=('id',), **window):
        """total() and retrieve() equal the oracle over what was pushed."""
        window = window or WINDOW
        for by in ((), groupby, ('time-d',), ('day', 'time-d')):
            want = query.evaluate_total(query.validate_total(
                groupby=list(by), paginate=False, **window), self.pushed)
            got = self.store.total(groupby=list(by), paginate=False,
                                   **window)
            self.assertEqual(want, got, by)
        # NOTE: sum/avg/count read the daily records, min/max the points.
        for fields in ('sum(qty) AS s, avg(price) AS a, count(qty) AS n',
                       'min(qty) AS lo, max(price) AS hi'):
            args = dict(window, groupby=['time-d'], custom_fields=fields,
                        paginate=False)
            self.assertEqual(query.evaluate_total(
                query.validate_total(**args), self.pushed),
                self.store.total(**args), fields)
        want = query.evaluate_retrieve(query.validate_retrieve(
            paginate=False, **window), self.pushed)
        got = self.store.retrieve(paginate=False, **window)
        self.assertEqual(want['total'], got['total'])
        self.assertEqual(sorted(map(repr, want['dataframes'])),
                         sorted(map(repr, got['dataframes'])))

    def daily_kinds(self):
        """Count the ck_daily records by kind (p, d, c)."""
        rows = self.store.client.rows(
            'SELECT "d", "buffer", "ck_rec" FROM %s WHERE time >= 0'
            % self.store.source(rollup.DAILY))
        kinds = {}
        for row in rows:
            if row['d'] is not None or row['buffer'] is not None:
                kinds[row['ck_rec']] = kinds.get(row['ck_rec'], 0) + 1
        return kinds

    def test_later_day_compacts_earlier_days(self):
        """Pushing into a new day turns older push records into days."""
        for frame in self.frames(days=3):
            self.push([frame])
        kinds = self.daily_kinds()
        # NOTE: day 3 is still open: its six push records wait.
        self.assertEqual(6, kinds.get('p'))
        self.assertEqual(2, kinds.get('c'))
        self.assertAgrees()

    def read_backs(self, store):
        """Count the compactions of ``store`` that read a day back."""
        real = store.rollup._rows
        calls = []

        def counted(begin_ns, end_ns, scope_tag=None, **kwargs):
            if scope_tag is not None:
                calls.append(begin_ns)
            return real(begin_ns, end_ns, scope_tag, **kwargs)

        store.rollup._rows = counted
        return calls

    def test_open_day_compacts_from_memory(self):
        """A day only this writer pushed into is compacted unread."""
        read_backs = self.read_backs(self.store)
        for frame in self.frames(days=3, per_frame=40):
            self.push([frame])
        self.assertEqual([], read_backs)
        self.assertEqual(2, self.daily_kinds().get('c'))
        self.assertAgrees()

    def test_day_goes_on_after_compaction_from_memory(self):
        """A day is compacted every DAY_PUSHES pushes, unread, and goes on.

        A keyed retry of a push compacted earlier still counts once.
        """
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.rollup.DAY_PUSHES', 2))
        read_backs = self.read_backs(self.store)
        frames = self.frames(days=1)
        self.push(frames[:1], idempotency_key='first')
        for frame in frames[1:]:
            self.push([frame])
        self.assertEqual([], read_backs)
        kinds = self.daily_kinds()
        self.assertEqual(1, kinds.get('c'))
        self.assertIsNone(kinds.get('p'))
        self.assertAgrees()
        self.store.push(frames[:1], scope_id='scope',
                        idempotency_key='first')
        self.assertAgrees()
        self.push(self.frames(days=1, start=T0 + DAY)[:3])
        self.assertAgrees()

    def test_day_compacts_every_day_pushes_pushes_however_split(self):
        """A push's split records count as one push towards compaction."""
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.rollup.DAY_PUSHES', 2))
        frames = self.frames(days=1, per_frame=rollup.SHARE_SERIES)
        self.push(frames[:1])
        records = self.store.client.rows(
            'SELECT "np" FROM "ck_daily" WHERE "ck_rec" = \'p\' AND '
            '"ck_part" = \'0\'')
        self.assertEqual(rollup.RECORD_SHARES, len(records))
        self.assertIsNone(self.daily_kinds().get('c'))
        self.push(frames[1:2])
        kinds = self.daily_kinds()
        self.assertEqual(1, kinds.get('c'))
        self.assertIsNone(kinds.get('p'))
        self.assertAgrees()

    def push_parts(self):
        """The ``d`` field of every push record, by frame start (ns)."""
        rows = self.store.client.rows(
            'SELECT "d" FROM %s WHERE "ck_rec" = \'p\' AND time >= 0'
            % self.store.source(rollup.DAILY))
        return {row['time'] // 1000 * 1000: row['d'] for row in rows}

    def test_open_day_names_each_series_once(self):
        """Later records of an open day give digests; reads name them.

        Pushed out of order, so that the record naming the series lies
        after the end of a window, which must still read no point.
        """
        frames = self.frames(days=1)
        for frame in (frames[3], frames[1], frames[2]):
            self.push([frame])
        parts = self.push_parts()
        first = query.to_micros(frames[3].start) * 1000
        self.assertNotIn(rollup.DIGEST_MARK, parts.pop(first))
        self.assertEqual(2, len(parts))
        for part in parts.values():
            self.assertEqual(4, part.count(rollup.DIGEST_MARK))
        raw_reads = []
        real = self.store._raw_partials
        self.store._raw_partials = lambda *args: raw_reads.append(args) \
            or real(*args)
        window = {'begin': T0, 'end': frames[3].start}
        self.assertAgrees(**window)
        self.assertAgrees()
        self.assertEqual([], raw_reads)

    def test_day_record_names_the_series_of_later_records(self):
        """Records after a compaction give digests the day record names.

        Reads, the correction of a delete (from the frame log) and the
        next compaction, which reads the day back, resolve them.
        """
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.rollup.DAY_PUSHES', 2))
        raw_reads = []
        real = self.store._raw_partials
        self.store._raw_partials = lambda *args: raw_reads.append(args) \
            or real(*args)
        frames = self.frames(days=2)
        for frame in frames[:3]:
            self.push([frame])
        parts = self.push_parts()
        self.assertEqual([query.to_micros(frames[2].start) * 1000],
                         list(parts))
        self.assertEqual(4, parts.popitem()[1].count(rollup.DIGEST_MARK))
        self.assertAgrees()
        self.store.delete(begin=frames[2].start, end=frames[3].start)
        self.pushed.remove(frames[2])
        self.assertAgrees()
        for frame in frames[3:]:
            self.push([frame])
        self.assertAgrees()
        self.assertEqual([], raw_reads)

    def test_records_and_their_log_copies_go_in_one_request(self):
        """InfluxDB writes each push record and its copy, or neither.

        A frame start of many series has two records, in two requests
        sent at once, each with the log copies of its own lines.
        """
        sent = []
        real = self.store.client._request

        def spy(method, endpoint, params, data=None):
            if endpoint == 'write' and b'ck_rec=p' in data:
                sent.append(data)
            return real(method, endpoint, params, data)

        self.store.client._request = spy
        self.push(self.frames(days=1, per_frame=rollup.SHARE_SERIES)[:1])
        self.assertEqual(rollup.RECORD_SHARES, len(sent))
        for data in sent:
            lines = data.decode().split('\n')
            daily = [line for line in lines
                     if line.startswith(rollup.DAILY + ',')]
            self.assertGreater(len(data), client.SMALL_WRITE)
            self.assertEqual([rollup.FRAME_LOG + line[len(rollup.DAILY):]
                              for line in daily], lines[len(daily):])
        self.assertEqual(2, len({line.rsplit(' ', 1)[1] for data in sent
                                 for line in data.decode().split('\n')}))
        self.assertAgrees()

    def test_first_write_into_a_day_goes_alone(self):
        """A store writes one point alone into a day before anything else.

        InfluxDB 1.6 can hide the points of one of two requests that
        reach a shard it creates for them at once (see
        :meth:`.slots.Bookkeeper.open_days`): the days of the frames, and
        those around the clock for the lease marks, are opened first.
        """
        sent = []

        def spy_on(store):
            real = store.client._request

            def spy(method, endpoint, params, data=None):
                if endpoint == 'write':
                    sent.append(data.decode().split('\n'))
                return real(method, endpoint, params, data)
            store.client._request = spy

        def openings():
            return [[int(line.rsplit(' ', 1)[1]) for line in lines]
                    for lines in sent if lines[0].startswith(slots.OPENED)]

        def assert_opened_first():
            """Each day is opened alone, before any other write into it."""
            opened = set()
            for lines in sent:
                if lines[0].startswith(slots.OPENED):
                    self.assertEqual(
                        ['%s n=1i %s' % (slots.OPENED, line.rsplit(' ', 1)[1])
                         for line in lines], lines)
                    opened.update(int(line.rsplit(' ', 1)[1])
                                  for line in lines)
                    continue
                for line in lines:
                    # NOTE: the server stamps a line without a time (a
                    # lease mark) with its clock.
                    stamp = line.rsplit(' ', 2)[1:]
                    moment = (int(stamp[1]) if len(stamp) == 2 and
                              stamp[1].isdigit() else time.time_ns())
                    self.assertIn(moment - moment % rollup.DAY_NS, opened,
                                  line)

        spy_on(self.store)
        frames = self.frames(days=2)
        day = query.to_micros(T0) * 1000
        self.push(frames[:8])
        frame_days = [day, day + rollup.DAY_NS]
        # NOTE: the lease is taken (around the clock) while the frames'
        # days are opened: the two requests may go in either order.
        [today] = [starts for starts in openings() if starts != frame_days]
        self.assertCountEqual([frame_days, today], openings())
        margin = slots.CLOCK_SKEW_S * 10 ** 9
        now = time.time_ns()
        for start in today:
            self.assertEqual(0, start % rollup.DAY_NS)
            self.assertLess(now - margin - rollup.DAY_NS, start)
            self.assertLessEqual(start, now + margin)
        assert_opened_first()
        # NOTE: days this store opened already, then another store's.
        del sent[:]
        self.push(frames[8:10])
        self.assertEqual([], openings())
        other = self.new_store()
        spy_on(other)
        other.push(frames[10:], scope_id='scope')
        self.pushed.extend(frames[10:])
        self.assertCountEqual([[day + rollup.DAY_NS], today], openings())
        self.assertAgrees()
        # NOTE: a database dropped and created again has new shards.
        type(self).drop_database()
        self.store.init()
        del sent[:]
        self.store.push(frames[:1])
        self.assertCountEqual([[day], today], openings())
        assert_opened_first()

    def test_day_another_writer_pushed_into_is_read_back(self):
        """Records another writer added to a day are compacted too.

        The first writer opened the day; the second one pushed the rest of
        it; the first one's compaction must see those records.
        """
        first, second = self.store, self.new_store()
        read_backs = self.read_backs(first)
        day_one = self.frames(days=1)
        first.push(day_one[:3], scope_id='scope')
        second.push(day_one[3:], scope_id='scope')
        self.pushed.extend(day_one)
        self.push(self.frames(days=1, start=T0 + DAY)[:1])
        self.assertEqual([query.to_micros(T0) * 1000], read_backs)
        self.assertEqual(1, self.daily_kinds().get('c'))
        self.assertAgrees()

    def test_commit_another_writer_made_after_a_delete_is_read_back(self):
        """A day's commit is trusted from memory only if it is this one's.

        The first writer compacts its open day and keeps it open; another
        instance deletes the day whole; a second writer pushes into it and
        compacts it, a commit at the day's first version again. The first
        writer's memory still counts the deleted points: its next
        compaction must read the day back, not find "a commit" and the
        records it wrote, and write the deleted sums again over the
        second writer's.
        """
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.rollup.DAY_PUSHES', 2))
        second, deleter = self.new_store(), self.new_store()
        read_backs = self.read_backs(self.store)
        for frame in self.frames(days=1)[:2]:
            self.push([frame])
        self.assertEqual(1, self.daily_kinds().get('c'))
        self.assertEqual(2 * 4, deleter.delete(begin=T0, end=T0 + DAY))
        self.pushed = []
        # NOTE: other sums than the deleted frames', at other frame starts.
        frames = self.frames(days=1, per_frame=2)
        for frame in frames[2:4]:
            second.push([frame], scope_id='scope')
        self.pushed.extend(frames[2:4])
        self.assertEqual(1, self.daily_kinds().get('c'))
        for frame in frames[4:]:
            self.push([frame])
        self.assertEqual([query.to_micros(T0) * 1000], read_backs)
        self.assertAgrees()

    def test_missing_part_makes_the_day_read_back(self):
        """A part of an open day's record that is gone: read the day.

        The day sums in memory would no longer be what the server holds;
        the listing notices and the compaction reads the day instead.
        """
        read_backs = self.read_backs(self.store)
        frames = self.frames(days=2)
        for frame in frames[:6]:
            self.push([frame])
        day = query.to_micros(T0) * 1000
        self.store.client.query(
            'DELETE FROM "ck_daily" WHERE "ck_rec" = \'p\' AND time >= $b '
            'AND time < $e', {'b': day, 'e': day + 4 * 3600 * 10 ** 9})
        for frame in frames[6:]:
            self.store.push([frame], scope_id='scope')
        self.assertEqual([day], read_backs)
        # NOTE: the day's first record named its series; the others give
        # digests only, which nothing resolves any more. The compaction
        # leaves the day, and total() by series sums its points, all six
        # frames.
        window = {'begin': T0, 'end': T0 + DAY, 'paginate': False}
        # NOTE: total() without labels cannot hold for all six frames: it
        # sums the frame totals ("tot") of the records and never parses
        # their series, which is what makes it cheap, and the only record
        # of the first frame is the one deleted above. So it counts the
        # five frames whose records are left, exactly; a record that is
        # lost is lost to it (records are written after their points and
        # never deleted but by a compaction that replaced them, so only
        # damage from outside, as here, loses one).
        self.assertEqual(
            query.evaluate_total(query.validate_total(**window),
                                 frames[1:6]),
            self.store.total(**window))
        self.assertEqual(
            query.evaluate_total(query.validate_total(
                groupby=['project_id'], **window), frames[:6]),
            self.store.total(groupby=['project_id'], **window))
        self.assertEqual(
            query.evaluate_total(query.validate_total(
                groupby=['id'], **window), frames[:6]),
            self.store.total(groupby=['id'], **window))

    def test_retry_after_compaction_counts_once(self):
        """A keyed retry rewrites push records that a day already holds."""
        first = self.frames(days=1)
        self.push(first, idempotency_key='day-1')
        for frame in self.frames(days=1, start=T0 + DAY):
            self.push([frame])
        self.assertEqual(1, self.daily_kinds().get('c'))
        self.store.push(first, scope_id='scope', idempotency_key='day-1')
        self.assertAgrees()

    def record_writes(self, kinds):
        """Collect the ``(series, time)`` of every record line written.

        :param kinds: the ``ck_rec`` values of the records to collect.
        :returns: the list that grows with each line written.
        """
        written = []
        real = self.store.client._request
        marks = tuple(',ck_rec=%s,' % kind for kind in kinds)

        def spy(method, endpoint, params, data=None):
            if endpoint == 'write':
                for line in data.decode('utf-8').split('\n'):
                    series = line.split(' ', 1)[0]
                    if series.startswith(rollup.DAILY + ',') and any(
                            mark in series + ',' for mark in marks):
                        written.append((series, int(line.rsplit(' ', 1)[1])))
            return real(method, endpoint, params, data)

        self.store.client._request = spy
        return written

    def test_compactions_never_write_a_record_where_one_was(self):
        """Commits and day parts go to a new time of their day each time.

        InfluxDB may keep an older value of a point written again while
        it snapshots its cache (see rollup.next_version): compactions from
        memory, read back, after a delete and after one that died before
        its commit never write a commit or a day part twice in a place.
        """
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.rollup.DAY_PUSHES', 2))
        written = self.record_writes(('c', 'd'))
        frames = self.frames(days=3)
        for frame in frames[:9]:
            self.push([frame])
        self.delete_and_check(begin=T0 + datetime.timedelta(hours=4),
                              end=T0 + datetime.timedelta(hours=8))
        # NOTE: a compaction of day 2 that dies before its commit.
        self.push_whose_compaction_dies(self.crashing_commits(),
                                        frames[9:10])
        self.assertAgrees()
        for frame in frames[10:]:
            self.push([frame])
        self.delete_and_check(begin=T0 + DAY, end=T0 + DAY + DAY // 2,
                              filters={'id': ['vm-1']})
        self.push(self.frames(days=1, start=T0 + 3 * DAY)[:1])
        self.assertAgrees()
        self.assertGreater(len(written), 12)
        self.assertEqual(len(written), len(set(written)))
        # NOTE: one commit per compacted day, with its parts only.
        self.assertEqual(3, self.daily_kinds().get('c'))

    def crashing_commits(self):
        """Commits fail inside the block, after their day parts."""
        return self.crashing('write', lambda lines: any(
            ',ck_rec=c,' in line for line in lines))

    def make_unversioned(self):
        """Move commits and day parts where earlier versions wrote them.

        Commits at their day start without a buffer tag, day parts at the
        day start plus their buffer, without "np" (see earlier_line).
        """
        client = self.store.client
        lines = []
        for part in client.query(
                'SELECT * FROM %s WHERE time >= 0 AND ("ck_rec" = \'c\' OR '
                '"ck_rec" = \'d\') GROUP BY *'
                % self.store.source(rollup.DAILY)):
            dropped = ((rollup.BUFFER_TAG,) if part['tags']['ck_rec'] == 'c'
                       else ())
            lines += [earlier_line(rollup.DAILY, part, values, dropped)
                      for values in part['values']]
        client.query('DROP SERIES FROM "%s" WHERE "ck_rec" = \'c\' OR '
                     '"ck_rec" = \'d\'' % rollup.DAILY)
        client.write(lines)
        return lines

    def test_days_of_earlier_versions_go_on_at_new_versions(self):
        """Commits written in place by earlier code still count.

        The next compaction of their day replaces them at a new version.
        """
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.rollup.DAY_PUSHES', 2))
        frames = self.frames(days=3)
        for frame in frames[:-1]:
            self.push([frame])
        moved = self.make_unversioned()
        self.assertTrue(any(',ck_rec=c,' in line for line in moved))
        self.store = self.new_store()
        self.assertAgrees()
        self.push(frames[-1:])
        self.push(self.frames(days=1, start=T0 + 3 * DAY)[:1])
        self.assertAgrees()
        # NOTE: late pushes into days 1 and 2 compact them again.
        late = self.frames(days=2, per_frame=1)[:1] + self.frames(
            days=2, per_frame=1)[6:7]
        for frame in late:
            frame_points = list(frame.iterpoints())
            frame = builders.make_frame(frame.start, [
                (type_, builders.make_point(
                    self.project_id, 1, 1, groupby={'id': 'late'}))
                for type_, _ in frame_points])
            self.push([frame])
        self.push(self.frames(days=1, start=T0 + 4 * DAY)[:1])
        self.assertAgrees()
        unversioned = self.store.client.rows(
            'SELECT "buffer" FROM %s WHERE "ck_rec" = \'c\' AND "%s" = '
            '\'\' AND time >= 0' % (
                self.store.source(rollup.DAILY), rollup.BUFFER_TAG))
        self.assertEqual([], unversioned)
        self.delete_and_check(begin=T0, end=T0 + DAY + DAY // 2)

    def test_slots_of_a_push_without_key_go_with_each_request(self):
        """Every request of points records the push's slots too.

        InfluxDB writes a request's lines of a shard all or none: no point
        is written without the slots it uses taken, and taking them costs
        no request of its own. A keyed push takes them before its receipt.
        """
        sent = []
        real = self.store.client._request

        def spy(method, endpoint, params, data=None):
            if endpoint == 'write':
                sent.append(data.decode('utf-8').split('\n'))
            return real(method, endpoint, params, data)

        self.store.client._request = spy
        self.push(self.frames(days=1, per_frame=3000)[:1])
        frames = [line for lines in sent for line in lines
                  if line.startswith(slots.FRAMES + ',')]
        with_points = [lines for lines in sent
                       if lines[-1].startswith(encoding.MEASUREMENT + ',')]
        self.assertGreater(len(with_points), 1)
        for lines in with_points:
            self.assertTrue(lines[0].startswith(slots.FRAMES + ','), lines[0])
        self.assertEqual(len(with_points), len(frames))
        del sent[:]
        self.push(self.frames(days=1, start=T0 + DAY)[:1],
                  idempotency_key='k')
        first = next(index for index, lines in enumerate(sent)
                     if lines[0].startswith(slots.FRAMES + ','))
        self.assertFalse(any(line.startswith(encoding.MEASUREMENT + ',')
                             for lines in sent[:first + 1]
                             for line in lines))
        self.assertAgrees()

    def test_uncommitted_compaction_is_invisible(self):
        """Day parts written without their commit change nothing."""
        for frame in self.frames(days=2):
            self.push([frame])
        day = query.to_micros(T0) * 1000
        # NOTE: a compaction that died before its commit: garbage in the
        # buffer the commit does not point to.
        self.store.client.write([
            'ck_daily,ck_buf=1,ck_dow=%s,ck_part=0,ck_rec=d,ck_scope=.scope '
            'd="%s" %d' % (rollup.day_tag(day), 'ck_type=.cpu 1000 5 5',
                           day + 1)])
        self.assertAgrees()

    def test_torn_commits_are_passed_over(self):
        """Invariant 12: a commit seen with some fields only is not read.

        A query running while a compaction writes its commit, or deletes
        the one it replaced, can see some of the commit's fields only:
        written here as they would be seen, a newer one and an older one
        of a day, each without one field (a field of its own per day:
        InfluxDB merges the fields of points written at one time).
        """
        for frame in self.frames(days=4):
            self.push([frame])
        for number, field in enumerate(('buffer', 'parts', 'inc')):
            day = query.to_micros(T0 + number * DAY) * 1000
            [commit] = self.store.client.rows(
                'SELECT * FROM %s WHERE "ck_rec" = \'c\' AND time >= '
                '$begin AND time < $end' % self.store.source(rollup.DAILY),
                {'begin': day, 'end': day + rollup.DAY_NS})
            version = rollup.version_of(commit)
            self.assertGreater(version, 1)
            tags = ','.join('%s=%s' % (tag, commit[tag]) for tag in (
                rollup.BUFFER_TAG, rollup.DOW_TAG, 'ck_rec', 'ck_scope'))
            fields = ','.join(
                '%s=%s' % (name, encoding.field_string(commit[name])
                           if isinstance(commit[name], str)
                           else '%di' % commit[name])
                for name in ('buffer', 'parts', 'inc', 'frames')
                if name != field)
            for moment in (day + version - 1, day + version + 2):
                self.store.client.write(['%s,%s %s %d' % (
                    rollup.DAILY, tags, fields, moment)])
            self.assertAgrees()

    @contextlib.contextmanager
    def crashing(self, method, when):
        """Make a client method fail inside the block, as if the store died.

        :param method: the name of a method of the store's client.
        :param when: tells, from the call's first argument, whether it
            fails.
        """
        real = getattr(self.store.client, method)

        def crash(first, *args, **kwargs):
            if when(first):
                raise exceptions.BackendUnavailable(
                    'influxdb', self.store.location, 'crash')
            return real(first, *args, **kwargs)
        setattr(self.store.client, method, crash)
        try:
            yield
        finally:
            setattr(self.store.client, method, real)

    def push_whose_compaction_dies(self, crashing, frames, **kwargs):
        """Push into scope "scope"; its compaction dies within ``crashing``.

        The push returns, as it landed: the compaction's failure is only
        logged (a retry without key would count the push twice).
        """
        logged = self.useFixture(fixtures.FakeLogger(
            name=influxdb.__name__, level=logging.WARNING))
        with crashing:
            self.push(frames, **kwargs)
        self.assertIn('compacting the days of scope', logged.output)
        self.assertIn('BackendUnavailable', logged.output)

    def crashing_deletes(self):
        """The store's DELETEs fail inside the block, as if it died there."""
        return self.crashing('query', lambda statement: statement.startswith(
            'DELETE'))

    def test_crash_between_commit_and_drop_counts_once(self):
        """Push records a commit includes are skipped while still there."""
        first, second = self.frames(days=1), self.frames(days=1,
                                                         start=T0 + DAY)
        for frame in first:
            self.push([frame])
        # NOTE: the push into day 2 compacts day 1, commits, then "dies"
        # before it deletes day 1's push records.
        self.push_whose_compaction_dies(self.crashing_deletes(), second[:1],
                                        idempotency_key='day-2')
        kinds = self.daily_kinds()
        self.assertEqual(1, kinds.get('c'))
        self.assertEqual(7, kinds.get('p'))
        self.assertAgrees()
        # NOTE: a retry finds its points written and stores nothing new;
        # the next compaction drops day 1's leftovers.
        self.store.push(second[:1], scope_id='scope',
                        idempotency_key='day-2')
        self.assertAgrees()
        self.push(self.frames(days=1, start=T0 + 2 * DAY))
        self.assertAgrees()
        self.assertEqual(2, self.daily_kinds().get('c'))

    def test_reservations_never_overwrite_one_another(self):
        """Every push takes slots with a point of its own, after any other.

        A frame start an earlier version reserved (one point, at the frame
        start, overwritten by each push) goes on after its slots.
        """
        frames = self.frames(days=1)
        start = query.to_micros(frames[0].start) * 1000
        scope = self.store.books.source(slots.FRAMES)
        self.store.client.write(['%s,ck_scope=.%s used=7i %d' % (
            slots.FRAMES, 'scope', start)])
        self.push(frames)
        self.push(frames[:1])
        rows = self.store.client.rows(
            'SELECT "used", "ck_n" FROM %s WHERE time >= $b AND time < $e'
            % scope, {'b': start, 'e': start + encoding.SLOTS})
        self.assertEqual([(0, 7), (7, 8), (8, 9)], [
            (row['time'] - start, row['used']) for row in rows])
        self.assertEqual({('.scope', start): 9}, {
            where: used for where, used in self.store.books.used(
                start, start + 1).items()})
        self.assertAgrees()

    def test_filtered_delete_corrects_days(self):
        """A delete with filters inside compacted days keeps days exact."""
        for frame in self.frames(days=3):
            self.push([frame])
        deleted = self.store.delete(begin=T0 + datetime.timedelta(hours=3),
                                    end=T0 + DAY + datetime.timedelta(
                                        hours=9),
                                    filters={'id': ['vm-1', 'vm-2']})
        want, self.pushed = query.evaluate_delete(query.validate_delete(
            begin=T0 + datetime.timedelta(hours=3),
            end=T0 + DAY + datetime.timedelta(hours=9),
            filters={'id': ['vm-1', 'vm-2']}), self.pushed)
        self.assertEqual(want, deleted)
        self.assertAgrees()

    def test_partial_day_delete_keeps_the_rest_of_the_day(self):
        """A delete without filters over part of a day corrects that day."""
        for frame in self.frames(days=3):
            self.push([frame])
        begin = T0 + DAY + datetime.timedelta(hours=10)
        self.store.delete(begin=begin)
        _, self.pushed = query.evaluate_delete(
            query.validate_delete(begin=begin), self.pushed)
        self.assertAgrees()
        self.push(self.frames(days=1, start=T0 + 2 * DAY))
        self.assertAgrees()

    def delete_statements(self):
        """Record the statements the store's deletes send from now on."""
        sent = []
        query_of = self.store.client.query
        delete_of = self.store.delete

        def query_and_record(statement, params=None, **kwargs):
            if recording:
                sent.append(statement)
            return query_of(statement, params, **kwargs)

        def delete_and_record(*args, **kwargs):
            nonlocal recording
            recording = True
            try:
                return delete_of(*args, **kwargs)
            finally:
                recording = False
        recording = False
        self.useFixture(fixtures.MockPatchObject(
            self.store.client, 'query', query_and_record))
        self.useFixture(fixtures.MockPatchObject(
            self.store, 'delete', delete_and_record))
        return sent

    def delete_and_check(self, **kwargs):
        """Delete, compare the count and the sums with the oracle."""
        deleted = self.store.delete(**kwargs)
        want, self.pushed = query.evaluate_delete(
            query.validate_delete(**kwargs), self.pushed)
        self.assertEqual(want, deleted)
        self.assertAgrees()

    def test_unfiltered_delete_reads_no_point(self):
        """Without filters, a delete's correction comes from the log.

        Frames of a compacted day, of an open day and of the day's first
        push record (the one naming the series the others give digests
        of): the frame log alone tells what they held.
        """
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.rollup.DAY_PUSHES', 2))
        for frame in self.frames(days=3):
            self.push([frame])
        sent = self.delete_statements()
        for hours in (4, 0, 2 * 24 + 8, 2 * 24 + 20):
            begin = T0 + datetime.timedelta(hours=hours)
            self.delete_and_check(begin=begin,
                                  end=begin + datetime.timedelta(hours=1))
        self.assertEqual([], [s for s in sent if s.startswith('SELECT')
                              and '"rating"' in s])

    def test_unfiltered_delete_after_a_filtered_one(self):
        """The log holds corrections: a frame deleted twice is exact."""
        for frame in self.frames(days=2):
            self.push([frame])
        window = {'begin': T0 + datetime.timedelta(hours=4),
                  'end': T0 + DAY + datetime.timedelta(hours=5)}
        self.delete_and_check(filters={'id': ['vm-1']}, **window)
        self.delete_and_check(**window)
        # NOTE: pushed again after the delete, then deleted again.
        self.push([self.frames(days=1)[1]])
        self.delete_and_check(**window)

    def test_delete_of_every_frame_of_a_day_drops_its_records(self):
        """A window holding all of a day's frames acts as a whole day.

        No correction is written: the day's records go, as for a window
        of whole days, and the days around keep theirs.
        """
        for frame in self.frames(days=3):
            self.push([frame])
        before = self.daily_kinds()
        # NOTE: the second day's frames start at 00:00 and end by 21:00.
        self.delete_and_check(begin=T0 + DAY,
                              end=T0 + DAY + datetime.timedelta(hours=21))
        after = self.daily_kinds()
        self.assertEqual(before.get('c', 0) - 1, after.get('c', 0))
        self.assertEqual(before.get('p', 0), after.get('p', 0))
        self.push(self.frames(days=1, start=T0 + DAY))
        self.assertAgrees()

    def test_delete_without_frame_log_reads_the_points(self):
        """Frames pushed before the frame log existed: from the points."""
        for frame in self.frames(days=2):
            self.push([frame])
        self.store.client.query('DROP MEASUREMENT "%s"' % rollup.FRAME_LOG)
        sent = self.delete_statements()
        self.delete_and_check(begin=T0 + datetime.timedelta(hours=3),
                              end=T0 + DAY + datetime.timedelta(hours=9))
        self.assertTrue([s for s in sent if s.startswith('SELECT')
                         and '*::tag' in s])

    def shard_bounds(self):
        """The ``(start, end)`` (ns) of the shards of the test database."""
        return list(deletes.shards(self.store.client).values())

    def guard_record_deletes(self):
        """Fail when a DELETE of records leaves a series it matched.

        InfluxDB 1.x drops from its index every series a DELETE matches
        (by its tags, in the shards its time range meets) that holds no
        point in a TSM file nor in the live cache afterwards; points being
        snapshotted at that moment count as neither, and go out of sight
        until the server restarts. So a DELETE of records must match only
        series it empties in those shards; this checks it after each one.

        :returns: the ``(statement, params)`` checked.
        """
        checked = []
        query_of = self.store.client.query
        prefixes = {'DELETE FROM "%s" WHERE ' % name: name
                    for name in (rollup.DAILY, rollup.FRAME_LOG)}

        def query_and_check(statement, params=None, **kwargs):
            found = query_of(statement, params, **kwargs)
            prefix = statement[:statement.find(' WHERE ') + 7]
            if prefix in prefixes:
                checked.append((statement, params))
                begin, end = params['begin'], params['end']
                touched = [(low, high) for low, high in self.shard_bounds()
                           if low < end and begin < high]
                left = query_of(
                    'SELECT count(*) FROM %s WHERE %s GROUP BY *' % (
                        self.store.source(prefixes[prefix]),
                        statement[len(prefix):]),
                    dict(params,
                         begin=min(low for low, _ in touched),
                         end=max(high for _, high in touched)))
                self.assertEqual([], left, statement)
            return found
        self.useFixture(fixtures.MockPatchObject(
            self.store.client, 'query', query_and_check))
        return checked

    def test_record_deletes_empty_every_series_they_match(self):
        """Compactions and deletes never delete part of a series' shard.

        Days that go on (compacted every two pushes, so day buffers
        alternate), later days, a filtered, a partial and a whole-day
        delete; the test database's shards hold seven days each.
        """
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.rollup.DAY_PUSHES', 2))
        checked = self.guard_record_deletes()
        for frame in self.frames(days=3):
            self.push([frame])
        self.delete_and_check(begin=T0 + datetime.timedelta(hours=4),
                              end=T0 + DAY, filters={'id': ['vm-1']})
        self.delete_and_check(begin=T0 + datetime.timedelta(hours=8),
                              end=T0 + datetime.timedelta(hours=9))
        self.delete_and_check(begin=T0 + DAY, end=T0 + 2 * DAY)
        self.push(self.frames(days=2, start=T0 + DAY))
        self.assertAgrees()
        # NOTE: seven whole days: across a shard's edge, and each day
        # number also names a day outside the window in a shard it meets.
        self.push(self.frames(days=6, start=T0 + 3 * DAY))
        self.delete_and_check(begin=T0 + DAY, end=T0 + 8 * DAY)
        kinds = {value for _, params in checked
                 for name, value in params.items() if name.startswith('rec')}
        self.assertTrue({'p', 'd'} <= kinds, kinds)

    def make_legacy(self):
        """Rewrite every record without ck_dow and ck_buf, as before them.

        Where versions before the tags wrote them (see earlier_line).
        """
        client = self.store.client
        for name in (rollup.DAILY, rollup.FRAME_LOG):
            lines = [earlier_line(name, part, values,
                                  (rollup.DOW_TAG, rollup.BUFFER_TAG))
                     for part in client.query(
                         'SELECT * FROM %s WHERE time >= 0 GROUP BY *'
                         % self.store.source(name))
                     for values in part['values']]
            client.query('DROP SERIES FROM "%s" WHERE "%s" != \'\'' % (
                name, rollup.DOW_TAG))
            client.write(lines)

    def test_legacy_records_read_compacted_and_deleted(self):
        """Records written before ck_dow and ck_buf still count once."""
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.rollup.DAY_PUSHES', 2))
        frames = self.frames(days=3)
        for frame in frames[:-2]:
            self.push([frame])
        # NOTE: the fifth push of day 3: left as a push record.
        self.push(frames[-2:-1], idempotency_key='last')
        before = self.daily_kinds()
        self.make_legacy()
        self.assertEqual({}, self.tagged_kinds())
        self.assertEqual(before, self.daily_kinds())
        self.assertEqual({'p', 'd', 'c'}, set(before))
        self.store = self.new_store()
        self.assertAgrees()
        # NOTE: a keyed retry writes the same records, tagged this time.
        self.store.push(frames[-2:-1], scope_id='scope',
                        idempotency_key='last')
        self.assertAgrees()
        self.push(frames[-1:])
        self.assertAgrees()
        # NOTE: day 3 is read back and compacted, but the compaction dies
        # before it deletes anything: its commit and the legacy one meet.
        day_4 = self.frames(days=1, start=T0 + 3 * DAY)
        self.push_whose_compaction_dies(self.crashing_deletes(), day_4[:1],
                                        idempotency_key='4')
        self.assertAgrees()
        # NOTE: the next compaction of day 3 deletes its legacy records.
        self.store.push(day_4[:1], scope_id='scope', idempotency_key='4')
        self.push(day_4[1:2])
        self.assertAgrees()
        self.delete_and_check(begin=T0 + datetime.timedelta(hours=4),
                              end=T0 + datetime.timedelta(hours=5))
        self.delete_and_check(begin=T0 + DAY, end=T0 + 2 * DAY)
        self.delete_and_check(begin=T0 + 2 * DAY + datetime.timedelta(
            hours=8), end=T0 + 3 * DAY, filters={'id': ['vm-2']})
        self.push(self.frames(days=2, start=T0 + 3 * DAY)[2:])
        self.assertAgrees()
        # NOTE: every day compacted since holds tagged records only.
        legacy = self.store.client.rows(
            'SELECT "np", "buffer", "d" FROM %s WHERE "%s" = \'\' AND '
            'time >= $begin' % (self.store.source(rollup.DAILY),
                                rollup.DOW_TAG),
            {'begin': query.to_micros(T0 + 2 * DAY) * 1000})
        self.assertEqual([], legacy)

    def tagged_kinds(self):
        """Count the ck_daily records with ck_dow, by kind."""
        rows = self.store.client.rows(
            'SELECT "np", "buffer", "d", "ck_rec" FROM %s WHERE "%s" != '
            '\'\' AND time >= 0' % (self.store.source(rollup.DAILY),
                                    rollup.DOW_TAG))
        kinds = {}
        for row in rows:
            kinds[row['ck_rec']] = kinds.get(row['ck_rec'], 0) + 1
        return kinds

    def test_pages_without_filters_follow_frame_totals(self):
        """Unfiltered pages, found through frame totals, equal the oracle.

        Three days (two compacted, one open), two types per frame, pages
        that end inside a frame start and inside a type.
        """
        for frame in self.frames(days=3, per_frame=5):
            frame.add_points([builders.make_point(
                self.project_id, n, n, groupby={'id': 'disk-%d' % n})
                for n in range(3)], 'disk')
            self.push([frame])
        for kwargs in ({}, {'metric_types': 'disk'},
                       {'metric_types': ['cpu', 'disk']}):
            for limit in (1, 4, 7, 100):
                for offset in range(0, 150, 11):
                    args = dict(WINDOW, offset=offset, limit=limit,
                                **kwargs)
                    want = query.evaluate_retrieve(
                        query.validate_retrieve(**args), self.pushed)
                    got = self.store.retrieve(**args)
                    self.assertEqual(want['total'], got['total'], args)
                    self.assertEqual(
                        [repr(f) for f in want['dataframes']],
                        [repr(f) for f in got['dataframes']], args)

    def test_points_of_both_layouts_read_alike(self):
        """Short fields and no ck_len, or limbs and ck_len: read alike.

        Points pushed before short money fields and a left-out ``ck_len``
        carry limbs and ``ck_len`` whatever their values and length; sums,
        counts, pages and deletes take both layouts, even in one series
        and frame start, and a frame start of a ``time`` groupby that
        holds points with and without ``ck_len`` ends with its longest
        frame.
        """
        hour = datetime.timedelta(hours=1)
        legacy = self.frames(days=1)
        with fixtures.MonkeyPatch(
                'cloudkitty.storage.v2.influxdb.encoding.DEFAULT_LENGTH_US',
                -1), fixtures.MonkeyPatch(
                'cloudkitty.storage.v2.influxdb.encoding._SHORT_BOUND', 0):
            # NOTE: the layout written before: limbs and ck_len always.
            self.push(legacy + [builders.make_frame(T0 + DAY, [
                ('disk', builders.make_point(self.project_id, 5, D('0.5'),
                                             groupby={'id': 'vm-0'}))])])
        for start, period, type_ in ((T0 + DAY, hour, 'cpu'),
                                     (T0 + DAY, 2 * hour, 'disk'),
                                     (T0 + 2 * DAY, hour / 2, 'cpu'),
                                     (T0 + 2 * DAY, hour, 'disk'),
                                     (T0 + 3 * DAY, hour, 'cpu')):
            self.push([builders.make_frame(start, [(type_, builders.make_point(
                self.project_id, n + 1, n, groupby={'id': 'vm-%d' % n}))
                for n in range(3)], period=period)])
        rows = self.store.client.rows(
            'SELECT "qa", "q", "ck_len" FROM %s WHERE time >= 0'
            % self.store.source('rating'))
        self.assertEqual({3600 * 10 ** 6, None, 1800 * 10 ** 6,
                          7200 * 10 ** 6}, {row['ck_len'] for row in rows})
        self.assertEqual((25, 15), (
            sum(row['qa'] is not None for row in rows),
            sum(row['q'] is not None for row in rows)))
        self.assertAgrees()
        for args in ({'groupby': ['time']},
                     {'groupby': ['time', 'id'],
                      'filters': {'id': ['vm-1', 'vm-2']}},
                     {'groupby': ['time'], 'metric_types': 'disk'}):
            args = dict(WINDOW, paginate=False, **args)
            self.assertEqual(query.evaluate_total(
                query.validate_total(**args), self.pushed),
                self.store.total(**args), args)
        args = dict(WINDOW, paginate=False, filters={'id': ['vm-1']})
        want = query.evaluate_retrieve(query.validate_retrieve(**args),
                                       self.pushed)
        got = self.store.retrieve(**args)
        self.assertEqual(sorted(map(repr, want['dataframes'])),
                         sorted(map(repr, got['dataframes'])))
        for offset in (0, 3, 20, 24, 25, 26, 39):
            args = dict(WINDOW, offset=offset, limit=2,
                        filters={'project_id': [self.project_id]})
            want = query.evaluate_retrieve(query.validate_retrieve(**args),
                                           self.pushed)
            got = self.store.retrieve(**args)
            self.assertEqual(want['total'], got['total'])
            self.assertEqual([repr(f) for f in want['dataframes']],
                             [repr(f) for f in got['dataframes']], offset)
        self.delete_and_check(begin=T0 + DAY, end=T0 + 2 * DAY,
                              filters={'id': ['vm-0']})
        self.delete_and_check(begin=T0, end=T0 + 2 * DAY)

    def test_frames_influxdb_would_drop_are_refused(self):
        """Frames older than the retention policy or past 2262: refused."""
        self.conf.set_override('retention_period', 48, group='storage')
        store = self.new_store()
        old = builders.make_frame(T0, [('cpu', builders.make_point(
            self.project_id))])
        late = builders.make_frame(
            datetime.datetime(2263, 1, 1, tzinfo=datetime.timezone.utc),
            [('cpu', builders.make_point(self.project_id))])
        for frames in ([old], [late], [self.frames(days=1)[0], old]):
            error = self.assertRaises(exceptions.InvalidQuery, store.push,
                                      frames, scope_id='scope')
            self.assertEqual('dataframes', error.argument)
        self.assertEqual(0, store.retrieve(
            begin=T0 - DAY, end=T0 + DAY)['total'])

    def policy(self):
        """``(duration, shard duration)`` of the store's policy, as text."""
        for part in self.store.client.query(
                'SHOW RETENTION POLICIES ON "%s"' % self.database,
                database=False):
            for values in part['values']:
                row = dict(zip(part['columns'], values))
                if row['name'] == self.store._rp:
                    return row['duration'], row['shardGroupDuration']

    def test_init_keeps_week_shards(self):
        """init() gives the policy a week's shards, and mends a day's.

        A DELETE costs InfluxDB work per shard of the database; shards of
        another duration than divides a week get a warning.
        """
        self.conf.set_override('retention_period', 2400, group='storage')
        self.store.init()
        self.assertEqual(('2400h0m0s', '168h0m0s'), self.policy())
        self.store.client.query(
            'ALTER RETENTION POLICY "%s" ON "%s" SHARD DURATION 24h' % (
                self.store._rp, self.database), database=False)
        self.store.init()
        self.assertEqual(('2400h0m0s', '168h0m0s'), self.policy())
        self.conf.set_override('manage_retention_policy', False,
                               group='storage_influxdb')
        self.store.client.query(
            'ALTER RETENTION POLICY "%s" ON "%s" SHARD DURATION 240h' % (
                self.store._rp, self.database), database=False)
        logged = self.useFixture(fixtures.FakeLogger())
        self.store.init()
        self.assertEqual(('2400h0m0s', '240h0m0s'), self.policy())
        self.assertIn('does not divide a week', logged.output)

    def test_server_down_is_backend_unavailable(self):
        """No server: init() and push() raise BackendUnavailable."""
        self.conf.set_override('host', '127.0.0.1', group='storage_influxdb')
        self.conf.set_override('port', daemon.free_ports(1)[0],
                               group='storage_influxdb')
        store = storage.get_storage(conf=self.conf, backend='influxdb')
        self.addCleanup(store.close)
        error = self.assertRaises(exceptions.BackendUnavailable, store.init)
        self.assertIn('127.0.0.1', str(error))

    def test_push_pauses_the_cyclic_collector(self):
        """A push writes with the collector off, and turns it back on."""
        states = []
        send = self.store.client._send

        def watched(lines):
            states.append(gc.isenabled())
            return send(lines)

        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.influxdb.client.Client._send',
            lambda client_self, lines: watched(lines)))
        self.addCleanup(gc.enable if gc.isenabled() else gc.disable)
        gc.enable()
        self.push(self.frames(days=2))
        self.assertTrue(states)
        self.assertNotIn(True, states)
        self.assertTrue(gc.isenabled())
        self.assertAgrees()

    def test_answers_are_compressed_only_when_asked(self):
        """Plain query answers by default; gzip with compressed_answers."""
        self.push(self.frames(days=1))
        statement = {'q': 'SELECT * FROM "rating"', 'db':
                     self.store.client.database}
        for compressed, expected in ((False, None), (True, 'gzip')):
            self.conf.set_override('compressed_answers', compressed,
                                   group='storage_influxdb')
            store = self.new_store()
            response = store.client._request('GET', 'query', statement)
            self.assertEqual(expected,
                             response.headers.get('Content-Encoding'))
            self.assertIn(b'"series"', response.content)
            self.assertEqual(self.store.total()['results'],
                             store.total()['results'])

    def test_filter_value_is_never_influxql(self):
        """A filter value built to widen an InfluxQL condition is data.

        Upstream CloudKitty's InfluxDB storage pasted filter values into
        its DELETE: this project id erased every other project's points.
        """
        for frame in self.frames(days=2):
            self.push([frame])
        attack = 'nobody\' OR "project_id"<>\''
        self.assertEqual(0, self.store.delete(
            filters={'project_id': attack}))
        self.assertEqual(0, self.store.total(
            filters={'project_id': attack}, **WINDOW)['total'])
        self.assertAgrees()

    @contextlib.contextmanager
    def third_point_write_fails(self, store):
        """The third write of points of ``store`` fails inside the block."""
        real = store.client._request
        calls = []

        def flaky(method, endpoint, params, data=None):
            if endpoint == 'write' and data and \
                    data.startswith(b'rating,'):
                calls.append(1)
                if len(calls) == 3:
                    raise exceptions.BackendUnavailable(
                        'influxdb', store.location, 'connection reset')
            return real(method, endpoint, params, data)
        store.client._request = flaky
        try:
            yield
        finally:
            store.client._request = real

    def test_refused_records_leave_their_day_to_be_read_back(self):
        """A push whose records were refused is completed by its retry.

        The open day learns a push's records while they travel: when
        they are refused, it stops trusting memory, and the records
        pushed into it before the retry name every series by its key.
        """
        frames = self.frames(days=2)
        store = self.new_store()
        store.push(frames[:1], scope_id='scope')
        self.pushed.extend(frames[:1])
        real = store.client._request
        refused = []

        def flaky(method, endpoint, params, data=None):
            if endpoint == 'write' and data and not refused and \
                    data.startswith(b'ck_daily,'):
                refused.append(data)
                raise exceptions.BackendUnavailable(
                    'influxdb', store.location, 'connection reset')
            return real(method, endpoint, params, data)

        with fixtures.MockPatchObject(store.client, '_request', flaky):
            self.assertRaises(exceptions.BackendUnavailable, store.push,
                              frames[1:2], scope_id='scope',
                              idempotency_key='k')
        self.assertTrue(refused)
        store.push(frames[2:3], scope_id='scope')
        self.pushed.extend(frames[2:3])
        later = store.client.rows(
            'SELECT "d" FROM "ck_daily" WHERE "ck_rec" = \'p\' AND '
            'time >= $at', {'at': query.to_micros(frames[2].start) * 1000})
        self.assertTrue(later)
        self.assertNotIn(rollup.DIGEST_MARK, ''.join(
            row['d'] for row in later))
        store.push(frames[1:2], scope_id='scope', idempotency_key='k')
        self.pushed.extend(frames[1:2])
        store.push(frames[6:], scope_id='scope')
        self.pushed.extend(frames[6:])
        self.assertAgrees()
        self.assertIn('d', self.daily_kinds())

    def test_retry_of_a_push_begun_in_the_older_layout(self):
        """A retry writes the layout of the push an older version began.

        Its receipt names no layout: the retry writes limbs and ck_len,
        as the points already written have, so that InfluxDB does not
        merge two layouts into points counted twice.
        """
        frames = self.frames(days=2, per_frame=50)
        self.conf.set_override('batch_size', 100, group='storage_influxdb')
        self.conf.set_override('write_workers', 1, group='storage_influxdb')
        store = self.new_store()

        def old_receipt(*args):
            receipt = make_receipt(*args)
            del receipt['layout']
            return receipt

        make_receipt = slots.make_receipt
        with self.third_point_write_fails(store), fixtures.MonkeyPatch(
                'cloudkitty.storage.v2.influxdb.encoding.DEFAULT_LENGTH_US',
                -1), fixtures.MonkeyPatch(
                'cloudkitty.storage.v2.influxdb.encoding._SHORT_BOUND',
                0), fixtures.MonkeyPatch(
                'cloudkitty.storage.v2.influxdb.slots.make_receipt',
                old_receipt):
            self.assertRaises(exceptions.BackendUnavailable, store.push,
                              frames, scope_id='scope', idempotency_key='k')
        store.push(frames, scope_id='scope', idempotency_key='k')
        self.pushed.extend(frames)
        rows = self.store.client.rows(
            'SELECT "qa", "q", "ck_len" FROM %s WHERE time >= 0'
            % self.store.source('rating'))
        self.assertEqual(
            [(True, False, True)] * 600,
            [(row['qa'] is not None, row['q'] is not None,
              row['ck_len'] is not None) for row in rows])
        self.assertAgrees()
        # NOTE: a push of this version, retried, keeps its own layout.
        later = self.frames(days=1, per_frame=3, start=T0 + 3 * DAY)
        store.push(later, scope_id='scope', idempotency_key='k2')
        store.push(later, scope_id='scope', idempotency_key='k2')
        self.pushed.extend(later)
        self.assertAgrees()

    def test_retry_of_a_push_begun_with_one_record_per_frame(self):
        """A retry writes one record where its first attempt took one slot.

        Its receipt says layout 2: the push took one slot per frame start
        and would have written one push record. Another push took the
        next slot meanwhile; a retry that split its record would write
        the second share at that push's record id, over its record.
        """
        frames = self.frames(days=1, per_frame=rollup.SHARE_SERIES)[:1]
        store = self.new_store()

        def old_receipt(*args):
            return dict(make_receipt(*args), layout=slots.SHORT_POINTS)

        def refused(requests, meanwhile=None):
            raise exceptions.BackendUnavailable('influxdb', store.location,
                                                'connection reset')

        make_receipt = slots.make_receipt
        with fixtures.MonkeyPatch(
                'cloudkitty.storage.v2.influxdb.rollup.record_shares',
                lambda count: 1), fixtures.MonkeyPatch(
                'cloudkitty.storage.v2.influxdb.slots.make_receipt',
                old_receipt), fixtures.MockPatchObject(
                store.client, 'write_all', refused):
            self.assertRaises(exceptions.BackendUnavailable, store.push,
                              frames, scope_id='scope', idempotency_key='k')
        other = self.frames(days=1, per_frame=3)[:1]
        self.push(other)
        store.push(frames, scope_id='scope', idempotency_key='k')
        self.pushed.extend(frames)
        rows = self.store.client.rows(
            'SELECT "np" FROM "ck_daily" WHERE "ck_rec" = \'p\' AND '
            '"ck_part" = \'0\'')
        self.assertEqual(2, len(rows))
        self.assertAgrees()

    def test_retry_of_a_push_begun_with_plain_sums(self):
        """A retry writes its records' sums in the form its first attempt did.

        The first attempt, of layout 3, wrote its records with sums in
        plain units, then failed. The retry writes the very same parts
        again: scaled sums would be cut into parts elsewhere, and a part
        of each form at one point would count some series twice.
        """
        frames = self.frames(days=1, per_frame=rollup.SHARE_SERIES)[:1]
        store = self.new_store()
        write_all = store.client.write_all

        def written_then_lost(requests, meanwhile=None):
            write_all(requests, meanwhile)
            raise exceptions.BackendUnavailable('influxdb', store.location,
                                                'connection reset')

        with fixtures.MonkeyPatch(
                'cloudkitty.storage.v2.influxdb.slots.LAYOUT',
                slots.SPLIT_RECORDS), fixtures.MockPatchObject(
                store.client, 'write_all', written_then_lost):
            self.assertRaises(exceptions.BackendUnavailable, store.push,
                              frames, scope_id='scope', idempotency_key='k')

        def parts():
            rows = self.store.client.rows(
                'SELECT "d", "ck_part", "%s" FROM %s WHERE "ck_rec" = '
                '\'p\' AND time >= 0' % (encoding.EXTRA_SLOT_TAG,
                                         self.store.source(rollup.DAILY)))
            return {(row['time'], row[encoding.EXTRA_SLOT_TAG],
                     row['ck_part']): row['d'] for row in rows}

        first = parts()
        self.assertGreater(len(first), 1)
        self.assertFalse([d for d in first.values()
                          if d.startswith(rollup.SCALE_MARK)])
        store.push(frames, scope_id='scope', idempotency_key='k')
        self.pushed.extend(frames)
        self.assertEqual(first, parts())
        self.assertAgrees()
        # NOTE: a push of this layout scales its sums.
        self.push(self.frames(days=1)[1:2])
        scaled = [d for key, d in parts().items() if key not in first]
        self.assertTrue(scaled)
        for d in scaled:
            self.assertTrue(d.startswith('^9;'), d[:20])
        self.assertAgrees()

    def test_half_done_push_completed_by_its_retry(self):
        """A push whose writes failed half-way lands once when retried."""
        frames = self.frames(days=2, per_frame=50)
        self.conf.set_override('batch_size', 100, group='storage_influxdb')
        self.conf.set_override('write_workers', 1, group='storage_influxdb')
        store = self.new_store()
        with self.third_point_write_fails(store):
            self.assertRaises(exceptions.BackendUnavailable, store.push,
                              frames, scope_id='scope', idempotency_key='k')
        store.push(frames, scope_id='scope', idempotency_key='k')
        self.pushed.extend(frames)
        self.assertAgrees()
