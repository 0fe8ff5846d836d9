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
  afterwards (like ``pifpaf run``).
* :class:`InfluxDBServerFixture` starts one for a test and stops it.

A server lives in a state directory holding ``influxdb.conf``, ``meta/``,
``data/``, ``wal/``, ``influxd.log``, ``influxd.pid`` (influxd's own pid,
never a wrapper's) and ``influxd.url``. It listens on 127.0.0.1 only, on
ports found free when it starts, so several servers (parallel tox runs, a
system influxd on 8086) never collide.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import fixtures
except ImportError:  # NOTE: tools/influxdb-server runs on a bare python3.
    fixtures = None

#: The variable the InfluxDB tests read the server's URL from.
URL_ENV = 'CLOUDKITTY_TEST_INFLUXDB_URL'
#: Overrides the CLI's default state directory (``<repo>/.influxdb``).
DIR_ENV = 'CLOUDKITTY_INFLUXDB_DIR'
HOST = '127.0.0.1'
START_TIMEOUT = 30
STOP_TIMEOUT = 15
INSTALL_HINT = ('install InfluxDB 1.x: as root, "apt-get install -y '
                'influxdb" (Debian/Ubuntu), or "tools/influxdb-server '
                'install"')

# Everything a server writes: what stop removes (unless told to keep it).
_DATA_DIRS = ('meta', 'data', 'wal')
_CONF, _LOG, _PID, _URL = ('influxdb.conf', 'influxd.log', 'influxd.pid',
                           'influxd.url')

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


def free_ports(count=2, host=HOST):
    """Return ``count`` distinct TCP ports that are free on ``host`` now.

    :param count: how many ports.
    :param host: the address to bind.
    :returns: a list of ints. Another process may take one before influxd
        binds it; :meth:`InfluxDBServer.start` retries then.
    """
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def render_config(state_dir, http_port, rpc_port, host=HOST):
    """Return the text of ``influxdb.conf`` for a server in ``state_dir``.

    :param state_dir: absolute path of the state directory; ``meta``,
        ``data`` and ``wal`` go under it.
    :param http_port: the port of the HTTP API (the URL's).
    :param rpc_port: the port of the backup/restore RPC service.
    :param host: the address both bind.
    :returns: TOML text (a str).
    """
    # NOTE: a JSON string is a valid TOML basic string, whatever the path.
    paths = {name: json.dumps(os.path.join(state_dir, name))
             for name in _DATA_DIRS}
    return _CONFIG % dict(paths, host=host, http_port=http_port,
                          rpc_port=rpc_port)


def find_influxd():
    """Return the path of ``influxd``, or None when it is not installed."""
    path = os.pathsep.join([os.environ.get('PATH', ''), '/usr/bin',
                            '/usr/sbin', '/usr/local/bin'])
    return shutil.which('influxd', path=path)


# NOTE: no proxy, whatever http_proxy says: the server is on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ping(url, timeout=2.0):
    """Tell whether an InfluxDB server answers ``GET <url>/ping`` with 204.

    :param url: the server's base URL, e.g. ``http://127.0.0.1:8086``.
    :param timeout: seconds to wait for the answer.
    :returns: True or False; never raises for a network failure.
    """
    try:
        with _OPENER.open(url.rstrip('/') + '/ping', timeout=timeout) as rsp:
            return rsp.status == 204
    except (OSError, http.client.HTTPException):
        return False


def _is_influxd(pid, conf_path):
    """Tell whether ``pid`` is a live influxd run with ``conf_path``.

    A stale pid file may name a pid the system gave to another process
    since: only an ``influxd`` whose command line holds our config counts,
    so :meth:`InfluxDBServer.stop` never signals anything else.
    """
    if not os.path.isdir('/proc'):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    try:
        with open('/proc/%d/stat' % pid, encoding='utf-8') as stat:
            state = stat.read().rsplit(')', 1)[1].split()[0]
        with open('/proc/%d/cmdline' % pid, 'rb') as cmdline:
            argv = cmdline.read().split(b'\0')
    except (OSError, IndexError):
        return False
    # NOTE: a zombie is dead; nobody may have reaped it yet.
    return (state not in ('Z', 'X')
            and os.path.basename(argv[0]) == b'influxd'
            and os.fsencode(conf_path) in argv)


class InfluxDBServer:
    """An ``influxd`` process and its state directory.

    :param state_dir: where the config, data, log and pid files go; created
        by :meth:`start`.
    :param influxd: the ``influxd`` binary; found on ``PATH`` by default.
    """

    def __init__(self, state_dir, influxd=None):
        self.state_dir = os.path.abspath(state_dir)
        self.influxd = influxd
        # NOTE: set when this object started influxd, so it can reap it.
        self._proc = None

    def path(self, name):
        """Return the path of ``name`` in the state directory."""
        return os.path.join(self.state_dir, name)

    @property
    def log_path(self):
        return self.path(_LOG)

    def _read(self, name):
        try:
            with open(self.path(name), encoding='utf-8') as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    def _write(self, name, text):
        tmp = self.path(name + '.tmp')
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, self.path(name))

    @property
    def pid(self):
        """influxd's pid from the pid file, or None."""
        text = self._read(_PID)
        return int(text) if text and text.isdigit() else None

    @property
    def url(self):
        """The server's URL from the state directory, or None."""
        return self._read(_URL)

    def is_alive(self):
        """Tell whether this directory's influxd process runs."""
        if self._proc is not None:
            return self._proc.poll() is None
        pid = self.pid
        return pid is not None and _is_influxd(pid, self.path(_CONF))

    def status(self):
        """Return the URL if the server runs and answers, else None."""
        url = self.url
        if url and self.is_alive() and ping(url):
            return url
        return None

    def log_tail(self, lines=30):
        """Return the last ``lines`` lines of ``influxd.log``."""
        try:
            with open(self.log_path, encoding='utf-8',
                      errors='replace') as log:
                return ''.join(log.readlines()[-lines:])
        except FileNotFoundError:
            return '(no %s)\n' % self.log_path

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
        self._write(_CONF, render_config(self.state_dir, http_port,
                                         rpc_port))
        url = 'http://%s:%d' % (HOST, http_port)
        with open(self.log_path, 'ab') as log:
            # NOTE: its own session, so that a Ctrl-C meant for the tests
            # does not reach it before its turn; no shell, so the pid is
            # influxd's.
            self._proc = subprocess.Popen(
                [influxd, 'run', '-config', self.path(_CONF)],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        self._write(_PID, '%d\n' % self._proc.pid)
        self._write(_URL, url + '\n')
        return url

    def _wait(self, url, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if ping(url, timeout=1.0):
                return True
            if not self.is_alive() or time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    def _wait_dead(self, timeout):
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while self.is_alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _signal(self, signum):
        try:
            if self._proc is not None:
                self._proc.send_signal(signum)
            else:
                os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def _terminate(self, timeout=STOP_TIMEOUT):
        """SIGTERM influxd, SIGKILL it after ``timeout`` seconds."""
        if self.is_alive():
            self._signal(signal.SIGTERM)
            if not self._wait_dead(timeout):
                self._signal(signal.SIGKILL)
                self._wait_dead(5)
        self._proc = None
        for name in (_PID, _URL):
            try:
                os.remove(self.path(name))
            except FileNotFoundError:
                pass

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
        for name in _DATA_DIRS:
            shutil.rmtree(self.path(name), ignore_errors=True)
        for name in (_CONF, _LOG):
            try:
                os.remove(self.path(name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(self.state_dir)
        except OSError:
            pass


if fixtures is not None:
    class InfluxDBServerFixture(fixtures.Fixture):
        """A private InfluxDB server in a temporary directory.

        After ``setUp``, ``url`` is its URL and ``server`` the
        :class:`InfluxDBServer`; ``cleanUp`` stops it and removes its data.
        Raises :class:`NotInstalled` when there is no ``influxd``.
        """

        def __init__(self, timeout=START_TIMEOUT):
            super().__init__()
            self.timeout = timeout
            self.server = None
            self.url = None

        def _setUp(self):
            tmp = self.useFixture(fixtures.TempDir()).path
            self.server = InfluxDBServer(os.path.join(tmp, 'influxdb'))
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


def _parser(default_dir):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        '--dir', default=None,
        help='the state directory (default: $%s, else %s; "run" uses a '
             'temporary one)' % (DIR_ENV, default_dir))
    timeout = argparse.ArgumentParser(add_help=False)
    timeout.add_argument('--timeout', type=float, default=START_TIMEOUT,
                         help='seconds to wait for /ping (default: '
                              '%(default)s)')
    inst = argparse.ArgumentParser(add_help=False)
    inst.add_argument('--install', action='store_true',
                      help='install influxdb with apt-get first if needed '
                           '(root only)')
    keep = argparse.ArgumentParser(add_help=False)
    keep.add_argument('--keep', action='store_true',
                      help='keep the data, config and log when stopping')

    parser = argparse.ArgumentParser(
        prog='influxdb-server',
        description='A private InfluxDB 1.x server on 127.0.0.1 for the '
                    'functional tests.')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('start', parents=[common, timeout, inst],
                   help='start the server (unless it runs), print its URL')
    sub.add_parser('stop', parents=[common, keep],
                   help='stop it and remove its data (unless --keep)')
    sub.add_parser('status', parents=[common],
                   help='print the URL and exit 0 if it runs and answers')
    sub.add_parser('env', parents=[common],
                   help='print "export %s=<url>"' % URL_ENV)
    run = sub.add_parser(
        'run', parents=[common, timeout, inst, keep],
        help='start a server, run a command with %s set, stop it'
             % URL_ENV,
        description='Start a server in a temporary directory, run COMMAND '
                    'with %s set to its URL, stop the server and exit with '
                    "COMMAND's status. When %s is already set, just run "
                    'COMMAND against that server. When the server does not '
                    'come up, run COMMAND without the variable (so that the '
                    'tests report it) and exit with 1.'
                    % (URL_ENV, URL_ENV))
    run.add_argument('cmd', nargs=argparse.REMAINDER, metavar='COMMAND',
                     help='the command (after "--")')
    sub.add_parser('install', help='install influxdb with apt-get (root)')
    return parser


def _err(message):
    print('influxdb-server: %s' % message, file=sys.stderr)


def _run(args, state_dir):
    cmd = args.cmd[1:] if args.cmd[:1] == ['--'] else args.cmd
    if not cmd:
        _err('run: no command given (influxdb-server run -- COMMAND...)')
        return 2
    given = os.environ.get(URL_ENV, '').strip()
    if given:
        _err('%s=%s is set: using that server' % (URL_ENV, given))
        return _call(cmd, os.environ)
    tmp = None
    if state_dir is None:
        tmp = state_dir = tempfile.mkdtemp(prefix='cloudkitty-influxdb-')
    server = InfluxDBServer(state_dir)
    old_handler = _handle_sigterm(_on_sigterm)
    try:
        try:
            url = server.start(args.timeout)
        except InfluxDBServerError as exc:
            # NOTE: the tests still run, without the variable, so that they
            # report the missing server themselves (a skip, or a failure
            # counted with the others under CLOUDKITTY_TEST_REQUIRE_BACKENDS).
            _err('%s\nrunning the command without %s; exit status 1'
                 % (exc, URL_ENV))
            env = {k: v for k, v in os.environ.items() if k != URL_ENV}
            _call(cmd, env)
            return 1
        _err('%s=%s (influxd pid %d, %s)'
             % (URL_ENV, url, server.pid, state_dir))
        rc = _call(cmd, dict(os.environ, **{URL_ENV: url}))
        if not server.is_alive():
            _err('influxd exited during the run; the end of its log:\n%s'
                 % server.log_tail())
            rc = rc or 1
        return rc
    finally:
        server.stop(keep=args.keep)
        if tmp and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        if old_handler is not None:
            _handle_sigterm(old_handler)


def _call(cmd, env):
    try:
        return subprocess.call(cmd, env=env)
    except OSError as exc:
        _err('run: %s: %s' % (cmd[0], exc))
        return 127
    except KeyboardInterrupt:
        return 130


def _on_sigterm(signum, frame):
    # NOTE: unwinds through the finally clauses, which stop the server.
    raise SystemExit(128 + signum)


def _handle_sigterm(handler):
    """Install ``handler`` for SIGTERM; return the previous one."""
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        # NOTE: only the main thread may; a test may call main() elsewhere.
        return None


def main(argv=None, default_dir=None):
    """The ``tools/influxdb-server`` command; returns its exit status.

    :param argv: the arguments (default: ``sys.argv[1:]``).
    :param default_dir: the state directory when neither ``--dir`` nor
        ``$CLOUDKITTY_INFLUXDB_DIR`` is given (default: ``./.influxdb``).
    """
    default_dir = default_dir or os.path.join(os.getcwd(), '.influxdb')
    args = _parser(default_dir).parse_args(argv)
    if args.command == 'install':
        try:
            print(install())
        except NotInstalled as exc:
            _err(str(exc))
            return 1
        return 0
    if args.command == 'run':
        if args.install:
            try:
                install()
            except NotInstalled as exc:
                _err(str(exc))
                return 1
        return _run(args, args.dir)

    server = InfluxDBServer(args.dir or os.environ.get(DIR_ENV)
                            or default_dir)
    if args.command == 'start':
        try:
            if args.install:
                server.influxd = install()
            print(server.start(args.timeout))
        except InfluxDBServerError as exc:
            _err(str(exc))
            return 1
        return 0
    if args.command == 'stop':
        was = server.pid if server.is_alive() else None
        server.stop(keep=args.keep)
        _err('stopped influxd pid %d' % was if was else 'was not running')
        return 0
    url = server.status()
    if url is None:
        _err('no server answers in %s' % server.state_dir)
        return 1
    if args.command == 'env':
        print('export %s=%s' % (URL_ENV, url))
    else:
        print(url)
    return 0


if __name__ == '__main__':
    sys.exit(main())
