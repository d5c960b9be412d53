"""Typed identifiers: distinct types for distinct ids so an order id is never passed as a fill id.

They are ``NewType`` wrappers over ``str`` (zero cost at run time, checked by mypy).
An :data:`InstrumentId` is written ``"SYMBOL.VENUE"``, e.g. ``"BTC/USDT.BINANCE"``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import NewType

InstrumentId = NewType("InstrumentId", str)
OrderId = NewType("OrderId", str)
ClientOrderId = NewType("ClientOrderId", str)
TradeId = NewType("TradeId", str)
FillId = NewType("FillId", str)
AccountId = NewType("AccountId", str)
StrategyId = NewType("StrategyId", str)
EventId = NewType("EventId", str)


def instrument_id(symbol: str, venue: str) -> InstrumentId:
    """The canonical instrument id ``"SYMBOL.VENUE"`` (venue upper-cased)."""
    return InstrumentId(f"{symbol}.{venue.upper()}")


class IdGenerator:
    """Deterministic, monotonically numbered ids (``"O-1"``, ``"O-2"``...) for reproducible runs.

    ``next()`` is a bound C iterator method (no Python frame per id): ids are made on every order event.
    """

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self.next: Callable[[], str] = map(f"{prefix}-{{}}".format, itertools.count(1)).__next__
