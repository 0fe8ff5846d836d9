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
"""Unit tests of the one validation every backend's arguments go through.

:class:`cloudkitty.storage.v2.BaseStorage` wraps the methods of a backend
that declares its ``features``; these tests use small in-test backends that
record what reaches them, and the SQL backend on a SQLite file.
"""

import datetime
from decimal import Decimal
import gc
import inspect
import os

import fixtures
from oslo_config import cfg
import testtools

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage import v2
from cloudkitty.storage.v2 import query
from cloudkitty.storage.v2 import sqlalchemy as sql_storage

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)


class NothingFeatures(v2.Features):
    """A backend that declares every optional capability off."""


class EverythingFeatures(v2.Features):
    """A backend that declares every optional capability on."""

    groupby_time = True
    custom_fields = True
    delete_with_filters = True
    idempotent_push = True


class RecordingStorage(v2.BaseStorage):
    """Records the calls that reach it; stores nothing."""

    name = 'recording'
    features = NothingFeatures

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def init(self):
        """Nothing to create."""

    def push(self, dataframes, scope_id=None, idempotency_key=None):
        """Record the frames as they arrive."""
        self.calls.append(('push', dataframes))

    def retrieve(self, begin=None, end=None, filters=None, metric_types=None,
                 offset=0, limit=1000, paginate=True):
        """Record the call; an empty store."""
        self.calls.append(('retrieve', limit))
        return {'total': 0, 'dataframes': []}

    def total(self, groupby=None, begin=None, end=None, metric_types=None,
              filters=None, custom_fields=None, offset=0, limit=1000,
              paginate=True):
        """Record the call; an empty store."""
        self.calls.append(('total', groupby))
        return {'total': 0, 'results': []}

    def delete(self, begin=None, end=None, filters=None):
        """Record the call; an empty store."""
        self.calls.append(('delete', filters))
        return 0


class CapableStorage(RecordingStorage):
    """The recording backend, with every capability declared."""

    name = 'capable'
    features = EverythingFeatures


class UpstreamStyleStorage(v2.BaseStorage):
    """A backend as upstream CloudKitty writes them: no features."""

    def init(self):
        """Nothing to create."""

    def push(self, dataframes, scope_id=None):
        """Accept anything, as upstream's own checks would decide."""
        return dataframes

    def retrieve(self, *args, **kwargs):
        """Accept anything."""
        return args, kwargs

    total = retrieve
    delete = retrieve


def frame():
    """One frame of one point."""
    result = dataframe.DataFrame(START, START + HOUR)
    result.add_point(dataframe.DataPoint(
        'unit', Decimal('1'), Decimal('2'), {'project_id': 'p'}, {}),
        'instance')
    return result


