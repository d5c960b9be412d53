"""AccountSession: the trading state (active, reducing, halted), pre-trade checks in order, denials as
``OrderRejected`` events through the broker, client order ids, and monitors (order events, staleness after fills)."""

from __future__ import annotations

import pytest

from smart_trader.core.ids import InstrumentId
from smart_trader.execution.enums import OrderStatus
from smart_trader.execution.events import OrderAccepted, OrderCanceled, OrderEvent, OrderFilled, OrderRejected
from smart_trader.execution.orders import Order, OrderRequest
from smart_trader.trading.dispatch import MarketDispatcher
from smart_trader.trading.session import AccountSession, TradingState
from tests.execution.builders import BUY, ORCL, SELL, Feed, account, at, give_position, limit, market
from tests.trading.builders import D, Marks, RecordingMonitor, margin_account, session


def listen(s: AccountSession) -> list[tuple[Order, OrderEvent]]:
    """Every event the broker's listeners get, in order."""
    seen: list[tuple[Order, OrderEvent]] = []
    s.broker.listeners.append(lambda order, event: seen.append((order, event)))
    return seen


def assert_rejected(s: AccountSession, order: Order, reason: str, seen: list[tuple[Order, OrderEvent]]) -> None:
    """``order`` was rejected for ``reason``: stored by the broker, its last event an ``OrderRejected`` with it."""
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == reason
    assert s.broker.orders[order.order_id] is order
    last_order, last_event = seen[-1]
    assert last_order is order
    assert type(last_event) is OrderRejected
    assert last_event.reason == reason
    assert last_event.order_id == order.order_id
    assert order.order_id not in {o.order_id for o in s.broker.open_orders()}


# -- halted -------------------------------------------------------------------------------------------------------
def test_halted_rejects_every_new_order_with_its_reason_and_cancels_still_work() -> None:
    acct = account("100000")
    give_position(acct, ORCL, "10", "100.00")
    s = session(acct, ORCL)
    seen = listen(s)
    resting = s.submit(limit(BUY, "5", "90.00"), at(0))
    assert resting.status is OrderStatus.ACCEPTED
    s.set_state(TradingState.HALTED, "daily loss limit breached")
    reason = "account halted: daily loss limit breached"
    requests = [
        market(BUY, "1"),
        market(SELL, "10"),  # even one that reduces the position
        limit(SELL, "1", "120.00"),
        market(BUY, notional="500"),
    ]
    for k, req in enumerate(requests, start=1):
        order = s.submit(req, at(k))
        assert_rejected(s, order, reason, seen)
    assert len(s.broker.orders) == 1 + len(requests)
    canceled = s.cancel(resting.order_id, at(10))
    assert canceled.status is OrderStatus.CANCELED
    assert type(seen[-1][1]) is OrderCanceled
    assert s.broker.open_orders() == []
    # resuming: orders go through again
    s.set_state(TradingState.ACTIVE)
    assert s.submit(market(BUY, "1"), at(11)).status is OrderStatus.ACCEPTED


def test_cancel_all_works_while_halted() -> None:
    s = session(account("100000"), ORCL)
    orders = [s.submit(limit(BUY, "1", p), at(0)) for p in ("90.00", "91.00", "92.00")]
    s.set_state(TradingState.HALTED, "stop")
    done = s.cancel_all(at(1))
    assert {o.order_id for o in done} == {o.order_id for o in orders}
    assert all(o.status is OrderStatus.CANCELED for o in orders)


def test_halted_takes_precedence_over_the_checks() -> None:
    calls: list[OrderRequest] = []

    class Never:
        def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
            calls.append(request)
            return "never"

    s = session(account("100000"), ORCL, checks=[Never()])
    seen = listen(s)
    s.set_state(TradingState.HALTED, "manual")
    order = s.submit(market(BUY, "1"), at(0))
    assert_rejected(s, order, "account halted: manual", seen)
    assert calls == []


# -- reducing -----------------------------------------------------------------------------------------------------
REDUCING_REASON = (
    "account reducing: locked until the daily reset; only orders that reduce an open position are accepted"
)


