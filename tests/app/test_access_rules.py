"""Access control generated from the route table: every ``(method, path template)`` the application serves is checked
against its rule in ``gateway/access.py`` (:data:`~smart_trader.gateway.access.ROUTES`), on SQLite and PostgreSQL.

For every route:

- (a) it has a rule, and every rule has a route (a new route without a rule fails here, and a rule left behind by a
  removed route too); every route with a request body has a valid sample body below (a new one without fails);
- (b) without credentials, or with credentials that must not work (forged with another key or the development key
  earlier versions shipped, expired, ``alg: none``, a refresh token, of a user that does not exist, of a logged-out
  session, of a disabled user, a revoked or unknown API key) → 401 with ``WWW-Authenticate``, never a 5xx;
- (c) each role the rule does not allow → 403;
- (d) account routes: a trader on another trader's account → 404 exactly as for an account that does not exist; a
  risk manager on any account → allowed where the rule lists the role in ``any_account``;
- (e) own-resource routes (an API key): someone else's → 404, and the key keeps working;
- and, so the refusals above mean something, every role the rule allows gets a 2xx with the same samples.

Public routes answer without credentials. The WebSocket's channels (:data:`~smart_trader.gateway.access.WS_CHANNELS`)
get the same treatment: another user's ``orders``/``accounts`` → "account not found" for a trader, subscribed for a
risk manager; a role a channel does not allow → an error; no or bad credentials → closed with 1008.

One platform per database serves the whole module (users of every role, accounts, orders and API keys made once);
rate limits are off here (``test_security_owasp.py`` tests them): this module sends a few hundred requests from one
address on purpose.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from smart_trader.app.factory import create_app
from smart_trader.gateway.access import ROUTES, WS_CHANNELS, Role, Rule, check_routes, route_methods
from smart_trader.settings import Settings
from tests.app.conftest import PASSWORD, Harness
from tests.app.security_support import (
    api_key,
    assert_401,
    assert_refused,
    attacker_tokens,
    bearer,
    custom_platform,
    login,
    make_user,
    open_session,
    ws_connect,
    ws_json,
    ws_open_closed_at_once,
    ws_request,
)
from tests.conftest import TEST_SECRET_KEY
from tests.notifications.support import seed_notification, webhook_endpoint

V1 = "/api/v1"
Route = tuple[str, str]


# -- the application's routes, as collected ---------------------------------------------------------------------------


def _built_app() -> FastAPI:
    """The platform's application built (never started): its routes do not depend on settings."""
    app: FastAPI = create_app(Settings(secret_key=TEST_SECRET_KEY, environment="test", _env_file=None), "all")
    return app


def openapi_operations(app: FastAPI) -> set[Route]:
    """Every operation of the app's OpenAPI document as (METHOD, path template)."""
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops if m in methods}


APP = _built_app()
SERVED_BY_TABLE_HELPER = set(route_methods(APP.routes))
SERVED = sorted(SERVED_BY_TABLE_HELPER | openapi_operations(APP))
"""What the tests are generated from: ``route_methods(app.routes)`` (the helper ``check_routes`` uses), and every
operation the OpenAPI document declares — so a route the helper does not see still gets its tests."""
HTTP_ROUTES = [r for r in SERVED if r[0] != "WS"]


def rule_of(route: Route) -> Rule:
    rule = ROUTES.get(route)
    if rule is None:
        pytest.fail(f"{route[0]} {route[1]} has no access rule in gateway/access.py ROUTES")
    return rule


def _ids(routes: list[Any]) -> list[str]:
    return [" ".join(str(x) for x in r) for r in routes]


