"""``smart-trader backtest``: run a built-in strategy over stored bars or a data file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from smart_trader.core.errors import InvalidInputError
from smart_trader.core.instruments import Instrument
from smart_trader.data.aggregation import quotes_to_bars, resample_bars, trades_to_bars
from smart_trader.data.catalog import infer_instrument
from smart_trader.data.readers import read_file
from smart_trader.data.schema import Kind, PriceType, between
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe
from smart_trader.execution.costs import BpsCommission, CommissionModel, NoCommission, PerUnitCommission, TickSlippage
from smart_trader.execution.paper_broker import FillConfig
from smart_trader.portfolio.account import AccountType
from smart_trader.strategy.builtin import strategy_class
from smart_trader.strategy.engine import BacktestEngine
from smart_trader.strategy.results import BacktestResult

from .common import cli_errors, console, parse_decimal, parse_time, service


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["fast=10", "slow=30"]`` → ``{"fast": "10", "slow": "30"}``.

    Raises:
        InvalidInputError: an item is not ``name=value``.
    """
    out: dict[str, str] = {}
    for item in pairs:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInputError(f"--param {item!r} is not name=value")
        out[name.strip()] = value.strip()
    return out


def bars_from_file(
    path: Path,
    symbol: str | None,
    venue: str | None,
    timeframe: Timeframe | None,
    price_type: PriceType | None = None,
) -> tuple[Instrument, pa.Table, Timeframe]:
    """Read ``path`` and return bars at ``timeframe`` (the file's own for bar files when ``None``); quote files
    give bid bars unless ``price_type`` says ask (mid bars would need a finer tick than the instrument's).

    Raises:
        InvalidInputError: a bar file cannot give the asked timeframe, or trades/quotes without ``timeframe``.
    """
    r = read_file(path)
    inst = infer_instrument(
        symbol or path.name.split("_")[0].split(".")[0], venue or "LOCAL", r.price_precision, r.size_precision
    )
    if r.kind is Kind.BARS:
        own = r.timeframe
        if own is None:
            raise InvalidInputError(f"cannot infer the bar timeframe of {path}")
        if timeframe is None or timeframe == own:
            return inst, r.table, own
        return inst, resample_bars(r.table, timeframe, own), timeframe
    if timeframe is None:
        raise InvalidInputError(f"{path} holds {r.kind}: give --timeframe to build bars from them")
    if r.kind is Kind.TRADES:
        return inst, trades_to_bars(r.table, timeframe), timeframe
    pt = price_type if price_type is not None and price_type is not PriceType.LAST else PriceType.BID
    return inst, quotes_to_bars(r.table, timeframe, pt), timeframe


def default_timeframe(svc: MarketDataService, symbol: str, venue: str) -> Timeframe:
    """The shortest stored bar timeframe of the instrument, else 1m (built from trades or quotes)."""
    tfs = [d.key.timeframe for d in svc.datasets(symbol, venue) if d.key.kind is Kind.BARS and d.key.timeframe]
    return min(tfs) if tfs else Timeframe.parse("1m")


def run_backtest(
    strategy: str,
    params: dict[str, str],
    instrument: Instrument,
    bars: pa.Table,
    timeframe: Timeframe,
    *,
    cash: Decimal,
    fill_config: FillConfig,
    account_type: AccountType = AccountType.CASH,
    show_progress: bool = True,
) -> BacktestResult:
    """Run a built-in strategy over ``bars`` and return the result.

    Raises:
        NotFoundError: unknown strategy. InvalidInputError: bad parameters, no bars.
    """
    strat = strategy_class(strategy)(**params)
    if bars.num_rows == 0:
        raise InvalidInputError(f"no bars of {instrument.id} in the chosen range")
    engine = BacktestEngine(starting_cash=cash, fill_config=fill_config, account_type=account_type)
    engine.add_bars(instrument, bars, timeframe)
    if not show_progress:
        return engine.run(strat)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"{strategy} on {instrument.id}", total=bars.num_rows)
        return engine.run(strat, progress=lambda done, total: progress.update(task, completed=done))


