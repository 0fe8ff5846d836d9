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
"""Gabbi fixtures putting upstream's v2 API on the ``sqlalchemy`` backend.

Glue of tools/cloudkitty-upstream: copied into CloudKitty's tree as
cloudkitty/tests/gabbi/sqlalchemy/fixtures.py. Each class stands for the
upstream fixture named in its docstring; the data pushed is upstream's.
"""

import functools
import os
import shutil
import sys
import tempfile
import traceback
from unittest import mock

from cloudkitty.api.v2.dataframes import dataframes as v2_api_dataframes
from cloudkitty.api.v2.summary import summary as v2_api_summary
from cloudkitty import storage
from cloudkitty.storage.v2.sqlalchemy import options as sql_options
from cloudkitty.tests.gabbi import fixtures as upstream

#: Used as is by the copied files.
UTCFixture = upstream.UTCFixture

#: Written to stderr when a fixture fails; tools/cloudkitty-upstream
#: counts each as a failure.
FAILED_MARK = 'cloudkitty-upstream: glue fixture failed'


def _reported(start_fixture):
    """Report a failure of ``start_fixture`` on stderr, not by raising.

    gabbi turns a fixture's exception into skips, then dies reporting the
    error (the suite's tests are gone by then), and takes the stestr
    worker down with every test left in it. Reported this way, the file's
    tests run and fail on their own, and the rest of the suite still runs.
    """
    @functools.wraps(start_fixture)
    def wrapper(self):
        try:
            start_fixture(self)
        except Exception:
            sys.stderr.write('%s: %s\n%s%s\n' % (
                FAILED_MARK, type(self).__name__, traceback.format_exc(),
                FAILED_MARK))
    return wrapper


class SQLConfigFixture(upstream.ConfigFixtureStorageV2):
    """``ConfigFixtureStorageV2`` with ``[storage] backend = sqlalchemy``.

    The storage is a SQLite file in a directory of the fixture's own.
    """

    @_reported
    def start_fixture(self):
        """Configure the API as upstream's fixture does, then our storage."""
        super().start_fixture()
        self.path = tempfile.mkdtemp(prefix='ck-gabbi-')
        sql_options.register_opts(self.conf)
        self.conf.set_override('backend', 'sqlalchemy', 'storage')
        self.conf.set_override(
            'connection',
            'sqlite:///' + os.path.join(self.path, 'storage.sqlite'),
            'storage_sqlalchemy')

    def stop_fixture(self):
        """Reset the conf (upstream's fixture) and remove the file."""
        super().stop_fixture()
        if getattr(self, 'path', None):
            shutil.rmtree(self.path, ignore_errors=True)


class _SQLStorageMixin(object):
    """One storage shared by the API and the data fixture.

    As upstream's Influx fixtures do: get_storage returns it and the API's
    resources are reloaded to pick it up.
    """

    @_reported
    def start_fixture(self):
        """Build the storage, make get_storage return it, push the data."""
        self._get_storage_patch = None
        self.store = storage.get_storage()
        self._get_storage_patch = mock.patch(
            'cloudkitty.storage.get_storage', new=lambda **kw: self.store)
        self._get_storage_patch.start()
        v2_api_summary.Summary.reload()
        v2_api_dataframes.DataFrameList.reload()
        super().start_fixture()

    def stop_fixture(self):
        """Undo start_fixture() and close the storage.

        Like upstream's Influx fixtures, and unlike the v1 ones, nothing
        else is cleaned: the SQLite file goes with SQLConfigFixture.
        """
        if getattr(self, '_get_storage_patch', None):
            self._get_storage_patch.stop()
        getattr(getattr(self, 'store', None), 'close', lambda: None)()


class SQLNowStorageDataFixture(_SQLStorageMixin,
                               upstream.NowStorageDataFixture):
    """``NowInfluxStorageDataFixture``: upstream's v2 sample data.

    Pushed from the start of the month until today.
    """

    initialize_data = upstream.NowInfluxStorageDataFixture.initialize_data


class SQLStorageDataFixture(_SQLStorageMixin, upstream.StorageDataFixture):
    """``InfluxStorageDataFixture``: upstream's two-project data."""