@pytest.mark.parametrize("quantity", ["10", "4", "1"])
def test_reducing_accepts_a_sell_of_at_most_the_long_position(quantity: str) -> None:
    acct = account("100000")
    give_position(acct, ORCL, "10", "100.00")
    s = session(acct, ORCL)
    s.set_state(TradingState.REDUCING, "locked until the daily reset")
    order = s.submit(market(SELL, quantity), at(0))
    assert order.status is OrderStatus.ACCEPTED
    Feed(s.broker).bar(at(1), "100.00", "100.00", "100.00", "100.00")
    assert acct.quantity(ORCL.id) == D(10) - D(quantity)


@pytest.mark.parametrize(
    "request_",
    [
        market(BUY, "1"),  # adds to the long
        limit(BUY, "1", "99.00"),
        market(SELL, "11"),  # more than held: would flip to short
        limit(SELL, "20", "101.00"),
        market(SELL, notional="500"),  # size known only at the fill: never reducing
        market(BUY, notional="500"),
    ],
    ids=["market buy", "limit buy", "oversized sell", "oversized limit sell", "notional sell", "notional buy"],
)
def test_reducing_rejects_what_does_not_reduce_the_long_with_the_reason(request_: OrderRequest) -> None:
    acct = account("100000")
    give_position(acct, ORCL, "10", "100.00")
    s = session(acct, ORCL)
    seen = listen(s)
    s.set_state(TradingState.REDUCING, "locked until the daily reset")
    order = s.submit(request_, at(0))
    assert_rejected(s, order, REDUCING_REASON, seen)
    assert acct.quantity(ORCL.id) == 10


def test_reducing_a_short_accepts_buys_up_to_its_size_only() -> None:
    marks = Marks()
    acct = margin_account("100000", marks)
    s = session(acct, ORCL)
    s.submit(market(SELL, "8"), at(0))
    Feed(s.broker).bar(at(1), "50.00", "50.00", "50.00", "50.00")
    assert acct.quantity(ORCL.id) == -8
    seen = listen(s)
    s.set_state(TradingState.REDUCING, "locked until the daily reset")
    assert s.submit(market(BUY, "8"), at(2)).status is OrderStatus.ACCEPTED
    for req in (market(BUY, "9"), market(SELL, "1"), market(BUY, notional="100")):
        assert_rejected(s, s.submit(req, at(3)), REDUCING_REASON, seen)


def test_reducing_a_flat_account_rejects_everything() -> None:
    s = session(account("100000"), ORCL)
    seen = listen(s)
    s.set_state(TradingState.REDUCING, "locked until the daily reset")
    for req in (market(BUY, "1"), market(SELL, "1")):
        assert_rejected(s, s.submit(req, at(0)), REDUCING_REASON, seen)


def test_reducing_never_lets_working_orders_flip_the_position() -> None:
    acct = margin_account("100000")
    give_position(acct, ORCL, "10", "100.00")
    s = session(acct, ORCL)
    s.set_state(TradingState.REDUCING, "locked until the daily reset")
    first = s.submit(limit(SELL, "10", "101.00"), at(0))
    second = s.submit(limit(SELL, "10", "101.00"), at(1))
    Feed(s.broker).bar(at(2), "101.00", "101.00", "101.00", "101.00")
    assert first.status is OrderStatus.FILLED
    # the second sell did not reduce the position once the first one was working: it must not have been accepted
    assert second.status is OrderStatus.REJECTED
    assert acct.quantity(ORCL.id) == 0


# -- checks -------------------------------------------------------------------------------------------------------
class Check:
    """Denies with ``reason`` (``None``: allows), recording what it was asked."""

    def __init__(self, log: list[tuple[str, OrderRequest, AccountSession, int]], name: str, reason: str | None) -> None:
        self.log = log
        self.name = name
        self.reason = reason

    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        self.log.append((self.name, request, session, ts))
        return self.reason


def test_checks_run_in_order_and_the_first_denial_wins() -> None:
    log: list[tuple[str, OrderRequest, AccountSession, int]] = []
    checks = [
        Check(log, "first", None),
        Check(log, "second", "order of 7 exceeds the limit of 5 (max_order_quantity)"),
        Check(log, "third", "never asked"),
    ]
    s = session(account("100000"), ORCL, checks=checks)
    seen = listen(s)
    req = market(BUY, "7")
    order = s.submit(req, at(3))
    assert_rejected(s, order, "order of 7 exceeds the limit of 5 (max_order_quantity)", seen)
    assert [(name, r, sess, ts) for name, r, sess, ts in log] == [("first", req, s, at(3)), ("second", req, s, at(3))]
    assert s.denial(req, at(3)) == "order of 7 exceeds the limit of 5 (max_order_quantity)"


