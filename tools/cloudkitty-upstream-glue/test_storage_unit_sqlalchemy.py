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
"""Upstream's storage v2 unit tests, on the ``sqlalchemy`` backend.

Glue of tools/cloudkitty-upstream: copied into CloudKitty's tree as
cloudkitty/tests/storage/v2/test_storage_unit_sqlalchemy.py. Every test of
upstream's ``StorageUnitTest`` runs once more, on a SQLite file of its own.
"""

import os
import shutil
import tempfile

from oslo_config import cfg
import testscenarios

from cloudkitty.storage.v2.sqlalchemy import options as sql_options
from cloudkitty import tests
from cloudkitty.tests.storage.v2 import test_storage_unit


class SQLAlchemyStorageUnitTest(test_storage_unit.StorageUnitTest):
    """``StorageUnitTest`` with the ``sqlalchemy`` scenario only."""

    scenarios = testscenarios.multiply_scenarios(
        tests.TestCase.scenarios,
        [('sqlalchemy', dict(storage_backend='sqlalchemy'))])

    def setUp(self):
        """Point ``[storage_sqlalchemy] connection`` at a fresh file.

        Upstream's setUp builds the storage, so the URL is set before it
        runs; upstream's conf fixture resets it after the test.
        """
        path = tempfile.mkdtemp(prefix='ck-storage-unit-')
        self.addCleanup(shutil.rmtree, path, True)
        sql_options.register_opts(cfg.CONF)
        cfg.CONF.set_override(
            'connection',
            'sqlite:///' + os.path.join(path, 'storage.sqlite'),
            'storage_sqlalchemy')
        self.addCleanup(cfg.CONF.clear_override, 'connection',
                        'storage_sqlalchemy')
        super().setUp()
        self.addCleanup(getattr(self.storage, 'close', lambda: None))
