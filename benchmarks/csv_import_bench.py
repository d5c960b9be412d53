"""Generic CSV import against Polars on the same file, in the same run (issue 8's benchmark).

Two plain CSV files, written once in a temporary directory from real recordings tiled to size (see
``tiling.py``):

- **bars**: Binance BTC/USDT perpetual 1-minute klines (the packaged sample, ``src/smart_trader/samples``: 2,880
  real bars) tiled to ``--bars`` rows (default 1,000,000; prices repeated, not rescaled), written as
  ``timestamp,open,high,low,close,volume`` (epoch ms, decimal text);
- **trades**: Binance BTC/USDT trades (``../shared/data/trades/BTCUSDT_2021-01-08.binance.trades.parquet``, 2,001
  real trades) tiled to ``--trades`` rows (default 5,000,000), written as ``timestamp,id,price,qty,side``.

Timed, best and median of ``--repeats`` runs, each into a fresh store / folder:

- ours: ``MarketDataService.import_file`` (detect the layout, read, parse every number exactly to decimals,
  recognise the time unit, validate every rule, check the tick size, write zstd Parquet day files durably);
- Polars: ``pl.read_csv(file).write_parquet(out)`` (floats, no validation, no fsync).

Target: ours at least 0.5× Polars' speed (ours ÷ Polars time ≤ 2).

    .venv/bin/python benchmarks/csv_import_bench.py [--bars N] [--trades N] [--repeats N] [--write-docs]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import pyarrow as pa

from run import ROOT, machine, timed_row
from smart_trader.data.readers import read_file
from smart_trader.data.service import MarketDataService
from tiling import Tiling, tile_bars, tile_binance_trades

BARS_SOURCES = sorted((ROOT / "src" / "smart_trader" / "samples").glob("BTCUSDT-1m-*.csv.gz"))
TRADES_SOURCE = ROOT.parent / "shared" / "data" / "trades" / "BTCUSDT_2021-01-08.binance.trades.parquet"
DOC = ROOT / "docs" / "benchmarks-import.md"
MINUTE_NS = 60_000_000_000


def write_bars_csv(path: Path, rows: int) -> Tiling:
    """The tiled bars as a plain OHLCV CSV with epoch-ms times and exact decimal text."""
    source = pa.concat_tables([read_file(f).table for f in BARS_SOURCES])
    table, tiling = tile_bars(source, rows, MINUTE_NS, rescale=False)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    frame.select(
        pl.col("ts_event").dt.epoch("ms").alias("timestamp"),
        *(pl.col(c).cast(pl.String) for c in ("open", "high", "low", "close", "volume")),
    ).write_csv(path)
    return tiling


def write_trades_csv(path: Path, rows: int) -> Tiling:
    """The tiled trades as a plain CSV: ``timestamp`` (epoch ms), ``id``, ``price`` and ``qty`` as decimal text,
    ``side`` (aggressor)."""
    frame, tiling = tile_binance_trades(pl.read_parquet(TRADES_SOURCE), rows, price_decimals=2)
    frame.select(
        pl.col("timestamp").dt.epoch("ms").alias("timestamp"),
        pl.col("trade_id").alias("id"),
        # decimal text as venues write it (2 decimals), not a float printout of the tiled price
        pl.col("price").round(2).cast(pl.Decimal(20, 2)).cast(pl.String),
        pl.col("quantity").cast(pl.Decimal(20, 6)).cast(pl.String).alias("qty"),
        pl.when(pl.col("buyer_maker") == "True").then(pl.lit("sell")).otherwise(pl.lit("buy")).alias("side"),
    ).write_csv(path)
    return tiling


def bench(kind: str, path: Path, rows: int, repeats: int, work: Path) -> dict[str, object]:
    """Ours and Polars on one CSV file."""

    def ours() -> float:
        home = Path(tempfile.mkdtemp(dir=work))
        started = time.perf_counter()
        report = MarketDataService(home).import_file(path, symbol="BTC/USDT", venue="BINANCE")
        seconds = time.perf_counter() - started
        assert report.rows_added == rows, report
        return seconds

    def polars() -> float:
        started = time.perf_counter()
        pl.read_csv(path).write_parquet(Path(tempfile.mkdtemp(dir=work)) / "data.parquet")
        return time.perf_counter() - started

    ours()  # warm the code paths (imports, Arrow's thread pool) once, untimed
    mine, theirs = timed_row("ours", rows, repeats, ours), timed_row("polars", rows, repeats, polars)
    return {
        "kind": kind,
        "rows": rows,
        "mb": path.stat().st_size / 1e6,
        "ours": (mine.seconds, mine.median),
        "polars": (theirs.seconds, theirs.median),
    }


def markdown(results: list[dict[str, object]], tilings: dict[str, Tiling], repeats: int, command: str) -> str:
    info = machine()
    out = [
        "# Benchmark: generic CSV import",
        "",
        f"- **Date:** {info['date']}",
        f"- **Machine:** {info['machine']}",
        f"- **Software:** Python {info['python']}",
        f"- **Commit:** `{info['commit']}`",
        f"- **Command:** `{command}`",
        "",
        "Data (tiled from real recordings, see `benchmarks/tiling.py`):",
        f"- bars: {tilings['bars'].describe('bars')} (Binance BTCUSDT perpetual 1m klines, the packaged sample "
        "`src/smart_trader/samples`; prices repeated, not rescaled), CSV `timestamp,open,high,low,close,volume`;",
        f"- trades: {tilings['trades'].describe('trades')} (Binance BTC/USDT trades, "
        "`../shared/data/trades/BTCUSDT_2021-01-08.binance.trades.parquet`), CSV `timestamp,id,price,qty,side`.",
        "",
        f"Best and median of {repeats} runs; ours into a fresh store each run, after one untimed run.",
        "",
        "| file | rows | MB | ours best (s) | ours median (s) | Polars best (s) | Polars median (s) | "
        "ours ÷ Polars speed (best) | (median) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ours, polars = r["ours"], r["polars"]
        assert isinstance(ours, tuple) and isinstance(polars, tuple)
        out.append(
            f"| {r['kind']} | {r['rows']:,} | {r['mb']:.1f} | {ours[0]:.3f} | {ours[1]:.3f} | {polars[0]:.3f} | "
            f"{polars[1]:.3f} | {polars[0] / ours[0]:.2f} | {polars[1] / ours[1]:.2f} |"
        )
    out += [
        "",
        "Ours: `MarketDataService.import_file` — detects the layout, parses every number from its text to exact "
        "decimals, recognises the epoch unit, validates every rule (sorted times, OHLC bounds, positive prices, "
        "unique trade ids...), checks the tick size and writes zstd Parquet partition files atomically and durably. "
        "Polars: `pl.read_csv(file).write_parquet(out)` — binary floats, no validation, no fsync. "
        "Target: ours ≥ 0.5× Polars.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--trades", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true", help=f"also write {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="smart-trader-csv-bench-") as tmp:
        work = Path(tmp)
        tilings = {
            "bars": write_bars_csv(work / "bars.csv", args.bars),
            "trades": write_trades_csv(work / "trades.csv", args.trades),
        }
        results = [
            bench("bars", work / "bars.csv", args.bars, args.repeats, work),
            bench("trades", work / "trades.csv", args.trades, args.repeats, work),
        ]
    command = "python benchmarks/csv_import_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = markdown(results, tilings, args.repeats, command.strip())
    print(report)
    if args.write_docs:
        DOC.write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
