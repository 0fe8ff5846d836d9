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
"""Upstream's v2 summary and dataframes gabbi files, on ``sqlalchemy``.

Glue of tools/cloudkitty-upstream: copied into CloudKitty's tree as
cloudkitty/tests/gabbi/sqlalchemy/test_gabbi.py, next to the copies of
the YAML files (only their fixtures renamed) and fixtures.py.
"""

import os

from gabbi import driver

from cloudkitty.tests.gabbi import fixtures as upstream_fixtures
from cloudkitty.tests.gabbi.sqlalchemy import fixtures


def load_tests(loader, tests, pattern):
    """Build the gabbi tests of the ``gabbits`` directory next to us."""
    test_dir = os.path.join(os.path.dirname(__file__), 'gabbits')
    return driver.build_tests(test_dir, loader, host=None,
                              intercept=upstream_fixtures.setup_app,
                              fixture_module=fixtures)
