"""HTTP routes of payments: the providers' webhooks (public: the provider's signature is the credential; rate class
``webhooks``) and an administrator's grant of a challenge by hand.

- ``POST /api/v1/webhooks/stripe``: a Stripe event, verified on the raw body (``payments/stripe_webhook.py``),
  applied once (``payments/grants.py``). 200 with what it did (``granted``, ``revoked``, ``recorded``, ``pending``,
  ``ignored``, ``duplicate``); 400 for a bad signature, a stale timestamp or a malformed body (nothing stored);
  422 for an event that cannot be applied (unknown user, program or size: stored as failed, granted nothing, and
  retried by Stripe); 503 while ``STRIPE_WEBHOOK_SECRET`` is unset (nothing granted).
- ``POST /api/v1/webhooks/paypal``: the same for PayPal (``payments/paypal_webhook.py``).
- ``POST /api/v1/admin/challenges/grants``: an administrator opens a challenge for a user (audited: the
  ``challenge.granted`` event names the administrator as actor).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from smart_trader.core.clock import now_ns
from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.gateway.deps import CurrentPrincipal, PlatformDep
from smart_trader.gateway.problems import ProblemError
from smart_trader.payments import grants, paypal_webhook, stripe_webhook
from smart_trader.payments.metrics import PAYMENT_FAILURES, PAYMENTS
from smart_trader.risk.limits import RISK_CONTROL_TOPIC

router = APIRouter(prefix="/api/v1", tags=["payments"])

_EVENT_BODY: dict[str, Any] = {
    "required": True,
    "content": {"application/json": {"schema": {"type": "object", "description": "the provider's event, as sent"}}},
}
_WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "bad signature, stale timestamp or malformed body: nothing stored"},
    422: {"description": "the event cannot be applied (unknown user, program or size): stored as failed"},
    503: {"description": "webhooks of this provider are not configured: nothing granted"},
}


class WebhookOut(BaseModel):
    """What a delivery did: ``status`` ``granted`` | ``revoked`` | ``recorded`` | ``pending`` | ``ignored`` |
    ``duplicate``, in words (``detail``), the provider's event id and the challenge granted or revoked."""

    status: str
    detail: str
    event_id: str
    challenge_id: str | None = None


