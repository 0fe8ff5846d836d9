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
"""Unit tests of the shared query semantics and of exact money.

No backend and no server: :mod:`cloudkitty.storage.v2.query` and
:mod:`cloudkitty.storage.v2.money` are pure functions. Expected values are
written by hand, so these tests also guard the oracle the conformance suite
relies on.
"""

import datetime
import decimal
import random

import testtools

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query
from cloudkitty.tests import fixtures as builders

UTC = datetime.timezone.utc
D = decimal.Decimal
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
T0 = builders.T0


def utc(*args):
    """Return an aware UTC datetime."""
    return datetime.datetime(*args, tzinfo=UTC)


def partial(keys, start, count, qty, price):
    """Return a Partial of one hourly frame from plain sums."""
    return query.Partial(keys, start, start + HOUR,
                         query.Aggregate.from_sums(count, D(qty), D(price)))


class ValidateTest(testtools.TestCase):
    """validate_*: normalisation and errors."""

    def assertInvalid(self, argument, func, *args, **kwargs):
        exc = self.assertRaises(exceptions.InvalidQuery, func, *args,
                                **kwargs)
        self.assertIsInstance(exc, ValueError)
        self.assertEqual(argument, exc.argument)

    def test_retrieve_normalises(self):
        """Rules 1, 3: filters, metric types and bounds are normalised."""
        east = datetime.timezone(datetime.timedelta(hours=2))
        q = query.validate_retrieve(
            begin=datetime.datetime(2021, 3, 10, 2, tzinfo=east),
            end=datetime.datetime(2021, 3, 11),
            filters={'b': 'x', 'a': ['z', 'y', 'z']}, metric_types='cpu',
            offset=3, limit=7)
        self.assertEqual(T0, q.begin)
        self.assertEqual(T0 + DAY, q.end)
        self.assertIs(UTC, q.begin.tzinfo)
        self.assertIs(UTC, q.end.tzinfo)
        self.assertEqual((('a', ('y', 'z')), ('b', ('x',))), q.filters)
        self.assertEqual(('cpu',), q.metric_types)
        self.assertEqual((3, 7, True), (q.offset, q.limit, q.paginate))

    def test_iso_strings_and_dates(self):
        """Rule 1: ISO 8601 strings and dates are accepted as bounds."""
        q = query.validate_retrieve(begin='2021-03-10T00:00:00Z',
                                    end=datetime.date(2021, 3, 11))
        self.assertEqual((T0, T0 + DAY), (q.begin, q.end))

    def test_total_normalises(self):
        """Rule 5: groupby keeps its order; custom fields are parsed."""
        q = query.validate_total(groupby=['flavor', 'time-d', 'type'],
                                 begin=T0, end=T0 + DAY,
                                 metric_types=['image', 'cpu', 'cpu'],
                                 custom_fields='COUNT(qty) AS n')
        self.assertEqual(('flavor', 'time-d', 'type'), q.groupby)
        self.assertEqual('time-d', q.time_groupby)
        self.assertEqual(('flavor', 'type'), q.key_groupby)
        self.assertEqual(('cpu', 'image'), q.metric_types)
        self.assertEqual((query.CustomField('count', 'qty', 'n'),), q.fields)

    def test_delete_keeps_bounds_open(self):
        """Rule 2: delete's missing bounds stay open."""
        q = query.validate_delete()
        self.assertEqual((None, None, ()), (q.begin, q.end, q.filters))
        q = query.validate_delete(end=T0.replace(tzinfo=None))
        self.assertEqual((None, T0), (q.begin, q.end))

    def test_bad_arguments(self):
        """Rule 6: each bad argument raises InvalidQuery naming it."""
        for argument, kwargs in (
                ('begin', {'begin': 3}),
                ('begin', {'begin': 'yesterday'}),
                ('end', {'end': [T0]}),
                ('offset', {'offset': -1}),
                ('offset', {'offset': True}),
                ('limit', {'limit': 0}),
                ('limit', {'limit': '10'}),
                ('paginate', {'paginate': 1}),
                ('filters', {'filters': ['a']}),
                ('filters', {'filters': {'a': 1}}),
                ('filters', {'filters': {'a': []}}),
                ('filters', {'filters': {'': 'x'}}),
                ('filters', {'filters': {1: 'x'}}),
                ('metric_types', {'metric_types': 3}),
                ('metric_types', {'metric_types': ['cpu', None]})):
            self.assertInvalid(argument, query.validate_retrieve, **kwargs)
        self.assertInvalid('filters', query.validate_delete, filters='x')

    def test_reversed_window_is_empty(self):
        """Rule 2: begin >= end is an empty window [begin, begin)."""
        for kwargs in ({'begin': T0, 'end': T0},
                       {'begin': T0 + HOUR, 'end': T0}):
            q = query.validate_retrieve(**kwargs)
            self.assertEqual((kwargs['begin'], kwargs['begin']),
                             (q.begin, q.end))
            q = query.validate_delete(**kwargs)
            self.assertEqual((kwargs['begin'], kwargs['begin']),
                             (q.begin, q.end))

    def test_empty_metric_types_mean_every_type(self):
        """metric_types=[] (what upstream's summary sends) is no filter."""
        self.assertIsNone(query.validate_total(metric_types=[]).metric_types)
        self.assertIsNone(
            query.validate_retrieve(metric_types=()).metric_types)

    def test_bad_groupby(self):
        """Rule 6: unknown time groupings and bad shapes are rejected."""
        for bad in (['time-x'], ['time-'], ['time-W'], 'type', ('type', 3),
                    [''], ['type', 'type'], ['time', 'time-y'], ['qty'],
                    ['rate'], ['begin'], ['end'], {'type': 1}):
            self.assertInvalid('groupby', query.validate_total, groupby=bad)

    def test_groupby_keys_starting_with_time(self):
        """Rule 5: keys such as timestamp are label keys, not time-*."""
        self.assertEqual(('timestamp', 'timezone', 'times'),
                         query.normalize_groupby(
                             ['timestamp', 'timezone', 'times']))

    def test_dataframes(self):
        """Rule 7: push takes a list of DataFrame and nothing else."""
        frame = dataframe.DataFrame(T0, T0 + HOUR)
        self.assertEqual([frame], query.validate_dataframes((frame,)))
        self.assertEqual([], query.validate_dataframes([]))
        for bad in (frame, 'x', None, 3, [frame, 'x'], [frame, None]):
            self.assertInvalid('dataframes', query.validate_dataframes, bad)


