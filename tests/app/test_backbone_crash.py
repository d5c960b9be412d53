"""The event backbone's must-show (PostgreSQL, real Redis, real worker processes): 100,000 events recorded from a real
session on real trades (tiled), written to the outbox and relayed to Redis Streams while `smart-trader serve --role
worker` consumes them; the worker is killed with SIGKILL mid-stream, a new one started, then Redis itself is killed
while the rest of the stream is written and started again. Every projection (audit chain, analytics, notifications)
then equals a rebuild from scratch of the same events: none lost, none applied twice. And on the running platform
with Redis killed: orders are still taken and filled over HTTP, and delivery resumes when Redis is back."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import redis

from smart_trader.compliance import store as audit_store
from smart_trader.live.relay import OutboxRelay, redis_deliver
from tests.app.backbone_support import (
    audit_count,
    copy_outbox,
    copy_tables,
    insert_concurrently,
    insert_events,
    private_redis,
    rebuild,
    snapshot,
    wait_drained,
    worker_process,
)
from tests.app.conftest import Harness, make_settings, start_client
from tests.app.recorded_events import outbox_rows, tile, trade_session
from tests.conftest import fresh_database_url
from tests.workers.support import migrated, writer_for

TOTAL = int(os.environ.get("BACKBONE_TEST_EVENTS", "100000"))


def _second_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Another fresh PostgreSQL database beside the test's own (for the rebuild)."""
    import psycopg

    base = str(request.getfixturevalue("postgres_url"))
    name = f"rebuild_{uuid.uuid4().hex[:10]}"
    admin = base.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    request.addfinalizer(lambda: _drop(admin, name))
    return base.rsplit("/", 1)[0] + f"/{name}"


def _drop(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("platform", ["sqlite"], indirect=True)
def test_a_worker_killed_mid_stream_leaves_every_projection_equal_to_a_rebuild(
    platform: Harness, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The stream: half the events written and relayed; a worker killed with SIGKILL a fifth of the way; a new
    worker started, then Redis killed (SIGKILL; its AOF keeps what it acknowledged) while the other half is written by
    two writers at once (ids commit out of order) and the relay fails; Redis started again, the relay catches up, a
    second worker joins; once drained, every projection equals a rebuild from scratch."""
    trade_session(platform)
    recorded = outbox_rows(platform.platform.engine)
    events = tile(recorded, TOTAL)
    deployed_url = fresh_database_url("postgres", request, tmp_path)
    deployed = migrated(deployed_url)
    copy_tables(platform.platform.engine, deployed)
    prefix = f"test-{uuid.uuid4().hex[:10]}:events:"
    home = tmp_path / "worker"
    home.mkdir()

    async def relay_all(relay: OutboxRelay) -> None:
        while await relay.relay_once():
            pass

    with private_redis(tmp_path / "redis") as (redis_url, (stop_redis, start_redis)):
        w = writer_for(deployed)
        relay = OutboxRelay(w, redis_deliver(redis_url, prefix=f"{prefix}ws:", stream_prefix=prefix), batch=2000)
        half = TOTAL // 2
        with worker_process(deployed_url, redis_url, prefix, home) as first:
            insert_events(deployed, events[:half])
            asyncio.run(relay_all(relay))
            deadline = time.monotonic() + 300
            while audit_count(deployed) < TOTAL // 5:  # mid-stream
                assert time.monotonic() < deadline, "the worker made no progress"
                time.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        killed_at = audit_count(deployed)
        assert killed_at < half, "the worker finished before it was killed: nothing was proven"
        with worker_process(deployed_url, redis_url, prefix, home):
            stop_redis()
            insert_concurrently(deployed, events[half:])  # the platform's writes go on without Redis
            with pytest.raises(redis.exceptions.ConnectionError):
                asyncio.run(relay.relay_once())  # the events wait in the outbox
            time.sleep(2)  # the worker's Redis reads fail meanwhile; its ordered consumers go on from the outbox
            start_redis()
            asyncio.run(relay_all(relay))
            w.stop()
            with worker_process(deployed_url, redis_url, prefix, home):
                wait_drained(deployed, timeout=600)  # two replicas: ordered consumers on one, notifications shared
    with deployed.connect() as conn:
        assert audit_store.verify_stored(conn)[2] is None
    rebuilt_url = _second_database(request, tmp_path)
    rebuilt = migrated(rebuilt_url)
    copy_tables(platform.platform.engine, rebuilt)
    copy_outbox(deployed, rebuilt)  # the same events in the same delivery order
    rebuild(rebuilt)
    got, want = snapshot(deployed), snapshot(rebuilt)
    assert len(got["audit_log"]) == TOTAL  # every event audited once (users, orders, accounts, challenges)
    assert got["analytics_performance"] and got["notifications"]  # the projections are not empty
    for name in want:
        assert got[name] == want[name], f"{name} differs from its rebuild"
    deployed.dispose()
    rebuilt.dispose()


def test_redis_killed_during_the_run_trading_goes_on_and_delivery_resumes(
    request: pytest.FixtureRequest, tmp_path: Path, shared_data: Path
) -> None:
    from smart_trader.data.service import MarketDataService
    from tests.app.conftest import real_trades

    with private_redis(tmp_path / "redis") as (url, (stop_redis, start_redis)):
        pg = request.getfixturevalue("postgres_url")
        settings = make_settings(tmp_path, "postgres", pg).model_copy(
            update={"redis_url": url, "rate_limits_enabled": False, "worker_claim_seconds": 1.0}
        )
        inst, trades = real_trades(shared_data, MarketDataService(settings.home_dir))
        client, feed = start_client(settings)
        h = Harness(client, feed, inst, trades, "postgres", settings)
        try:
            alice = h.user("alice@example.com")
            acct = h.account(alice)
            h.push_trades(10)
            h.settle()
            for k in range(3):
                o = h.order(alice, acct, side="buy" if k % 2 == 0 else "sell", type="market", qty="0.01")
                h.wait_status(alice, acct, o["id"], "accepted")
                h.push_trades(5)
                h.wait_status(alice, acct, o["id"], "filled")
            engine = h.platform.engine
            wait_drained(engine, timeout=60)
            before = audit_count(engine)
            stop_redis()
            # trading and the API go on without Redis
            for k in range(4):
                o = h.order(alice, acct, side="buy" if k % 2 == 0 else "sell", type="market", qty="0.01")
                h.wait_status(alice, acct, o["id"], "accepted")
                h.push_trades(5)
                h.wait_status(alice, acct, o["id"], "filled")
            r = h.client.get(f"/api/v1/accounts/{acct}/fills", headers=alice)
            assert r.status_code == 200 and len(r.json()) == 7
            time.sleep(2)
            stuck = audit_count(engine)  # the audit reads the outbox: it goes on; stream consumers wait
            start_redis()
            wait_drained(engine, timeout=120)
            assert audit_count(engine) >= stuck >= before
            with engine.connect() as conn:
                assert audit_store.verify_stored(conn)[2] is None
            got = snapshot(engine)
            rebuilt = migrated(_second_database(request, tmp_path))
            copy_tables(engine, rebuilt)
            copy_outbox(engine, rebuilt)
            rebuild(rebuilt)
            want = snapshot(rebuilt)
            for name in want:
                assert got[name] == want[name], f"{name} differs from its rebuild"
        finally:
            h.client.__exit__(None, None, None)
