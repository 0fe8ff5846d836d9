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
"""The rated data of ``bench`` and ``load``, and its exact sums.

Two shapes come out of one set of metric types (:data:`TYPES`) and one
bookkeeping of exact sums (integers of scaled units, never floats):

* :class:`Workload`, for ``bench``: a deterministic grid, described below;
* :func:`mixed_frame`, for ``load``: one push of random points whose
  amounts have 0 to 12 fractional digits (:func:`exact_amount`), over
  series that the caller names.

The workload is ``projects x 6 types x resources`` points per hourly period,
over ``periods`` consecutive periods starting at :data:`BENCH_START`. It is
pushed as one :class:`~cloudkitty.dataframe.DataFrame` per period (the
default, ``push_per='period'``, with no ``scope_id``) or per (period,
project) (``push_per='project'``, with ``scope_id`` set to the project, as
a rating service that rates each scope on its own would). Every quantity
and price is a random integer from a seeded generator, scaled by a power of
ten, so it is
an exact :class:`~decimal.Decimal` and the sums can be kept exactly as
integers::

    qty   = Decimal(randrange(1, 10**6)) * 10**-3     # 0.001 .. 999.999
    price = Decimal(randrange(0, 10**6)) * 10**-4     # 0.0000 .. 99.9999

The same ``seed`` always yields the same points, in the same order.

Example::

    work = Workload(projects=2, resources=3, periods=4)
    expected = Expected()
    for scope_id, frame in work.iter_frames(expected):
        store.push([frame], scope_id=scope_id)
    expected.groups(('type', 'project_id'))
    # {('image', 'bench-p0000'): (Decimal('...'), Decimal('...')), ...}
"""

import collections
import datetime
import decimal
import random

from cloudkitty import dataframe
from cloudkitty.storage.v2 import money

UTC = datetime.timezone.utc

#: Start of the first period of a :class:`Workload` built without one:
#: a fixed day, for tests and reproducible runs (``bench`` itself places
#: its workload before today, see :func:`recent_start`).
BENCH_START = datetime.datetime(2026, 1, 1, tzinfo=UTC)
#: Length of one period.
PERIOD = datetime.timedelta(hours=1)
#: One UTC day.
DAY = datetime.timedelta(days=1)
#: How a workload is cut into pushes: one per period, or per project too.
PUSH_PER = ('period', 'project')
#: Hourly periods in one UTC day: the fewest periods :func:`shape_for_size`
#: gives a workload of at least one day.
DAY_PERIODS = 24

#: Fractional digits of a generated qty.
QTY_DIGITS = 3
#: Fractional digits of a generated price.
PRICE_DIGITS = 4
#: Generated qty units are in ``[1, QTY_UNITS)``.
QTY_UNITS = 10 ** 6
#: Generated price units are in ``[0, PRICE_UNITS)``.
PRICE_UNITS = 10 ** 6

#: The metric types: ``(type, unit, metadata key, metadata values)``. The
#: metadata value of a resource is chosen by its index, not at random.
TYPES = (
    ('instance', 'instance', 'flavor_name',
     ('m1.tiny', 'm1.small', 'm1.medium', 'm1.large')),
    ('volume', 'GiB', 'volume_type', ('ceph', 'ssd')),
    ('image', 'GiB', 'disk_format', ('qcow2', 'raw')),
    ('network.bw.in', 'MB', 'interface', ('public', 'private')),
    ('network.bw.out', 'MB', 'interface', ('public', 'private')),
    ('ip.floating', 'ip', 'pool', ('public',)),
)

#: The groupby tuples :meth:`Expected.groups` knows the sums of.
KNOWN_GROUPBYS = ((), ('project_id',), ('type',), ('type', 'project_id'),
                  ('project_id', 'type'), ('id',), ('time',))


def _scaled(units, digits):
    """Return ``units * 10**-digits`` as an exact Decimal."""
    return decimal.Decimal(units).scaleb(-digits)


