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
"""Test data for the storage conformance suite.

Every builder returns a fresh list of :class:`~cloudkitty.dataframe.
DataFrame` whose sums are known exactly; its docstring draws the data.
Every point carries the caller's ``project_id`` in its groupby, so a test
reads back only its own data even when other workers share the server.

Money is written as :class:`~decimal.Decimal` literals or built from
integers; nothing here goes through a float (but the floats of
:data:`MONEY_NOT_FINITE`).
"""

import datetime
import decimal

from cloudkitty import dataframe
from cloudkitty.storage.v2 import money

UTC = datetime.timezone.utc
HOUR = datetime.timedelta(hours=1)
D = decimal.Decimal

#: A Wednesday; the fixed-window scenarios start here.
T0 = datetime.datetime(2021, 3, 10, tzinfo=UTC)
#: A window holding every point the suite pushes.
EVER = (datetime.datetime(2000, 1, 1, tzinfo=UTC),
        datetime.datetime(2100, 1, 1, tzinfo=UTC))

#: The largest and smallest magnitudes every backend keeps exactly (see
#: money.py and ``Features.max_magnitude``, at least ``10**15``).
MONEY_MAX = D('999999999999999.999999999999')
MONEY_TINY = D('0.000000000001')
#: The largest magnitude of a backend whose ``max_magnitude`` is 10**20.
MONEY_HUGE = D('99999999999999999999.999999999999')
#: Values inside the exact range that a careless backend would damage.
MONEY_EXTREMES = (MONEY_MAX, -MONEY_MAX, MONEY_TINY, -MONEY_TINY, D(0),
                  D('123456789012345.678901234567'), D('-0.5'),
                  D('1.10'), D('1E+14'), D('0.100000000001'))
#: ``(pushed, stored)``: values with more than 12 fractional digits are
#: stored rounded to 12, half to even (ties both ways, both signs).
MONEY_ROUNDED = (
    (D('0.30000000000000004'), D('0.3')),
    # NOTE: Decimal(0.152), the binary expansion of the float.
    (D('0.1519999999999999962252417162744677625596523284912109375'),
     D('0.152')),
    (D('0.0000000000005'), D(0)),
    (D('0.0000000000015'), D('0.000000000002')),
    (D('0.0000000000025'), D('0.000000000002')),
    (D('-0.0000000000025'), D('-0.000000000002')),
    (D('-0.0000000000035'), D('-0.000000000004')),
    (D('2.50000000000050000'), D('2.5')),
    (D('2.50000000000150000'), D('2.500000000002')),
    (D('-7.12345678901250000'), D('-7.123456789012')),
    (D('-7.12345678901350000'), D('-7.123456789014')),
    (D('1.00000000000049999999'), D(1)),
    (D('0.99999999999950000001'), D(1)),
    (D('1.' + '0' * 82 + '1'), D(1)),
    (D('-1E-13'), D(0)),
    (D('1E-1000000'), D(0)),
)
#: Finite values beyond every backend's range (10**20, once rounded):
#: push must reject them.
MONEY_OUT_OF_RANGE = (D(10) ** 20, -(D(10) ** 20), D('1E+25'),
                      MONEY_HUGE + D('5E-13'), D('1E+1000000'))
#: NaN and the infinities, as Decimals and floats: push rejects them.
MONEY_NOT_FINITE = (D('NaN'), D('-NaN'), D('sNaN'), D('Infinity'),
                    D('-Infinity'), float('nan'), float('inf'),
                    float('-inf'))


def money_out_of_range(bound):
    """Finite values that a backend whose max_magnitude is ``bound`` refuses.

    The bound itself, and the largest value below it that rounds up to it.
    """
    bound = D(bound)
    below = bound - D('5E-13')
    return (bound, -bound, below, -below) + tuple(
        value for value in MONEY_OUT_OF_RANGE if value.copy_abs() > bound)


def forge(point, **fields):
    """Return ``point`` with ``fields`` replaced, unchecked.

    As a point whose price was set after it was built (upstream's
    ``set_price()`` does no conversion): a float, a Decimal of any
    precision, or a NaN that the DataPoint constructor would refuse.
    """
    return tuple.__new__(type(point), tuple(
        fields.get(name, value) for name, value in zip(point._fields,
                                                       point)))


