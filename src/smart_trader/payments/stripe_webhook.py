"""Stripe webhooks: the signature checked by the ``stripe`` library, the event turned into what it asks of us.

Verification (https://docs.stripe.com/webhooks#verify-events): ``stripe.Webhook.construct_event(payload,
sig_header, secret, tolerance)`` on the raw body — the ``Stripe-Signature`` header is ``t=<unix seconds>,v1=<hex
HMAC-SHA256 of "<t>.<body>" keyed with the endpoint's secret>``; the library compares in constant time and refuses a
timestamp older than ``tolerance`` seconds (replays). The body is parsed only after it verified.

What each event type asks (:func:`action_of`):

- ``checkout.session.completed`` (``payment_status`` ``paid`` or ``no_payment_required``) and
  ``checkout.session.async_payment_succeeded``: a :class:`~smart_trader.payments.grants.Purchase` for the user
  ``client_reference_id`` of the program ``metadata.program`` at ``metadata.account_size`` (the paper account in
  ``metadata.account_currency`` when given, else the program's currency), amount
  ``amount_total`` in ``currency`` (minor units made exact: :func:`~smart_trader.payments.money.from_stripe_minor`),
  the payment the session's ``payment_intent`` (the session id when it has none: a free checkout). A completed
  session still ``unpaid`` (a delayed payment method: bank debits) is ignored until its
  ``async_payment_succeeded`` (https://docs.stripe.com/checkout/fulfillment); a session not in ``payment`` mode too.
- ``checkout.session.async_payment_failed``: a failed payment, recorded.
- ``charge.refunded``: a refund of the charge's ``payment_intent`` (whole when ``refunded`` is true or
  ``amount_refunded`` reaches ``amount``).
- ``charge.dispute.created``: a dispute of the dispute's ``payment_intent``.
- any other type: ignored (stored, answered 200).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import orjson
import stripe

from smart_trader.core.errors import InvalidInputError
from smart_trader.payments.grants import (
    Action,
    Delivery,
    Ignore,
    PaymentFailed,
    Purchase,
    Reversal,
    VerifiedEvent,
    WebhookRejectedError,
)
from smart_trader.payments.money import currency_code, from_stripe_minor

PROVIDER = "stripe"
SIGNATURE_HEADER = "stripe-signature"
GRANTING = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


def verify(payload: bytes, sig_header: str | None, secret: str, tolerance_s: int) -> VerifiedEvent:
    """Check ``payload`` (the raw request body) against ``sig_header`` (``Stripe-Signature``) with the endpoint's
    ``secret`` and a timestamp tolerance of ``tolerance_s`` seconds, then read the event.

    Raises:
        WebhookRejectedError: 503 ``not-configured`` without a secret; 400 ``signature`` (no header, an unreadable
            header, no matching signature), ``stale`` (signed more than ``tolerance_s`` seconds ago) or ``malformed``
            (not UTF-8 JSON, or not the shape of a Stripe event).
    """
    if not secret:
        raise WebhookRejectedError(503, "not-configured", "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET)")
    try:
        stripe.Webhook.construct_event(payload, sig_header, secret, tolerance=tolerance_s)
    except stripe.SignatureVerificationError as exc:
        message = str(exc.user_message or "")
        if message.startswith("Timestamp outside the tolerance zone"):
            raise WebhookRejectedError(
                400, "stale", f"the Stripe-Signature timestamp is more than {tolerance_s} s old (a replay?)"
            ) from None
        raise WebhookRejectedError(
            400, "signature", f"the Stripe-Signature header does not verify: {message}"
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:  # not UTF-8, not JSON, a thin (v2) event
        raise WebhookRejectedError(400, "malformed", f"the body is not a Stripe event: {exc}") from None
    try:
        return read_event(payload)
    except InvalidInputError as exc:
        raise WebhookRejectedError(400, "malformed", f"the body is not a Stripe event: {exc}") from None


def read_event(payload: bytes) -> VerifiedEvent:
    """The delivery and action of a (verified) Stripe event body.

    Raises:
        InvalidInputError: the body lacks what a Stripe event has (``id``, ``type``, ``created``, ``data.object``) or
            a field used has the wrong type.
    """
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"not JSON ({exc})") from None
    if not isinstance(event, dict) or event.get("object") != "event":
        raise InvalidInputError("not an event object")
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise InvalidInputError("id must be the event's id")
    if not isinstance(event_type, str) or not event_type:
        raise InvalidInputError("type must be the event type")
    if type(created) is not int or created < 0:
        raise InvalidInputError("created must be the event's time in seconds")
    if not isinstance(obj, dict):
        raise InvalidInputError("data.object must be the event's object")
    digest = hashlib.sha256(payload).hexdigest()
    delivery = Delivery(PROVIDER, event_id, event_type, digest, created * 1_000_000_000)
    return VerifiedEvent(delivery, action_of(event_type, obj))


def _text(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"data.object.{name} must be a string")
    return value


def _amount(obj: dict[str, Any], name: str) -> tuple[Decimal | None, str | None]:
    amount, currency = obj.get(name), obj.get("currency")
    if amount is None or currency is None:
        return None, None
    return from_stripe_minor(amount, str(currency)), currency_code(currency)


def action_of(event_type: str, obj: dict[str, Any]) -> Action:
    """What a Stripe event of ``event_type`` about ``obj`` (its ``data.object``) asks (see the module docstring).

    Raises:
        InvalidInputError: a field used has the wrong type.
    """
    if event_type in GRANTING or event_type == "checkout.session.async_payment_failed":
        if obj.get("object") != "checkout.session":
            raise InvalidInputError(f"a {event_type} event carries a checkout.session")
        session = _text(obj, "id") or "?"
        ref = _text(obj, "payment_intent") or session
        user_id = _text(obj, "client_reference_id")
        if event_type == "checkout.session.async_payment_failed":
            return PaymentFailed(user_id, ref, f"the delayed payment of checkout session {session} failed")
        if obj.get("mode") != "payment":
            return Ignore(f"checkout session {session} in {obj.get('mode')} mode: challenges sell in payment mode", ref)
        if event_type == "checkout.session.completed" and obj.get("payment_status") not in (
            "paid",
            "no_payment_required",
        ):
            return Ignore(f"checkout session {session} completed unpaid: its async_payment_succeeded grants", ref)
        metadata = obj.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidInputError("data.object.metadata must be an object")
        amount, currency = _amount(obj, "amount_total")
        program, size = metadata.get("program"), metadata.get("account_size")
        account_currency = metadata.get("account_currency")
        return Purchase(
            user_id,
            program if isinstance(program, str) else None,
            size if isinstance(size, str) else None,
            amount,
            currency,
            ref,
            account_currency if isinstance(account_currency, str) else None,
        )
    if event_type == "charge.refunded":
        intent = _text(obj, "payment_intent")
        if intent is None:
            return Ignore(f"refund of charge {obj.get('id')}, which has no payment intent")
        amount, refunded = obj.get("amount"), obj.get("amount_refunded")
        if type(amount) is not int or type(refunded) is not int:
            raise InvalidInputError("a charge's amount and amount_refunded are integers")
        full = obj.get("refunded") is True or refunded >= amount
        value, currency = _amount(obj, "amount_refunded")
        return Reversal("refund", intent, full, value, currency)
    if event_type == "charge.dispute.created":
        disputed = _text(obj, "payment_intent")
        if disputed is None:
            return Ignore(f"dispute {obj.get('id')} of a charge without a payment intent")
        value, currency = _amount(obj, "amount")
        return Reversal("dispute", disputed, True, value, currency)
    return Ignore(f"event type {event_type} is not acted on")
