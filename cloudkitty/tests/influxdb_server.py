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
"""A private InfluxDB 1.x server for the functional tests.

One implementation, three ways in:

* ``tools/influxdb-server`` (``start``, ``stop``, ``status``, ``env``,
  ``run``, ``install``) is a thin wrapper around :func:`main`. It runs on a
  bare ``python3``: this module needs only the standard library
  (``fixtures`` is optional, for :class:`InfluxDBServerFixture`).
* tox's ``functional-influxdb`` env runs ``tools/influxdb-server run --
  stestr run ...``: a server in a temporary directory, its URL exported to
  the command as ``CLOUDKITTY_TEST_INFLUXDB_URL``, stopped and removed
  afterwards (like ``pifpaf run``). When the command fails (or the server
  dies), its config and log are first copied to a new directory under
  ``.influxdb-logs`` in this checkout (``$CLOUDKITTY_INFLUXDB_LOGS``),
  whose path is printed last with the end of the log.
* :class:`InfluxDBServerFixture` starts one for a test and stops it.

A server lives in a state directory holding ``influxdb.conf``, ``meta/``,
``data/``, ``wal/``, ``influxd.log``, ``influxd.pid`` (influxd's own pid,
never a wrapper's) and ``influxd.url``. It listens on 127.0.0.1 only, on
ports found free when it starts, so several servers (parallel tox runs, a
system influxd on 8086) never collide.
"""

import json
import os
import shutil
import subprocess
import sys

try:
    import fixtures
except ImportError:  # NOTE: tools/influxdb-server runs on a bare python3.
    fixtures = None

from cloudkitty.tests import daemon

#: The variable the InfluxDB tests read the server's URL from.
URL_ENV = 'CLOUDKITTY_TEST_INFLUXDB_URL'
#: Overrides the CLI's default state directory (``<repo>/.influxdb``).
DIR_ENV = 'CLOUDKITTY_INFLUXDB_DIR'
#: Overrides where a failed run's logs are kept (``<repo>/.influxdb-logs``).
LOGS_ENV = 'CLOUDKITTY_INFLUXDB_LOGS'
HOST = daemon.HOST
START_TIMEOUT = 30
STOP_TIMEOUT = daemon.STOP_TIMEOUT
INSTALL_HINT = ('install InfluxDB 1.x: as root, "apt-get install -y '
                'influxdb" (Debian/Ubuntu), or "tools/influxdb-server '
                'install"')

# Everything a server writes: what stop removes (unless told to keep it).
_DATA_DIRS = ('meta', 'data', 'wal')
_CONF, _LOG, _URL = 'influxdb.conf', 'influxd.log', 'influxd.url'
#: The name of influxd's pid and log files (``influxd.pid``, ``.log``).
_PROCESS = 'influxd'

_CONFIG = """\
# Written by tools/influxdb-server (cloudkitty/tests/influxdb_server.py)
# for the functional tests; rewritten at every start.
reporting-disabled = true
bind-address = "%(host)s:%(rpc_port)d"

[meta]
  dir = %(meta)s
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = %(data)s
  wal-dir = %(wal)s
  index-version = "inmem"
  query-log-enabled = false
  trace-logging-enabled = false
  # NOTE: rating tags (ids, project ids) have a high cardinality.
  max-values-per-tag = 0
  max-series-per-database = 0
%(data_options)s
[coordinator]
  query-timeout = "0s"
  log-queries-after = "0s"
  max-concurrent-queries = 0
  max-select-point = 0
  max-select-series = 0
  max-select-buckets = 0

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[http]
  enabled = true
  bind-address = "%(host)s:%(http_port)d"
  auth-enabled = false
  log-enabled = false
  write-tracing = false
  pprof-enabled = false
  https-enabled = false
  max-row-limit = 0
  max-connection-limit = 0
  # NOTE: 0 is no limit; the tests push large batches.
  max-body-size = 0

[logging]
  suppress-logo = true
"""


class InfluxDBServerError(Exception):
    """The server could not be started, or found."""


class NotInstalled(InfluxDBServerError):
    """``influxd`` is not installed; the message says how to install it."""


#: Ports free on 127.0.0.1 now (see :func:`daemon.free_ports`).
free_ports = daemon.free_ports


