"""The envelope a consumer receives: one typed, versioned domain event as the outbox committed it.

Pure data (no I/O): built from an ``outbox`` row (:func:`from_row`) or from a Redis stream entry (:func:`from_fields`),
both carrying the same fields, so a consumer never knows which transport delivered it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Envelope:
    """One domain event.

    Attributes:
        outbox_id: the outbox row's id (commit order within one writer).
        event_id: the event's unique id (UUID text): consumers are idempotent by it.
        event_type: e.g. ``order.filled``, ``account.updated``, ``challenge.breached``, ``payment.succeeded``.
        version: version of the payload's shape.
        stream: the event family (``orders``, ``accounts``, ``challenges``, ``payments``, ``users``).
        partition_key: the key whose events keep their order (an account id, a user id), or ``None``.
        topic: the WebSocket topic of the event's document (``orders.<account>`` ...).
        ts_event: when it happened (market clock for trading events), ns since the epoch, UTC.
        ts_init: when Smart Trader made the event, ns since the epoch, UTC.
        payload: the event's data (a JSON object; decimals as strings).
        created_ns: when the event was committed to the outbox (wall clock, ns UTC): the audit record's time and the
            start of the commit-to-consumer latency (``ts_init`` is the market clock for trading events in a replay).
        published_ns: when the relay delivered it (wall clock, ns UTC; 0 when not known): with ``outbox_id`` the
            delivery order ordered consumers follow.
    """

    outbox_id: int
    event_id: str
    event_type: str
    version: int
    stream: str
    partition_key: str | None
    topic: str
    ts_event: int
    ts_init: int
    payload: Mapping[str, Any]
    created_ns: int = 0
    published_ns: int = 0

    def fields(self) -> dict[str, str]:
        """The envelope as flat string fields (a Redis stream entry); :func:`from_fields` reads them back."""
        return {
            "outbox_id": str(self.outbox_id),
            "event_id": self.event_id,
            "event_type": self.event_type,
            "version": str(self.version),
            "stream": self.stream,
            "partition_key": self.partition_key or "",
            "topic": self.topic,
            "ts_event": str(self.ts_event),
            "ts_init": str(self.ts_init),
            "payload": orjson.dumps(dict(self.payload)).decode(),
            "created_ns": str(self.created_ns),
        }


def from_row(row: Any) -> Envelope:
    """The envelope of an ``outbox`` row (rows written before migration 0007 get ``legacy-<id>`` as event id)."""
    created = int(row.created_ns)
    return Envelope(
        outbox_id=int(row.id),
        event_id=str(row.event_id or f"legacy-{row.id}"),
        event_type=str(row.event_type),
        version=int(row.version or 1),
        stream=str(row.stream or str(row.topic).partition(".")[0]),
        partition_key=row.partition_key,
        topic=str(row.topic),
        ts_event=int(row.ts_event if row.ts_event is not None else created),
        ts_init=int(row.ts_init if row.ts_init is not None else created),
        payload=orjson.loads(row.payload),
        created_ns=created,
        published_ns=int(row.published_ns or 0),
    )


def row_fields(r: Any) -> dict[str, str]:
    """The stream entry of an ``outbox`` row: the fields :func:`from_fields` reads, the payload kept as its stored JSON
    text (the relay appends it without decoding and encoding it again)."""
    return {
        "outbox_id": str(r.id),
        "event_id": r.event_id,
        "event_type": r.event_type,
        "version": str(r.version or 1),
        "stream": r.stream,
        "partition_key": r.partition_key or "",
        "topic": r.topic,
        "ts_event": str(r.ts_event if r.ts_event is not None else r.created_ns),
        "ts_init": str(r.ts_init if r.ts_init is not None else r.created_ns),
        "payload": r.payload,
        "created_ns": str(r.created_ns),
    }


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def from_fields(fields: Mapping[Any, Any]) -> Envelope:
    """The envelope of a Redis stream entry written from :meth:`Envelope.fields`.

    Raises:
        KeyError, ValueError: the entry is not an envelope (the consumer dead-letters it).
    """
    f = {_text(k): _text(v) for k, v in fields.items()}
    return Envelope(
        outbox_id=int(f["outbox_id"]),
        event_id=f["event_id"],
        event_type=f["event_type"],
        version=int(f["version"]),
        stream=f["stream"],
        partition_key=f["partition_key"] or None,
        topic=f["topic"],
        ts_event=int(f["ts_event"]),
        ts_init=int(f["ts_init"]),
        payload=orjson.loads(f["payload"]),
        created_ns=int(f.get("created_ns") or f["ts_init"]),
    )
