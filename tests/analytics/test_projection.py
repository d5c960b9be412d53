"""The analytics projection on SQLite and PostgreSQL: events of accounts that traded as real backtests did
(``tests/analytics/kit.py``) build their daily series and statistics; a rebuild from scratch in another interleaving
of accounts and streams (each account's own order kept, batches redelivered) gives identical rows; the stored
statistics equal quantstats on the stored series; the leaderboard ranks by return and pages; analytics is an ordered
consumer (one replica reads the outbox in commit order, even with Redis; a replica taking the lock over re-reads what
the other moved on); with Redis the leaderboard generation moves after each committed batch and never inside the
transaction, and a Redis outage pauses the bumps without losing one.

Accounts (equity series from backtests over ``../shared/data``):

- ``plain``: a plain paper account, 10 BTC — ``sma_cross`` on ETH/BTC 5-minute bars, January 2018 (an event every
  two hours and at every fill); UTC days.
- ``orcl`` and ``nvda``: FTMO 2-Step challenge accounts of 10,000 — ``sma_cross`` on ORCL and ``buy_and_hold`` on NVDA,
  daily bars of 2014; firm days in Europe/Prague.
- ``ltc``: a FundedNext Stellar 2-Step account of 6,000 — ``sma_cross`` on LTC/BTC 5-minute bars (an event every
  two hours and at every fill); firm days from 17:00 America/New_York.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis
from sqlalchemy import Engine, select

from smart_trader.analytics.leaderboard import LeaderboardCache, generation_key, leaderboard
from smart_trader.analytics.performance import DayPoint, daily_returns, performance
from smart_trader.analytics.projection import BUMP_RETRY_SECONDS, AnalyticsProjection
from smart_trader.analytics.tables import analytics_accounts, analytics_days, analytics_performance
from smart_trader.app.workers import runners
from smart_trader.challenges import store as challenge_store
from smart_trader.challenges.days import DayClock
from smart_trader.challenges.program import programs
from smart_trader.db.engine import make_engine
from smart_trader.db.migrate import upgrade_to_head
from smart_trader.db.writer import BatchWriter
from smart_trader.gateway.users import register
from smart_trader.portfolio import store as account_store
from smart_trader.strategy.builtin.buy_and_hold import BuyAndHold
from smart_trader.strategy.builtin.sma_cross import SmaCross
from smart_trader.strategy.results import BacktestResult
from smart_trader.workers.consumer import apply
from smart_trader.workers.envelope import Envelope
from tests.analytics.kit import (
    Account,
    backtest,
    batches,
    challenge_events,
    clear,
    interleaved,
    sequential,
    snapshot,
)
from tests.app.conftest import make_settings
from tests.conftest import fresh_database_url

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import quantstats as qs

D = Decimal
ONE_YEAR = dt.date(2014, 1, 1)


@dataclass(frozen=True)
class Run:
    """One account's trading: its backtest and how it is opened."""

    result: BacktestResult
    cash: Decimal
    program: str | None
    every: int


@pytest.fixture(scope="module")
def runs(shared_data: Path) -> dict[str, Run]:
    eth = "bars/ETH-BTC_2018-01_5m.binance.feather"
    ltc = "bars/LTC-BTC_2018-01_5m.binance.feather"
    orcl = "bars/ORCL_1995-2014_1d.yahoo.csv"
    nvda = "bars/NVDA_1999-2014_1d.yahoo.csv"
    return {
        "plain": Run(backtest(shared_data, eth, "ETH/BTC", D(10), SmaCross()), D(10), None, 24),
        "orcl": Run(backtest(shared_data, orcl, "ORCL", D(10_000), SmaCross(), ONE_YEAR), D(10_000), "ftmo-2step", 1),
        "nvda": Run(backtest(shared_data, nvda, "NVDA", D(10_000), BuyAndHold(), ONE_YEAR), D(10_000), "ftmo-2step", 1),
        "ltc": Run(backtest(shared_data, ltc, "LTC/BTC", D(6000), SmaCross()), D(6000), "fundednext-stellar-2step", 24),
    }


