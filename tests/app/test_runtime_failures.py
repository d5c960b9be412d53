"""When writing the broker's changes fails, memory must not run ahead of the database: the runtime rebuilds every
account from what is stored, the lost fill happens again on a later trade, and the ledger keeps no gap."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from smart_trader.live import runtime as runtime_module
from smart_trader.portfolio.tables import ledger_entries
from tests.app.conftest import Harness


def test_a_failed_write_rebuilds_the_accounts_and_the_fill_happens_once(
    platform: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = platform.user()
    acct = platform.account(h)
    platform.push_trades(2)
    order = platform.order(h, acct, side="buy", type="market", qty="0.01")
    platform.wait_status(h, acct, order["id"], "accepted")

    real_write = runtime_module._write
    failing: list[Any] = []  # the first batch with a fill fails every time it is tried (the writer retries once)

    def failing_once(conn: Any, batch: Any) -> None:
        if batch.fills and (not failing or batch is failing[0]):
            failing[:] = [batch]
            raise RuntimeError("disk full (simulated)")
        real_write(conn, batch)

    monkeypatch.setattr(runtime_module, "_write", failing_once)
    lost = platform.push_trades(1)[0]  # fills in memory; the write of that fill fails
    platform.settle()
    runtime = platform.platform.runtime
    deadline = time.monotonic() + 10
    while not (failing and acct in runtime.books and not runtime._write_lock.locked()):
        assert time.monotonic() < deadline, "the runtime did not rebuild the account after the failed write"
        time.sleep(0.01)
    assert runtime.books[acct].broker.orders[order["id"]].status.value == "accepted"  # rebuilt as stored
    deadline_trades = platform.push_trades(1)  # working again: it fills on this one
    filled = platform.wait_status(h, acct, order["id"], "filled")
    assert len(failing) == 1 and failing[0].fills[0]["price"] == lost.price  # the lost fill was at this trade
    assert Decimal(filled["avg_fill_price"]) == deadline_trades[0].price  # filled again, once, on the next one
    fills = platform.client.get(f"/api/v1/accounts/{acct}/fills", headers=h).json()
    assert len(fills) == 1 and fills[0]["order_id"] == order["id"]
    with platform.platform.engine.connect() as conn:
        rows = conn.execute(
            select(ledger_entries).where(ledger_entries.c.account_id == acct).order_by(ledger_entries.c.entry_id)
        ).all()
    assert [r.entry_id for r in rows] == list(range(1, len(rows) + 1))  # no gap
    account = platform.client.get(f"/api/v1/accounts/{acct}", headers=h).json()
    assert sum((r.amount for r in rows), Decimal(0)) == Decimal(account["cash"])
    assert Decimal(account["cash"]) == Decimal(100000) - Decimal("0.01") * deadline_trades[0].price
