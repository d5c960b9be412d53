"""Storage of notifications (``notifications/tables.py``): the inbox, the delivery queue, webhook endpoints and e-mail
preferences. Functions take a SQLAlchemy connection and run inside the caller's transaction (the consumer's, or a job
of the platform's group-commit writer). Timestamps are ns since the epoch, UTC.

Every insert made from events is idempotent by a derived key (a notification by its ``event_id``, a delivery by its
id), so applying the same events again finds the rows already there and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smart_trader.core.errors import RejectedByRulesError
from smart_trader.notifications.rules import EMAIL_DEFAULT_KINDS, KINDS, Notification, delivery_id
from smart_trader.notifications.tables import (
    notification_deliveries,
    notification_preferences,
    notifications,
    webhook_endpoints,
)

PENDING, SENDING, SENT, FAILED, CANCELLED = "pending", "sending", "sent", "failed", "cancelled"
"""Delivery statuses (``notifications/tables.py``)."""
EMAIL, WEBHOOK = "email", "webhook"
"""Delivery channels."""


# -- the inbox ------------------------------------------------------------------------------------------------------


def _notification(row: Any) -> Notification:
    return Notification(
        id=str(row.id),
        user_id=str(row.user_id),
        kind=str(row.kind),
        title=str(row.title),
        body=str(row.body),
        data=json.loads(row.data),
        event_id=str(row.event_id),
        created_ns=int(row.created_ns),
        read_ns=None if row.read_ns is None else int(row.read_ns),
    )


def insert_ignoring_conflicts(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows`` into ``table`` in one statement, skipping those whose primary or unique key is already stored
    (``ON CONFLICT DO NOTHING``, SQLite and PostgreSQL); returns how many were inserted."""
    if not rows:
        return 0
    ins = pg_insert(table) if conn.dialect.name == "postgresql" else sqlite_insert(table)
    return int(conn.execute(ins.on_conflict_do_nothing(), rows).rowcount)


def insert_notification(conn: Connection, n: Notification) -> bool:
    """Store ``n`` unless a notification of its event (``event_id``) or with its id is already stored; ``True`` when it
    was inserted. A re-applied event changes nothing (a ``read_ns`` already set stays)."""
    row = {
        "id": n.id,
        "user_id": n.user_id,
        "kind": n.kind,
        "title": n.title,
        "body": n.body,
        "data": json.dumps(n.data, separators=(",", ":"), sort_keys=True),
        "event_id": n.event_id,
        "created_ns": n.created_ns,
        "read_ns": n.read_ns,
    }
    return insert_ignoring_conflicts(conn, notifications, [row]) == 1


def get_notification(conn: Connection, notification_id: str) -> Notification | None:
    """A notification by id, or ``None``."""
    row = conn.execute(select(notifications).where(notifications.c.id == notification_id)).first()
    return None if row is None else _notification(row)


def notifications_of(
    conn: Connection,
    user_id: str,
    *,
    unread_only: bool = False,
    limit: int = 50,
    before: tuple[int, str] | None = None,
) -> list[Notification]:
    """A user's notifications, newest first (by ``created_ns``, then id), at most ``limit``; only those not read with
    ``unread_only``; only those strictly older than the cursor ``before`` = ``(created_ns, id)`` of the last one a
    previous page showed (keyset pagination: pages do not shift when new notifications arrive)."""
    c = notifications.c
    q = select(notifications).where(c.user_id == user_id)
    if unread_only:
        q = q.where(c.read_ns.is_(None))
    if before is not None:
        ts, nid = before
        q = q.where(or_(c.created_ns < ts, and_(c.created_ns == ts, c.id < nid)))
    q = q.order_by(c.created_ns.desc(), c.id.desc()).limit(limit)
    return [_notification(r) for r in conn.execute(q)]


def unread_count(conn: Connection, user_id: str) -> int:
    """How many of a user's notifications are not read."""
    c = notifications.c
    q = select(func.count()).select_from(notifications).where(c.user_id == user_id, c.read_ns.is_(None))
    return int(conn.execute(q).scalar_one())


def mark_read(conn: Connection, user_id: str, notification_id: str, now_ns: int) -> Notification | None:
    """Mark one of ``user_id``'s notifications read at ``now_ns`` (a notification already read keeps its first
    ``read_ns``). Returns it, or ``None`` when it does not exist or is someone else's."""
    c = notifications.c
    conn.execute(
        update(notifications)
        .where(c.id == notification_id, c.user_id == user_id, c.read_ns.is_(None))
        .values(read_ns=now_ns)
    )
    row = conn.execute(select(notifications).where(c.id == notification_id, c.user_id == user_id)).first()
    return None if row is None else _notification(row)


# -- e-mail preferences ---------------------------------------------------------------------------------------------


