"""Paper broker: time in force (day, gtc, ioc, fok) and the volume-participation cap
(partial fills continue on later bars, the volume is shared by orders in submission order)."""

from __future__ import annotations

from smart_trader.core.clock import parse_utc
from smart_trader.execution.enums import OrderStatus, TimeInForce
from smart_trader.execution.events import OrderCanceled, OrderExpired, OrderFilled
from tests.execution.builders import (
    BTC,
    BUY,
    D,
    Feed,
    at,
    broker,
    limit,
    market,
    stop,
    stop_limit,
)

S = OrderStatus
DAY, GTC, IOC, FOK = TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
MIDNIGHT = parse_utc("2024-03-05T00:00:00Z")  # the UTC day after at(0)


# -- day -----------------------------------------------------------------------------------------------------
def test_day_order_expires_at_the_first_event_of_the_next_utc_day() -> None:
    paper = broker()
    feed = Feed(paper)
    order = paper.submit(limit(BUY, "10", "99.00", tif=DAY), at(0))

    feed.bar(at(1), "100.00", "100.50", "99.50", "100.20")
    feed.bar(MIDNIGHT - 60 * 10**9, "100.20", "100.40", "99.10", "100.00")  # 23:59, still today
    assert order.status is S.ACCEPTED
    feed.bar(MIDNIGHT, "98.00", "98.50", "97.00", "98.20")  # would fill, but the day is over

    assert order.status is S.EXPIRED
    assert isinstance(order.events[-1], OrderExpired)
    assert order.events[-1].ts_event == MIDNIGHT
    assert paper.fills == []
    assert paper.open_orders() == []


def test_day_order_fills_on_its_own_day() -> None:
    paper = broker()
    order = paper.submit(limit(BUY, "10", "99.00", tif=DAY), at(0))

    Feed(paper).bar(MIDNIGHT - 1, "99.00", "99.00", "99.00", "99.00")

    assert order.status is S.FILLED


def test_day_order_partly_filled_expires_with_its_remainder() -> None:
    paper = broker(participation="0.1")
    feed = Feed(paper)
    order = paper.submit(market(BUY, "30", tif=DAY), at(0))
    feed.bar(at(1), "100.00", "100.50", "99.50", "100.20", volume="100")

    feed.bar(MIDNIGHT, "100.20", "100.40", "99.10", "100.00", volume="100")

    assert order.status is S.EXPIRED
    assert order.filled_qty == D(10)
    assert len(paper.fills) == 1


def test_day_order_expires_on_a_trade_or_quote_of_the_next_day_too() -> None:
    paper = broker()
    feed = Feed(paper)
    on_trade = paper.submit(stop(BUY, "1", "150.00", tif=DAY), at(0))
    feed.trade(at(1), "100.00")  # the first event it meets is on its own day: it lives through that day

    feed.trade(MIDNIGHT + 5, "100.00")

    assert on_trade.status is S.EXPIRED
    on_quote = paper.submit(stop(BUY, "1", "150.00", tif=DAY), MIDNIGHT + 10)
    feed.quote(MIDNIGHT + 20, "99.99", "100.01")
    feed.quote(MIDNIGHT + 86_400 * 10**9, "99.99", "100.01")
    assert on_quote.status is S.EXPIRED


def test_day_order_placed_after_the_last_event_of_a_day_works_through_the_next_days_session() -> None:
    # e.g. placed at the close of Friday's daily bar: it must meet Monday's open, not expire unmatched
    paper = broker()
    feed = Feed(paper)
    order = paper.submit(market(BUY, "1", tif=DAY), at(0))

    feed.bar(MIDNIGHT + 2 * 86_400 * 10**9, "100.00", "100.50", "99.50", "100.20")

    assert order.status is S.FILLED


def test_gtc_order_keeps_working_across_days() -> None:
    paper = broker()
    feed = Feed(paper)
    order = paper.submit(limit(BUY, "10", "99.00", tif=GTC), at(0))

    feed.bar(MIDNIGHT, "100.00", "100.50", "99.50", "100.20")
    feed.bar(MIDNIGHT + 3 * 86_400 * 10**9, "99.50", "99.60", "98.00", "98.50")

    assert order.status is S.FILLED
    assert paper.fills[0].ts_event == MIDNIGHT + 3 * 86_400 * 10**9


# -- ioc -----------------------------------------------------------------------------------------------------
def test_ioc_fills_what_the_next_bar_allows_and_cancels_the_rest() -> None:
    paper = broker(participation="0.1")
    feed = Feed(paper)
    order = paper.submit(market(BUY, "30", tif=IOC), at(0))

    feed.bar(at(1), "100.00", "100.50", "99.50", "100.20", volume="100")
    feed.bar(at(2), "100.20", "100.50", "99.50", "100.20", volume="100")

    assert order.status is S.CANCELED
    assert order.filled_qty == D(10)
    assert isinstance(order.events[-1], OrderCanceled)
    assert order.events[-1].reason == "ioc"
    assert len(paper.fills) == 1


