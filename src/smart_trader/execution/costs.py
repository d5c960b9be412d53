"""Commission and slippage models of the paper broker.

Commission is charged in the instrument's quote currency on every fill. Slippage moves the
fill price of orders that take liquidity at market (market orders and triggered stops) against
the trader by a whole number of ticks, so fill prices stay on the tick grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Protocol

from smart_trader.core.errors import InvalidInputError
from smart_trader.core.instruments import Instrument
from smart_trader.core.values import floor_to_step

_BPS = Decimal(10_000)


class CommissionModel(Protocol):
    """Computes the commission of one fill (quote currency)."""

    def commission(self, quantity: Decimal, price: Decimal, instrument: Instrument) -> Decimal:
        """Commission for ``quantity`` base units at ``price`` (quote currency)."""
        ...

    def max_quantity(self, notional: Decimal, price: Decimal, instrument: Instrument) -> Decimal:
        """Largest lot-size multiple whose cost plus commission does not exceed ``notional``."""
        ...


def _max_quantity(
    model: CommissionModel, notional: Decimal, price: Decimal, instrument: Instrument, estimate: Decimal
) -> Decimal:
    """Largest lot multiple q with q × price × multiplier + commission(q) <= notional, searched from ``estimate``
    (exact: the estimate only decides where the search starts; commission must grow with quantity)."""
    unit_cost = price * instrument.multiplier
    lot = instrument.lot_size

    def fits(q: Decimal) -> bool:
        return q * unit_cost + model.commission(q, price, instrument) <= notional

    q = max(floor_to_step(estimate, lot), Decimal(0))
    step = lot
    while q > 0 and not fits(q):  # too much: step down, doubling the step
        q = max(q - step, Decimal(0))
        step *= 2
    step = lot
    while fits(q + lot):  # room left: step up, doubling, then back off
        while fits(q + step * 2):
            step *= 2
        q += step
        step = lot
    return q


@dataclass(frozen=True, slots=True)
class NoCommission:
    """No commission."""

    def commission(self, quantity: Decimal, price: Decimal, instrument: Instrument) -> Decimal:
        """Always 0."""
        return Decimal(0)

    def max_quantity(self, notional: Decimal, price: Decimal, instrument: Instrument) -> Decimal:
        """``floor(notional / (price × multiplier))`` to the lot size."""
        return floor_to_step(notional / (price * instrument.multiplier), instrument.lot_size)


@dataclass(frozen=True, slots=True)
class BpsCommission:
    """Commission as basis points of the fill's notional: ``quantity × price × multiplier × bps / 10_000``.

    Raises:
        InvalidInputError: ``bps`` is negative.
    """

    bps: Decimal

    def __post_init__(self) -> None:
        if self.bps < 0:
            raise InvalidInputError(f"commission bps must not be negative, got {self.bps}")

    def commission(self, quantity: Decimal, price: Decimal, instrument: Instrument) -> Decimal:
        """Exact bps of notional (no rounding)."""
        return quantity * price * instrument.multiplier * self.bps / _BPS

    def max_quantity(self, notional: Decimal, price: Decimal, instrument: Instrument) -> Decimal:
        """Largest quantity with cost × (1 + bps/10_000) <= notional."""
        estimate = notional / (price * instrument.multiplier * (1 + self.bps / _BPS))
        return _max_quantity(self, notional, price, instrument, estimate)


@dataclass(frozen=True, slots=True)
class PerUnitCommission:
    """Commission per base unit with a minimum per fill: ``max(quantity × per_unit, minimum)``
    (the usual US-equity broker schedule, e.g. 0.005 USD a share, 1 USD minimum).

    Raises:
        InvalidInputError: a negative rate or minimum.
    """

    per_unit: Decimal
    minimum: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.per_unit < 0 or self.minimum < 0:
            raise InvalidInputError("per-unit commission and its minimum must not be negative")

    def commission(self, quantity: Decimal, price: Decimal, instrument: Instrument) -> Decimal:
        """``max(quantity × per_unit, minimum)``."""
        return max(quantity * self.per_unit, self.minimum)

    def max_quantity(self, notional: Decimal, price: Decimal, instrument: Instrument) -> Decimal:
        """Largest quantity whose cost plus commission fits in ``notional``."""
        unit = price * instrument.multiplier
        estimate = min(notional / (unit + self.per_unit), max(notional - self.minimum, Decimal(0)) / unit)
        return _max_quantity(self, notional, price, instrument, estimate)


class SlippageModel(Protocol):
    """Adjusts a market-taking fill price against the trader, on the tick grid."""

    def adjust(self, price: Decimal, buy: bool, instrument: Instrument) -> Decimal:
        """The slipped price (quote currency)."""
        ...


@dataclass(frozen=True, slots=True)
class NoSlippage:
    """Fills at the matched price."""

    def adjust(self, price: Decimal, buy: bool, instrument: Instrument) -> Decimal:
        """``price`` unchanged."""
        return price


@dataclass(frozen=True, slots=True)
class TickSlippage:
    """Buys fill ``ticks`` ticks higher and sells ``ticks`` ticks lower (floored at one tick)."""

    ticks: int

    def __post_init__(self) -> None:
        if self.ticks < 0:
            raise InvalidInputError(f"slippage ticks must not be negative, got {self.ticks}")

    def adjust(self, price: Decimal, buy: bool, instrument: Instrument) -> Decimal:
        """Price moved by ``ticks × tick_size`` against the trader."""
        moved = price + (self.ticks if buy else -self.ticks) * instrument.tick_size
        return max(moved, instrument.tick_size)


@dataclass(frozen=True, slots=True)
class BpsSlippage:
    """Price moved by ``bps`` basis points against the trader, rounded outward to the tick grid."""

    bps: Decimal

    def __post_init__(self) -> None:
        if self.bps < 0:
            raise InvalidInputError(f"slippage bps must not be negative, got {self.bps}")

    def adjust(self, price: Decimal, buy: bool, instrument: Instrument) -> Decimal:
        """``price × (1 ± bps/10_000)`` rounded up (buys) or down (sells) to the tick size."""
        raw = price * (1 + (self.bps if buy else -self.bps) / _BPS) / instrument.tick_size
        ticks = raw.to_integral_value(rounding=ROUND_CEILING if buy else ROUND_FLOOR)
        return max(ticks * instrument.tick_size, instrument.tick_size)
