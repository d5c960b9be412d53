"""What a verified payment event does, provider aside: a purchase grants a challenge and opens its account, a full
refund or a dispute revokes a challenge not yet passed, a failed payment is recorded; an administrator grants by
hand. Each runs inside one transaction of the platform's writer and writes its outbox events (stream
:data:`STREAM`) in it, so the audit and notification consumers see exactly what was committed.

Idempotency: :func:`receive` stores each provider event once (``payment_events``, unique by provider and event id);
a redelivery of an event already processed, ignored or pending changes nothing. A failed event (unknown user,
program or size) is stored as ``failed`` with the reason and answered 422, so the provider retries it (Stripe
retries a non-2xx delivery with exponential backoff for up to three days): a redelivery after the cause was fixed
(the program defined, the user restored) grants then; otherwise an administrator grants by hand
(``POST /api/v1/admin/challenges/grants``). Validation happens before any write, so a failure leaves nothing
behind but the event row and its ``payment.failed`` event (written at the first failure only).

Paid and administrators' grants do not count against ``MAX_ACCOUNTS_PER_USER``: that limit stops a trader from
opening free accounts without end (each may park open orders); a grant was paid for or decided by an administrator,
and refusing it after the money was taken would be worse than one more account.

Revocation follows the grant's challenge to its current phase (a promotion opens a new row linked by
``previous_id``): an ``active`` or ``locked`` phase becomes ``revoked`` — the API then refuses its orders with 409
(``challenges.store.block_reason``) — and its account is halted through the risk controls (``risk.store.set_state``),
so the trading runtime refuses orders too (at once when told, within seconds otherwise). A phase that passed,
failed or was already revoked is left as it is; the refund is recorded all the same.

Outbox events (``payload.actor``: ``"stripe"``, ``"paypal"`` or the administrator's user id; partition key: the
user id): ``payment.succeeded``, ``payment.failed``, ``payment.refunded``, ``payment.disputed``,
``challenge.granted``, ``challenge.revoked``. Amounts are decimal strings in major units.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from sqlalchemy import Connection, Row, insert

from smart_trader.challenges import store as challenge_store
from smart_trader.challenges.program import Program
from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.db.outbox import event_row, outbox
from smart_trader.gateway import users
from smart_trader.payments import store
from smart_trader.risk import store as risk_store

STREAM = "payments"
"""The event family of every payment event (one Redis stream when the backbone delivers them)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One verified delivery of a provider event.

    Attributes:
        provider: ``stripe`` | ``paypal``.
        event_id: the provider's event id (Stripe ``evt_...``, PayPal ``WH-...``).
        event_type: the provider's event type.
        payload_sha256: hex SHA-256 of the raw body.
        ts_event: when the provider made the event, ns since the epoch, UTC.
    """

    provider: str
    event_id: str
    event_type: str
    payload_sha256: str
    ts_event: int


@dataclass(frozen=True, slots=True)
class Purchase:
    """A payment that buys a challenge: ``user_id`` (the user it is for), ``program`` and ``account_size`` (as
    sent: checked here), the amount in major units and its ISO currency, ``payment_ref`` the provider's payment id
    (Stripe payment intent, PayPal capture), ``account_currency`` the paper account's currency (``None``: the
    program's; it must be the quote currency of the instruments the trader means to trade)."""

    user_id: str | None
    program: str | None
    account_size: str | None
    amount: Decimal | None
    currency: str | None
    payment_ref: str
    account_currency: str | None = None


@dataclass(frozen=True, slots=True)
class Reversal:
    """Money going back: a refund (``full``: of the whole payment; ``None``: whole when ``amount`` — the total
    refunded — reaches the recorded payment's amount; a partial refund is recorded and revokes nothing) or a dispute
    (always revokes), of the provider's payment ``payment_ref``; ``amount`` in major units."""

    kind: Literal["refund", "dispute"]
    payment_ref: str
    full: bool | None
    amount: Decimal | None
    currency: str | None

    def revokes(self, paid_amount: Decimal | None) -> bool:
        """True when it takes the challenge back: a dispute, or a refund of the whole payment (``paid_amount``: the
        recorded payment's; unknown amounts count as whole)."""
        if self.kind == "dispute" or self.full:
            return True
        if self.full is False:
            return False
        return self.amount is None or paid_amount is None or self.amount >= paid_amount


