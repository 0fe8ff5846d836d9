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
"""The storage v2 conformance suite, run by every backend.

A backend's test module holds one small subclass of
:class:`BaseFunctionalStorageTest` per configuration, for example::

    from cloudkitty.tests.storage.v2 import base_functional


    class SQLiteStorageTest(base_functional.BaseFunctionalStorageTest):

        storage_backend = 'sqlalchemy'

        def configure_backend(self, conf):
            path = self.useFixture(fixtures.TempDir()).path
            conf.set_override('connection', 'sqlite:///%s/s.sqlite' % path,
                              group='storage_sqlalchemy')

Import the module, never the class itself (``from ... import
BaseFunctionalStorageTest`` would make the loader collect the abstract base
a second time; it would only skip, but noisily).

The tests are grouped by concern in plain mixins (:class:`PushTests`,
:class:`MoneyTests`, :class:`RetrieveTests`, :class:`TotalTests`,
:class:`DeleteTests`, :class:`BadInputTests`, :class:`ConcurrencyTests`,
:class:`RetentionTests`, :class:`TypedLabelTests`,
:class:`DifferentialTests`); each docstring names the rule of the contract
(``BaseStorage`` in :mod:`cloudkitty.storage.v2`) it checks. Expected values
are either written by hand or computed by the reference oracle,
:func:`cloudkitty.storage.v2.query.evaluate_total` and
:func:`~cloudkitty.storage.v2.query.evaluate_retrieve`, over the very frames
the test pushed.
"""

import concurrent.futures
import datetime
import decimal
import functools
import multiprocessing
import os
import queue
import random
import tempfile
import threading
import time
import uuid

from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools
from testtools import content

from cloudkitty import dataframe
from cloudkitty import storage
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query
from cloudkitty.tests import fixtures as builders

UTC = datetime.timezone.utc
D = decimal.Decimal
HOUR = builders.HOUR
DAY = datetime.timedelta(days=1)
T0 = builders.T0
EVER = builders.EVER
#: Relative tolerance of money sums for backends without exact_decimal.
INEXACT_TOLERANCE = D('1e-9')
#: Set this variable to an integer to run the differential tests with
#: another seed; the seed used is attached to every differential test.
SEED_ENV = 'CLOUDKITTY_TEST_SEED'


def requires(*flags):
    """Skip a test unless the backend's features set every flag.

    The skip reason is ``"<backend> lacks <flag>"``: nobody writes skips by
    hand. An unknown flag name is an AttributeError, not a silent skip.

    :param flags: names of :class:`cloudkitty.storage.v2.Features`
        attributes.
    """
    def decorator(test):
        @functools.wraps(test)
        def wrapper(self, *args, **kwargs):
            for flag in flags:
                if not getattr(self.storage.features, flag):
                    self.skipTest('%s lacks %s' % (self.storage_backend,
                                                   flag))
            return test(self, *args, **kwargs)
        return wrapper
    return decorator


def lacks(flag):
    """Run a test only when the backend's features do *not* set ``flag``.

    For the tests that check that an unsupported call raises
    :class:`~cloudkitty.storage.exceptions.NotSupported`; the skip reason is
    ``"<backend> has <flag>"``.
    """
    def decorator(test):
        @functools.wraps(test)
        def wrapper(self, *args, **kwargs):
            if getattr(self.storage.features, flag):
                self.skipTest('%s has %s' % (self.storage_backend, flag))
            return test(self, *args, **kwargs)
        return wrapper
    return decorator


def requires_value_length(length):
    """Skip a test unless the backend keeps values of ``length`` characters.

    Reads ``features.max_value_length`` (None: no limit).
    """
    def decorator(test):
        @functools.wraps(test)
        def wrapper(self, *args, **kwargs):
            limit = self.storage.features.max_value_length
            if limit is not None and limit < length:
                self.skipTest('%s lacks max_value_length >= %d'
                              % (self.storage_backend, length))
            return test(self, *args, **kwargs)
        return wrapper
    return decorator


def comparable(value):
    """A label value as a str that compares by type and value.

    A str stays itself; any other value becomes ``'\x00<type>:<repr>'``
    (no stored str holds a NUL), so that ``1``, ``1.0``, ``True`` and
    ``'1'`` differ and rows of mixed types still sort.
    """
    if type(value) is str:
        return value
    return '\x00%s:%r' % (type(value).__name__, value)


def requires_magnitude(exponent):
    """Skip a test unless the backend keeps magnitudes below 10**exponent.

    Reads ``features.max_magnitude``.
    """
    def decorator(test):
        @functools.wraps(test)
        def wrapper(self, *args, **kwargs):
            if self.storage.features.max_magnitude < 10 ** exponent:
                self.skipTest('%s lacks max_magnitude >= 10**%d'
                              % (self.storage_backend, exponent))
            return test(self, *args, **kwargs)
        return wrapper
    return decorator


def rows(dataframes):
    """Flatten DataFrames into comparable tuples, in the order given.

    :returns: a list of ``(start, end, type, unit, qty, price, groupby
        items, metadata items)``, label values passed through
        :func:`comparable`; sort it to compare multisets.
    """
    return [(frame.start, frame.end, type_, point.unit, point.qty,
             point.price,
             tuple(sorted((k, comparable(v))
                          for k, v in point.groupby.items())),
             tuple(sorted((k, comparable(v))
                          for k, v in point.metadata.items())))
            for frame in dataframes for type_, point in frame.iterpoints()]


def show(value):
    """Return a repr of a call argument that shows the points of frames."""
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(item, dataframe.DataFrame) for item in value):
        return repr(rows(value))
    return repr(value)


def expect(begin, end, qty, rate, **groups):
    """Build one expected total() result; ``groups`` are groupby values."""
    result = {'begin': begin, 'end': end, 'qty': D(qty), 'rate': D(rate)}
    result.update(groups)
    return result


def month_window():
    """Return the default window, the current UTC month."""
    return query.default_window()


# Push ----------------------------------------------------------------------

class PushTests:
    """push(): every point kept and counted, whatever the order."""

    def test_push_round_trip(self):
        """Rule 4: each point comes back equal to what was pushed."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    def test_identical_points_in_one_frame_are_two_points(self):
        """Rule 7: two identical points in one frame are two points."""
        point = builders.make_point(self.project_id, 3, D('1.5'))
        self.push([builders.make_frame(T0, [('cpu', point), ('cpu', point)])])
        result = self.retrieve(begin=T0, end=T0 + HOUR)
        self.assertEqual(2, result['total'])
        self.assertEqual(2, len(rows(result['dataframes'])))
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + HOUR, 6, 3)]},
            self.totals(begin=T0, end=T0 + HOUR))

    def test_same_frame_pushed_twice_is_counted_twice(self):
        """Rule 7: pushing the same frame twice counts its points twice."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.push(frames)
        self.assertEqual(sorted(rows(frames) * 2), self.snapshot())
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + 3 * HOUR, 72, D('7.06'))]},
            self.totals(begin=T0, end=T0 + 3 * HOUR))

    def test_backfill_older_frames_after_newer(self):
        """Rule 7: frames may arrive in any time order (backfill)."""
        frames = builders.sample_frames(self.project_id)
        for frame in reversed(frames):
            self.push([frame])
        self.assertEqual(sorted(rows(frames)), self.snapshot())
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR)
        self.assertEqual([(f.start, f.end) for f in frames],
                         [(f.start, f.end) for f in result['dataframes']])

    def test_push_unordered_frames_in_one_call(self):
        """Rule 7: one push may hold frames in any time order."""
        frames = builders.calendar_frames(self.project_id)
        self.push(frames[3:] + frames[:3])
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    def test_push_empty_list(self):
        """Rule 7: pushing no frame (or an empty frame) stores nothing."""
        self.push([])
        self.push([dataframe.DataFrame(T0, T0 + HOUR)])
        self.assertEqual([], self.snapshot())

    def test_push_non_utc_frame(self):
        """Rule 1: a frame built in another time zone is stored in UTC."""
        tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
        start = datetime.datetime(2021, 3, 10, 5, 30, tzinfo=tz)
        self.push([builders.make_frame(start, [
            ('cpu', builders.make_point(self.project_id))])])
        result = self.retrieve(begin=T0, end=T0 + HOUR)
        self.assertEqual([(T0, T0 + HOUR)], [
            (f.start, f.end) for f in result['dataframes']])
        self.assertAwareUTC(result['dataframes'][0].start)

    @requires('exact_decimal')
    def test_money_extremes_round_trip(self):
        """Rule 8: qty and price at the edges of the range round-trip."""
        points = [('cpu', builders.make_point(self.project_id, value, -value,
                                              metadata={'i': str(i)}))
                  for i, value in enumerate(builders.MONEY_EXTREMES)]
        frames = [builders.make_frame(T0, points)]
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())
        self.assertOracle(frames, begin=T0, end=T0 + HOUR)
        self.assertOracle(frames, begin=T0, end=T0 + HOUR, groupby=['i'])

    def test_money_sum_beyond_28_digits(self):
        """Rule 8: a sum needing 30 significant digits is exact."""
        self.push(builders.money_frames(self.project_id))
        # NOTE: computed in integers of 1E-12: 200 * MAX + 201 * TINY.
        max_units = 10 ** 27 - 1
        qty = D(200 * max_units + 201).scaleb(-12, context=money.CONTEXT)
        rate = D(-200 * max_units + 201).scaleb(-12, context=money.CONTEXT)
        self.assertEqual(D('200000000000000000.000000000001'), qty)
        result = self.totals(begin=T0, end=T0 + 4 * HOUR)['results']
        self.assertEqual(1, len(result))
        self.assertMoneyEqual(qty, result[0]['qty'])
        self.assertMoneyEqual(rate, result[0]['rate'])

    def test_money_sum_beyond_28_digits_over_days(self):
        """Rule 8: 30-digit sums stay exact over whole days and edges."""
        # NOTE: one set of frames inside a whole day, one straddling the
        # window's start and one its end, so that backends which keep
        # per-day sums read each of them.
        frames = (builders.money_frames(self.project_id, start=T0 + DAY)
                  + builders.money_frames(self.project_id,
                                          start=T0 + DAY - 2 * HOUR)
                  + builders.money_frames(self.project_id,
                                          start=T0 + 3 * DAY - 2 * HOUR))
        self.push(frames)
        for begin, end in ((T0, T0 + 4 * DAY), (T0 + DAY - HOUR,
                                                T0 + 3 * DAY - HOUR)):
            self.assertOracle(frames, begin=begin, end=end)
            self.assertOracle(frames, begin=begin, end=end,
                              groupby=['time-d'])
        max_units = 10 ** 27 - 1
        qty = D(600 * max_units + 603).scaleb(-12, context=money.CONTEXT)
        result = self.totals(begin=T0, end=T0 + 4 * DAY)['results']
        self.assertMoneyEqual(qty, result[0]['qty'])

    def test_money_sum_overflowing_64_bits(self):
        """Rule 8: sums whose integer parts pass 2**63 stay exact."""
        self.push(builders.money_frames(self.project_id, count=10000))
        # NOTE: 10000 * (10**15 - 1) > 2**63 - 1: a 64-bit sum of integer
        # parts overflows, in both signs.
        max_units = 10 ** 27 - 1
        qty = D(10000 * max_units + 10001).scaleb(-12, context=money.CONTEXT)
        rate = D(-10000 * max_units + 10001).scaleb(-12,
                                                    context=money.CONTEXT)
        self.assertEqual(D('10000000000000000000.000000000001'), qty)
        result = self.totals(begin=T0, end=T0 + 4 * HOUR,
                             groupby=['type'])['results']
        self.assertEqual(1, len(result))
        self.assertMoneyEqual(qty, result[0]['qty'])
        self.assertMoneyEqual(rate, result[0]['rate'])

    def test_money_tiny_values_sum(self):
        """Rule 8: many 1E-12 prices sum exactly, beside large ones."""
        points = [('cpu', builders.make_point(
            self.project_id, builders.MONEY_TINY, builders.MONEY_TINY))] * 99
        points.append(('cpu', builders.make_point(
            self.project_id, D('123456789012345'), -builders.MONEY_TINY)))
        self.push([builders.make_frame(T0, points)])
        total = self.totals(begin=T0, end=T0 + HOUR)['results']
        self.assertMoneyEqual(D('123456789012345.000000000099'),
                              total[0]['qty'])
        self.assertMoneyEqual(D('0.000000000098'), total[0]['rate'])

    @requires('exact_decimal')
    def test_money_signs_cancel(self):
        """Rule 8: negative and positive values cancel to an exact zero."""
        values = [D('0.1'), D('0.2'), D('-0.3'), builders.MONEY_MAX,
                  -builders.MONEY_MAX, D('-0.000000000007'),
                  D('0.000000000007')]
        points = [('cpu', builders.make_point(self.project_id, v, v))
                  for v in values]
        self.push([builders.make_frame(T0, points)])
        total = self.totals(begin=T0, end=T0 + HOUR)['results']
        self.assertMoneyEqual(D(0), total[0]['qty'])
        self.assertMoneyEqual(D(0), total[0]['rate'])

    def test_tricky_values_round_trip(self):
        """Rule 3: tricky groupby and metadata values round-trip as data."""
        frames = builders.labelled_frames(self.project_id, 'label',
                                          builders.TRICKY_VALUES,
                                          metadata_key='note')
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    def test_tricky_keys_round_trip(self):
        """Rule 3: tricky label keys round-trip as data."""
        frames = builders.keyed_frames(self.project_id, builders.TRICKY_KEYS)
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    @requires_value_length(1000)
    def test_long_values_round_trip(self):
        """Rule 3: 1000-character values are kept whole."""
        frames = builders.labelled_frames(self.project_id, 'label',
                                          builders.LONG_VALUES,
                                          metadata_key='note')
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())
        for i, value in enumerate(builders.LONG_VALUES):
            self.assertEqual(1, self.retrieve(
                begin=T0, end=T0 + HOUR,
                filters=self.mine(label=value))['total'])
            self.assertEqual(1, self.retrieve(
                begin=T0, end=T0 + HOUR,
                filters=self.mine(note=value))['total'])


