"""Paper broker: notional market orders, commissions posted to the ledger, slippage on market-taking fills only."""

from __future__ import annotations

from smart_trader.execution.costs import BpsCommission, BpsSlippage, PerUnitCommission, TickSlippage
from smart_trader.execution.enums import OrderStatus
from smart_trader.execution.events import OrderCanceled
from smart_trader.portfolio.account import AccountType
from smart_trader.portfolio.ledger import EntryKind
from tests.execution.builders import (
    BTC,
    BUY,
    ORCL,
    SELL,
    D,
    Feed,
    at,
    broker,
    crypto,
    give_position,
    limit,
    market,
    stop,
)

S = OrderStatus


# -- notional market orders ----------------------------------------------------------------------------------
def test_notional_buy_gets_the_notional_over_the_open_floored_to_the_lot() -> None:
    paper = broker(BTC)
    order = paper.submit(market(BUY, notional="1000", instrument=BTC), at(0))
    assert order.quantity is None

    Feed(paper, BTC).bar(at(1), "30000.00", "30100.00", "29900.00", "30050.00")

    [fill] = paper.fills
    assert fill.quantity == D("0.03333")  # 1000 / 30000 = 0.033333… floored to 0.00001
    assert fill.price == D("30000.00")
    assert order.quantity == D("0.03333")
    assert order.status is S.FILLED
    assert paper.account.cash == D(100_000) - D("999.90")


def test_notional_buy_pays_its_bps_commission_out_of_the_notional() -> None:
    lot_001 = crypto(lot="0.001")
    paper = broker(lot_001, commission=BpsCommission(D(10)))
    paper.submit(market(BUY, notional="1000", instrument=lot_001), at(0))

    Feed(paper, lot_001).bar(at(1), "300.00", "301.00", "299.00", "300.50")

    [fill] = paper.fills
    assert fill.quantity == D("3.330")  # 3.331 × 300 × 1.001 = 1000.2993 would exceed 1000
    assert fill.commission == D("0.999")
    assert paper.account.cash == D(100_000) - D("999.999")


def test_notional_sell_on_a_margin_account_sells_the_notional_worth() -> None:
    paper = broker(account_type=AccountType.MARGIN)
    paper.submit(market(SELL, notional="2500"), at(0))

    Feed(paper).bar(at(1), "120.00", "121.00", "119.00", "120.50")

    assert paper.fills[0].quantity == D(20)  # 2500 / 120 = 20.8 → 20 shares
    assert paper.account.quantity(ORCL.id) == D(-20)


def test_notional_sell_on_a_cash_account_sells_at_most_what_is_held() -> None:
    paper = broker()
    give_position(paper.account, ORCL, "7", "90.00")
    paper.submit(market(SELL, notional="2500"), at(0))

    Feed(paper).bar(at(1), "120.00", "121.00", "119.00", "120.50")

    assert paper.fills[0].quantity == D(7)
    assert paper.account.quantity(ORCL.id) == 0


def test_notional_worth_less_than_one_lot_is_canceled_with_the_reason() -> None:
    paper = broker()
    order = paper.submit(market(BUY, notional="50"), at(0))

    Feed(paper).bar(at(1), "120.00", "121.00", "119.00", "120.50")

    assert order.status is S.CANCELED
    event = order.events[-1]
    assert isinstance(event, OrderCanceled)
    assert event.reason == "notional 50 buys less than one lot (1) at 120.00"
    assert paper.fills == []


def test_notional_order_under_participation_fixes_its_quantity_once_and_fills_over_bars() -> None:
    paper = broker(participation="0.1")
    feed = Feed(paper)
    order = paper.submit(market(BUY, notional="3000"), at(0))

    feed.bar(at(1), "100.00", "100.50", "99.50", "100.20", volume="200")
    feed.bar(at(2), "150.00", "150.50", "149.50", "150.20", volume="200")

    assert order.quantity == D(30)  # fixed at the first fill price, not recomputed at 150
    assert [f.quantity for f in paper.fills] == [D(20), D(10)]
    assert order.status is S.FILLED


