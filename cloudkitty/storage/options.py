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
"""The ``[storage]`` options, and registration that coexists with upstream.

The ``[storage]`` options have upstream CloudKitty's names, types and
defaults, so that an operator's ``cloudkitty.conf`` means the same thing
with this library installed: in particular ``backend`` defaults to
``influxdb``, upstream's default. :mod:`cloudkitty.storage` registers them
on ``cfg.CONF`` when it is imported, as upstream does; :func:`register_opts`
registers them on any other conf.

Upstream CloudKitty defines ``[storage_influxdb]`` and ``[storage_gnocchi]``
options too, and registers them on ``cfg.CONF`` when its own modules are
imported. :func:`register_group` lets both definitions live on one conf:
upstream's module is imported first, where it is installed, and an option
that is already registered (by name) is kept as it is. Where both define an
option, ours has upstream's name, type and default, so that either
definition reads an operator's file the same way.

Every backend publishes its own options as the ``oslo.config.opts`` entry
point ``cloudkitty.storage.<backend name>`` (a third-party backend too), and
the ``[storage]`` options are ``cloudkitty.storage.core``:
:func:`backend_opts` loads one backend's list, importing that backend's
options module alone, and :func:`cloudkitty.storage.list_opts` gathers the
lists of every installed backend.
"""

import importlib
from importlib import metadata

from oslo_config import cfg
from oslo_log import log

LOG = log.getLogger(__name__)

#: The ``[storage]`` group.
storage_opts = [
    cfg.StrOpt('backend', default='influxdb',
               help='Name of the storage backend: an entry point of the '
                    'cloudkitty.storage.v2.backends namespace (for version '
                    '2), for example sqlalchemy, influxdb or gnocchi. The '
                    'default, influxdb, is upstream CloudKitty\'s.'),
    cfg.IntOpt('version', default=2, min=1, max=2,
               help='Storage API version. 2 is this library\'s; 1 is '
                    'served by upstream CloudKitty\'s v1 storage when it '
                    'is installed.'),
    cfg.IntOpt('retention_period', default=2400, min=1,
               help='How long rated data is kept, in hours (2400: 100 '
                    'days).'),
]


#: The entry-point namespace oslo.config reads option lists from.
OPTS_NAMESPACE = 'oslo.config.opts'
#: The prefix of a backend's entry point in :data:`OPTS_NAMESPACE`: the
#: backend ``name`` publishes ``cloudkitty.storage.<name>``.
BACKEND_OPTS_PREFIX = 'cloudkitty.storage.'


def list_opts():
    """The ``[storage]`` options, for ``oslo-config-generator``.

    Published as the ``oslo.config.opts`` entry point
    ``cloudkitty.storage.core``.

    :returns: ``[('storage', [options])]``.
    """
    return [('storage', storage_opts)]


def backend_opts(name):
    """The options the backend ``name`` publishes.

    Only the module its ``oslo.config.opts`` entry point
    ``cloudkitty.storage.<name>`` names is imported, never the backend.

    :param name: a backend's entry-point name, e.g. ``sqlalchemy``.
    :returns: ``[(group, [options])]``, empty when the backend publishes
        no options.
    """
    groups = []
    for entry_point in _opts_entry_points(BACKEND_OPTS_PREFIX + name):
        groups.extend(entry_point.load()())
    return groups


def _opts_entry_points(name):
    """The distinct ``oslo.config.opts`` entry points called ``name``.

    An editable install can be found twice on ``sys.path``; both name the
    same function, which is loaded once.
    """
    found = {}
    for entry_point in metadata.entry_points(group=OPTS_NAMESPACE,
                                             name=name):
        found.setdefault(entry_point.value, entry_point)
    return [found[value] for value in sorted(found)]


def oslo_conf(conf):
    """The oslo.config conf that a storage ``conf`` argument stands for.

    ``conf`` itself when it is a :class:`oslo_config.cfg.ConfigOpts`, else
    ``cfg.CONF``: upstream CloudKitty passes its metric configuration (a
    dict read from ``metrics.yml``), or nothing, as ``conf``, and its
    backends read their options from ``cfg.CONF``.
    """
    return conf if isinstance(conf, cfg.ConfigOpts) else cfg.CONF


def register_opts(conf):
    """Register the ``[storage]`` options on ``conf`` (idempotent)."""
    register_group(conf, 'storage', storage_opts)


def register_group(conf, group, opts, upstream_module=None):
    """Register ``opts`` in ``group`` beside another package's definitions.

    :param conf: the :class:`oslo_config.cfg.ConfigOpts` to register on.
    :param group: the group name.
    :param opts: our options of the group.
    :param upstream_module: the module of upstream CloudKitty that
        registers this group on ``cfg.CONF`` when imported, or None. When
        ``conf`` is ``cfg.CONF`` and that module can be imported, it is
        imported first: registering ours first would make its import fail
        with ``DuplicateOptError``.
    """
    if upstream_module is not None and conf is cfg.CONF:
        try:
            importlib.import_module(upstream_module)
        except ImportError:
            # NOTE: upstream CloudKitty is not installed (or not whole);
            # then ours are the only definitions.
            pass
    for opt in opts:
        try:
            conf.register_opt(opt, group=group)
        except cfg.DuplicateOptError:
            # NOTE: another package (upstream CloudKitty) defined this
            # option with other help text; both read the same file the
            # same way, so its definition is kept.
            LOG.debug('Option [%s] %s is already defined elsewhere; '
                      'keeping that definition', group, opt.dest)
