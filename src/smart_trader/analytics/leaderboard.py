"""Leaderboards and account performance, read from the projection's precomputed rows, and their Redis cache.

**Queries.** :func:`leaderboard` ranks the accounts of one challenge program by their return over one period — the
window each account's row holds (``analytics_performance``, kept by ``analytics/projection.py``): the program's
current window is the latest window start stored for it (its most recent firm day, ISO week or month), so a board
follows the market clock of the data, replayed or live. An account with no day in that window is not on that board;
one whose window starts at an equity at or below zero has no return and is not ranked. Rows come in the order of
the index ``(program_id, period, period_start, total_return, account_id)`` read backwards: return descending, then
account id descending (a stable order for paging); the page's keys are read from the index alone, then their rows.
Nothing is computed per request.

**Cache.** With ``REDIS_URL``, a page is cached under a key naming the program, period, limit, offset and the
program's *generation* (an integer in Redis, ``smart-trader:leaderboard:gen:<program>``), for
:data:`PAGE_TTL_SECONDS`. The projection bumps the generation of every program whose rows it changed after its
transaction commits (:meth:`~smart_trader.analytics.projection.AnalyticsProjection.after_commit`): any process then
computes the page key of the new generation and misses, so a page is never older than the last commit the worker
reported, across processes. Without Redis there is no cache (the query reads an index).

The cache is an optimization, never a dependency: the API's reads and writes of it are bounded by
:data:`CACHE_TIMEOUT_SECONDS` and any Redis error or timeout serves the page uncached from the database
(:meth:`AsyncLeaderboardCache.lookup`, :meth:`AsyncLeaderboardCache.store`, logged as a warning); the projection's
bumps happen after its commit and pause after a failure (``analytics/projection.py``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
import structlog
from redis.exceptions import RedisError
from sqlalchemy import Connection, Row, bindparam, func, select

from smart_trader.analytics.performance import PERIODS, Period
from smart_trader.analytics.tables import (
    analytics_accounts,
    analytics_days,
    analytics_fill_days,
    analytics_performance,
)
from smart_trader.ops.metrics import CACHE_REQUESTS

log = structlog.get_logger("smart_trader.analytics")
# cache_requests_total{cache="leaderboard"} (ops/metrics.py): the lookups of AsyncLeaderboardCache, by result
_CACHE_HIT = CACHE_REQUESTS.labels("leaderboard", "hit")
_CACHE_MISS = CACHE_REQUESTS.labels("leaderboard", "miss")
_CACHE_ERROR = CACHE_REQUESTS.labels("leaderboard", "error")

PAGE_TTL_SECONDS = 30
"""How long a cached page lives at most (a backstop: pages are invalidated by generation)."""

CACHE_TIMEOUT_SECONDS = 0.5
"""The most a leaderboard request waits for Redis (the generation and page reads together, or the page write)."""

MAX_LIMIT = 100
"""The largest page a leaderboard request may ask for."""

KEY_PREFIX = "smart-trader:leaderboard"
ALL_TIME = ""
"""``period_start`` of the ``all`` rows (all time has no start)."""

STAT_FIELDS = ("sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor", "consistency")


def display_name(user_id: str) -> str:
    """The public name of a trader on a leaderboard: ``trader-`` and the first 8 characters of the user id (users
    have no public display name; e-mails are never shown)."""
    return f"trader-{user_id[:8]}"


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def stats_view(row: Row[Any] | Mapping[str, Any]) -> dict[str, Any]:
    """The statistics of one ``analytics_performance`` row as JSON-ready fields: money as decimal strings, return in
    percent (``return_pct``) and as a fraction, the ratios as floats (``None`` when undefined)."""
    r = row._mapping if isinstance(row, Row) else row
    total_return = r["total_return"]
    return {
        "period_start": r["period_start"] or None,
        "first_day": r["first_day"],
        "last_day": r["last_day"],
        "return_pct": None if total_return is None else total_return * 100.0,
        "total_return": total_return,
        "profit": _money(r["profit"]),
        "start_equity": _money(r["start_equity"]),
        "end_equity": _money(r["end_equity"]),
        **{k: r[k] for k in STAT_FIELDS},
        "best_day": _money(r["best_day"]),
        "trades": r["trades"],
        "days": r["days"],
    }


def _statements() -> tuple[Any, Any]:
    """The two queries of a page, built once with bound parameters (``program``, ``period``, ``start``, ``limit``,
    ``offset``)."""
    p, a = analytics_performance, analytics_accounts
    window = select(func.max(p.c.period_start)).where(
        p.c.program_id == bindparam("program"), p.c.period == bindparam("period")
    )
    # the page's keys first: every column read is in the board index (an index-only range read backwards, offset
    # rows skipped inside the index), then the rows and the accounts' phase and status of those keys alone
    keys = (
        select(p.c.account_id, p.c.total_return)
        .where(
            p.c.program_id == bindparam("program"),
            p.c.period == bindparam("period"),
            p.c.period_start == bindparam("start"),
            p.c.total_return.is_not(None),
        )
        .order_by(p.c.total_return.desc(), p.c.account_id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery("page")
    )
    page = (
        select(p, a.c.phase, a.c.status)
        .select_from(
            keys.join(p, (p.c.account_id == keys.c.account_id) & (p.c.period == bindparam("period"))).outerjoin(
                a, a.c.account_id == keys.c.account_id
            )
        )
        .order_by(keys.c.total_return.desc(), keys.c.account_id.desc())
    )
    return window, page


_WINDOW, _PAGE = _statements()


def current_window(conn: Connection, program_id: str, period: Period) -> str | None:
    """The program's current ``period`` window start (ISO date; ``""`` for all time), or ``None`` when no account
    of the program has a row yet. One index lookup."""
    value = conn.execute(_WINDOW, {"program": program_id, "period": period}).scalar()
    return None if value is None else str(value)


def leaderboard(conn: Connection, program_id: str, period: Period, limit: int, offset: int) -> dict[str, Any]:
    """One page of the program's leaderboard for ``period`` (see the module docstring for what is ranked and how).

    Returns a JSON-ready dict: ``program``, ``period``, ``period_start`` (``None`` for all time or an empty board),
    ``limit``, ``offset``, ``next_offset`` (``None`` on the last page) and ``entries`` (``rank``, ``trader``,
    ``account_id``, ``phase``, ``status`` and :func:`stats_view` fields).

    Raises:
        ValueError: ``period`` unknown, ``limit`` outside 1..:data:`MAX_LIMIT` or a negative ``offset`` (the router
            refuses those first with a 422).
    """
    if period not in PERIODS or not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise ValueError(f"bad leaderboard page: period={period!r} limit={limit} offset={offset}")
    start = current_window(conn, program_id, period)
    out: dict[str, Any] = {
        "program": program_id,
        "period": period,
        "period_start": start or None,
        "limit": limit,
        "offset": offset,
        "next_offset": None,
        "entries": [],
    }
    if start is None:
        return out
    params = {"program": program_id, "period": period, "start": start, "limit": limit + 1, "offset": offset}
    q = _PAGE
    rows = list(conn.execute(q, params))
    if len(rows) > limit:
        out["next_offset"] = offset + limit
        rows = rows[:limit]
    out["entries"] = [
        {
            "rank": offset + i + 1,
            "trader": display_name(str(r.user_id)),
            "account_id": r.account_id,
            "phase": r.phase,
            "status": r.status,
            **stats_view(r),
        }
        for i, r in enumerate(rows)
    ]
    return out


def account_performance(conn: Connection, account_id: str, recent_days: int) -> dict[str, Any] | None:
    """An account's performance: its program, challenge, phase and status, initial balance, the clock of its days,
    the statistics of each period (:func:`stats_view` plus ``fills`` and ``commissions`` of the window), and its
    last ``recent_days`` daily points (``day``, ``equity``, ``pnl``: the day's equity change). ``None`` when the
    projection has not seen the account yet."""
    meta = conn.execute(select(analytics_accounts).where(analytics_accounts.c.account_id == account_id)).first()
    if meta is None:
        return None
    rows = conn.execute(select(analytics_performance).where(analytics_performance.c.account_id == account_id))
    by_period = {str(r.period): r for r in rows}
    fills = list(
        conn.execute(
            select(analytics_fill_days.c.day, analytics_fill_days.c.fills, analytics_fill_days.c.commissions).where(
                analytics_fill_days.c.account_id == account_id
            )
        )
    )
    periods: dict[str, Any] = {}
    for period in PERIODS:
        r = by_period.get(period)
        if r is None:
            continue
        since = str(r.period_start) if period != "all" else ""
        inside = [f for f in fills if str(f.day) >= since]
        periods[period] = {
            **stats_view(r),
            "fills": sum(int(f.fills) for f in inside),
            "commissions": str(sum((f.commissions for f in inside), Decimal(0))),
        }
    days_q = (
        select(analytics_days.c.day, analytics_days.c.equity)
        .where(analytics_days.c.account_id == account_id)
        .order_by(analytics_days.c.day.desc())
        .limit(recent_days + 1)
    )
    recent = list(reversed(list(conn.execute(days_q)))) if recent_days > 0 else []
    prev = meta.initial_balance
    if len(recent) > recent_days:  # the day before the first one shown: the base of its P&L
        prev, recent = recent[0].equity, recent[1:]
    daily: list[dict[str, Any]] = []
    for d in recent:
        daily.append({"day": d.day, "equity": str(d.equity), "pnl": str(d.equity - prev)})
        prev = d.equity
    return {
        "account_id": account_id,
        "program": meta.program_id,
        "challenge_id": meta.challenge_id,
        "phase": meta.phase,
        "status": meta.status,
        "currency": meta.currency,
        "initial_balance": str(meta.initial_balance),
        "day_zone": meta.day_tz,
        "day_reset": meta.day_reset,
        "periods": periods,
        "daily": daily,
    }


# -- the cache --------------------------------------------------------------------------------------------------------


def generation_key(program_id: str) -> str:
    """Redis key of a program's generation counter."""
    return f"{KEY_PREFIX}:gen:{program_id}"


def page_key(program_id: str, period: str, limit: int, offset: int, generation: int) -> str:
    """Redis key of one cached page of one generation."""
    return f"{KEY_PREFIX}:page:{program_id}:{period}:{limit}:{offset}:{generation}"


def encode(page: Mapping[str, Any]) -> bytes:
    """A page as the JSON bytes both the cache and the HTTP answer carry."""
    return orjson.dumps(page)


def _generation(raw: Any) -> int:
    return int(raw) if raw is not None else 0


class LeaderboardCache:
    """Leaderboard pages in Redis, invalidated by program generation (sync client: the projection's bumps after each
    commit, benchmarks; give the client socket timeouts — a bump runs on the worker's event loop).

    Args:
        client: a ``redis.Redis``.
        ttl_seconds: lifetime of a cached page.
    """

    def __init__(self, client: Any, ttl_seconds: int = PAGE_TTL_SECONDS) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds

    def generation(self, program_id: str) -> int:
        """The program's current generation (0 before the first bump)."""
        return _generation(self.client.get(generation_key(program_id)))

    def bump(self, program_id: str) -> int:
        """Start a new generation of the program's pages (the old ones are never read again); returns it."""
        return int(self.client.incr(generation_key(program_id)))

    def get(self, program_id: str, period: str, limit: int, offset: int, generation: int) -> bytes | None:
        """A cached page of ``generation``, or ``None``."""
        raw = self.client.get(page_key(program_id, period, limit, offset, generation))
        return None if raw is None else bytes(raw)

    def put(self, program_id: str, period: str, limit: int, offset: int, generation: int, body: bytes) -> None:
        """Cache a page computed at (or after) ``generation``."""
        self.client.set(page_key(program_id, period, limit, offset, generation), body, ex=self.ttl_seconds)


class AsyncLeaderboardCache:
    """:class:`LeaderboardCache` over a ``redis.asyncio.Redis`` (the API process's client).

    :meth:`lookup` and :meth:`store` are what a request uses: bounded by ``timeout_seconds`` and never raising for
    Redis, so a Redis outage costs the cache, not the answer. The other methods raise as the client does.
    """

    def __init__(
        self, client: Any, ttl_seconds: int = PAGE_TTL_SECONDS, timeout_seconds: float = CACHE_TIMEOUT_SECONDS
    ) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.timeout_seconds = timeout_seconds

    async def lookup(self, program_id: str, period: str, limit: int, offset: int) -> tuple[int | None, bytes | None]:
        """``(generation, cached page or None)``; ``(None, None)`` when Redis failed or did not answer within
        ``timeout_seconds`` (logged): the caller serves the page from the database and does not cache it."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                generation = await self.generation(program_id)
                page = await self.get(program_id, period, limit, offset, generation)
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            log.warning("leaderboard_cache_read_failed", program=program_id, error=repr(exc))
            _CACHE_ERROR.inc()
            return None, None
        (_CACHE_MISS if page is None else _CACHE_HIT).inc()
        return generation, page

    async def store(self, program_id: str, period: str, limit: int, offset: int, generation: int, body: bytes) -> None:
        """:meth:`put`, bounded by ``timeout_seconds``; a failure is logged and otherwise ignored."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self.put(program_id, period, limit, offset, generation, body)
        except (RedisError, OSError) as exc:
            log.warning("leaderboard_cache_write_failed", program=program_id, error=repr(exc))

    async def generation(self, program_id: str) -> int:
        """The program's current generation (0 before the first bump)."""
        return _generation(await self.client.get(generation_key(program_id)))

    async def get(self, program_id: str, period: str, limit: int, offset: int, generation: int) -> bytes | None:
        """A cached page of ``generation``, or ``None``."""
        raw = await self.client.get(page_key(program_id, period, limit, offset, generation))
        return None if raw is None else bytes(raw)

    async def put(self, program_id: str, period: str, limit: int, offset: int, generation: int, body: bytes) -> None:
        """Cache a page computed at (or after) ``generation``."""
        await self.client.set(page_key(program_id, period, limit, offset, generation), body, ex=self.ttl_seconds)


def iso(day: dt.date | None) -> str:
    """ISO text of a day (``""`` for ``None``: the ``all`` rows' window start)."""
    return ALL_TIME if day is None else day.isoformat()
