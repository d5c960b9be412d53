"""Matching through the indexes of :mod:`smart_trader.execution.resting` (resting limits, parked stops, day
expiries) fills exactly what visiting every working order on every event fills: the same events, in the same order,
the same account.

Random streams of orders of every type and time in force, cancels, trades, quotes and bars (well-formed, malformed,
and opening before orders were submitted, as another stream's bar may), restarts (the open orders restored into a new
broker), with and without a participation cap and an open-order limit, across UTC day boundaries, go through two
brokers, one indexing (bars through the indexes too: ``bar_scan_max=0``, or only above a handful of orders) and one
scanning every order (``index_resting=False``); every event they emit and the accounts they leave are compared.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from smart_trader.core.clock import NS_PER_DAY
from smart_trader.core.ids import IdGenerator
from smart_trader.execution.enums import OrderSide, OrderType, TimeInForce
from smart_trader.execution.limits import OrderLimits
from smart_trader.execution.paper_broker import LIMITS, STOPS, FillConfig, PaperBroker
from smart_trader.execution.resting import DayExpiries, RestingLimits, RestingStops
from smart_trader.portfolio.account import AccountType
from tests.execution.builders import ORCL, Feed, account, request, stop

TICK = Decimal("0.01")
HOUR = NS_PER_DAY // 24

prices = st.integers(9_990, 10_010).map(lambda n: str(n * TICK))  # 99.90 .. 100.10: prices cross often
order_prices = st.integers(9_975, 10_025).map(lambda n: str(n * TICK))  # wider: some orders stay working long
orders = st.tuples(
    st.just("order"),
    st.sampled_from(list(OrderSide)),
    st.sampled_from(list(OrderType)),
    st.sampled_from(list(TimeInForce)),
    st.integers(1, 30).map(str),
    order_prices,
    order_prices,
    st.booleans(),  # a stop-limit's limit on the far side of its stop (fills at the trigger) or the near side
)
events = st.one_of(
    orders,
    orders,
    st.tuples(st.just("trade"), prices, st.one_of(st.none(), st.integers(1, 40).map(str))),
    st.tuples(st.just("quote"), prices, st.integers(1, 20), st.integers(1, 40).map(str)),
    st.tuples(st.just("bar"), st.lists(prices, min_size=4, max_size=4)),
    # open, high, low, close as given: a malformed bar (open above its high...) must still match the same
    st.tuples(st.just("raw bar"), st.lists(prices, min_size=4, max_size=4)),
    # a bar that opened before the last orders were submitted (ms back), as a longer stream's bar does
    st.tuples(st.just("late bar"), st.lists(prices, min_size=4, max_size=4), st.integers(1, 180)),
    st.tuples(st.just("cancel"), st.integers(0, 200)),
    st.tuples(st.just("wait"), st.integers(1, 30)),  # hours: day orders expire at the UTC day's end
    st.tuples(st.just("restart")),  # the open orders restored into a new broker on the same account
)


def run(
    stream: list[tuple[Any, ...]],
    index_resting: bool,
    margin: bool,
    participation: str | None,
    bar_scan_max: int = 0,
    max_open: int | None = None,
    sizes: dict[str, int] | None = None,
) -> Any:
    """Feed ``stream`` to a broker; what it emitted, filled and left. ``sizes`` (when given) gets the largest number
    of resting limits, parked stops and dated day orders the broker's indexes held after any event."""
    kind = AccountType.MARGIN if margin else AccountType.CASH
    acct = account("200000", account_type=kind)
    cap = None if participation is None else Decimal(participation)
    ids = {prefix: IdGenerator(prefix).next for prefix in "OFE"}  # shared across restarts: ids stay unique

    def new_broker() -> PaperBroker:
        made = PaperBroker(
            acct,
            {ORCL.id: ORCL},
            FillConfig(participation=cap),
            ids=lambda prefix: ids[prefix],
            index_resting=index_resting,
            bar_scan_max=bar_scan_max,
            limits=OrderLimits(max_open_orders=max_open),
        )
        made.listeners.append(lambda order, event: emitted.append(repr(event)))
        return made

    emitted: list[str] = []
    fills: list[str] = []
    broker = new_broker()
    feed = Feed(broker)
    ts = NS_PER_DAY * 20_000
    floor = ts  # time of the last event that was not a submission: a late bar opens no earlier (order events
    # never go back in time), so it only skips the orders submitted since
    submitted: list[Any] = []
    for item in stream:
        ts += 1_000_000
        if item[0] not in ("order", "late bar", "wait", "restart"):
            floor = ts
        if item[0] == "order":
            _, side, type_, tif, qty, p1, p2, far = item
            lo, hi = sorted((Decimal(p1), Decimal(p2)))
            buy = side is OrderSide.BUY
            if type_ is OrderType.LIMIT:
                limit, stop_price = str(lo if buy else hi), None
            elif type_ is OrderType.STOP:
                limit, stop_price = None, str(hi if buy else lo)
            elif type_ is OrderType.STOP_LIMIT:  # the limit beyond the stop (far) or short of it
                stop_price = str(lo if buy != far else hi)
                limit = str(hi if buy != far else lo)
            else:
                limit = stop_price = None
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
        elif item[0] == "raw bar":
            feed.bar(ts, *item[1])
        elif item[0] == "late bar":
            path = [Decimal(x) for x in item[1]]
            feed.bar(max(floor, ts - item[2] * 1_000_000), str(path[0]), str(max(path)), str(min(path)), str(path[-1]))
        elif item[0] == "cancel" and submitted:
            order = submitted[item[1] % len(submitted)]
            if order.is_open:
                broker.cancel(order.order_id, ts)
        elif item[0] == "wait":
            ts += item[1] * HOUR
        elif item[0] == "restart":
            fills.extend(repr(f) for f in broker.fills)
            still_open = broker.open_orders()
            broker = new_broker()
            for order in still_open:
                broker.restore(order)
            feed = Feed(broker)
        if sizes is not None:
            index = broker._indexed.get(ORCL.id)
            if index is not None:
                for name, size in (("limits", len(index.limits)), ("stops", len(index.stops))):
                    sizes[name] = max(sizes.get(name, 0), size)
                sizes["days"] = max(sizes.get("days", 0), len(index.days))
    fills.extend(repr(f) for f in broker.fills)
    position = acct.position(ORCL.id)
    return (
        emitted,
        fills,
        acct.cash,
        None if position is None else (position.quantity, position.cost_basis, position.realized_pnl),
        [o.order_id for o in broker.open_orders()],
    )


