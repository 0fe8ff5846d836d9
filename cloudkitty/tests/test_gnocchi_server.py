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
"""tools/gnocchi-server (cloudkitty/tests/gnocchi_server.py).

The unit tests need no Gnocchi; ``ServerLifecycleTest`` starts real
Gnocchi servers (from the virtualenv ``tools/gnocchi-server install``
makes) and runs in the functional envs only.
"""

import configparser
import io
import json
import os
import subprocess
import sys
import urllib.request

import fixtures
import testtools

from cloudkitty.tests import daemon
from cloudkitty.tests import functional_env
from cloudkitty.tests import gnocchi_server as gs

_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'tools', 'gnocchi-server')


class UrlTest(testtools.TestCase):

    def test_redis_db_is_a_query_parameter(self):
        """Gnocchi reads the database from ?db=, never from the path."""
        self.assertEqual('redis://127.0.0.1:6379?db=3',
                         gs.with_redis_db('redis://127.0.0.1:6379/9', 3))
        self.assertEqual('redis://h:1?socket_timeout=5&db=4',
                         gs.with_redis_db('redis://h:1?db=1&'
                                          'socket_timeout=5', 4))

    def test_database(self):
        self.assertEqual('postgresql://postgres@127.0.0.1:5432/ck_x',
                         gs.with_database(gs.POSTGRESQL_URL, 'ck_x'))

    def test_auth_headers(self):
        """Basic auth, user admin, empty password."""
        self.assertEqual({'Authorization': 'Basic YWRtaW46'},
                         gs.auth_headers())


class RenderConfigTest(testtools.TestCase):

    def _parse(self, text):
        conf = configparser.ConfigParser(interpolation=None)
        conf.read_string(text)
        return conf

    def test_redis(self):
        """Basic auth, the indexer, file storage, Redis, a quick metricd."""
        conf = self._parse(gs.render_config(
            '/st', 'postgresql://postgres@127.0.0.1:5432/db',
            'redis://127.0.0.1:6379?db=5'))
        self.assertEqual('basic', conf['api']['auth_mode'])
        self.assertEqual('postgresql://postgres@127.0.0.1:5432/db',
                         conf['indexer']['url'])
        self.assertEqual(('file', '/st/storage'),
                         (conf['storage']['driver'],
                          conf['storage']['file_basepath']))
        self.assertEqual(('redis', 'redis://127.0.0.1:6379?db=5'),
                         (conf['incoming']['driver'],
                          conf['incoming']['redis_url']))
        self.assertEqual(('1', '-1'),
                         (conf['metricd']['metric_processing_delay'],
                          conf['metricd']['metric_reporting_delay']))
        self.assertEqual(str(gs.METRICD_WORKERS),
                         conf['metricd']['workers'])

    def test_file_incoming_and_dollar(self):
        """File incoming; a "$" is doubled, oslo.config would expand it."""
        conf = self._parse(gs.render_config('/a$b', 'postgresql:///x'))
        self.assertEqual(('file', '/a$$b/storage'),
                         (conf['incoming']['driver'],
                          conf['incoming']['file_basepath']))
        self.assertNotIn('redis_url', conf['incoming'])


