"""The worker's scheduled monitoring cycle (``001``: "scheduled monitoring"; ``003``: audit-log integrity alerts):
every ``interval`` seconds it checks

- **audit integrity**: the hash chain verified from the last verified record on (the whole chain at start and every
  ``full_every`` cycles), so most cycles cost only what was appended since; records verified before that are gone
  (the chain's tail cut) count as broken too; ``audit_log_integrity`` is 1 while intact
  and 0 once a broken link is found (the alert "audit log integrity compromised" fires on 0), the log names the record;
- **challenges about to expire or go inactive**: active challenges on their last allowed firm day (``max_days``, R10)
  or one firm day from their inactivity limit (``inactivity_days``), in the program's IANA zone and reset time;
- **stale market data**: instruments whose latest prices have not changed for ``stale_after`` seconds of wall clock
  (a replay's data times are not wall time, so staleness is measured as "no change seen");
- **reconciliation**: every account's cash against its ledger (the last entry's running balance and the sum of the
  entries), exactly, in the account currency.

Results are Prometheus gauges (a handful of series, none per account) and warning log lines naming what is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog
from prometheus_client import Gauge
from sqlalchemy import Connection, Engine, func, select

from smart_trader.challenges import store as challenge_store
from smart_trader.challenges.days import DayClock
from smart_trader.challenges.tables import challenges
from smart_trader.compliance import store as audit_store
from smart_trader.compliance.chain import GENESIS, verify
from smart_trader.compliance.tables import audit_log
from smart_trader.portfolio.tables import accounts, ledger_entries

log = structlog.get_logger("smart_trader.monitoring")

AUDIT_INTEGRITY = Gauge("audit_log_integrity", "1 while the audit hash chain verifies, 0 once a broken link is found.")
AUDIT_VERIFIED = Gauge("audit_log_verified_records", "Audit records verified by the monitoring cycle so far.")
CHALLENGES_EXPIRING = Gauge("challenges_expiring", "Active challenges on their last allowed firm day (max_days).")
CHALLENGES_INACTIVE = Gauge("challenges_inactive", "Active challenges one firm day from their inactivity limit.")
MARKET_DATA_STALE = Gauge("market_data_stale_instruments", "Instruments whose prices have not changed for too long.")
ACCOUNTS_UNRECONCILED = Gauge("accounts_unreconciled", "Accounts whose cash does not equal their ledger.")
LAST_CYCLE = Gauge("monitoring_cycle_last_timestamp_seconds", "When the monitoring cycle last completed (UTC s).")

Prices = Callable[[], Awaitable[Mapping[str, Mapping[str, Any]]]]
"""The latest prices per instrument (``MarketState.as_dict`` shapes), from this process or the shared Redis hash."""


@dataclass
class CycleReport:
    """What one cycle found (ids capped at 100 each in the log)."""

    audit_broken_at: int | None = None
    audit_verified: int = 0
    expiring: list[str] = field(default_factory=list)
    inactive: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    unreconciled: list[str] = field(default_factory=list)


class MonitoringCycle:
    """Runs the checks every ``interval`` seconds (see the module docstring).

    Args:
        engine: the database (reads only).
        prices: the latest prices (:data:`Prices`), or ``None`` when the process sees no market data.
        interval: seconds between cycles.
        stale_after: seconds without a price change after which an instrument is stale.
        full_every: every this many cycles the whole audit chain is verified again (a record changed after it was
            verified is found then); the cycles between verify only what was appended.
        now_ns: the wall clock, ns since the epoch, UTC.
    """

    def __init__(
        self,
        engine: Engine,
        prices: Prices | None = None,
        interval: float = 60.0,
        stale_after: float = 300.0,
        full_every: int = 60,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.engine = engine
        self.prices = prices
        self.interval = interval
        self.stale_after_ns = int(stale_after * 1e9)
        self.now_ns = now_ns
        self.full_every = full_every
        self._cycles = 0
        self._verified_seq = 0
        self._verified_hash = GENESIS
        self._broken_at: int | None = None
        self._seen: dict[str, tuple[Any, int]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run cycles in the background."""
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Stop the cycles."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run_once(self) -> CycleReport:
        """One cycle: every check, the gauges set, warnings logged."""
        report = await asyncio.to_thread(self._database_checks)
        if self.prices is not None:
            report.stale = self._stale(await self.prices())
        AUDIT_INTEGRITY.set(0 if report.audit_broken_at is not None else 1)
        AUDIT_VERIFIED.set(report.audit_verified)
        CHALLENGES_EXPIRING.set(len(report.expiring))
        CHALLENGES_INACTIVE.set(len(report.inactive))
        MARKET_DATA_STALE.set(len(report.stale))
        ACCOUNTS_UNRECONCILED.set(len(report.unreconciled))
        LAST_CYCLE.set(self.now_ns() / 1e9)
        if report.audit_broken_at is not None:
            log.error("audit log integrity compromised", record=report.audit_broken_at)
        for what, ids in (
            ("challenges on their last allowed day", report.expiring),
            ("challenges about to breach inactivity", report.inactive),
            ("stale market data", report.stale),
            ("accounts whose cash differs from their ledger", report.unreconciled),
        ):
            if ids:
                log.warning(what, count=len(ids), ids=ids[:100])
        return report

    def _database_checks(self) -> CycleReport:
        report = CycleReport()
        with self.engine.connect() as conn:
            self._verify_audit(conn, report)
            report.expiring, report.inactive = challenge_deadlines(conn, self.now_ns())
        # one snapshot for the ledgers and the cash (on PostgreSQL: REPEATABLE READ), so a batch committing between
        # two reads is not reported as a difference
        level = "REPEATABLE READ" if self.engine.dialect.name == "postgresql" else "SERIALIZABLE"
        with self.engine.connect().execution_options(isolation_level=level) as conn, conn.begin():
            report.unreconciled = unreconciled_accounts(conn)
        return report

    def _verify_audit(self, conn: Connection, report: CycleReport) -> None:
        if self._cycles % self.full_every == 0:  # from the first record again
            self._verified_seq, self._verified_hash, self._broken_at = 0, GENESIS, None
        self._cycles += 1
        top = int(conn.execute(select(func.max(audit_log.c.seq))).scalar() or 0)
        if self._broken_at is None and top < self._verified_seq:  # records verified before are gone (a cut tail)
            self._broken_at = top + 1
        if self._broken_at is None:
            if self._verified_seq == 0:  # from the first stored record (older ones may be archived: retention)
                first = conn.execute(select(func.min(audit_log.c.seq))).scalar() or 1
                n, last_hash, broken = audit_store.verify_stored(conn)
                start = int(first)
            else:
                start = self._verified_seq + 1
                n, last_hash, broken = verify(audit_store.records(conn, start), self._verified_hash, start)
            if broken is not None:
                self._broken_at = broken.seq
            elif n:
                self._verified_seq, self._verified_hash = start + n - 1, last_hash
        report.audit_broken_at = self._broken_at
        report.audit_verified = self._verified_seq

    def _stale(self, prices: Mapping[str, Mapping[str, Any]]) -> list[str]:
        now = self.now_ns()
        stale = []
        for iid, p in prices.items():
            mark = (p.get("quote_ts"), p.get("trade_ts"), p.get("last_price"), p.get("bid"), p.get("ask"))
            seen = self._seen.get(iid)
            if seen is None or seen[0] != mark:
                self._seen[iid] = (mark, now)
            elif now - seen[1] >= self.stale_after_ns:
                stale.append(iid)
        return sorted(stale)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("monitoring cycle failed")
            await asyncio.sleep(self.interval)


