"""Accounts: a cash ledger in one currency plus netting positions, marked to market on demand.

equity = cash + Σ positions' quantity × mark × multiplier  (Σ over open positions, quote = account currency)

Single-currency accounts: an instrument whose quote currency differs from the account's is refused
(multi-currency balances come with FX conversion later).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from enum import StrEnum

from smart_trader.core.errors import InvalidInputError, NotFoundError, RejectedByRulesError
from smart_trader.core.ids import AccountId, InstrumentId
from smart_trader.core.instruments import Instrument
from smart_trader.core.values import Money
from smart_trader.execution.enums import OrderSide
from smart_trader.execution.events import Fill
from smart_trader.portfolio.exact import EXACT
from smart_trader.portfolio.ledger import CashLedger, EntryKind
from smart_trader.portfolio.position import Position

MarkProvider = Callable[[InstrumentId], Decimal | None]


class AccountType(StrEnum):
    """``cash``: no short selling, buys limited to cash. ``margin``: shorts allowed (no leverage limit yet)."""

    CASH = "cash"
    MARGIN = "margin"


class Account:
    """A trading account.

    Args:
        account_id: the account's id.
        currency: the account currency (e.g. ``"USD"``); instruments must be quoted in it.
        account_type: see :class:`AccountType`.
        mark_provider: returns the current mark price of an instrument (quote currency), or ``None``
            when unknown, in which case the last fill price is used.
    """

    def __init__(
        self,
        account_id: AccountId,
        currency: str,
        account_type: AccountType = AccountType.CASH,
        mark_provider: MarkProvider | None = None,
    ) -> None:
        self.account_id = account_id
        self.currency = currency.upper()
        self.account_type = account_type
        self.ledger = CashLedger(self.currency)
        self.positions: dict[InstrumentId, Position] = {}
        self.mark_provider = mark_provider
        self._last_fill_price: dict[InstrumentId, Decimal] = {}

    @property
    def cash(self) -> Decimal:
        """Cash balance (account currency)."""
        return self.ledger.balance

    @property
    def balance(self) -> Money:
        """Cash balance as :class:`Money` in the account currency."""
        return Money(self.ledger.balance, self.currency)

    def deposit(self, ts: int, amount: Decimal) -> None:
        """Deposit cash (ts in ns UTC; amount > 0 in account currency).

        Raises:
            InvalidInputError: the amount is not a finite positive number.
        """
        self.ledger.deposit(ts, amount)

    def withdraw(self, ts: int, amount: Decimal) -> None:
        """Withdraw cash (ts in ns UTC; 0 < amount <= cash, account currency).

        Raises:
            InvalidInputError: the amount is not positive or exceeds the cash balance.
        """
        self.ledger.withdraw(ts, amount)

    def position(self, instrument_id: InstrumentId) -> Position | None:
        """The position in ``instrument_id`` (``None`` if never traded)."""
        return self.positions.get(instrument_id)

    def quantity(self, instrument_id: InstrumentId) -> Decimal:
        """Signed position quantity (0 when none)."""
        p = self.positions.get(instrument_id)
        return p.quantity if p is not None else Decimal(0)

    def check_instrument(self, instrument: Instrument) -> None:
        """Raise :class:`RejectedByRulesError` when ``instrument`` is not quoted in the account currency."""
        if instrument.quote_currency != self.currency:
            raise RejectedByRulesError(
                f"{instrument.id} is quoted in {instrument.quote_currency}, "
                f"account {self.account_id} holds {self.currency}"
            )

    def apply_fill(self, fill: Fill, instrument: Instrument) -> Decimal:
        """Post a fill: trade cash and commission to the ledger, quantity to the position.

        Returns the P&L the fill realized (before commission, account currency).

        Raises:
            RejectedByRulesError: the fill is for another instrument, or in another currency than the account's.
            InvalidInputError: a quantity or price that is not positive, or a negative commission.
        """
        if fill.instrument_id != instrument.id:
            raise RejectedByRulesError(f"fill of {fill.instrument_id} posted with instrument {instrument.id}")
        if instrument.quote_currency != self.currency:
            self.check_instrument(instrument)
        if fill.commission_currency != self.currency:
            raise RejectedByRulesError(
                f"commission in {fill.commission_currency}, account {self.account_id} holds {self.currency}"
            )
        if fill.quantity <= 0 or fill.price <= 0 or fill.commission < 0:
            raise InvalidInputError(f"fill {fill.fill_id} needs a positive quantity and price and a commission >= 0")
        pos = self.positions.get(fill.instrument_id)
        if pos is None:
            pos = self.positions[fill.instrument_id] = Position(fill.instrument_id, instrument.multiplier)
        value = EXACT.multiply(EXACT.multiply(fill.quantity, fill.price), instrument.multiplier)
        self.ledger.post(fill.ts_event, EntryKind.TRADE, -value if fill.side is OrderSide.BUY else value, fill.fill_id)
        if fill.commission:
            self.ledger.post(fill.ts_event, EntryKind.COMMISSION, -fill.commission, fill.fill_id)
        self._last_fill_price[fill.instrument_id] = fill.price
        return pos.apply_fill(fill.side, fill.quantity, fill.price, fill.commission, fill.ts_event)

    def mark(self, instrument_id: InstrumentId) -> Decimal | None:
        """Current mark price of an instrument: the provider's, else the last fill price."""
        if self.mark_provider is not None:
            m = self.mark_provider(instrument_id)
            if m is not None:
                return m
        return self._last_fill_price.get(instrument_id)

    def market_value(self) -> Decimal:
        """Σ quantity × mark × multiplier over open positions (account currency)."""
        return market_value(self.positions.values(), self.mark)

    @property
    def equity(self) -> Decimal:
        """cash + marked-to-market positions (account currency)."""
        return EXACT.add(self.cash, self.market_value())

    def equity_at(self, mark: Callable[[InstrumentId], Decimal | None]) -> Decimal:
        """cash + positions marked at ``mark`` (account currency): the equity at prices other than the current ones
        (a point of a bar's path).

        An instrument ``mark`` has no price for is marked as :meth:`mark` marks it (the provider's price, else the last
        fill price).

        Raises:
            NotFoundError: an open position has no mark price at all.
        """
        own = self.mark

        def marked(iid: InstrumentId) -> Decimal | None:
            price = mark(iid)
            return own(iid) if price is None else price

        return EXACT.add(self.cash, market_value(self.positions.values(), marked))

    @property
    def realized_pnl(self) -> Decimal:
        """Σ realized P&L over positions, before commissions."""
        total = Decimal(0)
        for p in self.positions.values():
            total = EXACT.add(total, p.realized_pnl)
        return total

    @property
    def unrealized_pnl(self) -> Decimal:
        """Σ unrealized P&L of open positions at their marks."""
        return unrealized_pnl(self.positions.values(), self.mark)

    @property
    def commissions(self) -> Decimal:
        """Total commission paid (positive number)."""
        return -self.ledger.total(EntryKind.COMMISSION)

    @property
    def buying_power(self) -> Decimal:
        """What new buys may cost: cash for a cash account, equity for a margin account."""
        return buying_power(self.account_type, self.cash, self.equity)


