"""The metrics the deployment kit's alerts and dashboards need (deploy/monitoring): database pool gauges, the memory
limit, failed logins, leaderboard cache lookups and portfolio equity, each read from a real component."""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from sqlalchemy import text

from smart_trader.analytics.leaderboard import AsyncLeaderboardCache
from smart_trader.data.service import MarketDataService
from smart_trader.db.engine import make_async_engine, make_engine
from smart_trader.ops.metrics import PoolCollector, memory_limit_bytes
from tests.app.conftest import Harness, make_settings, real_trades, start_client


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_pool_reports_its_capacity_and_the_connections_in_use(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    own = PoolCollector()
    own.track(engine.pool, "main")

    def values() -> dict[str, float]:
        return {f.name: f.samples[0].value for f in own.collect()}

    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        assert values() == {
            "db_pool_max_connections": 16.0,  # pool_size 8 + max_overflow 8
            "db_pool_checked_out_connections": 1.0,
            "db_pool_idle_connections": 0.0,
        }
    assert values()["db_pool_checked_out_connections"] == 0.0 and values()["db_pool_idle_connections"] == 1.0
    engine.dispose()
    del engine
    gc.collect()
    assert [f.samples for f in own.collect()] == [[], [], []]  # a dropped engine's pool is forgotten


def test_the_platforms_engines_are_published_on_the_default_registry(tmp_path: Path) -> None:
    before = sample("db_pool_max_connections", pool="main"), sample("db_pool_max_connections", pool="writer")
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    writer = make_async_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # nothing connects until used
    assert sample("db_pool_max_connections", pool="main") == before[0] + 16
    assert sample("db_pool_max_connections", pool="writer") == before[1] + 8  # pool_size 6 + max_overflow 2
    held = sample("db_pool_checked_out_connections", pool="main")
    with engine.connect():
        assert sample("db_pool_checked_out_connections", pool="main") == held + 1
    engine.dispose()
    asyncio.run(writer.dispose())


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"memory.max": "536870912\n"}, 536870912.0),  # cgroup v2 limit
        ({"memory.max": "max\n"}, 8e9),  # v2 without a limit: the physical memory
        ({"memory/memory.limit_in_bytes": "268435456\n"}, 268435456.0),  # cgroup v1
        ({"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 8e9),  # v1 "no limit"
        ({}, 8e9),  # no cgroup file
    ],
)
def test_the_memory_limit_is_the_cgroups_or_the_physical_memory(
    tmp_path: Path, files: dict[str, str], expected: float
) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    assert memory_limit_bytes(tmp_path, lambda: 8_000_000_000) == expected


def test_the_memory_limit_gauge_reads_this_machine() -> None:
    value = sample("process_memory_limit_bytes")
    assert 0 < value <= memory_limit_bytes(Path("/nonexistent"))  # at most the physical memory


def test_leaderboard_cache_lookups_count_misses_hits_and_errors(redis_url: str) -> None:
    program = f"metrics-{uuid.uuid4().hex}"

    async def scenario() -> None:
        client = aioredis.Redis.from_url(redis_url)
        cache = AsyncLeaderboardCache(client)
        generation, page = await cache.lookup(program, "all", 50, 0)
        assert page is None and generation is not None
        await cache.store(program, "all", 50, 0, generation, b"[]")
        assert (await cache.lookup(program, "all", 50, 0))[1] == b"[]"
        await client.aclose()
        down = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
        assert await AsyncLeaderboardCache(down).lookup(program, "all", 50, 0) == (None, None)
        await down.aclose()

    before = {r: sample("cache_requests_total", cache="leaderboard", result=r) for r in ("hit", "miss", "error")}
    asyncio.run(scenario())
    after = {r: sample("cache_requests_total", cache="leaderboard", result=r) for r in ("hit", "miss", "error")}
    assert {r: after[r] - before[r] for r in after} == {"hit": 1.0, "miss": 1.0, "error": 1.0}


def test_failed_logins_are_counted_by_reason_and_equity_is_published(tmp_path: Path, shared_data: Path) -> None:
    settings = make_settings(tmp_path, "sqlite", None)
    inst, trades = real_trades(shared_data, MarketDataService(settings.home_dir))
    client, feed = start_client(settings)
    platform = Harness(client, feed, inst, trades, "sqlite", settings)
    try:
        alice = platform.user("alice@example.com")
        before = sample("auth_login_failures_total", reason="credentials")
        for password in ("wrong-password-1", "wrong-password-2"):
            r = client.post("/api/v1/auth/token", data={"username": "alice@example.com", "password": password})
            assert r.status_code == 401
        r = client.post("/api/v1/auth/token", data={"username": "nobody@example.com", "password": "whatever-pw"})
        assert r.status_code == 401
        assert sample("auth_login_failures_total", reason="credentials") == before + 3
        r = client.post(
            "/api/v1/auth/password",
            headers=alice,
            json={"current_password": "not-my-password", "new_password": "a-new-long-password-9"},
        )
        assert r.status_code == 401
        assert sample("auth_login_failures_total", reason="current-password") >= 1

        acct = platform.account(alice, balance="1000")
        platform.push_trades(20)
        platform.settle()
        order = platform.order(alice, acct, side="buy", type="market", qty="0.01")
        platform.wait_status(alice, acct, order["id"], "accepted")
        platform.push_trades(1)
        platform.wait_status(alice, acct, order["id"], "filled")
        platform.push_trades(200)  # the position is marked at later trades
        platform.settle()
        equity = Decimal(client.get(f"/api/v1/accounts/{acct}", headers=alice).json()["equity"])
        assert equity != Decimal(1000)
        deadline = time.monotonic() + 10  # the runtime sets the gauges every snapshot (about a second)
        while abs(sample("portfolio_equity", currency="USDT") - float(equity)) > 1e-6:
            assert time.monotonic() < deadline, (sample("portfolio_equity", currency="USDT"), equity)
            time.sleep(0.1)
    finally:
        client.__exit__(None, None, None)