# -- commissions ---------------------------------------------------------------------------------------------
def test_bps_commission_is_charged_exactly_and_posted_to_the_ledger() -> None:
    paper = broker(commission=BpsCommission(D("7.5")))
    paper.submit(market(BUY, "3"), at(0))

    Feed(paper).bar(at(1), "123.45", "124.00", "123.00", "123.80")

    [fill] = paper.fills
    assert fill.commission == D("0.2777625")
    assert fill.commission_currency == "USD"
    entries = paper.account.ledger.entries
    assert [(e.kind, e.amount, e.ref) for e in entries[1:]] == [
        (EntryKind.TRADE, D("-370.35"), fill.fill_id),
        (EntryKind.COMMISSION, D("-0.2777625"), fill.fill_id),
    ]
    assert paper.account.cash == D(100_000) - D("370.35") - D("0.2777625")
    assert paper.account.commissions == D("0.2777625")


def test_per_share_commission_minimum_applies_per_fill() -> None:
    paper = broker(commission=PerUnitCommission(D("0.005"), minimum=D("1.00")), participation="0.5")
    feed = Feed(paper)
    paper.submit(market(BUY, "300"), at(0))

    feed.bar(at(1), "50.00", "50.50", "49.50", "50.20", volume="100")  # 50 shares: 0.25 → the 1.00 minimum
    feed.bar(at(2), "50.00", "50.50", "49.50", "50.20", volume="500")  # 250 shares: 1.25

    assert [f.commission for f in paper.fills] == [D("1.00"), D("1.250")]
    assert paper.account.commissions == D("2.25")
    assert paper.account.cash == D(100_000) - D(15_000) - D("2.25")


def test_commission_is_also_charged_on_sells() -> None:
    paper = broker(commission=BpsCommission(D(10)))
    give_position(paper.account, ORCL, "10", "90.00")
    paper.submit(market(SELL, "10"), at(0))

    Feed(paper).bar(at(1), "100.00", "100.50", "99.50", "100.20")

    assert paper.fills[0].commission == D("1.000")
    assert paper.account.cash == D(100_000) - D(900) + D(1000) - D(1)


def test_buy_whose_commission_would_exceed_cash_is_canceled_at_the_fill() -> None:
    paper = broker(cash="1000", commission=PerUnitCommission(D(0), minimum=D(5)))
    order = paper.submit(limit(BUY, "10", "100.00"), at(0))  # 1000 USD fits; 1005 with commission does not
    assert order.status is S.ACCEPTED

    Feed(paper).bar(at(1), "100.00", "100.50", "99.50", "100.20")

    assert order.status is S.CANCELED
    assert paper.account.cash == D(1000)


# -- slippage ------------------------------------------------------------------------------------------------
def test_tick_slippage_moves_market_buys_up_and_market_sells_down() -> None:
    paper = broker(account_type=AccountType.MARGIN, slippage=TickSlippage(2))
    paper.submit(market(BUY, "10"), at(0))
    paper.submit(market(SELL, "5"), at(0))

    Feed(paper).bar(at(1), "100.00", "100.50", "99.50", "100.20")

    assert [f.price for f in paper.fills] == [D("100.02"), D("99.98")]


def test_bps_slippage_on_a_market_buy_rounds_up_to_the_tick() -> None:
    paper = broker(slippage=BpsSlippage(D(5)))
    paper.submit(market(BUY, "10"), at(0))

    Feed(paper).bar(at(1), "100.01", "100.50", "99.50", "100.20")

    assert paper.fills[0].price == D("100.07")  # 100.060005 rounded against the buyer
    assert paper.account.cash == D(100_000) - D("1000.70")


def test_stop_fill_is_slipped_like_a_market_order() -> None:
    paper = broker(slippage=TickSlippage(1))
    paper.submit(stop(BUY, "10", "101.00"), at(0))

    Feed(paper).bar(at(1), "100.00", "101.50", "99.50", "101.20")

    assert paper.fills[0].price == D("101.01")


def test_resting_limit_fill_is_not_slipped() -> None:
    paper = broker(slippage=TickSlippage(3))
    feed = Feed(paper)
    paper.submit(limit(BUY, "10", "99.50"), at(0))

    feed.bar(at(1), "100.00", "100.50", "99.60", "100.20")
    feed.bar(at(2), "100.00", "100.50", "99.00", "100.20")

    assert paper.fills[0].price == D("99.50")


def test_marketable_limit_never_fills_through_its_limit_even_with_slippage() -> None:
    paper = broker(slippage=TickSlippage(1))
    paper.submit(limit(BUY, "10", "100.00"), at(0))

    Feed(paper).bar(at(1), "100.00", "100.50", "99.50", "100.20")

    assert paper.fills[0].price <= D("100.00")