@dataclass(frozen=True, slots=True)
class PaymentFailed:
    """The provider says a payment did not go through (e.g. Stripe ``checkout.session.async_payment_failed``)."""

    user_id: str | None
    payment_ref: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class Ignore:
    """An event we do not act on (its type, or a state such as an unpaid checkout), kept for the record."""

    reason: str
    payment_ref: str | None = None


Action = Purchase | Reversal | PaymentFailed | Ignore


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    """A provider event whose signature verified: its delivery and what it asks."""

    delivery: Delivery
    action: Action


class WebhookRejectedError(Exception):
    """A delivery refused before anything was stored: ``status`` (HTTP), ``reason`` (the metric's label:
    ``not-configured``, ``signature``, ``stale``, ``malformed``, ``certificate``), ``detail`` (what was wrong)."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a delivery did.

    Attributes:
        status: ``granted`` | ``revoked`` | ``recorded`` | ``pending`` | ``ignored`` | ``duplicate`` | ``failed``.
        detail: what happened, in words (the response's ``detail``; a failure's problem detail).
        http_status: the answer to the provider (200; 422 for a failure it should retry).
        challenge_id: the challenge granted or revoked, if any.
        failure: the failure's reason label (``payment_failures_total{reason}``), or ``None``.
        counted: this delivery is the event's first failure, or its successful payment (metrics count it once).
        halted: accounts halted by a revocation (the runtime is told after the commit).
    """

    status: str
    detail: str
    http_status: int = 200
    challenge_id: str | None = None
    failure: str | None = None
    counted: bool = False
    halted: tuple[str, ...] = field(default=())


def _outbox(
    event_type: str,
    user_id: str | None,
    payload: dict[str, Any],
    now_ns: int,
    ts_event: int | None = None,
    fallback_key: str = "unknown",
) -> dict[str, Any]:
    key = user_id or fallback_key
    return event_row(
        f"{STREAM}.{key}", event_type, payload, now_ns, stream=STREAM, partition_key=key, ts_event=ts_event
    )


def receive(conn: Connection, delivery: Delivery, action: Action, now_ns: int) -> Outcome:
    """Apply one verified provider event once: a redelivery of an event already processed, ignored or pending is a
    ``duplicate`` and changes nothing; a failed one is tried again. Stores the event row with the outcome.

    Raises:
        sqlalchemy.exc.IntegrityError: the same event was stored meanwhile by a concurrent transaction (the caller
            runs the job again: it is then a duplicate).
    """
    known = store.event_of(conn, delivery.provider, delivery.event_id)
    if known is not None and known.status in store.DONE:
        return Outcome("duplicate", f"event {delivery.event_id} was already received ({known.status}): nothing done")
    first = known is None  # a failed event delivered again: its failure was reported already
    if isinstance(action, Purchase):
        outcome = grant_purchase(conn, delivery, action, now_ns)
        ref: str | None = action.payment_ref
    elif isinstance(action, Reversal):
        outcome = reverse_payment(conn, delivery, action, now_ns)
        ref = action.payment_ref
    elif isinstance(action, PaymentFailed):
        outcome = _payment_failed(conn, delivery, action, now_ns)
        ref = action.payment_ref
    else:
        outcome = Outcome("ignored", action.reason)
        ref = action.payment_ref
    status = {"failed": store.FAILED, "ignored": store.IGNORED, "pending": store.PENDING}.get(
        outcome.status, store.PROCESSED
    )
    values = {
        "provider": delivery.provider,
        "provider_event_id": delivery.event_id,
        "type": delivery.event_type[:100],
        "status": status,
        "reason": outcome.detail,
        "payment_ref": ref,
        "payload_sha256": delivery.payload_sha256,
    }
    store.save_event(conn, known, values, now_ns)
    if outcome.status == "failed" and first:
        user_id = action.user_id if isinstance(action, Purchase) else None
        payload = {
            "actor": delivery.provider,
            "provider": delivery.provider,
            "provider_event_id": delivery.event_id,
            "event_type": delivery.event_type,
            "reason": outcome.failure,
            "detail": outcome.detail,
            "user_id": user_id,
            "payment_ref": ref,
        }
        row = _outbox(
            "payment.failed", _known_user(conn, user_id), payload, now_ns, delivery.ts_event, delivery.provider
        )
        conn.execute(insert(outbox), [row])
        return replace(outcome, counted=True)
    return outcome


