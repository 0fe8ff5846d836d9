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
"""``push``, ``retrieve``, ``total`` and ``delete``: rated data by hand.

``push`` reads rated data from a file or stdin in one of three formats:

``json``
    One DataFrame as :meth:`cloudkitty.dataframe.DataFrame.json` writes it
    (``{"period": {"begin": ..., "end": ...}, "usage": {TYPE: [point,
    ...]}}``, each point ``{"vol": {"unit": ..., "qty": ...}, "rating":
    {"price": ...}, "groupby": {...}, "metadata": {...}}``), or a JSON list
    of them. JSON numbers are read as exact Decimals; points in the flat
    format of earlier versions (``{"unit": ..., "qty": ..., "price": ...,
    ...}``) are read too.
``jsonl``
    JSON Lines: one such frame per line; blank lines are skipped.
``csv``
    One point per row, with a header naming the columns: ``begin``,
    ``end``, ``type``, ``qty`` and ``price`` are required; ``unit`` (default
    ``undefined``) is optional; ``groupby`` and ``metadata`` hold JSON objects
    (``{"project_id": "p1"}``); ``groupby.KEY`` and ``metadata.KEY`` hold one
    value each (an empty cell leaves the key out) and win over the JSON
    columns. Rows with the same ``begin`` and ``end`` make one frame. This is
    what ``retrieve -f csv`` prints, so its output can be pushed again.

Every frame is parsed and checked before anything is written; an error
names the line (JSON Lines, CSV), the line and column (JSON syntax) or the
frame (JSON), and nothing is pushed.
"""

import collections
import csv
import datetime
import decimal
import io
import json
import os
import re

from cliff import show
from oslo_log import log

from cloudkitty.cli import args
from cloudkitty.cli import report
from cloudkitty.cli import rst
from cloudkitty import dataframe
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import money
from cloudkitty.storage.v2 import query

LOG = log.getLogger(__name__)

UTC = datetime.timezone.utc

#: Stands for an open lower bound when counting what a delete removes
#: (retrieve() fills a missing bound with the current month instead).
OPEN_BEGIN = datetime.datetime(1, 1, 1, tzinfo=UTC)
#: Stands for an open upper bound when counting what a delete removes.
OPEN_END = datetime.datetime(9999, 12, 31, tzinfo=UTC)

#: The input formats of ``push``; ``auto`` guesses (see detect_format()).
FORMATS = ('auto', 'json', 'jsonl', 'csv')
#: Frames per push() call, by default.
DEFAULT_BATCH_SIZE = 100
#: The columns of ``retrieve`` (and of the CSV push format).
POINT_COLUMNS = ('begin', 'end', 'type', 'unit', 'qty', 'price', 'groupby',
                 'metadata')
#: The CSV columns ``push`` requires.
CSV_REQUIRED = ('begin', 'end', 'type', 'qty', 'price')
#: The CSV columns holding a JSON object, and the prefix of one-key columns.
CSV_MAPPINGS = ('groupby', 'metadata')


class InputError(ValueError):
    """Invalid rated data; the message names the source and the place."""


class PushFailed(exceptions.StorageError):
    """A batch failed; the message says which batches were stored."""


class Aborted(Exception):
    """The user declined the confirmation; nothing was changed."""


# Reading rated data ---------------------------------------------------------

def detect_format(path, text):
    """Guess the format of ``text``, read from ``path`` (``-``: stdin).

    ``.jsonl``/``.ndjson`` mean JSON Lines and ``.csv`` CSV. Otherwise
    (``.json``, another extension or stdin) text starting with ``[`` is JSON;
    text starting with ``{`` is JSON Lines when its first line is a JSON
    value followed by more data, else JSON; anything else is CSV.

    :rtype: str
    """
    ext = os.path.splitext(path)[1].lower() if path != '-' else ''
    if ext in ('.jsonl', '.ndjson'):
        return 'jsonl'
    if ext == '.csv':
        return 'csv'
    stripped = text.lstrip()
    if stripped.startswith('['):
        return 'json'
    if not stripped.startswith('{'):
        return 'csv'
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        first_line = stripped.split('\n', 1)[0]
        if exc.msg == 'Extra data' and _is_json(first_line):
            return 'jsonl'
    return 'json'


