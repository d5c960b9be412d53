"""Paper broker, order entry: acceptance, rejection with a reason, idempotent client ids, cancel,
cash-account rules (no shorting, no buying beyond cash), listeners and determinism."""

from __future__ import annotations

import pytest

from smart_trader.core.errors import InvalidInputError, NotFoundError, RejectedByRulesError
from smart_trader.core.ids import OrderId
from smart_trader.execution.enums import OrderStatus, OrderType
from smart_trader.execution.events import OrderAccepted, OrderCanceled, OrderEvent, OrderRejected
from smart_trader.execution.paper_broker import PaperBroker
from smart_trader.portfolio.account import AccountType
from tests.execution.builders import (
    BTC,
    BUY,
    ORCL,
    SELL,
    D,
    Feed,
    at,
    broker,
    equity,
    give_position,
    limit,
    market,
    request,
    stop,
)

S = OrderStatus


# -- acceptance and rejection --------------------------------------------------------------------------------
def test_valid_order_is_accepted_and_works() -> None:
    paper = broker()

    order = paper.submit(limit(BUY, "10", "99.00"), at(0))

    assert order.status is S.ACCEPTED
    assert order.order_id == "O-1"
    assert paper.open_orders() == [order]
    assert paper.has_open_orders(ORCL.id)
    [event] = order.events
    assert isinstance(event, OrderAccepted)
    assert (event.ts_event, event.ts_init) == (at(0), at(0))


def test_order_breaking_a_rule_is_rejected_and_keeps_the_reason() -> None:
    paper = broker()

    order = paper.submit(limit(BUY, "10", "99.005"), at(0))

    assert order.status is S.REJECTED
    assert order.reject_reason is not None
    assert "limit_price 99.005 is off the tick size 0.01" in order.reject_reason
    [event] = order.events
    assert isinstance(event, OrderRejected)
    assert event.reason == order.reject_reason
    assert paper.orders[order.order_id] is order
    assert paper.open_orders() == []


def test_rejected_order_never_fills() -> None:
    paper = broker()
    order = paper.submit(market(BUY, "2.5"), at(0))

    Feed(paper).bar(at(1), "100.00", "101.00", "99.00", "100.50")

    assert order.status is S.REJECTED
    assert paper.fills == []


def test_order_for_an_unknown_instrument_is_rejected() -> None:
    paper = broker()

    order = paper.submit(market(BUY, "1", instrument=equity("MSFT")), at(0))

    assert order.status is S.REJECTED
    assert order.reject_reason == "unknown instrument MSFT.NASDAQ"


def test_instrument_quoted_in_another_currency_than_the_account_is_rejected() -> None:
    paper = broker(ORCL, BTC)  # a USD account

    order = paper.submit(market(BUY, "0.001", instrument=BTC), at(0))

    assert order.status is S.REJECTED
    assert "quoted in USDT" in (order.reject_reason or "")


def test_malformed_request_raises_and_creates_no_order() -> None:
    paper = broker()

    with pytest.raises(InvalidInputError):
        paper.submit(request(BUY, OrderType.LIMIT, "10"), at(0))  # a limit order without a price

    assert paper.orders == {}
    assert paper.open_orders() == []


def test_malformed_request_does_not_consume_an_order_id() -> None:
    paper = broker()
    with pytest.raises(InvalidInputError):
        paper.submit(market(BUY), at(0))  # neither quantity nor notional

    order = paper.submit(market(BUY, "1"), at(0))

    assert order.order_id == "O-1"


# -- idempotent client order ids -----------------------------------------------------------------------------
def test_repeated_client_order_id_returns_the_original_and_creates_nothing() -> None:
    paper = broker()
    seen: list[OrderEvent] = []
    paper.listeners.append(lambda _order, event: seen.append(event))
    original = paper.submit(limit(BUY, "10", "99.00", client_order_id="strat-1-0001"), at(0))

    again = paper.submit(limit(SELL, "5", "120.00", client_order_id="strat-1-0001"), at(1))

    assert again is original
    assert again.side is BUY
    assert list(paper.orders) == [OrderId("O-1")]
    assert len(seen) == 1
    assert len(original.events) == 1
    assert paper.submit(limit(BUY, "1", "99.00"), at(2)).order_id == "O-2"


def test_repeated_client_order_id_of_a_rejected_order_returns_the_rejection() -> None:
    paper = broker()
    first = paper.submit(limit(BUY, "10", "99.001", client_order_id="c-1"), at(0))

    again = paper.submit(limit(BUY, "10", "99.00", client_order_id="c-1"), at(1))

    assert again is first
    assert again.status is S.REJECTED
    assert len(paper.orders) == 1


def test_fill_carries_the_client_order_id() -> None:
    paper = broker()
    paper.submit(market(BUY, "1", client_order_id="c-7"), at(0))

    Feed(paper).bar(at(1), "100.00", "100.00", "100.00", "100.00")

    assert paper.fills[0].client_order_id == "c-7"


