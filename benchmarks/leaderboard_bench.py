"""Leaderboard queries at 50,000 accounts (issue 11): p50/p99 latency of one page, uncached and cached in Redis, on
SQLite and PostgreSQL.

The tables are those the analytics projection keeps (``analytics/tables.py``): one ``analytics_accounts`` row per
account, ``--days`` ``analytics_days`` rows per account (its daily equity), and the four ``analytics_performance`` rows
(day, week, month, all) computed by the projection's own code (:func:`smart_trader.analytics.performance.all_windows`)
from those days. The rows are bulk-loaded (``COPY`` on PostgreSQL, ``executemany`` on SQLite) rather than built by
replaying events: this measures the read side.

Data: the daily equity of every account is a buy-and-hold of a slice of real daily closes — ORCL (1995-2014) for even
accounts, NVDA (1999-2014) for odd ones, Yahoo Finance exports in ``../shared/data/bars`` — starting at an offset that
differs per account: ``equity_d = 10,000 × close[o + d] / close[o]`` in cents. (The data folder has no BTC/ETH daily
series; its crypto bars cover three weeks.) Every account's days are relabelled to the same ``--days`` calendar days
ending 2026-11-30, so every account is in the program's current window of every period.

Measured (``time.perf_counter``), ``--queries`` times each, for ``period=all`` and ``limit=50``:

- **first page** (``offset=0``) and **random pages** (``offset`` uniform over the board);
- **uncached**: :func:`smart_trader.analytics.leaderboard.leaderboard` + JSON encoding on a pooled connection, as the
  route runs it on a miss (one ``max(period_start)`` lookup, one page read);
- **cached**: the route's hit path with a sync client — the program's generation and the page from Redis.

    .venv/bin/python benchmarks/leaderboard_bench.py [--accounts 50000] [--days 20] [--queries 200] \
        [--databases sqlite,postgres]

PostgreSQL: a database ``bench_leaderboard`` on ``BENCH_POSTGRES_ADMIN_URL`` (default the local server), dropped at
the end; Redis: ``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``), keys under a program id of the bench's own,
deleted at the end.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from benchmarks.machine import machine  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from smart_trader.analytics import leaderboard as boards  # noqa: E402
from smart_trader.analytics.performance import DayPoint, all_windows  # noqa: E402
from smart_trader.analytics.projection import performance_row  # noqa: E402
from smart_trader.analytics.tables import analytics_accounts, analytics_days, analytics_performance  # noqa: E402
from smart_trader.db.engine import make_engine  # noqa: E402
from smart_trader.db.migrate import upgrade_to_head  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "bars"
SERIES = ("ORCL_1995-2014_1d.yahoo.csv", "NVDA_1999-2014_1d.yahoo.csv")
PROGRAM = "bench-leaderboard"
LAST_DAY = dt.date(2026, 11, 30)
SIZE = Decimal(10_000)
CENT = Decimal("0.01")
PG_ADMIN = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_NAME = "bench_leaderboard"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def closes(name: str) -> list[Decimal]:
    """The daily closes of a Yahoo export (USD)."""
    with (DATA / name).open(newline="") as f:
        return [Decimal(row["Close"]) for row in csv.DictReader(f) if row["Close"] not in ("", "null")]


def build_rows(accounts: int, days: int) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]], list[dict[str, Any]]]:
    """Rows of ``analytics_accounts``, ``analytics_days`` (tuples) and ``analytics_performance``."""
    series = [closes(name) for name in SERIES]
    labels = [LAST_DAY - dt.timedelta(days=days - 1 - d) for d in range(days)]
    rng = random.Random(11)
    metas: list[dict[str, Any]] = []
    day_rows: list[tuple[Any, ...]] = []
    perf_rows: list[dict[str, Any]] = []
    for i in range(accounts):
        c = series[i % 2]
        o = rng.randrange(0, len(c) - days - 1)
        base = c[o]
        aid = f"acct-{i:06d}"
        user = f"{rng.getrandbits(128):032x}"
        points = [DayPoint(labels[d], (SIZE * c[o + 1 + d] / base).quantize(CENT)) for d in range(days)]
        metas.append(
            {
                "account_id": aid,
                "user_id": user,
                "program_id": PROGRAM,
                "challenge_id": f"ch-{i:06d}",
                "phase": "Evaluation",
                "currency": "USD",
                "initial_balance": SIZE,
                "day_tz": "UTC",
                "day_reset": "00:00",
                "realized_pnl": Decimal(0),
                "events": days,
                "last_ts": 0,
                "status": "active",
                "status_ts": 0,
            }
        )
        day_rows += [(aid, p.day.isoformat(), p.equity, 0, 0, 0, Decimal(0), Decimal(0)) for p in points]
        for period, perf, start in all_windows(SIZE, points):
            perf_rows.append(performance_row(aid, PROGRAM, user, period, start, perf, 0))
    return metas, day_rows, perf_rows


def _copy(engine: Engine, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def load(engine: Engine, metas: list[dict[str, Any]], days: list[tuple[Any, ...]], perf: list[dict[str, Any]]) -> None:
    """Bulk-load the rows (COPY on PostgreSQL, executemany on SQLite), then ANALYZE."""
    if engine.dialect.name == "postgresql":
        for table, rows in ((analytics_accounts, metas), (analytics_performance, perf)):
            cols = [c.name for c in table.columns]
            _copy(engine, table.name, cols, (tuple(r[c] for c in cols) for r in rows))
        _copy(engine, analytics_days.name, [c.name for c in analytics_days.columns], iter(days))
    else:
        with engine.begin() as conn:
            conn.execute(analytics_accounts.insert(), metas)
            conn.execute(analytics_performance.insert(), perf)
            cols = [c.name for c in analytics_days.columns]
            conn.execute(analytics_days.insert(), [dict(zip(cols, r, strict=True)) for r in days])
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    if engine.dialect.name == "postgresql":  # the visibility map autovacuum keeps (index-only scans)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM analytics_performance"))


def timed(fn: Callable[[], object], n: int) -> list[float]:
    """``n`` wall-clock durations of ``fn()`` in ms (after one warm-up call)."""
    fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


def measure(engine: Engine, cache: boards.LeaderboardCache, accounts: int, n: int) -> list[tuple[str, list[float]]]:
    """The four measurements on one database."""
    rng = random.Random(7)
    limit = 50

    def uncached(offset: int) -> bytes:
        with engine.connect() as conn:
            return boards.encode(boards.leaderboard(conn, PROGRAM, "all", limit, offset))

    def offsets() -> Iterator[int]:
        while True:
            yield rng.randrange(0, max(1, accounts - limit))

    rand = offsets()
    results = [
        ("uncached, first page", timed(lambda: uncached(0), n)),
        ("uncached, random page", timed(lambda: uncached(next(rand)), n)),
    ]
    # cached: the pages are put as the route puts them on a miss, then read as it reads them on a hit
    generation = cache.bump(PROGRAM)
    pages = [0, *[next(rand) for _ in range(n)]]
    for off in pages:
        cache.put(PROGRAM, "all", limit, off, generation, uncached(off))
    it = iter(pages[1:] * 2)

    def hit(offset: int) -> bytes:
        g = cache.generation(PROGRAM)
        body = cache.get(PROGRAM, "all", limit, offset, g)
        assert body is not None
        return body

    results += [
        ("cached, first page", timed(lambda: hit(0), n)),
        ("cached, random page", timed(lambda: hit(next(it)), n)),
    ]
    return results


def plan(engine: Engine) -> str:
    """PostgreSQL's plan of a random page (to show the index is read)."""
    if engine.dialect.name != "postgresql":
        return ""
    with engine.connect() as conn:
        start = boards.current_window(conn, PROGRAM, "all")
        q = text(
            "EXPLAIN SELECT account_id, total_return FROM analytics_performance WHERE program_id = :p "
            "AND period = 'all' AND period_start = :s AND total_return IS NOT NULL "
            "ORDER BY total_return DESC, account_id DESC LIMIT 51 OFFSET 25000"
        )
        return "\n".join(str(r[0]) for r in conn.execute(q, {"p": PROGRAM, "s": start}))


