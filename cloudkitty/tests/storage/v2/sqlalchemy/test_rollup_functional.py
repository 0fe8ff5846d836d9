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
"""The daily rollup always equals the points it summarises.

Random pushes over a few days (frames at any hour, out of order, with
duplicates and extreme values) and random deletes (windows cutting days,
filters) are followed by a comparison of ``ck_daily`` with the points of
the days before ``until``, computed exactly in Python, and of totals over
windows with partial days against the reference oracle. Pushes out of order
take both paths: into days rolled up already (late data, added to the
rollup by the push) and into later days (rolled up by a later push).
"""

import datetime
import decimal
import logging
import random
from unittest import mock

import fixtures
from oslo_config import cfg
import sqlalchemy as sa
import testtools

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import query
from cloudkitty.storage.v2.sqlalchemy import engine as engine_mod
from cloudkitty.storage.v2.sqlalchemy import labelsums
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import options
from cloudkitty.storage.v2.sqlalchemy import rollup
from cloudkitty.storage.v2.sqlalchemy import storage
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests import functional_env
from cloudkitty.tests import sql_provision

T0 = datetime.datetime(2023, 12, 30, tzinfo=datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)
VALUES = ('0', '1', '0.5', '-2.25', '999999999999999.999999999999',
          '-999999999999999.999999999999', '0.000000000001', '123.456')