def as_stored(frames):
    """Return ``frames`` with their money as a backend stores it.

    Each qty and price is rounded as :func:`cloudkitty.storage.v2.money.
    check` does; everything else is kept.
    """
    stored = []
    for frame in frames:
        copy = dataframe.DataFrame(frame.start, frame.end)
        for type_, point in frame.iterpoints():
            copy.add_point(point._replace(
                qty=money.check(point.qty, 'qty'),
                price=money.check(point.price, 'price')), type_)
        stored.append(copy)
    return stored


#: Label values a backend must keep and compare as plain data: quotes,
#: backslashes, SQL and glob wildcards, control characters, unicode, empty,
#: and values that differ only by case or by spaces. ``abc`` is there so
#: that ``a%``, ``a_c``, ``a*`` or ``a?c`` used as a pattern would match it.
TRICKY_VALUES = (
    'abc', 'a%', 'a_c', 'a*', 'a?c', 'a.c', '%', '_', '*',
    "o'brien", "''", 'say "hi"', '\\', 'back\\slash', "\\'",
    'new\nline', 'tab\there', 'carriage\rreturn',
    '', ' ', 'space', 'space ', ' space',
    'case', 'Case', 'CASE',
    'caf\u00e9', 'cafe\u0301', '\u65e5\u672c\u8a9e', '\U0001f600 emoji',
    "x' OR '1'='1", 'semi;colon', '-- comment', '/* c */', '$v', '{}',
    'comma,eq=sign', 'null', 'NULL', 'None',
    # NOTE: upstream's InfluxDB storage pasted this into its delete().
    'nobody\' OR "project_id"<>\'',
)

#: Label keys a backend must accept as filter and groupby keys. None starts
#: with ``time`` or is a reserved name (``type``, ``begin``, ``end``,
#: ``qty``, ``rate``).
TRICKY_KEYS = (
    "o'key", 'dq"key', 'back\\key', 'sp ace', 'key ', 'Key', 'key',
    'cl\u00e9', '\u952e', '\U0001f511', 'a.b', 'a-b', 'a%b', 'a_b',
    'a*b', '$key', 'semi;colon', 'comma,eq=', 'new\nline', 'ty pe',
)

#: A ~1000 character value, with its twin that differs in the last one.
LONG_VALUES = tuple(('long \'"%_\\ \u00e9 ' * 100)[:999] + end
                    for end in 'ab')


def make_point(project_id, qty=1, price=1, unit='unit', groupby=None,
               metadata=None):
    """Return a DataPoint whose groupby holds ``project_id``.

    :param groupby: more groupby labels (``project_id`` may be overridden).
    :param metadata: the metadata labels.
    """
    labels = {'project_id': project_id}
    labels.update(groupby or {})
    return dataframe.DataPoint(unit, qty, price, labels, metadata or {})


def make_frame(start, points, period=HOUR):
    """Return a DataFrame ``[start, start + period)`` holding ``points``.

    :param points: an iterable of ``(metric_type, DataPoint)``, in order.
    """
    frame = dataframe.DataFrame(start, start + period)
    for type_, point in points:
        frame.add_point(point, type_)
    return frame


