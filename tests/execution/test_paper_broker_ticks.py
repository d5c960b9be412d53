"""Paper broker on trades (fill at the trade price, never through a limit) and on quotes
(buys take the ask, sells take the bid; limits and stops compare the side they would take)."""

from __future__ import annotations

import pytest

from smart_trader.execution.costs import TickSlippage
from smart_trader.execution.enums import LiquiditySide, OrderStatus
from smart_trader.execution.events import OrderTriggered
from smart_trader.portfolio.account import AccountType
from tests.execution.builders import (
    BUY,
    ORCL,
    SELL,
    D,
    Feed,
    at,
    broker,
    give_position,
    limit,
    market,
    stop,
    stop_limit,
)

S = OrderStatus
SECOND = 1_000_000_000


# -- trades --------------------------------------------------------------------------------------------------
def test_market_order_fills_at_the_next_trade_price() -> None:
    paper = broker()
    paper.submit(market(BUY, "10"), at(0))

    Feed(paper).trade(at(0) + SECOND, "100.37", "500")

    [fill] = paper.fills
    assert (fill.price, fill.quantity, fill.ts_event) == (D("100.37"), D(10), at(0) + SECOND)


def test_limit_buy_fills_at_a_better_trade_price() -> None:
    paper = broker()
    paper.submit(limit(BUY, "10", "100.00"), at(0))

    Feed(paper).trade(at(0) + SECOND, "99.95")

    assert paper.fills[0].price == D("99.95")


def test_limit_buy_never_fills_through_its_limit() -> None:
    paper = broker()
    feed = Feed(paper)
    order = paper.submit(limit(BUY, "10", "100.00"), at(0))

    feed.trade(at(0) + SECOND, "100.01")
    feed.trade(at(0) + 2 * SECOND, "100.50")

    assert order.status is S.ACCEPTED
    assert paper.fills == []


def test_limit_sell_fills_at_or_above_its_limit_only() -> None:
    paper = broker()
    give_position(paper.account, ORCL, "10", "90.00")
    feed = Feed(paper)
    paper.submit(limit(SELL, "10", "101.00"), at(0))

    feed.trade(at(0) + SECOND, "100.99")
    feed.trade(at(0) + 2 * SECOND, "101.00")

    [fill] = paper.fills
    assert fill.price == D("101.00")


def test_stop_buy_triggers_on_a_trade_at_the_stop_and_fills_at_that_trade() -> None:
    paper = broker()
    feed = Feed(paper)
    paper.submit(stop(BUY, "10", "101.00"), at(0))

    feed.trade(at(0) + SECOND, "100.99")
    feed.trade(at(0) + 2 * SECOND, "101.04")

    [fill] = paper.fills
    assert (fill.price, fill.ts_event) == (D("101.04"), at(0) + 2 * SECOND)


def test_stop_limit_triggers_on_trade_through_stop_then_rests_as_limit() -> None:
    paper = broker()
    feed = Feed(paper)
    order = paper.submit(stop_limit(BUY, "10", "101.00", "100.80"), at(0))

    feed.trade(at(0) + SECOND, "101.10")  # through the stop, above the limit
    assert order.triggered
    assert order.status is S.ACCEPTED
    assert paper.fills == []
    feed.trade(at(0) + 2 * SECOND, "100.90")  # still above the limit
    feed.trade(at(0) + 3 * SECOND, "100.75")

    [fill] = paper.fills
    assert fill.price == D("100.75")
    assert sum(isinstance(e, OrderTriggered) for e in order.events) == 1


def test_stop_limit_triggered_within_its_limit_fills_at_the_trigger_trade() -> None:
    paper = broker()

    paper.submit(stop_limit(BUY, "10", "101.00", "101.20"), at(0))
    Feed(paper).trade(at(0) + SECOND, "101.05")

    assert paper.fills[0].price == D("101.05")


