"""Challenges on the live platform: :class:`ChallengeBinder` gives the runtime's sessions of challenge accounts their
:class:`~smart_trader.challenges.monitor.ChallengeMonitor` (restored from the stored evaluator state, or started at
the market clock the first time), and is the challenges' persistence contributor to the runtime's batches
(:class:`~smart_trader.live.unit_of_work.Persister`): evaluator state, status and breach evidence into
``challenges``, the events into ``challenge_events``, one outbox event per challenge event on the ``challenges``
WebSocket topic, and the promotion of a passed phase to a fresh account — all in the batch's transaction, so after a
kill -9 the status and evidence are what was committed with the fills that caused them.

Timestamps are ns since the epoch, UTC; money is exact, in the account currency.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from smart_trader.challenges import store
from smart_trader.challenges.evaluator import ChallengeEvaluator
from smart_trader.challenges.events import ChallengeEvent, ChallengePassed, to_payload
from smart_trader.challenges.monitor import ChallengeMonitor
from smart_trader.core.clock import Clock
from smart_trader.core.clock import now_ns as wall_clock_ns
from smart_trader.db.outbox import event_row, insert_new_events
from smart_trader.execution.orders import OrderRequest
from smart_trader.gateway.hub import challenges_topic
from smart_trader.portfolio.account import Account
from smart_trader.trading.session import AccountSession, Monitor, PreTradeCheck


@dataclass(slots=True)
class ChallengeRows:
    """What one batch writes for challenges."""

    states: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    promote: list[str] = field(default_factory=list)  # challenge ids whose phase passed


class ClosedChallenge:
    """The pre-trade check of an account whose challenge phase is over (failed, passed, promoted) when the runtime
    loads it: every new order is refused with the stored reason (the rule, the floor, the equity and the instant of a
    breach), as the API refuses them."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        """See :class:`~smart_trader.trading.session.PreTradeCheck`."""
        del request, session, ts
        return self.reason


class ChallengeBinder:
    """The challenge monitors of the loaded accounts, and their persistence contributor.

    Args:
        clock: the runtime's market clock (a challenge first judged starts at its time).
        now_ns: the wall clock of the outbox rows (ns UTC).
    """

    def __init__(self, clock: Clock, now_ns: Callable[[], int] = wall_clock_ns) -> None:
        self.clock = clock
        self.now_ns = now_ns
        self.monitors: dict[str, ChallengeMonitor] = {}  # account id → its challenge's monitor
        self.closed: dict[str, ClosedChallenge] = {}  # account id → the refusal of a challenge that is over
        self.challenge_ids: dict[str, str] = {}  # account id → challenge id
        self._dirty: dict[str, ChallengeMonitor] = {}  # account id → monitor with something to store
        self.wake: Callable[[], None] = lambda: None  # set by the runtime: a batch is due

    # -- loading --------------------------------------------------------------------------
    def load(self, conn: Connection, account_id: str) -> None:
        """Read ``account_id``'s challenge (if it is a challenge account still being judged) and prepare its monitor;
        called where the runtime reads the account, before its session is built. A challenge judged for the first
        time starts at the market clock (its first load: at the runtime's start for an open challenge, else with the
        account's first order).

        Raises:
            RuntimeError: a challenge to start while the market clock reads 0 (no market event yet).
        """
        row = store.challenge_of_account(conn, account_id)
        self.closed.pop(account_id, None)
        if row is None or row.status not in store.OPEN_STATUSES:
            self.monitors.pop(account_id, None)
            if row is not None:  # failed, passed or promoted: the account takes no more orders, after any restart
                reason = store.block_reason(conn, account_id)
                if reason is not None:
                    self.closed[account_id] = ClosedChallenge(reason)
            return
        program = store.program_of(conn, row.program_id)
        if row.state is None and self.clock.now_ns() <= 0:
            # its first day would start at the epoch; the account is quarantined briefly and loads again with its
            # next order, once the market clock runs
            raise RuntimeError(f"challenge account {account_id}: the market clock has not started yet")
        if row.state is not None:
            evaluator = ChallengeEvaluator.restore(program, json.loads(row.state))
        else:
            evaluator = ChallengeEvaluator(
                program, row.phase_index, row.account_size, self.clock.now_ns(), account_id=account_id
            )
        monitor = ChallengeMonitor(evaluator, on_change=self._changed)
        self.monitors[account_id] = monitor
        self.challenge_ids[account_id] = str(row.id)
        if row.state is None:
            self._dirty[account_id] = monitor  # its start is stored with the next batch

    def checks(self, account: Account) -> list[PreTradeCheck]:
        """The pre-trade checks of ``account``'s session (its challenge monitor; a refusal for a challenge that is
        over; none for a plain account): for ``SessionFactory``."""
        monitor = self.monitors.get(account.account_id)
        if monitor is not None:
            return [monitor]
        closed = self.closed.get(account.account_id)
        return [] if closed is None else [closed]

    def monitors_of(self, account: Account) -> list[Monitor]:
        """The monitors of ``account``'s session (its challenge monitor, or none): for ``SessionFactory``."""
        monitor = self.monitors.get(account.account_id)
        return [] if monitor is None else [monitor]

    def forget(self, account_id: str) -> None:
        """Drop an account's monitor (its session is gone)."""
        self.monitors.pop(account_id, None)
        self.closed.pop(account_id, None)
        self._dirty.pop(account_id, None)

    def clear(self) -> None:
        """Forget every monitor (the runtime rebuilds its accounts from the database)."""
        self.monitors.clear()
        self.closed.clear()
        self._dirty.clear()

    def _changed(self, monitor: ChallengeMonitor, session: AccountSession) -> None:
        self._dirty[session.account_id] = monitor
        self.wake()

    # -- Persister ------------------------------------------------------------------------
    def collect(
        self, changes: Sequence[Any], accounts: Sequence[AccountSession], snapshot: bool
    ) -> ChallengeRows | None:
        """State and events of every challenge that changed since the last batch (``None`` when none did)."""
        del changes, accounts, snapshot  # the monitors say themselves what changed
        if not self._dirty:
            return None
        rows = ChallengeRows()
        now = self.now_ns()
        dirty, self._dirty = self._dirty, {}
        for account_id, monitor in dirty.items():
            challenge_id = self.challenge_ids[account_id]
            events: list[ChallengeEvent] = monitor.drain_events()
            evaluator = monitor.evaluator
            state = evaluator.snapshot()
            breach = evaluator.verdict()["breach"]
            rows.states.append((challenge_id, evaluator.status.value, state, breach))
            rows.events += store.event_rows(challenge_id, events)
            topic = challenges_topic(account_id)
            view = _view(evaluator)
            for e in events:
                payload = {
                    "type": "challenge",
                    "topic": topic,
                    "event": e.event_type,
                    "account_id": account_id,
                    "challenge_id": challenge_id,
                    "ts_event": e.ts_event,
                    "data": to_payload(e),
                    "challenge": view,
                }
                rows.outbox.append(
                    event_row(
                        topic,
                        f"challenge.{e.event_type}",
                        payload,
                        now,
                        event_id=e.event_id,
                        version=e.version,
                        stream="challenges",
                        partition_key=account_id,
                        ts_event=e.ts_event,
                        ts_init=e.ts_init,
                    )
                )
                if type(e) is ChallengePassed:
                    rows.promote.append(challenge_id)
        return rows

    def write(self, conn: Connection, rows: ChallengeRows) -> None:
        """Write the batch's challenge rows (idempotent: events by ``event_id``, a promotion once)."""
        for challenge_id, status, state, breach in rows.states:
            store.save_state(conn, challenge_id, status, state, breach)
        store.append_events(conn, rows.events)
        insert_new_events(conn, rows.outbox)
        for challenge_id in rows.promote:
            row = store.get_challenge(conn, challenge_id)
            if row is not None and row.status == "passed":
                store.promote(conn, row, store.program_of(conn, row.program_id))

    def after_commit(self, rows: ChallengeRows) -> None:
        """Nothing to forget: monitors of failed or passed phases stay until their session goes."""
        del rows


def _view(evaluator: ChallengeEvaluator) -> dict[str, Any]:
    """Status, floors, room left and objectives as the ``challenges`` WebSocket topic shows them (decimal strings)."""
    v = evaluator.view()
    out: dict[str, Any] = {}
    for name in (
        "status",
        "balance",
        "equity",
        "daily_floor",
        "max_loss_floor",
        "effective_floor",
        "todays_permitted_loss",
        "max_permitted_loss",
        "room_left",
        "profit",
        "target",
        "profit_to_target",
        "trading_days",
        "best_day_share",
        "next_reset_ts",
    ):
        value = getattr(v, name)
        out[name] = value if value is None or isinstance(value, int) else str(value)
    out["phase"] = evaluator.phase.name
    return out
