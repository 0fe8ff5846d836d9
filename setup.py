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

import setuptools

# NOTE: the compiled per-point steps of the SQL backend, optional: without
# a compiler the package installs and cloudkitty.storage.v2.sqlalchemy.
# fastpath runs its pure-Python form. Declared here, not in setup.cfg:
# pbr's [extension] sections cannot make an extension optional.
SPEEDUPS = setuptools.Extension(
    'cloudkitty.storage.v2.sqlalchemy._speedups',
    sources=['cloudkitty/storage/v2/sqlalchemy/_speedups.c'],
    optional=True)

setuptools.setup(
    setup_requires=['pbr>=6.0.0'],
    pbr=True,
    ext_modules=[SPEEDUPS])
