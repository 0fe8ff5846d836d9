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
"""tools/influxdb-server (cloudkitty/tests/influxdb_server.py).

The unit tests need no InfluxDB; ``ServerLifecycleTest`` starts real
``influxd`` processes and runs in the functional envs only.
"""

import http.server
import io
import os
import socket
import subprocess
import sys
import threading

import fixtures
import testtools

from cloudkitty.tests import functional_env
from cloudkitty.tests import influxdb_server as ifx

_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'tools', 'influxdb-server')


class FreePortsTest(testtools.TestCase):

    def test_distinct_and_free(self):
        """The ports differ and can be bound on 127.0.0.1."""
        ports = ifx.free_ports(3)
        self.assertEqual(3, len(set(ports)))
        for port in ports:
            self.assertGreater(port, 0)
            with socket.socket() as sock:
                sock.bind((ifx.HOST, port))


class RenderConfigTest(testtools.TestCase):

    def _parse(self, text):
        try:
            import tomllib
        except ImportError:
            self.skipTest('tomllib needs Python 3.11')
        return tomllib.loads(text)

    def test_settings(self):
        """Loopback binds, our ports, data under the state dir, no limits."""
        conf = self._parse(ifx.render_config('/st', 1234, 5678))
        self.assertTrue(conf['reporting-disabled'])
        self.assertEqual('127.0.0.1:5678', conf['bind-address'])
        self.assertEqual('127.0.0.1:1234', conf['http']['bind-address'])
        self.assertEqual(('/st/meta', '/st/data', '/st/wal'),
                         (conf['meta']['dir'], conf['data']['dir'],
                          conf['data']['wal-dir']))
        self.assertEqual('inmem', conf['data']['index-version'])
        self.assertFalse(conf['data']['query-log-enabled'])
        self.assertEqual(0, conf['data']['max-values-per-tag'])
        self.assertEqual(0, conf['data']['max-series-per-database'])
        self.assertEqual('0s', conf['coordinator']['query-timeout'])
        for key in ('max-select-point', 'max-select-series',
                    'max-select-buckets'):
            self.assertEqual(0, conf['coordinator'][key])
        http = conf['http']
        self.assertEqual((False, False, 0, 0),
                         (http['auth-enabled'], http['log-enabled'],
                          http['max-row-limit'], http['max-body-size']))
        self.assertFalse(conf['monitor']['store-enabled'])
        self.assertFalse(conf['continuous_queries']['enabled'])

    def test_awkward_path(self):
        """Quotes, backslashes and spaces in the path survive TOML."""
        state = '/tmp/a "b" \\c d\u00e9'
        conf = self._parse(ifx.render_config(state, 1, 2))
        self.assertEqual(os.path.join(state, 'wal'), conf['data']['wal-dir'])


class _PingHandler(http.server.BaseHTTPRequestHandler):
    status = 204

    def do_GET(self):
        self.send_response(self.status if self.path == '/ping' else 404)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass


class PingTest(testtools.TestCase):

    def _serve(self, status):
        handler = type('Handler', (_PingHandler,), {'status': status})
        server = http.server.ThreadingHTTPServer((ifx.HOST, 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return 'http://%s:%d/' % (ifx.HOST, server.server_address[1])

    def test_204(self):
        """Only a 204 on /ping counts as InfluxDB answering."""
        self.assertTrue(ifx.ping(self._serve(204)))

    def test_200(self):
        self.assertFalse(ifx.ping(self._serve(200)))

    def test_nobody_listens(self):
        port = ifx.free_ports(1)[0]
        self.assertFalse(ifx.ping('http://%s:%d' % (ifx.HOST, port)))


class ServerWithoutInfluxdTest(testtools.TestCase):
    """What needs no influxd: stale state, missing binary, a dying one."""

    def setUp(self):
        super().setUp()
        self.dir = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                'state')
        self.server = ifx.InfluxDBServer(self.dir)

    def test_nothing_there(self):
        """status is None and stop is a no-op on a missing directory."""
        self.assertIsNone(self.server.status())
        self.server.stop()
        self.assertFalse(os.path.exists(self.dir))

    def test_stale_pid_is_not_signalled(self):
        """A pid file naming another process: not alive, never killed."""
        os.makedirs(self.dir)
        for name, text in (('influxd.pid', '%d\n' % os.getpid()),
                           ('influxd.url', 'http://127.0.0.1:1\n')):
            with open(os.path.join(self.dir, name), 'w') as f:
                f.write(text)
        self.assertEqual(os.getpid(), self.server.pid)
        self.assertFalse(self.server.is_alive())
        self.server.stop()
        self.assertFalse(os.path.exists(self.dir))

    def test_not_installed(self):
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.tests.influxdb_server.find_influxd', lambda: None))
        error = self.assertRaises(ifx.NotInstalled, self.server.start)
        self.assertIn('apt-get install -y influxdb', str(error))

    def test_exits_at_once(self):
        """An influxd that dies is reported with the end of its log."""
        fake = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'influxd')
        with open(fake, 'w') as f:
            f.write('#!/bin/sh\necho "no luck today" >&2\nexit 1\n')
        os.chmod(fake, 0o755)
        self.server.influxd = fake
        error = self.assertRaises(ifx.InfluxDBServerError, self.server.start,
                                  timeout=5)
        self.assertIn('exited before answering', str(error))
        self.assertIn('no luck today', str(error))
        self.assertIsNone(self.server.pid)