class WindowTest(testtools.TestCase):
    """default_window() and the month helpers."""

    def test_both_bounds_default(self):
        """Rule 2: begin/end default to this month and the next."""
        now = utc(2021, 3, 10, 15, 30, 12, 5)
        self.assertEqual((utc(2021, 3, 1), utc(2021, 4, 1)),
                         query.default_window(now=now))

    def test_each_bound_defaults_on_its_own(self):
        """Rule 2: with one bound given, the other still defaults."""
        now = utc(2021, 3, 10, 15)
        self.assertEqual((T0, utc(2021, 4, 1)),
                         query.default_window(begin=T0, now=now))
        self.assertEqual((utc(2021, 3, 1), T0),
                         query.default_window(end=T0, now=now))
        self.assertEqual((utc(2021, 3, 1), utc(2021, 3, 1)),
                         query.default_window(end=utc(2021, 2, 1), now=now))

    def test_december_rolls_over(self):
        """Rule 2: December's window ends on January 1st next year."""
        now = utc(2020, 12, 31, 23, 59, 59)
        self.assertEqual((utc(2020, 12, 1), utc(2021, 1, 1)),
                         query.default_window(now=now))
        self.assertEqual(utc(2021, 1, 1), query.next_month(utc(2020, 12, 1)))

    def test_default_now_is_aware(self):
        """Rule 1: without now, the default window is aware UTC."""
        begin, end = query.default_window()
        self.assertIs(UTC, begin.tzinfo)
        self.assertIs(UTC, end.tzinfo)
        self.assertEqual(1, begin.day)
        self.assertLess(begin, end)


class CustomFieldsTest(testtools.TestCase):
    """parse_custom_fields(): the strict grammar."""

    def test_none_is_qty_and_rate(self):
        """Rule 5: without custom fields, total sums qty and rate."""
        self.assertEqual(query.DEFAULT_FIELDS,
                         query.parse_custom_fields(None))
        self.assertEqual(['qty', 'rate'],
                         [f.alias for f in query.DEFAULT_FIELDS])

    def test_every_function_any_case(self):
        """Rule 5: sum, min, max, avg and count in any case."""
        parsed = query.parse_custom_fields(
            ' SUM(qty) AS a,min( price ) as b ,Max(qty)  As  c, '
            'aVg(price) aS d, COUNT(qty) AS e_1')
        self.assertEqual(
            [('sum', 'qty', 'a'), ('min', 'price', 'b'),
             ('max', 'qty', 'c'), ('avg', 'price', 'd'),
             ('count', 'qty', 'e_1')],
            [(f.func, f.field, f.alias) for f in parsed])

    def test_rejects(self):
        """Rule 5: anything outside the grammar raises InvalidQuery."""
        for bad in ('sum(qty)', 'SUM(qty) AS', 'SUM(qty) AS a; DROP TABLE x',
                    'median(qty) AS m', 'SUM(foo) AS f', 'SUM(QTY) AS q',
                    '', ',', 'SUM(qty) AS a,', 'SUM(qty) AS 1a',
                    'SUM(qty) AS a-b', 'SUM(qty)) AS a', 'SUM(*) AS a',
                    'SUM(qty) AS a, SUM(price) AS a', 'SUM(qty) AS begin',
                    'SUM(qty) AS end', 'SUM(qty) AS "a"', 3, ['SUM(qty) AS a'],
                    'SUM(qty) AS a\n; x'):
            self.assertRaises(exceptions.InvalidQuery,
                              query.parse_custom_fields, bad)

    def test_alias_clashing_with_groupby(self):
        """Rule 5: an alias may not hide a groupby entry."""
        self.assertRaises(exceptions.InvalidQuery, query.validate_total,
                          groupby=['flavor'],
                          custom_fields='SUM(qty) AS flavor')
        self.assertRaises(exceptions.InvalidQuery, query.validate_total,
                          groupby=['time-d'],
                          custom_fields='SUM(qty) AS day_of_the_year')
        self.assertRaises(exceptions.InvalidQuery, query.validate_total,
                          groupby=['time-m', 'month'])