# Typed labels ----------------------------------------------------------------

def typed(mapping):
    """A mapping's items as ``(key, type name, repr)``, sorted.

    ``==`` holds between ``1``, ``1.0`` and ``True`` (and ``0.0`` and
    ``-0.0``): comparing these instead tells them apart.
    """
    return sorted((key, type(value).__name__, repr(value))
                  for key, value in mapping.items())


def typed_rows(dataframes):
    """Like :func:`rows`, with typed label items, sorted."""
    return sorted((frame.start, type_, point.qty, typed(point.groupby),
                   typed(point.metadata))
                  for frame in dataframes for type_, point in
                  frame.iterpoints())


#: Label values of every kind, several spelled alike; see rule 3.
TYPED_VALUES = (3, 3.0, '3', True, 1, 1.0, None, 'None', 'True', -0.0,
                0.0, 0, False, 2.5, -7, 10 ** 20, 1e-05, '')


class TypedLabelTests:
    """Groupby and metadata values that are not str (rule 3).

    Values may be str, int, float, bool or None and come back with their
    type; a filter value matches when it equals ``str(value)``; total()
    groups by value *and* type (:func:`cloudkitty.storage.v2.query.
    encode_label`).
    """

    def typed_frames(self, values=TYPED_VALUES, start=T0):
        """One point per value, as groupby ``g`` and metadata ``m``."""
        return [builders.make_frame(start, [
            ('cpu', builders.make_point(self.project_id, i + 1, i + 1,
                                        groupby={'g': value},
                                        metadata={'m': value}))
            for i, value in enumerate(values)])]

    def test_typed_labels_round_trip(self):
        """Rule 3: int, float, bool and None labels keep their type."""
        frames = self.typed_frames()
        self.push(frames)
        result = self.retrieve(begin=T0, end=T0 + HOUR, paginate=False)
        self.assertEqual(typed_rows(frames), typed_rows(result['dataframes']))

    def test_typed_labels_equal_values_stay_apart(self):
        """Rule 3: 1, 1.0, True (and 0.0, -0.0) are other values, always."""
        values = (1, 1.0, True, 0.0, -0.0, 0, False)
        frames = self.typed_frames(values) + self.typed_frames(
            tuple(reversed(values)), start=T0 + HOUR)
        # NOTE: pushed twice, so that a second push meets warm caches.
        self.push(frames[:1])
        self.push(frames[1:])
        self.push(frames[:1])
        result = self.retrieve(begin=T0, end=T0 + 2 * HOUR, paginate=False)
        self.assertEqual(typed_rows(frames + frames[:1]),
                         typed_rows(result['dataframes']))

    def test_typed_labels_group_by_value_and_type(self):
        """Rule 5: total() groups by value and type, typed, in order."""
        values = (3, 3.0, '3', True, 1, None, 'None', '', 3)
        frames = self.typed_frames(values)
        frames[0].add_point(builders.make_point(self.project_id, 100, 100),
                            'cpu')
        self.push(frames)
        window = {'begin': T0, 'end': T0 + HOUR}
        for key in ('g', 'm'):
            result = self.totals(groupby=[key], **window)
            self.assertEqual(
                [('NoneType', 'None', D(6)), ('bool', 'True', D(4)),
                 ('int', '1', D(5)), ('int', '3', D(10)),
                 ('float', '3.0', D(2)), ('str', "''", D(108)),
                 ('str', "'3'", D(3)), ('str', "'None'", D(7))],
                [(type(r[key]).__name__, repr(r[key]), r['qty'])
                 for r in result['results']], key)
            self.assertOracle(frames, groupby=[key], **window)
            self.assertOracle(frames, groupby=['type', key, 'time'],
                              **window)

    def test_typed_labels_filter_by_string_form(self):
        """Rule 3: a filter value matches the values it is str() of."""
        frames = self.typed_frames()
        self.push(frames)
        window = {'begin': T0, 'end': T0 + HOUR}
        cases = {'3': [3, '3'], '3.0': [3.0], 'True': [True, 'True'],
                 'None': [None, 'None'], '1': [1], '1.0': [1.0],
                 '-0.0': [-0.0], '0': [0], '': [''], '1e-05': [1e-05],
                 '100000000000000000000': [10 ** 20], 'true': [],
                 '03': []}
        for text, expected in cases.items():
            for key in ('g', 'm'):
                filters = self.mine(**{key: text})
                found = self.retrieve(filters=filters, paginate=False,
                                      **window)
                self.assertEqual(
                    sorted((type(v).__name__, repr(v)) for v in expected),
                    sorted((type(p.groupby['g']).__name__,
                            repr(p.groupby['g']))
                           for f in found['dataframes']
                           for _, p in f.iterpoints()), (key, text))
                self.assertOracle(frames, filters=filters,
                                  groupby=['g'], **window)
        self.assertOracle(frames, filters=self.mine(g=['3', 'None', 'x']),
                          groupby=['m'], **window)

    @requires('delete_with_filters')
    def test_typed_labels_delete_by_string_form(self):
        """Rule 3: delete(filters=...) matches str(value) too."""
        frames = self.typed_frames()
        self.push(frames)
        self.delete(begin=T0, end=T0 + HOUR, filters=self.mine(g='3'))
        kept = query.evaluate_delete(query.validate_delete(
            begin=T0, end=T0 + HOUR, filters={'g': '3'}), frames)[1]
        self.assertEqual(len(TYPED_VALUES) - 2, sum(map(len, kept)))
        self.assertEqual(typed_rows(kept), typed_rows(self.retrieve(
            begin=T0, end=T0 + HOUR, paginate=False)['dataframes']))

    def test_typed_label_at_max_value_length(self):
        """Rule 3: max_value_length counts a value's str() characters."""
        length = self.storage.features.max_value_length or 1000
        values = (10 ** (length - 1), -10 ** (length - 2), str(10 ** 3))
        frames = self.typed_frames(values)
        self.push(frames)
        window = {'begin': T0, 'end': T0 + HOUR}
        result = self.retrieve(paginate=False, **window)
        self.assertEqual(typed_rows(frames), typed_rows(result['dataframes']))
        self.assertOracle(frames, groupby=['g'], **window)
        self.assertEqual(1, self.retrieve(
            filters=self.mine(m=str(values[1])), **window)['total'])

    def test_typed_label_over_max_value_length_like_str(self):
        """Rule 3: a value whose str() is over the limit fares like a str.

        Both are refused with InvalidQuery, writing nothing, or both kept.
        """
        length = self.storage.features.max_value_length
        if length is None:
            self.skipTest('%s lacks max_value_length'
                          % self.storage_backend)
        outcomes = []
        for value in ('9' * (length + 1), 10 ** length):
            frames = self.typed_frames((value,))
            before = self.snapshot()
            try:
                self.push(frames)
            except exceptions.InvalidQuery as exc:
                self.assertEqual('dataframes', exc.argument)
                self.assertEqual(before, self.snapshot())
                outcomes.append('refused')
                continue
            found = self.retrieve(begin=T0, end=T0 + HOUR, filters=self.mine(
                g=str(value)), paginate=False)
            self.assertEqual(typed_rows(frames),
                             typed_rows(found['dataframes']))
            outcomes.append('kept')
        self.assertEqual(outcomes[0], outcomes[1], outcomes)


# Money ---------------------------------------------------------------------

class MoneyTests:
    """push(): money rounded to 12 fractional digits, ranges, exact sums."""

    def test_money_rounded_half_even(self):
        """Rule 8: more than 12 fractional digits are rounded half-even."""
        points = [('cpu', builders.make_point(
            self.project_id, pushed, pushed.copy_negate(),
            metadata={'i': str(i)}))
            for i, (pushed, _) in enumerate(builders.MONEY_ROUNDED)]
        frames = [builders.make_frame(T0, points)]
        self.push(frames)
        stored = builders.as_stored(frames)
        self.assertEqual(
            [stored_value for _, stored_value in builders.MONEY_ROUNDED],
            [point.qty for _, point in stored[0].iterpoints()])
        self.assertEqual(sorted(rows(stored)), self.snapshot())
        # NOTE: sums are exact over the stored values, not the pushed ones.
        qty = D(0)
        for _, stored_value in builders.MONEY_ROUNDED:
            qty = money.add(qty, stored_value)
        self.assertEqual(D('-5.794913578026'), qty)
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + HOUR, qty, -qty)]},
            self.totals(begin=T0, end=T0 + HOUR))
        self.assertOracle(stored, begin=T0, end=T0 + HOUR, groupby=['i'])

    def test_money_floats_and_decimal_floats(self):
        """Rule 8: floats and Decimal(float) prices are kept, rounded."""
        # NOTE: a Prometheus qty, a price computed as Decimal(float), and
        # prices set after the point was built (not converted at all).
        points = [
            builders.make_point(self.project_id, 0.30000000000000004,
                                D(0.152), metadata={'i': '0'}),
            builders.forge(builders.make_point(
                self.project_id, 2, 1, metadata={'i': '1'}), price=0.1),
            builders.forge(builders.make_point(
                self.project_id, 3, 1, metadata={'i': '2'}),
                qty=D(0.7), price=1.5)]
        self.push([builders.make_frame(T0, [('cpu', p) for p in points])])
        self.assertEqual(
            [(D('0.3'), D('0.152')), (D('0.7'), D('1.5')), (D(2), D('0.1'))],
            [(row[4], row[5]) for row in self.snapshot()])
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + HOUR, 3, D('1.752'))]},
            self.totals(begin=T0, end=T0 + HOUR))

    @requires('exact_decimal')
    def test_money_at_the_backend_bound(self):
        """Rule 8: the largest values below max_magnitude round-trip."""
        top = money.CONTEXT.subtract(D(self.storage.features.max_magnitude),
                                     builders.MONEY_TINY)
        frames = [builders.make_frame(T0, [
            ('cpu', builders.make_point(self.project_id, top,
                                        top.copy_negate())),
            ('cpu', builders.make_point(self.project_id, top,
                                        builders.MONEY_TINY))])]
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + HOUR, money.add(top, top), money.add(
                top.copy_negate(), builders.MONEY_TINY))]},
            self.totals(begin=T0, end=T0 + HOUR))

    @requires_magnitude(20)
    def test_money_huge_sums_exact(self):
        """Rule 8: values near 10**20 sum exactly, over days and edges."""
        huge = builders.MONEY_HUGE
        # NOTE: as in test_money_sum_beyond_28_digits_over_days: frames
        # inside a whole day, straddling the window's start and its end.
        frames = []
        for start in (T0 + DAY, T0 + DAY - 2 * HOUR, T0 + 3 * DAY - 2 * HOUR):
            frames += builders.money_frames(self.project_id, start=start,
                                            count=100, value=huge)
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())
        for begin, end in ((T0, T0 + 4 * DAY), (T0 + DAY - HOUR,
                                                T0 + 3 * DAY - HOUR)):
            self.assertOracle(frames, begin=begin, end=end)
            self.assertOracle(frames, begin=begin, end=end,
                              groupby=['time-d'])
        # NOTE: 300 * (10**20 - 10**-12) + 303 * 10**-12, in units.
        units = 300 * (10 ** 32 - 1) + 303
        result = self.totals(begin=T0, end=T0 + 4 * DAY)['results']
        self.assertEqual(
            D('30000000000000000000000.000000000003'),
            money.from_units(units))
        self.assertMoneyEqual(money.from_units(units), result[0]['qty'])
        self.assertMoneyEqual(money.from_units(-300 * (10 ** 32 - 1) + 303),
                              result[0]['rate'])
        if self.storage.features.custom_fields:
            self.assertOracle(
                frames, begin=T0, end=T0 + 4 * DAY, groupby=['time-d'],
                custom_fields='min(qty) AS a, max(qty) AS b, '
                              'min(price) AS c, max(price) AS d, '
                              'sum(price) AS e, avg(qty) AS f')
        self.delete(begin=T0 + DAY - HOUR, end=T0 + 2 * DAY)
        kept = [f for f in frames
                if not T0 + DAY - HOUR <= f.start < T0 + 2 * DAY]
        self.assertOracle(kept, begin=T0, end=T0 + 4 * DAY,
                          groupby=['time-d'])

    def test_money_not_finite_writes_nothing(self):
        """Rule 8: NaN and infinities are refused, nothing is written."""
        self.push(builders.sample_frames(self.project_id, T0 + DAY))
        good = builders.make_point(self.project_id, 1, 1)
        for value in builders.MONEY_NOT_FINITE:
            for field in ('qty', 'price'):
                bad = builders.forge(good, **{field: value})
                frames = [builders.make_frame(T0 - DAY, [('cpu', good)]),
                          builders.make_frame(T0, [('cpu', good),
                                                   ('cpu', bad)])]
                self.assertInvalid(field, self.storage.push, frames,
                                   scope_id=self.scope_id)


# Retrieve ------------------------------------------------------------------