def _is_json(text):
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _json_error(where, exc):
    return InputError('%s: line %d column %d: invalid JSON: %s'
                      % (where, exc.lineno, exc.colno, exc.msg))


def check_frame(frame, where):
    """Check what every backend rejects in a frame, before any push.

    :param frame: the frame to check.
    :type frame: cloudkitty.dataframe.DataFrame
    :param where: the frame's place in the input, for the message.
    :raises InputError: for a qty or price that no backend accepts (not
        finite, or not below ``10**20``: see :func:`cloudkitty.storage.v2.
        money.check`; a backend may accept less, see its
        ``features.max_magnitude``).
    """
    for type_, point in frame.iterpoints():
        try:
            money.check(point.qty, 'qty')
            money.check(point.price, 'price')
        except exceptions.InvalidQuery as exc:
            raise InputError('%s: usage[%r]: %s' % (where, type_, exc)) \
                from exc


def _frame_from_dict(item, where):
    """Build and check one frame from a decoded JSON value."""
    if not isinstance(item, dict):
        raise InputError('%s: expected a DataFrame object, got %s'
                         % (where, type(item).__name__))
    try:
        frame = dataframe.DataFrame.from_dict(item)
    except (TypeError, ValueError) as exc:
        raise InputError('%s: %s' % (where, exc)) from exc
    check_frame(frame, where)
    return frame


def parse_json(text, source):
    """Parse one JSON frame, or a JSON list of frames.

    :param text: the document.
    :param source: the file name (or ``<stdin>``), for messages.
    :returns: the frames, in input order.
    :rtype: list of cloudkitty.dataframe.DataFrame
    :raises InputError: for invalid JSON (with its line and column) or an
        invalid frame (with its 1-based index).
    """
    try:
        # NOTE: JSON numbers become Decimals, never binary floats.
        document = json.loads(text, parse_float=decimal.Decimal)
    except json.JSONDecodeError as exc:
        raise _json_error(source, exc) from None
    if isinstance(document, dict):
        return [_frame_from_dict(document, '%s: frame 1' % source)]
    if not isinstance(document, list):
        raise InputError('%s: expected a DataFrame object or a list of them, '
                         'got %s' % (source, type(document).__name__))
    return [_frame_from_dict(item, '%s: frame %d' % (source, index))
            for index, item in enumerate(document, 1)]


def parse_jsonl(text, source):
    """Parse JSON Lines: one frame per line, blank lines skipped.

    :returns: the frames, in input order.
    :rtype: list of cloudkitty.dataframe.DataFrame
    :raises InputError: naming the line of the first invalid frame.
    """
    frames = []
    # NOTE: not splitlines(), which also splits on characters such as
    # U+2028 that JSON strings may hold as they are.
    for number, line in enumerate(text.split('\n'), 1):
        if not line.strip():
            continue
        where = '%s: line %d' % (source, number)
        try:
            item = json.loads(line, parse_float=decimal.Decimal)
        except json.JSONDecodeError as exc:
            raise InputError('%s: invalid JSON at column %d: %s'
                             % (where, exc.colno, exc.msg)) from None
        frames.append(_frame_from_dict(item, where))
    return frames


def _csv_header(header, where):
    """Check the CSV header; return ``{column: index}``."""
    index = {}
    for position, name in enumerate(header):
        name = name.strip()
        prefix, dot, key = name.partition('.')
        known = (name in POINT_COLUMNS
                 or (dot and prefix in CSV_MAPPINGS and key))
        if not known:
            raise InputError(
                '%s: unknown column %r (expected %s, groupby.KEY or '
                'metadata.KEY)' % (where, name, ', '.join(POINT_COLUMNS)))
        if name in index:
            raise InputError('%s: column %r appears twice' % (where, name))
        index[name] = position
    missing = [name for name in CSV_REQUIRED if name not in index]
    if missing:
        raise InputError('%s: missing column(s) %s'
                         % (where, ', '.join(missing)))
    return index


