"""The /ws endpoint through Starlette's TestClient, and against a real uvicorn server for slow clients."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
import websockets
from fastapi import FastAPI
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from smart_trader.gateway.access import Principal, Role
from smart_trader.gateway.hub import Hub
from smart_trader.gateway.ws import router
from smart_trader.ops.metrics import WEBSOCKET_CLIENTS_DROPPED, WEBSOCKET_CONNECTIONS_ACTIVE

TOKENS = {"alice-token": "alice", "bob-token": "bob"}
OWNERS = {"acc-alice": "alice", "acc-bob": "bob"}
QUOTES = "quotes.BTC/USDT.BINANCE"


def make_app(queue_size: int = 1000) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    app.state.hub = Hub(queue_size=queue_size)

    async def authenticate(token: str) -> Principal | None:
        user_id = TOKENS.get(token)
        return None if user_id is None else Principal(user_id, frozenset({Role.TRADER}))

    async def account_owner(account_id: str) -> str | None:
        return OWNERS.get(account_id)

    app.state.authenticate = authenticate
    app.state.account_owner = account_owner
    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app()) as c:
        yield c


def publish(client: TestClient, topic: str, message: str) -> None:
    """Publish on the app's event loop (the hub is not thread-safe)."""
    assert client.portal is not None
    client.portal.call(client.app.state.hub.publish, topic, message)  # type: ignore[attr-defined]


def subscribe_quotes(ws: Any) -> None:
    ws.send_json({"op": "subscribe", "channel": "quotes", "symbol": "BTC/USDT", "venue": "binance"})
    assert ws.receive_json() == {"type": "subscribed", "topic": QUOTES}


def read_until_closed(ws: Any) -> None:
    """Read (and discard) messages until the server closes the socket (raises WebSocketDisconnect)."""
    while True:
        ws.receive_text()


def test_auth_by_query_then_subscribe_receive_unsubscribe(client: TestClient) -> None:
    with client.websocket_connect("/ws?token=alice-token") as ws:
        subscribe_quotes(ws)
        message = json.dumps({"type": "quote", "topic": QUOTES, "bid": "1.5"})
        publish(client, QUOTES, message)
        publish(client, "quotes.ETH/USDT.BINANCE", '{"type":"quote"}')
        assert ws.receive_text() == message  # as published, byte for byte

        ws.send_json({"op": "unsubscribe", "channel": "quotes", "symbol": "BTC/USDT", "venue": "BINANCE"})
        assert ws.receive_json() == {"type": "unsubscribed", "topic": QUOTES}
        publish(client, QUOTES, '{"type":"quote","n":2}')
        ws.send_json({"op": "ping"})
        assert ws.receive_json() == {"type": "pong"}  # nothing was delivered after the unsubscribe
        assert client.app.state.hub.subscriber_count(QUOTES) == 0  # type: ignore[attr-defined]


def test_auth_by_first_message(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"op": "auth", "token": "bob-token"})
        assert ws.receive_json() == {"type": "authenticated"}
        ws.send_json({"op": "subscribe", "channel": "orders", "account_id": "acc-bob", "id": 7})
        assert ws.receive_json() == {"type": "subscribed", "topic": "orders.acc-bob", "id": 7}
        publish(client, "orders.acc-bob", '{"type":"order","status":"FILLED"}')
        assert ws.receive_json() == {"type": "order", "status": "FILLED"}


