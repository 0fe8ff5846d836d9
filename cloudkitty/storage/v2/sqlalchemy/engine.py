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
"""Engines per dialect, and the translation of driver errors.

SQLite runs in WAL mode with a busy timeout so that many processes can read
and write one file at once; a writing transaction starts with ``BEGIN
IMMEDIATE`` so that two writers queue for the lock instead of failing on an
upgrade from a read lock. MySQL/MariaDB connections use utf8mb4.
"""

import contextlib
import functools
import random
import sqlite3
import time
import typing

from oslo_log import log
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import bulk

LOG = log.getLogger(__name__)
BACKEND = 'sqlalchemy'


def safe_location(url):
    """Return ``url`` as text with its password hidden."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def create_engine(url, busy_timeout=60, connect_timeout=10, pool_size=5):
    """Create the engine of a storage URL, tuned for its dialect.

    :raises cloudkitty.storage.exceptions.BackendUnavailable: when the
        dialect's driver is missing (the message names the extra).
    """
    url = sa.engine.make_url(url)
    backend = url.get_backend_name()
    kwargs = {'future': True}
    if backend == 'sqlite':
        kwargs['connect_args'] = {'timeout': busy_timeout,
                                  'check_same_thread': False}
    else:
        kwargs['pool_pre_ping'] = True
        kwargs['pool_size'] = pool_size
        if backend == 'postgresql':
            kwargs['connect_args'] = {'connect_timeout': connect_timeout}
        elif backend in ('mysql', 'mariadb'):
            if 'charset' not in url.query:
                url = url.update_query_dict({'charset': 'utf8mb4'})
            kwargs['connect_args'] = {'connect_timeout': connect_timeout}
    try:
        engine = sa.create_engine(url, **kwargs)
    except (ImportError, sa_exc.NoSuchModuleError) as exc:
        extra = {'postgresql': 'postgresql', 'mysql': 'mysql',
                 'mariadb': 'mysql'}.get(backend, backend)
        raise exceptions.BackendUnavailable(
            BACKEND, safe_location(url),
            'the database driver is missing (pip install '
            '"cloudkitty-storage[%s]"): %s' % (extra, exc)) from exc
    if backend == 'sqlite':
        _tune_sqlite(engine, busy_timeout)
    return engine


def _tune_sqlite(engine, busy_timeout):
    @event.listens_for(engine, 'connect')
    def _on_connect(dbapi_conn, record):
        # NOTE: let SQLAlchemy, not the sqlite3 module, decide when a
        # transaction starts, so that writers can use BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute('PRAGMA busy_timeout = %d' % (busy_timeout * 1000))
        _turn_to_wal(cursor, engine.dialect.loaded_dbapi, busy_timeout)
        cursor.execute('PRAGMA foreign_keys = ON')
        # NOTE: aggregates scan whole indexes; reading them through mmap
        # and a larger page cache roughly halves their cost.
        cursor.execute('PRAGMA mmap_size = %d' % (1 << 30))
        cursor.execute('PRAGMA cache_size = -65536')
        cursor.close()

    @event.listens_for(engine, 'begin')
    def _on_begin(conn):
        mode = conn.get_execution_options().get('sqlite_begin', 'DEFERRED')
        conn.exec_driver_sql('BEGIN %s' % mode)


#: Seconds between two tries to turn a SQLite file to WAL (see
#: :func:`_turn_to_wal`).
WAL_RETRY_PAUSE = 0.002


def _turn_to_wal(cursor, dbapi, busy_timeout):
    """Put the file of ``cursor`` in WAL mode, trying again while busy.

    SQLite answers "database is locked" at once, without waiting as its
    busy timeout says, when a connection asks for WAL while others open
    the same new file: 1 in 600 connections made by six processes at once
    failed so, and their ``init()`` with it. So the pragma is tried
    again, for as long as the busy timeout.

    :param busy_timeout: the seconds to keep trying.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            cursor.execute('PRAGMA journal_mode = WAL')
            return
        except dbapi.OperationalError as exc:
            if not sqlite_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(WAL_RETRY_PAUSE)