NON_PUBLIC = [r for r in HTTP_ROUTES if not (r in ROUTES and ROUTES[r].public)]
PUBLIC = [r for r in HTTP_ROUTES if r in ROUTES and ROUTES[r].public]
FORBIDDEN_ROLES = [(r, role) for r in NON_PUBLIC for role in Role if r in ROUTES and role not in ROUTES[r].allowed]
ALLOWED_ROLES = [(r, role) for r in NON_PUBLIC for role in Role if role in ROUTES.get(r, Rule()).allowed]
TRADER_ACCOUNT_ROUTES = [r for r in NON_PUBLIC if ROUTES.get(r, Rule()).account and Role.TRADER in ROUTES[r].roles]
ANY_ACCOUNT_ROUTES = [r for r in NON_PUBLIC if Role.RISK_MANAGER in ROUTES.get(r, Rule()).any_account]
OWN_RESOURCE = [(r, role) for r in NON_PUBLIC for role in Role if ROUTES.get(r, Rule()).own_resource
                and role in ROUTES[r].allowed]  # fmt: skip


# -- samples: bodies, queries, path parameters -------------------------------------------------------------------------

ORDER = {
    "symbol": "BTC/USDT",
    "venue": "BINANCE",
    "side": "buy",
    "type": "limit",
    "qty": "0.001",
    "limit_price": "1000",
}


def custom_program(program_id: str) -> dict[str, Any]:
    """A valid custom challenge program (the JSON shape of a preset YAML file)."""
    return {
        "firm": "Example",
        "id": program_id,
        "name": "Example 1-Step",
        "currency": "USDT",
        "sizes": ["10000"],
        "tz": "America/New_York",
        "reset_time": "17:00",
        "sources": [{"id": "S1", "url": "https://academy.ftmo.com/lesson/maximum-daily-loss"}],
        "verified_on": "2026-12-02",
        "phases": [{"name": "Evaluation", "profit_target": {"pct": 8}}],
    }


def _strong_password() -> str:
    return f"new-{secrets.token_hex(8)}-horse"


BODIES: dict[Route, Callable[[World, str], dict[str, Any]]] = {
    # (world, acting user's name) → keyword arguments of the request (json= or data=)
    ("POST", f"{V1}/auth/register"): lambda w, a: {
        "json": {"email": f"new-{uuid.uuid4().hex[:12]}@example.com", "password": PASSWORD}
    },
    ("POST", f"{V1}/auth/token"): lambda w, a: {"data": {"username": "tess@example.com", "password": PASSWORD}},
    ("POST", f"{V1}/auth/refresh"): lambda w, a: {
        "json": {"refresh_token": open_session(w.h, w.ids["tess"])["refresh"]}
    },
    ("POST", f"{V1}/auth/password"): lambda w, a: {
        "json": {"current_password": PASSWORD, "new_password": _strong_password()}
    },
    ("POST", f"{V1}/api-keys"): lambda w, a: {"json": {"name": "sample"}},
    ("POST", f"{V1}/accounts"): lambda w, a: {
        "json": {"name": "sample", "starting_balance": "1000", "currency": "USDT"}
    },
    ("POST", f"{V1}/accounts/{{account_id}}/orders"): lambda w, a: {"json": dict(ORDER)},
    ("POST", f"{V1}/challenges/programs"): lambda w, a: {"json": custom_program(f"custom-{uuid.uuid4().hex[:8]}")},
    ("POST", f"{V1}/challenges"): lambda w, a: {
        "json": {"program": "ftmo-2step", "account_size": "10000", "currency": "USDT"}
    },
    ("PUT", f"{V1}/accounts/{{account_id}}/limits"): lambda w, a: {
        "json": {"max_open_orders": 1000, "max_orders_per_second": 1000}
    },
    ("POST", f"{V1}/accounts/{{account_id}}/halt"): lambda w, a: {"json": {"reason": "access-rules test"}},
    ("POST", f"{V1}/risk/instrument-halts"): lambda w, a: {
        "json": {"symbol": "BTC/USDT", "venue": "BINANCE", "reason": "access-rules test"}
    },
    ("POST", f"{V1}/risk/instrument-halts/resume"): lambda w, a: {"json": {"symbol": "BTC/USDT", "venue": "BINANCE"}},
    ("PATCH", f"{V1}/admin/users/{{user_id}}"): lambda w, a: {"json": {"roles": ["trader"]}},
    # notifications
    ("PUT", f"{V1}/notifications/preferences"): lambda w, a: {"json": {"email": ["challenge_breached"]}},
    ("POST", f"{V1}/webhook-endpoints"): lambda w, a: {"json": {"url": "https://hooks.example.com/smart-trader"}},
    # payments: the webhooks' credential is the provider's signature (tests/payments signs real event shapes)
    ("POST", f"{V1}/webhooks/stripe"): lambda w, a: {"json": {"id": "evt_sample", "object": "event", "type": "x"}},
    ("POST", f"{V1}/webhooks/paypal"): lambda w, a: {"json": {"id": "WH-SAMPLE", "event_type": "X", "resource": {}}},
    ("POST", f"{V1}/admin/challenges/grants"): lambda w, a: {
        "json": {"user_id": w.ids["tess"], "program": "ftmo-2step", "account_size": "10000", "reason": "access test"}
    },
}
"""A valid body of every route that takes one (``test_every_route_with_a_body_has_a_sample``)."""

