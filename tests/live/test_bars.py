"""LiveBarAggregator against the core's batch aggregation on real recorded files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from smart_trader.core.clock import NS_PER_SECOND
from smart_trader.core.errors import InvalidInputError
from smart_trader.core.ids import InstrumentId
from smart_trader.data.aggregation import quotes_to_bars, resample_bars, trades_to_bars
from smart_trader.data.model import Bar, Quote, Trade
from smart_trader.data.readers import read_file
from smart_trader.data.schema import PriceType, raw_from_decimal, ts_ns
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe
from smart_trader.live.bars import LiveBarAggregator
from smart_trader.live.replay import replay_file

from .conftest import drain

TF = [Timeframe.parse(t) for t in ("1s", "5s", "15s", "1m")]
IID = InstrumentId("BTC/USDT.BINANCE")


def _batch(bars: pa.Table) -> list[tuple[int, int, int, int, int, int | None]]:
    scale = bars.schema.field("volume").type.scale
    volume = [None if v is None else int(v.scaleb(scale)) for v in bars.column("volume").to_pylist()]
    return list(
        zip(
            ts_ns(bars).tolist(),
            *(raw_from_decimal(bars.column(c)).tolist() for c in ("open", "high", "low", "close")),
            volume,
            strict=True,
        )
    )


def _live(bars: list[Bar]) -> list[tuple[int, int, int, int, int, int | None]]:
    return [(b.ts_event, b.open_raw, b.high_raw, b.low_raw, b.close_raw, b.volume_raw) for b in bars]


def test_closed_live_bars_equal_the_batch_bars_of_a_real_trades_file(
    service: MarketDataService, shared_data: Path
) -> None:
    path = shared_data / "trades/BTCUSDT_2021-01-08.binance.trades.parquet"
    events = drain(replay_file(service, path, "BTC/USDT", "binance"))
    table = read_file(path).table
    agg = LiveBarAggregator(TF)

    closed: dict[Timeframe, list[Bar]] = {tf: [] for tf in TF}
    for event in events:
        before = {tf: agg.current(IID, tf) for tf in TF}
        rolled = agg.update(event)
        left = [tf for tf, bar in before.items() if bar is not None and event.ts_event // tf.ns * tf.ns != bar.ts_event]
        assert rolled == [before[tf] for tf in left]  # one per timeframe that rolled, in timeframe order
        for tf, bar in zip(left, rolled, strict=True):
            closed[tf].append(bar)

    for tf in TF:
        batch = _batch(trades_to_bars(table, tf))
        current = agg.current(IID, tf)
        assert current is not None
        assert _live(closed[tf]) == batch[:-1], tf
        assert _live([current]) == batch[-1:], tf  # the last bar is still in progress
    assert len(closed[Timeframe.parse("1s")]) > 40
    assert closed[Timeframe.parse("5s")][0].volume == trades_to_bars(table, Timeframe.parse("5s"))["volume"][0].as_py()
    assert all(b.price_precision == 2 and b.size_precision == 6 for b in closed[TF[0]])


def test_quote_bars_follow_the_bid_by_default_and_the_ask_on_request(
    service: MarketDataService, shared_data: Path
) -> None:
    path = shared_data / "quotes/BTCUSDT.binance.quotes.parquet"
    events = drain(replay_file(service, path, "BTC/USDT", "binance"))
    table = read_file(path).table
    tf = Timeframe.parse("5s")

    for price_type in (PriceType.BID, PriceType.ASK):
        agg = LiveBarAggregator([tf], quote_price=price_type)
        live = [bar for event in events for bar in agg.update(event)] + agg.flush()
        assert _live(live) == _batch(quotes_to_bars(table, tf, price_type)), price_type
        assert all(b.volume_raw is None for b in live)
        assert live[0].open == (events[0].bid if price_type is PriceType.BID else events[0].ask)


def test_short_bars_combine_into_longer_bars_like_resample(service: MarketDataService, shared_data: Path) -> None:
    path = shared_data / "bars/XRP-ETH_1m.binance.feather"
    feed = replay_file(service, path, "XRP/ETH", "binance")
    events = drain(feed)
    table = read_file(path).table
    assert feed.timeframe == Timeframe.parse("1m")

    for text in ("5m", "1h"):
        tf = Timeframe.parse(text)
        agg = LiveBarAggregator([tf])
        live = [bar for event in events for bar in agg.update(event)] + agg.flush()
        assert _live(live) == _batch(resample_bars(table, tf, Timeframe.parse("1m"))), text


def _trade(ts: int, price: int, size: int = 1, iid: str = "X.V") -> Trade:
    return Trade(InstrumentId(iid), ts, price, size, None, None, 2, 0)


def test_current_bar_and_roll_over_on_hand_made_trades() -> None:
    s1, s5 = Timeframe.parse("1s"), Timeframe.parse("5s")
    agg = LiveBarAggregator([s5, s1])
    iid = InstrumentId("X.V")
    assert agg.current(iid, s1) is None

    assert agg.update(_trade(3 * NS_PER_SECOND + 7, 100, 2)) == []
    assert agg.update(_trade(3 * NS_PER_SECOND + 9, 105, 3)) == []
    assert agg.current(iid, s1) == Bar(iid, 3 * NS_PER_SECOND, 100, 105, 100, 105, 5, 2, 0)
    assert agg.update(_trade(4 * NS_PER_SECOND, 90)) == [Bar(iid, 3 * NS_PER_SECOND, 100, 105, 100, 105, 5, 2, 0)]
    rolled = agg.update(_trade(6 * NS_PER_SECOND, 95))
    assert rolled == [Bar(iid, 0, 100, 105, 90, 90, 6, 2, 0), Bar(iid, 4 * NS_PER_SECOND, 90, 90, 90, 90, 1, 2, 0)]
    assert agg.current(iid, s5) == Bar(iid, 5 * NS_PER_SECOND, 95, 95, 95, 95, 1, 2, 0)
    assert agg.current(iid, s5).close == Decimal("0.95")

    other = agg.update(_trade(6 * NS_PER_SECOND, 7, iid="Y.V"))  # instruments are independent
    assert other == []
    assert agg.current(InstrumentId("Y.V"), s1) == Bar(InstrumentId("Y.V"), 6 * NS_PER_SECOND, 7, 7, 7, 7, 1, 2, 0)


def test_time_going_back_is_refused() -> None:
    agg = LiveBarAggregator([Timeframe.parse("1s")])
    agg.update(_trade(5 * NS_PER_SECOND, 100))
    agg.update(_trade(5 * NS_PER_SECOND - 1 + NS_PER_SECOND, 100))  # same bar, later
    with pytest.raises(InvalidInputError, match="before"):
        agg.update(_trade(5 * NS_PER_SECOND - 1, 100))


def test_close_until_closes_bars_whose_interval_ended() -> None:
    m1 = Timeframe.parse("1m")
    s1 = Timeframe.parse("1s")
    agg = LiveBarAggregator([m1, s1])
    agg.update(_trade(10 * NS_PER_SECOND, 100))

    assert agg.close_until(11 * NS_PER_SECOND - 1) == []
    assert agg.close_until(11 * NS_PER_SECOND) == [
        Bar(InstrumentId("X.V"), 10 * NS_PER_SECOND, 100, 100, 100, 100, 1, 2, 0)
    ]
    assert agg.current(InstrumentId("X.V"), s1) is None
    assert agg.current(InstrumentId("X.V"), m1) is not None  # the minute goes on
    with pytest.raises(InvalidInputError, match="already closed"):
        agg.update(_trade(10 * NS_PER_SECOND + 5, 999))
    assert agg.current(InstrumentId("X.V"), m1) == Bar(InstrumentId("X.V"), 0, 100, 100, 100, 100, 1, 2, 0)  # unchanged
    assert agg.update(_trade(12 * NS_PER_SECOND, 101)) == []
    assert [b.ts_event for b in agg.flush()] == [12 * NS_PER_SECOND, 0]


def test_quote_bars_refuse_mid_and_last() -> None:
    with pytest.raises(InvalidInputError, match="bid or the ask"):
        LiveBarAggregator([Timeframe.parse("1m")], quote_price=PriceType.MID)
    with pytest.raises(InvalidInputError, match="timeframe"):
        LiveBarAggregator([])
    q = Quote(IID, 0, 10, 12, None, None, 0, 0)
    agg = LiveBarAggregator([Timeframe.parse("1m")], quote_price=PriceType.ASK)
    agg.update(q)
    assert agg.current(IID, Timeframe.parse("1m")) == Bar(IID, 0, 12, 12, 12, 12, None, 0, 0)
