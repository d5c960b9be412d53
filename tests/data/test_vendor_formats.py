"""Every vendor format on a real sample (``tests/data/fixtures``, provenance in its README): detected with no
flags beyond ``--symbol`` (and ``--tz`` where the file has naive local times), read with the vendor's semantics,
stored and read back unchanged, aggregated, and backtested.

Expected values are the files' own first rows, converted by hand (noted beside each case).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from smart_trader.core.errors import DataValidationError
from smart_trader.data.readers import detect_format, read_file
from smart_trader.data.schema import Kind, PriceType, ts_ns
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe
from smart_trader.strategy.builtin.sma_cross import SmaCross
from smart_trader.strategy.engine import BacktestEngine

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass(frozen=True)
class Case:
    file: str
    format: str
    kind: Kind
    rows: int
    first_ts: str  # the first row's time in UTC, converted by hand from the file's text
    first_price: str  # bars: open; trades: price; quotes: bid
    symbol: str = "BTC/USDT"
    tz: str | None = None
    choose: str | None = None  # the instrument to read from a file of several
    price_type: PriceType = PriceType.LAST
    side: str | None = None  # trades: the first row's aggressor


CASES = [
    # 1651681380000 ms
    Case("binance/BTCUSDT-1m-2022-05-04.csv", "binance-klines-csv", Kind.BARS, 275, "2022-05-04T16:23:00", "39339.90"),
    # header line of the futures files; 1651708800000 ms
    Case(
        "binance/BTCUSDT-1m-2022-05-05.um-header.csv",
        "binance-klines-csv",
        Kind.BARS,
        142,
        "2022-05-05T00:00:00",
        "39684.10",
    ),
    # microseconds (spot files from 2025): 1634943780000000 µs
    Case(
        "binance/BTCUSDT-1m-2021-10-22.spot-us.csv",
        "binance-klines-csv",
        Kind.BARS,
        9,
        "2021-10-22T23:03:00",
        "60685.22",
    ),
    # is_buyer_maker True: the aggressor sold; 1634942949263 ms
    Case(
        "binance/BTCUSDT-trades-2021-10-22.rest.csv",
        "binance-trades-csv",
        Kind.TRADES,
        10,
        "2021-10-22T22:49:09.263",
        "60650.00",
        side="sell",
    ),
    # is_buyer_maker False: the aggressor bought; 1634944096633 ms
    Case(
        "binance/BTCUSDT-aggTrades-2021-10-22.rest.csv",
        "binance-aggtrades-csv",
        Kind.TRADES,
        10,
        "2021-10-22T23:08:16.633",
        "60759.6",
        side="buy",
    ),
    # [1619827200000, 57697.25, ...]
    Case("ccxt/BTC_USDT-5m.json", "ccxt-ohlcv-json", Kind.BARS, 120, "2021-05-01T00:00:00", "57697.25"),
    # 2020.01.30 01:25 server time, EET = UTC+2 in January
    Case(
        "metatrader/EURUSD1.csv",
        "mt4-csv",
        Kind.BARS,
        120,
        "2020-01-29T23:25:00",
        "1.10160",
        "EUR/USD",
        tz="Europe/Athens",
    ),
    Case(
        "metatrader/EURUSD1.mt5.csv",
        "mt5-bars-csv",
        Kind.BARS,
        120,
        "2020-01-29T23:25:00",
        "1.10160",
        "EUR/USD",
        tz="Europe/Athens",
    ),
    # 20150201 170000 EST without DST = 22:00 UTC
    Case(
        "histdata/DAT_NT_EURUSD_M1_201502.csv",
        "histdata-ascii-bars",
        Kind.BARS,
        180,
        "2015-02-01T22:00:00",
        "1.131050",
        "EUR/USD",
    ),
    # 20120201 000003660 EST = 05:00:03.660 UTC
    Case(
        "histdata/DAT_ASCII_EURUSD_T_201202.csv",
        "histdata-ascii-ticks",
        Kind.QUOTES,
        8,
        "2012-02-01T05:00:03.660",
        "1.306600",
        "EUR/USD",
    ),
    # Gmt time 14.03.2019 00:00:00.000
    Case(
        "dukascopy/AUDUSD_1m_2019-03-14_jforex.csv",
        "dukascopy-bars-csv",
        Kind.BARS,
        150,
        "2019-03-14T00:00:00",
        "0.70856",
        "AUD/USD",
    ),
    # dukascopy-node layouts are plain tables: the generic reader (bid bars, as the file name says)
    Case(
        "dukascopy/dukascopy-node_eurusd-d1-bid-2021-02.csv",
        "generic",
        Kind.BARS,
        24,
        "2021-02-01T00:00:00",
        "1.21225",
        "EUR/USD",
        price_type=PriceType.BID,
    ),
    Case(
        "dukascopy/dukascopy-node_eurusd-tick-2019-02-04T00.csv",
        "generic",
        Kind.QUOTES,
        161,
        "2019-02-04T00:00:00.994",
        "1.14543",
        "EUR/USD",
    ),
    # Tardis: µs exchange times
    Case(
        "tardis/bitmex_trades_2020-04-01_XBTUSD.head1.csv",
        "tardis-trades-csv",
        Kind.TRADES,
        1,
        "2020-04-01T00:00:02.957",
        "6425.5",
        "XBT/USD",
        side="buy",
    ),
    Case(
        "tardis/huobi-dm-swap_quotes_2020-04-01_BTC-USD.head1.csv",
        "tardis-quotes-csv",
        Kind.QUOTES,
        1,
        "2020-04-01T00:00:01.147",
        "6422.9",
        "BTC/USD",
    ),
    # Databento: several instruments, one chosen with --symbol; ns times, prices at 1e-9
    Case(
        "databento/xnas-itch-20250303.ohlcv-1m.dbn.zst",
        "databento-dbn",
        Kind.BARS,
        3,
        "2025-03-03T09:00:00",
        "124.56",
        "NVDA",
        choose="NVDA",
    ),
    Case(
        "databento/xnys-trades-20230929.trades.dbn.zst",
        "databento-dbn",
        Kind.TRADES,
        1,
        "2023-09-29T12:00:00.212984608",
        "32.20",
        "PFE",
        choose="PFE",
    ),
    Case(
        "databento/dukascopy-eurusd-20190204.mbp-1.dbn.zst",
        "databento-dbn",
        Kind.QUOTES,
        161,
        "2019-02-04T00:00:00.994",
        "1.14543",
        "EUR/USD",
    ),
    # the plain OHLCV CSV of the issue: volumes above 1e8 with float noise
    Case("perp/BTCUSDT-PERP_1m_2022-05-04.csv", "generic", Kind.BARS, 275, "2022-05-04T16:23:00", "39339.90"),
]
FIRST_PRICE = {Kind.BARS: "open", Kind.TRADES: "price", Kind.QUOTES: "bid_price"}


def _id(case: Case) -> str:
    return case.file.split("/")[-1]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_a_real_vendor_file_is_recognised_and_read_with_its_semantics(case: Case) -> None:
    path = FIXTURES / case.file

    result = read_file(path, tz=case.tz, symbol=case.choose)

    assert detect_format(path) == case.format
    assert (result.format, result.kind, result.table.num_rows) == (case.format, case.kind, case.rows)
    assert ts_ns(result.table)[0] == np.datetime64(case.first_ts, "ns").astype(np.int64)
    assert Decimal(result.table.column(FIRST_PRICE[case.kind])[0].as_py()) == Decimal(case.first_price)
    if case.kind is Kind.BARS:
        assert result.price_type is case.price_type
    if case.side is not None:
        assert result.table.column("aggressor_side")[0].as_py() == case.side
    assert result.notes  # the import says how it read the file


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_an_imported_vendor_file_round_trips_aggregates_and_backtests(case: Case, tmp_path: Path) -> None:
    svc = MarketDataService(tmp_path / "home")
    venue = "TEST"

    report = svc.import_file(FIXTURES / case.file, symbol=case.symbol, venue=venue, tz=case.tz)
    read = read_file(FIXTURES / case.file, tz=case.tz, symbol=case.choose or case.symbol)
    stored = svc.store.read(report.key)

    assert report.rows_added == case.rows
    assert stored.equals(read.table)  # unchanged through the store
    timeframe = (report.key.timeframe or Timeframe.parse("1s")) if case.kind is Kind.BARS else Timeframe.parse("1s")
    coarser = Timeframe(min(timeframe.seconds * 5, 86_400)) if case.kind is Kind.BARS else Timeframe.parse("1m")
    bars = svc.bars(case.symbol, venue, coarser, price_type=None if case.kind is not Kind.QUOTES else PriceType.BID)
    _assert_aggregated(read.table, case.kind, bars, coarser)

    fine = svc.bars(case.symbol, venue, timeframe if case.kind is Kind.BARS else Timeframe.parse("1s"))
    engine = BacktestEngine(starting_cash=Decimal(100_000))
    engine.add_bars(
        svc.instrument(case.symbol, venue), fine, timeframe if case.kind is Kind.BARS else Timeframe.parse("1s")
    )
    result = engine.run(SmaCross(fast=2, slow=3))
    assert result.stats.bars_processed == fine.num_rows


def _assert_aggregated(source: pa.Table, kind: Kind, bars: pa.Table, timeframe: Timeframe) -> None:
    """The first built bar is the first interval's open, max, min and last of the source (exact)."""
    price = {Kind.BARS: ("open", "high", "low", "close"), Kind.TRADES: ("price",) * 4, Kind.QUOTES: ("bid_price",) * 4}
    frame = pl.from_arrow(source)
    assert isinstance(frame, pl.DataFrame)
    ts = ts_ns(source)
    first = ts[0] - ts[0] % timeframe.ns
    bucket = frame.filter(pl.Series((ts - ts % timeframe.ns) == first))
    o, h, low, c = price[kind]
    expected = (bucket[o][0], bucket[h].max(), bucket[low].min(), bucket[c][-1])
    got = tuple(bars.column(n)[0].as_py() for n in ("open", "high", "low", "close"))
    assert tuple(Decimal(v) for v in got) == tuple(Decimal(v) for v in expected)
    assert ts_ns(bars)[0] == first