def _csv_mapping(row, index, name):
    """Return the groupby or metadata dict of a CSV row."""
    result = {}
    if name in index and row[index[name]].strip():
        try:
            result = json.loads(row[index[name]])
        except json.JSONDecodeError as exc:
            raise ValueError('%s: invalid JSON: %s' % (name, exc.msg)) \
                from None
        if not isinstance(result, dict):
            raise ValueError('%s: expected a JSON object, got %s'
                             % (name, type(result).__name__))
    for column, position in index.items():
        prefix, _, key = column.partition('.')
        if prefix == name and key and row[position] != '':
            result[key] = row[position]
    return result


def _csv_row(row, index):
    """Return ``((begin, end), type, DataPoint)`` of a CSV row."""
    begin = query.to_datetime(row[index['begin']], 'begin')
    end = query.to_datetime(row[index['end']], 'end')
    if end <= begin:
        raise ValueError('end (%s) must be after begin (%s)'
                         % (end.isoformat(), begin.isoformat()))
    type_ = row[index['type']]
    if not type_:
        raise ValueError('empty type')
    unit = row[index['unit']] if 'unit' in index else None
    point = dataframe.DataPoint(
        unit, row[index['qty']], row[index['price']],
        _csv_mapping(row, index, 'groupby'),
        _csv_mapping(row, index, 'metadata'))
    money.check(point.qty, 'qty')
    money.check(point.price, 'price')
    return (begin, end), type_, point


def parse_csv(text, source):
    """Parse CSV: a header, then one point per row (see the module doc).

    :returns: one frame per distinct ``(begin, end)``, in order of first
        appearance.
    :rtype: list of cloudkitty.dataframe.DataFrame
    :raises InputError: naming the line of the first invalid row.
    """
    # NOTE: strict, so that a quote left open is an error rather than a
    # field that swallows the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=''), strict=True)
    frames = collections.OrderedDict()
    index = None
    while True:
        # NOTE: a quoted field may span lines: a row is named by the line
        # it starts on.
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(_csv_error(text, source, start,
                                        reader.line_num, exc)) from None
        where = '%s: line %d' % (source, start)
        if not any(cell.strip() for cell in row):
            continue
        if index is None:
            index = _csv_header(row, where)
            continue
        if len(row) != len(index):
            spans = ('' if reader.line_num == start else
                     ' (its quotes make it run to line %d)'
                     % reader.line_num)
            raise InputError('%s: expected %d fields, got %d%s'
                             % (where, len(index), len(row), spans))
        try:
            period, type_, point = _csv_row(row, index)
        except (TypeError, ValueError) as exc:
            raise InputError('%s: %s' % (where, exc)) from exc
        if period not in frames:
            frames[period] = dataframe.DataFrame(*period)
        frames[period].add_point(point, type_)
    return list(frames.values())


def _open_quote(line):
    """Return the 1-based column of the quote left open in ``line``."""
    opened = None
    for match in re.finditer('"', line):
        opened = match.start() + 1 if opened is None else None
    return opened


def _csv_error(text, source, start, stop, exc):
    """Return the message of a CSV syntax error.

    :param start: the line the bad row starts on.
    :param stop: the line the reader stopped at.
    """
    if stop > start or str(exc) == 'unexpected end of data':
        line = re.split('\r\n|\r|\n', text)[start - 1]
        column = _open_quote(line)
        if column is not None:
            ended = ('is never closed'
                     if str(exc) == 'unexpected end of data'
                     else 'runs to line %d, where: %s' % (stop, exc))
            return ('%s: line %d column %d: invalid CSV: the quote opened '
                    'here %s' % (source, start, column, ended))
    return '%s: line %d: invalid CSV: %s' % (source, stop, exc)


PARSERS = {'json': parse_json, 'jsonl': parse_jsonl, 'csv': parse_csv}


def read_frames(text, source, fmt='auto'):
    """Parse and check every frame of ``text``.

    :param text: the whole input.
    :param source: the path given (``-`` for stdin).
    :param fmt: one of :data:`FORMATS`.
    :returns: ``(format used, frames)``; blank input gives no frame.
    :raises InputError: for the first invalid frame, point or line.
    """
    if fmt == 'auto':
        fmt = detect_format(source, text)
    if not text.strip():
        return fmt, []
    return fmt, PARSERS[fmt](text, _source_name(source))


