"""Helpers of the security tests (``test_access_rules.py``, ``test_security_owasp.py``): users with roles made in the
database (``gateway.users.register`` through the platform's writer), sessions opened without the login route (so
setting a scene costs no auth-class request and no rate-limit budget), credentials an attacker would try (forged,
expired, of an unknown user, ``alg: none``), WebSocket reads with a deadline, and platforms with chosen settings on
both databases."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import jwt
import orjson
import pytest

from smart_trader.data.service import MarketDataService
from smart_trader.gateway import users
from smart_trader.gateway.access import Role
from smart_trader.gateway.security import TokenCodec, hash_password
from smart_trader.settings import Settings
from tests.app.conftest import PASSWORD, Harness, make_settings, real_trades, start_client
from tests.conftest import TEST_SECRET_KEY

T = TypeVar("T")
NS = 1_000_000_000
PROBLEM_JSON = "application/problem+json"
OTHER_KEY = secrets.token_hex(32)  # a strong key the platform does not know (an attacker's)


# -- running things on the app's event loop ----------------------------------------------------------------------


def on_loop(h: Harness, fn: Callable[..., Any], *args: Any) -> Any:
    """Await ``fn(*args)`` (a coroutine function) on the running app's event loop."""
    portal = h.client.portal
    assert portal is not None, "the app is not running"
    return portal.call(fn, *args)


def write(h: Harness, job: Callable[[Any], T]) -> T:
    """Run ``job(conn)`` through the platform's group-commit writer (the only way the platform writes)."""
    result: T = on_loop(h, h.platform.writer.run, job)
    return result


# -- users and credentials -------------------------------------------------------------------------------------


def make_user(h: Harness, email: str, *roles: Role, password: str = PASSWORD) -> str:
    """Register ``email`` with ``roles`` (default trader) in the database, as ``smart-trader users create`` does;
    returns the user id."""
    password_hash = hash_password(password)
    chosen = roles or (Role.TRADER,)
    user: users.User = write(h, lambda c: users.register(c, email, password_hash, chosen))
    return str(user.id)


def open_session(h: Harness, user_id: str) -> dict[str, str]:
    """A session of ``user_id`` opened as the login route does (without calling it): ``access``, ``refresh``,
    ``sid`` and ``headers`` (Authorization)."""
    sid = str(uuid.uuid4())
    pair = h.platform.tokens.issue(user_id, sid)
    write(h, lambda c: users.open_session(c, sid, user_id, pair.refresh_jti, pair.refresh_expires_s * NS))
    return {
        "access": pair.access_token,
        "refresh": pair.refresh_token,
        "sid": sid,
        "Authorization": f"Bearer {pair.access_token}",
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def auth_headers(session: dict[str, str]) -> dict[str, str]:
    return {"Authorization": session["Authorization"]}


def login(h: Harness, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """``POST /auth/token``; asserts 200 and returns the token response."""
    r = h.client.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return dict(r.json())


def api_key(h: Harness, headers: dict[str, str], name: str = "bot") -> dict[str, Any]:
    """``POST /api-keys``; asserts 201 and returns the key (``id``, ``key``...)."""
    r = h.client.post("/api/v1/api-keys", headers=headers, json={"name": name})
    assert r.status_code == 201, r.text
    return dict(r.json())


def claims_token(key: str, **overrides: Any) -> str:
    """An HS256 access token signed with ``key``; claims of a random user unless overridden (``exp`` relative
    seconds may be given as ``ttl``)."""
    now = int(time.time())
    ttl = overrides.pop("ttl", 900)
    claims = {
        "sub": str(uuid.uuid4()),
        "typ": "access",
        "sid": str(uuid.uuid4()),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + ttl,
        **overrides,
    }
    return jwt.encode(claims, key, algorithm="HS256")


def unsigned_token(**claims: Any) -> str:
    """An ``alg: none`` token (no signature) with access claims of ``claims``."""
    now = int(time.time())
    body = {"typ": "access", "sid": str(uuid.uuid4()), "jti": uuid.uuid4().hex, "iat": now, "exp": now + 900, **claims}
    return jwt.encode(body, None, algorithm="none")  # type: ignore[arg-type]


def attacker_tokens(victim_id: str) -> dict[str, str]:
    """Access tokens that must all be refused (401) for the victim's user id: signed with another strong key, with
    the development key earlier versions shipped, expired, unsigned, of an unknown user (signed with the platform's
    own key), a refresh token presented as an access token, and garbage."""
    from smart_trader.settings import LEGACY_DEFAULT_SECRET_KEY

    codec = TokenCodec(TEST_SECRET_KEY, (TEST_SECRET_KEY,), 900, 3600)
    unknown = codec.issue(str(uuid.uuid4()), str(uuid.uuid4()))
    as_refresh = codec.issue(victim_id, str(uuid.uuid4())).refresh_token
    return {
        "forged with another key": claims_token(OTHER_KEY, sub=victim_id),
        "forged with the old default key": claims_token(LEGACY_DEFAULT_SECRET_KEY, sub=victim_id),
        "expired": claims_token(TEST_SECRET_KEY, sub=victim_id, iat=int(time.time()) - 3600, ttl=-1800),
        "alg none": unsigned_token(sub=victim_id),
        "unknown user": unknown.access_token,
        "refresh token as access token": as_refresh,
        "garbage": "not.a.jwt",
    }


# -- problem documents ------------------------------------------------------------------------------------------


def assert_refused(r: Any, status: int, *words: str) -> dict[str, Any]:
    """``r`` is a problem document with ``status`` (never a 5xx) whose detail names every one of ``words``."""
    assert r.status_code == status, f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:400]}"
    assert r.headers["content-type"].startswith(PROBLEM_JSON), r.headers["content-type"]
    body = dict(r.json())
    assert body["status"] == status and body["detail"], body
    for w in words:
        assert w.lower() in body["detail"].lower(), (w, body["detail"])
    return body


