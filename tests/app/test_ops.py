"""Operational routes: liveness, readiness (migrations at head), Prometheus metrics, and request ids.

Metrics live in the process-wide registry, so counters are compared before and after what the test does.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from smart_trader.db.migrate import head_revision
from tests.app.conftest import Harness, assert_problem

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(h: Harness) -> Samples:
    r = h.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_health_and_ready(platform: Harness) -> None:
    r = platform.client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = platform.client.get("/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready" and body["role"] == "all"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == {"current": head_revision(), "head": head_revision(), "at_head": True}
    assert "redis" not in body["checks"]  # not configured in this platform


def test_ready_on_a_newer_releases_schema_and_not_on_an_older_one(platform: Harness) -> None:
    """During an update the new release migrates first: the release before stays ready on the schema AHEAD of it
    (expand-then-contract migrations), and does not try to migrate it; a schema BEHIND head is not ready."""
    from sqlalchemy import text

    from smart_trader.db.migrate import schema_status, upgrade_to_head

    engine = platform.platform.engine
    head = head_revision()

    def stamp(revision: str) -> None:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})

    try:
        stamp("f0f0f0f0f0f0")  # a revision this code does not know: a newer release's
        r = platform.client.get("/ready")
        assert r.status_code == 200, r.text
        assert r.json()["checks"]["migrations"] == {
            "current": "f0f0f0f0f0f0",
            "head": head,
            "at_head": False,
            "ahead": True,
        }
        upgrade_to_head(engine)  # leaves a newer schema alone (no "can't locate revision" at start)
        assert schema_status(engine).current == "f0f0f0f0f0f0"

        (before_head,) = [r for r in _revisions() if r != head][-1:]
        stamp(before_head)  # a known revision before head: this code's migrations are pending
        r = platform.client.get("/ready")
        assert r.status_code == 503, r.text
        assert r.json()["checks"]["migrations"]["at_head"] is False and "ahead" not in r.json()["checks"]["migrations"]
    finally:
        stamp(head)
    assert platform.client.get("/ready").status_code == 200


def _revisions() -> list[str]:
    """This code's migration revisions, oldest first."""
    from alembic.script import ScriptDirectory

    from smart_trader.db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_metrics_after_a_fill(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    platform.push_trades(2)
    before = scrape(platform)
    order = platform.order(h, acct, side="buy", type="market", qty="0.02")
    platform.wait_status(h, acct, order["id"], "accepted")
    fill_trade = platform.push_trades(1)[0]
    platform.wait_status(h, acct, order["id"], "filled")
    after = scrape(platform)
    assert value(after, "fills_total") == value(before, "fills_total") + 1
    assert value(after, "orders_total", status="accepted") == value(before, "orders_total", status="accepted") + 1
    assert value(after, "orders_total", status="filled") == value(before, "orders_total", status="filled") + 1
    assert value(after, "orders_submitted_total") == value(before, "orders_submitted_total") + 1
    volume = value(after, "trading_volume_total", currency="USDT") - value(
        before, "trading_volume_total", currency="USDT"
    )
    assert abs(volume - float(Decimal("0.02") * fill_trade.price)) < 1e-6
    route = "/api/v1/accounts/{account_id}/orders"
    assert value(after, "api_response_duration_seconds_count", method="POST", route=route, status="201") >= 1
    assert (
        value(after, "api_response_duration_seconds_bucket", method="POST", route=route, status="201", le="+Inf") >= 1
    )
    assert ("websocket_connections_active", frozenset()) in after
    assert value(after, "websocket_connections_active") == 0  # no WebSocket client in this test
    assert ("portfolio_drawdown", frozenset()) not in after  # aggregates only (tests/app/test_risk_metrics.py)

    # P&L (refreshed every second by the runtime) and drawdown (every 5 s) gauges follow the marks
    px = [t.price for t in platform.trades]
    k = next(i for i in range(platform.cursor, len(px)) if px[i] < fill_trade.price)
    mark = platform.push_trades(k + 1 - platform.cursor)[-1].price
    expected_pnl = float(Decimal("0.02") * (mark - fill_trade.price))
    expected_dd = float((Decimal("0.02") * (fill_trade.price - mark) / 100000).quantize(Decimal("1e-12")))
    deadline = time.monotonic() + 15
    while True:
        now = scrape(platform)
        pnl, dd = value(now, "trading_pnl_total", currency="USDT"), value(now, "portfolio_drawdown", stat="max")
        if abs(pnl - expected_pnl) < 1e-9 and abs(dd - expected_dd) < 1e-12:
            break
        assert time.monotonic() < deadline, (pnl, expected_pnl, dd, expected_dd)
        time.sleep(0.1)
    assert pnl < 0 and dd > 0


def test_every_response_carries_a_request_id(platform: Harness) -> None:
    c = platform.client
    h = platform.user()
    seen = set()
    for r in (
        c.get("/health"),
        c.get("/api/v1/accounts", headers=h),
        c.get("/api/v1/accounts"),  # 401
        c.get("/api/v1/accounts/nope", headers=h),  # 404
        c.post("/api/v1/accounts", headers=h, json={}),  # 422
        c.get("/no/such/route"),  # 404 from the router
    ):
        rid = r.headers.get("x-request-id", "")
        assert re.fullmatch(r"[0-9a-f]{12}-[0-9]+", rid), (r.request.url, rid)  # process prefix + counter
        seen.add(rid)
    assert len(seen) == 6  # a new one each time
    assert_problem(c.get("/no/such/route"), 404)
    r = c.get("/health", headers={"X-Request-ID": "client-trace.42:a"})
    assert r.headers["x-request-id"] == "client-trace.42:a"
    r = c.get("/api/v1/accounts", headers={"X-Request-ID": "abc-123"})  # echoed on errors too
    assert r.status_code == 401 and r.headers["x-request-id"] == "abc-123"
    for insane in ("has spaces", "x" * 129, "new\tline"):
        r = c.get("/health", headers={"X-Request-ID": insane})
        assert re.fullmatch(r"[0-9a-f]{12}-[0-9]+", r.headers["x-request-id"]), insane


def test_an_unexpected_error_is_a_500_problem_with_the_request_id(platform: Harness) -> None:
    app: Any = platform.client.app

    async def boom() -> None:
        raise RuntimeError("secret internals")

    app.router.add_api_route("/test-only/boom", boom)
    before = scrape(platform)
    r = platform.client.get("/test-only/boom", headers={"X-Request-ID": "trace-500"})
    body = assert_problem(r, 500, "request id")
    assert "secret" not in r.text  # internals stay in the log
    assert r.headers["x-request-id"] == "trace-500"  # the id the detail tells the caller to quote
    after = scrape(platform)
    labels = {"method": "GET", "route": "/test-only/boom", "status": "500"}
    assert value(after, "api_response_duration_seconds_count", **labels) == (
        value(before, "api_response_duration_seconds_count", **labels) + 1
    )
    assert body["type"].endswith("/internal-server-error")
