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
"""The daily records' pure parts: windows, parts, totals (no server)."""

import json

import testtools

from cloudkitty.storage.v2.influxdb import encoding
from cloudkitty.storage.v2.influxdb import rollup
from cloudkitty.storage.v2.influxdb import slots
from cloudkitty.tests.storage.v2.influxdb import test_encoding

DAY = rollup.DAY_NS
HOUR = DAY // 24


class WindowTest(testtools.TestCase):

    def test_whole_days(self):
        """Only days wholly inside the window count."""
        self.assertEqual((DAY, 3 * DAY),
                         rollup.whole_days(HOUR, 3 * DAY + HOUR))
        self.assertEqual((0, DAY), rollup.whole_days(0, DAY))
        self.assertIsNone(rollup.whole_days(HOUR, DAY + HOUR))
        self.assertIsNone(rollup.whole_days(0, DAY - 1))

    def test_outside_whole_days(self):
        """The rest of a window, one piece per day, nothing twice."""
        span = rollup.whole_days(HOUR, 3 * DAY + HOUR)
        self.assertEqual([(HOUR, DAY), (3 * DAY, 3 * DAY + HOUR)],
                         rollup.outside(HOUR, 3 * DAY + HOUR, span))
        self.assertEqual([], rollup.outside(0, DAY, (0, DAY)))
        # NOTE: no whole day: split at midnight, so each piece is one day.
        self.assertEqual([(HOUR, DAY), (DAY, DAY + HOUR)],
                         rollup.outside(HOUR, DAY + HOUR, None))


class PartsTest(testtools.TestCase):

    def test_parts_round_trip_and_stay_small(self):
        """Entries split into bounded parts and come back exactly."""
        entries = {'ck_type=.t,k_id=.%d' % n: [n + 1, -(10 ** 26) + n, n]
                   for n in range(5000)}
        parts = rollup._parts(entries)
        self.assertGreater(len(parts), 1)
        for part in parts:
            self.assertLessEqual(len(part), rollup.PART_BYTES + 100)
            self.assertNotIn('"', part)
            self.assertNotIn('\\', part)
        back = {key: [count, qty, price] for part in parts
                for key, count, qty, price in rollup._entries(part)}
        self.assertEqual(entries, back)

    def test_parts_are_as_full_as_they_fit(self):
        """Each part takes every entry that fits, in order; a long one alone.

        A part is cut at the last entry that keeps it within PART_BYTES:
        the next entry would not have fitted. An entry longer than a part
        (a key of 70,000 bytes) is a part of its own.
        """
        entries = {'ck_type=.t,k_id=.%d%s' % (n, 'x' * (n % 97)):
                   [1, n * 10 ** 9, n] for n in range(3000)}
        long_key = 'k_id=.' + 'y' * 70000
        entries[long_key] = [1, 2, 3]
        entries.update({'k_id=.z%d' % n: [1, 1, 1] for n in range(3)})
        parts = rollup._parts(entries)
        items = [[' '.join(map(str, entry)) for entry in
                  rollup._entries(part)] for part in parts]
        self.assertEqual(list(entries), [item.split(' ')[0]
                                         for part in items
                                         for item in part])
        self.assertIn(['%s 1 2 3' % long_key], items)
        for part, following in zip(parts, items[1:]):
            if len(part) <= rollup.PART_BYTES:
                self.assertGreater(len(part) + 1 + len(following[0]),
                                   rollup.PART_BYTES)

    def test_sums_are_scaled_by_their_common_zeros(self):
        """Sums of three- and four-decimal money lose 8 zeros each.

        Negative sums (corrections) and zeros too; every part, small
        enough, says the scale, and reads back the exact units.
        """
        entries = {'ck_type=.t,k_id=.%d' % n: [
            n + 1, (n - 2500) * 10 ** 9 + 7 * 10 ** 8, n * 10 ** 8]
            for n in range(5000)}
        self.assertEqual(8, rollup.common_zeros(entries))
        parts = rollup._parts(entries)
        plain = rollup._parts(entries, scaled=False)
        self.assertGreater(len(parts), 1)
        self.assertLess(sum(map(len, parts)), sum(map(len, plain)))
        for part in parts:
            self.assertTrue(part.startswith('^8;'), part[:10])
            self.assertLessEqual(len(part), rollup.PART_BYTES)
        self.assertTrue(parts[0].startswith(
            '^8;ck_type=.t,k_id=.0 1 -24993 0;ck_type=.t,k_id=.1 2 -24983 1;'))
        for found in (parts, plain):
            self.assertEqual(entries, {
                key: [count, qty, price] for part in found
                for key, count, qty, price in rollup._entries(part)})

    def test_sums_without_common_zeros_are_plain(self):
        """No zero in common, or scaled=False: the earlier form, unmarked."""
        entries = {'k_id=.a': [1, 10 ** 12, 3], 'k_id=.b': [2, 0, 10 ** 9]}
        self.assertEqual(0, rollup.common_zeros(entries))
        self.assertEqual(['k_id=.a 1 1000000000000 3;k_id=.b 2 0 1000000000'],
                         rollup._parts(entries))
        entries['k_id=.a'][2] = 10 ** 12
        self.assertEqual(9, rollup.common_zeros(entries))
        self.assertEqual(['^9;k_id=.a 1 1000 1000;k_id=.b 2 0 1'],
                         rollup._parts(entries))
        self.assertEqual(['k_id=.a 1 1000000000000 1000000000000;'
                          'k_id=.b 2 0 1000000000'],
                         rollup._parts(entries, scaled=False))
        self.assertEqual(12, rollup.common_zeros({'k_id=.z': [0, 0, 0]}))

    def test_empty(self):
        """An emptied day is one empty part, read as no entry."""
        self.assertEqual([''], rollup._parts({}))
        self.assertEqual([], rollup._entries(''))


