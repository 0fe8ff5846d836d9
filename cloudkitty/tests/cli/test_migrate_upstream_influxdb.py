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
"""``migrate --source-backend upstream-influxdb``: upstream's data moves in.

The functional tests need a real InfluxDB 1.x server
(``CLOUDKITTY_TEST_INFLUXDB_URL``; ``tox -e functional-influxdb`` starts
one) and the Python of an environment where upstream CloudKitty 25.0.0 is
installed (``CLOUDKITTY_UPSTREAM_PYTHON``; ``tox -e functional-influxdb``
makes one, see ``tools/upstream-python``): every point they migrate is
written by upstream's own ``InfluxStorage``, driven through
:mod:`cloudkitty.cli.perf.upstream_driver`.
"""

import datetime
import decimal
import json
import os
import socket
import subprocess
import uuid

import fixtures
from oslo_config import cfg
import testtools

from cloudkitty.cli import main
from cloudkitty.cli.perf import anchor
from cloudkitty.cli import upstream_influxdb
from cloudkitty import dataframe
from cloudkitty.storage.v2.influxdb import client as client_mod
from cloudkitty.storage.v2.influxdb import encoding
from cloudkitty.storage.v2.influxdb import options
from cloudkitty.storage.v2 import money
from cloudkitty.tests.cli import base
from cloudkitty.tests.cli import test_migrate
from cloudkitty.tests import functional_env
from cloudkitty.tests import influxdb_provision

D = decimal.Decimal
BEGIN = test_migrate.BEGIN
END = test_migrate.END
HOUR = datetime.timedelta(hours=1)
#: A frame of labels of every kind, and its start in the window.
LABELLED_START = BEGIN + datetime.timedelta(days=1, hours=2)


class UrlTest(testtools.TestCase):
    """``--source-connection`` URLs become upstream's options."""

    def conf(self, url):
        """A conf with the options of ``url`` applied."""
        return upstream_influxdb.make_conf(connection=url)

    def test_full_url(self):
        """Host, port, database, user, password and query options."""
        conf = self.conf('https://ck:s%40cret@db.example:8087/rating%2Fdb'
                         '?retention_policy=one_year&period=600'
                         '&insecure=true&timeout=5')
        opts = conf.storage_influxdb
        self.assertEqual(('db.example', 8087, 'rating/db', 'ck', 's@cret',
                          True, True, 'one_year', 5.0),
                         (opts.host, opts.port, opts.database,
                          opts.username, opts.password, opts.use_ssl,
                          opts.insecure, opts.retention_policy,
                          opts.timeout))
        self.assertEqual(600, conf.collect.period)

    def test_defaults(self):
        """Port 8086, plain HTTP, autogen, upstream's hour."""
        conf = self.conf('influxdb://localhost/cloudkitty')
        opts = conf.storage_influxdb
        self.assertEqual((8086, False, 'autogen'),
                         (opts.port, opts.use_ssl, opts.retention_policy))
        self.assertEqual(3600, conf.collect.period)

    def test_bad_urls(self):
        """A bad URL is refused before anything is reached."""
        for url, text in (
                ('postgresql://h/db', 'scheme'),
                ('influxdb://h', 'one database'),
                ('influxdb://h/a/b', 'one database'),
                ('influxdb://h/db?rp=x', 'unknown option'),
                ('influxdb://h/db?insecure=maybe', 'true or false'),
                ('influxdb://h/db?period=hour', 'bad period'),
                ('influxdb://u:pw@h:99999/db', 'range')):
            error = self.assertRaises(upstream_influxdb.UpstreamSourceError,
                                      self.conf, url)
            self.assertIn(text, str(error), url)
            self.assertNotIn('pw', str(error), url)

    def test_version_2_refused(self):
        """Upstream's InfluxDB 2 storage is not read."""
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, 'cloudkitty.conf')
        with open(path, 'w') as stream:
            stream.write('[storage_influxdb]\nversion = 2\n')
        error = self.assertRaises(upstream_influxdb.UpstreamSourceError,
                                  upstream_influxdb.make_conf, [path])
        self.assertIn('version = 2', str(error))


