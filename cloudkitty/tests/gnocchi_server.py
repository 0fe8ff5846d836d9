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
"""A private Gnocchi server for the functional tests.

One implementation, three ways in, as for InfluxDB
(:mod:`cloudkitty.tests.influxdb_server`; the shared parts are in
:mod:`cloudkitty.tests.daemon`):

* ``tools/gnocchi-server`` (``install``, ``start``, ``stop``, ``status``,
  ``env``, ``run``) is a thin wrapper around :func:`main`. It runs on a
  bare ``python3``: this module needs only the standard library at import
  (``fixtures`` is optional, for :class:`GnocchiServerFixture`).
* tox's ``functional-gnocchi`` env runs ``tools/gnocchi-server run --
  stestr run ...``: a server in a temporary directory, its URL exported to
  the command as ``CLOUDKITTY_TEST_GNOCCHI_URL``, stopped afterwards.
  When the command fails (or the server dies), the server's config and
  logs are first copied to a new directory under ``.gnocchi-logs`` in
  this checkout (``$CLOUDKITTY_GNOCCHI_LOGS``), whose path is printed
  last with what the logs say of failures; a start that fails keeps them
  there too.
* :class:`GnocchiServerFixture` starts one for a test and stops it.

Gnocchi and its dependencies live in a virtualenv of their own
(``install``; ``$CLOUDKITTY_GNOCCHI_VENV``, else ``.gnocchi-venv`` in this
checkout), never in the tests' one. A server uses:

* the indexer: a database of its own, created at start and dropped at
  stop, on the PostgreSQL server already running on 127.0.0.1:5432 (user
  ``postgres``, trust authentication);
* the storage: the ``file`` driver, under the state directory;
* the incoming driver: ``redis`` on 127.0.0.1:6379, in a database number
  (1 to 15) that the server claims with a key, so that parallel servers
  never share one and nothing else's data is touched; the ``file`` driver
  (two to four times slower to process measures) when none is free;
* the API: Gnocchi's WSGI application under waitress on 127.0.0.1, on a
  port the kernel picks (no race for a free port), in
  :data:`API_PROCESSES` processes that share its socket,
  ``auth_mode = basic``: user ``admin``, empty password;
* ``gnocchi-metricd``, polling every second and woken by Redis.

The state directory holds ``gnocchi.conf``, ``backends.json`` (what to
drop at stop), ``storage/``, the logs (``api.log``, ``metricd.log``,
``upgrade.log``), the pid files (``api.pid``, ``metricd.pid``: the
processes' own pids; the workers of each are in its process group) and
``gnocchi.url``. The work on PostgreSQL and Redis is done by this module
too, run by the virtualenv's Python (:func:`_in_venv`), whose
``psycopg2`` and ``redis`` it uses.
"""

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

try:
    import fixtures
except ImportError:  # NOTE: tools/gnocchi-server runs on a bare python3.
    fixtures = None

from cloudkitty.tests import daemon

#: The variable the Gnocchi tests read the server's URL from.
URL_ENV = 'CLOUDKITTY_TEST_GNOCCHI_URL'
#: Overrides the CLI's default state directory (``<repo>/.gnocchi``).
DIR_ENV = 'CLOUDKITTY_GNOCCHI_DIR'
#: Overrides the default virtualenv (``<repo>/.gnocchi-venv``).
VENV_ENV = 'CLOUDKITTY_GNOCCHI_VENV'
#: Overrides where a failed run's logs are kept (``<repo>/.gnocchi-logs``).
LOGS_ENV = 'CLOUDKITTY_GNOCCHI_LOGS'
#: Override the servers the indexer and the incoming driver use.
POSTGRESQL_ENV = 'CLOUDKITTY_GNOCCHI_POSTGRESQL_URL'
REDIS_ENV = 'CLOUDKITTY_GNOCCHI_REDIS_URL'
#: Where the indexer's database is created (this one is only connected
#: to, to create and drop it).
POSTGRESQL_URL = 'postgresql://postgres@127.0.0.1:5432/postgres'
REDIS_URL = 'redis://127.0.0.1:6379'
#: The basic-auth user (with an empty password); Gnocchi makes ``admin``
#: an admin, which creating archive policies and resource types needs.
USER = 'admin'
HOST = daemon.HOST
START_TIMEOUT = 60
STOP_TIMEOUT = daemon.STOP_TIMEOUT
GNOCCHI_VERSION = '4.7.1'
#: What ``install`` puts in the virtualenv.
REQUIREMENTS = (
    'gnocchi[redis]==' + GNOCCHI_VERSION,
    # NOTE: the "postgresql" extra of gnocchi, but psycopg2-binary for
    # psycopg2, which would build from source (gcc and libpq-dev).
    'oslo.db>=4.29.0',
    'SQLAlchemy>=1.4.24',
    'SQLAlchemy-Utils',
    'alembic>=0.7.6',
    'psycopg2-binary',
    # NOTE: pure Python and the fastest to start; uwsgi builds from source.
    'waitress',
)
#: The Redis databases a server may claim. 0 is everybody's default.
REDIS_DBS = tuple(range(1, 16))
#: The key a server claims a Redis database with.
CLAIM_KEY = 'cloudkitty-gnocchi-server'
METRICD_WORKERS = 2
#: Processes serving the API (see :func:`_serve_api`), and threads in
#: each. One Python process serves on one core at a time (its global
#: lock): two served the Gnocchi suite's two workers 14 % faster on two
#: cores than one of eight threads (207 s -> 178 s, idle machine,
#: 2026-12-06); three suite workers were slower again.
API_PROCESSES = 2
API_THREADS = 4
INSTALL_HINT = 'run "tools/gnocchi-server install"'

