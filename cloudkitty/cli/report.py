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
"""How the query commands present an answer: sorting, notes on stderr.

Numbers are printed as exact decimal text, which cliff would sort as text
(``7.2`` after ``39.15``): :class:`ExactSortLister` sorts them as numbers.
The notes say, on stderr, what a bare answer would hide: that nothing
matched the window read, that a page holds only part of the answer, or
that a group-by key occurs in no point.
"""

import decimal
import difflib
import numbers

from cliff import lister
from oslo_log import log


LOG = log.getLogger(__name__)

#: Points read to name the keys the data has, for a mistyped key.
KEY_SAMPLE = 200


def plural(count, noun, nouns=None):
    """Return ``'1 point'`` or ``'2 points'``.

    :param nouns: the plural, when it is not ``noun + 's'``.
    :rtype: str
    """
    return '%d %s' % (count, noun if count == 1 else nouns or noun + 's')


def describe(begin, end):
    """Return ``from BEGIN to END`` in ISO 8601."""
    return 'from %s to %s' % (begin.isoformat(), end.isoformat())


# Sorting --------------------------------------------------------------------

def _key(cell, numeric):
    """Sort key of a cell: None last, then numbers, booleans, text."""
    if cell is None or (numeric and cell == ''):
        return (1, 0, 0)
    if numeric and isinstance(cell, str):
        try:
            return (0, 0, decimal.Decimal(cell))
        except decimal.InvalidOperation:
            return (0, 2, cell)
    if isinstance(cell, bool):
        return (0, 1, cell)
    if isinstance(cell, numbers.Number):
        return (0, 0, decimal.Decimal(str(cell)))
    return (0, 2, str(cell))


class ExactSortLister(lister.Lister):
    """A Lister whose ``--sort-column`` sorts exact numbers as numbers.

    Subclasses name the columns holding decimal text in
    :attr:`numeric_columns` (in ``take_action``, when they depend on the
    arguments). Decimals compare exactly, so the order is the same in
    every output format.
    """

    #: Names of the columns that hold numbers written as text.
    numeric_columns = ()

    @property
    def need_sort_by_cliff(self):
        """False: :meth:`produce_output` sorts, numbers as numbers."""
        return False

    def produce_output(self, parsed_args, column_names, data):
        """Sort by ``--sort-column`` (as cliff would), then print.

        :returns: cliff's exit code.
        """
        wanted = getattr(parsed_args, 'sort_columns', None)
        if wanted:
            data = self._sorted(column_names, list(data), wanted,
                                parsed_args.sort_direction == 'desc')
        return super().produce_output(parsed_args, column_names, data)

    def _sorted(self, column_names, rows, wanted, reverse):
        normalized = [self._normalize_column_name(c) for c in column_names]
        indexes = []
        for column in wanted:
            name = self._normalize_column_name(column)
            if column in column_names:
                indexes.append(list(column_names).index(column))
            elif name in normalized:
                indexes.append(normalized.index(name))
        numeric = set(self.numeric_columns)
        # NOTE: stable sorts, last column first: the first column given
        # decides, like cliff's own sort.
        for index in reversed(indexes):
            is_numeric = column_names[index] in numeric
            rows.sort(key=lambda row: _key(row[index], is_numeric),
                      reverse=reverse)
        return rows


# Notes ----------------------------------------------------------------------

def page_notes(answer_total, shown, offset, paginate, noun, begin, end,
               where=None):
    """Say on stderr what an answer's page does not show.

    :param answer_total: items matching, over all pages.
    :param shown: items in this page.
    :param noun: ``'point'`` or ``'group'``.
    :param where: the store, for the message when nothing matched.
    """
    if not answer_total:
        LOG.warning('No rated data %s%s (the window defaults to the '
                    'current UTC month: give --begin and --end)',
                    describe(begin, end), ' in %s' % where if where else '')
    elif not shown:
        LOG.warning('No %s at offset %d: %s match %s', noun, offset,
                    plural(answer_total, noun), describe(begin, end))
    elif paginate and offset + shown < answer_total:
        LOG.warning('Showing %s %d to %d of %d; --offset or --all shows '
                    'the others', noun + 's', offset + 1, offset + shown,
                    answer_total)


def label_keys(groupby):
    """The groupby keys that name a label (not ``type``, not a time)."""
    return [key for key in groupby or ()
            if key != 'type' and not (key == 'time'
                                      or key.startswith('time-'))]


def missing_groupby_keys(store, groupby, results, **kwargs):
    """Warn about group-by keys that no point of the window has.

    Upstream's rule groups a point without the key under ``''``; a key
    that every shown group has as ``''`` is checked over the whole
    window, and reported when it is missing (or empty) in every point.

    :param results: the ``results`` of the page shown.
    :param kwargs: ``begin``, ``end``, ``filters`` and ``metric_types`` of
        the query.
    :returns: the keys reported.
    :rtype: list of str
    """
    reported = []
    if not results:
        return reported
    for key in label_keys(groupby):
        if any(row.get(key) != '' for row in results):
            continue
        whole = store.total(groupby=[key], paginate=False, **kwargs)
        if [row.get(key) for row in whole['results']] != ['']:
            continue
        reported.append(key)
        seen = sorted(_keys_seen(store, **kwargs))
        close = difflib.get_close_matches(key, seen, n=1)
        LOG.warning('groupby key %r is in no point %s, so every point '
                    'is grouped under an empty value%s%s', key,
                    describe(kwargs['begin'], kwargs['end']),
                    '; did you mean %r?' % close[0] if close else '',
                    ' (keys found: %s)' % ', '.join(seen) if seen else '')
    return reported


def _keys_seen(store, begin, end, filters=None, metric_types=None):
    """The groupby and metadata keys of a sample of the window's points."""
    answer = store.retrieve(begin=begin, end=end, filters=filters,
                            metric_types=metric_types, limit=KEY_SAMPLE)
    keys = set()
    for frame in answer['dataframes']:
        for _, point in frame.iterpoints():
            keys.update(point.groupby)
            keys.update(point.metadata)
    return keys
