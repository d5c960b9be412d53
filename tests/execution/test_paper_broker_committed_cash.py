"""The broker keeps the cash committed to working buys incrementally (accept, fill, partial fill, cancel, expire,
restore); after every step it must equal the sum recomputed from scratch over the working orders."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from smart_trader.core.errors import InvalidInputError
from smart_trader.core.ids import OrderId
from smart_trader.execution.enums import OrderType, TimeInForce
from smart_trader.execution.orders import Order
from smart_trader.execution.paper_broker import PaperBroker
from tests.execution.builders import BUY, ORCL, SELL, at, broker, give_position, request


def recomputed(b: PaperBroker) -> Decimal:
    """Σ leaves × (limit or stop) × multiplier over working buys that have such a price."""
    total = Decimal(0)
    for orders in b._open.values():
        for w in orders:
            ref = w.order.request.limit_price or w.order.request.stop_price
            if w.buy and ref is not None and w.order.leaves_qty is not None:
                total += w.order.leaves_qty * ref * w.instrument.multiplier
    return total


def test_committed_cash_follows_every_order_event() -> None:
    rng = random.Random(7)
    b = broker(cash="10000000", participation="0.5")
    give_position(b.account, ORCL, "1000", "100.00")
    for step in range(600):
        t = step + 1
        action = rng.random()
        if action < 0.45:
            side = BUY if rng.random() < 0.7 else SELL
            kind = rng.choice([OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT, OrderType.MARKET])
            px = f"{rng.randint(9000, 11000) / 100:.2f}"
            tif = rng.choice([TimeInForce.GTC, TimeInForce.DAY, TimeInForce.IOC])
            b.submit(
                request(
                    side,
                    kind,
                    str(rng.randint(1, 20)),
                    limit_price=px if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
                    stop_price=px if kind in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
                    tif=tif,
                ),
                at(t),
            )
        elif action < 0.85:
            price = rng.randint(9000, 11000)
            b.on_trade(ORCL.id, at(t), price, rng.randint(1, 30))
        else:
            working = b.open_orders()
            if working:
                b.cancel(rng.choice(working).order_id, at(t))
        assert b._committed == recomputed(b), f"step {step}"
    assert any(o.filled_qty for o in b.orders.values()) and any(o.is_open for o in b.orders.values())


def test_restored_orders_commit_their_remaining_cash() -> None:
    b = broker(cash="100000")
    order = Order(OrderId("O-9"), request(BUY, OrderType.LIMIT, "10", limit_price="50.00"), ts_init=at(0))
    order.status = order.status.ACCEPTED
    order.filled_qty = Decimal(4)
    order.filled_cost = Decimal(200)
    b.restore(order)
    assert b._committed == Decimal("300.00")  # 6 left × 50
    b.cancel(OrderId("O-9"), at(1))
    assert b._committed == 0


def test_forget_drops_closed_orders_only() -> None:
    b = broker(cash="100000")
    working = b.submit(request(BUY, OrderType.LIMIT, "1", limit_price="50.00", client_order_id="keep"), at(0))
    done = b.submit(request(BUY, OrderType.LIMIT, "1", limit_price="60.00", client_order_id="gone"), at(0))
    b.cancel(done.order_id, at(1))
    b.forget(done.order_id)
    assert done.order_id not in b.orders
    again = b.submit(request(BUY, OrderType.LIMIT, "1", limit_price="60.00", client_order_id="gone"), at(2))
    assert again.order_id != done.order_id  # its client order id was forgotten with it
    with pytest.raises(InvalidInputError, match="only closed orders"):
        b.forget(working.order_id)
    assert working.order_id in b.orders
