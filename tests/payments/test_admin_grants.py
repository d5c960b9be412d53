"""An administrator grants a challenge by hand (SQLite and PostgreSQL): the challenge and its account open for the
user, the grant records who and why, and the ``challenge.granted`` event names the administrator as actor; other
roles are refused; a user, program or size that does not exist is a 422 and opens nothing."""

from __future__ import annotations

from decimal import Decimal

from smart_trader.gateway.access import Role
from tests.app.conftest import Harness, assert_problem
from tests.app.security_support import bearer, make_user, open_session
from tests.payments.conftest import V1, grants_of, payment_outbox, trader

GRANTS = f"{V1}/admin/challenges/grants"


def _admin(h: Harness) -> tuple[str, dict[str, str]]:
    admin_id = make_user(h, f"admin-{Role.ADMIN}-{id(h)}-{len(h.users)}@example.com", Role.ADMIN)
    h.users[admin_id] = {}
    return admin_id, bearer(open_session(h, admin_id)["access"])


def test_an_admin_grants_a_challenge_by_hand_and_the_grant_is_audited(paid: Harness) -> None:
    admin_id, admin = _admin(paid)
    user_id, headers = trader(paid)
    body = {
        "user_id": user_id,
        "program": "ftmo-2step",
        "account_size": "25000",
        "reason": "contest prize",
        "currency": "USDT",
    }

    r = paid.client.post(GRANTS, headers=admin, json=body)

    assert r.status_code == 201, r.text
    grant = r.json()
    assert grant["user_id"] == user_id and grant["granted_by"] == admin_id and grant["source"] == "admin"
    [c] = paid.client.get(f"{V1}/challenges", headers=headers).json()
    assert c["id"] == grant["challenge_id"] and Decimal(c["account_size"]) == Decimal("25000")
    assert c["account_id"] == grant["account_id"] and c["status"] == "active"
    [stored] = grants_of(paid, user_id)
    assert stored.reason == "contest prize" and stored.payment_id is None and stored.granted_by == admin_id
    [(event_type, payload, key)] = payment_outbox(paid, user_id)
    assert event_type == "challenge.granted" and key == user_id
    assert payload["actor"] == admin_id and payload["source"] == "admin" and payload["reason"] == "contest prize"


def test_only_admins_grant_and_a_grant_of_what_does_not_exist_is_422(paid: Harness) -> None:
    _, admin = _admin(paid)
    user_id, headers = trader(paid)
    risk_id = make_user(paid, f"risk-{user_id[:8]}@example.com", Role.RISK_MANAGER)
    body = {"user_id": user_id, "program": "ftmo-2step", "account_size": "10000", "reason": "goodwill"}

    as_trader = paid.client.post(GRANTS, headers=headers, json=body)
    as_risk = paid.client.post(GRANTS, headers=bearer(open_session(paid, risk_id)["access"]), json=body)
    no_user = paid.client.post(GRANTS, headers=admin, json={**body, "user_id": "no-such-user"})
    no_program = paid.client.post(GRANTS, headers=admin, json={**body, "program": "nope"})
    no_size = paid.client.post(GRANTS, headers=admin, json={**body, "account_size": "12345"})
    no_reason = paid.client.post(GRANTS, headers=admin, json={k: v for k, v in body.items() if k != "reason"})

    assert_problem(as_trader, 403, "admin")
    assert_problem(as_risk, 403, "admin")
    assert_problem(no_user, 422, "no-such-user")
    assert_problem(no_program, 422, "nope", "ftmo-2step")
    assert_problem(no_size, 422, "12345")
    assert_problem(no_reason, 422)
    assert paid.client.get(f"{V1}/challenges", headers=headers).json() == []
    assert grants_of(paid, user_id) == [] and payment_outbox(paid, user_id) == []
