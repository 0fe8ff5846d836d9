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
"""The anchors of ``bench --anchor``: the same workload elsewhere, same run.

Timings drift from one run to the next on a shared machine; a ratio to an
anchor measured in the same run does not. An anchor is a store-like object
that :func:`cloudkitty.cli.perf.bench.run_workload` drives exactly as it
drives a backend (push, the timed total() and retrieve() calls, delete,
every answer checked against the workload's sums), so both columns come
from one piece of code:

``upstream-influxdb`` (:class:`UpstreamInfluxDB`)
    upstream CloudKitty 25.0.0's own ``InfluxStorage`` on a private
    ``influxd``. Upstream's package is also called ``cloudkitty``, so it
    runs in a process of its own, with the Python of an environment where
    it is installed (``pip install cloudkitty==25.0.0``; see
    :data:`UPSTREAM_PYTHON_ENV`), through
    :mod:`cloudkitty.cli.perf.upstream_driver`.
``raw`` (:class:`RawSQLite`, :class:`RawPostgreSQL`)
    the same rows inserted with ``sqlite3``'s ``executemany`` into one
    plain table with the same pragmas as the SQL backend (or, when the
    benchmarked backend is PostgreSQL, with ``psycopg``'s ``COPY`` into a
    table of the same database), and queried with plain ``GROUP BY``,
    ``LIMIT``/``OFFSET`` and ``DELETE``.

An anchor reports the seconds each call took on its side
(``last_call_seconds``): the transfer to another process, or turning rows
into DataFrames for the checks, is not counted. Both sum float64 values:
their sums are checked within ``Features.float_tolerance``.
"""

import contextlib
import datetime
import decimal
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse
import uuid

from cloudkitty import dataframe
from cloudkitty.storage import v2

#: The names ``--anchor`` accepts.
ANCHORS = ('upstream-influxdb', 'raw')
#: The variable naming the Python of upstream CloudKitty's environment.
UPSTREAM_PYTHON_ENV = 'CLOUDKITTY_UPSTREAM_PYTHON'
#: How to get that environment, for messages and the documentation.
UPSTREAM_HINT = ('python3 -m venv /tmp/ck25 && /tmp/ck25/bin/pip install '
                 'cloudkitty==25.0.0, then --upstream-python '
                 '/tmp/ck25/bin/python (or %s)' % UPSTREAM_PYTHON_ENV)
#: The script upstream's Python runs.
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      'upstream_driver.py')
#: Seconds the driver may take to start and open upstream's storage.
START_TIMEOUT = 120
#: Metrics compared as "higher is better" (the others are seconds).
THROUGHPUTS = ('push',)

UTC = datetime.timezone.utc


class AnchorFailed(RuntimeError):
    """An anchor could not be started or answered with an error."""


class AnchorFeatures(v2.Features):
    """What both anchors do: float64 sums, no waiting, time groups."""

    exact_decimal = False
    groupby_time = True
    eventually_consistent = False


class _Anchor:
    """What :func:`~cloudkitty.cli.perf.bench.run_workload` needs.

    :ivar last_call_seconds: seconds of the last call on the anchor's
        side, or None.
    """

    name = None
    features = AnchorFeatures
    last_call_seconds = None

    def describe(self):
        """Where the anchor is; no size.

        :rtype: cloudkitty.storage.v2.StoreDescription
        """
        return v2.StoreDescription(location=self.location)

    @staticmethod
    def get_retention():
        """An anchor keeps everything it is given (no retention)."""
        return datetime.timedelta(days=365 * 100)

    def stage(self, frames):
        """Prepare a push outside the clock; return what push() takes."""
        return frames

    @staticmethod
    def peak_rss_mib():
        """Not measured: the bench's own process is not the anchor's."""
        return None


# upstream-influxdb ---------------------------------------------------------

def _point_lists(frames):
    """Frames as the driver's ``stage`` command takes them."""
    return [[frame.start.isoformat(), frame.end.isoformat(),
             [[type_, point.unit, str(point.qty), str(point.price),
               dict(point.groupby), dict(point.metadata)]
              for type_, point in frame.iterpoints()]]
            for frame in frames]


def _frames_from_lists(frames):
    """Our DataFrames from the driver's retrieve() answer."""
    result = []
    for start, end, points in frames:
        frame = dataframe.DataFrame(datetime.datetime.fromisoformat(start),
                                    datetime.datetime.fromisoformat(end))
        for type_, unit, qty, price, groupby, metadata in points:
            frame.add_point(dataframe.DataPoint(
                unit, decimal.Decimal(qty), decimal.Decimal(price), groupby,
                metadata), type_)
        result.append(frame)
    return result


