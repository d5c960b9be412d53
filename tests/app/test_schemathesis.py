"""Schemathesis against the OpenAPI schema: no request the schema allows (or nearly allows) gets a 5xx, every status
the platform answers is one the document declares for that operation, and every 4xx is a problem document
(``application/problem+json`` with a ``detail`` and the status).

The whole platform (role ``all``) runs on SQLite with real BTC/USDT trades imported and a few of them fed, so a
trader, a risk manager and an administrator exist, the trader has an account (holding a filled position) and a working
order, and each of them a session and an API key. Every operation is called authenticated, as the user whose role the
operation's rule allows (``gateway/access.py``: a trader for trading and reads, a risk manager for risk controls, an
administrator for administration), so the handlers behind the checks are reached:

- ``test_every_operation_with_a_token``: ``Authorization: Bearer`` on every call (a session of its own for calls that
  end the caller's session: logout, password change);
- ``test_every_operation_with_an_api_key``: ``X-API-Key`` on every call;
- ``test_every_operation_without_valid_credentials``: none, or whatever credentials schemathesis generated (fewer
  examples: refused before the handlers).

Path ``account_id`` / ``order_id`` and ``symbol``/``venue`` are replaced by real ones or left random, at Hypothesis'
choice. Rate limits are off and the login throttle lets every failure through (both have their own tests:
``test_security_owasp.py``, ``tests/gateway``): here they would only answer 429 to the fuzzer. SQLite only: the
database does not change 5xx behaviour, and the run must stay short (30 examples per operation, no deadline). ``/ws``
is not an OpenAPI operation, so it is not generated.

Run: ``.venv/bin/pytest tests/app/test_schemathesis.py -q`` (``SMART_TRADER_FUZZ_EXAMPLES=500`` for a longer hunt).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from smart_trader.app.factory import FeedSpec, create_app
from smart_trader.data.service import MarketDataService
from smart_trader.db.engine import make_engine
from smart_trader.db.migrate import upgrade_to_head
from smart_trader.gateway import users
from smart_trader.gateway.access import ROUTES, Role, Rule
from smart_trader.gateway.security import hash_password
from smart_trader.live.feeds import MarketFeed
from smart_trader.settings import Settings
from tests.app.conftest import PASSWORD, QueueFeed, make_settings, real_trades
from tests.conftest import TEST_SECRET_KEY

PROBLEM_JSON = "application/problem+json"
EXAMPLES = int(os.environ.get("SMART_TRADER_FUZZ_EXAMPLES", "30"))  # per operation; raise it to hunt longer
UNAUTHENTICATED_EXAMPLES = max(5, EXAMPLES // 3)
SESSION_ENDING = {("POST", "/api/v1/auth/logout"), ("POST", "/api/v1/auth/password")}
"""Operations that end the caller's session: called with a session opened for the call."""
EMAILS = {
    Role.TRADER: "fuzz@example.com",
    Role.RISK_MANAGER: "fuzz-risk@example.com",
    Role.ADMIN: "fuzz-admin@example.com",
}


@dataclass
class Live:
    """The running app, each role's credentials, and the real resources generated requests may point at."""

    app: Any
    client: Any
    bearer: dict[Role, str]
    api_key: dict[Role, str]
    account_id: str
    order_ids: tuple[str, ...]

    @property
    def api_key_of_trader(self) -> str:
        return self.api_key[Role.TRADER]


