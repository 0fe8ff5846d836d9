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

The workload comes from :mod:`cloudkitty.cli.workload`. Every answer of the
backend is compared with the exact sums the generator computed; any
difference stops the run with a non-zero exit code, so a fast but wrong
backend never gets a figure.
"""

import contextlib
import decimal
import resource
import statistics
import sys
import time

from cliff import lister
from oslo_log import log

from cloudkitty.cli import args
from cloudkitty.cli import data
from cloudkitty.cli import main
from cloudkitty.cli import scratch
from cloudkitty.cli import workload
from cloudkitty.storage.v2 import money

LOG = log.getLogger(__name__)

#: Page size of the timed retrieve() call.
RETRIEVE_LIMIT = 1000
#: The timed total() calls: ``(metric name, groupby)``.
TOTAL_QUERIES = (
    ('total_no_groupby', ()),
    ('total_by_project_id', ('project_id',)),
    ('total_by_type_project_id', ('type', 'project_id')),
    ('total_by_id', ('id',)),
    ('total_by_time', ('time',)),
)
#: Relative tolerance for backends that sum floats (``exact_decimal`` off).
FLOAT_TOLERANCE = decimal.Decimal('1e-9')


class CheckFailed(ValueError):
    """The backend answered differently from the exact expected result."""


def _timed(call):
    """Run ``call()``; return ``(seconds, result)``."""
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def peak_rss_mib():
    """Return the peak resident set size of this process, in MiB.

    :rtype: float
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # NOTE: Linux reports KiB, macOS reports bytes.
    if sys.platform == 'darwin':
        peak /= 1024
    return round(peak / 1024, 1)


def _same(actual, expected, exact):
    """Compare one backend sum with the expected Decimal."""
    if exact:
        return isinstance(actual, decimal.Decimal) and actual == expected
    try:
        actual = decimal.Decimal(str(actual))
    except (decimal.InvalidOperation, TypeError):
        return False
    return abs(actual - expected) <= FLOAT_TOLERANCE * (abs(expected) + 1)


def check_total(name, answer, groupby, expected, exact=True):
    """Check a total() answer against the expected groups.

    :param name: the metric name, used in messages.
    :param answer: what total() returned (``paginate=False``).
    :type answer: dict
    :param groupby: the groupby that was asked.
    :type groupby: tuple of str
    :param expected: ``{key tuple: (qty, rate)}``, as returned by
        :meth:`cloudkitty.cli.workload.Expected.groups`.
    :type expected: dict
    :param exact: compare Decimals exactly (else with
        :data:`FLOAT_TOLERANCE`).
    :raises CheckFailed: on any missing, unexpected or wrong group, or a
        wrong ``total`` count.
    """
    actual = {}
    for row in answer['results']:
        key = tuple(row[g] for g in groupby)
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
             if not (_same(actual[key][0], expected[key][0], exact)
                     and _same(actual[key][1], expected[key][1], exact))]
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


def _backend_label(store, conf):
    """Describe the backend and, when it has one, its URL scheme only."""
    name = store.name or conf.storage.backend
    group = getattr(conf, 'storage_%s' % conf.storage.backend, None)
    url = getattr(group, 'connection', None) if group is not None else None
    if url and '://' in url:
        # NOTE: only the scheme: the rest may hold a password.
        return '%s (%s)' % (name, url.split('://', 1)[0])
    return name


