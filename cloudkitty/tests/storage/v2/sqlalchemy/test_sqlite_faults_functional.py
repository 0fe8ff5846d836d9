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
"""What a SQLite store survives: a killed writer, a full disk, a read-only
file system.

* A writer process is killed with SIGKILL while its push is inside its
  write transaction: the file opens, passes ``PRAGMA integrity_check``, and
  holds every earlier push and nothing of the killed one.
* The disk fills up during a push: :class:`WriteRefused`, nothing of that
  push, everything before it intact; once space is made the same push
  lands, once.
* The file system is read-only: every call raises
  :class:`BackendUnavailable` (SQLite cannot open a WAL file there), and
  nothing changed once it is writable again. A store opened read-only
  (``?mode=ro``) answers reads; its writes raise :class:`WriteRefused`.

Full and read-only disks are real: a small tmpfs mounted for the test
(root is needed; without it these two tests skip and say so).
"""

import decimal
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import fixtures
from oslo_config import cfg
import testtools

from cloudkitty import storage
from cloudkitty.storage import exceptions
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests import functional_env

D = decimal.Decimal
T0 = builders.T0
HOUR = builders.HOUR
WINDOW = dict(begin=builders.EVER[0], end=builders.EVER[1])
#: Points of each small push the killed writer makes before the big one.
SMALL = 7
#: Pushes it makes before the big one.
EARLIER = 5
#: Points of the push that is killed: big enough to last a few seconds.
BIG = 300000

# NOTE: the writer runs in a fresh interpreter, so that SIGKILL hits a
# process holding SQLite's write lock exactly as a crashed service would.
_WRITER = '''
import decimal, sys
from oslo_config import cfg
from cloudkitty import storage
from cloudkitty.tests import fixtures as builders
url, small, earlier, big = sys.argv[1], *map(int, sys.argv[2:])
store = storage.get_storage(conf=cfg.ConfigOpts(), backend='sqlalchemy',
                               connection=url)
store.init()
for push in range(earlier):
    store.push([builders.make_frame(builders.T0 + push * builders.HOUR, [
        ('cpu', builders.make_point('early', 1, decimal.Decimal('0.25')))
    ] * small)])
    print('landed', push, flush=True)
frames = [builders.make_frame(
    builders.T0 + (earlier + n) * builders.HOUR,
    [('cpu', builders.make_point('killed', 1, decimal.Decimal('0.5'),
                                 metadata={'n': str(n)}))] * 1000)
    for n in range(big // 1000)]
print('pushing', flush=True)
store.push(frames)
print('finished', flush=True)
'''


def _storage(url):
    store = storage.get_storage(conf=cfg.ConfigOpts(), backend='sqlalchemy',
                                connection=url)
    store.init()
    return store


def _storage_no_init(url):
    return storage.get_storage(conf=cfg.ConfigOpts(), backend='sqlalchemy',
                               connection=url)


