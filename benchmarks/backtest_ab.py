"""The ``sma_cross`` backtest benchmark (docs/benchmarks.md §1) of two source trees back to back, for a change on the
hot path: each tree runs in its own child process with ``PYTHONPATH`` set to it, interleaved round by round so the
machine's drift hits both alike; the best time of each is reported with the ratio.

    git worktree add /tmp/base <commit> && (cd /tmp/base && make compiled VENV=$PWD/.venv)
    .venv/bin/python benchmarks/backtest_ab.py --tree base=/tmp/base/src --tree new=src \\
        --tree base-compiled=/tmp/base/build/compiled --tree new-compiled=build/compiled --rounds 5

Each child also prints a digest of its trades: both trees must give the same trades.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(n_bars: int) -> None:
    """One timed run in this process (the tree comes from ``PYTHONPATH``); prints JSON."""
    sys.path.insert(0, str(HERE))
    import run as bench  # benchmarks/run.py: the §1 data and strategy
    import smart_trader.strategy.engine as engine_module

    source = bench.read_file(bench.DATA / bench.BARS_FILE)
    assert source.timeframe is not None
    table, _ = bench.tile_bars(source.table, n_bars, bench.MINUTE_NS)
    instrument = bench.infer_instrument("GBP/USD", "FXCM", source.price_precision, source.size_precision)
    r = bench.run_ours(instrument, table, source.timeframe)
    print(
        json.dumps(
            {
                "run": r.run_seconds,
                "loop": r.loop_seconds,
                "n": len(r.trades),
                "trades": bench.trades_digest(r.trades),
                "engine": engine_module.__file__,
            }
        )
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", action="append", default=[], help="NAME=PYTHONPATH (give two or more)")
    p.add_argument("--bars", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.bars)
        return 0
    trees = [t.split("=", 1) for t in args.tree]
    if len(trees) < 2 or any(len(t) != 2 for t in trees):
        p.error("give at least two --tree NAME=PATH")
    best: dict[str, dict[str, float]] = {}
    digests: dict[str, str] = {}
    for k in range(args.rounds):
        for name, path in trees:
            env = {**os.environ, "PYTHONPATH": str(Path(path).resolve())}
            cmd = [sys.executable, __file__, "--child", "--bars", str(args.bars)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            digests[name] = r["trades"]
            b = best.setdefault(name, {"run": r["run"], "loop": r["loop"]})
            b["run"], b["loop"] = min(b["run"], r["run"]), min(b["loop"], r["loop"])
            print(f"round {k + 1} {name}: run {r['run']:.3f} s, loop {r['loop']:.3f} s ({r['engine']})", flush=True)
    first = trees[0][0]
    print(f"\nbest of {args.rounds}, {args.bars:,} bars:")
    for name, _ in trees:
        b = best[name]
        ratio = best[first]["run"] / b["run"]
        print(
            f"  {name}: run {b['run']:.3f} s ({args.bars / b['run']:,.0f} bars/s, x{ratio:.3f} vs {first}), "
            f"loop {b['loop']:.3f} s; trades {'same' if digests[name] == digests[first] else 'DIFFERENT'}"
        )
    return 0 if len(set(digests.values())) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
