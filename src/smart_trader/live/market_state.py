"""The latest market prices the platform knows: last quote and last trade per instrument.

Marks for equity (the last trade price, else the quote mid-price) and the ``/market/quote`` answer come from
here. Prices are exact Decimals in the quote currency; ``ts`` is ns since the epoch, UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from smart_trader.core.ids import InstrumentId


@dataclass(slots=True)
class LastPrices:
    """Latest top of book and trade of one instrument (fields ``None`` until seen). ``quote_derived``: the bid and
    ask are estimates from the trades' aggressor sides (a trades-only feed, see ``live/top_of_book.py``), not a
    venue's book."""

    instrument_id: InstrumentId
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None
    quote_ts: int | None = None
    quote_derived: bool = False
    price: Decimal | None = None
    size: Decimal | None = None
    trade_ts: int | None = None

    @property
    def mark(self) -> Decimal | None:
        """Mark price: the last trade, else the mid of the last quote (exact: the mid of two decimals is exact)."""
        if self.price is not None:
            return self.price
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view (Decimals as strings)."""
        return {
            "instrument_id": self.instrument_id,
            "bid": _s(self.bid),
            "ask": _s(self.ask),
            "bid_size": _s(self.bid_size),
            "ask_size": _s(self.ask_size),
            "quote_ts": self.quote_ts,
            "quote_source": None if self.bid is None else ("derived_from_trades" if self.quote_derived else "feed"),
            "last_price": _s(self.price),
            "last_size": _s(self.size),
            "trade_ts": self.trade_ts,
            "mark": _s(self.mark),
        }


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


class MarketState:
    """Latest prices by instrument id, updated by the feed."""

    def __init__(self) -> None:
        self.prices: dict[InstrumentId, LastPrices] = {}

    def get(self, instrument_id: InstrumentId) -> LastPrices:
        """The record of ``instrument_id`` (created empty on first use)."""
        p = self.prices.get(instrument_id)
        if p is None:
            p = self.prices[instrument_id] = LastPrices(instrument_id)
        return p

    def mark(self, instrument_id: InstrumentId) -> Decimal | None:
        """Mark price of an instrument, or ``None`` when nothing was seen yet."""
        p = self.prices.get(instrument_id)
        return None if p is None else p.mark
