"""Accounts, hand-computed: trade and commission entries in the ledger, equity with a multiplier, marks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smart_trader.core.errors import InvalidInputError, RejectedByRulesError
from smart_trader.core.ids import InstrumentId
from smart_trader.portfolio.account import AccountType
from smart_trader.portfolio.exact import EXACT
from smart_trader.portfolio.ledger import EntryKind
from tests.portfolio.kit import BTC, BUY, ES, SELL, T0, D, FillMaker, make_account, make_instrument

ACME = make_instrument("ACME", "NASDAQ", asset_class="equity", base="ACME", tick="0.01", lot="1")


def test_trades_and_commissions_are_separate_entries_with_the_right_running_balance() -> None:
    fill = FillMaker()
    account = make_account("10000")
    fills = [
        fill(ACME, BUY, "10", "100", "1.00"),
        fill(ACME, BUY, "5", "106", "0.53"),
        fill(ACME, SELL, "6", "110", "0.66"),
        fill(ACME, SELL, "12", "95", "1.14"),
        fill(ACME, BUY, "3", "90", "0.27"),
    ]

    realized = [account.apply_fill(f, ACME) for f in fills]

    assert realized == [0, 0, D("48"), D("-63"), D("15")]
    rows = [(e.entry_id, e.kind, e.amount, e.balance, e.ref) for e in account.ledger.entries]
    assert rows == [
        (1, EntryKind.DEPOSIT, D("10000"), D("10000"), ""),
        (2, EntryKind.TRADE, D("-1000"), D("9000"), "F-1"),
        (3, EntryKind.COMMISSION, D("-1.00"), D("8999.00"), "F-1"),
        (4, EntryKind.TRADE, D("-530"), D("8469.00"), "F-2"),
        (5, EntryKind.COMMISSION, D("-0.53"), D("8468.47"), "F-2"),
        (6, EntryKind.TRADE, D("660"), D("9128.47"), "F-3"),
        (7, EntryKind.COMMISSION, D("-0.66"), D("9127.81"), "F-3"),
        (8, EntryKind.TRADE, D("1140"), D("10267.81"), "F-4"),
        (9, EntryKind.COMMISSION, D("-1.14"), D("10266.67"), "F-4"),
        (10, EntryKind.TRADE, D("-270"), D("9996.67"), "F-5"),
        (11, EntryKind.COMMISSION, D("-0.27"), D("9996.40"), "F-5"),
    ]
    assert [e.ts for e in account.ledger.entries[1:3]] == [fills[0].ts_event] * 2
    assert account.cash == D("9996.40")
    assert account.realized_pnl == 0  # 48 − 63 + 15
    assert account.commissions == D("3.60")
    assert account.quantity(ACME.id) == 0
    assert account.equity == account.cash == D("9996.40")  # flat: equity is cash
    assert account.equity - D("10000") == account.realized_pnl - account.commissions


def test_a_zero_commission_fill_posts_only_the_trade_entry() -> None:
    fill = FillMaker()
    account = make_account("1000")

    account.apply_fill(fill(ACME, BUY, "2", "10.50"), ACME)

    assert [(e.kind, e.amount) for e in account.ledger.entries[1:]] == [(EntryKind.TRADE, D("-21.00"))]
    assert account.commissions == 0


def test_equity_is_cash_plus_quantity_times_mark_times_multiplier() -> None:
    marks = {ES.id: D("4510.50")}
    fill = FillMaker()
    account = make_account("100000", mark_provider=marks.get)

    account.apply_fill(fill(ES, BUY, "2", "4500.25", "4.20"), ES)

    assert account.cash == D("-350029.20")  # 100000 − 2 × 4500.25 × 50 − 4.20
    assert account.market_value() == D("451050")  # 2 × 4510.50 × 50
    assert account.equity == D("101020.80")
    assert account.unrealized_pnl == D("1025")  # 451050 − 450025
    assert account.realized_pnl + account.unrealized_pnl - account.commissions == account.equity - D("100000")


def test_a_flip_with_a_multiplier_then_a_new_mark() -> None:
    marks = {ES.id: D("4510.50")}
    fill = FillMaker()
    account = make_account("100000", mark_provider=marks.get)
    account.apply_fill(fill(ES, BUY, "2", "4500.25", "4.20"), ES)

    realized = account.apply_fill(fill(ES, SELL, "3", "4512.75", "6.30"), ES)
    marks[ES.id] = D("4490")

    assert realized == D("1250")  # (4512.75 − 4500.25) × 2 × 50
    assert account.quantity(ES.id) == D("-1")
    position = account.position(ES.id)
    assert position is not None
    assert position.cost_basis == D("-225637.5")  # −1 × 4512.75 × 50
    assert account.cash == D("326877.00")  # −350029.20 + 3 × 4512.75 × 50 − 6.30
    assert account.market_value() == D("-224500")  # −1 × 4490 × 50
    assert account.equity == D("102377.00")
    assert account.unrealized_pnl == D("1137.5")  # −224500 + 225637.5
    assert account.commissions == D("10.50")
    assert account.realized_pnl + account.unrealized_pnl - account.commissions == account.equity - D("100000")


def test_without_a_mark_the_last_fill_price_marks_the_position() -> None:
    marks: dict[InstrumentId, Decimal] = {}
    fill = FillMaker()
    account = make_account("100000", mark_provider=marks.get)
    account.apply_fill(fill(BTC, BUY, "0.5", "40000"), BTC)
    account.apply_fill(fill(BTC, BUY, "0.25", "43000.10"), BTC)

    assert account.mark(BTC.id) == D("43000.10")
    assert account.market_value() == D("32250.075")  # 0.75 × 43000.10
    assert account.unrealized_pnl == D("1500.05")  # 32250.075 − 20000 − 10750.025

    marks[BTC.id] = D("39000")

    assert account.mark(BTC.id) == D("39000")
    assert account.equity == D("100000") - D("30750.025") + D("29250")


def test_equity_at_other_prices_marks_an_instrument_they_lack_as_the_account_does() -> None:
    """A valuation at one instrument's new price, the market knowing nothing of the other (a restart before it
    traded): the other is marked at its last fill price instead of failing (the feed's dispatch must not stop)."""
    market: dict[InstrumentId, Decimal] = {}
    fill = FillMaker()
    account = make_account("100000", account_type=AccountType.MARGIN, mark_provider=market.get)
    account.apply_fill(fill(BTC, BUY, "0.5", "40000"), BTC)
    account.apply_fill(fill(ES, SELL, "1", "5000.25"), ES)

    def btc_moves(iid: InstrumentId) -> Decimal | None:
        return D("41000") if iid == BTC.id else market.get(iid)

    expected = account.cash + D("0.5") * D("41000") - D("1") * D("5000.25") * ES.multiplier
    assert account.equity_at(btc_moves) == expected


def test_equity_sums_positions_in_several_instruments() -> None:
    fill = FillMaker()
    account = make_account("50000")
    account.apply_fill(fill(BTC, BUY, "0.1", "60000.00", "3.60"), BTC)
    account.apply_fill(fill(ES, SELL, "1", "5000.25", "2.10"), ES)
    account.apply_fill(fill(ACME, BUY, "7", "12.34", "0.01"), ACME)

    # cash: 50000 − 6000 − 3.60 + 250012.50 − 2.10 − 86.38 − 0.01
    assert account.cash == D("293920.41")
    # marked at the fill prices: 6000 − 250012.50 + 86.38
    assert account.market_value() == D("-243926.12")
    assert account.equity == D("49994.29")
    assert account.unrealized_pnl == 0
    assert account.commissions == D("5.71")


def test_buying_power_is_cash_for_a_cash_account_and_equity_for_a_margin_account() -> None:
    marks = {ACME.id: D("120")}
    cash_account = make_account("5000", account_type=AccountType.CASH, mark_provider=marks.get)
    margin_account = make_account("5000", account_type=AccountType.MARGIN, mark_provider=marks.get)
    for account in (cash_account, margin_account):
        account.apply_fill(FillMaker()(ACME, BUY, "10", "100", "1"), ACME)

    assert cash_account.buying_power == D("3999")
    assert margin_account.buying_power == D("5199")  # 3999 + 10 × 120


@pytest.mark.parametrize("amount", ["0", "-100"])
def test_account_deposit_that_is_not_positive_is_invalid_input(amount: str) -> None:
    account = make_account("100")

    with pytest.raises(InvalidInputError):
        account.deposit(T0, D(amount))

    assert account.cash == D("100")


def test_deposits_and_withdrawals_move_cash_and_equity_but_not_pnl() -> None:
    fill = FillMaker()
    account = make_account("1000")
    account.apply_fill(fill(ACME, BUY, "5", "100", "0.50"), ACME)

    account.deposit(T0 + 10, D("250.25"))
    account.ledger.withdraw(T0 + 11, D("300"))

    assert account.cash == D("449.75")  # 1000 − 500 − 0.50 + 250.25 − 300
    assert account.equity == D("949.75")
    assert account.realized_pnl == account.unrealized_pnl == 0
    with pytest.raises(InvalidInputError):
        account.ledger.withdraw(T0 + 12, D("449.76"))
    assert account.cash == D("449.75")


def test_an_instrument_in_another_currency_is_rejected_by_the_account_check() -> None:
    account = make_account("100")
    eur = make_instrument("SAP", "XETRA", asset_class="equity", base="SAP", quote="EUR", lot="1")

    with pytest.raises(RejectedByRulesError, match="quoted in EUR"):
        account.check_instrument(eur)
    account.check_instrument(ACME)


def test_a_fill_in_another_currency_is_refused() -> None:
    account = make_account("100000")
    eur = make_instrument("SAP", "XETRA", asset_class="equity", base="SAP", quote="EUR", lot="1")
    fill = FillMaker()(eur, BUY, "10", "180.50", "1")

    with pytest.raises(RejectedByRulesError):
        account.apply_fill(fill, eur)

    assert account.cash == D("100000")


def test_account_realized_pnl_is_the_exact_sum_of_the_positions() -> None:
    fill = FillMaker()
    account = make_account("100000")
    account.apply_fill(fill(ACME, BUY, "1", "10"), ACME)
    account.apply_fill(fill(ACME, BUY, "2", "11.01"), ACME)  # average 32.02 / 3: does not terminate
    account.apply_fill(fill(ACME, SELL, "1", "99999.99"), ACME)
    position = account.position(ACME.id)
    assert position is not None

    assert account.realized_pnl == position.realized_pnl
    assert EXACT.subtract(EXACT.add(account.realized_pnl, account.unrealized_pnl), account.commissions) == (
        account.equity - D("100000")
    )