def _known_user(conn: Connection, user_id: str | None) -> str | None:
    """``user_id`` when such a user exists (the partition key of their events), else ``None``."""
    if not user_id or len(user_id) > 36:
        return None
    return user_id if users.get_user(conn, user_id) is not None else None


def _fail(reason: str, detail: str) -> Outcome:
    return Outcome("failed", detail, http_status=422, failure=reason)


def checked_grant(
    conn: Connection, user_id: str | None, program_id: str | None, account_size: str | None
) -> tuple[str, Program, Decimal]:
    """The user, program and size of a grant, checked: the user exists, the program is a preset or one defined
    through the API, the size is one it offers.

    Raises:
        InvalidInputError: a size that is not a decimal or not offered, or a value missing (the message names it).
        NotFoundError: no such user or program (the message lists the known programs).
    """
    if not user_id:
        raise InvalidInputError("the user id is missing (Stripe: the checkout session's client_reference_id)")
    if _known_user(conn, user_id) is None:
        raise NotFoundError(f"no user {user_id!r}")
    if not program_id:
        raise InvalidInputError("the program is missing (Stripe: the checkout session's metadata.program)")
    program = challenge_store.program_of(conn, program_id)
    if not account_size:
        raise InvalidInputError("the account size is missing (Stripe: the checkout session's metadata.account_size)")
    try:
        size = Decimal(account_size.strip())
    except InvalidOperation:
        raise InvalidInputError(f"account_size {account_size!r} is not a decimal number") from None
    if not size.is_finite() or size not in program.sizes:
        sizes = ", ".join(str(s) for s in program.sizes)
        raise InvalidInputError(f"account_size {account_size} is not offered by {program.id}: one of {sizes}")
    return user_id, program, size


def grant_purchase(conn: Connection, delivery: Delivery, purchase: Purchase, now_ns: int) -> Outcome:
    """Grant the purchased challenge: check the user, program and size (failing with nothing written), open the
    challenge and its account (``challenges.store.create_challenge``), record the payment and the grant, write
    ``payment.succeeded`` and ``challenge.granted``; then apply any refund or dispute of the same payment that arrived
    first. A second event about a payment already recorded grants nothing."""
    paid = store.payment_of(conn, delivery.provider, purchase.payment_ref)
    if paid is not None:
        return Outcome("ignored", f"payment {purchase.payment_ref} was already recorded: nothing granted")
    try:
        user_id, program, size = checked_grant(conn, purchase.user_id, purchase.program, purchase.account_size)
    except NotFoundError as exc:
        return _fail("unknown-user" if str(exc).startswith("no user") else "unknown-program", str(exc))
    except InvalidInputError as exc:
        text = str(exc)
        return _fail(
            "missing-field" if "missing" in text else "unknown-size" if "offered" in text else "invalid-size", text
        )
    currency = purchase.account_currency
    if currency is not None and not 2 <= len(currency) <= 16:
        return _fail("invalid-currency", f"account currency {currency!r} must be 2 to 16 characters")
    challenge = challenge_store.create_challenge(conn, user_id, program, size, currency, actor=delivery.provider)
    payment_id = store.insert_payment(
        conn,
        delivery.provider,
        purchase.payment_ref,
        delivery.event_id,
        user_id,
        purchase.amount,
        purchase.currency,
        now_ns,
    )
    grant_id = store.insert_grant(
        conn, challenge["id"], user_id, program.id, size, delivery.provider, payment_id, delivery.provider, None, now_ns
    )
    actor = delivery.provider
    payment = {
        "actor": actor,
        "payment_id": payment_id,
        "provider": delivery.provider,
        "provider_payment_id": purchase.payment_ref,
        "provider_event_id": delivery.event_id,
        "user_id": user_id,
        "amount": purchase.amount,
        "currency": purchase.currency,
        "program": program.id,
        "account_size": size,
        "challenge_id": challenge["id"],
    }
    rows = [
        _outbox("payment.succeeded", user_id, payment, now_ns, delivery.ts_event),
        _outbox(
            "challenge.granted",
            user_id,
            _granted(challenge, grant_id, delivery.provider, actor, payment_id, None),
            now_ns,
            delivery.ts_event,
        ),
    ]
    conn.execute(insert(outbox), rows)
    detail = f"granted {program.id} {size} to user {user_id}: challenge {challenge['id']}"
    halted: tuple[str, ...] = ()
    for early in store.pending_reversals(conn, delivery.provider, purchase.payment_ref):
        kind: Literal["refund", "dispute"] = "dispute" if str(early.reason or "").startswith("dispute") else "refund"
        reversal = Reversal(kind, purchase.payment_ref, True, None, None)
        later = reverse_payment(conn, delivery, reversal, now_ns, early.provider_event_id)
        store.mark_event(conn, int(early.id), store.PROCESSED, later.detail, now_ns)
        halted += later.halted
        detail += f"; then {later.detail} (event {early.provider_event_id} had arrived first)"
    return Outcome("granted", detail, challenge_id=str(challenge["id"]), counted=True, halted=halted)