def _source_name(path):
    """Name an input in messages: its path, or ``<stdin>`` for ``-``."""
    return '<stdin>' if path == '-' else path


def _read_input(app, path):
    """Return the text of ``path``, or of the app's stdin for ``-``."""
    if path == '-':
        return app.stdin.read()
    try:
        with open(path, encoding='utf-8', newline='') as stream:
            return stream.read()
    except OSError as exc:
        raise InputError('cannot read %s: %s'
                         % (path, exc.strerror or exc)) from None
    except UnicodeDecodeError as exc:
        raise InputError('%s: not UTF-8 text: %s' % (path, exc)) from None


# Shared helpers ------------------------------------------------------------

def exact(value):
    """Return a value as the CLI prints it: Decimals and datetimes as text.

    :returns: ``str(Decimal)`` (exact), ISO 8601 for datetimes, else the
        value unchanged.
    """
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def confirm(app, question):
    """Ask ``question`` on stderr; read the answer from the app's stdin.

    :returns: True only for ``y`` or ``yes`` (any case); end of input or
        anything else means no.
    :rtype: bool
    """
    app.stderr.write(question)
    app.stderr.flush()
    answer = app.stdin.readline()
    isatty = getattr(app.stdin, 'isatty', None)
    if not (isatty and isatty()):
        # NOTE: a terminal echoes the answer and its newline; a pipe or
        # a file does not, so end the prompt's line here.
        app.stderr.write('\n')
    return answer.strip().lower() in ('y', 'yes')


def count_points(store, begin=None, end=None, filters=None):
    """Count the points a ``delete(begin, end, filters)`` would remove.

    A missing bound is open, as for delete(), not the current month as for
    retrieve().

    :rtype: int
    """
    answer = store.retrieve(begin=begin or OPEN_BEGIN, end=end or OPEN_END,
                            filters=filters, limit=1)
    return answer['total']


def describe_window(begin, end, filters=None):
    """Return ``from X to Y [where ...]`` for a prompt."""
    text = 'from %s to %s' % (begin.isoformat() if begin else 'the start',
                              end.isoformat() if end else 'the end')
    if filters:
        text += ' where ' + ' and '.join(
            '%s in (%s)' % (key, ', '.join(values))
            for key, values in sorted(filters.items()))
    return text


def _progress(app, done, total):
    """Draw a one-line progress bar on stderr when it is a terminal."""
    isatty = getattr(app.stderr, 'isatty', None)
    if not (isatty and isatty()):
        return
    width = 30
    filled = width * done // total
    app.stderr.write('\rpush [%s%s] %d/%d frames' % (
        '#' * filled, '.' * (width - filled), done, total))
    if done == total:
        app.stderr.write('\n')
    app.stderr.flush()


# Commands ------------------------------------------------------------------

