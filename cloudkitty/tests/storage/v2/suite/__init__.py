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
"""The storage v2 conformance suite, one module per concern.

Each module holds one mixin of tests, a plain class the loader never
collects on its own; :mod:`.base` holds the plumbing they stand on,
:class:`.base.StorageTestBase`, and :mod:`.common` what they share.
:class:`cloudkitty.tests.storage.v2.base_functional.BaseFunctionalStorageTest`
composes them all; a backend may compose a subset instead::

    from cloudkitty.tests.storage.v2.suite import base
    from cloudkitty.tests.storage.v2.suite import push
    from cloudkitty.tests.storage.v2.suite import total


    class MyStoreTotalsTest(base.StorageTestBase, push.PushTests,
                            total.TotalTests):
        storage_backend = 'mystore'

Nothing here imports a backend's package or a test server: the suite
builds its storage through :func:`cloudkitty.storage.get_storage`.
"""

#: The mixin of each module, in the order BaseFunctionalStorageTest
#: composes them: ``(module name, class name)``.
MIXINS = (
    ('push', 'PushTests'),
    ('money', 'MoneyTests'),
    ('labels', 'TypedLabelTests'),
    ('retrieve', 'RetrieveTests'),
    ('filters', 'FilterTests'),
    ('pagination', 'PaginationTests'),
    ('stream', 'StreamTests'),
    ('total', 'TotalTests'),
    ('groupby', 'GroupbyTests'),
    ('custom_fields', 'CustomFieldsTests'),
    ('delete', 'DeleteTests'),
    ('bad_input', 'BadInputTests'),
    ('idempotency', 'IdempotencyTests'),
    ('concurrency', 'ConcurrencyTests'),
    ('retention', 'RetentionTests'),
    ('differential', 'DifferentialTests'),
)