def _granted(
    challenge: dict[str, Any], grant_id: str, source: str, actor: str, payment_id: str | None, reason: str | None
) -> dict[str, Any]:
    return {
        "actor": actor,
        "grant_id": grant_id,
        "source": source,
        "payment_id": payment_id,
        "reason": reason,
        "user_id": challenge["user_id"],
        "challenge_id": challenge["id"],
        "account_id": challenge["account_id"],
        "program": challenge["program_id"],
        "account_size": challenge["account_size"],
    }


def reverse_payment(
    conn: Connection, delivery: Delivery, reversal: Reversal, now_ns: int, event_id: str | None = None
) -> Outcome:
    """Record a refund or dispute of a recorded payment (``payment.refunded`` / ``payment.disputed``) and, when it
    :attr:`~Reversal.revokes`, revoke the grant's challenge (:func:`revoke_grant`). A revoking reversal of a payment
    not recorded yet is left ``pending`` and applied when the purchase arrives (providers do not promise order);
    a partial refund of an unknown payment is ignored."""
    paid = store.payment_of(conn, delivery.provider, reversal.payment_ref)
    if paid is None:
        if reversal.revokes(None):
            return Outcome("pending", f"{reversal.kind}: awaiting payment {reversal.payment_ref} (not recorded yet)")
        return Outcome("ignored", f"partial refund of payment {reversal.payment_ref}, which is not recorded")
    revokes = reversal.revokes(paid.amount)
    status = "disputed" if reversal.kind == "dispute" else "refunded" if revokes else "partially_refunded"
    store.set_payment_status(conn, str(paid.id), status, now_ns)
    actor = delivery.provider
    grant_row = store.grant_of_payment(conn, str(paid.id))
    revoked: tuple[str, str] | None = None
    note = "partial refund: the challenge is kept"
    if revokes:
        if grant_row is None:
            note = "no grant to revoke"
        else:
            why = f"payment {reversal.payment_ref} {status} ({delivery.provider} event {event_id or delivery.event_id})"
            revoked, note = revoke_grant(conn, grant_row, actor, why, now_ns, delivery.ts_event)
    payload = {
        "actor": actor,
        "payment_id": str(paid.id),
        "provider": delivery.provider,
        "provider_payment_id": reversal.payment_ref,
        "provider_event_id": event_id or delivery.event_id,
        "user_id": paid.user_id,
        "status": status,
        "amount": reversal.amount,
        "currency": reversal.currency,
        "challenge_revoked": revoked is not None,
        "note": note,
    }
    event_type = "payment.disputed" if reversal.kind == "dispute" else "payment.refunded"
    conn.execute(insert(outbox), [_outbox(event_type, str(paid.user_id), payload, now_ns, delivery.ts_event)])
    if revoked is None:
        return Outcome("recorded", f"payment {reversal.payment_ref} {status}: {note}")
    challenge_id, account_id = revoked
    return Outcome(
        "revoked",
        f"payment {reversal.payment_ref} {status}: challenge {challenge_id} revoked",
        challenge_id=challenge_id,
        halted=(account_id,),
    )


