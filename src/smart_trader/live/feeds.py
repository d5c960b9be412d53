"""What every live market-data feed yields, and the error a feed raises when its source is out of reach.

Feeds (:class:`~smart_trader.live.replay.ReplayFeed`, :class:`~smart_trader.live.exchange_feed.ExchangeFeed`)
are async iterators of :data:`MarketEvent`: the records of :mod:`smart_trader.data.model` (fixed-point raw
ints; ``instrument_id`` and ``ts_event``, ns since the epoch UTC, on every one). A feed never goes back in
time: each event's ``ts_event`` is >= the previous one's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeAlias

from smart_trader.core.errors import TemporaryError
from smart_trader.data.model import Bar, Quote, Trade

MarketEvent: TypeAlias = Trade | Quote | Bar
"""One market-data event: a trade, a top-of-book quote or a bar (``ts_event`` = open time)."""


class FeedUnavailableError(TemporaryError):
    """A feed's source cannot be reached (exchange down, no network); the message says how to give another
    source (e.g. replay a recorded file)."""


class MarketFeed(Protocol):
    """The interface the trading runtime needs from a feed.

    Attributes:
        clock_ns: ``ts_event`` of the last event yielded (ns UTC), ``None`` before the first.
        events_emitted: number of events yielded so far.

    A feed of new market data from a venue (:class:`~smart_trader.live.exchange_feed.ExchangeFeed`) also has the
    class attribute ``new_market_data = True``: see :func:`is_new_market_data`.
    """

    clock_ns: int | None
    events_emitted: int

    def __aiter__(self) -> AsyncIterator[MarketEvent]:
        """The events, in non-decreasing ``ts_event`` order."""
        ...


def is_new_market_data(feed: Any) -> bool:
    """Whether ``feed`` carries new market data from a venue (its attribute ``new_market_data`` is ``True``), whose
    bars the platform stores (``live/bar_recorder.py``). Every other feed — a replay of a file or of the store,
    looping or not, a test's feed — is data already stored or made up from it, and is never written to the store."""
    return getattr(feed, "new_market_data", False) is True
