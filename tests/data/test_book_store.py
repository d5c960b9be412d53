"""Book datasets in the store: the real depth files import with only --symbol/--venue, round-trip unchanged
(row order kept), re-imports add nothing, and a refused file leaves the store byte-identical."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pytest

from smart_trader.core.errors import DataValidationError, InvalidInputError
from smart_trader.data.datasets import DatasetKey
from smart_trader.data.readers import read_file
from smart_trader.data.schema import Kind
from smart_trader.data.service import MarketDataService
from smart_trader.live.replay import ReplayFeed
from smart_trader.microstructure import GapPolicy, book_measures
from smart_trader.microstructure.service import stored_book_measures
from tests.microstructure.kit import SNAPSHOT, UPDATES, write_as_tardis_l2, write_as_tardis_snapshot


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def _import_real(svc: MarketDataService, shared_data: Path) -> None:
    for name in (SNAPSHOT, UPDATES):
        report = svc.import_file(shared_data / name, symbol="BTCUSDT", venue="BINANCE")
        assert (report.key, report.format, report.rows_added) == (
            DatasetKey("BINANCE", "BTCUSDT", Kind.BOOK),
            "binance-depth-csv",
            100,
        )


def test_real_depth_files_round_trip_through_the_store_unchanged_and_in_order(
    shared_data: Path, tmp_path: Path
) -> None:
    svc = MarketDataService(tmp_path)
    _import_real(svc, shared_data)
    original = pa.concat_tables([read_file(shared_data / n).table for n in (SNAPSHOT, UPDATES)])

    stored = svc.ticks("BTCUSDT", "BINANCE", Kind.BOOK)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))

    assert stored.equals(original)  # rows 64-100 of the update repeat rows 1-37: both copies kept, in order
    assert files == ["market-data/venue=BINANCE/symbol=BTCUSDT/kind=book/date=2022-11-01/data.parquet"]
    instrument = svc.instrument("BTCUSDT", "BINANCE")
    assert (instrument.price_precision, instrument.size_precision) == (1, 3)


def test_reimporting_depth_adds_nothing_and_leaves_files_untouched(shared_data: Path, tmp_path: Path) -> None:
    svc = MarketDataService(tmp_path)
    _import_real(svc, shared_data)
    before = _digest(tmp_path)

    again = [svc.import_file(shared_data / n, symbol="BTCUSDT", venue="BINANCE") for n in (UPDATES, SNAPSHOT)]

    assert [r.rows_added for r in again] == [0, 0] and _digest(tmp_path) == before


@pytest.mark.parametrize(("column", "value", "rule"), [("side", "x", "book-side"), ("qty", "1.2.3", "number-format")])
def test_a_refused_depth_file_leaves_the_store_and_catalog_unchanged(
    shared_data: Path, tmp_path: Path, column: str, value: str, rule: str
) -> None:
    svc = MarketDataService(tmp_path / "home")
    svc.import_file(shared_data / SNAPSHOT, symbol="BTCUSDT", venue="BINANCE")
    lines = (shared_data / UPDATES).read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[42].split(",")  # data row 42
    cells[header.index(column)] = value
    bad = tmp_path / "updates.csv"
    bad.write_text("\n".join([*lines[:42], ",".join(cells), *lines[43:]]) + "\n")
    before = _digest(tmp_path / "home")

    with pytest.raises(DataValidationError) as err:
        svc.import_file(bad, symbol="BTCUSDT", venue="BINANCE")

    assert (err.value.file, err.value.row, err.value.rule) == (str(bad), 42, rule)
    assert _digest(tmp_path / "home") == before


def test_store_refuses_book_tables_with_wrong_types_sides_or_cut_events(shared_data: Path, tmp_path: Path) -> None:
    svc = MarketDataService(tmp_path)
    key = DatasetKey("BINANCE", "BTCUSDT", Kind.BOOK)
    table = read_file(shared_data / SNAPSHOT).table
    as_text = table.set_column(5, "is_snapshot", table.column("is_snapshot").cast(pa.string()))
    buy = table.set_column(2, "side", pa.array(["buy"] * table.num_rows))

    with pytest.raises(InvalidInputError, match="is_snapshot"):
        svc.store.write(key, as_text)
    cut = table.slice(0, 50)  # stops inside the snapshot event
    with pytest.raises(InvalidInputError, match=r"side='buy' is not bid or ask \(rule: book-side\)"):
        svc.store.write(key, buy)
    with pytest.raises(InvalidInputError, match=r"stops mid-event \(rule: book-event\)"):
        svc.store.write(key, cut)
    assert not any(tmp_path.rglob("*.parquet"))


def test_book_dataset_keys_round_trip_through_their_partition_path() -> None:
    key = DatasetKey("binance", "BTC/USDT", Kind.BOOK)

    assert key.to_partition() == "venue=BINANCE/symbol=BTC%2FUSDT/kind=book"
    assert DatasetKey.from_partition(key.to_partition()) == key


def test_tardis_files_import_with_only_symbol_and_venue_and_rebuild_the_same_book(
    shared_data: Path, tmp_path: Path
) -> None:
    binance = MarketDataService(tmp_path / "binance")
    _import_real(binance, shared_data)
    tardis = MarketDataService(tmp_path / "tardis")
    l2 = write_as_tardis_l2(shared_data, tmp_path / "l2.csv")

    report = tardis.import_file(l2, symbol="BTCUSDT", venue="BINANCE")
    via_tardis = stored_book_measures(tardis, "BTCUSDT", "BINANCE").table
    via_binance = stored_book_measures(binance, "BTCUSDT", "BINANCE", policy=GapPolicy.CONTINUE).table

    assert (report.format, report.rows_added) == ("tardis-book-l2-csv", 200)
    measures = ["best_bid", "best_bid_size", "best_ask", "best_ask_size", "spread", "mid", "microprice", "imbalance_5"]
    assert via_tardis.select(measures).equals(via_binance.select(measures))  # no ids in Tardis: no gap to see


def test_tardis_book_snapshot_rows_each_replace_the_book(tmp_path: Path) -> None:
    rows = [
        (1667346579146000, [("20377.00", "1.770"), ("20376.90", "0.001")], []),
        (1667347199939000, [("20472.10", "22.276")], [("20472.20", "4.211")]),
    ]
    svc = MarketDataService(tmp_path / "home")
    svc.import_file(write_as_tardis_snapshot(tmp_path / "snap.csv", rows), symbol="BTCUSDT", venue="BINANCE")

    m = book_measures(svc.ticks("BTCUSDT", "BINANCE", Kind.BOOK), levels=5)

    assert [str(v) for v in m.table.column("best_bid").to_pylist()] == ["20377.0", "20472.1"]
    # the second row's book holds its own levels only: had the first row's two bids stayed, the top-5 bid
    # depth would be 22.276 + 1.770 + 0.001
    imbalance = m.table.column("imbalance_5").to_pylist()
    assert imbalance == [
        1.0,
        float((Fraction("22.276") - Fraction("4.211")) / (Fraction("22.276") + Fraction("4.211"))),
    ]


def test_replaying_book_depth_is_refused_with_a_message(shared_data: Path, tmp_path: Path) -> None:
    svc = MarketDataService(tmp_path)
    _import_real(svc, shared_data)

    with pytest.raises(InvalidInputError, match="order-book depth is not supported"):
        ReplayFeed(svc, svc.instrument("BTCUSDT", "BINANCE"), Kind.BOOK)
