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
"""The conformance suite on the SQL backend with SQLite (no server)."""

import fixtures
import testtools

from cloudkitty.tests.functional_env import is_functional_test
from cloudkitty.tests.storage.v2 import base_functional


@testtools.skipUnless(is_functional_test(), 'Test is not a functional test')
class SQLiteStorageTest(base_functional.BaseFunctionalStorageTest):
    """SQLite: each test gets a database file of its own in a TempDir."""

    storage_backend = 'sqlalchemy'
    storage_version = 2

    def configure_backend(self, conf):
        path = self.useFixture(fixtures.TempDir()).path
        conf.set_override('connection', 'sqlite:///%s/storage.sqlite' % path,
                          group='storage_sqlalchemy')

    @classmethod
    def wait_for_backend(cls):
        """A committed push is visible at once: nothing to wait for."""

    @classmethod
    def cleanup_backend(cls):
        """Nothing: the TempDir fixture removes each test's file."""
