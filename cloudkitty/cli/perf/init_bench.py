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
"""``cloudkitty-storage bench --concurrent-init N``: init() of a new file.

Services that start together may each call ``init()`` on a SQLite file
nobody has created yet. This measures how long the slowest of N processes
doing so at once takes, against one process alone, on the same machine in
the same run.

Each run makes two new SQLite files: one process calls ``init()`` on the
first alone, and N processes call it at once on the second. Every process
starts, imports and builds its storage first, then waits for the others at
a barrier, so that only ``init()`` is timed (the N processes start
together; the time to start and import Python is not what ``init()``
costs). The runs alternate which of the two goes first, so that a drift of
the machine's load weighs on both; each run gives a ratio of the slowest
of the N to the one alone, and the median ratio of the runs is reported.
Both files must end at the latest schema revision, or the command fails.
"""

import multiprocessing
import os
import statistics
import tempfile
import time

from cloudkitty.cli import args

#: Longest wait, in seconds, for processes to start or to finish init().
TIMEOUT = 600


def add_arguments(parser):
    """Add ``--concurrent-init`` and ``--init-runs`` to ``parser``."""
    parser.add_argument(
        '--concurrent-init', type=_at_least_two, default=None,
        metavar='N',
        help='Measure nothing else: N processes call init() at once on a '
             'new SQLite file; print the slowest one\'s time, one '
             'process\'s alone and their ratio (medians of --init-runs '
             'runs).')
    parser.add_argument(
        '--init-runs', type=args.positive_int, default=9, metavar='R',
        help='Runs of --concurrent-init (default: 9).')


def _at_least_two(text):
    """argparse type: an integer >= 2."""
    value = int(text)
    if value < 2:
        raise ValueError(text)
    return value


def _storage(url):
    """A SQL storage on ``url`` with a conf of its own (no config file)."""
    from oslo_config import cfg

    from cloudkitty import storage
    return storage.get_storage(conf=cfg.ConfigOpts(), backend='sqlalchemy',
                               connection=url)


def _init_process(url, barrier, results):
    """Child process: build the storage, wait for all, time init().

    Puts the seconds init() took, or the text of the error it raised.
    """
    try:
        store = _storage(url)
        barrier.wait()
        start = time.perf_counter()
        store.init()
        results.put(time.perf_counter() - start)
        store.close()
    except Exception as exc:  # noqa: B902 the parent reports it
        # NOTE: the statement that failed, when SQLAlchemy ran one.
        statement = getattr(exc.__cause__, 'statement', None)
        results.put('%s: %s%s' % (type(exc).__name__, exc,
                                  ' (in %s)' % statement if statement
                                  else ''))


def time_inits(url, processes):
    """Start ``processes`` processes calling init() on ``url`` at once.

    :returns: the seconds each init() took, in the order they ended.
    :raises RuntimeError: when a process failed or did not answer.
    """
    context = multiprocessing.get_context('spawn')
    barrier = context.Barrier(processes, timeout=TIMEOUT)
    results = context.Queue()
    children = [context.Process(target=_init_process,
                                args=(url, barrier, results))
                for _ in range(processes)]
    for child in children:
        child.start()
    try:
        seconds = [results.get(timeout=TIMEOUT) for _ in children]
    finally:
        for child in children:
            child.join(TIMEOUT)
            if child.is_alive():
                child.terminate()
    errors = [result for result in seconds if isinstance(result, str)]
    if errors:
        raise RuntimeError('init() failed in %d of %d processes: %s'
                           % (len(errors), processes, errors[0]))
    return seconds


def _check_at_head(url):
    """Raise unless the database at ``url`` is at the latest revision."""
    store = _storage(url)
    try:
        store.check_initialised()
    finally:
        store.close()


def run_once(directory, processes, alone_first):
    """One run: init() alone and by ``processes`` at once, on new files.

    :returns: ``(seconds alone, seconds of the slowest of the processes)``.
    """
    alone_url = 'sqlite:///' + os.path.join(directory, 'alone.sqlite')
    many_url = 'sqlite:///' + os.path.join(directory, 'many.sqlite')
    if alone_first:
        alone = time_inits(alone_url, 1)[0]
        slowest = max(time_inits(many_url, processes))
    else:
        slowest = max(time_inits(many_url, processes))
        alone = time_inits(alone_url, 1)[0]
    _check_at_head(alone_url)
    _check_at_head(many_url)
    return alone, slowest


def measure(processes, runs):
    """Run :func:`run_once` ``runs`` times, each in a new directory.

    :returns: the rows ``(metric, value, unit)`` of the medians.
    """
    alones, slowests, ratios = [], [], []
    for run in range(runs):
        with tempfile.TemporaryDirectory(
                prefix='cloudkitty-init-bench-') as directory:
            alone, slowest = run_once(directory, processes, run % 2 == 0)
        alones.append(alone)
        slowests.append(slowest)
        ratios.append(slowest / alone)
    return [
        ('init_alone', round(statistics.median(alones), 4), 's'),
        ('init_slowest_of_%d' % processes,
         round(statistics.median(slowests), 4), 's'),
        ('slowest_to_alone', round(statistics.median(ratios), 2),
         'ratio'),
        ('slowest_to_alone_max', round(max(ratios), 2), 'ratio'),
        ('runs', runs, 'runs'),
    ]


def take_action(parsed_args):
    """Run the measurement of ``--concurrent-init``.

    :returns: ``(('metric', 'value', 'unit'), rows)``.
    """
    return (('metric', 'value', 'unit'),
            measure(parsed_args.concurrent_init, parsed_args.init_runs))
