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
"""Where the measuring commands (``bench``, ``load``) write, and cleanup.

They write either into a new SQLite file (a temporary one, or
``--database PATH``) or into a window of the configured backend that must
be empty; either way what they wrote goes afterwards unless ``--keep``.
"""

import contextlib
import os
import shutil
import tempfile

from oslo_log import log

from cloudkitty.cli import data

LOG = log.getLogger(__name__)


@contextlib.contextmanager
def new_sqlite_file(database, keep, command):
    """Yield the path of a new SQLite file; remove it unless ``keep``.

    :param database: the path to create, or None for a temporary file.
    :param command: the command's name, for messages.
    :raises ValueError: when ``database`` exists already.
    """
    tmpdir = None
    if database is not None:
        path = database
        if os.path.exists(path):
            raise ValueError('--database %s already exists; %s only writes '
                             'to a new file' % (path, command))
    else:
        tmpdir = tempfile.mkdtemp(prefix='cloudkitty-%s-' % command)
        path = os.path.join(tmpdir, '%s.sqlite' % command)
    try:
        yield path
    finally:
        if keep:
            LOG.info('Kept the %s database %s', command, path)
        elif tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        else:
            for suffix in ('', '-wal', '-shm', '-journal'):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path + suffix)


@contextlib.contextmanager
def empty_window(store, begin, end, keep, command):
    """Check a window of ``store`` is empty; empty it again unless ``keep``.

    :raises ValueError: when the window holds points: they are not ours,
        so nothing is deleted.
    """
    found = data.count_points(store, begin, end)
    if found:
        raise ValueError(
            'the configured backend already holds %d points between %s and '
            '%s; %s needs an empty window' % (
                found, begin.isoformat(), end.isoformat(), command))
    try:
        yield store
    finally:
        if not keep:
            store.delete(begin=begin, end=end)
