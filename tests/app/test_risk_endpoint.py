"""``GET /api/v1/accounts/{id}/risk`` on the running platform (SQLite and PostgreSQL): an account holding a real fill
gets the exposure, leverage and drawdown a hand computation from the fill and the mark gives; the access table's rule
holds (owner and risk managers; another trader 404 as for no account; an administrator 403)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from smart_trader.gateway.access import Role
from tests.app.conftest import Harness, assert_problem
from tests.app.security_support import bearer, login, make_user

D = Decimal
V1 = "/api/v1"


def test_an_account_with_a_real_fill_has_the_exposure_and_leverage_of_the_fill_at_the_mark(platform: Harness) -> None:
    alice = platform.user("alice@example.com")
    acct = platform.account(alice, balance="100000")
    platform.push_trades(20)
    platform.settle()
    order = platform.order(alice, acct, side="buy", type="market", qty="0.02")
    platform.wait_status(alice, acct, order["id"], "accepted")
    platform.push_trades(1)
    platform.wait_status(alice, acct, order["id"], "filled")
    moved = platform.push_trades(30)  # the market moves on: the mark is the last trade
    platform.settle()

    r = platform.client.get(f"{V1}/accounts/{acct}/risk", headers=alice)

    assert r.status_code == 200, r.text
    risk = r.json()
    fills = platform.client.get(f"{V1}/accounts/{acct}/fills", headers=alice).json()
    assert len(fills) == 1 and D(fills[0]["quantity"]) == D("0.02")
    price, commission = D(fills[0]["price"]), D(fills[0]["commission"])
    mark = moved[-1].price
    cash = D(100000) - D("0.02") * price - commission
    exposure = D("0.02") * mark
    equity = cash + exposure
    assert D(risk["cash"]) == cash and D(risk["equity"]) == equity
    assert risk["positions"] == [
        {
            "instrument_id": str(platform.instrument.id),
            "quantity": risk["positions"][0]["quantity"],
            "mark_price": risk["positions"][0]["mark_price"],
            "multiplier": risk["positions"][0]["multiplier"],
            "exposure": risk["positions"][0]["exposure"],
            "gross_exposure": risk["positions"][0]["gross_exposure"],
        }
    ]
    position = risk["positions"][0]
    assert D(position["quantity"]) == D("0.02") and D(position["mark_price"]) == mark
    assert D(position["exposure"]) == exposure == D(position["gross_exposure"])
    assert D(risk["gross_exposure"]) == exposure == D(risk["net_exposure"])
    assert D(risk["leverage"]) == (exposure / equity).quantize(D("1e-12"))
    # money and ratios are decimal strings
    assert all(isinstance(risk[k], str) for k in ("equity", "cash", "gross_exposure", "leverage", "equity_peak"))
    # high-water mark: the starting balance or a higher equity seen since
    peak = D(risk["equity_peak"])
    assert peak >= max(D(100000), equity)
    assert D(risk["drawdown_amount"]) == peak - equity
    assert D(risk["drawdown"]) == ((peak - equity) / peak).quantize(D("1e-12"))
    # a few seconds of market time are one UTC day of snapshots: no return to estimate a VaR from
    assert risk["var_95_historical"] is None and risk["var_95_parametric"] is None
    assert risk["var_returns"] == 0 and "needs at least 20" in risk["var_note"]
    assert risk["limits"]["trading_state"] == "active" and risk["limits"]["account_id"] == acct


def test_only_the_owner_and_risk_managers_see_an_accounts_risk(platform: Harness) -> None:
    alice = platform.user("alice@example.com")
    mallory = platform.user("mallory@example.com")
    acct = platform.account(alice)
    make_user(platform, "rita@example.com", Role.RISK_MANAGER)
    make_user(platform, "adam@example.com", Role.ADMIN)
    rita = bearer(login(platform, "rita@example.com")["access_token"])
    adam = bearer(login(platform, "adam@example.com")["access_token"])
    path = f"{V1}/accounts/{acct}/risk"

    assert platform.client.get(path, headers=alice).status_code == 200
    seen = platform.client.get(path, headers=rita)
    assert seen.status_code == 200 and seen.json()["account_id"] == acct
    assert seen.json()["positions"] == [] and seen.json()["leverage"] == "0E-12"
    theirs = assert_problem(platform.client.get(path, headers=mallory), 404, "no account")
    nowhere = str(uuid.uuid4())
    missing = assert_problem(platform.client.get(f"{V1}/accounts/{nowhere}/risk", headers=mallory), 404)
    assert theirs["detail"].replace(acct, "X") == missing["detail"].replace(nowhere, "X")
    assert_problem(platform.client.get(path, headers=adam), 403, "needs the role")
    assert platform.client.get(path).status_code == 401
