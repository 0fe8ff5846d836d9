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
"""The ``[storage_sqlalchemy]`` options.

Published as the ``oslo.config.opts`` entry point
``cloudkitty.storage.sqlalchemy``; importing this module loads neither
SQLAlchemy nor the backend (see :mod:`cloudkitty.storage.v2.sqlalchemy`).
"""

from oslo_config import cfg

GROUP = 'storage_sqlalchemy'

#: The ``[storage_sqlalchemy]`` group.
sqlalchemy_opts = [
    cfg.StrOpt('connection', secret=True,
               default='sqlite:///cloudkitty-storage.sqlite',
               help='SQLAlchemy URL of the database. The default is a SQLite '
                    'file in the working directory; use '
                    'postgresql+psycopg://user:password@host/db or '
                    'mysql+pymysql://user:password@host/db in production.'),
    cfg.IntOpt('busy_timeout', default=60, min=1,
               help='Seconds a SQLite writer waits for the lock held by '
                    'another process before giving up.'),
    cfg.IntOpt('connect_timeout', default=10, min=1,
               help='Seconds to wait for a database server to answer.'),
    cfg.IntOpt('pool_size', default=5, min=1,
               help='Connections kept open to a database server.'),
    cfg.ListOpt('rollup_label_keys', default=['project_id'],
                help='Label keys (groupby or metadata keys) whose sums per '
                     'day, type and value are kept beside the daily '
                     'rollup, on SQLite and PostgreSQL: totals grouped by '
                     'one of them (and by type, if asked) read a row per '
                     'value and day instead of one per series and day. Each '
                     'costs a statement per day rolled up; a key with a '
                     'value per series (a resource id) saves nothing: a '
                     'total grouped by one key outside this list is summed '
                     'per series, and the groups of one value merged by the '
                     'client, which suits such keys. A key '
                     'added later is built for earlier days by the roll-ups '
                     'that follow, a week of days each. Processes that share '
                     'a database should share this option.'),
]


def register_opts(conf):
    """Register the ``[storage_sqlalchemy]`` options on ``conf``."""
    conf.register_opts(sqlalchemy_opts, group=GROUP)


def list_opts():
    """The backend's options, for ``oslo-config-generator``.

    :returns: ``[(group, [options])]``.
    """
    return [(GROUP, sqlalchemy_opts)]
