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
"""The InfluxDB 1.x HTTP API, as the backend uses it.

Queries always travel with their values as bound parameters (the API's
``params``), never pasted into InfluxQL. Results are read chunked, so a
server's ``max-row-limit`` never truncates an answer, and as plain JSON rows.
Every error becomes a :mod:`cloudkitty.storage.exceptions` error that names
the server, never a password.
"""

from concurrent import futures
import itertools
import json
import time

from oslo_log import log

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.influxdb import options

# NOTE: the client library (the [influxdb] extra) is imported by the first
# Client, not with this module: the package is imported to list its options
# (cloudkitty.storage.list_opts), which must not load the library.
influxdb = influx_exc = requests = None

LOG = log.getLogger(__name__)
BACKEND = 'influxdb'
#: Rows per chunk the server streams back.
CHUNK_SIZE = 10000
#: Fewest lines a write is split into batches of for speed alone.
MIN_BATCH = 1000
#: Bytes of line protocol below which :meth:`Client.write` sends one
#: request itself.
SMALL_WRITE = 1 << 16
#: Times a statement is tried again after a transient error.
TRANSIENT_RETRIES = 3
# NOTE: influxd answers this while a shard opens or closes, for example
# when another database is dropped at the same moment; it passes.
_TRANSIENT = 'engine is closed'


def _import_library():
    """Import the influxdb client library; return whether it is installed."""
    global influxdb, influx_exc, requests
    if influxdb is None:
        try:
            import influxdb as library
            from influxdb import exceptions as library_exc
            import requests as http
        except ImportError:
            return False
        influxdb, influx_exc, requests = library, library_exc, http
    return True


def _headers(compressed):
    """The HTTP headers of every request.

    The HTTP library asks for gzip answers by default; influxd then
    compresses at about 45 MB/s, twice the time it takes to send them
    plain on loopback (measured on 11 MB of daily records).
    """
    return {'Accept': 'application/json',
            'Accept-Encoding': 'gzip' if compressed else 'identity'}


class _Transient(Exception):
    """A server error that the same statement does not meet again."""


