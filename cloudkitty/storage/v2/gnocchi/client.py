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
"""The few Gnocchi calls the backend makes, through gnocchiclient.

Every call goes through :meth:`Client.call`, which turns connection
failures into :class:`~cloudkitty.storage.exceptions.BackendUnavailable`
and other client errors into
:class:`~cloudkitty.storage.exceptions.StorageError` (the cause kept),
so that no gnocchiclient or keystoneauth1 exception escapes.
"""

import time

from oslo_log import log

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.gnocchi import options

LOG = log.getLogger(__name__)

#: Resources a search returns per page (Gnocchi's default maximum).
PAGE = 1000
#: How many times a read (or another request that is safe to repeat) is
#: sent when Gnocchi answers it with an error it may not give again; see
#: :meth:`Client.read`.
READ_ATTEMPTS = 3
#: Seconds before the second attempt; doubled before each next one.
RETRY_DELAY = 0.5
#: The server error repeated: what Gnocchi's API answers when a request
#: raised an unhandled exception, as its races do (see the Gnocchi page of
#: the admin guide). 502, 503 and 504 come from what stands in front of
#: an API that is down, out of workers or too slow; repeating a read then
#: only adds to its load.
RETRY_STATUS = 500
#: The ``cause`` of the HTTP 400 that Gnocchi answers when it finds a
#: search body invalid; repeated only for the searches this backend
#: builds (:meth:`Client.read_search`).
INVALID_INPUT = 'Invalid input'

# NOTE: gnocchiclient (the [gnocchi] extra) is imported by the first Client,
# not with this module: the package is imported to list its options
# (cloudkitty.storage.list_opts), which must not load the client.
gnocchi_auth = gnocchi_exc = gnocchi_client = ks_exc = ks_loading = None


def _import_library():
    """Import gnocchiclient; return whether it is installed."""
    global gnocchi_auth, gnocchi_exc, gnocchi_client, ks_exc, ks_loading
    if gnocchi_client is None:
        try:
            from gnocchiclient import auth
            from gnocchiclient import exceptions as client_exc
            from gnocchiclient.v1 import client as v1_client
            from keystoneauth1 import exceptions as ks_exceptions
            from keystoneauth1 import loading
        except ImportError:
            return False
        gnocchi_auth, gnocchi_exc, gnocchi_client = auth, client_exc, v1_client
        ks_exc, ks_loading = ks_exceptions, loading
    return True


def unknown_resources(exc):
    """Return the ids a batch push named as unknown resources, or None."""
    detail = getattr(exc, 'message', None)
    if isinstance(detail, dict) and detail.get('cause') == \
            'Unknown resources':
        return [item['resource_id'] for item in detail.get('detail', ())]
    return None


def is_invalid_input(exc):
    """Tell whether a BadRequest is Gnocchi's refusal of a request body.

    Gnocchi answers a body its schema refuses with a description whose
    ``cause`` is ``Invalid input`` (gnocchiclient keeps that dict as the
    exception's ``message``).
    """
    detail = getattr(exc, 'message', None)
    return isinstance(detail, dict) and detail.get('cause') == INVALID_INPUT


