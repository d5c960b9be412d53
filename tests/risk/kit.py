"""Builders of the risk tests: a real account session (account, paper broker, checks) with last prices the test
sets, on the execution tests' instruments (every number a string, exact)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from smart_trader.core.clock import MarketClock
from smart_trader.core.ids import InstrumentId
from smart_trader.execution.events import OrderRejected
from smart_trader.execution.orders import Order
from smart_trader.execution.paper_broker import PaperBroker
from smart_trader.trading.session import AccountSession, PreTradeCheck
from tests.execution.builders import ORCL, account, future

ES = future()


def session(
    *checks: PreTradeCheck, cash: str = "10000000", last: dict[InstrumentId, Decimal] | None = None
) -> AccountSession:
    """A session of a fresh cash account trading ORCL and ES with ``checks``; ``last`` holds the last prices the
    broker (and the checks) read, mutable by the test."""
    prices = last if last is not None else {}
    broker = PaperBroker(account(cash), {ORCL.id: ORCL, ES.id: ES}, last_price=prices.get)
    return AccountSession(broker.account, broker, MarketClock(), checks)


def reason(order: Order) -> str:
    """The rejection reason of ``order`` (fails when it was not rejected)."""
    event = order.events[-1]
    assert isinstance(event, OrderRejected), event
    return str(event.reason)


def reasons(orders: Sequence[Order]) -> list[str | None]:
    """Each order's rejection reason, ``None`` for one not rejected."""
    return [e.reason if isinstance(e := o.events[-1], OrderRejected) else None for o in orders]
