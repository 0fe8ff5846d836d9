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
"""total() without grouping: sums over the query window."""

import datetime

from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import D
from cloudkitty.tests.storage.v2.suite.common import DAY
from cloudkitty.tests.storage.v2.suite.common import expect
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import month_window
from cloudkitty.tests.storage.v2.suite.common import T0


class TotalTests:
    """total(): sums over the query window (rules 1, 2, 5).

    The window is the one of retrieve(); a result's begin and end are
    the query window; no match is ``{'total': 0, 'results': []}``.

    Data: each test pushes its own points under fresh project ids, reads
    back only those and deletes nothing; ``cleanup_backend()`` runs after
    every test.
    """

    def test_total_without_groupby(self):
        """Rule 5: one result holding the sums over the query window."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        window = {'begin': T0, 'end': T0 + 3 * HOUR}
        expected = {'total': 1, 'results': [
            expect(T0, T0 + 3 * HOUR, 36, D('3.53'))]}
        self.assertTotalEqual(expected, self.totals(**window))
        self.assertOracle(frames, **window)

    def test_total_nothing(self):
        """Rule 5: no matching point gives {'total': 0, 'results': []}."""
        self.push(builders.sample_frames(self.project_id))
        for groupby in (None, ['type'], ['flavor', 'az']):
            self.assertEqual({'total': 0, 'results': []}, self.totals(
                begin=T0 + 3 * HOUR, end=T0 + DAY, groupby=groupby))
            self.assertEqual({'total': 0, 'results': []}, self.totals(
                begin=T0, end=T0 + DAY, groupby=groupby,
                filters=self.mine(flavor='absent')))

    def test_total_default_window(self):
        """Rule 5: begin/end are the query window, by default this month."""
        begin, end = month_window()
        self.push(builders.month_frames(self.project_id, begin, end))
        result = self.totals()
        self.assertMonthUnchanged(begin, end)
        self.assertTotalEqual({'total': 1, 'results': [
            expect(begin, end, 14, 14)]}, result)
        result = self.totals(begin=begin + DAY)
        self.assertMonthUnchanged(begin, end)
        self.assertTotalEqual({'total': 1, 'results': [
            expect(begin + DAY, end, 12, 12)]}, result)
        result = self.totals(end=begin + DAY)
        self.assertMonthUnchanged(begin, end)
        self.assertTotalEqual({'total': 1, 'results': [
            expect(begin, begin + DAY, 2, 2)]}, result)

    def test_total_window_edges(self):
        """Rule 2: total() selects on frame start, like retrieve()."""
        frames = builders.edge_frames(self.project_id, T0, T0 + DAY)
        self.push(frames)
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + DAY, 12, 12)]},
            self.totals(begin=T0, end=T0 + DAY))
        self.assertOracle(frames, begin=T0, end=T0 + DAY)

    def test_total_naive_and_non_utc_bounds(self):
        """Rule 1: naive bounds mean UTC; results are aware UTC."""
        self.push(builders.edge_frames(self.project_id, T0, T0 + DAY))
        east = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
        for begin, end in ((T0.replace(tzinfo=None),
                            (T0 + DAY).replace(tzinfo=None)),
                           (T0.astimezone(east), (T0 + DAY).astimezone(east))):
            result = self.totals(begin=begin, end=end)
            self.assertTotalEqual({'total': 1, 'results': [
                expect(T0, T0 + DAY, 12, 12)]}, result)
