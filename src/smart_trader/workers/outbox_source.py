"""The outbox as an event source: a consumer reads the committed rows of its streams in id order from its stored
offset (``consumer_offsets``). This is the in-process transport of the embedded default (no Redis), and the transport
of ordered consumers (the audit chain) everywhere: the database's order is the one total order of all families.

Rows committed out of id order (several writer processes on PostgreSQL: an API process's row with a lower id can commit
after the runtime's higher one) are not skipped: each read looks back ``lookback`` ids below the offset for rows the
consumer has not consumed (``consumed`` marks), so a late commit is picked up on the next read. Rows written before
migration 0007 (no event id) are not delivered.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smart_trader.db.outbox import outbox
from smart_trader.workers.envelope import Envelope, from_row
from smart_trader.workers.tables import consumed, consumer_offsets

LOOKBACK = 1000
"""How many ids below its offset a reader looks for rows committed late (out of id order)."""


def offset(conn: Connection, consumer: str) -> int:
    """The consumer's offset: the highest outbox id it has read (0 at first)."""
    v = conn.execute(select(consumer_offsets.c.outbox_id).where(consumer_offsets.c.consumer == consumer)).scalar()
    return int(v or 0)


def read(
    conn: Connection, consumer: str, streams: tuple[str, ...], limit: int = 1000, lookback: int = LOOKBACK
) -> list[Envelope]:
    """The next events of ``streams`` for ``consumer`` in id order: first the rows within ``lookback`` ids below its
    offset it has not consumed (late commits: a bounded anti-join), then the rows after its offset (an index range
    scan; :func:`~smart_trader.workers.consumer.apply` skips any already consumed); at most ``limit``."""
    at = offset(conn, consumer)
    wanted = and_(outbox.c.stream.in_(streams), outbox.c.event_id.is_not(None))
    rows = []
    if at > 0:  # ids and event ids of the window (a primary-key range), then which of them were consumed (by key)
        window = select(outbox.c.id, outbox.c.event_id).where(
            and_(outbox.c.id > max(0, at - lookback), outbox.c.id <= at, wanted)
        )
        seen = {str(r.event_id): int(r.id) for r in conn.execute(window)}
        if seen:
            q = select(consumed.c.event_id).where(consumed.c.consumer == consumer, consumed.c.event_id.in_(list(seen)))
            missing = sorted(seen[e] for e in set(seen) - {str(r.event_id) for r in conn.execute(q)})[:limit]
            if missing:
                rows = list(conn.execute(select(outbox).where(outbox.c.id.in_(missing)).order_by(outbox.c.id)))
    if len(rows) < limit:
        after = select(outbox).where(and_(outbox.c.id > at, wanted)).order_by(outbox.c.id).limit(limit - len(rows))
        rows += list(conn.execute(after))
    return [from_row(r) for r in rows]


def advance(conn: Connection, consumer: str, to: int) -> None:
    """Store ``to`` as the consumer's offset when it is higher than the stored one (in the caller's transaction)."""
    ins = pg_insert(consumer_offsets) if conn.dialect.name == "postgresql" else sqlite_insert(consumer_offsets)
    stmt = ins.values(consumer=consumer, outbox_id=to)
    stmt = stmt.on_conflict_do_update(
        index_elements=[consumer_offsets.c.consumer],
        set_={"outbox_id": func.max(consumer_offsets.c.outbox_id, stmt.excluded.outbox_id)}
        if conn.dialect.name == "sqlite"
        else {"outbox_id": func.greatest(consumer_offsets.c.outbox_id, stmt.excluded.outbox_id)},
    )
    conn.execute(stmt)


def lag(conn: Connection, consumer: str, streams: tuple[str, ...]) -> int:
    """Events of ``streams`` after the consumer's offset (its queue length)."""
    q = select(func.count()).where(outbox.c.id > offset(conn, consumer), outbox.c.stream.in_(streams))
    return int(conn.execute(q).scalar() or 0)