def _write_locked(path):
    """Tell whether another connection holds the file's write lock."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute('BEGIN IMMEDIATE')
    except sqlite3.OperationalError as exc:
        if 'locked' in str(exc):
            return True
        raise
    else:
        conn.execute('ROLLBACK')
        return False
    finally:
        conn.close()


class TmpfsFixture(fixtures.Fixture):
    """A small tmpfs mounted on a temporary directory (root only).

    :ivar path: the mount point.
    """

    def __init__(self, size):
        super().__init__()
        self.size = size

    def _setUp(self):
        self.path = tempfile.mkdtemp(prefix='ck-tmpfs-')
        self.addCleanup(os.rmdir, self.path)
        result = subprocess.run(
            ['mount', '-t', 'tmpfs', '-o', 'size=%s' % self.size, 'tmpfs',
             self.path], capture_output=True, text=True)
        if result.returncode:
            raise testtools.TestCase.skipException(
                'cannot mount a tmpfs to fill or freeze (needs root): %s'
                % result.stderr.strip())
        self.addCleanup(subprocess.run, ['umount', '-l', self.path],
                        check=True)

    def remount(self, mode):
        """Remount ``'ro'`` or ``'rw'``."""
        subprocess.run(['mount', '-o', 'remount,%s' % mode, self.path],
                       check=True)


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class KilledWriterTest(testtools.TestCase):
    """A writer killed with SIGKILL in the middle of a push."""

    def test_sigkill_inside_the_write_transaction(self):
        """Earlier pushes stay, the killed one leaves nothing, file sound."""
        directory = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(directory, 'killed.sqlite')
        url = 'sqlite:///' + path
        writer = subprocess.Popen(
            [sys.executable, '-c', _WRITER, url, str(SMALL), str(EARLIER),
             str(BIG)], stdout=subprocess.PIPE, text=True)
        self.addCleanup(writer.wait)
        self.addCleanup(writer.kill)
        lines = []
        while not lines or lines[-1] != 'pushing':
            line = writer.stdout.readline()
            self.assertTrue(line, 'the writer died early: %r' % lines)
            lines.append(line.strip())
        self.assertEqual(EARLIER, len([x for x in lines
                                       if x.startswith('landed')]))
        # NOTE: wait until the push holds the write lock and its pages
        # reach the WAL: the kill then lands inside the transaction.
        deadline = time.monotonic() + 60
        wal = path + '-wal'
        while not (_write_locked(path) and os.path.getsize(wal) > 1 << 20):
            self.assertIsNone(writer.poll(), 'the push finished first')
            self.assertLess(time.monotonic(), deadline,
                            'the push never took the write lock')
            time.sleep(0.005)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        self.assertEqual(-signal.SIGKILL, writer.returncode)
        self.assertNotIn('finished', writer.stdout.read())

        conn = sqlite3.connect(path)
        try:
            self.assertEqual([('ok',)], conn.execute(
                'PRAGMA integrity_check').fetchall())
        finally:
            conn.close()
        store = _storage(url)
        self.addCleanup(store.close)
        count = EARLIER * SMALL
        self.assertEqual(count, store.retrieve(limit=1, **WINDOW)['total'])
        expected = [{'begin': WINDOW['begin'], 'end': WINDOW['end'],
                     'qty': D(count), 'rate': D(count) / 4,
                     'project_id': 'early'}]
        self.assertEqual(expected, store.total(
            groupby=['project_id'], **WINDOW)['results'])
        # NOTE: grouped by frame, total() reads the points themselves, not
        # the daily rollup: both must agree.
        by_frame = store.total(groupby=['time'], **WINDOW)['results']
        self.assertEqual([D(SMALL)] * EARLIER, [r['qty'] for r in by_frame])
        # The store takes pushes again at once.
        store.push(builders.sample_frames('after'))
        self.assertEqual(count + 6,
                         store.retrieve(limit=1, **WINDOW)['total'])


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class FullDiskTest(testtools.TestCase):
    """The file system fills up, or turns read-only, under a store."""

    def setUp(self):
        super().setUp()
        self.disk = self.useFixture(TmpfsFixture('8m'))
        self.url = 'sqlite:///%s/store.sqlite' % self.disk.path
        self.store = _storage(self.url)
        self.addCleanup(self.store.close)
        self.frames = builders.sample_frames('before')
        self.store.push(self.frames)
        self.before = self.contents()

    def contents(self):
        """Every stored point and the totals, to compare."""
        return (self.store.retrieve(paginate=False, **WINDOW)['total'],
                self.store.total(groupby=['project_id', 'time'],
                                 **WINDOW)['results'])

    def big_push(self):
        """Frames of 200,000 points, about 20 MB of file."""
        return [builders.make_frame(T0 + n * HOUR, [
            ('cpu', builders.make_point('big', 1, D('0.125'),
                                        metadata={'n': str(n)}))] * 1000)
            for n in range(200)]

    def test_full_disk_stores_nothing_of_the_push(self):
        """A push that fills the disk: WriteRefused, nothing partial."""
        frames = self.big_push()
        error = self.assertRaises(exceptions.WriteRefused, self.store.push,
                                  frames, idempotency_key='big')
        self.assertIn('full', error.reason)
        self.assertIn(self.disk.path, error.location)
        self.assertEqual(self.before, self.contents())
        conn = sqlite3.connect(self.url[len('sqlite:///'):])
        try:
            self.assertEqual([('ok',)], conn.execute(
                'PRAGMA integrity_check').fetchall())
        finally:
            conn.close()
        # NOTE: a smaller push fits; the refused one, retried with its key
        # once there is room, lands once.
        self.store.push(builders.sample_frames('after'))
        self.disk.remount('rw,size=64m')
        self.store.push(frames, idempotency_key='big')
        self.store.push(frames, idempotency_key='big')
        totals = {r['project_id']: r['qty'] for r in self.store.total(
            groupby=['project_id'], **WINDOW)['results']}
        self.assertEqual({'before': D(36), 'after': D(36),
                          'big': D(200000)}, totals)

    def test_read_only_file_system(self):
        """A disk turned read-only: a typed error; intact once writable."""
        self.store.close()
        self.disk.remount('ro')
        self.addCleanup(self.disk.remount, 'rw')
        # NOTE: SQLite cannot open a WAL database on a read-only disk
        # unless its -shm file exists (it is removed on a clean close):
        # reads fail too, but typed.
        error = self.assertRaises(exceptions.BackendUnavailable,
                                  self.store.push,
                                  builders.sample_frames('after'))
        self.assertIn(self.disk.path, error.location)
        self.assertRaises(exceptions.BackendUnavailable, self.contents)
        self.disk.remount('rw')
        self.assertEqual(self.before, self.contents())

    def test_read_only_connection(self):
        """A store opened read-only: writes WriteRefused, reads answer."""
        path = self.url[len('sqlite:///'):]
        reader = _storage_no_init('sqlite:///file:%s?mode=ro&uri=true'
                                  % path)
        self.addCleanup(reader.close)
        self.assertEqual(self.before[0], reader.retrieve(
            paginate=False, **WINDOW)['total'])
        self.assertRaises(exceptions.WriteRefused, reader.push,
                          builders.sample_frames('after'))
        self.assertRaises(exceptions.WriteRefused, reader.delete)
        self.assertEqual(self.before, self.contents())
