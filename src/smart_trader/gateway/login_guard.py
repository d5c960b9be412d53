"""Login throttling: exponential backoff per account and per client IP, and a temporary lockout an admin can lift.

After the first ``login_free_failures`` failed logins for an account (its normalized email; default 3: people
mistype) and the first ``login_free_failures_ip`` from an IP (default 10: offices share an address), each further
failure refuses the next attempt for that account, or from that IP, for ``login_backoff_base_seconds × 2^(n − 1)``
seconds (n: failures beyond the free ones; at most ``login_backoff_max_seconds``): answered 429 with ``Retry-After``
*before* the password is checked, so a refused guess costs no argon2 hash and teaches the attacker nothing.
``login_lockout_failures`` failures in a row lock the account for ``login_lockout_seconds`` (429, "temporarily
locked", whatever the password); when a lockout ends the account starts counting again from zero. A successful login
clears the account's failures (not the IP's: an attacker must not reset an address's backoff by logging into an
account of their own). An IP is never locked
out, only slowed down. A counter is forgotten ``login_lockout_seconds`` after its last refusal period ends.

Unknown emails are throttled and locked exactly like real ones, so the answers reveal nothing about which
accounts exist. State is keyed by a SHA-256 of the email (Redis holds no addresses).

**Where the state lives.** In Redis when ``REDIS_URL`` is set (every API process sees the same counters; a failure is
one atomic Lua script), else in this process's memory. Not in the database: counting failed logins there would put
a write on the group-commit writer (``db/writer.py``, the order path's) for every wrong password — the very flood
this guards against would then slow everyone's orders — and a read before every login. The state is short-lived and
losing it on a restart only forgets some backoff.

If Redis fails, logins are let through (and a warning logged): the hashing pool's bound (``gateway/hashing.py``)
still caps what a flood costs.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import structlog

from smart_trader.gateway.problems import ProblemError

if TYPE_CHECKING:
    from smart_trader.settings import Settings

log = structlog.get_logger("smart_trader.gateway")

REDIS_PREFIX = "smart-trader:login:"
MAX_ENTRIES = 100_000  # per kind (accounts, IPs) in memory: beyond that the least recently failed are dropped
LOCKED_DETAIL = (
    "too many failed logins: this account is temporarily locked; try again later or ask an administrator to lift it"
)
_WARN_EVERY = 10.0

# KEYS[1] the state hash (f: failures, b: refused until, l: locked until; seconds since the epoch)
# ARGV: now, base, max delay, failures that lock (0: never), lock seconds, forget seconds, failures before backoff
_FAIL_SCRIPT = """
local now = tonumber(ARGV[1])
local f = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
local l = tonumber(redis.call('HGET', KEYS[1], 'l') or '0')
if l > 0 and l <= now then
  f = 0
  l = 0
end
f = f + 1
local free = tonumber(ARGV[7])
local b = now
if f > free then
  b = now + math.min(tonumber(ARGV[2]) * 2 ^ (f - free - 1), tonumber(ARGV[3]))
end
local lock_after = tonumber(ARGV[4])
if lock_after > 0 and f >= lock_after and l == 0 then
  l = now + tonumber(ARGV[5])
