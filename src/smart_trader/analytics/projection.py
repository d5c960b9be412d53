"""The analytics projection: per-account performance kept current from the domain events.

:class:`AnalyticsProjection` is a consumer of the event backbone (``workers/consumer.py``) reading three streams:

- ``accounts`` — ``account.updated`` (payload: the account view; ``equity``, ``cash``, cumulative ``realized_pnl``,
  ``ts`` = ``ts_event``): the event's equity becomes the last equity of its day (``analytics_days``, one row per
  account per day); a change of the cumulative realized P&L since the account's previous event is one realized
  trade outcome, counted on its day as a win or a loss with its amount. Then the account's statistics of every
  period (``analytics/performance.py``) are recomputed from its day rows and stored (``analytics_performance``).
- ``orders`` — ``order.fill``: fills and commissions per account per day (``analytics_fill_days``).
- ``challenges`` — every ``challenge.*`` event: the challenge's status (``active``, ``passed``, ``failed``...).

**Days.** A plain account's days are UTC dates; a challenge account's are its program's firm days (the program's
IANA zone and reset time, :class:`~smart_trader.challenges.days.DayClock`), the days its rules count. The day, week
and month windows group those day labels (so for a challenge account the periods follow the firm's days, not UTC).

**Trade outcomes** are realized-P&L changes between consecutive account events (realized P&L before commission, as
the portfolio reports it, multiplier included): a fill that closes or reduces a position makes one; fills stored in
the same runtime batch for one account make one together. The ``order.fill`` payload carries no realized P&L of its
own, and deriving it here would re-implement the portfolio's average-cost accounting without the instrument's
multiplier.

**Determinism and order.** What the projection stores depends only on the events (and on facts about the account
that never change: owner, initial balance, program, read once from the portfolio and challenges services), so
applying all events to empty tables gives the same rows as applying them as they came. Analytics is an ORDERED
consumer (``ordered = True``): one replica at a time (the holder of its lock, ``workers/leader.py``) reads the outbox
in commit order, so an account's events of all three streams come in the order they were written; accounts
interleave freely. When the lock moves to another replica, the series each replica keeps in memory are checked
against the stored version of the account and read again when the other moved on. An ``account.updated`` older
(``ts_event``) than the last one applied is ignored; a challenge status older than the stored one too.

**Cache invalidation.** Every program whose rows changed is remembered; :meth:`AnalyticsProjection.after_commit`
(the worker calls it once the batch committed) bumps each one's leaderboard generation in Redis
(``analytics/leaderboard.py``). Nothing in :meth:`~AnalyticsProjection.handle` talks to Redis: a Redis outage never
holds the writer's transaction. When a bump fails (Redis down, or slow beyond the client's timeouts) the projection
does not try again for :data:`BUMP_RETRY_SECONDS` and keeps the programs not bumped yet: they are bumped at the first
``after_commit`` after that, with Redis back (meanwhile a cached page lives at most its TTL).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import structlog
from redis.exceptions import RedisError
from sqlalchemy import Connection, Row, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smart_trader.analytics.leaderboard import LeaderboardCache, iso
from smart_trader.analytics.performance import ZERO, DayPoint, all_windows
from smart_trader.analytics.tables import (
    analytics_accounts,
    analytics_days,
    analytics_fill_days,
    analytics_performance,
)
from smart_trader.challenges import store as challenge_store
from smart_trader.challenges.days import DayClock
from smart_trader.core.errors import NotFoundError
from smart_trader.portfolio import store as account_store
from smart_trader.workers.envelope import Envelope

log = structlog.get_logger("smart_trader.analytics")

UTC_ZONE = "UTC"
MIDNIGHT = dt.time(0, 0)
BUMP_RETRY_SECONDS = 5.0
"""After a failed leaderboard generation bump, how long :meth:`AnalyticsProjection.after_commit` leaves Redis alone."""


SERIES_CACHE = 4096
"""Accounts whose daily series the projection keeps in memory (least recently used beyond)."""


class _Statements:
    """The projection's upserts for one dialect (PostgreSQL or SQLite ``ON CONFLICT``), built once."""

    def __init__(self, dialect: str) -> None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        a, f_ = analytics_accounts, analytics_fill_days
        self.meta = select(a).where(a.c.account_id == bindparam("aid"))
        self.advance = (
            update(a)
            .where(a.c.account_id == bindparam("aid"))
            .values(last_ts=bindparam("ts"), events=bindparam("n"), realized_pnl=bindparam("realized"))
        )
        self.fill_day = select(f_.c.fills, f_.c.commissions).where(
            f_.c.account_id == bindparam("aid"), f_.c.day == bindparam("d")
        )
        self.account = insert(analytics_accounts).on_conflict_do_nothing()
        d = insert(analytics_days)
        self.day = d.on_conflict_do_update(
            index_elements=["account_id", "day"],
            set_={c.name: d.excluded[c.name] for c in analytics_days.columns if not c.primary_key},
        )
        f = insert(analytics_fill_days)
        self.fill = f.on_conflict_do_update(
            index_elements=["account_id", "day"],
            set_={"fills": f.excluded.fills, "commissions": f.excluded.commissions},
        )
        p = insert(analytics_performance)
        self.performance = p.on_conflict_do_update(
            index_elements=["account_id", "period"],
            set_={c.name: p.excluded[c.name] for c in analytics_performance.columns if not c.primary_key},
        )