class RetrieveTests:
    """retrieve(): the window, filters, order and pages."""

    def test_retrieve_default_window_is_current_month(self):
        """Rule 2: begin/end default to this UTC month and the next."""
        begin, end = month_window()
        self.push(builders.month_frames(self.project_id, begin, end))
        result = self.retrieve()
        self.assertMonthUnchanged(begin, end)
        self.assertEqual(['first', 'second_day', 'last_hour'],
                         self.edges(result))

    def test_retrieve_default_end(self):
        """Rule 2: with only begin given, end defaults to next month."""
        begin, end = month_window()
        self.push(builders.month_frames(self.project_id, begin, end))
        result = self.retrieve(begin=begin + DAY)
        self.assertMonthUnchanged(begin, end)
        self.assertEqual(['second_day', 'last_hour'], self.edges(result))

    def test_retrieve_default_begin(self):
        """Rule 2: with only end given, begin defaults to this month."""
        begin, end = month_window()
        self.push(builders.month_frames(self.project_id, begin, end))
        result = self.retrieve(end=begin + DAY)
        self.assertMonthUnchanged(begin, end)
        self.assertEqual(['first'], self.edges(result))

    def test_retrieve_end_before_default_begin(self):
        """Rule 2: an end before this month, alone, is an empty window."""
        self.push(builders.sample_frames(self.project_id))
        self.assertEqual(0, self.storage.retrieve(end=T0)['total'])

    def test_retrieve_window_edges(self):
        """Rule 2: start == begin is in, start == end is out."""
        self.push(builders.edge_frames(self.project_id, T0, T0 + DAY))
        result = self.retrieve(begin=T0, end=T0 + DAY)
        self.assertEqual(['at_begin', 'straddle_end'], self.edges(result))
        self.assertEqual(2, result['total'])

    def test_retrieve_one_bound_with_old_data(self):
        """Rule 2: begin alone keeps everything from begin on."""
        self.push(builders.edge_frames(self.project_id, T0, T0 + DAY))
        result = self.retrieve(begin=T0)
        self.assertEqual(['at_begin', 'straddle_end', 'at_end'],
                         self.edges(result))

    def test_retrieve_returns_aware_utc(self):
        """Rule 1: returned datetimes are aware UTC."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR)
        self.assertEqual(3, len(result['dataframes']))
        for frame in result['dataframes']:
            self.assertAwareUTC(frame.start)
            self.assertAwareUTC(frame.end)

    def test_retrieve_naive_datetimes_mean_utc(self):
        """Rule 1: naive begin/end mean UTC."""
        self.push(builders.edge_frames(self.project_id, T0, T0 + DAY))
        naive = self.retrieve(begin=T0.replace(tzinfo=None),
                              end=(T0 + DAY).replace(tzinfo=None))
        self.assertEqual(['at_begin', 'straddle_end'], self.edges(naive))

    def test_retrieve_aware_non_utc_bounds(self):
        """Rule 1: aware begin/end in other zones are converted to UTC."""
        self.push(builders.edge_frames(self.project_id, T0, T0 + DAY))
        east = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
        west = datetime.timezone(-datetime.timedelta(hours=8))
        result = self.retrieve(begin=T0.astimezone(east),
                               end=(T0 + DAY).astimezone(west))
        self.assertEqual(['at_begin', 'straddle_end'], self.edges(result))
        # NOTE: the same wall-clock times in +05:30 are 5h30 earlier in
        # UTC, which takes in the frames before T0 and drops the last one.
        shifted = self.retrieve(begin=T0.replace(tzinfo=east),
                                end=(T0 + DAY).replace(tzinfo=east))
        self.assertEqual(['before', 'straddle_begin', 'at_begin'],
                         self.edges(shifted))

    def test_filter_single_value(self):
        """Rule 3: a filter {key: value} keeps the points with that value."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR,
                               filters=self.mine(flavor='m1.small'))
        self.assertEqual(2, result['total'])
        self.assertEqual({'m1.small'}, {
            point.groupby['flavor'] for frame in result['dataframes']
            for _, point in frame.iterpoints()})

    def test_filter_list_is_or(self):
        """Rule 3: OR inside a list of filter values."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(
            begin=T0, end=T0 + 3 * HOUR,
            filters=self.mine(flavor=['m1.small', 'm1.large', 'absent']))
        self.assertEqual(4, result['total'])

    def test_filters_and_across_keys(self):
        """Rule 3: AND across filter keys."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR,
                               filters=self.mine(flavor='m1.large', az='nova',
                                                 type='cpu'))
        self.assertEqual(2, result['total'])
        self.assertEqual(0, self.retrieve(
            begin=T0, end=T0 + 3 * HOUR,
            filters=self.mine(flavor='m1.small', disk='raw'))['total'])

    def test_filter_on_metadata(self):
        """Rule 3: a filter key may be a metadata key."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR,
                               filters=self.mine(disk=['raw', 'qcow2']))
        self.assertEqual(2, result['total'])
        self.assertEqual({'image'}, {
            type_ for frame in result['dataframes']
            for type_, _ in frame.iterpoints()})

    def test_filter_groupby_wins_over_metadata(self):
        """Rule 3: a key in both groupby and metadata matches the groupby."""
        point = builders.make_point(self.project_id, groupby={'k': 'gb'},
                                    metadata={'k': 'md'})
        self.push([builders.make_frame(T0, [('cpu', point)])])
        window = {'begin': T0, 'end': T0 + HOUR}
        self.assertEqual(1, self.retrieve(
            filters=self.mine(k='gb'), **window)['total'])
        self.assertEqual(0, self.retrieve(
            filters=self.mine(k='md'), **window)['total'])

    def test_filter_on_type(self):
        """Rule 3: the filter key ``type`` is the metric type."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR,
                               filters=self.mine(type='image'))
        self.assertEqual(2, result['total'])

    def test_filter_missing_key_does_not_match(self):
        """Rule 3: a point lacking the key never matches, not even ''."""
        self.push(builders.sample_frames(self.project_id))
        window = {'begin': T0, 'end': T0 + 3 * HOUR}
        self.assertEqual(0, self.retrieve(
            filters=self.mine(flavor=''), **window)['total'])
        self.assertEqual(0, self.retrieve(
            filters=self.mine(nokey=['', 'x']), **window)['total'])

    def test_filter_tricky_values_match_exactly(self):
        """Rule 3: tricky filter values match only themselves."""
        values = builders.TRICKY_VALUES
        self.push(builders.labelled_frames(self.project_id, 'label', values,
                                           metadata_key='note'))
        window = {'begin': T0, 'end': T0 + HOUR}
        for i, value in enumerate(values):
            for key in ('label', 'note'):
                result = self.retrieve(filters=self.mine(**{key: value}),
                                       **window)
                self.assertEqual([i + 1], [
                    point.qty for frame in result['dataframes']
                    for _, point in frame.iterpoints()],
                    'filter %s=%r' % (key, value))

    def test_filter_tricky_value_lists(self):
        """Rule 3: OR over tricky values selects exactly those values."""
        values = builders.TRICKY_VALUES
        self.push(builders.labelled_frames(self.project_id, 'label', values))
        wanted = ['a%', "o'brien", 'space ', '\U0001f600 emoji', '']
        result = self.retrieve(begin=T0, end=T0 + HOUR,
                               filters=self.mine(label=wanted))
        self.assertEqual(sorted(wanted), sorted(
            point.groupby['label'] for frame in result['dataframes']
            for _, point in frame.iterpoints()))

    def test_filter_tricky_keys(self):
        """Rule 3: tricky keys work as filter keys."""
        keys = builders.TRICKY_KEYS
        self.push(builders.keyed_frames(self.project_id, keys))
        window = {'begin': T0, 'end': T0 + HOUR}
        for i, key in enumerate(keys):
            result = self.retrieve(filters=self.mine(**{key: 'g%d' % i}),
                                   **window)
            self.assertEqual(1, result['total'], 'filter key %r' % key)
            self.assertEqual(0, self.retrieve(
                filters=self.mine(**{key: 'g%d' % (i + 1)}),
                **window)['total'], 'filter key %r' % key)

    def test_metric_types_str(self):
        """Rule 3: metric_types may be one str."""
        self.push(builders.sample_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + 3 * HOUR,
                               filters=self.mine(), metric_types='cpu')
        self.assertEqual(4, result['total'])

    def test_metric_types_list(self):
        """Rule 3: metric_types may be a list of str (OR)."""
        self.push(builders.sample_frames(self.project_id))
        window = {'begin': T0, 'end': T0 + 3 * HOUR,
                  'filters': self.mine()}
        self.assertEqual(6, self.retrieve(
            metric_types=['cpu', 'image'], **window)['total'])
        self.assertEqual(2, self.retrieve(
            metric_types=['image', 'absent'], **window)['total'])

    def test_retrieve_nothing(self):
        """Rule 4: no matching point gives total 0 and no dataframe."""
        self.push(builders.sample_frames(self.project_id))
        self.assertEqual({'total': 0, 'dataframes': []}, self.retrieve(
            begin=T0 + 3 * HOUR, end=T0 + DAY))

    def test_retrieve_one_dataframe_per_period(self):
        """Rule 4: one DataFrame per distinct (start, end), ascending."""
        frames = [
            builders.make_frame(T0 + HOUR, [
                ('cpu', builders.make_point(self.project_id, 1))]),
            builders.make_frame(T0, [
                ('cpu', builders.make_point(self.project_id, 2))],
                period=2 * HOUR),
            builders.make_frame(T0, [
                ('cpu', builders.make_point(self.project_id, 4))]),
        ]
        self.push(frames)
        self.push(frames[2:])
        result = self.retrieve(begin=T0, end=T0 + DAY)
        self.assertEqual(4, result['total'])
        self.assertEqual(
            [(T0, T0 + HOUR, [4, 4]), (T0, T0 + 2 * HOUR, [2]),
             (T0 + HOUR, T0 + 2 * HOUR, [1])],
            [(f.start, f.end, [p.qty for _, p in f.iterpoints()])
             for f in result['dataframes']])

    def test_retrieve_order(self):
        """Rule 4: points come by frame start, then type, stably."""
        self.push(builders.distinct_frames(self.project_id))
        window = {'begin': T0, 'end': T0 + DAY, 'filters': self.mine(),
                  'paginate': False}
        first = rows(self.storage.retrieve(**window)['dataframes'])
        self.assertEqual(36, len(first))
        keys = [(row[0], row[2]) for row in first]
        self.assertEqual(sorted(keys), keys)
        self.assertEqual(first,
                         rows(self.storage.retrieve(**window)['dataframes']))

    def test_retrieve_pages_partition(self):
        """Rule 4: consecutive pages partition the result, in order."""
        self.push(builders.distinct_frames(self.project_id))
        window = {'begin': T0, 'end': T0 + DAY, 'filters': self.mine()}
        everything = rows(self.storage.retrieve(paginate=False,
                                                **window)['dataframes'])
        for limit in (1, 2, 5, 7, 36, 100):
            pages = self.walk_retrieve(limit, **window)
            self.assertEqual(everything, [r for page in pages for r in page],
                             'limit %d' % limit)
            self.assertEqual(-(-36 // limit), len(pages))

    def test_retrieve_pages_with_identical_points(self):
        """Rule 4: pages over identical points neither lose nor repeat."""
        point = builders.make_point(self.project_id, 1, 1)
        frames = [builders.make_frame(T0 + i * HOUR, [('cpu', point)] * 3
                                      + [('image', point)] * 2)
                  for i in range(3)]
        self.push(frames)
        self.push(frames[:1])
        window = {'begin': T0, 'end': T0 + DAY, 'filters': self.mine()}
        pages = self.walk_retrieve(4, **window)
        self.assertEqual(sorted(rows(frames + frames[:1])),
                         sorted(r for page in pages for r in page))

    def test_retrieve_total_counts_every_page(self):
        """Rule 4: total counts all matching points, not the page."""
        self.push(builders.distinct_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + DAY, offset=3, limit=4)
        self.assertEqual(36, result['total'])
        self.assertEqual(4, len(rows(result['dataframes'])))

    def test_retrieve_page_past_the_end(self):
        """Rule 4: an offset past the last point gives an empty page."""
        self.push(builders.distinct_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + DAY, offset=40, limit=5)
        self.assertEqual({'total': 36, 'dataframes': []}, result)

    def test_retrieve_unpaginated_ignores_offset_and_limit(self):
        """Rule 4: paginate=False returns every point."""
        self.push(builders.distinct_frames(self.project_id))
        result = self.retrieve(begin=T0, end=T0 + DAY, offset=5, limit=1,
                               paginate=False)
        self.assertEqual(36, result['total'])
        self.assertEqual(36, len(rows(result['dataframes'])))


# Streaming -----------------------------------------------------------------

class StreamTests:
    """iter_points(): every point, in retrieve()'s order, batch by batch."""

    def stream(self, **kwargs):
        """Return iter_points() of this test's projects as rows."""
        kwargs.setdefault('filters', {'project_id': self._project_ids})
        return [(start, end, type_, point.unit, point.qty, point.price,
                 tuple(sorted(point.groupby.items())),
                 tuple(sorted(point.metadata.items())))
                for start, end, type_, point
                in self.storage.iter_points(**kwargs)]

    def test_stream_equals_retrieve(self):
        """Across batches, the same points in the same order as retrieve."""
        frames = builders.sample_frames(self.project_id)
        frames += builders.sample_frames(self.project_id, start=T0 + DAY)
        self.push(frames)
        window = dict(begin=T0, end=T0 + 2 * DAY)
        expected = rows(self.retrieve(paginate=False, **window)['dataframes'])
        for batch_size in (1, 2, 5, 1000):
            self.assertEqual(expected, self.stream(batch_size=batch_size,
                                                   **window), batch_size)

    def test_stream_filters_and_types(self):
        """Filters and metric types select as they do for retrieve."""
        self.push(builders.sample_frames(self.project_id))
        window = dict(begin=T0, end=T0 + DAY)
        for kwargs in ({'metric_types': 'image'},
                       {'filters': self.mine(flavor='m1.small')},
                       {'filters': self.mine(az=['nova', 'other']),
                        'metric_types': ['cpu']}):
            expected = rows(self.retrieve(paginate=False, **window,
                                          **kwargs)['dataframes'])
            self.assertEqual(expected, self.stream(batch_size=2, **window,
                                                   **kwargs), kwargs)

    def test_stream_stopped_early(self):
        """An iteration closed early releases the store: pushes go on."""
        self.push(builders.sample_frames(self.project_id))
        points = self.storage.iter_points(begin=T0, end=T0 + DAY,
                                          batch_size=1)
        next(points)
        points.close()
        self.push(builders.sample_frames(self.project_id, start=T0 + DAY))
        self.assertEqual(12, len(self.snapshot()))

    def test_stream_bad_batch_size(self):
        """batch_size must be an int >= 1; a reversed window is empty."""
        for batch_size in (0, -1, 'x', 1.5, True):
            self.assertRaises(exceptions.InvalidQuery, lambda: next(iter(
                self.storage.iter_points(begin=T0, end=T0 + DAY,
                                         batch_size=batch_size))))
        self.push(builders.sample_frames(self.project_id))
        self.assertEqual([], list(
            self.storage.iter_points(begin=T0 + DAY, end=T0)))


# Total ---------------------------------------------------------------------

class TotalTests:
    """total(): sums, groups, time buckets, order, pages, custom fields."""

    def test_total_without_groupby(self):
        """Rule 5: one result holding the sums over the query window."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        window = {'begin': T0, 'end': T0 + 3 * HOUR}
        expected = {'total': 1, 'results': [
            expect(T0, T0 + 3 * HOUR, 36, D('3.53'))]}
        self.assertTotalEqual(expected, self.totals(**window))
        self.assertOracle(frames, **window)

    def test_total_groupby_type(self):
        """Rule 5: groupby type sums per metric type."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        window = {'begin': T0, 'end': T0 + 3 * HOUR, 'groupby': ['type']}
        end = T0 + 3 * HOUR
        self.assertTotalEqual({'total': 2, 'results': [
            expect(T0, end, 6, D('3.5'), type='cpu'),
            expect(T0, end, 30, D('0.03'), type='image')]},
            self.totals(**window))
        self.assertOracle(frames, **window)

    def test_total_groupby_groupby_key(self):
        """Rule 5: a missing groupby key groups as ''."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        window = {'begin': T0, 'end': T0 + 3 * HOUR, 'groupby': ['flavor']}
        end = T0 + 3 * HOUR
        self.assertTotalEqual({'total': 3, 'results': [
            expect(T0, end, 30, D('0.03'), flavor=''),
            expect(T0, end, 4, D('2.5'), flavor='m1.large'),
            expect(T0, end, 2, 1, flavor='m1.small')]},
            self.totals(**window))
        self.assertOracle(frames, **window)

    def test_total_groupby_metadata_key(self):
        """Rule 5: groupby may name a metadata key."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        window = {'begin': T0, 'end': T0 + 3 * HOUR, 'groupby': ['az']}
        end = T0 + 3 * HOUR
        self.assertTotalEqual({'total': 3, 'results': [
            expect(T0, end, 20, D('0.02'), az=''),
            expect(T0, end, 15, D('3.01'), az='nova'),
            expect(T0, end, 1, D('0.5'), az='other')]},
            self.totals(**window))
        self.assertOracle(frames, **window)

    def test_total_missing_key_groups_with_explicit_empty(self):
        """Rule 5: lacking a key and holding '' make one group."""
        points = [('cpu', builders.make_point(self.project_id, 1, 1)),
                  ('cpu', builders.make_point(self.project_id, 2, 2,
                                              groupby={'flavor': ''})),
                  ('cpu', builders.make_point(self.project_id, 4, 4,
                                              groupby={'flavor': 'x'}))]
        frames = [builders.make_frame(T0, points)]
        self.push(frames)
        window = {'begin': T0, 'end': T0 + HOUR, 'groupby': ['flavor']}
        self.assertTotalEqual({'total': 2, 'results': [
            expect(T0, T0 + HOUR, 3, 3, flavor=''),
            expect(T0, T0 + HOUR, 4, 4, flavor='x')]},
            self.totals(**window))
        self.assertOracle(frames, **window)

    def test_total_groupby_wins_over_metadata(self):
        """Rule 3: a key in both groupby and metadata groups by groupby."""
        point = builders.make_point(self.project_id, groupby={'k': 'gb'},
                                    metadata={'k': 'md'})
        self.push([builders.make_frame(T0, [('cpu', point)])])
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + HOUR, 1, 1, k='gb')]},
            self.totals(begin=T0, end=T0 + HOUR, groupby=['k']))

    def test_total_filters_and_metric_types(self):
        """Rule 3: total() honours filters and metric_types."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        end = T0 + 3 * HOUR
        cases = [
            ({'filters': self.mine(flavor='m1.small')}, 2, 1),
            ({'filters': self.mine(flavor=['m1.small', 'm1.large'])},
             6, D('3.5')),
            ({'filters': self.mine(az='nova', type='cpu')}, 5, 3),
            ({'filters': self.mine(), 'metric_types': 'image'}, 30,
             D('0.03')),
            ({'filters': self.mine(az='nova'), 'metric_types': ['image']},
             10, D('0.01')),
        ]
        for kwargs, qty, rate in cases:
            self.assertTotalEqual(
                {'total': 1, 'results': [expect(T0, end, qty, rate)]},
                self.storage.total(begin=T0, end=end, **kwargs))
            self.assertOracle(frames, begin=T0, end=end, **kwargs)

    def test_total_nothing(self):
        """Rule 5: no matching point gives {'total': 0, 'results': []}."""
        self.push(builders.sample_frames(self.project_id))
        for groupby in (None, ['type'], ['flavor', 'az']):
            self.assertEqual({'total': 0, 'results': []}, self.totals(
                begin=T0 + 3 * HOUR, end=T0 + DAY, groupby=groupby))
            self.assertEqual({'total': 0, 'results': []}, self.totals(
                begin=T0, end=T0 + DAY, groupby=groupby,
                filters=self.mine(flavor='absent')))

    def test_total_default_window(self):
        """Rule 5: begin/end are the query window, by default this month."""
        begin, end = month_window()
        self.push(builders.month_frames(self.project_id, begin, end))
        result = self.totals()
        self.assertMonthUnchanged(begin, end)
        self.assertTotalEqual({'total': 1, 'results': [
            expect(begin, end, 14, 14)]}, result)
        result = self.totals(begin=begin + DAY)
        self.assertMonthUnchanged(begin, end)
        self.assertTotalEqual({'total': 1, 'results': [
            expect(begin + DAY, end, 12, 12)]}, result)
        result = self.totals(end=begin + DAY)
        self.assertMonthUnchanged(begin, end)
        self.assertTotalEqual({'total': 1, 'results': [
            expect(begin, begin + DAY, 2, 2)]}, result)

    def test_total_window_edges(self):
        """Rule 2: total() selects on frame start, like retrieve()."""
        frames = builders.edge_frames(self.project_id, T0, T0 + DAY)
        self.push(frames)
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + DAY, 12, 12)]},
            self.totals(begin=T0, end=T0 + DAY))
        self.assertOracle(frames, begin=T0, end=T0 + DAY)

    def test_total_naive_and_non_utc_bounds(self):
        """Rule 1: naive bounds mean UTC; results are aware UTC."""
        self.push(builders.edge_frames(self.project_id, T0, T0 + DAY))
        east = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
        for begin, end in ((T0.replace(tzinfo=None),
                            (T0 + DAY).replace(tzinfo=None)),
                           (T0.astimezone(east), (T0 + DAY).astimezone(east))):
            result = self.totals(begin=begin, end=end)
            self.assertTotalEqual({'total': 1, 'results': [
                expect(T0, T0 + DAY, 12, 12)]}, result)

    @requires('groupby_time')
    def test_total_groupby_time(self):
        """Rule 5: groupby time gives one bucket per frame start.

        As upstream, the bucket is the result's begin and end; there is no
        ``time`` key.
        """
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        window = {'begin': T0, 'end': T0 + DAY, 'groupby': ['time']}
        self.assertTotalEqual({'total': 3, 'results': [
            expect(T0, T0 + HOUR, 13, D('1.76')),
            expect(T0 + HOUR, T0 + 2 * HOUR, 21, D('0.52')),
            expect(T0 + 2 * HOUR, T0 + 3 * HOUR, 2, D('1.25'))]},
            self.totals(**window))
        self.assertOracle(frames, **window)

    def assertCalendarTotals(self, entry, groups):
        """total(groupby=[entry]) over the calendar frames gives ``groups``.

        :param groups: ``[(label value, qty)]`` in the expected order; the
            rate is a quarter of the qty, begin and end the query window.
        """
        frames = builders.calendar_frames(self.project_id)
        self.push(frames)
        window = self.calendar_window(entry)
        key = query.CALENDAR_KEYS[entry]
        expected = [expect(window['begin'], window['end'], qty, D(qty) / 4,
                           **{key: value}) for value, qty in groups]
        result = self.totals(**window)
        self.assertTotalEqual({'total': len(groups), 'results': expected},
                              result)
        self.assertEqual(['begin', 'end', 'qty', 'rate', key],
                         list(result['results'][0]))
        self.assertOracle(frames, **window)

    @requires('groupby_time')
    def test_total_groupby_time_d(self):
        """Rule 5: time-d groups by upstream's day_of_the_year (UTC)."""
        # NOTE: 2020 is a leap year: December 31st is its day 366.
        self.assertCalendarTotals('time-d', [
            ('1', 2), ('3', 4), ('4', 8), ('59', 16), ('60', 32),
            ('366', 1)])

    @requires('groupby_time')
    def test_total_groupby_time_w_starts_sunday(self):
        """Rule 5: time-w groups by week_of_the_year, weeks from Sunday."""
        self.assertCalendarTotals('time-w', [
            ('00', 2), ('01', 12), ('09', 48), ('52', 1)])

    @requires('groupby_time')
    def test_total_groupby_time_m(self):
        """Rule 5: time-m groups by month, whatever the year."""
        self.assertCalendarTotals('time-m', [
            ('1', 14), ('2', 16), ('3', 32), ('12', 1)])

    @requires('groupby_time')
    def test_total_groupby_time_y(self):
        """Rule 5: time-y groups by year."""
        self.assertCalendarTotals('time-y', [('2020', 1), ('2021', 62)])

    @requires('groupby_time')
    def test_total_calendar_groups_keep_the_window(self):
        """Rule 5: a calendar group's begin and end are the query window."""
        frames = builders.calendar_frames(self.project_id)
        self.push(frames)
        begin = datetime.datetime(2021, 1, 2, tzinfo=UTC)
        end = datetime.datetime(2021, 1, 10, tzinfo=UTC)
        self.assertTotalEqual({'total': 1, 'results': [
            expect(begin, end, 12, 3, week_of_the_year='01')]},
            self.totals(begin=begin, end=end, groupby=['time-w'],
                        filters=self.mine()))

    def test_total_sort_by_groupby_values(self):
        """Rule 5: results sort by the groupby values in the order given."""
        frames = builders.sorting_frames(self.project_id)
        self.push(frames)
        end = T0 + 2 * HOUR
        by_flavor = self.totals(begin=T0, end=end,
                                groupby=['flavor', 'type'])['results']
        self.assertEqual(
            [('', 'cpu', 64), ('', 'image', 16), ('B', 'cpu', 8),
             ('B', 'image', 128), ('a', 'cpu', 36), ('b', 'cpu', 1),
             ('b', 'image', 2)],
            [(r['flavor'], r['type'], r['qty']) for r in by_flavor])
        by_type = self.totals(begin=T0, end=end,
                              groupby=['type', 'flavor'])['results']
        self.assertEqual(
            [('cpu', '', 64), ('cpu', 'B', 8), ('cpu', 'a', 36),
             ('cpu', 'b', 1), ('image', '', 16), ('image', 'B', 128),
             ('image', 'b', 2)],
            [(r['type'], r['flavor'], r['qty']) for r in by_type])
        for groupby in (['flavor', 'type'], ['type', 'flavor']):
            self.assertOracle(frames, begin=T0, end=end, groupby=groupby)

    @requires('groupby_time')
    def test_total_sort_then_by_begin(self):
        """Rule 5: equal groupby values sort by begin."""
        frames = builders.sorting_frames(self.project_id)
        self.push(frames)
        end = T0 + 2 * HOUR
        results = self.totals(begin=T0, end=end,
                              groupby=['flavor', 'time'])['results']
        self.assertEqual(
            [('', T0, 16), ('', T0 + HOUR, 64), ('B', T0, 8),
             ('B', T0 + HOUR, 128), ('a', T0, 4), ('a', T0 + HOUR, 32),
             ('b', T0, 3)],
            [(r['flavor'], r['begin'], r['qty']) for r in results])
        results = self.totals(begin=T0, end=end,
                              groupby=['time', 'flavor'])['results']
        self.assertEqual(
            [(T0, ''), (T0, 'B'), (T0, 'a'), (T0, 'b'),
             (T0 + HOUR, ''), (T0 + HOUR, 'B'), (T0 + HOUR, 'a')],
            [(r['begin'], r['flavor']) for r in results])
        for groupby in (['flavor', 'time'], ['time', 'flavor'],
                        ['type', 'time-d', 'flavor']):
            self.assertOracle(frames, begin=T0, end=end, groupby=groupby)

    def test_total_tricky_values_as_groups(self):
        """Rule 3: tricky values are distinct groups, returned exactly."""
        values = builders.TRICKY_VALUES
        frames = builders.labelled_frames(self.project_id, 'label', values,
                                          metadata_key='note')
        self.push(frames)
        end = T0 + HOUR
        for key in ('label', 'note'):
            expected = sorted(
                (expect(T0, end, i + 1, D(i + 1) / 100, **{key: value})
                 for i, value in enumerate(values)),
                key=lambda result: result[key])
            self.assertTotalEqual(
                {'total': len(values), 'results': expected},
                self.totals(begin=T0, end=end, groupby=[key]))
            self.assertOracle(frames, begin=T0, end=end, groupby=[key])

    def test_total_tricky_values_as_filters(self):
        """Rule 3: tricky filter values select exactly one group."""
        values = builders.TRICKY_VALUES
        self.push(builders.labelled_frames(self.project_id, 'label', values))
        end = T0 + HOUR
        for i, value in enumerate(values):
            self.assertTotalEqual({'total': 1, 'results': [
                expect(T0, end, i + 1, D(i + 1) / 100, label=value)]},
                self.totals(begin=T0, end=end, groupby=['label'],
                            filters=self.mine(label=value)))

    def test_total_tricky_keys_as_groupby(self):
        """Rule 5: tricky keys work as groupby keys."""
        keys = builders.TRICKY_KEYS
        frames = builders.keyed_frames(self.project_id, keys)
        self.push(frames)
        end = T0 + HOUR
        everything = sum(range(1, len(keys) + 1))
        for i, key in enumerate(keys):
            self.assertTotalEqual({'total': 2, 'results': [
                expect(T0, end, everything - i - 1, everything - i - 1,
                       **{key: ''}),
                expect(T0, end, i + 1, i + 1, **{key: 'g%d' % i})]},
                self.totals(begin=T0, end=end, groupby=[key]),
                'groupby key %r' % key)

    @requires_value_length(1000)
    def test_total_long_values_as_groups(self):
        """Rule 3: 1000-character values stay two distinct groups."""
        first, second = builders.LONG_VALUES
        self.push(builders.labelled_frames(self.project_id, 'label',
                                           builders.LONG_VALUES))
        self.assertTotalEqual({'total': 2, 'results': [
            expect(T0, T0 + HOUR, 1, D('0.01'), label=first),
            expect(T0, T0 + HOUR, 2, D('0.02'), label=second)]},
            self.totals(begin=T0, end=T0 + HOUR, groupby=['label']))

    def test_total_pages_partition(self):
        """Rule 5: pages of total() partition the sorted results."""
        frames = builders.sample_frames(self.project_id)
        frames += builders.sorting_frames(self.project_id, T0 + 3 * HOUR)
        self.push(frames)
        kwargs = {'begin': T0, 'end': T0 + DAY, 'filters': self.mine(),
                  'groupby': ['flavor', 'type']}
        everything = self.storage.total(paginate=False, **kwargs)
        self.assertEqual(9, everything['total'])
        for limit in (1, 2, 4, 9, 50):
            pages = []
            offset = 0
            while offset < everything['total']:
                page = self.storage.total(offset=offset, limit=limit,
                                          **kwargs)
                self.assertEqual(everything['total'], page['total'])
                self.assertEqual(
                    min(limit, everything['total'] - offset),
                    len(page['results']))
                pages.extend(page['results'])
                offset += limit
            self.assertEqual(everything['results'], pages,
                             'limit %d' % limit)
        self.assertEqual({'total': 9, 'results': []}, self.storage.total(
            offset=9, limit=3, **kwargs))
        self.assertOracle(frames, **kwargs)

    @requires('custom_fields')
    def test_custom_fields_all_functions(self):
        """Rule 5: sum, min, max, avg, count in any case, with aliases."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        custom = ('SUM(qty) AS s, min(price) AS low, Max(qty) AS high, '
                  'aVg(price) AS mean, COUNT(qty) AS n, sum(price) AS rate')
        result = self.totals(begin=T0, end=T0 + 3 * HOUR,
                             custom_fields=custom)
        self.assertTotalEqual({'total': 1, 'results': [{
            'begin': T0, 'end': T0 + 3 * HOUR, 's': D(36),
            'low': D('0.01'), 'high': D(20),
            'mean': D('0.5883333333333333333333333333333333'), 'n': D(6),
            'rate': D('3.53')}]}, result)
        self.assertOracle(frames, begin=T0, end=T0 + 3 * HOUR,
                          custom_fields=custom)

    @requires('custom_fields')
    def test_custom_fields_with_groupby(self):
        """Rule 5: custom fields are computed per group."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        kwargs = {'begin': T0, 'end': T0 + 3 * HOUR,
                  'groupby': ['type'],
                  'custom_fields': 'max(price) AS top, count(price) AS n,'
                                   'MIN(qty) AS least'}
        end = T0 + 3 * HOUR
        self.assertTotalEqual({'total': 2, 'results': [
            {'begin': T0, 'end': end, 'type': 'cpu', 'top': D('1.25'),
             'n': D(4), 'least': D(1)},
            {'begin': T0, 'end': end, 'type': 'image', 'top': D('0.02'),
             'n': D(2), 'least': D(10)}]}, self.totals(**kwargs))
        self.assertOracle(frames, **kwargs)

    @requires('custom_fields', 'groupby_time')
    def test_custom_fields_with_time_and_negatives(self):
        """Rule 8: custom fields over negative and extreme money."""
        values = (builders.MONEY_MAX, -builders.MONEY_MAX,
                  builders.MONEY_TINY, D('-2.5'))
        frames = [builders.make_frame(T0 + i * HOUR, [
            ('cpu', builders.make_point(self.project_id, v, -v))
            for v in values[i:]]) for i in range(len(values))]
        self.push(frames)
        self.assertOracle(
            frames, begin=T0, end=T0 + DAY, groupby=['time'],
            custom_fields='min(qty) AS a, max(price) AS b, avg(qty) AS c, '
                          'sum(price) AS d, count(qty) AS e')

    def test_custom_fields_rejects(self):
        """Rule 5: custom_fields outside the grammar raise InvalidQuery."""
        self.push(builders.sample_frames(self.project_id))
        for custom in ('sum(qty)', 'SUM(qty) AS', 'SUM(qty) AS a; DROP '
                       'TABLE x', 'median(qty) AS m', 'SUM(foo) AS f', '',
                       'SUM(qty) AS a,', 'SUM(qty) AS a, SUM(price) AS a',
                       'SUM(qty) AS begin', 'SUM(qty AS a', 'SUM(*) AS a',
                       'SUM(qty + price) AS a', 'SUM(qty) AS "a"',
                       'SUM(qty) AS 1a', 'SUM(qty) a', 'SUM(qty) AS a --',
                       ['SUM(qty) AS a'], 42):
            self.assertInvalid('custom_fields', self.storage.total,
                               begin=T0, end=T0 + DAY,
                               custom_fields=custom)
        self.assertInvalid('custom_fields', self.storage.total,
                           groupby=['flavor'], begin=T0, end=T0 + DAY,
                           custom_fields='SUM(qty) AS flavor')

    @lacks('groupby_time')
    def test_time_groupby_not_supported(self):
        """Rule 5: a backend without groupby_time raises NotSupported."""
        self.assertRaises(exceptions.NotSupported, self.storage.total,
                          begin=T0, end=T0 + DAY, groupby=['time-d'])

    @lacks('custom_fields')
    def test_custom_fields_not_supported(self):
        """Rule 5: a backend without custom_fields raises NotSupported."""
        self.assertRaises(exceptions.NotSupported, self.storage.total,
                          begin=T0, end=T0 + DAY,
                          custom_fields='SUM(qty) AS q')


