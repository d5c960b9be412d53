"""Risk on the runtime's sessions (``live/accounts.py``), driven directly as in ``test_runtime.py``: every session gets
its account's risk limits as one check after the runtime factory's own checks and a high-water mark monitor seeded
with the stored equity peak; a risk manager's new limits are swapped into that check before the account's next order;
the stored ``equity_peak`` follows the monitor's exact peak; the VaR and drawdown aggregates come from the daily
closes of the stored snapshots, then from the market clock's day changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry

from smart_trader.core.clock import NS_PER_DAY
from smart_trader.execution.limits import OrderLimits
from smart_trader.execution.orders import OrderRequest
from smart_trader.live.runtime import TradingRuntime
from smart_trader.portfolio import store as account_store
from smart_trader.portfolio.account import Account
from smart_trader.risk import store as risk_store
from smart_trader.risk.aggregates import RiskGauges
from smart_trader.risk.checks import RiskChecks
from smart_trader.risk.drawdown import HighWaterMark
from smart_trader.risk.var import historical_var, simple_returns
from smart_trader.trading.session import AccountSession, SessionFactory
from tests.live.test_runtime import BTC, T0, World, run, trade
from tests.live.test_runtime import world as world  # the fixture, used by name

D = Decimal


@dataclass
class Spy:
    """A pre-trade check standing for a challenge's: records what it saw, denies nothing."""

    seen: list[str] = field(default_factory=list)

    def check(self, request: OrderRequest, session: AccountSession, ts: int) -> str | None:
        self.seen.append(str(request.quantity))
        return None


def runtime(world: World, spy: Spy | None = None, defaults: OrderLimits | None = None) -> TradingRuntime:
    def checks(account: Account) -> list[Spy]:
        return [] if spy is None else [spy]

    return TradingRuntime(
        world.engine,
        world.writer,
        lambda _iid: BTC,
        lambda topic, message: None,
        now_ns=world.now_ns,
        default_limits=defaults,
        sessions=SessionFactory(checks=checks),
    )


@pytest.fixture
def spy() -> Spy:
    return Spy()


def test_every_session_gets_the_risk_checks_after_its_own_and_a_seeded_high_water_mark(world: World, spy: Spy) -> None:
    world.place(qty="0.01", limit="30000.00")

    async def scenario() -> TradingRuntime:
        rt = runtime(world, spy, OrderLimits(5, 3))
        await rt.take_orders()
        return rt

    book = run(scenario()).books[world.account_id]
    assert book.session.checks == (spy, book.risk) and isinstance(book.risk, RiskChecks)
    assert book.risk.limits.max_open_orders == 5 and book.risk.limits.max_orders_per_second == 3
    assert book.broker.limits == OrderLimits()  # the broker checks no limit of its own: each is enforced once
    assert book.high_water in book.session.monitors and isinstance(book.high_water, HighWaterMark)
    assert book.high_water.peak == D(100_000)  # the stored equity peak of the new account
    assert spy.seen == ["0.01"]


def test_new_limits_are_swapped_into_the_session_before_the_next_order(world: World, spy: Spy) -> None:
    world.place(qty="0.01", limit="30000.00")

    async def scenario() -> tuple[TradingRuntime, RiskChecks]:
        rt = runtime(world, spy)
        await rt.take_orders()
        rt.on_event(trade("40000.00", 1))
        before = rt.books[world.account_id].risk
        with world.engine.begin() as conn:
            risk_store.set_limits(conn, world.account_id, None, None, "risk-1", max_order_quantity=D("0.005"))
        await rt.limits_changed(world.account_id)
        world.place(qty="0.01", limit="30000.00")
        world.place(qty="0.005", limit="30000.00")
        rt.orders_waiting()
        assert await rt.take_orders() == 2
        await rt.flush()
        return rt, before

    rt, before = run(scenario())
    book = rt.books[world.account_id]
    assert book.risk is before and book.session.checks == (spy, before)  # in place: the other checks stay
    assert book.risk.limits.max_order_quantity == D("0.005")
    [rejected] = world.events("order.rejected")
    assert rejected["order"]["reason"] == "order quantity 0.01 exceeds the limit 0.005 (risk limit max_order_quantity)"
    assert spy.seen == ["0.01", "0.01", "0.005"]  # the risk checks run after the factory's


