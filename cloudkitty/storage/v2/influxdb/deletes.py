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
the deleted points in it, and they come back. Measured on influxd 1.6.7:
6 of 150 deletes of points written just before came back (a small cache,
so that snapshots ran often); ``bench --reuse 3`` at a million points
failed 6 of 13 runs, a purged round's last records counted again.

A snapshot that overlapped a DELETE was either in progress before it
(``snapshotCount`` of ``SHOW STATS FOR 'tsm1_cache'``, per shard) or
completed after it began (``cacheCompactions`` of ``'tsm1_engine'``). So
:func:`settle` waits for the snapshots in progress to end and runs the
same DELETE again, until a run met none: with it, 0 of 150 came back.
Running a DELETE twice is harmless: it removes what is in its window, and
the caller holds every writer's lease (nothing new lands there).

Deletes whose leftovers readers ignore (a compaction's, which its commit
hides) need none of this.
"""

import time

from oslo_log import log

from cloudkitty.storage import exceptions

LOG = log.getLogger(__name__)

#: Seconds :func:`settle` waits for InfluxDB's snapshots to end.
SETTLE_TIMEOUT_S = 60.0
#: Seconds between two looks at the snapshots in progress.
POLL_S = 0.05
#: Runs of one DELETE at most (each met a snapshot but the last).
MAX_RUNS = 5


def snapshots(client):
    """Return the cache snapshots of the client's database.

    :returns: ``(in progress, completed)`` summed over its shards, or None
        when the server refuses ``SHOW STATS`` (it needs admin rights
        where authentication is on).
    """
    in_progress = completed = 0
    try:
        for name, field in (('tsm1_cache', 'snapshotCount'),
                            ('tsm1_engine', 'cacheCompactions')):
            for part in client.query("SHOW STATS FOR '%s'" % name,
                                     database=False):
                if (part.get('tags') or {}).get('database') != \
                        client.database:
                    continue
                for values in part['values']:
                    count = dict(zip(part['columns'], values)).get(field)
                    if field == 'snapshotCount':
                        in_progress += count or 0
                    else:
                        completed += count or 0
    except exceptions.BackendUnavailable:
        raise
    except exceptions.StorageError as exc:
        LOG.warning('InfluxDB at %s: SHOW STATS refused (%s); a DELETE '
                    'that meets a cache snapshot may not hold',
                    client.location, exc)
        return None
    return in_progress, completed


def _quiet(client):
    """Wait until no snapshot is in progress; return :func:`snapshots`."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    state = snapshots(client)
    while state is not None and state[0] and time.monotonic() < deadline:
        time.sleep(POLL_S)
        state = snapshots(client)
    return state


def settle(client, before, statement, params=None):
    """Run a DELETE that ran already again until no snapshot met it.

    :param before: :func:`snapshots` taken just before the DELETE began.
    :returns: the number of runs added.
    """
    runs = 0
    while before is not None:
        after = _quiet(client)
        if after is None or not before[0] and after[1] == before[1]:
            return runs
        if after[0] or runs + 1 >= MAX_RUNS:
            LOG.warning('InfluxDB at %s: cache snapshots kept meeting a '
                        'DELETE; it may not hold: %s', client.location,
                        statement)
            return runs
        client.query(statement, params)
        runs += 1
        before = after
    return runs


def delete(client, statement, params=None):
    """Run a DELETE so that it holds (see the module docstring)."""
    before = snapshots(client)
    client.query(statement, params)
    settle(client, before, statement, params)
