"""Promotion on the platform, without HTTP: :class:`ChallengeBinder` as the runtime uses it (its monitors in a real
:class:`AccountSession` built by :class:`SessionFactory` on a :class:`MarketClock`, its rows written with
``collect`` + ``write`` in a transaction) on a SQLite database made by the project's migrations. A two-phase program
with a 1 % target and one minimum trading day passes its first phase with a round trip; the written rows promote it:
the first challenge is ``promoted``, the second phase opens on a fresh account funded at the size, linked by
``previous_id``; events are stored once and the phase promoted once however often a batch is written, and a change of
the monitor after the promotion leaves it promoted; the stored state restores to an evaluator with the same status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from smart_trader.challenges import store
from smart_trader.challenges.evaluator import ChallengeEvaluator
from smart_trader.challenges.persist import ChallengeBinder, ChallengeRows
from smart_trader.challenges.program import Program, get_program, program_from_dict, programs
from smart_trader.challenges.state import Status
from smart_trader.challenges.tables import challenge_events, challenges
from smart_trader.core.clock import MarketClock
from smart_trader.core.instruments import AssetClass, Instrument
from smart_trader.db.engine import make_engine
from smart_trader.db.migrate import upgrade_to_head
from smart_trader.db.outbox import outbox
from smart_trader.execution import store as order_store
from smart_trader.execution.enums import OrderSide, OrderType
from smart_trader.execution.orders import OrderRequest
from smart_trader.execution.paper_broker import FillConfig
from smart_trader.gateway.users import register
from smart_trader.portfolio import store as account_store
from smart_trader.trading.session import AccountSession, SessionFactory

D = Decimal
BTC = Instrument("BTC/USDT", "BINANCE", AssetClass.CRYPTO, "BTC", "USDT", D("0.01"), D("0.00001"))
T0 = 1_610_064_000_000_000_000  # 2021-01-08T00:00:00Z
SECOND = 1_000_000_000
SIZE = D("10000")
WALL = 1_800_000_000_000_000_000  # the binder's injected wall clock (outbox rows)


def tiny_program(target_basis: str = "balance_flat") -> Program:
    """FTMO 2-Step's first two phases with a 1 % profit target on ``target_basis`` and one minimum trading day (id
    ``tiny-2step``)."""
    data = get_program("ftmo-2step").model_dump()
    data["id"], data["name"] = "tiny-2step", "Tiny 2-Step"
    changed = {"profit_target": {"pct": 1}, "min_trading_days": 1, "target_basis": target_basis}
    data["phases"] = [p | changed for p in data["phases"][:2]]  # evaluation, verification
    return program_from_dict(data)


@dataclass
class World:
    """A migrated SQLite database with a user, a ``tiny-2step`` challenge of 10,000 USDT, and the binder and session
    of its account on a market clock."""

    engine: Engine
    program: Program
    user_id: str
    challenge_id: str
    account_id: str
    clock: MarketClock
    binder: ChallengeBinder
    session: AccountSession
    marks: dict[str, D]  # the last trade price by instrument id (the session's and the account's marks)

    def trade(self, seconds: int, price: str) -> None:
        """A trade of 1 BTC at ``price`` ``seconds`` after T0: the broker matches it, deferred actions run."""
        ts = T0 + seconds * SECOND
        self.clock.advance_to(ts)
        self.marks[BTC.id] = D(price)
        raw = int(D(price).scaleb(BTC.price_precision))
        self.session.broker.on_trade(BTC.id, ts, raw, int(D(100).scaleb(BTC.size_precision)))
        self.session.settle(ts)

    def order(self, seconds: int, side: str, qty: str) -> None:
        """A market order at ``seconds`` after T0 through the session's checks."""
        ts = T0 + seconds * SECOND
        self.clock.advance_to(ts)
        order = self.session.submit(OrderRequest(BTC.id, OrderSide(side), OrderType.MARKET, D(qty)), ts)
        assert order.is_open, order

    def write(self, rows: ChallengeRows) -> None:
        """The binder's rows written in one transaction, as a runtime batch does."""
        with self.engine.begin() as conn:
            self.binder.write(conn, rows)

    def challenge_rows(self) -> list[Any]:
        """The user's challenges, oldest first."""
        with self.engine.connect() as conn:
            return list(store.challenges_of(conn, self.user_id))


