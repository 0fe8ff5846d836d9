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
"""Slot reservations of the InfluxDB backend (no server)."""

import testtools

from cloudkitty.storage.v2.influxdb import encoding
from cloudkitty.storage.v2.influxdb import slots

START = 1700000000 * 10 ** 9


class ReservationTest(testtools.TestCase):
    """Each reservation is a point of its own, at its last slot."""

    def test_line_at_the_last_slot_taken(self):
        """Slot used - 1 gives the time, and ck_n past 1,000 slots."""
        self.assertEqual('ck_frames,ck_scope=.s used=1i %d' % START,
                         slots.reservation_line('.s', START, 1))
        self.assertEqual('ck_frames,ck_scope=.s used=1000i %d'
                         % (START + 999),
                         slots.reservation_line('.s', START, 1000))
        self.assertEqual('ck_frames,ck_scope=.s,ck_n=2 used=2001i %d'
                         % START, slots.reservation_line('.s', START, 2001))

    def test_taken_is_the_greatest_of_a_frame_start(self):
        """Reservations of a frame start and scope: the greatest wins.

        An earlier version's point (at the frame start, overwritten) is
        one of them; the next frame start (a microsecond later) and other
        scopes are apart.
        """
        rows = [{'time': START, 'ck_scope': '.a', 'used': 7},
                {'time': START + 9, 'ck_scope': '.a', 'used': 10},
                {'time': START + 3, 'ck_scope': '.a', 'used': 4},
                {'time': START, 'ck_scope': '.b', 'used': 2},
                {'time': START + 1000, 'ck_scope': '.a', 'used': 1}]
        self.assertEqual({('.a', START): 10, ('.b', START): 2,
                          ('.a', START + 1000): 1}, slots._taken(rows))


class OpenDaysTest(testtools.TestCase):
    """A store writes one point alone into each day it did not write into."""

    class Client:
        def __init__(self):
            self.requests = []

        def write(self, lines):
            self.requests.append(lines)

    def test_days_of_the_moments_only_once(self):
        """The days of the moments, not those between them; once each."""
        day = 86400 * 10 ** 9
        first = START - START % day
        far = encoding.MAX_NS - encoding.SLOTS
        client = self.Client()
        books = slots.Bookkeeper(client, None)
        books.open_days([START, START + 5, encoding.MIN_NS, far])
        self.assertEqual([['ck_open n=1i %d' % moment for moment in sorted(
            [first, encoding.MIN_NS, far - far % day])]], client.requests)
        books.open_days([START + day, START + 7])
        self.assertEqual(['ck_open n=1i %d' % (first + day)],
                         client.requests[-1])
        books.open_days([START, START + day])
        self.assertEqual(2, len(client.requests))
