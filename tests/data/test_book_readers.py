"""Book readers: the real Binance depth files read exactly; the same rows in Tardis layouts read the same;
malformed files are refused naming file, row and rule."""

from __future__ import annotations

import csv
import gzip
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from smart_trader.core.errors import DataValidationError
from smart_trader.data.readers import detect_format, read_file
from smart_trader.data.schema import Kind, book_schema
from tests.microstructure.kit import SNAPSHOT, UPDATES, write_as_tardis_l2, write_as_tardis_snapshot

D = Decimal


def _text_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _copy_with(src: Path, dst: Path, row: int, column: str, value: str | None) -> Path:
    """``src`` written to ``dst`` with data row ``row`` (1-based) having ``column`` = ``value``
    (``value`` None drops the column from every row)."""
    rows = _text_rows(src)
    names = [n for n in rows[0] if value is not None or n != column]
    with dst.open("w", newline="") as f:
        out = csv.DictWriter(f, names, extrasaction="ignore", lineterminator="\n")
        out.writeheader()
        for i, r in enumerate(rows, start=1):
            out.writerow({**r, column: value} if i == row and value is not None else r)
    return dst


@pytest.mark.parametrize(("name", "snapshot", "event_ids"), [(SNAPSHOT, True, (2098021528332, 2098021528332, None)),
                         (UPDATES, False, (2098041693435, 2098041696700, 2098041693400))])  # fmt: skip
def test_real_binance_depth_files_read_exactly_into_the_book_schema(
    shared_data: Path, name: str, snapshot: bool, event_ids: tuple[int, int, int | None]
) -> None:
    path = shared_data / name
    result = read_file(path)
    rows = result.table.to_pylist()
    text = _text_rows(path)

    assert detect_format(path) == "binance-depth-csv" and result.kind is Kind.BOOK
    assert result.table.schema.equals(book_schema(1, 3)) and len(rows) == len(text) == 100
    assert [r["price"] for r in rows] == [D(t["price"]) for t in text]
    assert [r["size"] for r in rows] == [D(t["qty"]) for t in text]
    assert [r["side"] for r in rows] == [{"b": "bid", "a": "ask"}[t["side"]] for t in text]
    assert {r["is_snapshot"] for r in rows} == {snapshot}
    assert [r["last_in_event"] for r in rows] == [False] * 99 + [True]  # one event per file
    assert {(r["first_update_id"], r["last_update_id"], r["prev_update_id"]) for r in rows} == {event_ids}
    ts = result.table.column("ts_event").cast(pa.int64()).to_pylist()
    assert ts == [int(t["timestamp"]) * 1_000_000 for t in text]


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("side", "x", "book-side"),
        ("price", "20376.8x", "number-format"),
        ("qty", "-0.010", "size-non-negative"),
        ("update_type", "delta", "update-type"),
        ("first_update_id", "2098021528332.5", "number-format"),
        ("symbol", "ETHUSDT", "single-symbol"),
    ],
)
def test_a_malformed_cell_names_file_row_and_rule(
    shared_data: Path, tmp_path: Path, column: str, value: str, rule: str
) -> None:
    path = _copy_with(shared_data / SNAPSHOT, tmp_path / "depth.csv", 7, column, value)

    with pytest.raises(DataValidationError) as err:
        read_file(path)

    assert (err.value.file, err.value.row, err.value.rule) == (str(path), 7, rule)
    assert str(path) in str(err.value) and "row 7" in str(err.value)


def test_a_missing_column_is_named(shared_data: Path, tmp_path: Path) -> None:
    path = _copy_with(shared_data / UPDATES, tmp_path / "depth.csv", 1, "side", None)

    with pytest.raises(DataValidationError) as err:
        read_file(path, "binance-depth-csv")

    assert (err.value.file, err.value.rule) == (str(path), "columns") and "side" in str(err.value)


