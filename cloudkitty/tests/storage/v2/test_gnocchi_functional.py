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
"""The conformance suite on the Gnocchi backend with a real Gnocchi.

The server is named by ``CLOUDKITTY_TEST_GNOCCHI_URL`` (``tox -e
functional-gnocchi`` starts a private one with ``tools/gnocchi-server
run``). Each test class gets resource types of its own.
"""

import testtools

from cloudkitty.tests.functional_env import is_functional_test
from cloudkitty.tests import gnocchi_provision
from cloudkitty.tests.storage.v2 import base_functional


@testtools.skipUnless(is_functional_test(), 'Test is not a functional test')
class GnocchiStorageTest(
        gnocchi_provision.GnocchiStoreMixin,
        base_functional.BaseFunctionalStorageTest):
    """Gnocchi 4.7, through gnocchiclient, in basic auth mode."""

    storage_backend = 'gnocchi'
    storage_version = 2

    def configure_backend(self, conf):
        self.configure_gnocchi(conf)

    @classmethod
    def wait_for_backend(cls):
        """Wait until metricd processed every pushed measure."""
        cls.wait_processed()

    @classmethod
    def cleanup_backend(cls):
        """Delete every resource this class created."""
        cls.delete_resources()