def _dec(value: Any) -> Decimal | None:
    """A payload money value (decimal string) as Decimal; ``None`` stays ``None``."""
    return None if value is None else Decimal(str(value))


def account_facts(conn: Connection, account_id: str) -> dict[str, Any] | None:
    """What never changes about an account, from the portfolio and challenges services: ``account_id``, ``user_id``,
    ``currency``, ``initial_balance``; for a challenge account ``program_id``, ``challenge_id``, ``phase`` and the
    clock of its days (``day_tz`` IANA zone, ``day_reset`` HH:MM: the program's), else ``None`` and UTC midnight.
    ``None`` for an account the portfolio does not know."""
    account = account_store.get_account(conn, account_id)
    if account is None:
        return None
    tz, reset, program_id, challenge_id, phase = UTC_ZONE, MIDNIGHT, None, None, None
    challenge = challenge_store.challenge_of_account(conn, account_id)
    if challenge is not None:
        program_id, challenge_id = str(challenge.program_id), str(challenge.id)
        try:
            program = challenge_store.program_of(conn, program_id)
        except NotFoundError:  # a program no longer defined: UTC days
            log.warning("analytics_unknown_program", account_id=account_id, program=program_id)
        else:
            tz, reset = program.tz, program.reset_time
            if 0 <= int(challenge.phase_index) < len(program.phases):
                phase = program.phases[int(challenge.phase_index)].name[:100]
    return {
        "account_id": account_id,
        "user_id": str(account.user_id),
        "program_id": program_id,
        "challenge_id": challenge_id,
        "phase": phase,
        "currency": str(account.currency),
        "initial_balance": account.starting_balance,
        "day_tz": tz,
        "day_reset": reset.strftime("%H:%M"),
    }


