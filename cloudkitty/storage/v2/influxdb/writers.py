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
"""Write leases (``ck_writers``): one writer per scope, a delete alone.

InfluxDB 1.x has neither transactions nor compare-and-set. The slots, push
records and day records of a scope (:mod:`.slots`, :mod:`.rollup`) are
kept by read-then-write steps, which are exact only while nobody else
writes the same scope; a delete rewrites records of every scope. So each
push holds a lease on its scope, and each delete a lease on everything,
for as long as it writes.

A lease is a point of ``ck_writers`` (tag ``ck_w``, the writer's random
id; fields ``scope``, ``on``) written *without a time*, so that the server
stamps it with its own clock. To take one, a writer:

1. writes ``on=true`` for its scope (``*`` for a delete);
2. reads the last point of every writer stamped in the last
   :data:`TTL_S` seconds;
3. goes on if no *other* writer's last point is ``on`` for the same scope,
   ``*``, or (when it wants ``*``) any scope; otherwise it writes
   ``on=false``, sleeps a random moment and starts again, for
   :data:`WAIT_S` seconds at most before it raises
   :class:`~cloudkitty.storage.exceptions.WriteConflict`.

Two writers that both went on would each have read after writing; the one
that read last would have seen the other's ``on``: so they never both go
on (InfluxDB answers a read with every write it acknowledged before). At
worst both step back, and their random sleeps part them.

While it writes, a lease is written again every :data:`HEARTBEAT_S`
seconds; once done, ``on=false``, from a thread of its own, so that the
writer goes on meanwhile: every later mark of the instance waits for it,
and the server sees a writer's marks in the order they were made. A
writer that died holds its lease :data:`TTL_S` seconds at most. One lease
per storage instance: its threads take turns (a
:class:`threading.Lock`).

The read that the holder of a lease needs first (a push's slots, see
:mod:`.slots`) goes in the same request as the check of step 2 (``then``
of :meth:`Leases.hold`): InfluxDB runs a request's statements in order,
so it sees every write of the writers whose lease ended before.

A push takes its lease from another thread while it encodes its points
(:meth:`Leases.hold_while`): the mark and the check are two round trips to
a server still busy with the previous push, about 5 ms of a bench push's
150 to 190 ms, and the encoding hides most of them (the push then waits
about 2 ms for its lease). Its slots, points and records are written once
the lease is taken, as before.
"""

from concurrent import futures
import contextlib
import random
import threading
import time
import uuid

from oslo_log import log

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import bulk
from cloudkitty.storage.v2.influxdb import encoding

LOG = log.getLogger(__name__)

WRITERS = 'ck_writers'
#: The scope name of a lease on everything (a delete's).
EVERYTHING = '*'
#: Seconds a lease lives without being written again.
TTL_S = 60
#: Seconds between two writes of a held lease.
HEARTBEAT_S = 10
#: Seconds a writer waits for a lease before giving up.
WAIT_S = 300
#: Longest random sleep (seconds) after stepping back.
BACKOFF_S = 0.05
#: Seconds a push waits for its lease with the collector off (see
#: :func:`.bulk.collector_runs_while_waiting`).
QUIET_WAIT_S = 1.0
#: What :meth:`Leases._take` returns when told to give up.
_GAVE_UP = object()


def conflicts(wanted, held):
    """Tell whether a lease on ``wanted`` must wait for one on ``held``."""
    return EVERYTHING in (wanted, held) or wanted == held