def test_resting_limit_filled_by_a_later_trade_is_a_maker() -> None:
    paper = broker()
    feed = Feed(paper)
    paper.submit(limit(BUY, "10", "100.00"), at(0))
    feed.trade(at(0) + SECOND, "100.10")

    feed.trade(at(0) + 2 * SECOND, "100.00")

    assert paper.fills[0].liquidity_side is LiquiditySide.MAKER


@pytest.mark.parametrize("event", ["trade", "quote"])
def test_stop_limit_never_fills_through_its_limit_even_with_slippage(event: str) -> None:
    paper = broker(slippage=TickSlippage(1))
    feed = Feed(paper)
    paper.submit(stop_limit(BUY, "10", "100.00", "100.00"), at(0))

    if event == "trade":
        feed.trade(at(0) + SECOND, "100.00")
    else:
        feed.quote(at(0) + SECOND, "99.98", "100.00")

    assert paper.fills[0].price <= D("100.00")


def test_slippage_does_not_apply_to_a_limit_filled_by_a_trade() -> None:
    paper = broker(slippage=TickSlippage(3))
    paper.submit(limit(BUY, "10", "100.00"), at(0))

    Feed(paper).trade(at(0) + SECOND, "99.98")

    assert paper.fills[0].price == D("99.98")


# -- quotes --------------------------------------------------------------------------------------------------
def test_market_buy_takes_the_ask_and_market_sell_takes_the_bid() -> None:
    paper = broker(account_type=AccountType.MARGIN)
    paper.submit(market(BUY, "10"), at(0))
    paper.submit(market(SELL, "4"), at(0))

    Feed(paper).quote(at(0) + SECOND, "99.98", "100.02")

    assert [(f.side, f.price) for f in paper.fills] == [(BUY, D("100.02")), (SELL, D("99.98"))]


def test_limit_buy_compares_the_ask_not_the_bid() -> None:
    paper = broker()
    feed = Feed(paper)
    order = paper.submit(limit(BUY, "10", "100.00"), at(0))

    feed.quote(at(0) + SECOND, "99.99", "100.01")  # bid under the limit, ask above: no fill
    assert order.status is S.ACCEPTED
    feed.quote(at(0) + 2 * SECOND, "99.97", "99.99")

    [fill] = paper.fills
    assert fill.price == D("99.99")


def test_limit_sell_compares_the_bid() -> None:
    paper = broker()
    give_position(paper.account, ORCL, "10", "90.00")
    feed = Feed(paper)
    paper.submit(limit(SELL, "10", "100.00"), at(0))

    feed.quote(at(0) + SECOND, "99.99", "100.01")
    feed.quote(at(0) + 2 * SECOND, "100.02", "100.04")

    [fill] = paper.fills
    assert fill.price == D("100.02")


def test_stop_sell_triggers_on_the_bid() -> None:
    paper = broker()
    give_position(paper.account, ORCL, "10", "90.00")
    feed = Feed(paper)
    paper.submit(stop(SELL, "10", "95.00"), at(0))

    feed.quote(at(0) + SECOND, "95.01", "95.03")
    assert paper.fills == []
    feed.quote(at(0) + 2 * SECOND, "94.98", "95.00")  # the ask is at the stop; only the bid counts

    [fill] = paper.fills
    assert fill.price == D("94.98")


def test_quote_size_caps_buys_by_the_ask_size_and_sells_by_the_bid_size() -> None:
    paper = broker(account_type=AccountType.MARGIN, participation="1")
    buy = paper.submit(market(BUY, "50"), at(0))
    sell = paper.submit(market(SELL, "50"), at(0))

    Feed(paper).quote(at(0) + SECOND, "99.98", "100.02", bid_size="20", ask_size="30")

    assert (buy.filled_qty, sell.filled_qty) == (D(30), D(20))
    assert (buy.status, sell.status) == (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED)


def test_trade_size_caps_fills_with_participation() -> None:
    paper = broker(participation="0.25")
    order = paper.submit(market(BUY, "100"), at(0))

    Feed(paper).trade(at(0) + SECOND, "100.00", "200")

    assert order.filled_qty == D(50)
    assert order.status is S.PARTIALLY_FILLED