QUERIES: dict[Route, dict[str, str]] = {
    ("GET", f"{V1}/market/bars"): {"symbol": "BTC/USDT", "venue": "BINANCE", "timeframe": "1m"},
    ("GET", f"{V1}/market/quote"): {"symbol": "BTC/USDT", "venue": "BINANCE"},
    ("GET", f"{V1}/leaderboards"): {"program": "ftmo-2step", "period": "all"},
}
"""Values of every required query parameter (``test_every_required_query_parameter_has_a_sample``)."""

PATH_PARAMETERS = {"account_id", "order_id", "key_id", "user_id", "challenge_id", "notification_id", "endpoint_id"}
OWN_RESOURCES: dict[str, Callable[[World, dict[str, str], str], str]] = {
    # path parameter of an own-resource route → a new resource of that kind for the caller (headers, user name)
    "key_id": lambda w, headers, actor: str(api_key(w.h, headers, "to revoke")["id"]),
    "notification_id": lambda w, headers, actor: seed_notification(w.h, w.ids[actor]),
    "endpoint_id": lambda w, headers, actor: webhook_endpoint(w.h, headers),
}


def own_parameter(route: Route) -> str:
    """The path parameter naming the caller's own resource in an own-resource route."""
    (name,) = [p for p in re.findall(r"{(\w+)}", route[1]) if p in OWN_RESOURCES]
    return name


SESSION_ENDING = {("POST", f"{V1}/auth/logout"), ("POST", f"{V1}/auth/password")}
"""Routes that end the caller's sessions: called by a user made for the call."""

ROLE_USER = {Role.TRADER: "alice", Role.RISK_MANAGER: "rita", Role.ADMIN: "adam"}


def _operation(route: Route) -> dict[str, Any] | None:
    op: dict[str, Any] | None = APP.openapi()["paths"].get(route[1], {}).get(route[0].lower())
    return op


def _has_body(route: Route) -> bool:
    op = _operation(route)
    return op is not None and "requestBody" in op


# -- the world: one platform per database, with users of every role and their resources --------------------------------


