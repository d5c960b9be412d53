"""Risk controls reach the trading runtime even when their event is lost: the runtime re-reads changed limits and
halts from the database every few seconds (``TradingRuntime._limits_loop``)."""

from __future__ import annotations

import time

from smart_trader.execution.limits import OrderLimits
from smart_trader.risk import store as risk_store
from smart_trader.trading.session import TradingState
from tests.app.conftest import Harness
from tests.app.security_support import write

FAR = {"side": "buy", "type": "limit", "qty": "0.001", "limit_price": "1000"}


def test_a_halt_written_without_its_event_still_reaches_the_runtime(platform: Harness) -> None:
    headers = platform.user()
    account = platform.account(headers)
    platform.push_trades(5)
    platform.order(headers, account, **FAR)  # loads the account's book into the runtime
    deadline = time.monotonic() + 10
    while account not in platform.platform.runtime.books:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    session = platform.platform.runtime.books[account].session
    broker = session.broker
    assert session.state is TradingState.ACTIVE
    # a risk manager's halt whose event never arrives (a lost pub/sub message, an API process without Redis)
    write(platform, lambda c: risk_store.set_state(c, account, risk_store.HALTED, "lost event", "risk-1"))
    write(platform, lambda c: risk_store.set_limits(c, account, 7, 3, "risk-1"))
    deadline = time.monotonic() + 15
    risk = platform.platform.runtime.books[account].risk
    while session.state is not TradingState.HALTED or risk.limits.max_open_orders != 7:
        assert time.monotonic() < deadline, "the runtime never re-read the account's limits"
        time.sleep(0.05)
    assert session.state_reason == "lost event" and risk.limits.max_orders_per_second == 3
    assert broker.limits == OrderLimits()  # the session enforces the limits, not the broker: each is checked once
    order = platform.order(headers, account, **FAR)
    deadline = time.monotonic() + 10
    while True:
        got = platform.client.get(f"/api/v1/accounts/{account}/orders/{order['id']}", headers=headers).json()
        if got["status"] != "new":
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert got["status"] == "rejected" and "account halted: lost event" in got["reason"]
