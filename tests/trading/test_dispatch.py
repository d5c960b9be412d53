"""MarketDispatcher's exposure index: a session is valued on every price at which one of its monitors would see its
equity leave the band, exactly as if it were valued on every price, and on no other price far from an edge.

The reference is computed without the dispatcher: the equity at each price is cash + quantity × price × multiplier,
and a copy of the monitor is fed every one of them.
"""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smart_trader.core.instruments import Instrument
from smart_trader.trading.dispatch import MarketDispatcher
from smart_trader.trading.session import AccountSession
from tests.execution.builders import BTC, ORCL, future
from tests.trading.builders import D, Marks, RecordingMonitor, hold, margin_account, session

ES = future()
T = 1_700_000_000_000_000_000
CASH = D(1_000_000)


class AnchorBand:
    """Quiet while the equity stays strictly between ``anchor - below`` and ``anchor + above`` (``None``: that side
    open); a valuation on or past an edge is recorded and becomes the new anchor."""

    def __init__(self, anchor: Decimal, below: Decimal | None, above: Decimal | None) -> None:
        self.anchor = anchor
        self.below = below
        self.above = above
        self.crossings: list[tuple[int, Decimal]] = []
        self.received = 0

    def band(self) -> tuple[Decimal | None, Decimal | None]:
        low = None if self.below is None else self.anchor - self.below
        high = None if self.above is None else self.anchor + self.above
        return low, high

    def on_order_event(self, session: object, order: object, event: object) -> None:
        return None

    def on_valuation(self, session: object, ts: int, equity: Decimal) -> None:
        self.received += 1
        low, high = self.band()
        if (low is not None and equity <= low) or (high is not None and equity >= high):
            self.crossings.append((ts, equity))
            self.anchor = equity

    def equity_band(self, session: object) -> tuple[Decimal | None, Decimal | None]:
        return self.band()


class TrailingPeak(AnchorBand):
    """A trailing drawdown guard: quiet strictly between ``peak - depth`` and the peak; a valuation at or past either
    is recorded, and a new high raises the peak."""

    def __init__(self, peak: Decimal, depth: Decimal) -> None:
        super().__init__(peak, depth, D(0))

    def on_valuation(self, session: object, ts: int, equity: Decimal) -> None:
        self.received += 1
        low, high = self.band()
        assert low is not None and high is not None
        if equity <= low or equity >= high:
            self.crossings.append((ts, equity))
            self.anchor = max(self.anchor, equity)


def make_monitor(kind: str, anchor: Decimal, below: Decimal | None, above: Decimal | None) -> AnchorBand:
    if kind == "trailing":
        return TrailingPeak(anchor, below if below is not None else D(1))
    return AnchorBand(anchor, below, above)


# -- the property -------------------------------------------------------------------------------------------------
INSTRUMENTS = [BTC, ES, ORCL]
START_TICKS = {BTC.id: 2_000_000, ES.id: 20_000, ORCL.id: 10_000}  # 20,000.00 USDT, 5,000.00 USD, 100.00 USD


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    inst: Instrument = draw(st.sampled_from(INSTRUMENTS))
    lots = draw(st.integers(1, 10**6 if inst is BTC else 50))
    quantity = lots * inst.lot_size * draw(st.sampled_from([1, -1]))
    per_tick = abs(quantity) * inst.tick_size * inst.multiplier  # equity change per tick of price

    def width() -> Decimal | None:
        if draw(st.integers(0, 5)) == 0:
            return None
        ticks = draw(st.integers(0, 60))
        # on the tick grid exactly (a price lands on the edge) or a fraction of a tick beyond
        fraction = draw(st.sampled_from([D(0), D(0), D("0.5"), D("0.001"), D("0.999"), D(1) / 3]))
        return (ticks + fraction) * per_tick

    kind = draw(st.sampled_from(["anchor", "trailing"]))
    below, above = width(), width()
    start = START_TICKS[inst.id]
    n = draw(st.integers(1, 150))
    steps = draw(st.lists(st.integers(-12, 12), min_size=n, max_size=n))
    ticks, path = start, []
    for step in steps:
        ticks = max(1, ticks + step)
        path.append(ticks * inst.tick_size)
    return {
        "instrument": inst,
        "quantity": quantity,
        "kind": kind,
        "below": below,
        "above": above,
        "start": start * inst.tick_size,
        "path": path,
        "mark_first": draw(st.booleans()),
    }