@dataclass
class World:
    h: Harness
    ids: dict[str, str] = field(default_factory=dict)  # user name → id
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # user name → Authorization
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # user name → an API key (id, key)
    accounts: dict[str, str] = field(default_factory=dict)  # trader name → account id
    orders: dict[str, str] = field(default_factory=dict)  # trader name → a working order id
    challenges: dict[str, str] = field(default_factory=dict)  # trader name → a challenge id
    notifications: dict[str, str] = field(default_factory=dict)  # user name → a notification of theirs
    endpoints: dict[str, str] = field(default_factory=dict)  # user name → a webhook endpoint of theirs
    refused: dict[str, dict[str, str]] = field(default_factory=dict)  # credentials that must get 401

    def request(
        self,
        route: Route,
        headers: dict[str, str],
        actor: str,
        *,
        account_id: str | None = None,
        order_id: str | None = None,
        key_id: str | None = None,
        user_id: str | None = None,
        challenge_id: str | None = None,
        notification_id: str | None = None,
        endpoint_id: str | None = None,
    ) -> Any:
        """Call ``route`` with its samples, the path naming alice's account and order, ``actor``'s API key and tess
        (the users admins act on) unless given."""
        method, template = route
        values = {
            "account_id": account_id or self.accounts["alice"],
            "order_id": order_id or self.orders["alice"],
            "key_id": key_id or self.keys[actor]["id"],
            "user_id": user_id or self.ids["tess"],
            "challenge_id": challenge_id or self.challenges.get("alice", "none"),
            "notification_id": notification_id or self.notifications.get(actor, "none"),
            "endpoint_id": endpoint_id or self.endpoints.get(actor, "none"),
        }
        for name in re.findall(r"{(\w+)}", template):
            if name not in PATH_PARAMETERS:
                pytest.fail(f"{method} {template}: no sample value for the path parameter {name!r}")
        kwargs: dict[str, Any] = {}
        if _has_body(route):
            sample = BODIES.get(route)
            if sample is None:
                pytest.fail(f"{method} {template} takes a body and BODIES has no sample for it")
            kwargs = sample(self, actor)
        return self.h.client.request(
            method, template.format(**values), headers=headers, params=QUERIES.get(route), **kwargs
        )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, shared_data: Path
) -> Iterator[World]:
    from argon2 import PasswordHasher

    from smart_trader.gateway import security

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        tmp = tmp_path_factory.mktemp(f"access-{request.param}")
        with custom_platform(request, tmp, shared_data, request.param, rate_limits_enabled=False) as h:
            yield _build_world(h)


def _build_world(h: Harness) -> World:
    w = World(h)
    for name, role in (("alice", Role.TRADER), ("mallory", Role.TRADER), ("rita", Role.RISK_MANAGER),
                       ("adam", Role.ADMIN), ("tess", Role.TRADER), ("dora", Role.TRADER)):  # fmt: skip
        w.ids[name] = make_user(h, f"{name}@example.com", role)
        w.headers[name] = bearer(login(h, f"{name}@example.com")["access_token"])  # through the login route
        w.keys[name] = api_key(h, w.headers[name], f"{name}'s key")
    for trader in ("alice", "mallory"):
        w.accounts[trader] = h.account(w.headers[trader])
        body = {"program": "ftmo-2step", "account_size": "10000", "currency": "USDT"}
        r = h.client.post(f"{V1}/challenges", headers=w.headers[trader], json=body)
        assert r.status_code == 201, r.text
        w.challenges[trader] = r.json()["id"]
    for name in ("alice", "mallory", "rita", "adam"):  # a notification and a webhook endpoint of each role's user
        w.notifications[name] = seed_notification(h, w.ids[name])
        w.endpoints[name] = webhook_endpoint(h, w.headers[name])
    h.push_trades(50)  # a market: quotes, marks
    h.settle()
    for trader in ("alice", "mallory"):
        w.orders[trader] = h.order(w.headers[trader], w.accounts[trader], **ORDER)["id"]
        h.wait_status(w.headers[trader], w.accounts[trader], w.orders[trader], "accepted")
    # credentials that worked once and must not any more
    revoked = api_key(h, w.headers["alice"], "revoked")
    assert h.client.delete(f"{V1}/api-keys/{revoked['id']}", headers=w.headers["alice"]).status_code == 200
    ended = login(h, "alice@example.com")["access_token"]
    assert h.client.post(f"{V1}/auth/logout", headers=bearer(ended)).status_code == 204
    r = h.client.patch(f"{V1}/admin/users/{w.ids['dora']}", headers=w.headers["adam"], json={"disabled": True})
    assert r.status_code == 200, r.text
    w.refused = {"no credentials": {}, **{k: bearer(t) for k, t in attacker_tokens(w.ids["alice"]).items()}}
    w.refused.update({
        "empty bearer": {"Authorization": "Bearer "},
        "basic scheme": {"Authorization": "Basic YWxpY2VAZXhhbXBsZS5jb206Y29ycmVjdA=="},
        "unknown API key": {"X-API-Key": "st_" + secrets.token_urlsafe(30)},
        "revoked API key": {"X-API-Key": revoked["key"]},
        "logged-out session": bearer(ended),
        "disabled user's token": w.headers["dora"],
        "disabled user's API key": {"X-API-Key": w.keys["dora"]["key"]},
    })  # fmt: skip
    return w


