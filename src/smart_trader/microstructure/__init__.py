"""Microstructure service: order books rebuilt from stored depth, and the measures traders read from them.

- :mod:`.book` — :class:`OrderBook`, a price-level book with exact fixed-point levels.
- :mod:`.builder` — :class:`BookBuilder`: applies a stored book table (snapshot, then updates) event
  by event, checks venue sequence numbers and reports gaps (:class:`BookGap`, :class:`GapPolicy`).
- :mod:`.measures` — spread, mid, microprice, top-N depth imbalance and order-flow imbalance per
  book event (:func:`book_measures`).
- :mod:`.service` — the same, read from the market-data store (:func:`stored_book_measures`).
"""

from smart_trader.microstructure.book import ASK, BID, BookLevel, OrderBook
from smart_trader.microstructure.builder import BookBuilder, BookEvent, BookGap, BookGapError, GapPolicy
from smart_trader.microstructure.measures import BookMeasures, book_measures

__all__ = [
    "ASK",
    "BID",
    "BookBuilder",
    "BookEvent",
    "BookGap",
    "BookGapError",
    "BookLevel",
    "BookMeasures",
    "GapPolicy",
    "OrderBook",
    "book_measures",
]
