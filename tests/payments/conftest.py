"""Fixtures of the payments tests: the whole platform with the Stripe and PayPal webhooks configured, on SQLite and
on the real PostgreSQL (one platform per database and module: each test works with users, events and payments of its
own), delivery helpers that sign events the way the providers document, and readers of what was stored."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from smart_trader.db.outbox import outbox
from smart_trader.payments.tables import challenge_grants, payment_events, payments
from tests.app.conftest import (  # noqa: F401 - the app tests' fixtures, used here too
    Harness,
    fast_password_hashing,
    platform,
    postgres_url,
)
from tests.app.security_support import bearer, custom_platform, make_user, open_session

FIXTURES = Path(__file__).parent / "fixtures"
STRIPE_SECRET = "whsec_" + secrets.token_hex(24)  # the endpoint secret the test platform is configured with
V1 = "/api/v1"


def fixture(name: str) -> dict[str, Any]:
    """A recorded provider payload (``fixtures/README.md`` says where each comes from)."""
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def stripe_signature(body: bytes, secret: str = STRIPE_SECRET, t: int | None = None) -> str:
    """The ``Stripe-Signature`` header of ``body`` as Stripe documents it: ``t=<ts>,v1=<hex HMAC-SHA256(secret,
    "<ts>.<body>")>`` (https://docs.stripe.com/webhooks#verify-manually)."""
    ts = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def checkout_event(user_id: str, program: str = "ftmo-2step", size: str = "10000") -> dict[str, Any]:
    """A ``checkout.session.completed`` event of the recorded shape with a fresh event id and payment intent, the
    account in USDT (the quote currency of the recorded BTC/USDT trades)."""
    event = copy.deepcopy(fixture("stripe_checkout_session_completed.json"))
    event["id"] = f"evt_test_{uuid.uuid4().hex[:24]}"
    session = event["data"]["object"]
    session["client_reference_id"] = user_id
    session["metadata"] = {"program": program, "account_size": size, "account_currency": "USDT"}
    session["payment_intent"] = f"pi_test_{uuid.uuid4().hex[:24]}"
    return event


def reversal_event(name: str, payment_intent: str) -> dict[str, Any]:
    """A ``charge.refunded`` / ``charge.dispute.created`` event of the recorded shape about ``payment_intent``."""
    event = copy.deepcopy(fixture(name))
    event["id"] = f"evt_test_{uuid.uuid4().hex[:24]}"
    event["data"]["object"]["payment_intent"] = payment_intent
    return event


def deliver_stripe(h: Harness, event: dict[str, Any] | bytes, **signing: Any) -> Any:
    """POST ``event`` to the Stripe webhook, signed (``signing``: ``secret=``, ``t=``; ``header=`` to send one as
    is, ``None`` to send none)."""
    body = event if isinstance(event, bytes) else orjson.dumps(event)
    header = signing.pop("header", "sign")
    headers = {"Content-Type": "application/json"}
    if header == "sign":
        headers["Stripe-Signature"] = stripe_signature(body, **signing)
    elif header is not None:
        headers["Stripe-Signature"] = header
    return h.client.post(f"{V1}/webhooks/stripe", content=body, headers=headers)


def trader(h: Harness, name: str | None = None) -> tuple[str, dict[str, str]]:
    """A new trader: their user id and Authorization headers."""
    email = f"{name or 'buyer'}-{uuid.uuid4().hex[:10]}@example.com"
    user_id = make_user(h, email)
    return user_id, bearer(open_session(h, user_id)["access"])


def rows(h: Harness, table: Any, *where: Any) -> list[Any]:
    """Rows of ``table`` matching ``where``, read from the platform's database."""
    with h.platform.engine.connect() as conn:
        return list(conn.execute(select(table).where(*where)))


def payment_outbox(h: Harness, user_id: str) -> list[tuple[str, dict[str, Any], str | None]]:
    """The user's payment events in the outbox: (event type, payload, partition key), in commit order."""
    found = rows(h, outbox, outbox.c.stream == "payments", outbox.c.partition_key == user_id)
    return [(r.event_type, json.loads(r.payload), r.partition_key) for r in sorted(found, key=lambda r: r.id)]


def stored_event(h: Harness, event_id: str) -> Any:
    """The ``payment_events`` row of a provider event id, or ``None``."""
    found = rows(h, payment_events, payment_events.c.provider_event_id == event_id)
    return found[0] if found else None


def grants_of(h: Harness, user_id: str) -> list[Any]:
    return rows(h, challenge_grants, challenge_grants.c.user_id == user_id)


def payments_of(h: Harness, user_id: str) -> list[Any]:
    return rows(h, payments, payments.c.user_id == user_id)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def paid(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, shared_data: Path
) -> Iterator[Harness]:
    """The platform (role ``all``) with ``STRIPE_WEBHOOK_SECRET`` set, on each database, one per module."""
    from argon2 import PasswordHasher

    from smart_trader.gateway import security

    overrides: dict[str, Any] = getattr(request.module, "PLATFORM_SETTINGS", {})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        tmp = tmp_path_factory.mktemp(f"payments-{request.param}")
        settings = {"rate_limits_enabled": False, "stripe_webhook_secret": STRIPE_SECRET, **overrides}
        with custom_platform(request, tmp, shared_data, request.param, **settings) as h:
            yield h