# -- (a) the table and the routes agree --------------------------------------------------------------------------------


def test_every_route_has_a_rule_and_every_rule_a_route() -> None:
    """``route_methods(app.routes)`` — what ``check_routes`` refuses to build an app without — sees every route the
    app serves, and the table has no rule for a route that does not exist."""
    served = set(route_methods(APP.routes))
    without_rule = sorted(served - ROUTES.keys())
    without_route = sorted(ROUTES.keys() - served)
    assert not without_rule, f"routes without an access rule: {without_rule}"
    assert not without_route, f"rules of routes route_methods(app.routes) does not see: {without_route}"


def test_every_documented_operation_has_a_rule() -> None:
    """The OpenAPI document (independent of ``route_methods``) lists no operation the table has no rule for."""
    assert sorted(openapi_operations(APP) - ROUTES.keys()) == []


def test_the_running_app_serves_the_routes_the_tests_were_generated_from(world: World) -> None:
    running: Any = world.h.client.app
    assert set(route_methods(running.routes)) | openapi_operations(running) == set(SERVED)


def test_check_routes_refuses_an_included_route_without_a_rule() -> None:
    """A router included the usual way (``app.include_router``) with a route the table lacks stops the build."""
    app = _built_app()
    sneaky = APIRouter(prefix=V1)

    @sneaky.get("/sneaky")
    async def handler() -> dict[str, str]:
        return {}

    app.include_router(sneaky)
    with pytest.raises(RuntimeError, match="GET /api/v1/sneaky"):
        check_routes(app.routes)


def test_every_route_with_a_body_has_a_sample() -> None:
    missing = [f"{m} {p}" for m, p in HTTP_ROUTES if _has_body((m, p)) and (m, p) not in BODIES]
    assert missing == [], "add a valid sample body to BODIES for: " + ", ".join(missing)
    stale = [f"{m} {p}" for m, p in BODIES if (m, p) not in HTTP_ROUTES]
    assert stale == [], f"samples of routes that do not exist: {stale}"


def test_every_required_query_parameter_has_a_sample() -> None:
    missing = []
    for route in HTTP_ROUTES:
        for p in (_operation(route) or {}).get("parameters", []):
            if p["in"] == "query" and p.get("required") and p["name"] not in QUERIES.get(route, {}):
                missing.append(f"{route[0]} {route[1]} ?{p['name']}")
    assert missing == []


# -- (b) credentials that must not work --------------------------------------------------------------------------------


@pytest.mark.parametrize("route", NON_PUBLIC, ids=_ids(NON_PUBLIC))
def test_no_or_bad_credentials_are_401(world: World, route: Route) -> None:
    rule_of(route)
    wrong = []
    for name, headers in world.refused.items():
        r = world.request(route, headers, "alice")
        if r.status_code != 401:
            wrong.append(f"{name}: {r.status_code} {r.text[:200]}")
            continue
        assert_401(r)
    assert wrong == [], f"{route[0]} {route[1]}: " + "; ".join(wrong)


