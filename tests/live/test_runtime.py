"""The trading runtime driven directly, without HTTP: a SQLite database built by the project's migrations, the real
group-commit writer (inline), stored orders taken with :meth:`TradingRuntime.take_orders`, market events given to
:meth:`TradingRuntime.on_event` synchronously, and batches written with :meth:`TradingRuntime.flush`; the tests read
the rows and outbox events written. Wall-clock time is injected (``now_ns``), so every ``created_ns`` is known."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from sqlalchemy import Connection, Engine, func, select

from smart_trader.core.instruments import AssetClass, Instrument
from smart_trader.data.model import Trade
from smart_trader.db.engine import make_engine
from smart_trader.db.migrate import upgrade_to_head
from smart_trader.db.outbox import outbox
from smart_trader.db.writer import BatchWriter
from smart_trader.execution import store as order_store
from smart_trader.execution.enums import OrderSide, OrderType, TimeInForce
from smart_trader.execution.intake import Received, store_orders
from smart_trader.execution.orders import OrderRequest
from smart_trader.gateway.hub import trades_topic
from smart_trader.gateway.users import register
from smart_trader.live.runtime import TradingRuntime
from smart_trader.portfolio import store as account_store
from smart_trader.risk import store as risk_store
from smart_trader.trading.session import TradingState

T = TypeVar("T")
BTC = Instrument("BTC/USDT", "BINANCE", AssetClass.CRYPTO, "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"))
T0 = 1_610_064_000_000_000_000  # 2021-01-08T00:00:00Z: the market clock of the trades below
WALL0 = 1_800_000_000_000_000_000  # the injected wall clock starts here and moves 1 µs per reading


class FakeWallClock:
    """An injected wall clock: 1 µs later at each reading (ns UTC)."""

    def __init__(self) -> None:
        self._ticks = itertools.count(WALL0, 1_000)

    def __call__(self) -> int:
        return next(self._ticks)


class FailingWriter:
    """The real writer, failing the runtime's next ``fail`` writes (a disk that filled up for a while)."""

    def __init__(self, writer: BatchWriter) -> None:
        self.writer = writer
        self.fail = 0
        self.failed = 0

    async def run(self, job: Callable[[Connection], T]) -> T:
        if self.fail:
            self.fail -= 1
            self.failed += 1
            raise RuntimeError("disk full (simulated)")
        result: T = await self.writer.run(job)
        return result


