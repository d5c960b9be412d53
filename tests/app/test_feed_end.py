"""A replay without --loop on the real platform (SQLite): the end of the feed shows on /ready and the WebSocket,
orders after it are rejected with a reason; while it ran, quotes were derived from the trades and live bars were
built (served from memory: a replay writes nothing into the market-data store); ``GET /`` points to the docs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smart_trader.app.factory import FeedSpec, create_app
from smart_trader.data.service import MarketDataService
from smart_trader.live.feeds import MarketFeed
from smart_trader.live.replay import replay_file
from tests.app.conftest import BTC_TRADES, PASSWORD, make_settings

SPEED = 20.0  # the 46 s recording in ~2.3 s


@pytest.fixture
def client(tmp_path: Path, shared_data: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, "sqlite", None)
    service = MarketDataService(settings.home_dir)
    service.import_file(shared_data / BTC_TRADES, symbol="BTC/USDT", venue="BINANCE")  # as `up --replay` does
    stored = service.datasets()

    async def build(svc: MarketDataService) -> MarketFeed:
        return replay_file(svc, shared_data / BTC_TRADES, "BTC/USDT", "BINANCE", speed=SPEED, loop=False)

    app = create_app(settings, "all", FeedSpec(build, None, "replay of the BTC/USDT test file", derive_quotes=True))
    with TestClient(app) as c:
        yield c
    assert service.datasets() == stored  # the replay stored nothing, not even at shutdown


def _login(client: TestClient) -> dict[str, str]:
    client.post("/api/v1/auth/register", json={"email": "end@example.com", "password": PASSWORD})
    token = client.post("/api/v1/auth/token", data={"username": "end@example.com", "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def _wait(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail("condition not met in time")


def test_the_end_of_a_replay_is_visible_and_later_orders_are_rejected_with_a_reason(client: TestClient) -> None:
    auth = _login(client)
    token = auth["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/ws?token={token}") as ws:
        ws.send_json({"op": "subscribe", "channel": "quotes", "symbol": "BTC/USDT", "venue": "BINANCE"})
        assert ws.receive_json()["type"] == "subscribed"
        first = ws.receive_json()
        assert first["type"] == "quote" and first["derived"] is True and Decimal(first["bid"]) < Decimal(first["ask"])
        while (msg := ws.receive_json())["type"] != "feed":
            assert msg["type"] == "quote"
        assert msg["event"] == "ended" and msg["instrument_id"] == "BTC/USDT.BINANCE" and msg["events"] > 2000

    ready = client.get("/ready")
    assert ready.status_code == 503
    feed = ready.json()["checks"]["feed"]
    assert feed["state"] == "ended" and "ended after" in feed["detail"]

    quote = client.get("/api/v1/market/quote", params={"symbol": "BTC/USDT", "venue": "BINANCE"}, headers=auth).json()
    assert quote["quote_source"] == "derived_from_trades"
    assert Decimal(quote["bid"]) < Decimal(quote["ask"]) and quote["last_price"] is not None

    acct = client.post(
        "/api/v1/accounts", headers=auth, json={"name": "p", "starting_balance": "100000", "currency": "USDT"}
    ).json()["id"]
    order = client.post(
        f"/api/v1/accounts/{acct}/orders",
        headers=auth,
        json={"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy", "type": "market", "qty": "0.01"},
    ).json()
    done = _wait(
        lambda: (
            o
            if (o := client.get(f"/api/v1/accounts/{acct}/orders/{order['id']}", headers=auth).json())["status"]
            != "new"
            else None
        )
    )
    assert done["status"] == "rejected"
    assert "market-data feed ended" in done["reason"] and "--loop" in done["reason"]


def test_bars_built_live_are_served_and_the_root_points_to_the_docs(client: TestClient) -> None:
    auth = _login(client)
    _wait(lambda: client.get("/ready").json()["checks"]["feed"]["state"] == "ended")
    bars = client.get(
        "/api/v1/market/bars", params={"symbol": "BTC/USDT", "venue": "BINANCE", "timeframe": "1m"}, headers=auth
    )
    assert bars.status_code == 200 and len(bars.json()) == 1  # 46 s of trades: one minute bar, built live
    root = client.get("/")
    assert root.status_code == 200 and "/docs" in root.text and "Walkthrough" in root.text