class ProcessGroupTest(testtools.TestCase):
    """daemon.Process with workers, as gnocchi-metricd has."""

    def setUp(self):
        super().setUp()
        self.state = daemon.StateDir(self.useFixture(fixtures.TempDir()).path)
        self.marker = 'cloudkitty-test-%d' % os.getpid()

    def _identify(self, argv):
        return os.fsencode(self.marker) in b' '.join(argv)

    def test_terminate_kills_the_workers(self):
        """A leader that ignores SIGTERM: its group is killed after it."""
        proc = daemon.Process(self.state, 'leader', self._identify,
                              group=True)
        # NOTE: the marker is an argument of sh; the sleeps are its group.
        script = 'trap "" TERM; sleep 60 & sleep 60 & wait'
        pid = proc.spawn(['sh', '-c', script, self.marker])
        self.assertTrue(daemon.wait_for(
            lambda: len(daemon.group_pids(pid)) == 3, 10))
        other = daemon.Process(self.state, 'leader', self._identify,
                               group=True)
        self.assertTrue(other.is_alive())
        self.assertEqual(pid, other.terminate(timeout=0.5))
        # NOTE: SIGKILL has been sent to the group; on a loaded machine the
        # killed members may take a moment to be scheduled and exit.
        self.assertTrue(daemon.wait_for(
            lambda: daemon.group_pids(pid) == [], 60),
            daemon.group_pids(pid))
        self.assertIsNone(other.pid)

    def test_stale_pid_is_not_signalled(self):
        """A pid file naming another process: not alive, never killed."""
        self.state.write('leader.pid', '%d\n' % os.getpid())
        proc = daemon.Process(self.state, 'leader', self._identify,
                              group=True)
        self.assertFalse(proc.is_alive())
        self.assertIsNone(proc.terminate())
        self.assertIsNone(proc.pid)


class ServerWithoutGnocchiTest(testtools.TestCase):
    """What needs no Gnocchi: missing state, missing virtualenv."""

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.dir = os.path.join(tmp, 'state')
        self.venv = os.path.join(tmp, 'venv')
        self.server = gs.GnocchiServer(self.dir, venv=self.venv)

    def test_nothing_there(self):
        """Nobody answers; stop is a no-op on a missing directory."""
        port = daemon.free_ports(1)[0]
        self.assertFalse(self.server.ping('http://%s:%d' % (gs.HOST, port)))
        self.assertIsNone(self.server.status())
        self.assertFalse(self.server.is_alive())
        self.server.stop(keep=False)
        self.assertFalse(os.path.exists(self.dir))

    def test_not_installed(self):
        error = self.assertRaises(gs.NotInstalled, self.server.start)
        self.assertIn(self.venv, str(error))
        self.assertIn('tools/gnocchi-server install', str(error))
        self.assertFalse(os.path.exists(self.dir))

    def test_one_database_per_directory(self):
        other = gs.GnocchiServer(self.dir + '2', venv=self.venv)
        self.assertNotEqual(self.server.database, other.database)
        self.assertEqual(self.server.database,
                         gs.GnocchiServer(self.dir + '/').database)

    def test_default_venv(self):
        self.useFixture(fixtures.EnvironmentVariable(gs.VENV_ENV, '/v'))
        self.assertEqual('/v', gs.default_venv())
        self.useFixture(fixtures.EnvironmentVariable(gs.VENV_ENV))
        self.assertEqual('.gnocchi-venv',
                         os.path.basename(gs.default_venv()))

    def test_install_is_quick_when_done(self):
        """A virtualenv with the marker of these requirements is kept."""
        os.makedirs(self.venv)
        with open(os.path.join(self.venv, gs._MARKER), 'w') as f:
            f.write(''.join(r + '\n' for r in gs.REQUIREMENTS))
        self.useFixture(fixtures.MonkeyPatch(
            'subprocess.call', lambda *a, **k: self.fail('ran %s' % (a,))))
        self.assertEqual(self.venv, gs.install(self.venv))


