"""When writing the broker's changes fails, memory must not run ahead of the database: the runtime rebuilds every
account from what is stored, the lost fill happens again on a later trade, and the ledger keeps no gap."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from smart_trader.execution.events import Fill, OrderFilled
from smart_trader.execution.persist import OrderChange
from smart_trader.portfolio.tables import ledger_entries
from smart_trader.trading.session import AccountSession
from tests.app.conftest import Harness


class FailFirstFill:
    """A persistence contributor whose write fails for the first batch with a fill, every time that batch is tried
    (the writer retries it once); later batches write nothing of it."""

    def __init__(self) -> None:
        self.failing: list[list[Fill]] = []  # the fills of the batch that failed

    def collect(self, changes: list[OrderChange], accounts: list[AccountSession], snapshot: bool) -> list[Fill] | None:
        fills = [c.event.fill for c in changes if isinstance(c.event, OrderFilled)]
        return fills or None

    def write(self, conn: Any, rows: list[Fill]) -> None:
        if not self.failing or rows is self.failing[0]:
            self.failing[:] = [rows]
            raise RuntimeError("disk full (simulated)")

    def after_commit(self, rows: list[Fill]) -> None:
        pass


def test_a_failed_write_rebuilds_the_accounts_and_the_fill_happens_once(platform: Harness) -> None:
    h = platform.user()
    acct = platform.account(h)
    platform.push_trades(2)
    order = platform.order(h, acct, side="buy", type="market", qty="0.01")
    platform.wait_status(h, acct, order["id"], "accepted")

    runtime = platform.platform.runtime
    failer = FailFirstFill()  # a contributor of the runtime's batches: the whole batch with the first fill fails
    runtime.uow.register(failer)
    failing = failer.failing
    lost = platform.push_trades(1)[0]  # fills in memory; the write of that fill fails
    platform.settle()
    deadline = time.monotonic() + 10
    while not (failing and acct in runtime.books and not runtime.uow.writing):
        assert time.monotonic() < deadline, "the runtime did not rebuild the account after the failed write"
        time.sleep(0.01)
    assert runtime.books[acct].broker.orders[order["id"]].status.value == "accepted"  # rebuilt as stored
    deadline_trades = platform.push_trades(1)  # working again: it fills on this one
    filled = platform.wait_status(h, acct, order["id"], "filled")
    assert len(failing) == 1 and failing[0][0].price == lost.price  # the lost fill was at this trade
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
