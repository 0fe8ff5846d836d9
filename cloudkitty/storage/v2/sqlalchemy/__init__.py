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
"""The SQL storage backend: SQLite (default), PostgreSQL and MariaDB/MySQL.

The backend itself is :mod:`cloudkitty.storage.v2.sqlalchemy.storage`.
This package imports it (hence SQLAlchemy and alembic) only when
:class:`SQLAlchemyStorage` or :class:`SQLAlchemyFeatures` is first read
from it, so that :mod:`cloudkitty.storage.v2.sqlalchemy.options` can be
imported to list the options without loading the backend.
"""

import importlib

#: The names this package re-exports from its ``storage`` module.
_LAZY = frozenset({'SQLAlchemyStorage', 'SQLAlchemyFeatures'})


def __getattr__(name):
    """Import the backend module when one of :data:`_LAZY` is read."""
    if name not in _LAZY:
        # NOTE: no fallback to the storage module: the import system asks
        # the package for submodules (``from ... import options``) and
        # must then get an AttributeError, not the heavy module.
        raise AttributeError('module %r has no attribute %r'
                             % (__name__, name))
    value = getattr(importlib.import_module(__name__ + '.storage'), name)
    globals()[name] = value
    return value


def __dir__():
    """The package's names, the lazily imported ones included."""
    return sorted(set(globals()) | _LAZY)