def test_ioc_limit_not_reached_on_the_next_event_is_canceled_without_a_fill() -> None:
    paper = broker()
    order = paper.submit(limit(BUY, "10", "99.00", tif=IOC), at(0))

    Feed(paper).bar(at(1), "100.00", "100.50", "99.50", "100.20")

    assert order.status is S.CANCELED
    assert order.events[-1].reason == "ioc"  # type: ignore[attr-defined]
    assert paper.fills == []


def test_ioc_filled_in_full_is_not_canceled() -> None:
    paper = broker()
    order = paper.submit(limit(BUY, "10", "100.00", tif=IOC), at(0))

    Feed(paper).bar(at(1), "100.00", "100.50", "99.50", "100.20")

    assert order.status is S.FILLED
    assert isinstance(order.events[-1], OrderFilled)


def test_ioc_stop_limit_triggered_but_not_filled_is_canceled() -> None:
    paper = broker()
    order = paper.submit(stop_limit(BUY, "10", "101.00", "99.50", tif=IOC), at(0))

    Feed(paper).bar(at(1), "100.00", "103.00", "98.00", "101.00")  # up bar: triggers, never back to 99.50

    assert order.triggered
    assert order.status is S.CANCELED


# -- fok -----------------------------------------------------------------------------------------------------
def test_fok_is_killed_whole_when_the_next_bar_cannot_fill_all_of_it() -> None:
    paper = broker(participation="0.1")
    order = paper.submit(market(BUY, "30", tif=FOK), at(0))

    Feed(paper).bar(at(1), "100.00", "100.50", "99.50", "100.20", volume="290")  # 29 available

    assert order.status is S.CANCELED
    assert order.events[-1].reason == "fok"  # type: ignore[attr-defined]
    assert order.filled_qty == 0
    assert paper.fills == []
    assert paper.account.cash == D(100_000)


def test_fok_fills_all_at_once_when_the_next_bar_allows() -> None:
    paper = broker(participation="0.1")
    order = paper.submit(market(BUY, "30", tif=FOK), at(0))

    Feed(paper).bar(at(1), "100.00", "100.50", "99.50", "100.20", volume="300")

    [fill] = paper.fills
    assert fill.quantity == D(30)
    assert order.status is S.FILLED


def test_fok_limit_not_reached_on_the_next_event_is_killed() -> None:
    paper = broker()
    feed = Feed(paper)
    order = paper.submit(limit(BUY, "10", "99.00", tif=FOK), at(0))

    feed.bar(at(1), "100.00", "100.50", "99.50", "100.20")
    feed.bar(at(2), "98.00", "98.50", "97.50", "98.20")

    assert order.status is S.CANCELED
    assert paper.fills == []


# -- volume participation ------------------------------------------------------------------------------------
def test_participation_cap_fills_partially_and_continues_on_later_bars() -> None:
    paper = broker(participation="0.1")
    feed = Feed(paper)
    order = paper.submit(market(BUY, "30"), at(0))

    statuses = []
    for minute, open_ in ((1, "100.00"), (2, "100.10"), (3, "100.20")):
        feed.bar(at(minute), open_, "100.50", "99.50", "100.20", volume="100")
        statuses.append(order.status)

    assert statuses == [S.PARTIALLY_FILLED, S.PARTIALLY_FILLED, S.FILLED]
    assert [(f.quantity, f.price) for f in paper.fills] == [
        (D(10), D("100.00")),
        (D(10), D("100.10")),
        (D(10), D("100.20")),
    ]
    assert order.avg_px == D("100.10")
    assert paper.account.cash == D(100_000) - D("3003.00")


def test_participation_volume_is_shared_by_orders_in_submission_order() -> None:
    paper = broker(participation="0.1")
    feed = Feed(paper)
    first = paper.submit(market(BUY, "15"), at(0))
    second = paper.submit(limit(BUY, "10", "101.00"), at(0))

    feed.bar(at(1), "100.00", "100.50", "99.50", "100.20", volume="100")
    assert (first.filled_qty, second.filled_qty) == (D(10), D(0))
    feed.bar(at(2), "100.00", "100.50", "99.50", "100.20", volume="100")
    assert (first.filled_qty, second.filled_qty) == (D(15), D(5))
    feed.bar(at(3), "100.00", "100.50", "99.50", "100.20", volume="100")

    assert (first.status, second.status) == (S.FILLED, S.FILLED)


def test_participation_cap_is_floored_to_the_lot_size() -> None:
    paper = broker(participation="0.1")
    order = paper.submit(market(BUY, "30"), at(0))

    Feed(paper).bar(at(1), "100.00", "100.50", "99.50", "100.20", volume="109")  # 10.9 → 10 shares

    assert order.filled_qty == D(10)


def test_participation_cap_on_fractional_lots() -> None:
    paper = broker(BTC, participation="0.05")
    order = paper.submit(market(BUY, "1.00000", instrument=BTC), at(0))

    Feed(paper, BTC).bar(at(1), "50000.00", "50100.00", "49900.00", "50050.00", volume="3.33337")

    assert order.filled_qty == D("0.16666")  # 0.1666685 floored to the 0.00001 lot


def test_bar_without_volume_does_not_cap() -> None:
    paper = broker(participation="0.1")
    order = paper.submit(market(BUY, "30"), at(0))

    Feed(paper).bar(at(1), "100.00", "100.50", "99.50", "100.20", volume=None)

    assert order.status is S.FILLED
