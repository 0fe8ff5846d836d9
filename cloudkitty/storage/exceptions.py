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
"""The errors raised by the storage layer, all rooted at :class:`StorageError`.

Callers catch :class:`StorageError` for anything the storage layer raises on
purpose. Client and driver exceptions never escape raw: backends re-raise them
as one of these classes with ``raise ... from exc`` so the cause is kept.
"""

from werkzeug import exceptions as http_exceptions


class StorageError(Exception):
    """Root of every error the storage layer raises on purpose."""


class BackendNotFound(StorageError):
    """The configured backend name has no installed entry point.

    :ivar name: the requested backend name.
    :ivar available: sorted names of the installed backends.
    """

    def __init__(self, name, available):
        self.name = name
        self.available = sorted(available)
        super().__init__(
            'Unknown storage backend %r; installed backends: %s'
            % (name, ', '.join(self.available) or '(none)'))


class BackendUnavailable(StorageError):
    """The backend's server cannot be reached or its client is missing.

    :ivar backend: the backend name (``sqlalchemy``, ``gnocchi``...).
    :ivar location: where we tried to connect, never with a password.
    """

    def __init__(self, backend, location, reason):
        self.backend = backend
        self.location = location
        # NOTE: drivers' messages span lines; an error is one line.
        self.reason = ' '.join(str(reason).split())
        super().__init__('Storage backend %s at %s is unavailable: %s'
                         % (backend, location, self.reason))


class WriteRefused(StorageError):
    """The backend refused to write: disk full, or read-only storage.

    The call stored nothing (on backends with ``atomic_push``); the data
    already stored is intact and still readable. Retry once space was made
    or the storage is writable again.

    :ivar backend: the backend name.
    :ivar location: the store, never with a password.
    :ivar reason: the backend's one-line reason.
    """

    def __init__(self, backend, location, reason):
        self.backend = backend
        self.location = location
        self.reason = ' '.join(str(reason).split())
        super().__init__('Storage backend %s at %s refused to write: %s'
                         % (backend, location, self.reason))


class WriteConflict(StorageError):
    """A write collided with concurrent ones and was rolled back: retry it.

    The database chose this call as the victim of a deadlock or a
    serialization failure, or a lock it needed stayed taken too long. The
    call stored nothing (on backends with ``atomic_push``) and the server
    is fine: the same call made again is expected to succeed. Backends
    retry deadlocks themselves a few times before raising this, so seeing
    it means contention that lasted, typically a long delete or purge
    running at the same time.

    Retryable: unlike :class:`BackendUnavailable`, it never means the
    server cannot be reached.

    :ivar backend: the backend name.
    :ivar location: the store, never with a password.
    :ivar reason: the backend's one-line reason.
    :ivar attempts: how many times the call was tried before giving up.
    """

    #: The same call, made again, is expected to succeed.
    retryable = True

    def __init__(self, backend, location, reason, attempts=1):
        self.backend = backend
        self.location = location
        self.reason = ' '.join(str(reason).split())
        self.attempts = attempts
        super().__init__('Storage backend %s at %s: write conflict after '
                         '%d attempt(s), retry: %s'
                         % (backend, location, attempts, self.reason))


class InvalidQuery(StorageError, ValueError, http_exceptions.BadRequest):
    """An argument of a storage call is invalid; nothing was read or written.

    It is a :class:`ValueError`, and a werkzeug ``BadRequest`` too: upstream
    CloudKitty's HTTP API passes its clients' arguments to the storage
    unchecked and answers a werkzeug HTTP exception with its code, so a bad
    argument is a 400 there, not a 500.

    :ivar argument: the name of the offending argument (``begin``,
                    ``groupby``, ``dataframes``...).
    :ivar value: the offending value, when one value is at fault.
    """

    def __init__(self, argument, message, value=None):
        self.argument = argument
        self.value = value
        text = 'Invalid %s: %s' % (argument, message)
        super().__init__(text)
        # NOTE: ValueError's constructor comes first in the MRO and does
        # not call werkzeug's, so its two attributes are set here.
        self.description = text
        self.response = None

    def __str__(self):
        # NOTE: werkzeug's __str__ would prefix "400 Bad Request: ".
        return self.description


class NotSupported(StorageError):
    """The backend cannot answer this call by design (see its features).

    :ivar backend: the backend name.
    :ivar feature: the name of the missing capability flag.
    """

    def __init__(self, backend, feature, detail=''):
        self.backend = backend
        self.feature = feature
        msg = 'Storage backend %s does not support %s' % (backend, feature)
        super().__init__(msg + (': ' + detail if detail else ''))


class NoTimeFrame(StorageError):
    """No time frame is available to process (kept for API compatibility)."""


class NotInitialised(StorageError):
    """The store does not exist, or ``init()`` never ran on it.

    Raised by a backend's ``check_initialised()``, which looks without
    creating anything, so that a read never creates a store.

    :ivar backend: the backend name.
    :ivar location: the store, never with a password.
    :ivar reason: what is missing, in one line.
    """

    def __init__(self, backend, location, reason):
        self.backend = backend
        self.location = location
        self.reason = ' '.join(str(reason).split())
        super().__init__('Storage backend %s at %s is not initialised: %s'
                         % (backend, location, self.reason))