def upstream_python_or_skip(test):
    """The Python of upstream CloudKitty's environment, or skip (or fail)."""
    python = os.environ.get(anchor.UPSTREAM_PYTHON_ENV, '').strip()
    if not python:
        functional_env.skip_or_fail(
            test, '%s is not set: these tests need upstream CloudKitty '
            '25.0.0 to write the data they migrate (%s)'
            % (anchor.UPSTREAM_PYTHON_ENV, anchor.UPSTREAM_HINT))
    return python


class UpstreamWriter(anchor.UpstreamInfluxDB):
    """Upstream's own InfluxStorage writing to a database of our choice.

    :class:`~cloudkitty.cli.perf.anchor.UpstreamInfluxDB` picks a new
    database of its own; the migration needs to know where upstream wrote.
    """

    def __init__(self, python, host, port, database):
        self.location = 'http://%s:%d' % (host, port)
        # NOTE: -I, as the anchor does: this checkout must not shadow
        # upstream's own cloudkitty package.
        self._process = subprocess.Popen(
            [python, '-I', anchor.DRIVER, host, str(port), database],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            bufsize=1)
        line = self._process.stdout.readline()
        if not line or not json.loads(line).get('ready'):
            self.close()
            raise anchor.AnchorFailed('upstream\'s InfluxStorage did not '
                                      'start with %s' % python)


def labelled_frame(start=LABELLED_START):
    """A frame whose labels are of every kind upstream can write.

    Groupby values: text, int, bool, float, empty and None; metadata
    values: text, int, a whole float, bool, empty and None. A price whose
    float64 is not its decimal (``0.1 + 0.2``).
    """
    frame = dataframe.DataFrame(start, start + 2 * HOUR)
    frame.add_point(dataframe.DataPoint(
        'GiB', D('2.5'), D('0.30000000000000004'),
        {'project_id': 'p-kinds', 'id': 'r-kinds', 'n': 7, 'on': True,
         'ratio': 0.5, 'empty': '', 'nothing': None},
        {'flavor': 'm1.kinds', 'vcpus': 4, 'weight': 2.0, 'ok': False,
         'blank': '', 'none': None}), 'storage')
    frame.add_point(dataframe.DataPoint(
        'instance', D('1'), D('1234.5678'),
        {'project_id': 'p-kinds', 'id': 'r-kinds-2'},
        {'flavor': 'm1.big', 'vcpus': 16, 'weight': 0.25, 'ok': True,
         'blank': 'x', 'none': None}), 'instance')
    return frame


def as_upstream_reads(frame, type_, point):
    """The point as it must arrive: labels and money as documented."""
    def tag(value):
        return '' if value is None else str(value)

    return (frame.start, frame.end, type_, point.unit,
            money.check(float(point.qty), 'qty'),
            money.check(float(point.price), 'price'),
            json.dumps({key: tag(value)
                        for key, value in point.groupby.items()},
                       sort_keys=True),
            json.dumps(dict(point.metadata), sort_keys=True))