def render_config(state_dir, http_port, rpc_port, host=HOST,
                  data_options=None):
    """Return the text of ``influxdb.conf`` for a server in ``state_dir``.

    :param state_dir: absolute path of the state directory; ``meta``,
        ``data`` and ``wal`` go under it.
    :param http_port: the port of the HTTP API (the URL's).
    :param rpc_port: the port of the backup/restore RPC service.
    :param host: the address both bind.
    :param data_options: more ``[data]`` settings, ``{name: str value}``
        (such as ``{'cache-snapshot-memory-size': '256k'}``).
    :returns: TOML text (a str).
    """
    # NOTE: a JSON string is a valid TOML basic string, whatever the path.
    paths = {name: json.dumps(os.path.join(state_dir, name))
             for name in _DATA_DIRS}
    extra = ''.join('  %s = %s\n' % (name, json.dumps(value))
                    for name, value in sorted((data_options or {}).items()))
    return _CONFIG % dict(paths, host=host, http_port=http_port,
                          rpc_port=rpc_port, data_options=extra)


def find_influxd():
    """Return the path of ``influxd``, or None when it is not installed."""
    path = os.pathsep.join([os.environ.get('PATH', ''), '/usr/bin',
                            '/usr/sbin', '/usr/local/bin'])
    return shutil.which('influxd', path=path)


def ping(url, timeout=2.0):
    """Tell whether an InfluxDB server answers ``GET <url>/ping`` with 204.

    :param url: the server's base URL, e.g. ``http://127.0.0.1:8086``.
    :param timeout: seconds to wait for the answer.
    :returns: True or False; never raises for a network failure.
    """
    return daemon.http_status(url.rstrip('/') + '/ping', timeout) == 204


class InfluxDBServer(daemon.Server):
    """An ``influxd`` process and its state directory.

    :param state_dir: where the config, data, log and pid files go; created
        by :meth:`start`.
    :param influxd: the ``influxd`` binary; found on ``PATH`` by default.
    :param data_options: more ``[data]`` settings (see
        :func:`render_config`).
    """

    url_file = _URL
    kept_files = (_CONF, _LOG)
    logs_env = LOGS_ENV
    logs_dir_name = '.influxdb-logs'

    def __init__(self, state_dir, influxd=None, data_options=None):
        super().__init__(state_dir)
        self.influxd = influxd
        self.data_options = data_options
        self._process = daemon.Process(self, _PROCESS, self._is_influxd)

    def _is_influxd(self, argv):
        # NOTE: only an influxd whose command line holds our config counts.
        return (os.path.basename(argv[0]) == b'influxd'
                and os.fsencode(self.path(_CONF)) in argv)

    @property
    def log_path(self):
        return self.path(_LOG)

    @property
    def pid(self):
        """influxd's pid from the pid file, or None."""
        return self._process.pid

    def describe(self):
        """Say what runs, e.g. ``influxd pid 1234``."""
        return 'influxd pid %s' % self.pid

    def is_alive(self):
        """Tell whether this directory's influxd process runs."""
        return self._process.is_alive()

    def ping(self, url):
        """Tell whether influxd answers ``/ping`` at ``url``."""
        return ping(url)

    def log_tail(self, lines=30):
        """Return the last ``lines`` lines of ``influxd.log``."""
        return self._process.log_tail(lines)

    def start(self, timeout=START_TIMEOUT, attempts=3):
        """Start influxd unless it runs; wait until it answers.

        :param timeout: seconds to wait for ``/ping`` to answer 204.
        :param attempts: how many times to try fresh ports when influxd
            exits because one was taken in the meantime.
        :returns: the URL, e.g. ``http://127.0.0.1:41234``.
        :raises NotInstalled: no ``influxd``.
        :raises InfluxDBServerError: it did not answer in time (it is
            killed; the message holds the end of its log).
        """
        if self.is_alive():
            url = self.url
            if url and self._wait(url, timeout):
                return url
            raise InfluxDBServerError(
                'influxd (pid %s) runs but %s/ping does not answer; see %s'
                % (self.pid, url, self.log_path))
        influxd = self.influxd or find_influxd()
        if influxd is None:
            raise NotInstalled('influxd is not installed; ' + INSTALL_HINT)
        for attempt in range(1, attempts + 1):
            url = self._spawn(influxd)
            if self._wait(url, timeout):
                return url
            exited = not self.is_alive()
            self._terminate()
            tail = self.log_tail()
            # NOTE: free_ports() cannot hold a port until influxd binds it.
            if (exited and 'address already in use' in tail
                    and attempt < attempts):
                continue
            what = ('exited before answering' if exited
                    else 'did not answer within %ss' % timeout)
            raise InfluxDBServerError('influxd %s (%s); the end of %s:\n%s'
                                      % (what, url, self.log_path, tail))

    def _spawn(self, influxd):
        for name in _DATA_DIRS:
            os.makedirs(self.path(name), exist_ok=True)
        http_port, rpc_port = free_ports(2)
        self.write(_CONF, render_config(self.state_dir, http_port,
                                        rpc_port,
                                        data_options=self.data_options))
        url = 'http://%s:%d' % (HOST, http_port)
        self._process.spawn([influxd, 'run', '-config', self.path(_CONF)])
        self.write(_URL, url + '\n')
        return url

    def _wait(self, url, timeout):
        return daemon.wait_for(lambda: ping(url, timeout=1.0), timeout,
                               alive=self.is_alive)

    def _terminate(self, timeout=STOP_TIMEOUT):
        """SIGTERM influxd, SIGKILL it after ``timeout`` seconds."""
        self._process.terminate(timeout)
        self.remove(_URL)

    def stop(self, keep=False, timeout=STOP_TIMEOUT):
        """Stop influxd (if it runs) and, unless ``keep``, remove its files.

        Only the recorded pid is signalled, and only if it is still this
        directory's influxd. Removes what :meth:`start` wrote (``meta``,
        ``data``, ``wal``, config, log, pid and URL files), then the
        directory if that left it empty; nothing else in it is touched.

        :param keep: keep the data, config and log (for a later start or a
            look at the log).
        :param timeout: seconds between SIGTERM and SIGKILL.
        """
        self._terminate(timeout)
        if keep:
            return
        self.remove(*_DATA_DIRS + (_CONF, _LOG))
        self.remove_dir_if_empty()


