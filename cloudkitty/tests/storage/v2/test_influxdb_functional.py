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
"""The conformance suite on the InfluxDB backend with a real influxd.

The server is named by ``CLOUDKITTY_TEST_INFLUXDB_URL`` (``tox -e
functional-influxdb`` starts a private one with ``tools/influxdb-server
run``). Each test class gets a database of its own, dropped after every
test (init() creates it again) and at the end.
"""

import testtools

from cloudkitty.tests import functional_env
from cloudkitty.tests import influxdb_provision
from cloudkitty.tests.storage.v2 import base_functional


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class InfluxDBStorageTest(
        influxdb_provision.InfluxDBDatabaseMixin,
        base_functional.BaseFunctionalStorageTest):
    """InfluxDB 1.x, through the influxdb client library."""

    storage_backend = 'influxdb'
    storage_version = 2

    def configure_backend(self, conf):
        self.configure_influxdb(conf)

    @classmethod
    def wait_for_backend(cls):
        """A write InfluxDB acknowledged is visible: nothing to wait for."""

    @classmethod
    def cleanup_backend(cls):
        """Drop this class's database; the next init() creates it."""
        cls.drop_database()
