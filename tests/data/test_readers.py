"""Readers: every real file in ../shared/data reads exactly, formats are detected, options apply."""

from __future__ import annotations

import calendar
import csv
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from smart_trader.core.errors import DataValidationError, InvalidInputError, NotFoundError
from smart_trader.data.readers import ReadResult, detect_format, read_file
from smart_trader.data.schema import Kind, PriceType, raw_from_decimal, raw_from_float, schema_for
from smart_trader.data.timeframes import Timeframe

D = Decimal


def ns(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, frac_ns: int = 0) -> int:
    """ns since the epoch of a UTC wall-clock time, in integers only."""
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1_000_000_000 + frac_ns


def row(result: ReadResult, i: int) -> dict[str, Any]:
    """Row ``i`` (negative from the end) with ``ts_event`` as int ns."""
    i = i % result.table.num_rows
    values: dict[str, Any] = result.table.slice(i, 1).to_pylist()[0]
    values["ts_event"] = result.table.column("ts_event").cast(pa.int64())[i].as_py()
    return values


# file, format, kind, rows (data README), price precision, size precision, timeframe, price type
REAL_FILES = [
    ("bars/ORCL_1995-2014_1d.yahoo.csv", "yahoo-csv", Kind.BARS, 5036, 6, 0, "1d", PriceType.LAST),
    ("bars/NVDA_1999-2014_1d.yahoo.csv", "yahoo-csv", Kind.BARS, 4012, 6, 0, "1d", PriceType.LAST),
    ("bars/ETH-BTC_2018-01_5m.binance.feather", "ccxt-ohlcv-feather", Kind.BARS, 5760, 8, 8, "5m", PriceType.LAST),
    ("bars/LTC-BTC_2018-01_5m.binance.feather", "ccxt-ohlcv-feather", Kind.BARS, 5760, 8, 8, "5m", PriceType.LAST),
    ("bars/XRP-ETH_1m.binance.feather", "ccxt-ohlcv-feather", Kind.BARS, 2469, 8, 0, "1m", PriceType.LAST),
    ("bars/GBPUSD_2012_1m_bid.fxcm.csv", "fxcm-csv", Kind.BARS, 30117, 5, 0, "1m", PriceType.BID),
    ("bars/GBPUSD_2012_1m_ask.fxcm.csv", "fxcm-csv", Kind.BARS, 30117, 5, 0, "1m", PriceType.ASK),
    (
        "trades/BTCUSDT_2021-01-08.binance.trades.parquet",
        "binance-trades-parquet",
        Kind.TRADES,
        2001,
        2,
        6,
        None,
        PriceType.LAST,
    ),
    (
        "trades/XRP-ETH_2019-10.binance.trades.parquet",
        "ccxt-trades-parquet",
        Kind.TRADES,
        12477,
        8,
        0,
        None,
        PriceType.LAST,
    ),
    ("trades/BCHEUR.kraken.trades.csv", "kraken-trades-csv", Kind.TRADES, 148, 2, 8, None, PriceType.LAST),
    ("quotes/USDJPY_2013-01.truefx.quotes.csv", "truefx-quotes-csv", Kind.QUOTES, 1000, 3, 0, None, PriceType.LAST),
    ("quotes/BTCUSDT.binance.quotes.parquet", "binance-quotes-parquet", Kind.QUOTES, 451, 2, 6, None, PriceType.LAST),
]


@pytest.mark.parametrize(("name", "fmt", "kind", "rows", "pp", "sp", "timeframe", "price_type"), REAL_FILES)
def test_every_real_file_reads_into_its_kind_schema(
    shared_data: Path,
    name: str,
    fmt: str,
    kind: Kind,
    rows: int,
    pp: int,
    sp: int,
    timeframe: str | None,
    price_type: PriceType,
) -> None:
    path = shared_data / name

    result = read_file(path)

    assert detect_format(path) == fmt
    assert (result.format, result.kind, result.table.num_rows) == (fmt, kind, rows)
    assert (result.price_precision, result.size_precision) == (pp, sp)
    assert result.table.schema.equals(schema_for(kind, pp, sp))
    assert result.timeframe == (None if timeframe is None else Timeframe.parse(timeframe))
    assert result.price_type is price_type
    assert result.source == str(path)


