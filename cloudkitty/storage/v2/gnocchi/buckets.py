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
"""Decoding Gnocchi's answers: buckets of a resource, money of floats.

A bucket is one frame of one resource: Gnocchi gives its count, sum,
minimum and maximum of qty and price (float64). The points of a bucket
are copies of one point when minimum and maximum agree (see
:mod:`cloudkitty.storage.v2.gnocchi.mapping`).
"""

import collections
import datetime
import decimal

from cloudkitty.storage import exceptions

#: The operations that read every bucket of the resources of a search,
#: with their sums and extremes (for a delete's rewrite).
BUCKET_OPERATIONS = ('(metric (qty count) (qty sum) (qty min) (qty max) '
                     '(price sum) (price min) (price max))')
#: What retrieve() reads of its resources: the sums of a bucket of one
#: point are that point. Every metric and method read costs Gnocchi one
#: read per resource, so extremes are read only for the resources with a
#: bucket of several points (:data:`EXTREME_OPERATIONS`).
POINT_OPERATIONS = '(metric (qty count) (qty sum) (price sum))'
#: What tells whether a bucket of several points holds copies of one.
EXTREME_OPERATIONS = ('(metric (qty count) (qty min) (qty max) '
                      '(price min) (price max))')
#: The operation that only counts the points of every bucket: a page of
#: retrieve() is found from the counts, then only its resources are read
#: with :data:`POINT_OPERATIONS`.
COUNT_OPERATIONS = '(metric (qty count))'
_FIELDS = (('qty', 'count'), ('qty', 'sum'), ('qty', 'min'), ('qty', 'max'),
           ('price', 'sum'), ('price', 'min'), ('price', 'max'))
_SCALE = decimal.Decimal(10) ** 12

#: One bucket of one resource; money as floats, count an int.
Bucket = collections.namedtuple(
    'Bucket', 'start count qty qty_min qty_max price price_min price_max')


def to_datetime(value):
    """Return a timestamp of an answer (datetime or ISO text) as UTC."""
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return value.astimezone(datetime.timezone.utc)


def to_decimal(value):
    """Return a float as the shortest Decimal that reads back as it."""
    return decimal.Decimal(repr(float(value)))


def to_units(value):
    """Return a float sum as an int of ``10**-12`` units (rounded).

    The float itself is converted exactly, so that adding units of many
    buckets adds no error of its own.
    """
    return int((decimal.Decimal(value) * _SCALE).to_integral_value())


def buckets_by_resource(answer):
    """Turn a :data:`BUCKET_OPERATIONS` answer into buckets per resource.

    :returns: ``{resource_id: [Bucket, ...]}``, buckets by start.
    """
    result = {}
    for resource_id, metrics in answer.get('measures', {}).items():
        values = collections.defaultdict(dict)
        for metric, method in _FIELDS:
            for stamp, _, value in metrics.get(metric, {}).get(method, ()):
                values[stamp][(metric, method)] = value
        buckets = []
        for stamp, fields in values.items():
            if ('qty', 'count') not in fields:
                continue
            buckets.append(Bucket(
                to_datetime(stamp), int(round(fields[('qty', 'count')])),
                *(fields.get(field) for field in _FIELDS[1:])))
        buckets.sort()
        result[resource_id] = buckets
    return result


def is_uniform(bucket):
    """Tell whether every point of a bucket is the same point."""
    return (bucket.qty_min == bucket.qty_max
            and bucket.price_min == bucket.price_max)


def uniform_point(bucket, resource_id):
    """Return the ``(qty, price)`` Decimals of a uniform bucket's points.

    A bucket of one point is its sums; a bucket of several needs its
    extremes (:data:`EXTREME_OPERATIONS`).

    :raises StorageError: when the bucket mixes different points, which
        Gnocchi kept only as sums (see the mapping's docstring).
    """
    if bucket.count == 1 and None not in (bucket.qty, bucket.price):
        return to_decimal(bucket.qty), to_decimal(bucket.price)
    if None in (bucket.qty_min, bucket.qty_max, bucket.price_min,
                bucket.price_max):
        raise exceptions.StorageError(
            'Gnocchi resource %s: the extremes of the bucket of %d points '
            'at %s were not read' % (resource_id, bucket.count,
                                     bucket.start.isoformat()))
    if not is_uniform(bucket):
        raise exceptions.StorageError(
            'Gnocchi resource %s holds %d different points of one series in '
            'the frame starting at %s, pushed separately; Gnocchi keeps '
            'only their sums, so they cannot be listed (total() is right)'
            % (resource_id, bucket.count, bucket.start.isoformat()))
    return to_decimal(bucket.qty_min), to_decimal(bucket.price_min)


def refill(bucket):
    """Return ``(qty values, price values)`` that rebuild a bucket.

    A uniform bucket gives its points back; a mixed one gives values with
    the same count, sum, minimum and maximum, which is all Gnocchi knew.
    """
    return (_values(bucket.count, bucket.qty, bucket.qty_min,
                    bucket.qty_max),
            _values(bucket.count, bucket.price, bucket.price_min,
                    bucket.price_max))


def _values(count, total, low, high):
    if low == high or count == 1:
        return [low] * count
    if count == 2:
        return [low, high]
    middle = (total - low - high) / (count - 2)
    return [low, high] + [middle] * (count - 2)
