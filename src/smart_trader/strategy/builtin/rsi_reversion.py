"""RSI mean reversion, long only: buy with all the cash when RSI(period) falls below ``oversold``; sell
the whole position when it rises above ``overbought`` (Wilder's RSI; the classic 14 / 30 / 70 setting).
"""

from __future__ import annotations

import math
from typing import ClassVar

from smart_trader.core.errors import InvalidInputError
from smart_trader.data.model import Bar
from smart_trader.execution.enums import OrderSide
from smart_trader.strategy.api import IndicatorSeries, Strategy
from smart_trader.strategy.indicators import RSI


class RsiReversion(Strategy):
    """Parameters: ``period`` (bars, 14), ``oversold`` (30.0), ``overbought`` (70.0)."""

    name: ClassVar[str] = "rsi_reversion"
    defaults: ClassVar[dict[str, object]] = {"period": 14, "oversold": 30.0, "overbought": 70.0}

    def validate_params(self) -> None:
        """``period >= 2`` and ``0 < oversold < overbought < 100``."""
        p, lo, hi = self.params["period"], self.params["oversold"], self.params["overbought"]
        if p < 2 or not 0 < lo < hi < 100:
            raise InvalidInputError(
                f"rsi_reversion needs period >= 2 and 0 < oversold < overbought < 100, got {self.params}"
            )

    def on_start(self) -> None:
        """Register the RSI on the close."""
        self.rsi: IndicatorSeries = self.indicator(RSI(self.params["period"]))

    def on_bar(self, bar: Bar) -> None:
        """Enter when oversold, exit when overbought."""
        r = self.rsi.value
        if math.isnan(r):
            return
        pos = self.position()
        flat = pos is None or pos.quantity == 0
        if flat and not self.ctx.open_orders(None) and r < self.params["oversold"]:
            self.submit(OrderSide.BUY, notional=self.account.cash)
        elif not flat and not self.ctx.open_orders(None) and r > self.params["overbought"]:
            self.close_position()
