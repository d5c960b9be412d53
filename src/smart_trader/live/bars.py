"""Bars built live from a feed: :class:`LiveBarAggregator`.

Same semantics as the batch :mod:`smart_trader.data.aggregation`: a bar's ``ts_event`` is its open time,
``floor(ts / timeframe) * timeframe`` ns since the epoch (UTC); open = first price, high = max, low = min,
close = last; volume = sum of trade sizes (``None`` for quote bars). Intervals without events make no bar.
Exact integer arithmetic on the raw fixed-point values.
"""

from __future__ import annotations

from collections.abc import Iterable

from smart_trader.core.errors import InvalidInputError
from smart_trader.core.ids import InstrumentId
from smart_trader.data.model import Bar, Quote, Trade
from smart_trader.data.schema import PriceType
from smart_trader.data.timeframes import Timeframe
from smart_trader.live.feeds import MarketEvent


class LiveBarAggregator:
    """OHLCV bars of several timeframes from trades, quotes or shorter bars, per instrument.

    - :class:`Trade`: price and size (``volume`` = sum of sizes).
    - :class:`Quote`: the bid (or the ask, ``quote_price=PriceType.ASK``), like the core's ``quotes_to_bars``;
      ``volume`` is ``None``.
    - :class:`Bar`: combined into longer bars (open of the first, max high, min low, close of the last, sum of
      volumes, ``None`` when any is ``None``); each timeframe must be a whole multiple of the input bars'.

    Bars carry the precisions of the events that built them.

    Args:
        timeframes: the bar lengths to build (duplicates ignored; closed bars come in this order).
        quote_price: which side of a quote makes the bars: ``BID`` (default) or ``ASK``.

    Raises:
        InvalidInputError: no timeframe, or ``quote_price`` is not bid or ask (mid bars need a precision the
            stream cannot know in advance; last-price bars come from trades).
    """

    def __init__(self, timeframes: Iterable[Timeframe], *, quote_price: PriceType = PriceType.BID) -> None:
        self.timeframes: tuple[Timeframe, ...] = tuple(dict.fromkeys(timeframes))
        if not self.timeframes:
            raise InvalidInputError("a bar aggregator needs at least one timeframe")
        if quote_price not in (PriceType.BID, PriceType.ASK):
            raise InvalidInputError(f"quote bars are built from the bid or the ask, not {quote_price}")
        self.quote_price = quote_price
        self._bars: dict[tuple[InstrumentId, Timeframe], Bar] = {}
        self._closed_until: dict[tuple[InstrumentId, Timeframe], int] = {}  # end of bars closed by close_until

    def update(self, event: MarketEvent) -> list[Bar]:
        """Add one event; return the bars it closed (one per timeframe whose interval it left), in the
        order of ``timeframes``. The event then opens or extends the bar in progress.

        Raises:
            InvalidInputError: the event is earlier than the bar in progress of its instrument, or falls in
                a bar :meth:`close_until` already closed (feeds never go back in time).
        """
        if isinstance(event, Trade):
            o = h = low = c = event.price_raw
            volume: int | None = event.size_raw
        elif isinstance(event, Quote):
            o = h = low = c = event.bid_raw if self.quote_price is PriceType.BID else event.ask_raw
            volume = None
        else:
            o, h, low, c, volume = event.open_raw, event.high_raw, event.low_raw, event.close_raw, event.volume_raw
        iid, ts = event.instrument_id, event.ts_event
        for tf in self.timeframes:  # check first, so a refused event changes nothing
            key = (iid, tf)
            bar = self._bars.get(key)
            if bar is not None and ts < bar.ts_event:
                raise InvalidInputError(
                    f"{iid} event at {ts} ns is before the {tf} bar in progress (opened {bar.ts_event} ns)"
                )
            if bar is None and ts < self._closed_until.get(key, ts):
                raise InvalidInputError(f"{iid} event at {ts} ns falls in a {tf} bar already closed")
        closed: list[Bar] = []
        for tf in self.timeframes:
            key = (iid, tf)
            opened = ts - ts % tf.ns  # floor: correct before 1970 too
            bar = self._bars.get(key)
            if bar is not None and opened == bar.ts_event:
                self._bars[key] = bar._replace(
                    high_raw=max(bar.high_raw, h),
                    low_raw=min(bar.low_raw, low),
                    close_raw=c,
                    volume_raw=None if bar.volume_raw is None or volume is None else bar.volume_raw + volume,
                )
                continue
            if bar is not None:
                closed.append(bar)
            self._bars[key] = Bar(iid, opened, o, h, low, c, volume, event.price_precision, event.size_precision)
        return closed

    def current(self, instrument_id: InstrumentId, timeframe: Timeframe) -> Bar | None:
        """The bar in progress of ``instrument_id`` and ``timeframe``, or ``None`` before its first event."""
        return self._bars.get((instrument_id, timeframe))

    def close_until(self, ts_ns: int) -> list[Bar]:
        """Close and return every bar in progress whose interval ended at or before ``ts_ns`` (ns UTC), e.g.
        on a timer when no event arrives; an event in a later interval then opens a fresh bar. Bars come in
        order of their end time, then timeframe order."""
        order = {tf: i for i, tf in enumerate(self.timeframes)}
        done = sorted(
            ((key, bar) for key, bar in self._bars.items() if bar.ts_event + key[1].ns <= ts_ns),
            key=lambda item: (item[1].ts_event + item[0][1].ns, order[item[0][1]]),
        )
        for key, bar in done:
            del self._bars[key]
            self._closed_until[key] = bar.ts_event + key[1].ns
        return [bar for _, bar in done]

    def flush(self) -> list[Bar]:
        """Close and return every bar in progress (end of a replay)."""
        return self.close_until(2**63)
