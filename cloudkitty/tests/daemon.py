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
"""What the private test servers have in common.

``influxdb_server.py`` and ``gnocchi_server.py`` (behind
``tools/influxdb-server`` and ``tools/gnocchi-server``) start servers for
the functional tests the same way, with the pieces defined here:

* :func:`free_ports` and :func:`http_status`: loopback ports and requests
  that no proxy setting can divert;
* :class:`StateDir`: the files of a server in its state directory;
* :class:`Process`: one process started in a session of its own, whose pid
  (its own, never a wrapper's) is kept in a pid file, and which is only
  ever signalled while its command line still proves it is ours;
* :class:`Tool`: the command line (``start``, ``stop``, ``status``,
  ``env``, ``run``, ``install``), where ``run -- COMMAND`` exports the
  server's URL to COMMAND and stops the server afterwards.

Standard library only: the tools run on a bare ``python3``.
"""

import argparse
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

#: Every server binds this address, and nothing else.
HOST = '127.0.0.1'
#: Seconds between SIGTERM and SIGKILL.
STOP_TIMEOUT = 15
#: The checkout these modules are in (``cloudkitty/tests/``'s grandparent).
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def free_ports(count=2, host=HOST):
    """Return ``count`` distinct TCP ports that are free on ``host`` now.

    :param count: how many ports.
    :param host: the address to bind.
    :returns: a list of ints. Another process may take one before the
        server binds it; callers retry then.
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


# NOTE: no proxy, whatever http_proxy says: the servers are on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url, timeout=2.0, headers=None):
    """Return the status of ``GET url``, or None when nobody answers.

    :param url: the full URL.
    :param timeout: seconds to wait for the answer.
    :param headers: a dict of request headers, e.g. ``Authorization``.
    :returns: an int (error statuses included), or None for a network
        failure; never raises for one.
    """
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=timeout) as rsp:
            return rsp.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code
    except (OSError, http.client.HTTPException):
        return None


def process_argv(pid):
    """Return the command line of the live process ``pid``.

    :returns: a list of bytes; None if there is no such process or it is
        a zombie; an empty list if it lives but the system has no
        ``/proc`` to tell its command line.
    """
    if not os.path.isdir('/proc'):
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return []
    try:
        with open('/proc/%d/stat' % pid, encoding='utf-8') as stat:
            state = stat.read().rsplit(')', 1)[1].split()[0]
        with open('/proc/%d/cmdline' % pid, 'rb') as cmdline:
            argv = cmdline.read().rstrip(b'\0').split(b'\0')
    except (OSError, IndexError):
        return None
    # NOTE: a zombie is dead; nobody may have reaped it yet.
    return None if state in ('Z', 'X') else argv


def group_pids(pgid):
    """Return the pids of the live processes in process group ``pgid``.

    :returns: a list of ints; empty without ``/proc``.
    """
    pids = []
    try:
        names = os.listdir('/proc')
    except OSError:
        return pids
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name, encoding='utf-8') as stat:
                fields = stat.read().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        # NOTE: after the ")" come the state, the ppid and the pgrp.
        if fields[0] not in ('Z', 'X') and fields[2] == str(pgid):
            pids.append(int(name))
    return pids


def wait_for(ready, timeout, alive=None, interval=0.1):
    """Call ``ready`` until it is true, ``alive`` false or time is up.

    :param ready: a callable without arguments.
    :param timeout: seconds.
    :param alive: a callable telling whether waiting still makes sense
        (e.g. whether the server's process runs); None for always.
    :returns: True if ``ready`` became true, else False.
    """
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return True
        if (alive is not None and not alive()
                or time.monotonic() > deadline):
            return False
        time.sleep(interval)


class StateDir:
    """The files of a server in its state directory.

    :param state_dir: the directory; created by the server's ``start``.
    """

    def __init__(self, state_dir):
        self.state_dir = os.path.abspath(state_dir)

    def path(self, name):
        """Return the path of ``name`` in the state directory."""
        return os.path.join(self.state_dir, name)

    def read(self, name):
        """Return the stripped text of file ``name``, or None if empty."""
        try:
            with open(self.path(name), encoding='utf-8') as f:
                return f.read().strip() or None
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, name, text):
        """Write file ``name`` atomically."""
        tmp = self.path(name + '.tmp')
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, self.path(name))

    def remove(self, *names):
        """Remove these files or directories, if they exist."""
        for name in names:
            path = self.path(name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass

    def remove_dir_if_empty(self):
        """Remove the state directory if nothing is left in it."""
        try:
            os.rmdir(self.state_dir)
        except OSError:
            pass

    def tail(self, name, lines=30):
        """Return the last ``lines`` lines of log file ``name``."""
        path = self.path(name)
        try:
            with open(path, encoding='utf-8', errors='replace') as log:
                return ''.join(log.readlines()[-lines:])
        except FileNotFoundError:
            return '(no %s)\n' % path


class Server(StateDir):
    """The state directory of a server that answers at a URL.

    Subclasses set :attr:`url_file` and implement :meth:`ping` and
    :meth:`is_alive`.
    """

    #: The file holding the URL, written when the server answers.
    url_file = None
    #: The files :meth:`keep_logs` copies out: config and logs.
    kept_files = ()
    #: The variable naming where failed runs keep their logs.
    logs_env = None
    #: Where they go without it: this directory of the checkout.
    logs_dir_name = None

    @property
    def url(self):
        """The server's URL from the state directory, or None."""
        return self.read(self.url_file)

    def ping(self, url):
        """Tell whether the server at ``url`` answers; never raise."""
        raise NotImplementedError

    def is_alive(self):
        """Tell whether the server's processes run."""
        raise NotImplementedError

    def status(self):
        """Return the URL if the server runs and answers, else None."""
        url = self.url
        if url and self.is_alive() and self.ping(url):
            return url
        return None

    def default_logs_dir(self):
        """Where failed runs keep this server's logs.

        :returns: ``$`` :attr:`logs_env`, else :attr:`logs_dir_name` in
            the checkout (ignored by git).
        """
        return os.path.abspath(
            os.environ.get(self.logs_env, '').strip()
            or os.path.join(CHECKOUT, self.logs_dir_name))

    def keep_logs(self, dest=None):
        """Copy the config and logs out of the state directory.

        Stopping removes them (and ``run`` the whole directory): this
        keeps what tells why a run failed.

        :param dest: the directory to make a new directory in (default:
            :meth:`default_logs_dir`).
        :returns: the path of the new directory, which holds those of
            :attr:`kept_files` that exist.
        """
        dest = os.path.abspath(dest) if dest else self.default_logs_dir()
        stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
        target = os.path.join(dest, '%s-%d' % (stamp, os.getpid()))
        suffix = 0
        while os.path.exists(target + ('.%d' % suffix if suffix else '')):
            suffix += 1
        target += '.%d' % suffix if suffix else ''
        os.makedirs(target)
        for name in self.kept_files:
            if os.path.isfile(self.path(name)):
                shutil.copy2(self.path(name), os.path.join(target, name))
        return target

    def log_excerpt(self):
        """Return what the logs say of a failed run: here, their end."""
        return self.log_tail()


class Process:
    """A process of a server, started in a session of its own.

    Its pid is kept in a pid file, so that a later command (``stop``) finds
    it. A pid file may outlive its process and name a pid the system gave
    to another one since: ``identify`` must recognise ours from its command
    line, and nothing else is ever signalled.

    :param state: the server's :class:`StateDir`.
    :param name: the process's name; its files are ``<name>.pid`` and
        ``<name>.log``.
    :param identify: ``identify(argv)`` tells from a command line (a list
        of bytes) whether the process is this one.
    :param group: whether it forks workers into its process group: it is
        dead only when the group is empty, and SIGKILL goes to the group.
    """

    def __init__(self, state, name, identify, group=False):
        self.state = state
        self.name = name
        self.identify = identify
        self.group = group
        self.pid_file = name + '.pid'
        self.log_file = name + '.log'
        # NOTE: set when this object started the process, so it can reap it.
        self._proc = None

    @property
    def pid(self):
        """The pid from the pid file, or None."""
        text = self.state.read(self.pid_file)
        return int(text) if text and text.isdigit() else None

    def _is_ours(self, pid):
        argv = process_argv(pid)
        return argv is not None and (argv == [] or self.identify(argv))

    def _group(self):
        """The live members of our process group (the leader included)."""
        pid = self.pid
        if pid is None or not self.group:
            return []
        members = group_pids(pid)
        # NOTE: the group is ours only if one member still proves it; a
        # pid that leads a group is not reused while the group has members.
        if any(self._is_ours(member) for member in members):
            return members
        return []

    def is_alive(self):
        """Tell whether the process (or one of its group) runs."""
        if self._proc is not None and self._proc.poll() is None:
            return True
        pid = self.pid
        if pid is None:
            return False
        return self._is_ours(pid) or bool(self._group())

    def spawn(self, argv, env=None, cwd=None):
        """Start ``argv``, its output appended to the log file.

        :returns: the pid.
        """
        with open(self.state.path(self.log_file), 'ab') as log:
            # NOTE: its own session, so that a Ctrl-C meant for the tests
            # does not reach it before its turn, and its pid is its process
            # group; no shell, so the pid is the server's.
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, cwd=cwd,
                start_new_session=True)
        self.state.write(self.pid_file, '%d\n' % self._proc.pid)
        return self._proc.pid

    def send(self, signum, leader=False):
        """Send ``signum`` to the process, or to its group's members.

        :param leader: to the process alone, if it lives (its group's
            members otherwise).
        """
        if self._proc is not None and self._proc.poll() is None and leader:
            self._proc.send_signal(signum)
            return
        pid = self.pid
        if leader and pid is not None and self._is_ours(pid):
            pids = [pid]
        else:
            pids = self._group() or ([pid] if self.is_alive() else [])
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def wait_dead(self, timeout):
        """Wait until the process (and its group) is gone.

        :returns: True if it is.
        """
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
        return wait_for(lambda: not self.is_alive(), timeout)

    def terminate(self, timeout=STOP_TIMEOUT, signum=signal.SIGTERM):
        """Send ``signum``, SIGKILL after ``timeout`` s; forget the pid.

        The signal goes to the leader only, which stops its workers itself;
        SIGKILL goes to every member left.

        :returns: the pid it stopped, or None if it was not running.
        """
        pid = None
        if self.is_alive():
            pid = self.pid
            # NOTE: to its workers only if the leader is gone.
            self.send(signum, leader=True)
            if not self.wait_dead(timeout):
                self.send(signal.SIGKILL)
                self.wait_dead(5)
        self._proc = None
        self.state.remove(self.pid_file)
        return pid

    def log_tail(self, lines=30):
        """Return the end of the process's log."""
        return self.state.tail(self.log_file, lines)


