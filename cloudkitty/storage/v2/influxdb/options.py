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
"""The ``[storage_influxdb]`` options.

Upstream CloudKitty defines this group too. Every option both define has
upstream's name, type and default, so that an operator's configuration
carries over, and :func:`register_opts` lets both definitions share one conf
(see :func:`cloudkitty.storage.options.register_group`). Only the InfluxDB
1.x HTTP API (InfluxQL) is supported: ``version = 2`` is refused when the
backend is built, and upstream's 2.x options (``url``, ``token``, ``org``,
``bucket``, ``query_timeout``) are not offered (a file that sets them is
still read).
"""

from oslo_config import cfg

from cloudkitty.storage import options

#: The group name.
GROUP = 'storage_influxdb'
#: Where upstream CloudKitty defines this group.
UPSTREAM_MODULE = 'cloudkitty.storage.v2.influx'
#: The database used when ``database`` is not set (upstream has no
#: default; its deployments always set one).
DEFAULT_DATABASE = 'cloudkitty'

#: The ``[storage_influxdb]`` group.
influxdb_opts = [
    cfg.IntOpt('version', default=1,
               help='InfluxDB API version. Only 1 (the InfluxDB 1.x HTTP '
                    'API) is supported by this backend.'),
    cfg.StrOpt('host', default='localhost',
               help='InfluxDB host.'),
    cfg.PortOpt('port', default=8086,
                help='InfluxDB HTTP port.'),
    cfg.StrOpt('username',
               help='InfluxDB user name, when authentication is on.'),
    cfg.StrOpt('password', secret=True,
               help='InfluxDB password.'),
    cfg.StrOpt('database',
               help='InfluxDB database, created by init() when missing '
                    '(unset: %s).' % DEFAULT_DATABASE),
    cfg.StrOpt('retention_policy', default='autogen',
               help='Retention policy the points are written to and read '
                    'from.'),
    cfg.BoolOpt('manage_retention_policy', default=True,
                help='Whether init() creates the retention policy when it '
                     'is missing and sets its duration to [storage] '
                     'retention_period. Pushing frames older than the '
                     'policy keeps is refused either way.'),
    cfg.BoolOpt('use_ssl', default=False,
                help='Connect over HTTPS.'),
    cfg.BoolOpt('insecure', default=False,
                help='Do not check the server certificate (HTTPS only).'),
    cfg.StrOpt('cafile',
               help='CA bundle the server certificate is checked against.'),
    cfg.FloatOpt('timeout', default=60, min=0,
                 help='Seconds to wait for an answer of the server.'),
    cfg.IntOpt('pool_size', default=10, min=1,
               help='HTTP connections kept open to the server.'),
    cfg.IntOpt('batch_size', default=5000, min=1,
               help='Points written per HTTP request at most; a write is '
                    'split into requests of even size, at least '
                    'write_workers of them.'),
    cfg.IntOpt('write_workers', default=2, min=1,
               help='HTTP write requests a push sends at a time.'),
    cfg.BoolOpt('compressed_answers', default=False,
                help='Ask the server for gzip-compressed query answers. '
                     'Compressing costs the server more time than sending '
                     'the bytes takes on a local network (the daily '
                     'records total() reads are megabytes of text): turn '
                     'it on for slow links only.'),
]


def register_opts(conf):
    """Register the ``[storage_influxdb]`` options on ``conf``."""
    options.register_group(conf, GROUP, influxdb_opts,
                           upstream_module=UPSTREAM_MODULE)


def list_opts():
    """The backend's options, for ``oslo-config-generator``.

    Published as the ``oslo.config.opts`` entry point
    ``cloudkitty.storage.influxdb``.

    :returns: ``[(group, [options])]``.
    """
    return [(GROUP, influxdb_opts)]
