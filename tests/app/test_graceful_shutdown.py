"""Graceful shutdown: SIGTERM while orders stream in. Requests in flight finish (no 5xx, no reset of an accepted
request), every acknowledged order is stored exactly once, and the runtime writes what it holds before exiting."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pytest

from tests.app import servers


@pytest.mark.slow
def test_sigterm_lets_requests_in_flight_finish_and_writes_everything(tmp_path: Path, shared_data: Path) -> None:
    home = tmp_path / "home"
    env = {"SMART_TRADER_HOME": str(home), "DATABASE_URL": "", "REDIS_URL": ""}
    server = servers.start(
        servers.replay_args(["up"], shared_data, "20"),
        env,
        tmp_path / "server.log",
    )
    server.wait_ready()
    base = server.url + "/api/v1"
    httpx.post(base + "/auth/register", json={"email": "term@example.com", "password": "term-test-pw"})
    token = httpx.post(base + "/auth/token", data={"username": "term@example.com", "password": "term-test-pw"})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    account = httpx.post(
        base + "/accounts", headers=headers, json={"name": "t", "starting_balance": "1000000", "currency": "USDT"}
    ).json()["id"]
    acked: list[str] = []
    statuses: Counter[int] = Counter()
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(headers=headers, timeout=10) as c:
            n = 0
            while not stop.is_set():
                n += 1
                coid = f"t{worker}-{n}"
                try:
                    r = c.post(
                        f"{base}/accounts/{account}/orders",
                        json={
                            "symbol": "BTC/USDT",
                            "venue": "BINANCE",
                            "side": "buy",
                            "type": "market",
                            "qty": "0.001",
                            "client_order_id": coid,
                        },
                    )
                except httpx.HTTPError:
                    return  # the server stopped accepting connections
                statuses[r.status_code] += 1
                if r.status_code in (200, 201):
                    acked.append(coid)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    while len(acked) < 200:
        time.sleep(0.02)
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(30)
    stop.set()
    for t in threads:
        t.join()
    assert code in (0, -signal.SIGTERM), server.log_tail()
    assert all(s < 500 for s in statuses), statuses
    events = [orjson.loads(line) for line in server.log_tail(30).splitlines() if line.startswith("{")]
    assert any(e.get("event") == "stopped" for e in events), server.log_tail()
    with sqlite3.connect(home / "smart-trader.db") as conn:
        stored = Counter(
            r[0] for r in conn.execute("SELECT client_order_id FROM orders WHERE account_id = ?", (account,))
        )
        filled = dict(
            conn.execute(
                "SELECT id, filled_qty FROM orders WHERE account_id = ? AND status = 'filled'", (account,)
            ).fetchall()
        )
        fills = Counter()
        for order_id, qty in conn.execute("SELECT order_id, quantity FROM fills WHERE account_id = ?", (account,)):
            fills[order_id] += Decimal(qty)
        amounts = [
            Decimal(a) for (a,) in conn.execute("SELECT amount FROM ledger_entries WHERE account_id = ?", (account,))
        ]
        cash = Decimal(conn.execute("SELECT cash FROM accounts WHERE id = ?", (account,)).fetchone()[0])
    assert all(stored[c] == 1 for c in acked) and max(stored.values()) == 1
    # nothing half-written: every filled order has its fills, and the ledger adds up to the stored cash
    assert filled, "no order filled before the shutdown: the test proves nothing"
    assert {k: Decimal(v) for k, v in filled.items()} == dict(fills)
    assert sum(amounts, Decimal(0)) == cash
