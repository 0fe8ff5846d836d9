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
"""Unit tests of the storage options and of their publication.

Options are module-level lists registered only on the conf a caller passes
in, and :func:`cloudkitty.storage.list_opts` is published under the
``oslo.config.opts`` entry points for ``oslo-config-generator``.
"""

from importlib import metadata
import os
import subprocess
import sys
import textwrap

import fixtures
from oslo_config import cfg
import testtools

from cloudkitty import storage
from cloudkitty.storage import options
from cloudkitty.storage.v2.sqlalchemy import options as sql_options


def opts_by_group():
    """Return list_opts() as ``{group: {option name: option}}``."""
    return {group: {opt.name: opt for opt in opts}
            for group, opts in storage.list_opts()}


class ListOptsTest(testtools.TestCase):
    """list_opts(): groups, names and defaults."""

    def test_groups(self):
        """list_opts() gives [storage], then one group per backend."""
        groups = [group for group, _opts in storage.list_opts()]
        # NOTE: an installed third-party backend adds its own group.
        self.assertEqual('storage', groups[0])
        self.assertTrue({'storage_gnocchi', 'storage_influxdb',
                         'storage_sqlalchemy'} <= set(groups), groups)

    def test_one_backend(self):
        """list_opts(backend) gives [storage] and that backend's group."""
        groups = [group for group, _opts in storage.list_opts('sqlalchemy')]
        self.assertEqual(['storage', 'storage_sqlalchemy'], groups)

    def test_backend_without_options(self):
        """A backend that publishes no options has none, and no error."""
        self.assertEqual([], options.backend_opts('no-such-backend'))

    def test_storage_option_names(self):
        """[storage] holds backend, version and retention_period."""
        names = set(opts_by_group()['storage'])
        self.assertTrue({'backend', 'version', 'retention_period'} <= names,
                        names)

    def test_sqlalchemy_option_names(self):
        """[storage_sqlalchemy] holds connection and its tuning options."""
        names = set(opts_by_group()['storage_sqlalchemy'])
        expected = {'connection', 'busy_timeout', 'connect_timeout',
                    'pool_size'}
        self.assertTrue(expected <= names, names)

    def test_influxdb_option_names(self):
        """[storage_influxdb] uses upstream CloudKitty's option names."""
        names = set(opts_by_group()['storage_influxdb'])
        expected = {'host', 'port', 'username', 'password', 'database',
                    'retention_policy', 'use_ssl', 'insecure', 'cafile',
                    'version'}
        self.assertTrue(expected <= names, names)

    def test_gnocchi_option_names(self):
        """[storage_gnocchi] holds auth, archive policy and session options."""
        names = set(opts_by_group()['storage_gnocchi'])
        expected = {'auth_mode', 'basic_user', 'endpoint',
                    'archive_policy_name', 'granularity',
                    'resource_type_prefix', 'batch_size', 'timeout',
                    'cafile', 'insecure', 'auth_type', 'auth_section'}
        self.assertTrue(expected <= names, names)

    def test_storage_defaults(self):
        """[storage] defaults are upstream's: influxdb, 2, 2400 hours."""
        opts = opts_by_group()['storage']
        self.assertEqual('influxdb', opts['backend'].default)
        self.assertEqual(2, opts['version'].default)
        self.assertEqual(2400, opts['retention_period'].default)

    def test_connection_default_is_secret(self):
        """connection defaults to a local SQLite file and is secret."""
        connection = opts_by_group()['storage_sqlalchemy']['connection']
        self.assertEqual('sqlite:///cloudkitty-storage.sqlite',
                         connection.default)
        self.assertTrue(connection.secret)

    def test_lists_are_the_module_lists(self):
        """list_opts() returns the very lists the modules register."""
        groups = dict(storage.list_opts())
        self.assertIs(options.storage_opts, groups['storage'])
        self.assertIs(storage.storage_opts, groups['storage'])
        self.assertIs(sql_options.sqlalchemy_opts,
                      groups['storage_sqlalchemy'])

    def test_every_option_has_help(self):
        """Every option has help text for the sample and the docs."""
        for group, opts in storage.list_opts():
            for opt in opts:
                self.assertTrue(opt.help, '%s.%s' % (group, opt.name))


