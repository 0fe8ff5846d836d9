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
"""End to end: CloudKitty's own API serving our ``sqlalchemy`` backend.

Upstream CloudKitty (installed with this storage layer, as ``tox -e
functional-cloudkitty`` does) runs in a subprocess: its storage is
initialised by its ``cloudkitty-storage-init``, then its API WSGI app
(``auth_strategy = noauth``) is served on 127.0.0.1 by wsgiref, with
``[storage] backend = sqlalchemy`` on a SQLite file. Dataframes are
POSTed to ``/v2/dataframes``; ``/v2/summary`` (grouped, filtered) and
``GET /v2/dataframes`` must answer with the exact sums of what was pushed.

Upstream's API writes every Decimal as a float (its JSON encoder): a
summary's sum is then the float nearest the exact sum, which is what is
expected (a float sum misses it: 0.1 + 0.2 is 0.30000000000000004).

The subprocesses run outside this checkout, so that ``cloudkitty`` is the
installed one (upstream's package holding our modules), not this tree.
"""

import decimal
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import testtools

from cloudkitty.tests import functional_env as utils

D = decimal.Decimal
#: Marks a JSON string to be sent as a number (see :func:`_frames`).
NUMBER = '#number#'

#: Run in the subprocess: serve upstream's API, print the port.
SERVER = '''
import sys
from wsgiref import simple_server

from cloudkitty.api import app


class Handler(simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


application = app.build_wsgi_app()
server = simple_server.make_server('127.0.0.1', 0, application,
                                   handler_class=Handler)
print(server.server_port, flush=True)
server.serve_forever()
'''

CONF = '''[DEFAULT]
auth_strategy = noauth
api_paste_config = {dir}/api_paste.ini
transport_url = fake:/
use_stderr = true

[database]
connection = sqlite:///{dir}/cloudkitty.sqlite

[storage]
backend = sqlalchemy
version = 2

[storage_sqlalchemy]
connection = sqlite:///{dir}/storage.sqlite
'''

PASTE = '''[composite:cloudkitty+noauth]
use = egg:Paste#urlmap
/: ck_api

[app:ck_api]
paste.app_factory = cloudkitty.api.app:app_factory
'''

PROJECT_A = 'e2e-project-a'
PROJECT_B = 'e2e-project-b'
BEGIN = '2024-03-01T00:00:00+00:00'
END = '2024-03-02T00:00:00+00:00'

#: (hour, metric type, project, flavor, vcpus, qty, price). The values
#: have at most 12 fractional digits, so they are stored as written; a
#: float sum would show (0.1 + 0.2 is not 0.3 in floats).
POINTS = [
    (0, 'cpu', PROJECT_A, 'm1.small', 1, '0.1', '0.1'),
    (0, 'cpu', PROJECT_A, 'm1.large', 4, '0.2', '0.2'),
    (0, 'cpu', PROJECT_B, 'm1.small', 1, '1.000000000001', '0.7'),
    (1, 'cpu', PROJECT_A, 'm1.small', 1, '0.1', '0.000000000001'),
    (1, 'cpu', PROJECT_B, 'm1.large', 4, '2.5', '1234567.891234'),
    (1, 'image.size', PROJECT_A, 'none', 0, '10.3', '0.3'),
]


def _frames():
    """Return the POST body (JSON): one dataframe per hour."""
    frames = {}
    for hour, type_, project, flavor, vcpus, qty, price in POINTS:
        frame = frames.setdefault(hour, {
            'period': {
                'begin': '2024-03-01T%02d:00:00+00:00' % hour,
                'end': '2024-03-01T%02d:00:00+00:00' % (hour + 1)},
            'usage': {}})
        frame['usage'].setdefault(type_, []).append({
            'vol': {'unit': 'undefined', 'qty': NUMBER + qty},
            'rating': {'price': NUMBER + price},
            'groupby': {'project_id': project, 'flavor': flavor,
                        'vcpus': vcpus},
            'metadata': {'source': 'e2e'}})
    body = json.dumps({'dataframes': [frames[h] for h in sorted(frames)]})
    # NOTE: the numbers go on the wire as written in POINTS, not through
    # a float's repr.
    return re.sub(r'"%s([-0-9.eE+]+)"' % NUMBER, r'\1', body).encode()


