"""The order route's fast path (:class:`~smart_trader.execution.fast_path.PlaceOrderFastPath`): it answers
well-formed orders itself, hands everything else to the regular FastAPI route with the body intact, and either
way the client gets the same document, status, request id and metrics label."""

from __future__ import annotations

import json
from typing import Any

from smart_trader.core.errors import InvalidInputError
from smart_trader.execution.fast_path import MAX_BODY_BYTES, PlaceOrderFastPath
from tests.app.conftest import Harness, assert_problem

TICKET = {"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy", "type": "limit", "qty": "0.001"}
ROUTE_TEMPLATE = "/api/v1/accounts/{account_id}/orders"


def through_fast_path(h: Harness, account_id: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """POST ``body`` to the fast path alone, on the app's own event loop, with a downstream app that records what
    reaches it (and answers 599); returns the status, the JSON answered and what was handed on."""
    handed_on: list[bytes] = []

    async def downstream(scope: Any, receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        handed_on.append(b"".join(chunks))
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def run() -> dict[str, Any]:
        pieces = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]  # sent in several messages
        incoming = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return incoming.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": f"/api/v1/accounts/{account_id}/orders",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json")]
            + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "app": h.client.app,
        }
        await PlaceOrderFastPath(downstream)(scope, receive, send)
        answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return {
            "status": sent[0]["status"],
            "json": json.loads(answer) if answer else None,
            "handed_on": handed_on,
            "route": scope.get("route"),
        }

    return h.client.portal.call(run)  # type: ignore[union-attr]


def test_a_well_formed_order_is_answered_by_the_fast_path_and_stored(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    body = json.dumps({**TICKET, "limit_price": "1000", "client_order_id": "fast-1"}).encode()
    out = through_fast_path(platform, acct, h, body)
    assert out["handed_on"] == [] and out["status"] == 201
    assert out["route"].path == ROUTE_TEMPLATE  # what metrics and logs are labelled with
    stored = platform.client.get(f"/api/v1/accounts/{acct}/orders/{out['json']['id']}", headers=h)
    assert stored.status_code == 200
    assert {k: v for k, v in stored.json().items() if k not in ("status", "ts_last")} == {
        k: v for k, v in out["json"].items() if k not in ("status", "ts_last")
    }
    again = through_fast_path(platform, acct, h, body)  # a client_order_id retry: the original, 200
    assert again["status"] == 200 and again["json"]["id"] == out["json"]["id"]


def test_everything_else_is_handed_to_the_regular_route_with_its_body(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    other = platform.account(platform.user("someone-else@example.com"))
    cases = {
        "not JSON": (acct, h, b"{not json"),
        "not an order": (acct, h, json.dumps({**TICKET, "qty": "-1"}).encode()),
        "unknown instrument": (acct, h, json.dumps({**TICKET, "symbol": "NOPE/USDT", "limit_price": "1"}).encode()),
        "off the tick": (acct, h, json.dumps({**TICKET, "limit_price": "1000.001"}).encode()),
        "no credentials": (acct, {}, json.dumps({**TICKET, "limit_price": "1000"}).encode()),
        "someone else's account": (other, h, json.dumps({**TICKET, "limit_price": "1000"}).encode()),
        "too large": (acct, h, json.dumps({**TICKET, "limit_price": "1000"}).encode() + b" " * MAX_BODY_BYTES),
    }
    for name, (account, headers, body) in cases.items():
        out = through_fast_path(platform, account, headers, body)
        assert out["status"] == 599 and out["handed_on"] == [body], name
    listed = platform.client.get(f"/api/v1/accounts/{acct}/orders", headers=h).json()
    assert listed == []  # nothing was stored by the attempts


def test_a_domain_error_before_the_write_is_handed_to_the_route(platform: Harness, monkeypatch: Any) -> None:
    """place() can meet errors the application's exception handlers map (a broken instrument catalog raises
    InvalidInputError): the fast path, outside those handlers, hands the request on instead of answering 500."""
    h = platform.user()
    acct = platform.account(h)

    def broken_catalog(_iid: Any) -> Any:
        raise InvalidInputError("instrument catalog entry is malformed")

    monkeypatch.setattr(platform.platform, "instrument", broken_catalog)
    body = json.dumps({**TICKET, "limit_price": "1000"}).encode()
    out = through_fast_path(platform, acct, h, body)
    assert out["status"] == 599 and out["handed_on"] == [body]
    r = platform.client.post(
        f"/api/v1/accounts/{acct}/orders", headers={**h, "Content-Type": "application/json"}, content=body
    )
    assert_problem(r, 422, "malformed")


def test_the_app_answers_the_same_either_way(platform: Harness) -> None:
    """Through the whole app: a fast-path order and one taking the regular route (its body padded past the fast
    path's limit) get the same document, both carry a request id, and both count under the route's template."""
    h = platform.user()
    acct = platform.account(h)
    url = f"/api/v1/accounts/{acct}/orders"
    headers = {**h, "Content-Type": "application/json"}
    fast = platform.client.post(url, headers=headers, content=json.dumps({**TICKET, "limit_price": "1000"}))
    regular_body = json.dumps({**TICKET, "limit_price": "1000"}) + " " * (MAX_BODY_BYTES + 1)
    regular = platform.client.post(url, headers=headers, content=regular_body)
    assert fast.status_code == regular.status_code == 201
    assert fast.headers["x-request-id"] != regular.headers["x-request-id"]
    assert fast.headers["content-type"] == regular.headers["content-type"] == "application/json"
    differing = {"id", "created_ns", "status", "ts_last"}
    assert {k: v for k, v in fast.json().items() if k not in differing} == {
        k: v for k, v in regular.json().items() if k not in differing
    }
    assert fast.json().keys() == regular.json().keys()
    bad = platform.client.post(url, headers=headers, content=json.dumps({**TICKET, "limit_price": "1000.001"}))
    assert_problem(bad, 422, "tick")
    metrics = platform.client.get("/metrics").text
    for status in ("201", "422"):
        assert (
            f'api_response_duration_seconds_count{{method="POST",route="{ROUTE_TEMPLATE}",status="{status}"}}'
            in metrics
        )