class SummarizeTest(testtools.TestCase):

    def test_entries_and_totals(self):
        """Per series sums, and per frame totals with counts per type."""
        points = [encoding.encode_point(0, 3600, None, type_,
                                        test_encoding.point(qty=qty))
                  for type_, qty in (('a', 1), ('a', 2), ('b', 5))]
        grouped = slots.plan(points)
        [(entries, total)] = rollup.summarize(grouped[0])
        self.assertEqual(2, len(entries))
        self.assertEqual(rollup.FrameTotal(
            3, 8 * 10 ** 12, 3 * 10 ** 12, 3600,
            {encoding.encode_value('a'): 2, encoding.encode_value('b'): 1}),
            total)

    def test_shares_split_series_and_totals(self):
        """Shares hold their own series and add up to the whole."""
        points = [encoding.encode_point(0, 3600, None, 'ab'[n % 2],
                                        test_encoding.point(
                                            qty=n, groupby={'id': str(n)}))
                  for n in range(7)]
        series = slots.plan(points)[0]
        [(whole, total)] = rollup.summarize(series)
        shares = rollup.summarize(series, 2)
        self.assertEqual([3, 4], [len(entries) for entries, _ in shares])
        self.assertEqual(whole, {**shares[0][0], **shares[1][0]})
        both = shares[0][1].copy()
        both.add(shares[1][1])
        self.assertEqual(total, both)
        self.assertEqual({encoding.encode_value('a'): 2,
                          encoding.encode_value('b'): 1}, shares[0][1].types)

    def test_record_shares(self):
        """Frame starts of many series only are split."""
        self.assertEqual(1, rollup.record_shares(rollup.SHARE_SERIES - 1))
        self.assertEqual(rollup.RECORD_SHARES,
                         rollup.record_shares(rollup.SHARE_SERIES))
        points = [encoding.encode_point(0, 3600, None, 'a', test_encoding.
                                        point(groupby={'id': str(n)}))
                  for n in range(rollup.SHARE_SERIES)]
        grouped = slots.plan(points)
        self.assertEqual({0: 1}, slots.needed(grouped))
        self.assertEqual({0: rollup.RECORD_SHARES},
                         slots.needed(grouped, rollup.record_shares))

    def test_add_totals(self):
        """Totals add up; unknown type counts stay unknown."""
        totals = {}
        first = rollup.FrameTotal(1, 2, 3, 60, {'.a': 1})
        rollup.add_totals(totals, 5, first)
        rollup.add_totals(totals, 5, rollup.FrameTotal(
            1, 2, 3, 30, {'.a': 1, '.b': 4}))
        self.assertEqual({5: rollup.FrameTotal(
            2, 4, 6, 60, {'.a': 2, '.b': 4})}, totals)
        self.assertEqual(rollup.FrameTotal(1, 2, 3, 60, {'.a': 1}), first)
        rollup.add_totals(totals, 5, rollup.FrameTotal(1, 1, 1, 60, None))
        self.assertIsNone(totals[5].types)

    def test_frame_total_json(self):
        """The stored list form reads back as the same total."""
        total = rollup.FrameTotal(2, -4, 6, 60, {'.a': 2})
        self.assertEqual(total, rollup.FrameTotal.from_json(
            json.loads(json.dumps(total.to_json()))))