def _expected(select, key=None):
    """Sum ``qty`` and ``price`` of the points ``select`` accepts.

    :returns: ``{group: (qty, price)}`` where group is ``key(point)``.
    """
    sums = {}
    for point in POINTS:
        if select(point):
            group = key(point) if key else None
            qty, price = sums.get(group, (D(0), D(0)))
            sums[group] = (qty + D(point[5]), price + D(point[6]))
    return sums


def _on_the_wire(sums):
    """What upstream's API writes for exact ``sums``: the nearest floats."""
    return {group: tuple(D(repr(float(value))) for value in values)
            for group, values in sums.items()}


def _number(value):
    """An API number as a Decimal, from the JSON text (never a float)."""
    return D(str(value))


class CloudKittyAPIFunctionalTest(testtools.TestCase):
    """Upstream's v2 API over our SQL backend, through real HTTP."""

    @classmethod
    def setUpClass(cls):
        """Start the API once for the class and push the dataframes."""
        super().setUpClass()
        cls.dir = None
        cls.server = None
        if not utils.is_functional_test():
            return
        cls.dir = tempfile.mkdtemp(prefix='ck-api-e2e-')
        try:
            cls._start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _run(cls, args, **kwargs):
        return subprocess.run([sys.executable] + args, cwd=cls.dir,
                              env=cls.env, **kwargs)

    @classmethod
    def _start(cls):
        cls.env = {k: v for k, v in os.environ.items()
                   if k not in ('PYTHONPATH', 'OS_TEST_PATH')}
        probe = cls._run(['-c', 'import cloudkitty.api.app, '
                          'cloudkitty.storage.v2.sqlalchemy'],
                         capture_output=True)
        if probe.returncode:
            error = probe.stderr.decode(errors='replace').strip()
            # NOTE: a package missing is a skip; anything else is broken.
            if not error.splitlines()[-1].startswith(
                    "ModuleNotFoundError: No module named 'cloudkitty"):
                raise AssertionError('upstream CloudKitty with this '
                                     'storage layer does not import:\n'
                                     + error)
            cls.skip_reason = (
                'upstream CloudKitty is not installed with this storage '
                'layer (tox -e functional-cloudkitty installs both)')
            return
        conf = os.path.join(cls.dir, 'cloudkitty.conf')
        with open(conf, 'w') as f:
            f.write(CONF.format(dir=cls.dir))
        with open(os.path.join(cls.dir, 'api_paste.ini'), 'w') as f:
            f.write(PASTE)
        init = cls._run(['-c', 'from cloudkitty.cli import storage; '
                         'storage.main()', '--config-file', conf],
                        capture_output=True)
        if init.returncode:
            raise AssertionError('cloudkitty-storage-init failed:\n'
                                 + init.stderr.decode(errors='replace'))
        cls.log = open(os.path.join(cls.dir, 'api.log'), 'wb')
        cls.server = subprocess.Popen(
            [sys.executable, '-c', SERVER, '--config-file', conf],
            cwd=cls.dir, env=cls.env, stdout=subprocess.PIPE,
            stderr=cls.log)
        port = cls.server.stdout.readline().decode().strip()
        if not port.isdigit():
            raise AssertionError('the API did not start:\n' + cls._log())
        cls.url = 'http://127.0.0.1:%s' % port
        status, body = cls._request('POST', '/v2/dataframes', _frames())
        if status != 204:
            raise AssertionError('POST /v2/dataframes: %s %s\n%s'
                                 % (status, body, cls._log()))

    @classmethod
    def _log(cls):
        cls.log.flush()
        with open(cls.log.name, encoding='utf-8', errors='replace') as f:
            return f.read()[-5000:]

    @classmethod
    def tearDownClass(cls):
        """Stop the API and remove its files."""
        if cls.server is not None:
            cls.server.terminate()
            cls.server.wait()
            cls.server.stdout.close()
            cls.log.close()
        if cls.dir:
            shutil.rmtree(cls.dir, ignore_errors=True)
        super().tearDownClass()

    @classmethod
    def _request(cls, method, path, body=None, **query):
        url = cls.url + path
        if query:
            url += '?' + urllib.parse.urlencode(query, doseq=True)
        request = urllib.request.Request(
            url, method=method,
            data=body,
            headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        if not raw:
            return status, None
        # NOTE: numbers are read as Decimal: what the API wrote, exactly.
        return status, json.loads(raw, parse_float=D)

    def setUp(self):
        """Skip unless the functional tests are on and the API is up."""
        super().setUp()
        if not utils.is_functional_test():
            self.skipTest('%s is not set' % utils.FUNCTIONAL_ENV)
        if getattr(self, 'skip_reason', None):
            utils.skip_or_fail(self, self.skip_reason)

    def _get(self, path, **query):
        status, body = self._request('GET', path, begin=BEGIN, end=END,
                                     **query)
        self.assertEqual(200, status, '%s: %s\n%s'
                         % (path, body, self._log()))
        return body

    def _assert_summary(self, select, key=None, result_key=None, **query):
        """Check /v2/summary against the points ``select`` accepts.

        :param key: the group of a point of POINTS (None: one group).
        :param result_key: the group of a result of the summary.
        """
        body = self._get('/v2/summary', response_format='object', **query)
        self.assertEqual(len(body['results']), body['total'])
        got = {result_key(result) if result_key else None:
               (_number(result['qty']), _number(result['rate']))
               for result in body['results']}
        self.assertEqual(_on_the_wire(_expected(select, key)), got)

    def test_summary_total(self):
        self._assert_summary(lambda p: True)

    def test_summary_groupby_project(self):
        self._assert_summary(lambda p: True, key=lambda p: p[2],
                             result_key=lambda r: r['project_id'],
                             groupby=['project_id'])

    def test_summary_groupby_type_and_project(self):
        self._assert_summary(
            lambda p: True, key=lambda p: (p[1], p[2]),
            result_key=lambda r: (r['type'], r['project_id']),
            groupby=['type', 'project_id'])

    def test_summary_filtered(self):
        self._assert_summary(lambda p: p[3] == 'm1.small',
                             key=lambda p: p[2],
                             result_key=lambda r: r['project_id'],
                             groupby=['project_id'],
                             filters='flavor:m1.small')

    def test_summary_filtered_on_int_label(self):
        # NOTE: vcpus is pushed as an int; a filter is a string and
        # matches its string form.
        self._assert_summary(lambda p: p[4] == 4, filters='vcpus:4')

    def test_summary_filtered_on_type(self):
        self._assert_summary(lambda p: p[1] == 'image.size',
                             filters='type:image.size')

    def _points(self, **query):
        body = self._get('/v2/dataframes', **query)
        points = [(type_, point['groupby']['project_id'],
                   _number(point['vol']['qty']),
                   _number(point['rating']['price']))
                  for frame in body['dataframes']
                  for type_, points in frame['usage'].items()
                  for point in points]
        self.assertEqual(len(points), body['total'])
        return points

    def test_dataframes(self):
        points = self._points()
        self.assertEqual(len(POINTS), len(points))
        self.assertEqual(
            _expected(lambda p: True),
            {None: (sum(p[2] for p in points), sum(p[3] for p in points))})
        self.assertEqual(
            sorted((p[1], p[2], D(p[5]), D(p[6])) for p in POINTS),
            sorted(points))

    def test_dataframes_filtered(self):
        points = self._points(filters='project_id:%s' % PROJECT_B)
        self.assertEqual(
            _expected(lambda p: p[2] == PROJECT_B),
            {None: (sum(p[2] for p in points), sum(p[3] for p in points))})