# NOTE: the directory holding the cloudkitty package: the checkout in a
# development install, and where the virtualenv's Python imports this
# module from.
_ROOT = daemon.CHECKOUT
_MODULE = 'cloudkitty.tests.gnocchi_server'
_CONF, _URL, _PORT, _BACKENDS = ('gnocchi.conf', 'gnocchi.url', 'api.port',
                                 'backends.json')
_STORAGE, _UPGRADE_LOG = 'storage', 'upgrade.log'
_API, _METRICD = 'api', 'metricd'
_LOGS = (_API + '.log', _METRICD + '.log', _UPGRADE_LOG)
#: What start appends to the API's and metricd's logs once the API
#: answers: until metricd joins its group, /v1/status fails (HTTP 500,
#: "GroupNotCreated") and the log shows it; that is part of every start.
READY_MARK = '--- gnocchi-server: the server answers at %s\n'
#: The first line of a log record: it starts with a date.
_RECORD = re.compile(r'^\d{4}-\d\d-\d\d[ T]\d\d:\d\d')
#: A log line that tells of a failure.
_TROUBLE = re.compile(r' (ERROR|CRITICAL) |Traceback|Exception|Error: ')
#: Marks a finished install, with the requirements it installed.
_MARKER = 'cloudkitty-gnocchi-requirements.txt'

_CONFIG = """\
# Written by tools/gnocchi-server (cloudkitty/tests/gnocchi_server.py)
# for the functional tests; rewritten at every start.
[DEFAULT]
debug = false
verbose = true

[api]
auth_mode = basic

[indexer]
url = %(indexer_url)s

[storage]
driver = file
file_basepath = %(storage)s

[incoming]
%(incoming)s

[metricd]
workers = %(workers)d
# NOTE: an integer, 1 at least; Redis wakes metricd up anyway.
metric_processing_delay = 1
metric_reporting_delay = -1
# NOTE: the janitor expunges deleted metrics; an archive policy can be
# deleted only after that.
metric_cleanup_delay = 5
"""


class GnocchiServerError(Exception):
    """The server could not be started, stopped or found."""


class NotInstalled(GnocchiServerError):
    """Gnocchi's virtualenv is missing; the message says how to make it."""


def default_venv():
    """Return Gnocchi's virtualenv path.

    :returns: ``$CLOUDKITTY_GNOCCHI_VENV``, else ``.gnocchi-venv`` in this
        checkout.
    """
    return os.path.abspath(os.environ.get(VENV_ENV, '').strip()
                           or os.path.join(_ROOT, '.gnocchi-venv'))


def excerpt(text, lines=20, context=15, limit=80):
    """Return the records of a log that tell of failures, else its end.

    A record is a line that starts with a date and the lines after it up
    to the next such line (a traceback). Of each record that tells of a
    failure, the first line and the last ``context`` other lines are kept:
    the frames nearest to the error, and the error.

    :param text: the log.
    :param lines: how many last lines, when no record tells of a failure.
    :param context: how many lines of each record after its first.
    :param limit: the most lines returned: the last ones.
    :returns: text, ending with a newline unless empty.
    """
    all_lines = text.splitlines(True)
    records = []
    for line in all_lines:
        if _RECORD.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    out = []
    failures = 0
    for record in records:
        if not any(_TROUBLE.search(line) for line in record):
            continue
        failures += 1
        # NOTE: Python's carets under a frame say nothing here.
        rest = [line for line in record[1:] if line.strip().strip('^~')]
        if len(rest) > context:
            rest = ['    [...]\n'] + rest[-context:]
        out.append(record[0])
        out.extend(rest)
    if not failures:
        return ''.join(all_lines[-lines:])
    if len(out) > limit:
        out = ['    [...]\n'] + out[-limit:]
    return ('%d lines, %d records telling of failures, each with the end '
            'of what follows it:\n%s'
            % (len(all_lines), failures, ''.join(out)))


