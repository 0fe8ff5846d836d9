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
"""Tests of the benchmark's answer checks, without a backend."""

import decimal

import testtools

from cloudkitty.cli import bench

D = decimal.Decimal


def answer(rows, total=None):
    return {'total': len(rows) if total is None else total,
            'results': rows}


class CheckTotalTest(testtools.TestCase):
    """check_total() accepts exact answers only."""

    expected = {('p1',): (D('1.5'), D('0.0125')),
                ('p2',): (D('2'), D('0.5'))}

    def rows(self, **changes):
        rows = [{'project_id': 'p1', 'qty': D('1.500'), 'rate': D('0.0125')},
                {'project_id': 'p2', 'qty': D('2'), 'rate': D('0.50')}]
        rows[0].update(changes)
        return rows

    def check(self, result, exact=True):
        bench.check_total('t', result, ('project_id',), self.expected, exact)

    def test_exact_answer_passes(self):
        self.check(answer(self.rows()))

    def test_wrong_sum_fails(self):
        exc = self.assertRaises(bench.CheckFailed, self.check,
                                answer(self.rows(rate=D('0.0126'))))
        self.assertIn('1 wrong', str(exc))
        self.assertIn("('p1',)", str(exc))

    def test_float_fails_when_exact(self):
        self.assertRaises(bench.CheckFailed, self.check,
                          answer(self.rows(qty=1.5)))

    def test_float_passes_with_tolerance(self):
        self.check(answer(self.rows(qty=1.5000000000001)), exact=False)

    def test_missing_group_fails(self):
        exc = self.assertRaises(bench.CheckFailed, self.check,
                                answer(self.rows()[:1]))
        self.assertIn('1 missing', str(exc))

    def test_unexpected_group_fails(self):
        rows = self.rows() + [{'project_id': 'p3', 'qty': D(1),
                               'rate': D(1)}]
        exc = self.assertRaises(bench.CheckFailed, self.check, answer(rows))
        self.assertIn('1 unexpected', str(exc))

    def test_duplicate_group_fails(self):
        rows = self.rows() + self.rows()[:1]
        self.assertRaises(bench.CheckFailed, self.check, answer(rows))

    def test_wrong_total_count_fails(self):
        self.assertRaises(bench.CheckFailed, self.check,
                          answer(self.rows(), total=3))

    def test_empty_without_groupby(self):
        bench.check_total('t', answer([]), (), {})
        bench.check_total('t', answer([{'qty': D(0), 'rate': D(0)}]), (), {})
        self.assertRaises(
            bench.CheckFailed, bench.check_total, 't',
            answer([{'qty': D(1), 'rate': D(0)}]), (), {})


class PeakRssTest(testtools.TestCase):
    """peak_rss_mib() reports a plausible size."""

    def test_positive(self):
        self.assertGreater(bench.peak_rss_mib(), 1)
