"""The in-process transport (no Redis) and ordered consumers, on SQLite and PostgreSQL: a consumer reads the outbox
from its offset and applies each event exactly once in commit order; a row committed late below the offset is still
delivered; a poison event is retried, then set aside (dead letter) so the consumer goes on; only one replica runs an
ordered consumer at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from smart_trader.compliance import store as audit_store
from smart_trader.compliance.consumer import AuditConsumer
from smart_trader.db.outbox import outbox
from smart_trader.ops.metrics import EVENT_DEAD_LETTERS, EVENT_RETRIES
from smart_trader.workers import outbox_source
from smart_trader.workers.runner import ConsumerRunner
from smart_trader.workers.tables import consumed
from tests.conftest import fresh_database_url
from tests.workers.support import Failing, chain, migrated, order_events, outbox_event_ids, write, writer_for


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database_url(request.param, request, tmp_path)


def test_a_consumer_applies_every_event_once_in_commit_order(url: str) -> None:
    engine = migrated(url)
    write(engine, order_events(1200))

    async def run() -> None:
        w = writer_for(engine)
        r = ConsumerRunner(AuditConsumer(), w, engine, batch=500)
        assert await r.drain() == 1200
        assert await r.queue_length() == 0
        write(engine, order_events(300, start=1200))
        assert await r.queue_length() == 300
        assert await r.drain() == 300
        assert await r.drain() == 0  # nothing twice
        await r.stop()
        w.stop()

    asyncio.run(run())
    records = chain(engine)
    assert [e for _s, e, _a, _h in records] == outbox_event_ids(engine)  # commit order, each once
    with engine.connect() as conn:
        assert audit_store.verify_stored(conn)[2] is None
        last = conn.execute(
            select(outbox.c.published_ns, outbox.c.id).order_by(outbox.c.published_ns.desc(), outbox.c.id.desc())
        ).first()
        assert outbox_source.offset(conn, "audit") == (last.published_ns, last.id)
    engine.dispose()


def test_a_row_committed_late_is_delivered_in_the_relays_order_never_skipped(url: str) -> None:
    engine = migrated(url)
    rows = order_events(10)
    write(engine, rows[:4])
    with engine.begin() as conn:  # ids 5..9 taken by rows still "in flight" elsewhere: 10 commits and is relayed first
        conn.execute(insert(outbox), [{**rows[9], "id": 10}])
    write(engine, [])  # the relay's batch: row 10

    async def run() -> tuple[int, int]:
        w = writer_for(engine)
        r = ConsumerRunner(AuditConsumer(), w, engine)
        first = await r.drain()
        with engine.begin() as conn:  # the late commits, below the consumer's last id
            conn.execute(insert(outbox), [{**row, "id": 5 + k} for k, row in enumerate(rows[4:9])])
        write(engine, [])  # relayed in a later batch
        second = await r.drain()
        await r.stop()
        w.stop()
        return first, second

    assert asyncio.run(run()) == (5, 5)
    delivered = [r["event_id"] for r in rows[:4]] + [rows[9]["event_id"]] + [r["event_id"] for r in rows[4:9]]
    assert [e for _s, e, _a, _h in chain(engine)] == delivered  # the delivery order: a rebuild reads the same
    engine.dispose()


def test_a_poison_event_is_retried_then_dead_lettered_and_the_rest_goes_on(url: str) -> None:
    engine = migrated(url)
    rows = order_events(20)
    write(engine, rows)
    poison = rows[7]["event_id"]
    consumer = Failing(AuditConsumer(), {poison})
    consumer.dead_letters = True  # a consumer that may set an event aside (the audit's own never does: test below)
    retries0 = EVENT_RETRIES.labels("audit")._value.get()
    dead0 = EVENT_DEAD_LETTERS.labels("audit")._value.get()

    async def run() -> None:
        w = writer_for(engine)
        r = ConsumerRunner(consumer, w, engine, max_attempts=3)
        await r.drain()
        await r.stop()
        w.stop()

    asyncio.run(run())
    audited = [e for _s, e, _a, _h in chain(engine)]
    assert audited == [r["event_id"] for r in rows if r["event_id"] != poison]  # in order, the poison set aside
    with engine.connect() as conn:
        dead = conn.execute(select(consumed).where(consumed.c.error.is_not(None))).all()
        assert audit_store.verify_stored(conn)[2] is None
    assert [(d.event_id, "poison" in d.error) for d in dead] == [(poison, True)]
    assert EVENT_RETRIES.labels("audit")._value.get() - retries0 == 3
    assert EVENT_DEAD_LETTERS.labels("audit")._value.get() - dead0 == 1
    engine.dispose()


def test_an_event_failing_once_is_applied_on_its_retry(url: str) -> None:
    engine = migrated(url)
    rows = order_events(10)
    write(engine, rows)
    flaky = rows[3]["event_id"]
    consumer = Failing(AuditConsumer(), {flaky}, times=1)

    async def run() -> None:
        w = writer_for(engine)
        r = ConsumerRunner(consumer, w, engine, max_attempts=3)
        await r.drain()
        await r.stop()
        w.stop()

    asyncio.run(run())
    assert [e for _s, e, _a, _h in chain(engine)] == [r["event_id"] for r in rows]
    with engine.connect() as conn:
        assert conn.execute(select(consumed).where(consumed.c.error.is_not(None))).all() == []


def test_the_audit_consumer_never_skips_an_event_it_cannot_take(url: str) -> None:
    engine = migrated(url)
    rows = order_events(6)
    write(engine, rows)
    consumer = Failing(AuditConsumer(), {rows[2]["event_id"]})

    async def run() -> None:
        w = writer_for(engine)
        r = ConsumerRunner(consumer, w, engine, max_attempts=2)
        for _ in range(6):
            await r.run_once()
        consumer.bad.clear()  # whatever stopped it is fixed
        await r.drain()
        await r.stop()
        w.stop()

    asyncio.run(run())
    assert [e for _s, e, _a, _h in chain(engine)] == [r["event_id"] for r in rows]  # in order, none skipped
    engine.dispose()
    engine.dispose()


def test_only_one_replica_runs_an_ordered_consumer(url: str) -> None:
    engine = migrated(url)
    write(engine, order_events(50))

    async def run() -> tuple[int, int, int]:
        w = writer_for(engine)
        a = ConsumerRunner(AuditConsumer(), w, engine)
        b = ConsumerRunner(AuditConsumer(), w, engine)
        got_a = await a.run_once()
        got_b = await b.run_once()  # the lock is a's
        await a.stop()  # a lets go (a killed replica's session or file closes the same way)
        write(engine, order_events(5, start=50))
        got_b2 = await b.drain()
        await b.stop()
        w.stop()
        return got_a, got_b, got_b2

    assert asyncio.run(run()) == (50, 0, 5)
    assert len(chain(engine)) == 55
    engine.dispose()