class Push(rst.PlainHelp, show.ShowOne):
    """Push rated data from a file or stdin.

    FILE holds DataFrames as JSON (one frame or a list), JSON Lines (one
    frame per line) or CSV (one point per row; see the user guide). All of
    it is parsed and checked first: an invalid input names the line (or the
    frame) and nothing is written. Frames are then pushed ``--batch-size``
    at a time; each push is one transaction on the SQL backend. If a batch
    fails, the error says which batches were stored before it (they stay);
    ``--batch-size 0`` pushes everything in one call, all or nothing on
    backends with ``atomic_push``.

    With ``--idempotency-key KEY`` (backends with ``idempotent_push``) the
    batch of input frames ``i`` to ``j`` is pushed with the key
    ``KEY:i-j``: running the same command again, after a failure or a
    timeout, stores only the batches that did not land.
    """

    def get_parser(self, prog_name):
        """Return the parser of ``push``'s own options.

        :rtype: argparse.ArgumentParser
        """
        parser = super().get_parser(prog_name)
        parser.add_argument(
            'path', metavar='FILE',
            help='File to read; - reads stdin.')
        parser.add_argument(
            '--input-format', choices=FORMATS, default='auto',
            help='Input format (default: auto: .jsonl/.ndjson is JSON Lines, '
                 '.csv is CSV, otherwise guessed from the content). '
                 '(-f/--format choose the output format.)')
        parser.add_argument(
            '--scope-id', default=None, metavar='ID',
            help='Scope (project) the data was rated for.')
        parser.add_argument(
            '--skip', type=int, default=0, metavar='N',
            help='Check every frame but push none of the first N (to '
                 'resume after a failed batch; default: 0).')
        parser.add_argument(
            '--batch-size', type=int, default=DEFAULT_BATCH_SIZE,
            metavar='N',
            help='Frames per push call (default: %d; 0: all in one call).'
                 % DEFAULT_BATCH_SIZE)
        parser.add_argument(
            '--idempotency-key', default=None, metavar='KEY',
            help='Push each batch with the key KEY:<first frame>-<last '
                 'frame>, so that running the command again stores only '
                 'what did not land (keep the same input and batch size).')
        return parser

    def take_action(self, parsed_args):
        """Parse everything, then push it in batches.

        :returns: the format, the frames and batches pushed, the points
            stored, the batches whose key had landed before (their points
            were not stored again) and the scope.
        :raises InputError: for invalid input (nothing is pushed).
        :raises PushFailed: when a batch fails.
        """
        size, skip = parsed_args.batch_size, parsed_args.skip
        if size < 0:
            raise ValueError('--batch-size must be 0 or more, got %d' % size)
        if skip < 0:
            raise ValueError('--skip must be 0 or more, got %d' % skip)
        text = _read_input(self.app, parsed_args.path)
        fmt, frames = read_frames(text, parsed_args.path,
                                  parsed_args.input_format)
        if skip > len(frames):
            raise InputError('--skip %d: %s holds only %d frames'
                             % (skip, _source_name(parsed_args.path),
                                len(frames)))
        frames = frames[skip:]
        if not frames:
            LOG.warning('No frame to push from %s',
                        _source_name(parsed_args.path))
        size = size or len(frames) or 1
        batches = [frames[i:i + size] for i in range(0, len(frames), size)]
        with self.app.opened_storage(create=True) as store:
            points, landed = self._push(store, batches,
                                        parsed_args.scope_id, skip,
                                        parsed_args.idempotency_key)
        if landed:
            LOG.warning('%s of %s had landed before with the same '
                        'idempotency key: stored nothing again for %s',
                        report.plural(landed, 'batch', 'batches'),
                        len(batches), 'them' if landed > 1 else 'it')
        LOG.info('Stored %s from %s', report.plural(points, 'point'),
                 report.plural(len(frames), 'frame'))
        return (('format', 'frames', 'points', 'batches', 'landed_before',
                 'scope_id'),
                (fmt, len(frames), points, len(batches), landed,
                 parsed_args.scope_id or ''))

    def _push(self, store, batches, scope_id, skip, key=None):
        """Push the batches in order; say exactly what landed on error.

        With a key, a backend that has ``push_landed(key)`` (the SQL
        backend) tells whether the batch had landed before; such a batch
        is still pushed, so that the backend checks that the key names the
        same data, but counts as stored by an earlier run. Otherwise every
        point of a batch counts as stored by this run.

        :returns: ``(points stored, batches that had landed before)``.
        """
        total = sum(len(batch) for batch in batches)
        done = points = landed = 0
        asker = getattr(store, 'push_landed', None) if key else None
        for number, batch in enumerate(batches, 1):
            first = skip + done + 1
            batch_key = (None if key is None else '%s:%d-%d'
                         % (key, first, first + len(batch) - 1))
            try:
                # NOTE: asked first: a receipt is never written without
                # its points, so a key found now had landed before.
                before = bool(asker is not None and asker(batch_key))
                store.push(batch, scope_id=scope_id,
                           idempotency_key=batch_key)
            except Exception as exc:
                raise PushFailed(_failure(
                    store, number, len(batches), skip + done, points,
                    len(batch), exc)) from exc
            landed += before
            done += len(batch)
            if not before:
                points += sum(len(frame) for frame in batch)
            if len(batches) > 1:
                _progress(self.app, done, total)
        return points, landed