@dataclass
class World:
    engine: Engine
    accounts: dict[str, Account]
    users: dict[str, str]  # account name → user id


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path, runs: dict[str, Run]) -> Iterator[World]:
    from tests.analytics.kit import account_events

    engine = make_engine(fresh_database_url(request.param, request, tmp_path))
    upgrade_to_head(engine)
    accounts: dict[str, Account] = {}
    users: dict[str, str] = {}
    with engine.begin() as conn:
        for name, run in runs.items():
            user = register(conn, f"{name}@example.com", "not-a-real-hash")
            users[name] = user.id
            if run.program is None:
                aid = account_store.create_account(conn, user.id, name, "BTC", run.cash)["id"]
                extra: list[Envelope] = []
            else:
                ch = challenge_store.create_challenge(conn, user.id, programs()[run.program], run.cash, "USD")
                aid = ch["account_id"]
            events = account_events(run.result, aid, run.cash, run.every)
            if run.program is not None:
                extra = challenge_events(aid, ch["id"], events[0].ts_event, events[-1].ts_event)
            accounts[name] = Account(aid, sorted([*events, *extra], key=lambda e: e.ts_event))
    try:
        yield World(engine, accounts, users)
    finally:
        engine.dispose()


def apply_all(engine: Engine, projection: AnalyticsProjection, events: list[Envelope], seed: int) -> None:
    for batch in batches(events, seed):
        with engine.begin() as conn:
            apply(conn, projection, batch)
        projection.after_commit()


def test_a_rebuild_in_another_interleaving_gives_identical_rows(world: World) -> None:
    accounts = list(world.accounts.values())
    projection = AnalyticsProjection()
    apply_all(world.engine, projection, sequential(accounts), seed=1)
    with world.engine.connect() as conn:
        first = snapshot(conn)

    clear(world.engine, projection.name)
    mixed = interleaved(accounts, seed=2)
    assert [e.event_id for e in mixed] != [e.event_id for e in sequential(accounts)]
    redelivered = [*mixed[:400], *mixed[200:600], *mixed[300:]]  # at-least-once: batches come again
    apply_all(world.engine, AnalyticsProjection(), redelivered, seed=3)
    with world.engine.connect() as conn:
        second = snapshot(conn)

    assert second == first
    assert len(first["analytics_accounts"]) == 4
    assert len(first["analytics_performance"]) == 4 * 4  # every account, every period
    assert len(first["analytics_days"]) > 2 * 250  # a year of trading days of two daily accounts
    assert sum(r[2] for r in first["analytics_fill_days"]) == sum(  # every fill counted once
        1 for a in accounts for e in a.events if e.event_type == "order.fill"
    )


def test_analytics_is_ordered_one_replica_reads_the_outbox_even_with_redis(tmp_path: Path) -> None:
    """Ordered: the runner reads the commit-ordered outbox under the consumer's lock (one replica at a time), not a
    Redis consumer group shared by replicas — so an account's events of its three streams are applied as written."""
    engine = make_engine(f"sqlite:///{tmp_path / 'ordered.db'}")
    settings = make_settings(tmp_path, "sqlite", None).model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    try:
        (runner,) = runners(settings, engine, BatchWriter(engine), [AnalyticsProjection()])
        assert AnalyticsProjection.ordered is True
        assert runner.source is None and runner.lock is not None
    finally:
        engine.dispose()


def test_the_lock_moving_between_replicas_gives_the_rows_of_one(world: World) -> None:
    """The consumer's lock may move from replica to replica (a restart, a lost session): each keeps recent daily series
    in memory, and a series another replica moved on meanwhile is read again. Simulated by two projections applying
    alternate committed batches, one at a time, in commit order."""
    events = interleaved([world.accounts["orcl"], world.accounts["plain"]], seed=8)
    apply_all(world.engine, AnalyticsProjection(), events, seed=9)
    with world.engine.connect() as conn:
        alone = snapshot(conn)
    clear(world.engine, "analytics")
    replicas = [AnalyticsProjection(), AnalyticsProjection()]
    for i, batch in enumerate(batches(events, seed=10, largest=15)):
        with world.engine.begin() as conn:
            apply(conn, replicas[i % 2], batch)
    with world.engine.connect() as conn:
        assert snapshot(conn) == alone


