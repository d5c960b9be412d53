"""kill -9 after a challenge breach: the verdict is what was committed with the fills that caused it.

A real ``smart-trader up`` process (SQLite, and PostgreSQL through ``DATABASE_URL``) replays the real recorded BTC/USDT
trades, looping at 20× real time. An FTMO 2-Step challenge account of 10,000 USDT buys 7 BTC with a stop at 39,530
(so it fills at a recorded price of at least 39,530); every pass of the recording goes down to 39,430.30, so the
equity goes under the daily floor of 9,500 within a pass. The instant and the equity of the breach are computed here
from the recording (the first recorded trade after the fill whose price takes the equity, in cents, under the floor).
Once the API shows the challenge failed, the server is killed with SIGKILL and started again on the same database:
the challenge is still failed with the same breach evidence, its events list ``ChallengeBreached`` exactly once (and
the outbox published it once), its position is flat, and new orders are refused with a 409 naming the rule.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from smart_trader.challenges.days import iso_utc
from smart_trader.challenges.program import to_cents
from smart_trader.core.values import from_raw
from smart_trader.data.model import Trade
from smart_trader.data.schema import Kind
from smart_trader.data.service import MarketDataService
from smart_trader.live.replay import ReplayFeed
from tests.app import servers
from tests.conftest import reset_postgres

D = Decimal
V1 = "/api/v1"
SIZE = D("10000")
FLOOR = D("9500.00")  # FTMO daily loss [S1]: day-start balance 10,000 − 5 % of the initial 10,000
STOP = D("39530")
QTY = D("7")
SPEED = "20"


def recorded_pass(shared_data: Path, home: Path) -> tuple[list[Trade], int]:
    """One pass of the replay as the server makes it (the file imported into a store, replayed by ``ReplayFeed``)
    and the shift between two passes (ns: span + the mean gap between trades, ``ReplayFeed`` with ``loop``)."""
    service = MarketDataService(home)
    inst = service.import_file(shared_data / servers.BTC_TRADES, symbol="BTC/USDT", venue="BINANCE").instrument
    feed = ReplayFeed(service, inst, Kind.TRADES)

    async def collect() -> list[Trade]:
        return [e async for e in feed]

    trades = asyncio.run(collect())
    span = trades[-1].ts_event - trades[0].ts_event
    return trades, span + max(1, span // (len(trades) - 1))


def expected_breach(trades: list[Trade], period: int, fill: dict[str, Any]) -> tuple[int, D]:
    """Instant (ns UTC) and equity (cents) of the first recorded trade after ``fill`` whose price takes the account's
    equity under :data:`FLOOR`, following the looping replay from the fill's trade."""
    entry, fill_ts = D(fill["price"]), int(fill["ts_event"])
    cash = SIZE - D(fill["commission"])
    first = trades[0].ts_event
    n = (fill_ts - first) // period  # the pass the fill happened in
    at = next(
        i
        for i, t in enumerate(trades)
        if t.ts_event + n * period == fill_ts and from_raw(t.price_raw, t.price_precision) == entry
    )
    for step in range(1, 2 * len(trades)):
        j, lap = (at + step) % len(trades), (at + step) // len(trades)
        t = trades[j]
        equity = to_cents(cash + QTY * (from_raw(t.price_raw, t.price_precision) - entry))
        if equity < FLOOR:
            return t.ts_event + (n + lap) * period, equity
    raise AssertionError("the recording never takes the equity under the floor")


