"""A price-level order book (L2, market by price) with exact fixed-point prices and sizes.

Prices and sizes are "raw" integers: value × 10**precision at the instrument's price and size
precision (:func:`smart_trader.core.values.to_raw`), so levels compare and add exactly; :meth:`OrderBook.top`
turns them back into :class:`~decimal.Decimal`. Each side keeps a dict (price → size) and a sorted
list of its prices, so the best level is O(1) and a level change O(log n) plus a list shift.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass
from decimal import Decimal

from smart_trader.core.values import from_raw

BID = "bid"
ASK = "ask"


@dataclass(frozen=True, slots=True)
class BookLevel:
    """One price level: ``price`` in quote currency, ``size`` in base units (exact)."""

    price: Decimal
    size: Decimal


class OrderBook:
    """Bids and asks of one instrument, level by level.

    Args:
        price_precision, size_precision: decimals of the raw integers (the instrument's precisions).
    """

    def __init__(self, price_precision: int, size_precision: int) -> None:
        self.price_precision = price_precision
        self.size_precision = size_precision
        self._sizes: dict[str, dict[int, int]] = {BID: {}, ASK: {}}
        self._prices: dict[str, list[int]] = {BID: [], ASK: []}  # ascending

    def clear(self) -> None:
        """Remove every level of both sides."""
        for side in (BID, ASK):
            self._sizes[side].clear()
            self._prices[side].clear()

    def set_level(self, side: str, price: int, size: int) -> None:
        """Set the level at ``price`` (raw) of ``side`` (``"bid"``/``"ask"``) to ``size`` (raw, absolute);
        0 removes it, and removing a level the book does not hold changes nothing (venues send such
        deletions: Binance, "How to manage a local order book correctly", step 9).

        Raises:
            ValueError: a negative size, or a side other than bid/ask.
        """
        if side not in self._sizes:
            raise ValueError(f"side must be 'bid' or 'ask', not {side!r}")
        if size < 0:
            raise ValueError(f"a level size cannot be negative ({size} raw at {price} raw)")
        sizes, prices = self._sizes[side], self._prices[side]
        if size == 0:
            if sizes.pop(price, None) is not None:
                del prices[bisect_left(prices, price)]
            return
        if price not in sizes:
            insort(prices, price)
        sizes[price] = size

    def best(self, side: str) -> tuple[int, int] | None:
        """``(price, size)`` raw of the best level of ``side`` (highest bid, lowest ask), ``None`` when empty."""
        prices = self._prices[side]
        if not prices:
            return None
        price = prices[-1] if side == BID else prices[0]
        return price, self._sizes[side][price]

    def levels(self, side: str, n: int | None = None) -> list[tuple[int, int]]:
        """The best ``n`` levels of ``side`` (all when ``None``) as raw ``(price, size)``, best first."""
        prices = self._prices[side]
        chosen = prices[::-1][:n] if side == BID else prices[:n]
        sizes = self._sizes[side]
        return [(p, sizes[p]) for p in chosen]

    def depth(self, side: str, n: int) -> int:
        """Sum of the sizes (raw) of the best ``n`` levels of ``side``."""
        prices, sizes = self._prices[side], self._sizes[side]
        chosen = prices[-n:] if side == BID else prices[:n]
        return sum(sizes[p] for p in chosen)

    def size_at(self, side: str, price: int) -> int:
        """Size (raw) at ``price`` (raw) on ``side``; 0 when there is no such level."""
        return self._sizes[side].get(price, 0)

    def count(self, side: str) -> int:
        """Number of levels on ``side``."""
        return len(self._prices[side])

    def top(self, side: str, n: int | None = None) -> list[BookLevel]:
        """The best ``n`` levels of ``side`` (all when ``None``) as exact decimals, best first."""
        p, s = self.price_precision, self.size_precision
        return [BookLevel(from_raw(price, p), from_raw(size, s)) for price, size in self.levels(side, n)]

    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask (a locked or crossed book)."""
        bid, ask = self.best(BID), self.best(ASK)
        return bid is not None and ask is not None and bid[0] >= ask[0]
