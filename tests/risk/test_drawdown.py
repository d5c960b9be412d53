"""High-water mark and drawdown (``risk/drawdown.py``), alone and as a monitor of a real account session."""

from __future__ import annotations

from decimal import Decimal

from smart_trader.core.clock import MarketClock
from smart_trader.core.ids import InstrumentId
from smart_trader.execution.paper_broker import PaperBroker
from smart_trader.portfolio import store
from smart_trader.risk.drawdown import HighWaterMark, drawdown_fraction, max_drawdown
from smart_trader.trading.session import AccountSession
from tests.execution.builders import BUY, ORCL, Feed, account, at, market
from tests.risk.kit import session

D = Decimal


def test_the_peak_follows_new_highs_and_the_drawdown_is_measured_from_it() -> None:
    hwm = HighWaterMark()
    for k, equity in enumerate(("1000", "1100", "990", "1050", "1200", "1140")):
        hwm.update(at(k), D(equity))

    assert hwm.peak == D(1200) and hwm.equity == D(1140) and hwm.ts == at(5)
    assert hwm.drawdown == D(60)
    assert hwm.drawdown_fraction == D("0.05")
    assert hwm.max_drawdown == D(110)  # 1100 → 990


def test_a_restored_peak_counts_from_the_start() -> None:
    hwm = HighWaterMark(peak=D(2000))
    hwm.update(at(0), D(1500))
    assert (hwm.peak, hwm.drawdown, hwm.max_drawdown) == (D(2000), D(500), D(500))


def test_the_fraction_is_the_stores_and_zero_at_a_peak_or_without_a_positive_one() -> None:
    for equity, peak in (("950", "1000"), ("1", "3"), ("1000", "1000"), ("1200", "1000"), ("-5", "0")):
        assert drawdown_fraction(D(equity), D(peak)) == store.drawdown(D(equity), D(peak))
    assert drawdown_fraction(D(1), D(3)) == D("0.666666666667")


def test_max_drawdown_of_a_series() -> None:
    assert max_drawdown([D(v) for v in (100, 120, 90, 130, 100, 125)]) == D(30)
    assert max_drawdown([]) == 0


def test_the_equity_band_asks_only_for_a_new_peak_unless_the_max_drawdown_must_be_exact() -> None:
    plain, exact = HighWaterMark(), HighWaterMark(exact_max_drawdown=True)
    s = session()
    assert plain.equity_band(s) == (None, None)
    for hwm in (plain, exact):
        hwm.update(at(0), D(1000))
        hwm.update(at(1), D(900))
    assert plain.equity_band(s) == (None, D(1000))
    assert exact.equity_band(s) == (D(900), D(1000))


def test_as_a_monitor_it_sees_the_sessions_valuations_at_the_marks() -> None:
    last: dict[InstrumentId, Decimal] = {}
    broker = PaperBroker(account("10000"), {ORCL.id: ORCL}, last_price=last.get)
    broker.account.mark_provider = last.get
    hwm = HighWaterMark()
    s = AccountSession(broker.account, broker, MarketClock(), monitors=[hwm])
    s.value(at(0))
    s.submit(market(BUY, "10"), at(0))
    Feed(broker).trade(at(1), "100.00")  # filled: 10 ORCL at 100
    for k, price in enumerate(("110.00", "95.00", "105.00"), start=2):
        last[ORCL.id] = D(price)
        s.value(at(k))

    assert hwm.peak == D(10100)  # 9000 cash + 10 × 110
    assert hwm.equity == D(10050) and hwm.drawdown == D(50)
    assert hwm.max_drawdown == D(150)  # 10100 → 9950
