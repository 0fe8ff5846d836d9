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
"""Pages: offset, limit and paginate of retrieve() and total()."""

from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import DAY
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import rows
from cloudkitty.tests.storage.v2.suite.common import T0


class PaginationTests:
    """Pages of retrieve() and total() (rules 4, 5).

    Consecutive pages partition the whole answer, in order, without
    losing or repeating a point; ``total`` counts every page.

    Data: each test pushes its own points under fresh project ids, reads
    back only those and deletes nothing; ``cleanup_backend()`` runs after
    every test.
    """

    def test_retrieve_pages_partition(self):
        """Rule 4: consecutive pages partition the result, in order."""
        self.push(builders.distinct_frames(self.project_id))
        window = {'begin': T0, 'end': T0 + DAY, 'filters': self.mine()}
        everything = rows(self.storage.retrieve(paginate=False,
                                                **window)['dataframes'])
        for limit in (1, 2, 5, 7, 36, 100):
            pages = self.walk_retrieve(limit, **window)
            self.assertEqual(everything, [r for page in pages for r in page],
                             'limit %d' % limit)
            self.assertEqual(-(-36 // limit), len(pages))

    def test_retrieve_pages_with_identical_points(self):
        """Rule 4: pages over identical points neither lose nor repeat."""
        point = builders.make_point(self.project_id, 1, 1)
        frames = [builders.make_frame(T0 + i * HOUR, [('cpu', point)] * 3
                                      + [('image', point)] * 2)
                  for i in range(3)]
        self.push(frames)
        self.push(frames[:1])
        window = {'begin': T0, 'end': T0 + DAY, 'filters': self.mine()}
        pages = self.walk_retrieve(4, **window)
        self.assertEqual(sorted(rows(frames + frames[:1])),
                         sorted(r for page in pages for r in page))

    def test_retrieve_total_counts_every_page(self):
        """Rule 4: total counts all matching points, not the page."""
        self.push(builders.distinct_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + DAY, offset=3, limit=4)
        self.assertEqual(36, result['total'])
        self.assertEqual(4, len(rows(result['dataframes'])))

    def test_retrieve_page_past_the_end(self):
        """Rule 4: an offset past the last point gives an empty page."""
        self.push(builders.distinct_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + DAY, offset=40, limit=5)
        self.assertEqual({'total': 36, 'dataframes': []}, result)

    def test_retrieve_unpaginated_ignores_offset_and_limit(self):
        """Rule 4: paginate=False returns every point."""
        self.push(builders.distinct_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + DAY, offset=5, limit=1,
                               paginate=False)
        self.assertEqual(36, result['total'])
        self.assertEqual(36, len(rows(result['dataframes'])))

    def test_total_pages_partition(self):
        """Rule 5: pages of total() partition the sorted results."""
        frames = builders.sample_frames(self.project_id)
        frames += builders.sorting_frames(self.project_id, T0 + 3 * HOUR)
        self.push(frames)
        kwargs = {'begin': T0, 'end': T0 + DAY, 'filters': self.mine(),
                  'groupby': ['flavor', 'type']}
        everything = self.storage.total(paginate=False, **kwargs)
        self.assertEqual(9, everything['total'])
        for limit in (1, 2, 4, 9, 50):
            pages = []
            offset = 0
            while offset < everything['total']:
                page = self.storage.total(offset=offset, limit=limit,
                                          **kwargs)
                self.assertEqual(everything['total'], page['total'])
                self.assertEqual(
                    min(limit, everything['total'] - offset),
                    len(page['results']))
                pages.extend(page['results'])
                offset += limit
            self.assertEqual(everything['results'], pages,
                             'limit %d' % limit)
        self.assertEqual({'total': 9, 'results': []}, self.storage.total(
            offset=9, limit=3, **kwargs))
        self.assertOracle(frames, **kwargs)