def sample_frames(project_id, start=T0):
    """Three hourly frames of cpu and image points, summed by hand.

    ::

        frame  period           type   flavor*   az     disk   qty  price
        f0     [S,    S+1h)     cpu    m1.small  nova   -        1   0.5
        f0     [S,    S+1h)     cpu    m1.large  nova   -        2   1.25
        f0     [S,    S+1h)     image  -         nova   qcow2   10   0.01
        f1     [S+1h, S+2h)     cpu    m1.small  other  -        1   0.5
        f1     [S+1h, S+2h)     image  -         -      raw     20   0.02
        f2     [S+2h, S+3h)     cpu    m1.large  nova   -        2   1.25

    ``*`` flavor is a groupby label; az and disk are metadata; ``-`` means
    the point lacks the key. cpu points are in ``instance``, image points
    in ``MiB``. All six: qty 36, price 3.53. cpu: 6, 3.5; image: 30, 0.03.
    By flavor: ``''`` 30, 0.03; m1.large 4, 2.5; m1.small 2, 1. By az:
    ``''`` 20, 0.02; nova 15, 3.01; other 1, 0.5. By frame: f0 13, 1.76;
    f1 21, 0.52; f2 2, 1.25.
    """
    def cpu(flavor, az, qty, price):
        return 'cpu', make_point(project_id, qty, D(price), 'instance',
                                 {'flavor': flavor}, {'az': az})

    def image(metadata, qty, price):
        return 'image', make_point(project_id, qty, D(price), 'MiB',
                                   metadata=metadata)

    return [
        make_frame(start, [
            cpu('m1.small', 'nova', 1, '0.5'),
            cpu('m1.large', 'nova', 2, '1.25'),
            image({'az': 'nova', 'disk': 'qcow2'}, 10, '0.01')]),
        make_frame(start + HOUR, [
            cpu('m1.small', 'other', 1, '0.5'),
            image({'disk': 'raw'}, 20, '0.02')]),
        make_frame(start + 2 * HOUR, [
            cpu('m1.large', 'nova', 2, '1.25')]),
    ]


def edge_frames(project_id, begin, end):
    """Frames on both edges of ``[begin, end)``, one cpu point each.

    ::

        edge             period                       qty   in [B, E)?
        before           [B-1h,  B)                     1   no
        straddle_begin   [B-30m, B+30m)                 2   no (starts before)
        at_begin         [B,     B+1h)                  4   yes
        straddle_end     [E-30m, E+30m)                 8   yes (starts inside)
        at_end           [E,     E+1h)                 16   no

    Each point's metadata ``edge`` holds the name in the first column and
    its price equals its qty. Inside the window: qty 12.
    """
    half = HOUR / 2
    edges = (('before', begin - HOUR, 1), ('straddle_begin', begin - half, 2),
             ('at_begin', begin, 4), ('straddle_end', end - half, 8),
             ('at_end', end, 16))
    return [make_frame(start, [('cpu', make_point(
        project_id, qty, qty, metadata={'edge': name}))])
        for name, start, qty in edges]


def month_frames(project_id, month_begin, month_end):
    """Frames just outside and inside one month, one cpu point each.

    ::

        edge          period                     qty  in the month?
        last_before   [M-1h,    M)                 1  no
        first         [M,       M+1h)              2  yes
        second_day    [M+1d,    M+1d+1h)           4  yes
        last_hour     [N-1h,    N)                 8  yes
        first_after   [N,       N+1h)             16  no

    ``M`` is ``month_begin``, ``N`` is ``month_end`` (the next month's
    start); the metadata ``edge`` holds the name, price equals qty. Inside
    the month: qty 14.
    """
    day = datetime.timedelta(days=1)
    edges = (('last_before', month_begin - HOUR, 1), ('first', month_begin, 2),
             ('second_day', month_begin + day, 4),
             ('last_hour', month_end - HOUR, 8),
             ('first_after', month_end, 16))
    return [make_frame(start, [('cpu', make_point(
        project_id, qty, qty, metadata={'edge': name}))])
        for name, start, qty in edges]


#: The starts of :func:`calendar_frames`, with their weekday.
CALENDAR_STARTS = (
    datetime.datetime(2020, 12, 31, 23, tzinfo=UTC),  # Thursday
    datetime.datetime(2021, 1, 1, 0, tzinfo=UTC),     # Friday
    datetime.datetime(2021, 1, 3, 12, tzinfo=UTC),    # Sunday
    datetime.datetime(2021, 1, 4, 0, tzinfo=UTC),     # Monday
    datetime.datetime(2021, 2, 28, 23, tzinfo=UTC),   # Sunday
    datetime.datetime(2021, 3, 1, 0, tzinfo=UTC),     # Monday
)


