"""High-water mark and drawdown of an account's equity.

- peak (high-water mark): the highest equity seen (account currency);
- drawdown: ``peak − equity`` ≥ 0 (account currency); its fraction ``(peak − equity) / peak`` (0 at or above the peak,
  and when the peak is not positive), rounded to 12 decimal places as
  :func:`smart_trader.portfolio.store.drawdown` does (the stored snapshots' ``drawdown``);
- maximum drawdown: the largest drawdown so far (Magdon-Ismail & Atiya, "Maximum drawdown", *Risk* 17(10), 2004).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the session calls the monitor: a type, not a dependency
    from smart_trader.execution.events import OrderEvent
    from smart_trader.execution.orders import Order
    from smart_trader.trading.session import AccountSession

ZERO = Decimal(0)
RATIO_PLACES = Decimal("1e-12")


def drawdown_fraction(equity: Decimal, peak: Decimal) -> Decimal:
    """``(peak − equity) / peak`` rounded to 12 decimal places; 0 at or above the peak, or when ``peak`` ≤ 0."""
    if peak <= 0 or equity >= peak:
        return ZERO
    return ((peak - equity) / peak).quantize(RATIO_PLACES)


def max_drawdown(equities: Iterable[Decimal]) -> Decimal:
    """The largest ``running peak − equity`` over a series (account currency, 0 for an empty or rising series)."""
    peak: Decimal | None = None
    worst = ZERO
    for e in equities:
        if peak is None or e > peak:
            peak = e
        elif peak - e > worst:
            worst = peak - e
    return worst


class HighWaterMark:
    """The exact high-water mark and drawdown of one account, a :class:`~smart_trader.trading.session.Monitor`: every
    valuation the session gives it updates the peak, the current drawdown and the maximum drawdown.

    Its equity band is ``(None, peak)``: the dispatcher calls it only when equity may reach a new peak (and after
    fills, and at a bar's worst point), so the peak is exact at the cost of nothing while the account is below it.
    The current and maximum drawdown are then those of the valuations seen. With ``exact_max_drawdown`` the band's
    low is ``peak − max_drawdown`` too: every new worst drawdown is seen (each new low costs a call), so the maximum
    drawdown is exact as well.

    Args:
        peak: the high-water mark so far (``accounts.equity_peak`` of a restored account); ``None``: the first
            valuation's equity.
        exact_max_drawdown: also follow every new maximum drawdown (see above).
    """

    __slots__ = ("equity", "exact_max_drawdown", "max_drawdown", "peak", "ts")

    def __init__(self, peak: Decimal | None = None, exact_max_drawdown: bool = False) -> None:
        self.peak = peak
        self.exact_max_drawdown = exact_max_drawdown
        self.equity: Decimal | None = None  # the last valuation's
        self.ts: int | None = None  # its time, ns UTC
        self.max_drawdown = ZERO

    @property
    def drawdown(self) -> Decimal:
        """``peak − equity`` at the last valuation (account currency; 0 before any)."""
        if self.peak is None or self.equity is None:
            return ZERO
        return max(ZERO, self.peak - self.equity)

    @property
    def drawdown_fraction(self) -> Decimal:
        """The drawdown as a fraction of the peak (see :func:`drawdown_fraction`)."""
        if self.peak is None or self.equity is None:
            return ZERO
        return drawdown_fraction(self.equity, self.peak)

    def update(self, ts: int, equity: Decimal) -> None:
        """Take a valuation: ``equity`` (account currency) at ``ts`` (ns UTC)."""
        if self.peak is None or equity > self.peak:
            self.peak = equity
        self.equity = equity
        self.ts = ts
        dd = self.peak - equity
        if dd > self.max_drawdown:
            self.max_drawdown = dd

    # -- Monitor ---------------------------------------------------------------------------------------------------
    def on_order_event(self, session: AccountSession, order: Order, event: OrderEvent) -> None:
        """Nothing: a fill changes equity, and the session values the account after it."""

    def on_valuation(self, session: AccountSession, ts: int, equity: Decimal) -> None:
        """See :meth:`update`."""
        self.update(ts, equity)

    def equity_band(self, session: AccountSession) -> tuple[Decimal | None, Decimal | None]:
        """``(None, peak)``, or ``(peak − max_drawdown, peak)`` with ``exact_max_drawdown``; ``(None, None)`` before a
        peak is known (every valuation matters)."""
        if self.peak is None:
            return None, None
        low = self.peak - self.max_drawdown if self.exact_max_drawdown else None
        return low, self.peak
