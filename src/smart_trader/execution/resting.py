"""Resting limit orders of one instrument, sorted by price, so that a trade or a quote finds the orders it
crosses without visiting the others.

A good-till-canceled limit order that has already met a market event without filling can only be touched again
by a price through its limit; every other working order (market, stop, stop-limit, day, IOC/FOK, or not yet
met by any event) is visited on every event. :class:`~smart_trader.execution.paper_broker.PaperBroker` keeps the
first kind here and the second in a plain list, and matches the union of those crossed and the others in arrival
order (``seq``) — exactly the orders and the order its full scan would have filled, without the full scan.

Keys: buys by ``(-limit, seq)``, sells by ``(limit, seq)``; a price crosses a prefix of each list.
"""

from __future__ import annotations

import sys
from bisect import bisect_left, bisect_right, insort
from typing import Any

_LAST = sys.maxsize  # sorts after every arrival number


class RestingLimits:
    """Resting limit orders of one instrument by raw limit price (price-time priority); values are the broker's
    working orders, keyed by their arrival number ``seq``."""

    def __init__(self) -> None:
        self._buys: list[tuple[int, int]] = []
        self._sells: list[tuple[int, int]] = []
        self._orders: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def add(self, seq: int, buy: bool, limit: int, order: Any) -> None:
        """Rest ``order`` (arrival number ``seq``, raw ``limit``)."""
        if buy:
            insort(self._buys, (-limit, seq))
        else:
            insort(self._sells, (limit, seq))
        self._orders[seq] = order

    def remove(self, seq: int, buy: bool, limit: int) -> None:
        """Take the order ``seq`` out (filled, canceled or expired).

        Raises:
            KeyError: it is not resting here.
        """
        keys, key = (self._buys, (-limit, seq)) if buy else (self._sells, (limit, seq))
        i = bisect_left(keys, key)
        if i == len(keys) or keys[i] != key:
            raise KeyError(seq)
        del keys[i]
        del self._orders[seq]

    def crossing(self, bid: int, ask: int) -> list[Any]:
        """The resting orders a market at raw ``bid``/``ask`` reaches — buys limited at or above ``ask``, sells at
        or below ``bid`` (for a trade, both are its price) — in arrival order."""
        n_buys = bisect_right(self._buys, (-ask, _LAST))
        n_sells = bisect_right(self._sells, (bid, _LAST))
        if not n_buys and not n_sells:
            return []
        seqs = [seq for _key, seq in self._buys[:n_buys]] + [seq for _key, seq in self._sells[:n_sells]]
        seqs.sort()
        return [self._orders[s] for s in seqs]