def _total_row(row):
    """A total() row of the driver with datetimes and Decimals again."""
    row = dict(row)
    for key in ('begin', 'end'):
        if isinstance(row.get(key), str):
            row[key] = datetime.datetime.fromisoformat(row[key])
    for key in ('qty', 'rate'):
        if isinstance(row.get(key), str):
            row[key] = decimal.Decimal(row[key])
    return row


class UpstreamInfluxDB(_Anchor):
    """Upstream CloudKitty 25.0.0's InfluxStorage, in its own process.

    :param python: the Python of an environment with upstream CloudKitty.
    :param url: the InfluxDB server, ``http://host:port``.
    :raises AnchorFailed: when the driver does not start.
    """

    name = 'upstream-influxdb'

    def __init__(self, python, url):
        parts = urllib.parse.urlsplit(url)
        self.location = '%s://%s:%s' % (parts.scheme, parts.hostname,
                                        parts.port)
        database = 'bench_%s' % uuid.uuid4().hex[:12]
        # NOTE: -I: neither this checkout nor the caller's environment may
        # shadow upstream's own cloudkitty package.
        self._process = subprocess.Popen(
            [python, '-I', DRIVER, parts.hostname, str(parts.port),
             database], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1)
        line = self._process.stdout.readline()
        if not line or not json.loads(line).get('ready'):
            self.close()
            raise AnchorFailed(
                'upstream CloudKitty\'s InfluxStorage did not start with %s '
                '(its error is above); it needs upstream CloudKitty 25.0.0: '
                '%s' % (python, UPSTREAM_HINT))

    def _call(self, op, **kwargs):
        """Send one command; return its answer, keep its seconds."""
        self.last_call_seconds = None
        self._process.stdin.write(json.dumps(dict(kwargs, op=op)) + '\n')
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise AnchorFailed('upstream\'s driver ended during %s' % op)
        reply = json.loads(line)
        if 'error' in reply:
            raise AnchorFailed('upstream %s: %s' % (op, reply['error']))
        self.last_call_seconds = reply['seconds']
        return reply['answer']

    def stage(self, frames):
        """Send the frames to the driver before the clock starts."""
        self._call('stage', frames=_point_lists(frames))
        return None

    def push(self, frames, scope_id=None):
        """Push the staged frames (or ``frames``, staged first)."""
        if frames is not None:
            self.stage(frames)
        self._call('push', scope_id=scope_id)

    def total(self, groupby=None, begin=None, end=None, paginate=True,
              **kwargs):
        """upstream's total(), its rows with Decimals and datetimes."""
        answer = self._call('total', groupby=groupby,
                            begin=begin.isoformat(), end=end.isoformat(),
                            paginate=paginate, **kwargs)
        answer['results'] = [_total_row(row) for row in answer['results']]
        return answer

    def retrieve(self, begin=None, end=None, paginate=True, **kwargs):
        """upstream's retrieve(), as our DataFrames."""
        answer = self._call('retrieve', begin=begin.isoformat(),
                            end=end.isoformat(), paginate=paginate,
                            **kwargs)
        return {'total': answer['total'],
                'dataframes': _frames_from_lists(answer['frames'])}

    def delete(self, begin=None, end=None, filters=None):
        """upstream's delete(); it does not count what it deleted."""
        self._call('delete', begin=begin.isoformat(), end=end.isoformat(),
                   filters=filters)

    def close(self):
        """End the driver (its input ends, then it is killed if need be)."""
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        with contextlib.suppress(OSError):
            self._process.stdout.close()


# raw -----------------------------------------------------------------------

_RAW_SCHEMA = (
    'CREATE TABLE %(table)s (begin BIGINT NOT NULL, "end" BIGINT NOT NULL, '
    'type TEXT NOT NULL, unit TEXT NOT NULL, project_id TEXT, id TEXT, '
    'metadata TEXT NOT NULL, qty DOUBLE PRECISION NOT NULL, '
    'price DOUBLE PRECISION NOT NULL)',
    'CREATE INDEX %(table)s_begin ON %(table)s (begin)',
    'CREATE INDEX %(table)s_project ON %(table)s (project_id, begin)',
)
#: The groupby keys the raw table has columns for.
_RAW_COLUMNS = {'time': 'begin', 'type': 'type', 'project_id': 'project_id',
                'id': 'id'}


def _epoch(moment):
    return int(moment.timestamp())


def _moment(seconds):
    return datetime.datetime.fromtimestamp(seconds, UTC)