def _failure(store, number, count, done, points, size, exc):
    """Return the message of a failed batch.

    :param done: frames of the input stored (or skipped) before the batch.
    :param points: points stored by this run before the batch.
    """
    failed = ('batch %d of %d (frames %d-%d) failed: %s'
              % (number, count, done + 1, done + size, exc))
    if number == 1:
        stored = 'this run stored nothing'
    else:
        batches = ('batch 1 was' if number == 2
                   else 'batches 1-%d were' % (number - 1))
        stored = ('%s stored and kept (%d points, input frames up to %d); '
                  'run again with --skip %d to push the rest'
                  % (batches, points, done, done))
    if not store.features.atomic_push:
        stored += ('; backend %s may have kept part of the failed batch'
                   % store.name)
    return '%s; %s' % (failed, stored)


class Retrieve(rst.PlainHelp, report.ExactSortLister):
    """List rated points, one row per point.

    The window defaults to the current UTC month. groupby and metadata are
    JSON objects in text form, so ``-f csv`` output can be pushed again.
    When nothing matches, or the page shows only part of the points, a
    line on stderr says so (``-v`` always logs the count).
    """

    numeric_columns = ('qty', 'price')

    def get_parser(self, prog_name):
        """Return the parser of ``retrieve``'s own options.

        :rtype: argparse.ArgumentParser
        """
        parser = super().get_parser(prog_name)
        args.add_window(parser)
        args.add_filters(parser)
        args.add_page(parser)
        return parser

    def take_action(self, parsed_args):
        """Retrieve one page (or everything, with ``--all``).

        :returns: ``(POINT_COLUMNS, rows)``.
        """
        args.check_window(parsed_args)
        begin, end = query.default_window(parsed_args.begin,
                                          parsed_args.end)
        with self.app.opened_storage() as store:
            where = getattr(store, 'location', None)
            answer = store.retrieve(
                begin=begin, end=end, filters=args.filters(parsed_args),
                metric_types=parsed_args.metric_types,
                offset=parsed_args.offset, limit=parsed_args.limit,
                paginate=parsed_args.paginate)
        rows = []
        for frame in answer['dataframes']:
            begin, end = frame.start.isoformat(), frame.end.isoformat()
            for type_, point in frame.iterpoints():
                rows.append((
                    begin, end, type_, point.unit, str(point.qty),
                    str(point.price),
                    json.dumps(dict(point.groupby), sort_keys=True),
                    json.dumps(dict(point.metadata), sort_keys=True)))
        LOG.info('Matching points: %d; shown: %d', answer['total'],
                 len(rows))
        report.page_notes(answer['total'], len(rows), parsed_args.offset,
                          parsed_args.paginate, 'point', begin, end, where)
        return POINT_COLUMNS, rows


def _groupby_list(values):
    """Split ``--groupby`` values on commas; None when empty."""
    entries = [entry.strip() for value in values or ()
               for entry in value.split(',')]
    return [entry for entry in entries if entry] or None


