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
"""``cloudkitty-storage migrate``: copy rated data between two backends.

The window ``[begin, end)`` is walked in chunks of time; inside a chunk the
source is streamed with :meth:`~cloudkitty.storage.v2.BaseStorage.
iter_points` and every page of points is pushed to the destination at once,
so memory stays bounded by one page whatever the size of the window.

A chunk is *replaced*, never added to: it is deleted on the destination
before it is copied. Progress is saved in a JSON state file after each
completed chunk, so an interrupted run resumes after the last completed
chunk and a chunk copied halfway is copied again from scratch. The run ends
with a verification of exact sums on both sides (see :func:`verify`).

The source may also be what upstream CloudKitty 25's InfluxDB storage
wrote, in its own layout (``--source-backend upstream-influxdb``, read by
:mod:`cloudkitty.cli.upstream_influxdb`); its sums are float64, so they
are verified within 1e-9 relative rather than exactly.
"""

import argparse
import datetime
import json
import os
import re
import tempfile
import time
import urllib.parse

from cliff import lister
from oslo_log import log

from cloudkitty.cli import args
from cloudkitty.cli import main
from cloudkitty.cli import rst
from cloudkitty.cli import upstream_influxdb
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query

LOG = log.getLogger(__name__)

#: Version of the state file format.
STATE_VERSION = 1
#: Default state file, in the working directory.
DEFAULT_STATE = 'cloudkitty-migrate.state'
#: Default length of a chunk.
DEFAULT_CHUNK = datetime.timedelta(days=1)
#: Default number of points per page (read at a time, pushed at once).
DEFAULT_PAGE_SIZE = 5000
#: Most mismatching groups printed when the verification fails.
MAX_MISMATCH_ROWS = 50

_UNITS = {'w': 'weeks', 'd': 'days', 'h': 'hours', 'm': 'minutes',
          's': 'seconds'}
_SHORT_DURATION_RE = re.compile(r'\A(?:\d+[wdhms])+\Z')
_SHORT_PART_RE = re.compile(r'(\d+)([wdhms])')
_ISO_DURATION_RE = re.compile(
    r'\AP(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?'
    r'(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?'
    r'(?:(?P<seconds>\d+)S)?)?\Z')


class MigrationError(ValueError):
    """A migration cannot start or go on; nothing wrong was written."""


class StateMismatch(MigrationError):
    """The state file belongs to another migration (or is unreadable)."""


class VerificationFailed(MigrationError):
    """The sums of the source and the destination differ.

    :ivar mismatches: every mismatching group, as returned by
        :func:`compare_totals`.
    :ivar rows: the ``(metric, value)`` rows of the summary, once the
        command has added them.
    """

    def __init__(self, message, mismatches):
        """Keep the message and the mismatches."""
        self.mismatches = mismatches
        self.rows = []
        super().__init__(message)


# Argument types -------------------------------------------------------------

def duration(text):
    """argparse type: a positive duration such as ``1d``, ``6h`` or ``P1D``.

    Accepts units ``w``, ``d``, ``h``, ``m`` and ``s``, combined
    (``1d12h``), or an ISO 8601 duration without years and months
    (``P1D``, ``PT6H``, ``P1DT12H``).

    :rtype: datetime.timedelta
    :raises argparse.ArgumentTypeError: for anything else or zero.
    """
    value = text.strip()
    parts = {}
    if _SHORT_DURATION_RE.match(value.lower()):
        for number, unit in _SHORT_PART_RE.findall(value.lower()):
            name = _UNITS[unit]
            parts[name] = parts.get(name, 0) + int(number)
    else:
        match = _ISO_DURATION_RE.match(value.upper())
        if match and value.upper() not in ('P', 'PT') and not (
                value.upper().endswith('T')):
            parts = {k: int(v) for k, v in match.groupdict().items()
                     if v is not None}
    result = datetime.timedelta(**parts)
    if result <= datetime.timedelta(0):
        raise argparse.ArgumentTypeError(
            'not a positive duration: %r (for example 1d, 6h, 30m or '
            'PT6H)' % text)
    return result


