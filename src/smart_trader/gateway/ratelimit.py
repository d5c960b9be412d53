"""Rate limits per client IP and per user / API key, per route class, on the ``limits`` library.

Route classes come from :data:`~smart_trader.gateway.access.ROUTES` (``Rule.rate``): ``auth`` (registration, login,
refresh, credentials), ``orders`` (order entry and account controls), ``reads`` (everything else, and any path not in
the table), ``ws`` (WebSocket connects); ``ops`` (health, readiness, metrics, docs) is never limited. Each class has
a per-IP limit, applied by :class:`RateLimitMiddleware` to every request before routing, and a per-user limit,
applied by :meth:`RateLimiter.check_principal` right after authentication (counted against
:attr:`~smart_trader.gateway.access.Principal.rate_key`: the API key when one is used, else the user). Limits are
``limits`` notation (``"500/second"``, ``"30/minute;500/hour"``) from the ``RATE_LIMIT_*`` settings.

**Algorithm: sliding window counter** (``limits``' ``SlidingWindowCounterRateLimiter`` algorithm): two counters per
key, the current fixed window and the previous one, weighted by how much of the previous window still overlaps the
last ``period`` seconds. It smooths the burst a fixed window allows at each boundary (up to twice the limit) at the
cost of two integers per key, where a moving window keeps one timestamp per request (500 per key at 500/s) and,
in ``limits``' memory storage, trims them on the default thread pool — the pool database reads use.

**Storage**: with ``REDIS_URL``, ``limits``' ``RedisStorage`` (its Lua scripts make each check atomic, and every API
process shares the counts; keys under ``smart-trader:ratelimit:``); otherwise a process-local memory storage,
:class:`LeanMemoryStorage`: ``limits``' ``MemoryStorage`` (same keys and counters) with the sliding-window check done
in one synchronous call. The library's own version starts an expiry task after each hit that walks *every* key: with
512 clients a check cost ~165 µs (measured), against ~5 µs here, where the order route costs ~200 µs of CPU in all.
Expired counters are swept at most every 10 s instead.

On Redis a check is one round trip (:class:`SharedRedisStorage`: the library's atomic sliding-window Lua script,
returning the counts the headers need as well; the library's own calls would be two round trips, ~150 µs of CPU
each in redis-py). A refused request is not counted.
If the storage fails (Redis down), requests are let through and a warning is logged (at most every 10 s): the
limits protect the platform, they must not become the outage.

**Responses**: every limited response (2xx too) carries the IETF draft fields ``RateLimit-Limit``,
``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds) of the most constraining limit checked for the request
(kept in ``scope["state"]["ratelimit"]``); over a limit the answer is 429 ``application/problem+json`` with
``Retry-After`` (whole seconds, at least 1: when the weighted count drops below the limit). A WebSocket handshake
over its limit is refused with HTTP 429 when the server supports the ASGI denial-response extension, else closed
with code 1008 ("rate limited").
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import orjson
import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, SlidingWindowCounterSupport, Storage
from starlette.requests import HTTPConnection
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smart_trader.core.errors import InvalidInputError
from smart_trader.gateway.access import ROUTES, Principal, RateClass, Rule
from smart_trader.gateway.problems import PROBLEM_JSON, ProblemError, problem

if TYPE_CHECKING:
    from smart_trader.settings import Settings

log = structlog.get_logger("smart_trader.gateway")

Per = Literal["ip", "user"]
LIMITED: tuple[RateClass, ...] = ("auth", "orders", "reads", "ws", "webhooks")
STATE_KEY = "ratelimit"  # scope["state"][STATE_KEY]: the Usage the response headers report
REDIS_PREFIX = "smart-trader:ratelimit"
SWEEP_SECONDS = 10.0
_WARN_EVERY = 10.0
_NAMED_GROUP = re.compile(r"\(\?P<\w+>")
_H_LIMIT = b"ratelimit-limit"


class Usage(NamedTuple):
    """Where a client stands against one limit after a check (a named tuple: made on every request).

    Attributes:
        limit: requests allowed per window (``RateLimit-Limit``).
        remaining: requests left now (``RateLimit-Remaining``).
        reset: seconds until the current window ends, or, when refused, until a request is allowed again
            (``RateLimit-Reset``).
        retry_after: 0 when the request was allowed; else whole seconds (≥ 1) to wait (``Retry-After``).
        item: the limit itself (``limits`` notation when printed).
    """

    limit: int
    remaining: int
    reset: int
    retry_after: int
    item: RateLimitItem

    @property
    def allowed(self) -> bool:
        """True when the request was counted and may proceed."""
        return self.retry_after == 0

    def tighter_than(self, other: Usage) -> bool:
        """True when this limit constrains the client more than ``other`` (refused first, then fewer requests
        left, then a longer wait)."""
        return (self.allowed, self.remaining, -self.reset) < (other.allowed, other.remaining, -other.reset)

    def header_list(self) -> list[tuple[bytes, bytes]]:
        """The rate-limit header fields as ASGI headers (``Retry-After`` too when refused)."""
        out = [
            (_H_LIMIT, b"%d" % self.limit),
            (b"ratelimit-remaining", b"%d" % self.remaining),
            (b"ratelimit-reset", b"%d" % self.reset),
        ]
        if self.retry_after:
            out.append((b"retry-after", b"%d" % self.retry_after))
        return out

    def header_dict(self) -> dict[str, str]:
        """The same fields as a dict (for :class:`~smart_trader.gateway.problems.ProblemError`)."""
        out = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
               "RateLimit-Reset": str(self.reset)}  # fmt: skip
        if self.retry_after:
            out["Retry-After"] = str(self.retry_after)
        return out


class LeanMemoryStorage(MemoryStorage):
    """``limits``' async ``MemoryStorage`` (same keys and counters, so ``clear``/``reset`` work) whose sliding-window
    check is :meth:`take`: one synchronous call reading the window and counting the hit (no locks are needed on one
    event loop without awaits), and no expiry task per hit — expired counters are swept at most every
    :data:`SWEEP_SECONDS`. The async methods of the library's interface use it too (``limits``' strategies work
    on this storage).

    Args:
        clock: seconds since the epoch (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock
        self._next_sweep = 0.0

    def _window(self, key: str, expiry: int, now: float) -> tuple[int, float, int, float, str]:
        # limits' keys (sliding_window_keys: key/<window index>) and ttl formulas, with the division done once
        q = now / expiry
        index = int(q)
        current_key = f"{key}/{index}"
        previous_key = f"{key}/{index - 1}"
        expirations, counts = self.expirations, self.storage
        previous = counts.get(previous_key, 0) if expirations.get(previous_key, 0.0) > now else 0
        current = counts.get(current_key, 0) if expirations.get(current_key, 0.0) > now else 0
        left = (1 - q % 1) * expiry  # until the current window ends
        return previous, left if previous else 0.0, current, left + expiry, current_key

    def take(self, key: str, limit: int, expiry: int, amount: int = 1) -> tuple[int, float, int, float, bool]:
        """The window as :meth:`get_sliding_window` sees it before the hit, and whether ``amount`` was counted
        (:meth:`acquire_sliding_window_entry`): both in one synchronous call, what :class:`RateLimiter` uses."""
        now = self._clock()
        previous, previous_ttl, current, current_ttl, current_key = self._window(key, expiry, now)
        if amount > limit or int(previous * previous_ttl / expiry + current) + amount > limit:
            return previous, previous_ttl, current, current_ttl, False
        if current:
            self.storage[current_key] = current + amount
        else:  # new (or expired, not yet swept): lives two windows, as in limits
            self.storage[current_key] = amount
            self.expirations[current_key] = now + 2 * expiry
            if now >= self._next_sweep:
                self._sweep(now)
        return previous, previous_ttl, current, current_ttl, True

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        previous, previous_ttl, current, current_ttl, _ = self._window(key, expiry, self._clock())
        return previous, previous_ttl, current, current_ttl

    async def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self.take(key, limit, expiry, amount)[4]

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        index = int(self._clock() / expiry)
        await self.clear(f"{key}/{index}")
        await self.clear(f"{key}/{index - 1}")

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_SECONDS
        for k in [k for k, t in self.expirations.items() if t <= now]:
            self.storage.pop(k, None)
            self.expirations.pop(k, None)
            self.locks.pop(k, None)


def _wait_seconds(
    amount: int, expiry: int, previous: int, previous_ttl: float, current: int, window_end: float
) -> float:
    """Seconds until the weighted count ``previous × (previous_ttl − t) / expiry + current`` falls below ``amount``."""
    if current < amount and previous > 0:
        return max(0.0, previous_ttl - (amount - current) * expiry / previous)
    # the current window alone is full: wait for it to end, then for its weight (as the previous one) to drop
    return window_end + (expiry * (current - amount) / current if current else 0.0)


def _usage(
    item: RateLimitItem,
    amount: int,
    expiry: int,
    previous: int,
    previous_ttl: float,
    current: int,
    current_ttl: float,
    taken: bool,
) -> Usage:
    """The usage after a check, from the window as it was before it (``previous``/``current`` counts and ttls as
    ``get_sliding_window`` gives them) and whether the request was counted."""
    used = int(previous * previous_ttl / expiry + current)
    window_end = current_ttl - expiry if current_ttl > expiry else float(expiry)
    if taken:
        return Usage(amount, max(0, amount - used - 1), max(1, math.ceil(window_end)), 0, item)
    if used < amount:  # there was room, but another process took the last place first
        wait = 1
    else:  # to the millisecond, so float noise does not add a second (the count falls just *after* this instant)
        wait = max(1, math.ceil(round(_wait_seconds(amount, expiry, previous, previous_ttl, current, window_end), 3)))
    return Usage(amount, 0, wait, wait, item)


def parse_limits(text: str, name: str = "rate limit") -> tuple[RateLimitItem, ...]:
    """``limits`` notation (several joined by ``;``); blank means no limit.

    Raises:
        InvalidInputError: the text is not ``limits`` notation (naming ``name``, the setting).
    """
    if not text.strip():
        return ()
    try:
        return tuple(parse_many(text))
    except ValueError as exc:
        raise InvalidInputError(f"{name}: {exc} (expected e.g. '500/second' or '30/minute;500/hour')") from None


def check_limits(settings: Settings) -> None:
    """Parse every ``RATE_LIMIT_*`` setting (the app factory calls it, so a malformed one stops the start).

    Raises:
        InvalidInputError: naming the setting and what was expected.
    """
    for rate_class in LIMITED:
        for per in ("ip", "user"):
            parse_limits(
                getattr(settings, f"rate_limit_{rate_class}_{per}", ""), f"RATE_LIMIT_{rate_class}_{per}".upper()
            )


class RateLimiter:
    """Per-IP and per-user limits of each route class over one ``limits`` storage.

    Args:
        limits: ``{(rate_class, "ip" | "user"): limits}``, each value ``limits`` notation or parsed items; a missing
            or empty entry means no limit there.
        storage: a ``limits`` async storage supporting the sliding window counter (default: :class:`LeanMemoryStorage`).
        on_close: awaited by :meth:`aclose` (closes the Redis client the storage uses).
    """

    def __init__(
        self,
        limits: Mapping[tuple[str, str], str | Sequence[RateLimitItem]],
        storage: Storage | None = None,
        on_close: Callable[[], Any] | None = None,
    ) -> None:
        store = storage if storage is not None else LeanMemoryStorage()
        self.storage: Storage = store
        self._lean = store if isinstance(store, LeanMemoryStorage) else None
        if not isinstance(store, SlidingWindowCounterSupport):
            raise TypeError(f"{type(store).__name__} does not support the sliding window counter")
        self._sliding: SlidingWindowCounterSupport = store
        self._limits: dict[tuple[str, str], tuple[tuple[RateLimitItem, int, int, str], ...]] = {}
        for (rate_class, per), value in limits.items():
            items = parse_limits(value, f"{rate_class} {per}") if isinstance(value, str) else tuple(value)
            if items:  # (item, amount, expiry, key prefix)
                self._limits[(rate_class, per)] = tuple(
                    (i, i.amount, i.get_expiry(), f"{rate_class}:{per}:{i.amount}/{i.get_expiry()}:") for i in items
                )
        self._on_close = on_close
        self._warned = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, storage: Storage | None = None) -> RateLimiter:
        """The limits of ``settings`` (``RATE_LIMIT_*``), on Redis when ``REDIS_URL`` is set, else in memory.

        Raises:
            InvalidInputError: a ``RATE_LIMIT_*`` value is not ``limits`` notation.
        """
        limits: dict[tuple[str, str], tuple[RateLimitItem, ...]] = {}
        for rate_class in LIMITED:
            for per in ("ip", "user"):
                value = getattr(settings, f"rate_limit_{rate_class}_{per}", "")
                limits[(rate_class, per)] = parse_limits(value, f"RATE_LIMIT_{rate_class}_{per}".upper())
        on_close = None
        if storage is None and settings.redis_url:
            storage, on_close = redis_storage(settings.redis_url)
        return cls(limits, storage, on_close)

    def limits_of(self, rate_class: str, per: Per) -> tuple[RateLimitItem, ...]:
        """The limits applied to ``rate_class`` per ``per`` (empty: none)."""
        return tuple(x[0] for x in self._limits.get((rate_class, per), ()))

    async def hit(self, rate_class: str, per: Per, identity: str) -> Usage | None:
        """Count one request of ``identity`` (an IP or a principal's rate key) against the limits of ``rate_class``
        per ``per``: the usage of the most constraining limit (refused: ``retry_after`` > 0, and nothing counted from
        that limit on), or ``None`` when the class has no such limit or the storage failed."""
        checks = self._limits.get((rate_class, per))
        if not checks:
            return None
        lean = self._lean
        try:
            worst: Usage | None = None
            for item, amount, expiry, prefix in checks:
                key = prefix + identity
                if lean is not None:  # memory: read and count in one synchronous call
                    usage = _usage(item, amount, expiry, *lean.take(key, amount, expiry))
                else:
                    usage = await self._hit_shared(item, amount, expiry, key)
                if worst is None or usage.tighter_than(worst):
                    worst = usage
                if usage.retry_after:
                    break
            return worst
        except Exception as exc:  # the storage failed: let the request through
            now = time.monotonic()
            if now - self._warned > _WARN_EVERY:
                self._warned = now
                log.warning("rate-limit storage failed; requests are not limited", error=f"{type(exc).__name__}: {exc}")
            return None

    async def _hit_shared(self, item: RateLimitItem, amount: int, expiry: int, key: str) -> Usage:
        if isinstance(self.storage, SharedRedisStorage):  # one round trip
            return _usage(item, amount, expiry, *await self.storage.take(key, amount, expiry))
        # any other limits storage: the counts first (the headers need them; a refusal costs this one call and is
        # not counted), then the atomic hit, which may still refuse when another process took the last place
        previous, previous_ttl, current, current_ttl = await self._sliding.get_sliding_window(key, expiry)
        taken = False
        if int(previous * previous_ttl / expiry + current) < amount:
            taken = await self._sliding.acquire_sliding_window_entry(key, amount, expiry, 1)
        return _usage(item, amount, expiry, previous, previous_ttl, current, current_ttl, taken)

    async def check_ip(self, rate_class: str, ip: str) -> Usage | None:
        """:meth:`hit` per client IP."""
        return await self.hit(rate_class, "ip", ip)

    async def check_principal(
        self, scope_or_request: Scope | HTTPConnection, principal: Principal, rate_class: str
    ) -> Usage | None:
        """Count the request against the per-user limit of ``rate_class`` (the API key's own when one is used:
        :attr:`Principal.rate_key`) and record it for the response headers when it is the tightest so far.

        Raises:
            ProblemError: 429 with ``Retry-After`` and the ``RateLimit-*`` fields when over the limit.
        """
        usage = await self.hit(rate_class, "user", principal.rate_key)
        if usage is None:
            return None
        scope = scope_or_request.scope if isinstance(scope_or_request, HTTPConnection) else scope_or_request
        record(scope, usage)
        if not usage.allowed:
            raise ProblemError(429, _detail(usage, rate_class, "user"), "rate-limited", usage.header_dict())
        return usage

    async def aclose(self) -> None:
        """Close the storage's connection (Redis)."""
        if self._on_close is not None:
            await self._on_close()


