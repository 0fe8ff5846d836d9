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

A schema already at head is seen without the lock, against :data:`HEAD`
(no script is read for it): processes starting together wait for the one
upgrade, not for each other in turn. On SQLite, the processes that find
the write lock taken look for it every 2 ms, instead of sleeping in
SQLite's growing steps (up to 25 ms late after a 30 ms upgrade, and
later still after a longer one), and once it is free read the revision
without taking it, instead of taking it one after another.

``cloudkitty-storage bench --concurrent-init 6`` measures it: six processes
call ``init()`` at once on a new SQLite file, against one alone in the same
run. When each ran alembic under the lock in turn the slowest took 5.2
times what one alone took, and about 2.5 times once they found the schema
at head. Where the time went, on the 2-core development machine when it
was quiet: one process alone spent 33 ms in ``init()`` (23 ms of it in
alembic), the slowest of six 85 ms, of which 35 to 60 ms asleep in
SQLite's busy handler after the upgrade had ended, and each waiter's
reads of the revision through alembic's migration context (0.4 to 2 ms
each, twice, on CPUs the upgrading process needs). With the polling above
and the revision read on the driver connection (:func:`current`), the
medians of three sessions of 9 runs, taking turns with the code before,
were 1.31, 1.32 and 1.30 (against 2.60, 2.36 and 2.61). The figures of a
loaded machine spread widely: compare codes only within one session
(the admin guide's page on faults keeps them).
"""

import contextlib
import os
import time

from alembic import command
from alembic import config as alembic_config
from alembic import migration
from alembic import script
from sqlalchemy import exc as sa_exc

from cloudkitty.storage.v2.sqlalchemy import engine as engine_mod

#: Alembic's version table; prefixed so that it may share a database.
VERSION_TABLE = 'ck_alembic_version'
# NOTE: an arbitrary constant that names our lock among advisory locks.
_PG_LOCK_ID = 0x636b7374
_MYSQL_LOCK = 'cloudkitty_storage_migration'
_LOCK_TIMEOUT = 300
#: The latest revision of ``alembic/versions``; a new migration changes it.
HEAD = '0011'
#: Seconds between two tries of a SQLite process waiting for the write
#: lock to upgrade (see :func:`_sqlite_write_lock`).
SQLITE_LOCK_POLL = 0.002


def _config(conn):
    cfg = alembic_config.Config()
    cfg.set_main_option('script_location', os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'alembic'))
    cfg.attributes['connection'] = conn
    return cfg


def head():
    """Return the head revision of the migrations.

    It is :data:`HEAD`, which a unit test compares with the scripts':
    reading them costs more than the whole check of a schema at head.
    """
    return HEAD


def scripts_head():
    """Return the head revision, read from the migration scripts."""
    return script.ScriptDirectory.from_config(_config(None)).get_current_head()


def current(conn):
    """Return the revision the database at ``conn`` is at (or None)."""
    if conn.dialect.name == 'sqlite':
        return _sqlite_revision(conn)
    context = migration.MigrationContext.configure(
        conn, opts={'version_table': VERSION_TABLE})
    return context.get_current_revision()


def _sqlite_revision(conn):
    """The revision of a SQLite database, read on the driver connection.

    What alembic's ``get_current_revision()`` answers, at a tenth of its
    cost (a few microseconds, against 0.4 to 2 ms for the migration
    context alembic builds first): six processes starting at once on two
    cores each read it twice, beside the one that upgrades.
    """
    driver = conn.connection.driver_connection
    exists = driver.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
        (VERSION_TABLE,)).fetchone()
    if exists is None:
        return None
    rows = driver.execute(
        'SELECT version_num FROM %s' % VERSION_TABLE).fetchall()
    if len(rows) > 1:
        # NOTE: branches; alembic raises the same way for its own read.
        raise RuntimeError('%s holds %d revisions' % (VERSION_TABLE,
                                                      len(rows)))
    return rows[0][0] if rows else None


@contextlib.contextmanager
def _locked(engine, target=None):
    """Hold the migration lock of ``engine``'s database; yield a connection.

    On SQLite, a process that waited for the lock looks whether the schema
    reached ``target`` meanwhile: if it did, it yields None without taking
    the lock, so that the processes that waited for one upgrade do not
    then queue for the lock one after another.
    """
    with engine.connect() as conn:
        name = engine.dialect.name
        if name == 'sqlite':
            conn = conn.execution_options(sqlite_begin='IMMEDIATE')
            with _sqlite_write_lock(conn, target) as locked:
                yield locked
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


@contextlib.contextmanager
def _sqlite_write_lock(conn, target=None):
    """Hold SQLite's write lock (``BEGIN IMMEDIATE``) while the block runs.

    Yields ``conn``; the block's transaction commits when it ends, or
    rolls back on an error. A process that finds the lock taken looks
    again every :data:`SQLITE_LOCK_POLL` seconds, for as long as the
    connection's busy timeout: SQLite's own busy handler sleeps in growing
    steps (1, 2, 5, 10, 15, 20, 25 ms ...), so a process waiting for a
    30 ms upgrade woke up to 25 ms after it ended, which nearly doubled
    its wait. Once the lock is free, a process that waited yields None
    instead if the schema is at ``target`` (read without the lock).
    """
    driver = conn.connection.driver_connection
    timeout = driver.execute('PRAGMA busy_timeout').fetchone()[0]
    deadline = time.monotonic() + timeout / 1000
    dbapi = conn.dialect.loaded_dbapi
    while True:
        with _no_busy_wait(driver, timeout):
            waited = _wait_until_free(driver, dbapi, deadline)
        # NOTE: read with the busy timeout: a read may meet a lock too
        # (SQLite's own, while a file turns to WAL or is checkpointed).
        if waited and target is not None and _at(conn, target):
            yield None
            return
        try:
            with _no_busy_wait(driver, timeout):
                transaction = conn.begin()
            break
        except sa_exc.OperationalError as exc:
            # NOTE: another process took the lock since we saw it free;
            # wait again unless the time is up.
            if (not engine_mod.sqlite_busy(exc.orig)
                    or time.monotonic() >= deadline):
                raise
    with transaction:
        yield conn


@contextlib.contextmanager
def _no_busy_wait(driver, timeout):
    """Set the busy timeout of ``driver`` to 0 in the block, then back.

    :param timeout: the busy timeout to set back, in milliseconds.
    """
    driver.execute('PRAGMA busy_timeout = 0')
    try:
        yield
    finally:
        driver.execute('PRAGMA busy_timeout = %d' % timeout)


def _at(conn, target):
    """Tell whether the schema is at ``target``; end the read it made."""
    try:
        return current(conn) == target
    finally:
        conn.rollback()


def _wait_until_free(driver, dbapi, deadline):
    """Return once SQLite's write lock is free, or at ``deadline``.

    :returns: whether it found the lock taken at first.

    Each look takes the lock and gives it back at once, on the driver
    connection (whose busy timeout is 0): a few microseconds, against a
    hundred and more through SQLAlchemy, so that the waiting processes
    leave the CPU to the one that upgrades.
    """
    waited = False
    while True:
        try:
            driver.execute('BEGIN IMMEDIATE')
        except dbapi.OperationalError as exc:
            if not engine_mod.sqlite_busy(exc) or time.monotonic() >= deadline:
                return waited
            waited = True
            time.sleep(SQLITE_LOCK_POLL)
        else:
            driver.execute('ROLLBACK')
            return waited


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
    with _locked(engine, target) as conn:
        if conn is None or target is not None and current(conn) == target:
            return False
        command.upgrade(_config(conn), revision)
        if conn.in_transaction() and engine.dialect.name != 'sqlite':
            conn.commit()
    return True