def _ok(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _add_users_with_roles(settings_: Settings) -> None:
    """A risk manager and an administrator, written before the app starts (as ``smart-trader users create`` does:
    registration through the API makes traders only)."""
    engine = make_engine(settings_.resolved_database_url)
    try:
        upgrade_to_head(engine)
        with engine.begin() as conn:
            for role in (Role.RISK_MANAGER, Role.ADMIN):
                users.register(conn, EMAILS[role], hash_password(PASSWORD), (role,))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[Live]:
    """The platform on SQLite, its lifespan run by schemathesis' ASGI transport (one event loop for all)."""
    settings_ = make_settings(tmp_path_factory.mktemp("schemathesis"), "sqlite", None).model_copy(
        update={
            "rate_limits_enabled": False,
            "login_free_failures": 10**9,
            "login_free_failures_ip": 10**9,
            # the payment webhooks answer (signature checks) instead of 503 "not configured"
            "stripe_webhook_secret": "whsec_fuzz",
            "paypal_webhook_id": "FUZZ-WEBHOOK",
        }
    )
    service = MarketDataService(settings_.home_dir)
    inst, trades = real_trades(shared_data, service)
    _add_users_with_roles(settings_)
    feed = QueueFeed()

    async def build(_svc: MarketDataService) -> MarketFeed:
        return await feed.started()

    app = create_app(settings_, "all", FeedSpec(build, None, "schemathesis feed"))
    try:
        with asgi.get_client(app) as client:
            deadline = time.monotonic() + 10
            while feed.loop is None and time.monotonic() < deadline:
                time.sleep(0.01)
            _ok(client.post("/api/v1/auth/register", json={"email": EMAILS[Role.TRADER], "password": PASSWORD}), 201)
            bearer: dict[Role, str] = {}
            keys: dict[Role, str] = {}
            for role, email in EMAILS.items():
                token = _ok(client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD}), 200)
                bearer[role] = token["access_token"]
                headers = {"Authorization": f"Bearer {bearer[role]}"}
                keys[role] = _ok(client.post("/api/v1/api-keys", headers=headers, json={"name": "fuzz"}), 201)["key"]
            trader = {"Authorization": f"Bearer {bearer[Role.TRADER]}"}
            account = {"name": "fuzz", "starting_balance": "100000", "currency": inst.quote_currency}
            acct = _ok(client.post("/api/v1/accounts", headers=trader, json=account), 201)["id"]
            feed.push(list(trades[:50]))
            orders = f"/api/v1/accounts/{acct}/orders"
            ticket = {"symbol": inst.symbol, "venue": inst.venue, "side": "buy"}
            market = _ok(client.post(orders, headers=trader, json={**ticket, "type": "market", "qty": "0.01"}), 201)
            limit = {**ticket, "type": "limit", "qty": "0.01", "limit_price": "1000"}  # far below: stays working
            working = _ok(client.post(orders, headers=trader, json=limit), 201)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # wait until the broker took both, then fill the market order
                states = [_ok(client.get(f"{orders}/{o['id']}", headers=trader), 200) for o in (market, working)]
                if all(s["status"] != "new" for s in states):
                    break
                time.sleep(0.02)
            feed.push(list(trades[50:100]))
            yield Live(app, client, bearer, keys, acct, (market["id"], working["id"]))
    finally:
        asgi.shutdown_lifespans()


def _openapi() -> dict[str, Any]:
    """The schema of a platform app built (never started) at import: routes do not depend on settings. (Not
    ``schemathesis.pytest.from_fixture``: its lazy schema sets ``node._nodeid``, gone in pytest 9.2.)"""
    settings_ = Settings(secret_key=TEST_SECRET_KEY, environment="test", _env_file=None)
    spec: dict[str, Any] = create_app(settings_, "all").openapi()
    return spec


SPEC = _openapi()
schema = schemathesis.openapi.from_dict(SPEC)


def _point_at_real_resources(case: schemathesis.Case[Any], live: Live, data: st.DataObject) -> None:
    """Replace, at Hypothesis' choice (mostly yes), generated ids and instrument names with real ones."""
    path = case.path_parameters
    if path:
        ids = data.draw(st.sampled_from(["real", "real account", "random"]), label="path ids")
        if "account_id" in path and ids != "random":
            path["account_id"] = live.account_id
        if "order_id" in path and ids == "real":
            path["order_id"] = data.draw(st.sampled_from(live.order_ids), label="order_id")
    if data.draw(st.sampled_from([True, True, False]), label="real instrument"):
        for holder in (case.query, case.body):
            if isinstance(holder, dict) and "symbol" in holder and "venue" in holder:
                holder["symbol"], holder["venue"] = "BTC/USDT", "BINANCE"


def _role_for(case: schemathesis.Case[Any]) -> Role:
    """The role that may call the operation (the trader when several may, or when it is public)."""
    rule = ROUTES.get((case.method.upper(), case.operation.path), Rule())
    for role in (Role.TRADER, Role.RISK_MANAGER, Role.ADMIN):
        if role in rule.allowed:
            return role
    return Role.TRADER