# limits' resources/redis/lua_scripts/acquire_sliding_window.lua (same keys and arithmetic), returning the window as
# it was before the hit too: one round trip where get_sliding_window + acquire_sliding_window_entry are two
_TAKE_SCRIPT = """
local limit = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2]) * 1000
local amount = tonumber(ARGV[3])
local current_ttl = tonumber(redis.call('pttl', KEYS[2]))
if current_ttl > 0 and current_ttl < expiry then
    redis.call('rename', KEYS[2], KEYS[1])
    redis.call('set', KEYS[2], 0, 'PX', current_ttl + expiry)
end
local previous_count = tonumber(redis.call('get', KEYS[1])) or 0
local previous_ttl = tonumber(redis.call('pttl', KEYS[1])) or 0
local current_count = tonumber(redis.call('get', KEYS[2])) or 0
current_ttl = tonumber(redis.call('pttl', KEYS[2])) or 0
if previous_ttl <= 0 then previous_ttl = 0 end
if current_ttl <= 0 then current_ttl = 0 end
local acquired = 0
if amount <= limit and math.floor(previous_count * previous_ttl / expiry) + current_count + amount <= limit then
    if redis.call('exists', KEYS[2]) == 1 then
        redis.call('incrby', KEYS[2], amount)
    else
        redis.call('set', KEYS[2], amount, 'PX', expiry * 2)
    end
    acquired = 1
end
return {acquired, previous_count, previous_ttl, current_count, current_ttl}
"""