class Client:
    """A gnocchiclient Client built from ``[storage_gnocchi]``.

    :param conf: the ConfigOpts holding the group.
    """

    def __init__(self, conf):
        if not _import_library():
            raise exceptions.BackendUnavailable(
                'gnocchi', '(no client)',
                'gnocchiclient is not installed: pip install '
                "'cloudkitty-storage[gnocchi]'")
        group = conf.storage_gnocchi
        self.location = group.endpoint or (
            '(keystone catalog)' if group.auth_mode == 'keystone'
            else '(no endpoint)')
        if group.auth_mode == 'basic':
            if not group.endpoint:
                raise exceptions.BackendUnavailable(
                    'gnocchi', self.location,
                    '[storage_gnocchi] endpoint is required in basic mode')
            auth = gnocchi_auth.GnocchiBasicPlugin(
                user=group.basic_user, endpoint=group.endpoint)
        else:
            auth = ks_loading.load_auth_from_conf_options(
                conf, options.GROUP)
        session = ks_loading.load_session_from_conf_options(
            conf, options.GROUP, auth=auth)
        adapter = {'interface': group.interface}
        if group.region_name:
            adapter['region_name'] = group.region_name
        if group.auth_mode == 'keystone' and group.endpoint:
            adapter['endpoint_override'] = group.endpoint
        self.api = gnocchi_client.Client(session=session,
                                         adapter_options=adapter)

    def call(self, function, *args, **kwargs):
        """Call a gnocchiclient method, translating its errors.

        gnocchiclient's NotFound, Conflict and BadRequest pass through, for
        the caller to decide what they mean.
        """
        try:
            return function(*args, **kwargs)
        except (gnocchi_exc.NotFound, gnocchi_exc.Conflict,
                gnocchi_exc.BadRequest):
            raise
        except (ks_exc.ConnectionError, gnocchi_exc.ConnectionFailure,
                gnocchi_exc.ConnectionTimeout,
                gnocchi_exc.UnknownConnectionError,
                gnocchi_exc.SSLError) as exc:
            raise exceptions.BackendUnavailable(
                'gnocchi', self.location, exc) from exc
        except (gnocchi_exc.ClientException, ks_exc.ClientException) as exc:
            raise exceptions.StorageError(
                'Gnocchi at %s failed: %s' % (self.location, exc)) from exc

    def read(self, function, *args, **kwargs):
        """Call a gnocchiclient method that is safe to repeat, as call().

        An HTTP 500 (:data:`RETRY_STATUS`) is logged and the request sent
        again, :data:`READ_ATTEMPTS` times at most, :data:`RETRY_DELAY`
        seconds apart and doubling: a busy Gnocchi API may fail a request
        it serves the next time (see the Gnocchi page of the admin
        guide). Nothing else is repeated: other server errors, client
        errors (4xx) and unreachable servers are raised at once.

        :returns: what ``function`` returns.
        :raises exceptions.StorageError: the last attempt failed.
        """
        return self._repeat(function, args, kwargs, search=False)

    def read_search(self, function, *args, **kwargs):
        """As read(), for a request whose body holds a search we built.

        Gnocchi 4.7.1 validates a search body against a schema that
        another request may be rebuilding (the Gnocchi page of the admin
        guide), and then refuses a valid search with HTTP 400, cause
        ``Invalid input`` (:data:`INVALID_INPUT`). The searches this
        backend sends are valid by construction, so that answer is
        repeated as an HTTP 500 is; any other 400 passes through at once.

        :returns: what ``function`` returns.
        :raises exceptions.StorageError: the last attempt failed; also
            when Gnocchi refused the search (HTTP 400, after the last
            attempt when its cause was ``Invalid input``): the search is
            ours, not the caller's, so its refusal is a storage failure,
            with gnocchiclient's BadRequest as its cause.
        """
        try:
            return self._repeat(function, args, kwargs, search=True)
        except gnocchi_exc.BadRequest as exc:
            raise exceptions.StorageError(
                'Gnocchi at %s refused a search (HTTP 400, %s attempt(s)): '
                '%s' % (self.location, READ_ATTEMPTS if is_invalid_input(exc)
                        else 1, exc)) from exc

    def _repeat(self, function, args, kwargs, search):
        delay = RETRY_DELAY
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                return self.call(function, *args, **kwargs)
            except gnocchi_exc.BadRequest as exc:
                if (attempt == READ_ATTEMPTS or not search
                        or not is_invalid_input(exc)):
                    raise
                error = exc
            except exceptions.StorageError as exc:
                if (attempt == READ_ATTEMPTS or getattr(
                        exc.__cause__, 'code', None) != RETRY_STATUS):
                    raise
                error = exc.__cause__
            LOG.warning('Gnocchi at %(where)s answered HTTP %(code)d to '
                        '%(what)s (attempt %(attempt)d of %(attempts)d), '
                        'trying again in %(delay).1f s: %(error)s',
                        {'where': self.location, 'code': error.code,
                         'what': getattr(function, '__qualname__', function),
                         'attempt': attempt, 'attempts': READ_ATTEMPTS,
                         'delay': delay, 'error': error})
            time.sleep(delay)
            delay *= 2

    # Searches -----------------------------------------------------------

    def search_all(self, resource_type, search):
        """Return every resource a search matches, following the pages."""
        found = []
        marker = None
        while True:
            page = self.read_search(
                self.api.resource.search, resource_type=resource_type,
                query=search, limit=PAGE, marker=marker, sorts=['id:asc'])
            found.extend(page)
            if len(page) < PAGE:
                return found
            marker = page[-1]['id']

    def aggregates(self, operations, resource_type, search, **kwargs):
        """Run a dynamic aggregate; no resource or metric gives [] or {}.

        Gnocchi answers 404 when no resource matched (or none has the
        metric yet): that is an empty answer, not an error.
        """
        try:
            return self.read_search(self.api.aggregates.fetch, operations,
                                    resource_type=resource_type,
                                    search=search, **kwargs)
        except gnocchi_exc.NotFound:
            return [] if kwargs.get('groupby') else {'measures': {}}

    # Writes -------------------------------------------------------------

    def create_resource(self, resource_type, attributes):
        """Create a resource; one that already exists is fine.

        Safe to repeat, so repeated after a server error: a resource the
        failed attempt created makes the next one a Conflict.
        """
        try:
            self.read(self.api.resource.create, resource_type, attributes)
        except gnocchi_exc.Conflict:
            pass

    def claim_resource(self, resource_type, attributes):
        """Create a resource; return False when its id is already taken.

        Repeated after a server error, as :meth:`create_resource`: a
        repeat that meets the resource its first attempt created returns
        False too, so the caller reads who holds the id.
        """
        try:
            self.read(self.api.resource.create, resource_type, attributes)
        except gnocchi_exc.Conflict:
            return False
        return True

    def push_measures(self, body, resource_type, create, attempts=3):
        """Send one batch of measures, creating unknown resources first.

        Gnocchi refuses a batch that names an unknown resource before it
        stores any of its measures, so the batch is sent again after
        ``create(ids)`` made them.
        """
        for _ in range(attempts):
            try:
                self.call(self.api.metric.batch_resources_metrics_measures,
                          body, create_metrics=True)
                return
            except gnocchi_exc.BadRequest as exc:
                missing = unknown_resources(exc)
                if not missing:
                    raise exceptions.StorageError(
                        'Gnocchi at %s refused measures: %s'
                        % (self.location, exc)) from exc
                create(missing)
        raise exceptions.StorageError(
            'Gnocchi at %s: resources vanished while pushing'
            % self.location)

    def delete_resources(self, ids):
        """Delete resources by id, with their metrics.

        Deleting through the ``generic`` type removes the whole resource;
        Gnocchi's delete by a custom type leaves orphans. Repeated after a
        server error, as a read: deleting again what is gone deletes
        nothing (the count returned may then miss what the failed attempt
        deleted).
        """
        deleted = 0
        ids = list(ids)
        for first in range(0, len(ids), PAGE):
            answer = self.read(self.api.resource.batch_delete,
                               {'in': {'id': ids[first:first + PAGE]}},
                               resource_type='generic')
            deleted += answer.get('deleted', 0)
        return deleted

    def pending_measures(self):
        """Return how many measures metricd has yet to process, in all."""
        status = self.read(self.api.status.get)
        return status['storage']['summary']['measures']

    def wait_processed(self, timeout=120.0):
        """Return once metricd has no measure left to process."""
        deadline = time.monotonic() + timeout
        while True:
            pending = self.pending_measures()
            if pending == 0:
                return
            if time.monotonic() > deadline:
                raise exceptions.StorageError(
                    'Gnocchi at %s still had %d measures to process after '
                    '%.0f s' % (self.location, pending, timeout))
            time.sleep(0.05)
