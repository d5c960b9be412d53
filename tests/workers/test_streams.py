"""Redis Streams as the transport (real Redis): the relay appends every committed event to its family's stream in
commit order; a consumer group applies each event once; entries a killed replica read but never acknowledged are
taken over by another replica after the claim timeout; a poison event goes to the dead-letter stream after N
deliveries, an entry that is not an event at once; streams are trimmed by age; while Redis is unreachable the relay
keeps the events in the outbox and delivers them when it is back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Connection, func, select

from smart_trader.compliance.consumer import AuditConsumer
from smart_trader.db.outbox import outbox
from smart_trader.live.relay import OutboxRelay, redis_deliver
from smart_trader.workers.envelope import Envelope
from smart_trader.workers.runner import ConsumerRunner
from smart_trader.workers.streams import StreamSource, stream_key
from tests.conftest import fresh_database_url
from tests.workers.support import Failing, chain, migrated, order_events, outbox_event_ids, write, writer_for


class Unordered:
    """The audit projection run as a parallel consumer (a real table to apply to; order is not asserted)."""

    name = "stream-test"
    streams: tuple[str, ...] = ("orders",)
    ordered = False

    def __init__(self) -> None:
        self.inner = AuditConsumer()

    def handle(self, conn: Connection, event: Envelope) -> None:
        self.inner.handle(conn, event)

    def flush(self, conn: Connection) -> None:
        self.inner.flush(conn)


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    p = f"test-{uuid.uuid4().hex[:12]}:events:"
    yield p
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=p + "*"):
        client.delete(key)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database_url(request.param, request, tmp_path)


def source(redis_url: str, prefix: str, me: str, **kw: Any) -> StreamSource:
    return StreamSource(redis.Redis.from_url(redis_url), "stream-test", ("orders",), me, prefix=prefix, **kw)


def test_the_relay_appends_events_in_commit_order_and_a_group_applies_each_once(
    url: str, redis_url: str, prefix: str
) -> None:
    engine = migrated(url)
    write(engine, order_events(700), published=False)

    async def run() -> None:
        w = writer_for(engine)
        relay = OutboxRelay(w, redis_deliver(redis_url, prefix="test-ws:", stream_prefix=prefix))
        while await relay.relay_once():
            pass
        a = ConsumerRunner(Unordered(), w, engine, source(redis_url, prefix, "a"), batch=200)
        b = ConsumerRunner(Unordered(), w, engine, source(redis_url, prefix, "b"), batch=200)
        for _ in range(3):  # two replicas share the group
            await a.run_once()
            await b.run_once()
        await a.drain()
        assert await a.queue_length() == 0
        w.stop()

    asyncio.run(run())
    client = redis.Redis.from_url(redis_url)
    entries = client.xrange(stream_key("orders", prefix))
    assert [e[1][b"event_id"].decode() for e in entries] == outbox_event_ids(engine)  # commit order
    audited = [e for _s, e, _a, _h in chain(engine)]
    assert sorted(audited) == sorted(outbox_event_ids(engine)) and len(audited) == 700  # each once
    engine.dispose()


def test_entries_a_killed_replica_never_acknowledged_are_taken_over(url: str, redis_url: str, prefix: str) -> None:
    engine = migrated(url)
    write(engine, order_events(50), published=False)

    async def run() -> None:
        w = writer_for(engine)
        relay = OutboxRelay(w, redis_deliver(redis_url, prefix="test-ws:", stream_prefix=prefix))
        await relay.relay_once()
        dead = source(redis_url, prefix, "dead", claim_ms=300)
        assert len(dead.read(count=30)) == 30  # read, then "killed": never acknowledged
        b = ConsumerRunner(Unordered(), w, engine, source(redis_url, prefix, "b", claim_ms=300))
        await b.run_once()  # the 20 unread ones
        assert len(chain(engine)) == 20
        assert await b.queue_length() == 30  # pending in the group
        await asyncio.sleep(0.4)
        await b.drain()
        assert await b.queue_length() == 0
        w.stop()

    asyncio.run(run())
    assert sorted(e for _s, e, _a, _h in chain(engine)) == sorted(outbox_event_ids(engine))
    engine.dispose()


def test_a_poison_event_is_dead_lettered_after_n_deliveries(url: str, redis_url: str, prefix: str) -> None:
    engine = migrated(url)
    rows = order_events(10)
    write(engine, rows, published=False)
    poison = rows[4]["event_id"]
    client = redis.Redis.from_url(redis_url)

    async def run() -> None:
        w = writer_for(engine)
        relay = OutboxRelay(w, redis_deliver(redis_url, prefix="test-ws:", stream_prefix=prefix))
        await relay.relay_once()
        client.xadd(stream_key("orders", prefix), {"garbage": "1"})  # not an event envelope
        r = ConsumerRunner(
            Failing(Unordered(), {poison}), w, engine, source(redis_url, prefix, "r", claim_ms=50), max_attempts=3
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and client.xlen(prefix + "dead-letter") < 2:
            await r.run_once()
            await asyncio.sleep(0.06)
        assert await r.queue_length() == 0
        w.stop()

    asyncio.run(run())
    dead = client.xrange(prefix + "dead-letter")
    reasons = {d[1].get(b"event_id", b"").decode(): d[1][b"reason"].decode() for d in dead}
    assert reasons[""] == "not an event envelope"
    assert reasons[poison] == "failed 3 times"
    wanted = sorted(r["event_id"] for r in rows if r["event_id"] != poison)
    assert sorted(e for _s, e, _a, _h in chain(engine)) == wanted
    engine.dispose()


def test_streams_are_trimmed_by_age(url: str, redis_url: str, prefix: str) -> None:
    engine = migrated(url)
    client = redis.Redis.from_url(redis_url)
    key = stream_key("orders", prefix)
    old_ms = int(time.time() * 1000) - 3_600_000
    for k in range(200):  # entries an hour old
        client.xadd(key, {"old": str(k)}, id=f"{old_ms}-{k}")
    write(engine, order_events(5), published=False)

    async def run() -> None:
        w = writer_for(engine)
        relay = OutboxRelay(w, redis_deliver(redis_url, prefix="test-ws:", stream_prefix=prefix, retention_ms=60_000))
        await relay.relay_once()
        w.stop()

    asyncio.run(run())
    left = client.xrange(key)
    assert [e[1][b"event_id"].decode() for e in left if b"event_id" in e[1]] == outbox_event_ids(engine)
    # MINID ~ trims whole macro-nodes: most of the hour-old entries are gone, none of the new ones
    assert len(left) < 200
    engine.dispose()


def test_while_redis_is_unreachable_the_outbox_keeps_the_events(url: str, redis_url: str, prefix: str) -> None:
    engine = migrated(url)
    write(engine, order_events(30), published=False)

    def unpublished() -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(outbox.c.published_ns.is_(None))).scalar() or 0)

    async def run() -> None:
        w = writer_for(engine)
        down = OutboxRelay(w, redis_deliver("redis://127.0.0.1:1/0", stream_prefix=prefix))
        with pytest.raises(redis.exceptions.ConnectionError):
            await down.relay_once()
        assert unpublished() == 30
        up = OutboxRelay(w, redis_deliver(redis_url, prefix="test-ws:", stream_prefix=prefix))
        assert await up.relay_once() == 30
        w.stop()

    asyncio.run(run())
    assert unpublished() == 0
    assert redis.Redis.from_url(redis_url).xlen(stream_key("orders", prefix)) == 30
    engine.dispose()
