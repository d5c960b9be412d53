"""The Stripe webhook on the running platform (SQLite and PostgreSQL): a signed ``checkout.session.completed`` grants
exactly one challenge however often it is delivered; a bad signature, a stale timestamp, a malformed body get 400 and
an unknown program, size or user 422, each granting nothing; a full refund or a dispute revokes a challenge not yet
passed and its account can no longer trade; every payment, grant and revocation is an outbox event."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import orjson
from prometheus_client import REGISTRY

from smart_trader.challenges.store import save_program
from smart_trader.risk.store import HALTED, limits_of
from tests.app.conftest import Harness, assert_problem
from tests.app.security_support import write
from tests.app.test_access_rules import custom_program
from tests.payments.conftest import (
    V1,
    checkout_event,
    deliver_stripe,
    grants_of,
    payment_outbox,
    payments_of,
    reversal_event,
    stored_event,
    trader,
)

D = Decimal


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_signed_checkout_delivered_three_times_grants_exactly_one_challenge(paid: Harness) -> None:
    user_id, headers = trader(paid)
    event = checkout_event(user_id, "ftmo-2step", "10000")
    before = _metric("payments_total", provider="stripe")

    answers = [deliver_stripe(paid, event) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert [a.json()["status"] for a in answers] == ["granted", "duplicate", "duplicate"]
    challenges = paid.client.get(f"{V1}/challenges", headers=headers).json()
    assert len(challenges) == 1
    c = challenges[0]
    assert c["program"] == "ftmo-2step" and D(c["account_size"]) == D("10000") and c["status"] == "active"
    assert c["id"] == answers[0].json()["challenge_id"]
    account = paid.client.get(f"{V1}/accounts/{c['account_id']}", headers=headers).json()
    assert D(account["cash"]) == D("10000")
    [payment] = payments_of(paid, user_id)  # 15500 minor units of USD, exactly
    assert payment.amount == D("155.00") and payment.currency == "USD" and payment.status == "succeeded"
    assert payment.provider_payment_id == event["data"]["object"]["payment_intent"]
    [grant] = grants_of(paid, user_id)
    assert grant.challenge_id == c["id"] and grant.payment_id == payment.id and grant.granted_by == "stripe"
    stored = stored_event(paid, event["id"])
    assert stored.status == "processed" and stored.attempts == 1 and stored.type == "checkout.session.completed"
    events = payment_outbox(paid, user_id)
    assert [e[0] for e in events] == ["payment.succeeded", "challenge.granted"]
    assert all(p["actor"] == "stripe" and key == user_id for _, p, key in events)
    assert events[0][1]["amount"] == "155.00" and events[0][1]["currency"] == "USD"
    assert events[1][1]["challenge_id"] == c["id"] and events[1][1]["account_id"] == c["account_id"]
    assert _metric("payments_total", provider="stripe") == before + 1


def test_three_concurrent_deliveries_of_one_event_grant_exactly_one_challenge(paid: Harness) -> None:
    user_id, headers = trader(paid)
    event = checkout_event(user_id)

    with ThreadPoolExecutor(3) as pool:  # Stripe may retry while the first delivery is still being applied
        answers = list(pool.map(lambda _: deliver_stripe(paid, event), range(3)))

    assert sorted(a.json()["status"] for a in answers) == ["duplicate", "duplicate", "granted"], [
        a.text for a in answers
    ]
    assert len(paid.client.get(f"{V1}/challenges", headers=headers).json()) == 1
    assert len(payments_of(paid, user_id)) == 1 and len(grants_of(paid, user_id)) == 1


def test_a_bad_signature_a_stale_timestamp_or_a_malformed_body_is_400_and_grants_nothing(paid: Harness) -> None:
    user_id, headers = trader(paid)
    event = checkout_event(user_id)
    body = orjson.dumps(event)
    before = _metric("payment_failures_total", provider="stripe", reason="signature")

    wrong_secret = deliver_stripe(paid, event, secret="whsec_" + "0" * 48)
    stale = deliver_stripe(paid, event, t=int(time.time()) - 301)  # the default tolerance: 300 s
    unsigned = deliver_stripe(paid, event, header=None)
    garbled = deliver_stripe(paid, event, header="v1=abc")
    tampered = deliver_stripe(paid, body.replace(b'"10000"', b'"200000"'), header=deliver_header(body))
    not_json = deliver_stripe(paid, b"{not json")
    not_an_event = deliver_stripe(paid, orjson.dumps({"object": "event", "id": "evt_x"}))

    assert_problem(wrong_secret, 400, "does not verify")
    assert_problem(stale, 400, "300 s old")
    assert_problem(unsigned, 400, "Stripe-Signature")
    assert_problem(garbled, 400, "Stripe-Signature")
    assert_problem(tampered, 400, "does not verify")
    assert_problem(not_json, 400, "not a Stripe event")
    assert_problem(not_an_event, 400, "not a Stripe event")
    assert paid.client.get(f"{V1}/challenges", headers=headers).json() == []
    assert stored_event(paid, event["id"]) is None and payments_of(paid, user_id) == []
    assert _metric("payment_failures_total", provider="stripe", reason="signature") >= before + 4
    assert _metric("payment_failures_total", provider="stripe", reason="stale") >= 1


def deliver_header(body: bytes) -> str:
    from tests.payments.conftest import stripe_signature

    return stripe_signature(body)


def test_an_unknown_program_size_or_user_is_422_stored_as_failed_and_grants_nothing(paid: Harness) -> None:
    user_id, headers = trader(paid)
    program_id = f"paid-{user_id[:8]}"
    unknown_program = checkout_event(user_id, program_id, "10000")
    unknown_size = checkout_event(user_id, "ftmo-2step", "12345")
    unknown_user = checkout_event("00000000-0000-0000-0000-000000000000")
    before = _metric("payment_failures_total", provider="stripe", reason="unknown-program")

    first = deliver_stripe(paid, unknown_program)
    again = deliver_stripe(paid, unknown_program)  # Stripe retries a non-2xx: still failing, counted once
    size = deliver_stripe(paid, unknown_size)
    nobody = deliver_stripe(paid, unknown_user)

    assert_problem(first, 422, program_id, "ftmo-2step")
    assert_problem(again, 422, program_id)
    assert_problem(size, 422, "12345", "10000")
    assert_problem(nobody, 422, "no user")
    assert paid.client.get(f"{V1}/challenges", headers=headers).json() == []
    assert payments_of(paid, user_id) == [] and grants_of(paid, user_id) == []
    failed = stored_event(paid, unknown_program["id"])
    assert failed.status == "failed" and failed.attempts == 2 and program_id in failed.reason
    types = [e[0] for e in payment_outbox(paid, user_id)]
    assert types == ["payment.failed", "payment.failed"]  # one per failed event (program, size), not per delivery
    assert _metric("payment_failures_total", provider="stripe", reason="unknown-program") == before + 1

    # the cause fixed (the program defined), Stripe's next retry of the same event grants it
    write(paid, lambda c: save_program(c, {**custom_program(program_id), "sizes": ["10000"]}, None))
    retried = deliver_stripe(paid, unknown_program)

    assert retried.status_code == 200 and retried.json()["status"] == "granted", retried.text
    assert [c["program"] for c in paid.client.get(f"{V1}/challenges", headers=headers).json()] == [program_id]
    assert stored_event(paid, unknown_program["id"]).status == "processed"


def _granted(h: Harness) -> tuple[str, dict[str, str], dict[str, Any], dict[str, Any]]:
    user_id, headers = trader(h)
    event = checkout_event(user_id)
    r = deliver_stripe(h, event)
    assert r.status_code == 200 and r.json()["status"] == "granted", r.text
    challenge = h.client.get(f"{V1}/challenges", headers=headers).json()[0]
    return user_id, headers, event, challenge


ORDER = {
    "symbol": "BTC/USDT",
    "venue": "BINANCE",
    "side": "buy",
    "type": "limit",
    "qty": "0.001",
    "limit_price": "1000",
}


def test_a_full_refund_revokes_a_challenge_not_yet_passed_and_its_account_can_no_longer_trade(paid: Harness) -> None:
    user_id, headers, event, challenge = _granted(paid)
    account_id = challenge["account_id"]
    paid.push_trades(20)  # a market: the runtime's clock runs, the challenge starts
    paid.settle()
    working = paid.order(headers, account_id, **ORDER)  # it trades before the refund
    paid.wait_status(headers, account_id, working["id"], "accepted")
    refund = reversal_event("stripe_charge_refunded.json", event["data"]["object"]["payment_intent"])

    r = deliver_stripe(paid, refund)
    again = deliver_stripe(paid, refund)

    assert r.status_code == 200 and r.json()["status"] == "revoked", r.text
    assert r.json()["challenge_id"] == challenge["id"] and again.json()["status"] == "duplicate"
    now = paid.client.get(f"{V1}/challenges/{challenge['id']}", headers=headers).json()
    assert now["status"] == "revoked"
    refused = paid.client.post(f"{V1}/accounts/{account_id}/orders", headers=headers, json=ORDER)
    assert_problem(refused, 409, "revoked")
    with paid.platform.engine.connect() as conn:
        assert limits_of(conn, account_id).trading_state == HALTED  # the runtime refuses its orders too
    [payment] = payments_of(paid, user_id)
    [grant] = grants_of(paid, user_id)
    assert payment.status == "refunded" and grant.status == "revoked" and "refunded" in grant.revoke_reason
    events = payment_outbox(paid, user_id)
    assert [e[0] for e in events] == ["payment.succeeded", "challenge.granted", "challenge.revoked", "payment.refunded"]
    revoked = events[2][1]
    assert revoked["actor"] == "stripe" and revoked["account_id"] == account_id
    assert revoked["previous_status"] == "active"
    assert events[3][1]["challenge_revoked"] is True and events[3][1]["amount"] == "155.00"


def test_a_partial_refund_is_recorded_and_keeps_the_challenge(paid: Harness) -> None:
    user_id, headers, event, challenge = _granted(paid)
    refund = reversal_event("stripe_charge_refunded.json", event["data"]["object"]["payment_intent"])
    refund["data"]["object"].update({"refunded": False, "amount_refunded": 5000})

    r = deliver_stripe(paid, refund)

    assert r.status_code == 200 and r.json()["status"] == "recorded", r.text
    assert paid.client.get(f"{V1}/challenges/{challenge['id']}", headers=headers).json()["status"] == "active"
    assert payments_of(paid, user_id)[0].status == "partially_refunded"
    last = payment_outbox(paid, user_id)[-1]
    assert last[0] == "payment.refunded" and last[1]["amount"] == "50.00" and last[1]["challenge_revoked"] is False


def test_a_dispute_delivered_before_its_purchase_revokes_the_challenge_once_the_purchase_arrives(
    paid: Harness,
) -> None:
    user_id, headers = trader(paid)
    event = checkout_event(user_id)
    dispute = reversal_event("stripe_charge_dispute_created.json", event["data"]["object"]["payment_intent"])

    early = deliver_stripe(paid, dispute)  # Stripe does not promise the order of events
    purchase = deliver_stripe(paid, event)

    assert early.status_code == 200 and early.json()["status"] == "pending", early.text
    assert purchase.status_code == 200 and purchase.json()["status"] == "granted", purchase.text
    [c] = paid.client.get(f"{V1}/challenges", headers=headers).json()
    assert c["status"] == "revoked"
    assert payments_of(paid, user_id)[0].status == "disputed"
    assert stored_event(paid, dispute["id"]).status == "processed"
    assert deliver_stripe(paid, dispute).json()["status"] == "duplicate"


def test_an_event_type_not_acted_on_is_200_and_stored_as_ignored(paid: Harness) -> None:
    user_id, _ = trader(paid)
    event = checkout_event(user_id)
    event["type"] = "customer.created"

    r = deliver_stripe(paid, event)

    assert r.status_code == 200 and r.json()["status"] == "ignored", r.text
    assert stored_event(paid, event["id"]).status == "ignored" and payments_of(paid, user_id) == []


def test_a_checkout_completed_unpaid_waits_for_its_async_payment(paid: Harness) -> None:
    user_id, headers = trader(paid)
    event = checkout_event(user_id)
    event["data"]["object"]["payment_status"] = "unpaid"
    succeeded = checkout_event(user_id)
    succeeded["type"] = "checkout.session.async_payment_succeeded"
    succeeded["data"]["object"]["payment_intent"] = event["data"]["object"]["payment_intent"]

    unpaid = deliver_stripe(paid, event)
    assert unpaid.json()["status"] == "ignored"
    assert paid.client.get(f"{V1}/challenges", headers=headers).json() == []
    later = deliver_stripe(paid, succeeded)

    assert later.json()["status"] == "granted", later.text
    assert len(paid.client.get(f"{V1}/challenges", headers=headers).json()) == 1