class ValidationTest(testtools.TestCase):
    """Bad arguments are refused before the backend sees them."""

    def setUp(self):
        super().setUp()
        self.store = RecordingStorage(conf=cfg.ConfigOpts())

    def assertInvalid(self, argument, func, *args, **kwargs):
        """func(...) raises InvalidQuery naming argument."""
        exc = self.assertRaises(exceptions.InvalidQuery, func, *args,
                                **kwargs)
        self.assertEqual(argument, exc.argument, exc)
        return exc

    def test_retrieve_paging(self):
        """retrieve(): offset and limit are checked for every backend."""
        self.assertInvalid('limit', self.store.retrieve, limit=0)
        self.assertInvalid('limit', self.store.retrieve, limit=2 ** 63)
        self.assertInvalid('offset', self.store.retrieve, offset=-1)
        self.assertInvalid('paginate', self.store.retrieve, paginate=1)
        self.assertEqual([], self.store.calls)

    def test_positional_arguments_are_checked_too(self):
        """A positional limit is checked as a keyword one is."""
        self.assertInvalid('limit', self.store.retrieve, None, None, None,
                           None, 0, 0)
        self.store.retrieve(None, None, None, None, 0, 5)
        self.assertEqual([('retrieve', 5)], self.store.calls)

    def test_unknown_argument(self):
        """An argument the contract lacks is a TypeError, as before."""
        self.assertRaises(TypeError, self.store.retrieve, limits=5)

    def test_window(self):
        """begin and end must be datetimes, on every method."""
        for method in (self.store.retrieve, self.store.total,
                       self.store.delete):
            self.assertInvalid('begin', method, begin='yesterday')
        self.assertEqual([], self.store.calls)

    def test_batch_size_is_named_batch_size(self):
        """The default iter_points() names batch_size, not limit."""
        for bad in (0, -1, True, 2.0, '10', 2 ** 63):
            self.assertInvalid('batch_size', self.store.iter_points,
                               batch_size=bad)
        self.assertEqual([], self.store.calls)

    def test_batch_size_checked_before_iteration(self):
        """A bad batch_size fails the call itself, not the first next()."""
        self.assertInvalid('batch_size', self.store.iter_points, START,
                           START + HOUR, None, None, 0)

    def test_default_iter_points_pages_by_batch_size(self):
        """A good batch_size reaches retrieve() as its limit."""
        self.assertEqual([], list(self.store.iter_points(batch_size=7)))
        self.assertEqual([('retrieve', 7)], self.store.calls)

    def test_push_refuses_a_non_frame(self):
        """push() refuses an item that is not a DataFrame."""
        self.assertInvalid('dataframes', self.store.push, [frame(), 'x'])
        self.assertInvalid('dataframes', self.store.push, frame())
        self.assertEqual([], self.store.calls)

    def test_push_receives_an_iterator_as_a_list(self):
        """A generator of frames is read once and handed on as a list."""
        frames = [frame(), frame()]
        self.store.push(f for f in frames)
        self.store.push(dataframes=iter(frames))
        self.assertEqual([('push', frames), ('push', frames)],
                         self.store.calls)

    def test_idempotency_key_needs_the_feature(self):
        """A key is NotSupported without features.idempotent_push."""
        exc = self.assertRaises(exceptions.NotSupported, self.store.push,
                                [frame()], idempotency_key='k')
        self.assertEqual('idempotent_push', exc.feature)

    def test_groupby_syntax(self):
        """A groupby outside the grammar is refused."""
        self.assertInvalid('groupby', self.store.total, groupby=['time-x'])


class FeaturesTest(testtools.TestCase):
    """What a backend declares it lacks is NotSupported, for all."""

    def test_lacking_backend(self):
        """Time groupby, custom fields, filtered delete: NotSupported."""
        store = RecordingStorage(conf=cfg.ConfigOpts())
        for feature, method, kwargs in (
                ('groupby_time', store.total, {'groupby': ['time']}),
                ('groupby_time', store.total, {'groupby': ['time-m']}),
                ('custom_fields', store.total,
                 {'custom_fields': 'max(qty) AS top'}),
                ('delete_with_filters', store.delete,
                 {'filters': {'project_id': 'p'}})):
            exc = self.assertRaises(exceptions.NotSupported, method,
                                    **kwargs)
            self.assertEqual((store.name, feature),
                             (exc.backend, exc.feature))
        self.assertEqual([], store.calls)

    def test_lacking_backend_plain_calls(self):
        """What needs no capability still reaches the lacking backend."""
        store = RecordingStorage(conf=cfg.ConfigOpts())
        store.total(groupby=['type', 'project_id'])
        store.total(custom_fields='sum(qty) AS qty, sum(price) AS rate')
        store.delete(begin=START)
        self.assertEqual([('total', ['type', 'project_id']),
                          ('total', None), ('delete', None)], store.calls)

    def test_capable_backend(self):
        """A backend declaring the capabilities gets the calls."""
        store = CapableStorage(conf=cfg.ConfigOpts())
        store.total(groupby=['time-d'], custom_fields='max(qty) AS top')
        store.delete(filters={'project_id': 'p'})
        store.push([frame()], idempotency_key='k')
        self.assertEqual(['total', 'delete', 'push'],
                         [call[0] for call in store.calls])