class OpenDayTest(testtools.TestCase):

    def test_a_record_added_twice_counts_once(self):
        """A retry's records, remembered again, do not add up twice."""
        points = [encoding.encode_point(0, 3600, None, 'a',
                                        test_encoding.point(qty=qty))
                  for qty in (1, 2)]
        grouped = slots.plan(points)
        records = rollup.Rollup(None, None).push_records('.', grouped,
                                                         {0: 0})
        opened = rollup._OpenDay()
        for _ in range(2):
            for item in records.days[0]:
                opened.add(*item)
        self.assertEqual({'0:'}, opened.records)
        self.assertEqual({('0:', '0')}, opened.parts)
        [(count, qty, price)] = opened.entries.values()
        self.assertEqual((2, 3 * 10 ** 12), (count, qty))
        self.assertEqual(2, opened.frames[0].count)


class DigestTest(testtools.TestCase):

    def test_named_keys_become_digests_and_back(self):
        """Keys another record named are digests; names resolve them."""
        entries = {'ck_type=.t,k_id=.%d' % n: [1, n, -n] for n in range(4)}
        named = {'ck_type=.t,k_id=.0': 'a', 'ck_type=.t,k_id=.1': 'b'}
        part, = rollup._parts(entries, named, 'b')
        items = rollup._entries(part)
        self.assertEqual(rollup.key_digest('ck_type=.t,k_id=.0'),
                         items[0][0])
        self.assertEqual(1, part.count(rollup.DIGEST_MARK))
        self.assertEqual(23, len(items[0][0]))
        names = rollup._Names()
        self.assertIsNone(names.name(items))
        names.learn([('ck_type=.t,k_id=.0', 1, 0, 0)])
        self.assertEqual(
            {key: [count, qty, price] for key, count, qty, price in
             names.name(items)}, entries)


class RequestsTest(testtools.TestCase):

    def test_each_share_goes_with_its_log_copies(self):
        """One request per share: its records, then their log copies."""
        start = 20000 * DAY + HOUR
        points = [encoding.encode_point(start, 3600, None, 'a', test_encoding.
                                        point(groupby={'id': str(n)}))
                  for n in range(rollup.SHARE_SERIES)]
        records = rollup.Rollup(None, None).push_records(
            '.', slots.plan(points), {start: 7})
        requests = records.requests()
        self.assertEqual(rollup.RECORD_SHARES, len(requests))
        ids = [item[0] for item in records.days[rollup.day_of(start)]]
        self.assertEqual(['%d:' % (start + 7), '%d:' % (start + 8)], ids)
        for lines in requests:
            daily = [line for line in lines
                     if line.startswith(rollup.DAILY + ',')]
            self.assertEqual(
                [rollup.FRAME_LOG + line[len(rollup.DAILY):]
                 for line in daily], lines[len(daily):])
        unsplit = rollup.Rollup(None, None).push_records(
            '.', slots.plan(points), {start: 7}, split=False)
        self.assertEqual(1, len(unsplit.requests()))


class DayTagTest(testtools.TestCase):

    def test_days_of_a_week_shard_have_their_own_number(self):
        """Seven days of an epoch-aligned week shard: seven numbers."""
        week = 7 * DAY
        for shard in (0, 2900 * week):
            self.assertEqual(
                {str(n) for n in range(7)},
                {rollup.day_tag(shard + n * DAY + 5 * HOUR)
                 for n in range(7)})

    def test_records_carry_their_day_number(self):
        """Push records name their day; day parts their buffer too."""
        day = 20000 * DAY
        records = rollup.Rollup(None, None).records(
            '.scope', {day + HOUR: [({'k': [1, 2, 3]},
                                     rollup.FrameTotal(1, 2, 3, 4, {}))]},
            {day + HOUR: 0})
        [[line]] = records.shares
        self.assertIn(',ck_dow=%s,' % rollup.day_tag(day), line)


class WithoutCopiesTest(testtools.TestCase):

    def row(self, kind='p', part='0', dow=None, time=5, **fields):
        """A record row as Client.rows() gives it."""
        return dict(fields, ck_rec=kind, ck_scope='.s', ck_part=part,
                    ck_dow=dow, time=time)

    def test_tagged_rows_pass_unchanged(self):
        """Without legacy rows, nothing is copied nor dropped."""
        rows = [self.row(dow='1'), self.row(dow='1', part='1')]
        self.assertIs(rows, rollup._without_copies(rows))

    def test_a_legacy_copy_of_a_rewritten_record_goes(self):
        """The tagged copy stays; other records and kinds are kept."""
        tagged = self.row(dow='1', d='new')
        rows = [self.row(d='old'), tagged, self.row(time=6),
                self.row(kind='d'), self.row(kind='d', dow='1')]
        kept = rollup._without_copies(rows)
        self.assertEqual(4, len(kept))
        self.assertIn(tagged, kept)
        self.assertNotIn(rows[0], kept)