class BuildTotalTest(testtools.TestCase):
    """build_total(): merge, drop, sort and page partial groups."""

    def test_merges_and_sorts(self):
        """Rule 5: equal keys merge; groups sort by value then begin."""
        q = query.validate_total(groupby=['flavor', 'time-d'], begin=T0,
                                 end=T0 + 2 * DAY)
        result = query.build_total(q, [
            partial(('b',), T0 + DAY, 1, '1', '0.1'),
            partial(('a',), T0 + 3 * HOUR, 2, '2', '0.2'),
            partial(('',), T0, 1, '4', '0.4'),
            partial(('a',), T0 + 5 * HOUR, 1, '8', '0.8'),
            partial(('',), T0 + DAY, 1, '16', '1.6'),
            partial(('b',), T0, 0, '0', '0'),
            partial(('b',), T0 + HOUR, 3, '32', '3.2'),
        ])
        # NOTE: T0 is March 10th, 2021: day 69 of its year.
        self.assertEqual(
            [('', '69', D(4)), ('', '70', D(16)), ('a', '69', D(10)),
             ('b', '69', D(32)), ('b', '70', D(1))],
            [(r['flavor'], r['day_of_the_year'], r['qty'])
             for r in result['results']])
        self.assertEqual(5, result['total'])
        self.assertEqual({'begin': T0, 'end': T0 + 2 * DAY, 'flavor': 'a',
                          'day_of_the_year': '69', 'qty': D(10),
                          'rate': D('1')}, result['results'][2])
        self.assertEqual(['begin', 'end', 'qty', 'rate', 'flavor',
                          'day_of_the_year'], list(result['results'][2]))

    def test_calendar_values_merge_years(self):
        """Rule 5: as upstream's labels, day 69 of two years is one group."""
        q = query.validate_total(groupby=['time-d'], begin=T0,
                                 end=T0 + 800 * DAY)
        next_year = T0.replace(year=T0.year + 1)
        result = query.build_total(q, [partial((), T0, 1, '1', '1'),
                                       partial((), next_year, 1, '2', '2')])
        self.assertEqual([{'begin': T0, 'end': T0 + 800 * DAY, 'qty': D(3),
                           'rate': D(3), 'day_of_the_year': '69'}],
                         result['results'])

    def test_calendar_values(self):
        """Rule 5: upstream's label values, computed from the frame start."""
        sunday = utc(2021, 1, 3, 5)
        for entry, moment, value in (
                ('time-d', utc(2021, 1, 1), '1'),
                ('time-d', utc(2020, 12, 31, 23), '366'),
                ('time-w', utc(2021, 1, 2), '00'),
                ('time-w', sunday, '01'),
                ('time-m', utc(2021, 3, 31), '3'),
                ('time-y', utc(2021, 3, 31), '2021')):
            self.assertEqual(value, query.calendar_value(entry, moment),
                             (entry, moment))
        self.assertEqual(('day_of_the_year', 'type'),
                         query.result_keys(['time-d', 'type']))
        self.assertEqual(('type',), query.result_keys(['type', 'time']))

    def test_without_time_uses_the_window(self):
        """Rule 5: without time groupby, begin/end are the window."""
        q = query.validate_total(groupby=['type'], begin=T0, end=T0 + DAY)
        result = query.build_total(q, [partial(('cpu',), T0, 1, '1', '2')])
        self.assertEqual([{'begin': T0, 'end': T0 + DAY, 'type': 'cpu',
                           'qty': D(1), 'rate': D(2)}], result['results'])

    def test_time_bucket_of_frames_sharing_a_start(self):
        """Rule 5: frames sharing a start share a time bucket."""
        q = query.validate_total(groupby=['time'], begin=T0, end=T0 + DAY)
        longer = query.Partial((), T0, T0 + 2 * HOUR,
                               query.Aggregate.from_sums(1, D(1), D(1)))
        result = query.build_total(q, [partial((), T0, 1, '2', '2'), longer])
        self.assertEqual([{'begin': T0, 'end': T0 + 2 * HOUR,
                           'qty': D(3), 'rate': D(3)}], result['results'])

    def test_pages(self):
        """Rule 5: offset/limit page the sorted groups; total counts all."""
        q = query.validate_total(groupby=['type'], begin=T0, end=T0 + DAY,
                                 offset=1, limit=2)
        parts = [partial((t,), T0, 1, '1', '1') for t in 'dcbae']
        result = query.build_total(q, parts)
        self.assertEqual(5, result['total'])
        self.assertEqual(['b', 'c'], [r['type'] for r in result['results']])
        q = query.validate_total(groupby=['type'], begin=T0, end=T0 + DAY,
                                 offset=1, limit=2, paginate=False)
        self.assertEqual(5, len(query.build_total(q, parts)['results']))

    def test_only_the_page_is_built(self):
        """Rule 5: groups off the page are counted, their sums not read."""
        read = []

        def from_units(units):
            read.append(units)
            return money.from_units(units)

        parts = []
        for index, name in enumerate('edcba'):
            # NOTE: qty and price tell each group's sums apart.
            aggregate = query.Aggregate(1, index, 10 + index)
            parts.append(query.Partial((name,), T0, T0 + HOUR, aggregate))
        q = query.validate_total(groupby=['type'], begin=T0, end=T0 + DAY,
                                 offset=1, limit=2)
        result = query.build_total(q, parts, from_units)
        self.assertEqual(5, result['total'])
        self.assertEqual(['b', 'c'], [r['type'] for r in result['results']])
        # NOTE: b's qty and price, then c's.
        self.assertEqual([3, 13, 2, 12], read)
        # NOTE: custom fields other than sums are read likewise.
        read.clear()
        q = query.validate_total(groupby=['type'], begin=T0, end=T0 + DAY,
                                 offset=1, limit=2,
                                 custom_fields='avg(qty) AS a')
        self.assertEqual(
            [money.average(money.from_units(3), 1),
             money.average(money.from_units(2), 1)],
            [r['a'] for r in query.build_total(q, parts, from_units)[
                'results']])

    def test_typed_labels_sort_as_their_sort_keys(self):
        """Rule 5: groups of mixed kinds sort key by key, then by begin."""
        values = [None, True, 3, 3.0, 2.5, '3', '', 'x']
        parts = [partial((first, second), T0 + index * HOUR, 1, '1', '1')
                 for index, (first, second) in enumerate(
                     (a, b) for a in reversed(values) for b in values[:3])]
        q = query.validate_total(groupby=['flavor', 'size'], begin=T0,
                                 end=T0 + 30 * DAY)
        got = [(r['flavor'], r['size'])
               for r in query.build_total(q, parts)['results']]
        want = sorted(got, key=lambda pair: (query.label_sort_key(pair[0]),
                                             query.label_sort_key(pair[1])))
        self.assertEqual(len(parts), len(got))
        self.assertEqual([(query.encode_label(a), query.encode_label(b))
                          for a, b in want],
                         [(query.encode_label(a), query.encode_label(b))
                          for a, b in got])

    def test_nothing(self):
        """Rule 5: no group gives {'total': 0, 'results': []}."""
        q = query.validate_total(begin=T0, end=T0 + DAY)
        self.assertEqual({'total': 0, 'results': []},
                         query.build_total(q, []))


