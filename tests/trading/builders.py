"""Builders of the trading-pipeline tests: sessions on a paper broker with a market clock, and monitors that record
what they are given (order events, valuations) with the equity bands the tests choose.

Prices and quantities are written as strings and become exact Decimals (see ``tests/execution/builders.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from smart_trader.core.clock import MarketClock
from smart_trader.core.ids import AccountId, FillId, InstrumentId, OrderId
from smart_trader.core.instruments import Instrument
from smart_trader.execution.enums import LiquiditySide, OrderSide
from smart_trader.execution.events import Fill, OrderEvent
from smart_trader.execution.orders import Order
from smart_trader.execution.paper_broker import PaperBroker
from smart_trader.portfolio.account import Account, AccountType
from smart_trader.trading.session import AccountSession, Monitor, PreTradeCheck

D = Decimal


class RecordingMonitor:
    """Records every order event (with the position held when it came) and every valuation; its band is fixed
    (``(None, None)`` by default: no price move matters to it)."""

    def __init__(self, band: tuple[Decimal | None, Decimal | None] = (None, None)) -> None:
        self.band = band
        self.events: list[tuple[Order, OrderEvent, Decimal]] = []
        self.valuations: list[tuple[int, Decimal]] = []

    def on_order_event(self, session: AccountSession, order: Order, event: OrderEvent) -> None:
        self.events.append((order, event, session.account.quantity(order.instrument_id)))

    def on_valuation(self, session: AccountSession, ts: int, equity: Decimal) -> None:
        self.valuations.append((ts, equity))

    def equity_band(self, session: AccountSession) -> tuple[Decimal | None, Decimal | None]:
        return self.band


class Marks:
    """Mark prices by instrument, shared by an account (``mark_provider``) and a dispatcher (``marks``)."""

    def __init__(self) -> None:
        self.prices: dict[InstrumentId, Decimal] = {}

    def __call__(self, instrument_id: InstrumentId) -> Decimal | None:
        return self.prices.get(instrument_id)


def margin_account(
    cash: str,
    marks: Callable[[InstrumentId], Decimal | None] | None = None,
    name: str = "A",
    currency: str = "USD",
) -> Account:
    """A margin account (shorts allowed) holding ``cash`` deposited at ts 0."""
    acct = Account(AccountId(f"ACC-{name}"), currency, AccountType.MARGIN, mark_provider=marks)
    acct.deposit(0, D(cash))
    return acct


def session(
    account: Account,
    *instruments: Instrument,
    checks: Sequence[PreTradeCheck] = (),
    monitors: Sequence[Monitor] = (),
    clock: MarketClock | None = None,
) -> AccountSession:
    """A session on a fresh paper broker for ``account`` trading ``instruments``."""
    paper = PaperBroker(account, {i.id: i for i in instruments})
    return AccountSession(account, paper, clock or MarketClock(0), checks, monitors)


def hold(acct: Account, instrument: Instrument, quantity: Decimal, price: Decimal, name: str = "SEED") -> None:
    """Open a position of signed ``quantity`` at ``price`` with a fill posted to the account (no commission)."""
    side = OrderSide.BUY if quantity > 0 else OrderSide.SELL
    fill = Fill(
        FillId(f"{name}-F"),
        OrderId(f"{name}-O"),
        None,
        instrument.id,
        side,
        abs(quantity),
        price,
        D(0),
        instrument.quote_currency,
        LiquiditySide.TAKER,
        0,
    )
    acct.apply_fill(fill, instrument)
