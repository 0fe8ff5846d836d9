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
"""Fuzzing of the SQL backend on SQLite against the storage v2 contract.

Hypothesis throws arbitrary input at :meth:`push`, :meth:`retrieve`,
:meth:`total` and :meth:`delete` (one call per example, and short sequences
of calls): frames with any qty, price, labels, types and periods, arbitrary
objects instead of frames, and arbitrary filters, groupbys, bounds, metric
types, custom fields and paging values. Every call must either

* answer as the contract says: the result has the documented shape and
  equals what the reference oracle
  (:func:`cloudkitty.storage.v2.query.evaluate_retrieve` and
  :func:`~cloudkitty.storage.v2.query.evaluate_total`) computes over the
  frames the store holds; an accepted push adds exactly its points, an
  accepted delete removes exactly the points it selects; or
* raise :class:`~cloudkitty.storage.exceptions.InvalidQuery` and leave the
  store exactly as it was (its content, its totals and the row counts of
  every table).

Any other exception is a bug. The bugs this fuzzer found are fixed; each
is kept as an explicit example (``@hypothesis.example``), so that it runs
on every run.

The run is bounded: a fixed number of examples per test, derandomized (see
:func:`_settings`). ``CLOUDKITTY_TEST_FUZZ_EXAMPLES=<n>`` runs ``n``
examples per test instead, for a longer local hunt.
"""

import collections.abc
import dataclasses
import datetime
import decimal
import os
import types

import fixtures
import hypothesis
from hypothesis import configuration as hypothesis_configuration
from hypothesis import strategies as st
from oslo_config import cfg
import sqlalchemy as sa
import testtools
from werkzeug import datastructures

from cloudkitty import dataframe
from cloudkitty import storage
from cloudkitty.storage import exceptions
from cloudkitty.storage.v2 import query as query_mod
from cloudkitty.storage.v2.sqlalchemy import models
from cloudkitty.storage.v2.sqlalchemy import rollup
from cloudkitty.tests import fixtures as builders
from cloudkitty.tests import functional_env

D = decimal.Decimal
UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
T0 = builders.T0
#: A window holding every frame start there can be.
FIRST = datetime.datetime.min.replace(tzinfo=UTC)
LAST = datetime.datetime.max.replace(tzinfo=UTC)
#: The largest value SQLite binds as an INTEGER.
INT64_MAX = 2 ** 63 - 1
#: The tables whose row counts must not move on a rejected call.
TABLES = (models.point, models.daily, models.frame, models.series,
          models.label)

#: ``CLOUDKITTY_TEST_FUZZ_EXAMPLES=<n>``: the hunting mode (see
#: :func:`_settings`).
HUNT_EXAMPLES = os.environ.get('CLOUDKITTY_TEST_FUZZ_EXAMPLES', '').strip()


def _settings(examples):
    """The Hypothesis settings of one test.

    * ``max_examples``: chosen so that the module runs in about 15 seconds
      on two cores (most of it in SQLite), plus the explicit examples.
    * ``deadline=None``: a call's duration depends on the disk, not on the
      code; a deadline would only make the run flaky.
    * ``database=None``: no example database (and, with the home directory
      set in ``setUp``, no ``.hypothesis`` directory in the tree).
    * ``derandomize=True``: every run tries the same examples, so that the
      module takes the same bounded time everywhere and a failure in CI is
      reproducible at once from its printed example, with nothing stored,
      never appearing at random on an unrelated change. The price is that
      runs explore no new inputs; the hunting mode,
      ``CLOUDKITTY_TEST_FUZZ_EXAMPLES=<n>``, runs ``n`` random examples per
      test instead (and prints the blob that replays a failure).
    * ``too_slow``, ``data_too_large`` and ``large_base_example`` are
      suppressed: the strategies draw long texts and nested junk on
      purpose.
    """
    hunting = bool(HUNT_EXAMPLES)
    return hypothesis.settings(
        max_examples=int(HUNT_EXAMPLES) if hunting else examples,
        deadline=None, database=None, derandomize=not hunting,
        print_blob=hunting,
        suppress_health_check=[hypothesis.HealthCheck.too_slow,
                               hypothesis.HealthCheck.data_too_large,
                               hypothesis.HealthCheck.large_base_example])


# Strategies ----------------------------------------------------------------

def mostly(valid, wild, weight=3):
    """Draw from ``valid`` ``weight`` times out of ``weight + 1``.

    Each argument is mostly valid, so that a fair share of the calls get
    past validation and reach the database, and sometimes wild.
    """
    return st.sampled_from([valid] * weight + [wild]).flatmap(lambda s: s)


#: Label keys and values of the baseline data (see :func:`_baseline`), so
#: that filters and groupbys often select something.
KNOWN_KEYS = ('project_id', 'flavor', 'az', 'disk', 'type')
KNOWN_VALUES = ('fuzz', 'm1.small', 'm1.large', 'nova', 'other', 'qcow2',
                'raw', 'cpu', 'image', '') + builders.TRICKY_VALUES[:12]
