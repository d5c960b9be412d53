"""Which domain event becomes which notification: pure functions, no I/O.

:func:`draft_for` turns one :class:`~smart_trader.workers.envelope.Envelope` into a :class:`Draft` (the user, kind,
title, body and data of a notification) or ``None`` for an event nobody is notified of — including an event whose
shape it does not know (a payload without the fields it needs is ignored, never an error: the payments stream is
versioned by its own service). The facts it quotes are the event's own (decimals as the strings the event carries,
instants as ISO 8601 UTC of its ns timestamps), so the same event always gives the same text.

Event families read:

- stream ``challenges`` (``challenges/persist.py``: event type ``challenge.<ChallengeEvent.event_type>``, payload
  ``{"event", "account_id", "challenge_id", "ts_event", "data": to_payload(event), "challenge": view}``):
  ``ChallengeWarning`` → :data:`CHALLENGE_WARNING` (80/90/95 % of a floor's room used: the program's warning levels),
  ``ChallengeBreached`` → :data:`CHALLENGE_BREACHED` (hard failure), ``ChallengeLocked`` → :data:`CHALLENGE_LOCKED`
  (a soft rule locked trading), ``ChallengePassed`` → :data:`CHALLENGE_PASSED` (with the next phase, when the
  promotion opened one). The user is found through the challenge (:class:`ChallengeContext`, by the caller).
- stream ``payments`` (user id as partition key or ``user_id``): ``payment.succeeded`` → :data:`PAYMENT_RECEIPT`,
  ``challenge.granted`` → :data:`CHALLENGE_GRANTED`, ``challenge.revoked`` → :data:`CHALLENGE_REVOKED`.

Ids are derived (UUIDv5 under :data:`NAMESPACE`): a notification's from its event id, a delivery's from its
notification, channel and target — replaying the same events finds the same rows instead of making new ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from smart_trader.challenges.days import iso_utc
from smart_trader.workers.envelope import Envelope

NAMESPACE = uuid.UUID("c3dc9043-6eca-4438-9d71-f58315b19999")
"""The UUIDv5 namespace of notification and delivery ids (fixed for ever: changing it would re-send everything)."""

CHALLENGE_WARNING = "challenge_warning"
CHALLENGE_BREACHED = "challenge_breached"
CHALLENGE_LOCKED = "challenge_locked"
CHALLENGE_PASSED = "challenge_passed"
PAYMENT_RECEIPT = "payment_receipt"
CHALLENGE_GRANTED = "challenge_granted"
CHALLENGE_REVOKED = "challenge_revoked"
KINDS = (
    CHALLENGE_WARNING,
    CHALLENGE_BREACHED,
    CHALLENGE_LOCKED,
    CHALLENGE_PASSED,
    PAYMENT_RECEIPT,
    CHALLENGE_GRANTED,
    CHALLENGE_REVOKED,
)
"""Every notification kind, as stored in ``notifications.kind`` and named in preferences and webhook filters."""

EMAIL_DEFAULT_KINDS = frozenset({CHALLENGE_BREACHED, CHALLENGE_LOCKED, CHALLENGE_PASSED, PAYMENT_RECEIPT})
"""Kinds sent by e-mail to a user who never chose: breaches (hard failure and soft lock), passes, payment receipts."""

_CHALLENGE_EVENTS = {
    "ChallengeWarning": CHALLENGE_WARNING,
    "ChallengeBreached": CHALLENGE_BREACHED,
    "ChallengeLocked": CHALLENGE_LOCKED,
    "ChallengePassed": CHALLENGE_PASSED,
    # the same events under short names, should the event types be renamed (challenge.breached ...)
    "warning": CHALLENGE_WARNING,
    "breached": CHALLENGE_BREACHED,
    "locked": CHALLENGE_LOCKED,
    "passed": CHALLENGE_PASSED,
}
_PAYMENT_EVENTS = {
    "payment.succeeded": PAYMENT_RECEIPT,
    "challenge.granted": CHALLENGE_GRANTED,
    "challenge.revoked": CHALLENGE_REVOKED,
}
RULE_NAMES = {
    "daily_loss": "daily loss",
    "max_loss": "maximum loss",
    "soft_daily_loss": "soft daily loss",
    "flat_by": "flat-by time",
    "weekend_flat": "weekend holding",
    "max_days": "maximum days",
    "inactivity": "inactivity",
}
"""Rule ids of the challenge programs in words (others: the id with spaces)."""
MAX_FIELD = 200  # characters of one quoted payload field


@dataclass(frozen=True, slots=True)
class ChallengeContext:
    """What the caller looked up about the challenge a challenge event names.

    Attributes:
        user_id: who took the challenge (the notification's recipient).
        program: the program's display name (``FTMO 2-Step``), or ``None``.
        phase: the phase's name, or ``None``.
        next_phase: the name of the phase a pass promotes to, or ``None`` after the last phase.
    """

    user_id: str
    program: str | None = None
    phase: str | None = None
    next_phase: str | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    """A notification before it is stored: recipient, :data:`KINDS` member, title (≤ 200 characters), body, and the
    event's facts as a JSON-able dict (decimals as strings, times ns since the epoch UTC)."""

    user_id: str
    kind: str
    title: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Notification:
    """A stored notification (``created_ns``: the source event's ``ts_event``; ``read_ns``: when its user marked it
    read, or ``None``; both ns since the epoch, UTC)."""

    id: str
    user_id: str
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    event_id: str
    created_ns: int
    read_ns: int | None = None

    def document(self) -> dict[str, Any]:
        """The public JSON shape (API, WebSocket, webhooks): ``id, kind, title, body, data, event_id, created_ns,
        read_ns``."""
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "body": self.body,
            "data": self.data,
            "event_id": self.event_id,
            "created_ns": self.created_ns,
            "read_ns": self.read_ns,
        }


