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
"""What upstream CloudKitty 25's InfluxDB storage wrote, read for migrate.

``cloudkitty-storage migrate --source-backend upstream-influxdb`` reads
the points that upstream's ``cloudkitty.storage.v2.influx.InfluxStorage``
wrote to an InfluxDB 1.x server, through :class:`UpstreamInfluxDBSource`:
a read-only store with the few calls migrate makes on a source
(``retrieve`` for counts, ``iter_points``, ``total`` by ``type`` and by
``time``, ``close``).

Upstream's layout, as its ``InfluxClient.append_point`` writes it:

* one InfluxDB point per rated point, all in the measurement
  ``dataframes`` of the configured database and retention policy;
* the point's time is the frame's start; the field
  ``__ck_collect_period`` holds the frame's length in seconds (points
  written without it last ``[collect] period``);
* tags: ``type`` (the metric type) and one tag per groupby key holding its
  value as text (the line protocol drops an empty or None value);
* fields: ``qty`` and ``price`` as float64, ``unit`` and ``description``
  (dropped when None) as strings, ``groupby`` and ``metadata`` (the keys,
  joined by ``|``), and one field per metadata key with its own InfluxDB
  type (string, integer, float or boolean; dropped when None).

How a point reads back, here (and how upstream's own ``retrieve()`` reads
it, where it differs):

* groupby values are text, as tags are (an ``int`` 3 pushed upstream reads
  back ``'3'``, as from upstream); a missing tag reads ``''``;
* metadata values keep their field type (a dict or list was written as
  its ``str()``); a missing field, which is how upstream wrote None, reads
  None (upstream: ``''``);
* ``qty`` and ``price`` become Decimals as every float does in this
  project (:func:`cloudkitty.storage.v2.money.check`): the shortest
  decimal that reads back as the float64 (``repr``), rounded half to
  even to 12 fractional digits.

Sums are InfluxDB's float64 sums, so :attr:`UpstreamFeatures.
float_tolerance` makes migrate's verification compare them within 1e-9
relative. Filters on the server are bound parameters, never InfluxQL text.
"""

import datetime
import decimal
import itertools
import urllib.parse

from oslo_config import cfg

from cloudkitty.cli import main
from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage import v2
from cloudkitty.storage.v2.influxdb import client as client_mod
from cloudkitty.storage.v2.influxdb import encoding
from cloudkitty.storage.v2.influxdb import options
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query
from cloudkitty.storage.v2 import timeutils

#: The name ``--source-backend`` takes.
NAME = 'upstream-influxdb'
#: The measurement upstream writes every point to.
MEASUREMENT = 'dataframes'
#: The tag holding the metric type.
TYPE_TAG = 'type'
#: The field holding the frame's length in seconds.
PERIOD_FIELD = '__ck_collect_period'
#: Fields every point upstream writes has, with the types they may have.
REQUIRED_FIELDS = {'qty': {'float', 'integer'}, 'price': {'float', 'integer'},
                   'unit': {'string'}, 'groupby': {'string'},
                   'metadata': {'string'}}
#: Upstream's default ``[collect] period``, in seconds.
DEFAULT_PERIOD = 3600
#: How far the sums of both sides may be apart, relative (float64 sums).
TOLERANCE = decimal.Decimal('1e-9')
#: Query parameters a ``--source-connection`` URL may carry.
URL_OPTIONS = ('retention_policy', 'period', 'insecure', 'cafile', 'timeout')
#: The groupings :meth:`UpstreamInfluxDBSource.total` answers.
GROUPINGS = ('type', 'time')

_SECOND_NS = 10 ** 9
_TRUE = ('1', 'true', 'yes', 'on')
_FALSE = ('0', 'false', 'no', 'off')


class UpstreamSourceError(ValueError):
    """Upstream's InfluxDB storage cannot be read as asked; nothing written.

    Raised for a bad ``--source-connection``, a missing database or
    retention policy, data that is not in upstream's layout, and filters
    that the layout cannot answer.
    """