def test_the_real_rows_in_tardis_incremental_layout_read_as_the_same_book_rows(
    shared_data: Path, tmp_path: Path
) -> None:
    path = write_as_tardis_l2(shared_data, tmp_path / "binance-futures_incremental_book_L2_BTCUSDT.csv")
    binance = pa.concat_tables([read_file(shared_data / SNAPSHOT).table, read_file(shared_data / UPDATES).table])

    result = read_file(path)

    assert detect_format(path) == "tardis-book-l2-csv" and result.kind is Kind.BOOK
    keep = ["ts_event", "side", "price", "size", "is_snapshot", "last_in_event"]
    assert result.table.select(keep).equals(binance.select(keep))
    assert result.table.column("ts_recv").equals(result.table.column("ts_event").cast(result.table["ts_recv"].type))
    assert result.table.column("last_update_id").null_count == 200  # Tardis carries no update ids


def test_tardis_is_snapshot_other_than_true_or_false_names_its_row(shared_data: Path, tmp_path: Path) -> None:
    path = write_as_tardis_l2(shared_data, tmp_path / "l2.csv")
    bad = _copy_with(path, tmp_path / "bad.csv", 150, "is_snapshot", "maybe")

    with pytest.raises(DataValidationError) as err:
        read_file(bad)

    assert (err.value.row, err.value.rule) == (150, "is-snapshot")


# The top 5 levels of the real book after the snapshot and after the update, as hand-checked in
# tests/microstructure/test_book_builder.py, written as two Tardis book_snapshot_5 rows.
TOP5 = [
    (1667346579146000, [("20377.00", "1.770"), ("20376.90", "0.001"), ("20376.80", "0.009"), ("20376.70", "1.216"),
                        ("20376.60", "0.011")], []),
    (1667347199939000, [("20472.10", "22.276"), ("20469.20", "2.864"), ("20468.70", "0.853"), ("20467.80", "1.223"),
                        ("20467.50", "1.553")],
     [("20472.20", "4.211"), ("20473.30", "0.001"), ("20473.60", "0.126"), ("20473.80", "0.509"),
      ("20474.30", "0.127")]),
]  # fmt: skip


def test_tardis_book_snapshot_rows_become_one_snapshot_event_each(tmp_path: Path) -> None:
    path = write_as_tardis_snapshot(tmp_path / "binance-futures_book_snapshot_5_BTCUSDT.csv", TOP5)

    result = read_file(path)
    rows = result.table.to_pylist()

    assert detect_format(path) == "tardis-book-snapshot-csv"
    assert len(rows) == 5 + 10 and all(r["is_snapshot"] for r in rows)
    assert [i for i, r in enumerate(rows) if r["last_in_event"]] == [4, 14]
    assert [(r["side"], r["price"], r["size"]) for r in rows[5:7]] == [
        ("bid", D("20472.1"), D("22.276")),
        ("bid", D("20469.2"), D("2.864")),
    ]
    assert rows[10]["side"] == "ask" and rows[10]["price"] == D("20472.2")


def test_tardis_book_snapshot_errors_name_the_files_row_and_level(tmp_path: Path) -> None:
    top5 = [TOP5[0], (TOP5[1][0], [*TOP5[1][1][:3], ("20467.80", "1.2x3"), TOP5[1][1][4]], TOP5[1][2])]
    path = write_as_tardis_snapshot(tmp_path / "book_snapshot_5.csv", top5)

    with pytest.raises(DataValidationError) as err:
        read_file(path)

    assert (err.value.row, err.value.rule) == (2, "number-format") and "bids[3]" in str(err.value)


def test_tardis_files_read_as_downloaded_gzip_compressed(shared_data: Path, tmp_path: Path) -> None:
    plain = write_as_tardis_l2(shared_data, tmp_path / "l2.csv")
    packed = tmp_path / "binance-futures_incremental_book_L2_2022-11-01_BTCUSDT.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))

    assert detect_format(packed) == "tardis-book-l2-csv"
    assert read_file(packed).table.equals(read_file(plain).table)


def test_a_tardis_snapshot_spread_over_two_timestamps_is_refused_not_split(shared_data: Path, tmp_path: Path) -> None:
    path = write_as_tardis_l2(shared_data, tmp_path / "l2.csv")
    bad = _copy_with(path, tmp_path / "bad.csv", 50, "local_timestamp", "1667346579146001")

    with pytest.raises(DataValidationError) as err:
        read_file(bad)

    assert (err.value.row, err.value.rule) == (50, "book-event")
