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
"""``cloudkitty-storage bench``: measure a backend and check its answers.

The workload comes from :mod:`cloudkitty.cli.perf.workload`. Every answer
of the backend is compared with the exact sums the generator computed; any
difference stops the run with a non-zero exit code, so a fast but wrong
backend never gets a figure.

With ``--sizes`` the benchmark runs once per size, each in a new process
(so that its peak memory is its own) against a new target, and prints one
column per size. ``--json-out`` saves the figures, ``--plot`` draws them
(see :mod:`cloudkitty.cli.perf.plot`) and ``--from-json`` prints and
draws saved figures, of several backends at once, without running anything.
"""

import argparse
import collections
import contextlib
import datetime
import decimal
import gc
import json
import logging
import multiprocessing
import os
import platform
import re
import resource
import statistics
import sys
import time
import traceback

from cliff import lister
from oslo_log import log

from cloudkitty.cli import args
from cloudkitty.cli import data
from cloudkitty.cli import main
from cloudkitty.cli.perf import anchor
from cloudkitty.cli.perf import init_bench
from cloudkitty.cli.perf import load
from cloudkitty.cli.perf import plot
from cloudkitty.cli.perf import scratch
from cloudkitty.cli.perf import workload
from cloudkitty.cli import rst
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query

LOG = log.getLogger(__name__)

#: Page size of the timed retrieve() calls.
RETRIEVE_LIMIT = 1000
#: Where the deep retrieve() page starts, as a fraction of the points.
DEEP_PAGE = 0.9
#: The timed total() calls: ``(metric name, groupby)``.
TOTAL_QUERIES = (
    ('total_no_groupby', ()),
    ('total_by_project_id', ('project_id',)),
    ('total_by_type_project_id', ('type', 'project_id')),
    ('total_by_id', ('id',)),
    ('total_by_time', ('time',)),
)
#: Default of ``--periods``, which ``--sizes`` replaces.
DEFAULT_PERIODS = 100
#: Multipliers of the ``--sizes`` suffixes.
SIZE_SUFFIXES = {'': 1, 'k': 10 ** 3, 'K': 10 ** 3, 'M': 10 ** 6}
#: Metrics in seconds that are not the latency of one query.
NOT_LATENCIES = ('push_time', 'processed_time', 'run_time')
#: ``format`` and ``version`` of the files ``--json-out`` writes.
RESULTS_FORMAT = 'cloudkitty-storage-bench'
RESULTS_VERSION = 1

_SIZE_RE = re.compile(r'^(\d+(?:\.\d+)?)([kKM]?)$')


class CheckFailed(ValueError):
    """The backend answered differently from the exact expected result."""


def _timed(call, store=None):
    """Run ``call()``; return ``(seconds, result)``.

    An anchor (see :mod:`cloudkitty.cli.perf.anchor`) reports the seconds
    the call took on its side, without the transfer: they are used.

    The cyclic garbage collector runs a full collection first, as
    upstream's driver does before each of its calls (see :mod:`cloudkitty.
    cli.perf.upstream_driver`): otherwise a collection owed to the
    harness's own objects (the workload's expected sums, a module it
    imported) falls inside whichever timed call crosses the threshold
    (measured: importing the anchor's test helpers moved one into SQLite's
    ``delete_project_past``, 8.0-8.7 ms against 4.5). A call still pays
    for the collections its own allocations start.
    """
    gc.collect()
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    own = getattr(store, 'last_call_seconds', None)
    return (seconds if own is None else own), result