@pytest.mark.parametrize(
    ("path", "first_message"),
    [
        ("/ws?token=wrong", None),
        ("/ws", {"op": "auth", "token": "wrong"}),
        ("/ws", {"op": "subscribe", "channel": "quotes"}),
        ("/ws", "not json"),
    ],
)
def test_bad_or_missing_token_closes_with_1008(client: TestClient, path: str, first_message: Any) -> None:
    with client.websocket_connect(path) as ws:
        if first_message is not None:
            if isinstance(first_message, str):
                ws.send_text(first_message)
            else:
                ws.send_json(first_message)
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
    assert info.value.code == 1008
    assert info.value.reason


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ("{not json", "invalid JSON"),
        ([1, 2], "a message must be a JSON object"),
        ({"op": "dance"}, "unknown op 'dance': expected subscribe, unsubscribe or ping"),
        ({"op": "subscribe"}, "missing field 'channel'"),
        ({"op": "subscribe", "channel": "news"}, "unknown channel 'news'"),
        ({"op": "subscribe", "channel": "quotes", "venue": "BINANCE"}, "missing field 'symbol'"),
        ({"op": "subscribe", "channel": "trades", "symbol": "BTC/USDT"}, "missing field 'venue'"),
        ({"op": "subscribe", "channel": "trades", "symbol": 5, "venue": "X"}, "must be a non-empty string"),
        ({"op": "subscribe", "channel": "bars", "symbol": "BTC/USDT", "venue": "X"}, "missing field 'timeframe'"),
        ({"op": "subscribe", "channel": "bars", "symbol": "B", "venue": "X", "timeframe": "7w"}, "not like 1s"),
        ({"op": "subscribe", "channel": "bars", "symbol": "B", "venue": "X", "timeframe": "2d"}, "between 1s and 1d"),
        ({"op": "subscribe", "channel": "orders"}, "missing field 'account_id'"),
        ({"op": "subscribe", "channel": "orders", "account_id": "acc-bob"}, "account not found"),
        ({"op": "subscribe", "channel": "accounts", "account_id": "nope"}, "account not found"),
        ({"op": "auth", "token": "alice-token"}, "already authenticated"),
    ],
)
def test_bad_requests_get_error_replies_and_the_connection_stays(client: TestClient, request_: Any, error: str) -> None:
    with client.websocket_connect("/ws?token=alice-token") as ws:
        ws.send_text(request_ if isinstance(request_, str) else json.dumps(request_))
        reply = ws.receive_json()
        assert reply["type"] == "error"
        assert error in reply["message"]
        subscribe_quotes(ws)  # still alive and serving


def test_binary_frames_of_utf8_json_are_accepted_and_others_are_errors(client: TestClient) -> None:
    with client.websocket_connect("/ws?token=alice-token") as ws:
        ws.send_bytes(b'{"op":"ping"}')
        assert ws.receive_json() == {"type": "pong"}
        ws.send_bytes(b"\xff\xfe")
        assert ws.receive_json() == {"type": "error", "message": "a message must be UTF-8 JSON"}
        ws.send_json({"op": "ping", "id": "p1"})
        assert ws.receive_json() == {"type": "pong", "id": "p1"}


def test_bars_topic_uses_the_canonical_timeframe(client: TestClient) -> None:
    with client.websocket_connect("/ws?token=alice-token") as ws:
        ws.send_json(
            {"op": "subscribe", "channel": "bars", "symbol": "ETH/USDT", "venue": "binance", "timeframe": "60s"}
        )
        assert ws.receive_json() == {"type": "subscribed", "topic": "bars.ETH/USDT.BINANCE.1m"}


def test_account_channels_of_ones_own_account(client: TestClient) -> None:
    with client.websocket_connect("/ws?token=alice-token") as ws:
        ws.send_json({"op": "subscribe", "channel": "accounts", "account_id": "acc-alice"})
        assert ws.receive_json() == {"type": "subscribed", "topic": "accounts.acc-alice"}
        publish(client, "accounts.acc-bob", '{"type":"account","who":"bob"}')
        publish(client, "accounts.acc-alice", '{"type":"account","who":"alice"}')
        assert ws.receive_json() == {"type": "account", "who": "alice"}


def test_connection_gauge_and_cleanup_on_disconnect(client: TestClient) -> None:
    hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
    before = WEBSOCKET_CONNECTIONS_ACTIVE._value.get()
    with client.websocket_connect("/ws?token=alice-token") as ws:
        subscribe_quotes(ws)
        assert WEBSOCKET_CONNECTIONS_ACTIVE._value.get() == before + 1
        assert hub.subscriber_count(QUOTES) == 1
    for _ in range(100):  # the server notices the close on its loop
        if hub.subscriber_count(QUOTES) == 0 and WEBSOCKET_CONNECTIONS_ACTIVE._value.get() == before:
            break
        client.portal.call(asyncio.sleep, 0.01)  # type: ignore[union-attr]
    assert hub.subscriber_count(QUOTES) == 0
    assert hub.connection_count == 0
    assert WEBSOCKET_CONNECTIONS_ACTIVE._value.get() == before