class RawSQLite(_Anchor):
    """The same rows through ``sqlite3`` alone, in one plain table.

    :param path: the SQLite file to create.
    """

    name = 'raw'
    #: The placeholder of the driver's parameters.
    mark = '?'

    def __init__(self, path):
        self.location = 'sqlite:///' + os.path.abspath(path)
        self.table = 'point'
        self._conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ('journal_mode = WAL', 'mmap_size = %d' % (1 << 30),
                       'cache_size = -65536'):
            self._conn.execute('PRAGMA ' + pragma)
        self._create()

    def _create(self):
        for statement in _RAW_SCHEMA:
            self._execute(statement % {'table': self.table})

    def _execute(self, sql, params=()):
        """Run one statement; return its cursor."""
        return self._conn.execute(sql, params)

    def _insert(self, rows):
        """Insert rows in one transaction: ``executemany``."""
        with self._conn:
            self._conn.execute('BEGIN')
            self._conn.executemany(
                'INSERT INTO %s VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'
                % self.table, rows)

    def _delete(self, sql, params):
        """Delete in one transaction; return the rows deleted."""
        with self._conn:
            return self._conn.execute(sql, params).rowcount

    def _run(self, call):
        """Run ``call()``, keep its seconds, return its result."""
        start = time.perf_counter()
        result = call()
        self.last_call_seconds = time.perf_counter() - start
        return result

    def stage(self, frames):
        """The rows of ``frames``, built before the clock starts."""
        rows = []
        for frame in frames:
            begin, end = _epoch(frame.start), _epoch(frame.end)
            for type_, point in frame.iterpoints():
                rows.append((begin, end, type_, point.unit,
                             point.groupby.get('project_id'),
                             point.groupby.get('id'),
                             json.dumps(point.metadata), float(point.qty),
                             float(point.price)))
        return rows

    def push(self, rows, scope_id=None):
        """Insert staged rows in one transaction."""
        self._run(lambda: self._insert(rows))

    def _where(self, begin, end, filters):
        mark = self.mark
        sql = ' WHERE begin >= %s AND begin < %s' % (mark, mark)
        params = [_epoch(begin), _epoch(end)]
        for key, value in (filters or {}).items():
            sql += ' AND %s = %s' % (_RAW_COLUMNS[key], mark)
            params.append(value)
        return sql, params

    def total(self, groupby=None, begin=None, end=None, paginate=True,
              **kwargs):
        """SUM() with a plain GROUP BY."""
        columns = [_RAW_COLUMNS[key] for key in groupby or ()]
        where, params = self._where(begin, end, None)
        select = ', '.join(columns + ['SUM(qty)', 'SUM(price)', 'COUNT(*)'])
        sql = 'SELECT %s FROM %s%s' % (select, self.table, where)
        if columns:
            sql += ' GROUP BY ' + ', '.join(columns)
        rows = self._run(lambda: self._execute(sql, params).fetchall())
        results = []
        for row in rows:
            *keys, qty, price, count = row
            if not count:
                continue
            result = {'begin': begin, 'end': end, 'qty': qty, 'rate': price}
            for key, value in zip(groupby or (), keys):
                if key == 'time':
                    result['begin'] = _moment(value)
                else:
                    result[key] = value
            results.append(result)
        return {'total': len(results), 'results': results}

    def retrieve(self, begin=None, end=None, filters=None, offset=0,
                 limit=1000, paginate=True, **kwargs):
        """COUNT(*), then the page (LIMIT/OFFSET) in time order."""
        where, params = self._where(begin, end, filters)
        page = ' LIMIT %s OFFSET %s' % (self.mark, self.mark)
        page_params = [limit, offset]
        if not paginate:
            page, page_params = '', []

        def read():
            total = self._execute('SELECT COUNT(*) FROM %s%s'
                                  % (self.table, where),
                                  params).fetchone()[0]
            rows = self._execute(
                'SELECT * FROM %s%s ORDER BY begin%s'
                % (self.table, where, page), params + page_params).fetchall()
            return total, rows

        total, rows = self._run(read)
        frames = {}
        for (start, stop, type_, unit, project_id, id_, metadata, qty,
             price) in rows:
            frame = frames.get(start)
            if frame is None:
                frame = frames[start] = dataframe.DataFrame(
                    _moment(start), _moment(stop))
            groupby = {'project_id': project_id, 'id': id_}
            frame.add_point(dataframe.DataPoint(
                unit, decimal.Decimal(repr(qty)),
                decimal.Decimal(repr(price)), groupby,
                json.loads(metadata)), type_)
        return {'total': total, 'dataframes': list(frames.values())}

    def delete(self, begin=None, end=None, filters=None):
        """DELETE the window; return the rows deleted."""
        where, params = self._where(begin, end, filters)
        return self._run(lambda: self._delete(
            'DELETE FROM %s%s' % (self.table, where), params))

    def close(self):
        """Close the connection."""
        self._conn.close()