#: Text no database keeps as is, SQL-looking text, and names at the length
#: limit (255) and past it.
NASTY_TEXTS = (
    '\x00', 'a\x00b', '\ud800', 'x\udfffy', "'; DROP TABLE ck_point; --",
    '" OR ""="', "') OR 1=1 --", 'ck_point', '%s', '?', ':name', '%(x)s',
    'k' * 256, '\u00e9' * 256)
#: Objects of no type the storage expects.
HASHABLE_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(),
    st.binary(max_size=4), st.datetimes(), st.dates(),
    st.tuples(st.integers()), st.just(object))
JUNK = st.one_of(
    HASHABLE_JUNK, st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.sets(st.integers(), max_size=2), st.builds(object),
    st.decimals(allow_nan=True))

#: Text the storage keeps: quotes, wildcards, unicode, control characters
#: but NUL, names up to 255 characters.
SAFE_TEXT = st.one_of(
    st.sampled_from(KNOWN_VALUES + builders.TRICKY_VALUES +
                    builders.TRICKY_KEYS + ('\U0010ffff', '\ufeff',
                                            '\u202e', 'k' * 255)),
    st.text(st.characters().filter(lambda c: c != '\x00'), max_size=10))
#: Any character, NUL and lone surrogates included (st.characters() leaves
#: surrogates out).
ANY_CHAR = st.one_of(st.characters(), st.integers(0xd800, 0xdfff).map(chr))
WILD_TEXT = st.one_of(
    st.sampled_from(NASTY_TEXTS), st.text(ANY_CHAR, max_size=10),
    st.builds(lambda char, n: char * n,
              st.sampled_from(['x', "'", '\u00e9', '\U0001f600']),
              st.integers(200, 1100)))
TEXT = mostly(SAFE_TEXT, WILD_TEXT, 2)
#: Label values: any length; keys: 255 characters at most.
VALUE = mostly(st.one_of(SAFE_TEXT, st.sampled_from(builders.LONG_VALUES)),
               st.one_of(WILD_TEXT, JUNK), 9)
KEY = mostly(st.one_of(st.sampled_from(KNOWN_KEYS), SAFE_TEXT),
             st.one_of(WILD_TEXT, HASHABLE_JUNK), 9)

#: Quantities and prices in the exact range, in every type DataPoint takes.
SAFE_MONEY = st.one_of(
    st.sampled_from(builders.MONEY_EXTREMES + (D('-0'), D('0E-1000'), 0,
                                               '1', ' 2.5 ', '1e3', '1_000',
                                               '\u0661\u0662', 0.1, 1e14)),
    st.decimals(min_value=-10 ** 20 + 1, max_value=10 ** 20 - 1, places=12),
    st.decimals(min_value=-10, max_value=10, places=3),
    st.integers(-10 ** 6, 10 ** 6),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(
        lambda f: round(f, 6)))
#: Out of range, not finite, too precise (rounded), or of a type DataPoint
#: refuses.
WILD_MONEY = st.one_of(
    st.sampled_from(builders.MONEY_OUT_OF_RANGE + (
        D('NaN'), D('-NaN'), D('sNaN'), D('Infinity'), D('-Infinity'),
        D('1E+999999'), D('-1E-999999'), D('1E+1000000000'),
        D('1E-1000000000'), D('9' * 40))),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(min_value=-10, max_value=10, places=13),
    st.integers(), st.integers(10 ** 14, 10 ** 30), st.floats(),
    st.sampled_from(['NaN', 'inf', '-Infinity', 'sNaN', 'abc', '', '0x10',
                     '1e-13', '1e999999999999999999']),
    st.sampled_from([True, False, None, [], {}, b'1', 1j]))
MONEY = mostly(SAFE_MONEY, WILD_MONEY, 9)

#: Fixed UTC offsets, the extreme ones included.
OFFSETS = st.one_of(
    st.sampled_from([UTC, datetime.timezone(datetime.timedelta(hours=14)),
                     datetime.timezone(-datetime.timedelta(hours=12))]),
    st.builds(datetime.timezone, st.timedeltas(
        min_value=-datetime.timedelta(hours=23, minutes=59),
        max_value=datetime.timedelta(hours=23, minutes=59))))
#: Naive datetimes near the baseline data, a few round ones, the extremes.
NEAR_T0 = st.datetimes(min_value=T0.replace(tzinfo=None) - 4 * DAY,
                       max_value=T0.replace(tzinfo=None) + 4 * DAY)
