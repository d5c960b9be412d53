"""The issue's file, end to end as a user runs it: a plain one-minute BTC perpetual CSV
(``timestamp,open,high,low,close,volume``, volumes above 1e8 with float noise; ``tests/data/fixtures/perp``)
imported with ``smart-trader data import`` and backtested with ``smart-trader backtest`` (sma_cross 10/30,
fills at the next bar's open) gives the same trades as backtesting.py on the same bars.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from benchmarks.peers import PeerBars, run_backtesting_py
from typer.testing import CliRunner

from smart_trader.cli.main import app
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe

PERP = Path(__file__).parents[1] / "data" / "fixtures" / "perp" / "BTCUSDT-PERP_1m_2022-05-04.csv"
FAST, SLOW, CASH = 10, 30, 100_000


def test_the_perp_csv_imports_and_backtests_to_backtesting_py_trades(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    imported = runner.invoke(app, ["data", "import", str(PERP), "--symbol", "BTC/USDT", "--venue", "BINANCE"])
    out = tmp_path / "run"
    ran = runner.invoke(
        app,
        ["backtest", "--symbol", "BTC/USDT", "--venue", "BINANCE", "--param", f"fast={FAST}", "--param",
         f"slow={SLOW}", "--cash", str(CASH), "--output", str(out)],
    )  # fmt: skip

    assert imported.exit_code == 0, imported.output
    assert "14 value(s) printed from binary floats" in imported.output
    assert ran.exit_code == 0, ran.output
    with (out / "trades.csv").open(newline="") as f:
        ours = [
            (r["entry_time"], Decimal(r["entry_price"]), r["exit_time"], Decimal(r["quantity"]))
            for r in csv.DictReader(f)
        ]

    svc = MarketDataService(home)
    instrument = svc.instrument("BTC/USDT", "BINANCE")
    bars = PeerBars.from_table(
        svc.bars("BTC/USDT", "BINANCE", Timeframe.parse("1m")), instrument.price_precision, instrument.lot_size
    )
    peer = run_backtesting_py(bars, FAST, SLOW, float(CASH))

    def iso(ns: int | None) -> str:
        return "" if ns is None else bars.frame.index[list(bars.ts).index(ns)].isoformat()

    theirs = [(iso(t.entry_ns), t.entry_price, iso(t.exit_ns), t.quantity) for t in peer.trades]
    assert len(ours) == 5
    assert ours == theirs