def email_kinds(conn: Connection, user_id: str) -> frozenset[str]:
    """The kinds ``user_id`` gets by e-mail (their choice, or :data:`~.rules.EMAIL_DEFAULT_KINDS`)."""
    raw = conn.execute(
        select(notification_preferences.c.email_kinds).where(notification_preferences.c.user_id == user_id)
    ).scalar()
    if raw is None:
        return EMAIL_DEFAULT_KINDS
    return frozenset(k for k in json.loads(raw) if k in KINDS)


def set_email_kinds(conn: Connection, user_id: str, kinds: Iterable[str], now_ns: int) -> frozenset[str]:
    """Set the kinds ``user_id`` gets by e-mail (unknown kinds are dropped; empty: no e-mail). Returns them."""
    chosen = sorted({k for k in kinds if k in KINDS})
    p = notification_preferences.c
    conn.execute(delete(notification_preferences).where(p.user_id == user_id))
    conn.execute(
        insert(notification_preferences),
        [{"user_id": user_id, "email_kinds": json.dumps(chosen), "updated_ns": now_ns}],
    )
    return frozenset(chosen)


# -- webhook endpoints ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A registered webhook endpoint: its URL, the kinds it wants (``None``: every kind), the encrypted signing
    secret, and when it was registered (ns UTC)."""

    id: str
    user_id: str
    url: str
    kinds: tuple[str, ...] | None
    secret: str
    created_ns: int

    def wants(self, kind: str) -> bool:
        """True when the endpoint takes notifications of ``kind``."""
        return self.kinds is None or kind in self.kinds


def _endpoint(row: Any) -> Endpoint:
    kinds = None if row.kinds is None else tuple(json.loads(row.kinds))
    return Endpoint(str(row.id), str(row.user_id), str(row.url), kinds, str(row.secret), int(row.created_ns))


def create_endpoint(
    conn: Connection,
    endpoint_id: str,
    user_id: str,
    url: str,
    kinds: Sequence[str] | None,
    secret_encrypted: str,
    now_ns: int,
    most: int,
) -> Endpoint:
    """Register an endpoint (``url`` already validated, the secret already encrypted).

    Raises:
        RejectedByRulesError: the user already has ``most`` endpoints.
    """
    have = conn.execute(
        select(func.count()).select_from(webhook_endpoints).where(webhook_endpoints.c.user_id == user_id)
    ).scalar_one()
    if int(have) >= most:
        raise RejectedByRulesError(f"a user may register at most {most} webhook endpoints: delete one first")
    row = {
        "id": endpoint_id,
        "user_id": user_id,
        "url": url,
        "kinds": None if kinds is None else json.dumps(sorted(set(kinds))),
        "secret": secret_encrypted,
        "created_ns": now_ns,
    }
    conn.execute(insert(webhook_endpoints), [row])
    stored = None if kinds is None else tuple(sorted(set(kinds)))
    return Endpoint(endpoint_id, user_id, url, stored, secret_encrypted, now_ns)


def endpoints_of(conn: Connection, user_id: str) -> list[Endpoint]:
    """A user's endpoints, oldest first."""
    e = webhook_endpoints.c
    q = select(webhook_endpoints).where(e.user_id == user_id).order_by(e.created_ns, e.id)
    return [_endpoint(r) for r in conn.execute(q)]


def get_endpoint(conn: Connection, endpoint_id: str) -> Endpoint | None:
    """An endpoint by id, or ``None``."""
    row = conn.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)).first()
    return None if row is None else _endpoint(row)


def delete_endpoint(conn: Connection, user_id: str, endpoint_id: str) -> Endpoint | None:
    """Delete one of ``user_id``'s endpoints and cancel its deliveries not sent yet. Returns it, or ``None`` when it
    does not exist or is someone else's."""
    e = webhook_endpoints.c
    row = conn.execute(select(webhook_endpoints).where(e.id == endpoint_id, e.user_id == user_id)).first()
    if row is None:
        return None
    d = notification_deliveries.c
    conn.execute(
        update(notification_deliveries)
        .where(d.channel == WEBHOOK, d.target == endpoint_id, d.status.in_((PENDING, SENDING)))
        .values(status=CANCELLED, last_error="the endpoint was deleted")
    )
    conn.execute(delete(webhook_endpoints).where(e.id == endpoint_id))
    return _endpoint(row)


# -- the delivery queue ---------------------------------------------------------------------------------------------


def delivery_row(notification_id: str, channel: str, target: str, created_ns: int) -> dict[str, Any]:
    """A new ``notification_deliveries`` row (due at once; id derived from notification, channel and target)."""
    return {
        "id": delivery_id(notification_id, channel, target),
        "notification_id": notification_id,
        "channel": channel,
        "target": target,
        "attempts": 0,
        "next_attempt_ns": 0,
        "status": PENDING,
        "last_error": None,
        "created_ns": created_ns,
        "sent_ns": None,
    }


