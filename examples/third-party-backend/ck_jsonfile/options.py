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
"""The ``[storage_jsonfile]`` options.

A plain module-level list that imports nothing optional; :func:`register_opts`
registers it on the conf a caller passes in, and :func:`list_opts` is
published under ``oslo.config.opts`` for ``oslo-config-generator``.
"""

from oslo_config import cfg

#: The option group of the backend.
GROUP = 'storage_jsonfile'

#: The ``[storage_jsonfile]`` options.
jsonfile_opts = [
    cfg.StrOpt('path', default='cloudkitty-storage.jsonl',
               help='The JSON-lines file holding the rated data; a relative '
                    'path is relative to the working directory. Its '
                    'directory must exist and be writable: the backend also '
                    'keeps <path>.lock and temporary files there.'),
]


def register_opts(conf):
    """Register the ``[storage_jsonfile]`` options on ``conf`` (idempotent).

    :param conf: an :class:`oslo_config.cfg.ConfigOpts`.
    """
    conf.register_opts(jsonfile_opts, group=GROUP)


def list_opts():
    """Every option of the backend, for ``oslo-config-generator``.

    :returns: ``[('storage_jsonfile', [options])]``.
    """
    return [(GROUP, jsonfile_opts)]
