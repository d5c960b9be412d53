"""Paper broker: pre-trade limits (:class:`~smart_trader.execution.limits.OrderLimits`: open orders, submissions
per second) and a halted account — rejected with a reason a trader can read; cancels still work."""

from __future__ import annotations

import pytest

from smart_trader.core.clock import NS_PER_SECOND
from smart_trader.core.errors import InvalidInputError
from smart_trader.execution.enums import OrderStatus, OrderType
from smart_trader.execution.events import OrderRejected
from smart_trader.execution.limits import OrderLimits
from smart_trader.execution.orders import Order
from smart_trader.execution.paper_broker import PaperBroker
from tests.execution.builders import BUY, ORCL, SELL, Feed, account, at, equity, limit, market, request

S = OrderStatus
MSFT = equity("MSFT")


def paper(limits: OrderLimits | None = None, clock: list[int] | None = None) -> PaperBroker:
    """A broker for a fresh cash account trading ORCL and MSFT; ``clock`` (when given) is its rate clock: the
    broker reads ``clock[0]``."""
    rate_clock = None if clock is None else (lambda: clock[0])
    return PaperBroker(account("1000000"), {ORCL.id: ORCL, MSFT.id: MSFT}, limits=limits, rate_clock=rate_clock)


def reason(order: Order) -> str:
    event = order.events[-1]
    assert isinstance(event, OrderRejected), event
    return event.reason


def test_no_limits_by_default() -> None:
    broker = paper()
    orders = [broker.submit(limit(BUY, "1", "50.00"), at(0)) for _ in range(500)]
    assert all(o.status is S.ACCEPTED for o in orders)
    assert broker.limits == OrderLimits() and broker.halted is None


def test_an_order_beyond_the_open_orders_limit_is_rejected_saying_which_limit() -> None:
    broker = paper(OrderLimits(max_open_orders=3))
    first = [broker.submit(limit(BUY, "1", "50.00"), at(0)) for _ in range(2)]
    first.append(broker.submit(limit(BUY, "1", "50.00", instrument=MSFT), at(0)))  # every instrument counts
    assert all(o.status is S.ACCEPTED for o in first)

    refused = broker.submit(limit(BUY, "1", "50.00"), at(1))

    assert refused.status is S.REJECTED
    assert reason(refused) == "too many open orders: 3 open, the limit is 3 (risk limit max_open_orders)"
    assert len(broker.open_orders()) == 3


def test_closing_an_order_frees_its_place() -> None:
    broker = paper(OrderLimits(max_open_orders=2))
    resting = broker.submit(limit(BUY, "1", "50.00"), at(0))
    filled = broker.submit(market(BUY, "1"), at(0))
    assert broker.submit(limit(BUY, "1", "50.00"), at(0)).status is S.REJECTED

    Feed(broker).trade(at(1), "100.00")  # fills the market order
    assert filled.status is S.FILLED
    assert broker.submit(limit(BUY, "1", "50.00"), at(2)).status is S.ACCEPTED

    broker.cancel(resting.order_id, at(3))
    assert broker.submit(limit(BUY, "1", "50.00"), at(4)).status is S.ACCEPTED
    assert broker.submit(limit(BUY, "1", "50.00"), at(4)).status is S.REJECTED


def test_submissions_beyond_the_rate_are_rejected_until_a_second_has_passed_on_the_rate_clock() -> None:
    clock = [10 * NS_PER_SECOND]
    broker = paper(OrderLimits(max_submissions_per_second=3), clock)
    start = clock[0]
    for k in range(3):
        clock[0] = start + k * 100_000_000
        assert broker.submit(limit(BUY, "1", "50.00"), at(0)).status is S.ACCEPTED

    clock[0] = start + 999_999_999  # the first submission is still within the last second
    refused = broker.submit(limit(BUY, "1", "50.00"), at(0))
    assert reason(refused) == (
        "too many orders: 3 submitted in the last second, the limit is 3 per second "
        "(risk limit max_submissions_per_second)"
    )

    clock[0] = start + NS_PER_SECOND  # a second after the first: one place free again
    assert broker.submit(limit(BUY, "1", "50.00"), at(0)).status is S.ACCEPTED
    assert broker.submit(limit(BUY, "1", "50.00"), at(0)).status is S.REJECTED


def test_submissions_rejected_by_a_limit_do_not_count_toward_the_rate() -> None:
    clock = [0]
    broker = paper(OrderLimits(max_submissions_per_second=2), clock)
    broker.submit(limit(BUY, "1", "50.00"), at(0))
    broker.submit(limit(BUY, "1", "50.00"), at(0))
    for k in range(1, 100):  # a client hammering the limit for a whole second
        clock[0] = k * 10_000_000
        assert broker.submit(limit(BUY, "1", "50.00"), at(0)).status is S.REJECTED

    clock[0] = NS_PER_SECOND  # the two counted ones are a second old: the hammering did not extend the wait
    assert broker.submit(limit(BUY, "1", "50.00"), at(0)).status is S.ACCEPTED


