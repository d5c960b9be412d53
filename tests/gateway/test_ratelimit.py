"""Rate limits (gateway/ratelimit.py): route classes, the sliding window on a controlled clock, the middleware's
429 problem documents and headers, per-user limits after authentication, WebSocket refusals, and the same on the
real Redis at 127.0.0.1:6379 (skipped when it is down, failed when ``CI`` is set: tests/conftest.py ``redis_url``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.types import Message

from smart_trader.app.factory import create_app
from smart_trader.core.errors import InvalidInputError
from smart_trader.gateway import problems
from smart_trader.gateway.access import ROUTES, Principal
from smart_trader.gateway.problems import ProblemError
from smart_trader.gateway.ratelimit import (
    STATE_KEY,
    LeanMemoryStorage,
    RateLimiter,
    RateLimitMiddleware,
    RouteClasses,
    check_limits,
    check_principal,
    redis_storage,
)
from smart_trader.settings import Settings
from tests.conftest import TEST_SECRET_KEY

ORDERS = "/api/v1/accounts/acc-1/orders"
TOKEN = "/api/v1/auth/token"
T0 = 1_800_000_000.0  # a whole number of minutes: window boundaries fall on multiples of 60 from here


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def memory_limiter(limits: dict[tuple[str, str], str], clock: Clock | None = None) -> RateLimiter:
    return RateLimiter(limits, LeanMemoryStorage(clock or Clock()))


# -- route classes -------------------------------------------------------------------------------------------


def test_route_classes_follow_the_access_table() -> None:
    classes = RouteClasses()
    assert classes("POST", ORDERS) == "orders"
    assert classes("DELETE", "/api/v1/accounts/a/orders/o-1") == "orders"
    assert classes("GET", "/api/v1/accounts/a/orders/o-1") == "reads"
    assert classes("HEAD", "/api/v1/accounts/a/orders") == "reads"
    assert classes("POST", TOKEN) == "auth"
    assert classes("DELETE", "/api/v1/api-keys/k-1") == "auth"
    assert classes("GET", "/health") == "ops"
    assert classes("GET", "/metrics") == "ops"
    assert classes("GET", "/no/such/path") == "reads"  # unknown paths count as reads
    assert classes("POST", "/api/v1/accounts/a/orders/extra") == "reads"  # a template matches whole paths only
    assert classes("POST", "/api/v1/accounts/a/b/orders") == "reads"  # a parameter is one path segment
    for (method, template), rule in ROUTES.items():  # every template of the table, with values in its parameters
        if method != "WS":
            assert classes(method, template.replace("{", "x").replace("}", "")) == rule.rate, (method, template)


def test_malformed_limits_are_refused_naming_the_setting() -> None:
    settings = Settings(rate_limit_orders_ip="lots", _env_file=None)
    with pytest.raises(InvalidInputError, match="RATE_LIMIT_ORDERS_IP"):
        check_limits(settings)
    check_limits(Settings(_env_file=None))  # the defaults parse


# -- the sliding window on a controlled clock ----------------------------------------------------------------


def test_limit_counts_then_refuses_with_retry_after_and_slides() -> None:
    async def scenario() -> None:
        clock = Clock(T0 + 10)  # 10 s into a minute window
        limiter = memory_limiter({("auth", "ip"): "3/minute"}, clock)
        seen = [await limiter.hit("auth", "ip", "10.0.0.1") for _ in range(3)]
        assert [u.remaining for u in seen if u] == [2, 1, 0]
        assert all(u is not None and u.allowed and u.limit == 3 and u.reset == 50 for u in seen)
        refused = await limiter.hit("auth", "ip", "10.0.0.1")
        assert refused is not None and not refused.allowed and refused.remaining == 0
        # the current window alone is full: it ends in 50 s (its 3 then weigh 3 × (60 − t)/60: below 3 just after)
        assert refused.retry_after == 50 and refused.reset == 50
        other = await limiter.hit("auth", "ip", "10.0.0.2")  # per IP
        assert other is not None and other.allowed and other.remaining == 2
        clock.now += 49.9
        still = await limiter.hit("auth", "ip", "10.0.0.1")
        assert still is not None and not still.allowed and still.retry_after == 1
        clock.now += 1.1  # 1 s into the next window: the previous 3 weigh 3 × 59/60 → 2, one place
        again = await limiter.hit("auth", "ip", "10.0.0.1")
        assert again is not None and again.allowed and again.remaining == 0
        refused = await limiter.hit("auth", "ip", "10.0.0.1")
        # 3 × (59 − t)/60 + 1 < 3 just after t = 19 s
        assert refused is not None and refused.retry_after == 19
        clock.now += 18.9
        assert not (await limiter.hit("auth", "ip", "10.0.0.1")).allowed
        clock.now += 0.2
        assert (await limiter.hit("auth", "ip", "10.0.0.1")).allowed

    run(scenario)


def test_lean_memory_storage_works_with_the_library_strategy_and_sweeps_expired_counters() -> None:
    async def scenario() -> None:
        clock = Clock()
        storage = LeanMemoryStorage(clock)
        strategy = SlidingWindowCounterRateLimiter(storage)
        item = parse("2/second")
        assert await strategy.hit(item, "a") and await strategy.hit(item, "a")
        assert not await strategy.hit(item, "a") and not await strategy.test(item, "a")
        assert (await strategy.get_window_stats(item, "a")).remaining == 0
        await strategy.clear(item, "a")
        assert await strategy.hit(item, "a")
        assert storage.storage  # one counter
        clock.now += 60  # long expired; the next new counter sweeps it
        assert await strategy.hit(item, "b")
        assert len(storage.storage) == 1 and len(storage.expirations) == 1

    run(scenario)


def test_several_limits_report_the_tightest_and_unlimited_classes_give_none() -> None:
    async def scenario() -> None:
        limiter = memory_limiter({("reads", "ip"): "100/second;5/minute"})
        usage = await limiter.hit("reads", "ip", "10.0.0.1")
        assert usage is not None and usage.limit == 5 and usage.remaining == 4
        for _ in range(4):
            await limiter.hit("reads", "ip", "10.0.0.1")
        refused = await limiter.hit("reads", "ip", "10.0.0.1")
        assert refused is not None and not refused.allowed and refused.limit == 5
        assert await limiter.hit("ops", "ip", "10.0.0.1") is None
        assert await limiter.hit("reads", "user", "user:u1") is None  # no per-user limit configured

    run(scenario)


def test_a_failing_storage_lets_requests_through() -> None:
    async def scenario() -> None:
        storage, close = redis_storage("redis://127.0.0.1:1/0")  # nothing listens on port 1
        limiter = RateLimiter({("orders", "ip"): "1/minute"}, storage, close)
        try:
            assert await limiter.hit("orders", "ip", "10.0.0.1") is None
            assert await limiter.hit("orders", "ip", "10.0.0.1") is None
        finally:
            await limiter.aclose()

    run(scenario)


# -- the middleware and the per-user check, through a real ASGI application -----------------------------------


async def as_user(request: Request) -> Principal:
    """What the authentication dependency does after authenticating: the per-user limit of the route's class."""
    who = Principal("u1", frozenset(), key_id=request.headers.get("x-api-key"))
    await request.app.state.limiter.check_principal(request, who, "orders")
    return who