def notification_id(event_id: str) -> str:
    """The id of the notification of the event ``event_id`` (UUIDv5: the same event, the same id)."""
    return str(uuid.uuid5(NAMESPACE, f"notification:{event_id}"))


def delivery_id(notification: str, channel: str, target: str) -> str:
    """The id of the delivery of ``notification`` over ``channel`` (``email``/``webhook``) to ``target`` (UUIDv5)."""
    return str(uuid.uuid5(NAMESPACE, f"delivery:{notification}:{channel}:{target}"))


# -- challenges -----------------------------------------------------------------------------------------------------


def challenge_kind(event: Envelope) -> str | None:
    """The notification kind of a ``challenges`` stream event, or ``None`` when it makes no notification (a closed
    day, an unlock, an unknown type)."""
    if event.stream != "challenges":
        return None
    data = event.payload.get("data")
    name = data.get("event_type") if isinstance(data, Mapping) else None
    if not isinstance(name, str):
        name = event.payload.get("event")
    if not isinstance(name, str):
        name = event.event_type.removeprefix("challenge.")
    return _CHALLENGE_EVENTS.get(name)


def challenge_ref(event: Envelope) -> tuple[str | None, str | None]:
    """``(challenge_id, account_id)`` a challenge event names (either may be ``None``; the account id falls back to
    the partition key)."""
    payload = event.payload
    challenge = _text(payload, "challenge_id")
    account = _text(payload, "account_id") or event.partition_key
    return challenge, account


def draft_for(event: Envelope, challenge: ChallengeContext | None = None) -> Draft | None:
    """The notification ``event`` makes, or ``None``.

    Args:
        event: a domain event of the ``challenges`` or ``payments`` stream (others give ``None``).
        challenge: for a challenge event, the challenge it names (its user); without it a challenge event gives
            ``None`` (a challenge that cannot be found notifies nobody).
    """
    if event.stream == "challenges":
        kind = challenge_kind(event)
        if kind is None or challenge is None:
            return None
        return _challenge_draft(event, kind, challenge)
    if event.stream == "payments":
        kind = _PAYMENT_EVENTS.get(event.event_type)
        if kind is None:
            return None
        return _payment_draft(event, kind)
    return None


def _challenge_draft(event: Envelope, kind: str, ctx: ChallengeContext) -> Draft:
    raw = event.payload.get("data")
    d: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    challenge_id, account_id = challenge_ref(event)
    subject = " — ".join(x for x in (ctx.program, ctx.phase) if x) or "Your challenge"
    if account_id:
        subject += f" (account {account_id})"
    rule = _text(d, "rule")
    label = RULE_NAMES.get(rule or "", (rule or "a rule").replace("_", " "))
    when = _iso(d.get("ts_event"), event.ts_event)
    data: dict[str, Any] = {
        "event": event.event_type,
        "challenge_id": challenge_id,
        "account_id": account_id,
        "ts_event": event.ts_event,
    }
    if ctx.program:
        data["program"] = ctx.program
    if ctx.phase:
        data["phase"] = ctx.phase
    if rule:
        data["rule"] = rule
    if kind == CHALLENGE_WARNING:
        level, used, floor, value = (_text(d, k) for k in ("level", "room_used", "floor", "value"))
        pct = _percent(level) or "?"
        data.update(level=level, room_used=used, floor=floor, value=value)
        title = f"{pct}% of your {label} room is used"
        body = (
            f"{subject}: {_percent(used) or pct}% of the room down to the {label} floor {floor} is used "
            f"(now at {value}, {when}). At 100% the phase fails."
        )
    elif kind == CHALLENGE_BREACHED:
        floor, equity, balance = (_text(d, k) for k in ("floor", "equity", "balance"))
        data.update(floor=floor, equity=equity, balance=balance, breach_kind=_text(d, "kind"))
        title = f"Challenge failed: {label} rule broken"
        evidence = f": equity {equity} against the floor {floor}" if floor is not None else ""
        body = (
            f"{subject}: the {label} rule was broken at {when}{evidence}. The phase has failed: open orders are "
            "cancelled, positions are closed and the account takes no more orders."
        )
    elif kind == CHALLENGE_LOCKED:
        floor, equity = _text(d, "floor"), _text(d, "equity")
        until = d.get("until_ts")
        data.update(floor=floor, equity=equity, until_ts=until if isinstance(until, int) else None)
        title = f"Trading locked: {label}"
        until_text = f" until {_iso(until, None)}" if isinstance(until, int) else ""
        evidence = f" (equity {equity}, floor {floor})" if floor is not None else ""
        body = f"{subject}: the {label} rule locked trading at {when}{until_text}{evidence}."
        if d.get("flatten") is True:
            body += " Open orders are cancelled and positions closed."
    else:  # CHALLENGE_PASSED
        balance, days = _text(d, "balance"), _text(d, "trading_days")
        data.update(balance=balance, trading_days=days, next_phase=ctx.next_phase)
        title = f"Phase passed: {ctx.phase}" if ctx.phase else "Challenge phase passed"
        body = f"{subject}: every objective of the phase was met at {when} (balance {balance}, {days} trading days)."
        if ctx.next_phase:
            body += f" The next phase, {ctx.next_phase}, is open on a new account."
        else:
            body += " That was the last phase: the challenge is complete."
    return Draft(ctx.user_id, kind, title[:200], body, data)