class ContractTest(testtools.TestCase):
    """The checks take exactly the contract's arguments."""

    def test_signatures(self):
        """Each check has its contract method's parameters and defaults."""
        for name in v2.BaseStorage.CHECKED_METHODS:
            contract = inspect.signature(getattr(v2.BaseStorage, name))
            check = inspect.signature(v2._CHECKS[name])
            self.assertEqual(list(contract.parameters.values())[1:],
                             list(check.parameters.values())[1:], name)


class CollectorWatchingStorage(RecordingStorage):
    """Records whether the cyclic collector was on in each call."""

    name = 'collector-watching'

    def retrieve(self, *args, **kwargs):
        """Record the collector's state; an empty store."""
        self.calls.append(('retrieve', gc.isenabled()))
        return {'total': 0, 'dataframes': []}

    def total(self, *args, **kwargs):
        """Record the collector's state; raise for a ``fail`` groupby."""
        self.calls.append(('total', gc.isenabled()))
        if kwargs.get('groupby') == ['fail']:
            raise exceptions.StorageError('failed on purpose')
        return {'total': 0, 'results': []}

    def delete(self, *args, **kwargs):
        """Record the collector's state; an empty store."""
        self.calls.append(('delete', gc.isenabled()))
        return 0


class CollectorTest(testtools.TestCase):
    """Reads run with the cyclic garbage collector paused."""

    def setUp(self):
        super().setUp()
        self.addCleanup(gc.enable if gc.isenabled() else gc.disable)
        self.store = CollectorWatchingStorage(conf=cfg.ConfigOpts())

    def test_reads_pause_the_collector(self):
        """total() and retrieve() run with it off; it is on again after."""
        gc.enable()
        self.store.total()
        self.store.retrieve()
        self.store.delete(begin=START, end=START + HOUR)
        self.assertEqual([('total', False), ('retrieve', False),
                          ('delete', True)], self.store.calls)
        self.assertTrue(gc.isenabled())
        self.assertEqual(('retrieve', 'total'),
                         v2.BaseStorage.PAUSED_METHODS)

    def test_collector_on_again_after_an_error(self):
        """A read that raises turns the collector back on too."""
        gc.enable()
        self.assertRaises(exceptions.StorageError, self.store.total,
                          groupby=['fail'])
        self.assertEqual([('total', False)], self.store.calls)
        self.assertTrue(gc.isenabled())

    def test_collector_off_stays_off(self):
        """An application that turned it off finds it off after a read."""
        gc.disable()
        self.store.total()
        self.assertFalse(gc.isenabled())


class UpstreamStyleTest(testtools.TestCase):
    """A subclass without features is left as it is written."""

    def test_not_wrapped(self):
        """Upstream's backends check their own arguments."""
        store = UpstreamStyleStorage(conf=cfg.ConfigOpts())
        self.assertEqual(((), {'limit': 0}), store.retrieve(limit=0))
        self.assertEqual('x', store.push('x'))
        self.assertFalse(getattr(UpstreamStyleStorage.retrieve, '_checked',
                                 False))

    def test_checked_once_per_class(self):
        """A backend's subclass does not wrap its methods twice."""
        subclass = type('Sub', (CapableStorage,), {})
        self.assertIs(CapableStorage.total, subclass.total)


class SQLBackendTest(testtools.TestCase):
    """The SQL backend reports a bad batch_size as every backend does."""

    def test_batch_size(self):
        """Its streaming iter_points() names batch_size, up to 2**63 - 1."""
        path = self.useFixture(fixtures.TempDir()).path
        store = sql_storage.SQLAlchemyStorage(
            conf=cfg.ConfigOpts(),
            connection='sqlite:///' + os.path.join(path, 'v.sqlite'))
        self.addCleanup(store.close)
        for bad in (0, 2 ** 63, '1'):
            exc = self.assertRaises(exceptions.InvalidQuery,
                                    store.iter_points, batch_size=bad)
            self.assertEqual('batch_size', exc.argument)

    def test_query_helpers(self):
        """validate_iter_points() gives the whole window, unpaginated."""
        found = query.validate_iter_points(START, START + HOUR,
                                           batch_size=3)
        self.assertEqual((START, START + HOUR, False),
                         (found.begin, found.end, found.paginate))
