"""A top of book *derived* from trades, for feeds that carry trades only (a replayed trades file).

A trade whose aggressor bought lifted the best ask, so its price is the ask at that moment; a trade whose aggressor
sold hit the best bid. :class:`DerivedTopOfBook` keeps, per instrument, the price of the last buyer-initiated trade
as the ask estimate and of the last seller-initiated trade as the bid estimate. They are estimates, never a real
book: sizes are unknown (``None``), and a side the market has since moved through is dropped (a sell printing at or
above the ask estimate makes that ask stale) until a trade sets it again. Trades without an aggressor side teach
nothing. The platform marks these quotes ``derived`` on ``/api/v1/market/quote`` and the ``quotes`` channel, and the
paper broker never fills against them (it fills against the trades themselves).
"""

from __future__ import annotations

from smart_trader.core.ids import InstrumentId
from smart_trader.data.model import Quote, Trade

BUY = "buy"
SELL = "sell"


class DerivedTopOfBook:
    """Bid and ask estimates from aggressor-side trades, per instrument (raw fixed-point prices)."""

    def __init__(self) -> None:
        self._book: dict[InstrumentId, list[int | None]] = {}  # [bid_raw, ask_raw]
        self._sent: dict[InstrumentId, tuple[int, int]] = {}

    def update(self, trade: Trade) -> Quote | None:
        """Fold in one trade; return the new derived quote (``ts_event`` = the trade's, ns UTC; sizes ``None``)
        when both sides are known, bid < ask, and it differs from the last one returned; else ``None``."""
        side = trade.aggressor_side
        if side not in (BUY, SELL):
            return None
        book = self._book.setdefault(trade.instrument_id, [None, None])
        price = trade.price_raw
        if side == BUY:
            book[1] = price
            if book[0] is not None and book[0] >= price:
                book[0] = None
        else:
            book[0] = price
            if book[1] is not None and book[1] <= price:
                book[1] = None
        bid, ask = book
        if bid is None or ask is None or (bid, ask) == self._sent.get(trade.instrument_id):
            return None
        self._sent[trade.instrument_id] = (bid, ask)
        return Quote(
            trade.instrument_id, trade.ts_event, bid, ask, None, None, trade.price_precision, trade.size_precision
        )