SAFE_DATETIME = st.one_of(
    NEAR_T0, NEAR_T0.map(lambda d: d.replace(minute=0, second=0,
                                             microsecond=0)),
    st.datetimes(),
    st.sampled_from([
        datetime.datetime.min, datetime.datetime.max,
        datetime.datetime(9999, 12, 31), datetime.datetime(9999, 12, 31, 1),
        datetime.datetime(9999, 12, 1), datetime.datetime(9999, 1, 1),
        datetime.datetime(9999, 12, 27), datetime.datetime(1970, 1, 1),
        datetime.datetime(1969, 12, 31, 23), datetime.datetime(1, 1, 1, 1),
    ]))


def _as(moment, form, offset):
    """Write a naive UTC ``moment`` as a datetime, aware or not, or text."""
    aware = moment.replace(tzinfo=UTC)
    if form in ('offset', 'iso-offset'):
        try:
            aware = aware.astimezone(offset)
        except OverflowError:
            pass
    value = {'naive': moment, 'utc': aware, 'offset': aware}.get(form)
    if value is None:
        value = aware.isoformat(sep=' ' if form == 'iso-space' else 'T')
    return value.replace('+00:00', 'Z') if form == 'iso-z' else value


FORMS = st.sampled_from(['naive', 'utc', 'offset', 'iso-offset', 'iso-space',
                         'iso-z'])
#: Any datetime the storage takes, in any form.
DATETIME = st.builds(_as, SAFE_DATETIME, FORMS, OFFSETS)
#: begin/end of every type: datetimes (some out of range in UTC), dates,
#: near-ISO text, junk.
WILD_BOUND = st.one_of(
    st.none(), st.datetimes(timezones=OFFSETS), st.dates(),
    st.dates().map(str),
    st.sampled_from([
        datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(HOUR)),
        datetime.datetime(9999, 12, 31, 23, tzinfo=datetime.timezone(-HOUR)),
        '0001-01-01T00:00:00+01:00', '9999-12-31T23:00-02:00',
        '2021-13-01', '2021-03-10T25:00', 'yesterday', '', ' 2021-03-11 ']),
    TEXT, JUNK)


@st.composite
def windows(draw):
    """``begin``/``end`` arguments: ordered, one-sided, or anything."""
    kind = draw(st.sampled_from(['ordered', 'ordered', 'ordered', 'near',
                                 'everything', 'one', 'wild']))
    if kind in ('ordered', 'near'):
        moments = NEAR_T0 if kind == 'near' else SAFE_DATETIME
        begin, end = sorted(draw(st.lists(moments, min_size=2, max_size=2,
                                          unique=True)))
        return {'begin': _as(begin, draw(FORMS), draw(OFFSETS)),
                'end': _as(end, draw(FORMS), draw(OFFSETS))}
    if kind == 'everything':
        return {'begin': FIRST, 'end': LAST}
    if kind == 'one':
        return {draw(st.sampled_from(['begin', 'end'])): draw(DATETIME)}
    return draw(st.fixed_dictionaries({}, optional={
        'begin': st.one_of(DATETIME, WILD_BOUND),
        'end': st.one_of(DATETIME, WILD_BOUND)}))


def _listed(item):
    """One item, or a non-empty list, tuple or frozenset of them."""
    return st.one_of(item, st.lists(item, min_size=1, max_size=3),
                     st.lists(item, min_size=1, max_size=3).map(tuple),
                     st.frozensets(item, min_size=1, max_size=3))


SAFE_FILTERS = st.dictionaries(
    st.one_of(st.sampled_from(KNOWN_KEYS), SAFE_TEXT),
    _listed(st.sampled_from(KNOWN_VALUES)), min_size=1, max_size=2)
#: filters: dicts of any keys to any values or lists, or junk.
WILD_FILTERS = st.one_of(
    st.dictionaries(st.one_of(KEY, WILD_TEXT, HASHABLE_JUNK), st.one_of(
        VALUE, JUNK, st.lists(st.one_of(VALUE, JUNK), max_size=3),
        st.just([]), st.just(())), max_size=3),
    st.dictionaries(KEY, VALUE, max_size=2).map(types.MappingProxyType),
    st.lists(st.tuples(KEY, VALUE), max_size=2), TEXT, JUNK)
FILTERS = mostly(st.one_of(st.none(), SAFE_FILTERS), WILD_FILTERS)
SAFE_TYPE = st.one_of(st.sampled_from(['cpu', 'image', 'type', 'time']),
                      SAFE_TEXT.filter(bool))
METRIC_TYPES = mostly(
    st.one_of(st.none(), _listed(st.sampled_from(['cpu', 'image', 'x']))),
    st.one_of(WILD_TEXT, st.lists(st.one_of(TEXT, JUNK), max_size=3),
              st.just([]), JUNK))
#: offset/limit: small, negative, past int64, and of other types.
WILD_PAGING = st.one_of(
    st.integers(), st.sampled_from([INT64_MAX, INT64_MAX + 1, 2 ** 64,
                                    -2 ** 63 - 1, 10 ** 30, -1, 0]),
    st.booleans(), st.floats(), st.sampled_from(['1', None, D(1), 1.0]))