def test_a_rolled_back_batch_leaves_no_trace_in_the_next_one(world: World) -> None:
    events = sequential([world.accounts["orcl"]])
    apply_all(world.engine, AnalyticsProjection(), events, seed=11)
    with world.engine.connect() as conn:
        once = snapshot(conn)
    clear(world.engine, "analytics")
    projection = AnalyticsProjection()
    with world.engine.begin() as conn:
        apply(conn, projection, events[:100])

    def failing_batch() -> None:  # the writer's transaction fails after the projection applied the batch
        with world.engine.begin() as conn:
            apply(conn, projection, events[100:150])
            raise RuntimeError("the batch's commit failed")

    with pytest.raises(RuntimeError):
        failing_batch()
    with world.engine.begin() as conn:
        apply(conn, projection, events[100:])
    with world.engine.connect() as conn:
        assert snapshot(conn) == once


def _expected_points(account: Account, clock: DayClock) -> list[DayPoint]:
    """The daily series computed here, independently: last equity per day, realized changes as outcomes."""
    days: dict[dt.date, list[Decimal]] = {}
    outcomes: dict[dt.date, list[Decimal]] = {}
    realized = D(0)
    for e in account.events:
        if e.event_type != "account.updated":
            continue
        day = clock.day_of(e.ts_event)
        days.setdefault(day, []).append(D(e.payload["equity"]))
        change = D(e.payload["realized_pnl"]) - realized
        realized = D(e.payload["realized_pnl"])
        if change:
            outcomes.setdefault(day, []).append(change)
    out = []
    for day in sorted(days):
        o = outcomes.get(day, [])
        out.append(
            DayPoint(
                day,
                days[day][-1],
                sum(1 for x in o if x > 0),
                sum(1 for x in o if x < 0),
                sum((x for x in o if x > 0), D(0)),
                -sum((x for x in o if x < 0), D(0)),
            )
        )
    return out


@pytest.mark.parametrize(("name", "tz", "reset"), [("plain", "UTC", "00:00"), ("ltc", "America/New_York", "17:00")])
def test_the_stored_statistics_are_those_of_the_daily_series(
    world: World, runs: dict[str, Run], name: str, tz: str, reset: str
) -> None:
    account = world.accounts[name]
    apply_all(world.engine, AnalyticsProjection(), sequential([account]), seed=4)
    clock = DayClock(tz, dt.time.fromisoformat(reset))
    expected = _expected_points(account, clock)
    with world.engine.connect() as conn:
        meta = conn.execute(select(analytics_accounts).where(analytics_accounts.c.account_id == account.account_id))
        m = meta.one()
        days = list(
            conn.execute(
                select(analytics_days).where(analytics_days.c.account_id == account.account_id).order_by("day")
            )
        )
        row = conn.execute(
            select(analytics_performance).where(
                analytics_performance.c.account_id == account.account_id, analytics_performance.c.period == "all"
            )
        ).one()
    assert (m.day_tz, m.day_reset, m.initial_balance) == (tz, reset, runs[name].cash)
    assert [(r.day, r.equity, r.wins, r.losses) for r in days] == [
        (p.day.isoformat(), p.equity, p.wins, p.losses) for p in expected
    ]
    if name == "ltc":  # a 22:00 UTC event (17:00 New York in January) is already the next firm day's
        late = next(e for e in account.events if e.ts_event % 86_400_000_000_000 >= 22 * 3_600_000_000_000)
        utc_day = dt.datetime.fromtimestamp(late.ts_event / 1e9, dt.UTC).date()
        assert clock.day_of(late.ts_event) == utc_day + dt.timedelta(days=1)
    want = performance(runs[name].cash, expected)
    assert row.profit == want.profit == expected[-1].equity - runs[name].cash  # exact money
    assert row.trades == want.trades > 0
    for field in ("total_return", "sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor", "consistency"):
        expected_value = getattr(want, field)
        if expected_value is None:
            assert getattr(row, field) is None, field
        else:
            assert getattr(row, field) == pytest.approx(expected_value, rel=1e-12), field
    # and the stored Sharpe is quantstats' on the stored series
    r = daily_returns(runs[name].cash, expected)
    series = pd.Series(r, index=pd.date_range(expected[0].day, periods=len(r), freq="D"))
    assert row.sharpe == pytest.approx(qs.stats.sharpe(series, periods=365), abs=1e-9)
    assert -row.max_drawdown == pytest.approx(qs.stats.max_drawdown(series), abs=1e-9)


