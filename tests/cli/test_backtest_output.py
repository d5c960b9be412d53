"""What a trader reads from a backtest: percents, money, a drawdown duration in days; a chart with the price,
entries and exits and a buy-and-hold benchmark."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from typer.testing import CliRunner

from smart_trader.cli.backtest import PRICE_TYPES, format_duration, format_stat
from smart_trader.cli.main import app
from smart_trader.data.schema import PriceType

runner = CliRunner(env={"COLUMNS": "200"})


def test_statistics_are_shown_as_traders_read_them() -> None:
    assert format_stat(0.123456, "percent") == "12.35 %"
    assert format_stat(None, "percent") == "n/a"
    assert format_stat("100000.5", "money", "USD") == "100,000.50 USD"
    assert format_stat(1.23456, "ratio") == "1.23"
    assert format_duration(93_784.0) == "1 d 2 h 3 min"
    assert format_duration(59.5) == "59.5 s"
    assert set(PRICE_TYPES) == {p.value for p in PriceType}


def test_backtest_prints_percents_and_days_and_charts_price_trades_and_benchmark(
    home: Path, shared_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    data = str(shared_data / "bars/ORCL_1995-2014_1d.yahoo.csv")
    result = runner.invoke(
        app, ["backtest", "--data", data, "--symbol", "ORCL", "--venue", "NASDAQ", "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    pct = f"{stats['max_drawdown'] * 100:,.2f} %"
    assert "Max drawdown" in result.output and pct in result.output
    days = stats["max_drawdown_duration_seconds"] // 86_400
    assert stats["max_drawdown_duration_days"] == stats["max_drawdown_duration_seconds"] / 86_400
    assert f"{int(days)} d" in result.output
    png = (out / "chart.png").read_bytes()
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1200, 950)  # the price panel is there