# -- cancel --------------------------------------------------------------------------------------------------
def test_cancel_of_a_working_order_stops_it_from_filling() -> None:
    paper = broker()
    order = paper.submit(limit(BUY, "10", "99.00"), at(0))

    paper.cancel(order.order_id, at(1))
    Feed(paper).bar(at(2), "98.00", "98.50", "97.00", "98.00")

    assert order.status is S.CANCELED
    assert isinstance(order.events[-1], OrderCanceled)
    assert order.events[-1].reason == "user"
    assert order.events[-1].ts_event == at(1)
    assert paper.open_orders() == []
    assert paper.fills == []


def test_cancel_of_a_filled_order_raises_and_leaves_it_filled() -> None:
    paper = broker()
    order = paper.submit(market(BUY, "10"), at(0))
    Feed(paper).bar(at(1), "100.00", "101.00", "99.00", "100.50")
    assert order.status is S.FILLED

    with pytest.raises(RejectedByRulesError, match="only open orders can be canceled"):
        paper.cancel(order.order_id, at(2))

    assert order.status is S.FILLED
    assert len(order.events) == 2


def test_cancel_of_a_partly_filled_order_keeps_its_fills_and_cancels_the_rest() -> None:
    paper = broker(participation="0.1")
    order = paper.submit(market(BUY, "30"), at(0))
    Feed(paper).bar(at(1), "100.00", "101.00", "99.00", "100.50", volume="100")

    paper.cancel(order.order_id, at(2))

    assert order.status is S.CANCELED
    assert order.filled_qty == D(10)
    assert paper.account.quantity(ORCL.id) == D(10)
    assert paper.open_orders() == []


def test_cancel_twice_raises_the_second_time() -> None:
    paper = broker()
    order = paper.submit(limit(BUY, "10", "99.00"), at(0))
    paper.cancel(order.order_id, at(1))

    with pytest.raises(RejectedByRulesError):
        paper.cancel(order.order_id, at(2))


def test_cancel_of_an_unknown_order_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        broker().cancel(OrderId("O-404"), at(0))


def test_cancel_keeps_the_other_orders_working() -> None:
    paper = broker()
    first = paper.submit(limit(BUY, "10", "99.00"), at(0))
    second = paper.submit(limit(BUY, "5", "98.00"), at(0))

    paper.cancel(first.order_id, at(1))

    assert paper.open_orders(ORCL.id) == [second]


# -- cash account --------------------------------------------------------------------------------------------
def test_cash_account_refuses_a_short_sale() -> None:
    paper = broker()

    order = paper.submit(market(SELL, "10"), at(0))

    assert order.status is S.REJECTED
    assert "short selling is not allowed on a cash account" in (order.reject_reason or "")


def test_cash_account_refuses_selling_more_than_held() -> None:
    paper = broker()
    give_position(paper.account, ORCL, "10", "90.00")

    order = paper.submit(limit(SELL, "11", "101.00"), at(0))

    assert order.status is S.REJECTED
    assert "sell of 11 exceeds the 10 held" in (order.reject_reason or "")


def test_cash_account_counts_sells_already_working() -> None:
    paper = broker()
    give_position(paper.account, ORCL, "10", "90.00")
    first = paper.submit(limit(SELL, "6", "101.00"), at(0))

    second = paper.submit(stop(SELL, "6", "95.00"), at(0))
    third = paper.submit(stop(SELL, "4", "95.00"), at(0))

    assert first.status is S.ACCEPTED
    assert second.status is S.REJECTED
    assert "exceeds the 4 held and not already offered" in (second.reject_reason or "")
    assert third.status is S.ACCEPTED


def test_cash_account_sells_what_it_holds() -> None:
    paper = broker()
    give_position(paper.account, ORCL, "10", "90.00")
    order = paper.submit(market(SELL, "10"), at(0))

    Feed(paper).bar(at(1), "100.00", "101.00", "99.00", "100.50")

    assert order.status is S.FILLED
    assert paper.account.quantity(ORCL.id) == 0
    assert paper.account.cash == D(100_000) - D(900) + D(1000)


def test_cash_account_refuses_a_limit_buy_costing_more_than_its_cash() -> None:
    paper = broker(cash="1000")

    order = paper.submit(limit(BUY, "11", "91.00"), at(0))  # 1001 USD

    assert order.status is S.REJECTED
    assert order.reject_reason == "order cost 1001.00 USD exceeds the uncommitted cash 1000"


def test_cash_account_counts_buys_already_working_against_its_cash() -> None:
    paper = broker(cash="1000")
    first = paper.submit(limit(BUY, "10", "99.00"), at(0))  # reserves 990 of the 1000

    second = paper.submit(limit(BUY, "10", "99.00"), at(0))

    assert first.status is S.ACCEPTED
    assert second.status is S.REJECTED