def test_events_delivered_again_or_older_than_the_last_change_nothing(world: World) -> None:
    events = sequential([world.accounts["orcl"], world.accounts["plain"]])
    projection = AnalyticsProjection()
    apply_all(world.engine, projection, events, seed=5)
    with world.engine.connect() as conn:
        before = snapshot(conn)
    orcl = world.accounts["orcl"]
    old = next(e for e in orcl.events if e.event_type == "account.updated")
    stale = replace(old, event_id="a-new-id-for-an-old-update", outbox_id=10**9)  # a new event, older than applied
    with world.engine.begin() as conn:
        assert apply(conn, projection, events[:300]) == 0  # already consumed
        assert apply(conn, projection, [stale]) == 1
    with world.engine.connect() as conn:
        assert snapshot(conn) == before


def test_the_leaderboard_ranks_a_programs_accounts_by_return_and_pages(world: World) -> None:
    on_board = [world.accounts[k] for k in ("orcl", "nvda", "plain")]
    apply_all(world.engine, AnalyticsProjection(), interleaved(on_board, seed=6), seed=7)
    with world.engine.connect() as conn:
        board = leaderboard(conn, "ftmo-2step", "all", 10, 0)
        first = leaderboard(conn, "ftmo-2step", "all", 1, 0)
        second = leaderboard(conn, "ftmo-2step", "all", 1, 1)
        month = leaderboard(conn, "ftmo-2step", "month", 10, 0)
        nobody = leaderboard(conn, "apex-eod", "week", 10, 0)
        returns = {
            str(r.account_id): r.total_return
            for r in conn.execute(select(analytics_performance).where(analytics_performance.c.period == "all"))
        }

    ftmo = [world.accounts["orcl"].account_id, world.accounts["nvda"].account_id]
    assert [e["account_id"] for e in board["entries"]] == sorted(ftmo, key=lambda a: -returns[a])
    assert [e["rank"] for e in board["entries"]] == [1, 2] and board["next_offset"] is None
    top = board["entries"][0]
    assert top["return_pct"] == pytest.approx(returns[top["account_id"]] * 100)
    assert Decimal(top["profit"]) == Decimal(top["end_equity"]) - Decimal("10000")
    assert top["status"] == "passed" and top["phase"] == programs()["ftmo-2step"].phases[0].name
    name = next(k for k, a in world.accounts.items() if a.account_id == top["account_id"])
    assert top["trader"] == f"trader-{world.users[name][:8]}" and "@" not in str(board)
    assert first["entries"] == board["entries"][:1] and first["next_offset"] == 1
    assert second["entries"][0]["account_id"] == board["entries"][1]["account_id"] and second["next_offset"] is None
    assert second["entries"][0]["rank"] == 2
    prague = DayClock("Europe/Prague", dt.time(0))  # FTMO's days
    last_day = max(prague.day_of(e.ts_event) for k in ("orcl", "nvda") for e in world.accounts[k].events)
    assert month["period_start"] == last_day.replace(day=1).isoformat()  # the month of the latest firm day
    assert [e["account_id"] for e in month["entries"]] == [  # both series end on the same bar
        e["account_id"] for e in sorted(month["entries"], key=lambda e: -e["total_return"])
    ]
    assert len(month["entries"]) == 2
    assert nobody["entries"] == [] and nobody["period_start"] is None
    assert board["period_start"] is None  # all time has no start