# Identities and the state file ---------------------------------------------

def redact_url(url):
    """Return ``url`` without its password; SQLite paths made absolute.

    The password of the user part is replaced by ``***``, and so is the
    value of any query parameter whose name holds ``password``.

    :param url: a connection URL or None.
    :rtype: str or None
    """
    if not url:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.startswith('sqlite') and parts.path not in ('', '/'):
        # NOTE: sqlite:///relative and sqlite:////absolute; the same file
        # must get the same identity wherever the command runs from.
        path = os.path.abspath(parts.path[1:])
        query = '?' + parts.query if parts.query else ''
        return '%s:///%s%s' % (parts.scheme, path, query)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None:
        userinfo, _, hostinfo = netloc.rpartition('@')
        user = userinfo.partition(':')[0]
        netloc = '%s:***@%s' % (user, hostinfo)
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if any('password' in key.lower() for key, _ in pairs):
        query = urllib.parse.urlencode(
            [(key, '***' if 'password' in key.lower() else value)
             for key, value in pairs], safe='*/')
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urllib.parse.urlunsplit(
        (parts.scheme, netloc, parts.path, query, parts.fragment))


def identity(store, conf):
    """Describe a loaded backend: its name and its URL, without password.

    :param store: the loaded backend.
    :type store: cloudkitty.storage.v2.BaseStorage
    :param conf: the conf it was loaded from (with overrides applied).
    :returns: ``{'backend': str, 'connection': str or None}``.
    :rtype: dict
    """
    name = conf.storage.backend
    group = getattr(conf, 'storage_%s' % name, None)
    url = getattr(group, 'connection', None) if group is not None else None
    return {'backend': store.name or name, 'connection': redact_url(url)}


def same_store(source, source_id, dest, dest_id):
    """Tell whether two loaded backends hold one store.

    Backends with ``store_identity()`` compare what they reach (the same
    SQLite file through a link, the same server under two names);
    others compare their URLs.

    :rtype: bool
    """
    if source_id == dest_id and source_id['connection']:
        return True
    if source.name != dest.name:
        return False
    mine = getattr(source, 'store_identity', None)
    theirs = getattr(dest, 'store_identity', None)
    if mine is None or theirs is None:
        return False
    return mine() == theirs()


def describe(ident):
    """Return an identity as one line: ``backend URL``."""
    if ident.get('connection'):
        return '%s %s' % (ident['backend'], ident['connection'])
    return ident['backend']


def _iso(moment):
    """Return a datetime in ISO 8601, or None."""
    return moment.isoformat() if moment is not None else None


def new_state(source, dest, begin, end, filters):
    """Return the state of a migration that has not copied anything yet.

    :returns: ``{'version': 1, 'source': identity, 'dest': identity,
        'begin': iso, 'end': iso, 'filters': dict or None, 'done': None,
        'chunks_done': 0, 'points_copied': 0}``; ``done`` becomes the end
        of the last completed chunk.
    :rtype: dict
    """
    return {'version': STATE_VERSION, 'source': source, 'dest': dest,
            'begin': _iso(begin), 'end': _iso(end), 'filters': filters,
            'done': None, 'chunks_done': 0, 'points_copied': 0}


def same_migration(state, expected):
    """Tell which identifying field of two states differ.

    :returns: the names of the fields that differ among ``version``,
        ``source``, ``dest``, ``begin``, ``end`` and ``filters``.
    :rtype: list of str
    """
    fields = ('version', 'source', 'dest', 'begin', 'end', 'filters')
    return [field for field in fields
            if state.get(field) != expected.get(field)]


def read_state(path):
    """Read a state file.

    :returns: the state dict, or None when the file does not exist.
    :raises StateMismatch: when the file is not a state file.
    """
    try:
        with open(path, encoding='utf-8') as stream:
            state = json.load(stream)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateMismatch('cannot read the state file %s (%s); use '
                            '--restart to start over' % (path, exc)) from exc
    if not isinstance(state, dict) or 'version' not in state:
        raise StateMismatch('%s is not a migrate state file; use --restart '
                            'to start over' % path)
    return state


