"""The ``smart-trader`` command end to end: import, list, bars, backtest, and clear errors on bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from smart_trader.cli.main import app
from smart_trader.data.readers import read_file

runner = CliRunner(env={"COLUMNS": "200"})


def st(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes is not None else "")


@pytest.fixture
def orcl_home(home: Path, shared_data: Path) -> Path:
    code, out = st(
        "data", "import", str(shared_data / "bars/ORCL_1995-2014_1d.yahoo.csv"), "--symbol", "ORCL", "--venue", "NASDAQ"
    )
    assert code == 0, out
    return home


def test_import_list_and_reimport_adds_nothing(orcl_home: Path, shared_data: Path) -> None:
    code, out = st(
        "data", "import", str(shared_data / "bars/ORCL_1995-2014_1d.yahoo.csv"), "--symbol", "ORCL", "--venue", "NASDAQ"
    )
    assert code == 0 and "0 new" in out
    code, out = st("data", "list")
    assert code == 0 and "ORCL" in out and "bars-1d-last" in out and "5,036" in out


def test_bars_aggregates_trades_and_writes_csv(home: Path, shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "trades/BTCUSDT_2021-01-08.binance.trades.parquet"
    assert st("data", "import", str(path), "--symbol", "BTC/USDT", "--venue", "BINANCE", "--kind", "trades")[0] == 0
    out_file = tmp_path / "bars.csv"
    code, out = st("data", "bars", "BTC/USDT", "--venue", "BINANCE", "--timeframe", "10s", "--out", str(out_file))
    assert code == 0, out
    rows = list(csv.DictReader(out_file.open()))
    assert len(rows) == 5  # 00:00:00 .. 00:00:46 in 10-second bars
    assert rows[0]["open"] and float(rows[0]["high"]) >= float(rows[0]["low"])


def test_backtest_on_stored_bars_writes_every_output(orcl_home: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    code, out = st(
        "backtest", "--strategy", "sma_cross", "--symbol", "ORCL", "--venue", "NASDAQ", "--timeframe", "1d",
        "--param", "fast=10", "--param", "slow=30", "--cash", "100000", "--commission-bps", "0",
        "--output", str(out_dir),
    )  # fmt: skip
    assert code == 0, out
    stats = json.loads((out_dir / "stats.json").read_text())
    assert stats["strategy"] == "sma_cross" and stats["params"] == {"fast": 10, "slow": 30}
    assert stats["bars_processed"] == 5036 and stats["number_of_trades"] > 50
    trades = list(csv.DictReader((out_dir / "trades.csv").open()))
    assert len(trades) == stats["number_of_trades"]
    assert {"entry_time", "entry_price", "exit_time", "exit_price", "side", "quantity", "pnl"} <= set(trades[0])
    assert (out_dir / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out_dir / "equity.csv").read_text().splitlines()) == 5037


def test_backtest_from_a_data_file(shared_data: Path, tmp_path: Path, home: Path) -> None:
    code, out = st(
        "backtest", "--data", str(shared_data / "bars/ETH-BTC_2018-01_5m.binance.feather"), "--symbol", "ETH/BTC",
        "--venue", "BINANCE", "--cash", "10", "--commission-bps", "10", "--output", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 0, out
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    assert stats["bars_processed"] == 5760 and stats["instruments"] == ["ETH/BTC.BINANCE"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("data", "bars", "NOPE", "--venue", "NASDAQ", "--timeframe", "1d"), 3, "NOPE"),
        (("backtest", "--symbol", "ORCL", "--venue", "NASDAQ", "--strategy", "nope"), 3, "unknown strategy"),
        (("backtest", "--symbol", "ORCL", "--venue", "NASDAQ", "--param", "fast"), 2, "not name=value"),
        (("backtest", "--symbol", "ORCL", "--venue", "NASDAQ", "--param", "fast=50"), 2, "fast < slow"),
        (("backtest", "--symbol", "ORCL", "--venue", "NASDAQ", "--cash", "abc"), 2, "not a number"),
        (("data", "bars", "ORCL", "--venue", "NASDAQ", "--timeframe", "7x"), 2, "timeframe"),
        (("data", "bars", "ORCL", "--venue", "NASDAQ", "--start", "yesterday"), 2, "ISO 8601"),
        (("data", "download", "--exchange", "binanse", "--symbol", "BTC/USDT", "--since", "2021-01-01"), 2, "binance"),
    ],
)
def test_bad_input_gets_a_clear_message_and_non_zero_exit(
    orcl_home: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    exit_code, out = st(*args)
    assert exit_code == code, out
    assert message in out
    assert "Traceback" not in out


def test_malformed_file_import_fails_cleanly_and_keeps_the_store(orcl_home: Path, tmp_path: Path) -> None:
    before = sorted((p, p.stat().st_mtime_ns) for p in orcl_home.rglob("*") if p.is_file())
    bad = tmp_path / "bad.yahoo.csv"
    bad.write_text("Date,Open,High,Low,Close,Adj Close,Volume\n2015-01-02,1.0,2.0,0.5,1.5,1.5,-3\n")
    code, out = st("data", "import", str(bad), "--symbol", "ORCL", "--venue", "NASDAQ")
    assert code == 2 and "row 1" in out and "Traceback" not in out
    assert sorted((p, p.stat().st_mtime_ns) for p in orcl_home.rglob("*") if p.is_file()) == before
    code, out = st("data", "import", str(tmp_path / "missing.csv"), "--symbol", "ORCL", "--venue", "NASDAQ")
    assert code == 3 and "missing.csv" in out


def test_backtest_on_quotes_runs_on_bid_bars_at_real_prices(shared_data: Path, tmp_path: Path, home: Path) -> None:
    code, out = st(
        "backtest", "--strategy", "buy_and_hold",
        "--data", str(shared_data / "quotes/USDJPY_2013-01.truefx.quotes.csv"),
        "--symbol", "USD/JPY", "--venue", "TRUEFX", "--timeframe", "1m", "--output", str(tmp_path / "q"),
    )  # fmt: skip
    assert code == 0, out
    fills = list(csv.DictReader((tmp_path / "q" / "fills.csv").open()))
    assert 86 < float(fills[0]["price"]) < 87  # USD/JPY traded near 86.7 then, not 10x that


def test_out_of_range_numbers_get_a_message_not_a_traceback(orcl_home: Path, tmp_path: Path) -> None:
    code, out = st(
        "backtest", "--symbol", "ORCL", "--venue", "NASDAQ", "--cash", "1e400", "--output", str(tmp_path / "x")
    )
    assert code == 2, out
    assert "Traceback" not in out and "error:" in out


FIXTURES = Path(__file__).parents[1] / "data" / "fixtures"


def _tree(root: Path) -> list[tuple[str, bytes]]:
    return sorted((str(p.relative_to(root)), p.read_bytes()) for p in root.rglob("*") if p.is_file())


def test_import_says_which_columns_units_and_zone_it_read(home: Path) -> None:
    code, out = st("data", "import", str(FIXTURES / "perp" / "BTCUSDT-PERP_1m_2022-05-04.csv"), "--symbol",
                   "BTC/USDT", "--venue", "BINANCE")  # fmt: skip

    assert code == 0, out
    assert "read as bars by the generic reader" in out
    assert "ts_event <- 'timestamp' (epoch milliseconds, UTC)" in out
    assert "volume <- 'volume'" in out and "14 value(s) printed from binary floats" in out
    assert "imported 275 rows (generic)" in out


def test_naive_local_times_need_tz_and_then_import(home: Path) -> None:
    mt4 = str(FIXTURES / "metatrader" / "EURUSD1.csv")

    code, out = st("data", "import", mt4, "--symbol", "EUR/USD", "--venue", "BROKER")
    assert code == 2 and "--tz" in out and "Traceback" not in out
    assert not (home / "market-data").exists() or not any((home / "market-data").rglob("*.parquet"))

    code, out = st("data", "import", mt4, "--symbol", "EUR/USD", "--venue", "BROKER", "--tz", "Europe/Athens")
    assert code == 0, out
    assert "local time in Europe/Athens" in out
    code, out = st("data", "import", mt4, "--symbol", "EUR/USD", "--venue", "BROKER", "--tz", "+02:00")
    assert code == 2 and "is not an IANA time zone" in out


def test_columns_flag_maps_a_file_the_reader_cannot_guess(home: Path) -> None:
    odd = str(FIXTURES / "generic" / "metatrader_semicolon_h1.csv")  # no header, day-first dates

    code, out = st("data", "import", odd, "--symbol", "ES", "--venue", "CME", "--tz", "UTC")
    assert code == 2 and "--columns" in out
    code, out = st("data", "import", odd, "--symbol", "ES", "--venue", "CME", "--tz", "UTC", "--columns",
                   "date=1:%d/%m/%Y,time=2:%H:%M,open=3,high=4,low=5,close=6,volume=7")  # fmt: skip
    assert code == 0, out
    assert "ts_event <- '1' + '2'" in out


def test_bad_files_of_any_format_fail_cleanly_and_change_nothing(home: Path, tmp_path: Path) -> None:
    good = FIXTURES / "binance" / "BTCUSDT-1m-2022-05-04.csv"
    code, out = st("data", "import", str(good), "--symbol", "BTC/USDT", "--venue", "BINANCE")
    assert code == 0, out
    before = _tree(home)
    lines = good.read_text().splitlines()
    broken = tmp_path / "BTCUSDT-1m-broken.csv"  # row 7's low above its open: a kline that cannot be
    fields = lines[6].split(",")
    broken.write_text("\n".join([*lines[:6], ",".join([*fields[:3], "99999.0", *fields[4:]]), *lines[7:]]) + "\n")
    garbage = tmp_path / "not-data.bin"
    garbage.write_bytes(bytes(range(256)) * 8)
    nothing = tmp_path / "prices.csv"
    nothing.write_text("foo,bar\n1,2\n")
    cut = []  # real files of every container, cut short
    for source in (
        FIXTURES / "generic" / "EURUSD60_date_time_columns.csv.gz",
        FIXTURES / "databento" / "xnas-itch-20250303.ohlcv-1m.dbn.zst",
        FIXTURES / "databento" / "dukascopy-eurusd-20190204.mbp-1.dbn.zst",
    ):
        truncated = tmp_path / f"cut-{source.name}"
        truncated.write_bytes(source.read_bytes()[: len(source.read_bytes()) // 2])
        cut.append((truncated, str(truncated)))
    parquet = tmp_path / "cut.parquet"
    pq.write_table(read_file(good).table, parquet)
    parquet.write_bytes(parquet.read_bytes()[:-200])
    cut.append((parquet, str(parquet)))

    cases = [(broken, "row 7"), (garbage, str(garbage)), (nothing, "cannot tell bars, trades or quotes"), *cut]
    for path, expect in cases:
        code, out = st("data", "import", str(path), "--symbol", "BTC/USDT", "--venue", "BINANCE")
        assert code == 2, out
        assert expect in out and "Traceback" not in out
        assert _tree(home) == before


def test_data_formats_lists_every_reader() -> None:
    from smart_trader.data.readers import FORMATS

    code, out = st("data", "formats")

    assert code == 0
    for name in FORMATS:
        assert name in out


def test_the_cli_choices_are_the_domains_values() -> None:
    from smart_trader.cli.book import DEFAULT_LEVELS, GAP_POLICIES
    from smart_trader.cli.data import ASSET_CLASSES, KINDS, PRICE_TYPES
    from smart_trader.core.instruments import AssetClass
    from smart_trader.data.schema import Kind, PriceType
    from smart_trader.microstructure.builder import GapPolicy
    from smart_trader.microstructure.measures import DEFAULT_LEVELS as MEASURES_LEVELS

    assert set(KINDS) == {k.value for k in Kind}
    assert set(PRICE_TYPES) == {p.value for p in PriceType}
    assert set(ASSET_CLASSES) == {a.value for a in AssetClass}
    assert set(GAP_POLICIES) == {g.value for g in GapPolicy}
    assert DEFAULT_LEVELS == MEASURES_LEVELS


def test_brackets_in_messages_are_printed_as_written(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "prices[usd].csv"
    path.write_text("foo,bar\n1,2\n")

    code, out = st("data", "import", str(path), "--symbol", "X/USD", "--venue", "V")

    assert code == 2 and "prices[usd].csv" in out
