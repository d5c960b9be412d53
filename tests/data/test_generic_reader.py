"""The generic tabular reader: containers, separators, compression, column names, positions, mappings, times.

Files are the real fixtures in ``tests/data/fixtures`` (provenance in its README) or real recordings in
``../shared/data``, re-written under ``tmp_path`` in another layout where a test needs one (same rows, same
number text).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from smart_trader.core.errors import DataValidationError, InvalidInputError
from smart_trader.data.readers import FORMATS, Format, detect_format, read_file
from smart_trader.data.readers._columns import parse_mapping
from smart_trader.data.schema import Kind, PriceType, ts_ns

FIXTURES = Path(__file__).parent / "fixtures"
KLINES = FIXTURES / "binance" / "BTCUSDT-1m-2022-05-05.csv"  # 142 real 1m bars, no header, ms times
MINUTE_NS = 60 * 10**9


def kline_rows() -> list[list[str]]:
    with KLINES.open(newline="") as f:
        return list(csv.reader(f))


def write_ohlcv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    """The klines' time, open, high, low, close, volume under ``header`` (the number text unchanged)."""
    with path.open("w", newline="") as f:
        out = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        out.writerow(header)
        out.writerows([r[:6] for r in rows])
    return path


def assert_same_bars(result_table: pa.Table, rows: list[list[str]]) -> None:
    assert result_table.num_rows == len(rows)
    assert ts_ns(result_table).tolist() == [int(r[0]) * 10**6 for r in rows]
    for i, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
        assert [Decimal(v) for v in result_table.column(name).to_pylist()] == [Decimal(r[i]) for r in rows]


# --- containers, separators, compression --------------------------------------------------------


@pytest.mark.parametrize(
    ("delimiter", "suffix"),
    [(",", ".csv"), ("\t", ".tsv"), (";", ".csv"), ("|", ".txt")],
    ids=["comma", "tab", "semicolon", "pipe"],
)
def test_text_tables_with_any_separator_read_the_same_bars(tmp_path: Path, delimiter: str, suffix: str) -> None:
    rows = kline_rows()
    path = write_ohlcv(
        tmp_path / f"btc{suffix}", ["timestamp", "open", "high", "low", "close", "volume"], rows, delimiter
    )

    result = read_file(path)

    assert (result.format, result.kind, str(result.timeframe)) == ("generic", Kind.BARS, "1m")
    assert_same_bars(result.table, rows)
    assert "ts_event <- 'timestamp' (epoch milliseconds, UTC)" in result.notes


@pytest.mark.parametrize("compression", ["gzip", "bz2", "xz", "zstd", "zip"])
def test_compressed_files_are_read_through_whatever_their_name(tmp_path: Path, compression: str) -> None:
    rows = kline_rows()
    plain = write_ohlcv(tmp_path / "btc.csv", ["time", "o", "h", "l", "c", "v"], rows).read_bytes()
    path = tmp_path / "download.bin"  # the name says nothing: the bytes do
    if compression == "gzip":
        path.write_bytes(gzip.compress(plain))
    elif compression == "bz2":
        path.write_bytes(bz2.compress(plain))
    elif compression == "xz":
        path.write_bytes(lzma.compress(plain))
    elif compression == "zstd":
        with pa.output_stream(str(path), compression="zstd") as out:
            out.write(plain)
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("BTCUSDT-1m-2022-05-05.csv", plain)

    assert_same_bars(read_file(path).table, rows)


def test_a_zip_holding_several_files_names_them(tmp_path: Path) -> None:
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(KLINES, "a.csv")
        archive.write(KLINES, "b.csv")

    with pytest.raises(DataValidationError) as err:
        read_file(path)

    assert err.value.rule == "file-format" and "a.csv, b.csv" in err.value.detail


def test_json_list_of_lists_records_pandas_split_and_json_lines_read_the_same_bars(tmp_path: Path) -> None:
    rows = kline_rows()
    numbers = [[int(r[0]), *(float(v) for v in r[1:6])] for r in rows]  # JSON numbers, as ccxt writes them
    names = ["timestamp", "open", "high", "low", "close", "volume"]
    (tmp_path / "lists.json").write_text(json.dumps(numbers))
    (tmp_path / "records.json").write_text(json.dumps([dict(zip(names, n, strict=True)) for n in numbers]))
    (tmp_path / "split.json").write_text(json.dumps({"columns": names, "data": numbers}))
    (tmp_path / "wrapped.json").write_text(json.dumps({"BTC/USDT": numbers}))
    (tmp_path / "lines.jsonl").write_text("\n".join(json.dumps(dict(zip(names, n, strict=True))) for n in numbers))

    for name in ("lists.json", "records.json", "split.json", "wrapped.json", "lines.jsonl"):
        result = read_file(tmp_path / name)
        assert result.kind is Kind.BARS, name
        assert_same_bars(result.table, rows)