def test_an_order_every_check_allows_reaches_the_broker() -> None:
    log: list[tuple[str, OrderRequest, AccountSession, int]] = []
    s = session(account("100000"), ORCL, checks=[Check(log, "a", None), Check(log, "b", None)])
    seen = listen(s)
    order = s.submit(market(BUY, "1"), at(0))
    assert order.status is OrderStatus.ACCEPTED
    assert type(seen[-1][1]) is OrderAccepted
    assert [name for name, *_ in log] == ["a", "b"]


def test_a_denied_order_is_stored_with_the_id_it_was_given() -> None:
    from smart_trader.core.ids import OrderId

    log: list[tuple[str, OrderRequest, AccountSession, int]] = []
    s = session(account("100000"), ORCL, checks=[Check(log, "no", "denied")])
    order = s.submit(market(BUY, "1"), at(0), OrderId("ORD-42"))
    assert order.order_id == "ORD-42"
    assert s.broker.orders[OrderId("ORD-42")] is order


def test_a_broker_rule_still_rejects_what_the_checks_allow() -> None:
    log: list[tuple[str, OrderRequest, AccountSession, int]] = []
    s = session(account("100000"), ORCL, checks=[Check(log, "ok", None)])
    order = s.submit(limit(BUY, "1", "10.001"), at(0))  # off the tick
    assert order.status is OrderStatus.REJECTED
    assert "tick size" in (order.reject_reason or "")


# -- client order ids ---------------------------------------------------------------------------------------------
def test_a_resubmitted_client_order_id_returns_the_same_order_and_creates_nothing() -> None:
    s = session(account("100000"), ORCL)
    seen = listen(s)
    req = limit(BUY, "1", "90.00", client_order_id="cl-1")
    first = s.submit(req, at(0))
    assert first.status is OrderStatus.ACCEPTED
    n_events, n_orders = len(seen), len(s.broker.orders)
    assert s.submit(req, at(1)) is first
    # even while halted, the known id gives back the accepted order rather than a new rejection
    s.set_state(TradingState.HALTED, "stop")
    assert s.submit(req, at(2)) is first
    assert first.status is OrderStatus.ACCEPTED
    assert (len(seen), len(s.broker.orders)) == (n_events, n_orders)


def test_a_denied_client_order_id_resubmitted_returns_the_rejected_order() -> None:
    log: list[tuple[str, OrderRequest, AccountSession, int]] = []
    check = Check(log, "no", "denied")
    s = session(account("100000"), ORCL, checks=[check])
    seen = listen(s)
    req = market(BUY, "1", client_order_id="cl-2")
    first = s.submit(req, at(0))
    assert first.status is OrderStatus.REJECTED
    check.reason = None  # would now pass
    assert s.submit(req, at(1)) is first
    assert first.status is OrderStatus.REJECTED
    assert len(seen) == 1
    assert len(s.broker.orders) == 1


# -- monitors -----------------------------------------------------------------------------------------------------
def test_monitors_get_every_order_event_in_order_after_the_account_applied_fills() -> None:
    one, two = RecordingMonitor(), RecordingMonitor()
    log: list[tuple[str, OrderRequest, AccountSession, int]] = []
    acct = account("100000")
    s = session(acct, ORCL, checks=[Check(log, "small", None)], monitors=[one, two])
    seen = listen(s)
    feed = Feed(s.broker)
    buy = s.submit(market(BUY, "3"), at(0))
    rest = s.submit(limit(BUY, "2", "50.00"), at(0))
    feed.bar(at(1), "100.00", "100.00", "100.00", "100.00")
    s.cancel(rest.order_id, at(2))
    s.checks[0].reason = "too big"  # type: ignore[attr-defined]
    denied = s.submit(market(BUY, "100"), at(3))
    s.set_state(TradingState.HALTED, "stop")
    halted = s.submit(market(BUY, "1"), at(4))
    expected = [(o.order_id, e) for o, e in seen]
    kinds = [type(e) for _, e in expected]
    assert kinds == [OrderAccepted, OrderAccepted, OrderFilled, OrderCanceled, OrderRejected, OrderRejected]
    for monitor in (one, two):
        assert [(o.order_id, e) for o, e, _ in monitor.events] == expected
    # the fill was applied to the account before the monitors saw it
    held_at_fill = [held for _, e, held in one.events if type(e) is OrderFilled]
    assert held_at_fill == [3]
    assert [o for o, _, _ in one.events if o in (buy, denied, halted)] == [buy, buy, denied, halted]


