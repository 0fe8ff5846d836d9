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
"""Whether a SQL store exists, and which store it is, creating nothing.

:func:`check_initialised` lets a read refuse a store that ``init()`` never
made (opening a SQLite file that is not there would create it).
:func:`identity` names the store itself rather than its URL, so that two
URLs reaching one store (a symbolic link, ``localhost`` and ``127.0.0.1``)
are recognised as one. :func:`size_bytes` tells what the store takes.
"""

import contextlib
import os

from oslo_log import log
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.sqlalchemy import engine as engine_mod
from cloudkitty.storage.v2.sqlalchemy import migration

LOG = log.getLogger(__name__)


def sqlite_path(url):
    """Return the file of a SQLite URL, or None for a memory database.

    :param url: a :class:`sqlalchemy.engine.URL` of the sqlite dialect.
    :rtype: str or None
    """
    database = url.database
    if not database or database == ':memory:':
        return None
    if url.query.get('uri') in ('true', '1'):
        # NOTE: file:PATH?mode=...; mode=memory has no file.
        if 'mode=memory' in database:
            return None
        database = database.split('?', 1)[0]
        if database.startswith('file:'):
            database = database[len('file:'):]
    return database


def _missing(engine, reason):
    return exceptions.NotInitialised(
        engine_mod.BACKEND, engine_mod.safe_location(engine.url), reason)


def check_initialised(engine):
    """Raise unless the database holds this package's schema at its head.

    A SQLite file is looked at before it is opened: a missing or empty
    file is reported, never created or written.

    :raises cloudkitty.storage.exceptions.NotInitialised: for a missing
        SQLite file, a database without the schema, or a schema that
        ``init()`` must upgrade first.
    :raises cloudkitty.storage.exceptions.BackendUnavailable: when the
        server (or the database on it) cannot be reached.
    """
    if engine.url.get_backend_name() == 'sqlite':
        path = sqlite_path(engine.url)
        if path is None:
            raise _missing(engine, 'a memory database starts empty')
        if not os.path.isfile(path):
            raise _missing(engine, 'no such file: %s'
                           % os.path.abspath(path))
        if os.path.getsize(path) == 0:
            raise _missing(engine, 'the file %s is empty'
                           % os.path.abspath(path))
    with engine_mod.translate_errors(engine):
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(migration.VERSION_TABLE):
                raise _missing(engine, 'no cloudkitty-storage schema '
                                       '(no %s table)'
                               % migration.VERSION_TABLE)
            current = migration.current(conn)
    head = migration.head()
    if current != head:
        raise _missing(engine, 'the schema is at revision %s, this '
                               'version needs %s' % (current, head))


def _scalar_or_none(conn, statement):
    """Run a query that may be refused; None (and a rollback) if it is."""
    try:
        return conn.exec_driver_sql(statement).scalar()
    except sa_exc.DBAPIError:
        conn.rollback()
        return None


def identity(engine):
    """Return what names the store reached by ``engine``, not its URL.

    SQLite: the file's device and inode. PostgreSQL: the cluster's system
    identifier (or, when it may not be read, the server address, port and
    start time), the database and the schema. MySQL/MariaDB: the server's
    host name, port and data directory, and the database.

    :returns: a hashable value; equal values mean the same store.
    :rtype: tuple
    :raises cloudkitty.storage.exceptions.BackendUnavailable: when the
        server cannot be reached.
    """
    name = engine.url.get_backend_name()
    if name == 'sqlite':
        path = sqlite_path(engine.url)
        if path is None:
            # NOTE: every memory database is a store of its own.
            return ('sqlite', 'memory', id(engine))
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return ('sqlite', 'missing', os.path.abspath(path))
        return ('sqlite', stat.st_dev, stat.st_ino)
    with engine_mod.translate_errors(engine):
        with engine.connect() as conn:
            if name == 'postgresql':
                server = _scalar_or_none(
                    conn, 'SELECT system_identifier FROM '
                          'pg_control_system()')
                if server is None:
                    server = tuple(conn.exec_driver_sql(
                        'SELECT host(inet_server_addr()), '
                        'inet_server_port(), '
                        'pg_postmaster_start_time()::text').one())
                place = tuple(conn.exec_driver_sql(
                    'SELECT current_database(), current_schema()').one())
                return ('postgresql', str(server)) + place
            row = conn.exec_driver_sql(
                'SELECT @@hostname, @@port, @@datadir, DATABASE()').one()
            return (name,) + tuple(row)


def size_bytes(engine):
    """Return the bytes the database of ``engine`` takes, when known.

    SQLite: the database file plus its write-ahead log. PostgreSQL:
    ``pg_database_size()`` of the current database, which counts whatever
    else the database holds too.

    :returns: a number of bytes, or None for another dialect, a memory
        database or a failed query.
    :rtype: int
    """
    name = engine.url.get_backend_name()
    if name == 'sqlite':
        path = sqlite_path(engine.url)
        if path is None:
            return None
        size = 0
        for suffix in ('', '-wal'):
            with contextlib.suppress(FileNotFoundError):
                size += os.path.getsize(path + suffix)
        return size
    if name == 'postgresql':
        try:
            with engine.connect() as conn:
                return conn.exec_driver_sql(
                    'SELECT pg_database_size(current_database())').scalar()
        except sa_exc.SQLAlchemyError as exc:
            # NOTE: a figure on the side; it must not fail a long run.
            LOG.warning('Cannot read the database size: %s', exc)
    return None
