"""Netting positions, hand-computed: average entry price, realized P&L, flips through zero, covers."""

from __future__ import annotations

from decimal import Decimal

from smart_trader.core.ids import InstrumentId
from smart_trader.portfolio.position import Position
from tests.portfolio.kit import BUY, SELL, T0, D

IID = InstrumentId("ACME.NASDAQ")


def test_buy_then_add_at_another_price_averages_the_entry_price() -> None:
    pos = Position(IID)

    pos.apply_fill(BUY, D("10"), D("100"), D("1"), T0)
    pos.apply_fill(BUY, D("5"), D("106"), D("0.53"), T0 + 1)

    assert pos.quantity == D("15")
    assert pos.cost_basis == D("1530")  # 10 × 100 + 5 × 106
    assert pos.avg_entry_price == D("102")  # 1530 / 15
    assert pos.realized_pnl == 0
    assert pos.commissions == D("1.53")
    assert pos.fills == 2
    assert pos.ts_opened == T0
    assert pos.ts_last == T0 + 1


def test_partial_sell_realizes_against_the_average_and_keeps_it() -> None:
    pos = Position(IID)
    pos.apply_fill(BUY, D("10"), D("100"), D("0"), T0)
    pos.apply_fill(BUY, D("5"), D("106"), D("0"), T0 + 1)

    realized = pos.apply_fill(SELL, D("6"), D("110"), D("0.66"), T0 + 2)

    assert realized == D("48")  # (110 − 102) × 6
    assert pos.realized_pnl == D("48")
    assert pos.quantity == D("9")
    assert pos.cost_basis == D("918")  # 9 × 102
    assert pos.avg_entry_price == D("102")
    assert pos.unrealized_pnl(D("104.5")) == D("22.5")  # 9 × (104.5 − 102)


def test_sell_through_zero_realizes_the_closed_part_and_opens_a_short_at_the_fill_price() -> None:
    pos = Position(IID)
    pos.apply_fill(BUY, D("10"), D("100"), D("0"), T0)
    pos.apply_fill(BUY, D("5"), D("106"), D("0"), T0 + 1)
    pos.apply_fill(SELL, D("6"), D("110"), D("0"), T0 + 2)

    realized = pos.apply_fill(SELL, D("12"), D("95"), D("1.14"), T0 + 3)

    assert realized == D("-63")  # the 9 long closed at (95 − 102) × 9; the other 3 open short
    assert pos.realized_pnl == D("-15")  # 48 − 63
    assert pos.quantity == D("-3")
    assert pos.cost_basis == D("-285")  # −3 × 95
    assert pos.avg_entry_price == D("95")
    assert pos.unrealized_pnl(D("97")) == D("-6")  # short 3 from 95, marked at 97


def test_cover_closes_the_short_and_leaves_a_flat_position_with_no_cost() -> None:
    pos = Position(IID)
    for side, qty, px in [(BUY, "10", "100"), (BUY, "5", "106"), (SELL, "6", "110"), (SELL, "12", "95")]:
        pos.apply_fill(side, D(qty), D(px), D("0"), T0)

    realized = pos.apply_fill(BUY, D("3"), D("90"), D("0.27"), T0 + 4)

    assert realized == D("15")  # (95 − 90) × 3
    assert pos.realized_pnl == D("0")  # 48 − 63 + 15
    assert pos.quantity == 0
    assert pos.is_flat
    assert pos.cost_basis == 0
    assert pos.avg_entry_price is None
    assert pos.unrealized_pnl(D("123")) == 0
    assert pos.commissions == D("0.27")


def test_buy_through_zero_from_a_short_opens_a_long_at_the_fill_price() -> None:
    pos = Position(IID)
    pos.apply_fill(SELL, D("4"), D("50.25"), D("0"), T0)
    pos.apply_fill(SELL, D("4"), D("50.75"), D("0"), T0 + 1)  # short 8 @ 50.5

    realized = pos.apply_fill(BUY, D("10"), D("49.5"), D("0"), T0 + 2)

    assert realized == D("8")  # (50.5 − 49.5) × 8
    assert pos.quantity == D("2")
    assert pos.cost_basis == D("99")
    assert pos.avg_entry_price == D("49.5")


