"""Storage of payments: rows of ``payment_events``, ``payments`` and ``challenge_grants`` (``payments/tables.py``).
Functions take a SQLAlchemy connection; writes run inside the caller's transaction (the platform's group-commit
writer). Timestamps are ns since the epoch, UTC; amounts exact."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from smart_trader.payments.tables import challenge_grants, payment_events, payments

PROCESSED = "processed"
IGNORED = "ignored"
FAILED = "failed"
PENDING = "pending"  # a revoking refund or dispute whose payment has not been recorded yet
DONE = (PROCESSED, IGNORED, PENDING)
"""Event statuses a redelivery leaves alone (a ``failed`` event is processed again)."""
REVOKED = "revoked"
"""The status of a revoked challenge (``challenges.status``) and grant (``challenge_grants.status``)."""


def event_of(conn: Connection, provider: str, provider_event_id: str) -> Row[Any] | None:
    """The stored provider event, or ``None``."""
    q = select(payment_events).where(
        payment_events.c.provider == provider, payment_events.c.provider_event_id == provider_event_id
    )
    return conn.execute(q).first()


def save_event(
    conn: Connection,
    known: Row[Any] | None,
    values: dict[str, Any],
    now_ns: int,
) -> None:
    """Insert the event row ``values`` (``provider``, ``provider_event_id``, ``type``, ``status``, ``reason``,
    ``payment_ref``, ``payload_sha256``), or update ``known`` with them and one more attempt."""
    if known is None:
        conn.execute(insert(payment_events), [{**values, "received_ns": now_ns, "updated_ns": now_ns, "attempts": 1}])
        return
    conn.execute(
        update(payment_events)
        .where(payment_events.c.id == known.id)
        .values(
            status=values["status"],
            reason=values["reason"],
            payment_ref=values["payment_ref"],
            payload_sha256=values["payload_sha256"],
            attempts=int(known.attempts) + 1,
            updated_ns=now_ns,
        )
    )


def pending_reversals(conn: Connection, provider: str, payment_ref: str) -> list[Row[Any]]:
    """Events of ``provider`` about ``payment_ref`` left :data:`PENDING` (a refund or dispute delivered before its
    purchase), oldest first."""
    q = (
        select(payment_events)
        .where(
            payment_events.c.provider == provider,
            payment_events.c.payment_ref == payment_ref,
            payment_events.c.status == PENDING,
        )
        .order_by(payment_events.c.id)
    )
    return list(conn.execute(q))


def mark_event(conn: Connection, event_row_id: int, status: str, reason: str, now_ns: int) -> None:
    """Set an event row's status and reason (a pending reversal applied later)."""
    conn.execute(
        update(payment_events)
        .where(payment_events.c.id == event_row_id)
        .values(status=status, reason=reason, updated_ns=now_ns)
    )


def payment_of(conn: Connection, provider: str, provider_payment_id: str) -> Row[Any] | None:
    """The payment recorded for the provider's payment id, or ``None``."""
    q = select(payments).where(payments.c.provider == provider, payments.c.provider_payment_id == provider_payment_id)
    return conn.execute(q).first()


def insert_payment(
    conn: Connection,
    provider: str,
    provider_payment_id: str,
    provider_event_id: str,
    user_id: str,
    amount: Decimal | None,
    currency: str | None,
    now_ns: int,
) -> str:
    """Record a succeeded payment; returns its id."""
    payment_id = str(uuid.uuid4())
    conn.execute(
        insert(payments),
        [
            {
                "id": payment_id,
                "provider": provider,
                "provider_payment_id": provider_payment_id,
                "provider_event_id": provider_event_id,
                "user_id": user_id,
                "amount": amount,
                "currency": currency,
                "status": "succeeded",
                "created_ns": now_ns,
                "updated_ns": now_ns,
            }
        ],
    )
    return payment_id


def set_payment_status(conn: Connection, payment_id: str, status: str, now_ns: int) -> None:
    """Change a payment's status (``refunded``, ``partially_refunded``, ``disputed``)."""
    conn.execute(update(payments).where(payments.c.id == payment_id).values(status=status, updated_ns=now_ns))


def insert_grant(
    conn: Connection,
    challenge_id: str,
    user_id: str,
    program_id: str,
    account_size: Decimal,
    source: str,
    payment_id: str | None,
    granted_by: str,
    reason: str | None,
    now_ns: int,
) -> str:
    """Record the grant of a challenge (``source``: ``stripe`` | ``paypal`` | ``admin``); returns its id."""
    grant_id = str(uuid.uuid4())
    conn.execute(
        insert(challenge_grants),
        [
            {
                "id": grant_id,
                "challenge_id": challenge_id,
                "user_id": user_id,
                "program_id": program_id,
                "account_size": account_size,
                "source": source,
                "payment_id": payment_id,
                "granted_by": granted_by,
                "reason": reason,
                "status": "active",
                "revoked_ns": None,
                "revoke_reason": None,
                "created_ns": now_ns,
            }
        ],
    )
    return grant_id


def grant_of_payment(conn: Connection, payment_id: str) -> Row[Any] | None:
    """The grant a payment bought, or ``None``."""
    return conn.execute(select(challenge_grants).where(challenge_grants.c.payment_id == payment_id)).first()


def grant(conn: Connection, grant_id: str) -> Row[Any] | None:
    """A grant by id, or ``None``."""
    return conn.execute(select(challenge_grants).where(challenge_grants.c.id == grant_id)).first()


def grants_of(conn: Connection, user_id: str) -> list[Row[Any]]:
    """A user's grants, oldest first."""
    q = (
        select(challenge_grants)
        .where(challenge_grants.c.user_id == user_id)
        .order_by(challenge_grants.c.created_ns, challenge_grants.c.id)
    )
    return list(conn.execute(q))


def mark_grant_revoked(conn: Connection, grant_id: str, reason: str, now_ns: int) -> None:
    """Record a grant's revocation."""
    conn.execute(
        update(challenge_grants)
        .where(challenge_grants.c.id == grant_id)
        .values(status=REVOKED, revoked_ns=now_ns, revoke_reason=reason[:500])
    )