class BuildMergedTotalTest(testtools.TestCase):
    """build_merged_total(): groups merged by the backend, same answers."""

    def assertSameAsPartials(self, q, groups, from_units=None):
        """Check the answer against build_total() of the same groups."""
        kwargs = {} if from_units is None else {'from_units': from_units}
        want = query.build_total(q, query.partials_of_groups(groups),
                                 **kwargs)
        got = query.build_merged_total(q, groups, **kwargs)
        self.assertEqual(want, got)
        for mine, theirs in zip(got['results'], want['results']):
            self.assertEqual(list(theirs), list(mine))
        return got

    def test_one_str_key(self):
        """Rule 5: the fast form sorts, drops empty groups and pages."""
        rng = random.Random(7)
        names = ['r%04d' % index for index in range(300)] + ['', 'R', 'é']
        rng.shuffle(names)
        groups = [((name,), rng.randrange(0, 3), rng.randrange(10 ** 15),
                   rng.randrange(-10 ** 15, 10 ** 15)) for name in names]
        empty = sum(1 for group in groups if not group[1])
        self.assertGreater(empty, 0)
        for key in ('id', 'type'):
            for page in (dict(paginate=False), dict(offset=0, limit=7),
                         dict(offset=290, limit=50),
                         dict(offset=400, limit=5)):
                q = query.validate_total(groupby=[key], begin=T0,
                                         end=T0 + DAY, **page)
                got = self.assertSameAsPartials(q, groups)
                self.assertEqual(len(names) - empty, got['total'])
        q = query.validate_total(groupby=['id'], paginate=False,
                                 custom_fields='sum(price) AS p, '
                                               'sum(qty) AS q')
        got = self.assertSameAsPartials(q, groups)
        self.assertEqual(['begin', 'end', 'p', 'q', 'id'],
                         list(got['results'][0]))

    def test_only_the_page_is_built(self):
        """Rule 5: groups off the page are counted, their sums not read."""
        read = []

        def from_units(units):
            read.append(units)
            return money.from_units(units)

        groups = [((name,), 1, index, 10 + index)
                  for index, name in enumerate('edcba')]
        q = query.validate_total(groupby=['id'], begin=T0, end=T0 + DAY,
                                 offset=1, limit=2)
        result = query.build_merged_total(q, groups, from_units)
        self.assertEqual(['b', 'c'], [r['id'] for r in result['results']])
        self.assertEqual([3, 13, 2, 12], read)

    def test_other_queries_as_build_total(self):
        """Rule 5: other keys, fields and groupbys give the same answer."""
        values = [None, True, 3, 3.0, 2.5, '3', '', 'x']
        groups = [((value,), 1 + index, index, 2 * index)
                  for index, value in enumerate(values)]
        pairs = [((a, b), 1, 1, 1) for a in values for b in ('x', 'y')]
        for q, some in (
                (query.validate_total(groupby=['id']), groups),
                (query.validate_total(groupby=['id', 'type']), pairs),
                (query.validate_total(groupby=['id'],
                                      custom_fields='avg(qty) AS a, '
                                                    'count(qty) AS n'),
                 [((str(value),), 2, 5, 7) for value in values]),
                (query.validate_total(), [((), 3, 4, 5)]),
                (query.validate_total(), [])):
            self.assertSameAsPartials(q, some)

    def test_groups_of_one_value_are_merged(self):
        """Rule 5: groups of one value (summed per series) are one."""
        unit = money.SCALE
        groups = [(('b',), 1, unit, 1), (('a',), 2, 2 * unit, 2),
                  (('b',), 3, 3 * unit, 3), (('c',), 0, 0, 0),
                  (('b',), 1, -unit, 5)]
        q = query.validate_total(groupby=['id'], paginate=False)
        got = self.assertSameAsPartials(q, groups)
        self.assertEqual([('a', D(2)), ('b', D(3))],
                         [(r['id'], r['qty']) for r in got['results']])
        rng = random.Random(3)
        many = [(('v%02d' % rng.randrange(40),), rng.randrange(3),
                 rng.randrange(-10 ** 14, 10 ** 14), rng.randrange(10 ** 14))
                for _ in range(500)]
        for page in (dict(paginate=False), dict(offset=5, limit=10)):
            self.assertSameAsPartials(
                query.validate_total(groupby=['id'], **page), many)


