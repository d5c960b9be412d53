"""A challenge on the trading pipeline: :class:`ChallengeMonitor` plugs a
:class:`~smart_trader.challenges.evaluator.ChallengeEvaluator` into an account's
:class:`~smart_trader.trading.session.AccountSession`, the same way in a backtest and on the platform.

- as a **monitor** it feeds the evaluator every fill (balance and equity after it) and every valuation the market
  dispatch makes (its quiet band is the evaluator's :meth:`~ChallengeEvaluator.equity_band`, so a price move inside
  it costs nothing; along a bar's path the worst point is valued — CHALLENGES.md §7.2);
- as a **pre-trade check** it rejects new orders the challenge forbids (failed, locked, passed, flat-by window,
  maximum position), naming the rule; orders that only reduce a position always pass;
- it keeps one **clock alert** at the evaluator's next deadline (day reset, flat-by time), so an overnight position
  fails at the reset with no price move;
- on a **hard breach** the account is halted (new orders rejected with the rule in the message), its working orders
  canceled and its positions flattened by market orders (filled at the next price); a **soft** one (soft daily loss,
  flat-by time) halts and flattens it until the evaluator unlocks it at the next reset. The breach's evidence gets
  the positions and marks at the breach.

The evaluator's events wait in the monitor (:meth:`ChallengeMonitor.drain_events`) for whoever persists and publishes
them (``challenges/persist.py`` on the platform); ``on_change`` tells it the monitor has something to store.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from smart_trader.challenges.evaluator import ChallengeEvaluator
from smart_trader.challenges.events import (
    ChallengeBreached,
    ChallengeEvent,
    ChallengeLocked,
    ChallengePassed,
    ChallengeUnlocked,
)
from smart_trader.challenges.program import to_cents
from smart_trader.challenges.state import Status
from smart_trader.core.clock import Alert
from smart_trader.core.ids import InstrumentId
from smart_trader.execution.enums import OrderSide, OrderType
from smart_trader.execution.events import OrderEvent, OrderFilled
from smart_trader.execution.orders import Order, OrderRequest
from smart_trader.trading.session import AccountSession

HALF_CENT = Decimal("0.005")


CHALLENGE_HALT = "challenge"
"""The halt source of a challenge's rules (:meth:`AccountSession.halt`)."""