def _without_generated_credentials(case: schemathesis.Case[Any]) -> None:
    for name in list(case.headers or {}):
        if name.lower() in ("authorization", "x-api-key"):
            del case.headers[name]


def _fresh_session(live: Live, role: Role) -> str:
    r = live.client.post("/api/v1/auth/token", data={"username": EMAILS[role], "password": PASSWORD})
    return str(_ok(r, 200)["access_token"])


def _declared_statuses(case: schemathesis.Case[Any]) -> set[str]:
    responses = SPEC["paths"][case.operation.path][case.method.lower()].get("responses", {})
    return set(responses)


def _check(case: schemathesis.Case[Any], response: Any) -> None:
    """No 5xx; the status is declared for the operation; a 4xx is a problem document with its status."""
    label = f"{case.method} {case.formatted_path}"
    case.validate_response(response, checks=[not_a_server_error])
    status = response.status_code
    assert status < 500, f"{label}: {status} {response.text[:500]}"
    declared = _declared_statuses(case)
    assert str(status) in declared or f"{str(status)[0]}XX" in declared or "default" in declared, (
        f"{label} answered {status}, which the OpenAPI document does not declare for it "
        f"(declared: {', '.join(sorted(declared))}): {response.text[:300]}"
    )
    if 400 <= status < 500:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith(PROBLEM_JSON), f"{label}: {status} with {content_type}: {response.text}"
        problem = response.json()
        assert isinstance(problem.get("detail"), str) and problem["detail"], problem
        assert problem.get("status") == status, problem


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@schema.parametrize()
@schema.given(data=st.data())
def test_every_operation_with_a_token(case: schemathesis.Case[Any], data: Any, live: Live) -> None:
    _point_at_real_resources(case, live, data)
    _without_generated_credentials(case)
    role = _role_for(case)
    token = _fresh_session(live, role) if (case.method.upper(), case.operation.path) in SESSION_ENDING else None
    response = case.call(headers={"Authorization": f"Bearer {token or live.bearer[role]}"}, app=live.app)
    _check(case, response)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@schema.parametrize()
@schema.given(data=st.data())
def test_every_operation_with_an_api_key(case: schemathesis.Case[Any], data: Any, live: Live) -> None:
    _point_at_real_resources(case, live, data)
    _without_generated_credentials(case)
    response = case.call(headers={"X-API-Key": live.api_key[_role_for(case)]}, app=live.app)
    _check(case, response)


@settings(max_examples=UNAUTHENTICATED_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@schema.parametrize()
@schema.given(data=st.data())
def test_every_operation_without_valid_credentials(case: schemathesis.Case[Any], data: Any, live: Live) -> None:
    _point_at_real_resources(case, live, data)
    if data.draw(st.booleans(), label="send the generated credentials"):
        pass  # whatever schemathesis generated for the security schemes (random tokens and keys)
    else:
        _without_generated_credentials(case)
    response = case.call(app=live.app)
    _check(case, response)
    if not ROUTES.get((case.method.upper(), case.operation.path), Rule(public=True)).public:
        # a request the schema allows is refused for its credentials; one it does not may be refused for that first
        # (FastAPI parses and validates the body before the route's dependencies run: 400, 413, 415 or 422)
        negative = case.meta is not None and case.meta.generation.mode.is_negative
        allowed = {400, 401, 413, 415, 422} if negative else {401}
        assert response.status_code in allowed, f"{case.method} {case.formatted_path}: {response.status_code}"


def test_the_credentials_used_work(live: Live) -> None:
    """The sessions and keys the fuzzing sent are still valid at the end (a 401 from a dead credential would have
    hidden the handlers): each role's token and key reach ``/auth/me`` as that role."""
    for role in Role:
        for headers in ({"Authorization": f"Bearer {live.bearer[role]}"}, {"X-API-Key": live.api_key[role]}):
            r = live.client.get("/api/v1/auth/me", headers=headers)
            assert r.status_code == 200 and r.json()["roles"] == [role.value], (role, r.text)
