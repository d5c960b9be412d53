"""Streaming, exact evaluator of one account in one challenge phase (CHALLENGES.md §7, processing order §7.2).

The caller feeds three kinds of input, in time order (``ts`` = ns since the epoch, UTC; money = Decimal in the
account currency, commissions and swaps already booked):

* :meth:`ChallengeEvaluator.on_fill` — after each fill (balance and equity after it);
* :meth:`ChallengeEvaluator.on_valuation` — after a price move (equity incl. floating P&L);
* :meth:`ChallengeEvaluator.on_time` — at :meth:`ChallengeEvaluator.next_deadline_ns` (day boundary, flat-by
  time). Every call first processes the deadlines that are due at its ``ts`` with the last known values, so a
  late timer never changes a verdict; calling ``on_time`` on time only makes the events timely.

Each call returns the :mod:`~smart_trader.challenges.events` it produced. Rules and their sources:

* hard floors — static max loss R1 [S4], EOD-trailing R2 [S3][S19], closed-balance trailing R3 [R1][S51],
  intraday trailing R4 [S29], daily loss D1–D6/D8 R5 [S1][S34][S40][S48]; breach iff ``value < floor`` (or
  ``≤`` with ``breach_on_equal``); when one move crosses several, the higher floor is blamed (R6 [R2]);
* soft daily loss D7 [S22][R1]: lock trading until the next boundary (the caller flattens), never a failure;
* flat-by time (R11, Topstep 15:10 CT [S22]): open positions at that instant ⇒ locked + flatten until the reset;
* pass (R7): target on the configured basis, minimum trading days (R8), consistency gate (R9) all at once;
  an unmet consistency gate is not a failure [S5];
* time limit and inactivity (R10), tested at day boundaries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from smart_trader.challenges.days import DayClock, iso_utc
from smart_trader.challenges.events import (
    ChallengeBreached,
    ChallengeEvent,
    ChallengeLocked,
    ChallengePassed,
    ChallengeUnlocked,
    ChallengeWarning,
    DayClosed,
    new_event_id,
)
from smart_trader.challenges.program import HUNDRED, Program, to_cents
from smart_trader.challenges.state import SNAPSHOT_VERSION, Breach, DayRecord, EvaluatorState, Status
from smart_trader.core.errors import InvalidInputError

_ONE_DAY = dt.timedelta(days=1)
_SHARE = Decimal("0.000001")
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Floor:
    """One active floor: ``value`` (equity, or balance when floating P&L is excluded) must stay above ``level``.
    ``allowance`` is the rule's full room (``level + allowance`` is where the room is 0 % used)."""

    rule: str
    kind: str
    level: Decimal
    allowance: Decimal
    on_equity: bool


@dataclass(frozen=True, slots=True)
class FloorsView:
    """What a trader's dashboard shows (account currency; ``None`` where a rule does not apply).

    ``todays_permitted_loss`` = equity − daily floor (FTMO MetriX [S74]); ``max_permitted_loss`` = equity −
    max-loss floor; ``effective_floor`` = max of the active hard floors and ``room_left`` = equity − it (R6).
    """

    status: Status
    balance: Decimal
    equity: Decimal
    daily_floor: Decimal | None
    max_loss_floor: Decimal | None
    effective_floor: Decimal | None
    todays_permitted_loss: Decimal | None
    max_permitted_loss: Decimal | None
    room_left: Decimal | None
    profit: Decimal
    target: Decimal | None
    profit_to_target: Decimal | None
    trading_days: int
    best_day_share: Decimal | None
    next_reset_ts: int