def build_app(limiter: RateLimiter) -> FastAPI:
    app = FastAPI()
    app.state.limiter = limiter

    @app.post(ORDERS.replace("acc-1", "{account_id}"), status_code=201)
    async def place(account_id: str, who: Annotated[Principal, Depends(as_user)]) -> dict[str, str]:
        return {"account": account_id, "by": who.rate_key}

    @app.post(TOKEN)
    async def token() -> dict[str, str]:
        return {"access_token": "t"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    problems.install(app)
    app.add_middleware(RateLimitMiddleware, limiter=limiter)
    return app


def client(app: FastAPI, ip: str = "10.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app, client=(ip, 40000)), base_url="http://test")


def test_middleware_answers_429_problem_with_retry_after_and_headers() -> None:
    async def scenario() -> None:
        app = build_app(memory_limiter({("auth", "ip"): "3/minute"}, Clock(T0 + 30)))
        async with client(app) as c, client(app, "10.0.0.2") as other:
            answers = [await c.post(TOKEN) for _ in range(3)]
            assert [r.status_code for r in answers] == [200, 200, 200]
            assert [r.headers["ratelimit-remaining"] for r in answers] == ["2", "1", "0"]
            assert {r.headers["ratelimit-limit"] for r in answers} == {"3"}
            assert {r.headers["ratelimit-reset"] for r in answers} == {"30"}
            assert "retry-after" not in answers[0].headers
            refused = await c.post(TOKEN)
            assert refused.status_code == 429
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["retry-after"] == "30" and refused.headers["ratelimit-reset"] == "30"
            assert refused.headers["ratelimit-remaining"] == "0" and refused.headers["ratelimit-limit"] == "3"
            body = refused.json()
            assert body["status"] == 429 and body["title"] == "Too many requests"
            assert body["type"].endswith("/rate-limited") and body["instance"] == TOKEN
            assert "3 per 1 minute" in body["detail"] and "retry in 30 s" in body["detail"]
            assert (await other.post(TOKEN)).status_code == 200  # another address has its own count
            for _ in range(5):  # ops routes are never limited, and carry no rate-limit fields
                health = await c.get("/health")
                assert health.status_code == 200 and "ratelimit-limit" not in health.headers

    run(scenario)


def test_per_user_limit_after_authentication_counts_a_users_keys_together_and_sets_the_headers() -> None:
    async def scenario() -> None:
        limiter = memory_limiter({("orders", "ip"): "100/minute", ("orders", "user"): "2/minute"}, Clock(T0))
        app = build_app(limiter)
        async with client(app) as c:
            first = await c.post(ORDERS)
            assert first.status_code == 201
            # the per-user limit (1 left of 2) is tighter than the per-IP one (99 left of 100)
            assert first.headers["ratelimit-limit"] == "2" and first.headers["ratelimit-remaining"] == "1"
            assert (await c.post(ORDERS)).status_code == 201
            refused = await c.post(ORDERS)
            assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
            assert refused.json()["detail"].startswith("rate limit exceeded: 2 per 1 minute for orders requests")
            assert refused.headers.get_list("ratelimit-limit") == ["2"]  # once: the middleware does not add its own
            with_key = await c.post(ORDERS, headers={"x-api-key": "k1"})  # the user's key shares the user's count
            assert with_key.status_code == 429 and with_key.headers["retry-after"] == "60"

    run(scenario)


def test_check_principal_raises_and_records_the_tightest_usage() -> None:
    async def scenario() -> None:
        limiter = memory_limiter({("reads", "user"): "1/second"})
        scope: dict[str, Any] = {"type": "http"}
        who = Principal("u1", frozenset())
        usage = await limiter.check_principal(scope, who, "reads")
        assert usage is not None and scope["state"][STATE_KEY] == usage
        with pytest.raises(ProblemError) as err:
            await limiter.check_principal(scope, who, "reads")
        assert err.value.status == 429 and err.value.kind == "rate-limited"
        assert err.value.headers is not None and err.value.headers["Retry-After"] == "1"
        assert err.value.headers["RateLimit-Limit"] == "1" and err.value.headers["RateLimit-Remaining"] == "0"
        assert err.value.headers["RateLimit-Reset"] == "1"
        assert await limiter.check_principal(scope, who, "ops") is None

    run(scenario)


# -- WebSocket handshakes -------------------------------------------------------------------------------------


async def ws_attempt(mw: RateLimitMiddleware, extensions: dict[str, Any]) -> list[Message]:
    sent: list[Message] = []
    scope = {"type": "websocket", "path": "/ws", "client": ("10.0.0.9", 1), "headers": [], "extensions": extensions}

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await mw(scope, receive, send)
    return sent


def test_websocket_connects_over_the_limit_are_refused() -> None:
    async def scenario() -> None:
        accepted: list[bool] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            accepted.append(True)
            await send({"type": "websocket.accept", "headers": []})

        mw = RateLimitMiddleware(app, memory_limiter({("ws", "ip"): "1/minute"}))
        first = await ws_attempt(mw, {})
        assert accepted == [True] and first[0]["type"] == "websocket.accept"
        assert dict(first[0]["headers"])[b"ratelimit-remaining"] == b"0"
        denied = await ws_attempt(mw, {"websocket.http.response": {}})  # the server can send an HTTP answer
        assert denied[0]["type"] == "websocket.http.response.start" and denied[0]["status"] == 429
        assert int(dict(denied[0]["headers"])[b"retry-after"]) >= 1
        assert b'"status":429' in denied[1]["body"]
        closed = await ws_attempt(mw, {})  # it cannot: the handshake is closed with policy violation
        assert closed == [{"type": "websocket.close", "code": 1008, "reason": "rate limited"}]
        assert accepted == [True]

    run(scenario)


# -- Redis: the same limits shared by every process -----------------------------------------------------------


def test_redis_limits_are_shared_between_processes(redis_url: str) -> None:
    async def scenario() -> None:
        prefix = f"smart-trader-test-{uuid.uuid4().hex}"
        one = RateLimiter({("orders", "ip"): "3/minute"}, *redis_storage(redis_url, prefix))
        two = RateLimiter({("orders", "ip"): "3/minute"}, *redis_storage(redis_url, prefix))
        try:
            a = await one.hit("orders", "ip", "10.0.0.1")
            b = await two.hit("orders", "ip", "10.0.0.1")
            c = await one.hit("orders", "ip", "10.0.0.1")
            assert [u.remaining for u in (a, b, c) if u is not None] == [2, 1, 0]
            refused = await two.hit("orders", "ip", "10.0.0.1")
            assert refused is not None and not refused.allowed
            assert 55 <= refused.retry_after <= 61  # Redis windows start at the first hit: about a minute
            assert refused.reset == refused.retry_after
            other = await two.hit("orders", "ip", "10.0.0.2")
            assert other is not None and other.allowed
        finally:
            await one.aclose()
            await two.aclose()

    run(scenario)


def test_redis_one_round_trip_check_shares_the_library_keys(redis_url: str) -> None:
    async def scenario() -> None:
        storage, close = redis_storage(redis_url, f"smart-trader-test-{uuid.uuid4().hex}")
        try:
            seen = [await storage.take("k", 3, 60) for _ in range(4)]
            assert [t[2] for t in seen] == [0, 1, 2, 3] and [t[4] for t in seen] == [True, True, True, False]
            assert seen[1][3] > 119  # the current window lives two periods, as limits sets it
            previous, _, current, _ = await storage.get_sliding_window("k", 60)  # the library's own reading
            assert (previous, current) == (0, 3)
            assert await storage.acquire_sliding_window_entry("k", 3, 60) is False
            await storage.clear_sliding_window("k", 60)
            assert (await storage.take("k", 3, 60))[4] is True
        finally:
            await close()

    run(scenario)


def test_any_limits_storage_works_through_its_two_calls() -> None:
    async def scenario() -> None:
        limiter = RateLimiter({("orders", "ip"): "2/minute"}, MemoryStorage())  # the library's own storage
        first = await limiter.hit("orders", "ip", "10.0.0.1")
        second = await limiter.hit("orders", "ip", "10.0.0.1")
        third = await limiter.hit("orders", "ip", "10.0.0.1")
        assert first is not None and second is not None and third is not None
        assert (first.remaining, second.remaining, third.allowed) == (1, 0, False)
        assert 1 <= third.retry_after <= 60

    run(scenario)


def test_redis_backed_middleware_answers_429(redis_url: str) -> None:
    async def scenario() -> None:
        prefix = f"smart-trader-test-{uuid.uuid4().hex}"
        limiter = RateLimiter(
            {("auth", "ip"): "2/minute", ("orders", "user"): "1/minute"}, *redis_storage(redis_url, prefix)
        )
        app = build_app(limiter)
        try:
            async with client(app) as c:
                assert [(await c.post(TOKEN)).status_code for _ in range(3)] == [200, 200, 429]
                assert (await c.post(ORDERS)).status_code == 201
                refused = await c.post(ORDERS)
                assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        finally:
            await limiter.aclose()

    run(scenario)


# -- wiring: the app factory -----------------------------------------------------------------------------------


def app_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        secret_key=TEST_SECRET_KEY,
        environment="test",
        log_json=False,
        _env_file=None,
        **{"SMART_TRADER_HOME": tmp_path / "home", **overrides},
    )


def test_the_app_limits_per_ip_and_finds_its_limiter_for_per_user_checks(tmp_path: Path) -> None:
    settings = app_settings(tmp_path, rate_limit_auth_ip="2/minute", rate_limit_reads_user="1/minute")
    app = create_app(settings, "all")
    assert any(m.cls is RateLimitMiddleware for m in app.user_middleware)
    with TestClient(app) as c:
        platform = app.state.platform
        assert isinstance(platform.limiter, RateLimiter)
        assert platform.login_guard is not None and platform.hashing is not None
        refresh = "/api/v1/auth/refresh"  # an auth-class route without login throttling of its own
        codes = [c.post(refresh, json={"refresh_token": "not-a-token"}).status_code for _ in range(3)]
        assert codes[:2] == [401, 401] and codes[2] == 429
        refused = c.post(refresh, json={"refresh_token": "not-a-token"})
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"].startswith("rate limit exceeded: 2 per 1 minute for auth requests")
        assert int(refused.headers["retry-after"]) >= 1 and refused.headers["ratelimit-limit"] == "2"
        assert "x-request-id" in refused.headers  # answered inside the request-context middleware
        assert c.get("/health").status_code == 200  # ops: never limited

        async def per_user() -> None:
            scope: dict[str, Any] = {"type": "http", "app": app}
            await check_principal(scope, Principal("u1", frozenset()), "reads")
            with pytest.raises(ProblemError):
                await check_principal(scope, Principal("u1", frozenset()), "reads")

        assert c.portal is not None
        c.portal.call(per_user)  # on the app's own event loop


def test_rate_limits_disabled_means_no_middleware_and_no_limiter(tmp_path: Path) -> None:
    app = create_app(app_settings(tmp_path, rate_limits_enabled=False), "all")
    assert not any(m.cls is RateLimitMiddleware for m in app.user_middleware)
    with TestClient(app):
        assert app.state.platform.limiter is None
        assert app.state.platform.login_guard is not None  # login throttling stays on
