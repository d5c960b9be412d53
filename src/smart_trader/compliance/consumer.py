"""The audit consumer: every domain event, in the outbox's commit order, becomes the next record of the hash chain.

One ordered reader (``ordered = True``: the worker replica holding the consumer's lock reads the outbox itself, see
:mod:`smart_trader.workers.outbox_source`), so the chain's order is the relay's delivery order (stored with the
events) and a rebuild from the same events gives the same chain, hash for hash. The record's time is the event's
commit to the outbox (``created_ns``, wall clock, stored with the event), not the append time, for the same reason.

What a record says: ``action`` = the event type, ``actor`` = the payload's ``actor`` (the user who caused it; none for
the platform's own actions such as a fill), ``subject`` = ``<family>:<partition key>`` (the account or the user),
``request_id`` = the payload's ``request_id``, ``event_id``, and the SHA-256 of the payload.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from smart_trader.compliance import store
from smart_trader.workers.envelope import Envelope

AUDITED_STREAMS = ("orders", "accounts", "challenges", "payments", "users", "admin")
"""Every event family that records a state-changing action."""


class AuditConsumer:
    """Appends each event to the audit chain (see the module docstring). The records of a batch are linked and
    inserted together at the batch's end (:meth:`flush`: one read of the chain's head, one insert)."""

    name = "audit"
    streams: tuple[str, ...] = AUDITED_STREAMS
    ordered = True
    dead_letters = False  # an event the chain cannot take stops it (and alerts): a record is never skipped

    def __init__(self) -> None:
        self._entries: list[dict[str, Any]] = []
        self._txn: Any = None

    def handle(self, conn: Connection, event: Envelope) -> None:
        """Queue the event's record for the batch's end, in ``conn``'s transaction."""
        txn = conn.get_transaction()
        if txn is not self._txn:  # a new transaction: what a failed one queued is gone with it
            self._entries, self._txn = [], txn
        p = event.payload
        actor = p.get("actor")
        request_id = p.get("request_id")
        self._entries.append(
            {
                "action": event.event_type,
                "payload": p,
                "actor": None if actor is None else str(actor),
                "subject": f"{event.stream}:{event.partition_key}" if event.partition_key else event.stream,
                "request_id": None if request_id is None else str(request_id)[:64],
                "event_id": event.event_id,
                "ts_ns": event.created_ns or event.ts_init,
            }
        )

    def flush(self, conn: Connection) -> None:
        """Append the queued records after the chain's head (called by the backbone at the end of each batch)."""
        entries, self._entries, self._txn = self._entries, [], None
        if entries:
            store.append(conn, entries)
