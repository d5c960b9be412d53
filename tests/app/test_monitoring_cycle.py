"""The scheduled monitoring cycle on the running platform (SQLite and PostgreSQL, real recorded trades): the audit
consumer running in `up`'s process has chained the trading's events and the cycle finds the chain intact and every
account's cash equal to its ledger; a record changed behind the triggers' back sets ``audit_log_integrity`` to 0
naming it; cash changed behind the ledger's back is reported; a challenge on its last allowed day and one about to
breach inactivity are found in the program's time zone; prices that stop changing are reported stale."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update

from smart_trader.challenges.days import DayClock
from smart_trader.challenges.store import program_of
from smart_trader.challenges.tables import challenges
from smart_trader.compliance import store as audit_store
from smart_trader.db.engine import make_engine
from smart_trader.db.migrate import upgrade_to_head
from smart_trader.ops.metrics import REGISTRY
from smart_trader.portfolio.tables import accounts
from smart_trader.workers.monitoring import MonitoringCycle, challenge_deadlines, unreconciled_accounts
from tests.app.conftest import Harness
from tests.app.security_support import poll

V1 = "/api/v1"
NS_PER_DAY = 86_400 * 10**9


def _audited(h: Harness, at_least: int, timeout: float = 15.0) -> int:
    def seq() -> int | None:
        with h.platform.engine.connect() as conn:
            head = audit_store.head(conn)
        return head.seq if head is not None and head.seq >= at_least else None

    found: int = poll(seq, f"{at_least} audit records", timeout)
    return found


def test_the_cycle_checks_the_audit_chain_and_the_ledgers_of_the_running_platform(platform: Harness) -> None:
    h = platform
    alice = h.user("alice@example.com")
    acct = h.account(alice)
    h.push_trades(5)
    h.settle()
    order = h.order(alice, acct, side="buy", type="market", qty="0.01")
    h.wait_status(alice, acct, order["id"], "accepted")
    h.push_trades(5)
    h.wait_status(alice, acct, order["id"], "filled")
    _audited(h, 3)
    engine = h.platform.engine
    with engine.connect() as conn:
        actions = [r.action for r in audit_store.records(conn)]
    assert any(a.startswith("order") for a in actions) and "account.updated" in actions, actions
    cycle = MonitoringCycle(engine, full_every=1)
    report = asyncio.run(cycle.run_once())
    assert report.audit_broken_at is None and report.audit_verified >= 3
    assert report.unreconciled == []
    assert REGISTRY.get_sample_value("audit_log_integrity") == 1
    # cash changed behind the ledger's back
    with engine.begin() as conn:
        cash = conn.execute(select(accounts.c.cash).where(accounts.c.id == acct)).scalar_one()
        conn.execute(update(accounts).where(accounts.c.id == acct).values(cash=cash + Decimal("0.01")))
    # an audit record changed by someone able to drop the triggers
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    report = asyncio.run(cycle.run_once())
    assert report.unreconciled == [acct]
    assert report.audit_broken_at == 2
    assert REGISTRY.get_sample_value("audit_log_integrity") == 0
    assert REGISTRY.get_sample_value("accounts_unreconciled") == 1


def _stored_state(h: Harness, cid: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        with h.platform.engine.connect() as conn:
            row = conn.execute(select(challenges.c.state).where(challenges.c.id == cid)).first()
        if row is not None and row.state:
            return dict(json.loads(row.state))
        assert time.monotonic() < deadline, "the runtime never stored the challenge's state"
        time.sleep(0.05)


def test_challenges_about_to_breach_inactivity_are_found_in_the_program_zone(platform: Harness) -> None:
    h = platform
    bob = h.user("bob@example.com")
    r = h.client.post(
        f"{V1}/challenges",
        headers=bob,
        json={"program": "the5ers-high-stakes", "account_size": "5000", "currency": "USDT"},
    )
    assert r.status_code == 201, r.text
    cid, acct = r.json()["id"], r.json()["account_id"]
    h.push_trades(5)
    h.settle()
    order = h.order(bob, acct, side="buy", type="market", qty="0.001")
    h.wait_status(bob, acct, order["id"], "accepted")
    h.push_trades(5)
    h.wait_status(bob, acct, order["id"], "filled")
    h.push_trades(5)
    h.settle()
    snapshot = _stored_state(h, cid)
    last = dt.date.fromisoformat(snapshot["state"]["last_activity_day"])
    with h.platform.engine.connect() as conn:
        program = program_of(conn, "the5ers-high-stakes")
        assert program.phases[0].inactivity_days == 30
        clock = DayClock(program.tz, program.reset_time)
        at = clock.start_of(last + dt.timedelta(days=28)) + 3600 * 10**9  # 28 firm days idle: not yet
        assert cid not in challenge_deadlines(conn, at)[1]
        at = clock.start_of(last + dt.timedelta(days=29)) + 3600 * 10**9  # one firm day from the limit
        assert cid in challenge_deadlines(conn, at)[1]
        at = clock.start_of(last + dt.timedelta(days=29)) - 1  # the last ns of firm day 28, in the firm's zone
        assert cid not in challenge_deadlines(conn, at)[1]
        assert unreconciled_accounts(conn) == []


def test_prices_that_stop_changing_are_reported_stale(tmp_path: Path) -> None:
    now = [10**18]
    prices: dict[str, dict[str, Any]] = {"BTC/USDT.BINANCE": {"trade_ts": 1, "last_price": "1"}}

    async def latest() -> dict[str, dict[str, Any]]:
        return prices

    engine = make_engine(f"sqlite:///{tmp_path / 'st.db'}")
    upgrade_to_head(engine)
    cycle = MonitoringCycle(engine, latest, stale_after=300, now_ns=lambda: now[0])
    assert asyncio.run(cycle.run_once()).stale == []
    now[0] += 299 * 10**9
    assert asyncio.run(cycle.run_once()).stale == []
    now[0] += 2 * 10**9
    assert asyncio.run(cycle.run_once()).stale == ["BTC/USDT.BINANCE"]
    prices["BTC/USDT.BINANCE"] = {"trade_ts": 2, "last_price": "1"}  # a new trade
    assert asyncio.run(cycle.run_once()).stale == []