def is_installed(venv=None):
    """Tell whether the virtualenv has Gnocchi.

    :param venv: the virtualenv (default: :func:`default_venv`).
    """
    venv = venv or default_venv()
    return all(os.path.exists(os.path.join(venv, 'bin', name)) for name in
               ('python', 'gnocchi-upgrade', 'gnocchi-metricd'))


def _ini(value):
    # NOTE: oslo.config expands "$name" in values; "$$" is a plain "$".
    return str(value).replace('$', '$$')


def with_redis_db(url, db):
    """Return the Redis ``url`` that selects database ``db``.

    Gnocchi's and tooz's Redis clients take the database from the ``db``
    query parameter: the path of ``redis://host:port/15`` is ignored.
    """
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query)
             if k != 'db']
    query.append(('db', str(db)))
    return urllib.parse.urlunsplit(
        parts._replace(path='', query=urllib.parse.urlencode(query)))


def with_database(url, database):
    """Return the PostgreSQL ``url`` with its database replaced."""
    return urllib.parse.urlunsplit(
        urllib.parse.urlsplit(url)._replace(path='/' + database))


def render_config(state_dir, indexer_url, redis_url=None,
                  workers=METRICD_WORKERS):
    """Return the text of ``gnocchi.conf`` for a server in ``state_dir``.

    :param state_dir: absolute path of the state directory.
    :param indexer_url: the indexer's database URL.
    :param redis_url: the Redis URL of the incoming driver, its database
        included (:func:`with_redis_db`); None for the ``file`` driver.
    :param workers: how many metricd processing workers.
    :returns: INI text (a str).
    """
    storage = os.path.join(state_dir, _STORAGE)
    if redis_url:
        incoming = 'driver = redis\nredis_url = %s' % _ini(redis_url)
    else:
        incoming = 'driver = file\nfile_basepath = %s' % _ini(storage)
    return _CONFIG % {'indexer_url': _ini(indexer_url),
                      'storage': _ini(storage), 'incoming': incoming,
                      'workers': workers}


def auth_headers(user=USER):
    """Return the headers of an authenticated request (basic auth)."""
    token = base64.b64encode(('%s:' % user).encode()).decode()
    return {'Authorization': 'Basic ' + token}


def ping(url, timeout=2.0):
    """Tell whether Gnocchi answers an authenticated ``GET /v1/status``.

    :param url: the server's base URL, e.g. ``http://127.0.0.1:8041``.
    :param timeout: seconds to wait for the answer.
    :returns: True on a 200; never raises for a network failure.
    """
    return daemon.http_status(url.rstrip('/') + '/v1/status', timeout,
                              auth_headers()) == 200


def _clean_env():
    # NOTE: the tests' PYTHONPATH or PYTHONHOME must not reach Gnocchi.
    return {k: v for k, v in os.environ.items()
            if not k.startswith('PYTHON') and k != 'VIRTUAL_ENV'}