OFFSET = mostly(st.integers(0, 12), WILD_PAGING)
LIMIT = mostly(st.integers(1, 12), WILD_PAGING)
PAGINATE = mostly(st.booleans(),
                  st.sampled_from([0, 1, None, 'true', 'False', []]))
SAFE_GROUPBY = st.builds(
    lambda keys, time, at: keys[:at] + time + keys[at:],
    st.lists(st.one_of(st.sampled_from(KNOWN_KEYS),
                       SAFE_TEXT.filter(lambda k: k and not k.startswith(
                           'time-') and k not in query_mod.RESULT_KEYS)),
             max_size=3, unique=True),
    st.one_of(st.just([]), st.sampled_from(query_mod.TIME_GROUPBYS).map(
        lambda t: [t])),
    st.integers(0, 3)).map(lambda entries: list(dict.fromkeys(entries)))
#: groupby: lists and tuples of entries (unknown time-*, reserved, repeated,
#: empty, junk), or junk.
WILD_GROUPBY = st.one_of(
    st.lists(st.one_of(st.sampled_from(KNOWN_KEYS + query_mod.TIME_GROUPBYS
                                       + ('time-', 'time-x', 'time-D',
                                          'time-d ', 'begin', 'end', 'qty',
                                          'rate', '')),
                       TEXT, HASHABLE_JUNK), max_size=4),
    st.lists(st.sampled_from(KNOWN_KEYS), max_size=3).map(tuple),
    TEXT, JUNK)
GROUPBY = mostly(st.one_of(st.none(), SAFE_GROUPBY), WILD_GROUPBY)
_SPACE = st.sampled_from(['', ' ', '  ', '\t', '\n', '\u00a0', '\u2003'])
_ALIAS = st.from_regex(r'\A[A-Za-z_][A-Za-z0-9_]{0,8}\Z')


@st.composite
def custom_field(draw, wild):
    """One ``FUNC(field) AS alias`` item, in the grammar or near it."""
    funcs = ['sum', 'SUM', 'Sum', 'min', 'max', 'avg', 'count', 'COUNT']
    fields = ['qty', 'price']
    aliases = _ALIAS
    keywords = ['AS', 'as', 'As']
    if wild:
        funcs += ['median', 'sqrt', 'sum(sum', '', 'su m']
        fields += ['rate', 'qty_hi', '*', 'QTY', 'qty) AS a, sum(price',
                   '(qty)', '']
        aliases = st.one_of(_ALIAS, st.sampled_from(
            ['begin', 'end', 'type', 'flavor', 'time', '1a', '"x"', 'x y',
             '', 'x;']))
        keywords += ['', '=', 'ASS']
    spaces = [draw(_SPACE) for _ in range(3)]
    return '%s%s(%s)%s%s %s%s' % (
        spaces[0], draw(st.sampled_from(funcs)),
        draw(st.sampled_from(fields)), spaces[1] or ' ',
        draw(st.sampled_from(keywords)), draw(aliases), spaces[2])


#: custom_fields: grammatical lists, near misses, injections, junk.
CUSTOM_FIELDS = mostly(
    st.one_of(st.none(), st.lists(custom_field(False), min_size=1,
                                  max_size=3).map(','.join)),
    st.one_of(
        st.lists(custom_field(True), min_size=1, max_size=3).map(','.join),
        st.sampled_from([
            'sum(qty) AS x; DROP TABLE ck_point', 'sum(qty) AS x -- ',
            'sum(qty) AS "x"', "sum(qty) AS x' OR '1'='1", 'sum(qty)/0 AS x',
            'sum(qty) AS x, sum(qty) AS x', 'sum(qty)AS x',
            'sum((qty)) AS x', 'sum(qty) AS x,', ',', '', ' ',
            'count(*) AS n', 'sum(qty) AS x, (SELECT 1) AS y',
            'sum(price) AS qty, sum(qty) AS rate', 'sum(qty) AS ck_point',
            'min(qty) AS lo, max(price) AS hi, avg(qty) AS a, '
            'count(price) AS n']),
        TEXT, JUNK))


def _forge_point(unit, qty, price, groupby, metadata, description):
    """A DataPoint built around its own validation (tuple.__new__).

    DataPoint refuses NaN and Infinity, so push's own check of them (its
    docstring promises InvalidQuery) can only be reached by a point that
    skipped the constructor, as a corrupted or foreign object would. Every
    other invariant of DataPoint is kept: the storage may rely on them.
    """
    return tuple.__new__(dataframe.DataPoint, (
        unit or 'undefined', qty, price,
        datastructures.ImmutableDict(groupby),
        datastructures.ImmutableDict(metadata), description))


