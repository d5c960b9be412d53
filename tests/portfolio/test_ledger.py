"""The cash ledger: append-only entries, exact running balance, deposit and withdrawal rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smart_trader.core.errors import InvalidInputError
from smart_trader.portfolio.ledger import CashLedger, EntryKind
from tests.portfolio.kit import T0, D


def test_running_balance_after_each_entry_is_the_sum_of_the_entries_up_to_it() -> None:
    ledger = CashLedger("usd")

    entries = [
        ledger.deposit(T0, D("10000")),
        ledger.post(T0 + 1, EntryKind.TRADE, D("-1234.5678"), "F-1"),
        ledger.post(T0 + 1, EntryKind.COMMISSION, D("-0.4938"), "F-1"),
        ledger.post(T0 + 2, EntryKind.TRADE, D("1300.0001"), "F-2"),
        ledger.post(T0 + 2, EntryKind.COMMISSION, D("-0.52000004"), "F-2"),
        ledger.withdraw(T0 + 3, D("500")),
    ]

    assert [e.balance for e in entries] == [
        D("10000"),
        D("8765.4322"),
        D("8764.9384"),
        D("10064.9385"),
        D("10064.41849996"),
        D("9564.41849996"),
    ]
    assert [e.entry_id for e in entries] == [1, 2, 3, 4, 5, 6]
    assert [e.kind for e in entries] == [
        EntryKind.DEPOSIT,
        EntryKind.TRADE,
        EntryKind.COMMISSION,
        EntryKind.TRADE,
        EntryKind.COMMISSION,
        EntryKind.WITHDRAWAL,
    ]
    assert entries[-1].amount == D("-500")
    assert {e.currency for e in entries} == {"USD"}
    assert [e.ref for e in entries[1:5]] == ["F-1", "F-1", "F-2", "F-2"]
    assert ledger.entries == entries
    assert ledger.balance == ledger.total() == D("9564.41849996")


def test_total_by_kind_sums_only_that_kind() -> None:
    ledger = CashLedger("USD")
    ledger.deposit(T0, D("100"))
    ledger.post(T0, EntryKind.COMMISSION, D("-0.25"))
    ledger.post(T0, EntryKind.TRADE, D("-50"))
    ledger.post(T0, EntryKind.COMMISSION, D("-0.125"))
    ledger.deposit(T0, D("7"))

    assert ledger.total(EntryKind.COMMISSION) == D("-0.375")
    assert ledger.total(EntryKind.DEPOSIT) == D("107")
    assert ledger.total(EntryKind.TRADE) == D("-50")
    assert ledger.total(EntryKind.WITHDRAWAL) == 0
    assert ledger.total() == ledger.balance == D("56.625")


def test_a_balance_keeps_every_digit_a_float_would_lose() -> None:
    ledger = CashLedger("USD")
    ledger.deposit(T0, D("0.1"))
    ledger.deposit(T0, D("0.2"))
    for _ in range(1000):
        ledger.post(T0, EntryKind.COMMISSION, D("-0.0000001"))

    assert ledger.balance == D("0.2999")
    assert ledger.deposit(T0, D("12345678901234567890.123456789012345678")).balance == D(
        "12345678901234567890.423356789012345678"
    )


def test_withdrawing_the_whole_balance_leaves_exactly_zero() -> None:
    ledger = CashLedger("USD")
    ledger.deposit(T0, D("250.75"))

    entry = ledger.withdraw(T0 + 1, D("250.75"))

    assert entry.amount == D("-250.75")
    assert entry.balance == 0
    assert ledger.balance == 0


@pytest.mark.parametrize("amount", ["0", "-1", "-0.01", "0.000"])
def test_deposit_that_is_not_positive_is_invalid_input_and_posts_nothing(amount: str) -> None:
    ledger = CashLedger("USD")
    ledger.deposit(T0, D("10"))

    with pytest.raises(InvalidInputError, match="deposit must be positive"):
        ledger.deposit(T0, D(amount))

    assert len(ledger.entries) == 1
    assert ledger.balance == D("10")


@pytest.mark.parametrize("amount", ["0", "-5", "10.01", "1000"])
def test_withdrawal_not_positive_or_over_the_balance_is_invalid_input_and_posts_nothing(amount: str) -> None:
    ledger = CashLedger("USD")
    ledger.deposit(T0, D("10"))

    with pytest.raises(InvalidInputError, match="withdrawal must be positive and at most the balance"):
        ledger.withdraw(T0, D(amount))

    assert len(ledger.entries) == 1
    assert ledger.balance == D("10")


@pytest.mark.parametrize("kind", [EntryKind.DEPOSIT, EntryKind.WITHDRAWAL])
def test_posting_a_zero_deposit_or_withdrawal_entry_is_invalid_input(kind: EntryKind) -> None:
    ledger = CashLedger("USD")

    with pytest.raises(InvalidInputError, match="must not be zero"):
        ledger.post(T0, kind, D("0"))

    assert ledger.entries == []


def test_a_float_deposit_is_refused_and_posts_nothing() -> None:
    ledger = CashLedger("USD")

    with pytest.raises(TypeError):
        ledger.deposit(T0, 0.1)  # type: ignore[arg-type]

    assert ledger.entries == []
    assert ledger.balance == 0


@pytest.mark.parametrize("amount", ["Infinity", "NaN"])
def test_a_non_finite_deposit_is_invalid_input(amount: str) -> None:
    ledger = CashLedger("USD")

    with pytest.raises(InvalidInputError):
        ledger.deposit(T0, Decimal(amount))

    assert ledger.entries == []
