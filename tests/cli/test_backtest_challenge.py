"""``smart-trader backtest --challenge``: a custom program from a YAML file judges the run (its own daily-loss rule,
4 % of the initial balance, fails it where FTMO's 5 % would have failed later or not at all), and bad input — an
unknown program, a size the program does not offer, an invalid YAML program — is one line naming the problem, exit 2."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from smart_trader.cli.main import app

runner = CliRunner(env={"COLUMNS": "200"})

CUSTOM = """\
firm: Example
id: example-4pct
name: Example 1-Step
currency: USD
sizes: [100000]
tz: America/New_York
reset_time: "17:00"
sources: [{id: S1, url: "https://academy.ftmo.com/lesson/maximum-daily-loss"}]
verified_on: 2026-12-02
phases:
  - name: Evaluation
    profit_target: {pct: 8}
    daily_loss: {amount: {pct: %s}, reference: %s}
"""


def _backtest(prices: Path, out: Path, challenge: str, cash: str = "100000") -> tuple[int, str]:
    r = runner.invoke(
        app,
        ["backtest", "--strategy", "buy_and_hold", "--data", str(prices), "--cash", cash, "--challenge", challenge,
         "--output", str(out)],
    )  # fmt: skip
    return r.exit_code, r.output


def test_a_yaml_program_judges_the_backtest_with_its_own_rules(shared_data: Path, tmp_path: Path) -> None:
    prices = shared_data / "bars" / "NVDA_1999-2014_1d.yahoo.csv"
    program = tmp_path / "example.yaml"
    program.write_text(CUSTOM % (4, "balance"))
    code, output = _backtest(prices, tmp_path / "out", str(program))
    assert code == 0, output
    verdict = json.loads((tmp_path / "out" / "stats.json").read_text())["challenge"]
    assert verdict["program"] == str(program) and verdict["status"] == "failed"
    # the day-start balance 100,000 less 4 % of the initial balance
    assert verdict["breach"]["rule"] == "daily_loss" and Decimal(verdict["breach"]["floor"]) == Decimal("96000")


def test_bad_challenge_input_is_one_line_and_exit_2(shared_data: Path, tmp_path: Path) -> None:
    prices = shared_data / "bars" / "NVDA_1999-2014_1d.yahoo.csv"
    code, output = _backtest(prices, tmp_path / "a", "nope")
    assert code == 2 and "--challenge" in output and "ftmo-2step" in output and "Traceback" not in output
    code, output = _backtest(prices, tmp_path / "b", "ftmo-2step", cash="12345")
    assert code == 2 and "12345" in output and "100000" in output
    bad = tmp_path / "bad.yaml"
    bad.write_text(CUSTOM % (4, "banana"))
    code, output = _backtest(prices, tmp_path / "c", str(bad))
    assert code == 2 and "phases[0].daily_loss.reference" in output