class Leases:
    """The write leases of one storage instance (see the module docstring).

    :param client: the :class:`.client.Client`.
    :param source: ``source(measurement)`` returns the ``FROM`` target.
    :param before_mark: called before every mark is written (the server
        stamps it, maybe into a new shard: see
        :meth:`.slots.Bookkeeper.open_now`).
    """

    def __init__(self, client, source, before_mark=None):
        self.client = client
        self.source = source
        self._before_mark = before_mark
        self.writer = uuid.uuid4().hex
        self._turn = threading.Lock()
        # NOTE: the thread giving the last lease back (_release_later).
        self._releasing = None
        # NOTE: the thread that takes a push's lease (_take_while), made
        # once: a thread per push left the process's peak memory 25 MiB
        # higher in some bench runs.
        self._taker = None

    @contextlib.contextmanager
    def hold(self, scope_tag=EVERYTHING, then=None):
        """Hold the lease of a scope (``*``: everything) while in the block.

        :param scope_tag: the encoded scope, ``.`` for pushes without one.
        :param then: ``(statement, params)``: a SELECT of another
            measurement to run once the lease is taken, in the same
            request as the last check; the block gets its rows
            (``with ... as``), None without it.
        :raises cloudkitty.storage.exceptions.WriteConflict: when other
            writers kept it for :data:`WAIT_S` seconds; nothing was
            written.
        """
        with self.hold_while(None, scope_tag, then) as (rows, _):
            yield rows

    @contextlib.contextmanager
    def hold_while(self, work, scope_tag=EVERYTHING, then=None):
        """:meth:`hold`, taking the lease while this thread does some work.

        A push encodes its points while another thread takes its lease:
        the lease's round trips (its mark, then its check) overlap the
        push's own work instead of following it.

        :param work: a callable run in this thread meanwhile, or None to
            take the lease in this thread.
        :returns: in the block, ``(rows of then, what work returned)``.
        :raises: what ``work`` raises, the lease given back (or given up
            while still waited for); else what :meth:`hold` raises.
        """
        with bulk.collector_runs_while_waiting():
            # NOTE: another thread of this instance may write for long.
            self._turn.acquire()
        try:
            if work is None:
                rows, result = self._take(scope_tag, then), None
            else:
                rows, result = self._take_while(work, scope_tag, then)
            stop = threading.Event()
            beat = threading.Thread(target=self._beat,
                                    args=(scope_tag, stop), daemon=True)
            beat.start()
            try:
                yield rows, result
            finally:
                self._release_later(scope_tag, stop, beat)
        finally:
            self._turn.release()

    def _take_while(self, work, scope_tag, then):
        """Take a lease in another thread; return its rows and work()'s."""
        give_up = threading.Event()
        if self._taker is None:
            self._taker = futures.ThreadPoolExecutor(
                1, thread_name_prefix='lease-taker')
        taking = self._taker.submit(self._take_helping, bulk.paused_here(),
                                    scope_tag, then, give_up)
        try:
            result = work()
        except BaseException:
            give_up.set()
            with bulk.collector_runs_while_waiting():
                try:
                    taken = taking.result()
                except Exception:
                    # NOTE: work's error is the one the caller can act on;
                    # no lease was taken.
                    taken = _GAVE_UP
            if taken is not _GAVE_UP:
                self._release_later(scope_tag)
            raise
        # NOTE: the collector stays off for the usual wait of a few
        # milliseconds (it would walk every object work() made); a lease
        # that another writer keeps lets it run.
        if not futures.wait([taking], timeout=QUIET_WAIT_S).done:
            with bulk.collector_runs_while_waiting():
                futures.wait([taking])
        return taking.result(), result

    def _take_helping(self, paused, scope_tag, then, give_up):
        """:meth:`_take` in the taker thread, for a push paused or not."""
        # NOTE: a lease another writer keeps lets the collector run while
        # this thread sleeps between attempts, as in hold().
        with bulk.helping(paused):
            return self._take(scope_tag, then, give_up)

    def _release_later(self, scope_tag, stop=None, beat=None):
        """Stop the heartbeat and write ``on=false`` in another thread."""
        def release():
            if beat is not None:
                stop.set()
                beat.join()
            try:
                self._write_mark(scope_tag, False)
            except Exception as exc:
                # NOTE: the lease then ends after TTL_S seconds.
                LOG.warning('InfluxDB lease of writer %s not given back: '
                            '%s', self.writer, exc)
        # NOTE: not a daemon: the interpreter waits for it at exit, so that
        # other processes do not wait TTL_S seconds for this lease.
        self._releasing = threading.Thread(target=release)
        self._releasing.start()

    def close(self):
        """Wait until the last lease held is given back; stop the taker."""
        self._wait_given_back()
        taker, self._taker = self._taker, None
        if taker is not None:
            taker.shutdown()

    def _wait_given_back(self):
        releasing = self._releasing
        if releasing is not None:
            releasing.join()

    def _take(self, scope_tag, then=None, give_up=None):
        """Take a lease; return the rows of ``then`` (see :meth:`hold`).

        :param give_up: an event: once set, the next attempt that does not
            get the lease returns :data:`_GAVE_UP` instead of trying again.
        """
        deadline = time.monotonic() + WAIT_S
        attempts = 0
        while True:
            attempts += 1
            self._mark(scope_tag, True)
            holder, rows = self._holder(scope_tag, then)
            if holder is None:
                return rows
            self._mark(scope_tag, False)
            if give_up is not None and give_up.is_set():
                return _GAVE_UP
            if time.monotonic() > deadline:
                raise exceptions.WriteConflict(
                    'influxdb', self.client.location,
                    'writer %s kept the lease of scope %s for %d s' % (
                        holder, encoding.decode_value(scope_tag)
                        if scope_tag != EVERYTHING else 'everything',
                        WAIT_S), attempts)
            with bulk.collector_runs_while_waiting():
                time.sleep(random.uniform(0, BACKOFF_S) * min(attempts, 20))

    def _mark(self, scope_tag, on):
        # NOTE: after the last lease's on=false, or the server could see
        # that one last.
        self._wait_given_back()
        self._write_mark(scope_tag, on)

    def _write_mark(self, scope_tag, on):
        if self._before_mark is not None:
            self._before_mark()
        self.client.write(['%s,ck_w=%s scope=%s,on=%s' % (
            WRITERS, self.writer, encoding.field_string(scope_tag),
            'true' if on else 'false')])

    def _holder(self, scope_tag, then=None):
        """Find another writer holding a conflicting lease.

        :returns: ``(its id or None, the rows of then or None)``.
        """
        # NOTE: TTL_S is ours, not data; times are the server's.
        statement = ('SELECT last("on") AS "on", last("scope") AS "scope" '
                     'FROM %s WHERE time > now() - %ds GROUP BY "ck_w"'
                     % (self.source(WRITERS), TTL_S))
        params = None
        if then is not None:
            statement += '; ' + then[0]
            params = then[1]
        holder, rows = None, None if then is None else []
        for part in self.client.query(statement, params):
            for row in self.client.rows_of(part):
                if part.get('name') != WRITERS:
                    rows.append(row)
                elif holder is None and row['ck_w'] != self.writer and \
                        row['on'] and conflicts(scope_tag, row['scope']):
                    holder = row['ck_w']
        return holder, rows

    def _beat(self, scope_tag, stop):
        while not stop.wait(HEARTBEAT_S):
            try:
                # NOTE: not _mark(): the thread giving the lease back
                # waits for this one.
                self._write_mark(scope_tag, True)
            except exceptions.StorageError:
                # NOTE: the next beat tries again; the write it protects
                # meets the same server and reports the error.
                pass