class GnocchiServer(daemon.Server):
    """A Gnocchi API and metricd, with their state directory and backends.

    :param state_dir: where the config, storage, logs and pid files go;
        created by :meth:`start`.
    :param venv: Gnocchi's virtualenv (default: :func:`default_venv`).
    :param postgresql_url: the PostgreSQL server for the indexer
        (default: ``$CLOUDKITTY_GNOCCHI_POSTGRESQL_URL``, else
        :data:`POSTGRESQL_URL`).
    :param redis_url: the Redis server for the incoming driver (default:
        ``$CLOUDKITTY_GNOCCHI_REDIS_URL``, else :data:`REDIS_URL`).
    :param incoming: ``auto`` (Redis if a database is free, else files),
        ``redis`` or ``file``.
    """

    url_file = _URL
    kept_files = (_CONF, _BACKENDS) + _LOGS
    logs_env = LOGS_ENV
    logs_dir_name = '.gnocchi-logs'

    def __init__(self, state_dir, venv=None, postgresql_url=None,
                 redis_url=None, incoming='auto'):
        super().__init__(state_dir)
        self.venv = os.path.abspath(venv) if venv else default_venv()
        self.postgresql_url = (postgresql_url
                               or os.environ.get(POSTGRESQL_ENV)
                               or POSTGRESQL_URL)
        self.redis_url = (redis_url or os.environ.get(REDIS_ENV)
                          or REDIS_URL)
        if incoming not in ('auto', 'redis', 'file'):
            raise ValueError('incoming: auto, redis or file, not %r'
                             % (incoming,))
        self.incoming = incoming
        # NOTE: one database per state directory, so that parallel servers
        # never share one and a later stop finds it.
        digest = hashlib.sha1(os.fsencode(self.state_dir)).hexdigest()
        self.database = 'cloudkitty_gnocchi_' + digest[:12]
        #: Seconds each step of the last :meth:`start` took.
        self.timings = {}
        self._api = daemon.Process(self, _API, self._is_ours)
        self._metricd = daemon.Process(self, _METRICD, self._is_ours,
                                       group=True)

    def _is_ours(self, argv):
        # NOTE: cotyledon rewrites metricd's command line (setproctitle)
        # into one string that still holds our config's path.
        return os.fsencode(self.path(_CONF)) in b' '.join(argv)

    @property
    def python(self):
        """The virtualenv's Python."""
        return os.path.join(self.venv, 'bin', 'python')

    def _bin(self, name):
        return os.path.join(self.venv, 'bin', name)

    @property
    def pid(self):
        """The API's pid, or None."""
        return self._api.pid

    @property
    def metricd_pid(self):
        """metricd's pid (its process group's), or None."""
        return self._metricd.pid

    def describe(self):
        """Say what runs and with what incoming driver.

        :returns: e.g. ``gnocchi api pid 12, metricd pid 13, redis db 1``.
        """
        backends = self.backends() or {}
        if backends.get('redis_db') is not None:
            incoming = 'redis db %s' % backends['redis_db']
        else:
            incoming = 'file incoming: %s' % backends.get('note')
        return 'gnocchi api pid %s, metricd pid %s, %s' % (
            self.pid, self.metricd_pid, incoming)

    def is_alive(self):
        """Tell whether both the API and metricd run."""
        return self._api.is_alive() and self._metricd.is_alive()

    def any_alive(self):
        """Tell whether any process of this server runs."""
        return self._api.is_alive() or self._metricd.is_alive()

    def ping(self, url):
        """Tell whether the API answers an authenticated request."""
        return ping(url)

    def log_tail(self, lines=20):
        """Return the end of each log, each under its name."""
        return ''.join('--- %s\n%s' % (name, self.tail(name, lines))
                       for name in _LOGS
                       if os.path.exists(self.path(name)))

    def is_installed(self):
        """Tell whether the virtualenv has Gnocchi."""
        return is_installed(self.venv)

    def log_excerpt(self):
        """Return what each log says of failures (else its end)."""
        parts = []
        for name in _LOGS:
            try:
                with open(self.path(name), encoding='utf-8',
                          errors='replace') as log:
                    text = log.read()
            except FileNotFoundError:
                continue
            head, mark, run = text.rpartition(READY_MARK.split('%')[0])
            if mark:
                # NOTE: the failures of every start are not the run's.
                run = run.split('\n', 1)[-1]
                name += ' (after the start: %d lines before)' % (
                    head.count('\n'))
            parts.append('--- %s: %s' % (name, excerpt(run) or '(empty)\n'))
        return ''.join(parts)

    def start(self, timeout=START_TIMEOUT):
        """Start the server unless it runs; wait until it answers.

        Creates the indexer's database afresh, claims a Redis database,
        empties the storage, writes ``gnocchi.conf``, runs
        ``gnocchi-upgrade``, then starts metricd and the API and waits for
        an authenticated ``GET /v1/status`` to answer 200.

        :param timeout: seconds for all of that.
        :returns: the URL, e.g. ``http://127.0.0.1:41234``.
        :raises NotInstalled: no virtualenv with Gnocchi.
        :raises GnocchiServerError: something failed or did not answer in
            time; what was started is stopped, and the message holds the
            end of the logs.
        """
        if self.is_alive():
            url = self.url
            if url and daemon.wait_for(lambda: ping(url, 1.0), timeout,
                                       alive=self.is_alive):
                return url
            raise GnocchiServerError(
                '%s runs but %s does not answer; see the logs in %s'
                % (self.describe(), url, self.state_dir))
        # NOTE: what a server that died (or half of one) or a failed start
        # left: its processes, database and Redis claim.
        self.stop(keep=True)
        if not self.is_installed():
            raise NotInstalled('Gnocchi is not installed in %s; %s'
                               % (self.venv, INSTALL_HINT))
        deadline = time.monotonic() + timeout
        os.makedirs(self.state_dir, exist_ok=True)
        self.remove(_URL, _PORT, _STORAGE, *_LOGS)
        os.makedirs(self.path(_STORAGE))
        self.timings = {}
        try:
            return self._start(deadline)
        except BaseException as exc:
            tail = self.log_tail()
            try:
                self.stop(keep=True)
            except GnocchiServerError as cleanup:
                tail += '\n(and stopping: %s)' % cleanup
            if isinstance(exc, GnocchiServerError) and tail:
                # NOTE: the fixture and run remove the state directory.
                kept = self.keep_logs()
                raise GnocchiServerError('%s; the end of the logs (kept in '
                                         '%s):\n%s' % (exc, kept, tail))
            raise

    def _step(self, name, began):
        self.timings[name] = round(time.monotonic() - began, 2)

    def _start(self, deadline):
        began = time.monotonic()
        spec = {'postgresql_url': self.postgresql_url,
                'database': self.database,
                'redis_url': (None if self.incoming == 'file'
                              else self.redis_url),
                'owner': json.dumps({'dir': self.state_dir,
                                     'pid': os.getpid()})}
        # NOTE: written first, so that stop drops what prepare creates even
        # if this process dies in between.
        self.write(_BACKENDS, json.dumps(dict(spec, redis_db=None)))
        try:
            backends = self._helper('prepare', spec, deadline)
        except GnocchiServerError:
            # NOTE: prepare drops the database again when it fails.
            self.remove(_BACKENDS)
            raise
        self.write(_BACKENDS, json.dumps(backends))
        if backends['redis_db'] is None and self.incoming == 'redis':
            raise GnocchiServerError('no Redis database to claim: %s'
                                     % backends['note'])
        redis_url = None
        if backends['redis_db'] is not None:
            redis_url = with_redis_db(self.redis_url, backends['redis_db'])
        self.write(_CONF, render_config(
            self.state_dir, with_database(self.postgresql_url,
                                          self.database), redis_url))
        self._step('prepare', began)

        began = time.monotonic()
        with open(self.path(_UPGRADE_LOG), 'ab') as log:
            try:
                rc = subprocess.call(
                    [self._bin('gnocchi-upgrade'), '--config-file',
                     self.path(_CONF)], stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, env=_clean_env(),
                    cwd=self.state_dir,
                    timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise GnocchiServerError('gnocchi-upgrade timed out')
        if rc != 0:
            raise GnocchiServerError('gnocchi-upgrade failed (status %d)'
                                     % rc)
        self._step('upgrade', began)

        began = time.monotonic()
        self._metricd.spawn([self._bin('gnocchi-metricd'), '--config-file',
                             self.path(_CONF)], env=_clean_env(),
                            cwd=self.state_dir)
        self._api.spawn(self._venv_argv('api', self.path(_CONF),
                                        self.path(_PORT)),
                        env=_clean_env(), cwd=self.state_dir)
        remaining = max(0, deadline - time.monotonic())
        if not daemon.wait_for(lambda: self.read(_PORT), remaining,
                               alive=self.is_alive):
            raise self._not_up('did not listen')
        url = 'http://%s:%s' % (HOST, self.read(_PORT))
        remaining = max(0, deadline - time.monotonic())
        if not daemon.wait_for(lambda: ping(url, 1.0), remaining,
                               alive=self.is_alive):
            raise self._not_up('did not answer %s/v1/status' % url)
        self._step('api', began)
        for name in (_API, _METRICD):
            with open(self.path(name + '.log'), 'a', encoding='utf-8') as log:
                log.write(READY_MARK % url)
        self.write(_URL, url + '\n')
        return url

    def _not_up(self, what):
        if not self._api.is_alive():
            return GnocchiServerError('the API exited before answering')
        if not self._metricd.is_alive():
            return GnocchiServerError('metricd exited at start')
        return GnocchiServerError('the API %s in time' % what)

    def _venv_argv(self, command, *args):
        # NOTE: -I keeps the caller's environment and directories off
        # sys.path; the checkout comes last, so that only cloudkitty is
        # taken from it, never a package of the tests' virtualenv.
        boot = ('import sys; sys.path.append(%r); import %s as m; '
                'sys.exit(m._in_venv(sys.argv[1:]))' % (_ROOT, _MODULE))
        return [self.python, '-I', '-c', boot, command] + list(args)

    def _helper(self, command, spec, deadline=None):
        """Run ``command`` of :func:`_in_venv`; return its JSON answer."""
        timeout = 60 if deadline is None else max(
            1, deadline - time.monotonic())
        try:
            proc = subprocess.run(
                self._venv_argv(command, json.dumps(spec)),
                stdin=subprocess.DEVNULL, capture_output=True,
                env=_clean_env(), timeout=timeout)
        except subprocess.TimeoutExpired:
            raise GnocchiServerError('%s timed out' % command)
        except OSError as exc:
            raise GnocchiServerError('%s: %s' % (command, exc))
        if proc.returncode != 0:
            raise GnocchiServerError(
                '%s failed: %s' % (command, proc.stderr.decode(
                    'utf-8', 'replace').strip()[-2000:]))
        return json.loads(proc.stdout)

    def backends(self):
        """Return what :meth:`start` made this server use, or None.

        :returns: a dict with ``postgresql_url``, ``database``,
            ``redis_url`` and ``redis_db`` (None for file incoming), and
            ``owner`` (the value of the Redis claim), from
            ``backends.json``; None when no server was started here.
        """
        text = self.read(_BACKENDS)
        return json.loads(text) if text else None

    def inspect(self, backends=None):
        """Look at the database and the Redis database of a server.

        :param backends: a dict from :meth:`backends` (default: this
            server's), e.g. kept from before :meth:`stop`.
        :returns: ``{"database": exists, "redis_owner": the claim or None,
            "redis_keys": how many keys}``.
        """
        backends = backends or self.backends() or {
            'postgresql_url': self.postgresql_url,
            'database': self.database, 'redis_db': None}
        return self._helper('inspect', backends)

    def stop(self, keep=True, timeout=STOP_TIMEOUT):
        """Stop the API and metricd, drop the database, free Redis.

        Only the recorded processes are signalled, and only while their
        command line holds this directory's config; metricd's workers, in
        its process group, are killed if they outlive it. Unless ``keep``,
        also removes the files :meth:`start` wrote, then the directory if
        that left it empty.

        :param keep: keep the config, storage and logs.
        :param timeout: seconds between SIGTERM and SIGKILL.
        :raises GnocchiServerError: the database could not be dropped (the
            processes are stopped all the same).
        """
        self._api.terminate(timeout)
        self._metricd.terminate(timeout)
        self.remove(_URL, _PORT)
        try:
            backends = self.backends()
            if backends:
                if not os.path.exists(self.python):
                    raise GnocchiServerError(
                        'cannot drop database %s: no %s'
                        % (self.database, self.python))
                self._helper('cleanup', backends)
                self.remove(_BACKENDS)
        finally:
            if not keep:
                # NOTE: backends.json stays if the cleanup failed.
                self.remove(_CONF, _STORAGE, *_LOGS)
                self.remove_dir_if_empty()


if fixtures is not None:
    class GnocchiServerFixture(fixtures.Fixture):
        """A private Gnocchi server in a temporary directory.

        After ``setUp``, ``url`` is its URL and ``server`` the
        :class:`GnocchiServer`; ``cleanUp`` stops it, drops its database
        and removes its files. Raises :class:`NotInstalled` when there is
        no Gnocchi virtualenv.

        :param timeout: seconds to wait for the server.
        :param venv: Gnocchi's virtualenv (default: :func:`default_venv`).
        """

        def __init__(self, timeout=START_TIMEOUT, venv=None):
            super().__init__()
            self.timeout = timeout
            self.venv = venv
            self.server = None
            self.url = None

        def _setUp(self):
            tmp = self.useFixture(fixtures.TempDir()).path
            self.server = GnocchiServer(os.path.join(tmp, 'gnocchi'),
                                        venv=self.venv)
            self.addCleanup(self.server.stop, keep=False)
            self.url = self.server.start(self.timeout)


def install(venv=None, python=None):
    """Make Gnocchi's virtualenv, unless it is already made.

    Creates the virtualenv and pip-installs :data:`REQUIREMENTS` in it;
    pip's output goes to stderr. A marker file listing them makes a second
    call return at once.

    :param venv: where (default: :func:`default_venv`).
    :param python: the Python that creates it (default: this one).
    :returns: the virtualenv's path.
    :raises NotInstalled: the virtualenv or pip failed.
    """
    venv = os.path.abspath(venv) if venv else default_venv()
    marker = os.path.join(venv, _MARKER)
    wanted = ''.join(r + '\n' for r in REQUIREMENTS)
    try:
        with open(marker, encoding='utf-8') as f:
            if f.read() == wanted:
                return venv
    except FileNotFoundError:
        pass
    steps = []
    if not os.path.exists(os.path.join(venv, 'bin', 'python')):
        steps.append([python or sys.executable, '-m', 'venv', venv])
    steps.append([os.path.join(venv, 'bin', 'python'), '-m', 'pip',
                  'install', '--quiet', '--disable-pip-version-check']
                 + list(REQUIREMENTS))
    for step in steps:
        try:
            rc = subprocess.call(step, stdin=subprocess.DEVNULL,
                                 stdout=sys.stderr, env=_clean_env())
        except OSError as exc:
            rc = exc
        if rc != 0:
            raise NotInstalled('"%s" failed (%s)'
                               % (' '.join(step[:5]), rc))
    with open(marker, 'w', encoding='utf-8') as f:
        f.write(wanted)
    return venv


def _prepare(spec):
    """Create the database and claim a Redis database (in the venv)."""
    _drop_database(spec, create=True)
    result = dict(spec, redis_db=None, note='file incoming asked for')
    if spec['redis_url']:
        try:
            result.update(_claim_redis(spec['redis_url'], spec['owner']))
        except BaseException:
            _drop_database(spec)
            raise
    return result


def _drop_database(spec, create=False):
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(spec['postgresql_url'])
    try:
        # NOTE: CREATE and DROP DATABASE refuse to run in a transaction.
        conn.autocommit = True
        with conn.cursor() as cur:
            name = sql.Identifier(spec['database'])
            # NOTE: FORCE: a metricd killed at stop may leave a session.
            cur.execute(sql.SQL('DROP DATABASE IF EXISTS {} WITH (FORCE)')
                        .format(name))
            if create:
                cur.execute(sql.SQL('CREATE DATABASE {}').format(name))
    finally:
        conn.close()


# NOTE: claiming and freeing are scripts, so that each is atomic: an empty
# database (or one whose owner is gone, ARGV[2]) is emptied and claimed in
# one step, and only its owner empties it again.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if (not owner and redis.call('DBSIZE') == 0)
        or (owner and owner == ARGV[2]) then
    redis.call('FLUSHDB')
    redis.call('SET', KEYS[1], ARGV[1])
    return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('FLUSHDB')
    return 1
end
return 0
"""


def _owner_gone(owner):
    """Tell whether the server that claimed a Redis database is gone."""
    try:
        owner = json.loads(owner)
        pid, state_dir = int(owner['pid']), owner['dir']
    except (ValueError, KeyError, TypeError):
        return False
    # NOTE: the claimer's process while it starts the server, the server's
    # processes afterwards.
    if daemon.process_argv(pid) is not None:
        return False
    return not GnocchiServer(state_dir).any_alive()


def _claim_redis(url, owner):
    import redis

    busy = 0
    try:
        for db in REDIS_DBS:
            client = redis.Redis.from_url(url, db=db, socket_timeout=10)
            current = client.get(CLAIM_KEY)
            current = current.decode() if current is not None else ''
            if current and current != owner and not _owner_gone(current):
                busy += 1
                continue
            if client.eval(_CLAIM, 1, CLAIM_KEY, owner, current):
                return {'redis_db': db, 'note': 'claimed'}
            busy += 1
    except redis.RedisError as exc:
        return {'redis_db': None, 'note': 'Redis at %s: %s' % (url, exc)}
    return {'redis_db': None,
            'note': 'all of Redis databases %d-%d are in use (%d)'
                    % (REDIS_DBS[0], REDIS_DBS[-1], busy)}


def _cleanup(spec):
    """Drop the database and free the Redis database (in the venv)."""
    _drop_database(spec)
    freed = False
    if spec.get('redis_db') is not None:
        import redis

        client = redis.Redis.from_url(spec['redis_url'],
                                      db=spec['redis_db'], socket_timeout=10)
        freed = bool(client.eval(_RELEASE, 1, CLAIM_KEY, spec['owner']))
    return {'dropped': spec['database'], 'redis_freed': freed}


def _inspect(spec):
    """Tell what is left of a server's backends (in the venv)."""
    import psycopg2

    conn = psycopg2.connect(spec['postgresql_url'])
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT 1 FROM pg_database WHERE datname = %s',
                        (spec['database'],))
            result = {'database': cur.fetchone() is not None,
                      'redis_owner': None, 'redis_keys': 0}
    finally:
        conn.close()
    if spec.get('redis_db') is not None:
        import redis

        client = redis.Redis.from_url(spec['redis_url'],
                                      db=spec['redis_db'], socket_timeout=10)
        owner = client.get(CLAIM_KEY)
        result['redis_owner'] = owner.decode() if owner else None
        result['redis_keys'] = client.dbsize()
    return result


