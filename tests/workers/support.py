"""Helpers of the backbone tests: a migrated database, outbox events, a writer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from smart_trader.compliance import store as audit_store
from smart_trader.db.engine import make_engine
from smart_trader.db.migrate import upgrade_to_head
from smart_trader.db.outbox import event_row, outbox
from smart_trader.db.writer import BatchWriter
from smart_trader.workers.envelope import Envelope


def migrated(url: str) -> Engine:
    engine = make_engine(url)
    upgrade_to_head(engine)
    return engine


def writer_for(engine: Engine) -> BatchWriter:
    """The group-commit writer as the platform runs it (inline on SQLite, a thread on PostgreSQL here)."""
    w = BatchWriter(engine, inline=engine.dialect.name == "sqlite")
    w.start()
    return w


def order_events(n: int, accounts: int = 3, start: int = 0, ts0: int = 1_700_000_000_000_000_000) -> list[Any]:
    """``n`` outbox rows of order events over ``accounts`` accounts (ids ``A0``…), one ns apart."""
    rows = []
    for k in range(start, start + n):
        account = f"A{k % accounts}"
        payload = {"type": "order", "account_id": account, "order_id": f"O{k}", "status": "filled", "actor": "U1"}
        rows.append(
            event_row(f"orders.{account}", "order.filled", payload, ts0 + k, stream="orders", partition_key=account,
                      event_id=f"E{k:07d}")
        )  # fmt: skip
    return rows


def write(engine: Engine, rows: Iterable[dict[str, Any]], published: bool = True) -> None:
    """Insert outbox rows; ``published``: also mark them delivered, as the relay would (one batch, stamped after
    everything published before)."""
    rows = list(rows)
    with engine.begin() as conn:
        if rows:
            conn.execute(insert(outbox), rows)
        if published:
            stamp = int(conn.execute(select(func.max(outbox.c.published_ns))).scalar() or 0) + 1
            conn.execute(update(outbox).where(outbox.c.published_ns.is_(None)).values(published_ns=stamp))


def chain(engine: Engine) -> list[tuple[int, str | None, str, str]]:
    """The stored audit chain as (seq, event_id, action, hash)."""
    with engine.connect() as conn:
        return [(r.seq, r.event_id, r.action, r.hash) for r in audit_store.records(conn)]


def outbox_event_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [str(r.event_id) for r in conn.execute(select(outbox.c.event_id).order_by(outbox.c.id))]


class Failing:
    """Wraps a consumer; raises on the events named in ``bad`` (a poison event) ``times`` times each (None: always)."""

    def __init__(self, inner: Any, bad: set[str], times: int | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.streams = inner.streams
        self.ordered = inner.ordered
        self.dead_letters = getattr(inner, "dead_letters", True)
        self.bad = bad
        self.times = times
        self.failures: dict[str, int] = {}

    def handle(self, conn: Any, event: Envelope) -> None:
        if event.event_id in self.bad:
            n = self.failures.get(event.event_id, 0)
            if self.times is None or n < self.times:
                self.failures[event.event_id] = n + 1
                raise RuntimeError(f"poison {event.event_id}")
        self.inner.handle(conn, event)

    def flush(self, conn: Any) -> None:
        self.inner.flush(conn)
