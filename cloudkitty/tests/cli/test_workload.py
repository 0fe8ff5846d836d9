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
"""Tests of the benchmark workload generator and its exact sums."""

import collections
import datetime
import decimal

import testtools

from cloudkitty.cli.perf import workload
from cloudkitty.storage.v2 import query

D = decimal.Decimal
UTC = datetime.timezone.utc


def brute_force(frames):
    """Sum the points of ``(project_id, frame)`` pairs, the slow way."""
    sums = collections.defaultdict(lambda: [D(0), D(0), 0])
    for _, frame in frames:
        for type_, point in frame.iterpoints():
            project_id = point.groupby['project_id']
            for key in [(), ('project_id', project_id), ('type', type_),
                        ('type+project_id', type_, project_id),
                        ('id', point.groupby['id']),
                        ('time', frame.start)]:
                entry = sums[key]
                entry[0] += point.qty
                entry[1] += point.price
                entry[2] += 1
    return sums


class TinyWorkloadTest(testtools.TestCase):
    """A 2 projects x 6 types x 2 resources x 3 periods workload."""

    def setUp(self):
        super().setUp()
        self.work = workload.Workload(projects=2, resources=2, periods=3,
                                      seed=7, push_per='project')
        self.expected = workload.Expected()
        self.frames = list(self.work.iter_frames(self.expected))

    def test_sizes(self):
        self.assertEqual(24, self.work.points_per_period)
        self.assertEqual(72, self.work.points)
        self.assertEqual(6, self.work.pushes)
        self.assertEqual(6, len(self.frames))
        self.assertEqual(72, sum(len(f) for _, f in self.frames))
        self.assertEqual(72, self.expected.count)

    def test_window(self):
        self.assertEqual(datetime.datetime(2026, 1, 1, tzinfo=UTC),
                         self.work.begin)
        self.assertEqual(datetime.datetime(2026, 1, 1, 3, tzinfo=UTC),
                         self.work.end)
        self.assertEqual((datetime.datetime(2026, 1, 1, 1, tzinfo=UTC),
                          datetime.datetime(2026, 1, 1, 2, tzinfo=UTC)),
                         self.work.period_window(1))

    def test_one_frame_per_period_and_project_in_push_order(self):
        self.assertEqual(
            [(0, 'bench-p0000'), (0, 'bench-p0001'), (1, 'bench-p0000'),
             (1, 'bench-p0001'), (2, 'bench-p0000'), (2, 'bench-p0001')],
            [((f.start - self.work.begin) // workload.PERIOD, p)
             for p, f in self.frames])

    def test_every_type_and_resource(self):
        _, frame = self.frames[0]
        self.assertEqual([t[0] for t in workload.TYPES],
                         [t for t, _ in frame.itertypes()])
        ids = [p.groupby['id'] for _, p in frame.iterpoints()]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertIn('bench-p0000-instance-r001', ids)
        flavors = {p.metadata['flavor_name']
                   for t, p in frame.iterpoints() if t == 'instance'}
        self.assertEqual({'m1.tiny', 'm1.small'}, flavors)

    def test_values_are_exact_decimals_in_range(self):
        for _, frame in self.frames:
            for _, point in frame.iterpoints():
                self.assertGreaterEqual(point.qty, D('0.001'))
                self.assertLess(point.qty, D(1000))
                self.assertGreaterEqual(point.price, D(0))
                self.assertLess(point.price, D(100))
                self.assertLessEqual(-point.qty.as_tuple().exponent, 3)
                self.assertLessEqual(-point.price.as_tuple().exponent, 4)

    def test_expected_sums_equal_brute_force(self):
        sums = brute_force(self.frames)

        def pair(key):
            return (sums[key][0], sums[key][1])

        self.assertEqual({(): pair(())}, self.expected.groups(()))
        self.assertEqual(
            {(p,): pair(('project_id', p)) for p in self.work.project_ids},
            self.expected.groups(('project_id',)))
        self.assertEqual(
            {(t,): pair(('type', t)) for t, *_ in workload.TYPES},
            self.expected.groups(('type',)))
        self.assertEqual(
            {(t, p): pair(('type+project_id', t, p))
             for t, *_ in workload.TYPES for p in self.work.project_ids},
            self.expected.groups(('type', 'project_id')))
        by_id = self.expected.groups(('id',))
        self.assertEqual(2 * 6 * 2, len(by_id))
        for (rid,), value in by_id.items():
            self.assertEqual(pair(('id', rid)), value)
        self.assertEqual(
            {(self.work.period_window(i)[0],):
             pair(('time', self.work.period_window(i)[0]))
             for i in range(3)},
            self.expected.groups(('time',)))

    def test_expected_sums_equal_the_query_oracle(self):
        frames = [f for _, f in self.frames]
        for groupby in workload.KNOWN_GROUPBYS:
            q = query.validate_total(groupby=list(groupby) or None,
                                     begin=self.work.begin,
                                     end=self.work.end, paginate=False)
            oracle = query.evaluate_total(q, frames)['results']
            got = {tuple(query.result_value(row, g) for g in groupby):
                   (row['qty'], row['rate'])
                   for row in oracle}
            self.assertEqual(got, self.expected.groups(groupby), groupby)

    def test_expected_replay_matches_one_pass(self):
        replay = self.work.expected()
        for groupby in workload.KNOWN_GROUPBYS:
            self.assertEqual(self.expected.groups(groupby),
                             replay.groups(groupby))

    def test_same_seed_same_points(self):
        again = list(workload.Workload(projects=2, resources=2, periods=3,
                                       seed=7, push_per='project'
                                       ).iter_frames())
        self.assertEqual([f for _, f in self.frames], [f for _, f in again])

    def test_other_seed_other_points(self):
        other = workload.Workload(projects=2, resources=2, periods=3,
                                  seed=8).expected()
        self.assertNotEqual(self.expected.groups(()), other.groups(()))

    def test_unknown_groupby(self):
        self.assertRaises(ValueError, self.expected.groups, ('flavor_name',))


class SumsTest(testtools.TestCase):
    """Sums keeps exact scaled integers."""

    def test_add_merge_subtract(self):
        first = workload.Sums()
        first.add(1, 1)
        first.add(999999, 125)
        self.assertEqual((2, D('1000.000'), D('0.0126')),
                         (first.count, first.qty, first.price))
        second = workload.Sums()
        second.merge(first)
        second.merge(first)
        second.subtract(first)
        self.assertEqual((2, D('1000'), D('0.0126')),
                         (second.count, second.qty, second.price))


class WorkloadArgumentsTest(testtools.TestCase):
    """Workload rejects sizes below 1."""

    def test_default_size(self):
        work = workload.Workload()
        self.assertEqual(1020000, work.points)
        self.assertEqual(100, work.pushes)
        self.assertEqual(
            10000, workload.Workload(push_per='project').pushes)

    def test_one_frame_per_period(self):
        work = workload.Workload(projects=2, resources=2, periods=3, seed=7)
        frames = list(work.iter_frames())
        self.assertEqual([None] * 3, [scope for scope, _ in frames])
        self.assertEqual([24] * 3, [len(frame) for _, frame in frames])
        by_project = workload.Workload(projects=2, resources=2, periods=3,
                                       seed=7, push_per='project')
        self.assertEqual(
            sorted((t, p.json()) for _, f in by_project.iter_frames()
                   for t, p in f.iterpoints()),
            sorted((t, p.json()) for _, f in frames
                   for t, p in f.iterpoints()))

    def test_bad_sizes(self):
        for kwargs in ({'projects': 0}, {'resources': -1},
                       {'periods': 1.5}, {'push_per': 'type'}):
            self.assertRaises(ValueError, workload.Workload, **kwargs)


class ShapeForSizeTest(testtools.TestCase):
    """shape_for_size() grows the periods, never below one day."""

    def points(self, shape):
        projects, resources, periods = shape
        return projects * len(workload.TYPES) * resources * periods

    def test_default_base_shape(self):
        self.assertEqual((4, 17, 24), workload.shape_for_size(10 ** 4))
        self.assertEqual((41, 17, 24), workload.shape_for_size(10 ** 5))
        self.assertEqual((100, 17, 98), workload.shape_for_size(10 ** 6))
        self.assertEqual((100, 17, 980), workload.shape_for_size(10 ** 7))

    def test_one_day_of_the_base_shape(self):
        self.assertEqual((100, 17, 24), workload.shape_for_size(244800))
        self.assertEqual((99, 17, 24), workload.shape_for_size(242351))

    def test_tiny_sizes(self):
        self.assertEqual((1, 1, 24), workload.shape_for_size(200))
        self.assertEqual((1, 1, 17), workload.shape_for_size(100))
        self.assertEqual((1, 1, 1), workload.shape_for_size(6))
        self.assertEqual((1, 1, 1), workload.shape_for_size(1))
        self.assertEqual((1, 5, 24), workload.shape_for_size(700))

    def test_other_base_shape(self):
        self.assertEqual((2, 2, 24),
                         workload.shape_for_size(500, projects=2,
                                                 resources=2))
        self.assertEqual((2, 2, 83),
                         workload.shape_for_size(2000, projects=2,
                                                 resources=2))

    def test_never_more_than_the_base_and_growing(self):
        last = 0
        for size in list(range(1, 3000, 7)) + list(range(240000, 250000,
                                                         97)):
            projects, resources, periods = shape = workload.shape_for_size(
                size, projects=100, resources=17)
            self.assertLessEqual(projects, 100, size)
            self.assertLessEqual(resources, 17, size)
            if size >= workload.DAY_PERIODS * len(workload.TYPES):
                self.assertGreaterEqual(periods, workload.DAY_PERIODS, size)
            points = self.points(shape)
            self.assertGreaterEqual(points, last, size)
            last = points

    def test_close_to_the_size(self):
        for size in (10 ** 4, 10 ** 5, 10 ** 6, 10 ** 7, 3 * 10 ** 7):
            points = self.points(workload.shape_for_size(size))
            self.assertLess(abs(points - size) / size, 0.03, size)

    def test_bad_arguments(self):
        for size, kwargs in ((0, {}), (1.5, {}), (10, {'projects': 0}),
                             (10, {'resources': -1})):
            self.assertRaises(ValueError, workload.shape_for_size, size,
                              **kwargs)


class RecentStartTest(testtools.TestCase):
    """recent_start(): whole days before today, kept by a retention."""

    def test_ends_by_the_start_of_today(self):
        now = datetime.datetime(2026, 12, 5, 8, 30, tzinfo=UTC)
        start = workload.recent_start(100, now=now)
        self.assertEqual(datetime.datetime(2026, 11, 30, tzinfo=UTC), start)
        end = start + 100 * workload.PERIOD
        self.assertLessEqual(end, datetime.datetime(2026, 12, 5,
                                                    tzinfo=UTC))

    def test_whole_days(self):
        now = datetime.datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
        for periods, days in ((1, 1), (24, 1), (25, 2), (1000, 42)):
            self.assertEqual(now - datetime.timedelta(days=days),
                             workload.recent_start(periods, now=now))

    def test_within_the_default_retention(self):
        """The default bench workload fits InfluxDB's default retention."""
        start = workload.recent_start(100)
        retention = datetime.timedelta(hours=2400)
        now = datetime.datetime.now(UTC)
        self.assertGreater(start, now - retention)
        self.assertLessEqual(start + 100 * workload.PERIOD, now)
        self.assertEqual(0, start.hour)
