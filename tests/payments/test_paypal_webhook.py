"""The PayPal webhook on the running platform (SQLite and PostgreSQL), verified offline with PayPal's scheme against
a certificate chain the test issues: a signed ``PAYMENT.CAPTURE.COMPLETED`` grants exactly one challenge however
often delivered; a signature by another key, a certificate URL off paypal.com, a certificate from another CA, a stale
transmission time and another webhook's id are each 400 and grant nothing; a full refund revokes the challenge."""

from __future__ import annotations

import copy
import datetime as dt
import tempfile
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from smart_trader.payments.router import certificate_source
from tests.app.conftest import Harness, assert_problem
from tests.payments.conftest import V1, fixture, payment_outbox, payments_of, stored_event, trader
from tests.payments.paypal_support import CERT_URL, issue, signed_headers, write_root

WEBHOOK_ID = "8PT597110X687430LKGECATA"
ISSUER = issue()
STRANGER = issue()  # a chain PayPal never issued: the same name, another root
PLATFORM_SETTINGS = {
    "paypal_webhook_id": WEBHOOK_ID,
    "paypal_cert_ca_file": str(write_root(ISSUER, Path(tempfile.mkdtemp(prefix="paypal-roots-")))),
}
"""Read by the ``paid`` fixture: this module's platform trusts the test root only."""


@pytest.fixture
def certificates(paid: Harness) -> Iterator[dict[str, bytes]]:
    """The certificates PayPal's URLs serve in this test (the one fake: the fetch from PayPal)."""
    served = {CERT_URL: ISSUER.chain_pem}
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return served[url]

    app: Any = paid.client.app
    app.dependency_overrides[certificate_source] = lambda: fetch
    try:
        yield served
    finally:
        app.dependency_overrides.pop(certificate_source, None)


def _capture(user_id: str, size: str = "10000") -> dict[str, Any]:
    event = copy.deepcopy(fixture("paypal_payment_capture_completed.json"))
    event["id"] = f"WH-{uuid.uuid4().hex[:17].upper()}"
    event["resource"]["id"] = uuid.uuid4().hex[:17].upper()
    event["resource"]["custom_id"] = f"{user_id}|ftmo-2step|{size}"
    return event


def _deliver(h: Harness, event: dict[str, Any], sign: Callable[[bytes], dict[str, str]] | None = None) -> Any:
    body = orjson.dumps(event)
    headers = (sign or (lambda b: signed_headers(b, WEBHOOK_ID, ISSUER.leaf_key)))(body)
    return h.client.post(f"{V1}/webhooks/paypal", content=body, headers=headers)


def test_a_signed_capture_delivered_three_times_grants_exactly_one_challenge(
    paid: Harness, certificates: dict[str, bytes]
) -> None:
    user_id, headers = trader(paid)
    event = _capture(user_id)

    answers = [_deliver(paid, event) for _ in range(3)]

    assert [a.json().get("status") for a in answers] == ["granted", "duplicate", "duplicate"], answers[0].text
    [c] = paid.client.get(f"{V1}/challenges", headers=headers).json()
    assert c["program"] == "ftmo-2step" and Decimal(c["account_size"]) == Decimal("10000")
    [payment] = payments_of(paid, user_id)
    assert payment.provider == "paypal" and payment.provider_payment_id == event["resource"]["id"]
    assert payment.amount == Decimal("100.00") and payment.currency == "USD"
    types = [(e[0], e[1]["actor"]) for e in payment_outbox(paid, user_id)]
    assert types == [("payment.succeeded", "paypal"), ("challenge.granted", "paypal")]


def test_forged_or_stale_deliveries_are_400_and_grant_nothing(paid: Harness, certificates: dict[str, bytes]) -> None:
    user_id, headers = trader(paid)
    event = _capture(user_id)
    stranger_url = "https://api.paypal.com/v1/notifications/certs/CERT-stranger"
    certificates[stranger_url] = STRANGER.chain_pem

    other_key = _deliver(paid, event, lambda b: signed_headers(b, WEBHOOK_ID, STRANGER.leaf_key))
    off_paypal = _deliver(
        paid,
        event,
        lambda b: signed_headers(b, WEBHOOK_ID, ISSUER.leaf_key, cert_url="https://paypal.com.example.org/cert"),
    )
    other_ca = _deliver(paid, event, lambda b: signed_headers(b, WEBHOOK_ID, STRANGER.leaf_key, cert_url=stranger_url))
    stale = _deliver(
        paid,
        event,
        lambda b: signed_headers(
            b, WEBHOOK_ID, ISSUER.leaf_key, when=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=400)
        ),
    )
    other_webhook = _deliver(paid, event, lambda b: signed_headers(b, "ANOTHER-WEBHOOK", ISSUER.leaf_key))
    sha1 = _deliver(paid, event, lambda b: signed_headers(b, WEBHOOK_ID, ISSUER.leaf_key, algo="SHA1withRSA"))
    unsigned = paid.client.post(f"{V1}/webhooks/paypal", content=orjson.dumps(event))

    assert_problem(other_key, 400, "does not verify")
    assert_problem(off_paypal, 400, "paypal.com")
    assert_problem(other_ca, 400, "certificate does not verify")
    assert_problem(stale, 400, "300 s")
    assert_problem(other_webhook, 400, "does not verify")
    assert_problem(sha1, 400, "SHA256withRSA")
    assert_problem(unsigned, 400, "PAYPAL-TRANSMISSION-ID")
    assert paid.client.get(f"{V1}/challenges", headers=headers).json() == []
    assert stored_event(paid, event["id"]) is None and payments_of(paid, user_id) == []


def test_a_full_refund_revokes_the_challenge(paid: Harness, certificates: dict[str, bytes]) -> None:
    user_id, headers = trader(paid)
    event = _capture(user_id)
    assert _deliver(paid, event).json()["status"] == "granted"
    refund = copy.deepcopy(fixture("paypal_payment_capture_refunded.json"))
    refund["id"] = f"WH-{uuid.uuid4().hex[:17].upper()}"
    capture_url = f"https://api.sandbox.paypal.com/v2/payments/captures/{event['resource']['id']}"
    refund["resource"]["links"][1]["href"] = capture_url

    r = _deliver(paid, refund)

    assert r.status_code == 200 and r.json()["status"] == "revoked", r.text
    [c] = paid.client.get(f"{V1}/challenges", headers=headers).json()
    assert c["status"] == "revoked" and payments_of(paid, user_id)[0].status == "refunded"


def test_an_unknown_program_is_422_and_stored_as_failed(paid: Harness, certificates: dict[str, bytes]) -> None:
    user_id, headers = trader(paid)
    event = _capture(user_id)
    event["resource"]["custom_id"] = f"{user_id}|no-such-program|10000"

    r = _deliver(paid, event)

    assert_problem(r, 422, "no-such-program")
    assert stored_event(paid, event["id"]).status == "failed"
    assert paid.client.get(f"{V1}/challenges", headers=headers).json() == []
