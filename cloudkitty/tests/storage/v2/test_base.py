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
"""Unit tests of the v2 contract's base classes and of the storage errors.

No backend: :class:`cloudkitty.storage.v2.BaseStorage` is exercised through
tiny in-test subclasses.
"""

import datetime
import decimal

import fixtures
from oslo_config import cfg
import testtools

from cloudkitty.storage import exceptions
from cloudkitty.storage import v2
from cloudkitty.storage.v2 import money

ABSTRACT_METHODS = ('init', 'push', 'retrieve', 'delete', 'total')


def _noop(self, *args, **kwargs):
    """Stand in for one abstract method."""


def make_storage_class(missing=None):
    """Return a BaseStorage subclass implementing all but ``missing``."""
    body = {name: _noop for name in ABSTRACT_METHODS if name != missing}
    return type('Partial%s' % (missing or 'None'), (v2.BaseStorage,), body)


class BaseStorageTest(testtools.TestCase):
    """BaseStorage: abstract methods and shared behaviour."""

    def setUp(self):
        super().setUp()
        self.conf = cfg.ConfigOpts()

    def test_abstract_methods(self):
        """The five contract methods, and only those, are abstract."""
        self.assertEqual(set(ABSTRACT_METHODS),
                         set(v2.BaseStorage.__abstractmethods__))

    def test_base_cannot_be_instantiated(self):
        """BaseStorage itself cannot be instantiated."""
        self.assertRaises(TypeError, v2.BaseStorage, conf=self.conf)

    def test_subclass_missing_a_method_cannot_be_instantiated(self):
        """A subclass missing any one abstract method cannot be built."""
        for name in ABSTRACT_METHODS:
            cls = make_storage_class(missing=name)
            exc = self.assertRaises(TypeError, cls, conf=self.conf)
            self.assertIn(name, str(exc))

    def test_complete_subclass_registers_options(self):
        """A complete subclass builds and registers [storage] on its conf."""
        store = make_storage_class()(conf=self.conf)
        self.assertIs(self.conf, store.conf)
        self.assertIn('storage', self.conf)

    def test_default_conf_is_cfg_conf(self):
        """conf=None means the global cfg.CONF."""
        global_conf = cfg.ConfigOpts()
        self.useFixture(fixtures.MockPatch('oslo_config.cfg.CONF',
                                           new=global_conf))
        store = make_storage_class()()
        self.assertIs(global_conf, store.conf)
        self.assertIn('storage', global_conf)

    def test_get_retention_default(self):
        """get_retention() is 2400 hours (100 days) by default."""
        store = make_storage_class()(conf=self.conf)
        self.assertEqual(datetime.timedelta(days=100), store.get_retention())

    def test_get_retention_follows_config(self):
        """get_retention() is [storage] retention_period hours."""
        store = make_storage_class()(conf=self.conf)
        self.conf.set_override('retention_period', 48, group='storage')
        self.assertEqual(datetime.timedelta(days=2), store.get_retention())

    def test_close_is_a_noop(self):
        """close() is concrete, returns None and may be called twice."""
        self.assertNotIn('close', v2.BaseStorage.__abstractmethods__)
        store = make_storage_class()(conf=self.conf)
        self.assertIsNone(store.close())
        self.assertIsNone(store.close())

    def test_class_defaults(self):
        """BaseStorage has no name and the base Features."""
        self.assertIsNone(v2.BaseStorage.name)
        self.assertIs(v2.Features, v2.BaseStorage.features)


class DescribeTest(testtools.TestCase):
    """describe(): where the store is, its size when known."""

    def test_default_reports_the_location_only(self):
        """The default describe() tells the location attribute, no size."""
        store = make_storage_class()(conf=cfg.ConfigOpts())
        self.assertEqual(v2.StoreDescription(), store.describe())
        store.location = 'http://db.example:8086'
        self.assertEqual(
            v2.StoreDescription(location='http://db.example:8086'),
            store.describe())


class AgreesTest(testtools.TestCase):
    """money.agrees(): one comparison of a sum with the exact sum."""

    def test_exact(self):
        """Tolerance 0: an equal Decimal only, never a float."""
        self.assertTrue(money.agrees(decimal.Decimal('1.50'),
                                     decimal.Decimal('1.5')))
        self.assertFalse(money.agrees(decimal.Decimal('1.5000000001'),
                                      decimal.Decimal('1.5')))
        self.assertFalse(money.agrees(1.5, decimal.Decimal('1.5')))

    def test_tolerance(self):
        """A tolerance is relative to |expected| + 1."""
        tolerance = decimal.Decimal('1e-9')
        self.assertTrue(money.agrees(1000.0000001, decimal.Decimal(1000),
                                     tolerance))
        self.assertFalse(money.agrees(1000.00001, decimal.Decimal(1000),
                                      tolerance))
        self.assertTrue(money.agrees(1e-10, decimal.Decimal(0), tolerance))
        self.assertFalse(money.agrees('nan?', decimal.Decimal(0),
                                      tolerance))