# -- (c) roles the rule does not allow ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "role"), FORBIDDEN_ROLES, ids=_ids(FORBIDDEN_ROLES))
def test_a_role_the_rule_does_not_allow_is_403(world: World, route: Route, role: Role) -> None:
    """Alice is the owner of the account named (a trader refused on her own account's risk controls)."""
    actor = ROLE_USER[role]
    for headers in (world.headers[actor], {"X-API-Key": world.keys[actor]["key"]}):
        r = world.request(route, headers, actor)
        assert_refused(r, 403, "needs the role")


# -- (d) accounts ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", TRADER_ACCOUNT_ROUTES, ids=_ids(TRADER_ACCOUNT_ROUTES))
def test_a_trader_on_another_traders_account_is_404_as_if_it_did_not_exist(world: World, route: Route) -> None:
    alice_account = world.accounts["alice"]
    nowhere = str(uuid.uuid4())
    for headers in (world.headers["mallory"], {"X-API-Key": world.keys["mallory"]["key"]}):
        theirs = assert_refused(world.request(route, headers, "mallory", account_id=alice_account), 404)
        missing = assert_refused(world.request(route, headers, "mallory", account_id=nowhere), 404)
        assert theirs["detail"].replace(alice_account, "X") == missing["detail"].replace(nowhere, "X")
    # and nothing happened to alice's account: her working order is still there, untouched
    r = world.h.client.get(
        f"{V1}/accounts/{alice_account}/orders/{world.orders['alice']}", headers=world.headers["alice"]
    )
    assert r.status_code == 200 and r.json()["status"] == "accepted" and not r.json()["cancel_requested"], r.text


@pytest.mark.parametrize("route", ANY_ACCOUNT_ROUTES, ids=_ids(ANY_ACCOUNT_ROUTES))
def test_a_risk_manager_reaches_every_account(world: World, route: Route) -> None:
    for owner in ("alice", "mallory"):
        r = world.request(route, world.headers["rita"], "rita", account_id=world.accounts[owner],
                          order_id=world.orders[owner])  # fmt: skip
        _restore(world, route, owner)
        assert 200 <= r.status_code < 300, f"{route}: {r.status_code} {r.text[:300]}"
        if r.headers.get("content-type", "").startswith("application/json") and isinstance(r.json(), dict):
            assert r.json().get("account_id", world.accounts[owner]) == world.accounts[owner]


def _restore(world: World, route: Route, owner: str) -> None:
    """Undo a risk control the test applied (a halted account would reject the other tests' orders)."""
    if route == ("POST", f"{V1}/accounts/{{account_id}}/halt"):
        r = world.h.client.post(f"{V1}/accounts/{world.accounts[owner]}/resume", headers=world.headers["rita"])
        assert r.status_code == 200, r.text
    if route == ("POST", f"{V1}/risk/instrument-halts"):  # the whole platform's BTC/USDT: lift it for the others
        body = {"symbol": "BTC/USDT", "venue": "BINANCE"}
        r = world.h.client.post(f"{V1}/risk/instrument-halts/resume", headers=world.headers["rita"], json=body)
        assert r.status_code == 200, r.text


# -- every allowed role gets through (the refusals above are then about access, not about bad samples) -----------------


@pytest.mark.parametrize(("route", "role"), ALLOWED_ROLES, ids=_ids(ALLOWED_ROLES))
def test_every_role_the_rule_allows_gets_a_2xx(world: World, route: Route, role: Role) -> None:
    h = world.h
    actor = ROLE_USER[role]
    headers = world.headers[actor]
    values: dict[str, str] = {}
    if route in SESSION_ENDING:  # a user of the role made for this call
        actor = f"throwaway-{uuid.uuid4().hex[:8]}"
        world.ids[actor] = make_user(h, f"{actor}@example.com", role)
        headers = {"Authorization": open_session(h, world.ids[actor])["Authorization"]}
        world.keys[actor] = {"id": "unused"}
    if ROUTES[route].own_resource:
        param = own_parameter(route)
        values[param] = OWN_RESOURCES[param](world, headers, actor)
    if route == ("DELETE", f"{V1}/accounts/{{account_id}}/orders/{{order_id}}"):
        values["order_id"] = h.order(headers, world.accounts["alice"], **ORDER)["id"]
    r = world.request(route, headers, actor, **values)
    _restore(world, route, "alice")
    assert 200 <= r.status_code < 300, f"{route[0]} {route[1]} as {role}: {r.status_code} {r.text[:300]}"


