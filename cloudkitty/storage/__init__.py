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
"""

from oslo_config import cfg
from oslo_log import log
from stevedore import driver
from stevedore import exception as stevedore_exc

from cloudkitty.storage import exceptions
from cloudkitty.storage import options

LOG = log.getLogger(__name__)

#: The entry-point namespace of storage backends.
BACKENDS_NAMESPACE = 'cloudkitty.storage.v2.backends'

storage_opts = options.storage_opts


def list_opts():
    """Every option of the storage layer, for ``oslo-config-generator``.

    :returns: a list of ``(group, [options])``.
    """
    from cloudkitty.storage.v2.gnocchi import options as gnocchi_options
    from cloudkitty.storage.v2.influxdb import options as influxdb_options
    from cloudkitty.storage.v2.sqlalchemy import options as sql_options
    return [('storage', options.storage_opts),
            ('storage_sqlalchemy', sql_options.sqlalchemy_opts),
            ('storage_influxdb', influxdb_options.influxdb_opts),
            (gnocchi_options.GROUP, gnocchi_options.list_opts())]


def available_backends():
    """Return the sorted names of the installed storage backends."""
    from stevedore import extension
    mgr = extension.ExtensionManager(BACKENDS_NAMESPACE, invoke_on_load=False)
    return sorted(mgr.names())


def get_storage(conf=None, **kwargs):
    """Load, instantiate and return the configured storage backend.

    :param conf: the conf to read (``cfg.CONF`` if None); the ``[storage]``
        options are registered on it.
    :param kwargs: ``backend`` and ``version`` override the ``[storage]``
        options; every other keyword is passed to the backend's constructor.
    :returns: a :class:`cloudkitty.storage.v2.BaseStorage`.
    :raises cloudkitty.storage.exceptions.BackendNotFound: for an unknown
        backend name (the message lists the installed ones).
    :raises cloudkitty.storage.exceptions.StorageError: for a version other
        than 2.
    :raises TypeError: for a keyword the backend does not take.
    """
    conf = conf if conf is not None else cfg.CONF
    options.register_opts(conf)
    name = kwargs.pop('backend', None)
    if name is None:
        name = conf.storage.backend
    version = kwargs.pop('version', None)
    if version is None:
        version = conf.storage.version
    if isinstance(version, str) and version.strip().isdigit():
        version = int(version)
    if version != 2:
        raise exceptions.StorageError(
            'Storage version %r is not available: this library only '
            'provides storage v2 (set [storage] version = 2)' % (version,))
    LOG.debug('Loading storage backend %s', name)
    try:
        mgr = driver.DriverManager(BACKENDS_NAMESPACE, name,
                                   invoke_on_load=True,
                                   invoke_kwds=dict(kwargs, conf=conf))
    except stevedore_exc.NoMatches as exc:
        raise exceptions.BackendNotFound(name, available_backends()) from exc
    return mgr.driver