def challenge_deadlines(conn: Connection, now_ns: int) -> tuple[list[str], list[str]]:
    """Active challenges (ids) on their last allowed firm day (their phase's ``max_days`` counted from the phase's
    first firm day, R10), and those whose next firm day without activity breaches the phase's ``inactivity_days``;
    firm days in the program's zone and reset time."""
    expiring: list[str] = []
    inactive: list[str] = []
    programs: dict[str, Any] = {}
    rows = conn.execute(
        select(challenges.c.id, challenges.c.program_id, challenges.c.phase_index, challenges.c.state).where(
            challenges.c.status == "active", challenges.c.state.is_not(None)
        )
    )
    for row in rows:
        if row.program_id not in programs:
            try:
                programs[row.program_id] = challenge_store.program_of(conn, row.program_id)
            except Exception:
                continue
        program = programs[row.program_id]
        if not 0 <= row.phase_index < len(program.phases):
            continue
        phase = program.phases[row.phase_index]
        if phase.max_days is None and phase.inactivity_days is None:
            continue
        snapshot = json.loads(row.state)
        clock = DayClock(program.tz, program.reset_time)
        today = clock.day_of(now_ns)
        if phase.max_days is not None and "start_ts" in snapshot:
            first = clock.day_of(int(snapshot["start_ts"]))
            if today >= first + dt.timedelta(days=phase.max_days - 1):
                expiring.append(str(row.id))
        last = snapshot.get("state", {}).get("last_activity_day")
        idle = None if not last else (today - dt.date.fromisoformat(last)).days
        if phase.inactivity_days is not None and idle is not None and idle >= phase.inactivity_days - 1:
            inactive.append(str(row.id))
    return expiring, inactive


def unreconciled_accounts(conn: Connection) -> list[str]:
    """Accounts whose ``cash`` differs from their ledger: the running balance of the last entry, or the sum of the
    entries' amounts (exact Decimal; accounts without entries are checked against a zero sum)."""
    last_entry = (
        select(ledger_entries.c.account_id, func.max(ledger_entries.c.entry_id).label("last"))
        .group_by(ledger_entries.c.account_id)
        .subquery()
    )
    balances = {
        str(r.account_id): Decimal(r.balance)
        for r in conn.execute(
            select(ledger_entries.c.account_id, ledger_entries.c.balance).join(
                last_entry,
                (ledger_entries.c.account_id == last_entry.c.account_id)
                & (ledger_entries.c.entry_id == last_entry.c.last),
            )
        )
    }
    sums: dict[str, Decimal] = {}
    for r in conn.execute(select(ledger_entries.c.account_id, ledger_entries.c.amount)):
        sums[str(r.account_id)] = sums.get(str(r.account_id), Decimal(0)) + Decimal(r.amount)
    out = []
    for r in conn.execute(select(accounts.c.id, accounts.c.cash)):
        aid, cash = str(r.id), Decimal(r.cash)
        if sums.get(aid, Decimal(0)) != cash or balances.get(aid, cash) != cash:
            out.append(aid)
    return sorted(out)