def test_dukascopy_volumes_in_millions_are_stored_in_base_units() -> None:
    path = FIXTURES / "dukascopy/AUDUSD_1m_2019-03-14_jforex.csv"  # first row's Volume: 45.72 (millions)

    result = read_file(path)

    assert Decimal(result.table.column("volume")[0].as_py()) == Decimal("45720000")
    assert "Dukascopy volumes are in millions: stored × 1,000,000 in base units" in result.notes


@pytest.mark.parametrize("clock", ["gmt", "local"])
def test_dukascopy_tick_exports_in_gmt_or_local_time(tmp_path: Path, clock: str) -> None:
    # the real dukascopy-node ticks written in the JForex tick layout (Gmt time, or Local time with its offset)
    source = FIXTURES / "dukascopy/dukascopy-node_eurusd-tick-2019-02-04T00.csv"
    rows = list(csv.DictReader(source.open()))
    path = tmp_path / "EURUSD_Ticks.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["Gmt time" if clock == "gmt" else "Local time", "Ask", "Bid", "AskVolume", "BidVolume"])
        for r in rows:
            ms = int(r["timestamp"])
            when = np.datetime64(ms + (2 * 3_600_000 if clock == "local" else 0), "ms").astype(object)
            text = when.strftime("%d.%m.%Y %H:%M:%S.") + f"{ms % 1000:03d}" + (" GMT+0200" if clock == "local" else "")
            out.writerow([text, r["askPrice"], r["bidPrice"], r["askVolume"], r["bidVolume"]])

    result = read_file(path)

    assert (result.format, result.kind, result.table.num_rows) == ("dukascopy-ticks-csv", Kind.QUOTES, len(rows))
    assert ts_ns(result.table).tolist() == [int(r["timestamp"]) * 1_000_000 for r in rows]
    assert [Decimal(v) for v in result.table.column("bid_size").to_pylist()[:2]] == [
        Decimal(r["bidVolume"]) * 10**6 for r in rows[:2]
    ]


def test_a_tardis_book_ticker_file_reads_as_quotes() -> None:
    result = read_file(FIXTURES / "tardis/binance-futures_book_ticker_2024-04-01_ETHUSDT.head1.csv")

    assert (result.format, result.kind) == ("tardis-quotes-csv", Kind.QUOTES)
    assert Decimal(result.table.column("bid_price")[0].as_py()) == Decimal("3648.79")


def test_a_broker_session_bar_off_the_hour_is_refused_naming_file_row_and_rule(tmp_path: Path) -> None:
    path = FIXTURES / "generic/EURUSD60_date_time_columns.csv"  # MT4 H1 with a 22:05 session-open bar, row 9

    with pytest.raises(DataValidationError) as err:
        MarketDataService(tmp_path / "home").import_file(path, symbol="EUR/USD", venue="BROKER", tz="Europe/London")

    assert (err.value.file, err.value.row, err.value.rule) == (str(path), 9, "bar-alignment")
    assert not (tmp_path / "home" / "market-data").exists() or not any((tmp_path / "home").rglob("*.parquet"))
