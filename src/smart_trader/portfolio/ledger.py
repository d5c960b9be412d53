"""The cash ledger: every movement of cash is one append-only entry.

Balance after any entry = sum of all entries up to it, in the ledger's currency, exactly.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from smart_trader.core.errors import InvalidInputError
from smart_trader.portfolio.exact import EXACT


class EntryKind(StrEnum):
    """Why cash moved."""

    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRADE = "trade"  # cash paid for a buy (negative) or received for a sell (positive)
    COMMISSION = "commission"


class LedgerEntry(NamedTuple):
    """One cash movement. ``amount`` is signed (+ in, - out) in ``currency``; ``ref`` names the cause
    (a fill id for trades and commissions); ``ts`` is ns since the epoch, UTC."""

    entry_id: int
    ts: int
    kind: EntryKind
    amount: Decimal
    currency: str
    balance: Decimal
    ref: str = ""


class CashLedger:
    """Append-only cash ledger in one currency.

    Raises:
        InvalidInputError: a deposit or withdrawal that is not positive.
    """

    def __init__(self, currency: str) -> None:
        self.currency = currency.upper()
        self.entries: list[LedgerEntry] = []
        self.balance = Decimal(0)
        self._totals: dict[EntryKind, Decimal] = {}

    def post(self, ts: int, kind: EntryKind, amount: Decimal, ref: str = "") -> LedgerEntry:
        """Append an entry of signed ``amount`` and return it (the balance moves by exactly ``amount``).

        Raises:
            TypeError: ``amount`` is not a Decimal (binary floats never enter the ledger).
            InvalidInputError: ``amount`` is not finite, or a zero deposit/withdrawal.
        """
        if type(amount) is not Decimal:
            raise TypeError(f"ledger amounts are Decimal, not {type(amount).__name__}")
        if not amount.is_finite():
            raise InvalidInputError(f"{kind} amount must be a finite number, got {amount}")
        if kind in (EntryKind.DEPOSIT, EntryKind.WITHDRAWAL) and amount == 0:
            raise InvalidInputError(f"{kind} amount must not be zero")
        balance = EXACT.add(self.balance, amount)
        entry = LedgerEntry(len(self.entries) + 1, ts, kind, amount, self.currency, balance, ref)
        self.entries.append(entry)
        self.balance = balance
        self._totals[kind] = EXACT.add(self._totals.get(kind, Decimal(0)), amount)
        return entry

    def deposit(self, ts: int, amount: Decimal) -> LedgerEntry:
        """Add cash. Raises :class:`InvalidInputError` unless ``amount`` is finite and > 0."""
        if not isinstance(amount, Decimal):
            raise TypeError(f"ledger amounts are Decimal, not {type(amount).__name__}")
        if not amount.is_finite() or amount <= 0:
            raise InvalidInputError(f"deposit must be positive, got {amount}")
        return self.post(ts, EntryKind.DEPOSIT, amount)

    def withdraw(self, ts: int, amount: Decimal) -> LedgerEntry:
        """Remove cash. Raises :class:`InvalidInputError` unless 0 < ``amount`` <= balance (finite)."""
        if not isinstance(amount, Decimal):
            raise TypeError(f"ledger amounts are Decimal, not {type(amount).__name__}")
        if not amount.is_finite() or amount <= 0 or amount > self.balance:
            raise InvalidInputError(f"withdrawal must be positive and at most the balance {self.balance}, got {amount}")
        return self.post(ts, EntryKind.WITHDRAWAL, -amount)

    def total(self, kind: EntryKind | None = None) -> Decimal:
        """Exact sum of the entries (of one kind, or all); kept as running totals, O(1)."""
        return self.balance if kind is None else self._totals.get(kind, Decimal(0))
