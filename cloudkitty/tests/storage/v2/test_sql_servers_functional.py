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
"""The conformance suite on the SQL backend with real database servers.

One definition, :class:`ServerSQLStorage`, and a class per server that
names the variable holding the server's URL: ``CLOUDKITTY_TEST_POSTGRESQL_URL``
and ``CLOUDKITTY_TEST_MYSQL_URL`` (tox's functional envs default them to
the servers on 127.0.0.1:5432 and 127.0.0.1:3306). Each test class gets a
database of its own on its server, emptied after every test and dropped
at the end.
"""

import testtools

from cloudkitty.tests.functional_env import is_functional_test
from cloudkitty.tests import sql_provision
from cloudkitty.tests.storage.v2 import base_functional


class ServerSQLStorage(sql_provision.ServerDatabaseMixin):
    """The SQL backend on a database of the class's own, on a server.

    A mixin (the loader never collects it): put it before
    ``BaseFunctionalStorageTest`` and set ``url_variable``.
    """

    storage_backend = 'sqlalchemy'
    storage_version = 2

    def configure_backend(self, conf):
        """Point ``[storage_sqlalchemy] connection`` at the database."""
        conf.set_override('connection', self.database_url,
                          group='storage_sqlalchemy')

    @classmethod
    def wait_for_backend(cls):
        """A committed push is visible at once: nothing to wait for."""

    @classmethod
    def cleanup_backend(cls):
        """Empty this class's database; the schema stays."""
        cls.database.empty()


@testtools.skipUnless(is_functional_test(), 'Test is not a functional test')
class PostgreSQLStorageTest(ServerSQLStorage,
                            base_functional.BaseFunctionalStorageTest):
    """PostgreSQL, through psycopg 3."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'


@testtools.skipUnless(is_functional_test(), 'Test is not a functional test')
class MySQLStorageTest(ServerSQLStorage,
                       base_functional.BaseFunctionalStorageTest):
    """MariaDB (or MySQL), through PyMySQL."""

    url_variable = 'CLOUDKITTY_TEST_MYSQL_URL'