def test_the_stored_peak_is_the_high_water_marks_exact_high(world: World) -> None:
    world.place(qty="0.01")

    async def scenario() -> TradingRuntime:
        rt = runtime(world)
        await rt.take_orders()
        rt.on_event(trade("40000.00", 1))  # fills: cash 99,600, equity 100,000
        rt.on_event(trade("41000.00", 2))  # a new high: 100,010
        rt.on_event(trade("40500.00", 3))  # back to 100,005
        await rt.flush(snapshot=True)  # the snapshot sees 100,005 only
        return rt

    rt = run(scenario())
    assert rt.books[world.account_id].high_water.peak == D("100010.00")
    with world.engine.connect() as conn:
        account = account_store.get_account(conn, world.account_id)
        [snapshot] = account_store.equity_history(conn, world.account_id, None, None, 10)
    assert account is not None and account.equity_peak == D("100010.00")
    assert snapshot.equity == D("100005.00") and snapshot.drawdown == ((D(5) / D("100010.00")).quantize(D("1e-12")))


def samples(registry: CollectorRegistry, name: str) -> dict[str, float]:
    return {
        s.labels.get("stat", "rank " + s.labels.get("rank", "")): s.value
        for m in registry.collect()
        for s in m.samples
        if s.name == name
    }


def test_var_and_drawdown_aggregates_from_stored_daily_closes_then_the_clocks_days(world: World) -> None:
    day0 = T0 // NS_PER_DAY
    closes = [D(100_000) + D(1_000) * ((d * 7) % 11 - 5) for d in range(30)]  # 30 past days, 29 returns
    with world.engine.begin() as conn:
        account_store.insert_snapshots(
            conn,
            [
                {
                    "account_id": world.account_id,
                    "ts": (day0 - 30 + d) * NS_PER_DAY + h * 3_600 * 10**9,
                    "cash": e,
                    "equity": e + h,
                    "unrealized_pnl": D(0),
                    "drawdown": D(0),
                }
                for d, e in enumerate(closes)
                for h in (0, 23)  # two snapshots a day: the later is the close
            ],
        )
    day_closes = [e + 23 for e in closes]
    registry = CollectorRegistry()
    gauges = RiskGauges(registry, top_n=2)
    world.place(qty="0.01")

    async def scenario() -> TradingRuntime:
        rt = runtime(world)
        await rt.take_orders()
        rt.on_event(trade("40000.00", 1))  # fills: cash 99,600
        rt.on_event(trade("39000.00", 2))  # equity 99,990, 10 below the stored peak
        await rt.accounts.publish_risk(gauges)
        first = samples(registry, "portfolio_var_95")
        expected = historical_var(simple_returns(day_closes), D(1))
        assert first == {s: pytest.approx(float(expected), abs=1e-15) for s in ("max", "mean", "p50", "p95")}
        # drawdown from the high-water mark, seeded with the account row's equity_peak (100,000), not the snapshots'
        dd = samples(registry, "portfolio_drawdown")["max"]
        assert dd == pytest.approx(float((D(10) / D(100_000)).quantize(D("1e-12"))), abs=1e-15)
        # the next UTC day: today's last equity (99,990) becomes a close, and the VaR is computed again
        rt.on_event(trade("39000.00", 86_400))
        await rt.accounts.publish_risk(gauges)
        expected = historical_var(simple_returns([*day_closes, D("99990.00")]), D(1))
        assert samples(registry, "portfolio_var_95")["max"] == pytest.approx(float(expected), abs=1e-15)
        assert set(samples(registry, "portfolio_var_95_top")) == {"rank 1"}
        return rt

    run(scenario())