class OracleTest(testtools.TestCase):
    """evaluate_total(), evaluate_retrieve() and evaluate_delete()."""

    def setUp(self):
        super().setUp()
        self.frames = builders.sample_frames('p')

    def total(self, **kwargs):
        kwargs.setdefault('begin', T0)
        kwargs.setdefault('end', T0 + DAY)
        return query.evaluate_total(query.validate_total(**kwargs),
                                    self.frames)

    def test_delete(self):
        """The selected points go, empty frames too, the rest keeps order."""
        deleted, kept = query.evaluate_delete(
            query.validate_delete(begin=T0, end=T0 + 2 * HOUR,
                                  filters={'flavor': 'm1.small'}),
            self.frames)
        self.assertEqual(2, deleted)
        self.assertEqual([(T0, 2), (T0 + HOUR, 1), (T0 + 2 * HOUR, 1)],
                         [(f.start, len(f)) for f in kept])
        deleted, kept = query.evaluate_delete(
            query.validate_delete(end=T0 + HOUR), self.frames)
        self.assertEqual((3, [T0 + HOUR, T0 + 2 * HOUR]),
                         (deleted, [f.start for f in kept]))
        self.assertEqual(6, sum(len(f) for f in self.frames))

    def test_total_groupby(self):
        """Rule 5: the hand-made sums of sample_frames."""
        self.assertEqual(
            [('', D(20), D('0.02')), ('nova', D(15), D('3.01')),
             ('other', D(1), D('0.5'))],
            [(r['az'], r['qty'], r['rate'])
             for r in self.total(groupby=['az'])['results']])
        self.assertEqual(
            [(T0, D(13), D('1.76')), (T0 + HOUR, D(21), D('0.52')),
             (T0 + 2 * HOUR, D(2), D('1.25'))],
            [(r['begin'], r['qty'], r['rate'])
             for r in self.total(groupby=['time'])['results']])

    def test_total_filters(self):
        """Rule 3: filters AND across keys, OR inside lists; no match."""
        self.assertEqual([(D(5), D(3))], [
            (r['qty'], r['rate']) for r in self.total(
                filters={'az': 'nova', 'type': 'cpu'})['results']])
        self.assertEqual([(D(6), D('3.5'))], [
            (r['qty'], r['rate']) for r in self.total(
                filters={'flavor': ['m1.small', 'm1.large']})['results']])
        self.assertEqual({'total': 0, 'results': []},
                         self.total(filters={'flavor': ''}))

    def test_total_custom_fields(self):
        """Rule 5: custom fields replace qty and rate."""
        result = self.total(custom_fields='SUM(qty) AS s, min(price) AS lo, '
                                          'MAX(qty) AS hi, avg(price) AS m, '
                                          'count(qty) AS n')
        self.assertEqual([{
            'begin': T0, 'end': T0 + DAY, 's': D(36), 'lo': D('0.01'),
            'hi': D(20), 'm': D('0.5883333333333333333333333333333333'),
            'n': D(6)}], result['results'])

    def test_groupby_wins_over_metadata(self):
        """Rule 3: a key in both groupby and metadata reads the groupby."""
        point = builders.make_point('p', groupby={'k': 'gb'},
                                    metadata={'k': 'md'})
        q = query.validate_retrieve(begin=T0, end=T0 + DAY,
                                    filters={'k': 'md'})
        self.assertFalse(query.matches(q, T0, 'cpu', point))
        q = query.validate_retrieve(begin=T0, end=T0 + DAY,
                                    filters={'k': 'gb', 'type': 'cpu'})
        self.assertTrue(query.matches(q, T0, 'cpu', point))
        self.assertEqual('gb', query.label('cpu', point, 'k'))
        self.assertEqual('cpu', query.label('cpu', point, 'type'))
        self.assertIsNone(query.label('cpu', point, 'absent'))

    def test_retrieve_order_and_pages(self):
        """Rule 4: order by start then type; pages; frames per period."""
        frames = builders.distinct_frames('p', periods=2, per_type=2,
                                          types=('b', 'a'))
        q = query.validate_retrieve(begin=T0, end=T0 + DAY, offset=3,
                                    limit=3)
        result = query.evaluate_retrieve(q, frames)
        self.assertEqual(8, result['total'])
        self.assertEqual(
            [(T0, 'b', '0-b-1'), (T0 + HOUR, 'a', '1-a-0'),
             (T0 + HOUR, 'a', '1-a-1')],
            [(f.start, t, p.metadata['n']) for f in result['dataframes']
             for t, p in f.iterpoints()])
        self.assertEqual([(T0, T0 + HOUR), (T0 + HOUR, T0 + 2 * HOUR)],
                         [(f.start, f.end) for f in result['dataframes']])