def bar(ts: int, o: str, h: str, lo: str, c: str, v: str | None) -> dict[str, Any]:
    return {"ts_event": ts, "open": D(o), "high": D(h), "low": D(lo), "close": D(c), "volume": v and D(v)}


def trade(ts: int, price: str, size: str, side: str | None, trade_id: str | None) -> dict[str, Any]:
    return {"ts_event": ts, "price": D(price), "size": D(size), "aggressor_side": side, "trade_id": trade_id}


def quote(ts: int, bid: str, ask: str, bid_size: str | None, ask_size: str | None) -> dict[str, Any]:
    sizes = {"bid_size": bid_size and D(bid_size), "ask_size": ask_size and D(ask_size)}
    return {"ts_event": ts, "bid_price": D(bid), "ask_price": D(ask), **sizes}


# first and last rows, typed from the files by hand
FIRST_LAST: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "bars/ORCL_1995-2014_1d.yahoo.csv",
        bar(ns(1995, 1, 3), "2.179012", "2.191358", "2.117284", "2.117284", "36301200"),
        bar(ns(2014, 12, 31), "45.450001", "45.560001", "44.970001", "44.970001", "13269200"),
    ),
    (
        "bars/NVDA_1999-2014_1d.yahoo.csv",
        bar(ns(1999, 1, 22), "1.750000", "1.953125", "1.552083", "1.640625", "67867200"),
        bar(ns(2014, 12, 31), "20.400000", "20.510000", "19.990000", "20.049999", "4157500"),
    ),
    (
        "bars/ETH-BTC_2018-01_5m.binance.feather",
        bar(ns(2018, 1, 10, 4, 55), "0.0984", "0.0994766", "0.09828605", "0.0994766", "1820.54447418"),
        bar(ns(2018, 1, 30, 4, 50), "0.10440995", "0.10441058", "0.10400025", "0.10441057", "31.94851561"),
    ),
    (
        "bars/LTC-BTC_2018-01_5m.binance.feather",
        bar(ns(2018, 1, 10, 4, 55), "0.0169325", "0.01702482", "0.01690701", "0.01690701", "1615.44770933"),
        bar(ns(2018, 1, 30, 4, 50), "0.016084", "0.016145", "0.01607222", "0.016145", "20.97095642"),
    ),
    (
        "bars/XRP-ETH_1m.binance.feather",
        bar(ns(2019, 10, 11), "0.00141342", "0.00141557", "0.00141266", "0.00141418", "1482"),
        bar(ns(2019, 10, 13, 11, 19), "0.00152814", "0.00152817", "0.00152787", "0.00152787", "785"),
    ),
    (
        "bars/GBPUSD_2012_1m_bid.fxcm.csv",
        bar(ns(2012, 2, 1), "1.57597", "1.57606", "1.57576", "1.57576", None),
        bar(ns(2012, 3, 1), "1.59206", "1.59211", "1.59194", "1.59208", None),
    ),
    (
        "bars/GBPUSD_2012_1m_ask.fxcm.csv",
        bar(ns(2012, 2, 1), "1.57608", "1.57610", "1.57585", "1.57585", None),
        bar(ns(2012, 3, 1), "1.59217", "1.59220", "1.59201", "1.59216", None),
    ),
    (
        "trades/BTCUSDT_2021-01-08.binance.trades.parquet",
        trade(ns(2021, 1, 8, 0, 0, 0, 278_000_000), "39432.48", "0.000263", "sell", "553287559"),
        trade(ns(2021, 1, 8, 0, 0, 46, 355_000_000), "39491.76", "0.014596", "sell", "553289559"),
    ),
    (
        "trades/XRP-ETH_2019-10.binance.trades.parquet",
        trade(1570752011620 * 10**6, "0.00141342", "23", "sell", "13519807"),
        trade(1570965568844 * 10**6, "0.00152787", "130", "sell", "13532283"),
    ),
    (
        "trades/BCHEUR.kraken.trades.csv",
        trade(1672531436 * 10**9, "90.540000", "1.10448420", None, None),
        trade(1672615187 * 10**9, "90.530000", "1.00000000", None, None),
    ),
    (
        "quotes/USDJPY_2013-01.truefx.quotes.csv",
        quote(ns(2013, 1, 1, 22, 0, 0, 295_000_000), "86.655", "86.728", None, None),
        quote(ns(2013, 1, 1, 22, 35, 13, 494_000_000), "86.836", "86.854", None, None),
    ),
    (
        "quotes/BTCUSDT.binance.quotes.parquet",
        quote(ns(2021, 1, 8, 0, 0, 1, 76_000_000), "39432.99", "39433.62", "0.0031", "0.066851"),
        quote(ns(2021, 1, 8, 0, 0, 46, 674_000_000), "39490.97", "39490.98", "0.131467", "0.884984"),
    ),
]


