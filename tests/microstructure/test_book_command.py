"""``smart-trader data book``: measures of the stored real book, gaps on stderr, CSV/Parquet output."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import typer
from typer.testing import CliRunner

from smart_trader.cli.book import book
from smart_trader.data.service import MarketDataService
from tests.microstructure.kit import SNAPSHOT, UPDATES

runner = CliRunner(env={"COLUMNS": "200"})
app = typer.Typer()
app.command("book")(book)  # as cli/data.py registers it


@app.callback()
def _group() -> None:
    """The ``data`` group stand-in."""


def _stored(home: Path, shared_data: Path) -> None:
    svc = MarketDataService(home)
    for name in (SNAPSHOT, UPDATES):
        svc.import_file(shared_data / name, symbol="BTCUSDT", venue="BINANCE")


def test_book_prints_measures_and_reports_the_gap_on_stderr(home: Path, shared_data: Path) -> None:
    _stored(home, shared_data)

    result = runner.invoke(app, ["book", "BTCUSDT", "--venue", "BINANCE"])

    assert result.exit_code == 0, result.output
    assert "20377.0" in result.stdout and "1 book events, 1 update(s) skipped, 1 sequence gap(s)" in result.stdout
    assert "sequence gap at 2022-11-01T23:59:59.939" in result.stderr
    assert "updates dropped until the next snapshot" in result.stderr


def test_book_writes_csv_and_parquet(home: Path, shared_data: Path, tmp_path: Path) -> None:
    _stored(home, shared_data)
    out_csv, out_parquet = tmp_path / "m.csv", tmp_path / "m.parquet"

    first = runner.invoke(app, ["book", "BTCUSDT", "--venue", "BINANCE", "--gaps", "continue", "--levels", "1",
                                "--out", str(out_csv)])  # fmt: skip
    second = runner.invoke(
        app, ["book", "BTCUSDT", "--venue", "BINANCE", "--gaps", "continue", "--out", str(out_parquet)]
    )

    assert first.exit_code == second.exit_code == 0
    with out_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["best_bid"], r["best_ask"], r["spread"], r["mid"]) for r in rows] == [
        ("20377.0", "", "", ""),
        ("20472.1", "20472.2", "0.1", "20472.15"),
    ]
    assert "imbalance_1" in rows[0] and rows[1]["synced"] == "false"
    assert pq.read_table(out_parquet).num_rows == 2


def test_book_errors_exit_with_a_message(home: Path, shared_data: Path) -> None:
    _stored(home, shared_data)

    gap = runner.invoke(app, ["book", "BTCUSDT", "--venue", "BINANCE", "--gaps", "raise"])
    unknown = runner.invoke(app, ["book", "ETHUSDT", "--venue", "BINANCE"])
    bad_out = runner.invoke(app, ["book", "BTCUSDT", "--venue", "BINANCE", "--out", "m.txt"])

    assert gap.exit_code == 2 and "sequence gap" in gap.stderr
    assert unknown.exit_code == 3 and "ETHUSDT" in unknown.stderr
    assert bad_out.exit_code == 2 and "--out must end in .csv or .parquet" in bad_out.stderr