def as_stored(start, end, type_, point):
    """A point of the destination, in :func:`as_upstream_reads`'s form."""
    return (start, end, type_, point.unit, point.qty, point.price,
            json.dumps(dict(point.groupby), sort_keys=True),
            json.dumps(dict(point.metadata), sort_keys=True))


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class UpstreamInfluxDBMigrateTest(influxdb_provision.InfluxDBDatabaseMixin,
                                  base.CLITestCase):
    """Upstream's InfluxStorage writes; migrate copies into ours; verified.

    The class database of the mixin is the InfluxDB destination; each test
    gets an upstream database of its own.
    """

    def setUp(self):
        """Write the sample data with upstream's class."""
        super().setUp()
        python = upstream_python_or_skip(self)
        self.addCleanup(self.drop_database)
        self.upstream_db = 'ck_upstream_%s' % uuid.uuid4().hex
        self.addCleanup(self.drop, self.upstream_db)
        self.writer = UpstreamWriter(python, self.host, self.port,
                                     self.upstream_db)
        self.addCleanup(self.writer.close)
        self.sqlite_url = main.sqlite_url(os.path.join(self.tmp, 'dst.db'))
        self.state = os.path.join(self.tmp, 'migrate.state')
        self.pushed = [frame for _, frame in test_migrate.sample_frames()]
        self.pushed.append(labelled_frame())
        # NOTE: upstream pushes one frame per call here, as its
        # orchestrator does; outside the window, data must stay behind.
        for frame in self.pushed + [
                frame for _, frame in
                test_migrate.sample_frames(BEGIN - 2 * HOUR * 12, 1)
                + test_migrate.sample_frames(END, 1)]:
            self.writer.push([frame])

    # Helpers -------------------------------------------------------------

    def client(self, database=None):
        """A client of the test server on ``database``, closed after."""
        conf = cfg.ConfigOpts()
        options.register_opts(conf)
        for name, value in (('host', self.host), ('port', self.port),
                            ('database', database or self.upstream_db)):
            conf.set_override(name, value, group='storage_influxdb')
        client = client_mod.Client(conf.storage_influxdb)
        self.addCleanup(client.close)
        return client

    def drop(self, database):
        """Drop a database of the test server."""
        self.client(database).query(
            'DROP DATABASE %s' % encoding.quote_identifier(database),
            database=False)

    def source_url(self, database=None, port=None):
        """The ``--source-connection`` of the upstream database."""
        return 'influxdb://%s:%d/%s' % (self.host, port or self.port,
                                        database or self.upstream_db)

    def conf_file(self, name, database, storage='', extra=''):
        """Write a configuration file naming an InfluxDB database.

        :param storage: more lines of its ``[storage]`` section.
        :param extra: more sections, after ``[storage_influxdb]``.
        :returns: its path.
        """
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as stream:
            stream.write('[storage]\nbackend = influxdb\n%s'
                         '[storage_influxdb]\nhost = %s\nport = %d\n'
                         'database = %s\n%s'
                         % (storage, self.host, self.port, database, extra))
        return path

    def influx_conf(self):
        """A configuration file of our influxdb backend (the class db)."""
        return self.conf_file(
            'dest.conf', self.database, storage='retention_period = %d\n'
            % influxdb_provision.TEST_RETENTION_HOURS)

    def migrate(self, *extra, dest=None, source=None, window=True):
        """Run migrate from upstream's database; ``(code, out, err)``."""
        argv = ['migrate', '--source-backend', 'upstream-influxdb',
                '--state', self.state, '-f', 'json']
        argv += source if source is not None else [
            '--source-connection', self.source_url()]
        argv += dest or ['--dest-connection', self.sqlite_url]
        if window:
            argv += ['--begin', BEGIN.isoformat(), '--end', END.isoformat()]
        return self.run_main(argv + list(extra))

    def summary(self, out):
        """The JSON summary as ``{metric: value}``."""
        return {row['metric']: row['value'] for row in json.loads(out)}

    def open_sqlite(self):
        """The SQLite destination, closed after."""
        store = main.load_storage(main.make_conf(),
                                  connection=self.sqlite_url)
        self.addCleanup(store.close)
        return store

    def open_influxdb(self):
        """Our influxdb destination, closed after."""
        store = main.load_storage(main.make_conf([self.influx_conf()]))
        self.addCleanup(store.close)
        return store

    def expected(self, keep=lambda type_, point: True):
        """Every pushed point of the window, as it must arrive, sorted."""
        return sorted(
            as_upstream_reads(frame, type_, point)
            for frame in self.pushed if BEGIN <= frame.start < END
            for type_, point in frame.iterpoints() if keep(type_, point))

    def stored(self, store, begin=BEGIN - 10 * HOUR * 24,
               end=END + 10 * HOUR * 24):
        """Every point of a destination (a wider window), sorted."""
        rows = store.iter_points(begin=begin, end=end, batch_size=500)
        try:
            return sorted(as_stored(*row) for row in rows)
        finally:
            rows.close()

    def assertMigrated(self, code, out, err, points):
        """The run copied ``points`` and verified within 1e-9."""
        self.assertEqual(0, code, err)
        summary = self.summary(out)
        self.assertEqual('verified', summary['status'])
        self.assertEqual(points, summary['points_copied'])
        self.assertEqual('1e-9 relative (float64 sums)',
                         summary['verified_within'])
        return summary

    def assertRefused(self, code, err, *texts):
        """The command failed with one error line holding ``texts``."""
        self.assertEqual(1, code)
        lines = err.strip().splitlines()
        self.assertEqual(1, len(lines), err)
        for text in texts:
            self.assertIn(text, lines[0])

    # Copies --------------------------------------------------------------

    def test_into_sqlite(self):
        """Every point arrives with its labels and money as documented."""
        expected = self.expected()
        summary = self.assertMigrated(*self.migrate('--chunk', '1d'),
                                      points=len(expected))
        self.assertEqual(
            'upstream-influxdb influxdb://%s:%d/%s?retention_policy=autogen'
            % (self.host, self.port, self.upstream_db), summary['source'])
        self.assertEqual(4 * len(test_migrate.OFFSETS) + 1,
                         summary['verified_time_groups'])
        self.assertEqual(4, summary['verified_type_groups'])
        self.assertEqual(expected, self.stored(self.open_sqlite()))

    def test_into_influxdb_from_upstream_conf(self):
        """Upstream's own cloudkitty.conf names the source; ours the dest."""
        # NOTE: as upstream's file reads: [storage] names upstream's
        # backend, which --source-backend overrides.
        path = self.conf_file('cloudkitty.conf', self.upstream_db,
                              storage='version = 2\n',
                              extra='[collect]\nperiod = 3600\n')
        expected = self.expected()
        self.assertMigrated(
            *self.migrate('--chunk', '12h', '--page-size', '40',
                          source=['--source-config-file', path],
                          dest=['--dest-config-file', self.influx_conf()]),
            points=len(expected))
        self.assertEqual(expected, self.stored(self.open_influxdb()))

    def test_scope_and_types(self):
        """One project's instances and volumes, and nothing else."""
        def keep(type_, point):
            return (type_ in ('instance', 'volume')
                    and point.groupby['project_id'] == 'p-beta')

        expected = self.expected(keep)
        self.assertMigrated(*self.migrate(
            '--filter', 'project_id=p-beta', '--type', 'instance',
            '--type', 'volume',
            dest=['--dest-config-file', self.influx_conf()]),
            points=len(expected))
        self.assertEqual(expected, self.stored(self.open_influxdb()))

    def test_window(self):
        """Only the frames starting in the window move; chunks of 5 h."""
        begin, end = BEGIN + datetime.timedelta(hours=4), BEGIN + 30 * HOUR
        expected = sorted(
            row for row in self.expected() if begin <= row[0] < end)
        self.assertMigrated(*self.migrate(
            '--begin', begin.isoformat(), '--end', end.isoformat(),
            '--chunk', '5h', window=False), points=len(expected))
        self.assertEqual(expected, self.stored(self.open_sqlite()))

    def test_twice_never_double_counts(self):
        """Run again, resumed or restarted, the sums stay the same."""
        expected = self.expected()
        self.assertMigrated(*self.migrate(), points=len(expected))
        # NOTE: the state file says everything is done: nothing is copied,
        # both sides are verified again.
        summary = self.assertMigrated(*self.migrate(), points=0)
        self.assertTrue(summary['resumed'])
        code, _, err = self.migrate('--restart')
        self.assertRefused(code, err, '--replace')
        self.assertMigrated(*self.migrate('--restart', '--replace'),
                            points=len(expected))
        self.assertEqual(expected, self.stored(self.open_sqlite()))

    def test_empty_database(self):
        """A database upstream never wrote to: nothing to copy, verified."""
        empty = 'ck_upstream_empty_%s' % uuid.uuid4().hex
        self.addCleanup(self.drop, empty)
        self.client(empty).query('CREATE DATABASE %s'
                                 % encoding.quote_identifier(empty),
                                 database=False)
        summary = self.assertMigrated(
            *self.migrate(source=['--source-connection',
                                  self.source_url(empty)]), points=0)
        self.assertEqual(0, summary['verified_type_groups'])

    def test_source_reads_like_a_store(self):
        """count(), a retrieve() page and total() of the reader itself."""
        source = upstream_influxdb.UpstreamInfluxDBSource(
            upstream_influxdb.make_conf(connection=self.source_url()))
        self.addCleanup(source.close)
        expected = self.expected()
        self.assertEqual(len(expected), source.count(BEGIN, END))
        page = source.retrieve(begin=BEGIN, end=END, offset=3, limit=4)
        self.assertEqual(len(expected), page['total'])
        rows = [(frame.start, type_, point)
                for frame in page['dataframes']
                for type_, point in frame.iterpoints()]
        self.assertEqual(4, len(rows))
        self.assertEqual(sorted(rows, key=lambda row: row[:2]), rows)
        by_type = source.total(groupby=['type'], begin=BEGIN, end=END,
                               filters={'project_id': 'p-kinds'},
                               paginate=False)
        self.assertEqual(
            [('instance', D('1'), D('1234.5678')),
             ('storage', D('2.5'), D('0.30000000000000004'))],
            [(row['type'], row['qty'], row['rate'])
             for row in by_type['results']])
        self.assertRaises(upstream_influxdb.exceptions.NotSupported,
                          source.total, groupby=['project_id'],
                          begin=BEGIN, end=END)

    # Verification ----------------------------------------------------------

    def test_tampered_point_fails_verification(self):
        """A point changed upstream after the copy: non-zero, named."""
        self.assertMigrated(*self.migrate(), points=len(self.expected()))
        tampered = labelled_frame()
        changed = dataframe.DataFrame(tampered.start, tampered.end)
        for type_, point in tampered.iterpoints():
            if type_ == 'instance':
                # NOTE: same tags and time: InfluxDB overwrites the point.
                changed.add_point(point._replace(qty=D('1.001')), type_)
        self.writer.push([changed])
        code, out, err = self.migrate('--verify-only')
        self.assertEqual(1, code)
        self.assertIn('verification failed', err)
        rows = [row['value'] for row in json.loads(out)
                if row['metric'] == 'mismatch']
        self.assertIn('time=%s: source qty=' % LABELLED_START.isoformat(),
                      '\n'.join(rows))
        self.assertIn('type=instance: source qty=', '\n'.join(rows))

    # Bad input -------------------------------------------------------------

    def assertNothingWritten(self):
        """No destination file and no state file were made."""
        self.assertFalse(os.path.exists(self.sqlite_url[len('sqlite:///'):]))
        self.assertFalse(os.path.exists(self.state))

    def test_unreachable_server(self):
        """A port nobody listens on: unavailable, nothing written."""
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        code, _, err = self.migrate(source=['--source-connection',
                                            self.source_url(port=port)])
        self.assertRefused(code, err, 'upstream-influxdb',
                           'is unavailable')
        self.assertNothingWritten()

    def test_wrong_database(self):
        """A database that does not exist is named; nothing written."""
        code, _, err = self.migrate(source=['--source-connection',
                                            self.source_url('no_such_db')])
        self.assertRefused(code, err, "no database 'no_such_db'")
        self.assertNothingWritten()

    def test_wrong_retention_policy(self):
        """A retention policy that does not exist is named."""
        code, _, err = self.migrate(source=[
            '--source-connection',
            self.source_url() + '?retention_policy=no_such_rp'])
        self.assertRefused(code, err, "no retention policy 'no_such_rp'")
        self.assertNothingWritten()

    def test_not_upstream_layout(self):
        """Our own influxdb backend's database is not upstream's layout."""
        store = main.load_storage(main.make_conf([self.influx_conf()]),
                                  create=True)
        self.addCleanup(store.close)
        store.push([labelled_frame()])
        code, _, err = self.migrate(source=['--source-connection',
                                            self.source_url(self.database)])
        self.assertRefused(code, err, 'not in upstream CloudKitty\'s layout',
                           '--source-backend influxdb')
        self.assertNothingWritten()

    def test_metadata_filter_refused(self):
        """A filter on a metadata field upstream is refused up front."""
        code, _, err = self.migrate('--filter', 'flavor=m1.1')
        self.assertRefused(code, err, 'flavor', 'metadata field')
        self.assertNothingWritten()

    def test_destination_is_the_source_database(self):
        """Our backend in upstream's own database is refused before init."""
        path = self.conf_file('same.conf', self.upstream_db)
        code, _, err = self.migrate(dest=['--dest-config-file', path])
        self.assertRefused(code, err, 'another [storage_influxdb] database')
        self.assertFalse(os.path.exists(self.state))
        policies = self.client().query('SHOW RETENTION POLICIES ON %s'
                                       % encoding.quote_identifier(
                                           self.upstream_db))
        self.assertEqual(['autogen'],
                         [row[0] for row in policies[0]['values']])