class TypedLabelTest(testtools.TestCase):
    """Groupby/metadata values of other types than str (rule 3)."""

    #: Values whose types differ; several share a string form.
    VALUES = ('3', 3, 3.0, True, 1, 1.0, None, 'None', 'True', 0.0, -0.0,
              '', 10 ** 30, 2.5e-300, False, 'x')

    def test_encode_and_decode_round_trip(self):
        """(kind, text) gives back the value with its type."""
        for value in self.VALUES:
            kind, text = query.encode_label(value)
            self.assertEqual(str(value), text)
            self.assertEqual(text, query.label_text(value))
            back = query.decode_label(kind, text)
            self.assertIs(type(value), type(back))
            self.assertEqual(repr(value), repr(back))
        self.assertEqual('old', query.decode_label(None, 'old'))
        self.assertRaises(ValueError, query.decode_label, 'z', 'x')

    def test_identities_are_distinct(self):
        """Values differing in type (or sign of zero) are distinct."""
        identities = {query.encode_label(v) for v in self.VALUES}
        self.assertEqual(len(self.VALUES), len(identities))

    def test_filter_candidates(self):
        """A filter text names the values whose string form it is."""
        for value in self.VALUES:
            self.assertIn(query.encode_label(value),
                          query.filter_candidates(str(value)))
        self.assertEqual((('s', '3'), ('i', '3')),
                         query.filter_candidates('3'))
        for text in ('03', '3.50', '1e3', 'nan', 'inf', '+3', ' 3', '1_0',
                     'true', '-0'):
            self.assertEqual((('s', text),), query.filter_candidates(text),
                             text)
        for text, kind in (('None', 'n'), ('False', 'b'), ('-0.0', 'f'),
                           ('1e+30', 'f'), ('-12', 'i')):
            self.assertEqual((('s', text), (kind, text)),
                             query.filter_candidates(text))

    def test_sort_key(self):
        """None, bools, numbers by value, then strs; kinds break ties."""
        ordered = sorted(self.VALUES, key=query.label_sort_key)
        self.assertEqual(
            [None, False, True, -0.0, 0.0, 1, 1.0, 3, 3.0, 10 ** 30, '',
             '3', 'None', 'True', 'x'][:3],
            ordered[:3])
        self.assertEqual(['', '3', 'None', 'True', 'x'], ordered[-5:])
        numbers = ordered[3:-5]
        self.assertEqual([2.5e-300, 1, 1.0, 3, 3.0, 10 ** 30],
                         [v for v in numbers if v])
        self.assertEqual(['f', 'f'], [query.encode_label(v)[0]
                                      for v in numbers if not v])

    def test_filters_match_the_string_form(self):
        """'3' matches 3 and '3'; 'None' matches None; lacking never."""
        cases = [('3', 3, True), ('3', '3', True), ('3', 3.0, False),
                 ('3.0', 3.0, True), ('None', None, True),
                 ('True', True, True), ('1', True, False),
                 ('', None, False)]
        for text, value, expected in cases:
            point = builders.make_point('p', groupby={'k': value})
            q = query.validate_retrieve(begin=T0, end=T0 + DAY,
                                        filters={'k': text})
            self.assertEqual(expected, query.matches(q, T0, 'cpu', point),
                             (text, value))
        point = builders.make_point('p')
        q = query.validate_retrieve(begin=T0, end=T0 + DAY,
                                    filters={'k': 'None'})
        self.assertFalse(query.matches(q, T0, 'cpu', point))

    def test_total_groups_by_value_and_type(self):
        """3, 3.0, True and '3' are groups of their own, typed."""
        values = [3, 3.0, True, '3', None, '', 1, 3]
        points = [('cpu', builders.make_point('p', 1, 1,
                                              groupby={'k': v}))
                  for v in values]
        points.append(('cpu', builders.make_point('p', 1, 1)))
        frames = [builders.make_frame(T0, points)]
        q = query.validate_total(begin=T0, end=T0 + DAY, groupby=['k'])
        results = query.evaluate_total(q, frames)['results']
        self.assertEqual(
            [(type(None), None, 1), (bool, True, 1), (int, 1, 1),
             (int, 3, 2), (float, 3.0, 1), (str, '', 2), (str, '3', 1)],
            [(type(r['k']), r['k'], r['qty']) for r in results])

    def test_build_total_merges_by_identity(self):
        """Partials merge only when value and type agree."""
        q = query.validate_total(begin=T0, end=T0 + DAY, groupby=['k'])
        result = query.build_total(q, [
            partial((1,), T0, 1, 1, 1), partial((True,), T0, 1, 2, 2),
            partial((1.0,), T0, 1, 4, 4), partial((1,), T0, 1, 8, 8)])
        self.assertEqual([(bool, D(2)), (int, D(9)), (float, D(4))],
                         [(type(r['k']), r['qty'])
                          for r in result['results']])


