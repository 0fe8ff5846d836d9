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
"""Unit tests of the engine-free helpers the backends share.

:mod:`cloudkitty.storage.v2.timeutils` (epoch units, UTC days) and the
window and filter rules of :mod:`cloudkitty.storage.v2.query`.
"""

import datetime

import testtools

from cloudkitty.storage.v2 import query
from cloudkitty.storage.v2 import timeutils

UTC = datetime.timezone.utc
DAY = timeutils.DAY_US
HOUR = 3600 * 10 ** 6


def utc(*args):
    """An aware UTC datetime."""
    return datetime.datetime(*args, tzinfo=UTC)


class UnitsTest(testtools.TestCase):
    """Epoch units."""

    def test_day_lengths(self):
        """A day is 86,400 s, in µs and in ns."""
        self.assertEqual(86400 * 10 ** 6, timeutils.DAY_US)
        self.assertEqual(86400 * 10 ** 9, timeutils.DAY_NS)

    def test_to_ns(self):
        """to_ns() counts ns from the epoch; None stays None."""
        self.assertEqual(0, timeutils.to_ns(utc(1970, 1, 1)))
        self.assertEqual(86400 * 10 ** 9 + 1000,
                         timeutils.to_ns(utc(1970, 1, 2, 0, 0, 0, 1)))
        self.assertEqual(-10 ** 9, timeutils.to_ns(utc(1969, 12, 31, 23,
                                                       59, 59)))
        self.assertIsNone(timeutils.to_ns(None))


class DaysTest(testtools.TestCase):
    """UTC days of integer times, in either unit."""

    def test_day_of(self):
        """day_of() floors to midnight UTC, before the epoch too."""
        self.assertEqual(0, timeutils.day_of(0))
        self.assertEqual(0, timeutils.day_of(DAY - 1))
        self.assertEqual(DAY, timeutils.day_of(DAY))
        self.assertEqual(-DAY, timeutils.day_of(-1))
        ns_day = timeutils.DAY_NS
        self.assertEqual(ns_day, timeutils.day_of(ns_day + 5, ns_day))

    def test_whole_days(self):
        """whole_days() gives the days a window covers from end to end."""
        self.assertEqual((DAY, 3 * DAY),
                         timeutils.whole_days(HOUR, 3 * DAY + HOUR))
        self.assertEqual((0, DAY), timeutils.whole_days(0, DAY))
        self.assertEqual((-DAY, 0), timeutils.whole_days(-DAY, 1))
        self.assertIsNone(timeutils.whole_days(HOUR, DAY + HOUR))
        self.assertIsNone(timeutils.whole_days(0, DAY - 1))
        self.assertIsNone(timeutils.whole_days(DAY, 0))

    def test_whole_days_of_datetimes(self):
        """whole_days_of() does the same on aware datetimes."""
        self.assertEqual((utc(2026, 1, 2), utc(2026, 1, 4)),
                         timeutils.whole_days_of(utc(2026, 1, 1, 6),
                                                 utc(2026, 1, 4, 6)))
        self.assertEqual((utc(2026, 1, 1), utc(2026, 1, 2)),
                         timeutils.whole_days_of(utc(2026, 1, 1),
                                                 utc(2026, 1, 2)))
        self.assertIsNone(timeutils.whole_days_of(utc(2026, 1, 1, 6),
                                                  utc(2026, 1, 2, 5)))

    def test_last_day_of_the_calendar(self):
        """The last representable day neither overflows nor is whole."""
        end = datetime.datetime.max.replace(tzinfo=UTC)
        self.assertIsNone(timeutils.whole_days_of(utc(9999, 12, 31, 1),
                                                  end))
        self.assertEqual((utc(9999, 12, 30), utc(9999, 12, 31)),
                         timeutils.whole_days_of(utc(9999, 12, 30), end))


class WindowAndFiltersTest(testtools.TestCase):
    """The window and filter rules every backend applies."""

    def test_in_window(self):
        """[begin, end) on the frame start; a missing bound is open."""
        window = query.Query(begin=utc(2026, 1, 1), end=utc(2026, 1, 2))
        self.assertTrue(query.in_window(window, utc(2026, 1, 1)))
        self.assertTrue(query.in_window(window, utc(2026, 1, 1, 23)))
        self.assertFalse(query.in_window(window, utc(2026, 1, 2)))
        self.assertFalse(query.in_window(window, utc(2025, 12, 31, 23)))
        self.assertTrue(query.in_window(query.Query(), utc(1, 1, 1)))

    def test_selected(self):
        """AND across keys, OR inside a key's values; missing fails."""
        selectors = (('project_id', ('a', 'b')), ('flavor', ('m1',)))
        labels = {'project_id': 'b', 'flavor': 'm1'}
        self.assertTrue(query.selected(selectors, labels.get))
        self.assertFalse(query.selected(selectors, {'project_id': 'b',
                                                    'flavor': 'm2'}.get))
        self.assertFalse(query.selected(selectors, {'project_id': 'a'}.get))
        self.assertTrue(query.selected((), {}.get))