def test_parquet_and_feather_tables_are_read_by_their_column_names(tmp_path: Path) -> None:
    rows = kline_rows()
    table = pa.table(
        {
            "Datetime": pa.array([int(r[0]) for r in rows], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "Open": [r[1] for r in rows],
            "High": [r[2] for r in rows],
            "Low": [r[3] for r in rows],
            "Close": [r[4] for r in rows],
            "Volume": [r[5] for r in rows],
        }
    )
    pq.write_table(table, tmp_path / "bars.parquet")
    feather.write_feather(table, str(tmp_path / "bars.arrow"))

    for name in ("bars.parquet", "bars.arrow"):
        assert_same_bars(read_file(tmp_path / name).table, rows)


# --- column names, positions and mappings --------------------------------------------------------


def test_a_file_without_names_of_six_values_is_read_in_the_ccxt_order(tmp_path: Path) -> None:
    rows = kline_rows()
    path = tmp_path / "ohlcv.csv"
    path.write_text("\n".join(",".join(r[:6]) for r in rows) + "\n")

    result = read_file(path)

    assert_same_bars(result.table, rows)
    assert result.notes[0] == "read as bars by the generic reader (columns by position)"


def test_columns_named_unusually_are_mapped_by_name_or_position(tmp_path: Path) -> None:
    rows = kline_rows()
    path = write_ohlcv(tmp_path / "odd.csv", ["when", "first_px", "top", "bottom", "last_px", "qty_base"], rows)

    with pytest.raises(InvalidInputError, match="--columns"):
        read_file(path)
    by_name = read_file(
        path, columns=parse_mapping("ts=when,open=first_px,high=top,low=bottom,close=last_px,volume=qty_base")
    )
    by_position = read_file(path, columns=parse_mapping("ts=1,open=2,high=3,low=4,close=5,volume=6"))

    assert_same_bars(by_name.table, rows)
    assert by_position.table.equals(by_name.table)
    assert "close <- 'last_px'" in by_name.notes


def test_a_trades_file_is_told_from_its_price_and_size_columns(shared_data: Path, tmp_path: Path) -> None:
    source = pq.read_table(shared_data / "trades" / "XRP-ETH_2019-10.binance.trades.parquet").slice(0, 300)
    path = tmp_path / "trades.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["Time", "Trade ID", "Price", "Qty", "Taker Side"])
        for row in source.to_pylist():
            out.writerow([row["timestamp"], row["id"], repr(row["price"]), repr(row["amount"]), row["side"].upper()])

    result = read_file(path)

    assert result.kind is Kind.TRADES
    assert result.table.column("aggressor_side").to_pylist() == [s.lower() for s in source.column("side").to_pylist()]
    assert result.table.column("trade_id").to_pylist() == [str(i) for i in source.column("id").to_pylist()]
    assert ts_ns(result.table).tolist() == [t * 10**6 for t in source.column("timestamp").to_pylist()]


def test_a_quotes_file_is_told_from_its_bid_and_ask_columns(shared_data: Path, tmp_path: Path) -> None:
    source = pq.read_table(shared_data / "quotes" / "BTCUSDT.binance.quotes.parquet")
    path = tmp_path / "book_ticker.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["event_time", "best_bid", "bid_qty", "best_ask", "ask_qty"])
        for row in source.to_pylist():
            out.writerow(
                [
                    row["timestamp"].isoformat(),
                    repr(row["bid"]),
                    repr(row["bid_size"]),
                    repr(row["ask"]),
                    repr(row["ask_size"]),
                ]
            )

    result = read_file(path)

    # the same values as the vendor reader gives on the Parquet (whose floats carry noise: 0.0028420000000000003)
    vendor = read_file(shared_data / "quotes" / "BTCUSDT.binance.quotes.parquet").table
    assert result.kind is Kind.QUOTES and result.table.num_rows == source.num_rows
    for name in ("bid_price", "ask_price", "bid_size", "ask_size"):
        assert result.table.column(name).to_pylist() == vendor.column(name).to_pylist(), name
    assert ts_ns(result.table).tolist() == ts_ns(vendor).tolist()


def test_separate_date_and_time_columns_are_joined_in_the_zone_given() -> None:
    path = FIXTURES / "generic" / "EURUSD60_date_time_columns.csv"  # Date 2019.02.15, Time 14:00 (MT4 style)

    with pytest.raises(InvalidInputError, match="--tz"):
        read_file(path)
    result = read_file(path, tz="Europe/London")

    assert ts_ns(result.table)[0] == np.datetime64("2019-02-15T14:00", "ns").astype(np.int64)  # GMT in winter
    assert "ts_event <- 'Date' + 'Time' (YYYY.MM.DD HH:MM, local time in Europe/London)" in result.notes


def test_a_mapping_with_a_time_format_reads_day_first_dates(tmp_path: Path) -> None:
    path = FIXTURES / "generic" / "metatrader_semicolon_h1.csv"  # 23/05/2022;13:00;... no header

    result = read_file(
        path, columns=parse_mapping("date=1:%d/%m/%Y,time=2:%H:%M,open=3,high=4,low=5,close=6,volume=7"), tz="UTC"
    )

    assert ts_ns(result.table)[0] == np.datetime64("2022-05-23T13:00", "ns").astype(np.int64)
    assert str(result.table.column("open")[0].as_py()) == "3970.00"


def test_mapping_errors_name_the_entry() -> None:
    with pytest.raises(InvalidInputError, match="unknown field 'colse'"):
        parse_mapping("ts=Date,colse=Close")
    with pytest.raises(InvalidInputError, match="is not FIELD=COLUMN"):
        parse_mapping("ts")
    with pytest.raises(InvalidInputError, match="does not have"):
        read_file(KLINES, columns={"ts": "nope", "close": "5"})


# --- instruments, order, names ----------------------------------------------------------------------


def test_a_file_of_several_instruments_is_read_for_the_symbol_given(tmp_path: Path) -> None:
    rows = kline_rows()
    path = tmp_path / "two.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["symbol", "timestamp", "open", "high", "low", "close", "volume"])
        for r in rows[:50]:
            out.writerow(["BTCUSDT", *r[:6]])
            out.writerow(["ETHUSDT", *r[:6]])

    with pytest.raises(InvalidInputError, match=r"2 instruments .*'BTCUSDT', 'ETHUSDT'"):
        read_file(path)
    result = read_file(path, symbol="ETH/USDT")

    assert_same_bars(result.table, rows[:50])
    assert "50 of 100 rows: those of symbol = 'ETHUSDT'" in result.notes


def test_errors_after_a_symbol_filter_name_the_file_row(tmp_path: Path) -> None:
    rows = kline_rows()
    path = tmp_path / "two.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["symbol", "timestamp", "open", "high", "low", "close", "volume"])
        out.writerow(["BTCUSDT", *rows[0][:6]])
        out.writerow(["ETHUSDT", *rows[0][:6]])
        out.writerow(["BTCUSDT", rows[1][0], "not-a-price", *rows[1][2:6]])

    with pytest.raises(DataValidationError) as err:
        read_file(path, symbol="BTCUSDT")

    assert (err.value.row, err.value.rule) == (3, "number-format")  # the file's third data row


def test_a_newest_first_file_is_read_in_time_order_and_errors_name_file_rows(tmp_path: Path) -> None:
    result = read_file(FIXTURES / "generic" / "MSFT_INTRA_DAY.tsv")  # react-stockcharts data, newest first

    ts = ts_ns(result.table)
    assert bool(np.all(np.diff(ts) > 0)) and "rows are newest first in the file: read in time order" in result.notes
    lines = (FIXTURES / "generic" / "MSFT_INTRA_DAY.tsv").read_text().splitlines()
    assert ts[0] == int(lines[-1].split("\t")[0]) * 10**6

    broken = tmp_path / "msft.tsv"  # a high under its open in the file's 3rd data row
    fields = lines[3].split("\t")
    lines[3] = "\t".join([fields[0], fields[1], "1", *fields[3:]])
    broken.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError) as err:
        read_file(broken)
    assert (err.value.row, err.value.rule) == (3, "high-bounds")