class FeaturesTest(testtools.TestCase):
    """Features: conservative defaults."""

    def test_conservative_defaults(self):
        """Every capability defaults to the cautious answer."""
        self.assertFalse(v2.Features.exact_decimal)
        self.assertFalse(v2.Features.groupby_time)
        self.assertFalse(v2.Features.custom_fields)
        self.assertFalse(v2.Features.delete_with_filters)
        self.assertTrue(v2.Features.eventually_consistent)
        self.assertFalse(v2.Features.atomic_push)
        self.assertFalse(v2.Features.concurrent_writers)
        self.assertIsNone(v2.Features.max_value_length)
        self.assertFalse(v2.Features.idempotent_push)
        self.assertEqual(10 ** 15, v2.Features.max_magnitude)
        self.assertEqual(decimal.Decimal('1e-9'), v2.Features.float_tolerance)

    def test_only_known_flags(self):
        """Features declares exactly the documented flags."""
        flags = {name for name in vars(v2.Features)
                 if not name.startswith('_')}
        self.assertEqual({'exact_decimal', 'groupby_time', 'custom_fields',
                          'delete_with_filters', 'eventually_consistent',
                          'atomic_push', 'concurrent_writers',
                          'max_value_length', 'idempotent_push',
                          'max_magnitude', 'float_tolerance'}, flags)


class ExceptionsTest(testtools.TestCase):
    """The StorageError tree: types, attributes and messages."""

    def test_every_error_is_a_storage_error(self):
        """Every storage error derives from StorageError."""
        for cls in (exceptions.BackendNotFound,
                    exceptions.BackendUnavailable, exceptions.InvalidQuery,
                    exceptions.NotSupported, exceptions.NoTimeFrame,
                    exceptions.WriteRefused):
            self.assertTrue(issubclass(cls, exceptions.StorageError), cls)

    def test_invalid_query(self):
        """InvalidQuery is a ValueError and keeps argument and value."""
        exc = exceptions.InvalidQuery('limit', 'must be >= 1', value=0)
        self.assertIsInstance(exc, exceptions.StorageError)
        self.assertIsInstance(exc, ValueError)
        self.assertEqual('limit', exc.argument)
        self.assertEqual(0, exc.value)
        self.assertEqual('Invalid limit: must be >= 1', str(exc))

    def test_invalid_query_value_defaults_to_none(self):
        """InvalidQuery without a value keeps None."""
        exc = exceptions.InvalidQuery('begin', 'after end')
        self.assertIsNone(exc.value)

    def test_backend_unavailable(self):
        """BackendUnavailable names backend, location and reason."""
        exc = exceptions.BackendUnavailable(
            'sqlalchemy', 'postgresql+psycopg://db.example.com/rating',
            'connection refused')
        self.assertEqual('sqlalchemy', exc.backend)
        self.assertEqual('postgresql+psycopg://db.example.com/rating',
                         exc.location)
        self.assertEqual('connection refused', exc.reason)
        message = str(exc)
        self.assertIn('sqlalchemy', message)
        self.assertIn('postgresql+psycopg://db.example.com/rating', message)
        self.assertIn('connection refused', message)

    def test_write_refused(self):
        """WriteRefused names backend, location and a one-line reason."""
        exc = exceptions.WriteRefused('sqlalchemy', 'sqlite:////var/x.db',
                                      'database or disk\n is full')
        self.assertEqual(('sqlalchemy', 'sqlite:////var/x.db',
                          'database or disk is full'),
                         (exc.backend, exc.location, exc.reason))
        self.assertEqual('Storage backend sqlalchemy at sqlite:////var/x.db '
                         'refused to write: database or disk is full',
                         str(exc))

    def test_backend_not_found_sorts_names(self):
        """BackendNotFound keeps and lists the installed names sorted."""
        exc = exceptions.BackendNotFound('nope', ['sqlalchemy', 'influxdb',
                                                  'gnocchi'])
        self.assertEqual('nope', exc.name)
        self.assertEqual(['gnocchi', 'influxdb', 'sqlalchemy'],
                         exc.available)
        self.assertIn("'nope'", str(exc))
        self.assertIn('gnocchi, influxdb, sqlalchemy', str(exc))

    def test_backend_not_found_without_backends(self):
        """BackendNotFound says so when no backend is installed."""
        exc = exceptions.BackendNotFound('nope', [])
        self.assertEqual([], exc.available)
        self.assertIn('(none)', str(exc))

    def test_not_supported(self):
        """NotSupported names the backend and the missing feature."""
        exc = exceptions.NotSupported('gnocchi', 'delete_with_filters')
        self.assertEqual('gnocchi', exc.backend)
        self.assertEqual('delete_with_filters', exc.feature)
        self.assertEqual(
            'Storage backend gnocchi does not support delete_with_filters',
            str(exc))

    def test_not_supported_detail(self):
        """NotSupported appends its detail to the message."""
        exc = exceptions.NotSupported('gnocchi', 'groupby_time', 'time-w')
        self.assertTrue(str(exc).endswith('groupby_time: time-w'), str(exc))
