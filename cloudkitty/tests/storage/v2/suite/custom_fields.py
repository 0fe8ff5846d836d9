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
"""total(custom_fields=...): aggregate functions and their grammar."""

from cloudkitty.storage import exceptions
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import D
from cloudkitty.tests.storage.v2.suite.common import DAY
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import lacks
from cloudkitty.tests.storage.v2.suite.common import requires
from cloudkitty.tests.storage.v2.suite.common import T0


class CustomFieldsTests:
    """total(custom_fields=...) (rule 5, ``custom_fields``).

    sum, min, max, avg and count of qty or price, with aliases; anything
    outside that grammar is InvalidQuery; a backend without the flag
    raises NotSupported.

    Data: each test pushes its own points under fresh project ids, reads
    back only those and deletes nothing; ``cleanup_backend()`` runs after
    every test.
    """

    @requires('custom_fields')
    def test_custom_fields_all_functions(self):
        """Rule 5: sum, min, max, avg, count in any case, with aliases."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        custom = ('SUM(qty) AS s, min(price) AS low, Max(qty) AS high, '
                  'aVg(price) AS mean, COUNT(qty) AS n, sum(price) AS rate')
        result = self.totals(begin=T0, end=T0 + 3 * HOUR,
                             custom_fields=custom)
        self.assertTotalEqual({'total': 1, 'results': [{
            'begin': T0, 'end': T0 + 3 * HOUR, 's': D(36),
            'low': D('0.01'), 'high': D(20),
            'mean': D('0.5883333333333333333333333333333333'), 'n': D(6),
            'rate': D('3.53')}]}, result)
        self.assertOracle(frames, begin=T0, end=T0 + 3 * HOUR,
                          custom_fields=custom)

    @requires('custom_fields')
    def test_custom_fields_with_groupby(self):
        """Rule 5: custom fields are computed per group."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        kwargs = {'begin': T0, 'end': T0 + 3 * HOUR,
                  'groupby': ['type'],
                  'custom_fields': 'max(price) AS top, count(price) AS n,'
                                   'MIN(qty) AS least'}
        end = T0 + 3 * HOUR
        self.assertTotalEqual({'total': 2, 'results': [
            {'begin': T0, 'end': end, 'type': 'cpu', 'top': D('1.25'),
             'n': D(4), 'least': D(1)},
            {'begin': T0, 'end': end, 'type': 'image', 'top': D('0.02'),
             'n': D(2), 'least': D(10)}]}, self.totals(**kwargs))
        self.assertOracle(frames, **kwargs)

    @requires('custom_fields', 'groupby_time')
    def test_custom_fields_with_time_and_negatives(self):
        """Rule 8: custom fields over negative and extreme money."""
        values = (builders.MONEY_MAX, -builders.MONEY_MAX,
                  builders.MONEY_TINY, D('-2.5'))
        frames = [builders.make_frame(T0 + i * HOUR, [
            ('cpu', builders.make_point(self.project_id, v, -v))
            for v in values[i:]]) for i in range(len(values))]
        self.push(frames)
        self.assertOracle(
            frames, begin=T0, end=T0 + DAY, groupby=['time'],
            custom_fields='min(qty) AS a, max(price) AS b, avg(qty) AS c, '
                          'sum(price) AS d, count(qty) AS e')

    def test_custom_fields_rejects(self):
        """Rule 5: custom_fields outside the grammar raise InvalidQuery."""
        self.push(builders.sample_frames(self.project_id))
        for custom in ('sum(qty)', 'SUM(qty) AS', 'SUM(qty) AS a; DROP '
                       'TABLE x', 'median(qty) AS m', 'SUM(foo) AS f', '',
                       'SUM(qty) AS a,', 'SUM(qty) AS a, SUM(price) AS a',
                       'SUM(qty) AS begin', 'SUM(qty AS a', 'SUM(*) AS a',
                       'SUM(qty + price) AS a', 'SUM(qty) AS "a"',
                       'SUM(qty) AS 1a', 'SUM(qty) a', 'SUM(qty) AS a --',
                       ['SUM(qty) AS a'], 42):
            self.assertInvalid('custom_fields', self.storage.total,
                               begin=T0, end=T0 + DAY,
                               custom_fields=custom)
        self.assertInvalid('custom_fields', self.storage.total,
                           groupby=['flavor'], begin=T0, end=T0 + DAY,
                           custom_fields='SUM(qty) AS flavor')

    @lacks('custom_fields')
    def test_custom_fields_not_supported(self):
        """Rule 5: a backend without custom_fields raises NotSupported."""
        self.assertRaises(exceptions.NotSupported, self.storage.total,
                          begin=T0, end=T0 + DAY,
                          custom_fields='SUM(qty) AS q')
