"""Live one-minute bars written to the real Parquet store and served back, also resampled to longer bars."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from smart_trader.core.ids import InstrumentId
from smart_trader.core.instruments import AssetClass
from smart_trader.data.catalog import infer_instrument
from smart_trader.data.model import Bar
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe
from smart_trader.live.bar_recorder import LiveBarRecorder

IID = InstrumentId("BTC/USDT.BINANCE")
MINUTE = 60_000_000_000
T0 = 1_610_064_000_000_000_000  # 2021-01-08 00:00 UTC, ns


def _bar(i: int, close: int, volume: int | None = 100_000) -> Bar:
    return Bar(IID, T0 + i * MINUTE, close - 100, close + 50, close - 200, close, volume, 2, 6)


def test_recorded_bars_are_stored_exactly_and_resampled(home: Path) -> None:
    service = MarketDataService(home)
    service.catalog.add(infer_instrument("BTC/USDT", "BINANCE", 2, 6, asset_class_hint=AssetClass.CRYPTO))
    recorder = LiveBarRecorder(service)
    closes = [3_900_000 + 10 * i for i in range(10)]
    for i, c in enumerate(closes):
        recorder.add(_bar(i, c, None if i == 3 else 100_000))
    asyncio.run(recorder.flush())
    assert recorder.bars_written == 10

    one = service.bars("BTC/USDT", "BINANCE", Timeframe.parse("1m"))
    assert one.num_rows == 10
    assert [Decimal(c) for c in one.column("close").to_pylist()] == [Decimal(c) / 100 for c in closes]
    assert one.column("volume").to_pylist()[3] is None and one.column("volume").to_pylist()[0] == Decimal("0.1")
    five = service.bars("BTC/USDT", "BINANCE", Timeframe.parse("5m"))
    assert five.num_rows == 2
    assert Decimal(five.column("close").to_pylist()[1]) == Decimal(closes[-1]) / 100


def test_a_second_flush_adds_later_bars_without_losing_the_first(home: Path) -> None:
    service = MarketDataService(home)
    service.catalog.add(infer_instrument("BTC/USDT", "BINANCE", 2, 6, asset_class_hint=AssetClass.CRYPTO))
    recorder = LiveBarRecorder(service)
    recorder.add(_bar(0, 3_900_000))
    asyncio.run(recorder.flush())
    recorder.add(_bar(1, 3_900_100))
    asyncio.run(recorder.flush())
    assert service.bars("BTC/USDT", "BINANCE", Timeframe.parse("1m")).num_rows == 2