def enqueue(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Queue deliveries (:func:`delivery_row`), skipping those already queued (whatever their status); returns how
    many were new."""
    return insert_ignoring_conflicts(conn, notification_deliveries, rows)


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery taken by one sender: ``attempts`` is this attempt's number (1 for the first) and the fencing token
    of the claim — a later claim of the same delivery (after the lease ran out) counts one more, and the marks of
    the earlier one then change nothing. ``notification`` is ``None`` when the inbox no longer has it; ``endpoint``
    is the webhook endpoint (``None`` for e-mail, or when it was deleted)."""

    id: str
    channel: str
    target: str
    attempts: int
    notification: Notification | None
    endpoint: Endpoint | None


def claim_due(conn: Connection, now_ns: int, lease_ns: int, limit: int) -> list[Claim]:
    """Take up to ``limit`` deliveries due at ``now_ns``: pending ones whose time came, and ``sending`` ones whose
    claim's lease ran out (their sender died or hung). Each becomes ``sending`` with one more attempt and a lease
    until ``now_ns + lease_ns``. On PostgreSQL rows another sender is claiming are skipped (``SKIP LOCKED``)."""
    d = notification_deliveries.c
    q = (
        select(d.id, d.channel, d.target, d.attempts, d.notification_id)
        .where(d.status.in_((PENDING, SENDING)), d.next_attempt_ns <= now_ns)
        .order_by(d.next_attempt_ns, d.created_ns, d.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = conn.execute(q).all()
    if not rows:
        return []
    for r in rows:
        conn.execute(
            update(notification_deliveries)
            .where(d.id == r.id)
            .values(status=SENDING, attempts=r.attempts + 1, next_attempt_ns=now_ns + lease_ns)
        )
    ids = list({str(r.notification_id) for r in rows})
    found = {
        str(n.id): _notification(n) for n in conn.execute(select(notifications).where(notifications.c.id.in_(ids)))
    }
    hooks = [str(r.target) for r in rows if r.channel == WEBHOOK]
    endpoints = {
        str(e.id): _endpoint(e)
        for e in (conn.execute(select(webhook_endpoints).where(webhook_endpoints.c.id.in_(hooks))) if hooks else [])
    }
    return [
        Claim(
            str(r.id),
            str(r.channel),
            str(r.target),
            int(r.attempts) + 1,
            found.get(str(r.notification_id)),
            endpoints.get(str(r.target)) if r.channel == WEBHOOK else None,
        )
        for r in rows
    ]


def _fenced(delivery: str, attempts: int, status: str) -> Any:
    d = notification_deliveries.c
    return update(notification_deliveries).where(d.id == delivery, d.attempts == attempts, d.status == status)


def mark_sent(conn: Connection, delivery: str, attempts: int, now_ns: int) -> bool:
    """The claim ``attempts`` of ``delivery`` is sent; ``False`` (nothing changed) when that claim is no longer the
    current one (another sender took the delivery over after the lease ran out)."""
    stmt = _fenced(delivery, attempts, SENDING).values(status=SENT, sent_ns=now_ns, last_error=None)
    return int(conn.execute(stmt).rowcount) == 1


def mark_unsent(
    conn: Connection, delivery: str, attempts: int, error: str, next_attempt_ns: int | None, *, was: str = SENDING
) -> bool:
    """The claim ``attempts`` of ``delivery`` (in status ``was``) did not deliver: ``pending`` again, due at
    ``next_attempt_ns``, or ``failed`` for good when that is ``None``. ``False`` when the claim is no longer the
    current one."""
    values: dict[str, Any] = {"last_error": error[:500], "sent_ns": None}
    if next_attempt_ns is None:
        values["status"] = FAILED
    else:
        values.update(status=PENDING, next_attempt_ns=next_attempt_ns)
    return int(conn.execute(_fenced(delivery, attempts, was).values(**values)).rowcount) == 1


def mark_cancelled(conn: Connection, delivery: str, attempts: int, reason: str) -> bool:
    """The claim ``attempts`` of ``delivery`` has nothing to deliver (its endpoint or notification is gone)."""
    stmt = _fenced(delivery, attempts, SENDING).values(status=CANCELLED, last_error=reason[:500])
    return int(conn.execute(stmt).rowcount) == 1


def note_error(conn: Connection, delivery: str, error: str) -> None:
    """Record ``error`` on a delivery without changing its status (a sent e-mail whose final reply was lost)."""
    d = notification_deliveries.c
    conn.execute(update(notification_deliveries).where(d.id == delivery).values(last_error=error[:500]))


def deliveries_of(conn: Connection, notification_id: str) -> list[Row[Any]]:
    """The deliveries of a notification (any status), by channel and target."""
    d = notification_deliveries.c
    q = select(notification_deliveries).where(d.notification_id == notification_id).order_by(d.channel, d.target)
    return list(conn.execute(q))
