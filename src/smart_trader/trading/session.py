"""One account's trading pipeline, the same in backtests and live: pre-trade checks → paper broker → account →
monitors, with a trading state (NautilusTrader's ``RiskEngine`` semantics, ``risk/engine.pyx``):

- ``active``: every order goes through the checks to the broker;
- ``reducing``: only orders that reduce an open position are accepted (a challenge locked until its reset, a risk
  manager winding an account down);
- ``halted``: every new order is rejected; cancels, fills and expiries go on.

A denial is an ``OrderRejected`` event through the broker's state machine and listeners
(:meth:`~smart_trader.execution.paper_broker.PaperBroker.reject`), with a reason the trader can read. Monitors (risk
drawdown, challenge rules) see every order event and every valuation of the account; the market-event dispatcher
(:mod:`smart_trader.trading.dispatch`) calls :meth:`AccountSession.value` when a price move may matter to them.

Sessions are built in one place, :class:`SessionFactory`, for :class:`~smart_trader.strategy.engine.BacktestEngine`
and the live :class:`~smart_trader.live.runtime.TradingRuntime` alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from smart_trader.core.clock import NS_PER_DAY, Alert, Clock
from smart_trader.core.ids import InstrumentId, OrderId
from smart_trader.core.instruments import Instrument
from smart_trader.execution.enums import OrderSide, TimeInForce
from smart_trader.execution.events import OrderEvent, OrderFilled
from smart_trader.execution.limits import OrderLimits
from smart_trader.execution.orders import Order, OrderRequest
from smart_trader.execution.paper_broker import FillConfig, PaperBroker
from smart_trader.portfolio.account import Account


class TradingState(StrEnum):
    """What an account may do (NautilusTrader ``TradingState``): ``active``, ``reducing`` (reduce-only) or
    ``halted`` (no new orders)."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


class PreTradeCheck(Protocol):
    """One pre-trade rule (``risk/checks.py``): the reason to deny ``request`` at ``ts`` (ns UTC), or ``None``."""

    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        """Why ``request`` must be rejected now (a sentence naming the limit and the values), or ``None``."""
        ...


class Monitor(Protocol):
    """Watches an account as it trades (challenge rules, the drawdown guard): order events as the broker emits them,
    and valuations (equity in the account currency, exact) at ``ts`` (ns UTC)."""

    def on_order_event(self, session: AccountSession, order: Order, event: OrderEvent) -> None:
        """An event of one of the account's orders (after the account applied a fill)."""
        ...

    def on_valuation(self, session: AccountSession, ts: int, equity: Decimal) -> None:
        """The account's equity at ``ts``: after a fill, on a price move that may matter (see
        :meth:`equity_band`), and along a bar's path (its worst point included)."""
        ...

    def equity_band(self, session: AccountSession) -> tuple[Decimal | None, Decimal | None]:
        """Equity values ``(low, high)`` between which (both excluded) a valuation cannot change anything for this
        monitor; ``None`` for an open side. The dispatcher turns them into prices and skips the price moves
        inside."""
        ...


