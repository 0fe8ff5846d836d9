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
"""total(groupby=...): groups, time buckets and their order."""

import datetime

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import query
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import D
from cloudkitty.tests.storage.v2.suite.common import DAY
from cloudkitty.tests.storage.v2.suite.common import expect
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import lacks
from cloudkitty.tests.storage.v2.suite.common import requires
from cloudkitty.tests.storage.v2.suite.common import requires_value_length
from cloudkitty.tests.storage.v2.suite.common import T0
from cloudkitty.tests.storage.v2.suite.common import UTC


class GroupbyTests:
    """total(groupby=...): groups, time buckets, order (rule 5).

    Groups by type, groupby and metadata keys (a missing key groups as
    ``''``), by time bucket and calendar field (``groupby_time``);
    results sort by the groupby values in the order given, then by
    begin.

    Data: each test pushes its own points under fresh project ids, reads
    back only those and deletes nothing; ``cleanup_backend()`` runs after
    every test.
    """

    def test_total_groupby_type(self):
        """Rule 5: groupby type sums per metric type."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        window = {'begin': T0, 'end': T0 + 3 * HOUR, 'groupby': ['type']}
        end = T0 + 3 * HOUR
        self.assertTotalEqual({'total': 2, 'results': [
            expect(T0, end, 6, D('3.5'), type='cpu'),
            expect(T0, end, 30, D('0.03'), type='image')]},
            self.totals(**window))
        self.assertOracle(frames, **window)

    def test_total_groupby_groupby_key(self):
        """Rule 5: a missing groupby key groups as ''."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        window = {'begin': T0, 'end': T0 + 3 * HOUR, 'groupby': ['flavor']}
        end = T0 + 3 * HOUR
        self.assertTotalEqual({'total': 3, 'results': [
            expect(T0, end, 30, D('0.03'), flavor=''),
            expect(T0, end, 4, D('2.5'), flavor='m1.large'),
            expect(T0, end, 2, 1, flavor='m1.small')]},
            self.totals(**window))
        self.assertOracle(frames, **window)

    def test_total_groupby_metadata_key(self):
        """Rule 5: groupby may name a metadata key."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        window = {'begin': T0, 'end': T0 + 3 * HOUR, 'groupby': ['az']}
        end = T0 + 3 * HOUR
        self.assertTotalEqual({'total': 3, 'results': [
            expect(T0, end, 20, D('0.02'), az=''),
            expect(T0, end, 15, D('3.01'), az='nova'),
            expect(T0, end, 1, D('0.5'), az='other')]},
            self.totals(**window))
        self.assertOracle(frames, **window)

    def test_total_missing_key_groups_with_explicit_empty(self):
        """Rule 5: lacking a key and holding '' make one group."""
        points = [('cpu', builders.make_point(self.project_id, 1, 1)),
                  ('cpu', builders.make_point(self.project_id, 2, 2,
                                              groupby={'flavor': ''})),
                  ('cpu', builders.make_point(self.project_id, 4, 4,
                                              groupby={'flavor': 'x'}))]
        frames = [builders.make_frame(T0, points)]
        self.push(frames)
        window = {'begin': T0, 'end': T0 + HOUR, 'groupby': ['flavor']}
        self.assertTotalEqual({'total': 2, 'results': [
            expect(T0, T0 + HOUR, 3, 3, flavor=''),
            expect(T0, T0 + HOUR, 4, 4, flavor='x')]},
            self.totals(**window))
        self.assertOracle(frames, **window)

    def test_total_groupby_wins_over_metadata(self):
        """Rule 3: a key in both groupby and metadata groups by groupby."""
        point = builders.make_point(self.project_id, groupby={'k': 'gb'},
                                    metadata={'k': 'md'})
        self.push([builders.make_frame(T0, [('cpu', point)])])
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + HOUR, 1, 1, k='gb')]},
            self.totals(begin=T0, end=T0 + HOUR, groupby=['k']))

    @requires('groupby_time')
    def test_total_groupby_time(self):
        """Rule 5: groupby time gives one bucket per frame start.

        As upstream, the bucket is the result's begin and end; there is no
        ``time`` key.
        """
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        window = {'begin': T0, 'end': T0 + DAY, 'groupby': ['time']}
        self.assertTotalEqual({'total': 3, 'results': [
            expect(T0, T0 + HOUR, 13, D('1.76')),
            expect(T0 + HOUR, T0 + 2 * HOUR, 21, D('0.52')),
            expect(T0 + 2 * HOUR, T0 + 3 * HOUR, 2, D('1.25'))]},
            self.totals(**window))
        self.assertOracle(frames, **window)

    def assertCalendarTotals(self, entry, groups):
        """total(groupby=[entry]) over the calendar frames gives ``groups``.

        :param groups: ``[(label value, qty)]`` in the expected order; the
            rate is a quarter of the qty, begin and end the query window.
        """
        frames = builders.calendar_frames(self.project_id)
        self.push(frames)
        window = self.calendar_window(entry)
        key = query.CALENDAR_KEYS[entry]
        expected = [expect(window['begin'], window['end'], qty, D(qty) / 4,
                           **{key: value}) for value, qty in groups]
        result = self.totals(**window)
        self.assertTotalEqual({'total': len(groups), 'results': expected},
                              result)
        self.assertEqual(['begin', 'end', 'qty', 'rate', key],
                         list(result['results'][0]))
        self.assertOracle(frames, **window)

    @requires('groupby_time')
    def test_total_groupby_time_d(self):
        """Rule 5: time-d groups by upstream's day_of_the_year (UTC)."""
        # NOTE: 2020 is a leap year: December 31st is its day 366.
        self.assertCalendarTotals('time-d', [
            ('1', 2), ('3', 4), ('4', 8), ('59', 16), ('60', 32),
            ('366', 1)])

    @requires('groupby_time')
    def test_total_groupby_time_w_starts_sunday(self):
        """Rule 5: time-w groups by week_of_the_year, weeks from Sunday."""
        self.assertCalendarTotals('time-w', [
            ('00', 2), ('01', 12), ('09', 48), ('52', 1)])

    @requires('groupby_time')
    def test_total_groupby_time_m(self):
        """Rule 5: time-m groups by month, whatever the year."""
        self.assertCalendarTotals('time-m', [
            ('1', 14), ('2', 16), ('3', 32), ('12', 1)])

    @requires('groupby_time')
    def test_total_groupby_time_y(self):
        """Rule 5: time-y groups by year."""
        self.assertCalendarTotals('time-y', [('2020', 1), ('2021', 62)])

    @requires('groupby_time')
    def test_total_calendar_groups_keep_the_window(self):
        """Rule 5: a calendar group's begin and end are the query window."""
        frames = builders.calendar_frames(self.project_id)
        self.push(frames)
        begin = datetime.datetime(2021, 1, 2, tzinfo=UTC)
        end = datetime.datetime(2021, 1, 10, tzinfo=UTC)
        self.assertTotalEqual({'total': 1, 'results': [
            expect(begin, end, 12, 3, week_of_the_year='01')]},
            self.totals(begin=begin, end=end, groupby=['time-w'],
                        filters=self.mine()))

    def test_total_sort_by_groupby_values(self):
        """Rule 5: results sort by the groupby values in the order given."""
        frames = builders.sorting_frames(self.project_id)
        self.push(frames)
        end = T0 + 2 * HOUR
        by_flavor = self.totals(begin=T0, end=end,
                                groupby=['flavor', 'type'])['results']
        self.assertEqual(
            [('', 'cpu', 64), ('', 'image', 16), ('B', 'cpu', 8),
             ('B', 'image', 128), ('a', 'cpu', 36), ('b', 'cpu', 1),
             ('b', 'image', 2)],
            [(r['flavor'], r['type'], r['qty']) for r in by_flavor])
        by_type = self.totals(begin=T0, end=end,
                              groupby=['type', 'flavor'])['results']
        self.assertEqual(
            [('cpu', '', 64), ('cpu', 'B', 8), ('cpu', 'a', 36),
             ('cpu', 'b', 1), ('image', '', 16), ('image', 'B', 128),
             ('image', 'b', 2)],
            [(r['type'], r['flavor'], r['qty']) for r in by_type])
        for groupby in (['flavor', 'type'], ['type', 'flavor']):
            self.assertOracle(frames, begin=T0, end=end, groupby=groupby)

    @requires('groupby_time')
    def test_total_sort_then_by_begin(self):
        """Rule 5: equal groupby values sort by begin."""
        frames = builders.sorting_frames(self.project_id)
        self.push(frames)
        end = T0 + 2 * HOUR
        results = self.totals(begin=T0, end=end,
                              groupby=['flavor', 'time'])['results']
        self.assertEqual(
            [('', T0, 16), ('', T0 + HOUR, 64), ('B', T0, 8),
             ('B', T0 + HOUR, 128), ('a', T0, 4), ('a', T0 + HOUR, 32),
             ('b', T0, 3)],
            [(r['flavor'], r['begin'], r['qty']) for r in results])
        results = self.totals(begin=T0, end=end,
                              groupby=['time', 'flavor'])['results']
        self.assertEqual(
            [(T0, ''), (T0, 'B'), (T0, 'a'), (T0, 'b'),
             (T0 + HOUR, ''), (T0 + HOUR, 'B'), (T0 + HOUR, 'a')],
            [(r['begin'], r['flavor']) for r in results])
        for groupby in (['flavor', 'time'], ['time', 'flavor'],
                        ['type', 'time-d', 'flavor']):
            self.assertOracle(frames, begin=T0, end=end, groupby=groupby)

    def test_total_tricky_values_as_groups(self):
        """Rule 3: tricky values are distinct groups, returned exactly."""
        values = builders.TRICKY_VALUES
        frames = builders.labelled_frames(self.project_id, 'label', values,
                                          metadata_key='note')
        self.push(frames)
        end = T0 + HOUR
        for key in ('label', 'note'):
            expected = sorted(
                (expect(T0, end, i + 1, D(i + 1) / 100, **{key: value})
                 for i, value in enumerate(values)),
                key=lambda result: result[key])
            self.assertTotalEqual(
                {'total': len(values), 'results': expected},
                self.totals(begin=T0, end=end, groupby=[key]))
            self.assertOracle(frames, begin=T0, end=end, groupby=[key])

    def test_total_tricky_keys_as_groupby(self):
        """Rule 5: tricky keys work as groupby keys."""
        keys = builders.TRICKY_KEYS
        frames = builders.keyed_frames(self.project_id, keys)
        self.push(frames)
        end = T0 + HOUR
        everything = sum(range(1, len(keys) + 1))
        for i, key in enumerate(keys):
            self.assertTotalEqual({'total': 2, 'results': [
                expect(T0, end, everything - i - 1, everything - i - 1,
                       **{key: ''}),
                expect(T0, end, i + 1, i + 1, **{key: 'g%d' % i})]},
                self.totals(begin=T0, end=end, groupby=[key]),
                'groupby key %r' % key)

    @requires_value_length(1000)
    def test_total_long_values_as_groups(self):
        """Rule 3: 1000-character values stay two distinct groups."""
        first, second = builders.LONG_VALUES
        self.push(builders.labelled_frames(self.project_id, 'label',
                                           builders.LONG_VALUES))
        self.assertTotalEqual({'total': 2, 'results': [
            expect(T0, T0 + HOUR, 1, D('0.01'), label=first),
            expect(T0, T0 + HOUR, 2, D('0.02'), label=second)]},
            self.totals(begin=T0, end=T0 + HOUR, groupby=['label']))

    @lacks('groupby_time')
    def test_time_groupby_not_supported(self):
        """Rule 5: a backend without groupby_time raises NotSupported."""
        self.assertRaises(exceptions.NotSupported, self.storage.total,
                          begin=T0, end=T0 + DAY, groupby=['time-d'])
