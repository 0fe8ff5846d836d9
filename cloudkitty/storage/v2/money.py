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
"""Exact money: how values are rounded, their range, and exact sums.

Every quantity and price the storage layer keeps is a
:class:`~decimal.Decimal` with at most :data:`FRACTION_DIGITS` fractional
digits. :func:`check` (and its fast forms :func:`units` and
:func:`point_units`) is the one place where a pushed value becomes the value
stored, on every backend:

* a :class:`~decimal.Decimal` or an ``int`` is taken as it is, a ``float``
  as the shortest decimal that reads back as it (``str(0.1)``, as
  :class:`cloudkitty.dataframe.DataPoint` converts floats);
* a value with more than 12 fractional digits is rounded to 12, half to
  even (``0.30000000000000004`` is stored as ``0.3``, ``Decimal(0.152)``,
  the binary expansion, as ``0.152``);
* NaN, Infinity, and values whose magnitude (after rounding) reaches the
  backend's bound (``Features.max_magnitude``; at most :data:`MAX_ABS`) are
  refused with :class:`~cloudkitty.storage.exceptions.InvalidQuery`.

A stored value is an integer number of ``10**-12`` units (*units* below),
so sums over stored values are integer sums: exact, whatever their number.
:func:`split` and :func:`join` give a value as ``(hi, lo)``, its floor and
its scaled fraction. :func:`agrees` compares a backend's sum with an exact
one, within the backend's ``Features.float_tolerance``.

Arithmetic on the way back runs in :data:`CONTEXT`, whose precision is wide
enough for sums over billions of points and which traps any rounding, so a
sum is either exact or an error, never silently rounded.
"""

import decimal

from cloudkitty.storage import exceptions

#: Number of fractional digits a stored value carries at most.
FRACTION_DIGITS = 12
#: ``10 ** FRACTION_DIGITS``: a value is stored as ``value * SCALE`` units.
SCALE = 10 ** FRACTION_DIGITS
#: :data:`SCALE` as a Decimal: what :func:`from_units` divides by.
SCALE_DECIMAL = decimal.Decimal(SCALE)
#: The widest bound a backend may declare: stored magnitudes stay below it.
#: The default bound of :func:`check` and :func:`point_units`.
MAX_MAGNITUDE = 10 ** 20
#: :data:`MAX_MAGNITUDE` as a Decimal.
MAX_ABS = decimal.Decimal(MAX_MAGNITUDE)

#: Context for sums: wide, and rounding is an error rather than a surprise.
CONTEXT = decimal.Context(
    prec=80,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow,
           decimal.DivisionByZero])

#: Context for averages, the one operation whose result is not exact.
AVERAGE_CONTEXT = decimal.Context(prec=34)

_QUANTUM = decimal.Decimal(1).scaleb(-FRACTION_DIGITS)
# NOTE: quantize() below works on values already known to be below
# MAX_MAGNITUDE (at most 33 digits once rounded): 80 digits never round.
_ROUNDING_CONTEXT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN)


def _invalid(field, message, value):
    return exceptions.InvalidQuery(field, message, value)


def to_decimal(value, field):
    """Return a qty or price as a finite Decimal, not rounded yet.

    :param value: a Decimal, an int or a float (converted through
        ``str()``, like :class:`cloudkitty.dataframe.DataPoint` does).
    :param field: its name (``qty`` or ``price``), used in the message.
    :raises cloudkitty.storage.exceptions.InvalidQuery: for any other type
        (``bool`` included), NaN and Infinity.
    """
    if isinstance(value, decimal.Decimal):
        result = value
    elif isinstance(value, int) and not isinstance(value, bool):
        result = decimal.Decimal(value)
    elif isinstance(value, float):
        # NOTE: Decimal(0.1) would be 0.1000000000000000055511151231257827;
        # str() is what was meant, and what DataPoint keeps.
        result = decimal.Decimal(str(value))
    else:
        raise _invalid(field, 'must be a Decimal, int or float, got %r'
                       % (value,), value)
    if not result.is_finite():
        raise _invalid(field, 'must be finite, got %r' % (value,), value)
    return result


def check(value, field, max_magnitude=MAX_MAGNITUDE):
    """Return a qty or price as it is stored: rounded, and in range.

    :param value: a Decimal, an int or a float (see :func:`to_decimal`).
    :param field: its name (``qty`` or ``price``), used in the message.
    :param max_magnitude: the backend's bound (``Features.max_magnitude``).
    :type max_magnitude: int
    :returns: the value rounded to 12 fractional digits (half to even);
        the Decimal itself when rounding does not change it.
    :rtype: decimal.Decimal
    :raises cloudkitty.storage.exceptions.InvalidQuery: for a value that is
        not a finite Decimal, int or float, or whose magnitude is
        ``max_magnitude`` or more (after rounding).
    """
    number = to_decimal(value, field)
    rounded = _rounded(number, field, max_magnitude, value)
    return number if rounded == number else rounded


