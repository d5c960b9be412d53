"""Entry point of the ``smart-trader`` command.

Only Typer, Rich and the command modules' signatures load here: every command imports its heavy dependencies
(pyarrow, polars, FastAPI, SQLAlchemy, ccxt, matplotlib) when it runs, so ``smart-trader --help`` stays fast.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from smart_trader.core.errors import NotFoundError

from . import data
from .backtest import backtest
from .common import cli_errors, console, service, settings
from .platform import serve, up

app = typer.Typer(
    name="smart-trader",
    help="Smart Trader: market data, paper broker, exact portfolio accounting, strategies and backtests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.command()(backtest)
app.command()(up)
app.command()(serve)

# (file under the shared data folder, symbol, venue): what the demo imports
DEMO_FILES = [
    ("bars/ORCL_1995-2014_1d.yahoo.csv", "ORCL", "NASDAQ"),
    ("bars/ETH-BTC_2018-01_5m.binance.feather", "ETH/BTC", "BINANCE"),
    ("bars/GBPUSD_2012_1m_bid.fxcm.csv", "GBP/USD", "FXCM"),
    ("trades/BTCUSDT_2021-01-08.binance.trades.parquet", "BTC/USDT", "BINANCE"),
    ("quotes/BTCUSDT.binance.quotes.parquet", "BTC/USDT", "BINANCE"),
]
# (symbol, venue, timeframe, starting cash in the quote currency)
DEMO_RUNS = [("ORCL", "NASDAQ", "1d", 100_000), ("ETH/BTC", "BINANCE", "5m", 10), ("GBP/USD", "FXCM", "1m", 100_000)]


def _default_data_dir() -> Path:
    env = os.environ.get("SMART_TRADER_DATA")
    return Path(env) if env else Path.cwd().parent / "shared" / "data"


@app.command()
def demo(
    data_dir: Annotated[
        Path | None, typer.Option(help="folder of recorded market data (default: ../shared/data)")
    ] = None,
) -> None:
    """The main job until the live platform lands: import real recorded data, then backtest sma_cross (10/30)
    on ORCL daily, ETH/BTC 5-minute and GBP/USD 1-minute bars, writing results under SMART_TRADER_HOME/runs."""
    from smart_trader.data.timeframes import Timeframe
    from smart_trader.execution.paper_broker import FillConfig

    from .backtest import print_summary, run_backtest, write_results

    with cli_errors():
        folder = data_dir or _default_data_dir()
        if not folder.is_dir():
            raise NotFoundError(f"no market data at {folder}: pass --data-dir or set SMART_TRADER_DATA")
        home = settings().home_dir
        svc = service()
        console.print(f"home: {home}")
        for rel, symbol, venue in DEMO_FILES:
            r = svc.import_file(folder / rel, symbol=symbol, venue=venue)
            console.print(f"imported {rel}: {r.rows_read:,} rows, {r.rows_added:,} new → {r.key}")
        for symbol, venue, tf, cash in DEMO_RUNS:
            timeframe = Timeframe.parse(tf)
            instrument = svc.instrument(symbol, venue)
            bars = svc.bars(symbol, venue, timeframe)
            result = run_backtest(
                "sma_cross", {"fast": "10", "slow": "30"}, instrument, bars, timeframe,
                cash=Decimal(cash), fill_config=FillConfig(),
            )  # fmt: skip
            out = home / "runs" / f"demo-{symbol.replace('/', '')}-{tf}"
            write_results(result, bars, out)
            print_summary(result, f"sma_cross 10/30 on {instrument.id} {tf}")
            console.print(f"results in {out}")


if __name__ == "__main__":  # pragma: no cover
    app()
