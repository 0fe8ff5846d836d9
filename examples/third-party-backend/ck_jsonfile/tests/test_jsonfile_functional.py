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
"""The cloudkitty-storage conformance suite, run on the jsonfile backend.

This one small subclass is all a backend needs to run the whole shared
suite; the developer guide of cloudkitty-storage includes this module as
its example.
"""

import os

import fixtures
import testtools

from cloudkitty.tests.functional_env import is_functional_test
from cloudkitty.tests.storage.v2 import base_functional

from ck_jsonfile import options


@testtools.skipUnless(is_functional_test(), 'Test is not a functional test')
class JSONFileStorageTest(base_functional.BaseFunctionalStorageTest):
    """The jsonfile backend: each test gets a file of its own in a TempDir."""

    storage_backend = 'jsonfile'
    storage_version = 2

    def configure_backend(self, conf):
        # NOTE: the suite registers the options of storage.list_opts(),
        # this backend's among them; registering again changes nothing.
        options.register_opts(conf)
        path = self.useFixture(fixtures.TempDir()).path
        conf.set_override('path', os.path.join(path, 'storage.jsonl'),
                          group='storage_jsonfile')

    @classmethod
    def wait_for_backend(cls):
        """A push is fsynced before push() returns: nothing to wait for."""

    @classmethod
    def cleanup_backend(cls):
        """Nothing: the TempDir fixture removes each test's file."""