class SharedRedisStorage(RedisStorage):
    """``limits``' ``RedisStorage`` (redis-py) with :meth:`take`: the sliding-window check in one round trip (a
    Lua script mirroring the library's own, on the same keys, so the library's strategies see the same counts).

    Args:
        client: the ``redis.asyncio.Redis`` whose connection pool the storage uses.
        prefix: key prefix.
    """

    def __init__(self, client: Any, prefix: str = REDIS_PREFIX) -> None:
        pool: Any = client.connection_pool  # limits types its options as scalars; use_basic accepts a pool
        # the pool of our own client: limits then needs no URL of its own (any redis-py URL works: rediss://, unix://)
        super().__init__("async+redis://", implementation="redispy", key_prefix=prefix, connection_pool=pool)
        self._prefix = prefix
        self._take = client.register_script(_TAKE_SCRIPT)

    async def take(self, key: str, limit: int, expiry: int, amount: int = 1) -> tuple[int, float, int, float, bool]:
        """As :meth:`LeanMemoryStorage.take`: the window before the hit, and whether ``amount`` was counted."""
        current_key = f"{self._prefix}:{self._current_window_key(key)}"
        previous_key = f"{self._prefix}:{self._previous_window_key(key)}"
        acquired, previous, previous_ttl, current, current_ttl = await self._take(
            keys=[previous_key, current_key], args=[limit, expiry, amount]
        )
        return int(previous), previous_ttl / 1000, int(current), current_ttl / 1000, bool(acquired)