def recent_start(periods, period=PERIOD, now=None):
    """Return the start of a workload that ends by the start of today.

    The start is a UTC midnight, the latest one from which ``periods``
    periods end no later than the start of the current UTC day. So the
    workload lies in the past, as rated data does, and as close to now as
    whole days allow: a backend whose retention policy drops old points
    (InfluxDB's, set from ``[storage] retention_period``, 2400 hours by
    default) keeps it whenever the retention is longer than the workload
    plus one day.

    :param periods: the workload's number of periods.
    :type periods: int
    :param period: the length of a period.
    :type period: datetime.timedelta
    :param now: the current time (aware); defaults to the clock's.
    :type now: datetime.datetime
    :rtype: datetime.datetime
    """
    now = now or datetime.datetime.now(UTC)
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0,
                                        microsecond=0)
    # NOTE: ceil(): whole days back, so that the first period starts a day.
    days = -(-(periods * period) // DAY)
    return today - days * DAY


def shape_for_size(size, projects=100, resources=17):
    """Choose the shape of a workload of about ``size`` points.

    The base shape is ``projects x len(TYPES) x resources`` points per
    period. The number of periods grows with the size, as the data of one
    cloud grows over time, but never below :data:`DAY_PERIODS`, so that a
    one-day window always holds a whole day of points. Below one day of the
    base shape the projects shrink, then the resources, then (below one
    point per type and hour) the periods::

        size >= D*P*T*R:  P projects, R resources, round(size/(P*T*R))
        size >= D*T*R:    round(size/(D*T*R)) projects, R resources, D
        size >= D*T:      1 project, round(size/(D*T)) resources, D
        otherwise:        1 project, 1 resource, round(size/T) periods

    with ``D = DAY_PERIODS`` (24), ``T = len(TYPES)`` (6), ``P`` and ``R``
    the base projects and resources. Rounding makes the real number of
    points (``projects * T * resources * periods``) differ from ``size``
    by less than one step of the dimension that was scaled.

    :param size: the wanted number of points (>= 1).
    :type size: int
    :param projects: projects of the base shape.
    :type projects: int
    :param resources: resources per project and type of the base shape.
    :type resources: int
    :returns: ``(projects, resources, periods)``.
    :rtype: tuple of int
    :raises ValueError: when a size is below 1.
    """
    for name, value in (('size', size), ('projects', projects),
                        ('resources', resources)):
        if not isinstance(value, int) or value < 1:
            raise ValueError('%s must be an integer >= 1, got %r'
                             % (name, value))
    types = len(TYPES)
    project_day = DAY_PERIODS * types * resources
    if size >= projects * project_day:
        # NOTE: round() of a quotient >= DAY_PERIODS stays >= DAY_PERIODS.
        return (projects, resources,
                round(size / (projects * types * resources)))
    if size >= project_day:
        return round(size / project_day), resources, DAY_PERIODS
    if size >= DAY_PERIODS * types:
        return 1, round(size / (DAY_PERIODS * types)), DAY_PERIODS
    return 1, 1, max(1, round(size / types))


class Sums:
    """Exact running sums of a group, kept as scaled integers.

    :ivar count: number of points added.
    """

    __slots__ = ('count', '_qty', '_price')

    def __init__(self):
        self.count = 0
        self._qty = 0
        self._price = 0

    def add(self, qty_units, price_units):
        """Add one point, given as scaled integers."""
        self.count += 1
        self._qty += qty_units
        self._price += price_units

    def merge(self, other):
        """Add every point of another :class:`Sums`."""
        self.count += other.count
        self._qty += other._qty
        self._price += other._price

    def subtract(self, other):
        """Remove every point of another :class:`Sums` (after a delete)."""
        self.count -= other.count
        self._qty -= other._qty
        self._price -= other._price

    @property
    def qty(self):
        """The exact sum of qty.

        :rtype: decimal.Decimal
        """
        return _scaled(self._qty, QTY_DIGITS)

    @property
    def price(self):
        """The exact sum of price (``rate`` in total() results).

        :rtype: decimal.Decimal
        """
        return _scaled(self._price, PRICE_DIGITS)

    def __repr__(self):
        return 'Sums(count=%d, qty=%s, price=%s)' % (
            self.count, self.qty, self.price)


class Expected:
    """The exact sums of the points generated so far, by group.

    :ivar all: :class:`Sums` of every point.
    :ivar by_project: ``{project_id: Sums}``.
    :ivar by_type: ``{type: Sums}``.
    :ivar by_type_project: ``{(type, project_id): Sums}``.
    :ivar by_id: ``{resource id: Sums}``.
    :ivar by_period: ``{period start (aware UTC datetime): Sums}``.
    :ivar by_period_project: ``{(period start, project_id): Sums}``.
    """

    def __init__(self):
        self.all = Sums()
        self.by_project = collections.defaultdict(Sums)
        self.by_type = collections.defaultdict(Sums)
        self.by_type_project = collections.defaultdict(Sums)
        self.by_id = collections.defaultdict(Sums)
        self.by_period = collections.defaultdict(Sums)
        self.by_period_project = collections.defaultdict(Sums)

    @property
    def count(self):
        """The number of points generated so far.

        :rtype: int
        """
        return self.all.count

    def add(self, start, project_id, type_, resource_id, qty_units,
            price_units):
        """Account for one generated point.

        :param start: start of the point's period.
        :type start: datetime.datetime
        :param project_id: the point's ``project_id``.
        :param type_: the point's metric type.
        :param resource_id: the point's ``id``.
        :param qty_units: qty scaled by ``10**QTY_DIGITS``.
        :type qty_units: int
        :param price_units: price scaled by ``10**PRICE_DIGITS``.
        :type price_units: int
        """
        for sums in (self.all, self.by_project[project_id],
                     self.by_type[type_],
                     self.by_type_project[(type_, project_id)],
                     self.by_id[resource_id], self.by_period[start],
                     self.by_period_project[(start, project_id)]):
            sums.add(qty_units, price_units)

    def groups(self, groupby=()):
        """Return the expected total() groups for a groupby.

        :param groupby: one of :data:`KNOWN_GROUPBYS`.
        :type groupby: tuple of str
        :returns: ``{key tuple: (qty, rate)}`` where the key tuple holds one
            value per groupby entry, in order (``()`` for no groupby; the
            period start for ``time``), and qty and rate are Decimals.
            Groups without points are left out.
        :rtype: dict
        :raises ValueError: for another groupby.
        """
        groupby = tuple(groupby)
        if groupby == ():
            table = {(): self.all}
        elif groupby == ('project_id',):
            table = {(k,): v for k, v in self.by_project.items()}
        elif groupby == ('type',):
            table = {(k,): v for k, v in self.by_type.items()}
        elif groupby == ('type', 'project_id'):
            table = dict(self.by_type_project)
        elif groupby == ('project_id', 'type'):
            table = {(p, t): v for (t, p), v in self.by_type_project.items()}
        elif groupby == ('id',):
            table = {(k,): v for k, v in self.by_id.items()}
        elif groupby == ('time',):
            table = {(k,): v for k, v in self.by_period.items()}
        else:
            raise ValueError('no expected sums for groupby %r; known: %s'
                             % (groupby, ', '.join(
                                 repr(g) for g in KNOWN_GROUPBYS)))
        return {key: (sums.qty, sums.price)
                for key, sums in table.items() if sums.count}


class Workload:
    """``projects x len(TYPES) x resources`` points per period, seeded.

    :param projects: number of projects (scopes).
    :type projects: int
    :param resources: resources per project and type.
    :type resources: int
    :param periods: number of consecutive periods.
    :type periods: int
    :param seed: seed of the random generator.
    :type seed: int
    :param start: start of the first period (aware, UTC).
    :type start: datetime.datetime
    :param period: length of a period.
    :type period: datetime.timedelta
    :raises ValueError: when a size is below 1.
    """

    def __init__(self, projects=100, resources=17, periods=100, seed=0,
                 start=BENCH_START, period=PERIOD, push_per='period'):
        for name, value in (('projects', projects),
                            ('resources', resources),
                            ('periods', periods)):
            if not isinstance(value, int) or value < 1:
                raise ValueError('%s must be an integer >= 1, got %r'
                                 % (name, value))
        if push_per not in PUSH_PER:
            raise ValueError('push_per must be one of %s, got %r'
                             % (', '.join(PUSH_PER), push_per))
        self.push_per = push_per
        self.projects = projects
        self.resources = resources
        self.periods = periods
        self.seed = seed
        self.start = dataframe.to_utc(start, 'start')
        self.period = period
        self.project_ids = ['bench-p%04d' % i for i in range(projects)]

    @property
    def points_per_period(self):
        """Points in one period, over every project.

        :rtype: int
        """
        return self.projects * len(TYPES) * self.resources

    @property
    def points(self):
        """Points of the whole workload.

        :rtype: int
        """
        return self.points_per_period * self.periods

    @property
    def pushes(self):
        """Number of push() calls: one per period or per (period, project).

        :rtype: int
        """
        if self.push_per == 'period':
            return self.periods
        return self.periods * self.projects

    @property
    def begin(self):
        """Start of the workload's window (inclusive)."""
        return self.start

    @property
    def end(self):
        """End of the workload's window (exclusive)."""
        return self.start + self.periods * self.period

    def period_window(self, index):
        """Return ``(start, end)`` of period ``index`` (from 0).

        :rtype: tuple of datetime.datetime
        """
        start = self.start + index * self.period
        return start, start + self.period

    def resource_id(self, project_index, type_index, resource_index):
        """Return the ``id`` of a resource; unique over the workload.

        :rtype: str
        """
        return '%s-%s-r%03d' % (self.project_ids[project_index],
                                TYPES[type_index][0], resource_index)

    def iter_raw(self):
        """Yield every point as plain integers, in push order.

        :returns: an iterator of ``(period_index, project_index,
            type_index, resource_index, qty_units, price_units)``.
        """
        rng = random.Random(self.seed)
        randrange = rng.randrange
        for period_index in range(self.periods):
            for project_index in range(self.projects):
                for type_index in range(len(TYPES)):
                    for resource_index in range(self.resources):
                        yield (period_index, project_index, type_index,
                               resource_index, randrange(1, QTY_UNITS),
                               randrange(0, PRICE_UNITS))

    def _labels(self, project_index):
        """Return a project's ``[(type, unit, [(id, groupby, metadata)])]``."""
        project_id = self.project_ids[project_index]
        labels = []
        for type_index, (type_, unit, key, values) in enumerate(TYPES):
            resources = []
            for resource_index in range(self.resources):
                rid = self.resource_id(project_index, type_index,
                                       resource_index)
                resources.append((
                    rid, {'project_id': project_id, 'id': rid},
                    {key: values[resource_index % len(values)]}))
            labels.append((type_, unit, resources))
        return labels

    def iter_frames(self, expected=None):
        """Yield one ``(scope_id, DataFrame)`` per push.

        With ``push_per='period'`` a frame holds every project of a period
        and ``scope_id`` is None; with ``'project'`` a frame holds one
        project of a period and ``scope_id`` is that project.

        :param expected: when given, every generated point is added to it
            with :meth:`Expected.add`, so one pass both builds the frames
            and learns their sums.
        :type expected: Expected
        :returns: an iterator, in push order (period, then project).
        """
        labels = [self._labels(p) for p in range(self.projects)]
        raw = self.iter_raw()
        for period_index in range(self.periods):
            start, end = self.period_window(period_index)
            frame = None
            for project_index, project_id in enumerate(self.project_ids):
                if frame is None or self.push_per == 'project':
                    frame = dataframe.DataFrame(start, end)
                for type_, unit, resources in labels[project_index]:
                    points = []
                    for rid, groupby, metadata in resources:
                        qty_units, price_units = next(raw)[4:]
                        points.append(dataframe.DataPoint(
                            unit, _scaled(qty_units, QTY_DIGITS),
                            _scaled(price_units, PRICE_DIGITS),
                            groupby, metadata))
                        if expected is not None:
                            expected.add(start, project_id, type_, rid,
                                         qty_units, price_units)
                    frame.add_points(points, type_)
                if self.push_per == 'project':
                    yield project_id, frame
            if self.push_per == 'period':
                yield None, frame

    def expected(self):
        """Return the :class:`Expected` sums of the whole workload.

        It replays the random stream without building any point.

        :rtype: Expected
        """
        result = Expected()
        starts = [self.period_window(i)[0] for i in range(self.periods)]
        for (period_index, project_index, type_index, resource_index,
             qty_units, price_units) in self.iter_raw():
            result.add(starts[period_index], self.project_ids[project_index],
                       TYPES[type_index][0],
                       self.resource_id(project_index, type_index,
                                        resource_index),
                       qty_units, price_units)
        return result


# Mixed pushes (the load command) -------------------------------------------

#: The metric types of :func:`mixed_frame`: ``(type, unit, ...)``.
MIXED_TYPES = TYPES[:2]


def exact_amount(rng, whole_digits, negative=False):
    """Return a random exact amount as ``(Decimal, units of 10**-12)``.

    The amount has 0 to 12 fractional digits and fewer than
    ``whole_digits`` integer digits; with ``negative`` about one in eleven
    is below zero (a credit).

    :param rng: a :class:`random.Random`.
    :rtype: tuple
    """
    digits = rng.randrange(money.FRACTION_DIGITS + 1)
    bound = 10 ** (whole_digits + digits)
    low = -bound // 10 if negative else 1
    mantissa = rng.randrange(low, bound)
    # NOTE: money.CONTEXT traps Inexact: the value is exact or an error.
    value = decimal.Decimal(mantissa).scaleb(-digits, context=money.CONTEXT)
    return value, mantissa * 10 ** (money.FRACTION_DIGITS - digits)


def mixed_frame(rng, start, end, project_id, resource_id, size,
                shuffle=False):
    """Build one push of random exact points, and its exact sums.

    Point ``i`` is of type ``MIXED_TYPES[i % 2]``, with a qty of up to 3
    integer digits and a price of up to 4 that may be negative (see
    :func:`exact_amount`), and labels ``{'project_id': project_id, 'id':
    resource_id(type, i // 2)}``.

    :param rng: draws the amounts (and, with ``shuffle``, the order).
    :type rng: random.Random
    :param start: start of the frame.
    :param end: end of the frame.
    :param project_id: the ``project_id`` of every point.
    :param resource_id: ``(type, number) -> id``: names the series.
    :param size: the number of points.
    :param shuffle: put the types, and the points of each type, in an
        order drawn from ``rng``.
    :returns: ``(frame, (count, qty units, price units))``, units being
        ``10**-12``.
    """
    by_type = {}
    qty_units = price_units = 0
    for index in range(size):
        type_, unit = MIXED_TYPES[index % len(MIXED_TYPES)][:2]
        qty, units = exact_amount(rng, 3)
        qty_units += units
        price, units = exact_amount(rng, 4, negative=True)
        price_units += units
        by_type.setdefault(type_, []).append(dataframe.DataPoint(
            unit, qty, price,
            {'project_id': project_id,
             'id': resource_id(type_, index // len(MIXED_TYPES))}, {}))
    types = list(by_type)
    if shuffle:
        rng.shuffle(types)
    frame = dataframe.DataFrame(start, end)
    for type_ in types:
        if shuffle:
            rng.shuffle(by_type[type_])
        frame.add_points(by_type[type_], type_)
    return frame, (size, qty_units, price_units)
