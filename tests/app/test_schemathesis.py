"""Schemathesis against the OpenAPI schema: no request the schema allows (or nearly allows) gets a 5xx, and
every 4xx is a problem document (``application/problem+json`` with a ``detail``).

The whole platform (role ``all``) runs on SQLite with real BTC/USDT trades imported and a few of them fed, so a
user, an account (holding a filled position) and a working order exist. Each generated request is sent, at
Hypothesis' choice, with a bearer token, an API key, the credentials schemathesis generated or none, and with its
path's ``account_id`` / ``order_id`` and its ``symbol``/``venue`` replaced by real ones or left random — so the
handlers behind the authentication and ownership checks are reached too. SQLite only: the database does not
change 5xx behaviour, and the run must stay short (30 examples per operation, no deadline). ``/ws`` is not an
OpenAPI operation, so it is not generated.

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
from smart_trader.live.feeds import MarketFeed
from smart_trader.settings import Settings
from tests.app.conftest import PASSWORD, QueueFeed, make_settings, real_trades
from tests.conftest import TEST_SECRET_KEY

PROBLEM_JSON = "application/problem+json"
EXAMPLES = int(os.environ.get("SMART_TRADER_FUZZ_EXAMPLES", "30"))  # per operation; raise it to hunt longer


@dataclass(frozen=True)
class Live:
    """The running app and the real resources generated requests may point at."""

    app: Any
    bearer: str
    api_key: str
    account_id: str
    order_ids: tuple[str, ...]


def _ok(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[Live]:
    """The platform on SQLite, its lifespan run by schemathesis' ASGI transport (one event loop for all)."""
    settings_ = make_settings(tmp_path_factory.mktemp("schemathesis"), "sqlite", None)
    service = MarketDataService(settings_.home_dir)
    inst, trades = real_trades(shared_data, service)
    feed = QueueFeed()

    async def build(_svc: MarketDataService) -> MarketFeed:
        return await feed.started()

    app = create_app(settings_, "all", FeedSpec(build, None, "schemathesis feed"))
    try:
        with asgi.get_client(app) as client:
            deadline = time.monotonic() + 10
            while feed.loop is None and time.monotonic() < deadline:
                time.sleep(0.01)
            email = "fuzz@example.com"
            _ok(client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}), 201)
            token = _ok(client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD}), 200)
            bearer = {"Authorization": f"Bearer {token['access_token']}"}
            key = _ok(client.post("/api/v1/api-keys", headers=bearer, json={"name": "fuzz"}), 201)["key"]
            account = {"name": "fuzz", "starting_balance": "100000", "currency": inst.quote_currency}
            acct = _ok(client.post("/api/v1/accounts", headers=bearer, json=account), 201)["id"]
            feed.push(list(trades[:50]))
            orders = f"/api/v1/accounts/{acct}/orders"
            ticket = {"symbol": inst.symbol, "venue": inst.venue, "side": "buy"}
            market = _ok(client.post(orders, headers=bearer, json={**ticket, "type": "market", "qty": "0.01"}), 201)
            limit = {**ticket, "type": "limit", "qty": "0.01", "limit_price": "1000"}  # far below: stays working
            working = _ok(client.post(orders, headers=bearer, json=limit), 201)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # wait until the broker took both, then fill the market order
                states = [_ok(client.get(f"{orders}/{o['id']}", headers=bearer), 200) for o in (market, working)]
                if all(s["status"] != "new" for s in states):
                    break
                time.sleep(0.02)
            feed.push(list(trades[50:100]))
            yield Live(app, token["access_token"], key, acct, (market["id"], working["id"]))
    finally:
        asgi.shutdown_lifespans()


def _openapi() -> dict[str, Any]:
    """The schema of a platform app built (never started) at import: routes do not depend on settings. (Not
    ``schemathesis.pytest.from_fixture``: its lazy schema sets ``node._nodeid``, gone in pytest 9.2.)"""
    settings_ = Settings(secret_key=TEST_SECRET_KEY, environment="test", _env_file=None)
    spec: dict[str, Any] = create_app(settings_, "all").openapi()
    return spec


schema = schemathesis.openapi.from_dict(_openapi())


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


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@schema.parametrize()
@schema.given(data=st.data())
def test_no_server_errors_and_4xx_are_problem_details(case: schemathesis.Case[Any], data: Any, live: Live) -> None:
    _point_at_real_resources(case, live, data)
    credentials = data.draw(st.sampled_from(["bearer", "api-key", "generated", "none"]), label="credentials")
    if credentials != "generated":  # else whatever schemathesis generated for the security schemes is sent
        for name in list(case.headers or {}):
            if name.lower() in ("authorization", "x-api-key"):
                del case.headers[name]
    headers = {
        "bearer": {"Authorization": f"Bearer {live.bearer}"},
        "api-key": {"X-API-Key": live.api_key},
    }.get(credentials, {})
    response = case.call(headers=headers, app=live.app)
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    if 400 <= response.status_code < 500:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith(PROBLEM_JSON), f"{response.status_code} with {content_type}: {response.text}"
        problem = response.json()
        assert isinstance(problem.get("detail"), str) and problem["detail"], problem
        assert problem.get("status") == response.status_code, problem