class ChallengeMonitor:
    """Judges one account against one challenge phase as it trades (see the module docstring).

    Args:
        evaluator: the phase's evaluator, started at the account's start (``start_ts``).
        on_change: called after every input the evaluator processed (its state changed), with the monitor and the
            session.
    """

    def __init__(
        self,
        evaluator: ChallengeEvaluator,
        on_change: Callable[[ChallengeMonitor, AccountSession], None] | None = None,
    ) -> None:
        self.evaluator = evaluator
        self.on_change = on_change
        self.events: list[ChallengeEvent] = []  # produced and not drained yet
        self._alert: Alert | None = None
        self._session: AccountSession | None = None

    def drain_events(self) -> list[ChallengeEvent]:
        """The events produced since the last call, oldest first."""
        events, self.events = self.events, []
        return events

    # -- wiring ---------------------------------------------------------------------------
    def attach(self, session: AccountSession) -> None:
        """Start judging ``session`` (call once, after the session is built): sets the first deadline alert and the
        trading state the evaluator's status implies (a restored failed or locked challenge)."""
        self._session = session
        self._apply_status(session, session.clock.now_ns())
        self._schedule(session)

    def _schedule(self, session: AccountSession) -> None:
        deadline = self.evaluator.next_deadline_ns()
        if self._alert is not None:
            if deadline is not None and self._alert.ts_ns == deadline and not self._alert.cancelled:
                return
            self._alert.cancel()
            self._alert = None
        if deadline is not None:
            self._alert = session.clock.set_alert(deadline, self._on_alert)

    def _on_alert(self, ts: int) -> None:
        session = self._session
        assert session is not None
        self._alert = None
        account = session.account
        equity = account.equity
        events = self.evaluator.on_time(self._at(ts), balance=_balance(session), equity=to_cents(equity))
        self._handle(session, ts, events)

    # -- PreTradeCheck ----------------------------------------------------------------------
    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        """Why the challenge refuses ``request`` at ``ts`` (ns UTC), or ``None``."""
        evaluator = self.evaluator
        ts = self._at(ts)
        deadline = evaluator.next_deadline_ns()
        if deadline is not None and deadline <= ts:  # a reset due before this order: the alert has not run yet
            equity = session.account.equity
            self._handle(session, ts, evaluator.on_time(ts, balance=_balance(session), equity=to_cents(equity)))
        account = session.account
        held = account.quantity(request.instrument_id)
        qty = request.quantity
        after: Decimal | None = None
        total: Decimal | None = None
        if qty is not None:
            after = held + qty if request.side is OrderSide.BUY else held - qty
            others = sum(
                (abs(p.quantity) for i, p in account.positions.items() if i != request.instrument_id), Decimal(0)
            )
            total = others + abs(after)
        return evaluator.refusal(
            ts, instrument_qty_after=after, total_qty_after=total, reducing=session.reduces(request)
        )

    # -- Monitor ----------------------------------------------------------------------------
    def on_order_event(self, session: AccountSession, order: Order, event: OrderEvent) -> None:
        """A fill goes to the evaluator with the balance and equity after it."""
        if type(event) is not OrderFilled:
            return
        fill = event.fill
        account = session.account
        after = account.quantity(fill.instrument_id)
        before = after - fill.quantity if fill.side is OrderSide.BUY else after + fill.quantity
        opened = abs(after) > abs(before) or (before != 0 and after != 0 and (before > 0) != (after > 0))
        # right after a fill its instrument is worth the fill price (the account's own mark may still be the last
        # bar's close, a price the market is no longer at)
        iid, price = fill.instrument_id, fill.price

        def marks(i: InstrumentId) -> Decimal | None:
            return price if i == iid else account.mark(i)

        equity = account.equity_at(marks)
        before_marks, session.valuing = session.valuing, marks  # the breach's evidence quotes the fill price
        try:
            events = self.evaluator.on_fill(
                self._at(event.ts_event),
                balance=_balance(session),
                equity=to_cents(equity),
                opened=opened,
                flat=_flat(session),
                position_size=abs(after),
            )
            self._handle(session, self._at(event.ts_event), events)
        finally:
            session.valuing = before_marks

    def on_valuation(self, session: AccountSession, ts: int, equity: Decimal) -> None:
        """A valuation (a price move outside the band, a point of a bar's path)."""
        if self.evaluator.status in (Status.FAILED, Status.PASSED):
            return
        ts = self._at(ts)
        events = self.evaluator.on_valuation(
            ts, balance=_balance(session), equity=to_cents(equity), flat=_flat(session)
        )
        self._handle(session, ts, events)

    def equity_band(self, session: AccountSession) -> tuple[Decimal | None, Decimal | None]:
        """The evaluator's quiet band; none once the phase is over (no valuation can change it)."""
        if self.evaluator.status in (Status.FAILED, Status.PASSED):
            return None, None
        low, high = self.evaluator.equity_band()
        # the rules see equity in cents, rounded half up: an exact equity under low + ½ cent is already "low" to them
        return (None if low is None else low + HALF_CENT, None if high is None else high - HALF_CENT)

    # -- consequences ---------------------------------------------------------------------
    def _handle(self, session: AccountSession, ts: int, events: list[ChallengeEvent]) -> None:
        if self.on_change is not None:
            self.on_change(self, session)
        if not events:
            self._schedule(session)
            return
        self.events.extend(events)
        for e in events:
            if type(e) is ChallengeBreached:
                self.evaluator.add_breach_evidence(_evidence(session))
        if any(type(e) is ChallengeUnlocked for e in events):
            session.release(CHALLENGE_HALT)
        self._apply_status(session, ts)  # after the unlock: a reset that unlocks and fails leaves the account halted
        if any(type(e) is ChallengeBreached or (type(e) is ChallengeLocked and e.flatten) for e in events):
            session.defer(lambda at: flatten(session, at))  # after the event that breached is through the broker
        elif any(type(e) is ChallengePassed for e in events):
            session.defer(session.cancel_all)  # a passed phase takes no more orders: its resting ones must not fill
        self._schedule(session)
        session.mark_stale()

    def _apply_status(self, session: AccountSession, ts: int) -> None:
        status = self.evaluator.status
        if status is Status.FAILED or status is Status.LOCKED:
            reason = self.evaluator.refusal(ts) or f"challenge {status.value}"
            session.halt(CHALLENGE_HALT, reason)

    def _at(self, ts: int) -> int:
        """``ts`` (ns UTC), or the evaluator's latest input time when ``ts`` is earlier: events of several instruments
        (a bar's path of one, a fill on another; exchange timestamps that interleave) reach the rules in the order
        they happen to the account, judged at the latest time seen."""
        last = self.evaluator.last_ts
        return last if ts < last else ts

    def finish(self) -> dict[str, Any]:
        """Close the firm day the data ends in (its boundary after the last input), as ``challenge evaluate`` does, and
        return the verdict: rules judged at a day's close (profitable days, end-of-day floors, a pass at the close)
        count for the last day too."""
        evaluator = self.evaluator
        session = self._session
        if session is not None and evaluator.status not in (Status.FAILED, Status.PASSED):
            boundary = evaluator.next_boundary_ns
            equity = to_cents(session.account.equity)
            self._handle(session, boundary, evaluator.on_time(boundary, balance=_balance(session), equity=equity))
        return evaluator.verdict()


def flatten(session: AccountSession, ts: int) -> list[Order]:
    """Cancel every working order and close every position with a market order at ``ts`` (ns UTC), past the session's
    checks (filled at the next price). Returns the closing orders."""
    session.cancel_all(ts)
    closing = []
    for iid, pos in list(session.account.positions.items()):
        if pos.quantity:
            side = OrderSide.SELL if pos.quantity > 0 else OrderSide.BUY
            request = OrderRequest(iid, side, OrderType.MARKET, quantity=abs(pos.quantity))
            closing.append(session.broker.submit(request, ts))
    return closing


def _balance(session: AccountSession) -> Decimal:
    """Closed balance (account currency, quantized to cents as every amount the rules compare, CHALLENGES.md §7): cash
    plus the open positions at their average price (= equity less the floating P&L; commissions already booked in
    cash), independent of the marks."""
    account = session.account
    total = account.cash
    for pos in account.positions.values():
        if pos.quantity:
            total += pos.cost_basis
    return to_cents(total)


def _flat(session: AccountSession) -> bool:
    return not any(p.quantity for p in session.account.positions.values())


def _evidence(session: AccountSession) -> dict[str, str]:
    """The positions and the prices they were valued at when the rule broke (the point of a bar's path being valued,
    else the account's marks)."""
    account = session.account
    mark = session.valuing or account.mark
    held = {str(i): p for i, p in account.positions.items() if p.quantity}
    return {
        "positions": "; ".join(f"{i} {p.quantity} @ avg {p.avg_entry_price}" for i, p in held.items()) or "flat",
        "marks": "; ".join(f"{i} {mark(p.instrument_id)}" for i, p in held.items()) or "none",
    }