class AnalyticsProjection:
    """The ``analytics`` consumer (see the module docstring).

    The daily series of recently seen accounts stay in memory (:data:`SERIES_CACHE` accounts), each with the version
    it was read or written at (``analytics_accounts.events``, the count of account events applied, and ``last_ts``):
    when the stored version differs — the consumer's lock moved to another replica that applied events of the
    account, or a batch rolled back — the series is read again.

    Args:
        cache: the leaderboard cache whose program generations to bump after each commit (``None``: no cache, no
            Redis). Its client should have socket timeouts: a bump runs on the worker's event loop.
        clock: monotonic seconds (the retry pause after a failed bump).
    """

    name = "analytics"
    streams: tuple[str, ...] = ("accounts", "orders", "challenges")
    ordered = True

    def __init__(self, cache: LeaderboardCache | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.cache = cache
        self._monotonic = clock
        self._dirty: set[str] = set()
        self._retry_at: float | None = None
        self._clocks: dict[tuple[str, str], DayClock] = {}
        self._statements: dict[str, _Statements] = {}
        self._series: OrderedDict[str, tuple[tuple[int, int | None], list[DayPoint]]] = OrderedDict()
        self._pending: dict[str, tuple[Row[Any], list[DayPoint], int]] = {}
        self._fills: dict[tuple[str, str], tuple[int, Decimal]] = {}
        self._facts: dict[str, Row[Any]] = {}  # account id → its analytics_accounts row (the fixed facts are read)
        self._txn: Any = None

    # -- the consumer protocol --------------------------------------------------------------------------------------

    def handle(self, conn: Connection, event: Envelope) -> None:
        """Apply one event inside the caller's transaction (other event types are ignored).

        Raises:
            SQLAlchemyError: the database refused a statement (the batch is retried by the transport).
            decimal.InvalidOperation, KeyError: a malformed payload (dead-lettered after the transport's attempts).
        """
        if event.event_type == "account.updated":
            program = self._account_updated(conn, event)
        elif event.event_type == "order.fill":
            program = self._fill(conn, event)
        elif event.stream == "challenges":
            program = self._challenge(conn, event)
        else:
            return
        if program is not None:
            self._dirty.add(program)  # bumped after the commit (after_commit), never here: no Redis in a transaction

    def flush(self, conn: Connection) -> None:
        """Store the statistics of every account whose series changed in this batch (called by the backbone once at
        the end of each batch, in its transaction): once per account per batch, not at every event."""
        pending, self._pending, self._txn = self._pending, {}, None
        fills, self._fills = self._fills, {}
        for meta, points, ts in pending.values():
            self._store_performance(conn, meta, points, ts)
        for (aid, day), (n, paid) in fills.items():
            # read, add, write: exact decimals are text on SQLite, so the sum is made here (only this stream writes it)
            known = conn.execute(self._sql(conn).fill_day, {"aid": aid, "d": day}).first()
            count, commissions = (int(known.fills), known.commissions) if known is not None else (0, ZERO)
            row = {"account_id": aid, "day": day, "fills": count + n, "commissions": commissions + paid}
            conn.execute(self._sql(conn).fill, [row])

    def _batch(self, conn: Connection) -> None:
        """Start the batch's pending work afresh when ``conn``'s transaction is new (a failed one's is gone)."""
        txn = conn.get_transaction()
        if txn is not self._txn:
            self._pending, self._fills, self._txn = {}, {}, txn

    def after_commit(self) -> None:
        """Bump the leaderboard generation of every program changed since the last successful bump (call it after
        each committed batch; harmless after a rolled-back one: a page is recomputed for nothing).

        Never raises for Redis: at the first failed bump it logs a warning, keeps that program and the ones not bumped
        yet, and does nothing more until :data:`BUMP_RETRY_SECONDS` have passed."""
        if self.cache is None:
            self._dirty.clear()
            return
        if not self._dirty:
            return
        now = self._monotonic()
        if self._retry_at is not None and now < self._retry_at:
            return  # Redis failed a moment ago: the programs stay dirty until the pause is over
        self._retry_at = None
        for program in sorted(self._dirty):
            try:
                self.cache.bump(program)
            except (RedisError, OSError) as exc:  # pages live until their TTL; the projection goes on
                self._retry_at = self._monotonic() + BUMP_RETRY_SECONDS
                log.warning(
                    "analytics_cache_bump_failed",
                    program=program,
                    pending=len(self._dirty),
                    retry_in_s=BUMP_RETRY_SECONDS,
                    error=str(exc),
                )
                return
            self._dirty.discard(program)

    # -- events -----------------------------------------------------------------------------------------------------

    def _account_updated(self, conn: Connection, event: Envelope) -> str | None:
        payload = event.payload
        aid = str(payload.get("account_id") or event.partition_key)
        meta = self._meta(conn, aid)
        if meta is None:
            return None
        ts = int(event.ts_event)
        if meta.last_ts is not None and ts < int(meta.last_ts):
            return None  # older than what was applied: a redelivery out of order
        realized = _dec(payload.get("realized_pnl"))
        outcome = ZERO if realized is None else realized - meta.realized_pnl
        day = self._clock(meta).day_of(ts)
        version = (int(meta.events), meta.last_ts)
        points = self._points(conn, aid, version)
        last = points[-1] if points else None
        if last is not None and last.day > day:
            return None  # a day before the last one (cannot follow from a newer ts): history is not rewritten
        equity = _dec(payload.get("equity"))
        if equity is None:  # no mark for a position: the equity is unknown, the day keeps the last one known
            equity = last.equity if last is not None else meta.initial_balance
        today = last if last is not None and last.day == day else None
        point = DayPoint(
            day=day,
            equity=equity,
            wins=(today.wins if today else 0) + (1 if outcome > 0 else 0),
            losses=(today.losses if today else 0) + (1 if outcome < 0 else 0),
            gross_profit=(today.gross_profit if today else ZERO) + max(outcome, ZERO),
            gross_loss=(today.gross_loss if today else ZERO) + max(-outcome, ZERO),
        )
        if today is not None:
            points[-1] = point
        else:
            points.append(point)
        statements = self._sql(conn)
        row = {
            "account_id": aid,
            "day": iso(day),
            "equity": point.equity,
            "ts": ts,
            "wins": point.wins,
            "losses": point.losses,
            "gross_profit": point.gross_profit,
            "gross_loss": point.gross_loss,
        }
        conn.execute(statements.day, [row])
        applied = int(meta.events) + 1
        kept = meta.realized_pnl if realized is None else realized
        conn.execute(statements.advance, {"aid": aid, "ts": ts, "n": applied, "realized": kept})
        self._remember(aid, (applied, ts), points)
        # the statistics depend on the whole series: recomputed once per account at the batch's end (flush)
        self._batch(conn)
        self._pending[aid] = (meta, points, ts)
        return None if meta.program_id is None else str(meta.program_id)

    def _fill(self, conn: Connection, event: Envelope) -> str | None:
        payload = event.payload
        fill = payload.get("fill") or {}
        aid = str(payload.get("account_id") or event.partition_key)
        meta = self._facts.get(aid)  # only the account's fixed facts (its day clock) are needed here
        if meta is None:
            meta = self._meta(conn, aid)
            if meta is None:
                return None
            self._facts[aid] = meta
        ts = int(fill.get("ts_event") or event.ts_event)
        commission = _dec(fill.get("commission")) or ZERO
        day = iso(self._clock(meta).day_of(ts))
        self._batch(conn)  # summed per account and day over the batch, written once at its end (flush)
        n, paid = self._fills.get((aid, day), (0, ZERO))
        self._fills[(aid, day)] = (n + 1, paid + commission)
        return None  # fills are not on the leaderboards

    def _challenge(self, conn: Connection, event: Envelope) -> str | None:
        payload = event.payload
        view = payload.get("challenge") or {}
        status = view.get("status")
        aid = str(payload.get("account_id") or event.partition_key)
        if status is None:
            return None
        meta = self._meta(conn, aid)
        if meta is None:
            return None
        ts = int(event.ts_event)
        a = analytics_accounts
        conn.execute(
            update(a)
            .where(a.c.account_id == aid, (a.c.status_ts.is_(None)) | (a.c.status_ts <= ts))
            .values(status=str(status)[:16], status_ts=ts)
        )
        return None if meta.program_id is None else str(meta.program_id)

    # -- state ------------------------------------------------------------------------------------------------------

    def _sql(self, conn: Connection) -> _Statements:
        name = conn.dialect.name
        statements = self._statements.get(name)
        if statements is None:
            statements = self._statements[name] = _Statements(name)
        return statements

    def _meta(self, conn: Connection, account_id: str) -> Row[Any] | None:
        """The account's ``analytics_accounts`` row, made at its first event from :func:`account_facts`. ``None`` for an
        account the portfolio does not know (the event is skipped, logged)."""
        q = self._sql(conn).meta
        row = conn.execute(q, {"aid": account_id}).first()
        if row is not None:
            return row
        facts = account_facts(conn, account_id)
        if facts is None:
            log.warning("analytics_unknown_account", account_id=account_id)
            return None
        values = {**facts, "realized_pnl": ZERO, "events": 0, "last_ts": None, "status": None, "status_ts": None}
        conn.execute(self._sql(conn).account, [values])
        return conn.execute(q, {"aid": account_id}).first()

    def _clock(self, meta: Row[Any]) -> DayClock:
        key = (str(meta.day_tz), str(meta.day_reset))
        clock = self._clocks.get(key)
        if clock is None:
            clock = self._clocks[key] = DayClock(key[0], dt.time.fromisoformat(key[1]))
        return clock

    def _points(self, conn: Connection, account_id: str, version: tuple[int, int | None]) -> list[DayPoint]:
        """The account's daily series (a copy the caller may change): from memory when it was read or written at
        ``version`` (account events applied, last event time), else from ``analytics_days``."""
        cached = self._series.get(account_id)
        if cached is not None and cached[0] == version:
            self._series.move_to_end(account_id)
            return list(cached[1])
        d = analytics_days
        q = select(d).where(d.c.account_id == account_id).order_by(d.c.day)
        return [
            DayPoint(dt.date.fromisoformat(r.day), r.equity, r.wins, r.losses, r.gross_profit, r.gross_loss)
            for r in conn.execute(q)
        ]

    def _remember(self, account_id: str, version: tuple[int, int | None], points: list[DayPoint]) -> None:
        self._series[account_id] = (version, points)
        self._series.move_to_end(account_id)
        while len(self._series) > SERIES_CACHE:
            self._series.popitem(last=False)

    def _store_performance(self, conn: Connection, meta: Row[Any], points: Sequence[DayPoint], ts: int) -> None:
        rows = [
            performance_row(str(meta.account_id), meta.program_id, str(meta.user_id), period, start, perf, ts)
            for period, perf, start in all_windows(meta.initial_balance, points)
        ]
        conn.execute(self._sql(conn).performance, rows)


def performance_row(
    account_id: str, program_id: str | None, user_id: str, period: str, start: Any, perf: Any, ts: int
) -> dict[str, Any]:
    """An ``analytics_performance`` row: the statistics ``perf`` (:mod:`smart_trader.analytics.performance`) of one
    account over the ``period`` window that starts on ``start`` (a date), as of the event time ``ts`` (ns UTC)."""
    return {
        "account_id": account_id,
        "period": period,
        "program_id": program_id,
        "user_id": user_id,
        "period_start": iso(start),
        "first_day": iso(perf.first_day),
        "last_day": iso(perf.last_day),
        "start_equity": perf.start_equity,
        "end_equity": perf.end_equity,
        "profit": perf.profit,
        "total_return": perf.total_return,
        "sharpe": perf.sharpe,
        "sortino": perf.sortino,
        "max_drawdown": perf.max_drawdown,
        "win_rate": perf.win_rate,
        "profit_factor": perf.profit_factor,
        "consistency": perf.consistency,
        "best_day": perf.best_day,
        "trades": perf.trades,
        "days": perf.days,
        "updated_ts": ts,
    }