def write_state(path, state):
    """Write a state file atomically (a new file, fsync'd, then renamed).

    :param path: the state file.
    :param state: the state dict.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.cloudkitty-migrate-',
                               dir=directory)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as stream:
            json.dump(state, stream, indent=2, sort_keys=True)
            stream.write('\n')
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise


# Chunks ---------------------------------------------------------------------

def chunks(begin, end, step):
    """Yield ``(start, stop)`` chunks that partition ``[begin, end)``.

    Chunks start at ``begin + k * step``; the last one stops at ``end``.
    """
    start = begin
    while start < end:
        stop = min(start + step, end)
        yield start, stop
        start = stop


def count_chunks(begin, end, step):
    """Return how many chunks :func:`chunks` yields."""
    if begin >= end:
        return 0
    return -(-(end - begin) // step)


def merge_type_filter(filters, metric_types):
    """Fold ``--type`` into the filters, as ``delete()`` takes no types.

    :param filters: ``{key: [values]}`` or None.
    :param metric_types: list of types or None.
    :returns: filters with sorted value lists, or None.
    :raises MigrationError: when ``--type`` and ``--filter type=`` leave no
        type at all.
    """
    merged = {key: sorted(set(values))
              for key, values in (filters or {}).items()}
    if metric_types:
        types = set(metric_types)
        if 'type' in merged:
            types &= set(merged['type'])
            if not types:
                raise MigrationError(
                    '--type and --filter type=... have no type in common; '
                    'nothing would be migrated')
        merged['type'] = sorted(types)
    return merged or None


def count_points(store, begin, end, filters):
    """Return the number of points of a store in ``[begin, end)``.

    A store with a ``count()`` (upstream's layout) counts without reading
    a page of points; others answer ``retrieve(limit=1)``.
    """
    count = getattr(store, 'count', None)
    if count is not None:
        return count(begin, end, filters)
    return store.retrieve(begin=begin, end=end, filters=filters,
                          limit=1)['total']


# Verification ---------------------------------------------------------------

def _groups(answer, key):
    """Map a total() answer to ``{group value: (qty, rate)}``."""
    groups = {}
    for row in answer['results']:
        value = query.result_value(row, key)
        if value in groups:
            # NOTE: one group returned twice is a backend bug; merging it
            # away could hide a difference, so nothing is verified.
            raise MigrationError('total() returned the group %s=%r twice'
                                 % (key, value))
        groups[value] = (row['qty'], row['rate'])
    return groups


def compare_totals(grouping, source, dest, tolerance=0):
    """Compare two total() answers grouped by one key.

    :param grouping: the groupby key (``time`` or ``type``).
    :param source: the source's total() answer (``paginate=False``).
    :param dest: the destination's answer.
    :param tolerance: 0 to compare Decimals exactly, else the relative
        tolerance of :func:`cloudkitty.storage.v2.money.agrees`.
    :returns: ``(groups compared, mismatches)``; each mismatch is
        ``(grouping, group, source qty, dest qty, source rate, dest
        rate)`` with None for a missing side. A ``total`` that is not the
        number of groups returned is a mismatch whose group is
        ``'(group count, source)'`` or ``'(group count, destination)'``.
    :rtype: tuple
    """
    left = _groups(source, grouping)
    right = _groups(dest, grouping)
    mismatches = []
    for key in sorted(set(left) | set(right), key=str):
        got = left.get(key, (None, None))
        put = right.get(key, (None, None))
        if None in got or None in put or not (
                money.agrees(got[0], put[0], tolerance)
                and money.agrees(got[1], put[1], tolerance)):
            mismatches.append((grouping, key, got[0], put[0], got[1],
                               put[1]))
    for name, answer, groups in (('source', source, left),
                                 ('destination', dest, right)):
        if answer['total'] != len(groups):
            mismatches.append((grouping, '(group count, %s)' % name,
                               answer['total'], len(groups), None, None))
    return len(set(left) | set(right)), mismatches


def verify(source, dest, begin, end, filters):
    """Compare the sums of both sides over a window.

    Compares ``total(groupby=['time'])`` (one group per frame start) and
    ``total(groupby=['type'])``, unpaginated, with the same filters. Sums
    are compared as exact Decimals when both backends have a
    ``Features.float_tolerance`` of 0, else within the larger one. A side that
    lacks ``groupby_time`` is compared by type only, with a warning.

    :returns: ``{'time': groups, 'type': groups}``, the number of groups
        compared by each grouping.
    :raises VerificationFailed: on any mismatching sum, missing or extra
        group, or inconsistent group count.
    :raises MigrationError: when a backend returns a group twice.
    """
    tolerance = max(source.features.float_tolerance,
                    dest.features.float_tolerance)
    groupings = ['type']
    if source.features.groupby_time and dest.features.groupby_time:
        groupings.insert(0, 'time')
    else:
        LOG.warning('A backend lacks groupby_time: verifying the sums by '
                    'type only, not per frame')
    counts = {}
    mismatches = []
    for grouping in groupings:
        kwargs = dict(groupby=[grouping], begin=begin, end=end,
                      filters=filters, paginate=False)
        compared, wrong = compare_totals(
            grouping, source.total(**kwargs), dest.total(**kwargs), tolerance)
        counts[grouping] = compared
        mismatches.extend(wrong)
    if mismatches:
        first = mismatches[0]
        raise VerificationFailed(
            'verification failed: %d mismatching groups between source and '
            'destination over %s..%s (first: %s=%s, source qty=%s rate=%s, '
            'destination qty=%s rate=%s)'
            % (len(mismatches), begin.isoformat(), end.isoformat(),
               first[0], _text(first[1]), first[2], first[4], first[3],
               first[5]), mismatches)
    return counts


def _text(value):
    """Render a cell: datetimes in ISO 8601, Decimals exactly, None empty."""
    if value is None:
        return ''
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


# The command ----------------------------------------------------------------

class _Progress:
    """Reports progress: a redrawn line on a terminal, log lines else."""

    def __init__(self, stream, total_chunks, done_chunks):
        """Count from ``done_chunks`` of ``total_chunks``; draw if a TTY."""
        self.stream = stream
        isatty = getattr(stream, 'isatty', None)
        self.tty = bool(isatty and isatty())
        self.total_chunks = total_chunks
        self.done_chunks = done_chunks
        self.points = 0
        self.started = time.monotonic()
        self.drawn = False

    def _rate(self):
        """Return the points copied per second in this run."""
        elapsed = time.monotonic() - self.started
        return self.points / elapsed if elapsed > 0 else 0.0

    def _draw(self, index, start):
        """Redraw the progress line (on a terminal only)."""
        self.stream.write(
            '\rchunk %d/%d %s: %d points copied (%.0f points/s)\033[K'
            % (index, self.total_chunks, start.isoformat(), self.points,
               self._rate()))
        self.stream.flush()
        self.drawn = True

    def page(self, start, copied):
        """Report a copied page of the chunk starting at ``start``."""
        self.points += copied
        if self.tty:
            self._draw(self.done_chunks + 1, start)

    def chunk(self, start, stop, copied):
        """Report a completed chunk."""
        self.done_chunks += 1
        if self.tty:
            self._draw(self.done_chunks, start)
        else:
            LOG.info('Chunk %d/%d %s..%s: %d points copied (%d in this run, '
                     '%.0f points/s)', self.done_chunks, self.total_chunks,
                     start.isoformat(), stop.isoformat(), copied,
                     self.points, self._rate())

    def close(self):
        """End the progress line, if one was drawn."""
        if self.drawn:
            self.stream.write('\n')
            self.stream.flush()
            self.drawn = False


class Migrate(rst.PlainHelp, lister.Lister):
    """Copy a window of rated data to another backend, then verify it.

    The source is the backend of the global options (``--config-file``,
    ``--backend``, ``--connection``) unless ``--source-config-file``,
    ``--source-backend`` or ``--source-connection`` is given; the
    destination is given by ``--dest-config-file``, ``--dest-backend``
    and/or ``--dest-connection``. Each side reads its own configuration.

    The window is copied in chunks of ``--chunk`` (a day by default); each
    chunk is first deleted on the destination, then read from the source in
    pages of ``--page-size`` points and pushed, so a chunk copied again
    replaces itself instead of counting twice. Progress is saved in the
    ``--state`` file after each chunk; running the same command again
    resumes after the last completed chunk. A new migration refuses a
    destination that already holds data in the window unless
    ``--replace``.

    At the end the sums per frame start and per type are compared on both
    sides; any difference is an error. ``--verify-only`` only compares.

    ``--source-backend upstream-influxdb`` reads what upstream CloudKitty
    25's InfluxDB storage wrote, in its layout (see
    :mod:`cloudkitty.cli.upstream_influxdb`), from upstream's
    ``[storage_influxdb]`` options in ``--source-config-file`` or from a
    ``--source-connection`` URL; its float64 sums are compared within 1e-9
    relative, as the summary's ``verified_within`` says.
    """

    #: Long work: its INFO messages report progress (see
    #: :meth:`cloudkitty.cli.main.StorageApp._console_level`).
    progress_logs = True

    def get_parser(self, prog_name):
        """Return the parser of ``migrate``'s own options.

        :rtype: argparse.ArgumentParser
        """
        parser = super().get_parser(prog_name)
        source = parser.add_argument_group('source (default: the backend '
                                           'of the global options)')
        source.add_argument(
            '--source-config-file', dest='source_config_files',
            action='append', default=[], metavar='FILE',
            help='Read the source from this configuration file instead of '
                 'the global options; may be repeated.')
        source.add_argument(
            '--source-backend', metavar='NAME', default=None,
            help='Storage backend of the source, overriding its [storage] '
                 'backend; %s reads what upstream CloudKitty 25\'s '
                 'InfluxDB storage wrote, in its layout, from the '
                 '[storage_influxdb] options of --source-config-file '
                 '(upstream\'s cloudkitty.conf) or from --source-connection.'
                 % upstream_influxdb.NAME)
        source.add_argument(
            '--source-connection', metavar='URL', default=None,
            help='Connection URL of the source backend; for %s: '
                 'influxdb://[user[:password]@]host[:port]/database'
                 '[?retention_policy=NAME&period=SECONDS].'
                 % upstream_influxdb.NAME)
        dest = parser.add_argument_group('destination (at least one '
                                         'option is required)')
        dest.add_argument(
            '--dest-config-file', dest='dest_config_files',
            action='append', default=[], metavar='FILE',
            help='Read the destination from this configuration file; may '
                 'be repeated.')
        dest.add_argument(
            '--dest-backend', metavar='NAME', default=None,
            help='Storage backend of the destination, overriding its '
                 '[storage] backend.')
        dest.add_argument(
            '--dest-connection', metavar='URL', default=None,
            help='Connection URL of the destination backend.')
        window = parser.add_argument_group('window and filters')
        args.add_window(window)
        args.add_filters(window)
        run = parser.add_argument_group('run')
        run.add_argument(
            '--chunk', type=duration, default=DEFAULT_CHUNK,
            metavar='DURATION',
            help='Length of a chunk of time, copied and saved as a unit: '
                 'e.g. 1d, 6h, 30m, 1w or PT6H (default: 1d).')
        run.add_argument(
            '--page-size', type=args.positive_int, default=DEFAULT_PAGE_SIZE,
            metavar='N',
            help='Points read from the source at a time and '
                 'pushed at once (default: %d).' % DEFAULT_PAGE_SIZE)
        run.add_argument(
            '--state', default=DEFAULT_STATE, metavar='FILE',
            help='JSON file recording the progress (default: ./%s).'
                 % DEFAULT_STATE)
        run.add_argument(
            '--restart', action='store_true',
            help='Ignore the state file and start the migration over.')
        run.add_argument(
            '--replace', action='store_true',
            help='Start even when the destination already holds data in '
                 'the window; that data is replaced chunk by chunk.')
        run.add_argument(
            '--verify-only', action='store_true',
            help='Copy nothing: only compare the sums of both sides.')
        # NOTE: for tests and for copying a long window over several
        # maintenance slots; the state file makes the next run go on.
        run.add_argument(
            '--max-chunks', type=args.positive_int, default=None,
            help=argparse.SUPPRESS)
        return parser

    # Backends -------------------------------------------------------------

    def _source(self, parsed_args):
        """Load the source backend; return ``(store, identity)``."""
        if parsed_args.source_backend == upstream_influxdb.NAME:
            conf = upstream_influxdb.make_conf(
                parsed_args.source_config_files,
                parsed_args.source_connection)
            store = upstream_influxdb.UpstreamInfluxDBSource(conf)
            return store, store.identity()
        if (parsed_args.source_config_files or parsed_args.source_backend
                or parsed_args.source_connection):
            conf = main.make_conf(parsed_args.source_config_files)
            store = main.load_storage(
                conf, backend=parsed_args.source_backend,
                connection=parsed_args.source_connection)
        else:
            conf = self.app.conf
            store = self.app.get_storage()
        return store, identity(store, conf)

    def _dest(self, parsed_args, source):
        """Load the destination backend; return ``(store, identity)``.

        :raises MigrationError: when the destination would be the database
            upstream's layout is read from: that is checked before the
            destination is created or initialised.
        """
        if not (parsed_args.dest_config_files or parsed_args.dest_backend
                or parsed_args.dest_connection):
            raise MigrationError(
                'migrate needs a destination: --dest-config-file, '
                '--dest-backend and/or --dest-connection')
        conf = main.make_conf(parsed_args.dest_config_files)
        backend = parsed_args.dest_backend or conf.storage.backend
        if source.name == upstream_influxdb.NAME and backend == 'influxdb':
            upstream_influxdb.register_opts(conf)
            if source.same_database(conf):
                # NOTE: init() sets the duration of the destination's
                # retention policy, which would purge upstream's points.
                raise MigrationError(
                    'the destination is the database upstream\'s points are '
                    'read from (%s); give the influxdb backend another '
                    '[storage_influxdb] database' % describe(
                        source.identity()))
        store = main.load_storage(conf, backend=parsed_args.dest_backend,
                                  connection=parsed_args.dest_connection,
                                  create=True)
        return store, identity(store, conf)

    # Steps ----------------------------------------------------------------

    @staticmethod
    def _window(parsed_args):
        """Return the explicit window ``(begin, end)``."""
        begin, end = parsed_args.begin, parsed_args.end
        if begin is None or end is None:
            raise MigrationError('migrate needs an explicit window: give '
                                 'both --begin and --end')
        if begin >= end:
            raise MigrationError('--begin (%s) must be before --end (%s)'
                                 % (begin.isoformat(), end.isoformat()))
        return begin, end

    def _start(self, parsed_args, expected, dest, begin, end, filters):
        """Return the state to go on from: a resumed one or a new one."""
        path = parsed_args.state
        state = None if parsed_args.restart else read_state(path)
        if state is not None:
            differ = same_migration(state, expected)
            if differ:
                raise StateMismatch(
                    'the state file %s belongs to another migration '
                    '(different %s); use another --state or --restart'
                    % (path, ', '.join(differ)))
            LOG.info('Resuming the migration of %s: %d chunks done, up to '
                     '%s', path, state['chunks_done'],
                     state['done'] or state['begin'])
            return state, True
        found = dest.retrieve(begin=begin, end=end, filters=filters,
                              limit=1)['total']
        if found and not parsed_args.replace:
            raise MigrationError(
                'the destination already holds %d points in %s..%s; use '
                '--replace to replace them chunk by chunk'
                % (found, begin.isoformat(), end.isoformat()))
        if found:
            LOG.warning('Replacing the %d points the destination holds in '
                        'the window', found)
        # NOTE: written before the first chunk, so that a run that fails
        # in it resumes (and replaces it) instead of refusing a destination
        # that is no longer empty.
        write_state(path, expected)
        return dict(expected), False

    @staticmethod
    def _copy_chunk(source, dest, start, stop, filters, page_size,
                    progress):
        """Replace one chunk on the destination; return the points copied.

        :raises MigrationError: when the source changed during the copy.
        """
        dest.delete(begin=start, end=stop, filters=filters)
        expected = count_points(source, start, stop, filters)
        copied = 0
        batch = []
        # NOTE: iter_points() streams the chunk (a server-side cursor on
        # the SQL backend): memory holds one page, and no page costs more
        # to read than the one before, whatever the chunk's size.
        points = source.iter_points(begin=start, end=stop, filters=filters,
                                    batch_size=page_size)
        try:
            for row in points:
                batch.append(row)
                if len(batch) == page_size:
                    copied += Migrate._push_batch(dest, batch, start,
                                                  progress)
                    batch = []
        finally:
            points.close()
        if batch:
            copied += Migrate._push_batch(dest, batch, start, progress)
        if copied != expected:
            raise MigrationError(
                'the source changed while the chunk %s..%s was copied '
                '(%d points, then %d); run the command again to copy it '
                'again' % (start.isoformat(), stop.isoformat(), expected,
                           copied))
        return copied

    @staticmethod
    def _push_batch(dest, batch, start, progress):
        """Push streamed ``(start, end, type, point)`` rows as frames."""
        # NOTE: scope_id is not part of what the source returns, so it
        # cannot be carried over.
        dest.push(query.build_retrieve(len(batch), batch)['dataframes'])
        progress.page(start, len(batch))
        return len(batch)

    def _copy(self, parsed_args, source, dest, state, begin, end, filters):
        """Copy what remains of the window; return this run's figures.

        :returns: ``(chunks copied, points copied, complete)``.
        """
        done = (datetime.datetime.fromisoformat(state['done'])
                if state['done'] else begin)
        step = parsed_args.chunk
        remaining = count_chunks(done, end, step)
        progress = _Progress(self.app.stderr, state['chunks_done'] +
                             remaining, state['chunks_done'])
        chunks_copied = points = 0
        try:
            for start, stop in chunks(done, end, step):
                if (parsed_args.max_chunks is not None
                        and chunks_copied >= parsed_args.max_chunks):
                    break
                copied = self._copy_chunk(source, dest, start, stop,
                                          filters, parsed_args.page_size,
                                          progress)
                state['done'] = stop.isoformat()
                state['chunks_done'] += 1
                state['points_copied'] += copied
                write_state(parsed_args.state, state)
                chunks_copied += 1
                points += copied
                progress.chunk(start, stop, copied)
        finally:
            progress.close()
        complete = (state['done'] is not None
                    and datetime.datetime.fromisoformat(state['done']) >= end)
        return chunks_copied, points, complete

    @staticmethod
    def _mismatch_rows(mismatches):
        """Return ``(metric, value)`` rows describing the mismatches.

        A failed verification prints the same columns as a successful
        one, so that ``-c metric -c value`` (or any column choice that
        works on success) shows the failure too.
        """
        rows = [('status', 'verification failed'),
                ('mismatching_groups', len(mismatches))]
        for grouping, group, got_qty, put_qty, got_rate, put_rate in (
                mismatches[:MAX_MISMATCH_ROWS]):
            rows.append(('mismatch', '%s=%s: source qty=%s rate=%s, '
                         'destination qty=%s rate=%s' % (
                             grouping, _text(group), _text(got_qty),
                             _text(got_rate), _text(put_qty),
                             _text(put_rate))))
        if len(mismatches) > MAX_MISMATCH_ROWS:
            LOG.warning('Showing the first %d of %d mismatching groups',
                        MAX_MISMATCH_ROWS, len(mismatches))
        return rows

    def _print_failure(self, parsed_args, rows):
        """Print the summary of a failed run; never hide the failure.

        The error itself reaches stderr when the command raises; a
        column choice that prints nothing must not stop it.
        """
        try:
            self.produce_output(parsed_args, ('metric', 'value'), rows)
        except Exception as exc:
            LOG.warning('Cannot print the summary: %s', exc)

    def take_action(self, parsed_args):
        """Run the migration (or only the verification).

        :returns: ``(('metric', 'value'), rows)``.
        :raises MigrationError: for a bad window, a missing destination, a
            non-empty destination, a foreign state file, or a source that
            is the destination.
        :raises VerificationFailed: when the sums differ.
        """
        began = time.monotonic()
        begin, end = self._window(parsed_args)
        filters = merge_type_filter(args.filters(parsed_args),
                                    parsed_args.metric_types)
        source, source_id = self._source(parsed_args)
        try:
            check_filters = getattr(source, 'check_filters', None)
            if check_filters is not None:
                check_filters(filters)
            dest, dest_id = self._dest(parsed_args, source)
            try:
                rows = self._run(parsed_args, source, source_id, dest,
                                 dest_id, begin, end, filters)
            finally:
                dest.close()
        except VerificationFailed as exc:
            exc.rows.append(('seconds', round(time.monotonic() - began, 3)))
            self._print_failure(parsed_args, exc.rows)
            raise
        finally:
            source.close()
        rows.append(('seconds', round(time.monotonic() - began, 3)))
        return ('metric', 'value'), rows

    def _run(self, parsed_args, source, source_id, dest, dest_id, begin,
             end, filters):
        """Check, copy and verify; return the summary rows."""
        if same_store(source, source_id, dest, dest_id):
            raise MigrationError(
                'the source and the destination are the same store (%s%s); '
                'nothing was copied' % (
                    describe(source_id),
                    '' if source_id == dest_id
                    else ' and ' + describe(dest_id)))
        if filters and not dest.features.delete_with_filters:
            raise MigrationError(
                'the destination backend %s cannot delete with filters, '
                'so filtered chunks could not be replaced' % dest.name)
        rows = [('source', describe(source_id)),
                ('destination', describe(dest_id)),
                ('begin', begin.isoformat()), ('end', end.isoformat()),
                ('filters', json.dumps(filters, sort_keys=True)
                 if filters else '')]
        complete = True
        if not parsed_args.verify_only:
            expected = new_state(source_id, dest_id, begin, end, filters)
            state, resumed = self._start(parsed_args, expected, dest, begin,
                                         end, filters)
            started = time.monotonic()
            chunks_copied, points, complete = self._copy(
                parsed_args, source, dest, state, begin, end, filters)
            seconds = time.monotonic() - started
            done = (datetime.datetime.fromisoformat(state['done'])
                    if state['done'] else begin)
            total_chunks = state['chunks_done'] + count_chunks(
                done, end, parsed_args.chunk)
            rows += [('resumed', resumed),
                     ('chunks_copied', chunks_copied),
                     ('chunks_done', '%d/%d' % (state['chunks_done'],
                                                total_chunks)),
                     ('points_copied', points),
                     ('points_total', state['points_copied']),
                     ('copy_seconds', round(seconds, 3)),
                     ('points_per_second',
                      int(points / seconds) if seconds > 0 else 0),
                     ('state', os.path.abspath(parsed_args.state))]
        if not complete:
            LOG.warning('Stopped after --max-chunks %d chunks; run the '
                        'command again to go on', parsed_args.max_chunks)
            rows.append(('status', 'incomplete'))
            return rows
        try:
            counts = verify(source, dest, begin, end, filters)
        except VerificationFailed as exc:
            exc.rows = rows + self._mismatch_rows(exc.mismatches)
            raise
        tolerance = max(source.features.float_tolerance,
                        dest.features.float_tolerance)
        rows += [('verified_time_groups', counts.get('time', 0)),
                 ('verified_type_groups', counts['type']),
                 ('verified_within', 'exact' if not tolerance else
                  '%s relative (float64 sums)' % format(tolerance, 'e')),
                 ('status', 'verified')]
        return rows
