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

The tests live in :mod:`cloudkitty.tests.storage.v2.suite`, one mixin per
concern and module (push, money, labels, retrieve, filters, pagination,
stream, total, groupby, custom_fields, delete, bad_input, idempotency,
concurrency, retention, differential); each docstring names the rule of
the contract (``BaseStorage`` in :mod:`cloudkitty.storage.v2`) it checks
and how long its data lives. Expected values are either written by hand or
computed by the reference oracle,
:func:`cloudkitty.storage.v2.query.evaluate_total` and
:func:`~cloudkitty.storage.v2.query.evaluate_retrieve`, over the very frames
the test pushed. A backend that wants only some of them composes
:class:`~cloudkitty.tests.storage.v2.suite.base.StorageTestBase` with those
mixins instead.
"""

from cloudkitty.tests.storage.v2.suite import bad_input
from cloudkitty.tests.storage.v2.suite import base
from cloudkitty.tests.storage.v2.suite import concurrency
from cloudkitty.tests.storage.v2.suite import custom_fields
from cloudkitty.tests.storage.v2.suite import delete
from cloudkitty.tests.storage.v2.suite import differential
from cloudkitty.tests.storage.v2.suite import filters
from cloudkitty.tests.storage.v2.suite import groupby
from cloudkitty.tests.storage.v2.suite import idempotency
from cloudkitty.tests.storage.v2.suite import labels
from cloudkitty.tests.storage.v2.suite import money
from cloudkitty.tests.storage.v2.suite import pagination
from cloudkitty.tests.storage.v2.suite import push
from cloudkitty.tests.storage.v2.suite import retention
from cloudkitty.tests.storage.v2.suite import retrieve
from cloudkitty.tests.storage.v2.suite import stream
from cloudkitty.tests.storage.v2.suite import total


class BaseFunctionalStorageTest(base.StorageTestBase, push.PushTests,
                                money.MoneyTests, labels.TypedLabelTests,
                                retrieve.RetrieveTests, filters.FilterTests,
                                pagination.PaginationTests,
                                stream.StreamTests, total.TotalTests,
                                groupby.GroupbyTests,
                                custom_fields.CustomFieldsTests,
                                delete.DeleteTests, bad_input.BadInputTests,
                                idempotency.IdempotencyTests,
                                concurrency.ConcurrencyTests,
                                retention.RetentionTests,
                                differential.DifferentialTests):
    """The whole conformance suite; subclass it once per configuration.

    Every mixin of :mod:`cloudkitty.tests.storage.v2.suite` on
    :class:`~cloudkitty.tests.storage.v2.suite.base.StorageTestBase`,
    whose docstring lists the hooks: set ``storage_backend`` (and
    ``storage_version``, 2 by default), override ``configure_backend``
    and the class methods ``wait_for_backend`` and ``cleanup_backend``
    as the backend needs. Tests a backend's features rule out skip, with
    the flag as the reason.
    """
