"""Every real file imports, round-trips through the store unchanged and aggregates; bad input changes nothing."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from smart_trader.core.errors import DataValidationError, InvalidInputError, NotFoundError
from smart_trader.data.readers import read_file
from smart_trader.data.schema import Kind, PriceType
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe

# file, symbol, venue, timeframe to aggregate to
FILES = [
    ("bars/ORCL_1995-2014_1d.yahoo.csv", "ORCL", "NASDAQ", None),
    ("bars/NVDA_1999-2014_1d.yahoo.csv", "NVDA", "NASDAQ", None),
    ("bars/ETH-BTC_2018-01_5m.binance.feather", "ETH/BTC", "BINANCE", "1h"),
    ("bars/LTC-BTC_2018-01_5m.binance.feather", "LTC/BTC", "BINANCE", "1h"),
    ("bars/XRP-ETH_1m.binance.feather", "XRP/ETH", "BINANCE", "15m"),
    ("bars/GBPUSD_2012_1m_bid.fxcm.csv", "GBP/USD", "FXCM", "1h"),
    ("bars/GBPUSD_2012_1m_ask.fxcm.csv", "GBP/USD", "FXCM", "1h"),
    ("trades/BTCUSDT_2021-01-08.binance.trades.parquet", "BTC/USDT", "BINANCE", "10s"),
    ("trades/XRP-ETH_2019-10.binance.trades.parquet", "XRP/ETH", "BINANCE", "1m"),
    ("trades/BCHEUR.kraken.trades.csv", "BCH/EUR", "KRAKEN", "1h"),
    ("quotes/USDJPY_2013-01.truefx.quotes.csv", "USD/JPY", "TRUEFX", "1m"),
    ("quotes/BTCUSDT.binance.quotes.parquet", "BTC/USDT", "BINANCE", "1m"),
]


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(c, "ascending") for c in table.column_names if c != "aggressor_side"])


@pytest.mark.parametrize(("rel", "symbol", "venue", "agg"), FILES)
def test_every_file_imports_round_trips_unchanged_and_aggregates(
    shared_data: Path, tmp_path: Path, rel: str, symbol: str, venue: str, agg: str | None
) -> None:
    svc = MarketDataService(tmp_path)
    path = shared_data / rel
    report = svc.import_file(path, symbol=symbol, venue=venue)
    original = read_file(path)
    assert report.rows_read == original.table.num_rows == report.rows_added
    stored = svc.store.read(report.key)
    assert _sorted(stored).equals(_sorted(original.table))

    again = svc.import_file(path, symbol=symbol, venue=venue)
    assert again.rows_added == 0
    assert svc.store.read(report.key).num_rows == original.table.num_rows

    if original.kind is Kind.BARS:
        tf = Timeframe.parse(agg) if agg else None
        if tf is None:  # daily bars: nothing longer than 1d; resampling to their own timeframe changes nothing
            assert svc.bars(symbol, venue, Timeframe.parse("1d")).num_rows == original.table.num_rows
            return
        bars = svc.bars(symbol, venue, tf, price_type=original.price_type)
    else:
        assert agg is not None
        bars = svc.bars(symbol, venue, Timeframe.parse(agg))
    assert 0 < bars.num_rows <= original.table.num_rows
    lows = bars.column("low").to_pylist()
    highs = bars.column("high").to_pylist()
    assert all(lo <= hi for lo, hi in zip(lows, highs, strict=True))
    if original.kind is Kind.TRADES:
        assert sum(bars.column("volume").to_pylist(), Decimal(0)) == sum(
            original.table.column("size").to_pylist(), Decimal(0)
        )


def test_fxcm_bid_and_ask_bars_are_separate_datasets(shared_data: Path, tmp_path: Path) -> None:
    svc = MarketDataService(tmp_path)
    bid = svc.import_file(shared_data / "bars/GBPUSD_2012_1m_bid.fxcm.csv", symbol="GBP/USD", venue="FXCM")
    ask = svc.import_file(shared_data / "bars/GBPUSD_2012_1m_ask.fxcm.csv", symbol="GBP/USD", venue="FXCM")
    assert bid.key.price_type is PriceType.BID and ask.key.price_type is PriceType.ASK
    b = svc.bars("GBP/USD", "FXCM", Timeframe.parse("1m"), price_type=PriceType.BID).column("close").to_pylist()
    a = svc.bars("GBP/USD", "FXCM", Timeframe.parse("1m"), price_type=PriceType.ASK).column("close").to_pylist()
    assert b == read_file(shared_data / "bars/GBPUSD_2012_1m_bid.fxcm.csv").table.column("close").to_pylist()
    assert a == read_file(shared_data / "bars/GBPUSD_2012_1m_ask.fxcm.csv").table.column("close").to_pylist()
    assert b != a


def test_a_malformed_file_names_file_row_and_rule_and_changes_nothing(shared_data: Path, tmp_path: Path) -> None:
    svc = MarketDataService(tmp_path / "home")
    svc.import_file(shared_data / "bars/ORCL_1995-2014_1d.yahoo.csv", symbol="ORCL", venue="NASDAQ")
    before = _tree_digest(tmp_path / "home")
    bad = tmp_path / "ORCL_more.yahoo.csv"
    lines = (shared_data / "bars/ORCL_1995-2014_1d.yahoo.csv").read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[2], "0.5", 1)  # high below open and close on data row 3
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError) as err:
        svc.import_file(bad, symbol="ORCL", venue="NASDAQ")
    assert err.value.row == 3 and str(bad) in str(err.value)
    assert _tree_digest(tmp_path / "home") == before


def test_a_price_off_the_instruments_tick_size_is_refused_and_changes_nothing(
    shared_data: Path, tmp_path: Path
) -> None:
    svc = MarketDataService(tmp_path / "home")
    svc.import_file(shared_data / "trades/BCHEUR.kraken.trades.csv", symbol="BCH/EUR", venue="KRAKEN")
    before = _tree_digest(tmp_path / "home")
    bad = tmp_path / "BCHEUR.kraken.trades.csv"
    bad.write_text("1672600000,90.555,1.0\n")  # the instrument's prices have 2 decimals
    with pytest.raises(DataValidationError, match=r"decimals|tick"):
        svc.import_file(bad, symbol="BCH/EUR", venue="KRAKEN")
    assert _tree_digest(tmp_path / "home") == before


def test_unknown_symbol_and_missing_data_are_clear_errors(shared_data: Path, tmp_path: Path) -> None:
    svc = MarketDataService(tmp_path)
    with pytest.raises(NotFoundError, match="NOPE"):
        svc.bars("NOPE", "NASDAQ", Timeframe.parse("1d"))
    svc.import_file(shared_data / "bars/ORCL_1995-2014_1d.yahoo.csv", symbol="ORCL", venue="NASDAQ")
    with pytest.raises(NotFoundError, match="no stored data makes 1m bars"):
        svc.bars("ORCL", "NASDAQ", Timeframe.parse("1m"))
    with pytest.raises(InvalidInputError, match="holds bars"):
        svc.import_file(
            shared_data / "bars/NVDA_1999-2014_1d.yahoo.csv", symbol="NVDA", venue="NASDAQ", kind=Kind.TRADES
        )


def test_order_book_depth_files_import_as_the_book_kind(shared_data: Path, tmp_path: Path) -> None:
    report = MarketDataService(tmp_path).import_file(
        shared_data / "orderbook/BTCUSDT.binance.depth-snapshot.csv", symbol="BTC/USDT", venue="BINANCE"
    )
    assert (report.key.kind, report.rows_added) == (Kind.BOOK, 100)


def test_reimporting_a_bar_with_other_values_is_a_conflict_not_a_second_bar(shared_data: Path, tmp_path: Path) -> None:
    svc = MarketDataService(tmp_path / "home")
    src = shared_data / "bars/ORCL_1995-2014_1d.yahoo.csv"
    svc.import_file(src, symbol="ORCL", venue="NASDAQ")
    before = _tree_digest(tmp_path / "home")
    lines = src.read_text().splitlines()
    fields = lines[5].split(",")
    fields[4] = "2.200000"  # another close for a bar already stored (still inside its high and low)
    fields[2], fields[3] = "2.300000", "2.100000"
    changed = tmp_path / "ORCL_adjusted.yahoo.csv"
    changed.write_text("\n".join([lines[0], ",".join(fields)]) + "\n")
    with pytest.raises(InvalidInputError, match=r"ts_event 1995-01-09.*already stored"):
        svc.import_file(changed, symbol="ORCL", venue="NASDAQ", timeframe=Timeframe.parse("1d"))
    assert _tree_digest(tmp_path / "home") == before


def test_a_timeframe_that_contradicts_the_file_is_refused(shared_data: Path, tmp_path: Path) -> None:
    svc = MarketDataService(tmp_path)
    with pytest.raises(InvalidInputError, match="5m"):
        svc.import_file(
            shared_data / "bars/ETH-BTC_2018-01_5m.binance.feather", symbol="ETH/BTC", venue="BINANCE",
            timeframe=Timeframe.parse("1m"),
        )  # fmt: skip
    assert svc.datasets() == []
    with pytest.raises(NotFoundError):
        svc.instrument("ETH/BTC", "BINANCE")  # nothing half-defined by the refused import
