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
"""Which Gnocchi requests the backend repeats, and how often (no server).

The requests are plain functions that fail as gnocchiclient does; nothing
is sent.
"""

import fixtures
from oslo_config import cfg
import testtools

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.gnocchi import client as client_mod
from cloudkitty.storage.v2.gnocchi import options


# NOTE: gnocchiclient is imported by the first Client, not with the module:
# testing client_mod.gnocchi_client here would skip every test.
HAVE_CLIENT = client_mod._import_library()


class Failing:
    """A request that fails with ``errors`` in turn, then answers 'ok'."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return 'ok'


@testtools.skipUnless(HAVE_CLIENT, 'no gnocchiclient')
class ReadTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        conf = cfg.ConfigOpts()
        options.register_opts(conf)
        # NOTE: nothing listens there; no request is sent.
        conf.set_override('endpoint', 'http://127.0.0.1:9',
                          group=options.GROUP)
        self.client = client_mod.Client(conf)
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.gnocchi.client.RETRY_DELAY', 0.001))
        self.logs = self.useFixture(fixtures.FakeLogger())

    def server_error(self):
        return client_mod.gnocchi_exc.ClientException(
            500, 'Internal Server Error')

    def test_server_errors_are_repeated(self):
        """A read answered 500 twice is sent a third time, and logged."""
        request = Failing(self.server_error(), self.server_error())
        self.assertEqual('ok', self.client.read(request))
        self.assertEqual(3, request.calls)
        self.assertEqual(2, self.logs.output.count('answered HTTP 500'))

    def test_attempts_are_bounded(self):
        """The last server error is raised, its cause kept."""
        request = Failing(*[self.server_error()] * client_mod.READ_ATTEMPTS)
        error = self.assertRaises(exceptions.StorageError,
                                  self.client.read, request)
        self.assertEqual(client_mod.READ_ATTEMPTS, request.calls)
        self.assertEqual(500, error.__cause__.code)

    def test_client_errors_are_not_repeated(self):
        """A 4xx answer is raised at once: sending it again would not help."""
        request = Failing(client_mod.gnocchi_exc.ClientException(
            422, 'Unprocessable'))
        self.assertRaises(exceptions.StorageError, self.client.read,
                          request)
        self.assertEqual(1, request.calls)
        not_found = Failing(client_mod.gnocchi_exc.NotFound(404))
        self.assertRaises(client_mod.gnocchi_exc.NotFound, self.client.read,
                          not_found)
        self.assertEqual(1, not_found.calls)

    def test_unreachable_server_is_not_repeated(self):
        request = Failing(client_mod.gnocchi_exc.ConnectionFailure(
            message='refused'))
        self.assertRaises(exceptions.BackendUnavailable, self.client.read,
                          request)
        self.assertEqual(1, request.calls)