# Delete --------------------------------------------------------------------

class DeleteTests:
    """delete(): window, open bounds, filters, everything.

    Deleting by window alone (or everything) reaches every scope in the
    store: a subclass whose store is shared by parallel workers must give
    each worker its own database.
    """

    def test_delete_window(self):
        """Rule 2: delete(begin, end) removes the points of that window."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        deleted = self.delete(begin=T0 + HOUR, end=T0 + 2 * HOUR)
        self.assertIn(deleted, (None, 2))
        self.assertEqual(sorted(rows([frames[0], frames[2]])),
                         self.snapshot())

    def test_delete_window_edges(self):
        """Rule 2: delete() selects on frame start, [begin, end)."""
        self.push(builders.edge_frames(self.project_id, T0, T0 + DAY))
        self.delete(begin=T0, end=T0 + DAY)
        self.assertEqual(['before', 'straddle_begin', 'at_end'], self.edges(
            self.retrieve(begin=EVER[0], end=EVER[1])))

    def test_delete_open_begin(self):
        """Rule 2: delete(end=...) leaves begin open."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.delete(end=T0 + HOUR)
        self.assertEqual(sorted(rows(frames[1:])), self.snapshot())

    def test_delete_open_end(self):
        """Rule 2: delete(begin=...) leaves end open."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.delete(begin=T0 + HOUR)
        self.assertEqual(sorted(rows(frames[:1])), self.snapshot())

    def test_delete_everything(self):
        """Rule 2: delete() with no arguments deletes everything."""
        begin, end = month_window()
        other = self.new_project_id()
        self.push(builders.sample_frames(self.project_id))
        self.push(builders.calendar_frames(other), scope_id=str(uuid.uuid4()))
        self.push(builders.month_frames(other, begin, end))
        self.push(builders.edge_frames(self.project_id, EVER[0] + DAY,
                                       EVER[1] - DAY))
        self.assertNotEqual([], self.snapshot())
        self.delete()
        self.assertEqual([], self.snapshot())

    def test_delete_nothing_matching(self):
        """Rule 2: a window holding no point deletes nothing."""
        self.push(builders.sample_frames(self.project_id))
        before = self.snapshot()
        self.assertIn(self.delete(begin=T0 + 3 * HOUR, end=T0 + DAY),
                      (None, 0))
        self.assertEqual(before, self.snapshot())

    def test_push_after_delete(self):
        """Rule 7: a point pushed again after its deletion is stored."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.delete()
        self.push(frames[:1])
        self.assertEqual(sorted(rows(frames[:1])), self.snapshot())

    def test_push_after_delete_by_another_instance(self):
        """Rule 7: a delete by another instance does not hide new pushes."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.make_storage().delete()
        self.wait_for_backend()
        self.push(frames)
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    @requires('delete_with_filters')
    def test_delete_with_filters(self):
        """Rule 3: delete(filters=...) removes only matching points."""
        frames = builders.sample_frames(self.project_id)
        other = self.new_project_id()
        others = builders.sample_frames(other)
        self.push(frames + others)
        self.delete(filters=self.mine(flavor='m1.small'))
        self.assertEqual(
            sorted(r for r in rows(frames + others)
                   if ('flavor', 'm1.small') not in r[6]
                   or ('project_id', other) in r[6]),
            self.snapshot())

    @requires('delete_with_filters')
    def test_delete_with_filter_list_type_and_window(self):
        """Rule 3: delete() ANDs window, type and an OR list of values."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames)
        self.delete(begin=T0 + HOUR, end=T0 + DAY,
                    filters=self.mine(type='cpu',
                                      flavor=['m1.small', 'm1.large']))
        self.assertEqual(sorted(rows(frames[:1]) + [
            r for r in rows(frames[1:2]) if r[2] == 'image']),
            self.snapshot())

    @requires('delete_with_filters')
    def test_delete_filter_missing_key_is_kept(self):
        """Rule 3: deleting flavor='' keeps points lacking flavor."""
        points = [('cpu', builders.make_point(self.project_id, 1, 1)),
                  ('cpu', builders.make_point(self.project_id, 2, 2,
                                              groupby={'flavor': ''}))]
        self.push([builders.make_frame(T0, points)])
        self.delete(filters=self.mine(flavor=''))
        self.assertEqual([D(1)], [row[4] for row in self.snapshot()])

    @requires('delete_with_filters')
    def test_delete_tricky_filter_value(self):
        """Rule 3: delete() compares tricky values exactly, no wildcards."""
        values = builders.TRICKY_VALUES
        frames = builders.labelled_frames(self.project_id, 'label', values)
        self.push(frames)
        doomed = ('a%', '_', '*', "o'brien", '\\', 'space ', 'Case', '')
        self.delete(filters=self.mine(label=list(doomed)))
        self.assertEqual(
            sorted(r for r in rows(frames)
                   if dict(r[6])['label'] not in doomed),
            self.snapshot())

    @lacks('delete_with_filters')
    def test_delete_with_filters_not_supported(self):
        """Rule 3: a backend without delete_with_filters raises."""
        self.push(builders.sample_frames(self.project_id))
        before = self.snapshot()
        self.assertRaises(exceptions.NotSupported, self.storage.delete,
                          filters=self.mine())
        self.assertEqual(before, self.snapshot())