def _str_items(mapping):
    if not isinstance(mapping, collections.abc.Mapping):
        return {}
    return {k: v for k, v in mapping.items()
            if isinstance(k, str) and isinstance(v, str)}


LABELS = mostly(
    st.one_of(st.none(), st.dictionaries(KEY, VALUE, max_size=4)),
    st.one_of(st.dictionaries(st.one_of(KEY, HASHABLE_JUNK),
                              st.one_of(VALUE, JUNK), max_size=2), JUNK),
    9)


@st.composite
def points(draw):
    """A DataPoint from arbitrary fields.

    Fields DataPoint refuses (with the TypeError or ValueError its contract
    names) give either a forged point carrying the refused Decimal (see
    :func:`_forge_point`) or a plain valid point.
    """
    unit = draw(mostly(st.one_of(st.sampled_from(['unit', 'GiB', '']),
                                 SAFE_TEXT), st.one_of(WILD_TEXT, JUNK), 9))
    qty, price = draw(MONEY), draw(MONEY)
    groupby, metadata = draw(LABELS), draw(LABELS)
    description = draw(mostly(st.one_of(st.none(), SAFE_TEXT),
                              st.one_of(WILD_TEXT, JUNK), 9))
    try:
        return dataframe.DataPoint(unit, qty, price, groupby, metadata,
                                   description)
    except (TypeError, ValueError):
        pass
    if draw(st.booleans()):
        return _forge_point(
            unit if isinstance(unit, str) else 'unit',
            qty if isinstance(qty, D) else D(1),
            price if isinstance(price, D) else D(1),
            _str_items(groupby), _str_items(metadata),
            description if isinstance(description, str) else None)
    return dataframe.DataPoint('unit', 1, 1, {'project_id': 'fuzz'}, {})


@st.composite
def frames(draw):
    """A DataFrame of any period (extremes included) and arbitrary points.

    Arguments DataFrame refuses (TypeError or ValueError, as documented)
    are replaced by valid ones.
    """
    start = draw(mostly(st.builds(_as, SAFE_DATETIME, st.sampled_from(
        ['naive', 'utc', 'offset']), OFFSETS),
        st.datetimes(timezones=OFFSETS)))
    period = draw(st.one_of(st.just(HOUR), st.just(DAY), st.timedeltas(
        min_value=datetime.timedelta(microseconds=1),
        max_value=datetime.timedelta(days=40))))
    try:
        end = start + period
    except OverflowError:
        end = datetime.datetime.max.replace(tzinfo=start.tzinfo)
    try:
        frame = dataframe.DataFrame(start, end)
    except (TypeError, ValueError):
        frame = dataframe.DataFrame(T0, T0 + HOUR)
    types_ = mostly(SAFE_TYPE, st.one_of(WILD_TEXT, JUNK), 9)
    for type_, point in draw(st.lists(st.tuples(types_, points()),
                                      max_size=4)):
        try:
            frame.add_point(point, type_)
        except (TypeError, ValueError):
            pass
    return frame


@dataclasses.dataclass(frozen=True)
class Frames:
    """The ``dataframes`` argument of a push, built afresh for each call.

    :ivar container: list, tuple or iter to wrap ``items`` in; None to pass
        ``items[0]`` itself.
    :ivar items: what the container holds.
    """

    container: object
    items: tuple

    def build(self):
        """Return a new argument (an iterator is good for one call)."""
        if self.container is None:
            return self.items[0]
        return self.container(self.items)

    def __repr__(self):
        # NOTE: DataFrame's repr only counts points; a failing example
        # must show them.
        items = [(item.start, item.end, list(item.iterpoints()))
                 if isinstance(item, dataframe.DataFrame) else item
                 for item in self.items]
        return 'Frames(%s, %r)' % (getattr(self.container, '__name__',
                                           None), items)


DATAFRAMES = mostly(
    st.builds(Frames, st.sampled_from([list, list, tuple, iter]),
              st.lists(frames(), max_size=3).map(tuple)),
    st.one_of(
        st.builds(Frames, st.sampled_from([list, tuple, iter]), st.lists(
            st.one_of(frames(), JUNK, points(), frames().map(
                lambda f: f.as_dict(mutable=True))),
            min_size=1, max_size=4).map(tuple)),
        st.builds(Frames, st.none(), st.tuples(st.one_of(
            frames(), TEXT, st.binary(max_size=4), JUNK, st.just({}),
            st.just(frozenset()), st.just(range(2)))))))
SCOPE_ID = mostly(st.one_of(st.none(), st.sampled_from(['fuzz', 'other']),
                            SAFE_TEXT),
                  st.one_of(WILD_TEXT, JUNK))


def _call(method, *parts):
    """A ``(method, kwargs)`` strategy merging dict strategies."""
    def merge(dicts):
        kwargs = {}
        for part in dicts:
            kwargs.update(part)
        return method, kwargs
    return st.tuples(*parts).map(merge)


