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
"""How frame counts narrow a page, without a database."""

import datetime

import testtools

from cloudkitty import dataframe
from cloudkitty.storage.v2 import query as query_mod
from cloudkitty.storage.v2.sqlalchemy import frames

UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 1, 1, tzinfo=UTC)
HOUR = 3600 * 10 ** 6
B0 = query_mod.to_micros(T0)
#: Two frame starts; the second has no 'cpu'.
CELLS = [(B0, 'cpu', 5), (B0, 'image', 3), (B0, 'ip', 4),
         (B0 + HOUR, 'image', 2), (B0 + HOUR, 'ip', 6)]


def _query(**kwargs):
    return query_mod.validate_retrieve(
        begin=T0, end=T0 + datetime.timedelta(days=1), **kwargs)


class FrameCountsTest(testtools.TestCase):
    """counts_of(), rows(), usable() and narrow()."""

    def test_counts_of_counts_points_per_frame_start_and_type(self):
        hour = datetime.timedelta(hours=1)
        first = dataframe.DataFrame(T0, T0 + hour)
        for type_ in ('image', 'cpu', 'cpu'):
            first.add_point(dataframe.DataPoint('u', 1, 1, {}, {}), type_)
        # NOTE: a second frame with the same start (another end) adds up.
        second = dataframe.DataFrame(T0, T0 + 2 * hour)
        second.add_point(dataframe.DataPoint('u', 1, 1, {}, {}), 'cpu')
        counts = frames.counts_of([first, second, dataframe.DataFrame(
            T0 + hour, T0 + 2 * hour)])
        self.assertEqual({(B0, 'cpu'): 3, (B0, 'image'): 1}, counts)
        self.assertEqual([(B0, 'cpu', 3), (B0, 'image', 1)],
                         frames.rows(counts))

    def test_usable_only_with_type_filters(self):
        self.assertTrue(frames.usable(_query()))
        self.assertTrue(frames.usable(_query(metric_types=['cpu'],
                                             filters={'type': 'ip'})))
        self.assertFalse(frames.usable(_query(filters={'project_id': 'a'})))

    def test_page_inside_one_type(self):
        page = frames.narrow(_query(offset=1, limit=2), _cells(1, 2))
        self.assertEqual(('cpu',), page.metric_types)
        self.assertEqual(1, page.offset)
        self.assertEqual(T0, page.begin)
        self.assertEqual(B0 + 1, query_mod.to_micros(page.end))

    def test_page_across_types_skips_the_earlier_ones(self):
        page = frames.narrow(_query(offset=6, limit=4), _cells(6, 4))
        self.assertEqual(('image', 'ip'), page.metric_types)
        self.assertEqual(1, page.offset)

    def test_page_across_frame_starts_keeps_every_type(self):
        page = frames.narrow(_query(offset=10, limit=5), _cells(10, 5))
        self.assertIsNone(page.metric_types)
        self.assertEqual(10, page.offset)
        self.assertEqual(T0, page.begin)
        self.assertEqual(B0 + HOUR + 1, query_mod.to_micros(page.end))

    def test_page_past_the_end(self):
        self.assertIsNone(frames.narrow(_query(offset=20), _cells(20, 5)))


def _cells(offset, limit):
    """What page_cells() returns for CELLS, computed the plain way."""
    result, position, frame_first = [], 0, {}
    for begin, type_, n in CELLS:
        frame_first.setdefault(begin, position)
        if position + n > offset and position < offset + limit:
            result.append((begin, type_, n, position, frame_first[begin]))
        position += n
    return result