def test_submissions_rejected_by_the_rules_count_toward_the_rate() -> None:
    broker = paper(OrderLimits(max_submissions_per_second=2), [0])
    assert broker.submit(limit(BUY, "1", "50.001"), at(0)).status is S.REJECTED  # off the tick size
    assert broker.submit(limit(SELL, "1", "150.00"), at(0)).status is S.REJECTED  # short on a cash account
    refused = broker.submit(limit(BUY, "1", "50.00"), at(0))
    assert reason(refused).startswith("too many orders: 2 submitted in the last second")


def test_a_malformed_request_counts_toward_the_rate_and_still_raises() -> None:
    broker = paper(OrderLimits(max_submissions_per_second=1), [0])
    with pytest.raises(InvalidInputError):
        broker.submit(request(BUY, OrderType.LIMIT, "1"), at(0))  # a limit order without a limit price
    assert broker.submit(limit(BUY, "1", "50.00"), at(0)).status is S.REJECTED
    with pytest.raises(InvalidInputError):  # refused by the rate, still said to be malformed
        broker.submit(request(BUY, OrderType.LIMIT, "1"), at(0))


def test_the_rate_is_measured_on_market_time_without_a_rate_clock() -> None:
    broker = paper(OrderLimits(max_submissions_per_second=1))
    assert broker.submit(limit(BUY, "1", "50.00"), at(0)).status is S.ACCEPTED
    assert broker.submit(limit(BUY, "1", "50.00"), at(0) + NS_PER_SECOND - 1).status is S.REJECTED
    assert broker.submit(limit(BUY, "1", "50.00"), at(0) + NS_PER_SECOND).status is S.ACCEPTED


def test_a_repeated_client_order_id_is_answered_without_counting() -> None:
    broker = paper(OrderLimits(max_open_orders=1, max_submissions_per_second=1))
    first = broker.submit(limit(BUY, "1", "50.00", client_order_id="c-1"), at(0))
    assert broker.submit(limit(BUY, "1", "50.00", client_order_id="c-1"), at(0)) is first
    broker.halted = "margin call"
    assert broker.submit(limit(BUY, "1", "50.00", client_order_id="c-1"), at(0)) is first
    assert first.status is S.ACCEPTED


def test_limits_can_be_replaced_at_run_time() -> None:
    broker = paper()
    for _ in range(3):
        broker.submit(limit(BUY, "1", "50.00"), at(0))
    broker.limits = OrderLimits(max_open_orders=3)
    assert reason(broker.submit(limit(BUY, "1", "50.00"), at(1))).startswith("too many open orders: 3 open")
    broker.limits = OrderLimits(max_open_orders=10)
    assert broker.submit(limit(BUY, "1", "50.00"), at(2)).status is S.ACCEPTED
    broker.limits = OrderLimits(max_open_orders=0)  # no new order at all
    assert reason(broker.submit(limit(BUY, "1", "50.00"), at(3))).startswith("too many open orders: 4 open")
    broker.limits = OrderLimits()
    assert broker.submit(limit(BUY, "1", "50.00"), at(4)).status is S.ACCEPTED


def test_a_halted_account_rejects_new_orders_and_still_cancels_and_fills() -> None:
    broker = paper(OrderLimits(max_open_orders=100))
    working = broker.submit(limit(BUY, "1", "50.00"), at(0))
    buy = broker.submit(market(BUY, "1"), at(0))
    broker.halted = "daily loss limit reached"

    refused = broker.submit(limit(BUY, "1", "50.001"), at(1))  # breaks the tick size too: the halt is said first
    assert reason(refused) == "account halted: daily loss limit reached"
    assert reason(broker.submit(market(SELL, "1"), at(1))) == "account halted: daily loss limit reached"

    Feed(broker).trade(at(2), "100.00")  # orders already working still fill
    assert buy.status is S.FILLED
    assert broker.cancel(working.order_id, at(3)).status is S.CANCELED

    broker.limits = OrderLimits()  # no limits left: still halted
    assert reason(broker.submit(limit(BUY, "1", "50.00"), at(4))) == "account halted: daily loss limit reached"

    broker.halted = None
    assert broker.submit(limit(BUY, "1", "50.00"), at(4)).status is S.ACCEPTED


def test_a_malformed_request_still_raises_on_a_halted_account() -> None:
    broker = paper()
    broker.halted = "review"
    with pytest.raises(InvalidInputError):
        broker.submit(request(BUY, OrderType.LIMIT, "1"), at(0))  # a limit order without a limit price


@pytest.mark.parametrize("value", [-1, 1.5, True, "10"])
def test_order_limits_must_be_whole_numbers(value: object) -> None:
    with pytest.raises(InvalidInputError, match="max_open_orders must be a whole number >= 0"):
        OrderLimits(max_open_orders=value)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="max_submissions_per_second"):
        OrderLimits(max_submissions_per_second=value)  # type: ignore[arg-type]