def _rounded(number, field, max_magnitude, value):
    """Round a finite Decimal to 12 fractional digits; check its range."""
    # NOTE: copy_abs() is exact; abs() would round (or overflow, for
    # 1E+1000000) in the default context. Checked before quantize(), which
    # would fail on such exponents.
    if number.copy_abs() < max_magnitude:
        rounded = number.quantize(_QUANTUM, context=_ROUNDING_CONTEXT)
        if rounded.copy_abs() < max_magnitude:
            return rounded
    raise _invalid(field, 'absolute value must be below %s once rounded '
                   'to %d fractional digits, got %s'
                   % (_power(max_magnitude), FRACTION_DIGITS, value), value)


def _slow_units(value, field, max_magnitude):
    """:func:`units` for a value that is not a Decimal ready to scale."""
    rounded = _rounded(to_decimal(value, field), field, max_magnitude, value)
    return int(rounded.scaleb(FRACTION_DIGITS, context=CONTEXT))


def _power(bound):
    """Write a bound such as ``10 ** 20`` as ``10**20``, others as is."""
    digits = str(bound)
    if digits.rstrip('0') == '1':
        return '10**%d' % (len(digits) - 1)
    return digits


# NOTE: ``{d: SCALE // d}`` for every divisor ``d`` of SCALE: a Decimal
# whose exact ratio has such a denominator has at most 12 fractional
# digits, and its units are its numerator times the factor.
_FACTORS = {2 ** a * 5 ** b: SCALE // (2 ** a * 5 ** b)
            for a in range(FRACTION_DIGITS + 1)
            for b in range(FRACTION_DIGITS + 1)}
# NOTE: adjusted() bounds a Decimal's magnitude before its exact ratio is
# computed, so that 1E+999999 costs no huge integer; past these bounds the
# slow path decides (and refuses or rounds).
_ADJUSTED_MIN, _ADJUSTED_MAX = -2 * FRACTION_DIGITS, 21


def fast_units(value, bound):
    """The units of a Decimal ready to store, or None.

    The fast path of :func:`units`, without its fallback: what a value
    needs to be stored as it is, with nothing to round or refuse.

    :param bound: ``max_magnitude * SCALE``.
    :returns: the exact units of ``value`` when it is a Decimal (not a
        subclass, nor an int, float or bool, whose conversions differ)
        with at most 12 fractional digits and below the bound; None for
        anything else, which :func:`units` then checks in full.
    """
    if type(value) is not _DECIMAL or \
            not _ADJUSTED_MIN < value.adjusted() < _ADJUSTED_MAX:
        return None
    try:
        numerator, denominator = value.as_integer_ratio()
    except (ValueError, OverflowError):
        # NOTE: NaN and infinities, which the slow path refuses.
        return None
    factor = _FACTORS.get(denominator)
    if factor is None:
        return None
    whole = numerator * factor
    return whole if -bound < whole < bound else None


_DECIMAL = decimal.Decimal


def units(value, field, max_magnitude=MAX_MAGNITUDE):
    """Return a qty or price as stored, as an int of ``10**-12`` units.

    The fast path of :func:`check`: a Decimal already in range with at most
    12 fractional digits is only scaled.

    :raises cloudkitty.storage.exceptions.InvalidQuery: as :func:`check`.
    """
    whole = fast_units(value, max_magnitude * SCALE)
    if whole is None:
        whole = _slow_units(value, field, max_magnitude)
    return whole


def point_units(qty, price, max_magnitude=MAX_MAGNITUDE):
    """Return a point's qty and price as stored, as ``10**-12`` units.

    :func:`units` for both, for the millions of values a push may carry.

    :param max_magnitude: the backend's bound (``Features.max_magnitude``).
    :returns: ``(qty_units, price_units)``, ints.
    :raises cloudkitty.storage.exceptions.InvalidQuery: as :func:`check`,
        naming ``qty`` or ``price``.
    """
    # NOTE: fast_units() for both, inlined: a push calls this per point.
    bound = max_magnitude * SCALE
    if type(qty) is _DECIMAL and type(price) is _DECIMAL and \
            _ADJUSTED_MIN < qty.adjusted() < _ADJUSTED_MAX and \
            _ADJUSTED_MIN < price.adjusted() < _ADJUSTED_MAX:
        try:
            qty_numerator, qty_denominator = qty.as_integer_ratio()
            price_numerator, price_denominator = price.as_integer_ratio()
        except (ValueError, OverflowError):
            qty_denominator = price_denominator = None
        qty_factor = _FACTORS.get(qty_denominator)
        price_factor = _FACTORS.get(price_denominator)
        if qty_factor is not None and price_factor is not None:
            qty_units = qty_numerator * qty_factor
            price_units = price_numerator * price_factor
            if -bound < qty_units < bound and -bound < price_units < bound:
                return qty_units, price_units
    return (_slow_units(qty, 'qty', max_magnitude),
            _slow_units(price, 'price', max_magnitude))