# -- payments -------------------------------------------------------------------------------------------------------


def _payment_draft(event: Envelope, kind: str) -> Draft | None:
    p = event.payload
    user_id = _text(p, "user_id") or event.partition_key
    if not user_id or len(user_id) > 64:
        return None
    amount, currency = _text(p, "amount"), _text(p, "currency")
    program, size = _text(p, "program"), _text(p, "account_size")
    challenge_id, account_id = _text(p, "challenge_id"), _text(p, "account_id")
    data: dict[str, Any] = {"event": event.event_type, "ts_event": event.ts_event}
    for key, value in (
        ("amount", amount),
        ("currency", currency),
        ("program", program),
        ("account_size", size),
        ("challenge_id", challenge_id),
        ("account_id", account_id),
        ("payment_id", _text(p, "payment_id")),
        ("grant_id", _text(p, "grant_id")),
        ("provider", _text(p, "provider")),
        ("provider_event_id", _text(p, "provider_event_id")),
        ("reason", _text(p, "reason")),
    ):
        if value is not None:
            data[key] = value
    what = " ".join(x for x in (program, f"at {size}" if size else None) if x)
    if kind == PAYMENT_RECEIPT:
        title = "Payment received"
        paid = f" of {amount} {currency.upper()}" if amount and currency else (f" of {amount}" if amount else "")
        body = f"We received your payment{paid} on {_iso(None, event.ts_event)}."
        if what:
            body += f" It is for the {what} challenge."
    elif kind == CHALLENGE_GRANTED:
        title = "Challenge granted"
        body = f"Your {what + ' ' if what else ''}challenge is ready."
        if account_id:
            body += f" Trade it on account {account_id}."
    else:  # CHALLENGE_REVOKED
        title = "Challenge revoked"
        reason = data.get("reason")
        body = f"Your {what + ' ' if what else ''}challenge was revoked on {_iso(None, event.ts_event)}"
        body += f" ({reason})." if reason else "."
    return Draft(user_id, kind, title, body, data)


# -- helpers --------------------------------------------------------------------------------------------------------


def _text(payload: Mapping[str, Any], key: str) -> str | None:
    """``payload[key]`` as one line of text when it is a string, an integer or a decimal (runs of whitespace and line
    breaks made one space — a title becomes an e-mail header —, at most :data:`MAX_FIELD` characters); anything else
    (missing, a list, a float, a bool) is ``None``."""
    value = payload.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        value = str(value)
    if isinstance(value, str):
        line = " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())
        return line[:MAX_FIELD] or None
    return None


def _percent(fraction: str | None) -> str | None:
    """``"0.8"`` → ``"80"``, ``"0.955"`` → ``"95.5"`` (exact); ``None`` for a value that is not a number."""
    if fraction is None:
        return None
    try:
        pct = Decimal(fraction) * 100
    except (InvalidOperation, ValueError):
        return None
    if not pct.is_finite():
        return None
    if pct == pct.to_integral_value():
        return str(int(pct))
    return format(pct.normalize(), "f")


def _iso(value: Any, fallback: int | None) -> str:
    """ISO 8601 UTC text of ``value`` (ns since the epoch) or of ``fallback``."""
    ts = value if isinstance(value, int) and not isinstance(value, bool) else fallback
    return "an unknown time" if ts is None else iso_utc(ts)