def redis_storage(url: str, prefix: str = REDIS_PREFIX) -> tuple[SharedRedisStorage, Callable[[], Any]]:
    """A :class:`SharedRedisStorage` on ``url`` with keys under ``prefix``, and the coroutine function closing its
    client."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    return SharedRedisStorage(client, prefix), client.aclose


def record(scope: Scope, usage: Usage) -> None:
    """Keep ``usage`` in ``scope["state"]`` for the response headers when it is the tightest checked so far."""
    state = scope.setdefault("state", {})
    known: Usage | None = state.get(STATE_KEY)
    if known is None or usage.tighter_than(known):
        state[STATE_KEY] = usage


def _detail(usage: Usage, rate_class: str, per: str) -> str:
    who = "this address" if per == "ip" else "this user or API key"
    return f"rate limit exceeded: {usage.item} for {rate_class} requests from {who}; retry in {usage.retry_after} s"


async def check_principal(scope_or_request: Scope | HTTPConnection, principal: Principal, rate_class: str) -> None:
    """:meth:`RateLimiter.check_principal` with the application's limiter (``app.state.platform.limiter``); nothing
    when rate limits are off.

    Raises:
        ProblemError: 429 over the per-user limit.
    """
    scope = scope_or_request.scope if isinstance(scope_or_request, HTTPConnection) else scope_or_request
    limiter = _limiter_of(scope)
    if limiter is not None:
        await limiter.check_principal(scope, principal, rate_class)


def _limiter_of(scope: Scope) -> RateLimiter | None:
    app = scope.get("app")
    platform = getattr(app.state, "platform", None) if app is not None else None
    return getattr(platform, "limiter", None)


class RouteClasses:
    """The rate class of a request, from the path templates of :data:`~smart_trader.gateway.access.ROUTES`
    (compiled once: one dictionary lookup for fixed paths, one regular expression per method for the others).
    ``HEAD`` counts as ``GET``; anything not in the table is ``reads``."""

    def __init__(self, routes: Mapping[tuple[str, str], Rule] = ROUTES) -> None:
        self._fixed: dict[tuple[str, str], RateClass] = {}
        patterns: dict[str, list[str]] = {}
        self._classes: dict[str, list[RateClass]] = {}
        for (method, template), rule in routes.items():
            if "{" not in template:
                self._fixed[(method, template)] = rule.rate
                continue
            regex = compile_path(template)[0].pattern.removeprefix("^").removesuffix("$")
            patterns.setdefault(method, []).append("(" + _NAMED_GROUP.sub("(?:", regex) + ")")
            self._classes.setdefault(method, []).append(rule.rate)
        self._regex = {m: re.compile("(?:" + "|".join(p) + r")\Z") for m, p in patterns.items()}

    def __call__(self, method: str, path: str) -> RateClass:
        if method == "HEAD":
            method = "GET"
        fixed = self._fixed.get((method, path))
        if fixed is not None:
            return fixed
        regex = self._regex.get(method)
        if regex is not None:
            m = regex.match(path)
            if m is not None and m.lastindex is not None:
                return self._classes[method][m.lastindex - 1]
        return "reads"


class RateLimitMiddleware:
    """ASGI middleware applying the per-IP limit of each request's class (see the module docstring), and adding the
    ``RateLimit-*`` header fields of the tightest limit checked (this one or a per-user one) to the response.

    Args:
        app: the application inside.
        limiter: the limiter; default: ``app.state.platform.limiter`` of the running application, looked up per
            request (it is made at start-up), nothing limited while it is ``None``.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter | None = None) -> None:
        self.app = app
        self._limiter = limiter
        self._classes = RouteClasses()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            rate_class = self._classes(scope["method"], scope["path"])
        elif kind == "websocket":
            rate_class = "ws"
        else:
            await self.app(scope, receive, send)
            return
        limiter = self._limiter or _limiter_of(scope)
        if rate_class == "ops" or limiter is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        usage = await limiter.hit(rate_class, "ip", client[0] if client else "unknown")
        if usage is None:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state[STATE_KEY] = usage
        if not usage.allowed:
            await _refuse(scope, receive, send, usage, rate_class)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                headers = message.get("headers", ())
                # a per-user 429 (ProblemError) already carries the fields
                if message.get("status") != 429 or not any(k.lower() == _H_LIMIT for k, _ in headers):
                    message = {**message, "headers": [*headers, *state[STATE_KEY].header_list()]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(scope: Scope, receive: Receive, send: Send, usage: Usage, rate_class: str) -> None:
    detail = _detail(usage, rate_class, "ip")
    if scope["type"] == "http":
        await problem(429, detail, scope["path"], "rate-limited", usage.header_dict())(scope, receive, send)
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        body = orjson.dumps({
            "type": "https://smart-trader.dev/problems/rate-limited",
            "title": "Too many requests",
            "status": 429,
            "detail": detail,
            "instance": scope["path"],
        })  # fmt: skip
        headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": 429, "headers": headers + usage.header_list()})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.close", "code": 1008, "reason": "rate limited"})