class MoneyTest(testtools.TestCase):
    """money: rounding, the range, and the integer encoding."""

    def test_check_accepts_the_range(self):
        """Rule 8: values below 10**20 pass, as they are when not rounded."""
        for value in builders.MONEY_EXTREMES + (
                D('1.000000000000000'), builders.MONEY_HUGE,
                builders.MONEY_HUGE.copy_negate()):
            self.assertEqual(value, money.check(value, 'qty'))
        self.assertEqual(D(7), money.check(7, 'qty'))
        self.assertEqual(D('1.5'), money.check(1.5, 'qty'))
        self.assertEqual(D('1E+19'), money.check(1e19, 'qty'))

    def test_check_rounds_half_even(self):
        """Rule 8: more than 12 fractional digits are rounded half-even."""
        for pushed, stored in builders.MONEY_ROUNDED:
            checked = money.check(pushed, 'qty')
            self.assertEqual(stored, checked, pushed)
            self.assertGreaterEqual(checked.as_tuple().exponent, -12)

    def test_check_takes_floats_as_their_str(self):
        """Rule 8: a float is the shortest decimal that reads back as it."""
        self.assertEqual(D('0.3'), money.check(0.30000000000000004, 'qty'))
        self.assertEqual(D('0.1'), money.check(0.1, 'qty'))
        self.assertEqual(D('0.152'), money.check(D(0.152), 'qty'))
        self.assertEqual(D('1E-12'), money.check(1e-12, 'qty'))
        self.assertEqual(D(0), money.check(4e-13, 'qty'))

    def test_check_rejects_outside(self):
        """Rule 8: out-of-range, non-finite or non-numbers fail."""
        for value in builders.MONEY_OUT_OF_RANGE + \
                builders.MONEY_NOT_FINITE + (True, '1', None, 1j):
            exc = self.assertRaises(exceptions.InvalidQuery, money.check,
                                    value, 'price')
            self.assertEqual('price', exc.argument)

    def test_check_bound(self):
        """Rule 8: a backend's bound is checked after rounding."""
        for value in builders.money_out_of_range(10 ** 15):
            exc = self.assertRaises(exceptions.InvalidQuery, money.check,
                                    value, 'qty', 10 ** 15)
            self.assertIn('10**15', str(exc))
            self.assertRaises(exceptions.InvalidQuery, money.point_units,
                              D(1), value, 10 ** 15)
            self.assertRaises(exceptions.InvalidQuery, money.units,
                              value, 'qty', 10 ** 15)
        self.assertEqual(builders.MONEY_MAX,
                         money.check(builders.MONEY_MAX, 'qty', 10 ** 15))
        for value in builders.money_out_of_range(10 ** 20):
            self.assertRaises(exceptions.InvalidQuery, money.check,
                              value, 'qty')

    def test_units_fast_and_slow_paths_agree(self):
        """Rule 8: point_units() and units() store what check() keeps."""
        values = ([v for v in builders.MONEY_EXTREMES]
                  + [p for p, _ in builders.MONEY_ROUNDED]
                  + [builders.MONEY_HUGE, 0, -3, 2.5, 0.30000000000000004,
                     D(0.152), D('-0'), D('1E+3')])
        for value in values:
            expected = int(money.check(value, 'qty').scaleb(
                12, context=money.CONTEXT))
            self.assertEqual(expected, money.units(value, 'qty'), value)
            self.assertEqual(expected, money.to_units(value), value)
            # NOTE: copy_negate() is exact; unary minus rounds to 28
            # digits in the default context.
            self.assertEqual((expected, -expected),
                             money.point_units(value, money.check(
                                 value, 'qty').copy_negate()), value)

    def test_split_is_floor_encoded(self):
        """Rule 8: hi is the floor and 0 <= lo < 10**12."""
        self.assertEqual((-2, 500000000000), money.split(D('-1.5')))
        self.assertEqual((1, 500000000000), money.split(D('1.5')))
        self.assertEqual((-1, 999999999999),
                         money.split(-builders.MONEY_TINY))
        self.assertEqual((999999999999999, 999999999999),
                         money.split(builders.MONEY_MAX))
        self.assertEqual((-10 ** 15, 1), money.split(-builders.MONEY_MAX))
        self.assertEqual((0, 0), money.split(D('-0')))
        self.assertEqual((10 ** 20 - 1, 999999999999),
                         money.split(builders.MONEY_HUGE))
        self.assertEqual((0, 300000000000),
                         money.split(D('0.30000000000000004')))

    def test_round_trips(self):
        """Rule 8: join(split(x)) == x, and encode == check + split."""
        for value in builders.MONEY_EXTREMES:
            hi, lo = money.split(value)
            self.assertEqual(value, money.join(hi, lo))
            self.assertEqual((hi, lo), money.encode(value, 'qty'))
            self.assertLess(abs(hi), 10 ** 15 + 1)
            self.assertTrue(0 <= lo < 10 ** 12)

    def test_encode_point(self):
        """Rule 8: encode_point() encodes both values like encode()."""
        for value in builders.MONEY_EXTREMES:
            self.assertEqual(
                money.encode(value, 'qty') + money.encode(-value, 'price'),
                money.encode_point(value, -value))

    def test_encode_point_names_the_bad_field(self):
        """Rule 8: encode_point() says whether qty or price is refused."""
        for bad in builders.MONEY_OUT_OF_RANGE + (D('NaN'),):
            exc = self.assertRaises(exceptions.InvalidQuery,
                                    money.encode_point, D(1), bad)
            self.assertEqual('price', exc.argument)
            exc = self.assertRaises(exceptions.InvalidQuery,
                                    money.encode_point, bad, D(1))
            self.assertEqual('qty', exc.argument)

    def test_encode_rejects_like_check(self):
        """Rule 8: encode() rejects every value check() rejects."""
        for value in builders.MONEY_OUT_OF_RANGE + (D('NaN'), D('-Inf')):
            exc = self.assertRaises(exceptions.InvalidQuery, money.encode,
                                    value, 'qty')
            self.assertEqual('qty', exc.argument)

    def test_from_units_is_join_of_split(self):
        """Rule 8: from_units() gives join()'s Decimal, digit for digit."""
        units = [0, 1, -1, 10 ** 12, -10 ** 12, 10 ** 13 + 10, -5 * 10 ** 11,
                 10 ** 32 - 1, -(10 ** 32) + 1, 200 * 10 ** 30 + 201,
                 10 ** 51 + 3]
        rng = random.Random(8)
        units += [rng.randrange(-10 ** 32, 10 ** 32)
                  * rng.choice((1, 10, 10 ** 6, 10 ** 11)) for _ in range(500)]
        for value in units:
            want = money.join(*divmod(value, money.SCALE))
            got = money.from_units(value)
            self.assertEqual(str(want), str(got), value)
            self.assertEqual(want.as_tuple(), got.as_tuple(), value)

    def test_join_of_sums_is_exact(self):
        """Rule 8: summed pairs decode exactly beyond 28 digits."""
        pairs = ([money.split(builders.MONEY_MAX)] * 200
                 + [money.split(builders.MONEY_TINY)] * 201)
        total = money.join(sum(p[0] for p in pairs), sum(p[1] for p in pairs))
        self.assertEqual(D('200000000000000000.000000000001'), total)
        self.assertEqual('200000000000000000.000000000001', str(total))

    def test_canonical_and_average(self):
        """Rule 8: canonical() drops trailing zeros; average() rounds."""
        self.assertEqual('1.5', str(money.canonical(D('1.50'))))
        self.assertEqual('2', str(money.canonical(D('2.000'))))
        self.assertEqual('100', str(money.canonical(D('1E+2'))))
        self.assertEqual(D('0.3333333333333333333333333333333333'),
                         money.average(D(1), 3))
        self.assertEqual(D('2.5'), money.average(D(5), 2))

    def test_add_traps_rounding(self):
        """Rule 8: add() is exact or raises, never rounds."""
        self.assertEqual(D('1000000000000000'),
                         money.add(builders.MONEY_MAX, builders.MONEY_TINY))
        self.assertRaises(decimal.Inexact, money.add, D('1E+80'),
                          builders.MONEY_TINY)


