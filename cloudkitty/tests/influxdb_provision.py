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
"""Throw-away InfluxDB databases for the InfluxDB tests.

A test class takes the server from ``CLOUDKITTY_TEST_INFLUXDB_URL``
(:class:`InfluxDBDatabaseMixin`), uses a database of its own on it, and
drops it after every test (``init()`` creates it again) and at the end.
"""

import urllib.parse
import uuid

from oslo_config import cfg
from oslo_config import fixture as config_fixture

from cloudkitty import storage
from cloudkitty.storage.v2.influxdb import client as client_mod
from cloudkitty.storage.v2.influxdb import encoding
from cloudkitty.storage.v2.influxdb import options
from cloudkitty.tests import functional_env
from cloudkitty.tests import influxdb_server

#: The retention the tests run with: their frames date from 2000 onwards.
TEST_RETENTION_HOURS = 24 * 366 * 100


def aim_at(conf, host, port, database):
    """Point a configuration's InfluxDB options at a database.

    With the tests' retention (:data:`TEST_RETENTION_HOURS`); ``conf``
    has the storage options registered.
    """
    conf.set_override('host', host, group='storage_influxdb')
    conf.set_override('port', port, group='storage_influxdb')
    conf.set_override('database', database, group='storage_influxdb')
    conf.set_override('retention_period', TEST_RETENTION_HOURS,
                      group='storage')


def drop(host, port, database):
    """Drop a database of the server; the next init() creates it."""
    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    for name, value in (('host', host), ('port', port),
                        ('database', database)):
        conf.set_override(name, value, group='storage_influxdb')
    client = client_mod.Client(conf.storage_influxdb)
    try:
        client.query('DROP DATABASE %s' % encoding.quote_identifier(
            database), database=False)
    finally:
        client.close()


class InfluxDBDatabaseMixin:
    """A database of the test server per test class (mix in first)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        url = functional_env.answering_server_url(
            cls, influxdb_server.URL_ENV, influxdb_server.ping)
        parsed = urllib.parse.urlsplit(url)
        cls.host, cls.port = parsed.hostname, parsed.port
        cls.database = 'ck_test_%s' % uuid.uuid4().hex

    @classmethod
    def tearDownClass(cls):
        cls.drop_database()
        super().tearDownClass()

    def configure_influxdb(self, conf):
        """Point the ``[storage_influxdb]`` options at the database."""
        aim_at(conf, self.host, self.port, self.database)

    def use_influxdb_conf(self):
        """Give the test ``self.conf``: every option, aimed at the database."""
        self.conf = cfg.ConfigOpts()
        self.useFixture(config_fixture.Config(self.conf))
        for group, opts in storage.list_opts():
            self.conf.register_opts(opts, group=group)
        self.configure_influxdb(self.conf)

    def new_store(self):
        """An initialised store on ``self.conf``, closed at the end."""
        store = storage.get_storage(conf=self.conf, backend='influxdb')
        self.addCleanup(store.close)
        store.init()
        return store

    @classmethod
    def drop_database(cls):
        """Drop this class's database; the next init() creates it."""
        drop(cls.host, cls.port, cls.database)
