"""Validation: each rule names the file, the 1-based data row and the rule; real files pass."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smart_trader.core.errors import DataValidationError
from smart_trader.data.readers import ReadResult, read_file
from smart_trader.data.schema import decimal_type
from smart_trader.data.validation import validate

FXCM_HEADER = "timestamp,open,high,low,close\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def bars(tmp_path: Path, *rows: str) -> Path:
    """An FXCM-layout bid bar file with the given data rows."""
    return write(tmp_path, "EURUSD_1m_bid.csv", FXCM_HEADER + "".join(r + "\n" for r in rows))


def broken(path: Path, **kwargs: Any) -> DataValidationError:
    with pytest.raises(DataValidationError) as err:
        read_file(path, **kwargs)
    return err.value


def assert_names(err: DataValidationError, path: Path, row: int | None, rule: str) -> None:
    assert (err.file, err.row, err.rule) == (str(path), row, rule)
    where = f"{path}, row {row}" if row is not None else str(path)
    assert str(err).startswith(where) and f"(rule: {rule})" in str(err)


# --- ordering -------------------------------------------------------------------------------------


def test_unsorted_bars_name_the_row_that_goes_back_in_time(tmp_path: Path) -> None:
    path = bars(
        tmp_path,
        "2012-02-01 00:00:00+00:00,1.1,1.2,1.0,1.1",
        "2012-02-01 00:02:00+00:00,1.1,1.2,1.0,1.1",
        "2012-02-01 00:01:00+00:00,1.1,1.2,1.0,1.1",
    )

    err = broken(path)

    assert_names(err, path, 3, "timestamps-sorted")


def test_duplicate_bar_timestamp_is_its_own_rule(tmp_path: Path) -> None:
    path = bars(
        tmp_path,
        "2012-02-01 00:00:00+00:00,1.1,1.2,1.0,1.1",
        "2012-02-01 00:00:00+00:00,1.1,1.2,1.0,1.1",
    )

    assert_names(broken(path), path, 2, "timestamps-unique")


def test_the_same_instant_written_with_another_offset_is_a_duplicate_bar(tmp_path: Path) -> None:
    path = bars(
        tmp_path,
        "2012-02-01 00:00:00+00:00,1.1,1.2,1.0,1.1",
        "2012-02-01 01:00:00+01:00,1.1,1.2,1.0,1.1",
    )

    assert_names(broken(path), path, 2, "timestamps-unique")


def test_trades_may_share_a_timestamp_but_not_go_back(tmp_path: Path) -> None:
    same = write(tmp_path, "same.csv", "1672531436,90.5,1\n1672531436,90.6,2\n1672531437,90.5,1\n")
    back = write(tmp_path, "back.csv", "1672531436,90.5,1\n1672531437,90.6,2\n1672531436.999,90.5,1\n")

    assert read_file(same).table.num_rows == 3
    assert_names(broken(back), back, 3, "timestamps-sorted")


# --- bar consistency and signs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("second_row", "rule"),
    [
        ("2012-02-01 00:01:00+00:00,1.3,1.2,1.0,1.1", "high-bounds"),  # high below open
        ("2012-02-01 00:01:00+00:00,1.1,1.2,1.0,1.25", "high-bounds"),  # high below close
        ("2012-02-01 00:01:00+00:00,0.9,1.2,1.0,1.1", "low-bounds"),  # low above open
        ("2012-02-01 00:01:00+00:00,1.1,1.2,1.15,1.1", "low-bounds"),  # low above close
        ("2012-02-01 00:01:00+00:00,0,1.2,0,1.1", "price-positive"),
        ("2012-02-01 00:01:00+00:00,-1.1,1.2,-1.2,1.1", "price-positive"),
    ],
)
def test_inconsistent_bars_name_row_and_rule(tmp_path: Path, second_row: str, rule: str) -> None:
    path = bars(tmp_path, "2012-02-01 00:00:00+00:00,1.1,1.2,1.0,1.1", second_row)

    assert_names(broken(path), path, 2, rule)


def test_high_below_open_says_which_values(tmp_path: Path) -> None:
    path = bars(tmp_path, "2012-02-01 00:00:00+00:00,1.30,1.20,1.00,1.10")

    err = broken(path)

    assert err.detail == "high=1.2 is below open or close (open=1.3, close=1.1)"


def test_negative_trade_size_is_size_non_negative(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "1672531436,90.5,1\n1672531437,90.5,0\n1672531438,90.5,-0.5\n")

    assert_names(broken(path), path, 3, "size-non-negative")


def test_negative_yahoo_volume_is_size_non_negative(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "X.csv",
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2014-12-30,45.5,45.6,45.2,45.3,42.6,9968400\n"
        "2014-12-31,45.4,45.5,44.9,44.9,42.3,-1\n",
    )

    assert_names(broken(path), path, 2, "size-non-negative")


# --- quotes ---------------------------------------------------------------------------------------


def test_crossed_quote_is_refused_and_a_locked_one_allowed(tmp_path: Path) -> None:
    header = "timestamp,bid,ask\n"
    locked = write(tmp_path, "locked.csv", header + "2013-01-01 22:00:00+00:00,86.836,86.836\n")
    crossed = write(
        tmp_path,
        "crossed.csv",
        header + "2013-01-01 22:00:00+00:00,86.836,86.854\n2013-01-01 22:00:01+00:00,86.855,86.854\n",
    )

    assert read_file(locked).table.num_rows == 1
    err = broken(crossed)
    assert_names(err, crossed, 2, "quotes-not-crossed")
    assert "86.855" in err.detail and "86.854" in err.detail


# --- trades ids -----------------------------------------------------------------------------------


def trades_parquet(tmp_path: Path, ids: list[int] | list[str]) -> Path:
    n = len(ids)
    path = tmp_path / "trades.parquet"
    table = pa.table(
        {
            "timestamp": pa.array(range(1_610_064_000_000, 1_610_064_000_000 + n), pa.timestamp("ms", "UTC")),
            "trade_id": ids,
            "price": [39432.48] * n,
            "quantity": [0.001] * n,
            "buyer_maker": ["True"] * n,
        }
    )
    pq.write_table(table, path)
    return path


def test_duplicate_trade_id_names_the_repeat(tmp_path: Path) -> None:
    path = trades_parquet(tmp_path, [553287559, 553287560, 553287561, 553287560])

    err = broken(path)

    assert_names(err, path, 4, "trade-id-unique")
    assert "row 2" in err.detail


@pytest.mark.parametrize("ids", [[9, 10, 11], [3, 1, 2], ["b", "a", "c"]])
def test_unique_trade_ids_pass_in_any_order(tmp_path: Path, ids: list[int] | list[str]) -> None:
    assert read_file(trades_parquet(tmp_path, ids)).table.num_rows == 3


# --- malformed files ------------------------------------------------------------------------------


def test_garbage_number_names_row_and_column(tmp_path: Path) -> None:
    path = bars(tmp_path, "2012-02-01 00:00:00+00:00,1.1,1.2,1.0,1.1", "2012-02-01 00:01:00+00:00,1.1,1.2,x1.0,1.1")

    err = broken(path)

    assert_names(err, path, 2, "number-format")
    assert err.detail == "low='x1.0' is not a number"


def test_unparsable_date_names_its_row(tmp_path: Path) -> None:
    path = bars(tmp_path, "2012-02-01 00:00:00+00:00,1.1,1.2,1.0,1.1", "2012-02-30 00:01:00+00:00,1.1,1.2,1.0,1.1")

    assert_names(broken(path), path, 2, "timestamp-format")


def test_missing_column_with_explicit_format(tmp_path: Path) -> None:
    path = write(tmp_path, "q_bid.csv", "timestamp,open,high,close\n2012-02-01 00:00:00+00:00,1.1,1.2,1.1\n")

    err = broken(path, format="fxcm-csv")

    assert_names(err, path, None, "columns")
    assert "low" in err.detail


def test_row_with_missing_fields_is_named(tmp_path: Path) -> None:
    path = bars(tmp_path, "2012-02-01 00:00:00+00:00,1.1,1.2,1.0,1.1", "2012-02-01 00:01:00+00:00,1.1,1.2")

    assert_names(broken(path), path, 2, "columns")


def test_empty_cell_is_a_missing_value(tmp_path: Path) -> None:
    path = bars(tmp_path, "2012-02-01 00:00:00+00:00,1.1,1.2,1.0,1.1", "2012-02-01 00:01:00+00:00,1.1,,1.0,1.1")

    assert_names(broken(path), path, 2, "missing-value")


@pytest.mark.parametrize("text", ["", "\n\n", FXCM_HEADER])
def test_empty_file_or_header_only_is_not_empty_rule(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "EURUSD_bid.csv", text)

    err = broken(path, format="fxcm-csv")

    assert_names(err, path, None, "not-empty")


def test_empty_file_is_reported_by_detection_too(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "")

    assert_names(broken(path), path, None, "not-empty")


# --- validate() on its own ------------------------------------------------------------------------


@pytest.fixture
def quotes(tmp_path: Path) -> ReadResult:
    path = write(
        tmp_path,
        "q.csv",
        "timestamp,bid,ask\n2013-01-01 22:00:00+00:00,86.655,86.728\n2013-01-01 22:00:01+00:00,86.657,86.728\n",
    )
    return read_file(path)


def test_validate_refuses_a_table_off_the_schema(quotes: ReadResult) -> None:
    wrong = dataclasses.replace(quotes, price_precision=5)

    with pytest.raises(DataValidationError) as err:
        validate(wrong)

    assert (err.value.file, err.value.rule, err.value.row) == (quotes.source, "schema", None)


def test_validate_finds_a_null_price_in_a_built_table(quotes: ReadResult) -> None:
    bid = pa.array([None, 86657], pa.int64()).cast(decimal_type(0)).cast(decimal_type(3))
    table = quotes.table.set_column(1, quotes.table.schema.field(1), bid)

    with pytest.raises(DataValidationError) as err:
        validate(dataclasses.replace(quotes, table=table))

    assert (err.value.rule, err.value.row) == ("missing-value", 1)


def test_validate_refuses_an_unknown_aggressor_side(shared_data: Path) -> None:
    result = read_file(shared_data / "trades/BTCUSDT_2021-01-08.binance.trades.parquet")
    sides = result.table.column("aggressor_side").to_pylist()
    sides[7] = "long"
    table = result.table.set_column(3, result.table.schema.field(3), pa.array(sides, pa.string()))

    with pytest.raises(DataValidationError) as err:
        validate(dataclasses.replace(result, table=table))

    assert (err.value.rule, err.value.row) == ("aggressor-side", 8)


def test_validate_refuses_an_empty_table(quotes: ReadResult) -> None:
    with pytest.raises(DataValidationError) as err:
        validate(dataclasses.replace(quotes, table=quotes.table.slice(0, 0)))

    assert err.value.rule == "not-empty"
