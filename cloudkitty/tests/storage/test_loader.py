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
"""Unit tests of :func:`cloudkitty.storage.get_storage`.

Most tests replace stevedore's ``DriverManager`` with a test instance built
by ``make_test_instance`` around an in-test backend, so they need no entry
point; a few load the real, installed ``sqlalchemy`` entry point.
"""

import os

import fixtures
from oslo_config import cfg
from stevedore import driver
from stevedore import exception as stevedore_exc
from stevedore import extension
import testtools

from cloudkitty import storage
from cloudkitty.storage import exceptions
from cloudkitty.storage import options
from cloudkitty.storage import v1_adapter
from cloudkitty.storage import v2
from cloudkitty.storage.v2 import sqlalchemy as sql_storage

#: The real class, kept before any test patches it.
REAL_DRIVER_MANAGER = driver.DriverManager


class FakeStorage(v2.BaseStorage):
    """A backend that stores nothing and remembers its constructor kwargs."""

    name = 'fake'

    def __init__(self, conf=None, **kwargs):
        super().__init__(conf=conf, **kwargs)
        self.kwargs = kwargs

    def init(self):
        pass

    def push(self, dataframes, scope_id=None, idempotency_key=None):
        pass

    def retrieve(self, begin=None, end=None, filters=None, metric_types=None,
                 offset=0, limit=1000, paginate=True):
        return {'total': 0, 'dataframes': []}

    def delete(self, begin=None, end=None, filters=None):
        return 0

    def total(self, groupby=None, begin=None, end=None, metric_types=None,
              filters=None, custom_fields=None, offset=0, limit=1000,
              paginate=True):
        return {'total': 0, 'results': []}


class GetStorageTest(testtools.TestCase):
    """get_storage() with a test DriverManager around FakeStorage."""

    def setUp(self):
        super().setUp()
        self.conf = cfg.ConfigOpts()
        self.managers = []
        self.driver_manager = self.useFixture(fixtures.MockPatch(
            'cloudkitty.storage.driver.DriverManager', autospec=True,
            side_effect=self._make_manager)).mock

    def _make_manager(self, namespace, name, invoke_on_load=False,
                      invoke_kwds=None, **kwargs):
        """Build the test manager DriverManager would have loaded."""
        ext = extension.Extension(name, None, FakeStorage,
                                  FakeStorage(**(invoke_kwds or {})))
        mgr = REAL_DRIVER_MANAGER.make_test_instance(
            ext, namespace=namespace)
        self.managers.append(mgr)
        return mgr

    def assertLoaded(self, store, name, **invoke_kwds):
        """Check the one DriverManager call and that its driver came back."""
        self.driver_manager.assert_called_once_with(
            storage.BACKENDS_NAMESPACE, name, invoke_on_load=True,
            invoke_kwds=invoke_kwds)
        self.assertEqual(1, len(self.managers))
        self.assertIs(self.managers[0].driver, store)
        self.assertIsInstance(store, FakeStorage)

    def test_loads_configured_backend(self):
        """The [storage] backend option names the entry point to load."""
        options.register_opts(self.conf)
        self.conf.set_override('backend', 'fake', group='storage')
        store = storage.get_storage(conf=self.conf)
        self.assertLoaded(store, 'fake', conf=self.conf)
        self.assertIs(self.conf, store.conf)
        self.assertEqual({}, store.kwargs)

    def test_passes_other_kwargs_to_backend(self):
        """Keywords other than backend and version reach the constructor."""
        store = storage.get_storage(conf=self.conf, backend='fake',
                                    connection='sqlite://', pool=3)
        self.assertLoaded(store, 'fake', conf=self.conf,
                          connection='sqlite://', pool=3)
        self.assertEqual({'connection': 'sqlite://', 'pool': 3},
                         store.kwargs)

    def test_registers_storage_options(self):
        """get_storage() registers [storage] on the conf it is given."""
        storage.get_storage(conf=self.conf, backend='fake')
        self.assertIn('storage', self.conf)
        self.assertEqual(2400, self.conf.storage.retention_period)

    def test_default_backend_is_upstreams(self):
        """Without configuration, upstream's default influxdb is asked for."""
        storage.get_storage(conf=self.conf)
        self.assertEqual('influxdb', self.driver_manager.call_args[0][1])

    def test_backend_kwarg_overrides_config(self):
        """backend= wins over [storage] backend and is not passed on."""
        options.register_opts(self.conf)
        self.conf.set_override('backend', 'other', group='storage')
        store = storage.get_storage(conf=self.conf, backend='fake')
        self.assertLoaded(store, 'fake', conf=self.conf)

    def test_version_kwarg_not_passed_to_backend(self):
        """version=2 is accepted and never reaches the backend."""
        store = storage.get_storage(conf=self.conf, backend='fake',
                                    version=2, connection='sqlite://')
        self.assertLoaded(store, 'fake', conf=self.conf,
                          connection='sqlite://')
        self.assertNotIn('version', store.kwargs)

    def test_version_kwarg_1_without_upstream(self):
        """version=1 without upstream CloudKitty: StorageError, no load."""
        self.useFixture(fixtures.MockPatchObject(
            v1_adapter.importlib, 'import_module',
            side_effect=ImportError('no cloudkitty.storage.v1')))
        exc = self.assertRaises(exceptions.StorageError, storage.get_storage,
                                conf=self.conf, backend='fake', version=1)
        self.assertIn('needs upstream CloudKitty', str(exc))
        self.driver_manager.assert_not_called()

    def test_version_kwarg_0_means_configured(self):
        """A falsy version means the configured one, as in upstream."""
        storage.get_storage(conf=self.conf, backend='fake', version=0)
        self.driver_manager.assert_called_once()

    def test_version_kwarg_as_text(self):
        """version='2', as read from a command line, means 2."""
        storage.get_storage(conf=self.conf, backend='fake', version='2')
        self.driver_manager.assert_called_once()

    def test_version_config_3_rejected(self):
        """[storage] version = 3 is refused by the option itself."""
        options.register_opts(self.conf)
        self.assertRaises(ValueError, self.conf.set_override, 'version', 3,
                          group='storage')

    def test_version_kwarg_3_rejected(self):
        """version=3 raises StorageError and loads nothing."""
        exc = self.assertRaises(exceptions.StorageError, storage.get_storage,
                                conf=self.conf, backend='fake', version=3)
        self.assertIn('versions 1', str(exc))
        self.driver_manager.assert_not_called()

    def test_metrics_conf_goes_to_the_backend(self):
        """conf=<dict> (upstream's metrics.yml) is passed on; CONF is read."""
        global_conf = cfg.ConfigOpts()
        self.useFixture(fixtures.MockPatch('oslo_config.cfg.CONF',
                                           new=global_conf))
        metrics = {'metrics': {'cpu': {'unit': 'instance'}}}
        store = storage.get_storage(conf=metrics, backend='fake')
        self.assertLoaded(store, 'fake', conf=metrics)
        self.assertIs(global_conf, store.conf)
        self.assertIs(metrics, store.metrics_conf)

    def test_period_passed_inside_cloudkitty(self):
        """With [collect] period registered, period= reaches the backend."""
        self.conf.register_opt(cfg.IntOpt('period', default=600),
                               group='collect')
        store = storage.get_storage(conf=self.conf, backend='fake')
        self.assertLoaded(store, 'fake', conf=self.conf, period=600)
        self.assertEqual(600, store.period)

    def test_default_conf_is_cfg_conf(self):
        """conf=None reads, and registers on, the global cfg.CONF."""
        global_conf = cfg.ConfigOpts()
        self.useFixture(fixtures.MockPatch('oslo_config.cfg.CONF',
                                           new=global_conf))
        store = storage.get_storage(backend='fake')
        self.assertLoaded(store, 'fake', conf=global_conf)
        self.assertIn('storage', global_conf)


