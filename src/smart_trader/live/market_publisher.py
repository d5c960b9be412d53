"""Market data to the WebSocket hub: the topic of each trade, quote and bar, its JSON document (decimals as text,
``ts_event`` ns UTC), and the feed's end notice. Messages are built only when someone may receive them (a replay at
full speed makes millions)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from smart_trader.core.ids import InstrumentId
from smart_trader.data.model import Bar, Quote, Trade
from smart_trader.gateway.hub import bars_topic, quotes_topic, trades_topic

Publish = Callable[[str, str], None]


def _json(obj: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


class MarketPublisher:
    """Publishes market data to the hub.

    Args:
        publish: sends a message (topic, JSON text) to the WebSocket hub.
        wanted: whether a topic may have receivers (default: always).
    """

    def __init__(self, publish: Publish, wanted: Callable[[str], bool] = lambda _topic: True) -> None:
        self.publish = publish
        self.wanted = wanted

    def trade(self, t: Trade) -> None:
        """Publish a trade (price and size exact, quote and base units) on its instrument's trades topic."""
        topic = trades_topic(t.instrument_id)
        if self.wanted(topic):
            body = {"instrument_id": t.instrument_id, "ts_event": t.ts_event, "price": t.price, "size": t.size}
            self.publish(topic, _json({"type": "trade", "topic": topic, **body}))

    def quote(self, q: Quote, derived: bool) -> None:
        """Publish a quote on its instrument's quotes topic (``derived``: estimated from trades, never matched)."""
        topic = quotes_topic(q.instrument_id)
        if self.wanted(topic):
            body = {
                "instrument_id": q.instrument_id,
                "ts_event": q.ts_event,
                "bid": q.bid,
                "ask": q.ask,
                "bid_size": q.bid_size,
                "ask_size": q.ask_size,
            }
            self.publish(topic, _json({"type": "quote", "topic": topic, "derived": derived, **body}))

    def bar(self, b: Bar, timeframe: str) -> None:
        """Publish a bar of ``timeframe`` (e.g. ``"1m"``) on its instrument's bars topic of that timeframe."""
        topic = bars_topic(b.instrument_id, timeframe)
        if self.wanted(topic):
            body = {
                "instrument_id": b.instrument_id,
                "ts_event": b.ts_event,
                "open": b.open,
                "high": b.high,
                "low": b.low,
                "close": b.close,
                "volume": b.volume,
            }
            self.publish(topic, _json({"type": "bar", "topic": topic, "timeframe": timeframe, **body}))

    def feed_ended(
        self, instruments: Iterable[InstrumentId], message: dict[str, Any], bar_topics: tuple[str, ...] = ()
    ) -> None:
        """Tell the subscribers of every instrument's trades, quotes and ``bar_topics`` timeframes' bars that the feed
        ended or failed: a ``{"type": "feed", "topic": ..., "instrument_id": ..., **message}`` document."""
        for iid in instruments:
            body = {**message, "instrument_id": iid}
            for topic in (trades_topic(iid), quotes_topic(iid), *(bars_topic(iid, tf) for tf in bar_topics)):
                if self.wanted(topic):
                    self.publish(topic, _json({"type": "feed", "topic": topic, **body}))