@pytest.mark.parametrize(("name", "first", "last"), FIRST_LAST)
def test_first_and_last_rows_equal_the_file_exactly(
    shared_data: Path, name: str, first: dict[str, Any], last: dict[str, Any]
) -> None:
    result = read_file(shared_data / name)

    assert row(result, 0) == first
    assert row(result, -1) == last


YAHOO = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"}
CSV_FILES = {
    "bars/ORCL_1995-2014_1d.yahoo.csv": YAHOO,
    "bars/NVDA_1999-2014_1d.yahoo.csv": YAHOO,
    "bars/GBPUSD_2012_1m_bid.fxcm.csv": {"open": "open", "high": "high", "low": "low", "close": "close"},
    "bars/GBPUSD_2012_1m_ask.fxcm.csv": {"open": "open", "high": "high", "low": "low", "close": "close"},
    "quotes/USDJPY_2013-01.truefx.quotes.csv": {"bid": "bid_price", "ask": "ask_price"},
}


@pytest.mark.parametrize("name", sorted(CSV_FILES))
def test_every_csv_number_equals_its_text_as_a_decimal(shared_data: Path, name: str) -> None:
    with (shared_data / name).open(newline="") as f:
        source = list(csv.DictReader(f))

    table = read_file(shared_data / name).table

    for src_col, col in CSV_FILES[name].items():
        assert table.column(col).to_pylist() == [Decimal(r[src_col]) for r in source], col


def test_kraken_csv_numbers_and_seconds_equal_their_text(shared_data: Path) -> None:
    with (shared_data / "trades/BCHEUR.kraken.trades.csv").open(newline="") as f:
        source = list(csv.reader(f))

    table = read_file(shared_data / "trades/BCHEUR.kraken.trades.csv").table

    assert table.column("ts_event").cast(pa.int64()).to_pylist() == [int(r[0]) * 10**9 for r in source]
    assert table.column("price").to_pylist() == [Decimal(r[1]) for r in source]
    assert table.column("size").to_pylist() == [Decimal(r[2]) for r in source]


FLOAT_FILES = {
    "bars/ETH-BTC_2018-01_5m.binance.feather": {c: c for c in ("open", "high", "low", "close", "volume")},
    "bars/XRP-ETH_1m.binance.feather": {c: c for c in ("open", "high", "low", "close", "volume")},
    "trades/BTCUSDT_2021-01-08.binance.trades.parquet": {"price": "price", "quantity": "size"},
    "trades/XRP-ETH_2019-10.binance.trades.parquet": {"price": "price", "amount": "size"},
    "quotes/BTCUSDT.binance.quotes.parquet": {
        "bid": "bid_price",
        "ask": "ask_price",
        "bid_size": "bid_size",
        "ask_size": "ask_size",
    },
}


@pytest.mark.parametrize("name", sorted(FLOAT_FILES))
def test_float_sources_read_as_the_decimal_within_two_ulps(shared_data: Path, name: str) -> None:
    path = shared_data / name
    source = pq.read_table(path) if path.suffix == ".parquet" else feather.read_table(str(path))

    result = read_file(path)

    for src_col, col in FLOAT_FILES[name].items():
        scale = result.table.schema.field(col).type.scale
        floats = source.column(src_col).to_pylist()
        decimals = result.table.column(col).to_pylist()
        for v, d in zip(floats, decimals, strict=True):
            assert abs(Decimal(v) - d) <= 2 * Decimal(math.ulp(v)), (col, v, d)
            if float(d) == v:  # the float is the nearest double to the decimal: its shortest repr is it
                assert Decimal(repr(v)) == d, (col, v, d)
            else:  # float noise left by the exporter: the shortest repr has more decimals than the column
                assert -Decimal(repr(v)).as_tuple().exponent > scale, (col, v, d)  # type: ignore[operator]


