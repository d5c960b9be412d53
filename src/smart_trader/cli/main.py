"""Entry point of the ``smart-trader`` command.

Only Typer, Rich and the command modules' signatures load here: every command imports its heavy dependencies
(pyarrow, polars, FastAPI, SQLAlchemy, ccxt, matplotlib) when it runs, so ``smart-trader --help`` stays fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from smart_trader.core.errors import NotFoundError

from . import audit, challenge, data, db, users
from .backtest import backtest
from .common import cli_errors, console, service, settings
from .platform import serve, up

if TYPE_CHECKING:
    from smart_trader.data.service import MarketDataService
    from smart_trader.strategy.results import BacktestResult

app = typer.Typer(
    name="smart-trader",
    help="Smart Trader: market data, paper broker, exact portfolio accounting, strategies and backtests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(users.app, name="users")
app.add_typer(audit.app, name="audit")
app.add_typer(challenge.app, name="challenge")
app.add_typer(db.app, name="db")
app.command()(backtest)
app.command()(up)
app.command()(serve)

SMA_10_30 = {"fast": "10", "slow": "30"}


@dataclass(frozen=True, slots=True)
class DemoRun:
    """One backtest of the demo: a built-in strategy on stored bars of an instrument at a timeframe."""

    strategy: str
    params: dict[str, str]
    symbol: str
    venue: str
    timeframe: str
    cash: int
    commission_bps: int = 0

    @property
    def folder(self) -> str:
        """The run's folder name under ``SMART_TRADER_HOME/runs``, e.g. ``demo-BTCUSDTUSDT-1m-sma_cross``."""
        fee = f"-{self.commission_bps}bps" if self.commission_bps else ""
        return f"demo-{re.sub(r'[^0-9A-Za-z]+', '', self.symbol)}-{self.timeframe}-{self.strategy}{fee}"

    @property
    def title(self) -> str:
        """``sma_cross 10/30 on BTC/USDT:USDT.BINANCE 1m`` (``, 4 bps commission`` when it pays one)."""
        params = "/".join(self.params.values())
        fee = f", {self.commission_bps} bps commission" if self.commission_bps else ""
        return f"{self.strategy} {params}".rstrip() + f" on {self.symbol}.{self.venue} {self.timeframe}{fee}"


def sample_runs(symbol: str, venue: str) -> list[DemoRun]:
    """The demo on the packaged sample (two days of one-minute bars): sma_cross 10/30 on the bars as recorded and
    resampled to 15 minutes, the 1-minute run again paying 4 bps a fill (a typical taker fee: it turns the gain
    into a loss), and buy-and-hold over the same days as the benchmark."""
    return [
        DemoRun("sma_cross", SMA_10_30, symbol, venue, "1m", 100_000),
        DemoRun("sma_cross", SMA_10_30, symbol, venue, "15m", 100_000),
        DemoRun("sma_cross", SMA_10_30, symbol, venue, "1m", 100_000, commission_bps=4),
        DemoRun("buy_and_hold", {}, symbol, venue, "1m", 100_000),
    ]


# --data-dir: (file under the shared data folder, symbol, venue) imported, then sma_cross 10/30 on each bar series
SHARED_FILES = [
    ("bars/ORCL_1995-2014_1d.yahoo.csv", "ORCL", "NASDAQ"),
    ("bars/ETH-BTC_2018-01_5m.binance.feather", "ETH/BTC", "BINANCE"),
    ("bars/GBPUSD_2012_1m_bid.fxcm.csv", "GBP/USD", "FXCM"),
    ("trades/BTCUSDT_2021-01-08.binance.trades.parquet", "BTC/USDT", "BINANCE"),
    ("quotes/BTCUSDT.binance.quotes.parquet", "BTC/USDT", "BINANCE"),
]
SHARED_RUNS = [
    DemoRun("sma_cross", SMA_10_30, "ORCL", "NASDAQ", "1d", 100_000),
    DemoRun("sma_cross", SMA_10_30, "ETH/BTC", "BINANCE", "5m", 10),
    DemoRun("sma_cross", SMA_10_30, "GBP/USD", "FXCM", "1m", 100_000),
]