class AccountSession:
    """An account's pipeline: checks → broker → account → monitors (see the module docstring).

    Args:
        account: the exact account (cash, positions, ledger).
        broker: its paper broker (already holding the account).
        clock: the time source of the session (market clock in backtests and replays, wall clock live).
        checks: pre-trade checks, in the order they run; the first denial wins.
        monitors: watchers of order events and valuations.
    """

    __slots__ = (
        "account",
        "broker",
        "checks",
        "clock",
        "day_alert",
        "deferred",
        "halts",
        "monitors",
        "on_stale",
        "stale_reported",
        "state",
        "state_reason",
        "valuing",
    )

    def __init__(
        self,
        account: Account,
        broker: PaperBroker,
        clock: Clock,
        checks: Sequence[PreTradeCheck] = (),
        monitors: Sequence[Monitor] = (),
    ) -> None:
        self.account = account
        self.broker = broker
        self.clock = clock
        self.checks = tuple(checks)
        self.monitors = tuple(monitors)
        self.state = TradingState.ACTIVE
        self.state_reason = ""
        self.halts: dict[str, str] = {}  # who halted the account (a risk manager, its challenge) → why
        self.day_alert: Alert | None = None  # the clock alert at the next UTC midnight while day orders work
        self.on_stale: Callable[[AccountSession], None] | None = None  # set by the dispatcher watching it
        self.deferred: list[Callable[[int], object]] = []
        # the marks of the valuation in progress (a bar's path point), for monitors quoting the price they judged
        self.valuing: Callable[[InstrumentId], Decimal | None] | None = None
        self.stale_reported = False
        if self.monitors:
            broker.listeners.append(self._on_order_event)
        for part in (*self.checks, *self.monitors):  # a challenge monitor sets its clock alerts on its session
            attach = getattr(part, "attach", None)
            if attach is not None:
                attach(self)

    @property
    def account_id(self) -> str:
        """The account's id."""
        return self.account.account_id

    # -- orders ---------------------------------------------------------------------------
    def submit(self, request: OrderRequest, ts: int, order_id: OrderId | None = None) -> Order:
        """Submit ``request`` at ``ts`` (ns UTC) through the trading state and the checks to the broker; a denial is
        the order, rejected with the reason.

        Raises:
            InvalidInputError: the request is malformed (see :meth:`OrderRequest.validate`).
        """
        if self.state is not TradingState.ACTIVE or self.checks:
            reason = self.denial(request, ts)
            if reason is not None:
                return self.broker.reject(request, ts, reason, order_id)
        order = self.broker.submit(request, ts, order_id)
        if request.time_in_force is TimeInForce.DAY and self.day_alert is None and order.is_open:
            self._expire_days_at((ts // NS_PER_DAY + 1) * NS_PER_DAY)
        return order

    def _expire_days_at(self, midnight: int) -> None:
        """Expire the day orders at the UTC ``midnight`` (ns) on the clock (no market event needed), then every
        midnight while day orders work."""

        def expire(at: int) -> None:
            self.day_alert = None
            self.broker.expire_day_orders(at)
            if self.broker.has_day_orders():
                self._expire_days_at(at + NS_PER_DAY)

        self.day_alert = self.clock.set_alert(midnight, expire)

    def denial(self, request: OrderRequest, ts: int) -> str | None:
        """Why ``request`` would be rejected at ``ts`` (ns UTC) before reaching the broker, or ``None``."""
        if self.state is TradingState.HALTED:
            return f"account halted: {self.state_reason}"
        if self.state is TradingState.REDUCING and not self.reduces(request):
            return f"account reducing: {self.state_reason}; only orders that reduce an open position are accepted"
        for check in self.checks:
            reason = check.check(request, self, ts)
            if reason is not None:
                return reason
        return None

    def reduces(self, request: OrderRequest) -> bool:
        """Whether ``request`` only reduces the open position of its instrument (same size or less, opposite
        side; a notional order never counts as reducing: its size is known only at the fill)."""
        held = self.account.quantity(request.instrument_id)
        qty = request.quantity
        if qty is None or not held:
            return False
        for working in self.broker.open_orders(request.instrument_id):  # what already works on that side counts
            if working.request.side is request.side:
                leaves = working.leaves_qty
                if leaves is None:
                    return False
                qty += leaves
        if request.side is OrderSide.SELL:
            return held > 0 and qty <= held
        return held < 0 and qty <= -held

    def cancel(self, order_id: OrderId, ts: int) -> Order:
        """Cancel a working order at ``ts`` (ns UTC); allowed in every trading state.

        Raises:
            NotFoundError: unknown order.
            RejectedByRulesError: the order is not open.
        """
        return self.broker.cancel(order_id, ts)

    def cancel_all(self, ts: int) -> list[Order]:
        """Cancel every working order at ``ts`` (ns UTC); returns them."""
        return [self.broker.cancel(o.order_id, ts) for o in self.broker.open_orders()]

    def set_state(self, state: TradingState, reason: str = "") -> None:
        """Change the trading state (``reason`` is quoted in the rejections)."""
        self.state = state
        self.state_reason = reason if state is not TradingState.ACTIVE else ""

    def halt(self, source: str, reason: str) -> None:
        """Halt the account on behalf of ``source`` (``"risk"``: a risk manager; ``"challenge"``: its challenge's
        rules); it trades again only once every source that halted it has released it (:meth:`release`), so a
        challenge's daily unlock never lifts a risk manager's halt, nor the other way round."""
        self.halts[source] = reason
        self.set_state(TradingState.HALTED, "; ".join(self.halts.values()))

    def release(self, source: str) -> None:
        """``source`` lifts its halt; the account trades again when no other source holds one."""
        if self.halts.pop(source, None) is None:
            return
        if self.halts:
            self.set_state(TradingState.HALTED, "; ".join(self.halts.values()))
        elif self.state is TradingState.HALTED:
            self.set_state(TradingState.ACTIVE)

    # -- valuation ------------------------------------------------------------------------
    def value(self, ts: int, marks: Callable[[InstrumentId], Decimal | None] | None = None) -> Decimal:
        """The account's equity at ``ts`` (ns UTC), at ``marks`` (default: the account's own marks), given to every
        monitor.

        Raises:
            NotFoundError: an open position has no mark price.
        """
        account = self.account
        equity = account.equity if marks is None else account.equity_at(marks)
        self.valuing = marks
        try:
            for monitor in self.monitors:
                monitor.on_valuation(self, ts, equity)
        finally:
            self.valuing = None
        return equity

    def defer(self, action: Callable[[int], object]) -> None:
        """Run ``action(ts)`` once the current market event is through the broker (:meth:`settle`, called by the
        dispatcher): a monitor reacting inside a fill must not cancel or submit while the broker is matching."""
        self.deferred.append(action)
        self.mark_stale()

    def settle(self, ts: int) -> None:
        """Run the deferred actions at ``ts`` (ns UTC), in the order they were deferred."""
        while self.deferred:
            actions, self.deferred = self.deferred, []
            for action in actions:
                action(ts)

    def mark_stale(self) -> None:
        """Something a monitor judges by changed (a fill, a day reset): the dispatcher values the session again and
        recomputes its band after the current event (once, however often this is called)."""
        if not self.stale_reported and self.on_stale is not None:
            self.stale_reported = True
            self.on_stale(self)

    def equity_band(self) -> tuple[Decimal | None, Decimal | None]:
        """The narrowest equity band of the monitors (see :meth:`Monitor.equity_band`): ``(max of lows, min of
        highs)``."""
        low: Decimal | None = None
        high: Decimal | None = None
        for monitor in self.monitors:
            lo, hi = monitor.equity_band(self)
            if lo is not None and (low is None or lo > low):
                low = lo
            if hi is not None and (high is None or hi < high):
                high = hi
        return low, high

    def _on_order_event(self, order: Order, event: OrderEvent) -> None:
        for monitor in self.monitors:
            monitor.on_order_event(self, order, event)
        if type(event) is OrderFilled:
            self.mark_stale()


ChecksFor = Callable[[Account], Sequence[PreTradeCheck]]
MonitorsFor = Callable[[Account], Sequence[Monitor]]


class SessionFactory:
    """The one place an account's pipeline is assembled (backtests and the live runtime).

    Args:
        config: commission, slippage and participation of the paper broker.
        checks: the pre-trade checks of an account (default none).
        monitors: the monitors of an account (default none).
    """

    def __init__(
        self,
        config: FillConfig | None = None,
        checks: ChecksFor | None = None,
        monitors: MonitorsFor | None = None,
    ) -> None:
        self.config = config or FillConfig()
        self.checks = checks
        self.monitors = monitors

    def __call__(
        self,
        account: Account,
        instruments: Mapping[InstrumentId, Instrument],
        clock: Clock,
        last_price: Callable[[InstrumentId], Decimal | None] | None = None,
        ids: Callable[[str], Callable[[], str]] | None = None,
        limits: OrderLimits | None = None,
        rate_clock: Callable[[], int] | None = None,
    ) -> AccountSession:
        """A session for ``account`` with a new paper broker (see :class:`PaperBroker` for the arguments)."""
        broker = PaperBroker(
            account, instruments, self.config, last_price, ids=ids, limits=limits, rate_clock=rate_clock
        )
        checks = self.checks(account) if self.checks is not None else ()
        monitors = self.monitors(account) if self.monitors is not None else ()
        return AccountSession(account, broker, clock, checks, monitors)