def print_summary(result: BacktestResult, title: str) -> None:
    """A table of the headline statistics."""
    s = result.stats.to_dict()
    table = Table(title=title, show_header=False)
    for name in (
        "starting_equity", "final_equity", "total_return", "cagr", "annualized_volatility", "sharpe", "sortino",
        "max_drawdown", "max_drawdown_duration_seconds", "win_rate", "profit_factor", "exposure", "number_of_trades",
        "bars_processed", "run_seconds", "bars_per_second",
    ):  # fmt: skip
        v = s.get(name)
        table.add_row(name, f"{v:.4f}" if isinstance(v, float) else str(v))
    console.print(table)


def backtest(
    strategy: Annotated[str, typer.Option(help="sma_cross, rsi_reversion or buy_and_hold")] = "sma_cross",
    symbol: Annotated[str | None, typer.Option(help="instrument symbol (stored data)")] = None,
    venue: Annotated[str | None, typer.Option(help="venue code (stored data)")] = None,
    data: Annotated[Path | None, typer.Option(help="run on this file instead of the store")] = None,
    timeframe: Annotated[str | None, typer.Option(help="bar timeframe; default: the data's own")] = None,
    param: Annotated[list[str] | None, typer.Option(help="strategy parameter name=value (repeatable)")] = None,
    cash: Annotated[str, typer.Option(help="starting cash in the quote currency")] = "100000",
    commission_bps: Annotated[str, typer.Option(help="commission, basis points of notional")] = "0",
    commission_per_unit: Annotated[str | None, typer.Option(help="commission per unit instead of bps")] = None,
    commission_min: Annotated[str, typer.Option(help="minimum commission per fill (with --commission-per-unit)")] = "0",
    slippage_ticks: Annotated[int, typer.Option(help="ticks of slippage on market-taking fills")] = 0,
    participation: Annotated[str | None, typer.Option(help="max fraction of a bar's volume per fill, e.g. 0.1")] = None,
    account_type: Annotated[AccountType, typer.Option(help="cash (no shorting) or margin")] = AccountType.CASH,
    start: Annotated[str | None, typer.Option(help="ISO 8601 UTC start")] = None,
    end: Annotated[str | None, typer.Option(help="ISO 8601 UTC end, exclusive")] = None,
    price_type: Annotated[PriceType | None, typer.Option(help="bars of last (trade), bid or ask prices")] = None,
    output: Annotated[
        Path, typer.Option(help="folder for stats.json, trades.csv, fills.csv, equity.csv, chart.png")
    ] = Path("backtest-output"),
) -> None:
    """Backtest a strategy with the paper broker; writes the results into --output."""
    with cli_errors():
        tf = Timeframe.parse(timeframe) if timeframe else None
        start_ns, end_ns = parse_time(start, "start"), parse_time(end, "end")
        if data is not None:
            instrument, bars, tf = bars_from_file(data, symbol, venue, tf, price_type)
            bars = between(bars, start_ns, end_ns)
        else:
            if symbol is None or venue is None:
                raise InvalidInputError("give --symbol and --venue (stored data) or --data FILE")
            svc = service()
            instrument = svc.instrument(symbol, venue)
            tf = tf or default_timeframe(svc, symbol, venue)
            bars = svc.bars(symbol, venue, tf, start_ns=start_ns, end_ns=end_ns, price_type=price_type)
        starting = parse_decimal(cash, "cash")
        assert starting is not None
        per_unit = parse_decimal(commission_per_unit, "commission-per-unit")
        commission: CommissionModel
        if per_unit is not None:
            commission = PerUnitCommission(per_unit, parse_decimal(commission_min, "commission-min") or Decimal(0))
        else:
            bps = parse_decimal(commission_bps, "commission-bps") or Decimal(0)
            commission = BpsCommission(bps) if bps else NoCommission()
        if slippage_ticks < 0:
            raise InvalidInputError("--slippage-ticks must not be negative")
        fill_config = FillConfig(
            commission=commission,
            slippage=TickSlippage(slippage_ticks) if slippage_ticks else FillConfig().slippage,
            participation=parse_decimal(participation, "participation"),
        )
        result = run_backtest(
            strategy, parse_params(param or []), instrument, bars, tf, cash=starting, fill_config=fill_config,
            account_type=account_type,
        )  # fmt: skip
        paths = result.write(output)
        print_summary(result, f"{strategy} on {instrument.id} {tf}")
        console.print("wrote " + ", ".join(str(p) for p in paths.values()))
