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
"""SQLite's point ids, taken from ``ck_counter`` (migration 0009)."""

from oslo_config import cfg
import sqlalchemy as sa
import testtools

from cloudkitty import storage
from cloudkitty.storage.v2.sqlalchemy import counters
from cloudkitty.storage.v2.sqlalchemy import engine as engine_mod
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class SQLiteCountersTest(sql_provision.SQLiteURLMixin, testtools.TestCase):
    """Blocks of ids in push order, and a counter that mends itself."""

    def setUp(self):
        super().setUp()
        self.store = storage.get_storage(conf=cfg.ConfigOpts(),
                                         backend='sqlalchemy',
                                         connection=self.url)
        self.addCleanup(self.store.close)
        self.store.init()

    def _ids(self):
        with self.store.engine.connect() as conn:
            return conn.scalars(sa.select(models.point.c.id).order_by(
                models.point.c.id)).all()

    def test_pushes_take_consecutive_blocks(self):
        frames = builders.sample_frames('p', start=builders.T0)
        count = sum(len(frame) for frame in frames)
        self.store.push(frames)
        self.store.push(frames)
        self.assertEqual(list(range(1, 2 * count + 1)), self._ids())

    def test_a_push_rolled_back_gives_its_ids_back(self):
        with engine_mod.writing(self.store.engine) as conn:
            self.assertEqual(1, counters.take(conn, 5))
            self.assertEqual(6, counters.take(conn, 2))
        try:
            with engine_mod.writing(self.store.engine) as conn:
                self.assertEqual(8, counters.take(conn, 3))
                raise RuntimeError('rolled back')
        except RuntimeError:
            pass
        with engine_mod.writing(self.store.engine) as conn:
            self.assertEqual(8, counters.take(conn, 1))

    def test_a_missing_counter_starts_after_the_last_id(self):
        frames = builders.sample_frames('p', start=builders.T0)
        self.store.push(frames)
        last = self._ids()[-1]
        with engine_mod.writing(self.store.engine) as conn:
            conn.execute(models.counter.delete())
            self.assertEqual(last + 1, counters.take(conn, 4))
            self.assertEqual(last + 5, counters.take(conn, 1))
