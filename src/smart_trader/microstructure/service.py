"""The microstructure service's entry point for callers (CLI, later the API): measures of a stored book."""

from __future__ import annotations

from smart_trader.data.schema import Kind
from smart_trader.data.service import MarketDataService
from smart_trader.microstructure.builder import GapPolicy
from smart_trader.microstructure.measures import DEFAULT_LEVELS, BookMeasures, book_measures


def stored_book_measures(
    data: MarketDataService,
    symbol: str,
    venue: str,
    *,
    levels: int = DEFAULT_LEVELS,
    start_ns: int | None = None,
    end_ns: int | None = None,
    policy: GapPolicy = GapPolicy.RESYNC,
) -> BookMeasures:
    """Measures (:func:`~smart_trader.microstructure.measures.book_measures`) of the book of ``symbol`` on
    ``venue`` stored in ``data``, over ``start_ns <= ts_event < end_ns`` (ns UTC, ``None`` = open end).

    The book is rebuilt from the first snapshot in the range: updates before it are skipped, so a range
    should start at or before a snapshot.

    Raises:
        NotFoundError: unknown instrument or no stored book for it.
        InvalidInputError: ``levels`` below 1.
        BookGapError: a sequence gap under :attr:`GapPolicy.RAISE`.
    """
    table = data.ticks(symbol, venue, Kind.BOOK, start_ns=start_ns, end_ns=end_ns)
    return book_measures(table, levels=levels, policy=policy)