class VersionTest(testtools.TestCase):
    """Compactions write at versions of the day no record used yet."""

    def commit(self, day, version, buffer, **extra):
        """A versioned commit row of a day, as Client.rows() gives it."""
        return dict({'ck_rec': 'c', 'ck_scope': '.s', 'buffer': buffer,
                     'parts': 1, 'inc': '[]', 'frames': None,
                     rollup.DOW_TAG: rollup.day_tag(day),
                     rollup.BUFFER_TAG: str(buffer),
                     'time': day + version}, **extra)

    def test_first_version_is_past_the_places_of_earlier_code(self):
        """Earlier code wrote at the day start and the start plus 1."""
        self.assertEqual(rollup.FIRST_VERSION,
                         rollup.next_version(rollup._NO_DAY, 0))
        self.assertGreater(rollup.FIRST_VERSION, 1)

    def test_next_version_is_past_every_one_and_of_the_other_buffer(self):
        day = 20000 * DAY
        state = rollup._DayState(self.commit(day, 4, 0))
        self.assertEqual(5, rollup.next_version(state, 4))
        # NOTE: parts of a compaction that died before its commit.
        self.assertEqual(7, rollup.next_version(state, 5))
        self.assertEqual(7, rollup.next_version(state, 6))

    def test_an_unversioned_commit_goes_on_in_the_other_buffer(self):
        """A commit of earlier code (day start, no buffer tag)."""
        day = 20000 * DAY
        for buffer, want in ((0, 3), (1, 2)):
            row = self.commit(day, 0, buffer)
            row[rollup.BUFFER_TAG] = None
            state = rollup._DayState(row)
            self.assertFalse(state.versioned)
            self.assertEqual(want, rollup.next_version(state, 1))

    def test_latest_version_wins(self):
        """A commit a dead compaction did not delete yet is outranked."""
        day = 20000 * DAY
        unversioned = self.commit(day, 0, 1)
        unversioned[rollup.BUFFER_TAG] = None
        legacy = dict(unversioned, **{rollup.DOW_TAG: None})
        rows = [self.commit(day, 5, 1), legacy, self.commit(day, 6, 0),
                unversioned, self.commit(day, 3, 1)]
        [(where, state)] = rollup.Rollup._days(rows).items()
        self.assertEqual(('.s', day), where)
        self.assertEqual((6, 0), (state.version, state.buffer))
        state = rollup.Rollup._days([legacy, unversioned])[where]
        self.assertEqual((True, False), (state.tagged, state.versioned))

    def test_a_torn_commit_leaves_the_whole_one_the_switch(self):
        """A commit seen with some fields only is passed over.

        A query running while a commit is written, or deleted, can see
        some of its fields only (InfluxDB keeps each field on its own).
        """
        day = 20000 * DAY
        for field in ('buffer', 'parts', 'inc'):
            torn = self.commit(day, 5, 1)
            torn[field] = None
            # NOTE: the one being written, then the one being deleted.
            for rows, want in (([self.commit(day, 4, 0), torn], 4),
                               ([torn, self.commit(day, 6, 0)], 6)):
                [state] = rollup.Rollup._days(rows).values()
                self.assertEqual(want, state.version, field)
            self.assertEqual({}, rollup.Rollup._days([torn]))
        # NOTE: "frames" is absent from commits without frame totals; a
        # reader takes such a commit as one and reads the points.
        [state] = rollup.Rollup._days([self.commit(day, 4, 0)]).values()
        self.assertIsNone(state.frames)

    def test_parts_count_at_the_version_of_their_commit(self):
        """Parts of another version in the same buffer are not read."""
        day = 20000 * DAY
        state = rollup._DayState(self.commit(day, 4, 0, parts=2))

        def part(version, buffer=0, index='0'):
            return {'ck_rec': 'd', 'ck_part': index, 'time': day + version,
                    rollup.DOW_TAG: rollup.day_tag(day),
                    rollup.BUFFER_TAG: str(buffer)}
        self.assertTrue(state.accepts(part(4)))
        self.assertTrue(state.accepts(part(4, index='1')))
        self.assertFalse(state.accepts(part(4, index='2')))
        self.assertFalse(state.accepts(part(2)))
        self.assertFalse(state.accepts(part(6)))
        self.assertFalse(state.accepts(part(4, buffer=1)))