PUSH = _call('push', st.fixed_dictionaries(
    {'dataframes': DATAFRAMES}, optional={'scope_id': SCOPE_ID}))
RETRIEVE = _call('retrieve', windows(), st.fixed_dictionaries({}, optional={
    'filters': FILTERS, 'metric_types': METRIC_TYPES, 'offset': OFFSET,
    'limit': LIMIT, 'paginate': PAGINATE}))
TOTAL = _call('total', windows(), st.fixed_dictionaries({}, optional={
    'groupby': GROUPBY, 'metric_types': METRIC_TYPES, 'filters': FILTERS,
    'custom_fields': CUSTOM_FIELDS, 'offset': OFFSET, 'limit': LIMIT,
    'paginate': PAGINATE}))
DELETE = _call('delete', windows(), st.fixed_dictionaries({}, optional={
    'filters': FILTERS}))


# The tests -----------------------------------------------------------------

def _count(frames):
    return sum(len(frame) for frame in frames)


def _points(frames):
    """A retrieve() answer as comparable, order-sensitive plain data."""
    return [(frame.start, frame.end, [
        (type_, point.unit, point.qty, point.price, dict(point.groupby),
         dict(point.metadata), point.description)
        for type_, point in frame.iterpoints()]) for frame in frames]


def _baseline():
    """Frames pushed before each example: filters have something to hit."""
    frames = builders.sample_frames('fuzz')
    frames += builders.labelled_frames(
        'fuzz', 'flavor', builders.TRICKY_VALUES[:12], start=T0 - DAY,
        metadata_key='az')
    frames.append(builders.make_frame(T0 + DAY, [
        ('cpu', builders.make_point('fuzz', qty, qty))
        for qty in builders.MONEY_EXTREMES]))
    return frames


def _push_at(start, qty=D(1)):
    """A push call of one frame ``[start, start + 1h)``, one cpu point."""
    frame = dataframe.DataFrame(start, start + HOUR)
    frame.add_point(dataframe.DataPoint('unit', qty, 1, {'project_id': 'x'},
                                        {}), 'cpu')
    return 'push', {'dataframes': Frames(list, (frame,))}


#: A finite qty past the default decimal context (a bug once).
PUSH_HUGE_EXPONENT = _push_at(T0, D('1E+1000000'))


@testtools.skipUnless(functional_env.is_functional_test(),
                      'Test is not a functional test')