class Total(rst.PlainHelp, report.ExactSortLister):
    """Sum qty and price, grouped.

    ``--groupby`` takes ``type``, any groupby or metadata key, ``time``
    (one bucket per frame start) or ``time-d``, ``time-w``, ``time-m``,
    ``time-y``; comma-separated or repeated. The window defaults to the
    current UTC month. Sums are exact decimal strings, sorted as numbers
    by ``--sort-column``. A line on stderr says when nothing matches, when
    the page shows only part of the groups, or when a groupby key is in
    no point (such points are grouped under an empty value).
    """

    def get_parser(self, prog_name):
        """Return the parser of ``total``'s own options.

        :rtype: argparse.ArgumentParser
        """
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--groupby', action='append', default=[], metavar='KEYS',
            help='Group by these comma-separated keys; may be repeated.')
        parser.add_argument(
            '--custom-fields', default=None, metavar='FIELDS',
            help='Compute these instead of qty and rate, as "FUNC(field) AS '
                 'alias, ..." with FUNC among sum, min, max, avg, count and '
                 'field qty or price.')
        args.add_window(parser)
        args.add_filters(parser)
        args.add_page(parser)
        return parser

    def take_action(self, parsed_args):
        """Total one page of groups (or all, with ``--all``).

        :returns: begin, end, the groupby keys, then qty and rate or the
            custom-field aliases.
        """
        args.check_window(parsed_args)
        groupby = _groupby_list(parsed_args.groupby)
        groupby = list(query.normalize_groupby(groupby)) or None
        fields = query.parse_custom_fields(parsed_args.custom_fields,
                                           groupby or ())
        columns = (('begin', 'end') + query.result_keys(groupby or ())
                   + tuple(field.alias for field in fields))
        self.numeric_columns = tuple(field.alias for field in fields)
        begin, end = query.default_window(parsed_args.begin,
                                          parsed_args.end)
        scope = dict(begin=begin, end=end,
                     metric_types=parsed_args.metric_types,
                     filters=args.filters(parsed_args))
        with self.app.opened_storage() as store:
            answer = store.total(
                groupby=groupby, custom_fields=parsed_args.custom_fields,
                offset=parsed_args.offset, limit=parsed_args.limit,
                paginate=parsed_args.paginate, **scope)
            rows = [tuple(exact(result.get(column)) for column in columns)
                    for result in answer['results']]
            LOG.info('Groups: %d; shown: %d', answer['total'], len(rows))
            report.page_notes(answer['total'], len(rows),
                              parsed_args.offset, parsed_args.paginate,
                              'group', begin, end,
                              getattr(store, 'location', None))
            report.missing_groupby_keys(store, groupby, answer['results'],
                                        **scope)
        return columns, rows


def delete_filters(parsed_args):
    """Return delete()'s filters: ``--filter`` plus ``--type`` as ``type``.

    :rtype: dict or None
    """
    filters = args.filters(parsed_args) or {}
    if parsed_args.metric_types:
        filters['type'] = (filters.get('type', [])
                           + list(parsed_args.metric_types))
    return filters or None


class Delete(rst.PlainHelp, show.ShowOne):
    """Delete rated points; a missing --begin or --end is open.

    Without any option it deletes everything. Unless ``--yes`` is given it
    counts the points first and asks on stdin (``y`` to go on); declining,
    or the end of input, deletes nothing and exits with 1.
    """

    def get_parser(self, prog_name):
        """Return the parser of ``delete``'s own options.

        :rtype: argparse.ArgumentParser
        """
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--begin', type=args.iso_datetime, default=None, metavar='DATE',
            help='Delete points whose frame starts at or after DATE (ISO '
                 '8601; naive means UTC; default: no lower bound).')
        parser.add_argument(
            '--end', type=args.iso_datetime, default=None, metavar='DATE',
            help='Delete points whose frame starts before DATE (default: '
                 'no upper bound).')
        args.add_filters(parser)
        parser.add_argument(
            '--yes', '-y', action='store_true',
            help='Do not ask for confirmation.')
        return parser

    def take_action(self, parsed_args):
        """Count, confirm, delete.

        :returns: ``(('deleted',), (number of points deleted,))``.
        :raises Aborted: when the confirmation is declined.
        """
        args.check_window(parsed_args)
        begin, end = parsed_args.begin, parsed_args.end
        filters = delete_filters(parsed_args)
        with self.app.opened_storage() as store:
            if not parsed_args.yes:
                count = count_points(store, begin, end, filters)
                if not count:
                    LOG.info('No point matches; nothing to delete')
                    return ('deleted',), (0,)
                question = 'Delete %s %s? [y/N] ' % (
                    report.plural(count, 'point'),
                    describe_window(begin, end, filters))
                if not confirm(self.app, question):
                    raise Aborted('Aborted: nothing was deleted')
            deleted = store.delete(begin=begin, end=end, filters=filters)
        LOG.info('Deleted %s', report.plural(deleted, 'point'))
        return ('deleted',), (deleted,)