class KeepLogsTest(testtools.TestCase):
    """What a failed run keeps of its server, and what it prints."""

    def test_excerpt_shows_failures_and_their_ends(self):
        """Each failing record: its first line, the end of its traceback."""
        def info(i):
            return '2026-12-05 09:00:%02d,000 [1] INFO x: line %d\n' % (
                i % 60, i)

        log = ''.join(info(i) for i in range(100))
        log += ('2026-12-05 09:01:00,000 [1] ERROR waitress: Exception '
                'while serving /v1/x\n'
                'Traceback (most recent call last):\n'
                + ''.join('  File "f%d.py", line 1\n    f%d()\n'
                          '    ^^^^^\n' % (i, i) for i in range(20))
                + 'ValueError: boom\n')
        log += ''.join(info(i) for i in range(100, 130))
        text = gs.excerpt(log, context=5)
        self.assertIn('ERROR waitress: Exception while serving /v1/x\n'
                      '    [...]\n'
                      '  File "f18.py", line 1\n    f18()\n'
                      '  File "f19.py", line 1\n    f19()\n'
                      'ValueError: boom\n', text)
        self.assertNotIn('line 99', text)
        self.assertNotIn('line 100', text)
        self.assertNotIn('f17', text)
        self.assertNotIn('^', text)
        self.assertTrue(text.startswith('193 lines, 1 records telling of '
                                        'failures'), text)

    def test_excerpt_of_a_quiet_log_is_its_end(self):
        log = ''.join('line %d\n' % i for i in range(100))
        self.assertEqual('line 98\nline 99\n', gs.excerpt(log, lines=2))

    def test_keep_logs_copies_config_and_logs(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        kept_root = os.path.join(tmp, 'kept')
        self.useFixture(fixtures.EnvironmentVariable(gs.LOGS_ENV,
                                                     kept_root))
        server = gs.GnocchiServer(os.path.join(tmp, 'state'))
        os.makedirs(os.path.join(server.state_dir, 'storage'))
        for name in ('gnocchi.conf', 'api.log', 'metricd.log', 'mine'):
            with open(server.path(name), 'w') as f:
                f.write(name + '\n')
        first, second = server.keep_logs(), server.keep_logs()
        self.assertNotEqual(first, second)
        self.assertEqual(kept_root, os.path.dirname(first))
        self.assertEqual(['api.log', 'gnocchi.conf', 'metricd.log'],
                         sorted(os.listdir(first)))
        with open(os.path.join(first, 'api.log')) as f:
            self.assertEqual('api.log\n', f.read())
        self.assertIn('--- api.log: api.log\n', server.log_excerpt())

    def test_excerpt_skips_the_start(self):
        """Errors before the server answered are the start's, not the run's."""
        tmp = self.useFixture(fixtures.TempDir()).path
        server = gs.GnocchiServer(tmp)
        with open(server.path('api.log'), 'w') as f:
            f.write('1 ERROR waitress: Exception while serving /v1/status\n'
                    + gs.READY_MARK % 'http://127.0.0.1:1' + 'served\n')
        self.assertEqual('--- api.log (after the start: 1 lines before): '
                         'served\n', server.log_excerpt())


class MainTest(testtools.TestCase):
    """The command line without Gnocchi.

    ``run`` and the other commands are :class:`daemon.Tool`'s, tested
    through ``tools/influxdb-server`` too; these are Gnocchi's parts.
    """

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.dir = os.path.join(tmp, 'state')
        self.venv = os.path.join(tmp, 'no-venv')
        self.useFixture(fixtures.EnvironmentVariable(gs.VENV_ENV, self.venv))
        self.useFixture(fixtures.EnvironmentVariable(gs.URL_ENV))
        self.stderr = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', io.StringIO()))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', self.stderr))

    def test_not_installed(self):
        """start and run fail, naming the virtualenv and the fix.

        run still runs the command, without the variable.
        """
        self.assertEqual(1, gs.main(['start', '--dir', self.dir]))
        code = 'import os, sys; sys.exit(%r in os.environ)' % gs.URL_ENV
        self.assertEqual(1, gs.main(['run', '--', sys.executable, '-c',
                                     code]))
        self.assertEqual(2, self.stderr.getvalue().count(
            'Gnocchi is not installed in %s; %s' % (self.venv,
                                                    gs.INSTALL_HINT)))
        self.assertIn('running the command without', self.stderr.getvalue())
        self.assertEqual(1, gs.main(['status', '--dir', self.dir]))

    def test_stop_keeps_files_unless_purge(self):
        """stop removes nothing it did not write; --purge its files."""
        os.makedirs(self.dir)
        for name in ('gnocchi.conf', 'api.log', 'mine.txt'):
            open(os.path.join(self.dir, name), 'w').close()
        self.assertEqual(0, gs.main(['stop', '--dir', self.dir]))
        self.assertEqual(['api.log', 'gnocchi.conf', 'mine.txt'],
                         sorted(os.listdir(self.dir)))
        self.assertEqual(0, gs.main(['stop', '--dir', self.dir,
                                     '--purge']))
        self.assertEqual(['mine.txt'], os.listdir(self.dir))

    @testtools.skipUnless(os.path.exists(_SCRIPT), 'not in a checkout')
    def test_script(self):
        """tools/gnocchi-server runs the same main()."""
        proc = subprocess.run(
            [sys.executable, _SCRIPT, 'env', '--dir', self.dir],
            capture_output=True, text=True, timeout=60)
        self.assertEqual((1, ''), (proc.returncode, proc.stdout))
        self.assertIn('gnocchi-server: no server answers in %s' % self.dir,
                      proc.stderr)