class Tool:
    """The command line of a test server: one subclass per server.

    Subclasses set the class attributes and implement :meth:`make_server`
    and :meth:`install`. The server they make is a :class:`Server` that
    also has ``start(timeout)`` (returns the URL), ``stop(keep)``,
    ``describe()`` (e.g. ``influxd pid 12``) and ``log_tail()``.
    """

    #: The program's name, e.g. ``influxdb-server``.
    prog = None
    #: What it starts, for the help.
    title = None
    #: The variable ``run`` and ``env`` export.
    url_env = None
    #: The variable overriding the default state directory.
    dir_env = None
    #: The default state directory's name, e.g. ``.influxdb``.
    default_dir_name = None
    #: The root of the server's errors.
    error = Exception
    #: The default of ``--timeout``, and what the server must answer.
    start_timeout = 30
    ready_check = 'the server to answer'
    #: Whether ``stop`` keeps the state directory unless told otherwise
    #: (``--purge``) rather than removing it unless told (``--keep``).
    stop_keeps = False
    #: What ``--install`` and ``install`` do.
    install_help = 'install the server first if needed'

    def make_server(self, state_dir, args):
        """Return the server object for ``state_dir``."""
        raise NotImplementedError

    def install(self, args):
        """Install the server; return what to print.

        :raises: :attr:`error` when it cannot.
        """
        raise NotImplementedError

    def add_options(self, parser):
        """Add the server's own options, shared by every command."""

    def prepare(self, server, args):
        """Run before ``start`` and ``run`` start a server (``--install``)."""
        if args.install:
            self.install(args)

    def err(self, message):
        """Print ``message`` to stderr after the program's name."""
        print('%s: %s' % (self.prog, message), file=sys.stderr)

    def parser(self, default_dir):
        """Return the argument parser."""
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument(
            '--dir', default=None,
            help='the state directory (default: $%s, else %s; "run" uses '
                 'a temporary one)' % (self.dir_env, default_dir))
        self.add_options(common)
        timeout = argparse.ArgumentParser(add_help=False)
        timeout.add_argument('--timeout', type=float,
                             default=self.start_timeout,
                             help='seconds to wait for %s (default: '
                                  '%%(default)s)' % self.ready_check)
        inst = argparse.ArgumentParser(add_help=False)
        inst.add_argument('--install', action='store_true',
                          help=self.install_help)
        keep = argparse.ArgumentParser(add_help=False)
        keep.add_argument('--keep', action='store_true',
                          help='keep the data, config and logs when '
                               'stopping')
        purge = argparse.ArgumentParser(add_help=False)
        purge.add_argument('--purge', action='store_true',
                           help='also remove the data, config and logs')

        parser = argparse.ArgumentParser(
            prog=self.prog,
            description='A private %s on %s for the functional tests.'
                        % (self.title, HOST))
        sub = parser.add_subparsers(dest='command', required=True)
        sub.add_parser('start', parents=[common, timeout, inst],
                       help='start the server (unless it runs), print its '
                            'URL')
        if self.stop_keeps:
            sub.add_parser('stop', parents=[common, purge],
                           help='stop it (its files stay unless --purge)')
        else:
            sub.add_parser('stop', parents=[common, keep],
                           help='stop it and remove its data (unless '
                                '--keep)')
        sub.add_parser('status', parents=[common],
                       help='print the URL and exit 0 if it runs and '
                            'answers')
        sub.add_parser('env', parents=[common],
                       help='print "export %s=<url>"' % self.url_env)
        run = sub.add_parser(
            'run', parents=[common, timeout, inst, keep],
            help='start a server, run a command with %s set, stop it'
                 % self.url_env,
            description='Start a server in a temporary directory, run '
                        'COMMAND with %s set to its URL, stop the server '
                        "and exit with COMMAND's status. When %s is "
                        'already set, just run COMMAND against that '
                        'server. When the server does not come up, run '
                        'COMMAND without the variable (so that the tests '
                        'report it) and exit with 1.'
                        % (self.url_env, self.url_env))
        run.add_argument('cmd', nargs=argparse.REMAINDER, metavar='COMMAND',
                         help='the command (after "--")')
        sub.add_parser('install', parents=[common], help=self.install_help)
        return parser

    def main(self, argv=None, default_dir=None):
        """Run the command line; return its exit status.

        :param argv: the arguments (default: ``sys.argv[1:]``).
        :param default_dir: the state directory when neither ``--dir`` nor
            :attr:`dir_env` is given (default: :attr:`default_dir_name` in
            the current directory).
        """
        default_dir = default_dir or os.path.join(os.getcwd(),
                                                  self.default_dir_name)
        args = self.parser(default_dir).parse_args(argv)
        try:
            if args.command == 'install':
                print(self.install(args))
                return 0
            if args.command == 'run':
                return self._run(args)
            return self._command(args, self.make_server(
                args.dir or os.environ.get(self.dir_env) or default_dir,
                args))
        except self.error as exc:
            self.err(str(exc))
            return 1

    def _command(self, args, server):
        if args.command == 'start':
            self.prepare(server, args)
            print(server.start(args.timeout))
            return 0
        if args.command == 'stop':
            was = server.describe() if server.is_alive() else None
            keep = not args.purge if self.stop_keeps else args.keep
            server.stop(keep=keep)
            self.err('stopped %s' % was if was else 'was not running')
            return 0
        url = server.status()
        if url is None:
            self.err('no server answers in %s' % server.state_dir)
            return 1
        if args.command == 'env':
            print('export %s=%s' % (self.url_env, url))
        else:
            print(url)
        return 0

    def _run(self, args):
        """``run``; on a failure, keep the logs and say where, last."""
        self._kept = None
        try:
            return self._run_command(args)
        finally:
            if self._kept:
                self.err(self._kept)
            self._kept = None

    def _run_command(self, args):
        cmd = args.cmd[1:] if args.cmd[:1] == ['--'] else args.cmd
        if not cmd:
            self.err('run: no command given (%s run -- COMMAND...)'
                     % self.prog)
            return 2
        given = os.environ.get(self.url_env, '').strip()
        if given:
            self.err('%s=%s is set: using that server'
                     % (self.url_env, given))
            return self._call(cmd, os.environ)
        tmp = None
        state_dir = args.dir
        if state_dir is None:
            tmp = state_dir = tempfile.mkdtemp(prefix='cloudkitty-%s-'
                                               % self.prog)
        server = self.make_server(state_dir, args)
        old_handler = _handle_sigterm(_on_sigterm)
        try:
            # NOTE: an install that fails fails the run, before COMMAND.
            self.prepare(server, args)
            try:
                url = server.start(args.timeout)
            except self.error as exc:
                # NOTE: the tests still run, without the variable, so that
                # they report the missing server themselves (a skip, or a
                # failure counted with the others under
                # CLOUDKITTY_TEST_REQUIRE_BACKENDS).
                self.err('%s\nrunning the command without %s; exit status '
                         '1' % (exc, self.url_env))
                env = {k: v for k, v in os.environ.items()
                       if k != self.url_env}
                self._call(cmd, env)
                return 1
            self.err('%s=%s (%s, %s)' % (self.url_env, url,
                                         server.describe(), state_dir))
            rc = self._call(cmd, dict(os.environ, **{self.url_env: url}))
            died = not server.is_alive()
            if died:
                self.err('the server exited during the run; the end of '
                         'its log:\n%s' % server.log_tail())
            if rc != 0 or died:
                # NOTE: before stop removes its files; printed last.
                self._kept = ('the command failed (status %d); the config '
                              'and logs of the server are kept in %s. What '
                              'they say:\n%s' % (rc, server.keep_logs(),
                                                 server.log_excerpt()))
            return rc or int(died)
        finally:
            server.stop(keep=args.keep)
            if tmp and not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
            if old_handler is not None:
                _handle_sigterm(old_handler)

    def _call(self, cmd, env):
        try:
            return subprocess.call(cmd, env=env)
        except OSError as exc:
            self.err('run: %s: %s' % (cmd[0], exc))
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