def _serve_api(conf_path, port_file):
    """Serve Gnocchi's API on a port the kernel picks (in the venv).

    :data:`API_PROCESSES` processes serve one listening socket, the first
    (the leader, whose pid is the API's) forks the others before it loads
    anything and stops them when it is signalled; each dies with it.
    """
    import signal
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(1024)
    leader = os.getpid()
    workers = []
    for _ in range(API_PROCESSES - 1):
        pid = os.fork()
        if pid == 0:
            _die_with(leader)
            workers = None
            break
        workers.append(pid)
    if workers:
        def stop(signum, frame):
            for pid in workers:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            for pid in workers:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    from gnocchi import opts
    from gnocchi.rest import app
    from gnocchi import service
    import waitress

    # NOTE: what gnocchi.rest.wsgi does, but with our arguments: it would
    # hand waitress's to oslo.config.
    opts.set_defaults()
    conf = service.prepare_service(args=['--config-file', conf_path])
    application = app.load_app(conf)
    server = waitress.create_server(application, sockets=[sock],
                                    threads=API_THREADS, ident='gnocchi')
    if workers is not None:
        # NOTE: written once the socket is bound: the port is ours.
        tmp = port_file + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write('%d\n' % sock.getsockname()[1])
        os.replace(tmp, port_file)
    server.run()


