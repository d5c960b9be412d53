"""The order state machine (only events change an order, only table transitions apply) and request validation."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from smart_trader.core.errors import InvalidInputError, InvalidStateTransitionError, RejectedByRulesError
from smart_trader.core.ids import OrderId
from smart_trader.execution.enums import OrderStatus, OrderType, TimeInForce
from smart_trader.execution.events import OrderEvent
from smart_trader.execution.orders import TRANSITIONS, Order, OrderRequest
from tests.execution.builders import (
    BTC,
    BUY,
    ORCL,
    ORDER_ID,
    SELL,
    TS_EVENT,
    TS_INIT,
    D,
    accepted,
    at,
    canceled,
    equity,
    expired,
    filled,
    limit,
    market,
    new_order,
    rejected,
    request,
    stop,
    stop_limit,
    triggered,
)

S = OrderStatus

# The table as docs/orders.py states it; the code's table must be exactly this.
DOCUMENTED_TRANSITIONS = {
    (S.NEW, S.ACCEPTED),
    (S.NEW, S.REJECTED),
    (S.NEW, S.CANCELED),
    (S.ACCEPTED, S.PARTIALLY_FILLED),
    (S.ACCEPTED, S.FILLED),
    (S.ACCEPTED, S.CANCELED),
    (S.ACCEPTED, S.EXPIRED),
    (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
    (S.PARTIALLY_FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, S.CANCELED),
    (S.PARTIALLY_FILLED, S.EXPIRED),
}

# How to bring a fresh order of 10 to each status.
_PATH_TO: dict[OrderStatus, list[OrderEvent]] = {
    S.NEW: [],
    S.ACCEPTED: [accepted()],
    S.PARTIALLY_FILLED: [accepted(), filled("4")],
    S.FILLED: [accepted(), filled("10")],
    S.CANCELED: [accepted(), canceled()],
    S.REJECTED: [rejected()],
    S.EXPIRED: [accepted(), expired()],
}


def order_in(status: OrderStatus) -> Order:
    order = new_order("10")
    for event in _PATH_TO[status]:
        order.apply(event)
    assert order.status is status
    return order


def event_moving(order: Order, to: OrderStatus) -> OrderEvent:
    """The event that moves ``order`` to ``to`` (another partial fill for partially_filled → partially_filled)."""
    if to is order.status:
        return filled("1")
    leaves = order.leaves_qty
    assert leaves is not None
    return {
        S.ACCEPTED: accepted,
        S.REJECTED: rejected,
        S.CANCELED: canceled,
        S.EXPIRED: expired,
        S.PARTIALLY_FILLED: lambda: filled("4"),
        S.FILLED: lambda: filled(str(leaves)),
    }[to]()


def snapshot(order: Order) -> tuple[object, ...]:
    return (
        order.status,
        order.quantity,
        order.filled_qty,
        order.filled_cost,
        order.triggered,
        order.ts_last,
        order.reject_reason,
        list(order.events),
    )


# -- the transition table ------------------------------------------------------------------------------------
def test_transition_table_is_the_documented_one() -> None:
    assert set(TRANSITIONS) == DOCUMENTED_TRANSITIONS


@pytest.mark.parametrize(("from_", "to"), sorted(DOCUMENTED_TRANSITIONS), ids=lambda s: str(s))
def test_every_allowed_transition_applies(from_: OrderStatus, to: OrderStatus) -> None:
    order = order_in(from_)
    event = event_moving(order, to)

    order.apply(event)

    assert order.status is to
    assert order.events[-1] is event
    assert order.ts_last == event.ts_event


_EVENT_KINDS: dict[str, Callable[[], OrderEvent]] = {
    "accepted": accepted,
    "rejected": rejected,
    "canceled": canceled,
    "expired": expired,
    "triggered": triggered,
    "fill": lambda: filled("1"),
}
_FORBIDDEN = [
    *[(status, kind) for status in (S.NEW,) for kind in ("expired", "triggered", "fill")],
    (S.ACCEPTED, "rejected"),
    (S.PARTIALLY_FILLED, "rejected"),
    *itertools.product((S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED), _EVENT_KINDS),
]


@pytest.mark.parametrize(("status", "kind"), _FORBIDDEN, ids=lambda v: str(v))
def test_forbidden_transition_raises_and_leaves_the_order_unchanged(status: OrderStatus, kind: str) -> None:
    order = order_in(status)
    before = snapshot(order)

    with pytest.raises(InvalidStateTransitionError):
        order.apply(_EVENT_KINDS[kind]())

    assert snapshot(order) == before


def test_fill_beyond_the_order_quantity_raises_and_leaves_the_order_unchanged() -> None:
    order = order_in(S.PARTIALLY_FILLED)  # 4 of 10 filled
    before = snapshot(order)

    with pytest.raises(InvalidStateTransitionError, match="exceeds the 6 left"):
        order.apply(filled("7"))

    assert snapshot(order) == before


def test_event_of_another_order_raises() -> None:
    order = order_in(S.ACCEPTED)
    before = snapshot(order)

    with pytest.raises(InvalidStateTransitionError):
        order.apply(canceled(order_id=OrderId("O-2")))

    assert snapshot(order) == before


def test_partial_fills_add_up_to_filled_with_a_volume_weighted_average_price() -> None:
    order = order_in(S.ACCEPTED)

    order.apply(filled("4", "100.00"))
    order.apply(filled("6", "99.50"))

    assert order.status is S.FILLED
    assert order.filled_qty == D(10)
    assert order.leaves_qty == D(0)
    assert order.avg_px == D("99.70")  # (4 × 100 + 6 × 99.5) / 10
    assert not order.is_open


def test_trigger_marks_a_stop_limit_triggered_once_and_keeps_it_working() -> None:
    order = Order(ORDER_ID, stop_limit(BUY, "10", "101.00", "102.00"), ts_init=at(0))
    order.apply(accepted())

    order.apply(triggered())

    assert order.triggered
    assert order.status is S.ACCEPTED
    assert order.is_open
    with pytest.raises(InvalidStateTransitionError, match="once"):
        order.apply(triggered())


def test_a_trigger_does_not_apply_to_a_limit_order() -> None:
    order = order_in(S.ACCEPTED)  # a limit order
    with pytest.raises(InvalidStateTransitionError, match="stop-limit"):
        order.apply(triggered())
    assert not order.triggered


def test_a_second_acceptance_is_refused() -> None:
    order = order_in(S.ACCEPTED)
    with pytest.raises(InvalidStateTransitionError):
        order.apply(accepted())


def test_events_cannot_go_back_in_time() -> None:
    order = order_in(S.ACCEPTED)
    with pytest.raises(InvalidStateTransitionError, match="before its last event"):
        order.apply(canceled(ts=order.ts_last - 1))
    assert order.status is S.ACCEPTED


def test_rejection_keeps_its_reason_on_the_order() -> None:
    order = new_order()

    order.apply(rejected(reason="sell of 10 exceeds the 0 held"))

    assert order.status is S.REJECTED
    assert order.reject_reason == "sell of 10 exceeds the 0 held"


def test_events_carry_when_it_happened_and_when_we_learned_of_it_in_ns() -> None:
    order = new_order()
    event = accepted()

    order.apply(event)

    assert (event.ts_event, event.ts_init) == (TS_EVENT, TS_INIT)
    assert event.ts_init >= event.ts_event
    assert event.ts_event > 1_700_000_000 * 10**9  # ns since the epoch (2024), not seconds or ms
    assert order.ts_last == TS_EVENT


def test_notional_order_quantity_is_fixed_once() -> None:
    order = Order(OrderId("O-1"), market(BUY, notional="1000"), ts_init=0)
    assert order.quantity is None
    assert order.leaves_qty is None

    order.fix_quantity(D(9))

    assert order.leaves_qty == D(9)
    with pytest.raises(InvalidStateTransitionError):
        order.fix_quantity(D(8))
    assert order.quantity == D(9)


# -- OrderRequest.validate: malformed requests ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("req", "message"),
    [
        (request(BUY, OrderType.MARKET, None), "exactly one of quantity or notional"),
        (request(BUY, OrderType.MARKET, "10", notional="1000"), "exactly one of quantity or notional"),
        (request(BUY, OrderType.LIMIT, None, notional="1000", limit_price="100.00"), "only for market orders"),
        (request(BUY, OrderType.STOP, None, notional="1000", stop_price="100.00"), "only for market orders"),
        (request(BUY, OrderType.MARKET, None, notional="0"), "notional must be positive"),
        (request(BUY, OrderType.MARKET, None, notional="-5"), "notional must be positive"),
        (request(BUY, OrderType.LIMIT, "10"), "limit order needs limit_price"),
        (request(BUY, OrderType.STOP_LIMIT, "10", stop_price="101.00"), "stop_limit order needs limit_price"),
        (request(BUY, OrderType.STOP, "10"), "stop order needs stop_price"),
        (request(BUY, OrderType.STOP_LIMIT, "10", limit_price="101.00"), "stop_limit order needs stop_price"),
        (request(BUY, OrderType.MARKET, "10", limit_price="100.00"), "market order takes no limit_price"),
        (request(BUY, OrderType.MARKET, "10", stop_price="100.00"), "market order takes no stop_price"),
        (request(BUY, OrderType.STOP, "10", limit_price="99.00", stop_price="100.00"), "takes no limit_price"),
        (request(BUY, OrderType.LIMIT, "10", limit_price="99.00", stop_price="100.00"), "takes no stop_price"),
        (market(BUY, "1", instrument=BTC), "instrument is ORCL.NASDAQ"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_malformed_request_is_invalid_input(req: OrderRequest, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        req.validate(ORCL)

    assert not isinstance(info.value, RejectedByRulesError)


# -- OrderRequest.validate: the instrument's rules -----------------------------------------------------------
@pytest.mark.parametrize(
    ("req", "fragments"),
    [
        (limit(BUY, "10", "100.005"), ("limit_price 100.005", "tick size 0.01")),
        (stop(SELL, "10", "99.999"), ("stop_price 99.999", "tick size 0.01")),
        (stop_limit(BUY, "10", "101.00", "101.015"), ("limit_price 101.015", "tick size 0.01")),
        (limit(BUY, "0.5", "100.00"), ("quantity 0.5", "under the lot size 1")),
        (market(BUY, "0"), ("quantity 0", "under the lot size 1")),
        (limit(BUY, "1.5", "100.00"), ("quantity 1.5", "not a multiple of the lot size 1")),
        (market(SELL, "10.25"), ("quantity 10.25", "not a multiple of the lot size 1")),
    ],
    ids=lambda v: v[0] if isinstance(v, tuple) else "",
)
def test_request_breaking_an_instrument_rule_is_rejected_naming_the_value_and_the_rule(
    req: OrderRequest, fragments: tuple[str, ...]
) -> None:
    with pytest.raises(RejectedByRulesError) as info:
        req.validate(ORCL)

    for fragment in fragments:
        assert fragment in str(info.value)


def test_limit_order_under_the_minimum_notional_is_rejected() -> None:
    req = limit(BUY, "0.00010", "50000.00", instrument=BTC)  # 5 USDT < 10 USDT

    with pytest.raises(RejectedByRulesError) as info:
        req.validate(BTC)

    assert "order value 5.0" in str(info.value)
    assert "minimum notional 10" in str(info.value)


def test_stop_order_notional_is_checked_at_its_stop_price() -> None:
    with pytest.raises(RejectedByRulesError, match="minimum notional 10"):
        stop(SELL, "0.00019", "50000.00", instrument=BTC).validate(BTC)  # 9.5 USDT

    stop(SELL, "0.00020", "50000.00", instrument=BTC).validate(BTC)  # exactly 10 USDT is enough


def test_notional_market_order_under_the_minimum_notional_is_rejected() -> None:
    with pytest.raises(RejectedByRulesError, match="minimum notional"):
        market(BUY, notional="5", instrument=BTC).validate(BTC)


@pytest.mark.parametrize(
    "req",
    [
        market(BUY, "10"),
        market(SELL, notional="2500.00"),
        limit(SELL, "3", "187.45", tif=TimeInForce.DAY),
        stop(SELL, "100", "180.00"),
        stop_limit(BUY, "1", "190.00", "190.50", tif=TimeInForce.IOC),
    ],
    ids=["market", "notional", "limit", "stop", "stop_limit"],
)
def test_well_formed_request_on_the_grid_validates(req: OrderRequest) -> None:
    req.validate(ORCL)


def test_minimum_notional_is_met_exactly_at_the_threshold() -> None:
    shares = equity("AAPL", min_notional="100")

    limit(BUY, "1", "100.00", instrument=shares).validate(shares)

    with pytest.raises(RejectedByRulesError, match=r"order value 99\.99 USD is under the minimum notional 100"):
        limit(BUY, "1", "99.99", instrument=shares).validate(shares)


def test_binary_float_price_is_refused_not_rounded() -> None:
    req = OrderRequest(ORCL.id, BUY, OrderType.LIMIT, D(10), limit_price=100.1)  # type: ignore[arg-type]

    with pytest.raises((TypeError, InvalidInputError)):
        req.validate(ORCL)
