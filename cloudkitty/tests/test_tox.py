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
"""The tox environments of one backend: posargs narrow their run.

stestr ORs the filters it is given; a base filter written next to
``{posargs}`` would make ``tox -e functional-gnocchi -- REGEX`` run every
Gnocchi test plus whatever REGEX matches. The test lists, with the stestr
arguments of tox.ini, the tests such a command would run.
"""

import configparser
import os
import re
import shlex
import subprocess
import sys

import testtools

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
#: A filter that matches tests of every backend.
NARROW = 'test_delete_everything'


def stestr_arguments(env, posargs):
    """Return the stestr arguments of a tox env, posargs substituted."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(REPO, 'tox.ini'))
    command = parser['testenv:%s' % env]['commands'].strip()
    command = command.replace('\\\n', ' ')
    words = shlex.split(command.replace('{posargs}', shlex.quote(posargs)))
    # NOTE: a server script runs what follows ``--``.
    if '--' in words:
        words = words[words.index('--') + 1:]
    if words[:2] != ['stestr', 'run']:
        raise AssertionError('%s does not run stestr: %s' % (env, command))
    return words[2:]


def listed(arguments):
    """Return the test ids ``stestr list ARGUMENTS`` prints."""
    stestr = os.path.join(os.path.dirname(sys.executable), 'stestr')
    proc = subprocess.run([stestr, 'list'] + arguments, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise AssertionError(proc.stderr)
    return [line for line in proc.stdout.splitlines()
            if re.match(r'cloudkitty\.', line)]


class PosargsNarrowTest(testtools.TestCase):
    """``tox -e functional-<server> -- REGEX`` runs what REGEX selects."""

    def check(self, env, backend):
        tests = listed(stestr_arguments(env, NARROW))
        self.assertNotEqual([], tests)
        for test in tests:
            self.assertIn(backend, test)
            self.assertIn(NARROW, test)

    def test_gnocchi(self):
        self.check('functional-gnocchi', 'gnocchi')

    def test_influxdb(self):
        self.check('functional-influxdb', 'influxdb')

    def test_sqlite(self):
        self.check('functional-sqlite', 'SQLiteStorageTest')

    def test_postgresql(self):
        self.check('functional-postgresql', 'PostgreSQLStorageTest')

    def test_mysql(self):
        self.check('functional-mysql', 'MySQLStorageTest')
