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
"""The ``[storage]`` options and their registration.

Options are plain module-level lists; nothing is registered at import time.
:func:`register_opts` registers them on the conf a caller passes in.
"""

from oslo_config import cfg

#: The ``[storage]`` group.
storage_opts = [
    cfg.StrOpt('backend', default='sqlalchemy',
               help='Name of the storage backend (an entry point of the '
                    'cloudkitty.storage.v2.backends namespace).'),
    cfg.IntOpt('version', default=2, min=1,
               help='Storage API version. Only 2 exists here.'),
    cfg.IntOpt('retention_period', default=2400, min=1,
               help='How long rated data is kept, in hours.'),
]


def register_opts(conf):
    """Register the ``[storage]`` options on ``conf`` (idempotent)."""
    conf.register_opts(storage_opts, group='storage')
