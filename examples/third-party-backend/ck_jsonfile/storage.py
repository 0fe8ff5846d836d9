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
"""The ``jsonfile`` backend: rated data in one JSON-lines file.

The simplest correct storage v2 backend. It decides nothing about what a
query means: :mod:`cloudkitty.storage.v2.query` validates every call and
answers it over the frames read back from the file, so the backend gets the
semantics every other backend has, for free.

The file holds one line per push::

    {"frames": [<DataFrame.json()>, ...], "scope_id": "..."}

Each frame is written by :meth:`cloudkitty.dataframe.DataFrame.json`, which
writes every qty and price as a JSON number with the exact digits of its
Decimal, and read back (numbers parsed as Decimals) by
:meth:`~cloudkitty.dataframe.DataFrame.from_dict`, which also reads the
files of earlier versions, whose points were flat and whose numbers were
strings.

Concurrency and atomicity:

* every write holds an exclusive :func:`fcntl.flock` on ``<path>.lock`` and
  every read a shared one, so several processes (or several storage
  instances in one process) may push at once and a reader never sees half
  a push. The lock is a separate file because :meth:`JSONFileStorage.delete`
  replaces the data file, and a lock on a replaced file locks nothing;
* a push is checked whole before anything is written, then written as one
  line and fsynced; if the write fails the file is truncated back;
* a line without its final newline (a writer killed mid-write) is never
  read, and the next writer cuts it off before it appends;
* a delete writes the remaining lines to a temporary file, fsyncs it and
  moves it over the data file with :func:`os.replace`.

Every read parses the whole file: this backend is meant for tests, demos
and small installations, not for millions of points.
"""

import contextlib
import decimal
import fcntl
import json
import os
import stat
import tempfile

from oslo_log import log

from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage import v2
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query

from ck_jsonfile import options

LOG = log.getLogger(__name__)

#: The entry-point name of the backend.
NAME = 'jsonfile'
#: How much of the file's end is read at a time to find a torn line.
_TAIL_CHUNK = 64 * 1024


class JSONFileFeatures(v2.Features):
    """The jsonfile backend honours the whole contract.

    Queries are answered by :mod:`cloudkitty.storage.v2.query` itself, so
    whatever the contract defines, this backend does.
    """

    #: Sums are exact: the shared module adds integers of 1E-12.
    exact_decimal = True
    #: Exact sums need no tolerance.
    float_tolerance = 0
    #: Time buckets come from :func:`~cloudkitty.storage.v2.query.
    #: build_total`.
    groupby_time = True
    #: Custom fields are computed by the shared module too.
    custom_fields = True
    #: delete() drops the points :func:`~cloudkitty.storage.v2.query.
    #: matches` selects, filters included.
    delete_with_filters = True
    #: A push is fsynced and visible when push() returns.
    eventually_consistent = False
    #: A push is one line, checked whole before it is written.
    atomic_push = True
    #: Writers take turns on an exclusive lock on ``<path>.lock``.
    concurrent_writers = True
    #: JSON strings have no length limit.
    max_value_length = None
    #: Sums are Python integers: values up to the widest bound are exact.
    max_magnitude = money.MAX_MAGNITUDE