def sqlite_busy(error):
    """Tell whether a sqlite3 error says another connection holds a lock."""
    return getattr(error, 'sqlite_errorname', '').startswith('SQLITE_BUSY')


@contextlib.contextmanager
def writing(engine):
    """Open a write transaction: commit on success, roll back on error."""
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin='IMMEDIATE')
        with conn.begin():
            yield conn


# NOTE: the errors that mean "cannot write here now", per driver: SQLite's
# result codes (extended ones start with these names), PostgreSQL's
# SQLSTATEs and MySQL/MariaDB's error numbers.
_SQLITE_WRITE_REFUSED = ('SQLITE_FULL', 'SQLITE_READONLY')
_PG_WRITE_REFUSED = ('53100', '25006')  # disk_full, read_only_transaction
_MYSQL_WRITE_REFUSED = (1021, 1036, 1114, 1290, 1792)  # full, read-only


# NOTE: the errors that mean "this transaction collided with others and
# was rolled back", per driver: deadlock victims and serialization failures
# (retried by retry_conflicts()), and lock waits that timed out (raised at
# once: they have waited long already).
_PG_CONFLICTS = ('40P01', '40001')  # deadlock_detected, serialization
_PG_LOCK_TIMEOUTS = ('55P03',)  # lock_not_available
_MYSQL_CONFLICTS = (1213,)  # ER_LOCK_DEADLOCK
_MYSQL_LOCK_TIMEOUTS = (1205,)  # ER_LOCK_WAIT_TIMEOUT
#: Times a write is tried when it keeps losing deadlocks.
CONFLICT_ATTEMPTS = 6
#: Seconds of the first pause before a retry; each pause draws a random
#: time up to twice the previous bound, so that the colliding writers do
#: not meet again at once.
CONFLICT_PAUSE = 0.05


def _conflict(orig):
    """Tell whether a driver error is a conflict: ``'retry'``, ``'timeout'``.

    :returns: ``'retry'`` for a deadlock or serialization failure,
        ``'timeout'`` for a lock wait that timed out, else None.
    """
    state = getattr(orig, 'sqlstate', None)
    if state is not None:
        return ('retry' if state in _PG_CONFLICTS else
                'timeout' if state in _PG_LOCK_TIMEOUTS else None)
    if getattr(orig, 'sqlite_errorname', None) is not None:
        return None
    args = getattr(orig, 'args', ())
    if args and args[0] in _MYSQL_CONFLICTS:
        return 'retry'
    if args and args[0] in _MYSQL_LOCK_TIMEOUTS:
        return 'timeout'
    return None


def retry_conflicts(call, *args):
    """Call ``call(*args)``; make it again when it loses a deadlock.

    ``call`` must run one whole transaction: a deadlock or serialization
    failure rolls all of it back, so making it again stores it once. After
    :data:`CONFLICT_ATTEMPTS` tries, or at once for a lock wait timeout,
    the :class:`~cloudkitty.storage.exceptions.WriteConflict` raised by
    :func:`translate_errors` is raised with the number of attempts.

    :returns: what ``call`` returns.
    """
    bound = CONFLICT_PAUSE
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return call(*args)
        except exceptions.WriteConflict as exc:
            final = attempt == CONFLICT_ATTEMPTS or not _retried(exc)
            if final:
                if attempt == 1:
                    raise
                raise exceptions.WriteConflict(
                    exc.backend, exc.location, exc.reason,
                    attempts=attempt) from exc.__cause__
            LOG.info('Write conflict (attempt %d of %d), trying again: %s',
                     attempt, CONFLICT_ATTEMPTS, exc.reason)
            with bulk.collector_runs_while_waiting():
                time.sleep(random.uniform(0, bound))
            bound *= 2


def _retried(error):
    """Tell whether a WriteConflict is one that is tried again."""
    return _conflict(getattr(error.__cause__, 'orig', None)) == 'retry'