def test_a_multiplier_scales_cost_realized_and_unrealized_but_not_the_average_price() -> None:
    pos = Position(InstrumentId("ESZ4.CME"), multiplier=D("50"))
    pos.apply_fill(BUY, D("2"), D("4500.25"), D("4.20"), T0)
    pos.apply_fill(BUY, D("1"), D("4503.50"), D("2.10"), T0 + 1)

    assert pos.cost_basis == D("675200")  # (2 × 4500.25 + 4503.50) × 50
    assert pos.avg_entry_price == D("4501.333333333333333333333333")  # 13504 / 3, to 28 digits
    assert pos.unrealized_pnl(D("4510")) == D("1300")  # 3 × 4510 × 50 − 675200

    realized = pos.apply_fill(SELL, D("3"), D("4498.75"), D("6.30"), T0 + 2)

    assert realized == D("-387.5")  # 3 × 4498.75 × 50 − 675200
    assert pos.quantity == 0
    assert pos.cost_basis == 0


def test_a_fractional_multiplier_short_position() -> None:
    pos = Position(InstrumentId("MBTZ4.CME"), multiplier=D("0.1"))

    pos.apply_fill(SELL, D("4"), D("61235"), D("0"), T0)
    realized = pos.apply_fill(BUY, D("1"), D("60000"), D("0"), T0 + 1)

    assert realized == D("123.5")  # (61235 − 60000) × 1 × 0.1
    assert pos.quantity == D("-3")
    assert pos.cost_basis == D("-18370.5")  # −3 × 61235 × 0.1
    assert pos.avg_entry_price == D("61235")
    assert pos.unrealized_pnl(D("62000")) == D("-229.5")  # −3 × 62000 × 0.1 + 18370.5


def test_a_non_terminating_average_still_closes_to_an_exact_total() -> None:
    pos = Position(IID)
    pos.apply_fill(BUY, D("1"), D("10"), D("0"), T0)
    pos.apply_fill(BUY, D("2"), D("11"), D("0"), T0 + 1)  # avg 32/3

    first = pos.apply_fill(SELL, D("1"), D("12"), D("0"), T0 + 2)
    second = pos.apply_fill(SELL, D("2"), D("12"), D("0"), T0 + 3)

    # 1/3 of the cost cannot be written exactly: the first close rounds, the last one takes the rest,
    # so the total is exact: 3 × 12 − 32
    assert abs(first - (12 - Decimal(32) / 3)) < D("1e-25")
    assert first + second == D("4")
    assert pos.realized_pnl == D("4")
    assert pos.cost_basis == 0


def test_flat_position_has_no_average_and_zero_unrealized() -> None:
    pos = Position(IID)

    assert pos.is_flat
    assert pos.avg_entry_price is None
    assert pos.unrealized_pnl(D("100")) == 0


def test_selling_a_third_at_the_entry_price_realizes_exactly_zero() -> None:
    pos = Position(IID)
    pos.apply_fill(BUY, D("3"), D("10"), D("0"), T0)

    realized = pos.apply_fill(SELL, D("1"), D("10"), D("0"), T0 + 1)

    assert realized == 0
    assert pos.cost_basis == D("20")
    assert pos.avg_entry_price == D("10")


def test_a_flip_through_zero_reopens_the_position_at_the_flip_time() -> None:
    pos = Position(IID)
    pos.apply_fill(BUY, D("1"), D("10"), D("0"), T0)

    pos.apply_fill(SELL, D("3"), D("12"), D("0"), T0 + 5)

    assert pos.quantity == D("-2")
    assert pos.ts_opened == T0 + 5