def test_cash_account_checks_a_market_buy_at_the_last_price() -> None:
    prices = {ORCL.id: D("100.00")}
    paper = broker(cash="1000", last_price=lambda iid: prices.get(iid))

    order = paper.submit(market(BUY, "11"), at(0))

    assert order.status is S.REJECTED
    assert "exceeds the uncommitted cash 1000" in (order.reject_reason or "")


def test_cash_account_refuses_a_notional_buy_beyond_its_cash() -> None:
    paper = broker(cash="1000")

    order = paper.submit(market(BUY, notional="1000.01"), at(0))

    assert order.status is S.REJECTED
    assert order.reject_reason == "notional 1000.01 exceeds the uncommitted cash 1000"


def test_unaffordable_market_buy_without_a_last_price_is_canceled_at_the_fill() -> None:
    paper = broker(cash="1000")
    order = paper.submit(market(BUY, "11"), at(0))
    assert order.status is S.ACCEPTED

    Feed(paper).bar(at(1), "100.00", "101.00", "99.00", "100.50")

    assert order.status is S.CANCELED
    assert "insufficient cash at fill" in order.events[-1].reason  # type: ignore[attr-defined]
    assert paper.fills == []
    assert paper.account.cash == D(1000)


def test_cash_account_refuses_a_notional_sell_of_nothing_held() -> None:
    paper = broker()

    order = paper.submit(market(SELL, notional="1000"), at(0))

    assert order.status is S.REJECTED
    assert "short selling" in (order.reject_reason or "")


def test_cash_account_never_ends_short_after_a_notional_and_a_quantity_sell() -> None:
    paper = broker()
    give_position(paper.account, ORCL, "10", "90.00")
    paper.submit(market(SELL, notional="2000"), at(0))  # sells up to everything held
    paper.submit(market(SELL, "10"), at(0))  # accepted: the notional sell is not counted

    Feed(paper).bar(at(1), "100.00", "101.00", "99.00", "100.50")

    assert paper.account.quantity(ORCL.id) >= 0


def test_margin_account_may_sell_short() -> None:
    paper = broker(account_type=AccountType.MARGIN)
    order = paper.submit(market(SELL, "10"), at(0))

    Feed(paper).bar(at(1), "100.00", "101.00", "99.00", "100.50")

    assert order.status is S.FILLED
    assert paper.account.quantity(ORCL.id) == D(-10)
    assert paper.account.cash == D(101_000)


# -- listeners and determinism -------------------------------------------------------------------------------
def test_listeners_see_every_event_in_order_after_the_order_changed() -> None:
    paper = broker()
    seen: list[tuple[str, OrderStatus]] = []
    paper.listeners.append(lambda order, event: seen.append((type(event).__name__, order.status)))
    paper.submit(market(BUY, "10"), at(0))

    Feed(paper).bar(at(1), "100.00", "101.00", "99.00", "100.50")

    assert seen == [("OrderAccepted", S.ACCEPTED), ("OrderFilled", S.FILLED)]


def _session() -> PaperBroker:
    paper = broker(participation="0.5", last_price=lambda _iid: D("100.00"))
    feed = Feed(paper)
    paper.submit(market(BUY, "30", client_order_id="a"), at(0))
    paper.submit(limit(BUY, "20", "99.00"), at(0))
    paper.submit(stop(BUY, "5", "101.50"), at(0))
    paper.submit(limit(SELL, "3", "101.00"), at(0))  # rejected: nothing held
    feed.bar(at(1), "100.00", "101.00", "98.50", "100.50", volume="40")
    feed.trade(at(1) + 30_000_000_000, "101.60", "100")
    feed.quote(at(2), "98.90", "99.00", "50", "50")
    return paper


def _record(paper: PaperBroker) -> list[tuple[str, str, list[OrderEvent]]]:
    return [(o.order_id, o.status, list(o.events)) for o in paper.orders.values()]


def test_same_orders_and_market_data_give_identical_fills_ids_and_events() -> None:
    first, second = _session(), _session()

    assert first.fills == second.fills
    assert _record(first) == _record(second)
    assert [f.fill_id for f in first.fills] == [f"F-{n}" for n in range(1, len(first.fills) + 1)]
    assert len(first.fills) >= 4
    assert first.account.ledger.entries == second.account.ledger.entries


def test_every_event_of_a_session_has_a_unique_id_and_an_ns_timestamp() -> None:
    paper = _session()

    events = [e for o in paper.orders.values() for e in o.events]
    ids = [e.event_id for e in events]

    assert len(ids) == len(set(ids))
    assert all(isinstance(e.ts_event, int) and e.ts_event >= at(0) for e in events)
    assert all(e.ts_init == e.ts_event for e in events)  # the paper venue learns of its events at once