class SQLiteFuzzTest(testtools.TestCase):
    """Arbitrary calls on a SQLite store, checked against the contract.

    Each test has a database file of its own; each example starts from the
    same baseline (everything deleted, :func:`_baseline` pushed), so that
    examples do not depend on each other and Hypothesis can shrink them.
    """

    def setUp(self):
        super().setUp()
        path = self.useFixture(fixtures.TempDir()).path
        # NOTE: database=None is not enough to keep Hypothesis out of the
        # tree: it still caches its unicode tables and the constants it
        # reads from our source in ./.hypothesis. Point it to the TempDir.
        home = hypothesis_configuration.storage_directory(
            intent_to_write=False).home_directory
        hypothesis_configuration.set_hypothesis_home_dir(path)
        self.addCleanup(hypothesis_configuration.set_hypothesis_home_dir,
                        home)
        self.store = storage.get_storage(
            conf=cfg.ConfigOpts(), backend='sqlalchemy',
            connection='sqlite:///' + os.path.join(path, 'fuzz.sqlite'))
        self.addCleanup(self.store.close)
        self.store.init()
        self.baseline = _baseline()
        self.model = []

    def _restore_baseline(self):
        self.store.delete()
        self.store.push(self.baseline, scope_id='fuzz')
        self.model = list(self.baseline)

    def _fingerprint(self):
        """Everything a call could change, read through every path."""
        everything = self.store.retrieve(begin=FIRST, end=LAST,
                                         paginate=False)
        total = self.store.total(begin=FIRST, end=LAST)
        with self.store.engine.connect() as conn:
            rows = {table.name: conn.scalar(
                sa.select(sa.func.count()).select_from(table))
                for table in TABLES}
            daily = conn.scalar(sa.select(sa.func.sum(models.daily.c.n)))
            rolled = conn.scalar(sa.select(sa.func.count()).where(
                models.point.c.begin < rollup.until(conn)))
            frames = conn.scalar(sa.select(sa.func.sum(models.frame.c.n)))
        return {'count': everything['total'],
                'points': _points(everything['dataframes']),
                'total': total['results'], 'rows': rows,
                'daily_n': int(daily or 0), 'rolled_n': rolled,
                'frame_n': int(frames or 0)}

    def _assert_matches_model(self, fingerprint):
        """The store holds exactly the frames of ``self.model``."""
        expected = query_mod.evaluate_retrieve(
            query_mod.validate_retrieve(FIRST, LAST, paginate=False),
            self.model)
        count = _count(self.model)
        self.assertEqual(count, fingerprint['count'])
        self.assertEqual(count, fingerprint['rows']['ck_point'])
        # NOTE: the daily rollup always sums exactly the points of the
        # days before until.
        self.assertEqual(fingerprint['rolled_n'], fingerprint['daily_n'])
        # NOTE: and so do the frame counts.
        self.assertEqual(count, fingerprint['frame_n'])
        self.assertEqual(_points(expected['dataframes']),
                         fingerprint['points'])
        self.assertEqual(query_mod.evaluate_total(
            query_mod.validate_total(begin=FIRST, end=LAST),
            self.model)['results'], fingerprint['total'])

    def _fuzz(self, method, kwargs):
        """Call ``method`` and check the answer or the error and the store.

        :returns: whether the call was accepted.
        """
        before = self._fingerprint()
        args = dict(kwargs)
        if method == 'push':
            args['dataframes'] = kwargs['dataframes'].build()
        validate = getattr(self, '_validate_' + method)
        expected_query = validate(kwargs)
        try:
            result = getattr(self.store, method)(**args)
        except exceptions.InvalidQuery:
            hypothesis.event('%s: InvalidQuery' % method)
            self.assertEqual(before, self._fingerprint(),
                             'a rejected %s changed the store' % method)
            return False
        hypothesis.event('%s: accepted' % method)
        getattr(self, '_check_' + method)(
            kwargs, result, before, expected_query, validate(kwargs))
        return True

    # The queries a call means (None when it is no valid query) ------------

    @staticmethod
    def _validate_push(kwargs):
        try:
            return query_mod.validate_dataframes(
                kwargs['dataframes'].build())
        except Exception:
            return None

    @staticmethod
    def _validate_retrieve(kwargs):
        try:
            return query_mod.validate_retrieve(**kwargs)
        except Exception:
            return None

    @staticmethod
    def _validate_total(kwargs):
        try:
            return query_mod.validate_total(**kwargs)
        except Exception:
            return None

    @staticmethod
    def _validate_delete(kwargs):
        try:
            return query_mod.validate_delete(**kwargs)
        except Exception:
            return None

    # The checks of accepted calls ------------------------------------------

    def _check_push(self, kwargs, result, before, frames, again):
        self.assertIsNotNone(frames, 'push accepted an invalid argument')
        self.assertIsNone(result)
        after = self._fingerprint()
        # NOTE: every point is kept and counted, duplicates included.
        self.assertEqual(before['count'] + _count(frames), after['count'])
        self.assertEqual(before['rows']['ck_point'] + _count(frames),
                         after['rows']['ck_point'])
        for table in ('ck_series', 'ck_label'):
            self.assertGreaterEqual(after['rows'][table],
                                    before['rows'][table])
        # NOTE: the store keeps the money rounded to 12 fractional digits.
        self.model.extend(builders.as_stored(frames))
        self._assert_matches_model(after)

    def _check_retrieve(self, kwargs, result, before, query, again):
        self.assertIsNotNone(query, 'retrieve accepted invalid arguments')
        self.assertEqual({'total', 'dataframes'}, set(result))
        self.assertIsInstance(result['total'], int)
        self.assertIsInstance(result['dataframes'], list)
        for frame in result['dataframes']:
            self.assertIsInstance(frame, dataframe.DataFrame)
            self.assertEqual(UTC, frame.start.tzinfo)
            self.assertEqual(UTC, frame.end.tzinfo)
            for _, point in frame.iterpoints():
                self.assertIsInstance(point.qty, D)
                self.assertIsInstance(point.price, D)
        starts = [(f.start, f.end) for f in result['dataframes']]
        self.assertEqual(sorted(set(starts)), starts)
        # NOTE: a default bound is the current month: compare with the
        # oracle unless the month turned during the call.
        if query == again:
            expected = query_mod.evaluate_retrieve(query, self.model)
            self.assertEqual(expected['total'], result['total'])
            self.assertEqual(_points(expected['dataframes']),
                             _points(result['dataframes']))
        self.assertEqual(before, self._fingerprint(),
                         'retrieve changed the store')

    def _check_total(self, kwargs, result, before, query, again):
        self.assertIsNotNone(query, 'total accepted invalid arguments')
        self.assertEqual({'total', 'results'}, set(result))
        self.assertIsInstance(result['total'], int)
        self.assertIsInstance(result['results'], list)
        keys = {'begin', 'end'} | {f.alias for f in query.fields}
        keys |= set(query_mod.result_keys(query.groupby))
        for row in result['results']:
            self.assertEqual(keys, set(row))
            self.assertEqual(UTC, row['begin'].tzinfo)
            self.assertEqual(UTC, row['end'].tzinfo)
            self.assertLess(row['begin'], row['end'])
            for field in query.fields:
                self.assertIsInstance(row[field.alias], D)
            for key in query.key_groupby:
                self.assertIsInstance(row[key], str)
        if query == again:
            self.assertEqual(query_mod.evaluate_total(query, self.model),
                             result)
        self.assertEqual(before, self._fingerprint(),
                         'total changed the store')

    def _check_delete(self, kwargs, result, before, query, again):
        self.assertIsNotNone(query, 'delete accepted invalid arguments')
        removed, self.model = query_mod.evaluate_delete(query, self.model)
        if result is not None:
            self.assertEqual(removed, result)
        after = self._fingerprint()
        self.assertEqual(before['count'] - removed, after['count'])
        # NOTE: series and labels are never deleted.
        for table in ('ck_series', 'ck_label'):
            self.assertEqual(before['rows'][table], after['rows'][table])
        self._assert_matches_model(after)

    # The tests -------------------------------------------------------------

    @_settings(200)
    @hypothesis.given(PUSH)
    @hypothesis.example(PUSH_HUGE_EXPONENT)
    def test_push(self, call):
        """push() stores exactly its points, or refuses and writes nothing."""
        self._restore_baseline()
        self._fuzz(*call)

    @_settings(250)
    @hypothesis.given(RETRIEVE)
    @hypothesis.example(('retrieve', {'begin': FIRST, 'end': LAST,
                                      'offset': INT64_MAX + 1}))
    @hypothesis.example(('retrieve', {'begin': FIRST, 'end': LAST,
                                      'limit': INT64_MAX + 1}))
    @hypothesis.example(('retrieve', {'begin': '0001-01-01T00:00:00+01:00',
                                      'end': LAST}))
    @hypothesis.example(('retrieve', {'begin': FIRST, 'end': LAST,
                                      'filters': {'flavor': '\ud800'}}))
    @hypothesis.example(('retrieve', {'begin': FIRST, 'end': LAST,
                                      'metric_types': ['cpu', '\udfff']}))
    @hypothesis.example(('retrieve', {
        'begin': datetime.datetime(9999, 12, 31, 1), 'end': LAST}))
    def test_retrieve(self, call):
        """retrieve() answers as the oracle does, or raises InvalidQuery."""
        self._restore_baseline()
        self._fuzz(*call)

    @_settings(250)
    @hypothesis.given(TOTAL)
    @hypothesis.example(('total', {'begin': FIRST, 'end': LAST,
                                   'offset': INT64_MAX + 1}))
    @hypothesis.example(('total', {'begin': FIRST, 'end': datetime.datetime(
        9999, 12, 31, 23, tzinfo=datetime.timezone(-HOUR))}))
    @hypothesis.example(('total', {'begin': FIRST, 'end': LAST,
                                   'groupby': ['\ud800']}))
    @hypothesis.example(('total', {'begin': FIRST, 'end': LAST,
                                   'filters': {'\udfff': 'x'}}))
    @hypothesis.example(('total', {
        'begin': datetime.datetime(9999, 12, 31, 1), 'end': LAST}))
    def test_total(self, call):
        """total() answers as the oracle does, or raises InvalidQuery."""
        self._restore_baseline()
        self._fuzz(*call)

    @_settings(200)
    @hypothesis.given(DELETE)
    @hypothesis.example(('delete', {'begin': '0001-01-01T00:00:00+01:00'}))
    @hypothesis.example(('delete', {'filters': {'type': ['cpu', '\ud800']}}))
    @hypothesis.example(('delete', {
        'begin': datetime.datetime(9999, 12, 31, 1), 'end': LAST}))
    def test_delete(self, call):
        """delete() removes exactly its points, or refuses and keeps all."""
        self._restore_baseline()
        self._fuzz(*call)

    @_settings(60)
    @hypothesis.given(st.lists(st.one_of(PUSH, RETRIEVE, TOTAL, DELETE),
                               min_size=2, max_size=6))
    @hypothesis.example([_push_at(datetime.datetime(9999, 12, 31, 22))] + [
        ('total', {'begin': FIRST, 'end': LAST, 'groupby': [entry]})
        for entry in query_mod.TIME_GROUPBYS])
    @hypothesis.example([_push_at(datetime.datetime(9999, 1, 1)),
                         ('total', {'begin': FIRST, 'end': LAST,
                                    'groupby': ['time-y', 'type']}),
                         ('delete', {'begin': datetime.datetime(9999, 1, 1)}),
                         ('total', {'begin': FIRST, 'end': LAST,
                                    'groupby': ['time-y', 'type']})])
    def test_sequence(self, calls):
        """Any sequence of calls keeps the store equal to the model."""
        self._restore_baseline()
        for call in calls:
            self._fuzz(*call)
        self._assert_matches_model(self._fingerprint())