end
local bs = string.format('%.6f', b)
local ls = string.format('%.6f', l)
redis.call('HSET', KEYS[1], 'f', f, 'b', bs, 'l', ls)
redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(b, l) - now + tonumber(ARGV[6])) * 1000))
return {f, bs, ls}
"""


def normalize_email(email: str) -> str:
    """The email as accounts are keyed (``users.py``: stripped, lower case)."""
    return email.strip().lower()


def _account_key(email: str) -> str:
    return "acct:" + hashlib.sha256(normalize_email(email).encode()).hexdigest()


def _ip_key(ip: str) -> str:
    return "ip:" + ip


class LoginStatus(NamedTuple):
    """Where an account stands (the admin API): ``failures, locked_until = await guard.status(email)``.

    Attributes:
        failures: failed logins in a row (0 again once a lockout has ended).
        locked_until: the account is locked until this time (seconds since the epoch, UTC), or ``None``.
    """

    failures: int
    locked_until: float | None


class LoginGuard:
    """Backoff and lockout of logins (see the module docstring).

    Args:
        base_seconds / max_seconds: the first refusal period, doubled at each failure, and its cap.
        lockout_failures / lockout_seconds: failures in a row that lock an account, and for how long.
        redis: a ``redis.asyncio.Redis`` to share the state between processes, or ``None`` (memory).
        clock: seconds since the epoch (tests pass their own).
        on_close: awaited by :meth:`aclose` (closes the Redis client).
        prefix: Redis key prefix.
    """

    def __init__(
        self,
        base_seconds: float = 1.0,
        max_seconds: float = 300.0,
        lockout_failures: int = 20,
        lockout_seconds: float = 900.0,
        redis: Any = None,
        clock: Callable[[], float] = time.time,
        on_close: Callable[[], Any] | None = None,
        prefix: str = REDIS_PREFIX,
        free_failures: int = 0,
        free_failures_ip: int = 0,
    ) -> None:
        self.base_seconds = base_seconds
        self.free_failures = free_failures
        self.free_failures_ip = free_failures_ip
        self.max_seconds = max_seconds
        self.lockout_failures = lockout_failures
        self.lockout_seconds = lockout_seconds
        self._redis = redis
        self._clock = clock
        self._on_close = on_close
        self._prefix = prefix
        self._script = redis.register_script(_FAIL_SCRIPT) if redis is not None else None
        # memory: key → [failures, refused until, locked until, forget at]; accounts and IPs apart, so a flood of
        # addresses cannot push account lockouts out
        self._accounts: dict[str, list[float]] = {}
        self._ips: dict[str, list[float]] = {}
        self._warned = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], float] = time.time) -> LoginGuard:
        """The guard ``settings`` describe (``LOGIN_*``), on Redis when ``REDIS_URL`` is set."""
        redis = on_close = None
        if settings.redis_url:
            import redis.asyncio as aioredis

            redis = aioredis.Redis.from_url(settings.redis_url)
            on_close = redis.aclose
        return cls(
            settings.login_backoff_base_seconds,
            settings.login_backoff_max_seconds,
            settings.login_lockout_failures,
            settings.login_lockout_seconds,
            redis=redis,
            clock=clock,
            on_close=on_close,
            free_failures=settings.login_free_failures,
            free_failures_ip=settings.login_free_failures_ip,
        )

    # -- the login route's calls -------------------------------------------------------------------------------

    async def before(self, email: str, ip: str) -> None:
        """Call before checking the password.

        Raises:
            ProblemError: 429 with ``Retry-After`` while the account is locked, or while the account or the IP is in
                its backoff period after a failure.
        """
        now = self._clock()
        try:
            account, address = await self._read(_account_key(email), _ip_key(ip), now)
        except Exception as exc:
            self._warn(exc)
            return
        locked = account[2]
        if locked > now:
            raise ProblemError(429, LOCKED_DETAIL, "account-locked", {"Retry-After": _seconds(locked - now)})
        until = max(account[1], address[1])
        if until > now:
            wait = _seconds(until - now)
            detail = f"too many failed logins from this address or for this account: retry in {wait} s"
            raise ProblemError(429, detail, "login-throttled", {"Retry-After": wait})

    async def failed(self, email: str, ip: str) -> LoginStatus:
        """Count a failed login (wrong password, or no such account): the account's status after it."""
        now = self._clock()
        try:
            if self._script is not None:
                await self._fail_redis(_ip_key(ip), now, 0, self.free_failures_ip)
                return await self._fail_redis(_account_key(email), now, self.lockout_failures, self.free_failures)
            self._fail_memory(self._ips, _ip_key(ip), now, 0, self.free_failures_ip)
            return self._fail_memory(
                self._accounts, _account_key(email), now, self.lockout_failures, self.free_failures
            )
        except Exception as exc:
            self._warn(exc)
            return LoginStatus(0, None)

    async def succeeded(self, email: str, ip: str) -> None:
        """Clear the account's failures after a successful login (the IP's stay)."""
        await self._forget(email)

    # -- administration ----------------------------------------------------------------------------------------

    async def lift(self, email: str) -> bool:
        """Remove the account's lockout and backoff (an admin's action). True when there was something to lift."""
        return await self._forget(email)

    async def status(self, email: str) -> LoginStatus:
        """The account's failures in a row and its lockout (``None`` when not locked)."""
        now = self._clock()
        account, _ = await self._read(_account_key(email), None, now)
        failures, locked = int(account[0]), account[2]
        if 0 < locked <= now:  # a lockout that ended: counting starts over at the next failure
            failures = 0
        return LoginStatus(failures, locked if locked > now else None)

    async def aclose(self) -> None:
        """Close the Redis client."""
        if self._on_close is not None:
            await self._on_close()

    # -- state -------------------------------------------------------------------------------------------------

    async def _read(self, account_key: str, ip_key: str | None, now: float) -> tuple[list[float], list[float]]:
        """[failures, refused until, locked until] of the account and the IP (zeros when unknown)."""
        if self._redis is None:
            account = self._live(self._accounts, account_key, now)
            address = self._live(self._ips, ip_key, now) if ip_key is not None else None
            return account or [0.0, 0.0, 0.0], address or [0.0, 0.0, 0.0]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._prefix + account_key, "f", "b", "l")
            if ip_key is not None:
                pipe.hmget(self._prefix + ip_key, "f", "b", "l")
            rows = await pipe.execute()
        parsed = [[float(v) if v is not None else 0.0 for v in row] for row in rows]
        return parsed[0], parsed[1] if len(parsed) > 1 else [0.0, 0.0, 0.0]

    @staticmethod
    def _live(table: dict[str, list[float]], key: str, now: float) -> list[float] | None:
        entry = table.get(key)
        if entry is not None and entry[3] <= now:
            del table[key]
            return None
        return entry

    def _fail_memory(
        self, table: dict[str, list[float]], key: str, now: float, lock_after: int, free: int
    ) -> LoginStatus:
        entry = self._live(table, key, now)
        failures, locked = (entry[0], entry[2]) if entry is not None else (0.0, 0.0)
        if 0 < locked <= now:
            failures, locked = 0.0, 0.0
        failures += 1
        over = failures - free
        refused = now + min(self.base_seconds * 2 ** min(over - 1, 64), self.max_seconds) if over > 0 else now
        if lock_after and failures >= lock_after and locked == 0:
            locked = now + self.lockout_seconds
        table.pop(key, None)  # re-inserted last: the table is in order of last failure
        table[key] = [failures, refused, locked, max(refused, locked) + self.lockout_seconds]
        if len(table) > MAX_ENTRIES:
            self._trim(table, now)
        return LoginStatus(int(failures), locked or None)

    @staticmethod
    def _trim(table: dict[str, list[float]], now: float) -> None:
        for k in [k for k, v in table.items() if v[3] <= now]:
            del table[k]
        excess = len(table) - MAX_ENTRIES * 9 // 10
        if excess > 0:  # still full of live entries: drop those that failed longest ago
            for k in list(table)[:excess]:
                del table[k]

    async def _fail_redis(self, key: str, now: float, lock_after: int, free: int) -> LoginStatus:
        assert self._script is not None
        args = [now, self.base_seconds, self.max_seconds, lock_after, self.lockout_seconds, self.lockout_seconds, free]
        failures, _, locked = await self._script(keys=[self._prefix + key], args=args)
        return LoginStatus(int(failures), float(locked) or None)

    async def _forget(self, email: str) -> bool:
        key = _account_key(email)
        if self._redis is None:
            return self._accounts.pop(key, None) is not None
        return bool(await self._redis.delete(self._prefix + key))

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned > _WARN_EVERY:
            self._warned = now
            log.warning("login guard storage failed; logins are not throttled", error=f"{type(exc).__name__}: {exc}")


def _seconds(delay: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(delay)))