class RunKeepsLogsTest(testtools.TestCase):
    """What ``run`` keeps and prints, around a server that only pretends.

    ``GnocchiServer.start`` is replaced by one that writes the files a
    real start leaves in the state directory (a start's errors, the ready
    mark, then what the run logged) and returns a URL; the rest of
    ``run`` (the command, ``stop``, removing the directory) is real.
    """

    START = ('2026-12-05 09:00:00,000 [1] ERROR    waitress: Exception '
             'while serving /v1/status\n'
             'tooz.coordination.GroupNotCreated: Group gnocchi-processing '
             'does not exist\n')
    RUN = ('2026-12-05 09:00:05,000 [1] ERROR    waitress: Exception '
           'while serving /v1/aggregates\n'
           'Traceback (most recent call last):\n'
           '  File ".../gnocchi/rest/api.py", line 1364, in _parse\n'
           "AttributeError: 'dict' object has no attribute 'expandtabs'\n")

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.kept_root = os.path.join(tmp, 'kept')
        self.useFixture(fixtures.EnvironmentVariable(gs.LOGS_ENV,
                                                     self.kept_root))
        self.useFixture(fixtures.EnvironmentVariable(gs.URL_ENV))
        self.stderr = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', self.stderr))
        self.alive = True
        self.servers = []
        test = self

        def start(server, timeout=None):
            test.servers.append(server)
            url = 'http://127.0.0.1:9'
            server.write('gnocchi.conf', '[api]\nauth_mode = basic\n')
            server.write('api.log', test.START + gs.READY_MARK % url
                         + test.RUN)
            server.write('metricd.log', 'metricd: ok\n')
            server.write('gnocchi.url', url + '\n')
            return url

        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.tests.gnocchi_server.GnocchiServer.start', start))
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.tests.gnocchi_server.GnocchiServer.is_alive',
            lambda server: test.alive))

    def run_command(self, status):
        """``run`` a command that exits with ``status``; return run's."""
        return gs.main(['run', '--', sys.executable, '-c',
                        'import sys; sys.exit(%d)' % status])

    def kept(self):
        """The one directory kept, and its files' contents."""
        [name] = os.listdir(self.kept_root)
        path = os.path.join(self.kept_root, name)
        files = {}
        for entry in os.listdir(path):
            with open(os.path.join(path, entry)) as f:
                files[entry] = f.read()
        return path, files

    def test_failed_command_keeps_and_prints_the_logs(self):
        """The config and logs are kept; their path and errors are last."""
        self.assertEqual(3, self.run_command(3))
        path, files = self.kept()
        self.assertEqual({'gnocchi.conf', 'api.log', 'metricd.log'},
                         set(files))
        self.assertTrue(files['api.log'].endswith(self.RUN))
        self.assertEqual('metricd: ok\n', files['metricd.log'])
        # NOTE: the state directory is gone, as after every run.
        self.assertFalse(os.path.exists(self.servers[0].state_dir))
        last = self.stderr.getvalue().rsplit('gnocchi-server: ', 1)[1]
        self.assertTrue(last.startswith(
            'the command failed (status 3); the config and logs of '
            'the server are kept in %s. What they say:\n' % path), last)
        # NOTE: the run's error with its traceback, each log under its
        # name; a quiet log's end; nothing of what the start logged.
        self.assertIn('--- api.log (after the start: 2 lines before): 4 '
                      'lines, 1 records telling of failures', last)
        self.assertIn(self.RUN, last)
        self.assertTrue(last.rstrip('\n').endswith(
            '--- metricd.log: metricd: ok'), last)
        self.assertNotIn('GroupNotCreated', last)

    def test_passed_command_keeps_nothing(self):
        """A run that passes leaves nothing behind, as before."""
        self.assertEqual(0, self.run_command(0))
        self.assertFalse(os.path.exists(self.kept_root))
        self.assertFalse(os.path.exists(self.servers[0].state_dir))
        self.assertNotIn('kept in', self.stderr.getvalue())

    def test_server_that_died_keeps_the_logs(self):
        """A command that passed while the server died fails the run."""
        self.alive = False
        self.assertEqual(1, self.run_command(0))
        path, files = self.kept()
        self.assertIn('api.log', files)
        self.assertIn('the command failed (status 0); the config and logs '
                      'of the server are kept in %s' % path,
                      self.stderr.getvalue())
        self.assertIn('the server exited during the run',
                      self.stderr.getvalue())