class RawPostgreSQL(RawSQLite):
    """The same rows through ``psycopg`` alone: ``COPY``, plain SQL.

    The table is made in the benchmarked database under a name of its own
    and dropped afterwards.

    :param url: the database, as a SQLAlchemy URL
        (``postgresql+psycopg://...``) or a libpq one.
    """

    mark = '%s'

    def __init__(self, url):
        import psycopg

        parts = urllib.parse.urlsplit(url)
        conninfo = urllib.parse.urlunsplit(('postgresql',) + parts[1:])
        self.location = 'postgresql://%s%s' % (
            parts.hostname or '', parts.path)
        self.table = 'bench_raw_%s' % uuid.uuid4().hex[:12]
        self._conn = psycopg.connect(conninfo, autocommit=True)
        self._create()

    def _execute(self, sql, params=()):
        return self._conn.execute(sql, params)

    def _insert(self, rows):
        """Insert rows in one transaction with ``COPY``."""
        with self._conn.transaction():
            with self._conn.cursor() as cursor:
                with cursor.copy('COPY %s FROM STDIN' % self.table) as copy:
                    for row in rows:
                        copy.write_row(row)

    def _delete(self, sql, params):
        with self._conn.transaction():
            return self._conn.execute(sql, params).rowcount

    def close(self):
        """Drop the table, then close the connection."""
        with contextlib.suppress(Exception):
            self._conn.execute('DROP TABLE IF EXISTS %s' % self.table)
        self._conn.close()


# Opening and comparing ------------------------------------------------------

@contextlib.contextmanager
def open_anchor(name, upstream_python=None, influxdb_url=None,
                raw_url=None):
    """Yield the anchor ``name``, ready; clean everything up afterwards.

    :param name: one of :data:`ANCHORS`.
    :param raw_url: for ``raw``: a PostgreSQL URL to use ``psycopg`` on
        (the benchmarked database); by default a new SQLite file.
    :param upstream_python: for ``upstream-influxdb``: the Python of an
        environment with upstream CloudKitty 25.0.0.
    :param influxdb_url: for ``upstream-influxdb``: a running InfluxDB 1.x
        server to use (a new database is made on it); by default a private
        ``influxd`` is started on a free loopback port and removed after.
    :raises AnchorFailed: when the anchor cannot start.
    """
    tmp = tempfile.mkdtemp(prefix='cloudkitty-anchor-')
    try:
        if name == 'raw':
            if raw_url and raw_url.startswith('postgresql'):
                anchor = RawPostgreSQL(raw_url)
            else:
                anchor = RawSQLite(os.path.join(tmp, 'raw.sqlite'))
            try:
                yield anchor
            finally:
                anchor.close()
            return
        if not upstream_python:
            raise AnchorFailed('--anchor upstream-influxdb needs upstream '
                               'CloudKitty 25.0.0: ' + UPSTREAM_HINT)
        server = None
        if influxdb_url is None:
            # NOTE: the test helper that starts a private influxd; imported
            # here so that only this anchor needs it.
            from cloudkitty.tests import influxdb_server
            server = influxdb_server.InfluxDBServer(os.path.join(tmp, 'db'))
            try:
                influxdb_url = server.start()
            except influxdb_server.InfluxDBServerError as exc:
                raise AnchorFailed('cannot start influxd: %s' % exc) from exc
        try:
            anchor = UpstreamInfluxDB(upstream_python, influxdb_url)
            try:
                yield anchor
            finally:
                anchor.close()
        finally:
            if server is not None:
                server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ratio(metric, unit, ours, theirs, not_latencies=()):
    """How many times better ours is on one row (None if not a timing).

    Seconds: theirs / ours; a throughput (:data:`THROUGHPUTS`): ours /
    theirs. Above 1, ours is faster. Three significant digits.

    :param not_latencies: metrics in seconds that are not the latency of
        one call (a total time), which get no ratio.
    :rtype: float
    """
    numbers = all(isinstance(value, (int, float)) and value > 0
                  for value in (ours, theirs))
    if not numbers:
        return None
    if metric in THROUGHPUTS:
        value = ours / theirs
    elif unit == 's' and metric not in not_latencies:
        value = theirs / ours
    else:
        return None
    return float('%.3g' % value)


def side_by_side(ours, theirs, name, not_latencies=()):
    """Put our rows beside an anchor's: one row per metric of ours.

    :param ours: our ``[(metric, value, unit)]``.
    :param theirs: the anchor's rows.
    :param name: the anchor's name, the header of its column.
    :param not_latencies: as for :func:`ratio`.
    :returns: ``(columns, rows)`` for a cliff lister: ``metric``,
        ``ours``, the anchor, ``ratio`` (see :func:`ratio`), ``unit``.
    """
    values = {metric: value for metric, value, _ in theirs}
    rows = []
    for metric, value, unit in ours:
        other = values.get(metric)
        rows.append((metric, value, other,
                     ratio(metric, unit, value, other, not_latencies),
                     unit))
    return ('metric', 'ours', name, 'ratio', 'unit'), rows