@settings(max_examples=400, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_a_banded_session_sees_every_crossing_a_session_valued_on_every_price_sees(sc: dict[str, object]) -> None:
    inst: Instrument = sc["instrument"]  # type: ignore[assignment]
    quantity: Decimal = sc["quantity"]  # type: ignore[assignment]
    start: Decimal = sc["start"]  # type: ignore[assignment]
    path: list[Decimal] = sc["path"]  # type: ignore[assignment]
    kind: str = sc["kind"]  # type: ignore[assignment]
    below: Decimal | None = sc["below"]  # type: ignore[assignment]
    above: Decimal | None = sc["above"]  # type: ignore[assignment]

    cash = CASH - quantity * start * inst.multiplier  # after the opening fill at the start price

    def equity(price: Decimal) -> Decimal:
        return cash + quantity * price * inst.multiplier

    marks = Marks()
    marks.prices[inst.id] = start
    acct = margin_account(str(CASH), marks, currency=inst.quote_currency)
    hold(acct, inst, quantity, start)
    assert acct.equity == equity(start)
    banded = make_monitor(kind, equity(start), below, above)
    reference = make_monitor(kind, equity(start), below, above)
    s = session(acct, inst, monitors=[banded])
    dispatcher = MarketDispatcher({inst.id: inst}.__getitem__, marks)
    dispatcher.watch(s)

    for k, price in enumerate(path):
        ts = T + k
        if sc["mark_first"]:  # a trade: the mark is the price itself
            marks.prices[inst.id] = price
            dispatcher.on_price(inst.id, ts, price)
        else:  # a bar's path: the mark is still the last close while its points are valued
            dispatcher.on_price(inst.id, ts, price)
            marks.prices[inst.id] = price
        reference.on_valuation(None, ts, equity(price))

    assert banded.crossings == reference.crossings
    assert banded.received <= len(path)


def test_the_property_is_not_vacuous() -> None:
    """The same comparison on a fixed set of seeded paths, counting crossings and skipped prices: both are many."""
    rng = random.Random(20240304)
    total_crossings = total_prices = total_received = 0
    for _ in range(60):
        inst = rng.choice(INSTRUMENTS)
        quantity = rng.randint(1, 40) * inst.lot_size * rng.choice([1, -1])
        per_tick = abs(quantity) * inst.tick_size * inst.multiplier
        start = START_TICKS[inst.id] * inst.tick_size
        cash = CASH - quantity * start * inst.multiplier
        marks = Marks()
        marks.prices[inst.id] = start
        acct = margin_account(str(CASH), marks, currency=inst.quote_currency)
        hold(acct, inst, quantity, start)
        e0 = cash + quantity * start * inst.multiplier
        below, above = rng.randint(5, 30) * per_tick, rng.randint(5, 30) * per_tick
        kind = rng.choice(["anchor", "trailing"])
        banded, reference = make_monitor(kind, e0, below, above), make_monitor(kind, e0, below, above)
        s = session(acct, inst, monitors=[banded])
        dispatcher = MarketDispatcher({inst.id: inst}.__getitem__, marks)
        dispatcher.watch(s)
        ticks = START_TICKS[inst.id]
        for k in range(300):
            ticks += rng.randint(-3, 3)
            price = ticks * inst.tick_size
            marks.prices[inst.id] = price
            dispatcher.on_price(inst.id, T + k, price)
            reference.on_valuation(None, T + k, cash + quantity * price * inst.multiplier)
        assert banded.crossings == reference.crossings
        total_crossings += len(reference.crossings)
        total_prices += 300
        total_received += banded.received
    assert total_crossings > 500
    # edges on the tick grid: the banded monitor is valued exactly at its crossings, on no other price
    assert total_received == total_crossings
    assert total_received < total_prices / 3


# -- several sessions on one instrument ---------------------------------------------------------------------------
def test_only_the_sessions_whose_band_a_price_leaves_are_visited() -> None:
    rng = random.Random(7)
    inst = ES
    marks = Marks()
    start = D("5000.00")
    marks.prices[inst.id] = start
    dispatcher = MarketDispatcher({inst.id: inst}.__getitem__, marks)
    book: list[tuple[AccountSession, RecordingMonitor, Decimal, Decimal]] = []  # session, monitor, qty, cash
    for k in range(60):
        qty = D(rng.randint(1, 5) * rng.choice([1, -1]))
        acct = margin_account(str(CASH), marks, name=str(k))
        hold(acct, inst, qty, start)
        cash = CASH - qty * start * inst.multiplier
        e0 = cash + qty * start * inst.multiplier
        per_tick = abs(qty) * inst.tick_size * inst.multiplier
        low = e0 - rng.randint(1, 80) * per_tick if rng.random() < 0.9 else None
        high = e0 + rng.randint(1, 80) * per_tick if rng.random() < 0.9 else None
        monitor = RecordingMonitor(band=(low, high))
        s = session(acct, inst, monitors=[monitor])
        dispatcher.watch(s)
        book.append((s, monitor, qty, cash))
    # a session with no monitors holding the instrument is never indexed nor visited
    bare_acct = margin_account(str(CASH), marks, name="bare")
    hold(bare_acct, inst, D(3), start)
    bare = session(bare_acct, inst)
    dispatcher.watch(bare)
    assert bare.on_stale is None
    assert set(dispatcher.exposed_sessions(inst.id)) == {s for s, *_ in book}

    ticks = 20_000
    visits_total = 0
    for step in range(400):
        ticks += rng.randint(-8, 8)
        price = ticks * inst.tick_size
        marks.prices[inst.id] = price
        before = [len(m.valuations) for _, m, _, _ in book]
        dispatcher.on_price(inst.id, T + step, price)
        visited = {k for k, (_, m, _, _) in enumerate(book) if len(m.valuations) > before[k]}
        expected = set()
        for k, (_, m, qty, cash) in enumerate(book):
            e = cash + qty * price * inst.multiplier
            low, high = m.band
            if (low is not None and e <= low) or (high is not None and e >= high):
                expected.add(k)
        assert visited == expected, f"step {step} price {price}"
        for k in visited:
            m = book[k][1]
            assert len(m.valuations) == before[k] + 1  # once per event, whichever edge
            assert m.valuations[-1] == (T + step, book[k][3] + book[k][2] * price * inst.multiplier)
        visits_total += len(visited)
    assert 0 < visits_total < 400 * len(book) / 2


def test_a_session_holding_two_instruments_is_valued_on_every_move_of_each() -> None:
    marks = Marks()
    marks.prices[ES.id] = D("5000.00")
    marks.prices[ORCL.id] = D("100.00")
    acct = margin_account(str(CASH), marks)
    hold(acct, ES, D(2), D("5000.00"), name="A")
    hold(acct, ORCL, D(-30), D("100.00"), name="B")
    cash = CASH - 2 * D("5000.00") * 50 + 30 * D("100.00")
    monitor = RecordingMonitor(band=(D(0), D(10**9)))  # a band no single price could leave
    s = session(acct, ES, ORCL, monitors=[monitor])
    dispatcher = MarketDispatcher({ES.id: ES, ORCL.id: ORCL}.__getitem__, marks)
    dispatcher.watch(s)
    expected: list[tuple[int, Decimal]] = []
    moves = [(ES, "5001.25"), (ORCL, "99.50"), (ORCL, "99.50"), (ES, "4990.00"), (ORCL, "101.01"), (ES, "5000.00")]
    for k, (inst, text) in enumerate(moves):
        price = D(text)
        dispatcher.on_price(inst.id, T + k, price)  # valued at the price, the other instrument at its mark
        marks.prices[inst.id] = price
        expected.append((T + k, cash + 2 * marks.prices[ES.id] * 50 - 30 * marks.prices[ORCL.id]))
    assert monitor.valuations == expected


def test_a_session_without_monitors_is_never_indexed() -> None:
    marks = Marks()
    marks.prices[ES.id] = D("5000.00")
    acct = margin_account(str(CASH), marks)
    hold(acct, ES, D(1), D("5000.00"))
    s = session(acct, ES)
    dispatcher = MarketDispatcher({ES.id: ES}.__getitem__, marks)
    dispatcher.watch(s)
    dispatcher.reindex(s)
    assert dispatcher.exposed_sessions(ES.id) == []
    assert ES.id not in dispatcher.exposed or not dispatcher.exposed[ES.id]
    dispatcher.on_price(ES.id, T, D("1.00"))  # nothing to do, nothing raised


def test_a_forgotten_session_is_no_longer_visited() -> None:
    marks = Marks()
    marks.prices[ES.id] = D("5000.00")
    acct = margin_account(str(CASH), marks)
    hold(acct, ES, D(1), D("5000.00"))
    monitor = RecordingMonitor(band=(CASH - 1, CASH + 1))
    s = session(acct, ES, monitors=[monitor])
    dispatcher = MarketDispatcher({ES.id: ES}.__getitem__, marks)
    dispatcher.watch(s)
    dispatcher.on_price(ES.id, T, D("4999.75"))  # -12.50: leaves the band
    assert len(monitor.valuations) == 1
    dispatcher.forget(s)
    dispatcher.on_price(ES.id, T + 1, D("4000.00"))
    assert len(monitor.valuations) == 1
    assert dispatcher.exposed_sessions(ES.id) == []
