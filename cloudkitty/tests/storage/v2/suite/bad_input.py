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
"""Bad arguments: a typed error before anything is written."""

from cloudkitty.storage import exceptions
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import DAY
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import T0


class BadInputTests:
    """Bad arguments raise InvalidQuery and leave the store unchanged (rule 6).

    Each check takes a snapshot of the test's points before the call
    and compares it after (:meth:`~.base.StorageTestBase.assertInvalid`).

    Data: each test pushes its own points under fresh project ids and
    reads back only those; its delete() calls are refused or have an
    empty window, so they delete nothing. ``cleanup_backend()`` runs
    after every test.
    """

    def test_invalid_query_is_a_value_error(self):
        """Rule 6: InvalidQuery is a StorageError and a ValueError."""
        self.assertTrue(issubclass(exceptions.InvalidQuery, ValueError))
        self.assertTrue(issubclass(exceptions.InvalidQuery,
                                   exceptions.StorageError))

    def test_begin_after_end(self):
        """Rule 6: begin after end answers empty and deletes nothing."""
        self.assertEmptyWindow({'begin': T0 + HOUR, 'end': T0})

    def test_begin_equals_end(self):
        """Rule 6: an empty window (begin == end) answers empty."""
        self.assertEmptyWindow({'begin': T0, 'end': T0})

    def assertEmptyWindow(self, window):
        """Every call on ``window`` answers empty and changes nothing."""
        self.push(builders.sample_frames(self.project_id))
        before = self.snapshot()
        self.assertEqual({'total': 0, 'dataframes': []},
                         self.storage.retrieve(**window))
        self.assertEqual({'total': 0, 'results': []},
                         self.storage.total(**window))
        self.assertEqual({'total': 0, 'results': []},
                         self.storage.total(groupby=['type', 'time'],
                                            **window))
        self.assertIn(self.storage.delete(**window), (0, None))
        self.assertEqual(before, self.snapshot())

    def test_bad_paging(self):
        """Rule 6: negative offset, limit < 1 or not an int are rejected."""
        self.push(builders.sample_frames(self.project_id))
        for argument, kwargs in (('offset', {'offset': -1}),
                                 ('limit', {'limit': 0}),
                                 ('limit', {'limit': -5}),
                                 ('limit', {'limit': '10'}),
                                 ('offset', {'offset': 1.5}),
                                 ('limit', {'limit': None}),
                                 ('paginate', {'paginate': 'yes'})):
            for call in (self.storage.retrieve, self.storage.total):
                self.assertInvalid(argument, call, begin=T0, end=T0 + DAY,
                                   **kwargs)

    def test_bad_dates(self):
        """Rule 6: bounds that are not datetimes are rejected."""
        self.push(builders.sample_frames(self.project_id))
        for argument, kwargs in (('begin', {'begin': 1615334400}),
                                 ('end', {'end': object()}),
                                 ('begin', {'begin': 'not a date'}),
                                 ('end', {'end': ['2021-03-10']})):
            for call in (self.storage.retrieve, self.storage.total,
                         self.storage.delete):
                self.assertInvalid(argument, call, **kwargs)

    def test_bad_filters(self):
        """Rule 6: filters must be a dict of str to str or list of str."""
        self.push(builders.sample_frames(self.project_id))
        for bad in (['project_id'], 'project_id=x', {'project_id': 3},
                    {'project_id': [self.project_id, 3]},
                    {'project_id': None}, {3: 'x'}, {'': 'x'},
                    {'project_id': []}):
            for call in (self.storage.retrieve, self.storage.total,
                         self.storage.delete):
                self.assertInvalid('filters', call, begin=T0, end=T0 + DAY,
                                   filters=bad)

    def test_bad_metric_types(self):
        """Rule 6: metric_types must be a str or a list of str."""
        self.push(builders.sample_frames(self.project_id))
        for bad in (3, ['cpu', 3], {'cpu': 'x'}):
            for call in (self.storage.retrieve, self.storage.total):
                self.assertInvalid('metric_types', call, begin=T0,
                                   end=T0 + DAY, metric_types=bad)

    def test_bad_groupby(self):
        """Rule 6: unknown time groupings and non-lists are rejected."""
        self.push(builders.sample_frames(self.project_id))
        for bad in (['time-x'], ['time-'], ['time-D'], 'project_id',
                    ['project_id', 3], ['type', 'type'],
                    ['time', 'time-d'], [''], ['qty'], ['begin'],
                    {'type': 1}):
            self.assertInvalid('groupby', self.storage.total, begin=T0,
                               end=T0 + DAY, groupby=bad)

    def test_push_non_dataframe(self):
        """Rule 7: pushing something else than a list of frames fails."""
        self.push(builders.sample_frames(self.project_id))
        frame = builders.sample_frames(self.project_id)[0]
        for bad in ('x', None, 3, frame, [frame.as_dict()],
                    [builders.make_point(self.project_id)]):
            self.assertInvalid('dataframes', self.storage.push, bad,
                               scope_id=self.scope_id)

    def test_push_list_with_non_dataframe_writes_nothing(self):
        """Rule 7: a valid frame followed by a non-frame is not written."""
        frame = builders.sample_frames(self.project_id)[0]
        for bad in ('x', None, {'period': {}}):
            self.assertInvalid('dataframes', self.storage.push,
                               [frame, bad], scope_id=self.scope_id)
        self.assertEqual([], self.snapshot())
