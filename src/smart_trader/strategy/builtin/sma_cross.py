"""SMA crossover, long only, all in: buy with all the cash when the fast SMA crosses above the slow
SMA; sell the whole position when it crosses below. Orders are notional market orders, so they fill at
the next bar's open. A cross up is ``fast > slow`` now and ``fast < slow`` on the previous bar, a cross down the
mirror (the definition of backtesting.py's ``lib.crossover``).
"""

from __future__ import annotations

from typing import ClassVar

from smart_trader.core.errors import InvalidInputError
from smart_trader.data.model import Bar
from smart_trader.execution.enums import OrderSide
from smart_trader.execution.events import OrderCanceled, OrderEvent, OrderRejected
from smart_trader.execution.orders import Order
from smart_trader.strategy.api import IndicatorSeries, Strategy
from smart_trader.strategy.indicators import SMA, CrossOver


class SmaCross(Strategy):
    """Parameters: ``fast`` (bars, default 10), ``slow`` (bars, default 30)."""

    name: ClassVar[str] = "sma_cross"
    defaults: ClassVar[dict[str, object]] = {"fast": 10, "slow": 30}

    def validate_params(self) -> None:
        """``1 <= fast < slow``."""
        fast, slow = self.params["fast"], self.params["slow"]
        if not 1 <= fast < slow:
            raise InvalidInputError(f"sma_cross needs 1 <= fast < slow, got fast={fast} slow={slow}")

    def on_start(self) -> None:
        """Register the crossover of the two SMAs of the close."""
        self.cross: IndicatorSeries = self.indicator(CrossOver(SMA(self.params["fast"]), SMA(self.params["slow"])))
        self.wake_on(self.cross)  # on_bar only on crossover bars: same trades, far fewer calls
        self._long = False

    def on_bar(self, bar: Bar) -> None:
        """Enter on a cross up, exit on a cross down."""
        cross = self.cross.value
        if not cross:
            return
        if cross > 0 and not self._long:
            self.submit(OrderSide.BUY, notional=self.account.cash)
            self._long = True
        elif cross < 0 and self._long:
            self.close_position()
            self._long = False

    def on_order_event(self, order: Order, event: OrderEvent) -> None:
        """A buy that could not be placed or filled leaves the strategy flat."""
        if isinstance(event, OrderRejected | OrderCanceled) and order.side is OrderSide.BUY and not order.filled_qty:
            self._long = False
