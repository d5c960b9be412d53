"""HTTP API of analytics: the leaderboards of the challenge programs and an account's performance.

Both read what the analytics projection (``analytics/projection.py``) stored; nothing is computed per request. Money
as decimal strings in the account currency, ratios as numbers (``null`` when undefined), days as ISO dates.
Leaderboard pages are cached in Redis when ``REDIS_URL`` is set (``analytics/leaderboard.py``); with Redis down or
slow (over ``CACHE_TIMEOUT_SECONDS``) a page is served uncached from the database, never an error.

The leaderboard is visible to every signed-in user and shows other traders' ``account_id`` beside their public name
(``trader-`` + 8 characters of the user id; never an e-mail). That is deliberate: account ids are opaque identifiers,
not secrets — knowing one grants nothing, since every account route checks ownership (``OwnedAccount``: another
trader's id answers 404).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import Connection

from smart_trader.analytics import leaderboard as boards
from smart_trader.analytics.projection import account_facts
from smart_trader.challenges import store as challenge_store
from smart_trader.core.errors import NotFoundError
from smart_trader.gateway.deps import CurrentPrincipal, OwnedAccount, PlatformDep
from smart_trader.gateway.problems import ProblemError

router = APIRouter(prefix="/api/v1", tags=["analytics"])

MAX_OFFSET = 1_000_000
MAX_DAYS = 3660


class StatsOut(BaseModel):
    """Statistics of one window (``analytics/performance.py`` names each formula): ``period_start`` its first day
    (``null`` for all time), ``first_day``/``last_day`` the days with data, ``return_pct`` = ``total_return`` × 100,
    ``profit`` = end − start equity (exact), Sharpe and Sortino of the gap-filled daily returns (365 a year, risk-free
    0), ``max_drawdown`` a positive fraction, ``win_rate``/``profit_factor`` of the realized trade outcomes,
    ``consistency`` best day ÷ total profit, ``best_day`` the largest day's P&L, ``trades`` realized outcomes,
    ``days`` calendar days."""

    period_start: str | None
    first_day: str
    last_day: str
    return_pct: float | None
    total_return: float | None
    profit: str
    start_equity: str
    end_equity: str
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    win_rate: float | None
    profit_factor: float | None
    consistency: float | None
    best_day: str | None
    trades: int
    days: int


class LeaderboardEntry(StatsOut):
    """One ranked account: ``rank`` (1 = best return), ``trader`` its public name (never an e-mail), the challenge
    phase and status."""

    rank: int
    trader: str
    account_id: str
    phase: str | None
    status: str | None


class LeaderboardOut(BaseModel):
    """One page of a leaderboard: the program's current ``period`` window (``period_start``; ``null`` for all time or
    an empty board), ranked by return; ``next_offset`` is ``null`` on the last page."""

    program: str
    period: str
    period_start: str | None
    limit: int
    offset: int
    next_offset: int | None
    entries: list[LeaderboardEntry]


class PeriodStatsOut(StatsOut):
    """A period's statistics with the fills and commissions of its window."""

    fills: int
    commissions: str


class DailyPointOut(BaseModel):
    """One day: its last equity and its P&L (equity change from the day before)."""

    day: str
    equity: str
    pnl: str


class PerformanceOut(BaseModel):
    """An account's performance: challenge program, phase and status (``null`` for a plain account), initial balance,
    the clock of its days (``day_zone``, ``day_reset``: UTC midnight, or the program's firm days), the statistics of
    each period (``day``, ``week``, ``month``, ``all``; absent before the first event) and its latest daily points."""

    account_id: str
    program: str | None
    challenge_id: str | None
    phase: str | None
    status: str | None
    currency: str
    initial_balance: str
    day_zone: str
    day_reset: str
    periods: dict[str, PeriodStatsOut]
    daily: list[DailyPointOut]


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


@router.get(
    "/leaderboards",
    response_model=LeaderboardOut,
    responses={404: {"description": "unknown challenge program (the message lists the known ones)"}},
)
async def get_leaderboard(
    who: CurrentPrincipal,
    platform: PlatformDep,
    program: Annotated[str, Query(min_length=1, max_length=100, description="a challenge program id")],
    period: Annotated[Literal["day", "week", "month", "all"], Query(description="the window")] = "all",
    limit: Annotated[int, Query(ge=1, le=boards.MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """A challenge program's leaderboard for a period, ranked by return (%), with the other statistics; paginated
    (``limit`` 1..100, ``offset``). The windows are the program's days (its IANA zone and reset time): ``day`` the
    latest firm day with data, ``week`` its ISO week (Monday first), ``month`` its calendar month, ``all`` all time.
    Entries name each account by its ``account_id`` (an opaque id, not a secret: other traders' account routes answer
    404) and its owner's public name. 404 for an unknown program (the detail lists the known ones); 422 for a bad
    period, limit or offset. Served uncached when Redis is down or slow."""
    del who  # any signed-in user
    cache = boards.AsyncLeaderboardCache(platform.redis) if platform.redis is not None else None
    generation: int | None = None
    if cache is not None:  # Redis down or slow: generation None, the page comes from the database, uncached
        generation, hit = await cache.lookup(program, period, limit, offset)
        if hit is not None:
            return _json(hit)

    def page(conn: Connection) -> dict[str, Any]:
        challenge_store.program_of(conn, program)  # NotFoundError naming the known programs
        return boards.leaderboard(conn, program, period, limit, offset)

    try:
        body = boards.encode(await platform.read(page))
    except NotFoundError as exc:
        raise ProblemError(404, str(exc), "not-found") from None
    if cache is not None and generation is not None:
        await cache.store(program, period, limit, offset, generation, body)
    return _json(body)


@router.get("/accounts/{account_id}/performance", response_model=PerformanceOut)
async def get_performance(
    account_id: OwnedAccount,
    platform: PlatformDep,
    days: Annotated[int, Query(ge=0, le=MAX_DAYS, description="how many latest daily points to list")] = 90,
) -> Response:
    """An account's performance (its owner, or a risk manager): return, profit, Sharpe, Sortino, max drawdown, win
    rate, profit factor and consistency per period, and its latest ``days`` daily equity points. Before the analytics
    worker has seen an event of the account, the periods are empty and the daily list too."""

    def read(conn: Connection) -> dict[str, Any] | None:
        found = boards.account_performance(conn, account_id, days)
        if found is not None:
            return found
        facts = account_facts(conn, account_id)
        if facts is None:
            return None
        return {
            **{k: facts[k] for k in ("account_id", "currency", "phase", "challenge_id")},
            "program": facts["program_id"],
            "status": None,
            "initial_balance": str(facts["initial_balance"]),
            "day_zone": facts["day_tz"],
            "day_reset": facts["day_reset"],
            "periods": {},
            "daily": [],
        }

    body = await platform.read(read)
    if body is None:
        raise ProblemError(404, f"no account {account_id}", "not-found")
    return _json(boards.encode(body))