@pytest.mark.parametrize("route", PUBLIC, ids=_ids(PUBLIC))
def test_public_routes_need_no_credentials(world: World, route: Route) -> None:
    if route == ("GET", "/metrics"):  # public with its own guard: loopback clients (test_security_owasp.py: API8)
        app = world.h.client.app
        assert TestClient(app, client=("127.0.0.1", 40000)).get("/metrics").status_code == 200
        assert TestClient(app, client=("203.0.113.9", 40000)).get("/metrics").status_code == 403
        return
    if route[1].startswith(f"{V1}/webhooks/"):  # public with its own guard: the provider's signature (tests/payments)
        r = world.request(route, {}, "alice")  # this platform configures no provider: the door is shut
        assert r.status_code == 503 and "not configured" in r.json()["detail"], r.text
        return
    r = world.request(route, {}, "alice")
    assert 200 <= r.status_code < 300, f"{route}: {r.status_code} {r.text[:300]}"


# -- (e) own resources -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "role"), OWN_RESOURCE, ids=_ids(OWN_RESOURCE))
def test_someone_elses_resource_is_404(world: World, route: Route, role: Role) -> None:
    actor = ROLE_USER[role]
    victim = "mallory" if actor == "alice" else "alice"
    param = own_parameter(route)
    victim_key = world.keys[victim]
    victims = {"key_id": victim_key["id"], "notification_id": world.notifications[victim],
               "endpoint_id": world.endpoints[victim]}  # fmt: skip
    r = world.request(route, world.headers[actor], actor, **{param: victims[param]})
    theirs = assert_refused(r, 404)
    nowhere = str(uuid.uuid4())
    missing = assert_refused(world.request(route, world.headers[actor], actor, **{param: nowhere}), 404)
    assert theirs["detail"].replace(victims[param], "X") == missing["detail"].replace(nowhere, "X")
    # and the victim's resource is untouched
    client, victim_headers = world.h.client, world.headers[victim]
    if param == "key_id":
        assert client.get(f"{V1}/auth/me", headers={"X-API-Key": victim_key["key"]}).status_code == 200
        listed = client.get(f"{V1}/api-keys", headers=victim_headers).json()
        assert victim_key["id"] in {k["id"] for k in listed}
    elif param == "notification_id":
        unread = client.get(f"{V1}/notifications", headers=victim_headers, params={"unread": "true"}).json()
        assert victims[param] in {n["id"] for n in unread["items"]}
    else:
        listed = client.get(f"{V1}/webhook-endpoints", headers=victim_headers).json()
        assert victims[param] in {e["id"] for e in listed}


# -- the WebSocket's channels ------------------------------------------------------------------------------------------

CHANNEL_SAMPLES: dict[str, Callable[[World, str], dict[str, Any]]] = {
    "quotes": lambda w, account: {"symbol": "BTC/USDT", "venue": "BINANCE"},
    "trades": lambda w, account: {"symbol": "BTC/USDT", "venue": "BINANCE"},
    "bars": lambda w, account: {"symbol": "BTC/USDT", "venue": "BINANCE", "timeframe": "1m"},
    "orders": lambda w, account: {"account_id": account},
    "accounts": lambda w, account: {"account_id": account},
    "challenges": lambda w, account: {"account_id": account},
    "notifications": lambda w, account: {},  # always the caller's own
}
CHANNEL_ROLES = [(c, role) for c in sorted(WS_CHANNELS) for role in Role]