def calendar_frames(project_id):
    """Six hourly frames around week, month and year boundaries.

    ::

        i  start (UTC)              weekday   qty  price  time-w bucket
        0  2020-12-31 23:00         Thu         1  0.25   2020-12-28
        1  2021-01-01 00:00         Fri         2  0.5    2020-12-28
        2  2021-01-03 12:00         Sun         4  1      2020-12-28
        3  2021-01-04 00:00         Mon         8  2      2021-01-04
        4  2021-02-28 23:00         Sun        16  4      2021-02-22
        5  2021-03-01 00:00         Mon        32  8      2021-03-01

    One cpu point per frame, qty ``2**i`` (so a sum tells which frames it
    holds) and price qty / 4. Frame 0 ends in 2021 but starts, so counts,
    in 2020. Months: 2020-12 1; 2021-01 14; 2021-02 16; 2021-03 32. Years:
    2020 1; 2021 62.
    """
    return [make_frame(start, [('cpu', make_point(
        project_id, 2 ** i, D(2 ** i) / 4))])
        for i, start in enumerate(CALENDAR_STARTS)]


def labelled_frames(project_id, key, values, start=T0, metadata_key=None):
    """One frame with one cpu point per value of ``key``.

    ::

        point i:  groupby {project_id, key: values[i]}
                  metadata {metadata_key: values[i]} (when given)
                  qty i + 1, price (i + 1) / 100

    ``values`` must be distinct, so each point is told apart by its value.
    """
    points = []
    for i, value in enumerate(values):
        metadata = {metadata_key: value} if metadata_key else None
        points.append(('cpu', make_point(
            project_id, i + 1, D(i + 1) / 100, groupby={key: value},
            metadata=metadata)))
    return [make_frame(start, points)]


def keyed_frames(project_id, keys, start=T0):
    """One frame with one cpu point per label key.

    ::

        point i:  groupby {project_id, keys[i]: 'g<i>'}   qty i + 1

    Every other point lacks ``keys[i]``. Price equals qty.
    """
    return [make_frame(start, [('cpu', make_point(
        project_id, i + 1, i + 1, groupby={key: 'g%d' % i}))
        for i, key in enumerate(keys)])]


def sorting_frames(project_id, start=T0):
    """Two hourly frames whose flavors sort differently by case.

    ::

        frame      type   flavor    qty      frame      type   flavor  qty
        [S, S+1h)  cpu    b           1      [S+1h,..)  cpu    a        32
        [S, S+1h)  image  b           2      [S+1h,..)  cpu    -        64
        [S, S+1h)  cpu    a           4      [S+1h,..)  image  B       128
        [S, S+1h)  cpu    B           8
        [S, S+1h)  image  ''         16

    flavor is a groupby label (``-``: lacking); price equals qty. In code
    point order ``'' < 'B' < 'a' < 'b'``.
    """
    def point(type_, flavor, qty):
        groupby = {} if flavor is None else {'flavor': flavor}
        return type_, make_point(project_id, qty, qty, groupby=groupby)

    return [
        make_frame(start, [point('cpu', 'b', 1), point('image', 'b', 2),
                           point('cpu', 'a', 4), point('cpu', 'B', 8),
                           point('image', '', 16)]),
        make_frame(start + HOUR, [point('cpu', 'a', 32),
                                  point('cpu', None, 64),
                                  point('image', 'B', 128)]),
    ]


def distinct_frames(project_id, start=T0, periods=4, per_type=3,
                    types=('cpu', 'image', 'net')):
    """Hourly frames of points that all differ, for paging.

    ::

        frame p in range(periods), [S+p h, S+p+1 h):
            for each type t, per_type points n = 0, 1, ...:
                metadata {'n': '<p>-<t>-<n>'}, qty 1, price 1

    Frames come newest first so the order of the push is not the order of
    the result. ``periods * len(types) * per_type`` points.
    """
    frames = []
    for p in reversed(range(periods)):
        frames.append(make_frame(start + p * HOUR, [
            (type_, make_point(project_id, metadata={
                'n': '%d-%s-%d' % (p, type_, n)}))
            for type_ in reversed(types) for n in range(per_type)]))
    return frames


