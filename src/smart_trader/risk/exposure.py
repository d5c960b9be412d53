"""Exposure and leverage of an account's positions.

- exposure of a position: ``quantity × mark × multiplier`` (signed: + long, − short), its gross exposure the absolute
  value — :meth:`~smart_trader.portfolio.position.Position.market_value`, exact;
- net exposure ``Σ exposure``, gross exposure ``Σ |exposure|`` over open positions;
- leverage ``gross / equity`` (Basel III's leverage ratio is the inverse, capital / exposure; brokers quote this one:
  2 means positions worth twice the equity). Equity at or below zero has no leverage: ``None`` (any exposure is then
  unbounded leverage; no exposure, none at all).

Money is in the account currency: the platform values positions in their quote currency as the account currency (no
FX conversion, as :func:`~smart_trader.portfolio.account.market_value`). Leverage is rounded to 12 decimal places (a
ratio for display, like the drawdown fraction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from smart_trader.core.errors import NotFoundError
from smart_trader.core.ids import InstrumentId
from smart_trader.portfolio.position import Position

RATIO_PLACES = Decimal("1e-12")


@dataclass(frozen=True, slots=True)
class Exposure:
    """One open position's exposure: signed ``quantity`` (base units), ``mark`` (quote currency), ``multiplier``,
    ``net`` = quantity × mark × multiplier and ``gross`` = |net| (account currency)."""

    instrument_id: InstrumentId
    quantity: Decimal
    mark: Decimal
    multiplier: Decimal
    net: Decimal
    gross: Decimal


@dataclass(frozen=True, slots=True)
class ExposureSummary:
    """Exposures of the open positions (by instrument id), their totals (account currency), the equity they are
    measured against and the leverage (``None``: equity ≤ 0)."""

    positions: tuple[Exposure, ...]
    gross: Decimal
    net: Decimal
    equity: Decimal
    leverage: Decimal | None


def exposures(positions: Iterable[Position], mark: Callable[[InstrumentId], Decimal | None]) -> list[Exposure]:
    """The exposure of every open position at its mark (flat positions are skipped), sorted by instrument id.

    Raises:
        NotFoundError: an open position has no mark price.
    """
    out: list[Exposure] = []
    for pos in positions:
        if not pos.quantity:
            continue
        price = mark(pos.instrument_id)
        if price is None:
            raise NotFoundError(f"no mark price for the open position in {pos.instrument_id}")
        net = pos.market_value(price)
        out.append(Exposure(pos.instrument_id, pos.quantity, price, pos.multiplier, net, abs(net)))
    return sorted(out, key=lambda e: e.instrument_id)


def leverage(gross: Decimal, equity: Decimal) -> Decimal | None:
    """``gross / equity`` rounded to 12 decimal places; ``None`` when equity ≤ 0 (see the module docstring)."""
    if equity <= 0:
        return None
    return (gross / equity).quantize(RATIO_PLACES)


def summarize(
    positions: Iterable[Position], mark: Callable[[InstrumentId], Decimal | None], equity: Decimal
) -> ExposureSummary:
    """Exposures, totals and leverage of ``positions`` against ``equity`` (account currency).

    Raises:
        NotFoundError: an open position has no mark price.
    """
    each = exposures(positions, mark)
    gross = sum((e.gross for e in each), Decimal(0))
    net = sum((e.net for e in each), Decimal(0))
    return ExposureSummary(tuple(each), gross, net, equity, leverage(gross, equity))
