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
"""Filters and metric types: which points a query selects."""

from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import D
from cloudkitty.tests.storage.v2.suite.common import DAY
from cloudkitty.tests.storage.v2.suite.common import expect
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import rows
from cloudkitty.tests.storage.v2.suite.common import T0


class FilterTests:
    """Filters and metric types select points (rule 3).

    AND across keys, OR inside a list, groupby before metadata, a
    missing key never matches; values are data, never query text;
    retrieve() and total() select alike.

    Data: each test pushes its own points under fresh project ids, reads
    back only those and deletes nothing; ``cleanup_backend()`` runs after
    every test.
    """

    def test_filter_single_value(self):
        """Rule 3: a filter {key: value} keeps the points with that value."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR,
                               filters=self.mine(flavor='m1.small'))
        self.assertEqual(2, result['total'])
        self.assertEqual({'m1.small'}, {
            point.groupby['flavor'] for frame in result['dataframes']
            for _, point in frame.iterpoints()})

    def test_filter_list_is_or(self):
        """Rule 3: OR inside a list of filter values."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(
            begin=T0, end=T0 + 3 * HOUR,
            filters=self.mine(flavor=['m1.small', 'm1.large', 'absent']))
        self.assertEqual(4, result['total'])

    def test_filters_and_across_keys(self):
        """Rule 3: AND across filter keys."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR,
                               filters=self.mine(flavor='m1.large', az='nova',
                                                 type='cpu'))
        self.assertEqual(2, result['total'])
        self.assertEqual(0, self.retrieve(
            begin=T0, end=T0 + 3 * HOUR,
            filters=self.mine(flavor='m1.small', disk='raw'))['total'])

    def test_filter_on_metadata(self):
        """Rule 3: a filter key may be a metadata key."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR,
                               filters=self.mine(disk=['raw', 'qcow2']))
        self.assertEqual(2, result['total'])
        self.assertEqual({'image'}, {
            type_ for frame in result['dataframes']
            for type_, _ in frame.iterpoints()})

    def test_filter_groupby_wins_over_metadata(self):
        """Rule 3: a key in both groupby and metadata matches the groupby."""
        point = builders.make_point(self.project_id, groupby={'k': 'gb'},
                                    metadata={'k': 'md'})
        self.push([builders.make_frame(T0, [('cpu', point)])])
        window = {'begin': T0, 'end': T0 + HOUR}
        self.assertEqual(1, self.retrieve(
            filters=self.mine(k='gb'), **window)['total'])
        self.assertEqual(0, self.retrieve(
            filters=self.mine(k='md'), **window)['total'])

    def test_filter_on_type(self):
        """Rule 3: the filter key ``type`` is the metric type."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR,
                               filters=self.mine(type='image'))
        self.assertEqual(2, result['total'])

    def test_filter_missing_key_does_not_match(self):
        """Rule 3: a point lacking the key never matches, not even ''."""
        self.push(builders.sample_frames(self.project_id))
        window = {'begin': T0, 'end': T0 + 3 * HOUR}
        self.assertEqual(0, self.retrieve(
            filters=self.mine(flavor=''), **window)['total'])
        self.assertEqual(0, self.retrieve(
            filters=self.mine(nokey=['', 'x']), **window)['total'])

    def test_filter_tricky_values_match_exactly(self):
        """Rule 3: tricky filter values match only themselves."""
        values = builders.TRICKY_VALUES
        self.push(builders.labelled_frames(self.project_id, 'label', values,
                                           metadata_key='note'))
        window = {'begin': T0, 'end': T0 + HOUR}
        for i, value in enumerate(values):
            for key in ('label', 'note'):
                result = self.retrieve(filters=self.mine(**{key: value}),
                                       **window)
                self.assertEqual([i + 1], [
                    point.qty for frame in result['dataframes']
                    for _, point in frame.iterpoints()],
                    'filter %s=%r' % (key, value))

    def test_filter_tricky_value_lists(self):
        """Rule 3: OR over tricky values selects exactly those values."""
        values = builders.TRICKY_VALUES
        self.push(builders.labelled_frames(self.project_id, 'label', values))
        wanted = ['a%', "o'brien", 'space ', '\U0001f600 emoji', '']
        result = self.retrieve(begin=T0, end=T0 + HOUR,
                               filters=self.mine(label=wanted))
        self.assertEqual(sorted(wanted), sorted(
            point.groupby['label'] for frame in result['dataframes']
            for _, point in frame.iterpoints()))

    def test_filter_tricky_keys(self):
        """Rule 3: tricky keys work as filter keys."""
        keys = builders.TRICKY_KEYS
        self.push(builders.keyed_frames(self.project_id, keys))
        window = {'begin': T0, 'end': T0 + HOUR}
        for i, key in enumerate(keys):
            result = self.retrieve(filters=self.mine(**{key: 'g%d' % i}),
                                   **window)
            self.assertEqual(1, result['total'], 'filter key %r' % key)
            self.assertEqual(0, self.retrieve(
                filters=self.mine(**{key: 'g%d' % (i + 1)}),
                **window)['total'], 'filter key %r' % key)

    def test_metric_types_str(self):
        """Rule 3: metric_types may be one str."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR,
                               filters=self.mine(), metric_types='cpu')
        self.assertEqual(4, result['total'])

    def test_metric_types_list(self):
        """Rule 3: metric_types may be a list of str (OR)."""
        self.push(builders.sample_frames(self.project_id))
        window = {'begin': T0, 'end': T0 + 3 * HOUR,
                  'filters': self.mine()}
        self.assertEqual(6, self.retrieve(
            metric_types=['cpu', 'image'], **window)['total'])
        self.assertEqual(2, self.retrieve(
            metric_types=['image', 'absent'], **window)['total'])

    def test_empty_metric_types_mean_every_type(self):
        """metric_types=[], as upstream's summary sends, means every type."""
        self.push(builders.sample_frames(self.project_id))
        window = {'begin': T0, 'end': T0 + DAY, 'filters': self.mine()}
        self.assertEqual(self.storage.total(**window),
                         self.storage.total(metric_types=[], **window))
        self.assertEqual(
            rows(self.retrieve(paginate=False, **window)['dataframes']),
            rows(self.retrieve(paginate=False, metric_types=[],
                               **window)['dataframes']))

    def test_total_filters_and_metric_types(self):
        """Rule 3: total() honours filters and metric_types."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        end = T0 + 3 * HOUR
        cases = [
            ({'filters': self.mine(flavor='m1.small')}, 2, 1),
            ({'filters': self.mine(flavor=['m1.small', 'm1.large'])},
             6, D('3.5')),
            ({'filters': self.mine(az='nova', type='cpu')}, 5, 3),
            ({'filters': self.mine(), 'metric_types': 'image'}, 30,
             D('0.03')),
            ({'filters': self.mine(az='nova'), 'metric_types': ['image']},
             10, D('0.01')),
        ]
        for kwargs, qty, rate in cases:
            self.assertTotalEqual(
                {'total': 1, 'results': [expect(T0, end, qty, rate)]},
                self.storage.total(begin=T0, end=end, **kwargs))
            self.assertOracle(frames, begin=T0, end=end, **kwargs)

    def test_total_tricky_values_as_filters(self):
        """Rule 3: tricky filter values select exactly one group."""
        values = builders.TRICKY_VALUES
        self.push(builders.labelled_frames(self.project_id, 'label', values))
        end = T0 + HOUR
        for i, value in enumerate(values):
            self.assertTotalEqual({'total': 1, 'results': [
                expect(T0, end, i + 1, D(i + 1) / 100, label=value)]},
                self.totals(begin=T0, end=end, groupby=['label'],
                            filters=self.mine(label=value)))
