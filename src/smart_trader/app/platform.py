"""The objects one Smart Trader process shares between its routers: settings, database, writer, hub, runtime.

Routers get it with the :func:`get_platform` dependency. Caches here hold only immutable facts (which user owns
an account) or facts kept current by events (credentials: ``gateway/auth_state.py``), so several API processes
stay consistent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import orjson
from sqlalchemy import Connection, Engine
from starlette.requests import HTTPConnection

from smart_trader.core.ids import InstrumentId
from smart_trader.core.instruments import Instrument
from smart_trader.data.service import MarketDataService
from smart_trader.db.writer import BatchWriter
from smart_trader.gateway import users
from smart_trader.gateway.access import Principal
from smart_trader.gateway.auth_state import AuthState, UserState
from smart_trader.gateway.hashing import PasswordHashing
from smart_trader.gateway.hub import Hub
from smart_trader.gateway.login_guard import LoginGuard
from smart_trader.gateway.problems import ProblemError
from smart_trader.gateway.ratelimit import RateLimiter
from smart_trader.gateway.security import API_KEY_PREFIX, TokenCodec
from smart_trader.live.bar_history import LiveBarHistory
from smart_trader.live.market_state import MarketState
from smart_trader.live.runtime import TradingRuntime
from smart_trader.portfolio import store as account_store
from smart_trader.settings import Settings

T = TypeVar("T")


class OrdersNotifier(Protocol):
    """Tells the trading runtime that orders or cancel requests were stored: with the new order rows (same
    process: no database read needed) or without (it reads what is pending)."""

    def __call__(self, rows: list[Mapping[str, Any]] | None = None) -> None: ...


LAST_PRICES_KEY = "smart-trader:last"
API_KEY_TOUCH_SECONDS = 60.0


@dataclass(eq=False)
class Platform:
    """Everything a request handler may need. ``runtime`` is ``None`` in an API-only process (role ``api``);
    ``live_bars`` (the bars built live from this process's feed, ``live/bar_history.py``) is ``None`` without a feed."""

    settings: Settings
    engine: Engine
    writer: BatchWriter
    hub: Hub
    tokens: TokenCodec
    market_data: MarketDataService
    runtime: TradingRuntime | None = None
    market: MarketState = field(default_factory=MarketState)
    redis: Any = None  # redis.asyncio.Redis when REDIS_URL is set
    notify_orders: OrdersNotifier = field(default=lambda rows=None: None)
    live_bars: LiveBarHistory | None = None
    shared_marks: dict[InstrumentId, Decimal] = field(default_factory=dict)  # refreshed from Redis (api role)
    auth: AuthState = field(init=False)  # credential caches kept current by revocation events
    _owners: dict[str, str] = field(default_factory=dict)
    _plain_accounts: set[str] = field(default_factory=set)  # accounts known to be no challenge accounts
    _key_touched: dict[str, float] = field(default_factory=dict)  # API key id → monotonic time of the last write
    _instruments: dict[InstrumentId, Instrument] = field(default_factory=dict)
    limiter: RateLimiter | None = None  # gateway/ratelimit.py; None: rate limits off
    login_guard: LoginGuard | None = None  # gateway/login_guard.py
    hashing: PasswordHashing | None = None  # gateway/hashing.py: argon2 on its own bounded pool

    def __post_init__(self) -> None:
        self.auth = AuthState(self._load_user, self._load_key, self.hub, float(self.settings.access_token_seconds))
        self._background: set[asyncio.Task[Any]] = set()  # fire-and-forget writes (API key use)

    async def _load_user(self, user_id: str) -> UserState | None:
        user = await self.read(lambda c: users.get_user(c, user_id))
        return None if user is None else UserState(user.roles, user.disabled_ns is not None)

    async def _load_key(self, key: str) -> tuple[str, str] | None:
        owner = await self.read(lambda c: users.owner_of_api_key(c, key))
        return None if owner is None else (owner.key_id, owner.user_id)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` on a pooled connection in a worker thread, in one transaction so that all its statements see
        the same snapshot (an account and its positions agree); writes go through :attr:`writer`."""

        def job() -> T:
            with self.engine.connect() as conn:
                if conn.dialect.name == "postgresql":  # all of fn's statements see one snapshot
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                return fn(conn)

        return await asyncio.to_thread(job)

    async def account_owner(self, account_id: str) -> str | None:
        """User id owning ``account_id`` (cached: ownership never changes), or ``None``."""
        owner = self._owners.get(account_id)
        if owner is None:
            owner = await self.read(lambda c: account_store.owner_of(c, account_id))
            if owner is not None:
                self._owners[account_id] = owner
        return owner

    async def trading_block(self, account_id: str) -> str | None:
        """Why ``account_id`` takes no new orders because of its challenge (failed, locked, phase over), or ``None``.
        A plain paper account is remembered as such (it never becomes a challenge account); a challenge account's
        status is read from the database at each order, so an order placed after a breach is refused at once with the
        rule (the trading runtime would reject it anyway)."""
        if account_id in self._plain_accounts:
            return None
        from smart_trader.challenges.store import NOT_A_CHALLENGE, block_reason

        reason = await self.read(lambda c: block_reason(c, account_id))
        if reason == NOT_A_CHALLENGE:
            self._plain_accounts.add(account_id)
            return None
        return reason

    def touch_api_key(self, key_id: str) -> None:
        """Record an API key's use (``last_used_ns``), at most once a minute per key and process, without waiting."""
        now = time.monotonic()
        if now - self._key_touched.get(key_id, -API_KEY_TOUCH_SECONDS) < API_KEY_TOUCH_SECONDS:
            return
        self._key_touched[key_id] = now
        used = time.time_ns()
        task = asyncio.get_running_loop().create_task(self.writer.run(lambda c: users.touch_api_key(c, key_id, used)))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def authenticate(self, token: str) -> Principal | None:
        """The principal behind an access JWT or an API key (the WebSocket's check), or ``None`` when refused."""
        from smart_trader.gateway.deps import authenticate  # deps builds on this module

        is_key = token.startswith(API_KEY_PREFIX)
        try:
            return await authenticate(self, token if is_key else None, None if is_key else token)
        except ProblemError:
            return None

    async def in_thread(self, fn: Callable[[], T]) -> T:
        """Run blocking work (a market-data store read, a schema check) in a worker thread."""
        return await asyncio.to_thread(fn)

    async def last_prices(self, instrument_id: InstrumentId) -> dict[str, Any] | None:
        """Latest quote and trade of an instrument as a JSON-ready dict: this process's feed, else the one the
        feed process shares in Redis (hash ``smart-trader:last``); ``None`` when nothing was seen."""
        local = self.market.prices.get(instrument_id)
        if local is not None:
            return local.as_dict()
        if self.redis is not None:
            raw = await self.redis.hget(LAST_PRICES_KEY, instrument_id)
            if raw is not None:
                loaded: dict[str, Any] = orjson.loads(raw)
                return loaded
        return None

    async def market_clock(self, instrument_id: InstrumentId) -> int | None:
        """The market clock of an instrument (ns UTC): the time of its latest trade or quote (:meth:`last_prices`:
        this process's feed, else the feed process's through Redis); ``None`` when nothing was seen."""
        last = await self.last_prices(instrument_id)
        if last is None:
            return None
        times = [int(t) for t in (last.get("trade_ts"), last.get("quote_ts")) if t is not None]
        return max(times) if times else None

    def mark(self, instrument_id: InstrumentId) -> Decimal | None:
        """Mark price known to this process (see :class:`MarketState`), else the one shared in Redis."""
        local = self.market.mark(instrument_id)
        if local is not None:
            return local
        shared = self.shared_marks.get(instrument_id)
        return shared

    def instrument(self, instrument_id: InstrumentId) -> Instrument:
        """An instrument of the catalog by id (cached).

        Raises:
            NotFoundError: no such instrument.
        """
        inst = self._instruments.get(instrument_id)
        if inst is None:
            symbol, _, venue = instrument_id.rpartition(".")
            inst = self._instruments[instrument_id] = self.market_data.instrument(symbol, venue)
        return inst


async def get_platform(conn: HTTPConnection) -> Platform:
    """FastAPI dependency: the process's :class:`Platform` (``async`` so FastAPI does not run it in a thread)."""
    platform: Platform = conn.app.state.platform
    return platform