# Bad input -----------------------------------------------------------------

class BadInputTests:
    """Bad arguments raise InvalidQuery and leave the store unchanged."""

    def test_invalid_query_is_a_value_error(self):
        """Rule 6: InvalidQuery is a StorageError and a ValueError."""
        self.assertTrue(issubclass(exceptions.InvalidQuery, ValueError))
        self.assertTrue(issubclass(exceptions.InvalidQuery,
                                   exceptions.StorageError))

    def test_begin_after_end(self):
        """Rule 6: begin after end answers empty and deletes nothing."""
        self.assertEmptyWindow({'begin': T0 + HOUR, 'end': T0})

    def test_begin_equals_end(self):
        """Rule 6: an empty window (begin == end) answers empty."""
        self.assertEmptyWindow({'begin': T0, 'end': T0})

    def assertEmptyWindow(self, window):
        """Every call on ``window`` answers empty and changes nothing."""
        self.push(builders.sample_frames(self.project_id))
        before = self.snapshot()
        self.assertEqual({'total': 0, 'dataframes': []},
                         self.storage.retrieve(**window))
        self.assertEqual({'total': 0, 'results': []},
                         self.storage.total(**window))
        self.assertEqual({'total': 0, 'results': []},
                         self.storage.total(groupby=['type', 'time'],
                                            **window))
        self.assertIn(self.storage.delete(**window), (0, None))
        self.assertEqual(before, self.snapshot())

    def test_bad_paging(self):
        """Rule 6: negative offset, limit < 1 or not an int are rejected."""
        self.push(builders.sample_frames(self.project_id))
        for argument, kwargs in (('offset', {'offset': -1}),
                                 ('limit', {'limit': 0}),
                                 ('limit', {'limit': -5}),
                                 ('limit', {'limit': '10'}),
                                 ('offset', {'offset': 1.5}),
                                 ('limit', {'limit': None}),
                                 ('paginate', {'paginate': 'yes'})):
            for call in (self.storage.retrieve, self.storage.total):
                self.assertInvalid(argument, call, begin=T0, end=T0 + DAY,
                                   **kwargs)

    def test_bad_dates(self):
        """Rule 6: bounds that are not datetimes are rejected."""
        self.push(builders.sample_frames(self.project_id))
        for argument, kwargs in (('begin', {'begin': 1615334400}),
                                 ('end', {'end': object()}),
                                 ('begin', {'begin': 'not a date'}),
                                 ('end', {'end': ['2021-03-10']})):
            for call in (self.storage.retrieve, self.storage.total,
                         self.storage.delete):
                self.assertInvalid(argument, call, **kwargs)

    def test_bad_filters(self):
        """Rule 6: filters must be a dict of str to str or list of str."""
        self.push(builders.sample_frames(self.project_id))
        for bad in (['project_id'], 'project_id=x', {'project_id': 3},
                    {'project_id': [self.project_id, 3]},
                    {'project_id': None}, {3: 'x'}, {'': 'x'},
                    {'project_id': []}):
            for call in (self.storage.retrieve, self.storage.total,
                         self.storage.delete):
                self.assertInvalid('filters', call, begin=T0, end=T0 + DAY,
                                   filters=bad)

    def test_bad_metric_types(self):
        """Rule 6: metric_types must be a str or a list of str."""
        self.push(builders.sample_frames(self.project_id))
        for bad in (3, ['cpu', 3], {'cpu': 'x'}):
            for call in (self.storage.retrieve, self.storage.total):
                self.assertInvalid('metric_types', call, begin=T0,
                                   end=T0 + DAY, metric_types=bad)

    def test_empty_metric_types_mean_every_type(self):
        """metric_types=[], as upstream's summary sends, means every type."""
        self.push(builders.sample_frames(self.project_id))
        window = {'begin': T0, 'end': T0 + DAY, 'filters': self.mine()}
        self.assertEqual(self.storage.total(**window),
                         self.storage.total(metric_types=[], **window))
        self.assertEqual(
            rows(self.retrieve(paginate=False, **window)['dataframes']),
            rows(self.retrieve(paginate=False, metric_types=[],
                               **window)['dataframes']))

    def test_bad_groupby(self):
        """Rule 6: unknown time groupings and non-lists are rejected."""
        self.push(builders.sample_frames(self.project_id))
        for bad in (['time-x'], ['time-'], ['time-D'], 'project_id',
                    ['project_id', 3], ['type', 'type'],
                    ['time', 'time-d'], [''], ['qty'], ['begin'],
                    {'type': 1}):
            self.assertInvalid('groupby', self.storage.total, begin=T0,
                               end=T0 + DAY, groupby=bad)

    def test_push_non_dataframe(self):
        """Rule 7: pushing something else than a list of frames fails."""
        self.push(builders.sample_frames(self.project_id))
        frame = builders.sample_frames(self.project_id)[0]
        for bad in ('x', None, 3, frame, [frame.as_dict()],
                    [builders.make_point(self.project_id)]):
            self.assertInvalid('dataframes', self.storage.push, bad,
                               scope_id=self.scope_id)

    def test_push_list_with_non_dataframe_writes_nothing(self):
        """Rule 7: a valid frame followed by a non-frame is not written."""
        frame = builders.sample_frames(self.project_id)[0]
        for bad in ('x', None, {'period': {}}):
            self.assertInvalid('dataframes', self.storage.push,
                               [frame, bad], scope_id=self.scope_id)
        self.assertEqual([], self.snapshot())

    def test_push_money_out_of_range_writes_nothing(self):
        """Rule 8: a frame whose 2nd point is out of range is not written."""
        self.push(builders.sample_frames(self.project_id, T0 + DAY))
        good = builders.make_point(self.project_id, 1, 1)
        for value in builders.money_out_of_range(
                self.storage.features.max_magnitude):
            for field, bad in (
                    ('price', builders.make_point(self.project_id, 1, value)),
                    ('qty', builders.make_point(self.project_id, value, 1))):
                frames = [builders.make_frame(T0 - DAY, [('cpu', good)]),
                          builders.make_frame(T0, [('cpu', good),
                                                   ('cpu', bad)])]
                self.assertInvalid(field, self.storage.push, frames,
                                   scope_id=self.scope_id)