def test_every_channel_has_a_sample() -> None:
    from smart_trader.gateway.ws import CHANNELS

    assert set(CHANNEL_SAMPLES) == set(WS_CHANNELS) == set(CHANNELS)
    assert ROUTES[("WS", "/ws")].allowed == frozenset(Role)


def _subscribe(world: World, actor: str, channel: str, account: str, by_key: bool = False) -> dict[str, Any]:
    credential = world.keys[actor]["key"] if by_key else world.headers[actor]["Authorization"].removeprefix("Bearer ")
    with ws_connect(world.h, f"/ws?token={credential}") as ws:
        return ws_request(ws, {"op": "subscribe", "channel": channel, **CHANNEL_SAMPLES[channel](world, account)})


@pytest.mark.parametrize(("channel", "role"), CHANNEL_ROLES, ids=_ids(CHANNEL_ROLES))
def test_channel_access_by_role(world: World, channel: str, role: Role) -> None:
    rule = WS_CHANNELS[channel]
    actor = ROLE_USER[role]
    for by_key in (False, True):
        reply = _subscribe(world, actor, channel, world.accounts["alice"], by_key)
        if role in rule.allowed:
            assert reply["type"] == "subscribed", reply
            if rule.account:
                assert world.accounts["alice"] in reply["topic"]
        else:
            assert reply["type"] == "error" and "needs the role" in reply["message"], reply


@pytest.mark.parametrize("channel", sorted(c for c, r in WS_CHANNELS.items() if r.account))
def test_another_users_account_channel_is_not_found_for_a_trader(world: World, channel: str) -> None:
    theirs = _subscribe(world, "mallory", channel, world.accounts["alice"])
    missing = _subscribe(world, "mallory", channel, str(uuid.uuid4()))
    assert theirs == {"type": "error", "message": "account not found", "id": theirs.get("id")}, theirs
    assert missing["message"] == theirs["message"]  # existence is not revealed
    assert _subscribe(world, "mallory", channel, world.accounts["mallory"])["type"] == "subscribed"


@pytest.mark.parametrize("channel", sorted(c for c, r in WS_CHANNELS.items() if Role.RISK_MANAGER in r.any_account))
def test_a_risk_manager_subscribes_to_any_accounts_channel(world: World, channel: str) -> None:
    for owner in ("alice", "mallory"):
        reply = _subscribe(world, "rita", channel, world.accounts[owner])
        assert reply["type"] == "subscribed" and world.accounts[owner] in reply["topic"], reply


def test_the_websocket_without_or_with_bad_credentials_is_closed_1008(world: World) -> None:
    h = world.h
    refused = {name: headers for name, headers in world.refused.items() if name != "no credentials"}
    for name, headers in refused.items():
        token = headers.get("X-API-Key") or headers.get("Authorization", "").removeprefix("Bearer ").removeprefix(
            "Basic "
        )
        if not token.strip():
            continue
        closed = ws_open_closed_at_once(h, f"/ws?token={token}")
        assert closed.get("code") == 1008, (name, closed)
        closed = ws_open_closed_at_once(h, "/ws", orjson.dumps({"op": "auth", "token": token}).decode())
        assert closed.get("code") == 1008, (name, closed)
    # no token at all: the first message must authenticate; a subscription instead closes the socket
    closed = ws_open_closed_at_once(h, "/ws", '{"op": "subscribe", "channel": "quotes", "symbol": "BTC/USDT"}')
    assert closed.get("code") == 1008 and "authentication required" in closed.get("reason", ""), closed


def test_a_websocket_authenticated_by_message_works_like_one_by_query(world: World) -> None:
    token = world.headers["mallory"]["Authorization"].removeprefix("Bearer ")
    with ws_connect(world.h, "/ws") as ws:
        ws.send_text(orjson.dumps({"op": "auth", "token": token}).decode())
        assert ws_json(ws) == {"type": "authenticated"}
        reply = ws_request(ws, {"op": "subscribe", "channel": "orders", "account_id": world.accounts["alice"]})
        assert reply["message"] == "account not found", reply
