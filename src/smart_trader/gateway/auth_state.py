"""What one process knows about credentials: users' roles and state, API keys, revoked sessions — and how a
revocation reaches every process at once.

Checking a request must not cost a database read, so each process caches:

- users (roles, disabled) by id, read on first use;
- API keys (key → key id, user) once looked up;
- sessions revoked while their access tokens may still be alive (``access_token_seconds``).

A change (key revoked, session revoked by logout, reuse or password change, user disabled or given other roles) is
applied to this process's cache before the request that made it is answered, and published as an event on the
hub's :data:`AUTH_TOPIC` — through Redis pub/sub to every other process when ``REDIS_URL`` is set — which drops the
cached entries and closes the WebSockets opened with those credentials (code 1008); a value being read from the
database while an event arrives is read again and not cached. Pub/sub delivers at most once, so each process also
reads what was revoked in the database every :data:`BACKSTOP_SECONDS` (a lost message, or a change made with
``smart-trader users``, is then late by seconds, never forgotten).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from smart_trader.gateway.access import Principal, Role
from smart_trader.gateway.hub import Hub

AUTH_TOPIC = "_control.auth"
BACKSTOP_SECONDS = 5.0
MAX_CACHED_KEYS = 10_000
NEGATIVE_KEY_SECONDS = 30.0
log = structlog.get_logger("smart_trader.auth")


@dataclass(frozen=True, slots=True)
class UserState:
    """A user as requests see them: roles, and whether disabled."""

    roles: frozenset[Role]
    disabled: bool


@dataclass(frozen=True, slots=True)
class AuthChange:
    """One revocation event: a session, an API key, or a user whose roles or state changed (ids; empty when not
    concerned)."""

    user_id: str
    session_ids: tuple[str, ...] = ()
    key_id: str = ""
    user_changed: bool = False

    def to_json(self) -> str:
        """The event as published on :data:`AUTH_TOPIC`."""
        return orjson.dumps(
            {"type": "auth", "user": self.user_id, "sessions": self.session_ids, "key": self.key_id,
             "user_changed": self.user_changed}
        ).decode()  # fmt: skip

    @staticmethod
    def from_json(text: str | bytes) -> AuthChange:
        """Parse a published event (raises ``ValueError``/``KeyError`` on a malformed one)."""
        d = orjson.loads(text)
        return AuthChange(str(d["user"]), tuple(str(s) for s in d["sessions"]), str(d["key"]), bool(d["user_changed"]))


Closer = Callable[[str], Coroutine[Any, Any, None]]


@dataclass(eq=False)
class AuthState:
    """The process's credential caches and the open WebSockets' principals (see the module docstring).

    Args:
        load_user: reads a user's state (``None``: no such user), in a thread.
        load_key: reads the owner of an API key (``None``: unknown or revoked), in a thread.
        hub: where events are published and received.
        session_ttl_s: how long a revoked session must be remembered (the access token lifetime, seconds).
    """

    load_user: Callable[[str], Awaitable[UserState | None]]
    load_key: Callable[[str], Awaitable[tuple[str, str] | None]]
    hub: Hub
    session_ttl_s: float
    users: dict[str, UserState | None] = field(default_factory=dict)
    keys: dict[str, tuple[str, str] | None] = field(default_factory=dict)  # key → (key id, user id) | None
    _key_misses: dict[str, float] = field(default_factory=dict)
    revoked_sessions: dict[str, float] = field(default_factory=dict)  # sid → monotonic time it may be forgotten
    sockets: dict[object, tuple[Principal, Closer]] = field(default_factory=dict)
    _changes: int = 0  # events applied so far: a value loaded while one arrived may be stale and is not kept

    async def user(self, user_id: str) -> UserState | None:
        """The user's state (cached until an event says it changed)."""
        if user_id in self.users:
            return self.users[user_id]
        seen = self._changes
        state = await self.load_user(user_id)
        if seen != self._changes:  # an event arrived during the read: it may predate it, so read again
            state = await self.load_user(user_id)
            if seen != self._changes:
                return state  # answered, not cached
        if len(self.users) >= 100_000:
            self.users.clear()
        self.users[user_id] = state
        return state

    async def key_owner(self, key: str) -> tuple[str, str] | None:
        """(key id, user id) of an unrevoked API key, or ``None``. Unknown keys are remembered for
        :data:`NEGATIVE_KEY_SECONDS` (a key is 240 random bits: a guessed key is never created later)."""
        hit = self.keys.get(key)
        if hit is not None:
            return hit
        missed = self._key_misses.get(key)
        if missed is not None and time.monotonic() - missed < NEGATIVE_KEY_SECONDS:
            return None
        seen = self._changes
        owner = await self.load_key(key)
        if seen != self._changes:  # an event arrived during the read: read again, and do not cache
            return await self.load_key(key)
        if owner is None:
            if len(self._key_misses) >= MAX_CACHED_KEYS:
                self._key_misses.clear()
            self._key_misses[key] = time.monotonic()
            return None
        if len(self.keys) >= MAX_CACHED_KEYS:
            self.keys.clear()
        self.keys[key] = owner
        return owner

    def session_revoked(self, session_id: str) -> bool:
        """Whether the session was revoked (logout, refresh reuse, password change, user disabled)."""
        return session_id in self.revoked_sessions

    # -- changes ---------------------------------------------------------------------------
    def publish(self, change: AuthChange) -> None:
        """Apply ``change`` here at once, then tell every process (including this one, again: harmless)."""
        self.apply(change)
        self.hub.publish(AUTH_TOPIC, change.to_json())

    def apply(self, change: AuthChange) -> None:
        """Drop what ``change`` makes stale and close the WebSockets it ends."""
        self._changes += 1
        now = time.monotonic()
        for sid in change.session_ids:
            self.revoked_sessions[sid] = now + self.session_ttl_s
        if len(self.revoked_sessions) > 1000:
            self.revoked_sessions = {s: t for s, t in self.revoked_sessions.items() if t > now}
        if change.key_id:
            for k in [k for k, v in self.keys.items() if v is not None and v[0] == change.key_id]:
                del self.keys[k]
        if change.user_changed:
            self.users.pop(change.user_id, None)
        self._close_sockets(change)

    def _close_sockets(self, change: AuthChange) -> None:
        sessions = set(change.session_ids)
        for principal, close in list(self.sockets.values()):
            if principal.user_id != change.user_id:
                continue
            if change.user_changed:
                reason = "credentials changed: user disabled or roles changed"
            elif change.key_id and principal.key_id == change.key_id:
                reason = "API key revoked"
            elif principal.session_id is not None and principal.session_id in sessions:
                reason = "session ended"
            else:
                continue
            asyncio.get_running_loop().create_task(close(reason))

    def forget_sessions(self, session_ids: Iterable[str]) -> None:
        """Mark sessions revoked (loaded at start: revoked while their access tokens may still be alive)."""
        expiry = time.monotonic() + self.session_ttl_s
        for sid in session_ids:
            self.revoked_sessions[sid] = expiry

    async def recheck_user(self, user_id: str) -> None:
        """Reload a user's state (the backstop saw a change): close their WebSockets when they are now disabled or
        gone, or hold roles other than before."""
        if user_id not in self.users:
            return
        before = self.users.pop(user_id)
        after = await self.user(user_id)
        if after != before and (
            after is None or after.disabled or (before is not None and after.roles != before.roles)
        ):
            self._close_sockets(AuthChange(user_id, user_changed=True))

    # -- WebSockets ------------------------------------------------------------------------
    def watch(self, connection: object, principal: Principal, close: Closer) -> None:
        """Register an open WebSocket: ``close(reason)`` is awaited when its credentials are revoked."""
        self.sockets[connection] = (principal, close)

    def unwatch(self, connection: object) -> None:
        """Forget a closed WebSocket."""
        self.sockets.pop(connection, None)


