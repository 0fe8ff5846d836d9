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
"""``backends``, ``init`` and ``purge`` on SQLite files."""

import datetime
import json
import os

from cloudkitty.cli import admin
from cloudkitty.storage import v2
from cloudkitty.tests.cli import test_data

UTC = datetime.timezone.utc


class BackendsTest(test_data.DataCLITestCase):
    """``backends`` lists entry points and their Features flags."""

    def test_json(self):
        rows = self.ok(['backends'])
        by_name = {row['name']: row for row in rows}
        sql = by_name['sqlalchemy']
        self.assertEqual(
            'cloudkitty.storage.v2.sqlalchemy.storage:SQLAlchemyStorage',
            sql['module:class'])
        self.assertEqual(['name', 'module:class'] + list(admin.FEATURE_FLAGS),
                         list(sql))
        self.assertTrue(sql['exact_decimal'])
        self.assertTrue(sql['atomic_push'])
        self.assertFalse(sql['eventually_consistent'])
        self.assertIsNone(sql['max_value_length'])
        # NOTE: listing instantiates nothing, so no database appears.
        self.assertFalse(os.path.exists(self.db))

    def test_one_column_per_flag(self):
        self.assertIn('groupby_time', admin.FEATURE_FLAGS)
        self.assertEqual(
            sorted(name for name in vars(v2.Features)
                   if not name.startswith('_')),
            sorted(admin.FEATURE_FLAGS))

    def test_table(self):
        code, out, err = self.run_main(['backends'])
        self.assertEqual(0, code, err)
        self.assertIn('| sqlalchemy |', out)


class InitTest(test_data.DataCLITestCase):
    """``init`` creates the schema and says where; idempotent."""

    def test_init_twice(self):
        for _ in range(2):
            shown = self.ok(['init'])
            self.assertEqual(
                {'backend': 'sqlalchemy',
                 'class': 'cloudkitty.storage.v2.sqlalchemy.storage:'
                          'SQLAlchemyStorage',
                 'location': self.connection}, shown)
            self.assertTrue(os.path.exists(self.db))
        self.assertEqual(0, self.stored_points())

    def test_init_keeps_data(self):
        self.push_frames(test_data.sample_frames())
        self.ok(['init'])
        self.assertEqual(5, self.stored_points())

    def test_location_hides_the_password(self):
        class Store:
            location = 'postgresql+psycopg://ck:***@db/ck'

        self.assertEqual('postgresql+psycopg://ck:***@db/ck',
                         admin._location(Store()))
        self.assertEqual('(not reported)', admin._location(object()))

    def test_unknown_backend(self):
        code, out, err = self.run_main(['--backend', 'nope', 'init'])
        self.assertEqual(1, code)
        self.assertIn("Unknown storage backend 'nope'", err)


class PurgeTest(test_data.DataCLITestCase):
    """``purge`` deletes what is older than the retention period."""

    def setUp(self):
        super().setUp()
        self.conf_file = self.write(
            'storage.conf', '[storage]\nretention_period = 48\n')
        now = datetime.datetime.now(UTC).replace(minute=0, second=0,
                                                 microsecond=0)
        self.old = test_data.sample_frames(
            datetime.datetime(2020, 1, 1, tzinfo=UTC))
        # NOTE: two points of 20 and 30 hours ago: kept by a 48 h period.
        self.recent = test_data.sample_frames(now - datetime.timedelta(
            hours=30))[:2]
        self.push_frames(self.old + self.recent)
        self.assertEqual(9, self.stored_points())

    def purge(self, *extra, stdin=''):
        return self.run_main(['--config-file', self.conf_file, 'purge']
                             + list(extra), stdin=stdin)

    def test_dry_run(self):
        code, out, err = self.purge('--dry-run', '-f', 'json')
        self.assertEqual(0, code, err)
        shown = json.loads(out)
        self.assertEqual(5, shown['would_delete'])
        self.assertEqual(48, shown['retention_hours'])
        cutoff = datetime.datetime.fromisoformat(shown['cutoff'])
        expected = datetime.datetime.now(UTC) - datetime.timedelta(hours=48)
        self.assertLess(abs(cutoff - expected), datetime.timedelta(
            minutes=5))
        self.assertEqual(9, self.stored_points())

    def test_yes_deletes_only_old_data(self):
        code, out, err = self.purge('--yes', '-f', 'json')
        self.assertEqual(0, code, err)
        self.assertEqual(5, json.loads(out)['deleted'])
        self.assertEqual(4, self.stored_points())
        rows = self.retrieved('--begin', '2000-01-01', '--end', '2100-01-01')
        self.assertEqual(test_data.rows_of(self.recent), rows)

    def test_declined(self):
        code, out, err = self.purge(stdin='no\n')
        self.assertEqual(1, code)
        self.assertIn('Delete 5 points from the start to ', err)
        self.assertIn('Aborted: nothing was deleted', err)
        self.assertEqual(9, self.stored_points())

    def test_confirmed(self):
        code, out, err = self.purge('-f', 'json', stdin='y\n')
        self.assertEqual(0, code, err)
        self.assertEqual(5, json.loads(out)['deleted'])
        self.assertEqual(4, self.stored_points())

    def test_nothing_to_purge(self):
        self.purge('--yes')
        code, out, err = self.purge('-f', 'json')
        self.assertEqual(0, code, err)
        self.assertEqual(0, json.loads(out)['deleted'])
        self.assertNotIn('[y/N]', err)
        self.assertEqual(4, self.stored_points())

    def test_default_retention(self):
        """Without a config file the period is 2400 hours (100 days)."""
        shown = self.ok(['purge', '--dry-run'])
        self.assertEqual((2400, 5), (shown['retention_hours'],
                                     shown['would_delete']))