@settings(max_examples=300, deadline=None)
@given(
    stream=st.lists(events, min_size=10, max_size=150),
    margin=st.booleans(),
    participation=st.sampled_from([None, "0.5", "1"]),
    bar_scan_max=st.sampled_from([0, 3, 8]),
    max_open=st.sampled_from([None, 5, 20]),
)
def test_indexed_matching_fills_what_a_full_scan_fills(
    stream: list[tuple[Any, ...]], margin: bool, participation: str | None, bar_scan_max: int, max_open: int | None
) -> None:
    indexed = run(stream, True, margin, participation, bar_scan_max, max_open)
    scanned = run(stream, False, margin, participation, bar_scan_max, max_open)
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


def test_a_price_triggers_only_the_stops_at_or_below_it_for_buys_and_above_it_for_sells() -> None:
    stops = RestingStops()
    for seq, (buy, stop_at) in enumerate([(True, 105), (False, 95), (True, 102), (False, 98), (True, 110)]):
        stops.add(seq, buy, stop_at, f"s{seq}")
    assert stops.triggered(low=99, high=101) == []  # no buy stopped at 101 or less, no sell at 99 or more
    assert stops.triggered(low=102, high=102) == ["s2"]  # a trade at 102 reaches the buy stop at 102
    assert stops.triggered(low=98, high=98) == ["s3"]  # and one at 98 the sell stop at 98
    assert stops.triggered(low=95, high=105) == ["s0", "s1", "s2", "s3"]  # a bar from 95 to 105
    stops.remove(0, True, 105)
    assert stops.triggered(low=95, high=105) == ["s1", "s2", "s3"] and len(stops) == 4
    try:
        stops.remove(0, True, 105)
    except KeyError:
        pass
    else:
        raise AssertionError("removed twice")


def test_a_new_day_reaches_the_day_orders_of_the_days_before_it() -> None:
    days = DayExpiries()
    for seq, day in enumerate([20_001, 20_000, 20_002, 20_000]):
        days.add(seq, day, f"d{seq}")
    assert days.due(20_000) == []
    assert days.due(20_001) == ["d1", "d3"]
    assert days.due(20_003) == ["d0", "d1", "d2", "d3"]
    days.remove(1, 20_000)
    assert days.due(20_001) == ["d3"] and len(days) == 3


def random_stream(seed: int, n: int) -> list[tuple[Any, ...]]:
    """``n`` events like the property test's, from a seeded generator (much longer streams)."""
    rng = random.Random(seed)

    def price() -> str:
        return str(rng.randint(9_990, 10_010) * TICK)

    def order_price() -> str:  # wider than the market's: some orders stay working a long time
        return str(rng.randint(9_960, 10_040) * TICK)

    stream: list[tuple[Any, ...]] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.45:
            side, type_, tif = rng.choice(list(OrderSide)), rng.choice(list(OrderType)), rng.choice(list(TimeInForce))
            far = rng.random() < 0.5
            stream.append(("order", side, type_, tif, str(rng.randint(1, 30)), order_price(), order_price(), far))
        elif roll < 0.72:
            stream.append(("trade", price(), rng.choice([None, str(rng.randint(1, 40))])))
        elif roll < 0.87:
            stream.append(("quote", price(), rng.randint(1, 20), str(rng.randint(1, 40))))
        elif roll < 0.91:
            stream.append(("bar", [price() for _ in range(4)]))
        elif roll < 0.92:
            stream.append(("raw bar", [price() for _ in range(4)]))
        elif roll < 0.93:
            stream.append(("late bar", [price() for _ in range(4)], rng.randint(1, 180)))
        elif roll < 0.975:
            stream.append(("cancel", rng.randint(0, 10_000)))
        elif roll < 0.998:
            stream.append(("wait", rng.randint(1, 30)))
        else:
            stream.append(("restart",))
    return stream