def _die_with(leader):
    """Make this forked API process end when its leader ends (Linux)."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        # NOTE: PR_SET_PDEATHSIG (1): the kernel signals us when the
        # parent exits, whatever kills it.
        libc.prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != leader:
        # NOTE: the leader died before prctl() took effect.
        os._exit(0)


def _in_venv(argv):
    """The commands run by the virtualenv's Python, not by users.

    ``prepare SPEC``, ``cleanup SPEC`` and ``inspect SPEC`` print a JSON
    answer; ``api CONF PORT_FILE`` serves the API until it is signalled.
    """
    command, args = argv[0], argv[1:]
    if command == 'api':
        _serve_api(*args)
        return 0
    action = {'prepare': _prepare, 'cleanup': _cleanup,
              'inspect': _inspect}[command]
    try:
        print(json.dumps(action(json.loads(args[0]))))
    except Exception as exc:
        # NOTE: the caller shows this line; a traceback would bury it.
        print('%s: %s' % (type(exc).__name__, str(exc).strip()),
              file=sys.stderr)
        return 1
    return 0


class _Tool(daemon.Tool):
    prog = 'gnocchi-server'
    title = 'Gnocchi %s server' % GNOCCHI_VERSION
    url_env = URL_ENV
    dir_env = DIR_ENV
    default_dir_name = '.gnocchi'
    error = GnocchiServerError
    start_timeout = START_TIMEOUT
    ready_check = 'an authenticated GET /v1/status'
    stop_keeps = True
    install_help = ('make the Gnocchi virtualenv first if needed ($%s, '
                    'else .gnocchi-venv in the checkout)' % VENV_ENV)

    def add_options(self, parser):
        parser.add_argument('--venv', default=None,
                            help="Gnocchi's virtualenv (default: $%s, else "
                                 '%s)' % (VENV_ENV, default_venv()))
        parser.add_argument('--incoming', choices=('auto', 'redis', 'file'),
                            default='auto',
                            help='the incoming driver: auto is redis when a '
                                 'Redis database is free, else file')

    def make_server(self, state_dir, args):
        return GnocchiServer(state_dir, venv=args.venv,
                             incoming=args.incoming)

    def install(self, args):
        return install(args.venv)


#: ``main(argv=None, default_dir=None)``: the ``tools/gnocchi-server``
#: command, which returns its exit status (see :meth:`daemon.Tool.main`).
main = _Tool().main


if __name__ == '__main__':
    sys.exit(main())
