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
from tests.conftest import TEST_SECRET_KEY, reset_postgres

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

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the runtime has processed every event pushed so far (in memory; persistence follows)."""
        deadline = time.monotonic() + timeout
        while self.platform.runtime.events_processed < self.feed.pushed:
            if time.monotonic() > deadline:
                pytest.fail(f"the runtime processed {self.platform.runtime.events_processed} of {self.feed.pushed}")
            time.sleep(0.005)

    def restart(self) -> None:
        """Stop the app (lifespan shutdown: the runtime flushes, the writer drains) and start a new one on the
        same database and home, with a new feed; the replay continues at :attr:`cursor`. Tokens stay valid."""
        self.client.__exit__(None, None, None)
        self.client, self.feed = start_client(self.settings)

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
    # ``home`` is read under its alias SMART_TRADER_HOME only (``home=`` would be silently ignored and the
    # SQLite file and market-data store would land in the user's real data folder, shared by every test)
    return Settings(
        database_url=url,
        redis_url="",
        secret_key=TEST_SECRET_KEY,
        environment="test",
        log_json=False,
        _env_file=None,
        **{"SMART_TRADER_HOME": tmp_path / "home"},
    )


def start_client(settings: Settings) -> tuple[TestClient, QueueFeed]:
    """Build the app (role ``all``) on ``settings`` with a fresh :class:`QueueFeed`, start it (lifespan) and wait
    until the feed runs on the app's event loop. The caller closes the client (``client.__exit__``)."""
    feed = QueueFeed()

    async def build(_svc: MarketDataService) -> MarketFeed:
        return await feed.started()

    app = create_app(settings, "all", FeedSpec(build, None, "test feed"))
    client = TestClient(app, client=("127.0.0.1", 50000))  # loopback: /metrics answers it
    client.__enter__()
    deadline = time.monotonic() + 5
    while feed.loop is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert feed.loop is not None, "the feed did not start"
    return client, feed


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str, worker_id: str) -> Iterator[str]:
    """A PostgreSQL database private to this pytest run and worker (``test_st_app_<worker>_<pid>``), dropped at
    the end. Overrides the repository-wide fixture, whose ``test_st_<worker>`` is shared by every run: two runs
    at once on one server (several sessions, a CI matrix) would otherwise reset each other's schema mid-test."""
    import os

    import psycopg

    name = f"test_st_app_{worker_id}_{os.getpid()}".replace("-", "_")
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id parameters for the app tests (the defaults cost ~0.3 s per hash on a CI machine, and every
    test registers users); the code path is the same, only the cost parameters differ."""
    from argon2 import PasswordHasher

    from smart_trader.gateway import security

    monkeypatch.setattr(security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(params=["sqlite", "postgres"])
def platform(request: pytest.FixtureRequest, tmp_path: Path, shared_data: Path) -> Iterator[Harness]:
    """The whole platform (role ``all``) on SQLite and on PostgreSQL, fed real BTC/USDT trades by the test."""
    database = request.param
    pg = request.getfixturevalue("postgres_url") if database == "postgres" else None
    settings = make_settings(tmp_path, database, pg)
    service = MarketDataService(settings.home_dir)
    inst, trades = real_trades(shared_data, service)
    client, feed = start_client(settings)
    harness = Harness(client, feed, inst, trades, database, settings)
    try:
        yield harness
    finally:
        harness.client.__exit__(None, None, None)


def assert_problem(r: Any, status: int, *words: str) -> dict[str, Any]:
    """Assert ``r`` is an RFC 9457 problem document with ``status`` whose ``detail`` names every one of ``words``
    (case-insensitive); returns the body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body = dict(r.json())
    assert {"type", "title", "status", "detail", "instance"} <= body.keys(), body
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    assert body["instance"] == r.request.url.path
    for w in words:
        assert w.lower() in body["detail"].lower(), (w, body["detail"])
    return body
