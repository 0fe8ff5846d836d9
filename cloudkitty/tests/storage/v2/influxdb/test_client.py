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
"""Unit tests of :meth:`.client.Client.write_all`, without a server.

The requests themselves are replaced (``_send``); what is tested is the
order: the caller's ``meanwhile`` work runs while they travel, and
write_all returns, or raises, only once every one has ended.
"""

import threading
import types

import testtools

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.influxdb import client

WAIT_S = 30


def _client():
    opts = types.SimpleNamespace(
        host='127.0.0.1', port=8086, use_ssl=False, database='ck',
        retention_policy=None, batch_size=5000, write_workers=2,
        cafile=None, insecure=False, username=None, password=None,
        timeout=5, pool_size=2, compressed_answers=False)
    return client.Client(opts)


class WriteAllTest(testtools.TestCase):
    """Requests travel while the caller's other work runs."""

    def setUp(self):
        super().setUp()
        self.client = _client()
        self.addCleanup(self.client.close)
        self.sent = []
        self.released = threading.Event()

    def _send(self, lines):
        # NOTE: a request ends only once meanwhile() let it.
        if not self.released.wait(WAIT_S):
            raise AssertionError('meanwhile() did not run meanwhile')
        self.sent.append(lines)

    def test_meanwhile_runs_while_the_requests_travel(self):
        self.client._send = self._send
        self.client.write_all([['a 1'], ['b 1']],
                              meanwhile=self.released.set)
        self.assertEqual([['a 1'], ['b 1']], sorted(self.sent))

    def test_one_request_travels_meanwhile_too(self):
        self.client._send = self._send
        self.client.write_all([['a 1'], []], meanwhile=self.released.set)
        self.assertEqual([['a 1']], self.sent)

    def test_requests_end_before_the_error_of_meanwhile(self):
        self.client._send = self._send

        def fails():
            self.released.set()
            raise ValueError('memory')

        self.assertRaises(ValueError, self.client.write_all,
                          [['a 1'], ['b 1']], meanwhile=fails)
        self.assertEqual(2, len(self.sent))

    def test_refused_request_raises_after_meanwhile(self):
        ran = []

        def refused(lines):
            raise exceptions.WriteRefused('influxdb', 'http://127.0.0.1:8086',
                                          'bad line')

        self.client._send = refused
        self.assertRaises(exceptions.WriteRefused, self.client.write_all,
                          [['a 1']], meanwhile=lambda: ran.append(1))
        self.assertEqual([1], ran)
