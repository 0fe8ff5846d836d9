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
"""What the suite's modules share: constants, skips by capability, rows.

- the time constants (``T0``, ``HOUR``, ``DAY``, ``EVER``) and ``D``;
- the decorators that skip a test from the backend's
  :class:`~cloudkitty.storage.v2.Features` (:func:`requires`,
  :func:`lacks`, :func:`requires_value_length`,
  :func:`requires_magnitude`): the skip reason names the flag;
- :func:`rows`, :func:`typed_rows` and :func:`expect`, which make
  answers comparable;
- the suite's own edge-case table, :data:`TYPED_VALUES`. The tables
  shared with the unit tests (tricky values and keys, money extremes,
  out-of-range values) and the frame builders live in
  :mod:`cloudkitty.tests.fixtures`.

It imports no backend and no test server.
"""

import datetime
import decimal
import functools

from cloudkitty import dataframe
from cloudkitty.storage.v2 import query
from cloudkitty.tests import fixtures as builders

UTC = datetime.timezone.utc
D = decimal.Decimal
HOUR = builders.HOUR
DAY = datetime.timedelta(days=1)
T0 = builders.T0
EVER = builders.EVER
#: Relative tolerance of money sums for backends without exact_decimal.
INEXACT_TOLERANCE = D('1e-9')
#: Set this variable to an integer to run the differential tests with
#: another seed; the seed used is attached to every differential test.
SEED_ENV = 'CLOUDKITTY_TEST_SEED'


def requires(*flags):
    """Skip a test unless the backend's features set every flag.

    The skip reason is ``"<backend> lacks <flag>"``: nobody writes skips by
    hand. An unknown flag name is an AttributeError, not a silent skip.

    :param flags: names of :class:`cloudkitty.storage.v2.Features`
        attributes.
    """
    def decorator(test):
        @functools.wraps(test)
        def wrapper(self, *args, **kwargs):
            for flag in flags:
                if not getattr(self.storage.features, flag):
                    self.skipTest('%s lacks %s' % (self.storage_backend,
                                                   flag))
            return test(self, *args, **kwargs)
        return wrapper
    return decorator


def lacks(flag):
    """Run a test only when the backend's features do *not* set ``flag``.

    For the tests that check that an unsupported call raises
    :class:`~cloudkitty.storage.exceptions.NotSupported`; the skip reason is
    ``"<backend> has <flag>"``.
    """
    def decorator(test):
        @functools.wraps(test)
        def wrapper(self, *args, **kwargs):
            if getattr(self.storage.features, flag):
                self.skipTest('%s has %s' % (self.storage_backend, flag))
            return test(self, *args, **kwargs)
        return wrapper
    return decorator


def requires_value_length(length):
    """Skip a test unless the backend keeps values of ``length`` characters.

    Reads ``features.max_value_length`` (None: no limit).
    """
    def decorator(test):
        @functools.wraps(test)
        def wrapper(self, *args, **kwargs):
            limit = self.storage.features.max_value_length
            if limit is not None and limit < length:
                self.skipTest('%s lacks max_value_length >= %d'
                              % (self.storage_backend, length))
            return test(self, *args, **kwargs)
        return wrapper
    return decorator


def comparable(value):
    """A label value as a str that compares by type and value.

    A str stays itself; any other value becomes ``'\x00<type>:<repr>'``
    (no stored str holds a NUL), so that ``1``, ``1.0``, ``True`` and
    ``'1'`` differ and rows of mixed types still sort.
    """
    if type(value) is str:
        return value
    return '\x00%s:%r' % (type(value).__name__, value)


def requires_magnitude(exponent):
    """Skip a test unless the backend keeps magnitudes below 10**exponent.

    Reads ``features.max_magnitude``.
    """
    def decorator(test):
        @functools.wraps(test)
        def wrapper(self, *args, **kwargs):
            if self.storage.features.max_magnitude < 10 ** exponent:
                self.skipTest('%s lacks max_magnitude >= 10**%d'
                              % (self.storage_backend, exponent))
            return test(self, *args, **kwargs)
        return wrapper
    return decorator


def rows(dataframes):
    """Flatten DataFrames into comparable tuples, in the order given.

    :returns: a list of ``(start, end, type, unit, qty, price, groupby
        items, metadata items)``, label values passed through
        :func:`comparable`; sort it to compare multisets.
    """
    return [(frame.start, frame.end, type_, point.unit, point.qty,
             point.price,
             tuple(sorted((k, comparable(v))
                          for k, v in point.groupby.items())),
             tuple(sorted((k, comparable(v))
                          for k, v in point.metadata.items())))
            for frame in dataframes for type_, point in frame.iterpoints()]


def show(value):
    """Return a repr of a call argument that shows the points of frames."""
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(item, dataframe.DataFrame) for item in value):
        return repr(rows(value))
    return repr(value)


def expect(begin, end, qty, rate, **groups):
    """Build one expected total() result; ``groups`` are groupby values."""
    result = {'begin': begin, 'end': end, 'qty': D(qty), 'rate': D(rate)}
    result.update(groups)
    return result


def month_window():
    """Return the default window, the current UTC month."""
    return query.default_window()


def typed(mapping):
    """A mapping's items as ``(key, type name, repr)``, sorted.

    ``==`` holds between ``1``, ``1.0`` and ``True`` (and ``0.0`` and
    ``-0.0``): comparing these instead tells them apart.
    """
    return sorted((key, type(value).__name__, repr(value))
                  for key, value in mapping.items())


def typed_rows(dataframes):
    """Like :func:`rows`, with typed label items, sorted."""
    return sorted((frame.start, type_, point.qty, typed(point.groupby),
                   typed(point.metadata))
                  for frame in dataframes for type_, point in
                  frame.iterpoints())


#: Label values of every kind, several spelled alike; see rule 3.
TYPED_VALUES = (3, 3.0, '3', True, 1, 1.0, None, 'None', 'True', -0.0,
                0.0, 0, False, 2.5, -7, 10 ** 20, 1e-05, '')
