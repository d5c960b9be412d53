"""Support of the backbone's must-show tests: a worker process, a private Redis, copying the domain rows the
consumers read, running every consumer from scratch (the rebuild) and comparing their projections."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, Table, func, insert, select, text

from smart_trader.app.workers import consumers
from smart_trader.db.metadata import all_tables
from smart_trader.db.outbox import outbox
from smart_trader.workers.runner import ConsumerRunner
from smart_trader.workers.tables import consumed
from tests.conftest import TEST_SECRET_KEY
from tests.workers.support import writer_for

DOMAIN_TABLES = ("users", "accounts", "challenges", "challenge_programs")
"""What consumers may read beside the events (a challenge's user, an account's currency): copied as they are."""

PROJECTIONS = {
    "audit": ("audit_log",),
    "analytics": ("analytics_accounts", "analytics_days", "analytics_fill_days", "analytics_performance"),
    "notifications": ("notifications",),
}
"""The tables each consumer owns (compared with a rebuild from scratch)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def copy_tables(src: Engine, dst: Engine, names: tuple[str, ...] = DOMAIN_TABLES) -> None:
    md = all_tables()
    with src.connect() as a, dst.begin() as b:
        for name in names:
            t = md.tables[name]
            rows = [dict(r._mapping) for r in a.execute(select(t))]
            if rows:
                b.execute(insert(t), rows)


def insert_events(engine: Engine, rows: list[dict[str, Any]], chunk: int = 5000) -> None:
    for k in range(0, len(rows), chunk):
        with engine.begin() as conn:
            conn.execute(insert(outbox), rows[k : k + chunk])


def insert_concurrently(engine: Engine, rows: list[dict[str, Any]], writers: int = 2, chunk: int = 500) -> None:
    """Insert ``rows`` from ``writers`` connections at once (ids taken and committed out of order, as several
    processes writing the outbox do on PostgreSQL)."""
    from concurrent.futures import ThreadPoolExecutor

    parts = [rows[k::writers] for k in range(writers)]
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(lambda part: insert_events(engine, part, chunk), parts))


def copy_outbox(src: Engine, dst: Engine) -> None:
    """The source's outbox as it is (ids and the relay's delivery order), without the notifications' own documents
    (a consumer's output, made again by the rebuild)."""
    with src.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(outbox).where(outbox.c.stream != "notifications"))]
    insert_events(dst, rows)
    if dst.dialect.name == "postgresql":  # ids were given: the sequence must go on after them
        with dst.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('outbox', 'id'), (SELECT max(id) FROM outbox))"))


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table's rows (sorted), and the notifications' own WebSocket documents."""
    md = all_tables()
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for tables in PROJECTIONS.values():
            for name in tables:
                t: Table = md.tables[name]
                out[name] = sorted(tuple(r) for r in conn.execute(select(t)))
        q = select(outbox.c.event_id, outbox.c.topic, outbox.c.event_type, outbox.c.payload)
        out["outbox:notifications"] = sorted(
            tuple(r) for r in conn.execute(q.where(outbox.c.stream == "notifications"))
        )
    return out


def pending(engine: Engine) -> dict[str, int]:
    """Per consumer: events of its streams it has not consumed yet."""
    left = {}
    with engine.connect() as conn:
        for c in consumers():
            total = conn.execute(
                select(func.count()).where(outbox.c.stream.in_(c.streams), outbox.c.event_id.is_not(None))
            ).scalar_one()
            done = conn.execute(select(func.count()).where(consumed.c.consumer == c.name)).scalar_one()
            left[c.name] = int(total) - int(done)
    return left


def wait_drained(engine: Engine, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        left = pending(engine)
        if not any(left.values()):
            return
        assert time.monotonic() < deadline, f"consumers still behind: {left}"
        time.sleep(0.5)


def rebuild(engine: Engine) -> None:
    """Apply every consumer to the outbox from scratch, in this process (the outbox transport)."""

    async def run() -> None:
        w = writer_for(engine)
        for c in consumers():
            await ConsumerRunner(c, w, engine, batch=2000).drain()
        w.stop()

    asyncio.run(run())


def audit_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(all_tables().tables["audit_log"])).scalar_one())


@contextmanager
def worker_process(database_url: str, redis_url: str, prefix: str, home: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``smart-trader serve --role worker`` in its own process, healthy; killed (SIGKILL) when the block ends."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "EVENT_STREAM_PREFIX": prefix,
        "WORKER_CLAIM_SECONDS": "1",
        "SMART_TRADER_HOME": str(home),
        "LOG_JSON": "false",
    }
    log = (home / f"worker-{port}.log").open("wb")
    cmd = [sys.executable, "-m", "smart_trader.cli.main", "serve", "--role", "worker", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (home / f"worker-{port}.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker never became healthy"
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        log.close()


@contextmanager
def private_redis(directory: Path) -> Iterator[tuple[str, Any]]:
    """A Redis server of this test (AOF, fsync on every write) on a free port; yields its URL and a function that
    stops it (SIGKILL: everything acknowledged is on disk) and one that starts it again on the same data."""
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--appendonly", "yes",
           "--appendfsync", "always", "--save", ""]  # fmt: skip
    state: dict[str, subprocess.Popen[bytes]] = {}

    def start() -> None:
        state["p"] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port).ping()
                return
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline, "private redis did not start"
                time.sleep(0.05)

    def stop() -> None:
        state["p"].send_signal(signal.SIGKILL)
        state["p"].wait(10)

    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", (stop, start)
    finally:
        if state["p"].poll() is None:
            stop()