def market_value(positions: Iterable[Position], mark: Callable[[InstrumentId], Decimal | None]) -> Decimal:
    """Σ quantity × mark × multiplier over the open positions (account currency, exact).

    Raises:
        NotFoundError: an open position has no mark price.
    """
    total = Decimal(0)
    for pos in positions:
        if pos.quantity:
            total = EXACT.add(total, pos.market_value(_mark_of(pos, mark)))
    return total


def unrealized_pnl(positions: Iterable[Position], mark: Callable[[InstrumentId], Decimal | None]) -> Decimal:
    """Σ unrealized P&L of the open positions at their marks (account currency, exact).

    Raises:
        NotFoundError: an open position has no mark price.
    """
    total = Decimal(0)
    for pos in positions:
        if pos.quantity:
            total = EXACT.add(total, pos.unrealized_pnl(_mark_of(pos, mark)))
    return total


def buying_power(account_type: AccountType, cash: Decimal, equity: Decimal) -> Decimal:
    """What new buys may cost: cash for a cash account, equity for a margin account (no leverage yet)."""
    return cash if account_type is AccountType.CASH else equity


def _mark_of(pos: Position, mark: Callable[[InstrumentId], Decimal | None]) -> Decimal:
    price = mark(pos.instrument_id)
    if price is None:
        raise NotFoundError(f"no mark price for the open position in {pos.instrument_id}")
    return price