def peak_rss_mib():
    """Return the peak resident set size of this process, in MiB.

    On Linux it is ``VmHWM`` of ``/proc/self/status``: ``ru_maxrss``
    survives ``exec``, so that a process spawned by a big parent would
    report at least the parent's size. Elsewhere it is ``ru_maxrss``.

    :rtype: float
    """
    with contextlib.suppress(OSError, ValueError):
        with open('/proc/self/status', encoding='ascii') as status:
            for line in status:
                if line.startswith('VmHWM:'):
                    # NOTE: "VmHWM:    123456 kB".
                    return round(int(line.split()[1]) / 1024, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # NOTE: Linux reports KiB, macOS reports bytes.
    if sys.platform == 'darwin':
        peak /= 1024
    return round(peak / 1024, 1)


def check_total(name, answer, groupby, expected, tolerance=0):
    """Check a total() answer against the expected groups.

    :param name: the metric name, used in messages.
    :param answer: what total() returned (``paginate=False``).
    :type answer: dict
    :param groupby: the groupby that was asked.
    :type groupby: tuple of str
    :param expected: ``{key tuple: (qty, rate)}``, as returned by
        :meth:`cloudkitty.cli.perf.workload.Expected.groups`.
    :type expected: dict
    :param tolerance: the backend's ``features.float_tolerance`` (0:
        Decimals compared exactly), see :func:`cloudkitty.storage.v2.money.
        agrees`.
    :raises CheckFailed: on any missing, unexpected or wrong group, or a
        wrong ``total`` count.
    """
    actual = {}
    for row in answer['results']:
        key = tuple(query.result_value(row, g) for g in groupby)
        if key in actual:
            raise CheckFailed('%s: group %r returned twice' % (name, key))
        actual[key] = (row['qty'], row['rate'])
    if not groupby and not expected:
        # NOTE: with nothing left, a backend may return no row or a single
        # row of zeros; both are correct.
        expected = {(): (decimal.Decimal(0), decimal.Decimal(0))}
        actual = actual or expected
    missing = sorted(set(expected) - set(actual), key=repr)
    extra = sorted(set(actual) - set(expected), key=repr)
    wrong = [(key, actual[key], expected[key])
             for key in sorted(set(actual) & set(expected), key=repr)
             if not (money.agrees(actual[key][0], expected[key][0], tolerance)
                     and money.agrees(actual[key][1], expected[key][1],
                                      tolerance))]
    problems = []
    if missing:
        problems.append('%d missing (first %r)' % (len(missing), missing[0]))
    if extra:
        problems.append('%d unexpected (first %r)' % (len(extra), extra[0]))
    if wrong:
        key, got, want = wrong[0]
        problems.append(
            '%d wrong (first %r: got qty=%r rate=%r, expected qty=%s '
            'rate=%s)' % (len(wrong), key, got[0], got[1], want[0], want[1]))
    if problems:
        raise CheckFailed('%s: the backend differs from the exact expected '
                          'sums: %s' % (name, '; '.join(problems)))
    if answer['total'] != len(actual) and (groupby or answer['results']):
        raise CheckFailed('%s: total is %r but %d groups were returned'
                          % (name, answer['total'], len(actual)))


class BenchFailed(RuntimeError):
    """A size of a ``--sizes`` run could not be measured."""


def parse_sizes(text):
    """argparse type of ``--sizes``: point counts, comma-separated.

    A size is a whole number of points, with an optional suffix: ``k`` (or
    ``K``) for thousands, ``M`` for millions; ``2000``, ``10k``, ``1M`` and
    ``1.5M`` are sizes.

    :param text: for example ``'10k,100k,1M'``.
    :type text: str
    :returns: the sizes, in increasing order.
    :rtype: list of int
    :raises argparse.ArgumentTypeError: for an empty or malformed item, a
        fraction of a point, a size below one point per metric type, or a
        size given twice.
    """
    sizes = []
    for item in text.split(','):
        item = item.strip()
        match = _SIZE_RE.match(item)
        if not match:
            raise argparse.ArgumentTypeError(
                'bad size %r: expected a number of points such as 2000, '
                '10k or 1M' % item)
        number = (decimal.Decimal(match.group(1))
                  * SIZE_SUFFIXES[match.group(2)])
        if number != number.to_integral_value():
            raise argparse.ArgumentTypeError(
                'bad size %r: not a whole number of points' % item)
        size = int(number)
        if size < len(workload.TYPES):
            raise argparse.ArgumentTypeError(
                'bad size %r: a workload has at least %d points (one per '
                'metric type)' % (item, len(workload.TYPES)))
        if size in sizes:
            raise argparse.ArgumentTypeError(
                'size %r (%d points) is given twice' % (item, size))
        sizes.append(size)
    return sorted(sizes)


def utc_day(text):
    """argparse type of ``--start``: a date, or a UTC midnight.

    :rtype: datetime.datetime
    :raises argparse.ArgumentTypeError: for anything else.
    """
    moment = args.iso_datetime(text)
    if moment != moment.replace(hour=0, minute=0, second=0, microsecond=0):
        raise argparse.ArgumentTypeError(
            'not a UTC day: %r (for example 2026-01-01)' % text)
    return moment


def size_label(size):
    """Return the short name of a size: ``10k``, ``1M``, ``2500``.

    :param size: a number of points.
    :type size: int
    :rtype: str
    """
    for suffix, factor in (('M', 10 ** 6), ('k', 10 ** 3)):
        if size % factor == 0:
            return '%d%s' % (size // factor, suffix)
    return str(size)


def run_workload(store, work, repeat, label):
    """Push ``work`` into ``store``, time the queries, check every answer.

    :param store: an initialised backend whose workload window is empty.
    :param work: the workload to push.
    :type work: cloudkitty.cli.perf.workload.Workload
    :param repeat: runs of each timed query (the median is reported).
    :type repeat: int
    :param label: the ``backend`` value of the output.
    :type label: str
    :returns: the output rows, ``[(metric, value, unit)]``.
    :rtype: list of tuple
    :raises CheckFailed: when an answer differs from the expected one.
    """
    tolerance = store.features.float_tolerance
    oldest = datetime.datetime.now(datetime.timezone.utc) - \
        store.get_retention()
    if work.begin < oldest:
        LOG.warning('The workload starts on %s, before what [storage] '
                    'retention_period keeps (%s); a backend that drops old '
                    'points (InfluxDB) will lose or refuse them',
                    work.begin.isoformat(), oldest.isoformat())
    rows = [('backend', label, ''),
            ('points', work.points, 'points'),
            ('pushes', work.pushes, 'calls')]
    expected = workload.Expected()
    push_time = _push(store, work, expected)
    rows.append(('push', int(round(work.points / push_time)), 'points/s'))
    rows.append(('push_time', round(push_time, 3), 's'))
    if store.features.eventually_consistent:
        # NOTE: the backend accepted the points; reads see them once it
        # processed them (Gnocchi's metricd), which is timed apart.
        processed, _ = _timed(store.wait_until_visible)
        rows.append(('processed_time', round(processed, 3), 's'))
    # NOTE: measured before any delete, which SQLite would not give back.
    size = store.describe().size_bytes
    checks = 0
    window = dict(begin=work.begin, end=work.end)

    def timed(call, check):
        """Median seconds of ``repeat`` checked calls, and the last answer."""
        nonlocal checks
        times = []
        for _ in range(repeat):
            seconds, answer = _timed(call, store)
            check(answer)
            checks += 1
            times.append(seconds)
        return round(statistics.median(times), 6), answer

    for name, groupby in TOTAL_QUERIES:
        if 'time' in groupby and not store.features.groupby_time:
            LOG.warning('Skipping %s: backend %s lacks groupby_time',
                        name, store.name)
            continue
        want = expected.groups(groupby)
        seconds, _ = timed(
            lambda: store.total(groupby=list(groupby) or None,
                                paginate=False, **window),
            lambda answer: check_total(name, answer, groupby, want, tolerance))
        rows.append((name, seconds, 's'))

    # NOTE: the first UTC day: a whole day, which a backend with daily
    # sums can answer without reading the points.
    day_begin = work.begin
    day_end = work.begin + workload.DAY_PERIODS * work.period
    day = workload.Sums()
    for start, sums in expected.by_period.items():
        if day_begin <= start < day_end:
            day.merge(sums)
    want = {(): (day.qty, day.price)} if day.count else {}
    seconds, _ = timed(
        lambda: store.total(begin=day_begin, end=day_end, paginate=False),
        lambda answer: check_total('total_one_day', answer, (), want,
                                   tolerance))
    rows.append(('total_one_day', seconds, 's'))

    seconds, answer = timed(
        lambda: store.retrieve(offset=0, limit=RETRIEVE_LIMIT, **window),
        lambda answer: _check_page(answer, work.points, 0))
    rows.append(('retrieve_first_page', seconds, 's'))
    rows.append(('retrieve_total', answer['total'], 'points'))

    offset = int(DEEP_PAGE * work.points)
    seconds, _ = timed(
        lambda: store.retrieve(offset=offset, limit=RETRIEVE_LIMIT,
                               **window),
        lambda answer: _check_page(answer, work.points, offset))
    rows.append(('retrieve_page_90pct', seconds, 's'))

    project_id = work.project_ids[0]
    want_project = expected.groups(('project_id',))[(project_id,)]
    seconds, _ = timed(
        lambda: store.retrieve(filters={'project_id': project_id},
                               paginate=False, **window),
        lambda answer: _check_project(answer, work.points // work.projects,
                                      want_project))
    rows.append(('retrieve_project', seconds, 's'))

    left = workload.Sums()
    left.merge(expected.all)
    seconds, deleted, checked = _delete(store, work, expected, left, repeat,
                                        tolerance)
    checks += checked
    rows.append(('delete_period', round(seconds, 6), 's'))
    rows.append(('deleted_points', deleted, 'points'))
    done = set()
    deleted = 0
    for name, last in (('delete_project', work.periods - 1),
                       ('delete_project_past', work.periods // 2)):
        seconds, count, checked = _delete_project(
            store, work, expected, left, repeat, tolerance, last, done)
        deleted = max(deleted, count)
        checks += checked
        rows.append((name, None if seconds is None else round(seconds, 6),
                     's'))
    rows.append(('deleted_project_points', deleted, 'points'))
    if size is not None:
        rows.append(('database_size', round(size / 2 ** 20, 2), 'MiB'))
    # NOTE: an anchor's memory is not this process's (see anchor.py).
    peak = getattr(store, 'peak_rss_mib', peak_rss_mib)
    rows.append(('peak_rss', peak(), 'MiB'))
    rows.append(('checks_passed', checks, 'checks'))
    return rows


def run_round(store, work, repeat, number, rounds, keep=False):
    """Run round ``number`` of ``rounds`` of the workload on a store.

    A round is :func:`run_workload` followed by a purge: the delete of
    the workload's whole window, timed (``purge``) and checked, as an
    operator's monthly purge would be. So each round finds the store as a
    long-lived one is: holding what earlier data and deletes left behind
    (InfluxDB's tombstones and series, a database's free pages).

    :param rounds: the number of rounds (1 for a plain run: no purge).
    :param keep: leave the last round's data (no purge after it).
    :returns: the rows of the round.
    :rtype: list of tuple
    """
    if rounds > 1:
        LOG.info('Round %d of %d on %s', number, rounds, store.name)
    rows = run_workload(store, work, repeat, main.describe_store(store))
    if rounds > 1 and not (keep and number == rounds):
        seconds, _ = _timed(
            lambda: store.delete(begin=work.begin, end=work.end), store)
        left = data.count_points(store, work.begin, work.end)
        if left:
            raise CheckFailed('purge: %d points remain in %s..%s'
                              % (left, work.begin.isoformat(),
                                 work.end.isoformat()))
        at = [row[0] for row in rows].index('checks_passed')
        rows[at:at] = [('purge', round(seconds, 6), 's')]
        rows[-1] = ('checks_passed', rows[-1][1] + 1, 'checks')
    return rows


def run_beside(store, other, work, repeat, rounds, keep=False):
    """Run the rounds of the workload on our store and an anchor, in turn.

    Round ``n`` of ours, then round ``n`` of the anchor's, and so on: a
    machine whose speed drifts during the run (shared machines do, by a
    fifth and more within minutes) then weighs on both sides of each
    round alike, rather than on all of ours first and all of the
    anchor's after.

    :param other: the anchor (see :mod:`cloudkitty.cli.perf.anchor`), or
        None to run ours alone.
    :param keep: leave our last round's data (never the anchor's).
    :returns: ``(ours, theirs)``, the rows of each round of each
        (``theirs`` None without an anchor).
    """
    ours = []
    theirs = None if other is None else []
    for number in range(1, rounds + 1):
        ours.append(run_round(store, work, repeat, number, rounds, keep))
        if other is not None:
            theirs.append(run_round(other, work, repeat, number, rounds))
    return ours, theirs


def rounds_table(ours, theirs=None, name=None):
    """Put the rounds of ``--reuse`` side by side.

    :param ours: our rows of each round (see :func:`run_beside`).
    :param theirs: the anchor's, or None.
    :param name: the anchor's name.
    :returns: ``(columns, rows)`` for a cliff lister: ``metric``, ``round
        1`` .. ``round N``, then the anchor's rounds, the ratio of the
        last rounds (see :func:`cloudkitty.cli.perf.anchor.ratio`) and
        the median of the ratios of every round (``median ratio``), then
        ``unit``.
    """
    columns = ['metric'] + ['round %d' % n for n in range(1, len(ours) + 1)]
    sides = [ours]
    if theirs is not None:
        columns += ['%s round %d' % (name, n)
                    for n in range(1, len(theirs) + 1)]
        columns += ['ratio', 'median ratio']
        sides.append(theirs)
    columns.append('unit')
    values = [[{metric: value for metric, value, _ in rows}
               for rows in side] for side in sides]
    table = []
    for metric, _, unit in ours[-1]:
        row = [metric]
        for side in values:
            row += [rows.get(metric) for rows in side]
        if theirs is not None:
            ratios = [anchor.ratio(metric, unit, mine.get(metric),
                                   other.get(metric), NOT_LATENCIES)
                      for mine, other in zip(*values)]
            row.append(ratios[-1])
            known = [value for value in ratios if value is not None]
            row.append(float('%.3g' % statistics.median(known))
                       if known else None)
        row.append(unit)
        table.append(tuple(row))
    return tuple(columns), table


def _push(store, work, expected):
    """Push the workload; return the seconds spent inside push()."""
    LOG.info('Pushing %d points in %d pushes to %s', work.points,
             work.pushes, store.name)
    total = 0.0
    step = max(1, work.pushes // 10)
    # NOTE: an anchor in another process gets its frames before the clock
    # starts, as a backend gets them built.
    stage = getattr(store, 'stage', None)
    for done, (scope_id, frame) in enumerate(
            work.iter_frames(expected), 1):
        frames = [frame] if stage is None else stage([frame])
        seconds, _ = _timed(
            lambda: store.push(frames, scope_id=scope_id), store)
        total += seconds
        if work.pushes >= 100 and done % step == 0:
            LOG.info('Pushed %d of %d frames (%.1f s in push)', done,
                     work.pushes, total)
    if expected.count != work.points:
        raise CheckFailed('the generator made %d points instead of %d'
                          % (expected.count, work.points))
    return total


def _check_project(answer, count, want):
    """Check retrieve() of one whole project against its exact sums."""
    points = [point for frame in answer['dataframes']
              for _, point in frame.iterpoints()]
    if answer['total'] != count or len(points) != count:
        raise CheckFailed(
            'retrieve of a project: %r points (total %r), expected %d'
            % (len(points), answer['total'], count))
    qty = price = decimal.Decimal(0)
    for point in points:
        # NOTE: money.add never rounds, unlike the default context.
        qty = money.add(qty, point.qty)
        price = money.add(price, point.price)
    if (qty, price) != want:
        raise CheckFailed(
            'retrieve of a project: sums %s/%s, expected %s/%s'
            % (qty, price, want[0], want[1]))


def _check_page(answer, count, offset):
    """Check a retrieve() page of the whole workload, from ``offset``."""
    if answer['total'] != count:
        raise CheckFailed('retrieve: total is %r, expected %d points'
                          % (answer['total'], count))
    page = sum(len(frame) for frame in answer['dataframes'])
    want = max(0, min(RETRIEVE_LIMIT, count - offset))
    if page != want:
        raise CheckFailed('retrieve: the page at offset %d holds %d points, '
                          'expected %d' % (offset, page, want))


def _delete(store, work, expected, left, repeat, tolerance):
    """Delete the first periods (:func:`deleted_periods`), one at a time.

    After each, the period must be empty, and the count and sums of the
    rest exact.

    :param left: the sums of the points still stored; the deleted ones
        are subtracted from it.
    :type left: cloudkitty.cli.perf.workload.Sums
    :returns: ``(median seconds, points deleted per call, checks)``.
    """
    times = []
    checks = 0
    for index in range(deleted_periods(work, repeat)):
        begin, end = work.period_window(index)
        seconds, deleted = _timed(
            lambda: store.delete(begin=begin, end=end), store)
        times.append(seconds)
        _check_deleted(store, work, deleted, work.points_per_period,
                       begin, end)
        left.subtract(expected.by_period[begin])
        _check_left(store, work, left, tolerance)
        checks += 3
    return statistics.median(times), work.points_per_period, checks


def _delete_project(store, work, expected, left, repeat, tolerance, last,
                    done):
    """Delete one project of one period ``repeat`` times; check the rest.

    Each call deletes another (project, period): the projects of period
    ``last`` in turn, then those of the period before, skipping a period
    that :func:`_delete` removed. A rating service's API does this to
    rate one scope of a period again, as often as it re-rates: the last
    period (``delete_project``), or a past one (``delete_project_past``:
    the middle of the window, whose day a backend that sums whole days
    has summed, so the delete also takes the points out of those sums;
    CloudKitty's reprocessing deletes so, period by period). One call
    more comes first, checked but not timed: the first delete of a
    project makes its statements for the first time (parsed, planned,
    cached by the drivers): the median of the first three calls was up
    to 1.5 times that of the next ones on SQLite and PostgreSQL
    (measured), a cost a service that deletes all day pays once. The
    anchor's first call is left out alike.

    :param left: as for :func:`_delete`.
    :param last: the index of the first period whose projects go.
    :param done: the ``(period index, project id)`` pairs deleted by an
        earlier call, skipped (a workload of few periods); this call's
        are added.
    :returns: ``(median seconds, or None when no period was left, points
        deleted per call, checks)``.
    """
    count = len(workload.TYPES) * work.resources
    times = []
    checks = 0
    for step in range(repeat + 1):
        index = last - step // work.projects
        project_id = work.project_ids[step % work.projects]
        filters = {'project_id': project_id}
        begin, end = work.period_window(index)
        if index < deleted_periods(work, repeat) or \
                (index, project_id) in done:
            # NOTE: a workload of few periods: _delete() or an earlier
            # call removed it.
            continue
        done.add((index, project_id))
        seconds, deleted = _timed(
            lambda: store.delete(begin=begin, end=end, filters=filters),
            store)
        if step:
            times.append(seconds)
        _check_deleted(store, work, deleted, count, begin, end, filters)
        left.subtract(expected.by_period_project[(begin, project_id)])
        _check_left(store, work, left, tolerance)
        checks += 3
    if not times:
        return None, 0, checks
    return statistics.median(times), count, checks


def deleted_periods(work, repeat):
    """How many periods :func:`_delete` removes: the first ``repeat``.

    One period at least, and one fewer than the workload has when it has
    more than one, for :func:`_delete_project`.
    """
    return min(repeat, max(1, work.periods - 1))


def _check_deleted(store, work, deleted, count, begin, end, filters=None):
    """Check what one delete() reported and left in its window."""
    if deleted is not None and deleted != count:
        raise CheckFailed(
            'delete: %s..%s%s reported %r deleted points, expected %d'
            % (begin.isoformat(), end.isoformat(),
               ' of %r' % filters if filters else '', deleted, count))
    if data.count_points(store, begin, end, filters):
        raise CheckFailed('delete: points of %s..%s%s are still there'
                          % (begin.isoformat(), end.isoformat(),
                             ' of %r' % filters if filters else ''))


def _check_left(store, work, left, tolerance):
    """Check the points and sums left in the workload's window."""
    found = data.count_points(store, work.begin, work.end)
    if found != left.count:
        raise CheckFailed('delete: %d points remain, expected %d'
                          % (found, left.count))
    want = {(): (left.qty, left.price)} if left.count else {}
    check_total('total_after_delete', store.total(
        begin=work.begin, end=work.end, paginate=False), (), want,
        tolerance)


def _size_process(spec, plan, level, sender):
    """The body of a size's process: measure, send the outcome, exit.

    :param level: the parent's logging level; logs go to stderr.
    :param sender: the connection :func:`measure_size`'s outcome is sent
        on.
    """
    logging.basicConfig(level=level, stream=sys.stderr,
                        format='%(levelname)s %(name)s %(message)s')
    # NOTE: as the parent does: at INFO, SQLAlchemy would log every
    # statement.
    for entry in main._QUIET_LIBRARIES:
        name, _, quiet = entry.partition('=')
        logging.getLogger(name).setLevel(quiet)
    sender.send(measure_size(spec, plan))
    sender.close()


def measure_size(spec, plan):
    """Measure one size of a ``--sizes`` run; run in a process of its own.

    :param spec: how to build the storage.
    :type spec: cloudkitty.cli.perf.load.StorageSpec
    :param plan: ``projects``, ``resources``, ``periods``, ``push_per``,
        ``seed``, ``repeat``, ``start`` (None: see :func:`cloudkitty.cli.
        perf.workload.recent_start`); with ``configured`` true the
        workload window must be empty and is emptied afterwards unless
        ``keep``.
    :type plan: dict
    :returns: ``{'rows': [(metric, value, unit)]}``, or ``{'error':
        message, 'type': exception class name, 'plain': whether the
        message is enough, 'traceback': text}``: an exception of the
        storage may not survive pickling.
    :rtype: dict
    """
    try:
        work = workload.Workload(
            projects=plan['projects'], resources=plan['resources'],
            periods=plan['periods'], seed=plan['seed'],
            push_per=plan['push_per'],
            start=plan.get('start') or workload.recent_start(
                plan['periods']))
        store = spec.open()
        try:
            if plan['configured']:
                target = scratch.empty_window(store, work.begin, work.end,
                                              plan['keep'], 'bench')
            else:
                target = contextlib.nullcontext(store)
            with target:
                rows = run_workload(store, work, plan['repeat'],
                                    main.describe_store(store))
        finally:
            store.close()
    except Exception as exc:
        # NOTE: the message of a ValueError or a StorageError says it all;
        # another exception is named, as a KeyError's message is not.
        return {'error': str(exc), 'type': type(exc).__name__,
                'plain': isinstance(exc, (ValueError,
                                          exceptions.StorageError)),
                'traceback': ''.join(traceback.format_exception(exc))}
    return {'rows': rows}


def _run_size_process(spec, plan):
    """Run :func:`measure_size` in a new spawned process; return its rows.

    A new process per size, because the peak RSS of a process never goes
    down. The process is terminated if this one stops waiting for it (an
    interrupt).

    :raises CheckFailed: when an answer was wrong.
    :raises BenchFailed: on any other error, or when the process ended
        without an outcome.
    """
    context = multiprocessing.get_context('spawn')
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_size_process, name='bench-%s' % plan['label'],
        args=(spec, plan, logging.getLogger().getEffectiveLevel(), sender))
    process.start()
    # NOTE: only the child holds the sending end now, so that its end,
    # whatever the cause, ends recv() with EOFError.
    sender.close()
    try:
        try:
            outcome = receiver.recv()
        except EOFError:
            process.join()
            code = process.exitcode
            why = ('killed by signal %d; out of memory?' % -code
                   if code is not None and code < 0 else
                   'its error is above')
            raise BenchFailed('size %s: the benchmark process ended with '
                              'code %s before it reported (%s)'
                              % (plan['label'], code, why)) from None
        process.join()
    finally:
        if process.is_alive():
            process.terminate()
            process.join()
        receiver.close()
    return outcome_rows(plan['label'], outcome)


def outcome_rows(label, outcome):
    """Return the rows of a :func:`measure_size` outcome, or raise its error.

    :param label: the size, named in the error.
    :param outcome: what :func:`measure_size` returned.
    :type outcome: dict
    :raises CheckFailed: when an answer was wrong.
    :raises BenchFailed: on any other error.
    """
    if 'error' not in outcome:
        return outcome['rows']
    LOG.debug('size %s failed:\n%s', label, outcome['traceback'])
    if outcome['type'] == CheckFailed.__name__:
        raise CheckFailed('size %s: %s' % (label, outcome['error']))
    if outcome['plain']:
        raise BenchFailed('size %s: %s' % (label, outcome['error']))
    raise BenchFailed('size %s: %s: %s' % (label, outcome['type'],
                                           outcome['error']))


def sized_path(path, label):
    """Return the ``--database`` file of a size: ``b.sqlite``, ``b-1M.sqlite``.

    :rtype: str
    """
    root, ext = os.path.splitext(path)
    return '%s-%s%s' % (root, label, ext)


def new_results(options):
    """Return a new, empty results document (see :func:`save_results`).

    :param options: the workload options to record.
    :type options: dict
    :rtype: dict
    """
    return {
        'format': RESULTS_FORMAT,
        'version': RESULTS_VERSION,
        'backend': None,
        'created': datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        'host': {'python': platform.python_version(),
                 'system': platform.platform(terse=True),
                 'cpus': os.cpu_count()},
        'options': dict(options),
        'runs': [],
    }


def save_results(results, path):
    """Write a results document to ``path`` as JSON, atomically.

    The document is ``{"format": "cloudkitty-storage-bench", "version": 1,
    "backend": label, "created": ISO 8601 UTC, "host": {...}, "options":
    {...}, "runs": [run, ...]}``; a run is ``{"size", "label", "projects",
    "resources", "periods", "rows": [[metric, value, unit], ...]}``.

    :param results: the document.
    :type results: dict
    :param path: the file to (re)write.
    :type path: str
    """
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as stream:
        json.dump(results, stream, indent=2)
        stream.write('\n')
    # NOTE: a run killed while writing leaves the previous file whole.
    os.replace(tmp, path)


def load_results(path):
    """Read a results document written by ``bench --json-out``.

    :param path: the file to read.
    :type path: str
    :rtype: dict
    :raises ValueError: when the file is not such a document.
    :raises OSError: when it cannot be read.
    """
    with open(path, encoding='utf-8') as stream:
        try:
            results = json.load(stream)
        except ValueError as exc:
            raise ValueError('%s: not JSON: %s' % (path, exc)) from None
    if not isinstance(results, dict) or \
            results.get('format') != RESULTS_FORMAT:
        raise ValueError('%s: not the figures of bench --json-out' % path)
    if results.get('version') != RESULTS_VERSION:
        raise ValueError('%s: version %r of the bench figures; this '
                         'version reads %d only'
                         % (path, results.get('version'), RESULTS_VERSION))
    runs = results.get('runs')
    if not isinstance(runs, list) or not all(
            isinstance(run, dict) and isinstance(run.get('label'), str)
            and isinstance(run.get('rows'), list)
            and all(isinstance(row, list) and len(row) == 3
                    for row in run['rows'])
            for run in runs):
        raise ValueError('%s: malformed runs in the bench figures' % path)
    return results


def _names(all_results, paths):
    """Name each results document after its backend, unique."""
    labels = [results.get('backend') or '?' for results in all_results]
    names = [label if labels.count(label) == 1 else
             '%s [%s]' % (label, os.path.basename(path or 'this run'))
             for label, path in zip(labels, paths)]
    # NOTE: the same file twice still needs two distinct column names.
    for index, name in enumerate(names):
        if name in names[:index]:
            names[index] = '%s #%d' % (name, names[:index].count(name) + 1)
    return names


def results_table(all_results, names):
    """Put runs side by side: one row per metric, one column per run.

    :param all_results: results documents.
    :param names: one name per document; prefixed to the size in the
        column header when there are several documents.
    :returns: ``(columns, rows)`` for a cliff lister: ``metric``, one
        column per run (named after its size), ``unit``. A metric a run
        lacks is None.
    """
    headers = []
    cells = {}
    units = {}
    for results, name in zip(all_results, names):
        for run in results['runs']:
            header = run['label']
            if len(all_results) > 1:
                header = '%s %s' % (name, header)
            for metric, value, unit in run['rows']:
                units.setdefault(metric, unit)
                cells[(metric, len(headers))] = value
            headers.append(header)
    rows = [(metric,) + tuple(cells.get((metric, index))
                              for index in range(len(headers)))
            + (unit,) for metric, unit in units.items()]
    return ('metric',) + tuple(headers) + ('unit',), rows


def draw_results(all_results, names, path):
    """Draw the figures of results documents with :func:`plot.draw`.

    The queries are the metrics in seconds but :data:`NOT_LATENCIES`.
    """
    queries = []
    series = []
    for results, name in zip(all_results, names):
        latency = collections.defaultdict(list)
        push = []
        size = []
        for run in results['runs']:
            values = {metric: value for metric, value, _ in run['rows']}
            points = values.get('points')
            if not isinstance(points, int):
                continue
            for metric, value, unit in run['rows']:
                if unit == 's' and metric not in NOT_LATENCIES and \
                        isinstance(value, (int, float)):
                    latency[metric].append((points, value))
                    if metric not in queries:
                        queries.append(metric)
            if isinstance(values.get('push'), (int, float)):
                push.append((points, values['push']))
            if isinstance(values.get('database_size'), (int, float)):
                size.append((points, values['database_size']))
        series.append(plot.Series(name, dict(latency), push, size))
    options = [results.get('options') or {} for results in all_results]
    notes = []
    if all(opt == options[0] for opt in options) and options[0]:
        opt = options[0]
        notes.append('median of %s run%s; base shape %s projects x %d '
                     'types x %s resources, hourly periods, one push per '
                     '%s' % (opt.get('repeat'),
                             '' if opt.get('repeat') == 1 else 's',
                             opt.get('projects'), len(workload.TYPES),
                             opt.get('resources'), opt.get('push_per')))
    plot.draw(path, series, queries,
              'cloudkitty-storage bench: %s' % ', '.join(names),
              '; '.join(notes))


def _check_writable(option, path):
    """Fail early when the directory of an output file is missing."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError('%s %s: the directory %s does not exist'
                         % (option, path, folder))


class Bench(rst.PlainHelp, lister.Lister):
    """Benchmark the storage backend and check every answer exactly.

    Pushes a generated workload (``projects x 6 types x resources`` points
    per hourly period, one push per period or per period and project),
    then times total() with several groupbys and over
    one day, retrieve() pages at the start and at 90% of the points, the
    retrieve() of one project and the delete() of one period. Each timing
    is the median of ``--repeat`` runs. Every answer is compared with the
    exact sums the generator knows; a difference ends the command with an
    error.

    The target is a new SQLite file in a temporary directory (removed
    afterwards unless ``--keep``), or the file given with ``--database``.
    With ``--config-file``, ``--config-dir``, ``--backend`` or
    ``--connection`` (and no ``--database``) it is the configured backend,
    whose window must be empty; the pushed data is deleted afterwards
    unless ``--keep``.

    The workload starts at a UTC midnight and ends by the start of the
    current UTC day (``--start`` pins its first day instead), so that a
    backend that drops points older than its retention (InfluxDB, with
    ``[storage] retention_period``) keeps them.

    With ``--anchor`` the same workload then runs, in the same run, on an
    anchor (upstream CloudKitty 25.0.0's InfluxStorage on a private
    influxd, or raw ``sqlite3`` inserts and ``GROUP BY``), checked the same
    way, and each of our rows is printed beside the anchor's with the
    ratio (above 1: ours is faster); see :mod:`cloudkitty.cli.perf.anchor`.
    With ``--reuse`` too, the rounds alternate (ours, the anchor's, ours
    ...) and a ``median ratio`` column follows the last rounds' ratio.

    With ``--sizes`` the benchmark runs once per size, each in a new
    process against a new target (a new SQLite file, or the emptied window
    of the configured backend), and prints one column per size.

    With ``--concurrent-init N`` it measures only ``init()`` on a new
    SQLite file, by N processes at once against one alone (see
    :mod:`cloudkitty.cli.perf.init_bench`).
    """

    #: Long work: its INFO messages report progress (see
    #: :meth:`cloudkitty.cli.main.StorageApp._console_level`).
    progress_logs = True

    def get_parser(self, prog_name):
        """Return the parser of ``bench``'s own options.

        :rtype: argparse.ArgumentParser
        """
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--projects', type=args.positive_int, default=100, metavar='N',
            help='Number of projects (default: 100).')
        parser.add_argument(
            '--resources', type=args.positive_int, default=17, metavar='R',
            help='Resources per project and type (default: 17).')
        parser.add_argument(
            '--periods', type=args.positive_int, default=DEFAULT_PERIODS,
            metavar='P',
            help='Number of hourly periods (default: 100; not used with '
                 '--sizes).')
        parser.add_argument(
            '--push-per', choices=workload.PUSH_PER, default='period',
            help='One push per period (default, as a rating service that '
                 'rates a whole period at once) or per period and project '
                 '(scope_id set to the project).')
        parser.add_argument(
            '--repeat', type=args.positive_int, default=3, metavar='K',
            help='Runs of each timed query; the median is reported '
                 '(default: 3).')
        parser.add_argument(
            '--seed', type=int, default=0,
            help='Seed of the workload generator (default: 0).')
        parser.add_argument(
            '--start', type=utc_day, default=None, metavar='DAY',
            help='Start the workload at 00:00 UTC of this day (default: '
                 'the latest day from which it ends by the start of today, '
                 'UTC, so that a retention policy keeps it).')
        parser.add_argument(
            '--database', metavar='PATH', default=None,
            help='Benchmark a new SQLite file at PATH (it must not exist) '
                 'instead of a temporary one or the configured backend; '
                 'with --sizes, one file per size: PATH-10k.sqlite for '
                 'PATH.sqlite.')
        parser.add_argument(
            '--keep', action='store_true',
            help='Keep the database and the pushed data afterwards.')
        parser.add_argument(
            '--sizes', type=parse_sizes, default=None, metavar='LIST',
            help='Run once per size, in points, such as 10k,100k,1M (k and '
                 'M multiply by 1000 and 1000000), each in a new process '
                 'and on a new target, and print one column per size. A '
                 'size keeps --projects x 6 types x --resources points per '
                 'period and sets the periods, at least 24; a smaller size '
                 'has fewer projects, then fewer resources.')
        parser.add_argument(
            '--json-out', metavar='FILE', default=None,
            help='Also write the figures to FILE as JSON (rewritten after '
                 'each size), for --from-json.')
        parser.add_argument(
            '--plot', metavar='FILE', default=None,
            help='Draw the latencies, the push throughput and the database '
                 'size against the number of points into FILE (.png, .svg '
                 'or .pdf); needs matplotlib: pip install '
                 '"cloudkitty-storage[plot]".')
        parser.add_argument(
            '--anchor', choices=anchor.ANCHORS, default=None,
            help='Also run the same workload, in the same run, on upstream '
                 'CloudKitty 25.0.0\'s InfluxStorage on a private influxd '
                 '(upstream-influxdb; needs --upstream-python) or through '
                 'sqlite3 alone (raw), and print both with their ratio.')
        parser.add_argument(
            '--upstream-python', metavar='PATH',
            default=os.environ.get(anchor.UPSTREAM_PYTHON_ENV),
            help='The Python of an environment where upstream CloudKitty '
                 '25.0.0 is installed, for --anchor upstream-influxdb '
                 '(default: $%s).' % anchor.UPSTREAM_PYTHON_ENV)
        parser.add_argument(
            '--anchor-influxdb-url', metavar='URL', default=None,
            help='Run --anchor upstream-influxdb on this InfluxDB 1.x '
                 'server (in a new database) instead of a private influxd.')
        parser.add_argument(
            '--reuse', type=args.positive_int, default=None, metavar='N',
            help='Push, query and delete the workload N times on the same '
                 'store (and on the anchor\'s, in turn: our round 1, its '
                 'round 1, our round 2...), each round ending with a '
                 'purge of the window, as months of operation would; print '
                 'the rounds side by side, with the last rounds\' ratio '
                 'and the median of every round\'s. Not with --sizes.')
        parser.add_argument(
            '--from-json', metavar='FILE', action='append', default=[],
            help='Run nothing: print, and with --plot draw, the figures '
                 'saved with --json-out in FILE; repeat it to put several '
                 'backends side by side.')
        init_bench.add_arguments(parser)
        return parser

    @contextlib.contextmanager
    def _target(self, parsed_args, work):
        """Yield the backend to benchmark; clean it up afterwards."""
        keep = parsed_args.keep
        if self._configured(parsed_args):
            store = self.app.get_storage(create=True)
            with scratch.empty_window(store, work.begin, work.end, keep,
                                      'bench') as store:
                yield store
            return
        with scratch.new_sqlite_file(parsed_args.database, keep,
                                     'bench') as path:
            yield main.load_storage(self.app.conf, backend='sqlalchemy',
                                    connection=main.sqlite_url(path),
                                    create=True)

    def _raw_url(self, parsed_args):
        """The ``--connection`` of a configured target, else None.

        ``--anchor raw`` uses it when it names PostgreSQL; otherwise it
        writes a SQLite file of its own.
        """
        if self._configured(parsed_args):
            return self.app.options.connection
        return None

    @staticmethod
    def _start(parsed_args, periods):
        """The first period's start: ``--start``, else before today."""
        if parsed_args.start is not None:
            return parsed_args.start
        return workload.recent_start(periods)

    def _configured(self, parsed_args):
        """Whether the target is the configured backend."""
        return (parsed_args.database is None
                and self.app.uses_configured_backend())

    def _check_options(self, parsed_args):
        """Reject what cannot work before any long run starts."""
        if parsed_args.from_json and (parsed_args.sizes
                                      or parsed_args.json_out):
            raise ValueError('--from-json only reads saved figures; it '
                             'cannot be used with --sizes or --json-out')
        if parsed_args.anchor and (parsed_args.sizes or parsed_args.from_json
                                   or parsed_args.plot):
            raise ValueError('--anchor measures one size beside ours; it '
                             'cannot be used with --sizes, --from-json or '
                             '--plot')
        if parsed_args.reuse is not None and (parsed_args.sizes
                                              or parsed_args.from_json
                                              or parsed_args.plot):
            raise ValueError('--reuse measures one size in rounds; it '
                             'cannot be used with --sizes, --from-json or '
                             '--plot')
        if parsed_args.plot is not None:
            plot.require_matplotlib()
            _check_writable('--plot', parsed_args.plot)
        if parsed_args.json_out is not None:
            _check_writable('--json-out', parsed_args.json_out)
        sizes = parsed_args.sizes or ()
        if len(sizes) > 1 and parsed_args.keep and \
                self._configured(parsed_args):
            raise ValueError('--keep with several --sizes on the '
                             'configured backend would leave the data of '
                             'a size in the window of the next one')
        if sizes and parsed_args.database is not None:
            for size in sizes:
                path = sized_path(parsed_args.database, size_label(size))
                if os.path.exists(path):
                    raise ValueError('%s already exists; bench only writes '
                                     'to new files' % path)

    def _options(self, parsed_args):
        """The workload options recorded in the results."""
        return {'projects': parsed_args.projects,
                'resources': parsed_args.resources,
                'periods': None if parsed_args.sizes else
                parsed_args.periods,
                'push_per': parsed_args.push_per,
                'repeat': parsed_args.repeat, 'seed': parsed_args.seed}

    def take_action(self, parsed_args):
        """Run the benchmark, or read saved figures (``--from-json``).

        :returns: ``(('metric', 'value', 'unit'), rows)``; with
            ``--sizes`` or ``--from-json``, one value column per size
            instead of ``value`` (see :func:`results_table`).
        :raises CheckFailed: when an answer differs from the expected one.
        """
        if parsed_args.concurrent_init is not None:
            return init_bench.take_action(parsed_args)
        self._check_options(parsed_args)
        if parsed_args.from_json:
            all_results = [load_results(path)
                           for path in parsed_args.from_json]
            names = _names(all_results, parsed_args.from_json)
            table = results_table(all_results, names)
        elif parsed_args.sizes:
            all_results = [self._run_sizes(parsed_args)]
            names = _names(all_results, [None])
            table = results_table(all_results, names)
        else:
            work = workload.Workload(
                projects=parsed_args.projects,
                resources=parsed_args.resources,
                periods=parsed_args.periods, seed=parsed_args.seed,
                push_per=parsed_args.push_per,
                start=self._start(parsed_args, parsed_args.periods))
            with contextlib.ExitStack() as stack:
                other = None
                if parsed_args.anchor:
                    # NOTE: started first, so that a missing upstream
                    # environment fails before the long run.
                    other = stack.enter_context(anchor.open_anchor(
                        parsed_args.anchor, parsed_args.upstream_python,
                        parsed_args.anchor_influxdb_url,
                        self._raw_url(parsed_args)))
                with self._target(parsed_args, work) as store:
                    ours, theirs = run_beside(
                        store, other, work, parsed_args.repeat,
                        parsed_args.reuse or 1, parsed_args.keep)
            rows = ours[-1]
            results = new_results(self._options(parsed_args))
            results['backend'] = rows[0][1]
            for number, round_rows in enumerate(ours, 1):
                run = self._run(work, round_rows)
                if parsed_args.reuse is not None:
                    run['round'] = number
                results['runs'].append(run)
            if parsed_args.json_out is not None:
                save_results(results, parsed_args.json_out)
            all_results = [results]
            names = _names(all_results, [None])
            table = ('metric', 'value', 'unit'), rows
            if parsed_args.reuse is not None:
                table = rounds_table(ours, theirs, parsed_args.anchor)
            elif parsed_args.anchor:
                table = anchor.side_by_side(rows, theirs[-1],
                                            parsed_args.anchor,
                                            NOT_LATENCIES)
        if parsed_args.plot is not None:
            draw_results(all_results, names, parsed_args.plot)
            LOG.info('Wrote the figure %s', parsed_args.plot)
        return table

    @staticmethod
    def _run(work, rows):
        """One run of a results document: its size, shape and rows."""
        return {'size': work.points, 'label': size_label(work.points),
                'projects': work.projects, 'resources': work.resources,
                'periods': work.periods, 'rows': [list(row) for row in rows]}

    def _run_sizes(self, parsed_args):
        """Run every size of ``--sizes``; return the results document."""
        options = self.app.options
        configured = self._configured(parsed_args)
        results = new_results(self._options(parsed_args))
        if parsed_args.periods != DEFAULT_PERIODS:
            LOG.warning('--periods is not used with --sizes: each size sets '
                        'its own number of periods')
        for size in parsed_args.sizes:
            label = size_label(size)
            projects, resources, periods = workload.shape_for_size(
                size, parsed_args.projects, parsed_args.resources)
            plan = {'label': label, 'projects': projects,
                    'resources': resources, 'periods': periods,
                    'push_per': parsed_args.push_per,
                    'seed': parsed_args.seed, 'repeat': parsed_args.repeat,
                    'configured': configured, 'keep': parsed_args.keep,
                    'start': self._start(parsed_args, periods)}
            work = workload.Workload(projects=projects, resources=resources,
                                     periods=periods, start=plan['start'])
            LOG.info('Size %s: %d projects x %d types x %d resources x %d '
                     'periods = %d points', label, projects,
                     len(workload.TYPES), resources, periods, work.points)
            start = time.perf_counter()
            if configured:
                spec = load.StorageSpec(
                    connection=options.connection, backend=options.backend,
                    config_files=tuple(options.config_files),
                    config_dirs=tuple(options.config_dirs))
                rows = _run_size_process(spec, plan)
            else:
                database = parsed_args.database
                if database is not None:
                    database = sized_path(database, label)
                with scratch.new_sqlite_file(database, parsed_args.keep,
                                             'bench') as path:
                    spec = load.StorageSpec(
                        connection=main.sqlite_url(path),
                        backend='sqlalchemy',
                        config_files=tuple(options.config_files),
                        config_dirs=tuple(options.config_dirs))
                    rows = _run_size_process(spec, plan)
            seconds = time.perf_counter() - start
            LOG.info('Size %s measured in %.1f s', label, seconds)
            # NOTE: the shape, which the user did not give, goes next to
            # the points; the run time helps to plan a bigger size.
            at = [row[0] for row in rows].index('points') + 1
            rows[at:at] = [('projects', projects, 'projects'),
                           ('resources', resources, 'resources'),
                           ('periods', periods, 'periods')]
            rows.append(('run_time', round(seconds, 1), 's'))
            run = self._run(work, rows)
            run['size'] = size
            run['label'] = label
            results['runs'].append(run)
            results['backend'] = results['backend'] or rows[0][1]
            if parsed_args.json_out is not None:
                save_results(results, parsed_args.json_out)
        return results