class Recording:
    """A sync Redis client that records the commands it is given, then passes them to ``client``."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.commands: list[tuple[str, str]] = []

    def set(self, key: str, value: bytes, ex: int) -> None:
        self.commands.append(("set", key))
        self.client.set(key, value, ex=ex)

    def incr(self, key: str) -> int:
        self.commands.append(("incr", key))
        return int(self.client.incr(key))

    def get(self, key: str) -> bytes | None:
        self.commands.append(("get", key))
        return self.client.get(key)


def test_the_leaderboard_generation_moves_after_each_committed_batch(world: World, redis_url: str) -> None:
    """(The Redis is shared with concurrent tests bumping the same programs: what this projection sent is read from
    its own client, generations are only compared as increasing.)"""
    client = Recording(redis.Redis.from_url(redis_url))
    cache = LeaderboardCache(client)
    projection = AnalyticsProjection(cache)
    events = sequential([world.accounts["orcl"]])
    program = "ftmo-2step"
    cache.put(program, "all", 10, 0, cache.generation(program), b"stale page")
    before = cache.generation(program)
    with world.engine.begin() as conn:
        apply(conn, projection, events[:10])
        sent_during = list(client.commands)
    projection.after_commit()
    after = cache.generation(program)

    assert [c for c in sent_during if c[0] == "incr"] == []  # no Redis inside the transaction
    assert ("incr", generation_key(program)) in client.commands
    assert after > before  # a page cached while the batch was uncommitted is never served again
    assert cache.get(program, "all", 10, 0, after) is None
    with world.engine.begin() as conn:
        apply(conn, projection, [e for e in events[10:20] if e.stream == "orders"])  # fills only: not on boards
    bumps = len([c for c in client.commands if c[0] == "incr"])
    projection.after_commit()
    assert len([c for c in client.commands if c[0] == "incr"]) == bumps
    client.client.close()


def test_with_redis_down_bumps_wait_after_the_commit_and_resume_when_it_is_back(world: World, redis_url: str) -> None:
    """Nothing in the transaction talks to Redis; after a failed bump the projection leaves Redis alone for
    BUMP_RETRY_SECONDS, and every program changed meanwhile is bumped once Redis answers again."""
    down = Recording(redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5))
    cache = LeaderboardCache(down)
    now = [1000.0]
    projection = AnalyticsProjection(cache, clock=lambda: now[0])
    events = interleaved([world.accounts["orcl"], world.accounts["ltc"]], seed=12)  # two programs
    programs_changed = ["ftmo-2step", "fundednext-stellar-2step"]
    assert {e.partition_key for e in events[:300]} == {world.accounts[k].account_id for k in ("orcl", "ltc")}  # both

    with world.engine.begin() as conn:
        apply(conn, projection, events[:300])
    assert down.commands == []  # the writer's transaction never waited on Redis
    projection.after_commit()  # Redis refuses: logged, not raised
    assert down.commands == [("incr", generation_key(programs_changed[0]))]  # one try, not one per program

    now[0] += BUMP_RETRY_SECONDS - 0.1
    with world.engine.begin() as conn:
        apply(conn, projection, events[300:])
    projection.after_commit()
    assert len(down.commands) == 1  # still pausing

    up = Recording(redis.Redis.from_url(redis_url))
    before = {p: LeaderboardCache(up.client).generation(p) for p in programs_changed}
    cache.client = up  # Redis is back
    now[0] += 0.1
    projection.after_commit()
    assert sorted(up.commands) == [("incr", generation_key(p)) for p in programs_changed]
    assert all(LeaderboardCache(up.client).generation(p) > before[p] for p in programs_changed)  # (shared Redis)
    projection.after_commit()  # nothing changed since: nothing to bump
    assert len(up.commands) == 2
    up.client.close()


def test_an_account_the_portfolio_does_not_know_is_skipped(world: World) -> None:
    ghost = replace(world.accounts["plain"].events[0], event_id="ghost", partition_key="nope", outbox_id=1)
    ghost = replace(ghost, payload={**ghost.payload, "account_id": "no-such-account"})
    with world.engine.begin() as conn:
        apply(conn, AnalyticsProjection(), [ghost])
    with world.engine.connect() as conn:
        assert all(rows == [] for rows in snapshot(conn).values())


def test_undefined_returns_are_not_ranked(world: World) -> None:
    """A window starting at equity 0 has no return: the row is kept, the board leaves it out."""
    aid = world.accounts["orcl"].account_id
    events = [e for e in world.accounts["orcl"].events if e.event_type == "account.updated"][:3]
    zero = [replace(e, payload={**e.payload, "equity": "0"}) for e in events[:2]]
    with world.engine.begin() as conn:
        apply(conn, AnalyticsProjection(), [*zero, events[2]])
    with world.engine.connect() as conn:
        day = conn.execute(
            select(analytics_performance).where(
                analytics_performance.c.account_id == aid, analytics_performance.c.period == "day"
            )
        ).one()
        board = leaderboard(conn, "ftmo-2step", "day", 10, 0)
    assert day.total_return is None and day.start_equity == 0
    assert board["entries"] == [] and board["period_start"] == day.period_start
    assert np.isfinite(day.max_drawdown)