def test_a_long_random_stream_fills_the_same_either_way() -> None:
    for seed, margin, participation, bar_scan_max in [(1, True, None, 0), (2, False, "0.5", 8), (3, True, "1", 0)]:
        stream = random_stream(seed, 6_000)
        sizes: dict[str, int] = {}
        indexed = run(stream, True, margin, participation, bar_scan_max, sizes=sizes)
        assert len(indexed[1]) > 300  # the stream did fill orders, many of them indexed
        assert min(sizes.values()) > 5, sizes  # limits, stops and day orders were indexed
        assert indexed == run(stream, False, margin, participation, bar_scan_max)


def test_a_trade_far_from_two_thousand_parked_stops_visits_none_of_them() -> None:
    acct = account("10000000")
    paper = PaperBroker(acct, {ORCL.id: ORCL})
    feed = Feed(paper)
    t = NS_PER_DAY * 20_000
    for k in range(2_000):  # buy stops parked from 150.00 up, far above a market at 100
        paper.submit(stop(OrderSide.BUY, "1", str(Decimal(15_000 + k) * TICK), tif=TimeInForce.GTC), t + k)
    feed.trade(t + 3_000, "100.00")  # meets every stop once: from now on they are parked by price
    working = paper.working_list(ORCL.id)
    assert len(working) == 2_000 and all(w.where == STOPS and w.tries == 1 for w in working)

    for k in range(100):  # trades, quotes and bars far below the stops
        feed.trade(t + 4_000 + k, "100.00", "5")
        feed.quote(t + 4_000 + k, "99.99", "100.01", "5", "5")
        feed.bar(t + 4_000 + k, "100.00", "101.00", "99.00", "100.50")
    price = feed.px("100.00")
    assert paper._reached(ORCL.id, price, price, price, price, t // NS_PER_DAY) == []  # no candidate at all
    assert all(w.tries == 1 for w in working)  # none was visited (a visit counts a try)
    assert paper.fills == []

    feed.trade(t + 10_000, "150.01", "5")  # reaches the first two stops only
    assert [f.price for f in paper.fills] == [Decimal("150.01")] * 2
    assert sum(w.tries for w in working) == 1_998  # the rest, still parked, were not visited


def test_a_stop_limit_moves_from_the_stops_to_the_limits_when_it_triggers() -> None:
    paper = PaperBroker(account("100000"), {ORCL.id: ORCL})
    feed = Feed(paper)
    order = paper.submit(
        request(OrderSide.BUY, OrderType.STOP_LIMIT, "1", stop_price="101.00", limit_price="100.50"), 1
    )
    feed.trade(2, "100.00")
    (w,) = paper.working_list(ORCL.id)
    assert w.where == STOPS
    feed.trade(3, "101.00")  # triggers; 101.00 is above the limit: it rests as a limit
    assert order.triggered and w.where == LIMITS and paper.fills == []
    feed.trade(4, "100.50")
    assert order.status.value == "filled" and paper.working_list(ORCL.id) == []


def test_a_restored_day_order_is_indexed_only_once_its_day_is_known() -> None:
    """A partly filled day order restored after a restart has met events (it is no longer a taker) but not yet the
    event that fixes its day in this broker; a bar that opened before it was submitted skips it. Indexed then, it
    would never expire."""

    def after_restart(index_resting: bool) -> list[str]:
        acct = account("100000")
        first = PaperBroker(acct, {ORCL.id: ORCL}, FillConfig(participation=Decimal("0.5")))
        t = NS_PER_DAY * 20_000 + HOUR
        order = first.submit(
            request(OrderSide.BUY, OrderType.LIMIT, "10", limit_price="100.00", tif=TimeInForce.DAY), t
        )
        Feed(first).trade(t + 1, "100.00", "10")  # fills 5 of 10
        assert order.filled_qty == 5
        second = PaperBroker(acct, {ORCL.id: ORCL}, index_resting=index_resting, bar_scan_max=0)
        emitted: list[str] = []
        second.listeners.append(lambda o, event: emitted.append(type(event).__name__))
        second.restore(order)
        feed = Feed(second)
        feed.bar(t - HOUR, "101.00", "101.00", "101.00", "101.00")  # opened before the order: skipped
        feed.trade(t + NS_PER_DAY, "101.00")  # the first event it meets here: its day
        feed.trade(t + 2 * NS_PER_DAY, "101.00")  # the next UTC day: it expires
        return emitted

    assert after_restart(True) == after_restart(False) == ["OrderExpired"]
