"""Matching through the price-sorted resting limits (:mod:`smart_trader.execution.resting`) fills exactly what
visiting every working order on every event fills: the same events, in the same order, the same account.

Random streams of orders of every type and time in force, cancels, trades, quotes and bars (with and without a
participation cap, across UTC day boundaries) go through two brokers, one indexing resting limits and one
scanning every order (``index_resting=False``); every event they emit and the accounts they leave are compared.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from smart_trader.core.clock import NS_PER_DAY
from smart_trader.execution.enums import OrderSide, OrderType, TimeInForce
from smart_trader.execution.paper_broker import FillConfig, PaperBroker
from smart_trader.execution.resting import RestingLimits
from smart_trader.portfolio.account import AccountType
from tests.execution.builders import ORCL, Feed, account, request

TICK = Decimal("0.01")
HOUR = NS_PER_DAY // 24

prices = st.integers(9_990, 10_010).map(lambda n: str(n * TICK))  # 99.90 .. 100.10: prices cross often
orders = st.tuples(
    st.just("order"),
    st.sampled_from(list(OrderSide)),
    st.sampled_from(list(OrderType)),
    st.sampled_from(list(TimeInForce)),
    st.integers(1, 30).map(str),
    prices,
    prices,
)
events = st.one_of(
    orders,
    orders,
    st.tuples(st.just("trade"), prices, st.one_of(st.none(), st.integers(1, 40).map(str))),
    st.tuples(st.just("quote"), prices, st.integers(1, 20), st.integers(1, 40).map(str)),
    st.tuples(st.just("bar"), st.lists(prices, min_size=4, max_size=4)),  # bars visit every order, resting or not
    st.tuples(st.just("cancel"), st.integers(0, 200)),
    st.tuples(st.just("wait"), st.integers(1, 30)),  # hours: day orders expire at the UTC day's end
)


def run(stream: list[tuple[Any, ...]], index_resting: bool, margin: bool, participation: str | None) -> Any:
    kind = AccountType.MARGIN if margin else AccountType.CASH
    acct = account("200000", account_type=kind)
    cap = None if participation is None else Decimal(participation)
    broker = PaperBroker(acct, {ORCL.id: ORCL}, FillConfig(participation=cap), index_resting=index_resting)
    emitted: list[str] = []
    broker.listeners.append(lambda order, event: emitted.append(repr(event)))
    feed = Feed(broker)
    ts = NS_PER_DAY * 20_000
    submitted: list[Any] = []
    for item in stream:
        ts += 1_000_000
        if item[0] == "order":
            _, side, type_, tif, qty, p1, p2 = item
            lo, hi = sorted((Decimal(p1), Decimal(p2)))
            limit = (
                str(lo if side is OrderSide.BUY else hi) if type_ in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
            )
            stop_price = (
                str(hi if side is OrderSide.BUY else lo) if type_ in (OrderType.STOP, OrderType.STOP_LIMIT) else None
            )
            submitted.append(
                broker.submit(request(side, type_, qty, limit_price=limit, stop_price=stop_price, tif=tif), ts)
            )
        elif item[0] == "trade":
            feed.trade(ts, item[1], item[2])
        elif item[0] == "quote":
            bid = Decimal(item[1])
            feed.quote(ts, str(bid), str(bid + item[2] * TICK), item[3], item[3])
        elif item[0] == "bar":
            path = [Decimal(x) for x in item[1]]
            feed.bar(ts, str(path[0]), str(max(path)), str(min(path)), str(path[-1]))
        elif item[0] == "cancel" and submitted:
            order = submitted[item[1] % len(submitted)]
            if order.is_open:
                broker.cancel(order.order_id, ts)
        elif item[0] == "wait":
            ts += item[1] * HOUR
    position = acct.position(ORCL.id)
    return (
        emitted,
        [repr(f) for f in broker.fills],
        acct.cash,
        None if position is None else (position.quantity, position.cost_basis, position.realized_pnl),
        [o.order_id for o in broker.open_orders()],
    )


@settings(max_examples=300, deadline=None)
@given(
    stream=st.lists(events, min_size=10, max_size=150),
    margin=st.booleans(),
    participation=st.sampled_from([None, "0.5", "1"]),
)
def test_indexed_matching_fills_what_a_full_scan_fills(
    stream: list[tuple[Any, ...]], margin: bool, participation: str | None
) -> None:
    indexed = run(stream, True, margin, participation)
    scanned = run(stream, False, margin, participation)
    assert indexed == scanned


def test_a_price_crosses_only_the_limits_at_or_through_it_in_arrival_order() -> None:
    book = RestingLimits()
    for seq, (buy, limit) in enumerate([(True, 100), (False, 105), (True, 102), (False, 103), (True, 99)]):
        book.add(seq, buy, limit, f"o{seq}")
    assert book.crossing(bid=102, ask=103) == []  # no buy limited at 103 or more, no sell at 102 or less
    assert book.crossing(bid=101, ask=101) == ["o2"]  # the buy at 102 is crossed by a trade at 101
    assert book.crossing(bid=100, ask=100) == ["o0", "o2"]  # buys at or above 100
    assert book.crossing(bid=104, ask=104) == ["o3"]  # sells at or below 104
    assert book.crossing(bid=105, ask=99) == ["o0", "o1", "o2", "o3", "o4"]
    book.remove(2, True, 102)
    assert book.crossing(bid=100, ask=100) == ["o0"] and len(book) == 4


def random_stream(seed: int, n: int) -> list[tuple[Any, ...]]:
    """``n`` events like the property test's, from a seeded generator (much longer streams)."""
    rng = random.Random(seed)

    def price() -> str:
        return str(rng.randint(9_990, 10_010) * TICK)

    stream: list[tuple[Any, ...]] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.45:
            side, type_, tif = rng.choice(list(OrderSide)), rng.choice(list(OrderType)), rng.choice(list(TimeInForce))
            stream.append(("order", side, type_, tif, str(rng.randint(1, 30)), price(), price()))
        elif roll < 0.75:
            stream.append(("trade", price(), rng.choice([None, str(rng.randint(1, 40))])))
        elif roll < 0.9:
            stream.append(("quote", price(), rng.randint(1, 20), str(rng.randint(1, 40))))
        elif roll < 0.93:
            stream.append(("bar", [price() for _ in range(4)]))
        elif roll < 0.98:
            stream.append(("cancel", rng.randint(0, 10_000)))
        else:
            stream.append(("wait", rng.randint(1, 30)))
    return stream


def test_a_long_random_stream_fills_the_same_either_way() -> None:
    for seed, margin, participation in [(1, True, None), (2, False, "0.5"), (3, True, "1")]:
        stream = random_stream(seed, 6_000)
        indexed = run(stream, True, margin, participation)
        assert len(indexed[1]) > 300  # the stream did fill orders, many of them resting limits
        assert indexed == run(stream, False, margin, participation)
