"""Pre-trade checks (``risk/checks.py``) in a real account session: each lets an order within its limit through to the
paper broker and rejects one beyond it with a sentence naming the value, the limit and the limit's name."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smart_trader.core.clock import NS_PER_SECOND
from smart_trader.core.errors import InvalidInputError
from smart_trader.core.ids import InstrumentId
from smart_trader.execution.enums import OrderStatus, OrderType
from smart_trader.execution.limits import OrderLimits
from smart_trader.execution.paper_broker import PaperBroker
from smart_trader.risk.checks import (
    AccountRiskLimits,
    InstrumentHalted,
    MaxOrderNotional,
    MaxOrderQuantity,
    MaxPosition,
    OpenOrdersLimit,
    OrderRateLimit,
    PriceCollar,
    RiskChecks,
    checks_for,
)
from smart_trader.risk.limits import halt_reason, risk_limits
from smart_trader.risk.store import HALTED, StoredLimits
from tests.execution.builders import BUY, ORCL, SELL, Feed, account, at, give_position, limit, market, request, stop
from tests.risk.kit import ES, reason, reasons, session

D = Decimal
S = OrderStatus


# -- order size and value ----------------------------------------------------------------------------------------------
def test_max_order_quantity_passes_the_limit_and_rejects_beyond_it() -> None:
    s = session(MaxOrderQuantity(D(10)))

    within = s.submit(limit(BUY, "10", "50.00"), at(0))
    beyond = s.submit(limit(BUY, "12", "50.00"), at(0))

    assert within.status is S.ACCEPTED
    assert reason(beyond) == "order quantity 12 exceeds the limit 10 (risk limit max_order_quantity)"


def test_max_order_quantity_leaves_notional_orders_to_the_notional_check() -> None:
    s = session(MaxOrderQuantity(D(1)), last={ORCL.id: D("100.00")})
    assert s.submit(market(BUY, notional="5000"), at(0)).status is S.ACCEPTED


def test_max_order_notional_values_a_limit_order_at_its_limit_price_times_the_multiplier() -> None:
    s = session(MaxOrderNotional(D(100_000)))

    within = s.submit(limit(BUY, "1", "2000.00", instrument=ES), at(0))  # 1 × 2000 × 50 = 100,000
    beyond = s.submit(limit(BUY, "2", "1000.25", instrument=ES), at(0))  # 2 × 1000.25 × 50 = 100,025

    assert within.status is S.ACCEPTED
    assert reason(beyond) == (
        "order notional 100025 (2 × 1000.25 × multiplier 50) exceeds the limit 100000 (risk limit max_order_notional)"
    )


def test_max_order_notional_values_a_stop_at_its_stop_and_a_market_order_at_the_last_price() -> None:
    last = {ORCL.id: D("120.00")}
    s = session(MaxOrderNotional(D(1000)), last=last)

    assert reason(s.submit(stop(BUY, "10", "101.00"), at(0))) == (
        "order notional 1010 (10 × 101) exceeds the limit 1000 (risk limit max_order_notional)"
    )
    assert s.submit(stop(BUY, "9", "101.00"), at(0)).status is S.ACCEPTED
    assert reason(s.submit(market(BUY, "9"), at(0))) == (
        "order notional 1080 (9 × 120) exceeds the limit 1000 (risk limit max_order_notional)"
    )
    assert s.submit(market(BUY, "8"), at(0)).status is S.ACCEPTED


def test_max_order_notional_uses_a_notional_orders_own_notional() -> None:
    s = session(MaxOrderNotional(D(1000)))
    assert s.submit(market(BUY, notional="1000"), at(0)).status is S.ACCEPTED
    assert reason(s.submit(market(BUY, notional="1000.01"), at(0))) == (
        "order notional 1000.01 exceeds the limit 1000 (risk limit max_order_notional)"
    )


def test_max_order_notional_passes_a_market_order_when_no_price_is_known() -> None:
    s = session(MaxOrderNotional(D(1)))
    assert s.submit(market(BUY, "1000"), at(0)).status is S.ACCEPTED


# -- position ----------------------------------------------------------------------------------------------------------
def test_max_position_counts_the_position_held_and_the_order() -> None:
    s = session(MaxPosition(D(100)))
    give_position(s.account, ORCL, "60", "50.00")

    within = s.submit(limit(BUY, "40", "50.00"), at(0))
    s.cancel(within.order_id, at(0))
    beyond = s.submit(limit(BUY, "41", "50.00"), at(0))

    assert within.status is S.CANCELED
    assert reason(beyond) == (
        f"position in {ORCL.id} would reach 101 (60 held, this order buy 41), beyond the limit 100 "
        "(risk limit max_position)"
    )


def test_max_position_counts_working_orders_of_the_same_side() -> None:
    s = session(MaxPosition(D(100)))
    assert s.submit(limit(BUY, "70", "50.00"), at(0)).status is S.ACCEPTED

    beyond = s.submit(limit(BUY, "31", "49.00"), at(0))

    assert reason(beyond) == (
        f"position in {ORCL.id} would reach 101 (0 held and 70 in working buy orders, this order buy 31), beyond "
        "the limit 100 (risk limit max_position)"
    )
    assert s.submit(limit(BUY, "30", "49.00"), at(0)).status is S.ACCEPTED


def test_max_position_never_denies_an_order_that_reduces_a_position_beyond_a_lowered_limit() -> None:
    s = session(MaxPosition(D(10)))
    give_position(s.account, ORCL, "50", "50.00")

    reducing = s.submit(limit(SELL, "5", "60.00"), at(0))  # 50 → 45: still beyond 10, but closer to flat
    adding = s.submit(limit(BUY, "1", "50.00"), at(0))

    assert reducing.status is S.ACCEPTED
    assert reason(adding).startswith(f"position in {ORCL.id} would reach 51 (50 held, this order buy 1)")


def test_max_position_per_instrument_overrides_the_general_limit() -> None:
    s = session(MaxPosition(D(1000), {ES.id: D(2)}))
    assert s.submit(limit(BUY, "500", "50.00"), at(0)).status is S.ACCEPTED
    assert s.submit(limit(BUY, "2", "4000.00", instrument=ES), at(0)).status is S.ACCEPTED
    assert reason(s.submit(limit(BUY, "1", "4000.00", instrument=ES), at(0))).endswith(
        "beyond the limit 2 (risk limit max_position)"
    )


def test_max_position_converts_a_notional_order_at_the_last_price() -> None:
    s = session(MaxPosition(D(10)), last={ORCL.id: D("100.00")})
    assert s.submit(market(BUY, notional="1000"), at(0)).status is S.ACCEPTED  # 10 shares
    assert reason(s.submit(market(BUY, notional="100"), at(0))).startswith(
        f"position in {ORCL.id} would reach 11 (0 held and 10 in working buy orders, this order buy 1)"
    )


# -- prices and instruments --------------------------------------------------------------------------------------------
def test_price_collar_rejects_a_limit_further_than_its_bps_from_the_last_price() -> None:
    s = session(PriceCollar(D(100)), last={ORCL.id: D("100.00")})

    at_edge = s.submit(limit(BUY, "1", "101.00"), at(0))  # exactly 100 bps: allowed
    beyond = s.submit(limit(SELL, "1", "98.99"), at(0))  # 101 bps below
    fat_finger = s.submit(stop(BUY, "1", "1000.00"), at(0))

    assert at_edge.status is S.ACCEPTED
    assert reason(beyond) == (
        "limit price 98.99 is 101 bps from the last price 100, beyond the collar of 100 bps "
        "(risk limit price_collar_bps)"
    )
    assert reason(fat_finger).startswith("stop price 1000 is 90000 bps from the last price 100")


def test_price_collar_passes_orders_when_no_last_price_is_known_and_market_orders_always() -> None:
    last: dict[InstrumentId, Decimal] = {}
    s = session(PriceCollar(D(10)), last=last)
    assert s.submit(limit(BUY, "1", "1.00"), at(0)).status is S.ACCEPTED
    last[ORCL.id] = D("100.00")
    assert s.submit(market(BUY, "1"), at(0)).status is S.ACCEPTED


def test_a_halted_instrument_rejects_new_orders_and_resumes_when_removed_from_the_set() -> None:
    halted = {ORCL.id}
    s = session(InstrumentHalted(halted))

    refused = s.submit(limit(BUY, "1", "50.00"), at(0))
    other = s.submit(limit(BUY, "1", "4000.00", instrument=ES), at(0))
    halted.discard(ORCL.id)
    resumed = s.submit(limit(BUY, "1", "50.00"), at(1))

    assert reason(refused) == f"instrument {ORCL.id} is halted (risk limit halted_instruments)"
    assert other.status is S.ACCEPTED and resumed.status is S.ACCEPTED


# -- open orders and rate: the paper broker's OrderLimits as checks ----------------------------------------------------
def test_open_orders_limit_rejects_with_the_paper_brokers_message() -> None:
    s = session(OpenOrdersLimit(3))
    first = [s.submit(limit(BUY, "1", "50.00"), at(0)) for _ in range(2)]
    first.append(s.submit(limit(BUY, "1", "4000.00", instrument=ES), at(0)))  # every instrument counts
    assert all(o.status is S.ACCEPTED for o in first)

    refused = s.submit(limit(BUY, "1", "50.00"), at(1))

    assert reason(refused) == "too many open orders: 3 open, the limit is 3 (risk limit max_open_orders)"
    s.cancel(first[0].order_id, at(2))
    assert s.submit(limit(BUY, "1", "50.00"), at(2)).status is S.ACCEPTED


def test_open_orders_limit_of_zero_rejects_every_order() -> None:
    assert reason(session(OpenOrdersLimit(0)).submit(limit(BUY, "1", "50.00"), at(0))).startswith(
        "too many open orders: 0 open, the limit is 0"
    )


def test_rate_limit_rejects_beyond_the_rate_until_a_second_has_passed_on_its_clock() -> None:
    clock = [10 * NS_PER_SECOND]
    s = session(OrderRateLimit(3, lambda: clock[0]))
    start = clock[0]
    for k in range(3):
        clock[0] = start + k * 100_000_000
        assert s.submit(limit(BUY, "1", "50.00"), at(0)).status is S.ACCEPTED

    clock[0] = start + 999_999_999
    refused = s.submit(limit(BUY, "1", "50.00"), at(0))
    clock[0] = start + NS_PER_SECOND
    again = s.submit(limit(BUY, "1", "50.00"), at(0))

    assert reason(refused) == (
        "too many orders: 3 submitted in the last second, the limit is 3 per second "
        "(risk limit max_submissions_per_second)"
    )
    assert again.status is S.ACCEPTED
    assert s.submit(limit(BUY, "1", "50.00"), at(0)).status is S.REJECTED


def test_rate_limit_is_measured_on_the_orders_time_without_a_clock() -> None:
    s = session(OrderRateLimit(1))
    assert s.submit(limit(BUY, "1", "50.00"), at(0)).status is S.ACCEPTED
    assert s.submit(limit(BUY, "1", "50.00"), at(0) + NS_PER_SECOND - 1).status is S.REJECTED
    assert s.submit(limit(BUY, "1", "50.00"), at(0) + NS_PER_SECOND).status is S.ACCEPTED


def test_rate_limit_does_not_count_its_own_denials_nor_those_of_earlier_checks() -> None:
    clock = [0]
    s = session(MaxOrderQuantity(D(5)), OrderRateLimit(2, lambda: clock[0]))
    s.submit(limit(BUY, "1", "50.00"), at(0))
    s.submit(limit(BUY, "1", "50.00"), at(0))
    for k in range(1, 100):  # a client hammering the rate, and oversized orders, for a whole second
        clock[0] = k * 10_000_000
        assert s.submit(limit(BUY, "1" if k % 2 else "50", "50.00"), at(0)).status is S.REJECTED

    clock[0] = NS_PER_SECOND
    assert s.submit(limit(BUY, "1", "50.00"), at(0)).status is S.ACCEPTED


def test_rate_limit_counts_orders_the_broker_then_rejects_and_malformed_ones() -> None:
    s = session(OrderRateLimit(3), cash="10")
    assert s.submit(limit(BUY, "1", "50.001"), at(0)).status is S.REJECTED  # off the tick size
    assert s.submit(limit(BUY, "1", "50.00"), at(0)).status is S.REJECTED  # beyond the cash
    with pytest.raises(InvalidInputError):
        s.submit(request(BUY, OrderType.LIMIT, "1"), at(0))  # a limit without a limit price
    assert reason(s.submit(limit(BUY, "1", "5.00"), at(0))).startswith("too many orders: 3 submitted")


def test_the_checks_give_the_same_answers_as_the_paper_brokers_limits() -> None:
    """The same orders at the same times: the broker's OrderLimits and the checks reject the same orders with the same
    reasons (the wiring moves from the broker to the session without a visible change)."""
    orders = [
        (limit(BUY, "1", "50.00"), 0),
        (limit(BUY, "1", "50.001"), 100_000_000),  # rejected by the tick size: counts toward the rate
        (market(BUY, "1"), 200_000_000),
        (limit(BUY, "1", "50.00"), 300_000_000),  # over the rate
        (limit(BUY, "1", "50.00"), 1_000_000_000),
        (limit(BUY, "1", "50.00"), 1_100_000_000),
        (limit(BUY, "1", "50.00"), 2_500_000_000),  # over the open orders
    ]
    limits = AccountRiskLimits(max_open_orders=4, max_orders_per_second=3)
    s = session(*checks_for(limits))
    broker = PaperBroker(account("10000000"), {ORCL.id: ORCL, ES.id: ES}, limits=OrderLimits(4, 3))
    via_checks = [s.submit(r, t) for r, t in orders]
    via_broker = [broker.submit(r, t) for r, t in orders]
    Feed(s.broker).trade(3_000_000_000, "50.00")
    Feed(broker).trade(3_000_000_000, "50.00")

    assert reasons(via_checks) == reasons(via_broker)
    assert [o.status for o in via_checks] == [o.status for o in via_broker]
    assert sum(r is not None for r in reasons(via_checks)) == 3


# -- one account's limits ----------------------------------------------------------------------------------------------
def test_checks_for_builds_the_limits_set_in_order_with_the_rate_last() -> None:
    shared: set[InstrumentId] = set()
    limits = AccountRiskLimits(
        max_order_quantity=D(10),
        max_order_notional=D(1000),
        max_position=D(20),
        max_position_by_instrument={ES.id: D(1)},
        price_collar_bps=D(50),
        halted_instruments=frozenset({ES.id}),
        max_open_orders=5,
        max_orders_per_second=2,
    )
    checks = checks_for(limits, halted=shared)
    kinds = [type(c).__name__ for c in checks]
    assert kinds == [
        "InstrumentHalted",
        "InstrumentHalted",
        "MaxOrderQuantity",
        "MaxOrderNotional",
        "MaxPosition",
        "PriceCollar",
        "OpenOrdersLimit",
        "OrderRateLimit",
    ]
    s = session(*checks)
    assert reason(s.submit(limit(BUY, "1", "4000.00", instrument=ES), at(0))).startswith(f"instrument {ES.id}")
    shared.add(ORCL.id)  # a platform-wide halt reaches the account's check
    assert reason(s.submit(limit(BUY, "1", "50.00"), at(0))).startswith(f"instrument {ORCL.id} is halted")


def test_no_limits_no_checks() -> None:
    assert checks_for(AccountRiskLimits()) == ()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_order_quantity": D(0)},
        {"max_order_notional": D(-1)},
        {"price_collar_bps": D("NaN")},
        {"max_position_by_instrument": {ORCL.id: D(0)}},
        {"max_open_orders": -1},
        {"max_orders_per_second": True},
        {"max_orders_per_second": 1.5},
    ],
)
def test_limits_of_the_wrong_kind_or_sign_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        AccountRiskLimits(**kwargs)


# -- one account's limits as one swappable check (the live sessions') --------------------------------------------------
def test_risk_checks_run_the_limits_checks_and_take_new_limits_in_place() -> None:
    risk = RiskChecks(AccountRiskLimits(max_order_quantity=D(10)))
    s = session(risk)
    assert reason(s.submit(limit(BUY, "12", "50.00"), at(0))).endswith("(risk limit max_order_quantity)")

    risk.limits = AccountRiskLimits(max_order_notional=D(100))  # the session and its check object stay

    assert s.checks == (risk,) and [type(c).__name__ for c in risk.checks] == ["MaxOrderNotional"]
    assert s.submit(limit(BUY, "1", "50.00"), at(1)).status is S.ACCEPTED
    assert reason(s.submit(limit(BUY, "12", "50.00"), at(1))).endswith("(risk limit max_order_notional)")
    risk.limits = AccountRiskLimits()
    assert risk.checks == () and s.submit(limit(BUY, "12", "50.00"), at(2)).status is S.ACCEPTED


def test_risk_checks_keep_the_last_seconds_submissions_across_a_change_of_limits() -> None:
    clock = [0]
    risk = RiskChecks(AccountRiskLimits(max_orders_per_second=3), rate_clock=lambda: clock[0])
    s = session(risk)
    for _ in range(3):
        assert s.submit(limit(BUY, "1", "50.00"), at(0)).status is S.ACCEPTED

    risk.limits = AccountRiskLimits(max_orders_per_second=4, max_open_orders=100)  # raised: one more this second

    assert s.submit(limit(BUY, "1", "50.00"), at(0)).status is S.ACCEPTED
    assert reason(s.submit(limit(BUY, "1", "50.00"), at(0))).startswith("too many orders: 4 submitted")
    risk.limits = AccountRiskLimits(max_orders_per_second=2)  # lowered: applies at once
    assert reason(s.submit(limit(BUY, "1", "50.00"), at(0))).startswith("too many orders: 4 submitted")
    clock[0] = NS_PER_SECOND
    assert s.submit(limit(BUY, "1", "50.00"), at(0)).status is S.ACCEPTED


def test_risk_checks_read_the_shared_halted_instruments() -> None:
    halted: set[InstrumentId] = set()
    s = session(RiskChecks(AccountRiskLimits(), halted))
    assert s.submit(limit(BUY, "1", "50.00"), at(0)).status is S.ACCEPTED
    halted.add(ORCL.id)
    assert reason(s.submit(limit(BUY, "1", "50.00"), at(0))) == (
        f"instrument {ORCL.id} is halted (risk limit halted_instruments)"
    )


def test_stored_limits_become_the_checks_limits_with_the_platform_defaults() -> None:
    stored = StoredLimits("a", max_orders_per_second=7, max_order_quantity=D("0.5"), price_collar_bps=D(50))
    limits = risk_limits(stored, 200, 10)
    assert limits == AccountRiskLimits(
        max_order_quantity=D("0.5"), price_collar_bps=D(50), max_open_orders=200, max_orders_per_second=7
    )
    assert risk_limits(StoredLimits("a"), None, None) == AccountRiskLimits()
    assert halt_reason(stored) is None
    assert halt_reason(StoredLimits("a", trading_state=HALTED, reason="margin call")) == "margin call"
    assert halt_reason(StoredLimits("a", trading_state=HALTED)) == "halted by a risk manager"
