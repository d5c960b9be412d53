"""One judge, three doors: the same strategy on the same real data gives the same breach — rule, instant, equity and
floor — in ``smart-trader backtest --challenge`` and in ``smart-trader challenge evaluate`` on the backtest's own fills
(the platform replaying the data is the third door: tests/app/test_challenges_live.py)."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from smart_trader.cli.main import app

runner = CliRunner(env={"COLUMNS": "200"})


def _fills_csv(backtest_fills: Path, out: Path, symbol: str) -> Path:
    """The backtest's fills.csv as ``challenge evaluate``'s FILLS.csv (ts epoch ns, symbol, side, qty, price,
    commission)."""
    with backtest_fills.open() as f, out.open("w", newline="") as g:
        w = csv.writer(g)
        w.writerow(["ts", "symbol", "side", "qty", "price", "commission"])
        for r in csv.DictReader(f):
            w.writerow([r["ts_event"], symbol, r["side"], r["quantity"], r["price"], r["commission"]])
    return out


def test_a_backtest_and_evaluate_on_its_fills_fail_at_the_same_instant_for_the_same_rule(
    shared_data: Path, tmp_path: Path
) -> None:
    """NVDA daily bars (Yahoo, 1999): buy-and-hold all in on a $100,000 FTMO 2-Step — the first day's low takes the
    equity under the daily floor (SOD balance 100,000 − 5 % = 95,000 [S1]); both doors judge the bar's low at the
    same instant (the bar-path convention of ``execution.matching.bar_path_offsets``)."""
    prices = shared_data / "bars" / "NVDA_1999-2014_1d.yahoo.csv"
    out = tmp_path / "bt"
    r = runner.invoke(
        app,
        ["backtest", "--strategy", "buy_and_hold", "--data", str(prices), "--cash", "100000",
         "--challenge", "ftmo-2step", "--output", str(out)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    backtest = json.loads((out / "stats.json").read_text())["challenge"]
    assert backtest["status"] == "failed" and backtest["breach"]["rule"] == "daily_loss"
    assert Decimal(backtest["breach"]["floor"]) == Decimal("95000")
    fills = _fills_csv(out / "fills.csv", tmp_path / "fills.csv", "NVDA")
    with fills.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and rows[1]["side"] == "sell"  # the position was flattened after the breach
    # evaluate the opening fill alone: what the trader did, judged on the recorded prices
    only_entry = tmp_path / "entry.csv"
    only_entry.write_text("\n".join(fills.read_text().splitlines()[:2]) + "\n")
    r = runner.invoke(
        app,
        ["challenge", "evaluate", "--program", "ftmo-2step", "--size", "100000", "--fills", str(only_entry),
         "--prices", str(prices)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    evaluated = json.loads(r.output)
    assert evaluated["status"] == "failed"
    for key in ("rule", "ts", "equity", "floor"):
        assert evaluated["breach"][key] == backtest["breach"][key], key
