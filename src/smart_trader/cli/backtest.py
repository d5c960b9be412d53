"""``smart-trader backtest``: run a built-in strategy over stored bars or a data file.

The data, engine and chart modules (pyarrow, polars, matplotlib) are imported when a backtest runs, not when the
command line is parsed (``smart-trader --help`` stays fast).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from smart_trader.core.errors import InvalidInputError
from smart_trader.core.instruments import Instrument
from smart_trader.data.timeframes import Timeframe
from smart_trader.portfolio.account import AccountType

from .common import cli_errors, console, parse_decimal, parse_time, service

if TYPE_CHECKING:
    import pyarrow as pa

    from smart_trader.challenges.monitor import ChallengeMonitor
    from smart_trader.data.schema import PriceType
    from smart_trader.data.service import MarketDataService
    from smart_trader.execution.paper_broker import FillConfig
    from smart_trader.strategy.results import BacktestResult

PRICE_TYPES = ("last", "bid", "ask", "mid")  # the values of data.schema.PriceType (checked by a test)


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
    from smart_trader.data.aggregation import quotes_to_bars, resample_bars, trades_to_bars
    from smart_trader.data.catalog import infer_instrument
    from smart_trader.data.readers import read_file
    from smart_trader.data.schema import Kind, PriceType

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
    from smart_trader.data.schema import Kind

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
    challenge: ChallengeMonitor | None = None,
) -> BacktestResult:
    """Run a built-in strategy over ``bars`` and return the result; with ``challenge``, the account is judged by that
    challenge's rules on every fill and along every bar's path (its orders refused once it fails or locks).

    Raises:
        NotFoundError: unknown strategy. InvalidInputError: bad parameters, no bars.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from smart_trader.strategy.builtin import strategy_class
    from smart_trader.strategy.engine import BacktestEngine

    strat = strategy_class(strategy)(**params)
    if bars.num_rows == 0:
        raise InvalidInputError(f"no bars of {instrument.id} in the chosen range")
    from smart_trader.trading.session import SessionFactory

    sessions = SessionFactory(fill_config)
    if challenge is not None:
        sessions = SessionFactory(fill_config, checks=lambda _a: [challenge], monitors=lambda _a: [challenge])
    engine = BacktestEngine(starting_cash=cash, fill_config=fill_config, account_type=account_type, sessions=sessions)
    engine.add_bars(instrument, bars, timeframe)
    if not show_progress:
        return engine.run(strat)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"{strategy} on {instrument.id}", total=bars.num_rows)
        return engine.run(strat, progress=lambda done, total: progress.update(task, completed=done))


# (label, stats key, how a trader reads it): percent of a fraction, a ratio, money, a count, days of seconds
SUMMARY_ROWS: tuple[tuple[str, str, str], ...] = (
    ("Starting equity", "starting_equity", "money"),
    ("Final equity", "final_equity", "money"),
    ("Total return", "total_return", "percent"),
    ("CAGR", "cagr", "percent"),
    ("Volatility (annualized)", "annualized_volatility", "percent"),
    ("Sharpe ratio", "sharpe", "ratio"),
    ("Sortino ratio", "sortino", "ratio"),
    ("Max drawdown", "max_drawdown", "percent"),
    ("Max drawdown duration", "max_drawdown_duration_seconds", "duration"),
    ("Win rate", "win_rate", "percent"),
    ("Profit factor", "profit_factor", "ratio"),
    ("Exposure (time in market)", "exposure", "percent"),
    ("Trades", "number_of_trades", "count"),
    ("Bars", "bars_processed", "count"),
    ("Run time", "run_seconds", "seconds"),
)


def format_stat(value: Any, how: str, currency: str = "") -> str:
    """A statistic as a trader reads it: ``percent`` (a fraction, 0.1234 → ``12.34 %``), ``ratio`` (2 decimals),
    ``money`` (thousands separators, 2 decimals, the currency), ``count``, ``duration`` (seconds → ``3 d 4 h``),
    ``seconds``; ``None`` (undefined for the run) → ``n/a``."""
    if value is None:
        return "n/a"
    if how == "percent":
        return f"{float(value) * 100:,.2f} %"
    if how == "ratio":
        return f"{float(value):,.2f}"
    if how == "money":
        return f"{Decimal(value):,.2f} {currency}".rstrip()
    if how == "count":
        return f"{int(value):,}"
    if how == "duration":
        return format_duration(float(value))
    return f"{float(value):,.2f} s"


def format_duration(seconds: float) -> str:
    """``93784.0`` → ``1 d 2 h 3 min``: days, hours and minutes (seconds only under a minute)."""
    if seconds < 60:
        return f"{seconds:g} s"
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{mins} min" if mins else ""]
    return " ".join(p for p in parts if p)


def print_summary(result: BacktestResult, title: str) -> None:
    """A table of the headline statistics, as a trader reads them: returns and drawdowns in percent, money in the
    account currency, the drawdown duration in days and hours (``stats.json`` keeps fractions and seconds)."""
    s = result.stats.to_dict()
    table = Table(title=title, show_header=False)
    for label, key, how in SUMMARY_ROWS:
        table.add_row(label, format_stat(s.get(key), how, result.currency))
    console.print(table)


