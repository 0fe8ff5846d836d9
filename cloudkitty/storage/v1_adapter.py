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
"""Storage version 1: upstream CloudKitty's v1 backends behind the v2 API.

This library implements storage v2 only. ``get_storage(version=1)`` is
served, as in upstream CloudKitty, by a v1 backend (an entry point of
``cloudkitty.storage.v1.backends``: upstream's ``sqlalchemy`` or
``hybrid``) wrapped in :class:`V1StorageAdapter`. Without upstream
CloudKitty installed there is no v1 backend, and loading one raises a
:class:`~cloudkitty.storage.exceptions.StorageError` that says so.

v1 backends keep naive datetimes in UTC and speak upstream's legacy point
format; the adapter converts on the way in and out, as upstream's own
adapter does, using upstream's ``cloudkitty.utils.tz``.
"""

import importlib

from oslo_log import log

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage import v2

LOG = log.getLogger(__name__)

#: The entry-point namespace of upstream's v1 backends.
NAMESPACE = 'cloudkitty.storage.v1.backends'


def load(name, storage_args):
    """Build a :class:`V1StorageAdapter` over the v1 backend ``name``.

    :raises cloudkitty.storage.exceptions.StorageError: when upstream
        CloudKitty (which holds every v1 backend) is not installed.
    """
    try:
        importlib.import_module('cloudkitty.storage.v1')
        tz = importlib.import_module('cloudkitty.utils.tz')
    except ImportError as exc:
        raise exceptions.StorageError(
            'Storage version 1 needs upstream CloudKitty (its '
            'cloudkitty.storage.v1 backends), which is not installed; '
            'this library provides version 2 only') from exc
    from cloudkitty import storage
    backend = storage.load_driver(NAMESPACE, name, storage_args)
    return V1StorageAdapter(backend, tz)


class V1StorageAdapter(v2.BaseStorage):
    """The v2 calls CloudKitty makes, answered by a v1 backend.

    :param backend: the v1 backend instance.
    :param tz: upstream's ``cloudkitty.utils.tz`` module.
    """

    def __init__(self, backend, tz):
        super().__init__()
        self.storage = backend
        self._tz = tz

    def init(self):
        """Initialise the v1 backend."""
        return self.storage.init()

    def _frames_to(self, frames, convert, **kwargs):
        """Apply ``convert`` to the bounds of every frame, in place."""
        for frame in frames:
            if frame.start:
                frame.start = convert(frame.start, **kwargs)
            if frame.end:
                frame.end = convert(frame.end, **kwargs)

    def _naive_utc(self, moment):
        return (self._tz.local_to_utc(moment, naive=True)
                if moment else None)

    def push(self, dataframes, scope_id=None):
        """Append the frames in the v1 legacy format, then commit."""
        if not dataframes:
            return
        self._frames_to(dataframes, self._tz.local_to_utc, naive=True)
        self.storage.append(
            [frame.as_dict(mutable=True, legacy=True)
             for frame in dataframes], scope_id)
        self.storage.commit(scope_id)

    @staticmethod
    def _one_type(metric_types):
        """v1 filters on one type: the first of a list."""
        if isinstance(metric_types, list):
            return metric_types[0] if metric_types else None
        return metric_types

    def retrieve(self, begin=None, end=None, filters=None, metric_types=None,
                 offset=0, limit=100, paginate=True):
        """The v1 time frames of a window, as DataFrames (local time)."""
        tenant_id = filters.get('project_id') if filters else None
        frames = self.storage.get_time_frame(
            self._naive_utc(begin), self._naive_utc(end),
            res_type=self._one_type(metric_types), tenant_id=tenant_id)
        frames = [dataframe.DataFrame.from_dict(frame, legacy=True)
                  for frame in frames]
        self._frames_to(frames, self._tz.utc_to_local)
        return {'total': len(frames), 'dataframes': frames}

    def total(self, **arguments):
        """v1 totals, grouped by ``type`` and ``project_id`` at most."""
        filters = arguments.pop('filters', None)
        tenant_id = filters.get('project_id') if filters else None
        if filters:
            arguments['tenant_id'] = tenant_id
        groupby = arguments.get('groupby')
        arguments['groupby'] = self.get_storage_groupby(groupby)
        metric_types = arguments.pop('metric_types', None)
        if metric_types:
            arguments['service'] = self._one_type(metric_types)
        arguments['begin'] = self._naive_utc(arguments.get('begin'))
        arguments['end'] = self._naive_utc(arguments.get('end'))
        results = self.storage.get_total(**arguments)
        for result in results:
            if result.get('tenant_id') is None:
                result['tenant_id'] = tenant_id
            if result.get('rate') is None:
                result['rate'] = float(0)
            result['type'] = (result.get('res_type')
                              if groupby and 'type' in groupby else None)
            for bound in ('begin', 'end'):
                if result.get(bound):
                    result[bound] = self._tz.utc_to_local(result[bound])
        return {'total': len(results), 'results': results}

    @staticmethod
    def get_storage_groupby(groupby):
        """The v1 group-by string of a v2 groupby list."""
        v1_names = {'type': 'res_type', 'project_id': 'tenant_id'}
        names = []
        for entry in set(groupby or ()):
            if entry in v1_names:
                names.append(v1_names[entry])
            else:
                LOG.warning('Storage v1 cannot group by %s', entry)
        return ','.join(names) or None

    def get_tenants(self, begin, end):
        """The scopes the v1 backend holds data for."""
        return self.storage.get_tenants(begin, end)

    def get_state(self, tenant_id=None):
        """The last time frame processed for a scope."""
        return self.storage.get_state(tenant_id)

    def delete(self, begin=None, end=None, filters=None):
        """v1 backends cannot delete: logs a warning, deletes nothing."""
        LOG.warning('Storage v1 does not support delete()')