def postgres_engine() -> Engine:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG_NAME}"')
    return make_engine(PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{PG_NAME}")


def drop_postgres() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--accounts", type=int, default=50_000)
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--databases", default="sqlite,postgres")
    args = ap.parse_args()

    started = time.perf_counter()
    t = time.perf_counter()
    metas, days, perf = build_rows(args.accounts, args.days)
    print(
        f"built {len(metas):,} accounts, {len(days):,} day rows, {len(perf):,} performance rows "
        f"in {time.perf_counter() - t:.1f} s (statistics by analytics.performance.all_windows)"
    )
    client = redis.Redis.from_url(REDIS_URL)
    cache = boards.LeaderboardCache(client, ttl_seconds=600)
    table: list[tuple[str, str, list[float]]] = []
    plans: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for database in args.databases.split(","):
            engine = make_engine(f"sqlite:///{tmp}/bench.db") if database == "sqlite" else postgres_engine()
            try:
                upgrade_to_head(engine)
                t = time.perf_counter()
                load(engine, metas, days, perf)
                print(f"{database}: loaded in {time.perf_counter() - t:.1f} s")
                for name, ms in measure(engine, cache, args.accounts, args.queries):
                    table.append((database, name, ms))
                plans.append(plan(engine))
            finally:
                engine.dispose()
                if database == "postgres":
                    drop_postgres()
    for key in client.scan_iter(f"{boards.KEY_PREFIX}:*{PROGRAM}*"):
        client.delete(key)
    client.close()

    info = machine(("sqlalchemy", "psycopg", "redis"))
    print()
    for k, v in info.items():
        print(f"{k}: {v}")
    print(
        f"accounts: {args.accounts:,} in one program; {args.days} daily rows each; period=all, limit=50; "
        f"{args.queries} queries per line"
    )
    print()
    print("| database | query | p50 ms | p99 ms | max ms |")
    print("|---|---|---:|---:|---:|")
    for database, name, ms in table:
        print(f"| {database} | {name} | {statistics.median(ms):.2f} | {p(ms, 0.99):.2f} | {max(ms):.2f} |")
    for text_plan in plans:
        if text_plan:
            print("\nPostgreSQL plan of a page at offset 25,000:\n" + text_plan)
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
