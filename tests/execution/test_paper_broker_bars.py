"""Paper broker on bars: market orders at the next bar's open; limits, stops and stop-limits along the
OHLC path (up bar O→L→H→C, down bar O→H→L→C); gaps fill at the open."""

from __future__ import annotations

from smart_trader.execution.enums import LiquiditySide, OrderStatus
from smart_trader.execution.events import OrderAccepted, OrderFilled, OrderTriggered
from tests.execution.builders import (
    BTC,
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


# -- market orders -------------------------------------------------------------------------------------------
def test_market_buy_fills_at_the_open_of_the_next_bar() -> None:
    paper = broker()
    feed = Feed(paper)
    order = paper.submit(market(BUY, "10"), at(0))

    feed.bar(at(1), "100.50", "102.00", "100.00", "101.75")

    [fill] = paper.fills
    assert (fill.price, fill.quantity, fill.side) == (D("100.50"), D(10), BUY)
    assert fill.ts_event == at(1)
    assert fill.liquidity_side is LiquiditySide.TAKER
    assert order.status is S.FILLED
    assert order.avg_px == D("100.50")
    assert paper.account.quantity(ORCL.id) == D(10)
    assert paper.account.cash == D(100_000) - D("1005.00")
    assert paper.open_orders() == []


def test_market_order_fills_once_not_again_on_the_following_bar() -> None:
    paper = broker()
    feed = Feed(paper)
    paper.submit(market(BUY, "10"), at(0))

    feed.bar(at(1), "100.50", "102.00", "100.00", "101.75")
    feed.bar(at(2), "101.75", "103.00", "101.00", "102.00")

    assert len(paper.fills) == 1


def test_bar_of_another_instrument_does_not_fill() -> None:
    paper = broker(ORCL, BTC)  # account in USD; the BTC bar must simply be ignored by ORCL orders
    order = paper.submit(market(BUY, "10"), at(0))

    Feed(paper, BTC).bar(at(1), "50000.00", "50100.00", "49900.00", "50050.00")

    assert order.status is S.ACCEPTED
    assert paper.fills == []


def test_market_sell_fills_at_the_open_of_the_next_bar_after_a_gap() -> None:
    paper = broker()
    feed = Feed(paper)
    paper.submit(market(BUY, "10"), at(0))
    feed.bar(at(1), "100.00", "100.00", "100.00", "100.00")
    paper.submit(market(SELL, "10"), at(1))

    feed.bar(at(2), "95.20", "96.00", "94.00", "95.00")

    assert paper.fills[-1].price == D("95.20")
    assert paper.account.quantity(ORCL.id) == 0
    assert paper.account.cash == D(100_000) - D(1000) + D(952)


# -- limit orders --------------------------------------------------------------------------------------------
def test_limit_buy_fills_at_its_limit_when_the_low_reaches_it() -> None:
    paper = broker()
    order = paper.submit(limit(BUY, "10", "99.50"), at(0))

    Feed(paper).bar(at(1), "100.00", "101.00", "99.00", "100.80")

    assert paper.fills[0].price == D("99.50")
    assert order.status is S.FILLED


def test_limit_buy_rests_until_the_price_comes_down_then_fills_as_maker() -> None:
    paper = broker()
    feed = Feed(paper)
    order = paper.submit(limit(BUY, "10", "99.50"), at(0))

    feed.bar(at(1), "100.00", "101.00", "99.60", "100.80")
    assert order.status is S.ACCEPTED
    feed.bar(at(2), "100.80", "100.90", "99.10", "99.40")

    [fill] = paper.fills
    assert (fill.price, fill.ts_event) == (D("99.50"), at(2))
    assert fill.liquidity_side is LiquiditySide.MAKER


def test_limit_buy_on_a_gap_down_fills_at_the_better_open() -> None:
    paper = broker()
    feed = Feed(paper)
    paper.submit(limit(BUY, "10", "99.50"), at(0))
    feed.bar(at(1), "100.00", "101.00", "99.60", "100.80")

    feed.bar(at(2), "97.00", "98.00", "96.50", "97.50")

    assert paper.fills[0].price == D("97.00")


def test_limit_sell_fills_at_its_limit_when_the_high_reaches_it() -> None:
    paper = broker()
    feed = Feed(paper)
    paper.submit(market(BUY, "10"), at(0))
    feed.bar(at(1), "100.00", "100.00", "100.00", "100.00")
    paper.submit(limit(SELL, "10", "101.25"), at(1))

    feed.bar(at(2), "100.00", "101.30", "99.80", "100.10")

    assert paper.fills[-1].price == D("101.25")


def test_limit_sell_on_a_gap_up_fills_at_the_better_open() -> None:
    paper = broker()
    feed = Feed(paper)
    paper.submit(market(BUY, "10"), at(0))
    feed.bar(at(1), "100.00", "100.00", "100.00", "100.00")
    paper.submit(limit(SELL, "10", "101.25"), at(1))

    feed.bar(at(2), "103.00", "104.00", "102.50", "103.50")

    assert paper.fills[-1].price == D("103.00")


# -- stop orders ---------------------------------------------------------------------------------------------
def test_stop_buy_fills_at_its_stop_when_the_high_reaches_it() -> None:
    paper = broker()
    order = paper.submit(stop(BUY, "10", "101.00"), at(0))

    Feed(paper).bar(at(1), "100.00", "101.50", "99.50", "101.20")

    assert paper.fills[0].price == D("101.00")
    assert order.status is S.FILLED


def test_stop_buy_not_reached_keeps_working() -> None:
    paper = broker()
    order = paper.submit(stop(BUY, "10", "101.00"), at(0))

    Feed(paper).bar(at(1), "100.00", "100.99", "99.50", "100.20")

    assert order.status is S.ACCEPTED
    assert paper.fills == []


def test_stop_buy_on_a_gap_up_fills_at_the_worse_open() -> None:
    paper = broker()

    paper.submit(stop(BUY, "10", "101.00"), at(0))
    Feed(paper).bar(at(1), "102.40", "103.00", "102.00", "102.80")

    assert paper.fills[0].price == D("102.40")


def test_stop_loss_sell_on_a_gap_down_fills_at_the_worse_open() -> None:
    paper = broker()
    feed = Feed(paper)
    paper.submit(market(BUY, "10"), at(0))
    feed.bar(at(1), "100.00", "100.00", "100.00", "100.00")
    paper.submit(stop(SELL, "10", "97.00"), at(1))

    feed.bar(at(2), "94.10", "95.00", "93.00", "94.00")

    assert paper.fills[-1].price == D("94.10")
    assert paper.account.position(ORCL.id).realized_pnl == D("-59.00")  # type: ignore[union-attr]


# -- stop-limit orders ---------------------------------------------------------------------------------------
def test_stop_limit_triggers_on_trade_through_stop_then_fills_at_the_limit_in_the_same_down_bar() -> None:
    paper = broker()
    order = paper.submit(stop_limit(BUY, "10", "101.00", "99.50"), at(0))

    # down bar: 100 → 103 (stop 101 triggers) → 98 (limit 99.50 reached) → 99
    Feed(paper).bar(at(1), "100.00", "103.00", "98.00", "99.00")

    assert [type(e) for e in order.events] == [OrderAccepted, OrderTriggered, OrderFilled]
    assert paper.fills[0].price == D("99.50")
    assert order.status is S.FILLED


def test_stop_limit_triggered_on_an_up_bar_rests_as_a_limit_then_fills_on_a_later_bar() -> None:
    paper = broker()
    feed = Feed(paper)
    order = paper.submit(stop_limit(BUY, "10", "101.00", "99.50"), at(0))

    # up bar: 100 → 98 → 103 (stop triggers) → 101; the low came before the trigger
    feed.bar(at(1), "100.00", "103.00", "98.00", "101.00")

    assert order.triggered
    assert order.status is S.ACCEPTED
    assert paper.fills == []

    feed.bar(at(2), "101.00", "101.50", "99.40", "100.00")

    assert paper.fills[0].price == D("99.50")
    assert [type(e) for e in order.events] == [OrderAccepted, OrderTriggered, OrderFilled]


def test_stop_limit_resting_after_its_trigger_fills_as_a_maker() -> None:
    paper = broker()
    feed = Feed(paper)
    paper.submit(stop_limit(BUY, "10", "101.00", "99.50"), at(0))
    feed.bar(at(1), "100.00", "103.00", "98.00", "101.00")  # triggers, rests at 99.50

    feed.bar(at(2), "101.00", "101.50", "99.40", "100.00")

    assert paper.fills[0].liquidity_side is LiquiditySide.MAKER


def test_stop_limit_triggered_within_its_limit_fills_at_the_stop() -> None:
    paper = broker()

    paper.submit(stop_limit(BUY, "10", "101.00", "101.50"), at(0))
    Feed(paper).bar(at(1), "100.00", "103.00", "99.00", "102.00")

    assert paper.fills[0].price == D("101.00")


def test_stop_limit_gapping_past_its_limit_rests_and_fills_only_at_the_limit() -> None:
    paper = broker()
    feed = Feed(paper)
    order = paper.submit(stop_limit(BUY, "10", "101.00", "101.50"), at(0))

    feed.bar(at(1), "104.00", "105.00", "103.00", "104.50")  # triggered at the open, never back to 101.50
    assert (order.triggered, order.status) == (True, S.ACCEPTED)
    feed.bar(at(2), "103.00", "103.50", "101.00", "101.20")

    assert paper.fills[0].price == D("101.50")


def test_stop_limit_triggers_only_once() -> None:
    paper = broker()
    feed = Feed(paper)
    order = paper.submit(stop_limit(BUY, "10", "101.00", "99.50"), at(0))

    for minute in (1, 2, 3):
        feed.bar(at(minute), "100.00", "103.00", "98.00", "101.00")

    assert sum(isinstance(e, OrderTriggered) for e in order.events) == 1


def test_stop_limit_not_triggered_emits_nothing() -> None:
    paper = broker()
    give_position(paper.account, ORCL, "10", "90.00")
    order = paper.submit(stop_limit(SELL, "10", "95.00", "94.50"), at(0))

    Feed(paper).bar(at(1), "100.00", "101.00", "95.01", "100.50")

    assert [type(e) for e in order.events] == [OrderAccepted]
    assert not order.triggered


def test_stop_limit_sell_triggers_on_the_way_down_and_fills_at_the_stop_within_its_limit() -> None:
    paper = broker()
    feed = Feed(paper)
    paper.submit(market(BUY, "10"), at(0))
    feed.bar(at(1), "100.00", "100.00", "100.00", "100.00")
    order = paper.submit(stop_limit(SELL, "10", "97.00", "96.50"), at(1))

    feed.bar(at(2), "99.00", "99.50", "96.00", "96.80")  # down bar: 99 → 99.50 → 96 (stop 97 passed) → 96.80

    assert paper.fills[-1].price == D("97.00")
    assert order.status is S.FILLED
