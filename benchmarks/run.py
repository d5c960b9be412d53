"""Benchmarks of Smart Trader against its peers, on tiled real data (``make bench``).

1. ``sma_cross`` (fast 10, slow 30; next-bar-open fills, all in, no commission) on GBP/USD bid 1-minute
   bars tiled to ``--bars`` (default 1,000,000): our ``BacktestEngine``, backtesting.py, backtrader,
   vectorbt and a plain NumPy loop; bars/s, the ratio to ours, and whether the trades are ours.
2. Import of trades into the store: Binance BTC/USDT trades tiled to ``--trades`` rows (default 5,000,000)
   in a Parquet file; ``MarketDataService.import_file`` (read + validate + write) against polars
   ``DataFrame.write_parquet`` of the same rows.

Prints a Markdown report; ``--write-docs`` also writes it to ``docs/benchmarks.md``.

    .venv/bin/python benchmarks/run.py [--bars N] [--backtrader-bars N] [--trades N] [--write-docs]
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar; read when tqdm is imported

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from machine import machine
from peers import (
    PeerBars,
    PeerRun,
    Signals,
    Trade,
    crosses_by_method,
    exact_crosses,
    exact_signs,
    first_difference,
    our_trades,
    run_backtesting_py,
    run_backtrader,
    run_numpy,
    run_vectorbt,
)
from smart_trader.core.instruments import Instrument
from smart_trader.data.catalog import infer_instrument
from smart_trader.data.readers import read_file
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe
from smart_trader.strategy.builtin.sma_cross import SmaCross
from smart_trader.strategy.engine import BacktestEngine
from tiling import Tiling, tile_bars, tile_binance_trades

ROOT = Path(__file__).resolve().parents[1]
PEER_LIBS = ("numpy", "pandas", "polars", "pyarrow", "backtesting", "backtrader", "vectorbt", "numba")
DATA = ROOT.parent / "shared" / "data"
BARS_FILE = "bars/GBPUSD_2012_1m_bid.fxcm.csv"
TRADES_FILE = "trades/BTCUSDT_2021-01-08.binance.trades.parquet"
FAST, SLOW = 10, 30
CASH = Decimal(100_000)
MINUTE_NS = 60_000_000_000


@dataclass
class Row:
    """One line of a results table."""

    name: str
    rows: int
    seconds: float
    trades: int | None = None
    same_trades: str = ""
    note: str = ""
    median: float | None = None  # median seconds, when there were several runs

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds


@dataclass
class BacktestReport:
    tiling: Tiling
    instrument: Instrument
    repeats: int
    rows: list[Row] = field(default_factory=list)
    vs_exact: dict[str, int] = field(default_factory=dict)
    exact_ties: int = 0
    explanations: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    tiling: Tiling
    file_mb: float
    repeats: int
    day_files: int = 0
    rows: list[Row] = field(default_factory=list)


def timed_row(name: str, rows: int, repeats: int, fn: Callable[[], float]) -> Row:
    """A row with the best and the median of ``repeats`` timings returned by ``fn``."""
    times = [fn() for _ in range(repeats)]
    return Row(name, rows, min(times), median=float(np.median(times)))


# -- 1. backtest --------------------------------------------------------------------------------
@dataclass
class OurRun:
    add_seconds: float
    run_seconds: float  # engine.run() end to end
    loop_seconds: float  # the engine's own stats.run_seconds (indicators + event loop)
    trades: list[Trade]
    crosses: Signals  # the cross signal the strategy saw on every bar


def run_ours(instrument: Instrument, table: pa.Table, timeframe: Timeframe) -> OurRun:
    """One timed run of our engine."""
    engine = BacktestEngine(starting_cash=CASH)
    strategy = SmaCross(fast=FAST, slow=SLOW)
    started = time.perf_counter()
    engine.add_bars(instrument, table, timeframe)
    added = time.perf_counter()
    result = engine.run(strategy)
    done = time.perf_counter()
    crosses = np.asarray(strategy.cross.history, dtype=np.int8)
    return OurRun(added - started, done - added, result.stats.run_seconds, our_trades(result), crosses)


COMPILED = ROOT / "build" / "compiled"


def trades_digest(trades: list[Trade]) -> str:
    """A fingerprint of a trade list, to compare runs in two processes."""
    return hashlib.sha256(repr(trades).encode()).hexdigest()


def child_ours(n_bars: int, repeats: int) -> None:
    """Run ours in this process (started with PYTHONPATH=build/compiled) and print the timings as JSON."""
    import smart_trader.strategy.engine as engine_module

    if not engine_module.__file__ or not engine_module.__file__.endswith(".so"):
        raise SystemExit(f"not the compiled build: {engine_module.__file__}")
    source = read_file(DATA / BARS_FILE)
    assert source.timeframe is not None
    table, _ = tile_bars(source.table, n_bars, MINUTE_NS)
    instrument = infer_instrument("GBP/USD", "FXCM", source.price_precision, source.size_precision)
    runs = [run_ours(instrument, table, source.timeframe) for _ in range(repeats)]
    trades = runs[0].trades
    out = {"run": min(r.run_seconds for r in runs), "loop": min(r.loop_seconds for r in runs)}
    print(json.dumps({**out, "n": len(trades), "trades": trades_digest(trades)}))


def run_compiled(n_bars: int, repeats: int) -> dict[str, Any] | None:
    """Timings of the mypyc-compiled build (``make compiled``) in a child process, or None when not built."""
    if not COMPILED.is_dir():
        print("build/compiled is missing: `make compiled` adds the compiled engine's rows", file=sys.stderr)
        return None
    env = {**os.environ, "PYTHONPATH": str(COMPILED)}
    cmd = [sys.executable, __file__, "--child-ours", str(n_bars), "--repeats", str(repeats)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_backtest(n_bars: int, backtrader_bars: int, repeats: int) -> BacktestReport:
    source = read_file(DATA / BARS_FILE)
    assert source.timeframe is not None
    table, tiling = tile_bars(source.table, n_bars, MINUTE_NS)
    instrument = infer_instrument("GBP/USD", "FXCM", source.price_precision, source.size_precision)
    report = BacktestReport(tiling, instrument, repeats)
    bars = PeerBars.from_table(table, source.price_precision, instrument.lot_size)
    tf = source.timeframe

    runs = [run_ours(instrument, table, tf) for _ in range(repeats)]
    add_s, run_s, loop_s = (min(getattr(r, f) for r in runs) for f in ("add_seconds", "run_seconds", "loop_seconds"))
    ours = runs[0].trades
    report.rows += [
        Row("Smart Trader `engine.run()` (end to end, with results)", n_bars, run_s, len(ours), "—"),
        Row("Smart Trader indicators + event loop (`stats.run_seconds`)", n_bars, loop_s, len(ours), "—"),
        Row("Smart Trader `add_bars()` + `run()`", n_bars, add_s + run_s, len(ours), "—"),
    ]
    compiled = run_compiled(n_bars, repeats)
    if compiled is not None:
        same = "yes" if compiled["trades"] == trades_digest(ours) else "no"
        report.rows += [
            Row(
                "Smart Trader compiled (mypyc), `engine.run()` end to end", n_bars, compiled["run"], compiled["n"], same
            ),
            Row(
                "Smart Trader compiled (mypyc), indicators + event loop", n_bars, compiled["loop"], compiled["n"], same
            ),
        ]

    close = bars.frame["Close"].to_numpy()
    exact = exact_crosses(bars.raw_close, FAST, SLOW)
    signs = exact_signs(bars.raw_close, FAST, SLOW)
    crosses = {"smart_trader": runs[0].crosses, **crosses_by_method(close, FAST, SLOW)}
    report.exact_ties = int(np.count_nonzero(signs[SLOW - 1 :] == 0))
    report.vs_exact = {name: int(np.count_nonzero(c != exact)) for name, c in crosses.items()}

    run_vectorbt(bars.slice(1_000), FAST, SLOW, float(CASH))  # numba compiles on the first call: not timed
    peers: list[tuple[str, Callable[[PeerBars], PeerRun], int, int, str]] = [
        ("NumPy loop (exact integer SMA sums)", lambda b: run_numpy(b, FAST, SLOW, CASH), n_bars, repeats, "exact"),
        ("vectorbt", lambda b: run_vectorbt(b, FAST, SLOW, float(CASH)), n_bars, repeats, "vectorbt"),
        ("backtesting.py", lambda b: run_backtesting_py(b, FAST, SLOW, float(CASH)), n_bars, 1, "backtesting.py"),
        ("backtrader", lambda b: run_backtrader(b, FAST, SLOW, float(CASH)), backtrader_bars, 1, "backtrader"),
    ]
    for name, runner, n, reps, method in peers:
        sub = bars if n == n_bars else bars.slice(n)
        results = [runner(sub) for _ in range(reps)]
        peer = min(results, key=lambda r: r.seconds)
        mine = ours if n == n_bars else run_ours(instrument, table.slice(0, n), tf).trades
        diff = first_difference(mine, peer.trades)
        same = "yes" if diff is None else f"no (first difference: trade #{diff[0]})"
        note = "" if n == n_bars else f"on the first {n:,} bars only"
        report.rows.append(Row(name, n, peer.seconds, len(peer.trades), same, note))
        if diff is not None:
            mine_cross = crosses["smart_trader"][:n]
            theirs = exact if method == "exact" else crosses[method]
            report.explanations.append(explain(name, diff, sub, mine_cross, theirs[:n], signs[:n]))
    return report


def explain(
    name: str,
    diff: tuple[int, Trade | None, Trade | None],
    bars: PeerBars,
    ours: Signals,
    theirs: Signals,
    signs: Signals,
) -> str:
    """Why the first differing trade differs: the signal bar before it, and the exact sign of fast − slow there."""
    k, a, b = diff
    times = [t.entry_ns for t in (a, b) if t is not None]
    if a is not None and b is not None and a.entry_ns == b.entry_ns:
        times = [t for t in (a.exit_ns, b.exit_ns) if t is not None] or times
    if a is not None and b is not None and (a.entry_ns, a.exit_ns) == (b.entry_ns, b.exit_ns):
        return (
            f"- **{name}**: trade #{k} has the same times, another price or quantity: ours {fmt(a)}; theirs {fmt(b)}."
        )
    j = int(np.searchsorted(bars.ts, min(times)))
    i = j - 1  # the bar whose close decided the fill at bar j's open
    tie = "an exact tie" if signs[i] == 0 or signs[i - 1] == 0 else "no exact tie"
    parted = np.flatnonzero(ours != theirs)
    return (
        f"- **{name}**: first differing trade #{k}: ours {fmt(a)}; theirs {fmt(b)}. It follows the signal of the bar "
        f"opening {iso(int(bars.ts[i]))}: our cross {int(ours[i]):+d}, theirs {int(theirs[i]):+d}; exact sign of "
        f"SMA(10) − SMA(30) on the bar before and on that bar: {int(signs[i - 1]):+d}, {int(signs[i]):+d} ({tie}). "
        f"Their crosses differ from ours on {len(parted):,} bars in all."
    )


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")


def fmt(t: Trade | None) -> str:
    if t is None:
        return "none"
    out = f"{iso(t.exit_ns) if t.exit_ns else 'open'}"
    return f"{iso(t.entry_ns)} @ {t.entry_price} → {out} @ {t.exit_price}, qty {t.quantity}"


# -- 2. import ----------------------------------------------------------------------------------
def bench_import(n_rows: int, repeats: int) -> ImportReport:
    source = pl.read_parquet(DATA / TRADES_FILE)
    frame, tiling = tile_binance_trades(source, n_rows, price_decimals=2)
    with tempfile.TemporaryDirectory(prefix="smart-trader-bench-") as tmp:
        work = Path(tmp)
        path = work / "BTCUSDT_tiled.binance.trades.parquet"
        frame.write_parquet(path)
        report = ImportReport(tiling, path.stat().st_size / 1e6, repeats)
        MarketDataService(work / "warm-up").import_file(DATA / TRADES_FILE, symbol="BTC/USDT", venue="BINANCE")

        def ours() -> float:
            home = Path(tempfile.mkdtemp(dir=work))
            started = time.perf_counter()
            done = MarketDataService(home).import_file(path, symbol="BTC/USDT", venue="BINANCE")
            seconds = time.perf_counter() - started
            assert done.rows_added == n_rows, done
            report.day_files = done.partitions_written
            return seconds

        def polars_write() -> float:
            started = time.perf_counter()
            frame.write_parquet(Path(tempfile.mkdtemp(dir=work)) / "data.parquet")
            return time.perf_counter() - started

        def polars_write_fsync() -> float:  # durable like our store: fsync the file and its directory
            started = time.perf_counter()
            folder = Path(tempfile.mkdtemp(dir=work))
            frame.write_parquet(folder / "data.parquet")
            for target in (folder / "data.parquet", folder):
                fd = os.open(target, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
            return time.perf_counter() - started

        def polars_read_write() -> float:
            started = time.perf_counter()
            pl.read_parquet(path).write_parquet(Path(tempfile.mkdtemp(dir=work)) / "data.parquet")
            return time.perf_counter() - started

        report.rows = [
            timed_row("Smart Trader `MarketDataService.import_file` (read + validate + write)", n_rows, repeats, ours),
            timed_row("polars `DataFrame.write_parquet` (in memory → file)", n_rows, repeats, polars_write),
            timed_row("polars `write_parquet` + fsync of file and directory", n_rows, repeats, polars_write_fsync),
            timed_row("polars `read_parquet` + `write_parquet`", n_rows, repeats, polars_read_write),
        ]
    return report


# -- report -------------------------------------------------------------------------------------


def markdown(info: dict[str, str], bt: BacktestReport, imp: ImportReport | None, command: str) -> str:
    out = [
        "# Benchmarks",
        "",
        f"- **Date:** {info['date']}",
        f"- **Machine:** {info['machine']}",
        f"- **Software:** Python {info['python']}",
        f"- **Commit:** `{info['commit']}`",
        f"- **Command:** `{command}` (`make bench` runs it without `--write-docs`)",
        "",
        "## 1. `sma_cross` backtest throughput",
        "",
        f"Data: GBP/USD bid 1-minute bars, FXCM (`{BARS_FILE}`), tiled: {bt.tiling.describe('bars')}. "
        f"Instrument `{bt.instrument.id}` from the file's precisions (tick {bt.instrument.tick_size}, "
        f"lot {bt.instrument.lot_size} GBP, matching backtesting.py's whole units). Strategy: SMA(10) / SMA(30) "
        f"crossover, long only, all in at the next bar's open, no commission, {CASH:,} USD.",
        "",
        "| implementation | bars | seconds | bars/s | × ours | trades | trades identical to ours |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    ours = bt.rows[0].per_second
    for r in bt.rows:
        note = f" ({r.note})" if r.note else ""
        out.append(
            f"| {r.name}{note} | {r.rows:,} | {r.seconds:.3f} | {r.per_second:,.0f} | {r.per_second / ours:.2f} | "
            f"{r.trades:,} | {r.same_trades} |"
        )
    out += [
        "",
        f"“× ours” is bars/s divided by ours end to end (first row). Ours, NumPy and vectorbt: best of {bt.repeats} "
        "runs; backtesting.py and backtrader: one run. vectorbt's numba compilation is done on a warm-up "
        "call and not timed; every peer's time includes computing its indicators and building its trade list.",
        "The compiled rows run the same source compiled to C by mypyc (`make compiled` builds `build/compiled`: the "
        "broker, orders, accounting and engine modules), in a child process on the same tiled bars.",
        "",
        "### Crosses against exact arithmetic",
        "",
        f"On these bars SMA(10) and SMA(30) are exactly equal on {bt.exact_ties:,} bars (exact integer sums: "
        "`30·Σ10 = 10·Σ30`). There the floating-point averages of each library land on either side of each "
        "other by an ulp or so, and a cross appears or vanishes. Bars whose cross signal differs from the exact one:",
        "",
        "| moving average | bars differing from exact |",
        "|---|---:|",
    ]
    labels = {
        "smart_trader": "Smart Trader `sma_cross` (the signal the strategy saw in the run above)",
        "numpy.mean": "`numpy.mean` of each window (Smart Trader's `SMA` without a price precision)",
        "backtesting.py": "backtesting.py (pandas `rolling().mean()`, running Kahan sum)",
        "vectorbt": "vectorbt (`MA`, running cumulative sum)",
        "backtrader": "backtrader (`math.fsum` of each window)",
    }
    out += [f"| {labels[k]} | {v:,} |" for k, v in bt.vs_exact.items()]
    out += [
        "",
        "The exact sign comes from integer window sums of the fixed-point closes (`peers.exact_signs`); the "
        "NumPy loop trades on those exact crosses.",
    ]
    if bt.explanations:
        out += ["", "First differing trade of each peer, and why:", "", *bt.explanations]
    out += [
        "",
        "Conventions (see `benchmarks/peers.py`; the peer-agreement test, "
        "`tests/strategy/test_peer_agreement.py`, checks them on ORCL daily and ETH/BTC 5-minute, where no "
        "average is that close and every peer's trades equal ours): backtesting.py trades whole units and "
        "leaves the last trade open; backtrader places the all-in order in `next_open` (`cheat_on_open=True`) "
        "so it is sized and filled at the next open; vectorbt gets the signals shifted one bar with "
        "`price=open`, `size=inf`, strict crosses from its own MAs (its `crossed_above` also fires through a "
        "touch), and zeroes a cash balance within 1e-9 of zero; the NumPy loop decides on exact integer window "
        "sums and keeps cash in exact integers.",
    ]
    if imp is not None:
        out += [
            "",
            "## 2. Import of trades into the store",
            "",
            f"Data: Binance BTC/USDT trades (`{TRADES_FILE}`), tiled: {imp.tiling.describe('trades')}; trade ids "
            f"continue from copy to copy; prices rounded to 2 decimals. Written with polars' defaults to one "
            f"Parquet file of {imp.file_mb:.1f} MB in a temporary directory. Best of {imp.repeats} runs each, after "
            "one untimed import of the original file (code paths warm); each import goes to a fresh, empty store.",
            "",
            "| path | rows | seconds (best) | seconds (median) | rows/s (best) | ours ÷ this |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        mine = imp.rows[0].per_second
        for r in imp.rows:
            out.append(
                f"| {r.name} | {r.rows:,} | {r.seconds:.3f} | {r.median:.3f} | {r.per_second:,.0f} | "
                f"{mine / r.per_second:.2f} |"
            )
        ratio = mine / imp.rows[1].per_second
        assert imp.rows[0].median is not None and imp.rows[1].median is not None
        median_ratio = imp.rows[1].median / imp.rows[0].median
        verdict = "met" if ratio >= 0.25 else "**not met**"
        out += [
            "",
            f"Target: ours ≥ 1/4 of polars `write_parquet` → {ratio:.3f} on the best runs ({median_ratio:.3f} on the "
            f"medians): {verdict}. Ours reads the file, converts "
            "prices and sizes to exact decimals, validates every rule (sorted timestamps, unique trade ids, "
            "positive prices, ...), checks the tick size and writes zstd Parquet day files atomically and durably "
            f"(temporary file, fsync, rename, fsync of the directory; {imp.day_files} day file(s) here). polars "
            "`write_parquet` does none of that and does not fsync; the fsync row shows what durability alone costs.",
        ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000, help="tiled GBP/USD 1m bars (default 1,000,000)")
    parser.add_argument("--backtrader-bars", type=int, default=None, help="bars for backtrader (default: --bars)")
    parser.add_argument("--trades", type=int, default=5_000_000, help="tiled trades to import (default 5,000,000)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of ours, NumPy, vectorbt (best is reported)")
    parser.add_argument("--import-repeats", type=int, default=5, help="runs of each import path (best is reported)")
    parser.add_argument("--skip-import", action="store_true", help="run the backtest benchmark only")
    parser.add_argument("--write-docs", action="store_true", help="also write docs/benchmarks.md")
    parser.add_argument("--child-ours", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_ours is not None:
        child_ours(args.child_ours, args.repeats)
        return 0
    if not DATA.is_dir():
        print(f"real market data not found at {DATA}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    backtest = bench_backtest(args.bars, min(args.backtrader_bars or args.bars, args.bars), args.repeats)
    imports = None if args.skip_import else bench_import(args.trades, args.import_repeats)
    command = " ".join([".venv/bin/python benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])])
    text = markdown(machine(PEER_LIBS), backtest, imports, command)
    print(text)
    print(f"(benchmark took {time.perf_counter() - started:.0f} s)", file=sys.stderr)
    if args.write_docs:
        (ROOT / "docs" / "benchmarks.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