# Concurrency ---------------------------------------------------------------

class ConcurrencyTests:
    """Several writers, each with its own storage instance, at once."""

    #: Number of threads pushing at once.
    writers = 4
    #: Pushes per thread.
    pushes_per_writer = 5
    #: Pushes per writer, and deletes, of the racing delete test.
    racing_rounds = 30

    def _run_writers(self, make_frames, make_key=None):
        """Push ``make_frames(writer, push)`` from every writer at once.

        :param make_key: None, or ``make_key(writer, push)`` returning the
            push's idempotency key.
        """
        stores = [self.make_storage() for _ in range(self.writers)]
        barrier = threading.Barrier(self.writers)

        def write(index, store):
            barrier.wait(timeout=60)
            for push in range(self.pushes_per_writer):
                store.push(make_frames(index, push), scope_id=self.scope_id,
                           idempotency_key=make_key and make_key(index,
                                                                 push))

        with concurrent.futures.ThreadPoolExecutor(self.writers) as pool:
            futures = [pool.submit(write, index, store)
                       for index, store in enumerate(stores)]
            for future in futures:
                future.result(timeout=300)
        self.wait_for_backend()

    @requires('concurrent_writers')
    def test_concurrent_writers_lose_nothing(self):
        """Rule 9: concurrent pushes from many instances all land."""
        per_push = 10

        def make_frames(writer, push):
            return [builders.make_frame(T0 + push * HOUR, [
                ('cpu', builders.make_point(
                    self.project_id, 1, D(writer + 1) / 1000,
                    metadata={'writer': str(writer), 'n': str(n)}))
                for n in range(per_push)])]

        self._run_writers(make_frames)
        count = self.pushes_per_writer * per_push
        self.assertEqual(self.writers * count, self.retrieve(
            begin=T0, end=T0 + DAY, limit=1)['total'])
        self.assertTotalEqual({'total': self.writers, 'results': [
            expect(T0, T0 + DAY, count, D(count * (writer + 1)) / 1000,
                   writer=str(writer))
            for writer in range(self.writers)]},
            self.totals(begin=T0, end=T0 + DAY, groupby=['writer']))

    @requires('concurrent_writers')
    def test_concurrent_writers_same_labels(self):
        """Rule 9: identical points pushed at once are all counted."""
        point = builders.make_point(self.project_id, 1, D('0.1'),
                                    groupby={'flavor': 'shared'},
                                    metadata={'az': 'shared'})

        def make_frames(writer, push):
            return [builders.make_frame(T0, [('cpu', point)] * 3)]

        self._run_writers(make_frames)
        count = self.writers * self.pushes_per_writer * 3
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + HOUR, count, D(count) / 10)]},
            self.totals(begin=T0, end=T0 + HOUR))

    @requires('concurrent_writers')
    def test_deletes_racing_late_pushes_leave_no_ghosts(self):
        """Rule 9: a day deleted while late data lands reads consistently.

        Two writers push late data into a day while a third instance
        deletes that day again and again. Afterwards total() (which a
        backend may answer from per-day sums) and retrieve() (the points
        themselves, and their count) must agree: no sum of a deleted
        point may stay behind, nor one of a stored point go missing.
        """
        day = T0 + 2 * DAY
        self.push([builders.make_frame(T0 + 5 * DAY, [
            ('cpu', builders.make_point(self.project_id, 1, 1))])])
        stores = [self.make_storage() for _ in range(3)]
        barrier = threading.Barrier(len(stores))

        def push(store, writer):
            barrier.wait(timeout=60)
            for index in range(self.racing_rounds):
                store.push([builders.make_frame(
                    day + index % 24 * HOUR, [
                        ('cpu', builders.make_point(
                            self.project_id, writer + 1, D(index + 1) / 10,
                            groupby={'res': str(series)}))
                        for series in range(10)])], scope_id=self.scope_id)

        def delete(store):
            barrier.wait(timeout=60)
            for _ in range(self.racing_rounds):
                store.delete(begin=day, end=day + DAY)

        with concurrent.futures.ThreadPoolExecutor(len(stores)) as pool:
            futures = [pool.submit(push, stores[0], 0),
                       pool.submit(push, stores[1], 1),
                       pool.submit(delete, stores[2])]
            for future in futures:
                future.result(timeout=300)
        self.wait_for_backend()
        window = {'begin': day, 'end': day + DAY}
        points = [point for frame in self.retrieve(
            paginate=False, **window)['dataframes']
            for _, point in frame.iterpoints()]
        self.assertEqual(len(points), self.retrieve(limit=1,
                                                    **window)['total'])
        totals = self.totals(**window)['results']
        self.assertEqual(
            [(sum((p.qty for p in points), D(0)),
              sum((p.price for p in points), D(0)))] if points else [],
            [(row['qty'], row['rate']) for row in totals if row['qty']])

    @requires('concurrent_writers')
    def test_processes_share_new_series_and_late_days(self):
        """Rule 9: processes sharing new series and late days all land.

        :data:`OVERLAP_WRITERS` processes push, round after round and all
        at once, the same new series into a day already rolled up and
        into a later one, each in a point and frame order of its own
        (:func:`overlap_frames`), while another process runs total() and
        a third pushes into and deletes (or purges) another window. Every
        push must succeed, and the store hold exactly what was pushed.
        """
        seed = [builders.make_frame(OVERLAP_SEED, [
            ('cpu', builders.make_point(self.project_id, 1, 1))])]
        self.push(seed)
        deleted_project = self.new_project_id()
        context = multiprocessing.get_context('spawn')
        barrier = context.Barrier(OVERLAP_WRITERS, timeout=PROCESS_TIMEOUT)
        stop = context.Event()
        results = context.Queue()
        settings = self.process_settings()
        processes = [context.Process(target=overlap_writer, args=(
            settings, writer, self.project_id, self.scope_id, barrier,
            results)) for writer in range(OVERLAP_WRITERS)]
        processes.append(context.Process(target=overlap_reader, args=(
            settings, self.project_id, stop, results)))
        processes.append(context.Process(target=overlap_deleter, args=(
            settings, deleted_project, str(uuid.uuid4()), stop, results)))
        reports = self._run_processes(processes, stop, results)
        errors = [error for _, _, _, found in reports.values()
                  for error in found]
        self.assertEqual([], errors)
        acked = {index: rounds for (role, index), (_, _, rounds, _)
                 in reports.items() if role == 'writer'}
        self.assertEqual({writer: list(range(OVERLAP_ROUNDS))
                          for writer in range(OVERLAP_WRITERS)}, acked)
        self.assertGreater(reports[('reader', 0)][2], 0)
        self.wait_for_backend()
        frames = seed + [
            frame for writer, rounds in acked.items() for round_ in rounds
            for frame in overlap_frames(self.project_id, writer, round_)]
        window = {'begin': T0, 'end': T0 + 7 * DAY}
        self.assertOracle(frames, groupby=['res'], **window)
        self.assertOracle(frames, groupby=['type', 'round'], **window)
        self.assertEqual(
            1 + 2 * OVERLAP_SERIES * OVERLAP_ROUNDS * OVERLAP_WRITERS,
            self.retrieve(limit=1, **window)['total'])
        self.assertEqual(0, self.retrieve(
            begin=OVERLAP_DELETED, end=OVERLAP_DELETED + DAY, limit=1,
            filters={'project_id': deleted_project})['total'])

    def _run_processes(self, processes, stop, results):
        """Start processes; collect one report each; stop the others.

        Once every writer reported, ``stop`` is set for the others. Waits
        are bounded by :data:`PROCESS_TIMEOUT`; a process still running
        then is terminated and the test fails.

        :returns: ``{(role, index): (role, index, value, errors)}``.
        """
        for process in processes:
            process.start()
            self.addCleanup(process.join, 10)
            self.addCleanup(process.terminate)
        reports = {}
        deadline = time.monotonic() + PROCESS_TIMEOUT
        try:
            while len(reports) < len(processes):
                if sum(1 for role, _ in reports if role == 'writer') \
                        == OVERLAP_WRITERS:
                    stop.set()
                report = results.get(
                    timeout=max(1, deadline - time.monotonic()))
                reports[report[:2]] = report
        except queue.Empty:
            self.fail('processes still running after %d s; reports: %r'
                      % (PROCESS_TIMEOUT, reports))
        finally:
            stop.set()
        for process in processes:
            process.join(PROCESS_TIMEOUT)
        return reports


# Processes -----------------------------------------------------------------
# NOTE: what spawned processes run: module-level functions taking picklable
# arguments, each building its own storage as a separate service would.

#: Writer processes of the overlap test, and the pushes of each.
OVERLAP_WRITERS = 4
OVERLAP_ROUNDS = 8
#: New series of each round, all pushed by every writer.
OVERLAP_SERIES = 250
#: The day the overlap test rolls up before its writers push into it.
OVERLAP_LATE = T0 + 2 * DAY
#: A push here, before the writers start, puts OVERLAP_LATE in the past.
OVERLAP_SEED = T0 + 5 * DAY
#: The writers' other frames, after the seed: they move the rollup on.
OVERLAP_NEXT = T0 + 6 * DAY
#: The window the deleter process pushes into and deletes, and the end of
#: its purges (every month before the writers' one).
OVERLAP_DELETED = T0 - 28 * DAY
OVERLAP_PURGE_END = query.month_start(T0)
#: Seconds a process may take to start, and a whole run to end.
PROCESS_TIMEOUT = 600


def spawned_storage(settings):
    """Build and initialise a storage in a spawned process.

    The option values are handed over as a configuration file, which
    oslo.config also reads for options registered later: those of a
    third-party backend, which registers its own.

    :param settings: what :meth:`BaseFunctionalStorageTest.process_settings`
        returned.
    """
    sections = {}
    for group, name, value in settings['options']:
        sections.setdefault(group, []).append('%s = %s' % (
            name, _config_text(value)))
    fd, path = tempfile.mkstemp(suffix='.conf')
    try:
        with os.fdopen(fd, 'w') as config_file:
            for group, lines in sorted(sections.items()):
                config_file.write('[%s]\n%s\n' % (group, '\n'.join(lines)))
        conf = cfg.ConfigOpts()
        for group, opts in storage.list_opts():
            conf.register_opts(opts, group=group)
        conf(args=[], default_config_files=[path])
    finally:
        os.unlink(path)
    store = storage.get_storage(conf=conf, backend=settings['backend'],
                                version=settings['version'])
    store.init()
    return store