def _write_refused(orig):
    """Tell whether a driver error says the database cannot be written."""
    name = getattr(orig, 'sqlite_errorname', None)
    if name is not None:
        return name.startswith(_SQLITE_WRITE_REFUSED)
    if getattr(orig, 'sqlstate', None) in _PG_WRITE_REFUSED:
        return True
    args = getattr(orig, 'args', ())
    return bool(args) and args[0] in _MYSQL_WRITE_REFUSED


@contextlib.contextmanager
def translate_errors(engine):
    """Turn driver errors into the storage layer's typed errors.

    A full disk or read-only storage is :class:`WriteRefused`; a deadlock,
    serialization failure or lock wait timeout is :class:`WriteConflict`;
    a lost or refused connection is :class:`BackendUnavailable`; any other
    SQLite operational error is a :class:`StorageError` naming the file.
    """
    try:
        yield
    except sa_exc.DBAPIError as exc:
        location = safe_location(engine.url)
        if _write_refused(exc.orig):
            raise exceptions.WriteRefused(BACKEND, location,
                                          str(exc.orig)) from exc
        if _conflict(exc.orig) is not None:
            raise exceptions.WriteConflict(BACKEND, location,
                                           str(exc.orig)) from exc
        if isinstance(exc, sa_exc.OperationalError):
            if engine.dialect.name == 'sqlite' and \
                    not _is_connect_error(exc):
                raise exceptions.StorageError(
                    'SQLite error on %s: %s' % (location, exc.orig)) from exc
            raise exceptions.BackendUnavailable(
                BACKEND, location, str(exc.orig)) from exc
        if isinstance(exc, sa_exc.InterfaceError) or \
                exc.connection_invalidated:
            raise exceptions.BackendUnavailable(
                BACKEND, location, str(exc.orig)) from exc
        raise


def _is_connect_error(exc):
    return 'unable to open database' in str(exc.orig)


def insert_ignoring_duplicates(conn, table, rows):
    """Insert rows; a row whose unique key exists already is skipped.

    A concurrent transaction inserting the same key makes this one wait
    for its outcome, on every engine.

    :param rows: a list of dicts, or one dict (whose result's
        ``rowcount`` then says whether it was inserted).
    :returns: the result of the statement.
    """
    name = conn.dialect.name
    if name == 'postgresql':
        stmt = postgresql.insert(table).on_conflict_do_nothing()
    elif name == 'sqlite':
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    else:
        stmt = mysql.insert(table).prefix_with('IGNORE')
    # NOTE: SQLAlchemy 2 reports an INSERT's rowcount only when asked to.
    return conn.execute(stmt.execution_options(preserve_rowcount=True),
                        rows)


def copies(dialect):
    """Tell whether bulk writes on ``dialect`` use :class:`CopyWrite`."""
    return dialect.name == 'postgresql' and dialect.driver == 'psycopg'


def copy_rows(conn, table, rows, suffix=''):
    """Write dict rows with :class:`CopyWrite` (PostgreSQL, psycopg).

    :param rows: a non-empty list of dicts with the same keys.
    :param suffix: as for :class:`CopyWrite`.
    :returns: what the suffix's ``RETURNING`` clause returns, if any.
    """
    columns = tuple(rows[0])
    return CopyWrite(conn.dialect, table, columns, suffix).execute(
        conn, [tuple(row[c] for c in columns) for row in rows])


def insert_many_ignoring_duplicates(conn, table, rows):
    """Insert many rows; a row whose unique key exists already is skipped.

    :func:`insert_ignoring_duplicates` for thousands of rows: on
    PostgreSQL they are copied (see :class:`CopyWrite`), which is several
    times faster than a statement per row. Same waiting on concurrent
    inserts of the same key.

    :param rows: a non-empty list of dicts with the same keys.
    """
    name = conn.dialect.name
    columns = tuple(rows[0])
    if copies(conn.dialect):
        copy_rows(conn, table, rows, ' ON CONFLICT DO NOTHING')
    elif name == 'sqlite':
        # NOTE: the driver's executemany on tuples: SQLAlchemy's per-row
        # parameter processing cost about ten times the insert itself
        # (measured on the series and labels of a first push).
        BulkWrite(conn.dialect, table.name, columns,
                  ' ON CONFLICT DO NOTHING').execute(
            conn, [tuple(row[c] for c in columns) for row in rows])
    else:
        insert_ignoring_duplicates(conn, table, rows)


