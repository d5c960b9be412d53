"""Login throttling (gateway/login_guard.py) on a controlled clock, in memory and on the real Redis at
127.0.0.1:6379 (skipped when it is down, failed when ``CI`` is set: tests/conftest.py ``redis_url``): backoff
doubling per account and per IP, its cap, the lockout and its lifting, success resetting the account only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest

from smart_trader.gateway.login_guard import LOCKED_DETAIL, LoginGuard, LoginStatus
from smart_trader.gateway.problems import ProblemError

T0 = 1_800_000_000.0
EMAIL = "Trader@Example.com"
IP = "10.0.0.1"

GuardFactory = Callable[..., Any]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def make_guard(request: pytest.FixtureRequest) -> GuardFactory:
    """``make_guard(clock, **settings)`` → an async context manager yielding a guard on the parametrized store."""

    @asynccontextmanager
    async def make(clock: Clock, **kwargs: Any) -> AsyncIterator[LoginGuard]:
        if request.param == "memory":
            yield LoginGuard(clock=clock, **kwargs)
            return
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
        guard = LoginGuard(clock=clock, redis=client, prefix=f"smart-trader-test-{uuid.uuid4().hex}:", **kwargs)
        try:
            yield guard
        finally:
            await client.aclose()

    return make


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def refusal(guard: LoginGuard, email: str = EMAIL, ip: str = IP) -> ProblemError | None:
    """The 429 ``before`` raises, or ``None`` when the attempt may go ahead."""
    refused: ProblemError | None = None
    try:
        await guard.before(email, ip)
    except ProblemError as exc:
        refused = exc
    assert refused is None or refused.status == 429
    return refused


def retry_after(exc: ProblemError | None) -> int:
    assert exc is not None and exc.headers is not None
    return int(exc.headers["Retry-After"])


def test_backoff_doubles_per_failure_up_to_the_cap(make_guard: GuardFactory) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with make_guard(clock, base_seconds=1.0, max_seconds=10.0, lockout_failures=100) as guard:
            assert await refusal(guard) is None
            waits = []
            for _ in range(6):
                await guard.failed(EMAIL, IP)
                refused = await refusal(guard)
                assert refused is not None and refused.kind == "login-throttled"
                waits.append(retry_after(refused))
                clock.now += waits[-1] - 0.5
                assert await refusal(guard) is not None  # still refused just before the end
                clock.now += 0.5
                assert await refusal(guard) is None  # and let through at the end
            assert waits == [1, 2, 4, 8, 10, 10]
            assert await guard.status(EMAIL) == LoginStatus(6, None)

    run(scenario)


def test_account_and_ip_back_off_separately_and_success_resets_the_account_only(make_guard: GuardFactory) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with make_guard(clock, base_seconds=2.0, max_seconds=300.0) as guard:
            await guard.failed(EMAIL, IP)
            await guard.failed(EMAIL, IP)  # two failures: 4 s for the account and the IP
            assert retry_after(await refusal(guard, EMAIL, "10.9.9.9")) == 4  # the account, from another address
            assert retry_after(await refusal(guard, "other@example.com", IP)) == 4  # the address, another account
            assert await refusal(guard, "other@example.com", "10.9.9.9") is None
            assert await refusal(guard, " trader@EXAMPLE.com ", "10.9.9.9") is not None  # the email is normalized
            clock.now += 4
            await guard.succeeded(EMAIL, IP)
            assert await guard.status(EMAIL) == LoginStatus(0, None)
            await guard.failed("other@example.com", IP)  # the IP's count went on: its third failure, 8 s
            assert retry_after(await refusal(guard, "third@example.com", IP)) == 8
            assert await refusal(guard, EMAIL, "10.9.9.9") is None  # the account itself starts afresh

    run(scenario)


def test_lockout_after_failures_in_a_row_until_it_ends_or_an_admin_lifts_it(make_guard: GuardFactory) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with make_guard(clock, base_seconds=0.0, lockout_failures=3, lockout_seconds=900) as guard:
            for ip in ("10.0.0.1", "10.0.0.2"):  # from different addresses: the account still counts
                await guard.failed(EMAIL, ip)
                assert await refusal(guard, EMAIL, "10.0.0.3") is None  # no backoff with a zero base
            status = await guard.failed(EMAIL, "10.0.0.3")
            assert status == LoginStatus(3, T0 + 900)
            locked = await refusal(guard, EMAIL, "10.0.0.4")
            assert locked is not None and locked.kind == "account-locked" and locked.detail == LOCKED_DETAIL
            assert retry_after(locked) == 900
            assert await guard.status(EMAIL) == LoginStatus(3, T0 + 900)
            clock.now += 600
            assert retry_after(await refusal(guard, EMAIL, "10.0.0.4")) == 300
            assert await guard.lift(EMAIL) is True
            assert await refusal(guard, EMAIL, "10.0.0.4") is None
            assert await guard.status(EMAIL) == LoginStatus(0, None)
            assert await guard.lift(EMAIL) is False  # nothing left to lift

            for _ in range(3):  # locked again; this time the lockout runs out
                await guard.failed(EMAIL, IP)
            assert (await refusal(guard)) is not None
            clock.now += 900
            assert await refusal(guard) is None
            assert await guard.status(EMAIL) == LoginStatus(0, None)  # counting starts over after a lockout
            assert await guard.failed(EMAIL, IP) == LoginStatus(1, None)

    run(scenario)


def test_unknown_and_known_emails_get_the_same_answers(make_guard: GuardFactory) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with make_guard(clock, base_seconds=1.0, lockout_failures=2, lockout_seconds=60) as guard:
            answers: list[tuple[Any, ...]] = []
            for email in ("exists@example.com", "nobody@example.com"):
                await guard.failed(email, f"10.1.0.{len(answers)}")
                first = await refusal(guard, email, "10.2.0.1")
                clock.now += 1
                await guard.failed(email, f"10.1.0.{len(answers)}")
                second = await refusal(guard, email, "10.2.0.1")
                assert first is not None and second is not None
                answers.append((first.kind, first.detail, second.kind, second.detail, retry_after(second)))
                clock.now -= 1
            assert answers[0] == answers[1]

    run(scenario)


def test_two_processes_share_the_state_on_redis(redis_url: str) -> None:
    async def scenario() -> None:
        import redis.asyncio as aioredis

        clock = Clock()
        prefix = f"smart-trader-test-{uuid.uuid4().hex}:"
        one, two = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
        try:
            a = LoginGuard(base_seconds=1.0, lockout_failures=2, redis=one, clock=clock, prefix=prefix)
            b = LoginGuard(base_seconds=1.0, lockout_failures=2, redis=two, clock=clock, prefix=prefix)
            await a.failed(EMAIL, IP)
            assert retry_after(await refusal(b)) == 1
            clock.now += 1
            await b.failed(EMAIL, "10.7.7.7")
            assert (await refusal(a, EMAIL, "10.8.8.8")).kind == "account-locked"  # type: ignore[union-attr]
            await b.lift(EMAIL)
            assert await refusal(a, EMAIL, "10.8.8.8") is None
            assert await one.ttl(prefix + "ip:" + IP) > 0  # state expires by itself
        finally:
            await one.aclose()
            await two.aclose()

    run(scenario)


def test_a_failing_redis_lets_logins_through() -> None:
    async def scenario() -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url("redis://127.0.0.1:1/0")  # nothing listens on port 1
        guard = LoginGuard(redis=client)
        try:
            assert await guard.failed(EMAIL, IP) == LoginStatus(0, None)
            assert await refusal(guard) is None
        finally:
            await client.aclose()

    run(scenario)


def test_memory_state_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        import smart_trader.gateway.login_guard as module

        monkeypatch.setattr(module, "MAX_ENTRIES", 100)
        clock = Clock()
        guard = LoginGuard(clock=clock, lockout_failures=1, lockout_seconds=60)
        await guard.failed(EMAIL, IP)  # locked
        for i in range(300):  # a flood of addresses cannot push the account's lockout out
            await guard.failed("attacker@example.com", f"10.3.{i // 256}.{i % 256}")
        assert len(guard._ips) <= 100 and len(guard._accounts) == 2
        assert (await refusal(guard, EMAIL, "10.200.0.1")) is not None
        for i in range(300):  # nor can a flood of accounts grow without bound
            await guard.failed(f"user{i}@example.com", "10.4.0.1")
        assert len(guard._accounts) <= 100

    run(scenario)


def test_the_first_failures_are_free_then_the_backoff_starts(make_guard: GuardFactory) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with make_guard(clock, base_seconds=1.0, free_failures=3, free_failures_ip=5) as guard:
            for _ in range(3):  # an account's first three mistakes cost nothing
                await guard.failed(EMAIL, IP)
                assert await refusal(guard) is None
            await guard.failed(EMAIL, IP)  # the fourth starts the backoff at the base delay
            assert retry_after(await refusal(guard)) == 1
            # the IP has had 4 failures, 5 are free: another account from that address is not slowed
            assert await refusal(guard, email="other@example.com") is None
            await guard.failed("other@example.com", IP)
            await guard.failed("other@example.com", IP)  # the IP's sixth failure: its backoff starts
            assert retry_after(await refusal(guard, email="third@example.com")) == 1

    run(scenario)