class Bench(lister.Lister):
    """Benchmark the storage backend and check every answer exactly.

    Pushes a generated workload (``projects x 6 types x resources`` points
    per hourly period, from 2026-01-01T00:00Z, one push per period and
    project), then times total() with several groupbys, a first retrieve()
    page and the delete() of one period. Each timing is the median of
    ``--repeat`` runs. Every total is compared with the exact sums the
    generator knows; a difference ends the command with an error.

    The target is a new SQLite file in a temporary directory (removed
    afterwards unless ``--keep``), or the file given with ``--database``.
    With ``--config-file``, ``--config-dir``, ``--backend`` or
    ``--connection`` (and no ``--database``) it is the configured backend,
    whose window must be empty; the pushed data is deleted afterwards
    unless ``--keep``.
    """

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
            '--periods', type=args.positive_int, default=100, metavar='P',
            help='Number of hourly periods (default: 100).')
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
            '--database', metavar='PATH', default=None,
            help='Benchmark a new SQLite file at PATH (it must not exist) '
                 'instead of a temporary one or the configured backend.')
        parser.add_argument(
            '--keep', action='store_true',
            help='Keep the database and the pushed data afterwards.')
        return parser

    @contextlib.contextmanager
    def _target(self, parsed_args, work):
        """Yield the backend to benchmark; clean it up afterwards."""
        keep = parsed_args.keep
        if parsed_args.database is None and \
                self.app.uses_configured_backend():
            with scratch.empty_window(self.app.get_storage(), work.begin,
                                      work.end, keep, 'bench') as store:
                yield store
            return
        with scratch.new_sqlite_file(parsed_args.database, keep,
                                     'bench') as path:
            yield main.load_storage(self.app.conf, backend='sqlalchemy',
                                    connection=main.sqlite_url(path))

    def take_action(self, parsed_args):
        """Run the benchmark.

        :returns: ``(('metric', 'value', 'unit'), rows)``.
        :raises CheckFailed: when an answer differs from the expected one.
        """
        work = workload.Workload(
            projects=parsed_args.projects, resources=parsed_args.resources,
            periods=parsed_args.periods, seed=parsed_args.seed,
            push_per=parsed_args.push_per)
        with self._target(parsed_args, work) as store:
            rows = self._run(store, work, parsed_args.repeat)
        return ('metric', 'value', 'unit'), rows

    def _run(self, store, work, repeat):
        """Push, time and check; return the output rows."""
        exact = bool(store.features.exact_decimal)
        rows = [('backend', _backend_label(store, self.app.conf), ''),
                ('points', work.points, 'points'),
                ('pushes', work.pushes, 'calls')]
        expected = workload.Expected()
        push_time = self._push(store, work, expected)
        rows.append(('push', int(round(work.points / push_time)),
                     'points/s'))
        rows.append(('push_time', round(push_time, 3), 's'))
        checks = 0
        window = dict(begin=work.begin, end=work.end)

        for name, groupby in TOTAL_QUERIES:
            if 'time' in groupby and not store.features.groupby_time:
                LOG.warning('Skipping %s: backend %s lacks groupby_time',
                            name, store.name)
                continue
            want = expected.groups(groupby)
            times = []
            for _ in range(repeat):
                seconds, answer = _timed(lambda: store.total(
                    groupby=list(groupby) or None, paginate=False, **window))
                check_total(name, answer, groupby, want, exact)
                checks += 1
                times.append(seconds)
            rows.append((name, round(statistics.median(times), 6), 's'))

        times = []
        for _ in range(repeat):
            seconds, answer = _timed(lambda: store.retrieve(
                offset=0, limit=RETRIEVE_LIMIT, **window))
            self._check_page(answer, work.points)
            checks += 1
            times.append(seconds)
        rows.append(('retrieve_first_page', round(statistics.median(times),
                                                  6), 's'))
        rows.append(('retrieve_total', answer['total'], 'points'))

        project_id = work.project_ids[0]
        want = expected.groups(('project_id',))[(project_id,)]
        times = []
        for _ in range(repeat):
            seconds, answer = _timed(lambda: store.retrieve(
                filters={'project_id': project_id}, paginate=False,
                **window))
            self._check_project(answer, work.points // work.projects, want)
            checks += 1
            times.append(seconds)
        rows.append(('retrieve_project', round(statistics.median(times), 6),
                     's'))

        seconds, deleted, checked = self._delete(store, work, expected,
                                                 repeat, exact)
        checks += checked
        rows.append(('delete_period', round(seconds, 6), 's'))
        rows.append(('deleted_points', deleted, 'points'))
        rows.append(('peak_rss', peak_rss_mib(), 'MiB'))
        rows.append(('checks_passed', checks, 'checks'))
        return rows

    def _push(self, store, work, expected):
        """Push the workload; return the seconds spent inside push()."""
        LOG.info('Pushing %d points in %d pushes to %s', work.points,
                 work.pushes, store.name)
        total = 0.0
        step = max(1, work.pushes // 10)
        for done, (scope_id, frame) in enumerate(
                work.iter_frames(expected), 1):
            start = time.perf_counter()
            store.push([frame], scope_id=scope_id)
            total += time.perf_counter() - start
            if work.pushes >= 100 and done % step == 0:
                LOG.info('Pushed %d of %d frames (%.1f s in push)', done,
                         work.pushes, total)
        if expected.count != work.points:
            raise CheckFailed('the generator made %d points instead of %d'
                              % (expected.count, work.points))
        return total

    @staticmethod
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

    @staticmethod
    def _check_page(answer, count):
        """Check the first retrieve() page of the whole workload."""
        if answer['total'] != count:
            raise CheckFailed('retrieve: total is %r, expected %d points'
                              % (answer['total'], count))
        page = sum(len(frame) for frame in answer['dataframes'])
        if page != min(RETRIEVE_LIMIT, count):
            raise CheckFailed('retrieve: the first page holds %d points, '
                              'expected %d' % (page,
                                               min(RETRIEVE_LIMIT, count)))

    def _delete(self, store, work, expected, repeat, exact):
        """Delete ``repeat`` periods, one at a time, and check the rest.

        :returns: ``(median seconds, points deleted per call, checks)``.
        """
        times = []
        checks = 0
        remaining = work.points
        left = workload.Sums()
        left.merge(expected.all)
        for index in range(min(repeat, work.periods)):
            begin, end = work.period_window(index)
            seconds, deleted = _timed(
                lambda: store.delete(begin=begin, end=end))
            times.append(seconds)
            if deleted is not None and deleted != work.points_per_period:
                raise CheckFailed(
                    'delete: %s..%s reported %r deleted points, expected %d'
                    % (begin.isoformat(), end.isoformat(), deleted,
                       work.points_per_period))
            if data.count_points(store, begin, end):
                raise CheckFailed('delete: points of %s..%s are still there'
                                  % (begin.isoformat(), end.isoformat()))
            remaining -= work.points_per_period
            left.subtract(expected.by_period[begin])
            found = data.count_points(store, work.begin, work.end)
            if found != remaining:
                raise CheckFailed('delete: %d points remain, expected %d'
                                  % (found, remaining))
            want = {(): (left.qty, left.price)} if left.count else {}
            check_total('total_after_delete', store.total(
                begin=work.begin, end=work.end, paginate=False), (), want,
                exact)
            checks += 3
        return statistics.median(times), work.points_per_period, checks