@app.command()
def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="SMART_TRADER_DATA",
            help="instead of the packaged sample: a folder of recorded market data laid out as ../shared/data "
            "(imports ORCL daily, ETH/BTC 5-minute, GBP/USD 1-minute bars and BTC/USDT ticks)",
        ),
    ] = None,
) -> None:
    """Backtests on real data, with nothing needed beside the package: import the packaged sample (two days of
    Binance BTC/USDT perpetual 1-minute bars, the recording `up` replays) and backtest sma_cross (10/30) on it at
    1m and 15m, at 1m again with a 4 bps commission, and buy-and-hold as the benchmark; results (stats.json,
    trades, fills, equity, chart.png) under SMART_TRADER_HOME/runs."""
    from smart_trader.samples import default_sample

    with cli_errors():
        home = settings().home_dir
        svc = service()
        console.print(f"home: {home}")
        if data_dir is None:
            sample = default_sample()
            if sample is None:
                raise NotFoundError("this build ships no sample (smart_trader/samples): pass --data-dir FOLDER")
            console.print(
                f"data: the packaged sample, {sample.timeframe} {sample.kind} of {sample.symbol} on {sample.venue} "
                f"({', '.join(f.name for f in sample.files)}; smart_trader/samples/README.md says what it is)"
            )
            imports = [(f, sample.symbol, sample.venue) for f in sample.files]
            runs = sample_runs(sample.symbol, sample.venue)
        else:
            if not data_dir.is_dir():
                raise NotFoundError(
                    f"no market data at {data_dir}: --data-dir needs a folder laid out as ../shared/data"
                )
            imports = [(data_dir / rel, symbol, venue) for rel, symbol, venue in SHARED_FILES]
            runs = SHARED_RUNS
        for file, symbol, venue in imports:
            r = svc.import_file(file, symbol=symbol, venue=venue)
            console.print(f"imported {file.name}: {r.rows_read:,} rows, {r.rows_added:,} new → {r.key}")
        results = [(run, _demo_backtest(svc, run, home)) for run in runs]
        _print_comparison(results, home)


def _demo_backtest(svc: MarketDataService, run: DemoRun, home: Path) -> BacktestResult:
    """Run one demo backtest on stored bars, write its files under ``home/runs`` and print its summary."""
    from smart_trader.data.timeframes import Timeframe
    from smart_trader.execution.costs import BpsCommission
    from smart_trader.execution.paper_broker import FillConfig

    from .backtest import print_summary, run_backtest, write_results

    timeframe = Timeframe.parse(run.timeframe)
    instrument = svc.instrument(run.symbol, run.venue)
    bars = svc.bars(run.symbol, run.venue, timeframe)
    fills = FillConfig(commission=BpsCommission(Decimal(run.commission_bps))) if run.commission_bps else FillConfig()
    result = run_backtest(
        run.strategy, run.params, instrument, bars, timeframe, cash=Decimal(run.cash), fill_config=fills
    )
    write_results(result, bars, home / "runs" / run.folder)
    print_summary(result, run.title)
    return result


def _print_comparison(results: list[tuple[DemoRun, BacktestResult]], home: Path) -> None:
    """One line per run: what it was, its return, drawdown and trades, and where its files are."""
    from rich.table import Table

    from .backtest import format_stat

    table = Table(title=f"demo runs (files under {home / 'runs'})")
    for column in ("run", "bars", "trades", "total return", "max drawdown", "final equity", "folder"):
        table.add_column(column, justify="left" if column in ("run", "folder") else "right")
    for run, result in results:
        s = result.stats.to_dict()
        table.add_row(
            run.title,
            format_stat(s.get("bars_processed"), "count"),
            format_stat(s.get("number_of_trades"), "count"),
            format_stat(s.get("total_return"), "percent"),
            format_stat(s.get("max_drawdown"), "percent"),
            format_stat(s.get("final_equity"), "money", result.currency),
            run.folder,
        )
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