def unique_key(table, columns):
    """Return the names of the first unique key of ``table`` in ``columns``.

    The primary key is tried first, then the unique constraints, by name.
    Writers that may meet on such a key sort their rows by it (see
    :class:`CopyWrite`).

    :returns: a list of column names; empty if no key is covered.
    """
    keys = [table.primary_key] + sorted(
        (constraint for constraint in table.constraints
         if isinstance(constraint, sa.UniqueConstraint)),
        key=lambda constraint: str(constraint.name))
    for key in keys:
        names = [column.name for column in key.columns]
        if names and all(name in columns for name in names):
            return names
    return []


def overflowed(exc):
    """Tell whether a statement failed on a 64-bit overflow.

    SQLite's ``sum()`` raises ``integer overflow``, and its arithmetic
    makes floats that ``ck_daily``'s check refuses; PostgreSQL raises
    ``numeric_value_out_of_range`` (SQLSTATE 22003).

    :param exc: a :class:`sqlalchemy.exc.DBAPIError`.
    """
    orig = exc.orig
    if getattr(orig, 'sqlstate', None) == '22003':
        return True
    text = str(orig)
    return 'integer overflow' in text or 'ck_daily_integers' in text


def undo_alone(conn):
    """A context in which a failed statement is undone alone.

    PostgreSQL ends a transaction at an error: a savepoint keeps it for
    what follows (a fallback after an overflow, say). SQLite and MariaDB
    undo a failed statement alone.
    """
    if conn.dialect.name == 'postgresql':
        return conn.begin_nested()
    return contextlib.nullcontext()


def analyze_stale(conn, names):
    """Refresh the statistics of the tables among ``names`` if stale.

    PostgreSQL plans on its statistics, which autovacuum may refresh late
    or, where it is off, never. A table is analyzed when the rows written
    since its last analysis reach a tenth of those it had (as autovacuum
    would), or if it never was. PostgreSQL publishes a session's counts
    of written rows a second or so late: writes it has not published yet
    are counted at the next call. Elsewhere, nothing.

    :param names: table names, as the catalog has them.
    """
    if conn.dialect.name != 'postgresql':
        return
    stale = [name for name, changed, rows in conn.exec_driver_sql(
        'SELECT c.relname, s.n_mod_since_analyze, c.reltuples '
        'FROM pg_class c JOIN pg_stat_user_tables s '
        'ON s.relid = c.oid WHERE c.relname = ANY(%s)', (list(names),))
        if rows < 0 or changed >= 0.1 * rows]
    for name in sorted(stale):
        # NOTE: the name comes from the catalog and is quoted.
        conn.exec_driver_sql('ANALYZE %s' % conn.dialect.
                             identifier_preparer.quote(name))


def in_ids(dialect, column, ids=None, name=None):
    """``column IN ids``, one parameter on PostgreSQL.

    PostgreSQL compares with ``= ANY`` of one array: the statement's text
    is then the same whatever the number of ids, so that psycopg reuses
    its parse of it, where a list of 102 parameters was parsed again at
    every call (half a millisecond of a delete of one project, measured).
    Elsewhere, a plain ``IN`` list.

    :param ids: integers; or None for a statement built once, whose
        parameter ``name`` is given the ids, sorted, at execution.
    :param name: the parameter's name, or None for an anonymous one.
    """
    value = {} if ids is None else {'value': sorted(ids)}
    return _in(dialect, column, sa.Integer, name, value)


def in_values(dialect, column, name, item_type=sa.String):
    """``column IN`` the list given to parameter ``name`` at execution.

    As :func:`in_ids`: one array parameter on PostgreSQL, so that the
    statement needs no expanding (see :func:`run_in_turn`) and its text
    does not change with the number of values; a plain ``IN`` elsewhere.

    :param item_type: the SQLAlchemy type of the values.
    """
    return _in(dialect, column, item_type, name, {})


