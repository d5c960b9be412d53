"""Doors shut by default: without ``STRIPE_WEBHOOK_SECRET`` or ``PAYPAL_WEBHOOK_ID`` (the platform's defaults) each
webhook answers 503 "not configured" to any delivery, signed or not, stores nothing and grants nothing."""

from __future__ import annotations

import uuid

import orjson

from smart_trader.gateway.access import Role
from tests.app.conftest import Harness, assert_problem
from tests.app.security_support import make_user
from tests.payments.conftest import STRIPE_SECRET, V1, checkout_event, deliver_stripe, payments_of, stored_event


def test_without_a_secret_the_stripe_webhook_answers_503_and_grants_nothing(platform: Harness) -> None:
    assert platform.settings.stripe_webhook_secret == ""  # the default
    user_id = make_user(platform, "nobody-paid@example.com", Role.TRADER)
    event = checkout_event(user_id)

    signed = deliver_stripe(platform, event, secret=STRIPE_SECRET)
    unsigned = deliver_stripe(platform, event, header=None)

    assert_problem(signed, 503, "STRIPE_WEBHOOK_SECRET")
    assert_problem(unsigned, 503, "not configured")
    assert stored_event(platform, event["id"]) is None and payments_of(platform, user_id) == []


def test_without_a_webhook_id_the_paypal_webhook_answers_503(platform: Harness) -> None:
    assert platform.settings.paypal_webhook_id == ""  # the default
    event_id = f"WH-{uuid.uuid4().hex[:17].upper()}"
    body = orjson.dumps({"id": event_id, "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {}})

    r = platform.client.post(f"{V1}/webhooks/paypal", content=body, headers={"Content-Type": "application/json"})

    assert_problem(r, 503, "PAYPAL_WEBHOOK_ID")
    assert stored_event(platform, event_id) is None