class UpstreamFeatures(v2.Features):
    """What reading upstream's layout offers migrate."""

    #: Are sums exact? No: InfluxDB sums upstream's float64 fields.
    exact_decimal = False
    #: Can total() group by frame start? Yes (by whole second).
    groupby_time = True
    #: Are reads up to date at once? Yes.
    eventually_consistent = False
    #: How far may a sum be from the exact one? 1e-9 relative.
    float_tolerance = TOLERANCE


def _flag(name, text):
    """Read a boolean URL option."""
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise UpstreamSourceError('--source-connection: %s must be true or '
                              'false, got %r' % (name, text))


def apply_url(conf, url):
    """Set ``[storage_influxdb]`` (and ``[collect] period``) from a URL.

    The URL is ``influxdb://[user[:password]@]host[:port]/database``
    (``http://`` too; ``https://`` sets ``use_ssl``), with optional query
    parameters ``retention_policy``, ``period`` (seconds), ``insecure``,
    ``cafile`` and ``timeout``, named as upstream's options are.

    :param conf: a conf with :func:`register_opts` applied.
    :raises UpstreamSourceError: for anything else.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ('influxdb', 'http', 'https'):
        raise UpstreamSourceError(
            '--source-connection for %s must be influxdb://host:port/'
            'database (or http:// or https://), got scheme %r'
            % (NAME, parts.scheme))
    # NOTE: the path is one database name; a '/' in it is written %2F.
    raw = parts.path[1:]
    database = urllib.parse.unquote(raw)
    try:
        port = parts.port
    except ValueError as exc:
        raise UpstreamSourceError('--source-connection: %s' % exc) from exc
    if not parts.hostname or not database or '/' in raw:
        raise UpstreamSourceError(
            '--source-connection must name a host and one database: '
            'influxdb://host:port/database, got %s' % redact(url))
    group = options.GROUP
    conf.set_override('host', parts.hostname, group=group)
    conf.set_override('port', port or 8086, group=group)
    conf.set_override('database', database, group=group)
    conf.set_override('use_ssl', parts.scheme == 'https', group=group)
    if parts.username is not None:
        conf.set_override('username', urllib.parse.unquote(parts.username),
                          group=group)
    if parts.password is not None:
        conf.set_override('password', urllib.parse.unquote(parts.password),
                          group=group)
    for key, value in urllib.parse.parse_qsl(parts.query,
                                             keep_blank_values=True):
        if key not in URL_OPTIONS:
            raise UpstreamSourceError(
                '--source-connection: unknown option %r (known: %s)'
                % (key, ', '.join(URL_OPTIONS)))
        try:
            if key == 'period':
                conf.set_override('period', int(value), group='collect')
            elif key == 'insecure':
                conf.set_override(key, _flag(key, value), group=group)
            elif key == 'timeout':
                conf.set_override(key, float(value), group=group)
            else:
                conf.set_override(key, value, group=group)
        except ValueError as exc:
            raise UpstreamSourceError('--source-connection: bad %s %r (%s)'
                                      % (key, value, exc)) from exc


def redact(url):
    """A URL without the password of its user part."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = '%s:***@%s' % (parts.username, parts.netloc.rpartition('@')[2])
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def register_opts(conf):
    """Register upstream's options this reader uses on ``conf``.

    ``[storage_influxdb]`` has upstream's names and defaults (see
    :mod:`cloudkitty.storage.v2.influxdb.options`); ``[collect] period``
    is upstream's default frame length.
    """
    options.register_opts(conf)
    try:
        conf.register_opts([cfg.IntOpt(
            'period', default=DEFAULT_PERIOD, min=1,
            help='Frame length, in seconds, of points upstream wrote '
                 'without __ck_collect_period.')], group='collect')
    except cfg.DuplicateOptError:
        pass