def current_phase(conn: Connection, grant_row: Row[Any]) -> Row[Any] | None:
    """The challenge row a grant's challenge is at now: the granted phase, or the phase its promotions opened."""
    rows = challenge_store.challenges_of(conn, str(grant_row.user_id))
    by_previous = {str(r.previous_id): r for r in rows if r.previous_id is not None}
    row = next((r for r in rows if str(r.id) == str(grant_row.challenge_id)), None)
    while row is not None and str(row.id) in by_previous:
        row = by_previous[str(row.id)]
    return row


def revoke_grant(
    conn: Connection, grant_row: Row[Any], actor: str, reason: str, now_ns: int, ts_event: int | None = None
) -> tuple[tuple[str, str] | None, str]:
    """Revoke a grant's challenge when its current phase is still judged: the phase becomes ``revoked``, its account
    is halted through the risk controls (``reason``), the grant is marked revoked and ``challenge.revoked`` written.
    Returns ``((challenge id, account id), note)`` when revoked, else ``(None, why not)``."""
    if grant_row.status == store.REVOKED:
        return None, "the grant was already revoked"
    phase = current_phase(conn, grant_row)
    if phase is None:  # pragma: no cover - a grant always has its challenge (foreign key)
        return None, "the grant's challenge is gone"
    if not challenge_store.revoke(conn, str(phase.id), now_ns):
        return None, f"challenge {phase.id} is {phase.status}: not revoked"
    account_id = str(phase.account_id)
    risk_store.set_state(conn, account_id, risk_store.HALTED, f"challenge revoked: {reason}"[:500], actor)
    store.mark_grant_revoked(conn, str(grant_row.id), reason, now_ns)
    payload = {
        "actor": actor,
        "grant_id": str(grant_row.id),
        "user_id": grant_row.user_id,
        "challenge_id": str(phase.id),
        "granted_challenge_id": str(grant_row.challenge_id),
        "account_id": account_id,
        "previous_status": phase.status,
        "reason": reason,
    }
    conn.execute(insert(outbox), [_outbox("challenge.revoked", str(grant_row.user_id), payload, now_ns, ts_event)])
    return (str(phase.id), account_id), f"challenge {phase.id} revoked"


def _payment_failed(conn: Connection, delivery: Delivery, failed: PaymentFailed, now_ns: int) -> Outcome:
    user_id = _known_user(conn, failed.user_id)
    payload = {
        "actor": delivery.provider,
        "provider": delivery.provider,
        "provider_event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "reason": "declined",
        "detail": failed.detail,
        "user_id": user_id,
        "payment_ref": failed.payment_ref,
    }
    row = _outbox("payment.failed", user_id, payload, now_ns, delivery.ts_event, delivery.provider)
    conn.execute(insert(outbox), [row])
    return Outcome("recorded", failed.detail, failure="declined", counted=True)


def grant_by_hand(
    conn: Connection,
    admin_id: str,
    user_id: str,
    program_id: str,
    account_size: Decimal,
    reason: str,
    now_ns: int,
    currency: str | None = None,
) -> dict[str, Any]:
    """An administrator grants a challenge: opens it and its account (in ``currency``, default the program's),
    records the grant (source ``admin``, no payment) and writes ``challenge.granted`` with the administrator as
    actor. Returns the grant's view (``grant_id``, ``challenge_id``, ``account_id``, ``user_id``, ``program``,
    ``account_size``, ``source``, ``granted_by``, ``reason``, ``created_ns``).

    Raises:
        NotFoundError: no such user or program.
        InvalidInputError: a size the program does not offer.
    """
    user, program, size = checked_grant(conn, user_id, program_id, str(account_size))
    challenge = challenge_store.create_challenge(conn, user, program, size, currency, actor=admin_id)
    grant_id = store.insert_grant(
        conn, challenge["id"], user, program.id, size, "admin", None, admin_id, reason, now_ns
    )
    payload = _granted(challenge, grant_id, "admin", admin_id, None, reason)
    conn.execute(insert(outbox), [_outbox("challenge.granted", user, payload, now_ns)])
    return {
        "grant_id": grant_id,
        "challenge_id": challenge["id"],
        "account_id": challenge["account_id"],
        "user_id": user,
        "program": program.id,
        "account_size": size,
        "source": "admin",
        "granted_by": admin_id,
        "reason": reason,
        "created_ns": now_ns,
    }