class _RollupMixin:
    """The tests; a subclass provides ``self.url`` for an empty database."""

    def setUp(self):
        super().setUp()
        conf = cfg.ConfigOpts()
        options.register_opts(conf)
        # NOTE: a key of the groupby and one of the metadata, so that
        # totals by project and by type and flavor read label sums.
        conf.set_override('rollup_label_keys', ['project_id', 'flavor'],
                          options.GROUP)
        self.store = self.new_store(conf)
        self.rng = random.Random(1234)
        self.frames = []

    def _push_random(self, pushes):
        for _ in range(pushes):
            start = T0 + self.rng.randrange(0, 4 * 24) * HOUR
            frame = dataframe.DataFrame(start, start + HOUR)
            for _ in range(self.rng.randrange(1, 20)):
                frame.add_point(dataframe.DataPoint(
                    'u', decimal.Decimal(self.rng.choice(VALUES)),
                    decimal.Decimal(self.rng.choice(VALUES)),
                    {'project_id': self.rng.choice('ab')},
                    {'flavor': self.rng.choice('xyz')}),
                    self.rng.choice(('cpu', 'disk')))
            self.store.push([frame])
            self.frames.append(frame)

    def _delete_random(self):
        begin = T0 + self.rng.randrange(0, 4 * 24) * HOUR
        end = begin + self.rng.randrange(1, 60) * HOUR
        filters = self.rng.choice([None, {'project_id': 'a'},
                                   {'flavor': ['x', 'y']}])
        self.store.delete(begin=begin, end=end, filters=filters)
        _, self.frames = query.evaluate_delete(
            query.validate_delete(begin, end, filters), self.frames)

    def assertRollupMatchesPoints(self):
        engine = sa.create_engine(self.url)
        self.addCleanup(engine.dispose)
        with engine.connect() as conn:
            until = rollup.until(conn)
            expected = {}
            for row in conn.execute(sa.select(models.point)):
                if row.begin >= until:
                    continue
                key = (rollup.day_of(row.begin), row.series_id)
                sums = expected.setdefault(key, [0, 0, 0])
                sums[0] += 1
                sums[1] += models.join(row.qty_hundreds, row.qty_rest)
                sums[2] += models.join(row.price_hundreds, row.price_rest)
            actual = {}
            for row in conn.execute(sa.select(models.daily)):
                actual[(row.day, row.series_id)] = [
                    row.n, rollup.units(row.qty_big, row.qty_small,
                                        row.qty_lo),
                    rollup.units(row.price_big, row.price_small,
                                 row.price_lo)]
            self.assertEqual(expected, actual)
            self.assertLabelSumsMatchRollup(conn)

    def assertLabelSumsMatchRollup(self, conn):
        """Each fresh day's label sums are those of its ``ck_daily`` rows.

        On the databases that keep them; every day rolled up since the
        last delete or late push is fresh for every key.
        """
        if not self.store._labels.kept:
            return
        fresh = {(row.day, row.key) for row in conn.execute(
            sa.select(models.label_fresh))}
        stale = set(conn.scalars(sa.select(models.label_stale.c.day)))
        types = dict(conn.execute(sa.select(models.series.c.id,
                                            models.series.c.type)).all())
        labels = {}
        for row in conn.execute(sa.select(models.label)):
            labels[(row.series_id, row.key)] = (row.kind, row.value)
        expected = {}
        rolled_days = set()
        for row in conn.execute(sa.select(models.daily)):
            rolled_days.add(row.day)
            for key in self.store._labels.keys:
                if (row.day, key) not in fresh:
                    continue
                kind, value = labels.get(
                    (row.series_id, key),
                    (labelsums.MISSING_KIND, labelsums.MISSING_VALUE))
                sums = expected.setdefault(
                    (key, row.day, types[row.series_id], kind, value),
                    [0, 0, 0])
                sums[0] += row.n
                sums[1] += rollup.units(row.qty_big, row.qty_small,
                                        row.qty_lo)
                sums[2] += rollup.units(row.price_big, row.price_small,
                                        row.price_lo)
        actual = {}
        for row in conn.execute(sa.select(models.label_daily)):
            if (row.day, row.key) in fresh:
                actual[(row.key, row.day, row.type, row.kind,
                        row.value)] = [
                    row.n, rollup.units(row.qty_big, row.qty_small,
                                        row.qty_lo),
                    rollup.units(row.price_big, row.price_small,
                                 row.price_lo)]
        self.assertEqual(expected, actual)
        # NOTE: a rolled-up day is fresh for every key, or stale.
        for day in rolled_days - stale:
            for key in self.store._labels.keys:
                self.assertIn((day, key), fresh)

    def assertTotalsMatchOracle(self):
        for _ in range(10):
            begin = T0 + self.rng.randrange(0, 4 * 24) * HOUR
            end = begin + self.rng.randrange(1, 80) * HOUR
            groupby = self.rng.choice([None, ['project_id'], ['time-d'],
                                       ['type', 'flavor'], ['time-w'],
                                       ['flavor', 'type']])
            types = self.rng.choice([None, ['cpu'], ['disk', 'cpu']])
            args = dict(begin=begin, end=end, groupby=groupby,
                        metric_types=types, paginate=False)
            self.assertEqual(
                query.evaluate_total(query.validate_total(**args),
                                     self.frames),
                self.store.total(**args), args)
            retrieved = self.store.retrieve(begin=begin, end=end, limit=1)
            self.assertEqual(
                query.evaluate_retrieve(query.validate_retrieve(
                    begin=begin, end=end, limit=1), self.frames)['total'],
                retrieved['total'])

    def test_rollup_after_pushes(self):
        """The rollup equals the points after random pushes."""
        self._push_random(40)
        self.assertRollupMatchesPoints()
        self.assertTotalsMatchOracle()

    def test_days_roll_up_when_a_later_day_is_pushed(self):
        """A day is summed from points until a later day is pushed."""
        day = datetime.timedelta(days=1)
        late = builders.sample_frames('late', start=T0)
        first = builders.sample_frames('a', start=T0 + day)
        second = builders.sample_frames('b', start=T0 + 2 * day)
        with self.store.engine.connect() as conn:
            self.assertEqual(rollup.NOTHING, rollup.until(conn))
        self.store.push(first)
        self.store.push(second)
        with self.store.engine.connect() as conn:
            # NOTE: the first push had no earlier day to roll up; the
            # second rolled up the first one's day.
            self.assertEqual(query.to_micros(T0 + 2 * day),
                             rollup.until(conn))
        # NOTE: late data, into a day before until: the push adds it to
        # the rollup itself.
        self.store.push(late)
        self.frames = late + first + second
        self.assertRollupMatchesPoints()
        window = dict(begin=T0, end=T0 + 3 * day)
        for groupby in (None, ['project_id'], ['time-d']):
            self.assertEqual(
                query.evaluate_total(query.validate_total(
                    groupby=groupby, **window), self.frames),
                self.store.total(groupby=groupby, **window))
        # NOTE: an explicit roll-up of the last day, and one that has
        # nothing left to do, change no answer.
        before = self.store.total(groupby=['project_id'], **window)
        self.store.roll_up(query.to_micros(T0 + 3 * day))
        self.store.roll_up(query.to_micros(T0 + 2 * day))
        self.assertRollupMatchesPoints()
        with self.store.engine.connect() as conn:
            self.assertEqual(query.to_micros(T0 + 3 * day),
                             rollup.until(conn))
        self.assertEqual(before,
                         self.store.total(groupby=['project_id'], **window))

    def _push_in_order(self, days):
        """Push random frames hour after hour over ``days`` days."""
        for hour in range(days * 24):
            start = T0 + hour * HOUR
            frame = dataframe.DataFrame(start, start + HOUR)
            for _ in range(self.rng.randrange(1, 6)):
                frame.add_point(dataframe.DataPoint(
                    'u', decimal.Decimal(self.rng.choice(VALUES)),
                    decimal.Decimal(self.rng.choice(VALUES)),
                    {'project_id': self.rng.choice('ab')},
                    {'flavor': self.rng.choice([1, 'x', None, 1.0])}),
                    self.rng.choice(('cpu', 'disk')))
            self.store.push([frame])
            self.frames.append(frame)

    def _label_totals(self, expect_labels):
        """Totals that label sums can answer, checked against the oracle.

        :param expect_labels: whether every one must read label sums.
        """
        day = 24 * HOUR
        windows = ((T0, T0 + 3 * day), (T0 + day, T0 + 2 * day),
                   (T0 + 5 * HOUR, T0 + 3 * day + 2 * HOUR))
        for groupby in (['project_id'], ['type', 'flavor'],
                        ['flavor', 'type'], ['flavor']):
            for types in (None, ['disk']):
                for begin, end in windows:
                    args = dict(begin=begin, end=end, groupby=groupby,
                                metric_types=types, paginate=False)
                    with mock.patch.object(
                            self.store, '_label_rows',
                            wraps=self.store._label_rows) as read:
                        self.assertEqual(
                            query.evaluate_total(query.validate_total(
                                **args), self.frames),
                            self.store.total(**args), args)
                    if expect_labels:
                        self.assertEqual(1, read.call_count, args)
        # NOTE: filters on labels read the daily rollup.
        args = dict(begin=T0, end=T0 + 3 * day, groupby=['project_id'],
                    filters={'flavor': 'x'}, paginate=False)
        self.assertEqual(
            query.evaluate_total(query.validate_total(**args),
                                 self.frames),
            self.store.total(**args))

    def test_label_sums_through_late_pushes_and_deletes(self):
        """Totals by a kept key read label sums while they are fresh.

        A late push and deletes make their days stale: totals stay exact
        (they read the daily rollup), and the next roll-up rebuilds the
        days.
        """
        if not self.store._labels.kept:
            self.skipTest('no label sums on %s'
                          % self.store.engine.dialect.name)
        self._push_in_order(4)
        self.assertRollupMatchesPoints()
        self._label_totals(expect_labels=True)
        late = dataframe.DataFrame(T0 + 30 * HOUR, T0 + 31 * HOUR)
        late.add_point(dataframe.DataPoint(
            'u', decimal.Decimal('7.5'), decimal.Decimal('0.25'),
            {'project_id': 'c'}, {'flavor': 'x'}), 'cpu')
        self.store.push([late])
        self.frames.append(late)
        self.assertRollupMatchesPoints()
        self._label_totals(expect_labels=False)
        for begin, end, filters in (
                (T0 + 2 * HOUR, T0 + 3 * HOUR, None),
                (T0 + 40 * HOUR, T0 + 41 * HOUR, {'project_id': 'a'}),
                (T0 + 2 * 24 * HOUR, T0 + 3 * 24 * HOUR, None)):
            self.store.delete(begin=begin, end=end, filters=filters)
            _, self.frames = query.evaluate_delete(
                query.validate_delete(begin, end, filters), self.frames)
            self.assertRollupMatchesPoints()
            self._label_totals(expect_labels=False)
        with self.store.engine.connect() as conn:
            self.assertEqual(
                [query.to_micros(T0), query.to_micros(T0 + 24 * HOUR)],
                sorted(conn.scalars(sa.select(models.label_stale.c.day))))
        # NOTE: the next day pushed rolls up the last one and rebuilds the
        # stale days.
        self._push_day(4)
        self.assertRollupMatchesPoints()
        with self.store.engine.connect() as conn:
            self.assertEqual([], conn.scalars(sa.select(
                models.label_stale.c.day)).all())
        self._label_totals(expect_labels=True)

    def test_a_key_added_to_the_option_is_built_for_earlier_days(self):
        """Days rolled up before a key was kept are rebuilt for it.

        The next roll-up lists them as stale and rebuilds them (a week at
        a time); the other keys' sums stay fresh meanwhile.
        """
        if not self.store._labels.kept:
            self.skipTest('no label sums on %s'
                          % self.store.engine.dialect.name)
        conf = cfg.ConfigOpts()
        options.register_opts(conf)
        conf.set_override('rollup_label_keys', ['project_id'],
                          options.GROUP)
        self.store = self.new_store(conf)
        self._push_in_order(4)
        with self.store.engine.connect() as conn:
            self.assertEqual({'project_id'}, set(conn.scalars(
                sa.select(models.label_fresh.c.key))))
        # NOTE: the option gains flavor: its totals read ck_daily, exact,
        # until the next roll-up.
        conf = cfg.ConfigOpts()
        options.register_opts(conf)
        conf.set_override('rollup_label_keys', ['flavor', 'project_id'],
                          options.GROUP)
        self.store = self.new_store(conf)
        self._label_totals(expect_labels=False)
        args = dict(begin=T0, end=T0 + 3 * 24 * HOUR,
                    groupby=['project_id'], paginate=False)
        with mock.patch.object(self.store, '_label_rows',
                               wraps=self.store._label_rows) as read:
            self.assertEqual(
                query.evaluate_total(query.validate_total(**args),
                                     self.frames),
                self.store.total(**args))
        self.assertEqual(1, read.call_count)
        self._push_day(4)
        self.assertRollupMatchesPoints()
        with self.store.engine.connect() as conn:
            self.assertEqual([], conn.scalars(sa.select(
                models.label_stale.c.day)).all())
            self.assertEqual(['flavor', 'project_id'], sorted(
                conn.scalars(sa.select(models.label_keys.c.key))))
        self._label_totals(expect_labels=True)

    def _push_day(self, index):
        start = T0 + index * 24 * HOUR
        frame = dataframe.DataFrame(start, start + HOUR)
        frame.add_point(dataframe.DataPoint(
            'u', decimal.Decimal(1), decimal.Decimal(2),
            {'project_id': 'a'}, {'flavor': 'y'}), 'disk')
        self.store.push([frame])
        self.frames.append(frame)

    def test_failed_roll_up_after_a_push_only_logs(self):
        """A push that landed does not raise if its roll-up fails."""
        day = datetime.timedelta(days=1)
        frames = [builders.sample_frames('p%d' % n, start=T0 + n * day)
                  for n in range(3)]
        down = exceptions.BackendUnavailable('sqlalchemy', 'here',
                                             'down for the test')
        with mock.patch.object(self.store, 'roll_up', autospec=True,
                               side_effect=down) as roll_up:
            self.store.push(frames[0])
            self.store.push(frames[1])
        self.assertEqual(2, roll_up.call_count)
        with self.store.engine.connect() as conn:
            self.assertEqual(rollup.NOTHING, rollup.until(conn))
        self.frames = frames[0] + frames[1]
        self.assertTotalsMatchOracle()
        # NOTE: the next push into a later day rolls up what was left.
        self.store.push(frames[2])
        with self.store.engine.connect() as conn:
            self.assertEqual(query.to_micros(T0 + 2 * day),
                             rollup.until(conn))
        self.frames += frames[2]
        self.assertRollupMatchesPoints()
        self.assertTotalsMatchOracle()

    def test_rollup_after_deletes(self):
        """The rollup equals the points after random partial deletes."""
        self._push_random(40)
        for _ in range(8):
            self._delete_random()
            self.assertRollupMatchesPoints()
        self.assertTotalsMatchOracle()
        self.store.delete()
        self.assertRollupMatchesPoints()

    def test_rollup_after_deletes_of_whole_days(self):
        """Deletes whose windows hold whole rolled-up days, and edges.

        Their days' rows go as they are, the points of their partial days
        are subtracted: exactly, whether the window starts or ends in a
        day, on a day, or past ``until``.
        """
        self._push_random(60)
        day = 24 * HOUR
        for begin, end in ((T0 + day, T0 + 2 * day),
                           (T0 + 5 * HOUR, T0 + day + 7 * HOUR),
                           (T0 + 5 * HOUR, T0 + 2 * day + 7 * HOUR),
                           (T0 + 2 * day + 3 * HOUR, T0 + 9 * day),
                           (T0 - day, T0 + 9 * day)):
            self.store.delete(begin=begin, end=end)
            _, self.frames = query.evaluate_delete(
                query.validate_delete(begin, end), self.frames)
            self.assertRollupMatchesPoints()
            self.assertTotalsMatchOracle()
            self._push_random(10)
            self.assertRollupMatchesPoints()

    def _check_deletes_without(self, name, value):
        """Random deletes, with one shortcut of filtered deletes off."""
        with mock.patch.object(storage, name, value):
            self._push_random(40)
            for _ in range(8):
                self._delete_random()
                self.assertRollupMatchesPoints()
            self.assertTotalsMatchOracle()

    def test_rollup_after_deletes_that_read_first(self):
        """Filtered deletes that read their points before deleting them.

        With no window small enough to return the deleted rows, their
        sums and counts are read first, their series named by id.
        """
        self._check_deletes_without('_RETURNING_MAX', -1)

    def test_rollup_after_deletes_of_a_series_subquery(self):
        """Filtered deletes matching more series than are named by id."""
        self._check_deletes_without('_DELETE_SERIES', 0)

    def _until(self):
        with self.store.engine.connect() as conn:
            return rollup.until(conn)

    def test_delete_of_everything_resets_until(self):
        """After a delete of every point, pushes roll up as on a new store.

        Both deletes that empty the store (with and without a window) bring
        ``until`` back to :data:`rollup.NOTHING`, so that pushing the same
        days again takes the roll-up path, not the late-data one, and every
        total stays exact.
        """
        day = datetime.timedelta(days=1)
        frames = [builders.sample_frames('p%d' % n, start=T0 + n * day)
                  for n in range(3)]
        for delete in (dict(), dict(begin=T0, end=T0 + 3 * day)):
            for batch in frames:
                self.store.push(batch)
            self.assertEqual(query.to_micros(T0 + 2 * day), self._until())
            self.store.delete(**delete)
            self.assertEqual(rollup.NOTHING, self._until())
            self.frames = []
            self.assertRollupMatchesPoints()
            self.assertTotalsMatchOracle()
        self.store.push(frames[0])
        self.assertEqual(query.to_micros(T0), self._until())
        self.store.push(frames[1])
        self.assertEqual(query.to_micros(T0 + day), self._until())
        self.frames = frames[0] + frames[1]
        self.assertRollupMatchesPoints()
        self.assertTotalsMatchOracle()

    def assertFramesMatchPoints(self):
        """``ck_frame`` holds a row per (frame start, type) with points."""
        engine = sa.create_engine(self.url)
        self.addCleanup(engine.dispose)
        point, series, frame = models.point, models.series, models.frame
        with engine.connect() as conn:
            expected = {(begin, type_): n for begin, type_, n in conn.execute(
                sa.select(point.c.begin, series.c.type, sa.func.count())
                .select_from(point.join(series,
                                        series.c.id == point.c.series_id))
                .group_by(point.c.begin, series.c.type))}
            actual = {(begin, type_): n for begin, type_, n in conn.execute(
                sa.select(frame.c.begin, frame.c.type, frame.c.n))}
        self.assertEqual(expected, actual)

    def test_bounded_filtered_deletes_keep_frame_counts(self):
        """Deletes that take their rows back empty frames exactly.

        Each delete is bounded and filtered (it takes its rows back): some
        leave points in their frames, some empty a frame of a type, the
        last empty the last days, which moves ``until`` back.
        """
        day = datetime.timedelta(days=1)
        frames = [builders.sample_frames(project, start=T0 + n * day)
                  for n in range(3) for project in ('p1', 'p2')]
        for batch in frames:
            self.store.push(batch)
        self.frames = sum(frames, [])
        self.assertEqual(query.to_micros(T0 + 2 * day), self._until())
        for begin, end, filters in (
                (T0, T0 + HOUR, {'project_id': 'p1'}),
                (T0 + 2 * day, T0 + 2 * day + 2 * HOUR,
                 {'flavor': 'm1.large'}),
                (T0 + day + HOUR, T0 + day + 2 * HOUR, {'disk': 'raw'}),
                (T0 + 2 * day, T0 + 3 * day, {'project_id': 'p1'})):
            self.store.delete(begin=begin, end=end, filters=filters)
            _, self.frames = query.evaluate_delete(query.validate_delete(
                begin, end, filters), self.frames)
            self.assertFramesMatchPoints()
            self.assertRollupMatchesPoints()
            self.assertTotalsMatchOracle()
        self.assertEqual(query.to_micros(T0 + 2 * day), self._until())
        self.store.delete(begin=T0 + 2 * day, end=T0 + 3 * day,
                          filters={'project_id': 'p2'})
        _, self.frames = query.evaluate_delete(query.validate_delete(
            T0 + 2 * day, T0 + 3 * day, {'project_id': 'p2'}), self.frames)
        self.assertFramesMatchPoints()
        self.assertEqual(query.to_micros(T0 + 2 * day), self._until())
        self.store.delete(begin=T0 + day, end=T0 + 2 * day,
                          filters={'project_id': ['p1', 'p2']})
        _, self.frames = query.evaluate_delete(query.validate_delete(
            T0 + day, T0 + 2 * day, {'project_id': ['p1', 'p2']}),
            self.frames)
        self.assertFramesMatchPoints()
        self.assertEqual(query.to_micros(T0 + day), self._until())
        self.assertRollupMatchesPoints()
        self.assertTotalsMatchOracle()

    def _frame(self, hour, series):
        """A frame of one hour, a point per ``(type, project, flavor)``."""
        start = T0 + hour * HOUR
        frame = dataframe.DataFrame(start, start + HOUR)
        for type_, project_id, flavor in series:
            frame.add_point(dataframe.DataPoint(
                'u', decimal.Decimal(self.rng.choice(VALUES)),
                decimal.Decimal(self.rng.choice(VALUES)),
                {'project_id': project_id}, {'flavor': flavor}), type_)
        return frame

    def test_deletes_of_one_frame_per_day(self):
        """Deletes that take each point out of its rollup row as it is.

        A window with one frame start per rolled-up day subtracts each
        point from its (day, series) row without summing them first; when
        two of its points share a row (one series twice in a frame), that
        statement is undone and the points summed per row instead. A
        window of several frame starts of a day sums them at once. The
        rollup and totals stay exact throughout, on every path.
        """
        distinct = [(type_, project_id, flavor) for type_ in ('cpu', 'disk')
                    for project_id in 'ab' for flavor in 'xy']
        twice = distinct + distinct[:3]
        hours = {1: distinct, 2: twice, 3: distinct, 4: distinct,
                 10: distinct, 25: twice, 26: distinct, 49: distinct}
        self.frames = [self._frame(hour, series)
                       for hour, series in sorted(hours.items())]
        for frame in self.frames:
            self.store.push([frame])
        self.assertEqual(query.to_micros(T0 + 48 * HOUR), self._until())
        in_database = self.store.engine.dialect.name in ('sqlite',
                                                         'postgresql')
        for begin, end, filters, each, grouped in (
                # NOTE: no two points of the frame share a row.
                (1, 2, None, 1, 0),
                # NOTE: three series twice in the frame: undone, summed.
                (2, 3, None, 1, 1),
                # NOTE: two frame starts of one day: summed at once.
                (3, 5, None, 0, 1),
                # NOTE: one frame start in each of two days, the second
                # one with a series twice.
                (10, 26, {'project_id': 'a'}, 1, 1),
                # NOTE: the frames of the last day are not rolled up.
                (26, 50, None, 1, 0)):
            with mock.patch.object(
                    rollup, 'subtract_each_point',
                    wraps=rollup.subtract_each_point) as each_point, \
                    mock.patch.object(
                        rollup, 'subtract_points',
                        wraps=rollup.subtract_points) as summed, \
                    mock.patch.object(storage, '_RETURNING_MAX', -1):
                self.store.delete(begin=T0 + begin * HOUR,
                                  end=T0 + end * HOUR, filters=filters)
            if in_database:
                self.assertEqual((each, grouped), (each_point.call_count,
                                                   summed.call_count),
                                 (begin, end, filters))
            _, self.frames = query.evaluate_delete(query.validate_delete(
                T0 + begin * HOUR, T0 + end * HOUR, filters), self.frames)
            self.assertRollupMatchesPoints()
            self.assertFramesMatchPoints()
            self.assertTotalsMatchOracle()

    def test_delete_of_more_rollup_rows_than_arrays_take(self):
        """A delete that empties more (day, series) rows than arrays take.

        On PostgreSQL its subtraction is then staged with ``COPY``, which
        psycopg refuses in the pipeline that sends a smaller one's writes
        (see ``CopyWrite.sends_copy``); it runs one statement at a time
        instead. Here one project of a series more than a third of
        ``ARRAY_ROWS`` over three rolled-up days.
        """
        many = [('cpu', 'a', 'f%d' % n)
                for n in range(engine_mod.ARRAY_ROWS // 3 + 1)]
        others = [('cpu', 'b', 'x'), ('disk', 'b', 'y')]
        self.frames = [self._frame(24 * day + 1, many + others)
                       for day in range(3)] + [self._frame(73, others)]
        for frame in self.frames:
            self.store.push([frame])
        self.assertEqual(query.to_micros(T0 + 72 * HOUR), self._until())
        self.assertGreater(3 * len(many), engine_mod.ARRAY_ROWS)
        self.store.delete(begin=T0, end=T0 + 72 * HOUR,
                          filters={'project_id': 'a'})
        _, self.frames = query.evaluate_delete(query.validate_delete(
            T0, T0 + 72 * HOUR, {'project_id': 'a'}), self.frames)
        self.assertEqual(8, sum(1 for frame in self.frames
                                for _ in frame.iterpoints()))
        self.assertRollupMatchesPoints()
        self.assertFramesMatchPoints()
        self.assertTotalsMatchOracle()

    def test_delete_of_the_last_days_moves_until_back(self):
        """``until`` goes back to the day after the last point left.

        A delete that leaves points in the last days, or only removes
        some series, leaves it where it is; totals and the rollup stay
        exact throughout, and pushing the deleted days again rolls up.
        """
        day = datetime.timedelta(days=1)
        frames = [builders.sample_frames('p%d' % n, start=T0 + n * day)
                  for n in range(4)]
        for batch in frames:
            self.store.push(batch)
        self.frames = sum(frames, [])
        self.assertEqual(query.to_micros(T0 + 3 * day), self._until())
        # NOTE: one project of the last days: others remain there.
        self.store.delete(begin=T0 + 2 * day,
                          filters={'project_id': 'p2'})
        _, self.frames = query.evaluate_delete(query.validate_delete(
            T0 + 2 * day, None, {'project_id': 'p2'}), self.frames)
        self.assertEqual(query.to_micros(T0 + 3 * day), self._until())
        self.assertRollupMatchesPoints()
        self.assertTotalsMatchOracle()
        self.store.delete(begin=T0 + 2 * day)
        self.frames = frames[0] + frames[1]
        self.assertEqual(query.to_micros(T0 + 2 * day), self._until())
        self.assertRollupMatchesPoints()
        self.assertTotalsMatchOracle()
        self.store.push(frames[2])
        self.store.push(frames[3])
        self.frames = sum(frames, [])
        self.assertEqual(query.to_micros(T0 + 3 * day), self._until())
        self.assertRollupMatchesPoints()
        self.assertTotalsMatchOracle()

    def test_rollup_delete_beyond_64_bits(self):
        """Deleting points whose sums pass 2**63 keeps the rollup exact."""
        self._push_random(10)
        # NOTE: 10,000 points of 10**15 - 1E-12 in one series and day:
        # their integer parts sum past 2**63, so SQLite's sum() overflows
        # both when they are read and when they are deleted.
        start = T0 + 2 * 24 * HOUR
        frames = builders.money_frames('p', start=start, count=10000)
        self.store.push(frames)
        window = dict(begin=T0, end=T0 + 4 * 24 * HOUR)
        self.assertEqual(
            query.evaluate_total(query.validate_total(**window),
                                 self.frames + frames),
            self.store.total(**window))
        self.store.delete(begin=start, end=start + 4 * HOUR,
                          filters={'project_id': 'p'})
        self.assertRollupMatchesPoints()
        self.assertEqual(
            query.evaluate_total(query.validate_total(**window),
                                 self.frames),
            self.store.total(**window))

    def test_roll_up_splits_sums_as_the_client_does(self):
        """A day rolled up in the database has the client's limbs.

        Each roll-up's share keeps ``0 <= small < 10**9`` and ``0 <= lo <
        10**12`` (what bounds a row's growth, see :mod:`rollup`), negative
        sums included.
        """
        self._push_in_order(2)
        self._push_day(3)
        self.assertRollupMatchesPoints()
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(models.daily)).all()
        self.assertNotEqual([], rows)
        for row in rows:
            for field in ('qty', 'price'):
                limbs = tuple(row._mapping[field + member]
                              for member in ('_big', '_small', '_lo'))
                self.assertEqual(rollup.limbs(rollup.units(*limbs)), limbs)

    def test_roll_up_of_a_day_beyond_64_bits(self):
        """A day whose sums pass 2**63 rolls up exactly, through the client.

        SQLite and PostgreSQL sum a day into the rollup in one statement,
        which overflows here: the statement is undone, and the day's sums
        go through the client. The label sums of the day are built too.
        """
        day = 24 * HOUR
        frames = builders.money_frames('p', start=T0 + day, count=10000)
        frames += builders.money_frames('q', start=T0 + day + 5 * HOUR,
                                        count=3)
        self.store.push(frames)
        logged = self.useFixture(fixtures.FakeLogger(
            name=storage.__name__, level=logging.DEBUG))
        later = dataframe.DataFrame(T0 + 2 * day, T0 + 2 * day + HOUR)
        later.add_point(dataframe.DataPoint(
            'u', decimal.Decimal(1), decimal.Decimal(1),
            {'project_id': 'p'}, {}), 'cpu')
        self.store.push([later])
        self.frames = frames + [later]
        self.assertEqual(query.to_micros(T0 + 2 * day), self._until())
        self.assertRollupMatchesPoints()
        self.assertTotalsMatchOracle()
        window = dict(begin=T0 + day, end=T0 + 2 * day)
        self.assertEqual(
            query.evaluate_total(query.validate_total(
                groupby=['project_id'], **window), self.frames),
            self.store.total(groupby=['project_id'], **window))
        if self.store.engine.dialect.name in rollup.SUMS_IN_DATABASE:
            self.assertIn('rolled up through the client', logged.output)

    def test_rollup_unfiltered_delete_beyond_64_bits(self):
        """A delete without filters whose day sums pass 2**63 stays exact.

        SQLite and PostgreSQL take the sums out of the rollup in one
        statement, which overflows here (a hundred times the sum of the
        points' hundreds): the statement is undone, and the sums go
        through the client.
        """
        self._push_random(10)
        start = T0 + 2 * 24 * HOUR
        frames = builders.money_frames('p', start=start, count=10000)
        later = dataframe.DataFrame(T0 + 3 * 24 * HOUR,
                                    T0 + 3 * 24 * HOUR + HOUR)
        later.add_point(dataframe.DataPoint(
            'u', decimal.Decimal(1), decimal.Decimal(1), {}, {}), 'cpu')
        self.store.push(frames)
        self.store.push([later])
        self.assertEqual(query.to_micros(T0 + 3 * 24 * HOUR), self._until())
        logged = self.useFixture(fixtures.FakeLogger(
            name=storage.__name__, level=logging.DEBUG))
        self.store.delete(begin=start, end=start + 4 * HOUR)
        self.frames.append(later)
        self.frames = [frame for frame in self.frames
                       if not start <= frame.start < start + 4 * HOUR]
        self.assertRollupMatchesPoints()
        self.assertTotalsMatchOracle()
        if self.store.engine.dialect.name in ('sqlite', 'postgresql'):
            self.assertIn('overflow 64 bits', logged.output)


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class SQLiteRollupTest(sql_provision.SQLiteURLMixin, _RollupMixin,
                       testtools.TestCase):
    """The daily rollup on SQLite."""


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class PostgreSQLRollupTest(sql_provision.ServerURLMixin, _RollupMixin,
                           testtools.TestCase):
    """The daily rollup on PostgreSQL."""

    url_variable = 'CLOUDKITTY_TEST_POSTGRESQL_URL'


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class MariaDBRollupTest(sql_provision.ServerURLMixin, _RollupMixin,
                        testtools.TestCase):
    """The daily rollup on MariaDB."""

    url_variable = 'CLOUDKITTY_TEST_MYSQL_URL'
