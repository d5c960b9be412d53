"""Portfolio's persistence contributor to the runtime's batches (:mod:`smart_trader.live.unit_of_work`): what the
brokers' fills changed in each account — new ledger entries, the positions they touched, the account summary, an
equity snapshot and one ``account.updated`` outbox event — written to portfolio's own tables (and the outbox) in the
batch's transaction.

Money is in the account currency, exact; ``ts`` is the market clock and ``updated_ns`` / ``created_ns`` the wall
clock, ns since the epoch, UTC.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert

from smart_trader.core.clock import Clock
from smart_trader.core.clock import now_ns as wall_clock_ns
from smart_trader.core.errors import NotFoundError
from smart_trader.core.ids import InstrumentId
from smart_trader.db.outbox import event_row, outbox
from smart_trader.execution.events import OrderFilled
from smart_trader.execution.persist import OrderChange
from smart_trader.gateway.hub import accounts_topic
from smart_trader.portfolio import store
from smart_trader.risk.drawdown import HighWaterMark
from smart_trader.trading.session import AccountSession


@dataclass(slots=True, eq=False)
class StoredAccount:
    """What of one loaded account is already stored: its first ``persisted_entries`` ledger entries, its stored equity
    peak (account currency), the equity of its latest snapshot, and the session's high-water mark monitor when it has
    one (``risk/drawdown.py``).

    The stored peak (``accounts.equity_peak``) follows the monitor: its peak is exact per valuation (every new high
    between two snapshots, a fill's valuation, a bar's path), where the snapshots see equity once a second. Without a
    monitor it is the highest snapshot equity."""

    persisted_entries: int
    peak: Decimal
    last_equity: Decimal | None = None
    high_water: HighWaterMark | None = None

    def monitor_peak(self) -> Decimal | None:
        """The monitor's peak when it is above the stored one (a new high to store), else ``None``."""
        hw = self.high_water
        if hw is None or hw.peak is None or hw.peak <= self.peak:
            return None
        return hw.peak


@dataclass(slots=True)
class AccountRows:
    """What one batch writes to portfolio's tables and the outbox."""

    ledger: list[dict[str, Any]] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)


class PortfolioPersister:
    """Ledger entries, positions, account summaries, equity snapshots and account outbox events of a batch (a
    :class:`~smart_trader.live.unit_of_work.Persister`).

    Args:
        clock: the market clock (snapshot times); no snapshot is taken while it reads 0 (before the first event).
        now_ns: the wall clock of ``updated_ns`` and the outbox rows' ``created_ns`` (ns UTC).
    """

    def __init__(self, clock: Clock, now_ns: Callable[[], int] = wall_clock_ns) -> None:
        self.clock = clock
        self.now_ns = now_ns
        self.stored: dict[str, StoredAccount] = {}  # account id → what of it is stored

    def track(
        self, account_id: str, persisted_entries: int, peak: Decimal, high_water: HighWaterMark | None = None
    ) -> StoredAccount:
        """Start following a loaded account whose first ``persisted_entries`` ledger entries and equity ``peak`` are
        stored; ``high_water``: its session's high-water mark monitor, whose peak the stored one follows."""
        stored = self.stored[account_id] = StoredAccount(persisted_entries, peak, high_water=high_water)
        return stored

    def clear(self) -> None:
        """Forget every account (the runtime rebuilds them from the database)."""
        self.stored.clear()

    def collect(
        self, changes: Sequence[OrderChange], accounts: Sequence[AccountSession], snapshot: bool
    ) -> AccountRows | None:
        """The rows of every account in ``accounts`` (those the batch's order events touched, and with ``snapshot``
        the others holding a position): ledger entries not stored yet, the positions its fills touched, and, when
        the ledger grew or the equity moved, the summary, a snapshot and an ``account.updated`` event. ``None`` when
        nothing is to be written."""
        dirty: dict[str, set[InstrumentId]] = {}
        for change in changes:
            if isinstance(change.event, OrderFilled):
                dirty.setdefault(change.session.account_id, set()).add(change.event.fill.instrument_id)
        rows = AccountRows()
        now = self.now_ns()
        for session in accounts:
            self._collect_account(session, dirty.get(session.account_id, ()), rows, now)
        return rows if rows.accounts or rows.snapshots or rows.ledger or rows.positions else None

    def _collect_account(
        self, session: AccountSession, dirty: set[InstrumentId] | tuple[()], rows: AccountRows, now: int
    ) -> None:
        account = session.account
        aid = account.account_id
        stored = self.stored.get(aid)
        if stored is None:  # not loaded through the registry: everything of it is new
            stored = self.track(aid, 0, account.cash)
        entries = account.ledger.entries[stored.persisted_entries :]
        rows.ledger += [store.ledger_row(aid, e) for e in entries]
        stored.persisted_entries = len(account.ledger.entries)
        for iid in dirty:
            pos = account.positions.get(iid)
            if pos is not None:
                rows.positions.append(store.position_row(aid, pos, account.mark(iid)))
        equity: Decimal | None = None
        unrealized: Decimal | None = None
        with contextlib.suppress(NotFoundError):
            equity, unrealized = account.equity, account.unrealized_pnl
        ts = self.clock.now_ns()
        new_high = stored.monitor_peak()  # a high reached between snapshots (or at a fill) is stored too
        # no snapshot before the first market event: its time would be unknown (0)
        changed = ts > 0 and equity is not None and (entries or equity != stored.last_equity or new_high is not None)
        if equity is not None and unrealized is not None and changed:
            stored.peak = max(stored.peak, equity, new_high or equity)
            stored.last_equity = equity
            rows.snapshots.append(
                {
                    "account_id": aid,
                    "ts": ts,
                    "cash": account.cash,
                    "equity": equity,
                    "unrealized_pnl": unrealized,
                    "drawdown": store.drawdown(equity, stored.peak),
                }
            )
        if entries or changed:
            rows.accounts.append(
                {
                    "_id": aid,
                    "cash": account.cash,
                    "realized_pnl": account.realized_pnl,
                    "commissions": account.commissions,
                    "equity_peak": stored.peak,
                    "updated_ns": now,
                }
            )
            topic = accounts_topic(aid)
            view = {
                "type": "account",
                "topic": topic,
                "account_id": aid,
                "cash": account.cash,
                "equity": equity,
                "unrealized_pnl": unrealized,
                "realized_pnl": account.realized_pnl,
                "commissions": account.commissions,
                "ts": ts,
            }
            rows.outbox.append(
                event_row(topic, "account.updated", view, now, stream="accounts", partition_key=aid, ts_event=ts)
            )

    def write(self, conn: Connection, rows: AccountRows) -> None:
        """Write the batch's ledger entries, positions, summaries, snapshots and account events in the caller's
        transaction."""
        store.insert_ledger_rows(conn, rows.ledger)
        store.upsert_positions(conn, rows.positions)
        store.update_accounts(conn, rows.accounts)
        store.insert_snapshots(conn, rows.snapshots)
        if rows.outbox:
            conn.execute(insert(outbox), rows.outbox)

    def after_commit(self, rows: AccountRows) -> None:
        """Nothing to do after the commit (the account state was advanced while collecting)."""
