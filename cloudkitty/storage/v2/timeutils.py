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
"""Engine-free time arithmetic the backends share: epoch units, UTC days.

Backends keep times as integers since the epoch: the SQL backend in
microseconds, InfluxDB and Gnocchi in nanoseconds. Every helper here takes
the length of a day in the caller's unit (:data:`DAY_US` or :data:`DAY_NS`),
so the day rules (a day is ``[midnight, next midnight)`` UTC; a window's
whole days are those it covers from start to end) are written once.
"""

from cloudkitty.storage.v2 import query

#: A UTC day, in microseconds.
DAY_US = 24 * 3600 * 10 ** 6
#: A UTC day, in nanoseconds.
DAY_NS = DAY_US * 1000


def to_ns(moment):
    """Return an aware datetime as integer nanoseconds since the epoch.

    :returns: the nanoseconds, or None when ``moment`` is None.
    """
    if moment is None:
        return None
    return query.to_micros(moment) * 1000


def day_of(instant, day=DAY_US):
    """Return the start of the UTC day holding ``instant`` (floor).

    :param instant: an integer time since the epoch (negative ones too).
    :param day: the length of a day in the unit of ``instant``.
    """
    return instant - instant % day


def whole_days(begin, end, day=DAY_US):
    """Return the whole UTC days of the window ``[begin, end)``.

    :param begin: an integer time since the epoch.
    :param end: an integer time since the epoch, in the same unit.
    :param day: the length of a day in that unit.
    :returns: ``(first, last)``: the start of the first whole day and the
        end of the last one, or None when the window holds no whole day.
    """
    first = -(-begin // day) * day
    last = day_of(end, day)
    return (first, last) if first < last else None


def whole_days_of(begin, end):
    """:func:`whole_days` of a window of aware datetimes, as datetimes.

    :returns: ``(first, last)`` aware UTC datetimes, or None.
    """
    span = whole_days(query.to_micros(begin), query.to_micros(end))
    if span is None:
        return None
    return query.from_micros(span[0]), query.from_micros(span[1])