class RegisterOptsTest(testtools.TestCase):
    """register_opts() on a caller's conf."""

    def test_register_twice_is_idempotent(self):
        """Registering both groups twice on one conf is harmless."""
        conf = cfg.ConfigOpts()
        for _ in range(2):
            options.register_opts(conf)
            sql_options.register_opts(conf)
        conf([])
        self.assertEqual('influxdb', conf.storage.backend)
        self.assertEqual(2, conf.storage.version)
        self.assertEqual('sqlite:///cloudkitty-storage.sqlite',
                         conf.storage_sqlalchemy.connection)

    def test_get_storage_twice_on_one_conf(self):
        """Loading a backend twice on one conf registers without error."""
        tmp = self.useFixture(fixtures.TempDir()).path
        conf = cfg.ConfigOpts()
        for name in ('a.sqlite', 'b.sqlite'):
            store = storage.get_storage(
                conf=conf, backend='sqlalchemy',
                connection='sqlite:///' + os.path.join(tmp, name))
            self.addCleanup(store.close)
        self.assertIn('storage', conf)
        self.assertIn('storage_sqlalchemy', conf)

    def test_values_read_from_file(self):
        """Both groups are read from a configuration file."""
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, 'storage.conf')
        with open(path, 'w') as f:
            f.write(textwrap.dedent("""\
                [storage]
                retention_period = 48

                [storage_sqlalchemy]
                connection = sqlite:///other.sqlite
                """))
        conf = cfg.ConfigOpts()
        options.register_opts(conf)
        sql_options.register_opts(conf)
        conf(['--config-file', path])
        self.assertEqual(48, conf.storage.retention_period)
        self.assertEqual('sqlite:///other.sqlite',
                         conf.storage_sqlalchemy.connection)

    def test_only_storage_registered_at_import(self):
        """Importing registers [storage] on cfg.CONF, as upstream does."""
        code = textwrap.dedent("""\
            from oslo_config import cfg
            import cloudkitty.storage
            import cloudkitty.storage.v2
            import cloudkitty.storage.v2.sqlalchemy
            cloudkitty.storage.list_opts()
            print(sorted(
                g for g in ('storage', 'storage_sqlalchemy') if g in cfg.CONF))
            """)
        out = subprocess.run([sys.executable, '-c', code],
                             capture_output=True, text=True, check=True,
                             timeout=120)
        self.assertEqual("['storage']", out.stdout.strip(), out.stderr)


class EntryPointTest(testtools.TestCase):
    """The oslo.config.opts entry point of the distribution."""

    def test_oslo_config_opts_entry_point(self):
        """oslo.config.opts cloudkitty.storage resolves to list_opts."""
        eps = metadata.entry_points(group='oslo.config.opts',
                                    name='cloudkitty.storage')
        self.assertEqual(1, len(eps), eps)
        (ep,) = eps
        self.assertIs(storage.list_opts, ep.load())

    def test_one_entry_point_per_installed_backend(self):
        """Each own backend publishes cloudkitty.storage.<name>."""
        for name in ('sqlalchemy', 'influxdb', 'gnocchi'):
            eps = metadata.entry_points(group='oslo.config.opts',
                                        name='cloudkitty.storage.' + name)
            self.assertEqual(1, len({ep.value for ep in eps}), name)
            groups = [group for group, _opts in eps[0].load()()]
            self.assertEqual(['storage_' + name], groups)

    def test_core_entry_point(self):
        """oslo.config.opts cloudkitty.storage.core lists [storage]."""
        (ep,) = metadata.entry_points(group='oslo.config.opts',
                                      name='cloudkitty.storage.core')
        self.assertEqual([('storage', options.storage_opts)], ep.load()())


class ImportCostTest(testtools.TestCase):
    """Listing options imports no backend and no engine client."""

    HEAVY = ('sqlalchemy', 'alembic', 'influxdb', 'gnocchiclient',
             'cloudkitty.storage.v2.sqlalchemy.storage')

    def imported(self, code):
        """Return which of HEAVY a fresh interpreter running code loads."""
        script = textwrap.dedent("""\
            import sys
            %s
            print(' '.join(m for m in %r if m in sys.modules))
            """) % (code, self.HEAVY)
        out = subprocess.run([sys.executable, '-c', script],
                             capture_output=True, text=True, check=True,
                             timeout=120)
        return out.stdout.strip()

    def test_import_storage(self):
        """import cloudkitty.storage loads no backend."""
        self.assertEqual('', self.imported('import cloudkitty.storage'))

    def test_list_every_option(self):
        """list_opts() reads every backend's options, not its engine."""
        self.assertEqual('', self.imported(
            'import cloudkitty.storage; cloudkitty.storage.list_opts()'))

    def test_options_modules(self):
        """Each backend's options module imports without its engine."""
        for name in ('sqlalchemy', 'influxdb', 'gnocchi'):
            self.assertEqual('', self.imported(
                'import cloudkitty.storage.v2.%s.options' % name), name)

    def test_backend_class_still_reachable(self):
        """The SQL package still gives SQLAlchemyStorage, on first use."""
        self.assertIn('sqlalchemy', self.imported(
            'from cloudkitty.storage.v2.sqlalchemy import SQLAlchemyStorage'))
