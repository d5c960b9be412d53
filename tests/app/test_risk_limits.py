"""A risk manager's pre-trade limits on the running platform (SQLite and PostgreSQL): ``PUT /accounts/{id}/limits``
stores order quantity, notional, position and price collar limits, ``GET`` returns them, and the account's next order
meets them through its session's risk checks (``risk/checks.py``, wired by ``live/accounts.py``) — rejected with a
reason naming the limit, while an order within the limits is accepted; clearing the limits lets the larger order
through again. Bad values are refused with a 422 naming the field."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from smart_trader.execution.limits import OrderLimits
from smart_trader.gateway.access import Role
from smart_trader.risk.checks import RiskChecks
from tests.app.conftest import Harness
from tests.app.security_support import bearer, login, make_user

D = Decimal
V1 = "/api/v1"
FAR = {"side": "buy", "type": "limit", "limit_price": "1000"}  # far below the market: it rests


def risk_manager(platform: Harness) -> dict[str, str]:
    make_user(platform, "rita@example.com", Role.RISK_MANAGER)
    return bearer(login(platform, "rita@example.com")["access_token"])


def decided(platform: Harness, headers: dict[str, str], account: str, order: dict[str, Any]) -> dict[str, Any]:
    """The order once the runtime took it (accepted or rejected)."""
    return platform.wait_order(headers, account, order["id"], lambda o: o["status"] != "new")


def test_a_risk_managers_order_quantity_limit_rejects_a_larger_order_and_lets_a_smaller_one_through(
    platform: Harness,
) -> None:
    alice = platform.user("alice@example.com")
    acct = platform.account(alice)
    rita = risk_manager(platform)
    platform.push_trades(5)
    platform.settle()
    path = f"{V1}/accounts/{acct}/limits"

    r = platform.client.put(path, headers=rita, json={"max_order_quantity": "0.0100", "max_open_orders": 50})

    assert r.status_code == 200, r.text
    assert r.json()["max_order_quantity"] == "0.01" and r.json()["max_open_orders"] == 50
    got = platform.client.get(path, headers=alice).json()  # the owner reads them too
    assert got["max_order_quantity"] == "0.01" and got["max_order_notional"] is None
    assert got["max_position"] is None and got["price_collar_bps"] is None

    larger = decided(platform, alice, acct, platform.order(alice, acct, qty="0.02", **FAR))
    smaller = decided(platform, alice, acct, platform.order(alice, acct, qty="0.01", **FAR))

    assert larger["status"] == "rejected"
    assert larger["reason"] == "order quantity 0.02 exceeds the limit 0.01 (risk limit max_order_quantity)"
    assert smaller["status"] == "accepted"
    book = platform.platform.runtime.books[acct]
    assert isinstance(book.risk, RiskChecks) and book.risk in book.session.checks
    assert book.broker.limits == OrderLimits()  # enforced once, by the session: the broker has no limits of its own

    # halt and resume keep the limits; clearing them (a PUT without them) lets the larger order through
    assert platform.client.post(f"{V1}/accounts/{acct}/halt", headers=rita, json={"reason": "check"}).status_code == 200
    halted = decided(platform, alice, acct, platform.order(alice, acct, qty="0.001", **FAR))
    assert halted["status"] == "rejected" and halted["reason"] == "account halted: check"
    resumed = platform.client.post(f"{V1}/accounts/{acct}/resume", headers=rita)
    assert resumed.status_code == 200 and resumed.json()["max_order_quantity"] == "0.01"
    again = decided(platform, alice, acct, platform.order(alice, acct, qty="0.02", **FAR))
    assert again["status"] == "rejected" and "max_order_quantity" in again["reason"]

    cleared = platform.client.put(path, headers=rita, json={})
    assert cleared.status_code == 200 and cleared.json()["max_order_quantity"] is None
    assert decided(platform, alice, acct, platform.order(alice, acct, qty="0.02", **FAR))["status"] == "accepted"


def test_notional_position_and_collar_limits_reach_the_next_order(platform: Harness) -> None:
    alice = platform.user("alice@example.com")
    acct = platform.account(alice)
    rita = risk_manager(platform)
    last = platform.push_trades(5)[-1].price
    platform.settle()
    limits = {"max_order_notional": "500", "max_position": "0.05", "price_collar_bps": "100"}
    r = platform.client.put(f"{V1}/accounts/{acct}/limits", headers=rita, json=limits)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in limits} == limits

    collar = last * D("0.98")  # 200 bps below the last price: beyond the 100 bps collar
    far = decided(platform, alice, acct, platform.order(alice, acct, side="buy", type="limit", qty="0.001",
                                                        limit_price=str(collar.quantize(D("0.01")))))  # fmt: skip
    near_price = str((last * D("0.995")).quantize(D("0.01")))
    dear = decided(platform, alice, acct, platform.order(alice, acct, side="buy", type="limit", qty="0.02",
                                                         limit_price=near_price))  # fmt: skip
    small = decided(platform, alice, acct, platform.order(alice, acct, side="buy", type="limit", qty="0.001",
                                                          limit_price=near_price))  # fmt: skip

    assert far["status"] == "rejected" and "(risk limit price_collar_bps)" in far["reason"], far
    assert dear["status"] == "rejected" and "exceeds the limit 500 (risk limit max_order_notional)" in dear["reason"]
    assert small["status"] == "accepted", small


BAD = [
    ("max_order_quantity", "0"),
    ("max_order_quantity", "-1"),
    ("max_order_notional", "NaN"),
    ("max_position", "abc"),
    ("price_collar_bps", "0"),
    ("price_collar_bps", "2000000"),
]


def test_a_bad_limit_is_refused_naming_the_field(platform: Harness) -> None:
    alice = platform.user("alice@example.com")
    acct = platform.account(alice)
    rita = risk_manager(platform)

    for field, value in BAD:
        r = platform.client.put(f"{V1}/accounts/{acct}/limits", headers=rita, json={field: value})
        assert r.status_code == 422, (field, value, r.text)
        assert field in r.text, (field, value, r.text)
        assert platform.client.get(f"{V1}/accounts/{acct}/limits", headers=alice).json()[field] is None