def _get(base: str, path: str, headers: dict[str, str]) -> Any:
    r = httpx.get(base + path, headers=headers, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def _until(what: str, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)
    return value


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_kill_9_after_a_breach_keeps_the_verdict_and_its_evidence(
    database: str, tmp_path: Path, shared_data: Path, request: pytest.FixtureRequest
) -> None:
    trades, period = recorded_pass(shared_data, tmp_path / "scratch")
    prices = [from_raw(t.price_raw, t.price_precision) for t in trades]
    low, high = min(prices), max(prices)
    # the scenario holds on this recording: a stop fill at 39,530 or above loses more than 500 at every pass's low,
    # and even the worst fill (the high) stays above the maximum-loss floor of 9,000 (the daily loss is what breaks)
    assert any(p >= STOP for p in prices)
    assert QTY * (STOP - low) > SIZE - FLOOR and QTY * (high - low) < D(1000)

    home = tmp_path / "home"
    url = ""
    if database == "postgres":
        url = request.getfixturevalue("postgres_url")
        reset_postgres(url)
    env = {"SMART_TRADER_HOME": str(home), "DATABASE_URL": url, "REDIS_URL": ""}
    args = servers.replay_args(["up"], shared_data, SPEED)
    log = tmp_path / "server.log"
    server = servers.start(args, env, log)
    restarted: servers.Server | None = None
    try:
        server.wait_ready()
        base = server.url
        alice = servers.login(base, "challenger@example.com")
        body = {"program": "ftmo-2step", "account_size": str(SIZE), "currency": "USDT"}
        r = httpx.post(base + f"{V1}/challenges", headers=alice, json=body, timeout=5)
        assert r.status_code == 201, r.text
        cid, acct = r.json()["id"], r.json()["account_id"]
        order = {"symbol": "BTC/USDT", "venue": "BINANCE", "side": "buy", "type": "stop", "qty": str(QTY)}
        r = httpx.post(
            base + f"{V1}/accounts/{acct}/orders", headers=alice, json=order | {"stop_price": str(STOP)}, timeout=5
        )
        assert r.status_code == 201, r.text

        failed = _until(
            "the challenge failed",
            lambda: (c := _get(base, f"{V1}/challenges/{cid}", alice))["status"] == "failed" and c,
        )
        fills = _get(base, f"{V1}/accounts/{acct}/fills", alice)
        entry = fills[0]
        assert entry["side"] == "buy" and D(entry["quantity"]) == QTY and D(entry["price"]) >= STOP
        ts, equity = expected_breach(trades, period, entry)
        breach = failed["breach"]
        assert breach["rule"] == "daily_loss" and D(breach["floor"]) == FLOOR
        assert breach["ts"] == iso_utc(ts) and D(breach["equity"]) == equity
        assert breach["details"]["positions"] == f"BTC/USDT.BINANCE {QTY} @ avg {D(entry['price'])}"
        events = _get(base, f"{V1}/challenges/{cid}/events", alice)
        breached = [e for e in events if e["event_type"] == "ChallengeBreached"]
        assert len(breached) == 1 and breached[0]["ts_event"] == ts

        server.kill()  # SIGKILL while the replay runs on: no shutdown code runs

        restarted = servers.start(args, env, log, port=server.port)
        restarted.wait_ready()
        again = _get(base, f"{V1}/challenges/{cid}", alice)
        assert again["status"] == "failed"
        assert again["breach"] == breach  # rule, ts, equity, floor and details
        assert _get(base, f"{V1}/challenges/{cid}/events", alice) == events  # nothing lost, nothing repeated
        # the flattening is through (committed before the kill, or restored and filled after it)
        _until(
            "the position flattened",
            lambda: all(D(p["quantity"]) == 0 for p in _get(base, f"{V1}/accounts/{acct}/positions", alice)),
        )
        r = httpx.post(
            base + f"{V1}/accounts/{acct}/orders",
            headers=alice,
            json=order | {"type": "market", "qty": "0.001"},
            timeout=5,
        )
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        detail = r.json()["detail"]
        assert "daily_loss" in detail and str(FLOOR) in detail and breach["ts"] in detail
        # still failed after the restarted runtime has valued the account's prices for a while
        time.sleep(1.0)
        assert _get(base, f"{V1}/challenges/{cid}", alice)["breach"] == breach
        assert _get(base, f"{V1}/challenges/{cid}/events", alice) == events
    finally:
        if server.proc.poll() is None:
            server.kill()
        if restarted is not None:
            restarted.stop()

    db = url.replace("postgresql://", "postgresql+psycopg://") if url else f"sqlite:///{home / 'smart-trader.db'}"
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            published = conn.execute(
                text("SELECT count(*) FROM outbox WHERE event_type = 'challenge.ChallengeBreached'")
            ).scalar_one()
            statuses = [r[0] for r in conn.execute(text("SELECT status FROM challenges"))]
    finally:
        engine.dispose()
    assert published == 1  # one WebSocket message for the breach, not one per start
    assert statuses == ["failed"]