def test_clean_float_columns_match_schema_raw_from_float(shared_data: Path) -> None:
    path = shared_data / "bars/XRP-ETH_1m.binance.feather"
    source = feather.read_table(str(path))

    result = read_file(path)

    for col in ("open", "high", "low", "close"):
        expected = raw_from_float(source.column(col).to_numpy(), 8, file=str(path), column=col)
        np.testing.assert_array_equal(raw_from_decimal(result.table.column(col)), expected)


def test_binance_buyer_maker_true_means_the_aggressor_sold(shared_data: Path) -> None:
    path = shared_data / "trades/BTCUSDT_2021-01-08.binance.trades.parquet"
    flags = pq.read_table(path).column("buyer_maker").to_pylist()

    sides = read_file(path).table.column("aggressor_side").to_pylist()

    assert sides == ["sell" if f == "True" else "buy" for f in flags]
    assert sides.count("buy") == 1087 and sides.count("sell") == 914


def test_trades_ids_and_sides_come_from_the_file(shared_data: Path) -> None:
    path = shared_data / "trades/XRP-ETH_2019-10.binance.trades.parquet"
    source = pq.read_table(path)

    table = read_file(path).table

    assert table.column("trade_id").to_pylist() == source.column("id").to_pylist()
    assert table.column("aggressor_side").to_pylist() == source.column("side").to_pylist()
    expected_ns = [ms * 1_000_000 for ms in source.column("timestamp").to_pylist()]
    assert table.column("ts_event").cast(pa.int64()).to_pylist() == expected_ns


@pytest.mark.parametrize(
    "name", ["orderbook/BTCUSDT.binance.depth-snapshot.csv", "orderbook/BTCUSDT.binance.depth-updates.csv"]
)
def test_order_book_depth_files_are_detected_as_binance_depth(shared_data: Path, name: str) -> None:
    assert detect_format(shared_data / name) == "binance-depth-csv"
    assert read_file(shared_data / name).kind is Kind.BOOK


