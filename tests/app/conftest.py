"""Fixtures of the platform tests: the whole app (every role in one process) on SQLite and on the real
PostgreSQL, with a market-data feed the test drives from real recorded trades.

``platform`` is parametrized over both databases: every test using it runs twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smart_trader.app.factory import FeedSpec, create_app
from smart_trader.core.instruments import Instrument
from smart_trader.data.model import Trade
from smart_trader.data.readers import read_file
from smart_trader.data.schema import ts_ns
from smart_trader.data.service import MarketDataService
from smart_trader.live.feeds import MarketEvent, MarketFeed
from smart_trader.settings import Settings
from tests.conftest import reset_postgres

BTC_TRADES = "trades/BTCUSDT_2021-01-08.binance.trades.parquet"
PASSWORD = "correct-horse-battery"


class QueueFeed:
    """A feed the test pushes events into from its own thread (they run on the app's event loop)."""

    def __init__(self) -> None:
        self.clock_ns: int | None = None
        self.events_emitted = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queue: asyncio.Queue[MarketEvent] | None = None
        self.pushed = 0

    async def started(self) -> QueueFeed:
        self.loop = asyncio.get_running_loop()
        self.queue = asyncio.Queue()
        return self

    def push(self, events: list[MarketEvent]) -> None:
        assert self.loop is not None and self.queue is not None, "the app has not started"
        for e in events:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, e)
        self.pushed += len(events)

    def __aiter__(self) -> AsyncIterator[MarketEvent]:
        return self._run()

    async def _run(self) -> AsyncIterator[MarketEvent]:
        assert self.queue is not None
        while True:
            event = await self.queue.get()
            self.clock_ns = event.ts_event
            self.events_emitted += 1
            yield event


def real_trades(shared_data: Path, service: MarketDataService) -> tuple[Instrument, list[Trade]]:
    """Import the real BTC/USDT trades into the store; return the instrument and its trades as records."""
    report = service.import_file(shared_data / BTC_TRADES, symbol="BTC/USDT", venue="BINANCE")
    inst = report.instrument
    table = read_file(
        shared_data / BTC_TRADES,
        report.format,
        price_precision=inst.price_precision,
        size_precision=inst.size_precision,
    ).table
    ts = ts_ns(table).tolist()
    prices = [int(p.scaleb(inst.price_precision)) for p in table.column("price").to_pylist()]
    sizes = [int(s.scaleb(inst.size_precision)) for s in table.column("size").to_pylist()]
    trades = [
        Trade(inst.id, t, p, s, None, None, inst.price_precision, inst.size_precision)
        for t, p, s in zip(ts, prices, sizes, strict=True)
    ]
    return inst, trades


@dataclass
class Harness:
    """A running app, its HTTP client and the feed the test drives."""

    client: TestClient
    feed: QueueFeed
    instrument: Instrument
    trades: list[Trade]
    database: str
    settings: Settings
    cursor: int = 0
    users: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def platform(self) -> Any:
        return self.client.app.state.platform  # type: ignore[attr-defined]

    def push_trades(self, n: int) -> list[Trade]:
        """Feed the next ``n`` real trades; returns them."""
        chunk = self.trades[self.cursor : self.cursor + n]
        assert len(chunk) == n, "ran out of recorded trades"
        self.cursor += n
        self.feed.push(list(chunk))
        return chunk

    def user(self, email: str = "trader@example.com") -> dict[str, str]:
        """Register ``email`` (once) and return Authorization headers with a fresh access token."""
        if email not in self.users:
            r = self.client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
            assert r.status_code == 201, r.text
            r = self.client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            self.users[email] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return self.users[email]

    def account(self, headers: dict[str, str], balance: str = "100000", currency: str = "USDT") -> str:
        """Open an account; returns its id."""
        r = self.client.post(
            "/api/v1/accounts",
            headers=headers,
            json={"name": "paper", "starting_balance": balance, "currency": currency},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def order(self, headers: dict[str, str], account_id: str, **body: Any) -> dict[str, Any]:
        """Place an order (BTC/USDT on BINANCE unless given); asserts 201 and returns it."""
        payload = {"symbol": "BTC/USDT", "venue": "BINANCE", **body}
        r = self.client.post(f"/api/v1/accounts/{account_id}/orders", headers=headers, json=payload)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def wait_order(
        self,
        headers: dict[str, str],
        account_id: str,
        order_id: str,
        until: Callable[[dict[str, Any]], bool],
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Poll an order until ``until(order)``; fails with the last state after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.client.get(f"/api/v1/accounts/{account_id}/orders/{order_id}", headers=headers)
            assert r.status_code == 200, r.text
            body = dict(r.json())
            if until(body):
                return body
            if time.monotonic() > deadline:
                pytest.fail(f"order never reached the expected state; last: {body}")
            time.sleep(0.02)

    def wait_status(self, headers: dict[str, str], account_id: str, order_id: str, *status: str) -> dict[str, Any]:
        """Poll an order until its status is one of ``status``."""
        return self.wait_order(headers, account_id, order_id, lambda o: o["status"] in status)


def make_settings(tmp_path: Path, database: str, postgres_url: str | None) -> Settings:
    """Settings of a test platform: a fresh home, SQLite file or a freshly emptied PostgreSQL database."""
    url = ""
    if database == "postgres":
        assert postgres_url is not None
        reset_postgres(postgres_url)
        url = postgres_url
    return Settings(
        database_url=url,
        redis_url="",
        secret_key="t" * 40,
        environment="test",
        home=tmp_path / "home",
        log_json=False,
        _env_file=None,
    )  # type: ignore[call-arg]


@pytest.fixture(params=["sqlite", "postgres"])
def platform(request: pytest.FixtureRequest, tmp_path: Path, shared_data: Path) -> Iterator[Harness]:
    """The whole platform (role ``all``) on SQLite and on PostgreSQL, fed real BTC/USDT trades by the test."""
    database = request.param
    pg = request.getfixturevalue("postgres_url") if database == "postgres" else None
    settings = make_settings(tmp_path, database, pg)
    service = MarketDataService(settings.home_dir)
    inst, trades = real_trades(shared_data, service)
    feed = QueueFeed()

    async def build(_svc: MarketDataService) -> MarketFeed:
        return await feed.started()

    app = create_app(settings, "all", FeedSpec(build, None, "test feed"))
    with TestClient(app) as client:
        deadline = time.monotonic() + 5
        while feed.loop is None and time.monotonic() < deadline:
            time.sleep(0.01)
        yield Harness(client, feed, inst, trades, database, settings)