class EdgesOfRangeTest(testtools.TestCase):
    """Inputs at the edges of the datetime and integer ranges.

    Found by the SQLite fuzz test: each is refused with InvalidQuery or
    answered, never a raw OverflowError.
    """

    LAST = datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)

    def test_bound_out_of_range_in_utc(self):
        """An aware bound that leaves years 1-9999 in UTC is invalid."""
        for value in ('0001-01-01T00:00:00+01:00', datetime.datetime(
                9999, 12, 31, 23, tzinfo=datetime.timezone(
                    -datetime.timedelta(hours=1)))):
            error = self.assertRaises(exceptions.InvalidQuery,
                                      query.validate_delete, begin=value)
            self.assertEqual('begin', error.argument)

    def test_dataframe_out_of_range_in_utc(self):
        """DataFrame raises ValueError (its contract), not OverflowError."""
        start = datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(
            datetime.timedelta(hours=1)))
        self.assertRaises(ValueError, dataframe.DataFrame, start,
                          start + datetime.timedelta(hours=2))

    def test_paging_beyond_int64(self):
        """offset and limit must fit a database's 64-bit integer."""
        for name in ('offset', 'limit'):
            error = self.assertRaises(
                exceptions.InvalidQuery, query.validate_retrieve,
                **{name: 2 ** 63})
            self.assertEqual(name, error.argument)
        query.validate_retrieve(offset=2 ** 63 - 1, limit=2 ** 63 - 1)

    def test_surrogates_in_query_text(self):
        """Text no database stores is refused in every query argument."""
        for kwargs, argument in (
                ({'filters': {'flavor': '\ud800'}}, 'filters'),
                ({'filters': {'\ud800': 'x'}}, 'filters'),
                ({'metric_types': ['cpu', '\udfff']}, 'metric_types'),
                ({'groupby': ['\ud800']}, 'groupby'),
                ({'filters': {'flavor': 'a\x00'}}, 'filters')):
            error = self.assertRaises(exceptions.InvalidQuery,
                                      query.validate_total, **kwargs)
            self.assertEqual(argument, error.argument)

    def test_calendar_values_of_year_9999(self):
        """The calendar values of the last representable day."""
        start = datetime.datetime(9999, 12, 31, 22,
                                  tzinfo=datetime.timezone.utc)
        self.assertEqual(['365', '52', '12', '9999'],
                         [query.calendar_value(entry, start) for entry in
                          ('time-d', 'time-w', 'time-m', 'time-y')])

    def test_money_with_a_huge_exponent(self):
        """A finite Decimal past the decimal context is out of range."""
        error = self.assertRaises(exceptions.InvalidQuery, money.check,
                                  decimal.Decimal('1E+1000000'), 'qty')
        self.assertEqual('qty', error.argument)
