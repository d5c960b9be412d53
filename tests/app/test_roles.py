"""Roles: two ``serve --role api`` processes and one ``serve --role feed`` process share one PostgreSQL
database and one Redis; an order placed through one API process is seen on a WebSocket connected to the other,
and market data from the feed process reaches that WebSocket too."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
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
        _a_halt_through_one_api_process_stops_orders_through_the_other(a, b, headers, account, env)
        _revocations_reach_every_process_at_once(a, b, headers, account)
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


def _until(check: Any, seconds: float) -> float:
    """Poll ``check()`` until true; returns how long it took (fails after ``seconds``)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - start


def _a_halt_through_one_api_process_stops_orders_through_the_other(
    a: str, b: str, headers: dict[str, str], account: str, env: dict[str, str]
) -> None:
    """A risk manager (made with `smart-trader users` on the database) halts the account through API process a; the
    feed process's runtime rejects the trader's next order, placed through b, with the reason; resume lets it in."""
    from typer.testing import CliRunner

    from smart_trader.cli.main import app

    result = CliRunner().invoke(
        app, ["users", "create", "risk@example.com", "--role", "risk_manager", "--password-stdin"],
        input="roles-risk-pw-2026\n", env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    risk_token = httpx.post(
        a + "/api/v1/auth/token", data={"username": "risk@example.com", "password": "roles-risk-pw-2026"}
    ).json()["access_token"]
    risk = {"Authorization": f"Bearer {risk_token}"}
    r = httpx.post(f"{a}/api/v1/accounts/{account}/halt", headers=risk, json={"reason": "margin review"})
    assert r.status_code == 200 and r.json()["trading_state"] == "halted", r.text
    ticket = {
        "symbol": "BTC/USDT",
        "venue": "BINANCE",
        "side": "buy",
        "type": "limit",
        "qty": "0.001",
        "limit_price": "1",
    }

    def status_of(order_id: str) -> str:
        return str(httpx.get(f"{b}/api/v1/accounts/{account}/orders/{order_id}", headers=headers).json()["status"])

    order = httpx.post(f"{b}/api/v1/accounts/{account}/orders", headers=headers, json=ticket).json()
    _until(lambda: status_of(order["id"]) == "rejected", 10)
    reason = httpx.get(f"{b}/api/v1/accounts/{account}/orders/{order['id']}", headers=headers).json()["reason"]
    assert "account halted: margin review" in reason
    r = httpx.post(f"{a}/api/v1/accounts/{account}/resume", headers=risk)
    assert r.status_code == 200 and r.json()["trading_state"] == "active", r.text
    time.sleep(0.5)  # the resume event reaches the feed process
    order = httpx.post(f"{b}/api/v1/accounts/{account}/orders", headers=headers, json=ticket).json()
    _until(lambda: status_of(order["id"]) == "accepted", 10)


def _revocations_reach_every_process_at_once(a: str, b: str, headers: dict[str, str], account: str) -> None:
    """An API key revoked through a stops working through b at once (an event, not a cache expiry), and a
    WebSocket b holds open with it is closed with 1008; a logout through a ends the token on b too."""
    key = httpx.post(a + "/api/v1/api-keys", headers=headers, json={"name": "bot"}).json()
    by_key = {"X-API-Key": key["key"]}
    assert httpx.get(f"{b}/api/v1/accounts/{account}", headers=by_key).status_code == 200  # now cached in b
    listed = httpx.get(a + "/api/v1/api-keys", headers=headers).json()
    assert [k["id"] for k in listed] == [key["id"]] and "key" not in listed[0]

    async def revoke_while_connected() -> tuple[int, float]:
        async with websockets.connect(b.replace("http", "ws") + f"/ws?token={key['key']}") as ws:
            await ws.send(orjson.dumps({"op": "subscribe", "channel": "orders", "account_id": account}).decode())
            assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "subscribed"
            async with httpx.AsyncClient() as client:
                r = await client.delete(f"{a}/api/v1/api-keys/{key['id']}", headers=headers)
                assert r.status_code == 200, r.text
                revoked = time.monotonic()
                while (await client.get(f"{b}/api/v1/accounts/{account}", headers=by_key)).status_code != 401:
                    assert time.monotonic() - revoked < 1.0, "the key still works through the other process"
                refused_after = time.monotonic() - revoked
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await _drain(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.reason == "API key revoked"
            return closed.value.rcvd.code, refused_after

    code, refused_after = asyncio.run(revoke_while_connected())
    assert code == 1008 and refused_after < 1.0
    r = httpx.post(a + "/api/v1/auth/logout", headers=headers)
    assert r.status_code == 204, r.text
    _until(lambda: httpx.get(f"{b}/api/v1/accounts", headers=headers).status_code == 401, 1.0)


async def _drain(ws: Any) -> None:
    """Read until the server closes the socket (raises ConnectionClosed), 5 s at most per message."""
    while True:
        await asyncio.wait_for(ws.recv(), 5)


@pytest.mark.slow
def test_a_feed_given_no_source_replays_the_packaged_sample_like_up(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    """``serve --role feed`` with no source (a Helm or Compose default) replays the packaged real sample: an order
    placed through an API process fills at one of the sample's prices."""
    from smart_trader.data.readers import read_file
    from smart_trader.samples import default_sample

    sample = default_sample()
    assert sample is not None
    reset_postgres(postgres_url)
    env = {"SMART_TRADER_HOME": str(tmp_path / "home"), "DATABASE_URL": postgres_url, "REDIS_URL": redis_url}
    feed = servers.start(["serve", "--role", "feed", "--host", "127.0.0.1"], env, tmp_path / "feed.log")
    api = servers.start(["serve", "--role", "api", "--host", "127.0.0.1"], env, tmp_path / "api.log")
    try:
        feed.wait_ready()
        api.wait_ready()
        assert "no source given: replaying" in feed.log.read_text()
        headers = servers.login(api.url, "feed-default@example.com")
        r = httpx.post(
            api.url + "/api/v1/accounts",
            headers=headers,
            json={"name": "sample", "starting_balance": "100000", "currency": "USDT"},
        )
        assert r.status_code == 201, r.text
        account = r.json()["id"]
        order = {"symbol": sample.symbol, "venue": sample.venue, "side": "buy", "type": "market", "qty": "0.01"}
        r = httpx.post(f"{api.url}/api/v1/accounts/{account}/orders", headers=headers, json=order)
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 30
        fills: list[Any] = []
        while not fills and time.monotonic() < deadline:
            time.sleep(0.2)
            fills = httpx.get(f"{api.url}/api/v1/accounts/{account}/fills", headers=headers).json()
        assert fills, f"no fill in 30 s:\n{feed.log_tail()}"
        prices = {Decimal(p) for f in sample.files for p in read_file(f).table.column("open").to_pylist()}
        assert Decimal(fills[0]["price"]) in prices
    finally:
        for s in (api, feed):
            s.stop()