async def listen(state: AuthState) -> None:
    """Apply the events other processes (and this one) publish on :data:`AUTH_TOPIC`, until cancelled."""
    hub = state.hub
    sub = hub.attach(queue_size=100_000)
    hub.subscribe(sub, AUTH_TOPIC)
    try:
        while True:
            await sub.wait()
            for message in sub.drain():
                try:
                    state.apply(AuthChange.from_json(message))
                except (ValueError, KeyError, TypeError):
                    log.warning("malformed auth event ignored", message=str(message)[:200])
    finally:
        hub.detach(sub)


async def backstop(
    state: AuthState, changed_since: Callable[[int], Awaitable[Any]], every: float = BACKSTOP_SECONDS
) -> None:
    """Every ``every`` seconds, apply what the database says was revoked or changed since the last look (events
    lost by pub/sub are late, never forgotten). ``changed_since(ns)`` returns
    :func:`~smart_trader.gateway.users.revoked_since`'s triple."""
    since = time.time_ns()
    while True:
        await asyncio.sleep(every)
        now = time.time_ns()
        with contextlib.suppress(Exception):
            sessions, keys, users = await changed_since(since - 2_000_000_000)  # overlap: clocks of two writers
            for sid, uid in sessions:
                if sid not in state.revoked_sessions:
                    state.apply(AuthChange(uid, (sid,)))
            for key_id in keys:
                if any(v is not None and v[0] == key_id for v in state.keys.values()):
                    owner = next(v[1] for v in state.keys.values() if v is not None and v[0] == key_id)
                    state.apply(AuthChange(owner, key_id=key_id))
            for uid in users:
                await state.recheck_user(uid)
            since = now
