"""Built-in strategies, by name: ``sma_cross``, ``rsi_reversion``, ``buy_and_hold``."""

from __future__ import annotations

from smart_trader.core.errors import NotFoundError
from smart_trader.strategy.api import Strategy
from smart_trader.strategy.builtin.buy_and_hold import BuyAndHold
from smart_trader.strategy.builtin.rsi_reversion import RsiReversion
from smart_trader.strategy.builtin.sma_cross import SmaCross

STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (SmaCross, RsiReversion, BuyAndHold)}


def strategy_class(name: str) -> type[Strategy]:
    """The built-in strategy class called ``name``.

    Raises:
        NotFoundError: no such strategy (the message lists the known ones).
    """
    try:
        return STRATEGIES[name]
    except KeyError:
        raise NotFoundError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}") from None