def _in(dialect, column, item_type, name, value):
    if dialect.name == 'postgresql':
        return column == sa.any_(sa.bindparam(
            name, type_=postgresql.ARRAY(item_type), **value))
    return column.in_(sa.bindparam(name, expanding=True, **value))


class Call(typing.NamedTuple):
    """A statement to run with :func:`run_in_turn`, and how to read it."""

    #: A SQLAlchemy statement, built once (see :func:`run_in_turn`).
    statement: object
    #: Its parameters, or None.
    params: object
    #: Turns the driver's row tuples (a statement that returns rows) or
    #: the row count (any other) into the call's value.
    read: object


def run_in_turn(conn, calls):
    """Run statements one after the other; return what each one read.

    With psycopg they go in one pipeline: one round trip to PostgreSQL
    for them all (and for the ``BEGIN`` of a new transaction, sent on
    its own otherwise), where each costs 0.15-0.3 ms on loopback here
    (measured). Every other driver runs them one by one. Either way the
    server runs them in order, each with its own snapshot: a lock the
    first one takes is held when the next one reads.

    :param calls: :class:`Call` tuples. On psycopg, their statements are
        compiled once each (build them once), without an expanding
        parameter (see :func:`in_values`).
    :returns: the values their ``read`` made, in order.
    """
    if not pipelines(conn.dialect):
        return [run(conn, call) for call in calls]
    driver = conn.connection.driver_connection
    cursors = []
    try:
        with driver.pipeline():
            for call in calls:
                text, processors = _driver_statement(conn.dialect,
                                                     call.statement)
                params = text.construct_params(call.params)
                for name, process in processors:
                    params[name] = process(params[name])
                cursors.append(driver.cursor())
                cursors[-1].execute(text.string, params)
        return [call.read(cursor.fetchall() if cursor.description is not None
                          else cursor.rowcount)
                for call, cursor in zip(calls, cursors)]
    except conn.dialect.loaded_dbapi.Error as exc:
        raise driver_error(conn, exc, cursors[-1] if cursors else None,
                           None) from exc
    finally:
        for cursor in cursors:
            cursor.close()


@contextlib.contextmanager
def pipelined(conn, when=True):
    """Send the writes of the block to the server in one round trip.

    With psycopg (see :func:`pipelines`), the statements the block runs
    on ``conn`` go in one pipeline, each waiting for no answer; an
    error is raised when the block ends (the transaction is then
    aborted). For writes whose results the block does not read (a
    ``RETURNING`` would come back empty), and never a ``COPY``, which
    psycopg refuses in a pipeline (see :meth:`CopyWrite.sends_copy`).
    Other drivers run them one by one, as outside the block.

    :param when: False to run the block one statement at a time
        whatever the driver.
    """
    if not when or not pipelines(conn.dialect):
        yield
        return
    try:
        with conn.connection.driver_connection.pipeline():
            yield
    except conn.dialect.loaded_dbapi.Error as exc:
        raise driver_error(conn, exc, None, None) from exc


def driver_error(conn, exc, cursor, statement):
    """The SQLAlchemy error of an error raised by the driver's own cursor.

    A cursor of the driver's bypasses SQLAlchemy (:class:`CopyWrite`,
    :func:`run_in_turn`): its errors get the shape every other
    statement's have, for :func:`translate_errors` and
    :func:`retry_conflicts`, and a dead connection leaves the pool.

    :param statement: the statement's text, or None.
    :returns: the :class:`sqlalchemy.exc.DBAPIError` to raise.
    """
    lost = conn.dialect.is_disconnect(exc, conn.connection, cursor)
    if lost:
        conn.invalidate(exc)
    return sa_exc.DBAPIError.instance(
        statement, None, exc, conn.dialect.loaded_dbapi.Error,
        connection_invalidated=lost, dialect=conn.dialect)


def run(conn, call):
    """Run one :class:`Call` as SQLAlchemy does; return what it read."""
    return call.read(_result(conn, call.statement, call.params))