# NOTE: no proxy, whatever http_proxy says: the servers are on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _request(url, method='GET', body=None):
    """Send an authenticated JSON request; return the decoded answer."""
    data = None if body is None else json.dumps(body).encode()
    headers = dict(gs.auth_headers(), **{'Content-Type': 'application/json'})
    request = urllib.request.Request(url, data=data, method=method,
                                     headers=headers)
    with _OPENER.open(request, timeout=30) as rsp:
        text = rsp.read()
    return json.loads(text) if text else None


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class ServerLifecycleTest(testtools.TestCase):
    """Real Gnocchi servers (tox -e functional-gnocchi)."""

    def setUp(self):
        super().setUp()
        if not gs.is_installed():
            functional_env.skip_or_fail(
                self, 'Gnocchi is not installed in %s; %s'
                % (gs.default_venv(), gs.INSTALL_HINT))
        self.dir = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                'state')
        # NOTE: runs before the TempDir goes: a failed test leaves no
        # server behind (stop is a no-op when nothing runs).
        self.addCleanup(gs.GnocchiServer(self.dir).stop, keep=False)
        self.out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', self.out))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', io.StringIO()))

    def _main(self, command, *argv):
        """Return the exit status and output of one command."""
        self.out.seek(0)
        self.out.truncate()
        rc = gs.main([command, '--dir', self.dir, *argv])
        return rc, self.out.getvalue().strip()

    def _assert_gone(self, server, pids, backends):
        """No process, no database and no Redis claim of ours are left.

        The Redis database is emptied with our claim; a server another
        test or process starts meanwhile may claim it at once (it was
        free), so only its owner tells whether ours is gone.
        """
        for pid in pids:
            self.assertIsNone(daemon.process_argv(pid), pid)
            self.assertEqual([], daemon.group_pids(pid))
        self._assert_freed(server, backends)

    def _assert_freed(self, server, backends):
        """The database of ``backends`` is dropped, its Redis claim gone.

        See :meth:`_assert_gone` for why another owner may be there.
        """
        left = server.inspect(backends)
        self.assertFalse(left['database'])
        self.assertNotEqual(backends['owner'], left['redis_owner'])
        if left['redis_owner'] is None:
            self.assertEqual(0, left['redis_keys'])

    def _metricd_processes(self, url):
        """A measure pushed is aggregated (no timing asserted: loaded CI)."""
        metric = _request(url + '/v1/metric', 'POST',
                          {'archive_policy_name': 'low'})
        _request(url + '/v1/metric/%s/measures' % metric['id'], 'POST',
                 [{'timestamp': '2024-01-01T00:07:00+00:00', 'value': 4.5}])

        def processed():
            status = _request(url + '/v1/status')
            return status['storage']['summary']['measures'] == 0

        # NOTE: generous: a loaded machine may take metricd many seconds.
        self.assertTrue(daemon.wait_for(processed, 120, interval=0.05))
        measures = _request(url + '/v1/metric/%s/measures?aggregation=mean'
                            '&granularity=300' % metric['id'])
        self.assertEqual([['2024-01-01T00:05:00+00:00', 300.0, 4.5]],
                         measures)

    def test_start_status_stop_twice(self):
        """start, start again, status, env, work, stop; two rounds."""
        for purge in (False, True):
            rc, url = self._main('start')
            self.assertEqual(0, rc)
            self.assertTrue(url.startswith('http://127.0.0.1:'), url)
            server = gs.GnocchiServer(self.dir)
            pids = (server.pid, server.metricd_pid)
            self.assertEqual((0, url), self._main('start'))
            self.assertEqual(pids, (server.pid, server.metricd_pid))
            # NOTE: the API's processes share its socket and its group.
            self.assertEqual(gs.API_PROCESSES,
                             len(daemon.group_pids(server.pid)))
            self.assertEqual((0, url), self._main('status'))
            self.assertEqual((0, 'export %s=%s' % (gs.URL_ENV, url)),
                             self._main('env'))
            self.assertTrue(gs.ping(url))
            # NOTE: a fresh server: nothing from the first round is left.
            self.assertEqual([], _request(url + '/v1/metric'))
            # NOTE: basic auth is on (lists answer 200 to anybody).
            self.assertEqual(401, daemon.http_status(url + '/v1/status'))
            backends = server.backends()
            self.assertIsNotNone(backends['redis_db'])
            self.assertTrue(server.inspect()['database'])
            self._metricd_processes(url)

            argv = ['--purge'] if purge else []
            self.assertEqual((0, ''), self._main('stop', *argv))
            self.assertFalse(gs.ping(url))
            self.assertEqual(1, self._main('status')[0])
            self._assert_gone(server, pids, backends)
            self.assertEqual(not purge, os.path.exists(self.dir))

    def test_fixture_and_run(self):
        """A fixture and a run at once share nothing; both clean up.

        run exports the URL of a live server of its own and returns the
        command's status.
        """
        self.useFixture(fixtures.EnvironmentVariable(gs.URL_ENV))
        kept_root = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'kept')
        self.useFixture(fixtures.EnvironmentVariable(gs.LOGS_ENV,
                                                     kept_root))
        stderr = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', stderr))
        fixture = gs.GnocchiServerFixture()
        fixture.setUp()
        try:
            mine = fixture.server.backends()
            seen = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                'seen.json')
            # NOTE: the command saves what its server uses for the test.
            code = ('import os, shutil, sys\n'
                    'sys.path.insert(0, %r)\n'
                    'from cloudkitty.tests import gnocchi_server as gs\n'
                    'url = os.environ[%r]\n'
                    'shutil.copy(os.path.join(%r, "backends.json"), %r)\n'
                    'sys.exit(7 if gs.ping(url) and url != %r else 1)\n'
                    % (gs._ROOT, gs.URL_ENV, self.dir, seen, fixture.url))
            rc, _ = self._main('run', '--', sys.executable, '-c', code)
            self.assertEqual(7, rc)
            self.assertFalse(os.path.exists(self.dir))
            # NOTE: a failed command: the server's files are kept, and
            # where is said last.
            [kept] = os.listdir(kept_root)
            kept = os.path.join(kept_root, kept)
            self.assertIn('gnocchi.conf', os.listdir(kept))
            self.assertIn('api.log', os.listdir(kept))
            self.assertIn('the command failed (status 7); the config and '
                          'logs of the server are kept in %s' % kept,
                          stderr.getvalue().rsplit('gnocchi-server: ', 1)[1])
            with open(seen) as f:
                theirs = json.load(f)
            self.assertNotEqual(mine['database'], theirs['database'])
            self.assertNotEqual(mine['redis_db'], theirs['redis_db'])
            self._assert_freed(fixture.server, theirs)
            self.assertTrue(gs.ping(fixture.url))
            pids = (fixture.server.pid, fixture.server.metricd_pid)
        finally:
            fixture.cleanUp()
        self.assertFalse(gs.ping(fixture.url))
        self.assertFalse(os.path.exists(fixture.server.state_dir))
        self._assert_gone(fixture.server, pids, mine)
