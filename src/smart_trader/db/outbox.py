"""Transactional outbox: domain events written in the same transaction as the change that caused them, each row
carrying its typed event's id, type, version, family (stream), partition key and times, and the document the WebSocket
shows (``payload``).

A relay (:mod:`smart_trader.live.relay`) reads unpublished rows in id order, publishes them to the event
bus (the WebSocket hub; Redis pub/sub across processes) and marks them published: delivery is at least
once, consumers are idempotent by ``id``. Nothing is lost if a process dies between commit and publish:
the next relay run publishes what is still marked unpublished.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, Connection, Index, Integer, String, Table, Text, insert, select
from uuid_utils import uuid7

from smart_trader.db.metadata import metadata
from smart_trader.ops.logging import REQUEST_ID

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("topic", String(200), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # JSON object
    Column("created_ns", BigInteger, nullable=False),  # wall clock, ns since epoch UTC
    Column("published_ns", BigInteger, nullable=True),
    # the typed event the row carries (rows written before migration 0007 have none)
    Column("event_id", String(64), nullable=True, unique=True),  # the domain event's id: consumers dedupe by it
    Column("version", Integer, nullable=True),  # version of the event's shape
    Column("stream", String(32), nullable=True),  # event family (STREAMS): orders, accounts, challenges ...
    Column("partition_key", String(100), nullable=True),  # events of one key keep their order (the account id)
    Column("ts_event", BigInteger, nullable=True),  # when it happened (market clock), ns UTC
    Column("ts_init", BigInteger, nullable=True),  # when Smart Trader made the event, ns UTC
    Index("ix_outbox_published_ns_id", "published_ns", "id"),
)

STREAMS = ("orders", "accounts", "challenges", "payments", "users", "admin", "notifications")
"""The event families (one Redis stream each when the backbone delivers them): orders and fills, account updates,
challenge transitions, payments and grants, users' logins, keys and role changes, platform-wide administrative
actions (instrument halts, challenge programs defined), in-app notifications."""


def event_row(
    topic: str,
    event_type: str,
    payload: dict[str, Any],
    created_ns: int,
    *,
    event_id: str | None = None,
    version: int = 1,
    stream: str | None = None,
    partition_key: str | None = None,
    ts_event: int | None = None,
    ts_init: int | None = None,
) -> dict[str, Any]:
    """An ``outbox`` row: ``payload`` as JSON text (decimals and other non-JSON values as their ``str``),
    ``created_ns`` wall clock in ns since the epoch, UTC; the typed event it carries: ``event_id`` (a new UUIDv7 when
    the event has none of its own), ``version``, ``stream`` (its family, :data:`STREAMS`; default the topic's first
    part), ``partition_key`` (the account id), ``ts_event`` / ``ts_init`` (ns UTC; default ``created_ns``)."""
    if payload.get("actor") is not None and "request_id" not in payload:
        # an action someone took: the request that carried it (writer.run runs a request's jobs in its context;
        # batched jobs and the runtime's own events see none), for the audit record
        request_id = REQUEST_ID.get()
        if request_id is not None:
            payload = {**payload, "request_id": request_id}
    return {
        "topic": topic,
        "event_type": event_type,
        "payload": orjson.dumps(payload, default=str).decode(),
        "created_ns": created_ns,
        "event_id": event_id or str(uuid7()),
        "version": version,
        "stream": stream or topic.partition(".")[0],
        "partition_key": partition_key,
        "ts_event": created_ns if ts_event is None else ts_event,
        "ts_init": created_ns if ts_init is None else ts_init,
    }


def insert_new_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert outbox rows (:func:`event_row`), skipping those whose ``event_id`` is already stored: for writers whose
    batch may be written again after it committed (idempotent by event id)."""
    if not rows:
        return
    ids = [r["event_id"] for r in rows]
    known = {str(r.event_id) for r in conn.execute(select(outbox.c.event_id).where(outbox.c.event_id.in_(ids)))}
    fresh = [r for r in rows if r["event_id"] not in known]
    if fresh:
        conn.execute(insert(outbox), fresh)
