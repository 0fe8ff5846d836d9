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
"""Throw-away databases on a real PostgreSQL or MariaDB/MySQL server.

A test class asks :func:`provision` for a database of its own on the server
named by an environment variable; the database is created empty, emptied
again between tests with :meth:`TestDatabase.empty` and dropped with
:meth:`TestDatabase.drop`. Names carry a random suffix, so parallel test
workers on one server never share a database.
"""

import time
import uuid

import fixtures
from oslo_config import cfg

import sqlalchemy as sa

from cloudkitty import storage
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import rollup
from cloudkitty.tests import functional_env

#: Seconds between two reads of InnoDB's ``information_schema.innodb_trx``
#: by one test. InnoDB refills that table's buffer only when nobody read
#: it in the last 0.1 s (MySQL's manual, "Persistence and Consistency of
#: InnoDB Transaction and Locking Information"): read more often, it
#: keeps showing the transactions of the first read. Two test workers
#: reading it every 0.25 s still leave a gap of 0.125 s or more in each.
INNODB_TRX_POLL = 0.25

# NOTE: pifpaf exports plain dialect URLs; we always use these drivers.
_DRIVERS = {'postgresql': 'postgresql+psycopg', 'mysql': 'mysql+pymysql',
            'mariadb': 'mysql+pymysql'}


def normalize_url(url):
    """Return ``url`` with our driver for its dialect (psycopg, PyMySQL).

    ``mysql://...?unix_socket=/path`` as pifpaf exports it becomes
    ``mysql+pymysql://...?unix_socket=/path``.
    """
    url = sa.engine.make_url(url)
    driver = _DRIVERS.get(url.get_backend_name())
    if driver and '+' not in url.drivername:
        url = url.set(drivername=driver)
    return url


class TestDatabase:
    """A database created for one test class on a real server."""

    def __init__(self, admin_url, url):
        self.admin_url = admin_url
        self.url = url

    def empty(self):
        """Delete every row the storage wrote; the schema stays.

        The rollup's state goes back to that of a new store (the ids of
        SQLite's points start again when the next push finds no counter).
        """
        engine = sa.create_engine(self.url)
        try:
            with engine.begin() as conn:
                tables = set(sa.inspect(conn).get_table_names())
                for table in reversed(models.metadata.sorted_tables):
                    if table.name in tables:
                        conn.execute(table.delete())
                if models.rollup_state.name in tables:
                    conn.execute(models.rollup_state.insert().values(
                        id=1, until=rollup.NOTHING))
        finally:
            engine.dispose()

    def drop(self):
        """Drop the database, closing what still uses it on PostgreSQL."""
        force = ('' if self.admin_url.get_backend_name() != 'postgresql'
                 else ' WITH (FORCE)')
        _admin(self.admin_url, 'DROP DATABASE IF EXISTS %s%s'
               % (_quote(self.admin_url, self.url.database), force))


def _quote(url, name):
    quote = '`' if url.get_backend_name() in ('mysql', 'mariadb') else '"'
    return quote + name + quote


def _admin(admin_url, statement):
    engine = sa.create_engine(admin_url, isolation_level='AUTOCOMMIT')
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def provision(test_class, env_var):
    """Create an empty database on the server named by ``env_var``.

    Skips ``test_class`` (or fails it when backends are required, see
    :func:`cloudkitty.tests.functional_env.backends_required`) when the
    variable is unset or the server does not answer.

    :returns: a :class:`TestDatabase`.
    """
    admin_url = normalize_url(
        functional_env.server_url_or_skip(test_class, env_var))
    # NOTE: the name is generated here from hex digits only, so quoting it
    # into the DDL below is safe; DDL takes no bound parameters.
    name = 'ck_test_%s' % uuid.uuid4().hex[:16]
    if admin_url.get_backend_name() in ('mysql', 'mariadb'):
        ddl = ('CREATE DATABASE %s CHARACTER SET utf8mb4 '
               'COLLATE utf8mb4_bin' % _quote(admin_url, name))
    else:
        ddl = 'CREATE DATABASE %s' % _quote(admin_url, name)
    try:
        _admin(admin_url, ddl)
    except sa.exc.OperationalError as exc:
        functional_env.unreachable(test_class, env_var, '%s: %s' % (
            admin_url.render_as_string(hide_password=True), exc.orig))
    return TestDatabase(admin_url, admin_url.set(database=name))


def wait_for_lock_wait(engine, waiting_sql, thread, seconds, poll):
    """Run ``waiting_sql`` until it gives a true value, while ``thread`` runs.

    For tests that make a thread of theirs wait for a lock: the query
    tells whether a session waits (and may name it).

    :param engine: the engine of a watcher connection.
    :param seconds: how long to look at most.
    :param poll: seconds between two runs of the query (see
        :data:`INNODB_TRX_POLL` for MariaDB).
    :returns: that value, or None when the thread ended or the time ran
        out first.
    """
    with engine.connect() as watcher:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and thread.is_alive():
            value = watcher.exec_driver_sql(waiting_sql).scalar()
            if value:
                return value
            watcher.rollback()
            time.sleep(poll)
    return None


def no_statistics(engine, name):
    """PostgreSQL: a table's columns whose statistics target is 0, sorted."""
    with engine.connect() as conn:
        return sorted(conn.exec_driver_sql(
            'SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass '
            'AND attnum > 0 AND attstattarget = 0', (name,)).scalars())


class ServerDatabaseMixin:
    """Gives a test class a database of its own on a real server.

    Set ``url_variable`` to the environment variable naming the server;
    ``cls.database`` is then a :class:`TestDatabase`, created once for the
    class and dropped after its last test. Mix it in before
    ``testtools.TestCase``.
    """

    #: The variable that names the server (for example
    #: ``CLOUDKITTY_TEST_POSTGRESQL_URL``).
    url_variable = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.database = provision(cls, cls.url_variable)

    @classmethod
    def tearDownClass(cls):
        cls.database.drop()
        super().tearDownClass()

    @property
    def database_url(self):
        """The class database's URL as text, password included."""
        return self.database.url.render_as_string(hide_password=False)


class _StoreMixin:
    """Opens stores on ``self.url``, which the URL mixins below set."""

    def new_store(self, conf=None):
        """An initialised SQL store on ``self.url``, closed at the end.

        :param conf: the ``ConfigOpts`` to read, or None for new ones.
        """
        store = storage.get_storage(conf=conf or cfg.ConfigOpts(),
                                    backend='sqlalchemy', connection=self.url)
        self.addCleanup(store.close)
        store.init()
        return store


class SQLiteURLMixin(_StoreMixin):
    """Sets ``self.url`` to a new SQLite file before the test's setUp.

    Mix it in before the test's own mixin and ``testtools.TestCase``.
    """

    def setUp(self):
        path = self.useFixture(fixtures.TempDir()).path
        self.url = 'sqlite:///%s/test.sqlite' % path
        super().setUp()


class ServerURLMixin(ServerDatabaseMixin, _StoreMixin):
    """Sets ``self.url`` to the class's database; empties it after tests.

    ``self.url`` is set before the test's setUp. Set ``url_variable`` as
    for :class:`ServerDatabaseMixin`.
    """

    def setUp(self):
        self.url = self.database_url
        super().setUp()
        self.addCleanup(self.database.empty)