def make_conf(config_files=(), connection=None):
    """Return the conf of the source: upstream's options, files, URL.

    :param config_files: upstream's configuration files (for example its
        ``cloudkitty.conf``): ``[storage_influxdb]`` and ``[collect]`` are
        read, ``[storage]`` is not.
    :param connection: a URL as :func:`apply_url` takes, or None.
    :raises UpstreamSourceError: for a bad URL or ``version = 2``.
    """
    conf = main.make_conf(config_files)
    register_opts(conf)
    if connection:
        apply_url(conf, connection)
    if conf.storage_influxdb.version != 1:
        raise UpstreamSourceError(
            '[storage_influxdb] version = %s: only what upstream wrote to '
            'InfluxDB 1.x (version = 1) can be migrated'
            % conf.storage_influxdb.version)
    return conf


def _from_ns(nanoseconds):
    """Integer nanoseconds since the epoch as an aware UTC datetime."""
    return query.from_micros(nanoseconds // 1000)


def _money(value, field):
    """A float64 qty or price of upstream as this project's Decimal."""
    if isinstance(value, int) and not isinstance(value, bool):
        # NOTE: an integer field (upstream always wrote floats, but a
        # point written by hand may not be) is the same number.
        value = float(value)
    return money.check(value, field)


class _Decoder:
    """Turns upstream's rows into points, as the module docstring says.

    Frame bounds, money and key lists repeat from row to row: each is
    converted once per read.

    :param fields: ``{field key: {InfluxDB types}}`` of the measurement.
    :param period: the frame length of rows without ``__ck_collect_period``.
    """

    def __init__(self, fields, period):
        self.float_keys = frozenset(key for key, kinds in fields.items()
                                    if kinds == {'float'})
        self.period = period
        self._frames = {}
        self._money = {}
        self._keys = {}

    def frame(self, time_ns, period):
        """Return the ``(start, end)`` of a row's frame."""
        period = period or self.period
        found = self._frames.get((time_ns, period))
        if found is None:
            start = _from_ns(time_ns)
            found = self._frames[(time_ns, period)] = (
                start, start + datetime.timedelta(seconds=period))
        return found

    def money(self, value, field):
        """Return a qty or price as a Decimal (see :func:`_money`)."""
        found = self._money.get((field, value))
        if found is None:
            found = self._money[(field, value)] = _money(value, field)
        return found

    def keys(self, text):
        """Return the keys of a ``groupby`` or ``metadata`` field."""
        found = self._keys.get(text)
        if found is None:
            found = self._keys[text] = tuple(
                key for key in (text or '').split('|') if key)
        return found

    def point(self, row, tags):
        """One row (fields by name) of a series (its tags) as a DataPoint."""
        groupby = {key: tags.get(key, '')
                   for key in self.keys(row.get('groupby'))}
        metadata = {}
        for key in self.keys(row.get('metadata')):
            value = row.get(key)
            if (key in self.float_keys and isinstance(value, int)
                    and not isinstance(value, bool)):
                value = float(value)
            metadata[key] = value
        description = row.get('description')
        return dataframe.DataPoint(
            row.get('unit'), self.money(row['qty'], 'qty'),
            self.money(row['price'], 'price'), groupby, metadata,
            description if isinstance(description, str) else None)


class UpstreamInfluxDBSource:
    """A read-only store over upstream's InfluxDB layout.

    :param conf: a conf from :func:`make_conf`.
    :raises cloudkitty.storage.exceptions.BackendUnavailable: when the
        server does not answer (or the client library is missing).
    :raises UpstreamSourceError: when the database or the retention policy
        does not exist, or the database holds data in another layout.
    """

    name = NAME
    features = UpstreamFeatures

    def __init__(self, conf):
        opts = conf.storage_influxdb
        self.period = conf.collect.period
        self.retention_policy = opts.retention_policy
        try:
            self.client = client_mod.Client(opts)
        except exceptions.BackendUnavailable as exc:
            raise exceptions.BackendUnavailable(
                NAME, exc.location, exc.reason) from exc
        self.database = self.client.database
        self.location = self.client.location
        self.user = opts.username
        self.host, self.port = opts.host, opts.port
        self._source = '%s.%s.%s' % (
            encoding.quote_identifier(self.database),
            encoding.quote_identifier(self.retention_policy),
            encoding.quote_identifier(MEASUREMENT))
        try:
            self.tags = self.fields = None
            self._check()
        except BaseException:
            self.client.close()
            raise

    # Opening ---------------------------------------------------------------

    def identity(self):
        """The source as migrate's state file records it.

        :returns: ``{'backend': 'upstream-influxdb', 'connection':
            'influxdb://[user@]host:port/database?retention_policy=rp'}``,
            never with a password.
        """
        netloc = self.location.split('://', 1)[1]
        if self.user:
            netloc = '%s@%s' % (urllib.parse.quote(self.user, safe=''),
                                netloc)
        url = '%s://%s/%s?retention_policy=%s' % (
            'https' if self.location.startswith('https') else 'influxdb',
            netloc, urllib.parse.quote(self.database, safe=''),
            urllib.parse.quote(self.retention_policy, safe=''))
        return {'backend': NAME, 'connection': url}

    def _query(self, statement, params=None, database=True):
        """Run a statement; a server that does not answer names us."""
        try:
            return self.client.query(statement, params, database=database)
        except exceptions.BackendUnavailable as exc:
            raise exceptions.BackendUnavailable(
                NAME, exc.location, exc.reason) from exc

    def _names(self, statement, database=True):
        """The first column of every row a SHOW statement returns."""
        return [values[0] for part in self._query(statement,
                                                  database=database)
                for values in part['values']]

    def _check(self):
        """Refuse a missing database or policy, or another layout."""
        databases = self._names('SHOW DATABASES', database=False)
        if self.database not in databases:
            raise UpstreamSourceError(
                'InfluxDB at %s has no database %r (it has: %s); set '
                '[storage_influxdb] database to the one upstream '
                'CloudKitty writes to' % (self.location, self.database,
                                          ', '.join(sorted(databases))
                                          or 'none'))
        quoted = encoding.quote_identifier(self.database)
        policies = self._names('SHOW RETENTION POLICIES ON %s' % quoted)
        if self.retention_policy not in policies:
            raise UpstreamSourceError(
                'database %r at %s has no retention policy %r (it has: '
                '%s)' % (self.database, self.location,
                         self.retention_policy, ', '.join(sorted(policies))))
        measurements = self._names('SHOW MEASUREMENTS ON %s' % quoted)
        if measurements and MEASUREMENT not in measurements:
            hint = ''
            if encoding.MEASUREMENT in measurements:
                hint = ('; it looks like this project\'s influxdb backend: '
                        'use --source-backend influxdb')
            raise UpstreamSourceError(
                'database %r at %s is not in upstream CloudKitty\'s layout: '
                'it has no %r measurement (it has: %s)%s'
                % (self.database, self.location, MEASUREMENT,
                   ', '.join(sorted(measurements)), hint))
        self._read_keys()

    def _read_keys(self):
        """Read the tag and field keys; refuse a foreign measurement."""
        fields = {}
        tags = set()
        if self._has_measurement():
            for part in self._query('SHOW FIELD KEYS FROM %s' % self._source):
                for key, kind in part['values']:
                    fields.setdefault(key, set()).add(kind)
            tags = set(self._names('SHOW TAG KEYS FROM %s' % self._source))
        if fields:
            wrong = ['%s (%s)' % (key, '/'.join(sorted(fields.get(key, ())))
                                  or 'missing')
                     for key, kinds in sorted(REQUIRED_FIELDS.items())
                     if not fields.get(key) or fields[key] - kinds]
            if TYPE_TAG not in tags:
                wrong.append('tag %s (missing)' % TYPE_TAG)
            if wrong:
                raise UpstreamSourceError(
                    'measurement %r of database %r at %s is not in upstream '
                    'CloudKitty\'s layout: %s' % (
                        MEASUREMENT, self.database, self.location,
                        ', '.join(wrong)))
        self.fields, self.tags = fields, tags

    def _has_measurement(self):
        """Tell whether the measurement exists in the database."""
        return MEASUREMENT in self._names(
            'SHOW MEASUREMENTS ON %s' % encoding.quote_identifier(
                self.database))

    def check_filters(self, filters):
        """Refuse filters that upstream's layout cannot answer exactly.

        A filter may name ``type`` or a groupby key (a tag upstream), with
        text values. A metadata key is a field upstream, typed, and may
        mean something else on the destination: it is refused.

        :param filters: ``{key: [values]}`` or None.
        :raises UpstreamSourceError: naming the key or value.
        """
        for key, values in (filters or {}).items():
            if key != TYPE_TAG and key in (self.fields or ()):
                raise UpstreamSourceError(
                    '--filter %s: %r is a metadata field in upstream\'s '
                    'layout; a migration from %s can filter on type and '
                    'groupby keys only' % (key, key, NAME))
            for value in values:
                if not isinstance(value, str):
                    raise UpstreamSourceError(
                        '--filter %s: %r is not text; upstream\'s tags '
                        'hold text only' % (key, value))

    # Reading ---------------------------------------------------------------

    def _where(self, begin, end, filters):
        """The WHERE clause of a window and filters, and its parameters."""
        self.check_filters(filters)
        clauses = ['time >= $begin', 'time < $end']
        params = {'begin': timeutils.to_ns(begin),
                  'end': timeutils.to_ns(end)}
        for index, (key, values) in enumerate(sorted((filters or {})
                                                     .items())):
            alternatives = []
            for number, value in enumerate(values):
                name = 'f%d_%d' % (index, number)
                params[name] = value
                alternatives.append('%s::tag = $%s' % (
                    encoding.quote_identifier(key), name))
            clauses.append('(%s)' % ' OR '.join(alternatives))
        return ' AND '.join(clauses), params

    def _window(self, begin, end, filters, metric_types):
        """Validate like a backend does; fold the types into the filters."""
        request = query.validate_retrieve(begin=begin, end=end,
                                          filters=filters,
                                          metric_types=metric_types)
        filters = {key: list(values) for key, values in request.filters}
        if request.metric_types:
            types = set(request.metric_types)
            if TYPE_TAG in filters:
                types &= set(filters[TYPE_TAG])
            filters[TYPE_TAG] = sorted(types)
        return request.begin, request.end, filters

    def count(self, begin, end, filters=None):
        """Return the number of points in ``[begin, end)`` matching."""
        if not self.fields:
            return 0
        where, params = self._where(begin, end, filters)
        total = 0
        for part in self._query('SELECT COUNT("qty"::field) FROM %s WHERE %s'
                                % (self._source, where), params):
            total += sum(values[1] for values in part['values'])
        return total

    def retrieve(self, begin=None, end=None, filters=None, metric_types=None,
                 offset=0, limit=1000, paginate=True):
        """Return a page of points, as :meth:`BaseStorage.retrieve` does.

        :returns: ``{'total': int, 'dataframes': [DataFrame, ...]}``.
        """
        begin, end, filters = self._window(begin, end, filters, metric_types)
        total = self.count(begin, end, filters)
        rows = self.iter_points(begin=begin, end=end, filters=filters,
                                batch_size=max(limit, 1))
        try:
            page = list(itertools.islice(
                rows, offset, offset + limit if paginate else None))
        finally:
            rows.close()
        return query.build_retrieve(total, page)

    def iter_points(self, begin=None, end=None, filters=None,
                    metric_types=None, batch_size=1000):
        """Yield ``(start, end, type, DataPoint)`` by frame start and type.

        The window is read in slices of about ``batch_size`` points (see
        :meth:`_slices`), so memory holds one slice: ``batch_size`` points,
        or the points of one second of frame starts when there are more.
        """
        query.check_batch_size(batch_size)
        begin, end, filters = self._window(begin, end, filters, metric_types)
        self._read_keys()
        if not self.fields:
            return
        where, params = self._where(begin, end, filters)
        names = sorted(self.fields)
        statement = 'SELECT %s FROM %s WHERE %s GROUP BY *' % (
            ', '.join('%s::field' % encoding.quote_identifier(name)
                      for name in names), self._source, where)
        decoder = _Decoder(self.fields, self.period)
        for first, last in self._slices(where, params, batch_size):
            found = []
            for serial, part in enumerate(self._query(
                    statement, dict(params, begin=first, end=last))):
                tags = part.get('tags') or {}
                type_ = tags.get(TYPE_TAG, '')
                index = {name: number
                         for number, name in enumerate(part['columns'])}
                at = index['time']
                for values in part['values']:
                    row = {name: values[index[name]] for name in names
                           if name in index}
                    found.append((values[at], type_, serial, row, tags))
            found.sort(key=lambda item: item[:3])
            for time_ns, type_, _, row, tags in found:
                start, stop = decoder.frame(time_ns, row.get(PERIOD_FIELD))
                yield start, stop, type_, decoder.point(row, tags)

    def _slices(self, where, params, size):
        """Cut a window into ``[first, last)`` ns slices of ~``size`` points.

        One aggregate query counts the points of each second of frame
        starts; a slice ends where adding the next second would pass
        ``size``. Empty windows give no slice.
        """
        counts = []
        for part in self._query(
                'SELECT COUNT("qty"::field) FROM %s WHERE %s GROUP BY '
                'time(1s) fill(none)' % (self._source, where), params):
            counts.extend((second, count) for second, count in part['values']
                          if count)
        if not counts:
            return []
        counts.sort()
        edges = [params['begin']]
        held = 0
        for second, count in counts:
            if held and held + count > size:
                edges.append(second)
                held = 0
            held += count
        edges.append(params['end'])
        return list(zip(edges, edges[1:]))

    def total(self, groupby=None, begin=None, end=None, metric_types=None,
              filters=None, offset=0, limit=1000, paginate=True, **kwargs):
        """Sum qty and price by ``type`` or by frame start (``time``).

        The sums are InfluxDB's float64 sums, as Decimals of their
        ``repr``. Grouped by ``time``, points are grouped by the whole
        second of their frame's start.

        :returns: ``{'total': int, 'results': [{'begin', 'end', 'qty',
            'rate', and 'type' when grouped by type}, ...]}``.
        :raises cloudkitty.storage.exceptions.NotSupported: for any other
            grouping or custom fields.
        """
        groupby = list(groupby or ())
        if len(groupby) != 1 or groupby[0] not in GROUPINGS or kwargs.get(
                'custom_fields'):
            raise exceptions.NotSupported(
                NAME, 'total() grouped by anything but type or time')
        begin, end, filters = self._window(begin, end, filters, metric_types)
        results = []
        if self.fields:
            where, params = self._where(begin, end, filters)
            grouping = ('time(1s) fill(none)' if groupby == ['time']
                        else encoding.quote_identifier(TYPE_TAG))
            for part in self._query(
                    'SELECT SUM("qty"::field) AS qty, SUM("price"::field) AS '
                    'rate FROM %s WHERE %s GROUP BY %s'
                    % (self._source, where, grouping), params):
                tags = part.get('tags') or {}
                for time_ns, qty, rate in part['values']:
                    row = {'qty': money.to_decimal(qty, 'qty'),
                           'rate': money.to_decimal(rate, 'rate')}
                    if groupby == ['time']:
                        row['begin'] = _from_ns(time_ns)
                        row['end'] = _from_ns(time_ns + _SECOND_NS)
                    else:
                        row.update(begin=begin, end=end,
                                   type=tags.get(TYPE_TAG, ''))
                    results.append(row)
        results.sort(key=lambda row: (row['begin'], row.get('type', '')))
        page = results[offset:offset + limit] if paginate else results
        return {'total': len(results), 'results': page}

    def same_database(self, conf):
        """Tell whether ``conf``'s ``[storage_influxdb]`` is our database.

        :param conf: the destination's conf, options registered.
        """
        opts = conf.storage_influxdb
        return ((opts.host or '').lower(), opts.port,
                opts.database or options.DEFAULT_DATABASE) == (
            (self.host or '').lower(), self.port, self.database)

    def close(self):
        """Close the HTTP connections."""
        self.client.close()
