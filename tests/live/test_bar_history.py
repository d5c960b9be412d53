"""Bars built live, kept in memory and served after the stored ones (``live/bar_history.py``), on real data replayed
through the real store: the packaged sample's real 1-minute bars and the real BTC/USDT trades, looping. During the
first pass the answer is exactly the stored bars closed by the replay clock; once the replay loops, its own
time-shifted bars follow; no bar is ever later than the clock, and nothing is written to the store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from smart_trader.core.errors import InvalidInputError
from smart_trader.core.ids import InstrumentId
from smart_trader.data.aggregation import resample_bars
from smart_trader.data.model import Bar
from smart_trader.data.schema import Kind, between, ts_ns
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe
from smart_trader.live.bar_history import BASE_TIMEFRAME, LiveBarHistory, history_timeframe, market_bars
from smart_trader.live.bars import LiveBarAggregator
from smart_trader.live.feeds import MarketEvent
from smart_trader.live.replay import ReplayFeed, replay_store
from smart_trader.samples import default_sample
from tests.live.conftest import drain

MINUTE = 60_000_000_000
HOUR = 60 * MINUTE
TF = {t: Timeframe.parse(t) for t in ("1s", "1m", "5m", "1h", "1d")}
BTC_TRADES = "trades/BTCUSDT_2021-01-08.binance.trades.parquet"


def _sample(service: MarketDataService) -> tuple[str, str]:
    sample = default_sample()
    assert sample is not None, "the package ships its sample"
    for f in sample.files:
        service.import_file(f, symbol=sample.symbol, venue=sample.venue)
    return sample.symbol, sample.venue


class _Driver:
    """Feeds a :class:`LiveBarHistory` from a replay as ``app/factory._run_feed`` does (closed 1-minute bars), in
    steps, on one event loop (the replay keeps its place from one step to the next)."""

    def __init__(self, feed: ReplayFeed) -> None:
        self.feed = feed
        self.history = LiveBarHistory()
        self.aggregator = LiveBarAggregator([BASE_TIMEFRAME])
        self.runner = asyncio.Runner()

    def until(self, stop: Callable[[MarketEvent], bool]) -> int:
        """Replay until ``stop(event)``; the clock then (ns UTC)."""

        async def run() -> int:
            async for event in self.feed:
                if event.instrument_id not in self.history:
                    self.history.begin(event.instrument_id, event.ts_event)
                for bar in self.aggregator.update(event):
                    self.history.add(bar)
                if stop(event):
                    return event.ts_event
            raise AssertionError("the looping replay ended")

        return self.runner.run(asyncio.wait_for(run(), 60))


def _served(
    service: MarketDataService, symbol: str, venue: str, tf: str, clock: int, history: LiveBarHistory, **kw: int
) -> pa.Table:
    iid = service.instrument(symbol, venue).id
    return market_bars(service, symbol, venue, TF[tf], clock_ns=clock, live=history.snapshot(iid), **kw)


def test_a_bars_replay_serves_the_stored_bars_up_to_its_clock_then_its_own_looping_timeline(
    service: MarketDataService,
) -> None:
    symbol, venue = _sample(service)
    before = service.datasets()
    stored_1m = service.bars(symbol, venue, TF["1m"])
    first = int(ts_ns(stored_1m)[0])
    start = first + 12 * HOUR + 30 * MINUTE  # the replay starts mid-hour: the stored half-hour comes first
    feed = replay_store(service, symbol, venue, Kind.BARS, TF["1m"], start_ns=start, loop=True)
    driver = _Driver(feed)
    history = driver.history
    clock = driver.until(lambda e: e.ts_event == first + 14 * HOUR)

    # first pass: exactly the stored bars closed by the clock, at every timeframe
    for tf in ("1m", "5m", "1h"):
        served = _served(service, symbol, venue, tf, clock, history)
        assert served.equals(service.bars(symbol, venue, TF[tf], end_ns=clock)), tf
    minutes = service.bars(symbol, venue, TF["1m"], end_ns=clock)
    assert minutes.num_rows == 14 * 60 and int(ts_ns(minutes)[-1]) == clock - MINUTE
    # the day in progress holds the minutes closed so far: stored before the replay, built live after
    day = _served(service, symbol, venue, "1d", clock, history)
    assert day.equals(resample_bars(minutes, TF["1d"], TF["1m"]))
    window = _served(service, symbol, venue, "1m", clock, history, start_ns=start - 2 * MINUTE, end_ns=start + MINUTE)
    assert window.equals(service.bars(symbol, venue, TF["1m"], start_ns=start - 2 * MINUTE, end_ns=start + MINUTE))

    # the next pass: the replay's own timeline, shifted past the stored data, follows the stored bars before it
    last_stored = int(ts_ns(stored_1m)[-1])
    clock = driver.until(lambda e: e.ts_event >= last_stored + 3 * HOUR)
    driver.runner.close()
    served = _served(service, symbol, venue, "1m", clock, history)
    ts = ts_ns(served)
    assert ts.max() <= clock and (ts[1:] > ts[:-1]).all()
    before_replay = between(stored_1m, None, start)
    assert served.slice(0, before_replay.num_rows).equals(before_replay)
    live = history.snapshot(feed.instrument.id)
    assert live is not None and live.stored_until_ns == start
    assert served.num_rows == before_replay.num_rows + len(live.bars) and ts[-1] == live.bars[-1].ts_event
    hours = _served(service, symbol, venue, "1h", clock, history)
    assert int(ts_ns(hours).max()) <= clock and int(ts_ns(hours).max()) > last_stored
    assert service.datasets() == before  # nothing written


def test_a_looping_trades_replay_serves_its_minutes_and_only_stored_seconds_closed_by_its_clock(
    service: MarketDataService, shared_data: Path
) -> None:
    service.import_file(shared_data / BTC_TRADES, symbol="BTC/USDT", venue="BINANCE")
    before = service.datasets()
    feed = replay_store(service, "BTC/USDT", "BINANCE", Kind.TRADES, loop=True)
    driver = _Driver(feed)
    history = driver.history
    first_pass_clock = driver.until(lambda e: feed.events_emitted == 1000)
    # no minute closed yet, and only the seconds of the stored trades the replay has passed
    assert _served(service, "BTC/USDT", "BINANCE", "1m", first_pass_clock, history).num_rows == 0
    seconds = _served(service, "BTC/USDT", "BINANCE", "1s", first_pass_clock, history)
    expected = service.bars("BTC/USDT", "BINANCE", TF["1s"], end_ns=first_pass_clock)
    assert seconds.num_rows > 10 and seconds.equals(expected)
    assert int(ts_ns(seconds)[-1]) + 1_000_000_000 <= first_pass_clock

    stored_minute = service.bars("BTC/USDT", "BINANCE", TF["1m"])  # the 46 s recording: one minute
    clock = driver.until(lambda e: e.ts_event >= int(ts_ns(stored_minute)[0]) + 6 * MINUTE)
    driver.runner.close()
    minutes = _served(service, "BTC/USDT", "BINANCE", "1m", clock, history)
    ts = ts_ns(minutes)
    assert minutes.num_rows >= 5 and ts.max() <= clock and (ts[1:] > ts[:-1]).all()
    # the first minute opens as the stored trades' minute (46 s of them, then the second pass's first 14 s)
    assert minutes.slice(0, 1).select(["ts_event", "open"]).equals(stored_minute.select(["ts_event", "open"]))
    five = _served(service, "BTC/USDT", "BINANCE", "5m", clock, history)
    assert five.equals(resample_bars(minutes, TF["5m"], TF["1m"]))
    assert service.datasets() == before


def test_without_live_bars_the_stored_bars_stop_at_the_clock_when_one_is_known(
    service: MarketDataService, shared_data: Path
) -> None:
    """What an API process without the feed serves: the stored bars closed by the shared market clock."""
    service.import_file(shared_data / BTC_TRADES, symbol="BTC/USDT", venue="BINANCE")
    every = service.bars("BTC/USDT", "BINANCE", TF["1s"])
    clock = int(ts_ns(every)[20]) + 500_000_000  # half-way through the 21st stored second
    capped = market_bars(service, "BTC/USDT", "BINANCE", TF["1s"], clock_ns=clock)
    assert capped.equals(every.slice(0, 20))
    assert market_bars(service, "BTC/USDT", "BINANCE", TF["1m"], clock_ns=clock).num_rows == 0  # minute in progress
    assert market_bars(service, "BTC/USDT", "BINANCE", TF["1s"]).equals(every)  # no clock known: everything


def test_the_history_keeps_the_last_bars_and_says_where_stored_bars_stop(service: MarketDataService) -> None:
    symbol, venue = _sample(service)
    bars = [e for e in drain(replay_store(service, symbol, venue, Kind.BARS, TF["1m"]), 5) if isinstance(e, Bar)]
    iid = bars[0].instrument_id
    replayed, recorded = LiveBarHistory(kept=3), LiveBarHistory(kept=3, recorded=True)
    for history in (replayed, recorded):
        history.begin(iid, bars[0].ts_event + 5)  # the first event, inside the first minute
        for bar in bars:
            history.add(bar)
    a, b = replayed.snapshot(iid), recorded.snapshot(iid)
    assert a is not None and b is not None
    assert a.bars == b.bars == tuple(bars[2:])  # the last 3
    assert a.stored_until_ns == bars[0].ts_event  # a replay: stored bars only before its own timeline
    assert b.stored_until_ns == bars[2].ts_event  # recorded: the store holds what memory dropped
    assert replayed.snapshot(InstrumentId("BTC/USDT.KRAKEN")) is None
    with pytest.raises(InvalidInputError, match="at least one"):
        LiveBarHistory(kept=0)


def test_live_bars_are_kept_per_minute_unless_replayed_bars_cannot_make_minutes() -> None:
    assert history_timeframe(None) == TF["1m"]
    assert history_timeframe(TF["1s"]) == history_timeframe(TF["1m"]) == TF["1m"]
    assert history_timeframe(TF["1h"]) == TF["1h"] and history_timeframe(Timeframe.parse("45s")) == Timeframe(45)
