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
"""A private corner of the test Gnocchi server per test class.

A test class takes the server from ``CLOUDKITTY_TEST_GNOCCHI_URL``
(:class:`GnocchiStoreMixin`) and uses resource types of its own (a fresh
``resource_type_prefix``), so that parallel workers never see each other's
resources. Its resources are deleted after every test.
"""

import uuid

from oslo_config import cfg

from cloudkitty.storage.v2.gnocchi import client as client_mod
from cloudkitty.storage.v2.gnocchi import options
from cloudkitty.tests import functional_env
from cloudkitty.tests import gnocchi_server

#: The granularity the tests run with: the suite's frames start on
#: quarter hours.
TEST_GRANULARITY = 900
#: Their archive policy (shared by every class: same definition).
TEST_POLICY = 'cloudkitty-test-900'


class GnocchiStoreMixin:
    """Resource types of the test server per test class (mix in first)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        url = functional_env.answering_server_url(
            cls, gnocchi_server.URL_ENV, gnocchi_server.ping)
        cls.gnocchi_url = url
        cls.prefix = 'ck%s_' % uuid.uuid4().hex[:12]

    @classmethod
    def tearDownClass(cls):
        cls.delete_resources()
        super().tearDownClass()

    def configure_gnocchi(self, conf):
        """Point ``[storage_gnocchi]`` at the server and this class."""
        for name, value in self.gnocchi_options().items():
            conf.set_override(name, value, group=options.GROUP)

    @classmethod
    def gnocchi_options(cls):
        """The ``[storage_gnocchi]`` overrides of this class."""
        return {'endpoint': cls.gnocchi_url,
                'basic_user': gnocchi_server.USER,
                'resource_type_prefix': cls.prefix,
                'granularity': TEST_GRANULARITY,
                'archive_policy_name': TEST_POLICY}

    @classmethod
    def client(cls):
        """A backend client on the test server."""
        conf = cfg.ConfigOpts()
        options.register_opts(conf)
        for name, value in cls.gnocchi_options().items():
            conf.set_override(name, value, group=options.GROUP)
        return client_mod.Client(conf)

    @classmethod
    def wait_processed(cls):
        """Return once metricd processed every measure."""
        cls.client().wait_processed()

    @classmethod
    def delete_resources(cls):
        """Delete every rated resource of this class, and its packs."""
        client = cls.client()
        try:
            client.read(client.api.resource.batch_delete,
                        {'in': {'type': [cls.prefix + 'rating',
                                         cls.prefix + 'pack']}},
                        resource_type='generic')
        except client_mod.gnocchi_exc.NotFound:
            pass
