"""Exact value types: prices, quantities and money.

Every value is a :class:`decimal.Decimal` underneath and is never built from a binary float:
constructors accept ``str``, ``int`` or ``Decimal`` and raise :class:`TypeError` for ``float``.
Money carries its currency; adding or comparing two currencies raises.

Fixed-point "raw" integers are how the engine and the store carry prices at speed:
``raw = value × 10**precision`` exactly; :func:`to_raw` and :func:`from_raw` convert.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import TypeAlias


def to_decimal(value: DecimalLike, what: str = "value") -> Decimal:
    """Convert ``value`` to a finite :class:`Decimal`.

    Raises:
        TypeError: ``value`` is a float (binary floats are never accepted for money or sizes).
        ValueError: the text is not a finite decimal number.
    """
    if isinstance(value, bool):
        raise TypeError(f"{what} must be str, int or Decimal, not bool")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, Price | Quantity):
        d = value.value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{what} {value!r} is not a decimal number") from None
    else:
        raise TypeError(f"{what} must be str, int or Decimal, not {type(value).__name__}")
    if not d.is_finite():
        raise ValueError(f"{what} {value!r} is not finite")
    return d


def decimals_of(value: Decimal) -> int:
    """Number of digits after the decimal point needed to write ``value`` exactly (>= 0)."""
    exp = value.normalize().as_tuple().exponent
    assert isinstance(exp, int)
    return max(0, -exp)


def to_raw(value: Decimal, precision: int) -> int:
    """Fixed-point integer of ``value`` at ``precision`` decimals.

    Raises:
        ValueError: ``value`` has more decimals than ``precision`` (it would be rounded).
    """
    scaled = value.scaleb(precision)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than {precision} decimals")
    return int(scaled)


def from_raw(raw: int, precision: int) -> Decimal:
    """Decimal value of a fixed-point integer: ``raw × 10**-precision``."""
    return Decimal(raw).scaleb(-precision)


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is <= ``value`` (for lot-size rounding of quantities)."""
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


@dataclass(frozen=True, slots=True, order=True)
class Price:
    """A price in the instrument's quote currency per unit of base (exact).

    Build from ``str``, ``int`` or ``Decimal``; floats raise :class:`TypeError`.
    """

    value: Decimal

    def __init__(self, value: DecimalLike) -> None:
        object.__setattr__(self, "value", to_decimal(value, "price"))

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True, slots=True, order=True)
class Quantity:
    """An amount of the instrument's base unit (shares, contracts, coins); exact, never negative.

    Raises:
        ValueError: the value is negative.
    """

    value: Decimal

    def __init__(self, value: DecimalLike) -> None:
        d = to_decimal(value, "quantity")
        if d < 0:
            raise ValueError(f"quantity must not be negative, got {d}")
        object.__setattr__(self, "value", d)

    def __str__(self) -> str:
        return str(self.value)


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in one currency (ISO 4217 code or coin ticker, e.g. ``"USD"``, ``"BTC"``).

    Adding or comparing two amounts in different currencies raises :class:`ValueError`.
    """

    amount: Decimal
    currency: str

    def __init__(self, amount: DecimalLike, currency: str) -> None:
        if not currency or not currency.strip():
            raise ValueError("currency must be a non-empty code")
        object.__setattr__(self, "amount", to_decimal(amount, "amount"))
        object.__setattr__(self, "currency", currency.strip().upper())

    def _check(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount < other.amount

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


DecimalLike: TypeAlias = str | int | Decimal | Price | Quantity
"""What an exact-value parameter accepts: text, integers, Decimals or our value types — never floats."""