def test_bid_or_ask_in_the_file_name_sets_the_price_type_of_generic_bars() -> None:
    result = read_file(FIXTURES / "generic" / "EURUSD-d1-bid-2021-02.epoch_s.csv")

    assert result.price_type is PriceType.BID
    assert (
        read_file(FIXTURES / "generic" / "EURUSD-d1-bid-2021-02.epoch_s.csv", price_type=PriceType.MID).price_type
        is PriceType.MID
    )


# --- numbers -------------------------------------------------------------------------------------


def test_float_noise_in_a_volume_column_is_read_as_the_recorded_decimals() -> None:
    # The perp fixture's volume is taker-buy + taker-sell quote volume added in binary floats (see its README):
    # 14 rows carry float noise; the recorded quote volume (column 8 of the klines) is what must come back.
    perp = FIXTURES / "perp" / "BTCUSDT-PERP_1m_2022-05-04.csv"
    with (FIXTURES / "binance" / "BTCUSDT-1m-2022-05-04.csv").open(newline="") as f:
        recorded = [Decimal(r[7]) for r in csv.reader(f)]

    result = read_file(perp)

    assert [Decimal(v) for v in result.table.column("volume").to_pylist()] == recorded
    assert result.size_precision == 5  # the recorded quote volumes' decimals, not the noise's
    assert max(recorded) > 10**8
    assert any("14 value(s) printed from binary floats" in note for note in result.notes)


