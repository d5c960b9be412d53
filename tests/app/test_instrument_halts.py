"""A risk manager halts an instrument for every account (SQLite and PostgreSQL): new orders on it are rejected naming
the halt, whoever places them; after the resume they work again; an unknown instrument is a 422; a trader may not
halt."""

from __future__ import annotations

from tests.app.conftest import Harness, assert_problem
from tests.app.test_risk_limits import decided, risk_manager

V1 = "/api/v1"
BTC = {"symbol": "BTC/USDT", "venue": "BINANCE"}
FAR = {"side": "buy", "type": "limit", "qty": "0.001", "limit_price": "1000"}


def test_a_halted_instrument_rejects_every_accounts_orders_until_it_resumes(platform: Harness) -> None:
    rita = risk_manager(platform)
    alice = platform.user("alice@example.com")
    bob = platform.user("bob@example.com")
    accounts = {"alice": platform.account(alice), "bob": platform.account(bob)}
    platform.push_trades(5)
    platform.settle()
    r = platform.client.post(f"{V1}/risk/instrument-halts", headers=rita, json={**BTC, "reason": "exchange outage"})
    assert r.status_code == 200, r.text
    assert r.json() == [{"instrument_id": "BTC/USDT.BINANCE", "reason": "exchange outage"}]
    for headers, name in ((alice, "alice"), (bob, "bob")):
        order = decided(platform, headers, accounts[name], platform.order(headers, accounts[name], **FAR))
        assert order["status"] == "rejected" and "BTC/USDT.BINANCE is halted" in order["reason"], order
    r = platform.client.post(f"{V1}/risk/instrument-halts/resume", headers=rita, json=BTC)
    assert r.status_code == 200 and r.json() == []
    order = decided(platform, alice, accounts["alice"], platform.order(alice, accounts["alice"], **FAR))
    assert order["status"] == "accepted", order
    # an instrument the platform does not know; a trader's attempt
    r = platform.client.post(
        f"{V1}/risk/instrument-halts", headers=rita, json={"symbol": "NOPE/USDT", "venue": "BINANCE", "reason": "x"}
    )
    assert "NOPE" in assert_problem(r, 422)["detail"]
    r = platform.client.post(f"{V1}/risk/instrument-halts", headers=alice, json={**BTC, "reason": "mine"})
    assert r.status_code == 403
    assert platform.client.get(f"{V1}/risk/instrument-halts", headers=rita).json() == []
