"""The event backbone, measured on PostgreSQL and Redis (docs/benchmarks.md §8):

1. **throughput**: N events (recorded from a real session on real trades, tiled) committed to the outbox at once and
   relayed to Redis Streams, consumed by 1 and by 3 `smart-trader serve --role worker` processes: events per second
   from the first commit to the last consumer's commit, per consumer group;
2. **end-to-end lag** at a steady rate: events committed in batches of 100 every 50 ms (2,000/s), relayed as they come;
   lag = consumer's commit (``consumed.applied_ns``) − the event's commit (``outbox.created_ns``, stamped at insert),
   p50/p99 per consumer group;
3. **audit**: appends per second of the audit consumer alone (outbox transport, in this process) and records verified
   per second by `verify_stored`.

Run: ``.venv/bin/python benchmarks/backbone_bench.py [--events 50000]`` (PostgreSQL at 127.0.0.1:5432, Redis at
127.0.0.1:6379; a database ``bench_backbone`` is dropped and made again).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402
from benchmarks.machine import machine  # noqa: E402
from sqlalchemy import func, select, update  # noqa: E402
from tests.app.backbone_support import copy_tables, insert_events, wait_drained, worker_process  # noqa: E402
from tests.workers.support import migrated, writer_for  # noqa: E402

from smart_trader.app.workers import consumers  # noqa: E402
from smart_trader.compliance import store as audit_store  # noqa: E402
from smart_trader.compliance.consumer import AuditConsumer  # noqa: E402
from smart_trader.db.outbox import outbox  # noqa: E402
from smart_trader.live.relay import OutboxRelay, redis_deliver  # noqa: E402
from smart_trader.workers.runner import ConsumerRunner  # noqa: E402
from smart_trader.workers.tables import consumed  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/0"


def fresh_db(name: str) -> str:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def recorded(tmp: Path) -> tuple[Any, list[dict[str, Any]]]:
    """A real session on the platform (SQLite, real BTC/USDT trades): its engine and its outbox rows."""
    from tests.app.conftest import Harness, make_settings, real_trades, start_client
    from tests.app.recorded_events import outbox_rows, trade_session

    from smart_trader.data.service import MarketDataService

    settings = make_settings(tmp, "sqlite", None)
    inst, trades = real_trades(ROOT.parent / "shared" / "data", MarketDataService(settings.home_dir))
    client, feed = start_client(settings)
    h = Harness(client, feed, inst, trades, "sqlite", settings)
    trade_session(h)
    rows = outbox_rows(h.platform.engine)
    return h, rows


def stamped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = time.time_ns()
    return [{**r, "created_ns": now} for r in rows]


def lags(engine: Any) -> dict[str, tuple[float, float, float, int]]:
    """Per consumer: (events/s from the first commit to its last apply, lag p50 ms, lag p99 ms, events)."""
    out = {}
    with engine.connect() as conn:
        for c in consumers():
            q = select(consumed.c.applied_ns, outbox.c.created_ns).join(
                outbox, outbox.c.event_id == consumed.c.event_id
            )
            rows = conn.execute(q.where(consumed.c.consumer == c.name)).all()
            if not rows:
                continue
            lag = sorted((a - b) / 1e6 for a, b in rows)
            first = min(b for _a, b in rows)
            last = max(a for a, _b in rows)
            rate = len(rows) / ((last - first) / 1e9)
            out[c.name] = (rate, lag[len(lag) // 2], lag[min(len(lag) - 1, int(len(lag) * 0.99))], len(rows))
    return out


def run_workers(
    source_engine: Any, events: list[dict[str, Any]], replicas: int, paced: bool, tmp: Path
) -> dict[str, Any]:
    url = fresh_db("bench_backbone")
    engine = migrated(url)
    copy_tables(source_engine, engine)
    prefix = f"bench-{uuid.uuid4().hex[:8]}:events:"
    home = tmp / f"w{replicas}{int(paced)}"
    home.mkdir()
    from contextlib import ExitStack

    async def relay_all(relay: OutboxRelay) -> None:
        while await relay.relay_once():
            pass

    w = writer_for(engine)
    relay = OutboxRelay(w, redis_deliver(REDIS, prefix=f"{prefix}ws:", stream_prefix=prefix), batch=2000)
    with ExitStack() as stack:
        for _ in range(replicas):
            stack.enter_context(worker_process(url, REDIS, prefix, home))
        if paced:
            for k in range(0, len(events), 100):
                t0 = time.perf_counter()
                insert_events(engine, stamped(events[k : k + 100]))
                asyncio.run(relay_all(relay))
                time.sleep(max(0.0, 0.05 - (time.perf_counter() - t0)))
        else:
            insert_events(engine, stamped(events), chunk=10_000)
            asyncio.run(relay_all(relay))
        wait_drained(engine, timeout=1800)
    w.stop()
    result = lags(engine)
    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    engine.dispose()
    return result


def audit_rates(events: list[dict[str, Any]]) -> tuple[float, float]:
    url = fresh_db("bench_backbone")
    engine = migrated(url)
    insert_events(engine, stamped(events), chunk=10_000)
    with engine.begin() as conn:  # delivered, as the relay marks them (one batch)
        conn.execute(update(outbox).values(published_ns=time.time_ns()))

    async def run() -> None:
        w = writer_for(engine)
        await ConsumerRunner(AuditConsumer(), w, engine, batch=2000).drain()
        w.stop()

    t0 = time.perf_counter()
    asyncio.run(run())
    append = len(events) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        n, _head, broken = audit_store.verify_stored(conn)
        total = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    assert broken is None and n == total
    verify = n / (time.perf_counter() - t0)
    engine.dispose()
    return append, verify


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--paced-events", type=int, default=20_000)
    args = ap.parse_args()
    from tests.app.recorded_events import tile

    print(machine(("redis", "psycopg", "sqlalchemy")))
    with tempfile.TemporaryDirectory() as tmp:
        h, rows = recorded(Path(tmp))
        try:
            events = tile(rows, args.events)
            print(f"{len(rows)} recorded events tiled to {len(events)}")
            append, verify = audit_rates(events)
            print(f"audit: {append:,.0f} appends/s (outbox transport, 2,000 per transaction), {verify:,.0f} verified/s")
            for replicas in (1, 3):
                res = run_workers(h.platform.engine, events, replicas, False, Path(tmp))
                for name, (rate, _p50, _p99, n) in res.items():
                    print(f"burst, {replicas} worker(s), {name:14s}: {rate:9,.0f} events/s  ({n} events)")
            paced = tile(rows, args.paced_events)
            for replicas in (1, 3):
                res = run_workers(h.platform.engine, paced, replicas, True, Path(tmp))
                for name, (_rate, p50, p99, n) in res.items():
                    print(f"2,000/s, {replicas} worker(s), {name:14s}: lag p50 {p50:8.1f} ms  p99 {p99:8.1f} ms ({n})")
        finally:
            h.client.__exit__(None, None, None)
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "bench_backbone" WITH (FORCE)')


if __name__ == "__main__":
    main()
