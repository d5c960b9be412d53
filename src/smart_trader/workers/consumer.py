"""The consumer contract of the event backbone, and the one place a batch of events is applied exactly once.

A consumer is a projection or an effect (audit chain, analytics, notifications) keyed by a stable ``name``. It sees
events through :func:`apply`, which runs its :meth:`Consumer.handle` for each event in ONE database transaction with a
row in ``consumed(consumer, event_id)``: an event delivered twice (at-least-once transports, a worker killed before it
acknowledged) is skipped the second time, and an event whose transaction failed is not marked and comes again. Effects
outside the database (an e-mail, an outgoing webhook) must be written as rows here and sent by their own sender,
idempotent by that row's id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smart_trader.workers.envelope import Envelope
from smart_trader.workers.tables import consumed


class Consumer(Protocol):
    """A consumer of domain events.

    Attributes:
        name: the consumer group's stable name (``audit``, ``analytics``, ``notifications`` ...); its idempotency
            marks and stream position are kept under it.
        streams: the event families it reads (``orders``, ``accounts``, ``challenges``, ``payments``, ``users``).
        ordered: ``True`` when events must be applied one at a time in commit order by a single reader (the audit
            chain); ``False`` lets any number of worker replicas share the load.
    """

    name: str
    streams: tuple[str, ...]
    ordered: bool

    def handle(self, conn: Connection, event: Envelope) -> None:
        """Apply one event inside the caller's transaction. Raise to refuse it (the whole batch is retried, then the
        event is dead-lettered after the transport's attempt limit); never swallow an error that lost data."""


def flush_of(consumer: object) -> Callable[[Connection], None] | None:
    """The consumer's optional ``flush(conn)``: called once at the end of each batch, in the batch's transaction, so a
    projection can do once per batch what depends on many events (recompute an account's statistics once, not at
    every event); a consumer without one needs none."""
    flush = getattr(consumer, "flush", None)
    return flush if callable(flush) else None


# A consumer may also have ``after_commit()``: the runner calls it after each batch's transaction committed (effects
# outside the database that must not run before the commit, such as invalidating a shared cache).


def apply(conn: Connection, consumer: Consumer, events: Sequence[Envelope]) -> int:
    """Apply ``events`` (in order) to ``consumer`` inside ``conn``'s transaction, skipping those it already consumed;
    returns how many were applied. Commit (or roll back) is the caller's: the marks and the effects go together.

    The marks are written FIRST (``INSERT ... ON CONFLICT DO NOTHING RETURNING``) and only the events whose mark this
    transaction wrote are handled: a second transaction applying the same event at the same time (two replicas, a
    claim taken over from a slow one) waits on the first one's mark and then skips it, so an effect is never applied
    twice (a plain read of the marks would let both apply)."""
    wanted: list[Envelope] = []
    seen: set[str] = set()
    for e in events:
        if e.stream in consumer.streams and e.event_id not in seen:
            seen.add(e.event_id)
            wanted.append(e)
    if not wanted:
        return 0
    now = time.time_ns()
    rows = [
        {"consumer": consumer.name, "event_id": e.event_id, "outbox_id": e.outbox_id, "applied_ns": now} for e in wanted
    ]
    ins = pg_insert(consumed) if conn.dialect.name == "postgresql" else sqlite_insert(consumed)
    stmt = ins.on_conflict_do_nothing().returning(consumed.c.event_id)
    mine = {str(r.event_id) for r in conn.execute(stmt, rows)}
    fresh = [e for e in wanted if e.event_id in mine]
    for e in fresh:
        consumer.handle(conn, e)
    flush = flush_of(consumer)
    if fresh and flush is not None:
        flush(conn)
    return len(fresh)
