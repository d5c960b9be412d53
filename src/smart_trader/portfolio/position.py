"""Netting positions: one signed quantity per instrument, long (+) or short (-).

Accounting convention (average-cost, as NautilusTrader and most brokers' netting accounts):
- adding in the position's direction raises the cost basis by ``qty × price``;
- reducing realizes ``(price − avg_entry) × closed_qty × multiplier`` (sign-adjusted for shorts)
  and removes the closed share of the cost basis;
- a fill larger than the position closes it and opens the remainder on the other side
  (a flip through zero) at the fill price.

``cost_basis`` is kept exactly (the removed share is computed from the average, and the remainder is
``cost_basis − removed``), so realized + unrealized P&L always equals the exact cash-and-mark total.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from smart_trader.core.ids import InstrumentId
from smart_trader.execution.enums import OrderSide
from smart_trader.portfolio.exact import AVERAGE, EXACT

ZERO = Decimal(0)


@dataclass(slots=True)
class Position:
    """A netting position.

    Attributes:
        quantity: signed base units (+ long, − short, 0 flat).
        cost_basis: signed quote-currency cost of the open quantity (quantity × avg entry × multiplier).
        realized_pnl: P&L realized by reducing fills, before commissions (quote currency).
        commissions: total commission paid on this instrument (quote currency).
    """

    instrument_id: InstrumentId
    multiplier: Decimal = Decimal(1)
    quantity: Decimal = ZERO
    cost_basis: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    commissions: Decimal = ZERO
    fills: int = 0
    ts_opened: int | None = None
    ts_last: int = 0

    @property
    def avg_entry_price(self) -> Decimal | None:
        """Average entry price of the open quantity (quote currency), ``None`` when flat."""
        if self.quantity == 0:
            return None
        return AVERAGE.divide(self.cost_basis, AVERAGE.multiply(self.quantity, self.multiplier))

    @property
    def is_flat(self) -> bool:
        """True when the quantity is zero."""
        return self.quantity == 0

    def market_value(self, mark: Decimal) -> Decimal:
        """Value of the open quantity at ``mark``: quantity × mark × multiplier (signed, quote currency, exact)."""
        return EXACT.multiply(EXACT.multiply(self.quantity, mark), self.multiplier)

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        """P&L of the open quantity at ``mark`` (quote currency): quantity × mark × multiplier − cost basis."""
        return EXACT.subtract(self.market_value(mark), self.cost_basis)

    def apply_fill(self, side: OrderSide, quantity: Decimal, price: Decimal, commission: Decimal, ts: int) -> Decimal:
        """Update the position with one fill and return the P&L it realized (quote currency, before commission)."""
        signed = quantity if side is OrderSide.BUY else -quantity
        value = EXACT.multiply(EXACT.multiply(signed, price), self.multiplier)
        realized = ZERO
        q = self.quantity
        if q == 0 or (q > 0) == (signed > 0):
            self.cost_basis = EXACT.add(self.cost_basis, value)
            new_q = EXACT.add(q, signed)
        else:
            closed = min(abs(signed), abs(q))
            # the closed share of the cost basis: exact when it terminates, else 28 digits; the remainder stays exact
            if closed == abs(q):
                removed = self.cost_basis
            else:
                removed = AVERAGE.divide(EXACT.multiply(self.cost_basis, closed), abs(q))
            proceeds = EXACT.multiply(EXACT.multiply(closed if q > 0 else -closed, price), self.multiplier)
            realized = EXACT.subtract(proceeds, removed)
            self.cost_basis = EXACT.subtract(self.cost_basis, removed)
            new_q = EXACT.add(q, signed)
            if new_q != 0 and (new_q > 0) != (q > 0):  # flipped through zero: the rest opens at the fill price
                self.cost_basis = EXACT.multiply(EXACT.multiply(new_q, price), self.multiplier)
        if new_q != 0 and (q == 0 or (new_q > 0) != (q > 0)):  # opened, or flipped through zero
            self.ts_opened = ts
        self.quantity = new_q
        self.realized_pnl = EXACT.add(self.realized_pnl, realized)
        self.commissions = EXACT.add(self.commissions, commission)
        self.fills += 1
        self.ts_last = ts
        return realized