def pipelines(dialect):
    """Tell whether :func:`run_in_turn` pipelines on ``dialect``.

    psycopg pipelines with libpq 14 or later: its binary package carries
    one, a psycopg built against an older system libpq does not.
    """
    return (dialect.driver == 'psycopg' and
            dialect.loaded_dbapi.Pipeline.is_supported())


@functools.lru_cache(maxsize=256)
def _driver_statement(dialect, statement):
    """A statement compiled for a dialect, and its parameters' converters.

    :returns: ``(compiled, ((parameter name, converter), ...))``.
    :raises ValueError: for a statement with an expanding parameter.
    """
    compiled = statement.compile(dialect=dialect)
    if compiled.post_compile_params:
        raise ValueError('an expanding parameter cannot be pipelined: %s'
                         % compiled.string)
    processors = []
    for bind, name in compiled.bind_names.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((name, process))
    return compiled, tuple(processors)


def _result(conn, statement, params):
    """Run a statement: its driver rows if it returns rows, else rowcount."""
    result = conn.execute(statement, params)
    if not result.returns_rows:
        return result.rowcount
    return driver_rows(result, conn.dialect)


def driver_rows(result, dialect):
    """Fetch a result's rows as the driver's tuples, and close it.

    SQLAlchemy would make a Row of each, about a microsecond apiece
    (measured, SQLite and PostgreSQL): as much as rebuilding a point.
    Callers read them by position; their columns need no type
    processing: integers (or the Decimal of a NUMERIC sum) and strings.
    """
    dbapi_error = dialect.loaded_dbapi.Error
    try:
        return result.cursor.fetchall()
    except dbapi_error as exc:
        # NOTE: wrapped as SQLAlchemy's own fetches do, for
        # translate_errors() (SQLite runs the query as it fetches).
        raise sa_exc.DBAPIError.instance(
            None, None, exc, dbapi_error, dialect=dialect) from exc
    finally:
        result.close()


def bulk_writer(dialect, table, columns, suffix=''):
    """Return the fastest bulk writer of rows into ``table`` on a dialect.

    PostgreSQL (psycopg 3) gets :class:`CopyWrite`, every other dialect
    :class:`BulkWrite`; both take the same rows and the same ``suffix``.

    :param table: the :class:`sqlalchemy.Table` (its columns are integers).
    :param columns: the names of the columns of each row, in order.
    """
    if copies(dialect):
        return CopyWrite(dialect, table, columns, suffix)
    return BulkWrite(dialect, table.name, columns, suffix)