@dataclass
class World:
    """A migrated database with one user and one account (100,000 USDT), its writer and the wall clock;
    ``setup_events``: the outbox id of the last event its setting up wrote (the user's registration, the account's
    opening)."""

    engine: Engine
    writer: BatchWriter
    account_id: str
    now_ns: FakeWallClock
    setup_events: int = 0
    published: list[tuple[str, str]] = field(default_factory=list)

    def runtime(self, writer: Any = None) -> TradingRuntime:
        """A runtime on the database, publishing market data to :attr:`published`."""
        return TradingRuntime(
            self.engine,
            writer or self.writer,
            lambda _iid: BTC,
            lambda topic, message: self.published.append((topic, message)),
            now_ns=self.now_ns,
        )

    def place(
        self, side: str = "buy", qty: str = "0.01", limit: str | None = None, tif: TimeInForce = TimeInForce.GTC
    ) -> dict[str, Any]:
        """Store a new order as the API does (status ``new``, with its ``order.submitted`` event); returns its row."""
        request = OrderRequest(
            BTC.id,
            OrderSide(side),
            OrderType.LIMIT if limit is not None else OrderType.MARKET,
            Decimal(qty),
            limit_price=None if limit is None else Decimal(limit),
            time_in_force=tif,
        )
        with self.engine.begin() as conn:
            [(row, created)] = store_orders(
                conn, [Received(self.account_id, request, BTC.symbol, BTC.venue)], self.now_ns
            )
        assert created
        return dict(row)

    def order(self, order_id: str) -> Any:
        with self.engine.connect() as conn:
            return order_store.get_order(conn, self.account_id, order_id)

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """The outbox events written since the world was set up (payloads), in id order."""
        q = select(outbox).where(outbox.c.id > self.setup_events).order_by(outbox.c.id)
        if event_type is not None:
            q = q.where(outbox.c.event_type == event_type)
        with self.engine.connect() as conn:
            return [orjson.loads(r.payload) | {"_created_ns": r.created_ns} for r in conn.execute(q)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    engine = make_engine(f"sqlite:///{tmp_path / 'runtime.db'}")
    upgrade_to_head(engine)
    now_ns = FakeWallClock()
    with engine.begin() as conn:
        user = register(conn, "trader@example.com", "not-a-real-hash")
        account = account_store.create_account(conn, user.id, "main", "USDT", Decimal(100_000), now_ns=now_ns)
        setup_events = conn.execute(select(func.max(outbox.c.id))).scalar() or 0
    yield World(engine, BatchWriter(engine, inline=True), account["id"], now_ns, setup_events)
    engine.dispose()


def trade(price: str, seconds: int, size: str = "1") -> Trade:
    """A real-looking BTC/USDT trade ``seconds`` after :data:`T0`."""
    return Trade(
        BTC.id,
        T0 + seconds * 1_000_000_000,
        int(Decimal(price).scaleb(BTC.price_precision)),
        int(Decimal(size).scaleb(BTC.size_precision)),
        None,
        None,
        BTC.price_precision,
        BTC.size_precision,
    )


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def test_an_order_taken_and_filled_writes_every_row_and_event(world: World) -> None:
    placed = world.place(qty="0.01")

    async def scenario() -> TradingRuntime:
        rt = world.runtime()
        assert await rt.take_orders() == 1
        await rt.flush()
        rt.on_event(trade("40000.00", 1))
        await rt.flush()
        return rt

    rt = run(scenario())
    row = world.order(placed["id"])
    assert (row.status, row.filled_qty, row.filled_cost) == ("filled", Decimal("0.01"), Decimal("400.00"))
    assert row.ts_last == T0 + 1_000_000_000  # market clock
    with world.engine.connect() as conn:
        fills = order_store.fills_of(conn, world.account_id)
        ledger = account_store.ledger_of(conn, world.account_id)
        positions = account_store.positions_of(conn, world.account_id)
        account = account_store.get_account(conn, world.account_id)
        snapshots = account_store.equity_history(conn, world.account_id, None, None, 10)
    assert [(f.order_id, f.price, f.quantity) for f in fills] == [(placed["id"], Decimal("40000.00"), Decimal("0.01"))]
    assert [e.kind for e in ledger] == ["deposit", "trade"] and ledger[-1].balance == Decimal("99600.00")
    assert [(p.instrument_id, p.quantity, p.last_fill_price) for p in positions] == [
        (BTC.id, Decimal("0.01"), Decimal("40000.00"))
    ]
    assert account is not None and account.cash == Decimal("99600.00") and account.updated_ns > WALL0
    assert [(s.ts, s.equity) for s in snapshots] == [(T0 + 1_000_000_000, Decimal("100000.00"))]
    events = world.events()
    assert [e["event"] if e["type"] == "order" else e["type"] for e in events] == [
        "submitted",
        "accepted",
        "fill",
        "account",
    ]
    accepted, fill = events[1], events[2]
    assert accepted["ts_event"] == 0  # taken before the first market event: the market clock read 0
    assert fill["fill"]["price"] == "40000.00" and fill["order"]["status"] == "filled"
    # one order document for REST and events: the stored fields the core order lacks are there
    rest = order_store.order_view(row)
    assert fill["order"]["created_ns"] == rest["created_ns"] == placed["created_ns"]
    assert fill["order"]["cancel_requested"] is False and set(fill["order"]) == set(rest)
    assert all(e["_created_ns"] >= WALL0 for e in events)  # outbox rows on the injected wall clock
    assert placed["id"] not in rt.books[world.account_id].broker.orders  # closed and stored: forgotten
    [(topic, message)] = world.published  # market data goes to the hub directly, not through the outbox
    assert topic == trades_topic(BTC.id) and orjson.loads(message)["price"] == "40000.00"


def test_a_cancel_request_cancels_the_working_order(world: World) -> None:
    placed = world.place(qty="0.01", limit="30000.00")

    async def scenario() -> None:
        rt = world.runtime()
        await rt.take_orders()
        rt.on_event(trade("40000.00", 1))  # far above the limit: the order works on
        await rt.flush()
        assert world.order(placed["id"]).status == "accepted"
        with world.engine.begin() as conn:
            order_store.request_cancel(conn, world.account_id, placed["id"])
        rt.orders_waiting()
        assert await rt.take_orders() == 1
        await rt.flush()

    run(scenario())
    row = world.order(placed["id"])
    assert row.status == "canceled" and row.cancel_requested and row.filled_qty == 0
    [canceled] = world.events("order.canceled")
    assert canceled["order"]["status"] == "canceled" and canceled["order"]["cancel_requested"] is True
    assert canceled["order"]["reason"] == row.reason and canceled["ts_event"] == T0 + 1_000_000_000


def test_a_halt_stored_by_a_risk_manager_rejects_new_orders(world: World) -> None:
    first = world.place(qty="0.01", limit="30000.00")

    async def scenario() -> TradingRuntime:
        rt = world.runtime()
        await rt.take_orders()
        rt.on_event(trade("40000.00", 1))
        await rt.flush()
        with world.engine.begin() as conn:
            risk_store.set_state(conn, world.account_id, risk_store.HALTED, "margin call", "risk@example.com")
        await rt.limits_changed(world.account_id)
        world.place(qty="0.01")
        rt.orders_waiting()
        assert await rt.take_orders() == 1
        rt.on_event(trade("40001.00", 2))
        await rt.flush()
        return rt

    rt = run(scenario())
    assert rt.books[world.account_id].session.state is TradingState.HALTED
    [rejected] = world.events("order.rejected")
    assert rejected["order"]["status"] == "rejected" and rejected["order"]["reason"] == "account halted: margin call"
    assert world.order(rejected["order_id"]).reason == "account halted: margin call"
    assert world.order(first["id"]).status == "accepted"  # a halt stops new orders; working ones work on


def test_a_failed_write_rebuilds_the_accounts_from_the_database(world: World) -> None:
    placed = world.place(qty="0.01")
    writer = FailingWriter(world.writer)

    async def scenario() -> TradingRuntime:
        rt = world.runtime(writer)
        await rt.take_orders()
        await rt.flush()
        assert world.order(placed["id"]).status == "accepted"
        rt.on_event(trade("40100.00", 1))  # fills in memory...
        writer.fail = 1
        await rt.flush()  # ...but the write fails: every account is rebuilt from what is stored
        assert writer.failed == 1 and not rt.uow.changes
        assert rt.books[world.account_id].broker.orders[placed["id"]].status.value == "accepted"
        rt.on_event(trade("40200.00", 2))  # working again: it fills on this one
        await rt.flush()
        return rt

    run(scenario())
    row = world.order(placed["id"])
    assert row.status == "filled" and row.filled_cost == Decimal("402.00")
    with world.engine.connect() as conn:
        fills = order_store.fills_of(conn, world.account_id)
        ledger = account_store.ledger_of(conn, world.account_id)
    assert [f.price for f in fills] == [Decimal("40200.00")]  # the lost fill is not stored, the next one once
    assert [e.entry_id for e in ledger] == [1, 2] and ledger[-1].balance == Decimal("99598.00")
    assert [e["event"] for e in world.events() if e["type"] == "order"] == ["submitted", "accepted", "fill"]


def test_the_wall_clock_moves_the_market_clock_live_and_runs_its_alerts(world: World) -> None:
    """Live (an exchange feed), the runtime also follows the wall clock: an alert (a day reset) due at a time no
    trade reaches runs when the wall clock passes it; a tick back in time changes nothing."""
    runtime = world.runtime()
    fired: list[int] = []
    runtime.clock.set_alert(T0 + 10 * 1_000_000_000, fired.append)
    runtime.on_event(trade("39000.00", 0))
    assert fired == [] and runtime.clock_ns == T0
    runtime.tick(T0 + 5 * 1_000_000_000)
    assert fired == [] and runtime.clock_ns == T0 + 5 * 1_000_000_000
    runtime.tick(T0 + 11 * 1_000_000_000)  # no trade since: the wall clock alone reaches the alert
    assert fired == [T0 + 10 * 1_000_000_000] and runtime.clock_ns == T0 + 11 * 1_000_000_000
    runtime.tick(T0)  # never backwards
    assert runtime.clock_ns == T0 + 11 * 1_000_000_000


def test_a_day_order_expires_at_the_utc_midnight_on_the_clock_with_no_trade(world: World) -> None:
    """A day limit order dated by a trade on 2021-01-08 expires at 2021-01-09T00:00:00Z exactly: the clock's alert
    (here the live wall clock's tick) expires it — no next-day trade needed — with the midnight as its time."""
    placed = world.place(qty="0.01", limit="30000.00", tif=TimeInForce.DAY)
    midnight = T0 + 86_400 * 1_000_000_000

    async def scenario() -> None:
        rt = world.runtime()
        await rt.take_orders()
        rt.on_event(trade("40000.00", 1))  # dates the order: it lives through 2021-01-08 (UTC)
        await rt.flush()
        assert world.order(placed["id"]).status == "accepted"
        rt.tick(midnight - 1)
        await rt.flush()
        assert world.order(placed["id"]).status == "accepted"
        rt.tick(midnight + 5 * 1_000_000_000)
        await rt.flush()

    run(scenario())
    assert world.order(placed["id"]).status == "expired"
    [expired] = world.events("order.expired")
    assert expired["ts_event"] == midnight
