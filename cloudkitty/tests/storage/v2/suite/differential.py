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
"""A seeded random workload compared with the reference oracle."""

import datetime
import os
import random

from testtools import content

from cloudkitty.storage.v2 import query
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import DAY
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import rows
from cloudkitty.tests.storage.v2.suite.common import SEED_ENV
from cloudkitty.tests.storage.v2.suite.common import T0


class DifferentialTests:
    """A seeded random workload compared with the reference oracle.

    Each test pushes a random workload over three projects of its own,
    then compares random queries with :mod:`cloudkitty.storage.v2.query`.
    ``CLOUDKITTY_TEST_SEED`` replays another workload; the seed is
    attached to each test.

    Data: each test pushes its own points under fresh project ids, reads
    back only those and deletes nothing; ``cleanup_backend()`` runs after
    every test.
    """

    #: Default seeds, one per test (see SEED_ENV).
    seeds = {'total': 20210310, 'retrieve': 31032021, 'pages': 42}

    #: Random queries per test.
    queries = 40

    def _workload(self, name):
        seed = int(os.environ.get(SEED_ENV) or self.seeds[name])
        self.addDetail('seed', content.text_content(
            '%s=%d reproduces this workload' % (SEED_ENV, seed)))
        rng = random.Random(seed)
        projects = [self.project_id, self.new_project_id(),
                    self.new_project_id()]
        frames = builders.random_frames(
            rng, projects, exact=self.storage.features.exact_decimal)
        for start in range(0, len(frames), 5):
            self.push(frames[start:start + 5])
        return rng, projects, frames

    def _random_window(self, rng):
        begin = T0 + rng.randrange(-2, 5 * 24 * 2) * HOUR / 2
        end = begin + rng.randrange(1, 5 * 24 * 2) * HOUR / 2
        if rng.random() < 0.2:
            begin, end = T0 - DAY, T0 + 7 * DAY
        style = rng.random()
        if style < 0.2:
            return begin.replace(tzinfo=None), end.replace(tzinfo=None)
        if style < 0.4:
            zone = datetime.timezone(datetime.timedelta(
                minutes=rng.randrange(-12 * 60, 14 * 60, 15)))
            return begin.astimezone(zone), end.astimezone(zone)
        return begin, end

    def _random_filters(self, rng, projects):
        chosen = rng.sample(projects, rng.randint(1, len(projects)))
        filters = {'project_id': chosen[0] if len(chosen) == 1 else chosen}
        pools = (('type', builders.RANDOM_TYPES + ('absent',)),
                 ('flavor', builders.RANDOM_FLAVORS[2:] + ('absent',)),
                 ('az', builders.RANDOM_ZONES[2:] + ('absent',)),
                 ('size', ('1', '1.0', 'True', 'None', '0.0', '-0.0',
                           '2.5', 'absent')))
        for key, pool in pools:
            if rng.random() < 0.3:
                values = rng.sample(pool, rng.randint(1, 3))
                filters[key] = (values[0] if len(values) == 1
                                and rng.random() < 0.5 else values)
        return filters

    def _random_metric_types(self, rng):
        choice = rng.random()
        if choice < 0.5:
            return None
        if choice < 0.7:
            return rng.choice(builders.RANDOM_TYPES)
        return rng.sample(builders.RANDOM_TYPES + ('absent',),
                          rng.randint(1, 3))

    def _random_groupby(self, rng):
        groupby = rng.sample(['type', 'project_id', 'flavor', 'az', 'size'],
                             rng.randint(0, 3))
        if self.storage.features.groupby_time and rng.random() < 0.5:
            groupby.insert(rng.randint(0, len(groupby)),
                           rng.choice(query.TIME_GROUPBYS))
        return groupby or None

    def _random_custom_fields(self, rng):
        if not self.storage.features.custom_fields or rng.random() < 0.6:
            return None
        items = []
        for i in range(rng.randint(1, 4)):
            func = ''.join(c.upper() if rng.random() < 0.5 else c
                           for c in rng.choice(query.CUSTOM_FUNCTIONS))
            items.append('%s(%s) AS f%d' % (
                func, rng.choice(query.CUSTOM_SOURCES), i))
        return ', '.join(items)

    def test_differential_total(self):
        """Rule 5: random total() queries agree with the oracle."""
        rng, projects, frames = self._workload('total')
        for _ in range(self.queries):
            begin, end = self._random_window(rng)
            kwargs = {'begin': begin, 'end': end,
                      'groupby': self._random_groupby(rng),
                      'filters': self._random_filters(rng, projects),
                      'metric_types': self._random_metric_types(rng),
                      'custom_fields': self._random_custom_fields(rng)}
            self.assertOracle(frames, message=repr(kwargs), **kwargs)

    def test_differential_retrieve(self):
        """Rule 4: random retrieve() queries agree with the oracle."""
        rng, projects, frames = self._workload('retrieve')
        for _ in range(self.queries):
            begin, end = self._random_window(rng)
            kwargs = {'begin': begin, 'end': end,
                      'filters': self._random_filters(rng, projects),
                      'metric_types': self._random_metric_types(rng)}
            expected = query.evaluate_retrieve(
                query.validate_retrieve(paginate=False, **kwargs), frames)
            actual = self.storage.retrieve(paginate=False, **kwargs)
            self.assertEqual(expected['total'], actual['total'],
                             repr(kwargs))
            self.assertEqual(sorted(rows(expected['dataframes'])),
                             sorted(rows(actual['dataframes'])),
                             repr(kwargs))

    def test_differential_pages(self):
        """Rules 4, 5: random pages agree with the oracle's."""
        rng, projects, frames = self._workload('pages')
        for _ in range(self.queries // 4):
            begin, end = self._random_window(rng)
            kwargs = {'begin': begin, 'end': end,
                      'filters': self._random_filters(rng, projects)}
            limit = rng.randint(1, 25)
            expected = query.evaluate_retrieve(
                query.validate_retrieve(paginate=False, **kwargs), frames)
            pages = self.walk_retrieve(limit, **kwargs)
            self.assertEqual(sorted(rows(expected['dataframes'])),
                             sorted(r for page in pages for r in page),
                             '%r limit %d' % (kwargs, limit))
            kwargs['groupby'] = self._random_groupby(rng)
            total = query.evaluate_total(
                query.validate_total(paginate=False, **kwargs), frames)
            for offset in range(0, total['total'] + limit, limit):
                self.assertOracle(frames, offset=offset, limit=limit,
                                  message='%r offset %d limit %d'
                                  % (kwargs, offset, limit), **kwargs)