def test_volumes_beyond_int64_import_exactly(tmp_path: Path) -> None:
    rows = kline_rows()[:40]
    big = [[*r[:5], f"{Decimal(r[7]) * 10**12}"] for r in rows]  # quote volumes × 1e12: 1.3e20 > 2**63 even as integers
    path = write_ohlcv(tmp_path / "shib.csv", ["timestamp", "open", "high", "low", "close", "volume"], big)

    result = read_file(path)

    assert [Decimal(v) for v in result.table.column("volume").to_pylist()] == [Decimal(r[5]) for r in big]
    assert max(Decimal(r[5]) for r in big) * 10**result.size_precision > 2**63


def test_a_price_beyond_int64_is_a_range_error_naming_the_row(tmp_path: Path) -> None:
    rows = kline_rows()[:5]
    rows[3] = [rows[3][0], "99999999999999999999.5", *rows[3][2:6]]
    path = write_ohlcv(tmp_path / "x.csv", ["timestamp", "open", "high", "low", "close", "volume"], rows)

    with pytest.raises(DataValidationError) as err:
        read_file(path)

    assert (err.value.row, err.value.rule) == (4, "range")


# --- detection -------------------------------------------------------------------------------------


def test_two_vendor_formats_claiming_a_file_are_named_with_the_flag_to_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimer = Format(
        "other-klines",
        Kind.BARS,
        "a second reader of the same layout",
        (".csv",),
        (),
        lambda p: True,
        FORMATS["binance-klines-csv"].read,
    )
    monkeypatch.setitem(FORMATS, "other-klines", claimer)

    with pytest.raises(InvalidInputError) as err:
        detect_format(KLINES)

    message = str(err.value)
    assert "binance-klines-csv, other-klines" in message
    assert "--format binance-klines-csv or --format other-klines" in message
    assert read_file(KLINES, "binance-klines-csv").table.num_rows == 142


def test_a_file_that_is_no_table_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "chart.png"
    path.write_bytes(bytes(range(256)) * 4)

    with pytest.raises((DataValidationError, InvalidInputError)) as err:
        read_file(path)

    assert str(path) in str(err.value)