class BulkWrite:
    """One ``INSERT ... VALUES (...) [suffix]`` run for many rows, fast.

    The statement is written once, in the driver's parameter style, and
    runs through the driver's ``executemany`` on tuples; PyMySQL folds the
    rows into multi-row statements itself. On SQLite, whose driver runs a
    statement per row, rows that come in the order of the table's key go
    :data:`SQLITE_ROWS` at a time in statements of as many ``VALUES``
    lists (:meth:`execute_chunks`; the points of a push sorted by series,
    see :data:`cloudkitty.storage.v2.sqlalchemy.fastpath.statement_rows`:
    0.93 us a point of
    ``ck_point``, sort included, instead of 1.37 one by one in push order;
    in push order, multi-row statements took 1.66: measured with raw
    ``sqlite3``). (PostgreSQL uses :class:`CopyWrite`: with psycopg,
    ``executemany`` measured 30% slower than COPY and multi-row statements
    slower still.)

    :param dialect: the engine's dialect.
    :param table: the table name.
    :param columns: the column names, in the order of each row's values.
    :param suffix: text after the VALUES list (an ``ON CONFLICT`` clause).
    """

    def __init__(self, dialect, table, columns, suffix=''):
        quote = dialect.identifier_preparer.quote
        marker = '?' if dialect.paramstyle == 'qmark' else '%s'
        head = 'INSERT INTO %s (%s) VALUES ' % (
            quote(table), ', '.join(quote(c) for c in columns))
        values = '(%s)' % ', '.join([marker] * len(columns))
        self.text = head + values + suffix
        #: Rows a multi-row statement takes (1: none, not SQLite).
        self.per_statement = 1
        if dialect.name == 'sqlite':
            # NOTE: SQLite before 3.32 binds at most 999 parameters.
            limit = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
            self.per_statement = max(1, min(SQLITE_ROWS,
                                            limit // len(columns)))
            self._many_text = head + ', '.join(
                [values] * self.per_statement) + suffix

    def execute(self, conn, rows):
        """Write ``rows`` (a list of tuples) on ``conn``, in their order."""
        if rows:
            conn.exec_driver_sql(self.text, rows)

    @staticmethod
    def sends_copy(count):
        """Never: see :meth:`CopyWrite.sends_copy`."""
        return False

    def execute_chunks(self, conn, chunks, rest):
        """Write rows laid out for multi-row statements, then the rest.

        :param chunks: tuples of :attr:`per_statement` rows' values each,
            in the order of the table's key (see :data:`cloudkitty.
            storage.v2.sqlalchemy.fastpath.statement_rows`).
        :param rest: the rows left over, one tuple each.
        """
        if chunks:
            conn.exec_driver_sql(self._many_text, chunks)
        self.execute(conn, rest)


#: Rows a SQLite bulk write binds in one statement (see :class:`BulkWrite`).
SQLITE_ROWS = 256


# NOTE: the PostgreSQL type of each SQLAlchemy column type written by COPY
# in binary (which must match exactly: an int4 column takes no int8).
_BINARY_TYPES = {sa.Integer: 'int4', sa.BigInteger: 'int8',
                 sa.String: 'varchar', sa.Text: 'text'}


#: Most rows :class:`CopyWrite` merges as arrays rather than staged (see
#: its :meth:`~CopyWrite.execute`). Into a copy of ``ck_daily``, rows
#: that all meet a row: 100 took 1.15 ms as arrays against 1.89 staged,
#: 300 took 2.5 ms either way, 1,000 took 8.3 against 7.1 (measured,
#: PostgreSQL 15, arrays sent in binary).
ARRAY_ROWS = 200


# NOTE: binary COPY's header (its signature, no flags, no extension) and
# trailer (a field count of -1), as PostgreSQL's COPY documentation gives
# them: written around rows that come as bytes (CopyWrite.streaming).
_COPY_HEADER = b'PGCOPY\n\xff\r\n\x00' + bytes(8)
_COPY_TRAILER = b'\xff\xff'


class CopyWrite:
    """Rows written with PostgreSQL's ``COPY ... FROM STDIN`` (psycopg 3).

    Without a ``suffix`` the rows are copied straight into the table. With
    one (an ``ON CONFLICT`` clause), they are copied into a temporary table
    that lives until the end of the transaction, then inserted from it in
    one statement carrying the suffix. Either way the rows are part of the
    caller's transaction: all or nothing. COPY sends rows in binary with no
    statement per row, several times faster than ``executemany``.

    Rows go in COPY's binary format, which PostgreSQL reads without
    parsing text (a fifth faster per push, measured); the columns' types
    come from the table's definition.

    A few rows with a ``suffix`` (at most :data:`ARRAY_ROWS`) go instead
    as one array per column in a single ``INSERT ... SELECT FROM
    unnest(...)`` carrying the suffix: one statement, no temporary table
    (see :meth:`execute`).

    :param dialect: the engine's dialect.
    :param table: the :class:`sqlalchemy.Table` (its columns are integers
        or text).
    :param columns: the column names, in the order of each row's values.
    :param suffix: text after the ``INSERT ... SELECT`` (an ``ON CONFLICT``
        clause), or ''.
    """

    def __init__(self, dialect, table, columns, suffix=''):
        quote = dialect.identifier_preparer.quote
        names = ', '.join(quote(c) for c in columns)
        self.types = [_BINARY_TYPES[type(table.c[c].type)] for c in columns]
        self.staging = None
        target = quote(table.name)
        if suffix:
            # NOTE: one staging table per target, named after it, dropped
            # once merged, so that a transaction may stage rows again; ON
            # COMMIT DROP ends it with a transaction that fails first.
            self.staging = quote('ck_staging_%s' % table)
            self.prepare = ('CREATE TEMPORARY TABLE %s (LIKE %s INCLUDING '
                            'DEFAULTS) ON COMMIT DROP' % (self.staging,
                                                          target))
            self.drop = 'DROP TABLE %s' % self.staging
            # NOTE: rows are merged in the order of the key they may
            # conflict on, so that concurrent pushes writing some of the
            # same keys lock them in one order and never deadlock.
            order = ', '.join(quote(c) for c in unique_key(table, columns))
            self.merge = 'INSERT INTO %s (%s) SELECT %s FROM %s%s%s' % (
                target, names, names, self.staging,
                ' ORDER BY %s' % order if order else '', suffix)
            self.merge_arrays = (
                'INSERT INTO %s (%s) SELECT %s FROM unnest(%s) AS given '
                '(%s)%s%s' % (target, names, names, ', '.join(
                    'CAST(%%b AS %s[])' % name for name in self.types), names,
                    ' ORDER BY %s' % order if order else '', suffix))
            target = self.staging
        self.copy = 'COPY %s (%s) FROM STDIN (FORMAT BINARY)' % (target,
                                                                 names)

    def execute(self, conn, rows):
        """Write ``rows`` (a list of tuples) on ``conn``.

        :returns: what the merge's suffix returns (a ``RETURNING``
            clause), as a list of tuples; else an empty list.
        """
        returned = []
        if not rows:
            return returned
        if not self.sends_copy(len(rows)):
            return self._merge_arrays(conn, rows)
        with self.streaming(conn, returned) as write:
            for row in rows:
                write(row)
        return returned

    def sends_copy(self, count):
        """Tell whether :meth:`execute` of ``count`` rows runs a ``COPY``.

        It does unless the rows are merged as arrays (a ``suffix``, at
        most :data:`ARRAY_ROWS` rows) or there are none. A ``COPY``
        cannot run in a pipeline (see :func:`pipelined`).
        """
        return count > 0 and not (self.staging and count <= ARRAY_ROWS)

    def _merge_arrays(self, conn, rows):
        """Merge a few rows through one array per column.

        Where staging them costs a temporary table's creation, its copy,
        its merge and its drop at commit, each a change to the catalog.

        :returns: as :meth:`execute`.
        """
        cursor = conn.connection.driver_connection.cursor()
        try:
            # NOTE: the arrays go in binary (%b): psycopg's text form of a
            # list of 102 integers took 64 us to make, the binary 17.
            cursor.execute(self.merge_arrays,
                           [list(column) for column in zip(*rows)])
            return cursor.fetchall() if cursor.description else []
        except conn.dialect.loaded_dbapi.Error as exc:
            raise driver_error(conn, exc, cursor,
                               self.merge_arrays) from exc
        finally:
            cursor.close()

    @contextlib.contextmanager
    def streaming(self, conn, returned=None, blocks=False):
        """Copy rows as the caller makes them.

        Yields ``write(row)``. The server stores the rows it has received
        while the caller makes the next ones. An exception raised in the
        block aborts the copy, and so the caller's transaction: nothing of
        it is stored.

        :param returned: a list that receives the rows that the merge's
            ``RETURNING`` suffix returns, if any.
        :param blocks: yield ``write(data)`` instead, for bytes holding
            whole rows in COPY's binary format (:data:`types` in order,
            as :func:`cloudkitty.storage.v2.sqlalchemy.fastpath.copy_row`
            lays them out); the format's header and trailer are written
            here.
        """
        cursor = conn.connection.driver_connection.cursor()
        try:
            if self.staging:
                cursor.execute(self.prepare)
            with cursor.copy(self.copy) as copy:
                if blocks:
                    copy.write(_COPY_HEADER)
                    yield copy.write
                    copy.write(_COPY_TRAILER)
                else:
                    copy.set_types(self.types)
                    yield copy.write_row
            if self.staging:
                cursor.execute(self.merge)
                if returned is not None and cursor.description:
                    returned.extend(cursor.fetchall())
                cursor.execute(self.drop)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise driver_error(conn, exc, cursor, self.copy) from exc
        finally:
            cursor.close()