def test_a_table_whose_columns_make_no_kind_says_what_each_kind_needs_and_how_to_map(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("foo,bar\n1,2\n")

    assert detect_format(path) == "generic"
    with pytest.raises(InvalidInputError) as err:
        read_file(path)

    message = str(err.value)
    assert str(path) in message and "foo, bar" in message
    assert "open, high, low and close" in message and "--columns" in message


def test_a_header_missing_one_bar_column_names_the_column(tmp_path: Path) -> None:
    path = tmp_path / "GBPUSD_bid.csv"
    path.write_text("timestamp,open,high,low\n2012-02-01 00:00:00+00:00,1.1,1.2,1.0\n")

    with pytest.raises(InvalidInputError) as err:
        read_file(path)

    assert "looks like bars but has no close column" in str(err.value) and str(path) in str(err.value)


def test_unknown_format_name_and_missing_file_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("timestamp,bid,ask\n2013-01-01 22:00:00+00:00,1,2\n")

    with pytest.raises(InvalidInputError, match="unknown format 'nope'"):
        read_file(path, "nope")
    with pytest.raises(NotFoundError):
        read_file(tmp_path / "missing.csv")


def test_corrupt_parquet_is_a_validation_error_not_an_arrow_traceback(tmp_path: Path) -> None:
    path = tmp_path / "trades.parquet"
    path.write_bytes(b"PAR1 this is not parquet at all")

    with pytest.raises(DataValidationError) as err:
        read_file(path)

    assert (err.value.file, err.value.rule) == (str(path), "file-format")


# --- options -----------------------------------------------------------------------------------


def test_given_precision_wider_than_the_data_rescales_exactly(shared_data: Path) -> None:
    result = read_file(shared_data / "quotes/USDJPY_2013-01.truefx.quotes.csv", price_precision=5, size_precision=2)

    assert (result.price_precision, result.size_precision) == (5, 2)
    assert result.table.schema.equals(schema_for(Kind.QUOTES, 5, 2))
    assert result.table.column("bid_price")[0].as_py() == D("86.65500")


def test_given_precision_narrower_than_a_text_value_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text(
        "timestamp,bid,ask\n2013-01-01 22:00:00+00:00,86.655,86.728\n2013-01-01 22:00:01+00:00,86.6551,86.728\n"
    )

    with pytest.raises(DataValidationError) as err:
        read_file(path, price_precision=3)

    assert (err.value.file, err.value.rule, err.value.row) == (str(path), "precision", 2)
    assert "86.6551" in err.value.detail


def test_given_precision_narrower_than_a_float_value_names_its_row(shared_data: Path) -> None:
    path = shared_data / "trades/BTCUSDT_2021-01-08.binance.trades.parquet"
    quantities = pq.read_table(path).column("quantity").to_pylist()
    first_with_6_decimals = next(i for i, q in enumerate(quantities) if round(q, 5) != q) + 1

    with pytest.raises(DataValidationError) as err:
        read_file(path, size_precision=5)

    assert (err.value.rule, err.value.row) == ("precision", first_with_6_decimals)


@pytest.mark.parametrize("bad", [-1, 13, True, 2.0])
def test_precision_outside_0_to_12_is_refused(shared_data: Path, bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="price_precision"):
        read_file(shared_data / "quotes/USDJPY_2013-01.truefx.quotes.csv", price_precision=bad)


def test_fxcm_price_type_can_be_overridden(shared_data: Path) -> None:
    result = read_file(shared_data / "bars/GBPUSD_2012_1m_bid.fxcm.csv", price_type=PriceType.MID)

    assert result.price_type is PriceType.MID


def test_a_plain_ohlc_csv_is_not_taken_for_fxcm_bid_or_ask(tmp_path: Path) -> None:
    path = tmp_path / "GBPUSD.csv"
    path.write_text("timestamp,open,high,low,close\n2012-02-01 00:00:00+00:00,1.1,1.2,1.0,1.1\n")

    plain = read_file(path)

    assert (plain.format, plain.price_type) == ("generic", PriceType.LAST)
    with pytest.raises(InvalidInputError, match="_bid or _ask"):
        read_file(path, "fxcm-csv")
    assert read_file(path, "fxcm-csv", price_type=PriceType.ASK).price_type is PriceType.ASK


def test_unknown_price_type_is_invalid_input(shared_data: Path) -> None:
    with pytest.raises(InvalidInputError, match="price_type must be one of"):
        read_file(shared_data / "bars/GBPUSD_2012_1m_bid.fxcm.csv", price_type="offer")


def test_price_type_is_refused_for_trades(shared_data: Path) -> None:
    with pytest.raises(InvalidInputError, match="bars only"):
        read_file(shared_data / "trades/BCHEUR.kraken.trades.csv", price_type=PriceType.BID)


# --- timestamps --------------------------------------------------------------------------------


def test_iso_offsets_are_converted_to_utc_to_the_nanosecond(tmp_path: Path) -> None:
    path = tmp_path / "EURUSD_ask.csv"
    path.write_text(
        "timestamp,open,high,low,close\n"
        "2012-02-01 02:00:00.123456789+02:00,1.1,1.2,1.0,1.1\n"
        "2012-01-31T19:01:00-05:00,1.1,1.2,1.0,1.1\n"
    )

    result = read_file(path)

    assert result.table.column("ts_event").cast(pa.int64()).to_pylist() == [
        ns(2012, 2, 1, 0, 0, 0, 123_456_789),
        ns(2012, 2, 1, 0, 1),
    ]


def test_kraken_fractional_seconds_are_exact(tmp_path: Path) -> None:
    path = tmp_path / "XBTEUR.csv"
    path.write_text("1672531436.123456789,90.5,1\n1672531436.5,90.5,1\n1672531437,90.5,1\n")

    result = read_file(path)

    assert result.format == "kraken-trades-csv"
    assert result.table.column("ts_event").cast(pa.int64()).to_pylist() == [
        1672531436_123456789,
        1672531436_500000000,
        1672531437_000000000,
    ]


def test_kraken_sub_nanosecond_time_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "XBTEUR.csv"
    path.write_text("1672531436,90.5,1\n1672531436.1234567891,90.5,1\n")

    with pytest.raises(DataValidationError) as err:
        read_file(path)

    assert (err.value.rule, err.value.row) == ("timestamp-format", 2)


def test_yahoo_dates_are_midnight_utc_and_close_not_adj_close(tmp_path: Path) -> None:
    path = tmp_path / "X.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2014-12-30,45.549999,45.660000,45.290001,45.340000,42.651192,9968400\n"
        "2014-12-31,45.450001,45.560001,44.970001,44.970001,42.303135,13269200\n"
    )

    result = read_file(path)

    assert row(result, 0)["ts_event"] == ns(2014, 12, 30)
    assert row(result, 1)["close"] == D("44.970001")
    assert result.timeframe == Timeframe.parse("1d")


