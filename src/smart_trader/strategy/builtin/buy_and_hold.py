"""Buy and hold: on the first bar (or trade, or quote) buy with all the cash, then hold to the end."""

from __future__ import annotations

from typing import ClassVar

from smart_trader.data.model import Bar, Quote, Trade
from smart_trader.execution.enums import OrderSide
from smart_trader.strategy.api import Strategy


class BuyAndHold(Strategy):
    """No parameters. The all-in notional market order fills on the event after the first one."""

    name: ClassVar[str] = "buy_and_hold"
    defaults: ClassVar[dict[str, object]] = {}

    def on_start(self) -> None:
        """Nothing bought yet."""
        self._done = False

    def _enter(self) -> None:
        if not self._done:
            self._done = True
            self.submit(OrderSide.BUY, notional=self.account.cash)

    def on_bar(self, bar: Bar) -> None:
        """Buy on the first bar."""
        self._enter()

    def on_trade(self, trade: Trade) -> None:
        """Buy on the first trade."""
        self._enter()

    def on_quote(self, quote: Quote) -> None:
        """Buy on the first quote."""
        self._enter()