def _config_text(value):
    """An option value as a configuration file writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ','.join(str(item) for item in value)
    if isinstance(value, dict):
        return ','.join('%s:%s' % item for item in sorted(value.items()))
    return str(value)


def overlap_frames(project_id, writer, round_):
    """The frames of one push of the overlap test, the same in any process.

    Every writer pushes, in round ``round_``, one point of each of the
    round's :data:`OVERLAP_SERIES` new series into a day already rolled
    up (late data) and one into a later day; each writer shuffles its
    points and its frames in an order of its own. Qty and price depend on
    the writer and the series.
    """
    rng = random.Random('%d-%d' % (writer, round_))
    frames = []
    for start in (OVERLAP_LATE + round_ % 24 * HOUR,
                  OVERLAP_NEXT + round_ % 24 * HOUR):
        points = [('cpu' if index % 3 else 'ram', builders.make_point(
            project_id, D(writer + 1), D(index + 1) / 100,
            groupby={'res': 'r%d-%03d' % (round_, index)},
            metadata={'round': str(round_)}))
            for index in range(OVERLAP_SERIES)]
        rng.shuffle(points)
        frames.append(builders.make_frame(start, points))
    rng.shuffle(frames)
    return frames


def _report(results, role, index, work):
    """Run ``work(errors)`` and put ``(role, index, value, errors)``."""
    errors = []
    value = None
    try:
        value = work(errors)
    except Exception as exc:
        errors.append('%s %d: %s: %s' % (role, index, type(exc).__name__,
                                         exc))
    results.put((role, index, value, errors))


def overlap_writer(settings, writer, project_id, scope_id, barrier,
                   results):
    """Spawned writer: push each round once all writers are ready.

    Reports the rounds whose push returned.
    """
    def work(errors):
        acked = []
        try:
            store = spawned_storage(settings)
        except Exception:
            barrier.abort()
            raise
        try:
            for round_ in range(OVERLAP_ROUNDS):
                frames = overlap_frames(project_id, writer, round_)
                barrier.wait()
                try:
                    store.push(frames, scope_id=scope_id)
                except Exception as exc:
                    errors.append('writer %d, round %d: %s: %s' % (
                        writer, round_, type(exc).__name__, exc))
                    continue
                acked.append(round_)
        except threading.BrokenBarrierError:
            errors.append('writer %d: another writer failed to start'
                          % writer)
        finally:
            store.close()
        return acked
    _report(results, 'writer', writer, work)


def overlap_reader(settings, project_id, stop, results):
    """Spawned reader: total() until stopped; qty never goes down."""
    def work(errors):
        store = spawned_storage(settings)
        reads, last = 0, D(0)
        try:
            deadline = time.monotonic() + PROCESS_TIMEOUT
            while not stop.is_set() and time.monotonic() < deadline:
                answer = store.total(begin=T0, end=T0 + 7 * DAY,
                                     filters={'project_id': project_id})
                reads += 1
                qty = sum((row['qty'] for row in answer['results']), D(0))
                if qty < last:
                    errors.append('reader: qty %s after %s' % (qty, last))
                last = qty
        finally:
            store.close()
        return reads
    _report(results, 'reader', 0, work)


def overlap_deleter(settings, project_id, scope_id, stop, results):
    """Spawned deleter: push into another window and delete it, in turns.

    Every other delete is a purge of every month before the writers'
    one. It goes on until stopped, at least twice, and ends with the
    window empty.
    """
    def work(errors):
        store = spawned_storage(settings)
        rounds = 0
        try:
            deadline = time.monotonic() + PROCESS_TIMEOUT
            while (rounds < 2 or not stop.is_set()) and \
                    time.monotonic() < deadline:
                store.push([builders.make_frame(
                    OVERLAP_DELETED + rounds % 24 * HOUR,
                    [('cpu', builders.make_point(project_id, 1, 1))] * 5)],
                    scope_id=scope_id)
                if rounds % 2:
                    store.delete(end=OVERLAP_PURGE_END)
                else:
                    store.delete(begin=OVERLAP_DELETED,
                                 end=OVERLAP_DELETED + DAY)
                rounds += 1
        finally:
            store.close()
        return rounds
    _report(results, 'deleter', 0, work)


# Idempotent push -----------------------------------------------------------

class IdempotencyTests:
    """push(idempotency_key=...): a retried push is stored once."""

    def key(self, name='push'):
        """Return an idempotency key unique to this test."""
        return '%s/%s/%s' % (self.scope_id, self.project_id, name)

    @requires('idempotent_push')
    def test_retry_with_the_same_key_counts_once(self):
        """A push retried with its key is stored once."""
        frames = builders.sample_frames(self.project_id)
        for _ in range(3):
            self.push(frames, idempotency_key=self.key())
        self.assertEqual(sorted(rows(frames)), self.snapshot())
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + 3 * HOUR, 36, D('3.53'))]},
            self.totals(begin=T0, end=T0 + 3 * HOUR))

    @requires('idempotent_push')
    def test_retry_recognised_in_any_frame_order(self):
        """A retry rebuilt in another order is still the same push."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames, idempotency_key=self.key())
        self.push(list(reversed(frames)), idempotency_key=self.key())
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    @requires('idempotent_push')
    def test_other_keys_count_every_push(self):
        """The same frames under two keys (or none) count each time."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames, idempotency_key=self.key('a'))
        self.push(frames, idempotency_key=self.key('b'))
        self.push(frames)
        self.assertEqual(sorted(rows(frames) * 3), self.snapshot())

    @requires('idempotent_push')
    def test_key_reused_for_other_data_is_refused(self):
        """A key already used by other data: InvalidQuery, nothing stored."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames, idempotency_key=self.key())
        other = builders.sample_frames(self.project_id, start=T0 + DAY)
        self.assertInvalid('idempotency_key', self.storage.push, other,
                           scope_id=self.scope_id,
                           idempotency_key=self.key())
        self.assertInvalid('idempotency_key', self.storage.push, frames,
                           scope_id=str(uuid.uuid4()),
                           idempotency_key=self.key())
        self.assertInvalid('idempotency_key', self.storage.push, frames[:2],
                           scope_id=self.scope_id,
                           idempotency_key=self.key())
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    @requires('idempotent_push')
    def test_refused_push_leaves_its_key_free(self):
        """A push refused for bad data claims nothing: a fixed one lands."""
        bad = [builders.make_frame(T0, [('cpu', builders.make_point(
            self.project_id, 1, builders.MONEY_OUT_OF_RANGE[0]))])]
        self.assertInvalid(None, self.storage.push, bad,
                           scope_id=self.scope_id,
                           idempotency_key=self.key())
        frames = builders.sample_frames(self.project_id)
        self.push(frames, idempotency_key=self.key())
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    @requires('idempotent_push')
    def test_delete_forgets_the_keys_of_its_window(self):
        """A period deleted to be rated again is stored again (re-rating)."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames, idempotency_key=self.key())
        self.delete(begin=T0 + HOUR, end=T0 + 2 * HOUR,
                    filters={'project_id': self.project_id})
        self.push(frames, idempotency_key=self.key())
        expected = sorted(rows(frames) + rows(frames[::2]))
        self.assertEqual(expected, self.snapshot())

    @requires('idempotent_push')
    def test_delete_elsewhere_keeps_the_key(self):
        """A delete of another window keeps a push's key (retries no-op)."""
        frames = builders.sample_frames(self.project_id)
        self.push(frames, idempotency_key=self.key())
        self.delete(begin=T0 + DAY, end=T0 + 2 * DAY)
        self.push(frames, idempotency_key=self.key())
        self.assertEqual(sorted(rows(frames)), self.snapshot())

    @requires('idempotent_push')
    def test_bad_keys_are_refused(self):
        """A key that is not a str of 1 to 255 storable characters."""
        frames = builders.sample_frames(self.project_id)
        for key in ('', 'k' * 256, 42, b'key', 'nul\x00', '\ud800'):
            self.assertInvalid('idempotency_key', self.storage.push, frames,
                               scope_id=self.scope_id, idempotency_key=key)

    @requires('idempotent_push')
    def test_tricky_keys_are_data(self):
        """Quotes, unicode, case, trailing spaces, 255 characters: data."""
        scope = self.scope_id
        keys = [scope + "it's", scope + '"; DROP TABLE ck_point; --',
                scope + '\u00e9t\u00e9 \U0001f600', scope + 'a',
                scope + 'a ', scope + 'A',
                scope + 'k' * (query.MAX_KEY_LENGTH - len(scope))]
        for index, key in enumerate(keys):
            frames = builders.sample_frames(self.project_id,
                                            start=T0 + index * DAY)
            self.push(frames, idempotency_key=key)
            self.push(frames, idempotency_key=key)
        self.assertEqual(6 * len(keys), len(self.snapshot()))

    @lacks('idempotent_push')
    def test_key_not_supported(self):
        """Without idempotent_push a key is NotSupported; nothing stored."""
        frames = builders.sample_frames(self.project_id)
        self.assertRaises(exceptions.NotSupported, self.storage.push,
                          frames, scope_id=self.scope_id,
                          idempotency_key=self.key())
        self.wait_for_backend()
        self.assertEqual([], self.snapshot())

    @requires('concurrent_writers', 'idempotent_push')
    def test_concurrent_retries_with_one_key_count_once(self):
        """Writers retrying the same keyed pushes at once store each once."""
        def make_frames(writer, push):
            point = builders.make_point(self.project_id, 1, D('0.25'))
            return [builders.make_frame(T0 + push * HOUR,
                                        [('cpu', point)] * 3)]

        self._run_writers(make_frames,
                          lambda writer, push: '%s/%d' % (self.scope_id,
                                                          push))
        count = self.pushes_per_writer * 3
        self.assertTotalEqual({'total': 1, 'results': [
            expect(T0, T0 + DAY, count, D(count) / 4)]},
            self.totals(begin=T0, end=T0 + DAY))


# Retention -----------------------------------------------------------------

class RetentionTests:
    """get_retention() reflects ``[storage] retention_period``."""

    def test_retention_matches_conf(self):
        """Retention: get_retention() is retention_period hours."""
        self.assertEqual(
            datetime.timedelta(hours=self.conf.storage.retention_period),
            self.storage.get_retention())

    def test_default_retention(self):
        """Retention: the default is 2400 hours."""
        self.conf.clear_override('retention_period', group='storage')
        self.assertEqual(datetime.timedelta(hours=2400),
                         self.make_storage().get_retention())

    def test_configured_retention(self):
        """Retention: a configured retention_period is honoured."""
        self.conf.set_override('retention_period', 48, group='storage')
        self.assertEqual(datetime.timedelta(hours=48),
                         self.make_storage().get_retention())


# Differential --------------------------------------------------------------

