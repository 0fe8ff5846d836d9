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
"""cloudkitty-storage finds the jsonfile backend by its name.

Installing the package registers ``jsonfile`` in the
``cloudkitty.storage.v2.backends`` entry-point namespace; nothing else
tells cloudkitty-storage that the backend exists.
"""

import importlib.metadata
import os

import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture
import testtools

from cloudkitty import storage
from cloudkitty.storage import exceptions

from ck_jsonfile import options
from ck_jsonfile import storage as jsonfile


class EntryPointTest(testtools.TestCase):
    """cloudkitty-storage loads the backend through its entry point."""

    def setUp(self):
        super().setUp()
        self.conf = cfg.ConfigOpts()
        self.useFixture(config_fixture.Config(self.conf))
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'storage.jsonl')

    def test_available_backends_lists_jsonfile(self):
        """available_backends() lists jsonfile beside the built-in ones."""
        names = storage.available_backends()
        self.assertIn('jsonfile', names)
        self.assertIn('sqlalchemy', names)

    def test_get_storage_by_name(self):
        """get_storage(backend='jsonfile') builds a JSONFileStorage."""
        store = storage.get_storage(conf=self.conf, backend='jsonfile',
                                    path=self.path)
        self.assertIsInstance(store, jsonfile.JSONFileStorage)
        self.assertEqual(self.path, store.path)
        self.assertTrue(store.features.concurrent_writers)

    def test_get_storage_from_conf(self):
        """``[storage] backend = jsonfile`` selects it, with its options."""
        for group, opts in storage.list_opts():
            self.conf.register_opts(opts, group=group)
        options.register_opts(self.conf)
        self.conf.set_override('backend', 'jsonfile', group='storage')
        self.conf.set_override('path', self.path, group='storage_jsonfile')
        store = storage.get_storage(conf=self.conf)
        self.assertIsInstance(store, jsonfile.JSONFileStorage)
        store.init()
        self.assertTrue(os.path.exists(self.path))

    def test_unknown_backend_names_jsonfile(self):
        """BackendNotFound lists jsonfile among the installed backends."""
        exc = self.assertRaises(exceptions.BackendNotFound,
                                storage.get_storage, conf=self.conf,
                                backend='jsonfil')
        self.assertIn('jsonfile', exc.available)

    def test_options_are_published(self):
        """oslo-config-generator finds [storage_jsonfile] by namespace."""
        found = importlib.metadata.entry_points(group='oslo.config.opts',
                                                name='ck_jsonfile')
        self.assertEqual([options.list_opts],
                         [entry.load() for entry in found])
        self.assertEqual(['path'], [opt.name for _, opts in
                                    options.list_opts() for opt in opts])

    def test_storage_list_opts_finds_them(self):
        """cloudkitty.storage.list_opts() lists [storage_jsonfile]."""
        self.assertIn(('storage_jsonfile', options.jsonfile_opts),
                      storage.list_opts())
        self.assertEqual(options.list_opts(),
                         storage.list_opts('jsonfile')[1:])