if fixtures is not None:
    class InfluxDBServerFixture(fixtures.Fixture):
        """A private InfluxDB server in a temporary directory.

        After ``setUp``, ``url`` is its URL and ``server`` the
        :class:`InfluxDBServer`; ``cleanUp`` stops it and removes its data.
        Raises :class:`NotInstalled` when there is no ``influxd``.
        """

        def __init__(self, timeout=START_TIMEOUT, data_options=None):
            super().__init__()
            self.timeout = timeout
            self.data_options = data_options
            self.server = None
            self.url = None

        def _setUp(self):
            tmp = self.useFixture(fixtures.TempDir()).path
            self.server = InfluxDBServer(os.path.join(tmp, 'influxdb'),
                                         data_options=self.data_options)
            self.addCleanup(self.server.stop)
            self.url = self.server.start(self.timeout)


def install():
    """Install InfluxDB 1.x with apt-get (as root), unless it is there.

    Runs ``apt-get update`` only when the package lists do not know
    ``influxdb`` yet.

    :returns: the path of ``influxd``.
    :raises NotInstalled: not root, no apt-get, or apt-get failed.
    """
    influxd = find_influxd()
    if influxd:
        return influxd
    if os.geteuid() != 0:
        raise NotInstalled('installing influxdb needs root; ' + INSTALL_HINT)
    if shutil.which('apt-get') is None:
        raise NotInstalled('no apt-get here; install InfluxDB 1.x (influxd) '
                           'with the system package manager')
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    quiet = {'stdout': subprocess.DEVNULL, 'stderr': subprocess.DEVNULL}
    steps = [['apt-get', 'install', '-y', 'influxdb']]
    if subprocess.call(['apt-cache', 'show', 'influxdb'], **quiet) != 0:
        steps.insert(0, ['apt-get', 'update'])
    for step in steps:
        if subprocess.call(step, env=env, stdout=sys.stderr) != 0:
            raise NotInstalled('"%s" failed' % ' '.join(step))
    influxd = find_influxd()
    if influxd is None:
        raise NotInstalled('the influxdb package has no influxd')
    return influxd


class _Tool(daemon.Tool):
    prog = 'influxdb-server'
    title = 'InfluxDB 1.x server'
    url_env = URL_ENV
    dir_env = DIR_ENV
    default_dir_name = '.influxdb'
    error = InfluxDBServerError
    start_timeout = START_TIMEOUT
    ready_check = '/ping'
    install_help = 'install influxdb with apt-get first if needed (root only)'

    def make_server(self, state_dir, args):
        return InfluxDBServer(state_dir)

    def install(self, args):
        return install()

    def prepare(self, server, args):
        if args.install:
            server.influxd = install()


#: ``main(argv=None, default_dir=None)``: the ``tools/influxdb-server``
#: command, which returns its exit status (see :meth:`daemon.Tool.main`).
main = _Tool().main


if __name__ == '__main__':
    sys.exit(main())