# --- binary layouts ----------------------------------------------------------------------------


def binance_trades(path: Path, **overrides: Any) -> Path:
    columns: dict[str, Any] = {
        "timestamp": pa.array([1_610_064_000_278, 1_610_064_000_310, 1_610_064_000_310], pa.timestamp("ms", "UTC")),
        "trade_id": pa.array([11, 12, 13], pa.int64()),
        "price": pa.array([39432.48, 39439.44, 39439.45]),
        "quantity": pa.array([0.000263, 0.004376, 0.014596000000000001]),
        "buyer_maker": pa.array(["True", "False", "True"]),
    }
    columns.update(overrides)
    pq.write_table(pa.table(columns), path)
    return path


def test_float_noise_of_an_ulp_reads_as_the_short_decimal(tmp_path: Path) -> None:
    result = read_file(binance_trades(tmp_path / "t.parquet"))

    assert result.size_precision == 6
    assert result.table.column("size").to_pylist() == [D("0.000263"), D("0.004376"), D("0.014596")]


def test_a_float_with_genuinely_more_decimals_is_not_rounded(tmp_path: Path) -> None:
    path = binance_trades(tmp_path / "t.parquet", quantity=pa.array([0.000263, 0.0043761234567, 0.5]))

    with pytest.raises(DataValidationError) as err:
        read_file(path, size_precision=6)

    assert (err.value.rule, err.value.row) == ("precision", 2)


def test_buyer_maker_may_be_a_boolean_column(tmp_path: Path) -> None:
    path = binance_trades(tmp_path / "t.parquet", buyer_maker=pa.array([True, False, None]))

    sides = read_file(path).table.column("aggressor_side").to_pylist()

    assert sides == ["sell", "buy", None]


def test_buyer_maker_text_other_than_true_false_names_its_row(tmp_path: Path) -> None:
    path = binance_trades(tmp_path / "t.parquet", buyer_maker=pa.array(["True", "maybe", "False"]))

    with pytest.raises(DataValidationError) as err:
        read_file(path)

    assert (err.value.rule, err.value.row) == ("aggressor-side", 2)


def test_ccxt_unknown_side_is_null_and_a_wrong_side_names_its_row(tmp_path: Path) -> None:
    table = {
        "timestamp": pa.array([1570752011620, 1570752011621], pa.int64()),
        "id": ["1", "2"],
        "type": ["None", "None"],
        "side": ["None", "buy"],
        "price": [0.00141342, 0.00141266],
        "amount": [23.0, 54.0],
        "cost": [0.0, 0.0],
    }
    good = tmp_path / "ok.parquet"
    pq.write_table(pa.table(table), good)
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({**table, "side": ["buy", "long"]}), bad)

    assert read_file(good).table.column("aggressor_side").to_pylist() == [None, "buy"]
    with pytest.raises(DataValidationError) as err:
        read_file(bad)
    assert (err.value.file, err.value.rule, err.value.row) == (str(bad), "aggressor-side", 2)


def test_book_ticker_with_two_symbols_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "q.parquet"
    pq.write_table(
        pa.table(
            {
                "timestamp": pa.array([1, 2, 3], pa.timestamp("ms", "UTC")),
                "symbol": ["BTC/USDT", "BTC/USDT", "ETH/USDT"],
                "ask_size": [1.0, 1.0, 1.0],
                "ask": [2.0, 2.0, 2.0],
                "bid_size": [1.0, 1.0, 1.0],
                "bid": [1.0, 1.0, 1.0],
            }
        ),
        path,
    )

    with pytest.raises(DataValidationError) as err:
        read_file(path)

    assert (err.value.rule, err.value.row) == ("single-symbol", 3)


def test_formats_are_recognised_by_content_whatever_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "trades.data"
    binance_trades(path)

    assert detect_format(path) == "binance-trades-parquet"
    result = read_file(tmp_path / "trades.data", "binance-trades-parquet")

    assert result.table.num_rows == 3
