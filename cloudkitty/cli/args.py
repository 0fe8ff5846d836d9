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
"""Command-line arguments shared by the commands that query storage.

One place parses what every query command accepts, with the meaning that
:mod:`cloudkitty.storage.v2.query` gives it: ``--begin``/``--end`` (ISO 8601
datetimes or dates, naive meaning UTC), ``--filter key=value`` (repeatable:
OR for one key, AND across keys), ``--type`` (repeatable) and the page
(``--limit``/``--offset``/``--all``).
"""

import argparse
import collections
import math

from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import query


def iso_datetime(text):
    """argparse type: an ISO 8601 datetime or date (naive means UTC)."""
    try:
        return query.to_datetime(text, 'date')
    except exceptions.InvalidQuery:
        raise argparse.ArgumentTypeError(
            'not an ISO 8601 date or datetime: %r (for example 2026-01-31 '
            'or 2026-01-31T12:00:00+00:00)' % text) from None


def positive_int(text):
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def non_negative_int(text):
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def positive_float(text):
    """argparse type: a finite number > 0."""
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise ValueError(text)
    return value


# NOTE: argparse names the type in its error message by __name__.
positive_int.__name__ = 'integer >= 1'
non_negative_int.__name__ = 'integer >= 0'
positive_float.__name__ = 'number > 0'


def key_value(text):
    """argparse type: ``key=value`` (the value may hold ``=``)."""
    key, sep, value = text.partition('=')
    if not sep or not key:
        raise argparse.ArgumentTypeError(
            'expected key=value, got %r' % text)
    return key, value


def add_window(parser, required_end=False):
    """Add ``--begin`` and ``--end`` to ``parser``."""
    parser.add_argument(
        '--begin', type=iso_datetime, default=None, metavar='DATE',
        help='Start of the window, inclusive (ISO 8601; naive means UTC; '
             'default: start of the current UTC month for queries).')
    parser.add_argument(
        '--end', type=iso_datetime, default=None, metavar='DATE',
        required=required_end,
        help='End of the window, exclusive (ISO 8601; default: start of '
             'the next UTC month for queries).')


def check_window(parsed_args):
    """Refuse a window whose ``--begin`` is not before its ``--end``.

    The library answers such a window with nothing (as upstream CloudKitty
    does); an operator who typed it most likely swapped the dates, so the
    command says so instead of printing an empty answer.

    :raises cloudkitty.storage.exceptions.InvalidQuery: when both bounds
        are given and ``begin >= end``.
    """
    begin, end = parsed_args.begin, parsed_args.end
    if begin is not None and end is not None and begin >= end:
        raise exceptions.InvalidQuery(
            'begin', '--begin (%s) must be before --end (%s)'
            % (begin.isoformat(), end.isoformat()), begin)


def add_filters(parser):
    """Add ``--filter key=value`` and ``--type`` to ``parser``."""
    parser.add_argument(
        '--filter', dest='filters', type=key_value, action='append',
        default=[], metavar='KEY=VALUE',
        help='Keep points whose groupby or metadata KEY (or "type") equals '
             'VALUE exactly; repeat a key for OR, use several keys for '
             'AND.')
    parser.add_argument(
        '--type', dest='metric_types', action='append', default=None,
        metavar='TYPE', help='Keep this metric type; may be repeated.')


def add_page(parser):
    """Add ``--limit``, ``--offset`` and ``--all`` to ``parser``."""
    parser.add_argument(
        '--limit', type=int, default=1000, metavar='N',
        help='Items in the page (default: 1000).')
    parser.add_argument(
        '--offset', type=int, default=0, metavar='N',
        help='Index of the first item of the page (default: 0).')
    parser.add_argument(
        '--all', dest='paginate', action='store_false',
        help='Every item, no page.')


def filters(parsed_args):
    """Return the ``filters`` dict of ``--filter`` arguments (or None)."""
    values = collections.defaultdict(list)
    for key, value in parsed_args.filters:
        values[key].append(value)
    return dict(values) or None