def make_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, program: Program) -> World:
    """The database, user, challenge, binder and session of :class:`World` for ``program``."""
    # the binder (and the promotion) find programs by id among the presets: register the custom one for this test
    monkeypatch.setitem(programs(), program.id, program)
    engine = make_engine(f"sqlite:///{tmp_path / 'challenges.db'}")
    upgrade_to_head(engine)
    with engine.begin() as conn:
        user = register(conn, "trader@example.com", "not-a-real-hash")
        row = store.create_challenge(conn, user.id, program, SIZE, "USDT")
    clock = MarketClock()
    clock.advance_to(T0)
    binder = ChallengeBinder(clock, now_ns=lambda: WALL)
    with engine.connect() as conn:
        binder.load(conn, row["account_id"])
        account_row = account_store.get_account(conn, row["account_id"])
        assert account_row is not None
        fills = order_store.fills_by_id(conn, row["account_id"])
        account = account_store.load_account(conn, account_row, fills, lambda _iid: BTC)
    marks: dict[str, D] = {}
    account.mark_provider = marks.get
    sessions = SessionFactory(FillConfig(), binder.checks, binder.monitors_of)
    session = sessions(account, {BTC.id: BTC}, clock, marks.get)
    assert session.monitors == (binder.monitors[row["account_id"]],)
    return World(engine, program, user.id, row["id"], row["account_id"], clock, binder, session, marks)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    w = make_world(tmp_path, monkeypatch, tiny_program())
    yield w
    w.engine.dispose()


def pass_first_phase(w: World) -> ChallengeRows:
    """Buy 1 BTC at 39,000 and sell it at 39,150 (+150 USDT, 1.5 % of 10,000): the phase passes at the closing fill;
    returns the binder's rows of that batch."""
    w.trade(1, "39000")
    w.order(2, "buy", "1")
    w.trade(3, "39000")
    w.order(4, "sell", "1")
    w.trade(5, "39150")
    assert w.session.account.quantity(BTC.id) == 0
    assert w.session.account.cash == SIZE + D(150)
    rows = w.binder.collect([], [w.session], False)
    assert rows is not None
    return rows


def test_a_passed_phase_is_promoted_to_a_fresh_account_at_the_size(world: World) -> None:
    w = world
    rows = pass_first_phase(w)
    monitor = w.binder.monitors[w.account_id]
    assert monitor.evaluator.status is Status.PASSED
    assert rows.promote == [w.challenge_id]
    assert [s[:2] for s in rows.states] == [(w.challenge_id, "passed")]
    types = [r["event_type"] for r in rows.events]
    assert types.count("ChallengePassed") == 1
    assert [o["event_type"] for o in rows.outbox] == [f"challenge.{t}" for t in types]
    w.write(rows)

    first, second = w.challenge_rows()
    assert first.id == w.challenge_id and first.status == "promoted" and first.phase_index == 0
    assert second.previous_id == first.id
    assert second.status == "active" and second.phase_index == 1 and second.program_id == "tiny-2step"
    assert second.account_size == SIZE and second.state is None and second.breach is None
    assert second.account_id != first.account_id
    with w.engine.connect() as conn:
        fresh = account_store.get_account(conn, second.account_id)
        assert fresh is not None
        assert D(fresh.cash) == SIZE and fresh.currency == "USDT"  # a fresh account funded at the size
        owner = store.challenge_of_account(conn, second.account_id)
        assert owner is not None and owner.id == second.id
        stored = store.events_of(conn, w.challenge_id)
        assert [r.event_id for r in stored] == [r["event_id"] for r in rows.events]
        # the batch's events once, after the first phase's opening; then the promotion opens the next phase (the
        # platform's own action: no actor)
        q = select(outbox.c.event_type, outbox.c.partition_key, outbox.c.payload).where(outbox.c.stream != "users")
        written = list(conn.execute(q.order_by(outbox.c.id)))
        opening = ["account.opened", "challenge.started"]
        assert [(r.event_type, r.partition_key) for r in written] == [
            *[(t, first.account_id) for t in opening],
            *[(o["event_type"], first.account_id) for o in rows.outbox],
            *[(t, second.account_id) for t in opening],
        ]
        assert [json.loads(r.payload)["actor"] for r in written[-2:]] == [None, None]
        assert json.loads(written[-1].payload)["previous_id"] == first.id

    # the stored state restores to an evaluator in the same state
    restored = ChallengeEvaluator.restore(w.program, json.loads(first.state))
    assert restored.status is Status.PASSED
    assert restored.passed_ts == monitor.evaluator.passed_ts == T0 + 5 * SECOND
    assert restored.snapshot() == monitor.evaluator.snapshot()

    # a runtime loading both accounts again: the promoted phase is no longer judged, the next one starts judging at
    # the market clock with its first load
    w.clock.advance_to(T0 + 60 * SECOND)
    again = ChallengeBinder(w.clock, now_ns=lambda: WALL)
    with w.engine.connect() as conn:
        again.load(conn, first.account_id)
        again.load(conn, second.account_id)
    assert first.account_id not in again.monitors
    nxt = again.monitors[second.account_id].evaluator
    assert nxt.status is Status.ACTIVE and nxt.phase.name == "Verification"
    next_rows = again.collect([], [], False)
    assert next_rows is not None and [s[:2] for s in next_rows.states] == [(second.id, "active")]


