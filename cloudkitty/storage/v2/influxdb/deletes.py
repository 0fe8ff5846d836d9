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
"""DELETEs that hold although InfluxDB snapshots its cache meanwhile.

InfluxDB 1.x's DELETE removes points from a shard's live cache and marks
them in the shard's TSM files, but leaves a cache being snapshotted at
that moment alone: the snapshot then becomes a TSM file of its own, with
the deleted points in it. Worse, the DELETE then drops from the index
every series it matched that it finds neither in a TSM file nor in the
live cache, and a series whose points sit in that snapshot is in
neither. Its points are then out of sight: running the DELETE again does
not see the series, so it leaves them; they come back when anything is
written into that series again (a new push of the same resource, the
next push record of the same scope and day), or when influxd restarts.
Measured on influxd 1.6.7 (a 256 KiB cache, writes beside): 7 of 150
deletes met a snapshot that way and every point they deleted came back
with the next write into their series; ``bench --reuse 3`` at a million
points failed about half its runs, a purged round's records counted
again in the next one.

A snapshot that overlapped a DELETE was either in progress before it
(``snapshotCount`` of ``SHOW STATS FOR 'tsm1_cache'``, per shard) or
started after it began (``cachedBytes`` grew); only the shards its time
range meets matter. So :func:`delete`:

1. waits for the snapshots in progress to end (a DELETE that starts
   after them meets one only when one starts meanwhile);
2. lists the series the DELETE matches (``SHOW SERIES`` with the same
   ``WHERE``, which InfluxDB answers from the shards of its time range),
   unless the caches of those shards are empty: nothing there can be
   snapshotted; or unless the caller can *name* them once the DELETE
   ran (``named``: the daily records of an unfiltered delete name every
   series of its frames, see :meth:`.rollup.Rollup.series_named`), which
   it then asks only when a snapshot met the DELETE. The listing took
   0.1 s of a 0.25 s delete of one period of 10,200 series;
3. runs the DELETE, and while a snapshot met the last run, waits for it
   to end, writes one *marker* point (see :data:`.encoding.MARKER_FIELD`)
   into every listed (or named) series, in every shard of the window,
   which puts those the index lost back in it, and runs the DELETE
   again, which now finds them and deletes their points and the markers.
   With it, 0 of 200 deletes that met a snapshot left a point to come
   back.

Running a DELETE twice is harmless: it removes what is in its window, and
the caller holds every writer's lease (nothing new lands there). A
delete that dies between writing markers and running again leaves them
in its window: InfluxDB leaves out rows without the fields a query
selects, and retrieve(), which selects them all, skips markers.
"""

import datetime
import time

from oslo_log import log

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2.influxdb import encoding
from cloudkitty.storage.v2 import timeutils

LOG = log.getLogger(__name__)

#: Seconds :meth:`Run.settle` waits for InfluxDB's snapshots to end.
SETTLE_TIMEOUT_S = 60.0
#: Seconds between two looks at the snapshots in progress.
POLL_S = 0.05
#: Runs of one DELETE at most (each met a snapshot but the last).
MAX_RUNS = 5


def snapshots(client, shards=None):
    """Return the cache snapshots of the client's database.

    :param shards: the ids (str) of the shards to look at; None for all
        of the database's.
    :returns: ``(in progress, bytes snapshotted, bytes cached)`` summed
        over those shards: ``snapshotCount``, ``cachedBytes`` and
        ``memBytes`` of ``SHOW STATS FOR 'tsm1_cache'``. InfluxDB counts
        a snapshot's bytes when it starts, so the second changes with
        every snapshot that started (a count of finished ones changes a
        moment after the first drops). None when the server refuses
        ``SHOW STATS`` (it needs admin rights where authentication is
        on).
    """
    in_progress = started = cached = 0
    try:
        for part in client.query("SHOW STATS FOR 'tsm1_cache'",
                                 database=False):
            tags = part.get('tags') or {}
            if tags.get('database') != client.database or (
                    shards is not None and tags.get('id') not in shards):
                continue
            for values in part['values']:
                row = dict(zip(part['columns'], values))
                in_progress += row.get('snapshotCount') or 0
                started += row.get('cachedBytes') or 0
                cached += row.get('memBytes') or 0
    except exceptions.BackendUnavailable:
        raise
    except exceptions.StorageError as exc:
        LOG.warning('InfluxDB at %s: SHOW STATS refused (%s); a DELETE '
                    'that meets a cache snapshot may not hold',
                    client.location, exc)
        return None
    return in_progress, started, cached