class JSONFileStorage(v2.BaseStorage):
    """Rated data in a JSON-lines file (see the module docstring).

    :param conf: the conf to read (``cfg.CONF`` if None); the
        ``[storage_jsonfile]`` options are registered on it.
    :param path: the data file, overriding ``[storage_jsonfile] path``.
    :param period: the collection period CloudKitty passes (unused).
    """

    name = NAME
    features = JSONFileFeatures

    def __init__(self, conf=None, path=None, period=None):
        super().__init__(conf=conf, period=period)
        options.register_opts(self.conf)
        self.path = os.path.abspath(path or self.conf.storage_jsonfile.path)
        self.lock_path = self.path + '.lock'

    @property
    def location(self):
        """The data file, as shown by ``cloudkitty-storage init``."""
        return self.path

    def init(self):
        """Create the data file and its lock file if missing; idempotent.

        :raises cloudkitty.storage.exceptions.BackendUnavailable: when the
            directory is missing or not writable.
        """
        with _locked(self, fcntl.LOCK_EX):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666))

    def check_initialised(self):
        """Raise unless init() made the data file; create nothing.

        Optional: ``cloudkitty-storage`` calls it before a read.

        :raises cloudkitty.storage.exceptions.NotInitialised: when the
            data file is missing.
        """
        if not os.path.isfile(self.path):
            raise exceptions.NotInitialised(NAME, self.path,
                                            'no such file: %s' % self.path)

    def store_identity(self):
        """Return the data file's device and inode (optional hook).

        :rtype: tuple
        """
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return (NAME, self.path)
        return (NAME, found.st_dev, found.st_ino)

    def push(self, dataframes, scope_id=None, idempotency_key=None):
        """Append one push as one line (see ``BaseStorage.push``).

        Keys are not supported (``idempotent_push`` is off): a key raises
        NotSupported.
        """
        frames = query.validate_dataframes(dataframes)
        query.validate_idempotency_key(idempotency_key, self)
        if scope_id is not None and not isinstance(scope_id, str):
            raise exceptions.InvalidQuery(
                'scope_id', 'expected a str or None, got %s'
                % type(scope_id).__name__, scope_id)
        # NOTE: every qty and price is checked, and rounded as every
        # backend stores it, before anything is written: a push is all or
        # nothing.
        frames = [_as_stored(frame, self.features.max_magnitude)
                  for frame in frames if len(frame)]
        if not frames:
            return
        with _locked(self, fcntl.LOCK_EX):
            _append(self.path, _encode(scope_id, frames))

    def retrieve(self, begin=None, end=None, filters=None, metric_types=None,
                 offset=0, limit=1000, paginate=True):
        """Return the points of a window (see ``BaseStorage.retrieve``)."""
        request = query.validate_retrieve(
            begin=begin, end=end, filters=filters, metric_types=metric_types,
            offset=offset, limit=limit, paginate=paginate)
        return query.evaluate_retrieve(request, self._frames())

    def total(self, groupby=None, begin=None, end=None, metric_types=None,
              filters=None, custom_fields=None, offset=0, limit=1000,
              paginate=True):
        """Return grouped sums (see ``BaseStorage.total``)."""
        request = query.validate_total(
            groupby=groupby, begin=begin, end=end, metric_types=metric_types,
            filters=filters, custom_fields=custom_fields, offset=offset,
            limit=limit, paginate=paginate)
        return query.evaluate_total(request, self._frames())

    def delete(self, begin=None, end=None, filters=None):
        """Rewrite the file without the selected points.

        See ``BaseStorage.delete``.

        :returns: the number of points deleted.
        """
        request = query.validate_delete(begin=begin, end=end, filters=filters)
        with _locked(self, fcntl.LOCK_EX):
            lines = []
            deleted = 0
            for scope_id, frames in _read(self.path):
                removed, kept = query.evaluate_delete(request, frames)
                deleted += removed
                if kept:
                    lines.append(_encode(scope_id, kept))
            if deleted:
                _replace(self.path, b''.join(lines))
        return deleted

    def _frames(self):
        """Return every stored frame, in push order, under a shared lock."""
        with _locked(self, fcntl.LOCK_SH):
            return [frame for _, frames in _read(self.path)
                    for frame in frames]


# The file ------------------------------------------------------------------

