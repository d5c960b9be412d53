"""Accounts through the API: opening, listing, valuation fields, validation, and isolation between users."""

from __future__ import annotations

from decimal import Decimal

from tests.app.conftest import Harness, assert_problem

ACCOUNTS = "/api/v1/accounts"


def test_a_new_account_is_all_cash_with_no_pnl(platform: Harness) -> None:
    h = platform.user()
    r = platform.client.post(
        ACCOUNTS, headers=h, json={"name": "main", "starting_balance": "100000", "currency": "USDT"}
    )
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["name"] == "main" and a["currency"] == "USDT" and a["account_type"] == "cash"
    start = Decimal("100000")
    for k in ("starting_balance", "cash", "equity", "buying_power", "equity_peak"):
        assert Decimal(a[k]) == start, k
    for k in ("realized_pnl", "unrealized_pnl", "commissions", "drawdown"):
        assert Decimal(a[k]) == 0, k
    got = platform.client.get(f"{ACCOUNTS}/{a['id']}", headers=h)
    assert got.status_code == 200 and got.json() == a  # what was stored is what was answered
    for sub in ("orders", "positions", "fills", "equity"):
        r = platform.client.get(f"{ACCOUNTS}/{a['id']}/{sub}", headers=h)
        assert r.status_code == 200 and r.json() == [], sub


def test_a_json_number_balance_keeps_its_decimal_text(platform: Harness) -> None:
    h = platform.user()
    r = platform.client.post(ACCOUNTS, headers=h, json={"name": "n", "starting_balance": 1234.1, "currency": "USDT"})
    assert r.status_code == 201, r.text
    assert Decimal(r.json()["cash"]) == Decimal("1234.1")  # not 1234.099999999999909050529822707176208496...


def test_list_shows_only_the_callers_accounts_oldest_first(platform: Harness) -> None:
    alice, bob = platform.user("alice@example.com"), platform.user("bob@example.com")
    a1 = platform.account(alice)
    b1 = platform.account(bob, balance="5000")
    a2 = platform.account(alice, balance="250.5")
    r = platform.client.get(ACCOUNTS, headers=alice)
    assert r.status_code == 200
    assert [a["id"] for a in r.json()] == [a1, a2]
    assert [Decimal(a["cash"]) for a in r.json()] == [Decimal("100000"), Decimal("250.5")]
    r = platform.client.get(ACCOUNTS, headers=bob)
    assert [a["id"] for a in r.json()] == [b1]


def test_another_users_account_is_404_everywhere_and_untouched(platform: Harness) -> None:
    alice, mallory = platform.user("alice@example.com"), platform.user("mallory@example.com")
    acct = platform.account(alice)
    order = platform.order(alice, acct, side="buy", type="limit", qty="0.001", limit_price="1000")
    platform.wait_status(alice, acct, order["id"], "accepted")
    platform.account(mallory)  # mallory has an account of her own: being a customer grants nothing
    base = f"{ACCOUNTS}/{acct}"
    ticket = {"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy", "type": "market", "qty": "0.001"}
    attempts = [
        ("GET", base, None),
        ("GET", f"{base}/orders", None),
        ("GET", f"{base}/orders/{order['id']}", None),
        ("GET", f"{base}/positions", None),
        ("GET", f"{base}/fills", None),
        ("GET", f"{base}/equity", None),
        ("POST", f"{base}/orders", ticket),
        ("DELETE", f"{base}/orders/{order['id']}", None),
    ]
    missing = "00000000-0000-4000-8000-000000000000"
    for method, path, body in attempts:
        r = platform.client.request(method, path, headers=mallory, json=body)
        problem = assert_problem(r, 404, "no account")
        # exactly what a non-existent account answers: nothing tells mallory the id exists
        r2 = platform.client.request(method, path.replace(acct, missing), headers=mallory, json=body)
        assert assert_problem(r2, 404)["detail"] == problem["detail"].replace(acct, missing), (method, path)
    # alice's order is still working and is the only one
    assert platform.wait_status(alice, acct, order["id"], "accepted")["cancel_requested"] is False
    r = platform.client.get(f"{base}/orders", headers=alice)
    assert [o["id"] for o in r.json()] == [order["id"]]


def test_invalid_account_bodies_are_422_naming_the_field(platform: Harness) -> None:
    h = platform.user()
    good = {"name": "x", "starting_balance": "1000", "currency": "USDT"}
    cases = [
        ({**good, "starting_balance": "-5"}, "starting_balance"),
        ({**good, "starting_balance": "0"}, "starting_balance"),
        ({**good, "starting_balance": "abc"}, "starting_balance"),
        ({**good, "starting_balance": "NaN"}, "starting_balance"),
        ({**good, "starting_balance": "Infinity"}, "starting_balance"),
        ({**good, "starting_balance": "1e16"}, "starting_balance"),
        ({k: v for k, v in good.items() if k != "currency"}, "currency"),
        ({**good, "currency": "US D"}, "currency"),
        ({**good, "account_type": "hedge-fund"}, "account_type"),
        ({**good, "leverage": 100}, "leverage"),
        ({**good, "name": ""}, "name"),
    ]
    for body, field in cases:
        r = platform.client.post(ACCOUNTS, headers=h, json=body)
        problem = assert_problem(r, 422, field)
        assert any(field in e["loc"] for e in problem["errors"]), (body, problem)
    r = platform.client.post(ACCOUNTS, headers={**h, "content-type": "application/json"}, content=b"{not json")
    assert_problem(r, 422)
    assert platform.client.get(ACCOUNTS, headers=h).json() == []  # none of them opened an account


def test_a_user_opens_at_most_max_accounts_per_user_accounts(platform: Harness) -> None:
    """The open-order limit is per account: a cap on accounts keeps one user from multiplying it."""
    headers = platform.user("many@example.com")
    most = platform.settings.max_accounts_per_user
    for _ in range(most):
        platform.account(headers)
    r = platform.client.post(
        "/api/v1/accounts", headers=headers, json={"name": "one more", "starting_balance": "1", "currency": "USDT"}
    )
    assert_problem(r, 409, f"at most {most} accounts")
    assert len(platform.client.get("/api/v1/accounts", headers=headers).json()) == most
    # another user is not affected
    assert platform.account(platform.user("other@example.com"))