class RealEntryPointsTest(testtools.TestCase):
    """get_storage() and available_backends() on installed entry points."""

    def test_unknown_backend(self):
        """An unknown name raises BackendNotFound listing installed ones."""
        exc = self.assertRaises(exceptions.BackendNotFound,
                                storage.get_storage,
                                conf=cfg.ConfigOpts(), backend='nope')
        self.assertIsInstance(exc, exceptions.StorageError)
        self.assertIsInstance(exc.__cause__, stevedore_exc.NoMatches)
        self.assertEqual('nope', exc.name)
        self.assertIn('sqlalchemy', exc.available)
        self.assertEqual(sorted(exc.available), exc.available)
        self.assertIn("'nope'", str(exc))
        self.assertIn('sqlalchemy', str(exc))

    def test_unknown_configured_backend(self):
        """An unknown [storage] backend raises BackendNotFound too."""
        conf = cfg.ConfigOpts()
        options.register_opts(conf)
        conf.set_override('backend', 'nope', group='storage')
        exc = self.assertRaises(exceptions.BackendNotFound,
                                storage.get_storage, conf=conf)
        self.assertEqual('nope', exc.name)

    def test_sqlalchemy_backend_loads(self):
        """The installed sqlalchemy entry point gives a SQLAlchemyStorage."""
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, 'x.sqlite')
        conf = cfg.ConfigOpts()
        store = storage.get_storage(conf=conf, backend='sqlalchemy',
                                    connection='sqlite:///' + path)
        self.addCleanup(store.close)
        self.assertIsInstance(store, sql_storage.SQLAlchemyStorage)
        self.assertIsInstance(store, v2.BaseStorage)
        self.assertIs(conf, store.conf)
        self.assertIn('x.sqlite', store.location)

    def test_misspelled_keyword_is_an_error(self):
        """A keyword the backend does not take raises TypeError."""
        tmp = self.useFixture(fixtures.TempDir()).path
        self.assertRaises(TypeError, storage.get_storage,
                          conf=cfg.ConfigOpts(),
                          conection='sqlite:///%s/x.sqlite' % tmp)

    def test_available_backends(self):
        """available_backends() lists the installed names, sorted."""
        names = storage.available_backends()
        self.assertIn('sqlalchemy', names)
        self.assertEqual(sorted(names), names)
