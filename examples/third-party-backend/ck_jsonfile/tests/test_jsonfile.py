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
"""What the shared suite cannot see: the file itself.

The conformance suite checks the contract through the API; these tests
check the backend's own promises about its file: exact strings, one line
per push, torn writes and unwritable directories.
"""

import datetime
import decimal
import json
import os

import fixtures
from oslo_config import cfg
import testtools

from cloudkitty import dataframe
from cloudkitty.storage import exceptions

from ck_jsonfile import storage as jsonfile

T0 = datetime.datetime(2021, 3, 10, tzinfo=datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)


def frame(qty='1', price='0.1', start=T0):
    """Return a one-point frame starting at ``start``."""
    point = dataframe.DataPoint('u', decimal.Decimal(qty),
                                decimal.Decimal(price),
                                {'project_id': 'p'}, {})
    return dataframe.DataFrame(start, start + HOUR, {'cpu': [point]})


class FileTest(testtools.TestCase):
    """The layout and the failure handling of the data file."""

    def setUp(self):
        super().setUp()
        self.directory = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(self.directory, 'storage.jsonl')
        self.store = jsonfile.JSONFileStorage(cfg.ConfigOpts(),
                                              path=self.path)
        self.store.init()

    def lines(self):
        """Return the lines of the data file."""
        with open(self.path, 'rb') as stream:
            return stream.read().splitlines(keepends=True)

    def test_one_line_per_push_with_exact_numbers(self):
        """A push is one line; qty and price are exact JSON numbers."""
        self.store.push([frame('0.000000000001', '-999999999999999.5'),
                         frame(start=T0 + HOUR)], scope_id='s')
        self.store.push([frame()])
        lines = self.lines()
        self.assertEqual(2, len(lines))
        self.assertIn(b'"qty": 1E-12', lines[0])
        self.assertIn(b'"price": -999999999999999.5', lines[0])
        record = json.loads(lines[0], parse_float=decimal.Decimal)
        self.assertEqual('s', record['scope_id'])
        point = record['frames'][0]['usage']['cpu'][0]
        self.assertEqual(('1E-12', '-999999999999999.5'),
                         (str(point['vol']['qty']),
                          str(point['rating']['price'])))

    def test_reads_lines_of_earlier_versions(self):
        """A line with flat points and numbers as strings is still read."""
        with open(self.path, 'w') as stream:
            stream.write(
                '{"frames": [{"period": {"begin": "%s", "end": "%s"}, '
                '"usage": {"cpu": [{"unit": "u", "qty": "0.000000000001", '
                '"price": "2.5", "groupby": {"project_id": "p"}, '
                '"metadata": {}, "description": null}]}}], '
                '"scope_id": null}\n' % (T0.isoformat(),
                                         (T0 + HOUR).isoformat()))
        self.assertEqual(
            (decimal.Decimal('1E-12'), decimal.Decimal('2.5')),
            tuple(self.store.total(begin=T0, end=T0 + HOUR)['results'][0][
                key] for key in ('qty', 'rate')))

    def test_torn_line_is_skipped_then_cut(self):
        """A last line without newline is never read, then cut off."""
        self.store.push([frame('1')])
        with open(self.path, 'ab') as stream:
            stream.write(b'{"frames": [{"period"')
        self.assertEqual(1, self.store.retrieve(begin=T0,
                                                end=T0 + HOUR)['total'])
        self.store.push([frame('2')])
        self.assertEqual(2, len(self.lines()))
        self.assertEqual(decimal.Decimal(3), self.store.total(
            begin=T0, end=T0 + HOUR)['results'][0]['qty'])

    def test_bad_push_writes_nothing(self):
        """A push whose last point is out of range leaves no byte."""
        self.store.push([frame()])
        before = self.lines()
        self.assertRaises(exceptions.InvalidQuery, self.store.push,
                          [frame(), frame(qty='1E+20')])
        self.assertEqual(before, self.lines())

    def test_delete_keeps_mode_and_leaves_no_temporary(self):
        """delete() replaces the file, keeping its mode, and cleans up."""
        os.chmod(self.path, 0o640)
        self.store.push([frame(), frame(start=T0 + HOUR)])
        self.assertEqual(1, self.store.delete(end=T0 + HOUR))
        self.assertEqual(0o640, os.stat(self.path).st_mode & 0o777)
        self.assertEqual(['storage.jsonl', 'storage.jsonl.lock'],
                         sorted(os.listdir(self.directory)))
        self.assertEqual(1, len(self.lines()))

    def test_missing_directory_is_unavailable(self):
        """A path in a missing directory raises BackendUnavailable."""
        store = jsonfile.JSONFileStorage(
            cfg.ConfigOpts(), path=os.path.join(self.directory, 'no', 'f'))
        exc = self.assertRaises(exceptions.BackendUnavailable, store.init)
        self.assertEqual('jsonfile', exc.backend)

    def test_corrupt_line_is_a_storage_error(self):
        """A complete line that is not a push raises StorageError."""
        with open(self.path, 'ab') as stream:
            stream.write(b'not json\n')
        self.assertRaises(exceptions.StorageError, self.store.retrieve,
                          begin=T0, end=T0 + HOUR)


class HooksTest(testtools.TestCase):
    """The optional hooks the cloudkitty-storage command uses."""

    def test_check_initialised_creates_nothing(self):
        directory = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(directory, 'storage.jsonl')
        store = jsonfile.JSONFileStorage(cfg.ConfigOpts(), path=path)
        self.assertRaises(exceptions.NotInitialised, store.check_initialised)
        self.assertEqual([], os.listdir(directory))
        store.init()
        store.check_initialised()
        link = os.path.join(directory, 'link.jsonl')
        os.symlink(path, link)
        other = jsonfile.JSONFileStorage(cfg.ConfigOpts(), path=link)
        self.assertEqual(store.store_identity(), other.store_identity())