def test_events_are_stored_once_when_a_batch_is_written_twice(world: World) -> None:
    w = world
    rows = pass_first_phase(w)
    w.write(rows)
    w.write(rows)  # the same batch again (a retried write): events are known by their event_id
    with w.engine.connect() as conn:
        stored = list(conn.execute(select(challenge_events.c.event_id)))
    assert sorted(r.event_id for r in stored) == sorted(r["event_id"] for r in rows.events)
    assert len({r.event_id for r in stored}) == len(stored)


def test_a_batch_written_twice_promotes_once(world: World) -> None:
    """The second write saves the state again: the promoted phase must stay ``promoted`` (``store.save_state``), or
    the promotion check sees ``passed`` and opens a third phase."""
    w = world
    rows = pass_first_phase(w)
    w.write(rows)
    w.write(rows)
    first, *nexts = w.challenge_rows()
    assert first.status == "promoted"
    assert len(nexts) == 1 and nexts[0].previous_id == first.id
    with w.engine.connect() as conn:
        opened = conn.execute(select(func.count()).select_from(challenges)).scalar_one()
    assert opened == 2


def test_a_fill_after_the_promotion_leaves_the_phase_promoted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On an ``equity`` target basis the phase passes with the position still open (a valuation at 39,150: +150);
    the batch promotes it; the trader then closes the position (a reducing order, allowed after a pass): that fill
    changes the monitor, and the next batch must not bring the promoted phase back to ``passed``."""
    w = make_world(tmp_path, monkeypatch, tiny_program("equity"))
    try:
        w.trade(1, "39000")
        w.order(2, "buy", "1")
        w.trade(3, "39000")
        w.trade(4, "39150")
        w.session.value(T0 + 4 * SECOND)  # the runtime's dispatcher values the account on a move out of the band
        assert w.binder.monitors[w.account_id].evaluator.status is Status.PASSED
        rows = w.binder.collect([], [w.session], False)
        assert rows is not None and rows.promote == [w.challenge_id]
        w.write(rows)
        assert [(r.status, r.phase_index) for r in w.challenge_rows()] == [("promoted", 0), ("active", 1)]
        w.order(5, "sell", "1")
        w.trade(6, "39150")
        assert w.session.account.quantity(BTC.id) == 0
        later = w.binder.collect([], [w.session], False)
        assert later is not None  # the closing fill changed the monitor: its state is written again
        assert later.promote == [] and [s[:2] for s in later.states] == [(w.challenge_id, "passed")]
        w.write(later)
        assert [(r.status, r.phase_index) for r in w.challenge_rows()] == [("promoted", 0), ("active", 1)]
    finally:
        w.engine.dispose()
