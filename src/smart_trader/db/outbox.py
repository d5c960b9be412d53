"""Transactional outbox: domain events written in the same transaction as the change that caused them.

A relay (:mod:`smart_trader.live.relay`) reads unpublished rows in id order, publishes them to the event
bus (the WebSocket hub; Redis pub/sub across processes) and marks them published: delivery is at least
once, consumers are idempotent by ``id``. Nothing is lost if a process dies between commit and publish:
the next relay run publishes what is still marked unpublished.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from smart_trader.db.metadata import metadata

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # JSON object
    Column("created_ns", BigInteger, nullable=False),  # wall clock, ns since epoch UTC
    Column("published_ns", BigInteger, nullable=True),
    Index("ix_outbox_published_ns_id", "published_ns", "id"),
)


def event_row(topic: str, event_type: str, payload: dict[str, Any], created_ns: int) -> dict[str, Any]:
    """An ``outbox`` row: ``payload`` as JSON text (decimals and other non-JSON values as their ``str``),
    ``created_ns`` wall clock in ns since the epoch, UTC."""
    return {
        "topic": topic,
        "event_type": event_type,
        "payload": orjson.dumps(payload, default=str).decode(),
        "created_ns": created_ns,
    }
