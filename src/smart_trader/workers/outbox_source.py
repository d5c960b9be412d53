"""The outbox as an event source, in delivery order: a consumer reads the rows the relay has published, ordered by
``(published_ns, id)``, from its stored position (``consumer_offsets``). This is the in-process transport of the
embedded default (no Redis) and the transport of ordered consumers (the audit chain, analytics) everywhere.

Why the relay's order and not the ids: on PostgreSQL ids are taken at insert and transactions commit in any order (an
API process's row with a lower id can commit after the runtime's higher one), so a reader following ids would skip a
late commit or see rows in an order a rebuild cannot reproduce. The relay is one per deployment, marks each batch it
delivered in its own transaction with a strictly increasing ``published_ns``, one batch after the other; a row is
therefore visible to readers only once everything before it in that order is, and the order is stored with the rows
(a rebuild from the same outbox applies the same sequence). Rows written before migration 0007 (no event id) are not
delivered.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smart_trader.db.outbox import outbox
from smart_trader.workers.envelope import Envelope, from_row
from smart_trader.workers.tables import consumer_offsets


def offset(conn: Connection, consumer: str) -> tuple[int, int]:
    """The consumer's position: the ``(published_ns, id)`` of the last row it read (``(0, 0)`` at first)."""
    row = conn.execute(
        select(consumer_offsets.c.published_ns, consumer_offsets.c.outbox_id).where(
            consumer_offsets.c.consumer == consumer
        )
    ).first()
    return (0, 0) if row is None else (int(row.published_ns), int(row.outbox_id))


def _after(position: tuple[int, int]) -> ColumnElement[bool]:
    """Rows after ``position`` in delivery order: ``(published_ns, id) > position``."""
    p, i = position
    return or_(outbox.c.published_ns > p, and_(outbox.c.published_ns == p, outbox.c.id > i))


def read(conn: Connection, consumer: str, streams: tuple[str, ...], limit: int = 1000) -> list[Envelope]:
    """The next published events of ``streams`` for ``consumer``, in delivery order, at most ``limit`` (an index
    range scan on ``(published_ns, id)``)."""
    wanted = and_(outbox.c.stream.in_(streams), outbox.c.event_id.is_not(None), outbox.c.published_ns.is_not(None))
    q = select(outbox).where(wanted, _after(offset(conn, consumer)))
    return [from_row(r) for r in conn.execute(q.order_by(outbox.c.published_ns, outbox.c.id).limit(limit))]


def advance(conn: Connection, consumer: str, published_ns: int, outbox_id: int) -> None:
    """Store ``(published_ns, outbox_id)`` as the consumer's position (in the caller's transaction)."""
    ins = pg_insert(consumer_offsets) if conn.dialect.name == "postgresql" else sqlite_insert(consumer_offsets)
    stmt = ins.values(consumer=consumer, published_ns=published_ns, outbox_id=outbox_id)
    stmt = stmt.on_conflict_do_update(
        index_elements=[consumer_offsets.c.consumer],
        set_={"published_ns": stmt.excluded.published_ns, "outbox_id": stmt.excluded.outbox_id},
    )
    conn.execute(stmt)


def lag(conn: Connection, consumer: str, streams: tuple[str, ...]) -> int:
    """Events of ``streams`` after the consumer's position, published or not yet (its queue length)."""
    q = select(func.count()).where(
        outbox.c.stream.in_(streams), or_(outbox.c.published_ns.is_(None), _after(offset(conn, consumer)))
    )
    return int(conn.execute(q).scalar() or 0)
