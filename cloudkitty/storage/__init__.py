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
"""Loading the configured storage backend.

Example::

    from cloudkitty import storage

    store = storage.get_storage()          # [storage] backend of cfg.CONF
    store.init()
    store.push([frame], scope_id='project-1')

This module keeps upstream CloudKitty's public names (``get_storage``,
``storage_opts``, ``NoTimeFrame``) and, like upstream, registers the
``[storage]`` options on ``cfg.CONF`` when it is imported, because
upstream's modules rely on that
(``CONF.import_opt('version', 'cloudkitty.storage', 'storage')``).
"""

from importlib import metadata

from oslo_config import cfg
from oslo_log import log
from stevedore import driver
from stevedore import exception as stevedore_exc

from cloudkitty.storage import exceptions
from cloudkitty.storage import options

LOG = log.getLogger(__name__)

#: The entry-point namespace of storage v2 backends.
BACKENDS_NAMESPACE = 'cloudkitty.storage.v2.backends'
#: The packages of this library's own backends: on a name that another
#: package registers too, the other package's backend is loaded.
OWN_BACKEND_PACKAGES = ('cloudkitty.storage.v2.sqlalchemy',
                        'cloudkitty.storage.v2.influxdb',
                        'cloudkitty.storage.v2.gnocchi')

#: The ``[storage]`` options (upstream's name for the list).
storage_opts = options.storage_opts

#: Raised by upstream's orchestrator when no period is left to process.
NoTimeFrame = exceptions.NoTimeFrame

options.register_opts(cfg.CONF)


def list_opts(backend=None):
    """The options of the storage layer, for ``oslo-config-generator``.

    Published as the ``oslo.config.opts`` entry point ``cloudkitty.storage``.
    Each backend's options come from its own entry point (see
    :func:`cloudkitty.storage.options.backend_opts`), so no backend is
    imported, and an installed third-party backend is listed too.

    :param backend: a backend name to list the options of that backend
        alone (with ``[storage]``), or None for every installed backend.
    :returns: a list of ``(group, [options])``, ``[storage]`` first.
    """
    names = available_backends() if backend is None else [backend]
    groups = options.list_opts()
    for name in names:
        groups.extend(options.backend_opts(name))
    return groups


def available_backends():
    """Return the sorted names of the installed storage backends.

    Read from the packages' metadata: no backend is imported.
    """
    return sorted({entry_point.name for entry_point in
                   metadata.entry_points(group=BACKENDS_NAMESPACE)})


def get_storage(conf=None, **kwargs):
    """Load, instantiate and return the configured storage backend.

    :param conf: the :class:`oslo_config.cfg.ConfigOpts` to read
        (``cfg.CONF`` if None), whose ``[storage]`` options are registered
        on it. Any other value (upstream CloudKitty passes its metric
        configuration) is handed to the backend as it is, and ``cfg.CONF``
        is read.
    :param kwargs: ``backend`` and ``version`` override the ``[storage]``
        options; every other keyword is passed to the backend's
        constructor. Inside CloudKitty (when ``[collect] period`` is
        registered) ``period`` is passed too, as upstream does.
    :returns: a :class:`cloudkitty.storage.v2.BaseStorage` (version 2), or
        an adapter over upstream's v1 storage (version 1).
    :raises cloudkitty.storage.exceptions.BackendNotFound: for an unknown
        backend name (the message lists the installed ones).
    :raises cloudkitty.storage.exceptions.StorageError: for version 1
        without upstream CloudKitty installed, or another version.
    :raises TypeError: for a keyword the backend does not take.
    """
    oslo_conf = options.oslo_conf(conf)
    options.register_opts(oslo_conf)
    name = kwargs.pop('backend', None) or oslo_conf.storage.backend
    version = kwargs.pop('version', None) or oslo_conf.storage.version
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise exceptions.StorageError(
            'Storage version %r is not a number' % (version,)) from None
    if 'collect' in oslo_conf and 'period' in oslo_conf.collect:
        kwargs.setdefault('period', oslo_conf.collect.period)
    if version == 1:
        from cloudkitty.storage import v1_adapter
        return v1_adapter.load(name, kwargs)
    if version != 2:
        raise exceptions.StorageError(
            'Storage version %r is not available: versions 1 (upstream '
            'CloudKitty\'s) and 2 exist' % (version,))
    kwargs['conf'] = conf if conf is not None else oslo_conf
    LOG.debug('Loading storage backend %s', name)
    return load_driver(BACKENDS_NAMESPACE, name, kwargs)


def load_driver(namespace, name, kwargs):
    """Instantiate the entry point ``name`` of ``namespace``.

    When two installed packages register ``name`` (upstream CloudKitty
    and this library both have an ``influxdb``), the one that is not this
    library's is loaded: it is what an existing deployment wrote its data
    with.

    :raises cloudkitty.storage.exceptions.BackendNotFound: for an unknown
        name.
    """
    try:
        return driver.DriverManager(namespace, name, invoke_on_load=True,
                                    invoke_kwds=kwargs).driver
    except stevedore_exc.NoMatches as exc:
        raise exceptions.BackendNotFound(name, available_backends()) from exc
    except stevedore_exc.MultipleMatches:
        pass
    candidates = [ep for ep in _entry_points(namespace, name)
                  if not ep.value.startswith(OWN_BACKEND_PACKAGES)]
    if len(candidates) != 1:
        raise exceptions.StorageError(
            'Several packages provide the storage backend %r: %s'
            % (name, ', '.join(ep.value for ep in
                               _entry_points(namespace, name))))
    LOG.info('Storage backend %r is provided by this library and by %s; '
             'loading the latter', name, candidates[0].value)
    return candidates[0].load()(**kwargs)


def _entry_points(namespace, name):
    """Every installed entry point ``name`` of ``namespace``.

    Read from the packages' metadata, importing nothing: a stevedore
    manager would load every backend of the namespace (and CloudKitty's
    tests mock stevedore's managers).
    """
    return [ep for ep in metadata.entry_points(group=namespace)
            if ep.name == name]
