"""Indexes of the working orders of one instrument that only a price (or the end of their day) can touch, so that a
market event finds the orders it may fill without visiting the others.

An order that has already met a market event without closing is, from then on, only touched again by a price
through its limit (a limit, a triggered stop-limit), a price through its stop (a stop, a stop-limit not yet
triggered), or, for a day order, the first event of a later UTC day, which expires it. Every other working order
(market, IOC/FOK, or not yet met by any event) is visited on every event.
:class:`~smart_trader.execution.paper_broker.PaperBroker` keeps the first kind here and the second in a plain list,
and matches the union of those reached and the others in arrival order (``seq``) — exactly the orders and the order
its full scan would have filled, without the full scan.

- :class:`RestingLimits`: buys by ``(-limit, seq)``, sells by ``(limit, seq)``; a price crosses a prefix of each.
- :class:`RestingStops`: buys by ``(stop, seq)``, sells by ``(-stop, seq)``; a price triggers a prefix of each.
- :class:`DayExpiries`: day orders by ``(day, seq)``; a new UTC day reaches a prefix.

Prices are raw ints at the instrument's price precision; days are UTC days since the epoch. Values are the broker's
working orders (opaque here), keyed by their arrival number ``seq``.
"""

from __future__ import annotations

import sys
from bisect import bisect_left, bisect_right, insort
from typing import Any

_LAST = sys.maxsize  # sorts after every arrival number


def _drop(keys: list[tuple[int, int]], key: tuple[int, int], seq: int) -> None:
    """Delete ``key`` from the sorted ``keys``.

    Raises:
        KeyError: ``seq`` (``key`` is not there).
    """
    i = bisect_left(keys, key)
    if i == len(keys) or keys[i] != key:
        raise KeyError(seq)
    del keys[i]


def _in_arrival_order(
    orders: dict[int, Any], first: list[tuple[int, int]], n_first: int, second: list[tuple[int, int]], n_second: int
) -> list[Any]:
    """The orders of the first ``n_first`` keys of ``first`` and ``n_second`` of ``second``, by arrival number."""
    if not n_first and not n_second:
        return []
    seqs = [seq for _key, seq in first[:n_first]] + [seq for _key, seq in second[:n_second]]
    seqs.sort()
    return [orders[s] for s in seqs]


class RestingLimits:
    """Resting limit orders of one instrument by raw limit price (price-time priority)."""

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
        if buy:
            _drop(self._buys, (-limit, seq), seq)
        else:
            _drop(self._sells, (limit, seq), seq)
        del self._orders[seq]

    def crossing(self, bid: int, ask: int) -> list[Any]:
        """The resting orders a market at raw ``bid``/``ask`` reaches — buys limited at or above ``ask``, sells at
        or below ``bid`` (for a trade, both are its price; for a bar, ``ask`` is its low and ``bid`` its high) — in
        arrival order."""
        n_buys = bisect_right(self._buys, (-ask, _LAST))
        n_sells = bisect_right(self._sells, (bid, _LAST))
        return _in_arrival_order(self._orders, self._buys, n_buys, self._sells, n_sells)


class RestingStops:
    """Stop orders (and stop-limits not yet triggered) of one instrument by raw stop price."""

    def __init__(self) -> None:
        self._buys: list[tuple[int, int]] = []
        self._sells: list[tuple[int, int]] = []
        self._orders: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def add(self, seq: int, buy: bool, stop: int, order: Any) -> None:
        """Park ``order`` (arrival number ``seq``, raw ``stop``)."""
        if buy:
            insort(self._buys, (stop, seq))
        else:
            insort(self._sells, (-stop, seq))
        self._orders[seq] = order

    def remove(self, seq: int, buy: bool, stop: int) -> None:
        """Take the order ``seq`` out (filled, canceled, expired, or a stop-limit that triggered).

        Raises:
            KeyError: it is not parked here.
        """
        if buy:
            _drop(self._buys, (stop, seq), seq)
        else:
            _drop(self._sells, (-stop, seq), seq)
        del self._orders[seq]

    def triggered(self, low: int, high: int) -> list[Any]:
        """The stops a market whose prices reach from raw ``low`` to ``high`` triggers — buys stopped at or below
        ``high``, sells at or above ``low`` (a trade: both its price; a quote: its bid and ask; a bar: its low and
        high) — in arrival order."""
        n_buys = bisect_right(self._buys, (high, _LAST))
        n_sells = bisect_right(self._sells, (-low, _LAST))
        return _in_arrival_order(self._orders, self._buys, n_buys, self._sells, n_sells)


class DayExpiries:
    """Day orders of one instrument by the UTC day they live through (days since the epoch)."""

    def __init__(self) -> None:
        self._keys: list[tuple[int, int]] = []
        self._orders: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def add(self, seq: int, day: int, order: Any) -> None:
        """Date ``order`` (arrival number ``seq``): it expires at the first event after UTC ``day``."""
        insort(self._keys, (day, seq))
        self._orders[seq] = order

    def remove(self, seq: int, day: int) -> None:
        """Take the order ``seq`` out (filled, canceled or expired).

        Raises:
            KeyError: it is not dated here.
        """
        _drop(self._keys, (day, seq), seq)
        del self._orders[seq]

    def due(self, today: int) -> list[Any]:
        """The orders an event on UTC day ``today`` expires (their day is before it), in arrival order."""
        keys = self._keys
        if not keys or keys[0][0] >= today:
            return []
        n = bisect_left(keys, (today, -1))
        return _in_arrival_order(self._orders, keys, n, keys, 0)


class IndexedOrders:
    """The indexed working orders of one instrument: resting limits (and triggered stop-limits), parked stops (and
    stop-limits not yet triggered), and, for day orders among them, their expiry day. An order is in exactly one of
    ``limits`` and ``stops``; a day order is also in ``days``."""

    def __init__(self) -> None:
        self.limits = RestingLimits()
        self.stops = RestingStops()
        self.days = DayExpiries()

    def __len__(self) -> int:
        return len(self.limits) + len(self.stops)
