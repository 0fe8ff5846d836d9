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
"""delete(): window, open bounds, filters, everything."""

import uuid

from cloudkitty.storage import exceptions
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import D
from cloudkitty.tests.storage.v2.suite.common import DAY
from cloudkitty.tests.storage.v2.suite.common import EVER
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import lacks
from cloudkitty.tests.storage.v2.suite.common import month_window
from cloudkitty.tests.storage.v2.suite.common import requires
from cloudkitty.tests.storage.v2.suite.common import rows
from cloudkitty.tests.storage.v2.suite.common import T0


class DeleteTests:
    """delete(): window, open bounds, filters, everything (rules 2, 3, 7).

    Pushes after a delete are stored again; filters (``delete_with_filters``)
    compare values exactly.

    Data: each test pushes its own points under fresh project ids and reads
    back only those, but most of these tests deletes by window alone, which
    reaches every scope of the store: parallel workers need a database
    each. ``cleanup_backend()`` runs after every test.
    """

    def test_delete_window(self):
        """Rule 2: delete(begin, end) removes the points of that window."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        deleted = self.delete(begin=T0 + HOUR, end=T0 + 2 * HOUR)
        self.assertIn(deleted, (None, 2))
        self.assertEqual(sorted(rows([frames[0], frames[2]])),
                         self.snapshot())

    def test_delete_window_edges(self):
        """Rule 2: delete() selects on frame start, [begin, end)."""
        self.push(builders.edge_frames(self.project_id, T0, T0 + DAY))
        self.delete(begin=T0, end=T0 + DAY)
        self.assertEqual(['before', 'straddle_begin', 'at_end'], self.edges(
            self.retrieve(begin=EVER[0], end=EVER[1])))

    def test_delete_open_begin(self):
        """Rule 2: delete(end=...) leaves begin open."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.delete(end=T0 + HOUR)
        self.assertEqual(sorted(rows(frames[1:])), self.snapshot())

    def test_delete_open_end(self):
        """Rule 2: delete(begin=...) leaves end open."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.delete(begin=T0 + HOUR)
        self.assertEqual(sorted(rows(frames[:1])), self.snapshot())

    def test_delete_everything(self):
        """Rule 2: delete() with no arguments deletes everything."""
        begin, end = month_window()
        other = self.new_project_id()
        self.push(builders.sample_frames(self.project_id))
        self.push(builders.calendar_frames(other), scope_id=str(uuid.uuid4()))
        self.push(builders.month_frames(other, begin, end))
        self.push(builders.edge_frames(self.project_id, EVER[0] + DAY,
                                       EVER[1] - DAY))
        self.assertNotEqual([], self.snapshot())
        self.delete()
        self.assertEqual([], self.snapshot())

    def test_delete_nothing_matching(self):
        """Rule 2: a window holding no point deletes nothing."""
        self.push(builders.sample_frames(self.project_id))
        before = self.snapshot()
        self.assertIn(self.delete(begin=T0 + 3 * HOUR, end=T0 + DAY),
                      (None, 0))
        self.assertEqual(before, self.snapshot())

    def test_push_after_delete(self):
        """Rule 7: a point pushed again after its deletion is stored."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.delete()
        self.push(frames[:1])
        self.assertEqual(sorted(rows(frames[:1])), self.snapshot())

    def test_push_after_delete_by_another_instance(self):
        """Rule 7: a delete by another instance does not hide new pushes."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.make_storage().delete()
        self.wait_for_backend()
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    @requires('delete_with_filters')
    def test_delete_with_filters(self):
        """Rule 3: delete(filters=...) removes only matching points."""
        frames = builders.sample_frames(self.project_id)
        other = self.new_project_id()
        others = builders.sample_frames(other)
        self.push(frames + others)
        self.delete(filters=self.mine(flavor='m1.small'))
        self.assertEqual(
            sorted(r for r in rows(frames + others)
                   if ('flavor', 'm1.small') not in r[6]
                   or ('project_id', other) in r[6]),
            self.snapshot())

    @requires('delete_with_filters')
    def test_delete_with_filter_list_type_and_window(self):
        """Rule 3: delete() ANDs window, type and an OR list of values."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.delete(begin=T0 + HOUR, end=T0 + DAY,
                    filters=self.mine(type='cpu',
                                      flavor=['m1.small', 'm1.large']))
        self.assertEqual(sorted(rows(frames[:1]) + [
            r for r in rows(frames[1:2]) if r[2] == 'image']),
            self.snapshot())

    @requires('delete_with_filters')
    def test_delete_filter_missing_key_is_kept(self):
        """Rule 3: deleting flavor='' keeps points lacking flavor."""
        points = [('cpu', builders.make_point(self.project_id, 1, 1)),
                  ('cpu', builders.make_point(self.project_id, 2, 2,
                                              groupby={'flavor': ''}))]
        self.push([builders.make_frame(T0, points)])
        self.delete(filters=self.mine(flavor=''))
        self.assertEqual([D(1)], [row[4] for row in self.snapshot()])

    @requires('delete_with_filters')
    def test_delete_tricky_filter_value(self):
        """Rule 3: delete() compares tricky values exactly, no wildcards."""
        values = builders.TRICKY_VALUES
        frames = builders.labelled_frames(self.project_id, 'label', values)
        self.push(frames)
        doomed = ('a%', '_', '*', "o'brien", '\\', 'space ', 'Case', '')
        self.delete(filters=self.mine(label=list(doomed)))
        self.assertEqual(
            sorted(r for r in rows(frames)
                   if dict(r[6])['label'] not in doomed),
            self.snapshot())

    @lacks('delete_with_filters')
    def test_delete_with_filters_not_supported(self):
        """Rule 3: a backend without delete_with_filters raises."""
        self.push(builders.sample_frames(self.project_id))
        before = self.snapshot()
        self.assertRaises(exceptions.NotSupported, self.storage.delete,
                          filters=self.mine())
        self.assertEqual(before, self.snapshot())