def _quiet(client, shards=None):
    """Wait until no snapshot is in progress; return :func:`snapshots`."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    state = snapshots(client, shards)
    while state is not None and state[0] and time.monotonic() < deadline:
        time.sleep(POLL_S)
        state = snapshots(client, shards)
    return state


def shards(client):
    """Return the shards of the client's database.

    :returns: ``{shard id (str): (start, end)}``, in ns since the epoch.
    """
    found = {}
    for part in client.query('SHOW SHARDS', database=False):
        if part.get('name') != client.database:
            continue
        for values in part['values']:
            row = dict(zip(part['columns'], values))
            found[str(row['id'])] = (_ns_of(row['start_time']),
                                     _ns_of(row['end_time']))
    return found


def shards_of(client, begin_ns, end_ns):
    """Return the shards of the client's database a window meets.

    :returns: ``{shard id (str): a time (ns) in the window and the
        shard}``.
    """
    return {shard: max(begin_ns, low)
            for shard, (low, high) in shards(client).items()
            if low < end_ns and begin_ns < high}


class Run:
    """One DELETE that must hold (see the module docstring).

    :param statement: ``DELETE FROM <measurement> WHERE ...``.
    :param params: its bound parameters.
    :param window: ``(begin_ns, end_ns)``, the time range of its
        ``WHERE``: the shards to watch and to write markers into.
    :param named: None to list the series before the DELETE, or a
        function returning every series key (measurement included) the
        DELETE may match, which no DELETE hides: asked only when a
        snapshot met the DELETE.
    """

    def __init__(self, client, statement, params, window, named=None):
        self.client = client
        self.statement = statement
        self.params = params
        self.window = window
        self.named = named
        self.shards = {}
        self.before = None
        self.series = None
        self.runs = 0

    def prepare(self):
        """Wait for snapshots in progress, then list what will be deleted.

        Call it just before the DELETE is sent. Shards whose caches are
        empty cannot snapshot: their series need no listing; nor do
        series the caller names (``named``).
        """
        started = time.monotonic()
        self.shards = shards_of(self.client, *self.window)
        if not self.shards:
            return
        self.before = _quiet(self.client, self.shards)
        if self.before is None or not self.before[2] or \
                self.named is not None:
            return
        quiet = time.monotonic()
        self.series = self._list()
        LOG.debug('InfluxDB DELETE: %.3f s waiting for snapshots, %d '
                  'series listed in %.3f s: %s', quiet - started,
                  len(self.series), time.monotonic() - quiet,
                  self.statement)

    def _list(self):
        listing = 'SHOW SERIES' + self.statement[len('DELETE'):]
        return [values[0] for part in self.client.query(
            listing, self.params) for values in part.get('values') or ()]

    def settle(self):
        """Run the DELETE again until no snapshot met its last run.

        :returns: the number of runs added.
        """
        started = time.monotonic()
        while self.before is not None:
            after = _quiet(self.client, self.shards)
            if after is None or not self.before[0] and \
                    after[1] == self.before[1]:
                break
            if after[0] or self.runs + 1 >= MAX_RUNS:
                LOG.warning('InfluxDB at %s: cache snapshots kept meeting '
                            'a DELETE; it may not hold: %s',
                            self.client.location, self.statement)
                break
            if self.series is None and self.named is not None:
                self.series = list(self.named())
                LOG.debug('InfluxDB DELETE: %d series named',
                          len(self.series))
            elif self.series is None:
                # NOTE: someone else wrote into an empty cache meanwhile;
                # the series still in the index are all this can mark.
                LOG.warning('InfluxDB at %s: a cache snapshot met a DELETE '
                            'of shards without cached points; another '
                            'client writes there?', self.client.location)
                self.series = self._list()
            self._index_again()
            self.before = snapshots(self.client, self.shards)
            self.client.query(self.statement, self.params)
            self.runs += 1
        LOG.debug('InfluxDB DELETE: settled in %.3f s, %d more runs',
                  time.monotonic() - started, self.runs)
        return self.runs

    def _index_again(self):
        """Write a marker into every listed series, in each shard.

        A shard the retention policy expires meanwhile refuses its
        markers: its points go with it anyway.
        """
        lines = ['%s %s=true %d' % (key, encoding.MARKER_FIELD, moment)
                 for moment in sorted(self.shards.values())
                 for key in self.series]
        if not lines:
            return
        try:
            self.client.write(lines)
        except exceptions.WriteRefused as exc:
            LOG.warning('InfluxDB at %s: markers refused (%s)',
                        self.client.location, exc)


def _ns_of(text):
    """ns since the epoch of a ``SHOW SHARDS`` time (``...T00:00:00Z``)."""
    moment = datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ')
    return timeutils.to_ns(moment.replace(tzinfo=datetime.timezone.utc))


def delete(client, statement, params, window, meanwhile=None, named=None):
    """Run a DELETE so that it holds (see the module docstring).

    :param window: ``(begin_ns, end_ns)`` of its ``WHERE``.
    :param meanwhile: a function to call while InfluxDB runs the DELETE's
        first run (in the background); an error it raises is raised once
        that run ended, and the DELETE is not run again.
    :param named: see :class:`Run`.
    :returns: the number of runs added.
    """
    run = Run(client, statement, params, window, named)
    run.prepare()
    if meanwhile is None:
        client.query(statement, params)
    else:
        done = client.start_query(statement, params)
        try:
            meanwhile()
        finally:
            done()
    return run.settle()
