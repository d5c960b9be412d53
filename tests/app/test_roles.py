"""Roles: two ``serve --role api`` processes and one ``serve --role feed`` process share one PostgreSQL
database and one Redis; an order placed through one API process is seen on a WebSocket connected to the other,
and market data from the feed process reaches that WebSocket too."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from smart_trader.data.schema import ts_ns
from smart_trader.data.service import MarketDataService
from smart_trader.data.timeframes import Timeframe
from tests.app import servers
from tests.conftest import reset_postgres


@pytest.mark.slow
def test_order_through_one_api_process_is_seen_on_a_websocket_of_the_other(
    tmp_path: Path, shared_data: Path, postgres_url: str, redis_url: str
) -> None:
    reset_postgres(postgres_url)
    env = {"SMART_TRADER_HOME": str(tmp_path / "home"), "DATABASE_URL": postgres_url, "REDIS_URL": redis_url}
    feed_args = servers.replay_args(["serve", "--role", "feed"], shared_data, "5")
    feed = servers.start([*feed_args, "--host", "127.0.0.1"], env, tmp_path / "feed.log")
    api = [
        servers.start(["serve", "--role", "api", "--host", "127.0.0.1"], env, tmp_path / f"api{i}.log")
        for i in range(2)
    ]
    try:
        for s in (feed, *api):
            s.wait_ready()
        a, b = (s.url for s in api)
        httpx.post(a + "/api/v1/auth/register", json={"email": "roles@example.com", "password": "roles-test-pw"})
        token = httpx.post(
            b + "/api/v1/auth/token", data={"username": "roles@example.com", "password": "roles-test-pw"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        _bars_stop_at_the_shared_clock(a, headers, tmp_path / "home")
        r = httpx.post(
            b + "/api/v1/accounts",
            headers=headers,
            json={"name": "roles", "starting_balance": "100000", "currency": "USDT"},
        )
        assert r.status_code == 201, r.text
        account = r.json()["id"]
        ws_url = b.replace("http", "ws")

        async def scenario() -> list[Any]:
            """Subscribe on API process b, place the order through API process a, collect what b streams."""
            subs = [
                {"channel": "orders", "account_id": account},
                {"channel": "trades", "symbol": "BTC/USDT", "venue": "BINANCE"},
            ]
            out: list[Any] = []
            async with websockets.connect(ws_url + f"/ws?token={token}") as ws:
                for sub in subs:
                    await ws.send(orjson.dumps({"op": "subscribe", **sub}).decode())
                while sum(m.get("type") == "subscribed" for m in out) < len(subs):
                    out.append(orjson.loads(await asyncio.wait_for(ws.recv(), 10)))
                async with httpx.AsyncClient(base_url=a, headers=headers) as client:
                    r = await client.post(
                        f"/api/v1/accounts/{account}/orders",
                        json={"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy", "type": "market", "qty": "0.01"},
                    )
                    assert r.status_code == 201, r.text
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    events = {m.get("event") for m in out if m.get("type") == "order"}
                    if {"submitted", "accepted", "fill"} <= events and any(m.get("type") == "trade" for m in out):
                        break
                    out.append(orjson.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic())))
            return out

        messages = asyncio.run(scenario())
        orders = [m for m in messages if m.get("type") == "order"]
        assert {"submitted", "accepted", "fill"} <= {m["event"] for m in orders}, messages[-5:]
        fill = next(m for m in orders if m["event"] == "fill")
        assert fill["order"]["status"] == "filled" and fill["account_id"] == account
        assert any(m.get("type") == "trade" and m["instrument_id"] == "BTC/USDT.BINANCE" for m in messages)
        # the fill is in the shared database, seen through either API process
        for url in (a, b):
            fills = httpx.get(f"{url}/api/v1/accounts/{account}/fills", headers=headers).json()
            assert [f["id"] for f in fills] == [fill["fill"]["id"]]
    finally:
        for s in (*api, feed):
            s.stop()


def _bars_stop_at_the_shared_clock(url: str, headers: dict[str, str], home: Path) -> None:
    """An API process has no live bars (they are in the feed process's memory): it serves the stored bars, none
    later than the market clock the feed process shares through Redis (its last trade's time)."""
    params = {"symbol": "BTC/USDT", "venue": "BINANCE"}
    stored = MarketDataService(home).bars("BTC/USDT", "BINANCE", Timeframe.parse("1s"))
    for _ in range(20):
        r = httpx.get(
            url + "/api/v1/market/bars", params={**params, "timeframe": "1s", "limit": 10_000}, headers=headers
        )
        assert r.status_code == 200, r.text
        clock = httpx.get(url + "/api/v1/market/quote", params=params, headers=headers).json()["trade_ts"]
        assert all(bar["ts_event"] + 1_000_000_000 <= clock for bar in r.json()), clock
        if clock < int(ts_ns(stored)[-1]):  # still in the first pass: the stored seconds after it are not served
            assert len(r.json()) < stored.num_rows
        time.sleep(0.1)
