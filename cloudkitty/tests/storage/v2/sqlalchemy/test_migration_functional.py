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
"""Schema upgrades keep every point, on SQLite, PostgreSQL and MariaDB.

A database is created at the first revision, filled through the storage,
then upgraded by ``init()``; the points, their sums and the rollup must be
unchanged, and what the new revisions add must work. The frame counts of
revision 0004 are neither written nor read before the upgrade, and every
push keeps the rollup of its days (no ``until`` of revision 0005), as the
code of the earlier revisions did; the upgrade computes them. The points'
money is written in the ``(hi, lo)`` pairs of the revisions before
0008 (see :func:`_money_as_before_0008`).
"""

import contextlib
import datetime
import decimal

import fixtures
from oslo_config import cfg
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
import testtools

from cloudkitty import storage
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2.sqlalchemy import engine as engine_mod
from cloudkitty.storage.v2.sqlalchemy import labelsums
from cloudkitty.storage.v2.sqlalchemy import migration
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import partitions
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision

#: The first revision, the schema of the foundation.
FIRST = '0001'
DAY = datetime.timedelta(days=1)
HOUR = datetime.timedelta(hours=1)
D = decimal.Decimal
_FRAMES = 'cloudkitty.storage.v2.sqlalchemy.storage.frames_mod'
_UNTIL = 'cloudkitty.storage.v2.sqlalchemy.rollup.until'
_SEEK = ('cloudkitty.storage.v2.sqlalchemy.storage.SQLAlchemyStorage.'
         '_frames_to_seek')


@contextlib.contextmanager
def _as_before_0004():
    """Run the backend as before revision 0004.

    No ``ck_frame`` and no ``ck_rollup``: every day is in the rollup, and
    no read seeks frame by frame (it needs ``ck_frame``).
    """
    with fixtures.MonkeyPatch(_FRAMES + '.rows', lambda counts: []), \
            fixtures.MonkeyPatch(_FRAMES + '.usable', lambda query: False), \
            fixtures.MonkeyPatch(_SEEK, lambda self, conn, query: False), \
            fixtures.MonkeyPatch(_UNTIL, lambda conn, lock=None: 2 ** 63):
        yield


_SERIES = 'cloudkitty.storage.v2.sqlalchemy.series'


def _no_kind(series_id, key, value):
    """A ``ck_label`` row as before revision 0007 (no ``kind``)."""
    return {'series_id': series_id, 'key': key, 'value': value}


@contextlib.contextmanager
def _as_before_0007():
    """Run the backend as before revision 0007: labels are str, no kind."""
    with fixtures.MonkeyPatch(_SERIES + '.label_row', _no_kind), \
            fixtures.MonkeyPatch(_SERIES + '.kind_of',
                                 lambda label: sa.literal('s')):
        yield


_RENAMED = (('qty_hi', 'qty_hundreds'), ('qty_lo', 'qty_rest'),
            ('price_hi', 'price_hundreds'), ('price_lo', 'price_rest'))


def _rename(conn, renames):
    for old, new in renames:
        conn.exec_driver_sql('ALTER TABLE ck_point RENAME COLUMN %s TO %s'
                             % (old, new))


@contextlib.contextmanager
def _money_as_before_0008(engine):
    """Store the points pushed meanwhile as before revision 0008.

    The columns get their new names while the block runs, so that the
    storage writes and reads them; afterwards every pair is rewritten as
    the ``(hi, lo)`` pair of the earlier revisions (``hi`` the floor of the
    value, ``0 <= lo < 10**12``), independently of the migration, and the
    columns get their old names back.
    """
    with engine.begin() as conn:
        _rename(conn, _RENAMED)
    yield
    with engine.begin() as conn:
        rows = conn.exec_driver_sql(
            'SELECT id, qty_hundreds, qty_rest, price_hundreds, price_rest '
            'FROM ck_point').all()
        updates = []
        for id_, qty_hundreds, qty_rest, price_hundreds, price_rest in rows:
            qty_hi, qty_lo = divmod(models.join(qty_hundreds, qty_rest),
                                    money.SCALE)
            price_hi, price_lo = divmod(
                models.join(price_hundreds, price_rest), money.SCALE)
            updates.append({'id': id_, 'qh': qty_hi, 'ql': qty_lo,
                            'ph': price_hi, 'pl': price_lo})
        if updates:
            conn.execute(sa.text(
                'UPDATE ck_point SET qty_hundreds = :qh, qty_rest = :ql, '
                'price_hundreds = :ph, price_rest = :pl WHERE id = :id'),
                updates)
        _rename(conn, [(new, old) for old, new in _RENAMED])


@contextlib.contextmanager
def _points_as_before_0009(store):
    """Let the database number the points, as before revision 0009.

    From 0009 on, SQLite's points take their ids from ``ck_counter``.
    """
    numbers, writer = store._numbers_points, store._insert_points
    store._numbers_points = False
    store._insert_points = engine_mod.bulk_writer(
        store.engine.dialect, models.point,
        ('series_id', 'begin', 'end', 'qty_hundreds', 'qty_rest',
         'price_hundreds', 'price_rest'))
    try:
        yield
    finally:
        store._numbers_points, store._insert_points = numbers, writer