class Client:
    """A connection to one database and retention policy.

    :param opts: the ``[storage_influxdb]`` options.
    """

    def __init__(self, opts):
        scheme = 'https' if opts.use_ssl else 'http'
        self.location = '%s://%s:%d' % (scheme, opts.host, opts.port)
        if not _import_library():
            raise exceptions.BackendUnavailable(
                BACKEND, self.location, 'the influxdb client library is not '
                'installed (pip install "cloudkitty-storage[influxdb]")')
        self.database = opts.database or options.DEFAULT_DATABASE
        self.retention_policy = opts.retention_policy
        self.batch_size = opts.batch_size
        self.write_workers = opts.write_workers
        self._writers = None
        verify = opts.cafile or not opts.insecure
        self._client = influxdb.InfluxDBClient(
            host=opts.host, port=opts.port, username=opts.username,
            password=opts.password, database=self.database,
            ssl=opts.use_ssl, verify_ssl=verify, timeout=opts.timeout,
            retries=1, pool_size=max(opts.pool_size, opts.write_workers),
            headers=_headers(opts.compressed_answers))

    def close(self):
        """Close the pooled HTTP connections and the writer threads."""
        if self._writers is not None:
            self._writers.shutdown()
            self._writers = None
        self._client.close()

    def _request(self, method, endpoint, params, data=None):
        try:
            return self._client.request(
                endpoint, method=method, params=params, data=data,
                expected_response_code=204 if endpoint == 'write' else 200,
                stream=False)
        except (requests.exceptions.ConnectionError,
                requests.exceptions.Timeout) as exc:
            raise exceptions.BackendUnavailable(
                BACKEND, self.location, exc) from exc
        except influx_exc.InfluxDBServerError as exc:
            raise exceptions.BackendUnavailable(
                BACKEND, self.location, exc) from exc
        except influx_exc.InfluxDBClientError as exc:
            if endpoint == 'write':
                raise exceptions.WriteRefused(
                    BACKEND, self.location, exc) from exc
            raise exceptions.StorageError(
                'InfluxDB at %s refused a query: %s'
                % (self.location, exc)) from exc

    def query(self, statement, params=None, database=True):
        """Run one InfluxQL statement and return its series.

        :param statement: InfluxQL whose values are all ``$name``
            references.
        :param params: ``{name: value}`` bound to those references.
        :param database: False for statements that name no database
            (``CREATE DATABASE``).
        :returns: a list of ``{'name', 'tags', 'columns', 'values'}``
            dicts; the chunks of one series are joined.
        """
        query_params = {'q': statement, 'epoch': 'ns', 'chunked': 'true',
                        'chunk_size': CHUNK_SIZE}
        if database:
            query_params['db'] = self.database
        if params:
            query_params['params'] = json.dumps(params)
        method = 'GET' if statement.lstrip().upper().startswith(
            ('SELECT', 'SHOW')) else 'POST'
        for attempt in range(TRANSIENT_RETRIES):
            try:
                return self._query(method, query_params)
            except _Transient as exc:
                LOG.warning('InfluxDB at %s: %s; trying again',
                            self.location, exc)
                time.sleep(0.1 * (attempt + 1))
        return self._query(method, query_params, last=True)

    def _query(self, method, query_params, last=False):
        response = self._request(method, 'query', query_params)
        series = []
        try:
            # NOTE: one line per chunk of CHUNK_SIZE rows; iter_lines()
            # would split its growing buffer again at every read.
            for line in response.content.split(b'\n'):
                if not line:
                    continue
                for result in json.loads(line).get('results', ()):
                    if 'error' in result:
                        if not last and _TRANSIENT in result['error']:
                            raise _Transient(result['error'])
                        raise exceptions.StorageError(
                            'InfluxDB at %s: %s'
                            % (self.location, result['error']))
                    for part in result.get('series', ()):
                        last = series[-1] if series else None
                        # NOTE: SHOW SERIES answers without a name.
                        if (last is not None and last.get('name') ==
                                part.get('name') and last.get('tags') ==
                                part.get('tags')):
                            last['values'].extend(part.get('values', ()))
                        else:
                            part.setdefault('values', [])
                            series.append(part)
        except requests.exceptions.RequestException as exc:
            raise exceptions.BackendUnavailable(
                BACKEND, self.location, exc) from exc
        finally:
            response.close()
        return series

    def start_query(self, statement, params=None):
        """Start :meth:`query` in the background; the caller goes on.

        :returns: a function that waits for the answer and returns it, or
            raises the query's error.
        """
        return self._pool().submit(self.query, statement, params).result

    def rows(self, statement, params=None):
        """Run a SELECT and return its rows as dicts (tags included)."""
        found = []
        for part in self.query(statement, params):
            found.extend(self.rows_of(part))
        return found

    @staticmethod
    def rows_of(part):
        """Return the rows of one series of :meth:`query` as dicts."""
        columns = part['columns']
        tags = part.get('tags') or {}
        found = []
        for values in part['values']:
            row = dict(zip(columns, values))
            row.update(tags)
            found.append(row)
        return found

    def write(self, lines):
        """Write line-protocol lines, in batches of ``batch_size`` at most.

        A few lines (below :data:`SMALL_WRITE` bytes) go in one request
        from the caller's thread: a push makes several such writes
        (leases, slots, commits), and splitting them between the writer
        threads only added requests and hand-overs.

        :raises cloudkitty.storage.exceptions.WriteRefused: when the server
            refuses points (a partial write names what it dropped).
        """
        if len(lines) <= self.batch_size and \
                sum(map(len, lines)) < SMALL_WRITE:
            self._send(lines)
            return
        self.start_write(lines)()

    def write_all(self, requests, meanwhile=None):
        """Send each list of lines in one request, whatever its size.

        InfluxDB writes a request's lines all or none (a push's records
        and their frame-log copies, see :meth:`.rollup.Records.requests`).
        The requests go ``write_workers`` at a time; this returns when
        every one has ended.

        :param meanwhile: a function to call in the caller's thread while
            the requests are on their way (work that does not need them
            written, or that the caller can undo if they fail); when it
            raises, the requests are still waited for.
        :raises cloudkitty.storage.exceptions.WriteRefused: as
            :meth:`write`, for the first request that failed.
        """
        requests = [lines for lines in requests if lines]
        if len(requests) == 1 and meanwhile is None:
            self._send(requests[0])
            return
        pending = [self._pool().submit(self._send, lines)
                   for lines in requests]
        try:
            if meanwhile is not None:
                meanwhile()
        finally:
            futures.wait(pending)
        for done in pending:
            done.result()

    def _send(self, lines):
        self._request('POST', 'write', self._write_params(),
                      data='\n'.join(lines).encode('utf-8'))

    def _pool(self):
        """The writer threads, started when first needed."""
        if self._writers is None:
            self._writers = futures.ThreadPoolExecutor(self.write_workers)
        return self._writers

    def _write_params(self):
        params = {'db': self.database, 'precision': 'n'}
        if self.retention_policy:
            params['rp'] = self.retention_policy
        return params

    def start_write(self, lines, count=None, with_each=()):
        """Start writing lines in the background (see :meth:`write`).

        The caller may work meanwhile; the batches go ``write_workers`` at
        a time, because influxd parses one request per core.

        :param lines: a list of lines, or an iterator of ``count`` lines,
            formatted a batch at a time while earlier batches are sent.
        :param with_each: lines to write in every request, before its
            batch: InfluxDB writes a request's lines of one shard all or
            none, so that no line of ``lines`` is written without them.
        :returns: a function that waits for every batch and raises the
            first error (call it before relying on the write).
        """
        params = self._write_params()
        pool = self._pool()
        if count is None:
            count = len(lines)
        # NOTE: requests of even sizes, and twice as many as workers when
        # they stay large enough: the next batch is formatted while the
        # first ones are parsed, and no short last one leaves a core idle.
        batches = -(-count // self.batch_size)
        if count >= 2 * self.write_workers * MIN_BATCH:
            batches = max(batches, 2 * self.write_workers)
        batches = -(-batches // self.write_workers) * self.write_workers
        size = max(1, -(-count // batches))
        lines = iter(lines)
        with_each = list(with_each)
        pending = []

        def wait():
            for done in pending:
                done.result()

        try:
            while True:
                batch = list(itertools.islice(lines, size))
                if not batch:
                    break
                pending.append(pool.submit(
                    self._request, 'POST', 'write', params,
                    data='\n'.join(with_each + batch).encode('utf-8')))
        except BaseException:
            # NOTE: what was sent must end before the caller goes on.
            futures.wait(pending)
            raise
        return wait
