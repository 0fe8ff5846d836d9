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
"""The ``[storage_gnocchi]`` options.

Two ways to authenticate: ``basic`` (a standalone Gnocchi whose
``[api] auth_mode`` is ``basic``: only a user name, no password) and
``keystone`` (a cloud deployment: the usual keystoneauth1 ``auth_type`` and
session options of this group, and the endpoint found in the catalog
unless ``endpoint`` is set).

Upstream CloudKitty defines this group too (for its v1 hybrid storage):
``interface`` and ``archive_policy_name`` have upstream's types and
defaults, and :func:`register_opts` lets both definitions share one conf.
Upstream's ``archive_policy_definition`` is not read: this backend derives
its policy from ``granularity``.
"""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

from cloudkitty.storage import options

GROUP = 'storage_gnocchi'
#: Where upstream CloudKitty defines this group.
UPSTREAM_MODULE = 'cloudkitty.storage.v1.hybrid.backends.gnocchi'

gnocchi_opts = [
    cfg.StrOpt('auth_mode', default='basic', choices=['basic', 'keystone'],
               help='How to authenticate to Gnocchi: "basic" for a '
                    'standalone Gnocchi, "keystone" for a cloud.'),
    cfg.StrOpt('basic_user', default='admin',
               help='User name sent in basic mode. Gnocchi derives '
                    'resource ids from it, so never change it once data '
                    'is stored; it needs the admin role to create the '
                    'archive policy and resource types.'),
    cfg.URIOpt('endpoint', schemes=['http', 'https'],
               help='Gnocchi API URL, e.g. http://127.0.0.1:8041. Required '
                    'in basic mode; in keystone mode the catalog is used '
                    'when it is not set.'),
    cfg.StrOpt('region_name',
               help='Region of the Gnocchi endpoint (keystone mode).'),
    cfg.StrOpt('interface', default='internalURL',
               help='Endpoint interface looked up in the catalog (keystone '
                    'mode): public, internal or admin, with or without '
                    'the URL suffix.'),
    cfg.StrOpt('archive_policy_name', default='rating',
               help='Archive policy of the metrics of the packs. It needs '
                    'a granularity of one second and one of the '
                    'collection period, 32 days each, with the sum, '
                    'count, min and max aggregations; init() creates it '
                    'so when it is missing.'),
    cfg.IntOpt('granularity', default=3600, min=1,
               help='Coarse granularity of the archive policy, in '
                    'seconds: the collection period. Every frame must '
                    'start on a multiple of it (UTC, from the epoch), '
                    'and a pack holds up to this many series (at most '
                    '28,800) before it continues in another part.'),
    cfg.BoolOpt('manage_archive_policy', default=True,
                help='Whether init() creates the archive policy when it '
                     'is missing. An existing policy is checked either '
                     'way.'),
    cfg.StrOpt('resource_type_prefix', default='cloudkitty_',
               regex=r'^[a-z][a-z0-9_]{0,39}$',
               help='Prefix of the resource types this backend creates: '
                    '<prefix>pack (the points, per metric type, '
                    'project_id, period and month), <prefix>rating (the '
                    'catalogue of the rated series) and <prefix>label '
                    '(the label keys). Two stores on one Gnocchi need two '
                    'prefixes.'),
    cfg.IntOpt('batch_size', default=500, min=1,
               help='Resources per batch request when pushing measures.'),
    cfg.IntOpt('write_workers', default=4, min=1,
               help='Requests a push (or a delete) sends at a time.'),
]


def register_opts(conf):
    """Register ``[storage_gnocchi]`` and keystoneauth1's session options."""
    options.register_group(conf, GROUP, gnocchi_opts,
                           upstream_module=UPSTREAM_MODULE)
    options.register_group(conf, GROUP, ks_loading.get_session_conf_options())
    options.register_group(conf, GROUP,
                           ks_loading.get_auth_common_conf_options())


def list_opts():
    """The backend's options, for ``oslo-config-generator``.

    Published as the ``oslo.config.opts`` entry point
    ``cloudkitty.storage.gnocchi``.

    :returns: ``[(group, [options])]``: the group's own options and
        keystoneauth1's session and auth options.
    """
    return [(GROUP, gnocchi_opts
             + ks_loading.get_session_conf_options()
             + ks_loading.get_auth_common_conf_options())]