def test_every_time_column_value_must_keep_one_unit(tmp_path: Path) -> None:
    rows = kline_rows()[:5]
    rows[2] = [str(int(rows[2][0]) // 1000), *rows[2][1:6]]  # seconds among milliseconds
    path = write_ohlcv(tmp_path / "mixed.csv", ["timestamp", "open", "high", "low", "close", "volume"], rows)

    with pytest.raises(DataValidationError) as err:
        read_file(path)

    assert (err.value.row, err.value.rule) == (3, "timestamp-format")
    assert "epoch seconds while other rows are epoch milliseconds" in err.value.detail


def test_a_volume_sum_in_aggregation_keeps_volumes_beyond_int64(tmp_path: Path) -> None:
    from smart_trader.data.aggregation import resample_bars
    from smart_trader.data.timeframes import Timeframe

    rows = kline_rows()[:10]
    big = [[*r[:5], f"{Decimal(r[5]) * 10**15}"] for r in rows]
    table = read_file(
        write_ohlcv(tmp_path / "big.csv", ["timestamp", "open", "high", "low", "close", "volume"], big)
    ).table

    five = resample_bars(table, Timeframe.parse("5m"), Timeframe.parse("1m"))

    first_bucket = [Decimal(r[5]) for r in big if int(r[0]) // 300_000 == int(big[0][0]) // 300_000]
    assert Decimal(five.column("volume")[0].as_py()) == sum(first_bucket)
    assert pc.sum(five.column("volume")).as_py() == sum(Decimal(r[5]) for r in big)


# --- review follow-ups ----------------------------------------------------------------------------


def test_dates_written_as_numbers_are_day_labels_not_epoch_seconds(shared_data: Path, tmp_path: Path) -> None:
    rows = list(csv.reader((shared_data / "bars/ORCL_1995-2014_1d.yahoo.csv").open()))[1:40]
    path = tmp_path / "orcl.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["date", "open", "high", "low", "close", "volume"])
        out.writerows([[r[0].replace("-", ""), *r[1:5], r[6]] for r in rows])  # 19950103, ...

    result = read_file(path)

    assert ts_ns(result.table)[0] == np.datetime64(rows[0][0], "ns").astype(np.int64)
    assert str(result.timeframe) == "1d"


def test_long_decimals_no_float_printer_writes_keep_every_digit(tmp_path: Path) -> None:
    rows = kline_rows()[:3]
    # a float printer writes 98765432.12345602 for the double nearest this text: so it is not noise
    rows[1] = [*rows[1][:5], "98765432.12345601"]
    path = write_ohlcv(tmp_path / "x.csv", ["timestamp", "open", "high", "low", "close", "volume"], rows)

    result = read_file(path)

    assert str(result.table.column("volume")[1].as_py()) == "98765432.12345601"
    assert not any("binary floats" in note for note in result.notes)


def test_a_float_beyond_2_to_the_53_reads_as_the_decimal_it_prints() -> None:
    from smart_trader.data.readers._numbers import FloatColumn

    column = FloatColumn("f", "volume", np.array([4.34805633907e19, 1.5]))
    precision = column.needed_precision()

    assert column.to_decimal(precision).to_pylist() == [Decimal("43480563390700000000.0"), Decimal("1.5")]


def test_utf16_text_as_metatrader_5_and_excel_write_it_is_read(tmp_path: Path) -> None:
    mt5 = FIXTURES / "metatrader" / "EURUSD1.mt5.csv"
    path = tmp_path / "EURUSD1.mt5.utf16.csv"
    path.write_bytes(mt5.read_text().replace("\n", "\r\n").encode("utf-16"))

    result = read_file(path, tz="Europe/Athens")

    assert result.format == "mt5-bars-csv"
    assert result.table.equals(read_file(mt5, tz="Europe/Athens").table)


def test_two_columns_of_one_name_are_refused_not_guessed(tmp_path: Path) -> None:
    rows = kline_rows()[:5]
    path = tmp_path / "twins.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["timestamp", "open", "high", "low", "Close", "close", "volume"])
        out.writerows([[*r[:5], r[4], r[5]] for r in rows])

    with pytest.raises(InvalidInputError, match=r"2 columns are named like 'Close' \(positions 5, 6\)"):
        read_file(path)


def test_json_that_holds_no_rows_says_what_it_starts_with(tmp_path: Path) -> None:
    path = tmp_path / "klines.json"
    path.write_text('{"code": -1121, "msg": "Invalid symbol."}')  # Binance's error body (tests/data/payloads)

    with pytest.raises(DataValidationError) as err:
        read_file(path)

    assert err.value.rule == "file-format" and '"msg": "Invalid symbol."' in err.value.detail


def test_a_decimal_comma_is_named_as_such(tmp_path: Path) -> None:
    rows = kline_rows()[:3]
    rows[2] = [rows[2][0], rows[2][1].replace(".", ","), *rows[2][2:6]]
    path = write_ohlcv(tmp_path / "x.csv", ["timestamp", "open", "high", "low", "close", "volume"], rows, ";")

    with pytest.raises(DataValidationError) as err:
        read_file(path)

    assert err.value.row == 3 and "decimal comma" in err.value.detail


@pytest.mark.parametrize(
    "name",
    [
        "generic/EURUSD-d1-bid-2021-02.records.json",
        "generic/EURUSD-d1-bid-2021-02.epoch_s.csv",
        "generic/BTCUSDT-1m-2022-05-05.head60.jsonl",
    ],
)
def test_the_generic_fixtures_read_the_rows_of_their_source(name: str) -> None:
    result = read_file(FIXTURES / name)
    source = FIXTURES / "dukascopy/dukascopy-node_eurusd-d1-bid-2021-02.csv" if "EURUSD" in name else KLINES
    rows = list(csv.reader(source.open()))
    rows = rows[1:] if "EURUSD" in name else rows[:60]

    assert result.table.num_rows == len(rows)
    assert [Decimal(v) for v in result.table.column("open").to_pylist()] == [Decimal(r[1]) for r in rows]
    assert [Decimal(v) for v in result.table.column("close").to_pylist()] == [Decimal(r[4]) for r in rows]


def test_the_gzipped_fixture_reads_as_its_plain_twin() -> None:
    plain = read_file(FIXTURES / "generic/EURUSD60_date_time_columns.csv", tz="UTC")
    packed = read_file(FIXTURES / "generic/EURUSD60_date_time_columns.csv.gz", tz="UTC")

    assert packed.table.equals(plain.table)