def challenge_monitor(program_id: str, size: Decimal, bars: pa.Table) -> ChallengeMonitor:
    """The monitor of a challenge ``program_id`` (a built-in id or a program YAML file) at ``size`` (the account's
    starting cash) starting at the first bar.

    Raises:
        InvalidInputError: unknown program (the message lists them), an invalid YAML program (naming the field), a
            size the program does not offer, no bars.
    """
    from smart_trader.challenges.evaluator import ChallengeEvaluator
    from smart_trader.challenges.monitor import ChallengeMonitor
    from smart_trader.data.schema import ts_ns

    from .challenge import resolve_program

    program = resolve_program(program_id, "--challenge")
    if size not in program.sizes:
        sizes = ", ".join(str(s) for s in program.sizes)
        raise InvalidInputError(f"--cash {size} is not a size of {program.id}: one of {sizes}")
    if bars.num_rows == 0:
        raise InvalidInputError("no bars in the chosen range")
    return ChallengeMonitor(ChallengeEvaluator(program, 0, size, int(ts_ns(bars)[0])))


def write_results(result: BacktestResult, bars: pa.Table, out: Path) -> dict[str, Path]:
    """Write the result files into ``out`` (see :meth:`BacktestResult.write`) and draw ``chart.png`` with the price,
    the entries and exits and a buy-and-hold benchmark of the traded bars. Returns the paths by name."""
    from smart_trader.analytics.chart import write_chart
    from smart_trader.data.schema import ts_ns

    paths = result.write(out)
    closes = [float(c) for c in bars.column("close").to_pylist()]
    write_chart(
        paths["chart"],
        result.equity_ts,
        result.equity,
        title=f"{result.strategy} on {', '.join(result.instruments)}",
        price_ts=ts_ns(bars),
        prices=closes,
        round_trips=result.round_trips,
    )
    return paths


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
    price_type: Annotated[
        str | None, typer.Option(help="bars of last (trade), bid, ask or mid prices: " + ", ".join(PRICE_TYPES))
    ] = None,
    output: Annotated[
        Path, typer.Option(help="folder for stats.json, trades.csv, fills.csv, equity.csv, chart.png")
    ] = Path("backtest-output"),
    challenge: Annotated[
        str | None,
        typer.Option(
            help="judge the run by a challenge program (`smart-trader challenge programs`); --cash is its size"
        ),
    ] = None,
) -> None:
    """Backtest a strategy with the paper broker; writes the results into --output."""
    from smart_trader.data.schema import PriceType, between
    from smart_trader.execution.costs import (
        BpsCommission,
        CommissionModel,
        NoCommission,
        PerUnitCommission,
        TickSlippage,
    )
    from smart_trader.execution.paper_broker import FillConfig

    with cli_errors():
        if price_type is not None and price_type not in PRICE_TYPES:
            raise InvalidInputError(f"--price-type must be one of {', '.join(PRICE_TYPES)}, got {price_type!r}")
        pt = PriceType(price_type) if price_type is not None else None
        tf = Timeframe.parse(timeframe) if timeframe else None
        start_ns, end_ns = parse_time(start, "start"), parse_time(end, "end")
        if data is not None:
            instrument, bars, tf = bars_from_file(data, symbol, venue, tf, pt)
            bars = between(bars, start_ns, end_ns)
        else:
            if symbol is None or venue is None:
                raise InvalidInputError("give --symbol and --venue (stored data) or --data FILE")
            svc = service()
            instrument = svc.instrument(symbol, venue)
            tf = tf or default_timeframe(svc, symbol, venue)
            bars = svc.bars(symbol, venue, tf, start_ns=start_ns, end_ns=end_ns, price_type=pt)
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
        monitor = None
        if challenge is not None:
            monitor = challenge_monitor(challenge, starting, bars)
        result = run_backtest(
            strategy, parse_params(param or []), instrument, bars, tf, cash=starting, fill_config=fill_config,
            account_type=account_type, challenge=monitor,
        )  # fmt: skip
        paths = write_results(result, bars, output)
        print_summary(result, f"{strategy} on {instrument.id} {tf}")
        if monitor is not None:
            verdict = monitor.finish()  # the last firm day closed, as `challenge evaluate` closes it
            stats = json.loads(paths["stats"].read_text())
            stats["challenge"] = {"program": challenge, "size": str(starting), **verdict}
            paths["stats"].write_text(json.dumps(stats, indent=2) + "\n")
            breach = verdict["breach"]
            console.print(
                f"challenge {challenge}: {verdict['status']}"
                + (
                    f" — {breach['rule']} at {breach['ts']} (equity {breach['equity']}, floor {breach['floor']})"
                    if breach
                    else ""
                )
            )
        console.print("wrote " + ", ".join(str(p) for p in paths.values()))
