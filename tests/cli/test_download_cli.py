"""``smart-trader data download`` end to end against recorded Binance responses (the HTTP session is the
only fake; ccxt, the downloader, the store and the catalog are real)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import smart_trader.data.download as download
from smart_trader.cli.main import app
from smart_trader.core.clock import ns_to_datetime
from tests.data.test_download import FIRST_BAR_MS, FIRST_TRADE_MS, MS, RecordedBinance, _binance

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def recorded_binance(monkeypatch: pytest.MonkeyPatch) -> RecordedBinance:
    session = RecordedBinance()
    monkeypatch.setattr(download, "make_exchange", lambda name: _binance(session))
    return session


def st(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


def iso(ms: int) -> str:
    return ns_to_datetime(ms * MS).isoformat()


def test_download_stores_bars_and_a_second_run_resumes_without_duplicates(
    home: Path, recorded_binance: RecordedBinance
) -> None:
    args = ("data", "download", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1m")
    code, out = st(*args, "--since", iso(FIRST_BAR_MS))
    assert code == 0, out
    assert "downloaded" in out and "(resumed)" not in out
    code, listed = st("data", "list")
    assert "BTC/USDT" in listed and "bars-1m-last" in listed
    rows_first = int(out.split("downloaded ")[1].split(" rows")[0].replace(",", ""))
    assert rows_first > 0

    code, out = st(*args, "--since", iso(FIRST_BAR_MS))
    assert code == 0, out
    assert "downloaded 0 rows" in out and "(resumed)" in out


def test_download_trades_into_an_instrument_defined_by_a_file_keeps_its_precisions(
    home: Path, shared_data: Path, recorded_binance: RecordedBinance
) -> None:
    path = shared_data / "trades/BTCUSDT_2021-01-08.binance.trades.parquet"
    assert st("data", "import", str(path), "--symbol", "BTC/USDT", "--venue", "BINANCE")[0] == 0
    code, out = st(
        "data", "download", "--exchange", "binance", "--symbol", "BTC/USDT", "--kind", "trades",
        "--since", iso(FIRST_TRADE_MS), "--until", iso(FIRST_TRADE_MS + 60_000), "--venue", "BINANCE",
    )  # fmt: skip
    assert code == 0, out
    added = int(out.split("downloaded ")[1].split(" rows")[0].replace(",", ""))
    assert added > 0
    listed = st("data", "list")[1]
    assert f"{2001 + added:,}" in listed  # the file's 2,001 trades and the downloaded ones, in one dataset
