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
"""The shape of the conformance suite, checked without any backend.

A third party takes the suite, or some of its mixins, from
:mod:`cloudkitty.tests.storage.v2.suite`: each module holds one mixin,
the whole suite composes them all, no test name is defined twice, and
importing the suite pulls in no backend and none of our test servers.
"""

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import unittest

import testtools

from cloudkitty.tests.storage.v2 import base_functional
from cloudkitty.tests.storage.v2 import suite
from cloudkitty.tests.storage.v2.suite import base

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))))
#: The developer guide, which lists every module of the suite.
GUIDE = os.path.join(REPO, 'doc', 'source', 'developer', 'storage.rst')
#: Modules of the suite package that hold no mixin.
PLUMBING = ('base', 'common')
#: What importing the suite must not load: our test servers and their
#: provisioning, the backends' packages and their client libraries.
FORBIDDEN = ('cloudkitty.tests.daemon', 'cloudkitty.tests.influxdb_server',
             'cloudkitty.tests.gnocchi_server',
             'cloudkitty.tests.influxdb_provision',
             'cloudkitty.tests.gnocchi_provision',
             'cloudkitty.tests.sql_provision',
             'cloudkitty.storage.v2.sqlalchemy',
             'cloudkitty.storage.v2.influxdb',
             'cloudkitty.storage.v2.gnocchi', 'sqlalchemy', 'alembic',
             'influxdb', 'gnocchiclient')


def mixin(module_name, class_name):
    """Return the mixin class ``class_name`` of a suite module."""
    module = importlib.import_module('%s.%s' % (suite.__name__,
                                                module_name))
    return getattr(module, class_name)


def test_names(cls):
    """Return the test method names a loader finds on ``cls``."""
    return set(unittest.TestLoader().getTestCaseNames(cls))


class SuiteLayoutTest(testtools.TestCase):
    """One mixin per module, all of them in BaseFunctionalStorageTest."""

    def test_every_module_is_listed(self):
        modules = {info.name for info in pkgutil.iter_modules(
            suite.__path__)}
        self.assertEqual(modules - set(PLUMBING),
                         {name for name, _ in suite.MIXINS})

    def test_mixins_are_plain_documented_classes(self):
        for module_name, class_name in suite.MIXINS:
            cls = mixin(module_name, class_name)
            # NOTE: a TestCase would be collected, and run, on its own.
            self.assertFalse(issubclass(cls, unittest.TestCase), class_name)
            self.assertIn('Data:', cls.__doc__ or '', class_name)
            self.assertNotEqual(set(), {
                name for name in vars(cls) if name.startswith('test_')},
                class_name)

    def test_base_functional_composes_every_mixin(self):
        self.assertEqual(
            (base.StorageTestBase,) + tuple(
                mixin(*entry) for entry in suite.MIXINS),
            base_functional.BaseFunctionalStorageTest.__bases__)

    def test_no_test_name_is_defined_twice(self):
        # NOTE: a second definition would hide the first one's test or
        # helper in the composed class.
        owners = {}
        for module_name, class_name in suite.MIXINS:
            for name in vars(mixin(module_name, class_name)):
                if not name.startswith('__'):
                    owners.setdefault(name, []).append(class_name)
        self.assertEqual({}, {name: classes for name, classes
                              in owners.items() if len(classes) > 1})

    def test_a_subset_runs_only_its_tests(self):
        class TotalsOnly(base.StorageTestBase, mixin('total', 'TotalTests'),
                         mixin('groupby', 'GroupbyTests')):
            storage_backend = 'sqlalchemy'

        expected = {name for entry in (('total', 'TotalTests'),
                                       ('groupby', 'GroupbyTests'))
                    for name in vars(mixin(*entry))
                    if name.startswith('test_')}
        self.assertEqual(expected, test_names(TotalsOnly))
        self.assertLess(len(expected), len(test_names(
            base_functional.BaseFunctionalStorageTest)))

    def test_developer_guide_lists_every_module(self):
        if not os.path.exists(GUIDE):
            self.skipTest('no doc/ beside this package (installed)')
        with open(GUIDE, encoding='utf-8') as guide:
            text = guide.read()
        section = text[text.index('\nTesting\n'):]
        for name in PLUMBING + tuple(name for name, _ in suite.MIXINS):
            self.assertIn('\n``%s``\n' % name, section, name)
        for module_name, class_name in suite.MIXINS:
            self.assertIn('``%s``' % class_name, section, class_name)

    def test_unknown_expected_failure_is_refused(self):
        def define():
            class Typo(base.StorageTestBase, mixin('push', 'PushTests')):
                storage_backend = 'sqlalchemy'
                expected_failures = {'test_push_round_trp': 'typo'}
        self.assertRaises(TypeError, define)


class SuiteImportsTest(testtools.TestCase):
    """What a third party imports to get the suite stays small."""

    def test_no_backend_and_no_test_server(self):
        code = ('import json, sys\n'
                'import cloudkitty.tests.functional_env\n'
                'import cloudkitty.tests.storage.v2.base_functional\n'
                'print(json.dumps(sorted(sys.modules)))\n')
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
        proc = subprocess.run([sys.executable, '-c', code], env=env,
                              capture_output=True, text=True, timeout=300)
        self.assertEqual(0, proc.returncode, proc.stderr)
        loaded = json.loads(proc.stdout)
        self.assertIn('cloudkitty.tests.storage.v2.suite.differential',
                      loaded)
        self.assertEqual([], [name for name in loaded
                              if name.split('.')[0] in FORBIDDEN
                              or name in FORBIDDEN
                              or name.startswith(tuple(
                                  prefix + '.' for prefix in FORBIDDEN))])
