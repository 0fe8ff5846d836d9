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
"""Money: exact Decimal qty and price, rounding, ranges, sums."""

from cloudkitty.storage.v2 import money
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests.storage.v2.suite.common import D
from cloudkitty.tests.storage.v2.suite.common import DAY
from cloudkitty.tests.storage.v2.suite.common import expect
from cloudkitty.tests.storage.v2.suite.common import HOUR
from cloudkitty.tests.storage.v2.suite.common import requires
from cloudkitty.tests.storage.v2.suite.common import requires_magnitude
from cloudkitty.tests.storage.v2.suite.common import rows
from cloudkitty.tests.storage.v2.suite.common import T0


class MoneyTests:
    """Money (rule 8): 12 fractional digits, ranges, exact sums.

    Values are rounded half-even to 12 fractional digits; sums are
    exact (or within ``INEXACT_TOLERANCE`` without ``exact_decimal``);
    values out of range or not finite are refused before anything
    is written.

    Data: each test pushes its own points under fresh project ids and reads
    back only those, but ``test_money_huge_sums_exact`` deletes by window
    alone, which reaches every scope of the store: parallel workers need a
    database each. ``cleanup_backend()`` runs after every test.
    """

    @requires('exact_decimal')
    def test_money_extremes_round_trip(self):
        """Rule 8: qty and price at the edges of the range round-trip."""
        points = [('cpu', builders.make_point(self.project_id, value, -value,
                                              metadata={'i': str(i)}))
                  for i, value in enumerate(builders.MONEY_EXTREMES)]
        frames = [builders.make_frame(T0, points)]
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())
        self.assertOracle(frames, begin=T0, end=T0 + HOUR)
        self.assertOracle(frames, begin=T0, end=T0 + HOUR, groupby=['i'])

    def test_money_sum_beyond_28_digits(self):
        """Rule 8: a sum needing 30 significant digits is exact."""
        self.push(builders.money_frames(self.project_id))
        # NOTE: computed in integers of 1E-12: 200 * MAX + 201 * TINY.
        max_units = 10 ** 27 - 1
        qty = D(200 * max_units + 201).scaleb(-12, context=money.CONTEXT)
        rate = D(-200 * max_units + 201).scaleb(-12, context=money.CONTEXT)
        self.assertEqual(D('200000000000000000.000000000001'), qty)
        result = self.totals(begin=T0, end=T0 + 4 * HOUR)['results']
        self.assertEqual(1, len(result))
        self.assertMoneyEqual(qty, result[0]['qty'])
        self.assertMoneyEqual(rate, result[0]['rate'])

    def test_money_sum_beyond_28_digits_over_days(self):
        """Rule 8: 30-digit sums stay exact over whole days and edges."""
        # NOTE: one set of frames inside a whole day, one straddling the
        # window's start and one its end, so that backends which keep
        # per-day sums read each of them.
        frames = (builders.money_frames(self.project_id, start=T0 + DAY)
                  + builders.money_frames(self.project_id,
                                          start=T0 + DAY - 2 * HOUR)
                  + builders.money_frames(self.project_id,
                                          start=T0 + 3 * DAY - 2 * HOUR))
        self.push(frames)
        for begin, end in ((T0, T0 + 4 * DAY), (T0 + DAY - HOUR,
                                                T0 + 3 * DAY - HOUR)):
            self.assertOracle(frames, begin=begin, end=end)
            self.assertOracle(frames, begin=begin, end=end,
                              groupby=['time-d'])
        max_units = 10 ** 27 - 1
        qty = D(600 * max_units + 603).scaleb(-12, context=money.CONTEXT)
        result = self.totals(begin=T0, end=T0 + 4 * DAY)['results']
        self.assertMoneyEqual(qty, result[0]['qty'])

    def test_money_sum_overflowing_64_bits(self):
        """Rule 8: sums whose integer parts pass 2**63 stay exact."""
        self.push(builders.money_frames(self.project_id, count=10000))
        # NOTE: 10000 * (10**15 - 1) > 2**63 - 1: a 64-bit sum of integer
        # parts overflows, in both signs.
        max_units = 10 ** 27 - 1
        qty = D(10000 * max_units + 10001).scaleb(-12, context=money.CONTEXT)
        rate = D(-10000 * max_units + 10001).scaleb(-12,
                                                    context=money.CONTEXT)
        self.assertEqual(D('10000000000000000000.000000000001'), qty)
        result = self.totals(begin=T0, end=T0 + 4 * HOUR,
                             groupby=['type'])['results']
        self.assertEqual(1, len(result))
        self.assertMoneyEqual(qty, result[0]['qty'])
        self.assertMoneyEqual(rate, result[0]['rate'])

    def test_money_tiny_values_sum(self):
        """Rule 8: many 1E-12 prices sum exactly, beside large ones."""
        points = [('cpu', builders.make_point(
            self.project_id, builders.MONEY_TINY, builders.MONEY_TINY))] * 99
        points.append(('cpu', builders.make_point(
            self.project_id, D('123456789012345'), -builders.MONEY_TINY)))
        self.push([builders.make_frame(T0, points)])
        total = self.totals(begin=T0, end=T0 + HOUR)['results']
        self.assertMoneyEqual(D('123456789012345.000000000099'),
                              total[0]['qty'])
        self.assertMoneyEqual(D('0.000000000098'), total[0]['rate'])

    @requires('exact_decimal')
    def test_money_signs_cancel(self):
        """Rule 8: negative and positive values cancel to an exact zero."""
        values = [D('0.1'), D('0.2'), D('-0.3'), builders.MONEY_MAX,
                  -builders.MONEY_MAX, D('-0.000000000007'),
                  D('0.000000000007')]
        points = [('cpu', builders.make_point(self.project_id, v, v))
                  for v in values]
        self.push([builders.make_frame(T0, points)])
        total = self.totals(begin=T0, end=T0 + HOUR)['results']
        self.assertMoneyEqual(D(0), total[0]['qty'])
        self.assertMoneyEqual(D(0), total[0]['rate'])

    def test_money_rounded_half_even(self):
        """Rule 8: more than 12 fractional digits are rounded half-even."""
        points = [('cpu', builders.make_point(
            self.project_id, pushed, pushed.copy_negate(),
            metadata={'i': str(i)}))
            for i, (pushed, _) in enumerate(builders.MONEY_ROUNDED)]
        frames = [builders.make_frame(T0, points)]
        self.push(frames)
        stored = builders.as_stored(frames)
        self.assertEqual(
            [stored_value for _, stored_value in builders.MONEY_ROUNDED],
            [point.qty for _, point in stored[0].iterpoints()])
        self.assertEqual(sorted(rows(stored)), self.snapshot())
        # NOTE: sums are exact over the stored values, not the pushed ones.
        qty = D(0)
        for _, stored_value in builders.MONEY_ROUNDED:
            qty = money.add(qty, stored_value)
        self.assertEqual(D('-5.794913578026'), qty)
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + HOUR, qty, -qty)]},
            self.totals(begin=T0, end=T0 + HOUR))
        self.assertOracle(stored, begin=T0, end=T0 + HOUR, groupby=['i'])

    def test_money_floats_and_decimal_floats(self):
        """Rule 8: floats and Decimal(float) prices are kept, rounded."""
        # NOTE: a Prometheus qty, a price computed as Decimal(float), and
        # prices set after the point was built (not converted at all).
        points = [
            builders.make_point(self.project_id, 0.30000000000000004,
                                D(0.152), metadata={'i': '0'}),
            builders.forge(builders.make_point(
                self.project_id, 2, 1, metadata={'i': '1'}), price=0.1),
            builders.forge(builders.make_point(
                self.project_id, 3, 1, metadata={'i': '2'}),
                qty=D(0.7), price=1.5)]
        self.push([builders.make_frame(T0, [('cpu', p) for p in points])])
        self.assertEqual(
            [(D('0.3'), D('0.152')), (D('0.7'), D('1.5')), (D(2), D('0.1'))],
            [(row[4], row[5]) for row in self.snapshot()])
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + HOUR, 3, D('1.752'))]},
            self.totals(begin=T0, end=T0 + HOUR))

    @requires('exact_decimal')
    def test_money_at_the_backend_bound(self):
        """Rule 8: the largest values below max_magnitude round-trip."""
        top = money.CONTEXT.subtract(D(self.storage.features.max_magnitude),
                                     builders.MONEY_TINY)
        frames = [builders.make_frame(T0, [
            ('cpu', builders.make_point(self.project_id, top,
                                        top.copy_negate())),
            ('cpu', builders.make_point(self.project_id, top,
                                        builders.MONEY_TINY))])]
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + HOUR, money.add(top, top), money.add(
                top.copy_negate(), builders.MONEY_TINY))]},
            self.totals(begin=T0, end=T0 + HOUR))

    @requires_magnitude(20)
    def test_money_huge_sums_exact(self):
        """Rule 8: values near 10**20 sum exactly, over days and edges."""
        huge = builders.MONEY_HUGE
        # NOTE: as in test_money_sum_beyond_28_digits_over_days: frames
        # inside a whole day, straddling the window's start and its end.
        frames = []
        for start in (T0 + DAY, T0 + DAY - 2 * HOUR, T0 + 3 * DAY - 2 * HOUR):
            frames += builders.money_frames(self.project_id, start=start,
                                            count=100, value=huge)
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())
        for begin, end in ((T0, T0 + 4 * DAY), (T0 + DAY - HOUR,
                                                T0 + 3 * DAY - HOUR)):
            self.assertOracle(frames, begin=begin, end=end)
            self.assertOracle(frames, begin=begin, end=end,
                              groupby=['time-d'])
        # NOTE: 300 * (10**20 - 10**-12) + 303 * 10**-12, in units.
        units = 300 * (10 ** 32 - 1) + 303
        result = self.totals(begin=T0, end=T0 + 4 * DAY)['results']
        self.assertEqual(
            D('30000000000000000000000.000000000003'),
            money.from_units(units))
        self.assertMoneyEqual(money.from_units(units), result[0]['qty'])
        self.assertMoneyEqual(money.from_units(-300 * (10 ** 32 - 1) + 303),
                              result[0]['rate'])
        if self.storage.features.custom_fields:
            self.assertOracle(
                frames, begin=T0, end=T0 + 4 * DAY, groupby=['time-d'],
                custom_fields='min(qty) AS a, max(qty) AS b, '
                              'min(price) AS c, max(price) AS d, '
                              'sum(price) AS e, avg(qty) AS f')
        self.delete(begin=T0 + DAY - HOUR, end=T0 + 2 * DAY)
        kept = [f for f in frames
                if not T0 + DAY - HOUR <= f.start < T0 + 2 * DAY]
        self.assertOracle(kept, begin=T0, end=T0 + 4 * DAY,
                          groupby=['time-d'])

    def test_money_not_finite_writes_nothing(self):
        """Rule 8: NaN and infinities are refused, nothing is written."""
        self.push(builders.sample_frames(self.project_id, T0 + DAY))
        good = builders.make_point(self.project_id, 1, 1)
        for value in builders.MONEY_NOT_FINITE:
            for field in ('qty', 'price'):
                bad = builders.forge(good, **{field: value})
                frames = [builders.make_frame(T0 - DAY, [('cpu', good)]),
                          builders.make_frame(T0, [('cpu', good),
                                                   ('cpu', bad)])]
                self.assertInvalid(field, self.storage.push, frames,
                                   scope_id=self.scope_id)

    def test_push_money_out_of_range_writes_nothing(self):
        """Rule 8: a frame whose 2nd point is out of range is not written."""
        self.push(builders.sample_frames(self.project_id, T0 + DAY))
        good = builders.make_point(self.project_id, 1, 1)
        for value in builders.money_out_of_range(
                self.storage.features.max_magnitude):
            for field, bad in (
                    ('price', builders.make_point(self.project_id, 1, value)),
                    ('qty', builders.make_point(self.project_id, value, 1))):
                frames = [builders.make_frame(T0 - DAY, [('cpu', good)]),
                          builders.make_frame(T0, [('cpu', good),
                                                   ('cpu', bad)])]
                self.assertInvalid(field, self.storage.push, frames,
                                   scope_id=self.scope_id)