def money_frames(project_id, start=T0, count=200, value=MONEY_MAX):
    """Four frames whose sums need more than 28 significant digits.

    ::

        points                         qty            price
        ``count`` x                    value          -value
        ``count + 1`` x                MONEY_TINY     MONEY_TINY

    spread round-robin over four hourly frames from ``start``. With the
    default count and value (MONEY_MAX): qty sum
    200000000000000000.000000000001 (30 digits), price sum
    -199999999999999999.999999999599. From count 9224 on, the sums of the
    integer parts no longer fit a signed 64-bit integer (from count 93 on
    with MONEY_HUGE).
    """
    points = ([('cpu', make_point(project_id, value, value.copy_negate()))]
              * count
              + [('cpu', make_point(project_id, MONEY_TINY, MONEY_TINY))]
              * (count + 1))
    return [make_frame(start + i * HOUR, points[i::4]) for i in range(4)]


#: The label pools of :func:`random_frames` (None: the point lacks it).
RANDOM_TYPES = ('cpu', 'image.size', 'net')
RANDOM_FLAVORS = (None, None, '', 'm1.small', 'm1.large', 'M1.small',
                  "o'brien", 'caf\u00e9 \U0001f600', 'a%', 'abc')
RANDOM_ZONES = (None, None, 'nova', 'Nova', 'nova ', '')
#: Values of the typed ``size`` label: several spelled or comparing alike.
RANDOM_SIZES = (1, 1.0, True, '1', None, 'None', 0.0, -0.0, 2, 2.5, False)


def random_frames(rng, project_ids, start=T0, exact=True, periods=12,
                  max_points=30):
    """A seeded random workload for the differential tests.

    ``periods`` frames start at random hours over five days from ``start``
    (so across a week boundary; from the default T0, Wed 2021-03-10, that
    is up to Mon 2021-03-15), most one hour long, some 30 minutes or two
    hours, some sharing a start. Each holds up to ``max_points`` points::

        type      cpu | image.size | net
        groupby   project_id (one of project_ids), flavor (often missing;
                  values include '', quotes, unicode, % and case twins)
        metadata  az (often missing), sometimes flavor (groupby wins)
        either    size (often missing): int, float, bool, None or str,
                  several alike (1, 1.0, True, '1'; 0.0, -0.0)
        qty/price exact: |x| < 10**6 with up to 12 fractional digits,
                  some negative, some at MONEY_MAX;
                  not exact: < 10**4 with 2 fractional digits

    Some points are repeated inside their frame, some frames are pushed
    twice, and the frames come in random order.

    :param rng: a :class:`random.Random`.
    :returns: the frames in push order (a frame pushed twice appears
        twice).
    """
    def money():
        if not exact:
            return D(rng.randrange(10 ** 6)).scaleb(-2)
        if rng.random() < 0.03:
            return MONEY_MAX * rng.choice((1, -1))
        value = D(rng.randrange(10 ** 18)).scaleb(-12)
        return -value if rng.random() < 0.2 else value

    def point():
        groupby = {'project_id': rng.choice(project_ids)}
        metadata = {}
        flavor = rng.choice(RANDOM_FLAVORS)
        if flavor is not None:
            groupby['flavor'] = flavor
        zone = rng.choice(RANDOM_ZONES)
        if zone is not None:
            metadata['az'] = zone
        if rng.random() < 0.2:
            metadata['flavor'] = rng.choice(RANDOM_FLAVORS[2:])
        if rng.random() < 0.5:
            role = groupby if rng.random() < 0.5 else metadata
            role['size'] = rng.choice(RANDOM_SIZES)
        return dataframe.DataPoint(rng.choice(('unit', 'GiB')), money(),
                                   money(), groupby, metadata)

    hours = sorted(rng.sample(range(5 * 24), periods - 2))
    hours += rng.sample(hours, 2)
    frames = []
    for hour in hours:
        length = rng.choice((HOUR, HOUR, HOUR, HOUR / 2, 2 * HOUR))
        points = []
        for _ in range(rng.randint(1, max_points)):
            entry = (rng.choice(RANDOM_TYPES), point())
            points.append(entry)
            if rng.random() < 0.1:
                points.append(entry)
        frames.append(make_frame(start + hour * HOUR, points, length))
    frames += rng.sample(frames, 2)
    rng.shuffle(frames)
    return frames
