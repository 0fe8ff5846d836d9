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
"""retrieve(): the window, time zones and the order of points."""

import datetime

from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import DAY
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import month_window
from cloudkitty.tests.storage.v2.suite.common import rows
from cloudkitty.tests.storage.v2.suite.common import T0


class RetrieveTests:
    """retrieve(): the window, time zones and the order of points.

    The window selects on frame start, ``[begin, end)``, and defaults
    to the current UTC month (rules 1, 2); one DataFrame per period, in
    order (rule 4).

    Data: each test pushes its own points under fresh project ids, reads
    back only those and deletes nothing; ``cleanup_backend()`` runs after
    every test.
    """

    def test_retrieve_default_window_is_current_month(self):
        """Rule 2: begin/end default to this UTC month and the next."""
        begin, end = month_window()
        self.push(builders.month_frames(self.project_id, begin, end))
        result = self.retrieve()
        self.assertMonthUnchanged(begin, end)
        self.assertEqual(['first', 'second_day', 'last_hour'],
                         self.edges(result))

    def test_retrieve_default_end(self):
        """Rule 2: with only begin given, end defaults to next month."""
        begin, end = month_window()
        self.push(builders.month_frames(self.project_id, begin, end))
        result = self.retrieve(begin=begin + DAY)
        self.assertMonthUnchanged(begin, end)
        self.assertEqual(['second_day', 'last_hour'], self.edges(result))

    def test_retrieve_default_begin(self):
        """Rule 2: with only end given, begin defaults to this month."""
        begin, end = month_window()
        self.push(builders.month_frames(self.project_id, begin, end))
        result = self.retrieve(end=begin + DAY)
        self.assertMonthUnchanged(begin, end)
        self.assertEqual(['first'], self.edges(result))

    def test_retrieve_end_before_default_begin(self):
        """Rule 2: an end before this month, alone, is an empty window."""
        self.push(builders.sample_frames(self.project_id))
        self.assertEqual(0, self.storage.retrieve(end=T0)['total'])

    def test_retrieve_window_edges(self):
        """Rule 2: start == begin is in, start == end is out."""
        self.push(builders.edge_frames(self.project_id, T0, T0 + DAY))
        result = self.retrieve(begin=T0, end=T0 + DAY)
        self.assertEqual(['at_begin', 'straddle_end'], self.edges(result))
        self.assertEqual(2, result['total'])

    def test_retrieve_one_bound_with_old_data(self):
        """Rule 2: begin alone keeps everything from begin on."""
        self.push(builders.edge_frames(self.project_id, T0, T0 + DAY))
        result = self.retrieve(begin=T0)
        self.assertEqual(['at_begin', 'straddle_end', 'at_end'],
                         self.edges(result))

    def test_retrieve_returns_aware_utc(self):
        """Rule 1: returned datetimes are aware UTC."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR)
        self.assertEqual(3, len(result['dataframes']))
        for frame in result['dataframes']:
            self.assertAwareUTC(frame.start)
            self.assertAwareUTC(frame.end)

    def test_retrieve_naive_datetimes_mean_utc(self):
        """Rule 1: naive begin/end mean UTC."""
        self.push(builders.edge_frames(self.project_id, T0, T0 + DAY))
        naive = self.retrieve(begin=T0.replace(tzinfo=None),
                              end=(T0 + DAY).replace(tzinfo=None))
        self.assertEqual(['at_begin', 'straddle_end'], self.edges(naive))

    def test_retrieve_aware_non_utc_bounds(self):
        """Rule 1: aware begin/end in other zones are converted to UTC."""
        self.push(builders.edge_frames(self.project_id, T0, T0 + DAY))
        east = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
        west = datetime.timezone(-datetime.timedelta(hours=8))
        result = self.retrieve(begin=T0.astimezone(east),
                               end=(T0 + DAY).astimezone(west))
        self.assertEqual(['at_begin', 'straddle_end'], self.edges(result))
        # NOTE: the same wall-clock times in +05:30 are 5h30 earlier in
        # UTC, which takes in the frames before T0 and drops the last one.
        shifted = self.retrieve(begin=T0.replace(tzinfo=east),
                                end=(T0 + DAY).replace(tzinfo=east))
        self.assertEqual(['before', 'straddle_begin', 'at_begin'],
                         self.edges(shifted))

    def test_retrieve_nothing(self):
        """Rule 4: no matching point gives total 0 and no dataframe."""
        self.push(builders.sample_frames(self.project_id))
        self.assertEqual({'total': 0, 'dataframes': []}, self.retrieve(
            begin=T0 + 3 * HOUR, end=T0 + DAY))

    def test_retrieve_one_dataframe_per_period(self):
        """Rule 4: one DataFrame per distinct (start, end), ascending."""
        frames = [
            builders.make_frame(T0 + HOUR, [
                ('cpu', builders.make_point(self.project_id, 1))]),
            builders.make_frame(T0, [
                ('cpu', builders.make_point(self.project_id, 2))],
                period=2 * HOUR),
            builders.make_frame(T0, [
                ('cpu', builders.make_point(self.project_id, 4))]),
        ]
        self.push(frames)
        self.push(frames[2:])
        result = self.retrieve(begin=T0, end=T0 + DAY)
        self.assertEqual(4, result['total'])
        self.assertEqual(
            [(T0, T0 + HOUR, [4, 4]), (T0, T0 + 2 * HOUR, [2]),
             (T0 + HOUR, T0 + 2 * HOUR, [1])],
            [(f.start, f.end, [p.qty for _, p in f.iterpoints()])
             for f in result['dataframes']])

    def test_retrieve_order(self):
        """Rule 4: points come by frame start, then type, stably."""
        self.push(builders.distinct_frames(self.project_id))
        window = {'begin': T0, 'end': T0 + DAY, 'filters': self.mine(),
                  'paginate': False}
        first = rows(self.storage.retrieve(**window)['dataframes'])
        self.assertEqual(36, len(first))
        keys = [(row[0], row[2]) for row in first]
        self.assertEqual(sorted(keys), keys)
        self.assertEqual(first,
                         rows(self.storage.retrieve(**window)['dataframes']))