def split(value):
    """Encode a value as its ``(hi, lo)`` integer pair (rounded first).

    :param value: a value accepted by :func:`check`.
    :returns: ``(hi, lo)`` with ``value == hi + lo / 10**12`` (for the
        value as stored) and ``0 <= lo < 10**12``: ``hi`` is its floor.
    :rtype: tuple(int, int)
    """
    return divmod(units(value, 'value'), SCALE)


def encode(value, field):
    """Check a value and encode it as ``(hi, lo)`` (see :func:`split`).

    :raises cloudkitty.storage.exceptions.InvalidQuery: as :func:`check`.
    """
    return divmod(units(value, field), SCALE)


def encode_point(qty, price, max_magnitude=MAX_MAGNITUDE):
    """Check and encode a point's qty and price: :func:`encode` for both.

    :returns: ``(qty_hi, qty_lo, price_hi, price_lo)``.
    :raises cloudkitty.storage.exceptions.InvalidQuery: as :func:`check`,
        naming ``qty`` or ``price``.
    """
    qty_units, price_units = point_units(qty, price, max_magnitude)
    return divmod(qty_units, SCALE) + divmod(price_units, SCALE)


def join(hi, lo):
    """Decode a ``(hi, lo)`` pair or a pair of their sums, exactly.

    :param hi: the integer part, or the sum of integer parts.
    :param lo: the scaled fraction, or the sum of scaled fractions.
    :returns: ``hi + lo / 10**12`` as a canonical Decimal.
    :rtype: decimal.Decimal
    """
    fraction = decimal.Decimal(int(lo)).scaleb(-FRACTION_DIGITS,
                                               context=CONTEXT)
    return canonical(CONTEXT.add(decimal.Decimal(int(hi)), fraction))


def add(a, b):
    """Return ``a + b`` exactly (raises rather than rounds)."""
    return CONTEXT.add(a, b)


def to_units(value):
    """Return a value as stored, as an int of ``10**-12`` units.

    :raises cloudkitty.storage.exceptions.InvalidQuery: as :func:`check`.
    """
    return units(value, 'value')


def from_units(value_units):
    """Return an int of ``10**-12`` units as a canonical Decimal.

    The same Decimal as :func:`join` of its :func:`split` pair, in a
    quarter of the time: retrieve() calls it twice per point.
    """
    value_units = int(value_units)
    if value_units % SCALE:
        # NOTE: not a whole number. An exact quotient takes the exponent
        # nearest 0 that holds it, so it has no trailing fractional zero:
        # what canonical() gives, in one operation instead of scaleb()
        # and normalize() (a third less time, measured). CONTEXT traps
        # Inexact, and its 80 digits hold every quotient of a sum.
        return CONTEXT.divide(decimal.Decimal(value_units), SCALE_DECIMAL)
    return decimal.Decimal(value_units // SCALE)


def average(total, count):
    """Return ``total / count`` rounded to 34 significant digits.

    The only inexact operation on money: used for ``avg()`` custom fields.
    """
    return canonical(AVERAGE_CONTEXT.divide(total, decimal.Decimal(count)))


def canonical(value):
    """Return ``value`` without trailing fractional zeros.

    ``Decimal('1.50')`` becomes ``Decimal('1.5')`` and ``Decimal('2.000')``
    becomes ``Decimal('2')``, so equal sums also print the same way.
    """
    if value == value.to_integral_value():
        return value.quantize(decimal.Decimal(1), context=CONTEXT)
    return value.normalize(context=CONTEXT)


def agrees(actual, expected, tolerance=0):
    """Tell whether a backend's sum agrees with the exact expected sum.

    With ``tolerance`` 0 (a backend with ``exact_decimal``) ``actual`` must
    be a Decimal equal to ``expected``. Otherwise both are read through
    ``str()`` and may differ by ``tolerance * (|expected| + 1)``: relative
    for large sums, absolute near zero, where float sums cancel out.

    :param actual: the sum the backend returned.
    :param expected: the exact sum.
    :type expected: decimal.Decimal
    :param tolerance: the backend's ``features.float_tolerance``.
    :rtype: bool
    """
    if not tolerance:
        return isinstance(actual, decimal.Decimal) and actual == expected
    try:
        actual = decimal.Decimal(str(actual))
        expected = decimal.Decimal(str(expected))
    except (decimal.InvalidOperation, TypeError):
        return False
    return abs(actual - expected) <= tolerance * (abs(expected) + 1)
