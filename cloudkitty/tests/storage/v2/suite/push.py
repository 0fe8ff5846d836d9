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
"""push(): every point kept and counted, whatever the order."""

import datetime

from cloudkitty import dataframe
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import D
from cloudkitty.tests.storage.v2.suite.common import expect
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import requires_value_length
from cloudkitty.tests.storage.v2.suite.common import rows
from cloudkitty.tests.storage.v2.suite.common import T0


class PushTests:
    """push(): every point kept and counted, whatever the order.

    Points come back as pushed (rule 4), identical
    points and repeated pushes count each time, frames arrive
    in any order (rule 7), labels are data (rule 3).

    Data: each test pushes its own points under fresh project ids, reads
    back only those and deletes nothing; ``cleanup_backend()`` runs after
    every test.
    """

    def test_push_round_trip(self):
        """Rule 4: each point comes back equal to what was pushed."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    def test_identical_points_in_one_frame_are_two_points(self):
        """Rule 7: two identical points in one frame are two points."""
        point = builders.make_point(self.project_id, 3, D('1.5'))
        self.push([builders.make_frame(T0, [('cpu', point), ('cpu', point)])])
        result = self.retrieve(begin=T0, end=T0 + HOUR)
        self.assertEqual(2, result['total'])
        self.assertEqual(2, len(rows(result['dataframes'])))
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + HOUR, 6, 3)]},
            self.totals(begin=T0, end=T0 + HOUR))

    def test_same_frame_pushed_twice_is_counted_twice(self):
        """Rule 7: pushing the same frame twice counts its points twice."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.push(frames)
        self.assertEqual(sorted(rows(frames) * 2), self.snapshot())
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + 3 * HOUR, 72, D('7.06'))]},
            self.totals(begin=T0, end=T0 + 3 * HOUR))

    def test_backfill_older_frames_after_newer(self):
        """Rule 7: frames may arrive in any time order (backfill)."""
        frames = builders.sample_frames(self.project_id)
        for frame in reversed(frames):
            self.push([frame])
        self.assertEqual(sorted(rows(frames)), self.snapshot())
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR)
        self.assertEqual([(f.start, f.end) for f in frames],
                         [(f.start, f.end) for f in result['dataframes']])

    def test_push_unordered_frames_in_one_call(self):
        """Rule 7: one push may hold frames in any time order."""
        frames = builders.calendar_frames(self.project_id)
        self.push(frames[3:] + frames[:3])
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    def test_push_empty_list(self):
        """Rule 7: pushing no frame (or an empty frame) stores nothing."""
        self.push([])
        self.push([dataframe.DataFrame(T0, T0 + HOUR)])
        self.assertEqual([], self.snapshot())

    def test_push_non_utc_frame(self):
        """Rule 1: a frame built in another time zone is stored in UTC."""
        tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
        start = datetime.datetime(2021, 3, 10, 5, 30, tzinfo=tz)
        self.push([builders.make_frame(start, [
            ('cpu', builders.make_point(self.project_id))])])
        result = self.retrieve(begin=T0, end=T0 + HOUR)
        self.assertEqual([(T0, T0 + HOUR)], [
            (f.start, f.end) for f in result['dataframes']])
        self.assertAwareUTC(result['dataframes'][0].start)

    def test_tricky_values_round_trip(self):
        """Rule 3: tricky groupby and metadata values round-trip as data."""
        frames = builders.labelled_frames(self.project_id, 'label',
                                          builders.TRICKY_VALUES,
                                          metadata_key='note')
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    def test_tricky_keys_round_trip(self):
        """Rule 3: tricky label keys round-trip as data."""
        frames = builders.keyed_frames(self.project_id, builders.TRICKY_KEYS)
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    @requires_value_length(1000)
    def test_long_values_round_trip(self):
        """Rule 3: 1000-character values are kept whole."""
        frames = builders.labelled_frames(self.project_id, 'label',
                                          builders.LONG_VALUES,
                                          metadata_key='note')
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())
        for i, value in enumerate(builders.LONG_VALUES):
            self.assertEqual(1, self.retrieve(
                begin=T0, end=T0 + HOUR,
                filters=self.mine(label=value))['total'])
            self.assertEqual(1, self.retrieve(
                begin=T0, end=T0 + HOUR,
                filters=self.mine(note=value))['total'])