class ChallengeEvaluator:
    """Evaluates one account in one phase of a program, exactly (Decimal) and in streaming order.

    Args:
        program: the challenge program.
        phase_index: index into ``program.phases``.
        account_size: the initial balance B0 of the phase (must be one of ``program.sizes``), account currency.
        start_ts: phase start (ns UTC); the first firm day is the one containing it and its reference is B0 [S1].
        account_id: copied into every event (optional).

    Raises:
        InvalidInputError: unknown phase index or account size, or a per-size table without this size.
    """

    def __init__(
        self,
        program: Program,
        phase_index: int,
        account_size: Decimal,
        start_ts: int,
        *,
        account_id: str | None = None,
    ) -> None:
        if not 0 <= phase_index < len(program.phases):
            raise InvalidInputError(f"program {program.id} has no phase {phase_index}")
        if account_size not in program.sizes:
            sizes = ", ".join(str(s) for s in program.sizes)
            raise InvalidInputError(f"program {program.id}: account size {account_size} not offered (sizes: {sizes})")
        self.program = program
        self.phase_index = phase_index
        self.phase = program.phases[phase_index]
        self.account_size = account_size
        self.start_ts = start_ts
        self.account_id = account_id
        self._clock = DayClock(program.tz, program.reset_time)
        b0 = to_cents(account_size)
        self._b0 = b0
        phase = self.phase
        self._target = phase.profit_target.resolve(b0, account_size) if phase.profit_target else None
        self._max_amount = phase.max_loss.amount.resolve(b0, account_size) if phase.max_loss else None
        self._lock_level = phase.max_loss.lock_level(b0) if phase.max_loss else None
        self._position_limit = phase.max_position.limit(account_size) if phase.max_position else None
        self._start_day = self._clock.day_of(start_ts)
        self._state = EvaluatorState(
            status=Status.ACTIVE,
            balance=b0,
            equity=b0,
            flat=True,
            last_ts=start_ts,
            day=self._start_day,
            next_boundary=self._clock.start_of(self._start_day + _ONE_DAY),
            sod_balance=b0,
            sod_equity=b0,
            daily_amount=None,
            daily_floor=None,
            day_peak=b0,
            hwm=b0,
            max_floor=None,
            flat_by_ts=None,
            flat_by_done=False,
            last_activity_day=self._start_day,
        )
        self._state.max_floor = self._max_floor()
        self._open_daily_floor()
        self._open_flat_by(after=start_ts)

    # ------------------------------------------------------------------ inputs

    def on_fill(
        self,
        ts: int,
        *,
        balance: Decimal,
        equity: Decimal,
        opened: bool,
        flat: bool,
        position_size: Decimal = _ZERO,
    ) -> list[ChallengeEvent]:
        """A fill happened at ``ts``: ``balance``/``equity`` after it (commission included); ``opened`` true when it
        opened or increased a position (counts the firm day as a trading day, R8 [S2]); ``flat`` true when no
        position is left. ``position_size`` is informational (limits are enforced pre-trade by :meth:`refusal`).
        Re-runs the tick checks. Raises InvalidInputError if ``ts`` is earlier than the previous input."""
        del position_size
        events = self._advance(ts, ts)
        st = self._state
        st.balance, st.equity, st.flat = balance, equity, flat
        if st.status in (Status.FAILED, Status.PASSED):
            return events
        st.last_activity_day = st.day
        definition = self.phase.trading_day_definition
        if opened:
            st.opened_today = True
            if definition == "opened":
                st.trading_days.add(st.day)
        if definition == "opened_and_closed" and flat and st.opened_today:
            st.trading_days.add(st.day)
        max_loss = self.phase.max_loss
        if max_loss is not None and max_loss.mode == "trailing_closed" and balance > st.hwm:
            st.hwm = balance
            st.max_floor = self._max_floor()
        events += self._check(ts, ts)
        events += self._check_pass(ts, ts)
        return events

    def on_valuation(self, ts: int, *, balance: Decimal, equity: Decimal, flat: bool) -> list[ChallengeEvent]:
        """Prices moved at ``ts``: the account's ``equity`` (floating P&L, commissions, swaps included) and
        ``balance``. Runs the tick checks of §7.2. Raises InvalidInputError if ``ts`` goes backwards."""
        events = self._advance(ts, ts)
        st = self._state
        st.balance, st.equity, st.flat = balance, equity, flat
        events += self._check(ts, ts)
        events += self._check_pass(ts, ts)
        return events

    def on_time(
        self, ts: int, *, balance: Decimal | None = None, equity: Decimal | None = None
    ) -> list[ChallengeEvent]:
        """The clock reached ``ts``: process every deadline ``≤ ts`` (day boundaries, flat-by time).

        ``balance``/``equity``, when given, are the account's values now; a caller that skips valuations inside
        :meth:`equity_band` must give them so the day-start snapshot uses the true equity (they must lie inside
        the band, i.e. they are taken as known values, not tested as a valuation).
        """
        st = self._state
        if balance is not None:
            st.balance = balance
        if equity is not None:
            st.equity = equity
        return self._advance(ts, ts)

    # ------------------------------------------------------------------ queries

    @property
    def status(self) -> Status:
        """Current status (``locked`` = a soft rule blocks new orders until ``lock_until``)."""
        return self._state.status

    @property
    def breach(self) -> Breach | None:
        """The hard breach that failed the phase, or ``None``."""
        return self._state.breach

    @property
    def passed_ts(self) -> int | None:
        """When the phase was passed (ns UTC), or ``None``."""
        return self._state.passed_ts

    @property
    def lock_until(self) -> int | None:
        """End of the current soft lock (ns UTC), or ``None``."""
        return self._state.lock_until if self._state.status is Status.LOCKED else None

    @property
    def trading_days(self) -> int:
        """Trading days counted so far (R8)."""
        return len(self._state.trading_days)

    @property
    def days(self) -> tuple[DayRecord, ...]:
        """The closed firm days, oldest first."""
        return tuple(self._state.days)

    def verdict(self, details: bool = True) -> dict[str, Any]:
        """``{"status", "phase", "breach", "passed_ts", "trading_days", "best_day_share"}``: ``status`` is ``passed`` |
        ``failed`` | ``locked`` | ``active``; ``breach`` is ``{"rule", "ts" (ISO 8601 UTC), "equity", "floor"}``
        (decimal strings; with ``details``, also the evidence the caller added: positions, prices) or ``None``;
        ``passed_ts`` ISO 8601 UTC or ``None``; ``best_day_share`` a decimal string or ``None``."""
        breach = self.breach
        passed = self.passed_ts
        share = self.best_day_share()
        shown: dict[str, Any] | None = None
        if breach is not None:
            shown = {
                "rule": breach.rule,
                "ts": iso_utc(breach.ts),
                "equity": str(breach.equity),
                "floor": None if breach.floor is None else str(breach.floor),
            }
            if details:
                shown["details"] = dict(breach.details)
        return {
            "status": self.status.value,
            "phase": self.phase.name,
            "breach": shown,
            "passed_ts": None if passed is None else iso_utc(passed),
            "trading_days": self.trading_days,
            "best_day_share": None if share is None else str(share),
        }

    def add_breach_evidence(self, details: Mapping[str, str]) -> None:
        """Merge the caller's evidence (prices, positions; text) into the breach record. No-op without a breach."""
        breach = self._state.breach
        if breach is not None:
            self._state.breach = replace(breach, details={**breach.details, **details})

    @property
    def last_ts(self) -> int:
        """Time of the latest input (ns UTC); inputs must not be earlier."""
        return self._state.last_ts

    @property
    def next_boundary_ns(self) -> int:
        """The next day boundary (ns UTC): the end of the firm day in progress."""
        return self._state.next_boundary

    def next_deadline_ns(self) -> int | None:
        """The next instant (ns UTC) at which :meth:`on_time` must be called; ``None`` once passed or failed."""
        st = self._state
        if st.status in (Status.FAILED, Status.PASSED):
            return None
        if st.flat_by_ts is not None and not st.flat_by_done:
            return min(st.flat_by_ts, st.next_boundary)
        return st.next_boundary

    def floors(self) -> list[Floor]:
        """The floors in force now (hard ones always, a soft one unless it already locked the account)."""
        st = self._state
        out: list[Floor] = []
        if st.max_floor is not None and self._max_amount is not None:
            out.append(Floor("max_loss", "hard", st.max_floor, self._max_amount, True))
        daily = self.phase.daily_loss
        if daily is not None and daily.evaluation == "intraday" and st.daily_floor is not None:
            assert st.daily_amount is not None
            if daily.kind == "hard" or st.status is not Status.LOCKED:
                out.append(Floor("daily_loss", daily.kind, st.daily_floor, st.daily_amount, daily.includes_floating))
        return out

    def equity_band(self) -> tuple[Decimal | None, Decimal | None]:
        """Equity values ``(low, high)`` (account currency; ``None`` = unbounded) between which a valuation is
        guaranteed to change nothing: while ``low < equity < high`` no breach, lock, warning, new intraday high or
        pass can happen, so the caller may skip :meth:`on_valuation` (it must still call ``on_fill``/``on_time``,
        giving ``on_time`` the current equity).

        ``low`` is the highest equity that may change something: a warning level or a floor of a program with
        ``breach_on_equal`` triggers *at* ``low``; a floor of a program without it triggers only below, so a call
        at exactly ``low`` is then merely unnecessary. ``high`` is the intraday-trailing peak (a new peak above it
        moves the floor), the D6 day peak or an equity-basis target (reached at ``high`` itself). ``(None, None)``
        once passed or failed; ``(equity, equity)`` (empty) when every valuation matters (an equity-delta
        consistency gate is the only missing pass condition).
        """
        st = self._state
        if st.status in (Status.FAILED, Status.PASSED):
            return None, None
        low: Decimal | None = None
        for floor in self.floors():
            if not floor.on_equity:
                continue
            candidates = [floor.level] + [
                floor.level + floor.allowance * (1 - level)
                for level in self.phase.warnings
                if self._warn_key(floor.rule, level) not in st.warned
            ]
            top = max(candidates)
            low = top if low is None else max(low, top)
        high: Decimal | None = None
        max_loss = self.phase.max_loss
        if max_loss is not None and max_loss.mode == "trailing_intraday" and self._max_amount is not None:
            lock = self._lock_level
            if lock is None or st.hwm - self._max_amount < lock:
                high = st.hwm
        daily = self.phase.daily_loss
        if daily is not None and daily.intraday_trailing and daily.evaluation == "intraday":
            high = st.day_peak if high is None else min(high, st.day_peak)
        if self._target is not None and self.phase.target_basis == "equity":
            level = self._b0 + self._target
            high = level if high is None else min(high, level)
        consistency = self.phase.consistency
        if consistency is not None and consistency.day_pnl == "equity_delta" and self._pass_without_consistency():
            return st.equity, st.equity
        return low, high

    def best_day_share(self) -> Decimal | None:
        """Best day P&L ÷ the consistency denominator (R9), the current day included as it stands; ``None``
        when the denominator is not positive. Uses ``realized`` day P&L when the phase has no consistency rule."""
        best, den = self._best_and_denominator()
        if den <= 0:
            return None
        return (best / den).quantize(_SHARE, rounding=ROUND_HALF_UP)

    def view(self) -> FloorsView:
        """Dashboard numbers now (see :class:`FloorsView`)."""
        st = self._state
        hard = [f.level for f in self.floors() if f.kind == "hard"]
        effective = max(hard) if hard else None
        target = self._target
        profit = st.balance - self._b0
        return FloorsView(
            status=st.status,
            balance=st.balance,
            equity=st.equity,
            daily_floor=st.daily_floor,
            max_loss_floor=st.max_floor,
            effective_floor=effective,
            todays_permitted_loss=None if st.daily_floor is None else st.equity - st.daily_floor,
            max_permitted_loss=None if st.max_floor is None else st.equity - st.max_floor,
            room_left=None if effective is None else st.equity - effective,
            profit=profit,
            target=target,
            profit_to_target=None if target is None else target - profit,
            trading_days=len(st.trading_days),
            best_day_share=self.best_day_share(),
            next_reset_ts=st.next_boundary,
        )

    def refusal(
        self,
        ts: int,
        *,
        instrument_qty_after: Decimal | None = None,
        total_qty_after: Decimal | None = None,
        reducing: bool = False,
    ) -> str | None:
        """Why a new order must be rejected at ``ts`` (ns UTC), or ``None`` if the challenge allows it.

        ``instrument_qty_after`` / ``total_qty_after``: the absolute position (contracts/quantity) the order would
        leave on its instrument / over all instruments (R11 max position [S28]). ``reducing`` true (a closing or
        flattening order) is always allowed. Pure: call :meth:`on_time` first so the state is current.
        """
        if reducing:
            return None
        st = self._state
        if st.status is Status.FAILED:
            b = st.breach
            assert b is not None
            floor = "" if b.floor is None else f" (equity {b.equity} vs floor {b.floor})"
            return f"challenge failed: {b.rule}{floor} at {iso_utc(b.ts)}"
        if st.status is Status.PASSED:
            assert st.passed_ts is not None
            return f"challenge phase {self.phase.name!r} passed at {iso_utc(st.passed_ts)}; it takes no more orders"
        if st.status is Status.LOCKED and st.lock_until is not None and ts < st.lock_until:
            return f"locked by {st.lock_rule} until {iso_utc(st.lock_until)}"
        if st.flat_by_ts is not None and st.flat_by_ts <= ts < st.next_boundary:
            return (
                f"flat_by: trading closes at {self.phase.flat_by:%H:%M} {self.program.tz} until the reset at "
                f"{iso_utc(st.next_boundary)}"
            )
        mp = self.phase.max_position
        if mp is not None and self._position_limit is not None:
            qty = instrument_qty_after if mp.scope == "per_instrument" else total_qty_after
            if qty is not None and abs(qty) > self._position_limit:
                return f"max_position: {abs(qty)} exceeds the limit of {self._position_limit} ({mp.scope})"
        return None

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-able dict of the whole state (with the program id, phase, size and start to check on
        restore)."""
        return {
            "snapshot_version": SNAPSHOT_VERSION,
            "program_id": self.program.id,
            "phase_index": self.phase_index,
            "account_size": str(self.account_size),
            "start_ts": self.start_ts,
            "account_id": self.account_id,
            "state": self._state.to_dict(),
        }

    @classmethod
    def restore(cls, program: Program, snapshot: Mapping[str, Any]) -> ChallengeEvaluator:
        """Rebuild an evaluator from :meth:`snapshot`; it continues exactly where the original stood.

        Raises:
            InvalidInputError: wrong program, unknown snapshot version or malformed data.
        """
        if snapshot.get("snapshot_version") != SNAPSHOT_VERSION:
            raise InvalidInputError(f"unsupported evaluator snapshot version {snapshot.get('snapshot_version')!r}")
        if snapshot.get("program_id") != program.id:
            raise InvalidInputError(f"snapshot is for program {snapshot.get('program_id')!r}, not {program.id!r}")
        try:
            evaluator = cls(
                program,
                int(snapshot["phase_index"]),
                Decimal(snapshot["account_size"]),
                int(snapshot["start_ts"]),
                account_id=snapshot["account_id"],
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise InvalidInputError(f"malformed challenge evaluator snapshot: {exc!r}") from None
        evaluator._state = EvaluatorState.from_dict(snapshot["state"])
        return evaluator

    # ------------------------------------------------------------------ internals

    def _breached(self, value: Decimal, floor: Decimal) -> bool:
        return value < floor or (self.program.breach_on_equal and value == floor)

    @staticmethod
    def _warn_key(rule: str, level: Decimal) -> str:
        return f"{rule}@{level}"

    def _max_floor(self) -> Decimal | None:
        max_loss = self.phase.max_loss
        if max_loss is None or self._max_amount is None:
            return None
        if max_loss.mode == "static":
            return self._b0 - self._max_amount
        floor = self._state.hwm - self._max_amount
        lock = self._lock_level
        return floor if lock is None else min(floor, lock)

    def _open_daily_floor(self) -> None:
        st = self._state
        daily = self.phase.daily_loss
        if daily is None:
            return
        if daily.reference == "balance":
            ref = st.sod_balance
        elif daily.reference == "equity":
            ref = st.sod_equity
        else:
            ref = max(st.sod_balance, st.sod_equity)
        base = ref if daily.amount_base == "reference" else self._b0
        st.daily_amount = daily.amount.resolve(base, self.account_size)
        st.day_peak = ref
        st.daily_floor = ref - st.daily_amount

    def _open_flat_by(self, after: int) -> None:
        st = self._state
        st.flat_by_ts, st.flat_by_done = None, False
        at = self.phase.flat_by
        if at is None:
            return
        day_start = self._clock.start_of(st.day)
        ts = self._clock.next_local_time(day_start - 1, at)
        if ts < st.next_boundary:
            st.flat_by_ts = ts
            st.flat_by_done = ts < after

    def _event_base(self, ts_event: int, ts_init: int) -> dict[str, Any]:
        return {
            "event_id": new_event_id(),
            "ts_event": ts_event,
            "ts_init": ts_init,
            "phase": self.phase.name,
            "account_id": self.account_id,
        }

    def _fail(self, ts: int, ts_init: int, rule: str, floor: Decimal | None) -> ChallengeBreached:
        st = self._state
        st.status = Status.FAILED
        st.lock_rule = st.lock_until = None
        st.breach = Breach(rule, "hard", floor, st.equity, st.balance, ts)
        return ChallengeBreached(
            **self._event_base(ts, ts_init),
            rule=rule,
            kind="hard",
            floor=floor,
            equity=st.equity,
            balance=st.balance,
        )

    def _advance(self, ts: int, ts_init: int) -> list[ChallengeEvent]:
        st = self._state
        if ts < st.last_ts:
            raise InvalidInputError(f"input at {iso_utc(ts)} is earlier than the last one ({iso_utc(st.last_ts)})")
        st.last_ts = ts
        events: list[ChallengeEvent] = []
        while (deadline := self.next_deadline_ns()) is not None and deadline <= ts:
            if st.flat_by_ts == deadline and not st.flat_by_done:
                events += self._on_flat_by(deadline, ts_init)
            else:
                events += self._on_boundary(deadline, ts_init)
        return events

    def _on_flat_by(self, ts: int, ts_init: int) -> list[ChallengeEvent]:
        st = self._state
        st.flat_by_done = True
        if st.flat or st.status is not Status.ACTIVE:
            return []
        st.status, st.lock_rule, st.lock_until = Status.LOCKED, "flat_by", st.next_boundary
        return [
            ChallengeLocked(
                **self._event_base(ts, ts_init), rule="flat_by", floor=None, equity=st.equity, until_ts=st.next_boundary
            )
        ]

    def _on_boundary(self, ts: int, ts_init: int) -> list[ChallengeEvent]:
        """Day boundary, §7.2: freeze the day, move EOD floors, snapshot the new day, re-test, pass, time limits."""
        st = self._state
        phase = self.phase
        events: list[ChallengeEvent] = []
        # 1. freeze the closing day
        closing = st.day
        realized = st.balance - st.sod_balance
        threshold = self._b0 * (phase.min_pct or _ZERO) / HUNDRED
        definition = phase.trading_day_definition
        profitable = definition == "profitable_min_pct" and realized >= threshold
        if profitable or (definition == "balance_change_min_pct" and abs(realized) >= threshold):
            st.trading_days.add(closing)
        counted = closing in st.trading_days
        st.days.append(DayRecord(closing, st.sod_balance, st.sod_equity, st.balance, st.equity, counted))
        daily = phase.daily_loss
        if daily is not None and daily.evaluation == "eod" and st.daily_floor is not None:
            value = st.equity if daily.includes_floating else st.balance
            if self._breached(value, st.daily_floor):
                return [self._fail(ts, ts_init, "daily_loss", st.daily_floor)]
        # the weekend rule (R11, FTMO Account Standard [S11]): a position still open when the firm's Friday closes is
        # held over the weekend — a hard breach (the boundary closing Friday stands for the weekend close: the firms'
        # exact Friday cut-off times are not in the sources)
        if phase.weekend_flat and closing.weekday() == 4 and not st.flat:
            return [self._fail(ts, ts_init, "weekend_flat", None)]
        # 2. EOD high-water mark and trailing floor
        max_loss = phase.max_loss
        if max_loss is not None and max_loss.mode == "trailing_eod":
            eod = st.balance if max_loss.hwm_source == "balance" else max(st.balance, st.equity)
            if eod > st.hwm:
                st.hwm = eod
                st.max_floor = self._max_floor()
        # 3. new day: snapshot, daily floor, clear warnings and locks
        st.day = self._clock.day_of(ts)
        st.next_boundary = self._clock.start_of(st.day + _ONE_DAY)
        st.sod_balance, st.sod_equity = st.balance, st.equity
        self._open_daily_floor()
        self._open_flat_by(after=ts)
        st.warned.clear()
        st.opened_today = False
        events.append(
            DayClosed(
                **self._event_base(ts, ts_init),
                day=closing.isoformat(),
                pnl=realized,
                eod_balance=st.balance,
                eod_equity=st.equity,
                counted_trading_day=closing in st.trading_days,
                daily_floor=st.daily_floor,
                max_loss_floor=st.max_floor,
            )
        )
        if st.status is Status.LOCKED:
            rule = st.lock_rule or ""
            st.status, st.lock_rule, st.lock_until = Status.ACTIVE, None, None
            events.append(ChallengeUnlocked(**self._event_base(ts, ts_init), rule=rule))
        # 4. re-test equity at once (an overnight position can breach at the reset [S1])
        events += self._check(ts, ts_init)
        # 5. pass conditions, then time limits
        events += self._check_pass(ts, ts_init)
        if st.status in (Status.ACTIVE, Status.LOCKED):
            if phase.max_days is not None and (st.day - self._start_day).days >= phase.max_days:
                events.append(self._fail(ts, ts_init, "max_days", None))
            elif phase.inactivity_days is not None and (st.day - st.last_activity_day).days > phase.inactivity_days:
                events.append(self._fail(ts, ts_init, "inactivity", None))
        return events

    def _check(self, ts: int, ts_init: int) -> list[ChallengeEvent]:
        """Tick checks, §7.2 steps 2–6."""
        st = self._state
        if st.status in (Status.FAILED, Status.PASSED):
            return []
        max_loss = self.phase.max_loss
        if max_loss is not None and max_loss.mode == "trailing_intraday" and st.equity > st.hwm:
            st.hwm = st.equity  # update the peak first, then test (R4)
            st.max_floor = self._max_floor()
        daily = self.phase.daily_loss
        if daily is not None and daily.intraday_trailing and st.equity > st.day_peak:
            assert st.daily_amount is not None
            st.day_peak = st.equity
            st.daily_floor = st.day_peak - st.daily_amount
        floors = self.floors()
        hit = [f for f in floors if self._breached(self._value(f), f.level)]
        hard = [f for f in hit if f.kind == "hard"]
        if hard:
            worst = max(hard, key=lambda f: f.level)  # R6: the higher floor was crossed first
            return [self._fail(ts, ts_init, worst.rule, worst.level)]
        events: list[ChallengeEvent] = []
        for floor in hit:  # soft ones
            st.status, st.lock_rule, st.lock_until = Status.LOCKED, floor.rule, st.next_boundary
            events.append(
                ChallengeLocked(
                    **self._event_base(ts, ts_init),
                    rule=floor.rule,
                    floor=floor.level,
                    equity=st.equity,
                    until_ts=st.next_boundary,
                )
            )
        for floor in floors:
            if floor in hit:
                continue
            value = self._value(floor)
            for level in self.phase.warnings:
                key = self._warn_key(floor.rule, level)
                if key in st.warned or value > floor.level + floor.allowance * (1 - level):
                    continue
                st.warned.add(key)
                used = ((floor.level + floor.allowance - value) / floor.allowance).quantize(_SHARE)
                events.append(
                    ChallengeWarning(
                        **self._event_base(ts, ts_init),
                        rule=floor.rule,
                        level=level,
                        room_used=used,
                        floor=floor.level,
                        value=value,
                    )
                )
        return events

    def _value(self, floor: Floor) -> Decimal:
        return self._state.equity if floor.on_equity else self._state.balance

    def _target_reached(self) -> bool:
        st = self._state
        if self._target is None:
            return False
        level = self._b0 + self._target
        basis = self.phase.target_basis
        if basis == "equity":
            return st.equity >= level
        if basis == "balance_flat" and not st.flat:
            return False
        return st.balance >= level

    def _pass_without_consistency(self) -> bool:
        st = self._state
        if st.status not in (Status.ACTIVE, Status.LOCKED):
            return False
        return self._target_reached() and len(st.trading_days) >= self.phase.min_trading_days

    def _best_and_denominator(self) -> tuple[Decimal, Decimal]:
        st = self._state
        consistency = self.phase.consistency
        kind = consistency.day_pnl if consistency else "realized"
        current = st.equity - st.sod_equity if kind == "equity_delta" else st.balance - st.sod_balance
        pnls = [r.pnl(kind) for r in st.days] + [current]
        best = max(pnls)
        denominator = consistency.denominator if consistency else "net_total"
        if denominator == "sum_positive":
            return best, sum((p for p in pnls if p > 0), _ZERO)
        if denominator == "target" and self._target is not None:
            return best, self._target
        return best, sum(pnls, _ZERO)

    def _consistency_met(self) -> bool:
        consistency = self.phase.consistency
        if consistency is None:
            return True
        best, den = self._best_and_denominator()
        return den > 0 and best <= consistency.max_share * den

    def _check_pass(self, ts: int, ts_init: int) -> list[ChallengeEvent]:
        st = self._state
        if not self._pass_without_consistency() or not self._consistency_met():
            return []
        st.status, st.passed_ts = Status.PASSED, ts
        st.lock_rule = st.lock_until = None
        return [
            ChallengePassed(
                **self._event_base(ts, ts_init),
                balance=st.balance,
                equity=st.equity,
                trading_days=len(st.trading_days),
                best_day_share=self.best_day_share(),
            )
        ]