def test_overflowing_client_is_closed_with_1013() -> None:
    with TestClient(make_app(queue_size=5)) as client, client.websocket_connect("/ws?token=alice-token") as ws:
        subscribe_quotes(ws)
        hub = client.app.state.hub  # type: ignore[attr-defined]

        def burst() -> None:  # 20 messages in one loop turn: the writer cannot run in between
            for i in range(20):
                hub.publish(QUOTES, f'{{"n":{i}}}')

        client.portal.call(burst)  # type: ignore[union-attr]
        with pytest.raises(WebSocketDisconnect) as info:
            read_until_closed(ws)
    assert info.value.code == 1013
    assert "too slow" in info.value.reason


# -- a real server: TCP back-pressure from a client that stops reading -----------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_real_server_drops_a_stalled_client_and_the_fast_one_gets_everything() -> None:
    n, size = 3000, 8_000  # 24 MB: far more than the socket buffers of a client that stopped reading
    padding = "x" * size

    async def scenario() -> None:
        app = make_app(queue_size=50)
        hub: Hub = app.state.hub
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        serve = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        uri = f"ws://127.0.0.1:{port}/ws?token=alice-token"
        request = json.dumps({"op": "subscribe", "channel": "quotes", "symbol": "BTC/USDT", "venue": "BINANCE"})
        dropped_before = WEBSOCKET_CLIENTS_DROPPED._value.get()
        # max_queue=1: the stalled client's library stops reading from the socket after one message; a small
        # receive buffer (no autotuning, which on loopback may grow to tens of MB) makes the server feel it soon;
        # no compression, or the padding would shrink to nothing.
        small = socket.socket()
        small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        small.connect(("127.0.0.1", port))
        small.setblocking(False)
        async with (
            websockets.connect(uri, sock=small, max_queue=1, max_size=None, compression=None) as stalled,
            websockets.connect(uri, max_size=None, compression=None) as fast,
        ):
            for ws in (stalled, fast):
                await ws.send(request)
                assert json.loads(await ws.recv())["type"] == "subscribed"
            received = 0

            async def read_fast() -> None:
                nonlocal received
                while received < n:
                    json.loads(await fast.recv())
                    received += 1

            reader = asyncio.create_task(read_fast())
            for i in range(n):
                hub.publish(QUOTES, f'{{"type":"quote","seq":{i},"pad":"{padding}"}}')
                if i % 10 == 9:
                    await asyncio.sleep(0.001)  # a paced feed: the fast client keeps up
            assert WEBSOCKET_CLIENTS_DROPPED._value.get() == dropped_before + 1  # dropped while publishing

            async def drain_stalled() -> websockets.ConnectionClosed:
                while True:
                    try:
                        await stalled.recv()
                    except websockets.ConnectionClosed as exc:
                        return exc

            # it reads again: the backlog in the socket buffers, then the close frame the server had queued
            closed = await asyncio.wait_for(drain_stalled(), 30)
            await asyncio.wait_for(reader, 30)
            assert received == n
            assert closed.rcvd is not None
            assert closed.rcvd.code == 1013
            assert "too slow" in closed.rcvd.reason
        assert WEBSOCKET_CLIENTS_DROPPED._value.get() == dropped_before + 1
        server.should_exit = True
        await serve

    asyncio.run(scenario())


def test_no_auth_message_in_time_closes_with_1008(monkeypatch: pytest.MonkeyPatch, client: TestClient) -> None:
    monkeypatch.setattr("smart_trader.gateway.ws.AUTH_TIMEOUT_S", 0.2)
    with client.websocket_connect("/ws") as ws, pytest.raises(WebSocketDisconnect) as info:
        ws.receive_text()
    assert info.value.code == 1008
    assert "timeout" in info.value.reason


def test_failing_authenticator_closes_with_1011() -> None:
    app = make_app()

    async def broken(token: str) -> str | None:
        raise ConnectionError("user store down")

    app.state.authenticate = broken
    with (
        TestClient(app) as client,
        client.websocket_connect("/ws?token=x") as ws,
        pytest.raises(WebSocketDisconnect) as info,
    ):
        ws.receive_text()
    assert info.value.code == 1011
