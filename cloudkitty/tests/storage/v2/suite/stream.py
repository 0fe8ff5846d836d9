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
"""iter_points(): streaming every point, batch by batch."""

from cloudkitty.storage import exceptions
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import DAY
from cloudkitty.tests.storage.v2.suite.common import rows
from cloudkitty.tests.storage.v2.suite.common import T0


class StreamTests:
    """iter_points(): every point, in retrieve()'s order, batch by batch.

    Data: each test pushes its own points under fresh project ids, reads
    back only those and deletes nothing; ``cleanup_backend()`` runs after
    every test.
    """

    def stream(self, **kwargs):
        """Return iter_points() of this test's projects as rows."""
        kwargs.setdefault('filters', {'project_id': self._project_ids})
        return [(start, end, type_, point.unit, point.qty, point.price,
                 tuple(sorted(point.groupby.items())),
                 tuple(sorted(point.metadata.items())))
                for start, end, type_, point
                in self.storage.iter_points(**kwargs)]

    def test_stream_equals_retrieve(self):
        """Across batches, the same points in the same order as retrieve."""
        frames = builders.sample_frames(self.project_id)
        frames += builders.sample_frames(self.project_id, start=T0 + DAY)
        self.push(frames)
        window = dict(begin=T0, end=T0 + 2 * DAY)
        expected = rows(self.retrieve(paginate=False, **window)['dataframes'])
        for batch_size in (1, 2, 5, 1000):
            self.assertEqual(expected, self.stream(batch_size=batch_size,
                                                   **window), batch_size)

    def test_stream_filters_and_types(self):
        """Filters and metric types select as they do for retrieve."""
        self.push(builders.sample_frames(self.project_id))
        window = dict(begin=T0, end=T0 + DAY)
        for kwargs in ({'metric_types': 'image'},
                       {'filters': self.mine(flavor='m1.small')},
                       {'filters': self.mine(az=['nova', 'other']),
                        'metric_types': ['cpu']}):
            expected = rows(self.retrieve(paginate=False, **window,
                                          **kwargs)['dataframes'])
            self.assertEqual(expected, self.stream(batch_size=2, **window,
                                                   **kwargs), kwargs)

    def test_stream_stopped_early(self):
        """An iteration closed early releases the store: pushes go on."""
        self.push(builders.sample_frames(self.project_id))
        points = self.storage.iter_points(begin=T0, end=T0 + DAY,
                                          batch_size=1)
        next(points)
        points.close()
        self.push(builders.sample_frames(self.project_id, start=T0 + DAY))
        self.assertEqual(12, len(self.snapshot()))

    def test_stream_bad_batch_size(self):
        """batch_size must be an int >= 1; a reversed window is empty."""
        for batch_size in (0, -1, 'x', 1.5, True):
            self.assertRaises(exceptions.InvalidQuery, lambda: next(iter(
                self.storage.iter_points(begin=T0, end=T0 + DAY,
                                         batch_size=batch_size))))
        self.push(builders.sample_frames(self.project_id))
        self.assertEqual([], list(
            self.storage.iter_points(begin=T0 + DAY, end=T0)))
