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
"""Exact money: the range we accept and its exact integer encoding.

Every quantity and price the storage layer keeps is a :class:`~decimal.Decimal`
with at most :data:`FRACTION_DIGITS` fractional digits and an absolute value
below :data:`MAX_ABS`. Inside that range a value is stored as two integers
that never overflow a signed 64-bit column and whose sums are exact:

* ``hi``, the floor of the value (``-10**15 <= hi < 10**15``);
* ``lo``, what remains, scaled by ``10**12`` (``0 <= lo < 10**12``).

Pairs compare like the values they encode, so the smallest value of a group
is its smallest pair.

Arithmetic on the way back runs in :data:`CONTEXT`, whose precision is wide
enough for sums over billions of points and which traps any rounding, so a
sum is either exact or an error, never silently rounded.
"""

import decimal

from cloudkitty.storage import exceptions

#: Number of fractional digits a value may carry.
FRACTION_DIGITS = 12
#: Values must be strictly below this in absolute value.
MAX_ABS = decimal.Decimal(10) ** 15
#: ``10 ** FRACTION_DIGITS``, the scale of the ``lo`` integer.
SCALE = 10 ** FRACTION_DIGITS

#: Context for sums: wide, and rounding is an error rather than a surprise.
CONTEXT = decimal.Context(
    prec=80,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow,
           decimal.DivisionByZero])

#: Context for averages, the one operation whose result is not exact.
AVERAGE_CONTEXT = decimal.Context(prec=34)

_QUANTUM = decimal.Decimal(1).scaleb(-FRACTION_DIGITS)
_LOOSE_CONTEXT = decimal.Context(prec=80)
_MAX_SCALED = int(MAX_ABS) * SCALE


def check(value, field):
    """Raise :class:`InvalidQuery` unless ``value`` fits the exact range.

    :param value: the quantity or price of a point.
    :type value: decimal.Decimal
    :param field: its name (``qty`` or ``price``), used in the message.
    :raises cloudkitty.storage.exceptions.InvalidQuery: for NaN, Infinity,
        ``|value| >= 10**15`` or more than 12 significant fractional digits.
    """
    if not isinstance(value, decimal.Decimal) or not value.is_finite():
        raise exceptions.InvalidQuery(
            field, 'must be a finite Decimal, got %r' % (value,), value)
    # NOTE: copy_abs() is exact; abs() would round (or overflow, for
    # 1E+1000000) in the default context.
    if value.copy_abs() >= MAX_ABS:
        raise exceptions.InvalidQuery(
            field, 'absolute value must be below 10**15, got %s' % value,
            value)
    # NOTE: this quantize must not trap Inexact: an inexact result is
    # exactly what the comparison detects.
    if value != value.quantize(_QUANTUM, context=_LOOSE_CONTEXT):
        raise exceptions.InvalidQuery(
            field, 'at most %d fractional digits are kept exactly, got %s'
            % (FRACTION_DIGITS, value), value)


def split(value):
    """Encode a checked value as its ``(hi, lo)`` integer pair.

    :param value: a value accepted by :func:`check`.
    :type value: decimal.Decimal
    :returns: ``(hi, lo)`` with ``value == hi + lo / 10**12`` and
        ``0 <= lo < 10**12``.
    :rtype: tuple(int, int)
    """
    return divmod(int(value.scaleb(FRACTION_DIGITS, context=CONTEXT)), SCALE)


def encode(value, field):
    """Check a value and encode it as ``(hi, lo)`` in one step.

    The fast path of :func:`check` followed by :func:`split`, for the
    millions of values a push may carry.

    :raises cloudkitty.storage.exceptions.InvalidQuery: as :func:`check`.
    """
    try:
        scaled = value.scaleb(FRACTION_DIGITS, context=CONTEXT)
        whole = int(scaled)
    except (AttributeError, ValueError, OverflowError,
            decimal.DecimalException):
        whole = scaled = None
    if whole is None or whole != scaled or not (
            -_MAX_SCALED < whole < _MAX_SCALED):
        check(value, field)
    return divmod(whole, SCALE)


def point_units(qty, price):
    """Check a point's qty and price; return both as ``10**-12`` units.

    The fast path of :func:`check` for the millions of values a push may
    carry, without the ``(hi, lo)`` split of :func:`encode_point`.

    :returns: ``(qty_units, price_units)``, ints.
    :raises cloudkitty.storage.exceptions.InvalidQuery: as :func:`check`,
        naming ``qty`` or ``price``.
    """
    try:
        qty_scaled = qty.scaleb(FRACTION_DIGITS, context=CONTEXT)
        price_scaled = price.scaleb(FRACTION_DIGITS, context=CONTEXT)
        qty_units = int(qty_scaled)
        price_units = int(price_scaled)
    except (AttributeError, ValueError, OverflowError,
            decimal.DecimalException):
        qty_units = price_units = None
    if (qty_units is None or qty_units != qty_scaled
            or price_units != price_scaled
            or not -_MAX_SCALED < qty_units < _MAX_SCALED
            or not -_MAX_SCALED < price_units < _MAX_SCALED):
        check(qty, 'qty')
        check(price, 'price')
    return qty_units, price_units


def encode_point(qty, price):
    """Check and encode a point's qty and price: :func:`encode` for both.

    :returns: ``(qty_hi, qty_lo, price_hi, price_lo)``.
    :raises cloudkitty.storage.exceptions.InvalidQuery: as :func:`check`,
        naming ``qty`` or ``price``.
    """
    qty_units, price_units = point_units(qty, price)
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
    """Return a checked value as an int of ``10**-12`` units, exactly.

    :raises cloudkitty.storage.exceptions.InvalidQuery: as :func:`check`.
    """
    hi, lo = encode(value, 'value')
    return hi * SCALE + lo


def from_units(units):
    """Return an int of ``10**-12`` units as a canonical Decimal."""
    hi, lo = divmod(units, SCALE)
    return join(hi, lo)


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