@contextlib.contextmanager
def _locked(store, operation):
    """Hold ``flock(operation)`` on the store's lock file.

    File errors met inside the block are re-raised as
    :class:`~cloudkitty.storage.exceptions.BackendUnavailable`.

    :param store: the :class:`JSONFileStorage`.
    :param operation: ``fcntl.LOCK_EX`` to write, ``fcntl.LOCK_SH`` to read.
    """
    try:
        fd = os.open(store.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            # NOTE: flock() locks belong to the open file description, so
            # two instances in one process exclude each other too (POSIX
            # fcntl() locks would not).
            fcntl.flock(fd, operation)
            yield
        finally:
            # NOTE: closing the descriptor releases the lock.
            os.close(fd)
    except OSError as exc:
        raise exceptions.BackendUnavailable(
            store.name, store.path, '%s: %s' % (type(exc).__name__, exc)
        ) from exc


def _as_stored(frame, bound):
    """Return a copy of ``frame`` with its money as it is stored.

    :raises cloudkitty.storage.exceptions.InvalidQuery: for a qty or price
        :func:`cloudkitty.storage.v2.money.check` refuses.
    """
    stored = dataframe.DataFrame(frame.start, frame.end)
    for type_, point in frame.iterpoints():
        stored.add_point(dataframe.DataPoint(
            point.unit, money.check(point.qty, 'qty', bound),
            money.check(point.price, 'price', bound), point.groupby,
            point.metadata, point.description), type_)
    return stored


def _encode(scope_id, frames):
    """Return one push as one line of UTF-8 JSON, newline included.

    :param scope_id: the scope of the push (str or None).
    :param frames: non-empty DataFrames.
    :rtype: bytes
    """
    # NOTE: DataFrame.json() escapes control characters, so a frame never
    # spans lines, and writes Decimals as exact JSON numbers.
    return ('{"frames": [%s], "scope_id": %s}\n' % (
        ', '.join(frame.json() for frame in frames),
        json.dumps(scope_id))).encode('utf-8')


def _read(path):
    """Yield ``(scope_id, [DataFrame, ...])`` per push, in push order.

    A missing file holds nothing; a last line without its newline is a torn
    write and is skipped. The caller holds the lock.

    :raises cloudkitty.storage.exceptions.StorageError: for a line that is
        not a push.
    """
    try:
        with open(path, 'rb') as stream:
            data = stream.read()
    except FileNotFoundError:
        return
    lines = data.split(b'\n')
    # NOTE: the last item is b'' after a complete line, else a torn one.
    for number, line in enumerate(lines[:-1], start=1):
        try:
            # NOTE: parse_float keeps every digit of qty and price.
            record = json.loads(line, parse_float=decimal.Decimal)
            frames = [dataframe.DataFrame.from_dict(frame)
                      for frame in record['frames']]
            scope_id = record['scope_id']
        except (ValueError, TypeError, KeyError) as exc:
            raise exceptions.StorageError(
                'Storage backend %s: line %d of %s is not a push: %s'
                % (NAME, number, path, exc)) from exc
        yield scope_id, frames


def _write_all(fd, data):
    """Write every byte of ``data`` to ``fd`` (os.write may write less)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _append(path, data):
    """Append ``data`` to the file and fsync it, all or nothing.

    The caller holds the exclusive lock.
    """
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = _cut_torn_line(fd, path)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except BaseException:
            # NOTE: a short write (disk full) or an interrupt must not
            # leave part of a push behind.
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _cut_torn_line(fd, path):
    """Truncate a last line that lacks its newline; return the new size.

    Such a line is what a writer killed mid-write leaves; readers already
    skip it, and appending after it would glue two pushes together.
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b'\n':
        return size
    keep = 0
    end = size - 1
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        newline = os.pread(fd, end - start, start).rfind(b'\n')
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    LOG.warning('Storage backend %s: dropping %d bytes of a torn write at '
                'the end of %s', NAME, size - keep, path)
    os.ftruncate(fd, keep)
    return keep


def _replace(path, data):
    """Replace the file's content with ``data`` atomically.

    The new content is written and fsynced to a temporary file of the same
    directory, which then takes the file's place. The caller holds the
    exclusive lock.
    """
    directory = os.path.dirname(path)
    fd, temporary = tempfile.mkstemp(
        prefix=os.path.basename(path) + '.', suffix='.tmp', dir=directory)
    try:
        try:
            # NOTE: mkstemp() makes the file 0600; keep the file's mode.
            os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    # NOTE: the rename itself is durable once the directory is synced.
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