class MainTest(testtools.TestCase):
    """The command line, where no server has to start."""

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', self.stdout))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', self.stderr))

    def test_status_and_env_without_server(self):
        for command in ('status', 'env'):
            self.assertEqual(1, ifx.main([command, '--dir', self.dir]))
        self.assertEqual('', self.stdout.getvalue())

    def test_start_not_installed(self):
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.tests.influxdb_server.find_influxd', lambda: None))
        self.assertEqual(1, ifx.main(['start', '--dir', self.dir]))
        self.assertIn('apt-get install -y influxdb', self.stderr.getvalue())

    def test_run_uses_a_given_url(self):
        """With the variable set, run starts nothing and passes it on."""
        self.useFixture(fixtures.EnvironmentVariable(
            ifx.URL_ENV, 'http://example.invalid:1'))
        code = ('import os, sys; sys.exit(7 if os.environ[%r] == '
                '"http://example.invalid:1" else 1)' % ifx.URL_ENV)
        self.assertEqual(7, ifx.main(['run', '--dir', self.dir, '--',
                                      sys.executable, '-c', code]))
        self.assertEqual([], os.listdir(self.dir))

    def test_run_when_the_server_fails(self):
        """The command runs without the variable; run still fails."""
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.tests.influxdb_server.find_influxd', lambda: None))
        self.useFixture(fixtures.EnvironmentVariable(ifx.URL_ENV, ' '))
        marker = os.path.join(self.dir, 'ran')
        code = ('import os, sys; sys.exit(3 if %r in os.environ else '
                'open(%r, "w").close())' % (ifx.URL_ENV, marker))
        self.assertEqual(1, ifx.main(['run', '--', sys.executable, '-c',
                                      code]))
        self.assertTrue(os.path.exists(marker))
        self.assertIn('apt-get install -y influxdb', self.stderr.getvalue())

    def test_run_without_command(self):
        self.assertEqual(2, ifx.main(['run', '--']))

    @testtools.skipUnless(os.path.exists(_SCRIPT), 'not in a checkout')
    def test_script(self):
        """tools/influxdb-server runs the same main()."""
        proc = subprocess.run(
            [sys.executable, _SCRIPT, 'status', '--dir', self.dir],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(1, proc.returncode, proc.stderr)
        self.assertIn('no server answers in %s' % self.dir, proc.stderr)


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class ServerLifecycleTest(testtools.TestCase):
    """Real influxd processes (tox -e functional-influxdb)."""

    def setUp(self):
        super().setUp()
        if ifx.find_influxd() is None:
            functional_env.skip_or_fail(
                self, 'influxd is not installed; ' + ifx.INSTALL_HINT)
        self.dir = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                'state')

    def _main(self, command, *argv):
        out, err = io.StringIO(), io.StringIO()
        with fixtures.MonkeyPatch('sys.stdout', out), \
                fixtures.MonkeyPatch('sys.stderr', err):
            rc = ifx.main([command, '--dir', self.dir] + list(argv))
        self.stderr = err.getvalue()
        return rc, out.getvalue().strip()

    def test_start_status_stop_twice(self):
        """start, start again, status, env and stop, two rounds."""
        for _ in range(2):
            rc, url = self._main('start')
            self.assertEqual(0, rc)
            self.assertTrue(url.startswith('http://127.0.0.1:'), url)
            pid = ifx.InfluxDBServer(self.dir).pid
            self.assertEqual((0, url), self._main('start'))
            self.assertEqual(pid, ifx.InfluxDBServer(self.dir).pid)
            self.assertEqual((0, url), self._main('status'))
            self.assertEqual((0, 'export %s=%s' % (ifx.URL_ENV, url)),
                             self._main('env'))
            self.assertTrue(ifx.ping(url))
            self.assertEqual((0, ''), self._main('stop'))
            self.assertFalse(ifx.ping(url))
            self.assertEqual(1, self._main('status')[0])
            self.assertFalse(ifx.InfluxDBServer(self.dir).is_alive())
            self.assertFalse(os.path.exists(self.dir))

    def test_fixture(self):
        fixture = ifx.InfluxDBServerFixture()
        fixture.setUp()
        try:
            url = fixture.url
            self.assertTrue(ifx.ping(url))
            state_dir = fixture.server.state_dir
        finally:
            fixture.cleanUp()
        self.assertFalse(ifx.ping(url))
        self.assertFalse(os.path.exists(state_dir))

    def test_run(self):
        """run exports the URL of a live server and returns the status.

        The command fails (status 7): the server's config and log are
        kept, in a new directory under ``$CLOUDKITTY_INFLUXDB_LOGS``.
        """
        self.useFixture(fixtures.EnvironmentVariable(ifx.URL_ENV))
        kept_root = os.path.join(os.path.dirname(self.dir), 'kept')
        self.useFixture(fixtures.EnvironmentVariable(ifx.LOGS_ENV,
                                                     kept_root))
        code = ('import os, sys, urllib.request as r\n'
                'opener = r.build_opener(r.ProxyHandler({}))\n'
                'rsp = opener.open(os.environ[%r] + "/ping", timeout=10)\n'
                'sys.exit(7 if rsp.status == 204 else 1)\n' % ifx.URL_ENV)
        rc, _ = self._main('run', '--', sys.executable, '-c', code)
        self.assertEqual(7, rc)
        self.assertFalse(os.path.exists(self.dir))
        [kept] = os.listdir(kept_root)
        self.assertEqual(['influxd.log', 'influxdb.conf'],
                         sorted(os.listdir(os.path.join(kept_root, kept))))
        self.assertIn('the command failed (status 7); the config and logs '
                      'of the server are kept in %s' % os.path.join(
                          kept_root, kept), self.stderr)

    def test_run_that_passes_keeps_nothing(self):
        self.useFixture(fixtures.EnvironmentVariable(ifx.URL_ENV))
        kept_root = os.path.join(os.path.dirname(self.dir), 'kept')
        self.useFixture(fixtures.EnvironmentVariable(ifx.LOGS_ENV,
                                                     kept_root))
        rc, _ = self._main('run', '--', sys.executable, '-c', 'pass')
        self.assertEqual(0, rc)
        self.assertFalse(os.path.exists(kept_root))