@contextlib.contextmanager
def _labels_as_before_0010(store):
    """Keep no label sums, as before revision 0010 (and on MariaDB)."""
    labels = store._labels
    store._labels = labelsums.LabelSums(mysql.dialect(), ())
    try:
        yield
    finally:
        store._labels = labels


def _money_frame(start):
    """A frame of values around the edges of both encodings."""
    values = builders.MONEY_EXTREMES + (
        D('99.999999999999'), D('100'), D('-100'), D('-100.000000000001'),
        D('-99.5'), D('-1E-12'), D('12345.678'))
    return builders.make_frame(start, [
        ('cpu', builders.make_point('money', value, -value,
                                    metadata={'i': str(i)}))
        for i, value in enumerate(values)])


class _UpgradeMixin:
    """The test; a subclass sets ``self.url`` to an empty database."""

    def test_upgrade_from_first_revision_keeps_data(self):
        """Data pushed at 0001 reads back the same after init() at head."""
        store = storage.get_storage(conf=cfg.ConfigOpts(),
                                    backend='sqlalchemy',
                                    connection=self.url)
        self.addCleanup(store.close)
        migration.upgrade(store.engine, FIRST)
        frames = []
        for day in range(3):
            frames += builders.sample_frames(
                'p%d' % day, start=builders.T0 + day * DAY)
        frames.append(_money_frame(builders.T0 + HOUR))
        window = dict(begin=builders.EVER[0], end=builders.EVER[1])
        extremes = dict(custom_fields='min(qty) AS a, max(qty) AS b, '
                        'min(price) AS c, max(price) AS d, sum(qty) AS e',
                        groupby=['i'], **window)
        with _as_before_0004(), _as_before_0007(), \
                _money_as_before_0008(store.engine), \
                _points_as_before_0009(store), _labels_as_before_0010(store):
            store.push(frames, scope_id='s')
            before = (store.retrieve(paginate=False, **window),
                      store.total(groupby=['project_id', 'time-d'],
                                  **window),
                      store.total(**extremes))

        store.init()

        with store.engine.connect() as conn:
            self.assertEqual(migration.head(), migration.current(conn))
            self.assertIn('ck_push', sa.inspect(conn).get_table_names())
            if conn.dialect.name == 'postgresql':
                # NOTE: 0003's month keeps its index by series, now its
                # own (0011), and the partitioned index is gone.
                self.assertEqual(['ck_point_p202103'],
                                 sorted(partitions.existing(conn)))
                self.assertEqual({'ck_point_p202103'},
                                 partitions.series_indexed(conn))
                self.assertIsNone(conn.exec_driver_sql(
                    "SELECT to_regclass('ck_point_series')").scalar())
                # NOTE: labels no longer check their series (0011).
                self.assertEqual(
                    [], sa.inspect(conn).get_foreign_keys('ck_label'))
        if store.engine.dialect.name == 'postgresql':
            unread = sql_provision.no_statistics
            self.assertEqual(sorted(models.NO_STATISTICS['ck_point']),
                             unread(store.engine, 'ck_point_p202103'))
            self.assertEqual(sorted(models.DAY_SUMS),
                             unread(store.engine, 'ck_daily'))
        after = (store.retrieve(paginate=False, **window),
                 store.total(groupby=['project_id', 'time-d'], **window),
                 store.total(**extremes))
        self.assertEqual(before[1], after[1])
        self.assertEqual(before[2], after[2])
        self.assertEqual(18, after[2]['total'])
        self.assertEqual([f.as_dict() for f in before[0]['dataframes']],
                         [f.as_dict() for f in after[0]['dataframes']])
        # NOTE: 0004 counted the points per frame: deep pages seek there.
        self.assertEqual(before[0]['total'], after[0]['total'])
        self.useFixture(fixtures.MonkeyPatch(
            'cloudkitty.storage.v2.sqlalchemy.storage._SEEK_FROM', 0))
        whole = [(f.start, t, p) for f in after[0]['dataframes']
                 for t, p in f.iterpoints()]
        for offset in range(len(whole) + 1):
            page = store.retrieve(offset=offset, limit=2, **window)
            self.assertEqual(len(whole), page['total'])
            self.assertEqual(whole[offset:offset + 2],
                             [(f.start, t, p) for f in page['dataframes']
                              for t, p in f.iterpoints()])
        # NOTE: what 0002 added works on the upgraded data.
        with store.engine.connect() as conn:
            last_id = conn.scalar(sa.select(sa.func.max(models.point.c.id)))
        store.push(frames[:1], scope_id='s', idempotency_key='k')
        store.push(frames[:1], scope_id='s', idempotency_key='k')
        self.assertEqual(before[0]['total'] + len(frames[0]),
                         store.retrieve(limit=1, **window)['total'])
        # NOTE: and new points come after the old in push order (on
        # SQLite, from 0009's counter).
        with store.engine.connect() as conn:
            self.assertEqual(len(frames[0]), conn.scalar(
                sa.select(sa.func.count()).where(
                    models.point.c.id > last_id)))
        # NOTE: 0010 listed the days rolled up as stale (on the databases
        # that keep label sums); the next roll-up rebuilds them, and
        # totals by project read them, with the same answers.
        days = dict(begin=builders.EVER[0], end=builders.T0 + 4 * DAY)
        by_project = store.total(groupby=['project_id'], **days)
        if store._labels.kept:
            with store.engine.connect() as conn:
                stale = conn.scalars(sa.select(
                    models.label_stale.c.day)).all()
                rolled = conn.scalars(sa.select(
                    models.daily.c.day).distinct()).all()
            self.assertEqual(sorted(rolled), sorted(stale))
            self.assertNotEqual([], stale)
        store.push(builders.sample_frames('p3',
                                          start=builders.T0 + 4 * DAY))
        store.push(builders.sample_frames('p4',
                                          start=builders.T0 + 5 * DAY))
        if store._labels.kept:
            with store.engine.connect() as conn:
                self.assertEqual([], conn.scalars(sa.select(
                    models.label_stale.c.day)).all())
                self.assertEqual(
                    sorted(conn.scalars(sa.select(
                        models.daily.c.day).distinct()).all()),
                    sorted(conn.scalars(sa.select(
                        models.label_fresh.c.day)).all()))
        self.assertEqual(by_project,
                         store.total(groupby=['project_id'], **days))


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class SQLiteUpgradeTest(sql_provision.SQLiteURLMixin, _UpgradeMixin,
                        testtools.TestCase):
    """Upgrades on SQLite (a database of its own: it starts empty)."""


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLUpgradeTest(sql_provision.ServerURLMixin, _UpgradeMixin,
                            testtools.TestCase):
    """Upgrades on PostgreSQL (a database of its own: it starts empty)."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class MariaDBUpgradeTest(sql_provision.ServerURLMixin, _UpgradeMixin,
                         testtools.TestCase):
    """Upgrades on MariaDB (a database of its own: it starts empty)."""

    url_variable = 'CLOUDKITTY_TEST_MYSQL_URL'


class _TypedLabelsUpgradeMixin:
    """Revision 0007; a subclass sets ``self.url`` to an empty database."""

    def test_upgrade_to_typed_labels_keeps_str(self):
        """Labels stored before 0007 stay str; typed ones group apart."""
        store = storage.get_storage(conf=cfg.ConfigOpts(),
                                    backend='sqlalchemy',
                                    connection=self.url)
        self.addCleanup(store.close)
        migration.upgrade(store.engine, '0006')
        point = builders.make_point('p', 1, 1, groupby={'size': '3'},
                                    metadata={'on': 'True'})
        window = dict(begin=builders.EVER[0], end=builders.EVER[1])
        with _as_before_0007(), _money_as_before_0008(store.engine), \
                _points_as_before_0009(store), _labels_as_before_0010(store):
            store.push([builders.make_frame(builders.T0, [('cpu', point)])])

        store.init()

        typed = builders.make_point('p', 2, 2, groupby={'size': 3},
                                    metadata={'on': True})
        store.push([builders.make_frame(builders.T0, [('cpu', typed)])])
        points = [p for f in store.retrieve(paginate=False, **window)[
            'dataframes'] for _, p in f.iterpoints()]
        self.assertEqual([('3', 'True'), (3, True)],
                         [(p.groupby['size'], p.metadata['on'])
                          for p in points])
        for key in ('size', 'on'):
            results = store.total(groupby=[key], **window)['results']
            self.assertEqual([(int, 2), (str, 1)] if key == 'size'
                             else [(bool, 2), (str, 1)],
                             [(type(r[key]), r['qty']) for r in results])
        for text in ('3', 'True'):
            self.assertEqual(2, store.retrieve(
                filters={'size' if text == '3' else 'on': text},
                **window)['total'])


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class SQLiteTypedLabelsUpgradeTest(sql_provision.SQLiteURLMixin,
                                   _TypedLabelsUpgradeMixin,
                                   testtools.TestCase):
    """Revision 0007 on SQLite."""


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLTypedLabelsUpgradeTest(sql_provision.ServerURLMixin,
                                       _TypedLabelsUpgradeMixin,
                                       testtools.TestCase):
    """Revision 0007 on PostgreSQL."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class MariaDBTypedLabelsUpgradeTest(sql_provision.ServerURLMixin,
                                    _TypedLabelsUpgradeMixin,
                                    testtools.TestCase):
    """Revision 0007 on MariaDB."""

    url_variable = 'CLOUDKITTY_TEST_MYSQL_URL'