class GrantIn(BaseModel):
    """A challenge granted by hand: the user, a program id (``GET /api/v1/challenges/programs``) at one of its sizes,
    why (kept with the grant and in the audit trail), and the paper account's currency (default the program's)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=36)
    program: str = Field(min_length=1, max_length=100)
    account_size: Decimal = Field(gt=0, allow_inf_nan=False)
    reason: str = Field(min_length=1, max_length=500)
    currency: str | None = Field(default=None, min_length=2, max_length=16)


class GrantOut(BaseModel):
    """A grant: the challenge and account it opened, for whom, by whom (``granted_by``: the administrator's user id,
    or ``stripe``/``paypal``), why; ``created_ns`` ns since the epoch, UTC."""

    grant_id: str
    challenge_id: str
    account_id: str
    user_id: str
    program: str
    account_size: Decimal
    source: str
    granted_by: str
    reason: str | None
    created_ns: int


def _refused(provider: str, exc: grants.WebhookRejectedError) -> ProblemError:
    if exc.reason != "not-configured":  # a deployment that sells nothing would alert on every scanner
        PAYMENT_FAILURES.labels(provider, exc.reason).inc()
    return ProblemError(exc.status, exc.detail, f"webhook-{exc.reason}")


async def _apply(platform: Any, delivery: grants.Delivery, action: grants.Action) -> WebhookOut:
    """Apply a verified delivery in one writer job (again once when a concurrent delivery of the same event
    committed first: it is then a duplicate), count it, tell the runtime of halted accounts, answer."""

    def job(conn: Connection) -> grants.Outcome:
        return grants.receive(conn, delivery, action, now_ns())

    try:
        outcome: grants.Outcome = await platform.writer.run(job)
    except IntegrityError:
        outcome = await platform.writer.run(job)
    if outcome.counted:
        if outcome.failure is not None:
            PAYMENT_FAILURES.labels(delivery.provider, outcome.failure).inc()
        elif outcome.status == "granted":
            PAYMENTS.labels(delivery.provider).inc()
    for account_id in outcome.halted:
        if platform.runtime is not None:  # the runtime applies the halt before that account's next order
            await platform.runtime.limits_changed(account_id)
        else:
            platform.hub.publish(RISK_CONTROL_TOPIC, account_id)
    if outcome.http_status >= 400:
        raise ProblemError(outcome.http_status, outcome.detail, f"payment-{outcome.failure}")
    return WebhookOut(
        status=outcome.status, detail=outcome.detail, event_id=delivery.event_id, challenge_id=outcome.challenge_id
    )


@router.post(
    "/webhooks/stripe",
    response_model=WebhookOut,
    responses=_WEBHOOK_RESPONSES,
    openapi_extra={"requestBody": _EVENT_BODY},
)
async def stripe_events(request: Request, platform: PlatformDep) -> WebhookOut:
    """Receive a Stripe event (configure the endpoint in Stripe with the events ``checkout.session.completed``,
    ``checkout.session.async_payment_succeeded``, ``checkout.session.async_payment_failed``, ``charge.refunded``,
    ``charge.dispute.created``; its signing secret is ``STRIPE_WEBHOOK_SECRET``). The checkout session names the
    user in ``client_reference_id`` and the challenge in ``metadata.program`` and ``metadata.account_size``."""
    payload = await request.body()  # the raw bytes: the signature is over them
    settings = platform.settings
    try:
        event = stripe_webhook.verify(
            payload,
            request.headers.get(stripe_webhook.SIGNATURE_HEADER),
            settings.stripe_webhook_secret,
            settings.stripe_webhook_tolerance_seconds,
        )
    except grants.WebhookRejectedError as exc:
        raise _refused(stripe_webhook.PROVIDER, exc) from None
    return await _apply(platform, event.delivery, event.action)


def certificate_source() -> Callable[[str], bytes]:
    """Where PayPal's signing certificates come from (a dependency: tests that cannot reach PayPal replace it with
    ``app.dependency_overrides``): :func:`~smart_trader.payments.paypal_webhook.fetch_certificate`."""
    return paypal_webhook.fetch_certificate


CertificateSource = Annotated[Callable[[str], bytes], Depends(certificate_source)]


@router.post(
    "/webhooks/paypal",
    response_model=WebhookOut,
    responses=_WEBHOOK_RESPONSES,
    openapi_extra={"requestBody": _EVENT_BODY},
)
async def paypal_events(request: Request, platform: PlatformDep, fetch: CertificateSource) -> WebhookOut:
    """Receive a PayPal event (subscribe the webhook ``PAYPAL_WEBHOOK_ID`` to ``PAYMENT.CAPTURE.COMPLETED``,
    ``PAYMENT.CAPTURE.REFUNDED``, ``PAYMENT.CAPTURE.REVERSED``, ``CUSTOMER.DISPUTE.CREATED``). The order's purchase
    unit names the user and the challenge in ``custom_id``: ``<user id>|<program>|<account size>``."""
    payload = await request.body()
    settings = platform.settings
    try:
        verifier = paypal_webhook.verifier_of(settings)
        event = await platform.in_thread(lambda: verifier.verify(payload, request.headers, fetch))
    except grants.WebhookRejectedError as exc:
        raise _refused(paypal_webhook.PROVIDER, exc) from None
    return await _apply(platform, event.delivery, event.action)


@router.post("/admin/challenges/grants", status_code=201, response_model=GrantOut)
async def grant_challenge(body: GrantIn, who: CurrentPrincipal, platform: PlatformDep) -> GrantOut:
    """Grant a challenge by hand (administrators): opens the challenge and its paper account for ``user_id`` like a
    paid one (not counted against ``MAX_ACCOUNTS_PER_USER``) and records who granted it and why. 422 for a user,
    program or size that does not exist (the message lists the programs or sizes); nothing is opened then."""

    def job(conn: Connection) -> dict[str, Any]:
        return grants.grant_by_hand(
            conn, who.user_id, body.user_id, body.program, body.account_size, body.reason, now_ns(), body.currency
        )

    try:
        view = await platform.writer.run(job)
    except (NotFoundError, InvalidInputError) as exc:
        raise ProblemError(422, str(exc), "invalid-grant") from None
    return GrantOut(**view)