class DifferentialTests:
    """A seeded random workload compared with the reference oracle."""

    #: Default seeds, one per test (see SEED_ENV).
    seeds = {'total': 20210310, 'retrieve': 31032021, 'pages': 42}
    #: Random queries per test.
    queries = 40

    def _workload(self, name):
        seed = int(os.environ.get(SEED_ENV) or self.seeds[name])
        self.addDetail('seed', content.text_content(
            '%s=%d reproduces this workload' % (SEED_ENV, seed)))
        rng = random.Random(seed)
        projects = [self.project_id, self.new_project_id(),
                    self.new_project_id()]
        frames = builders.random_frames(
            rng, projects, exact=self.storage.features.exact_decimal)
        for start in range(0, len(frames), 5):
            self.push(frames[start:start + 5])
        return rng, projects, frames

    def _random_window(self, rng):
        begin = T0 + rng.randrange(-2, 5 * 24 * 2) * HOUR / 2
        end = begin + rng.randrange(1, 5 * 24 * 2) * HOUR / 2
        if rng.random() < 0.2:
            begin, end = T0 - DAY, T0 + 7 * DAY
        style = rng.random()
        if style < 0.2:
            return begin.replace(tzinfo=None), end.replace(tzinfo=None)
        if style < 0.4:
            zone = datetime.timezone(datetime.timedelta(
                minutes=rng.randrange(-12 * 60, 14 * 60, 15)))
            return begin.astimezone(zone), end.astimezone(zone)
        return begin, end

    def _random_filters(self, rng, projects):
        chosen = rng.sample(projects, rng.randint(1, len(projects)))
        filters = {'project_id': chosen[0] if len(chosen) == 1 else chosen}
        pools = (('type', builders.RANDOM_TYPES + ('absent',)),
                 ('flavor', builders.RANDOM_FLAVORS[2:] + ('absent',)),
                 ('az', builders.RANDOM_ZONES[2:] + ('absent',)),
                 ('size', ('1', '1.0', 'True', 'None', '0.0', '-0.0',
                           '2.5', 'absent')))
        for key, pool in pools:
            if rng.random() < 0.3:
                values = rng.sample(pool, rng.randint(1, 3))
                filters[key] = (values[0] if len(values) == 1
                                and rng.random() < 0.5 else values)
        return filters

    def _random_metric_types(self, rng):
        choice = rng.random()
        if choice < 0.5:
            return None
        if choice < 0.7:
            return rng.choice(builders.RANDOM_TYPES)
        return rng.sample(builders.RANDOM_TYPES + ('absent',),
                          rng.randint(1, 3))

    def _random_groupby(self, rng):
        groupby = rng.sample(['type', 'project_id', 'flavor', 'az', 'size'],
                             rng.randint(0, 3))
        if self.storage.features.groupby_time and rng.random() < 0.5:
            groupby.insert(rng.randint(0, len(groupby)),
                           rng.choice(query.TIME_GROUPBYS))
        return groupby or None

    def _random_custom_fields(self, rng):
        if not self.storage.features.custom_fields or rng.random() < 0.6:
            return None
        items = []
        for i in range(rng.randint(1, 4)):
            func = ''.join(c.upper() if rng.random() < 0.5 else c
                           for c in rng.choice(query.CUSTOM_FUNCTIONS))
            items.append('%s(%s) AS f%d' % (
                func, rng.choice(query.CUSTOM_SOURCES), i))
        return ', '.join(items)

    def test_differential_total(self):
        """Rule 5: random total() queries agree with the oracle."""
        rng, projects, frames = self._workload('total')
        for _ in range(self.queries):
            begin, end = self._random_window(rng)
            kwargs = {'begin': begin, 'end': end,
                      'groupby': self._random_groupby(rng),
                      'filters': self._random_filters(rng, projects),
                      'metric_types': self._random_metric_types(rng),
                      'custom_fields': self._random_custom_fields(rng)}
            self.assertOracle(frames, message=repr(kwargs), **kwargs)

    def test_differential_retrieve(self):
        """Rule 4: random retrieve() queries agree with the oracle."""
        rng, projects, frames = self._workload('retrieve')
        for _ in range(self.queries):
            begin, end = self._random_window(rng)
            kwargs = {'begin': begin, 'end': end,
                      'filters': self._random_filters(rng, projects),
                      'metric_types': self._random_metric_types(rng)}
            expected = query.evaluate_retrieve(
                query.validate_retrieve(paginate=False, **kwargs), frames)
            actual = self.storage.retrieve(paginate=False, **kwargs)
            self.assertEqual(expected['total'], actual['total'],
                             repr(kwargs))
            self.assertEqual(sorted(rows(expected['dataframes'])),
                             sorted(rows(actual['dataframes'])),
                             repr(kwargs))

    def test_differential_pages(self):
        """Rules 4, 5: random pages agree with the oracle's."""
        rng, projects, frames = self._workload('pages')
        for _ in range(self.queries // 4):
            begin, end = self._random_window(rng)
            kwargs = {'begin': begin, 'end': end,
                      'filters': self._random_filters(rng, projects)}
            limit = rng.randint(1, 25)
            expected = query.evaluate_retrieve(
                query.validate_retrieve(paginate=False, **kwargs), frames)
            pages = self.walk_retrieve(limit, **kwargs)
            self.assertEqual(sorted(rows(expected['dataframes'])),
                             sorted(r for page in pages for r in page),
                             '%r limit %d' % (kwargs, limit))
            kwargs['groupby'] = self._random_groupby(rng)
            total = query.evaluate_total(
                query.validate_total(paginate=False, **kwargs), frames)
            for offset in range(0, total['total'] + limit, limit):
                self.assertOracle(frames, offset=offset, limit=limit,
                                  message='%r offset %d limit %d'
                                  % (kwargs, offset, limit), **kwargs)


# The base ------------------------------------------------------------------

class BaseFunctionalStorageTest(testtools.TestCase, PushTests, MoneyTests,
                                TypedLabelTests, RetrieveTests,
                                StreamTests, TotalTests, DeleteTests,
                                BadInputTests, IdempotencyTests,
                                ConcurrencyTests, RetentionTests,
                                DifferentialTests):
    """The conformance suite; subclass it once per backend configuration.

    The base runs nothing itself: the loader only finds it in modules whose
    name matches ``test*.py``, which this one does not, and when it is
    collected anyway (the class imported into a test module) every test
    skips with "abstract base". The mixins are plain classes, so they are
    never collected on their own.

    Hooks, in three tiers:

    *Must override*

    ``storage_backend``
        The entry-point name of the backend (``'sqlalchemy'``).

    *May override*

    ``storage_version``
        Passed to :func:`cloudkitty.storage.get_storage` (default 2).
    ``configure_backend(self, conf)``
        Called in ``setUp``, before the storage is built, with a fresh
        :class:`oslo_config.cfg.ConfigOpts` (under an
        :class:`oslo_config.fixture.Config` fixture) on which every option
        of :func:`cloudkitty.storage.list_opts` is already registered. Set
        the backend's options with ``conf.set_override``, e.g.
        ``conf.set_override('connection', url, group='storage_sqlalchemy')``.
        ``self`` is the test, so fixtures (``self.useFixture``) are at hand.
    ``wait_for_backend(cls)``
        Classmethod called after every push and delete: return once the
        backend shows what it was sent (bounded: fail after e.g. 60 s).
        Default: return at once. Idempotent.
    ``cleanup_backend(cls)``
        Classmethod called after every test (``addCleanup``): delete all
        data the test may have left. Default: nothing. Idempotent.
    ``expected_failures``
        ``{test_method_name: reason}``: gaps that are unfinished work, not
        design (design gaps are :class:`~cloudkitty.storage.v2.Features`
        flags). Those tests run and must fail; they are reported as
        expected failures, and one that passes fails the run. A name that
        is not a test of the class is a TypeError when the class is made.
    ``make_storage(self)``
        Return a new, initialised storage instance configured like
        ``self.storage`` (the concurrency tests give one to each thread).
        Override only to pass constructor arguments.
    ``process_settings(self)``
        Return the picklable settings from which a spawned process builds
        its own storage (:func:`spawned_storage`); by default the values
        of every option of a group of ``self.conf``.

    *Never override*

    ``setUp`` and the helpers: :meth:`push`, :meth:`delete`,
    :meth:`retrieve`, :meth:`totals`, :meth:`snapshot`, :meth:`mine`,
    :meth:`new_project_id`, the ``assert*`` methods and the data builders
    of :mod:`cloudkitty.tests.fixtures`.

    Data lifetime: each test pushes its own data, in the test itself, under
    fresh UUID scope and project ids; reads filter on those project ids, so
    workers sharing a server never read each other's points. Deletes by
    window alone (and ``delete()``) do reach other workers' data, so a
    shared server needs one database per worker.
    """

    storage_backend = None
    storage_version = 2
    expected_failures = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        unknown = sorted(name for name in cls.expected_failures
                         if not name.startswith('test_')
                         or not callable(getattr(cls, name, None)))
        if unknown:
            raise TypeError('%s.expected_failures names no test: %s'
                            % (cls.__name__, ', '.join(unknown)))

    # Hooks -----------------------------------------------------------------

    def configure_backend(self, conf):
        """Set the backend's options on ``conf`` (see the class doc)."""

    @classmethod
    def wait_for_backend(cls):
        """Return once pushed data is visible (see the class docstring)."""

    @classmethod
    def cleanup_backend(cls):
        """Delete all data in the backend (see the class docstring)."""

    def make_storage(self):
        """Return a new initialised storage configured like self.storage."""
        store = storage.get_storage(conf=self.conf,
                                    backend=self.storage_backend,
                                    version=self.storage_version)
        self.addCleanup(store.close)
        store.init()
        return store

    def process_settings(self):
        """Return what a spawned process needs to build a storage like ours.

        Picklable: the backend, the version and the value of every option
        set in a group of ``self.conf`` (the backend's own included), which
        :func:`spawned_storage` gives a conf of its own. Override only
        when :meth:`make_storage` passes constructor arguments.
        """
        options = []
        for group in self.conf:
            section = self.conf[group]
            if not isinstance(section, cfg.ConfigOpts.GroupAttr):
                continue
            for name in section:
                value = section[name]
                if value is not None:
                    options.append((group, name, value))
        return {'backend': self.storage_backend,
                'version': self.storage_version, 'options': options}

    # Plumbing --------------------------------------------------------------

    def setUp(self):
        super().setUp()
        if self.storage_backend is None:
            self.skipTest('abstract base: subclass it and set '
                          'storage_backend')
        reason = self.expected_failures.get(self._testMethodName)
        if reason is not None:
            setattr(self, self._testMethodName, functools.partial(
                self._expect_failure, reason,
                getattr(self, self._testMethodName)))
        self.conf = cfg.ConfigOpts()
        self.useFixture(config_fixture.Config(self.conf))
        for group, opts in storage.list_opts():
            self.conf.register_opts(opts, group=group)
        self.configure_backend(self.conf)
        self.storage = self.make_storage()
        self.addCleanup(type(self).cleanup_backend)
        self.scope_id = str(uuid.uuid4())
        self._project_ids = []
        self.project_id = self.new_project_id()

    def _expect_failure(self, reason, method):
        def run():
            try:
                method()
            except (self.skipException, self.failureException):
                raise
            except Exception as exc:
                raise self.failureException(
                    '%s: %s' % (type(exc).__name__, exc)) from exc
        self.expectFailure(reason, run)

    def new_project_id(self):
        """Return a fresh project id whose data this test reads back."""
        project_id = str(uuid.uuid4())
        self._project_ids.append(project_id)
        return project_id

    def mine(self, **filters):
        """Return ``filters`` restricted to ``self.project_id``."""
        return dict(filters, project_id=self.project_id)

    def push(self, frames, scope_id=None, idempotency_key=None):
        """Push ``frames`` under this test's scope, then wait for them."""
        self.storage.push(frames, scope_id=scope_id or self.scope_id,
                          idempotency_key=idempotency_key)
        self.wait_for_backend()

    def delete(self, **kwargs):
        """Call storage.delete(), wait, and return what it returned."""
        deleted = self.storage.delete(**kwargs)
        self.wait_for_backend()
        return deleted

    def retrieve(self, **kwargs):
        """Call storage.retrieve() on this test's projects."""
        kwargs.setdefault('filters', {'project_id': self._project_ids})
        result = self.storage.retrieve(**kwargs)
        for frame in result['dataframes']:
            self.assertAwareUTC(frame.start)
            self.assertAwareUTC(frame.end)
        return result

    def totals(self, **kwargs):
        """Call storage.total() on this test's projects."""
        kwargs.setdefault('filters', {'project_id': self._project_ids})
        return self.storage.total(**kwargs)

    def snapshot(self):
        """Return every point of this test's projects, sorted as rows."""
        return sorted(rows(self.retrieve(begin=EVER[0], end=EVER[1],
                                         paginate=False)['dataframes']))

    def edges(self, result):
        """Return the ``edge`` metadata of a retrieve() result, in order."""
        return [point.metadata['edge'] for frame in result['dataframes']
                for _, point in frame.iterpoints()]

    def walk_retrieve(self, limit, **kwargs):
        """Return every page of a retrieve(), as lists of rows."""
        pages = []
        offset = 0
        while True:
            page = self.storage.retrieve(offset=offset, limit=limit,
                                         **kwargs)
            page_rows = rows(page['dataframes'])
            self.assertEqual(min(limit, max(page['total'] - offset, 0)),
                             len(page_rows))
            if not page_rows:
                return pages
            pages.append(page_rows)
            offset += limit

    def calendar_window(self, entry):
        """Query arguments covering :func:`builders.calendar_frames`."""
        return {'begin': datetime.datetime(2020, 12, 1, tzinfo=UTC),
                'end': datetime.datetime(2021, 4, 1, tzinfo=UTC),
                'groupby': [entry], 'filters': self.mine()}

    @staticmethod
    def utc(results):
        """Make the naive datetimes of expected results aware UTC."""
        return [{key: value.replace(tzinfo=UTC)
                 if isinstance(value, datetime.datetime) else value
                 for key, value in result.items()} for result in results]

    # Assertions ------------------------------------------------------------

    def assertAwareUTC(self, moment):
        """Assert ``moment`` is an aware datetime in UTC."""
        self.assertIsInstance(moment, datetime.datetime)
        self.assertIsNotNone(moment.tzinfo, '%r is naive' % (moment,))
        self.assertEqual(datetime.timedelta(0), moment.utcoffset(),
                         '%r is not UTC' % (moment,))

    def assertMonthUnchanged(self, begin, end):
        """Skip when the UTC month changed while the test ran."""
        if month_window() != (begin, end):
            self.skipTest('the UTC month changed during the test')

    def assertMoneyEqual(self, expected, actual, message=''):
        """Assert two sums are equal: exactly, or within 1e-9 relative.

        The tolerance applies only to backends without ``exact_decimal``;
        it is relative to the larger magnitude (at least 1).
        """
        self.assertIsInstance(actual, D, message)
        if self.storage.features.exact_decimal:
            self.assertEqual(expected, actual, message)
            return
        scale = max(abs(expected), abs(actual), D(1))
        self.assertLessEqual(abs(expected - actual),
                             INEXACT_TOLERANCE * scale,
                             '%s != %s %s' % (expected, actual, message))

    def assertTotalEqual(self, expected, actual, message=''):
        """Assert two total() answers are equal (money per exact_decimal).

        Values that are Decimals in ``expected`` are money and compared
        with :meth:`assertMoneyEqual`; every other value must be equal, and
        returned datetimes aware UTC.
        """
        self.assertEqual(expected['total'], actual['total'], message)
        self.assertEqual(len(expected['results']), len(actual['results']),
                         '%s\n%r' % (message, actual['results']))
        for want, got in zip(expected['results'], actual['results']):
            self.assertEqual(sorted(want), sorted(got), message)
            for key, value in want.items():
                if isinstance(value, D):
                    self.assertMoneyEqual(value, got[key],
                                          '%s[%r] %s' % (key, want, message))
                    continue
                if isinstance(value, datetime.datetime):
                    self.assertAwareUTC(got[key])
                # NOTE: by type and repr: 1 == 1.0 == True, 0.0 == -0.0.
                self.assertEqual((type(value), repr(value)),
                                 (type(got[key]), repr(got[key])),
                                 '%r: %r %s' % (key, got, message))

    def assertOracle(self, frames, message='', **kwargs):
        """Assert total(**kwargs) equals the oracle's over ``frames``.

        ``frames`` must be every frame the test pushed that ``kwargs``
        can select.
        """
        kwargs.setdefault('filters', {'project_id': self._project_ids})
        paging = {'paginate': False} if 'limit' not in kwargs else {}
        expected = query.evaluate_total(
            query.validate_total(**dict(kwargs, **paging)), frames)
        actual = self.storage.total(**dict(kwargs, **paging))
        self.assertTotalEqual(expected, actual, message or repr(kwargs))

    def assertInvalid(self, argument, call, *args, **kwargs):
        """Assert ``call`` raises InvalidQuery and changes no stored data.

        :param argument: the ``argument`` the error must name, or None.
        """
        before = self.snapshot()
        described = '%s(%s)' % (call.__name__, ', '.join(
            [show(arg) for arg in args]
            + ['%s=%s' % (key, show(value))
               for key, value in sorted(kwargs.items())]))
        try:
            result = call(*args, **kwargs)
        except exceptions.InvalidQuery as exc:
            self.assertIsInstance(exc, ValueError)
            if argument is not None:
                self.assertEqual(argument, exc.argument,
                                 '%s: %s' % (described, exc))
        else:
            self.fail('%s returned %r instead of raising InvalidQuery'
                      % (described, result))
        self.wait_for_backend()
        self.assertEqual(before, self.snapshot(),
                         '%s changed the store' % described)