def assert_401(r: Any) -> None:
    """401 problem with a ``WWW-Authenticate`` challenge."""
    assert_refused(r, 401)
    assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), dict(r.headers)


# -- WebSockets ---------------------------------------------------------------------------------------------------


@contextmanager
def ws_connect(h: Harness, url: str) -> Iterator[Any]:
    """``h.client.websocket_connect(url)`` (the platform's WebSocket on the app's event loop)."""
    with h.client.websocket_connect(url) as ws:
        yield ws


def ws_receive(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The next ASGI message the server sent on a TestClient WebSocket (``websocket.send`` or ``websocket.close``),
    failing after ``timeout`` seconds instead of blocking for ever."""

    async def receive() -> dict[str, Any]:
        with anyio.fail_after(timeout):
            message: dict[str, Any] = await ws._send_rx.receive()  # the session's own queue (TestClient internals)
            return message

    try:
        result: dict[str, Any] = ws.portal.call(receive)
    except TimeoutError:
        pytest.fail(f"the server sent nothing on the WebSocket within {timeout} s")
    return result


def ws_json(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The next JSON message; fails on a close."""
    message = ws_receive(ws, timeout)
    assert message["type"] == "websocket.send", f"expected a message, got {message}"
    body: dict[str, Any] = orjson.loads(message.get("text") or message["bytes"])
    return body


def ws_request(ws: Any, request: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Send ``request`` with an id and return the reply carrying that id (updates in between are skipped)."""
    rid = uuid.uuid4().hex
    ws.send_text(orjson.dumps({**request, "id": rid}).decode())
    deadline = time.monotonic() + timeout
    while True:
        reply = ws_json(ws, max(0.1, deadline - time.monotonic()))
        if reply.get("id") == rid:
            return reply
        if time.monotonic() > deadline:
            pytest.fail(f"no reply to {request}")


def ws_wait_closed(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    """Poll (ping, read) until the server closes the socket; returns the close message (``code``, ``reason``).
    Fails when it is still answering after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        ws.send_text('{"op": "ping"}')
        while True:
            message = ws_receive(ws, max(0.1, deadline - time.monotonic()))
            if message["type"] == "websocket.close":
                return message
            text = message.get("text") or ""
            if '"pong"' in text:
                break
        if time.monotonic() > deadline:
            pytest.fail(f"the WebSocket was still open {timeout} s later")
        time.sleep(0.02)


def ws_open_closed_at_once(h: Harness, url: str, first: str | None = None) -> dict[str, Any]:
    """Connect to ``url`` (sending ``first`` as the first message, if given) and return how the server closed it;
    fails when it does not close within 5 s."""
    with ws_connect(h, url) as ws:
        if first is not None:
            ws.send_text(first)
        deadline = time.monotonic() + 5
        while True:
            message = ws_receive(ws, max(0.1, deadline - time.monotonic()))
            if message["type"] == "websocket.close":
                return message
            if time.monotonic() > deadline:
                pytest.fail(f"{url}: still open, last message {message}")


# -- platforms with chosen settings ----------------------------------------------------------------------------------


@contextmanager
def custom_platform(
    request: pytest.FixtureRequest, tmp_path: Path, shared_data: Path, database: str, **overrides: Any
) -> Iterator[Harness]:
    """The whole platform (role ``all``, real BTC/USDT trades driven by the test) on ``database`` with ``overrides``
    applied to the test settings (small rate limits, a quick login backoff...)."""
    pg = request.getfixturevalue("postgres_url") if database == "postgres" else None
    settings = make_settings(tmp_path, database, pg).model_copy(update=overrides)
    unknown = sorted(set(overrides) - set(Settings.model_fields))
    assert not unknown, f"no such settings: {unknown}"
    inst, trades = real_trades(shared_data, MarketDataService(settings.home_dir))
    client, feed = start_client(settings)
    h = Harness(client, feed, inst, trades, database, settings)
    try:
        yield h
    finally:
        h.client.__exit__(None, None, None)


def poll(condition: Callable[[], Any], what: str, timeout: float = 10.0, every: float = 0.02) -> Any:
    """``condition()``'s first truthy value, polled until ``timeout`` seconds (then the test fails naming ``what``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(every)