def test_a_fill_marks_the_session_stale_once_until_the_dispatcher_values_it() -> None:
    marks = Marks()
    acct = margin_account("100000", marks)
    monitor = RecordingMonitor()
    s = session(acct, ORCL, monitors=[monitor])
    stale: list[AccountSession] = []
    s.on_stale = stale.append
    s.submit(market(BUY, "2"), at(0))
    s.submit(market(BUY, "3"), at(0))
    marks.prices[ORCL.id] = D("100.00")
    Feed(s.broker).bar(at(1), "100.00", "100.00", "100.00", "100.00")  # two fills
    assert acct.quantity(ORCL.id) == 5
    assert stale == [s]  # reported once for both fills
    assert monitor.valuations == []  # the session does not value itself


def test_the_dispatcher_values_and_reindexes_a_session_after_its_fill() -> None:
    marks = Marks()
    acct = margin_account("100000", marks)
    monitor = RecordingMonitor(band=(D(99_000), None))
    s = session(acct, ORCL, monitors=[monitor])
    dispatcher = MarketDispatcher({ORCL.id: ORCL}.__getitem__, marks)
    dispatcher.watch(s)
    assert dispatcher.exposed_sessions(ORCL.id) == []  # flat: nothing to index
    s.submit(market(BUY, "10"), at(0))
    marks.prices[ORCL.id] = D("101.00")
    Feed(s.broker).trade(at(1), "100.00")
    assert dispatcher.stale == [s]
    dispatcher.flush_stale(at(1))
    # cash 100000 - 10 × 100.00, plus 10 × the 101.00 mark
    assert monitor.valuations == [(at(1), D(100_010))]
    assert dispatcher.exposed_sessions(ORCL.id) == [s]
    assert dispatcher.stale == []
    # the band's low, 99,000, is 1,010 below the equity: 101 per unit of price for 10 shares, a price of 0.00;
    # at 0.01 the equity is 100,010 - 10 × 100.99 = 99,000.10, inside the band: no valuation
    dispatcher.on_price(ORCL.id, at(2), D("0.01"))  # equity 99,000.10: inside the band
    assert len(monitor.valuations) == 1
    # a second fill reports again (the flag was reset by the flush)
    s.submit(market(SELL, "10"), at(3))
    Feed(s.broker).trade(at(4), "101.00")
    assert dispatcher.stale == [s]


def test_a_session_without_monitors_registers_no_listener() -> None:
    s = session(account("100000"), ORCL)
    assert s.broker.listeners == []
    stale: list[AccountSession] = []
    s.on_stale = stale.append
    s.submit(market(BUY, "1"), at(0))
    Feed(s.broker).bar(at(1), "100.00", "100.00", "100.00", "100.00")
    assert stale == []


def test_value_gives_the_equity_at_the_marks_to_every_monitor() -> None:
    one, two = RecordingMonitor(), RecordingMonitor()
    marks = Marks()
    acct = margin_account("1000", marks)
    give_position(acct, ORCL, "4", "100.00")  # cash 600
    marks.prices[ORCL.id] = D("110.00")
    s = session(acct, ORCL, monitors=[one, two])
    assert s.value(at(1)) == D(600) + 4 * D("110.00")
    assert s.value(at(2), {ORCL.id: D("95.50")}.get) == D(600) + 4 * D("95.50")
    unknown = InstrumentId("NOPE.X")
    assert s.value(at(3), lambda iid: None if iid == unknown else D("1.00")) == D(604)
    for m in (one, two):
        assert m.valuations == [(at(1), D(1040)), (at(2), D(982)), (at(3), D(604))]


def test_equity_band_is_the_narrowest_of_the_monitors() -> None:
    monitors = [
        RecordingMonitor(band=(D(90), D(130))),
        RecordingMonitor(band=(D(95), None)),
        RecordingMonitor(band=(None, D(120))),
        RecordingMonitor(),
    ]
    s = session(account("1"), ORCL, monitors=monitors)
    assert s.equity_band() == (D(95), D(120))
    assert session(account("1"), ORCL, monitors=[RecordingMonitor()]).equity_band() == (None, None)
