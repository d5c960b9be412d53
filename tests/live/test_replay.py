"""ReplayFeed, replay_file and replay_store on the real recorded files in ../shared/data."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from smart_trader.core.clock import NS_PER_DAY, NS_PER_SECOND
from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.data.aggregation import trades_to_bars
from smart_trader.data.model import Bar, Quote, Trade
from smart_trader.data.readers import read_file
from smart_trader.data.schema import Kind, PriceType, raw_from_decimal, ts_ns
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe
from smart_trader.live.replay import ReplayFeed, replay_file, replay_store

from .conftest import drain, pairwise_non_decreasing, take

BTC_TRADES = "trades/BTCUSDT_2021-01-08.binance.trades.parquet"
BTC_QUOTES = "quotes/BTCUSDT.binance.quotes.parquet"
XRP_TRADES = "trades/XRP-ETH_2019-10.binance.trades.parquet"
ORCL_BARS = "bars/ORCL_1995-2014_1d.yahoo.csv"
GBP_BID = "bars/GBPUSD_2012_1m_bid.fxcm.csv"


def _trade_rows(table: pa.Table) -> list[tuple[object, ...]]:
    return list(
        zip(
            ts_ns(table).tolist(),
            raw_from_decimal(table.column("price")).tolist(),
            raw_from_decimal(table.column("size")).tolist(),
            table.column("aggressor_side").to_pylist(),
            table.column("trade_id").to_pylist(),
            strict=True,
        )
    )


def _bar_rows(bars: pa.Table) -> list[tuple[object, ...]]:
    volume = [
        None if v is None else int(v.scaleb(bars.schema.field("volume").type.scale)) for v in bars["volume"].to_pylist()
    ]
    return list(
        zip(
            ts_ns(bars).tolist(),
            *(raw_from_decimal(bars.column(c)).tolist() for c in ("open", "high", "low", "close")),
            volume,
            strict=True,
        )
    )


def test_replay_file_yields_every_trade_of_the_file_exactly_in_order(
    service: MarketDataService, shared_data: Path
) -> None:
    path = shared_data / BTC_TRADES
    feed = replay_file(service, path, "BTC/USDT", "binance")
    events = drain(feed)

    table = read_file(path).table
    assert len(events) == table.num_rows == 2001
    assert all(type(e) is Trade for e in events)
    assert [(e.ts_event, e.price_raw, e.size_raw, e.aggressor_side, e.trade_id) for e in events] == _trade_rows(table)
    first = events[0]
    assert first.instrument_id == "BTC/USDT.BINANCE"
    assert (first.price, first.size, first.aggressor_side, first.trade_id) == (
        Decimal("39432.48"),
        Decimal("0.000263"),
        "sell",  # buyer_maker True: the seller took liquidity
        "553287559",
    )
    assert feed.clock_ns == events[-1].ts_event
    assert feed.events_emitted == 2001
    assert feed.passes == 1


def test_replaying_the_same_file_again_imports_nothing_and_replays_the_same_events(
    service: MarketDataService, shared_data: Path
) -> None:
    path = shared_data / BTC_TRADES
    first = drain(replay_file(service, path, "BTC/USDT", "binance"))
    second = drain(replay_file(service, path, "BTC/USDT", "binance"))

    assert second == first
    assert [d.rows for d in service.datasets("BTC/USDT", "binance")] == [2001]


def test_replay_file_picks_quotes_with_nullable_sizes_kept_exact(service: MarketDataService, shared_data: Path) -> None:
    path = shared_data / BTC_QUOTES
    events = drain(replay_file(service, path, "BTC/USDT", "binance"))

    table = read_file(path).table
    assert len(events) == 451
    assert all(type(e) is Quote for e in events)
    assert [e.ts_event for e in events] == ts_ns(table).tolist()
    assert [e.bid for e in events] == table.column("bid_price").to_pylist()
    assert [e.ask for e in events] == table.column("ask_price").to_pylist()
    assert [e.bid_size_raw for e in events] == raw_from_decimal(table.column("bid_size")).tolist()
    assert events[0].bid == Decimal("39432.99")


def test_replay_file_of_daily_bars_yields_bars_at_their_open_time(
    service: MarketDataService, shared_data: Path
) -> None:
    path = shared_data / ORCL_BARS
    feed = replay_file(service, path, "ORCL", "nasdaq")
    events = drain(feed)

    table = read_file(path).table
    assert feed.kind is Kind.BARS
    assert feed.timeframe == Timeframe.parse("1d")
    assert len(events) == 5036
    assert all(type(e) is Bar for e in events)
    assert [(e.ts_event, e.open_raw, e.high_raw, e.low_raw, e.close_raw, e.volume_raw) for e in events] == _bar_rows(
        table
    )
    assert all(e.ts_event % NS_PER_DAY == 0 for e in events)


def test_replay_file_of_bid_bars_replays_the_bid_dataset(service: MarketDataService, shared_data: Path) -> None:
    feed = replay_file(service, shared_data / GBP_BID, "GBP/USD", "fxcm")
    events = drain(feed, limit=3)

    assert feed.price_type is PriceType.BID
    assert [e.volume_raw for e in events] == [None, None, None]  # FX bars have no volume
    assert events[0].open == read_file(shared_data / GBP_BID).table.column("open")[0].as_py()


def test_replay_store_limits_to_the_range_and_crosses_day_partitions(
    service: MarketDataService, shared_data: Path
) -> None:
    path = shared_data / XRP_TRADES
    service.import_file(path, symbol="XRP/ETH", venue="binance")
    table = read_file(path).table
    ts = ts_ns(table)
    assert len({t // NS_PER_DAY for t in ts.tolist()}) == 3  # three day partitions

    whole = drain(replay_store(service, "XRP/ETH", "binance", Kind.TRADES))
    assert [(e.ts_event, e.price_raw, e.size_raw, e.aggressor_side, e.trade_id) for e in whole] == _trade_rows(table)

    start, end = int(ts[100]), int(ts[-100])
    part = drain(replay_store(service, "XRP/ETH", "binance", Kind.TRADES, None, start, end))
    expected = [e for e in whole if start <= e.ts_event < end]
    assert part == expected
    assert 0 < len(part) < len(whole)


def test_small_chunks_give_the_same_events(service: MarketDataService, shared_data: Path) -> None:
    service.import_file(shared_data / BTC_TRADES, symbol="BTC/USDT", venue="binance")
    instrument = service.instrument("BTC/USDT", "binance")

    default = drain(ReplayFeed(service, instrument, Kind.TRADES))
    chunked = drain(ReplayFeed(service, instrument, Kind.TRADES, chunk_rows=7))
    assert chunked == default


def test_bars_not_stored_are_built_from_stored_trades(service: MarketDataService, shared_data: Path) -> None:
    path = shared_data / BTC_TRADES
    service.import_file(path, symbol="BTC/USDT", venue="binance")
    tf = Timeframe.parse("5s")

    events = drain(replay_store(service, "BTC/USDT", "binance", Kind.BARS, tf))

    expected = _bar_rows(trades_to_bars(read_file(path).table, tf))
    assert [(e.ts_event, e.open_raw, e.high_raw, e.low_raw, e.close_raw, e.volume_raw) for e in events] == expected
    assert len(events) == 10  # 00:00:00 .. 00:00:45


def test_looping_shifts_each_pass_by_the_span_plus_one_step(service: MarketDataService, shared_data: Path) -> None:
    feed = replay_file(service, shared_data / BTC_TRADES, "BTC/USDT", "binance", loop=True)
    events = drain(feed, limit=3 * 2001 + 5)

    one = events[:2001]
    span = one[-1].ts_event - one[0].ts_event
    step = span // 2000
    assert step > 0
    for n in (1, 2):
        again = events[n * 2001 : (n + 1) * 2001]
        assert [e.ts_event - n * (span + step) for e in again] == [e.ts_event for e in one[: len(again)]]
        assert [e._replace(ts_event=0) for e in again] == [e._replace(ts_event=0) for e in one[: len(again)]]
        assert again[0].ts_event > events[n * 2001 - 1].ts_event  # strictly later than the pass before
    assert pairwise_non_decreasing([e.ts_event for e in events])
    assert feed.passes == 4
    assert feed.events_emitted == len(events)


def test_looping_bars_keeps_them_on_the_timeframe_grid(service: MarketDataService, shared_data: Path) -> None:
    feed = replay_file(service, shared_data / ORCL_BARS, "ORCL", "nasdaq", loop=True)
    events = drain(feed, limit=5036 + 2)

    assert events[5036].ts_event == events[5035].ts_event + NS_PER_DAY  # one step after the last bar
    assert events[5037].ts_event - events[5036].ts_event == events[1].ts_event - events[0].ts_event
    assert all(e.ts_event % NS_PER_DAY == 0 for e in events)


def test_an_empty_range_ends_at_once_even_when_looping(service: MarketDataService, shared_data: Path) -> None:
    service.import_file(shared_data / BTC_TRADES, symbol="BTC/USDT", venue="binance")
    feed = replay_store(service, "BTC/USDT", "binance", Kind.TRADES, None, 0, NS_PER_SECOND, loop=True)

    assert drain(feed) == []
    assert feed.clock_ns is None
    assert feed.events_emitted == 0


def test_speed_paces_events_at_n_times_real_time(service: MarketDataService, shared_data: Path) -> None:
    service.import_file(shared_data / BTC_TRADES, symbol="BTC/USDT", venue="binance")
    first = int(ts_ns(service.ticks("BTC/USDT", "binance", Kind.TRADES)).min())
    feed = replay_store(service, "BTC/USDT", "binance", Kind.TRADES, None, first, first + 2 * NS_PER_SECOND, speed=10)

    started = time.perf_counter()
    events = drain(feed)
    elapsed = time.perf_counter() - started

    span_s = (events[-1].ts_event - events[0].ts_event) / NS_PER_SECOND
    assert 1.5 < span_s <= 2.0
    assert 0.15 <= elapsed <= 1.0
    assert elapsed >= span_s / 10 * 0.9


def test_full_speed_is_fast_and_lets_other_tasks_run(service: MarketDataService, shared_data: Path) -> None:
    service.import_file(shared_data / BTC_TRADES, symbol="BTC/USDT", venue="binance")
    feed = replay_store(service, "BTC/USDT", "binance", Kind.TRADES, loop=True)
    ticks = 0

    async def other_task() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def main() -> list[Trade | Quote | Bar]:
        task = asyncio.create_task(other_task())
        try:
            return await take(feed, 20_000)
        finally:
            task.cancel()

    started = time.perf_counter()
    events = asyncio.run(main())
    elapsed = time.perf_counter() - started

    assert len(events) == 20_000
    data_span_s = (events[-1].ts_event - events[0].ts_event) / NS_PER_SECOND
    assert data_span_s > 400  # about ten passes of 46 s
    assert elapsed < 3.0
    assert ticks >= 20_000 // 256 - 2  # the feed gave the loop a turn about every 256 events


def test_bad_arguments_and_missing_data_are_refused_up_front(service: MarketDataService, shared_data: Path) -> None:
    with pytest.raises(NotFoundError):
        replay_store(service, "BTC/USDT", "binance", Kind.TRADES)
    service.import_file(shared_data / BTC_TRADES, symbol="BTC/USDT", venue="binance")
    instrument = service.instrument("BTC/USDT", "binance")
    with pytest.raises(NotFoundError, match="quotes"):
        ReplayFeed(service, instrument, Kind.QUOTES)
    with pytest.raises(InvalidInputError, match="timeframe"):
        ReplayFeed(service, instrument, Kind.BARS)
    with pytest.raises(InvalidInputError, match="timeframe"):
        ReplayFeed(service, instrument, Kind.TRADES, Timeframe.parse("1m"))
    with pytest.raises(InvalidInputError, match="speed"):
        ReplayFeed(service, instrument, Kind.TRADES, speed=0)


def test_iterating_again_continues_where_the_last_loop_stopped(service: MarketDataService, shared_data: Path) -> None:
    feed = replay_file(service, shared_data / BTC_TRADES, "BTC/USDT", "binance")

    async def twice() -> tuple[list[Trade | Quote | Bar], list[Trade | Quote | Bar]]:
        return await take(feed, 10), await take(feed, 10)

    a, b = asyncio.run(twice())
    fresh = drain(replay_store(service, "BTC/USDT", "binance", Kind.TRADES), 20)
    assert [*a, *b] == fresh
    assert feed.events_emitted == 20
