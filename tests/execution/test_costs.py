"""Commission and slippage models: exact commissions in the quote currency, slipped prices on the tick grid."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smart_trader.core.errors import InvalidInputError
from smart_trader.execution.costs import (
    BpsCommission,
    BpsSlippage,
    NoCommission,
    NoSlippage,
    PerUnitCommission,
    TickSlippage,
)
from smart_trader.execution.paper_broker import FillConfig
from tests.execution.builders import BTC, ORCL, D, crypto, future

ES = future()


# -- commissions ---------------------------------------------------------------------------------------------
def test_bps_commission_is_the_exact_share_of_notional() -> None:
    fee = BpsCommission(D("7.5"))

    assert fee.commission(D(3), D("123.45"), ORCL) == D("0.2777625")  # 370.35 × 0.00075, unrounded


def test_bps_commission_counts_the_contract_multiplier() -> None:
    fee = BpsCommission(D(1))

    assert fee.commission(D(2), D("4500.25"), ES) == D("45.0025")  # 2 × 4500.25 × 50 × 0.0001


def test_bps_commission_on_a_fractional_crypto_fill_is_exact() -> None:
    fee = BpsCommission(D(10))  # Binance spot taker, 0.1 %

    assert fee.commission(D("0.01234"), D("43210.55"), BTC) == D("0.533218187")


def test_negative_bps_commission_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="must not be negative"):
        BpsCommission(D(-1))


@pytest.mark.parametrize(
    ("shares", "expected"),
    [("1", "1.00"), ("100", "1.00"), ("200", "1.000"), ("1000", "5.000")],
)
def test_per_share_commission_with_a_minimum_per_fill(shares: str, expected: str) -> None:
    fee = PerUnitCommission(D("0.005"), minimum=D("1.00"))  # the usual US-equity schedule

    assert fee.commission(D(shares), D("50.00"), ORCL) == D(expected)


@pytest.mark.parametrize(("per_unit", "minimum"), [("-0.005", "1"), ("0.005", "-1")])
def test_negative_per_unit_commission_or_minimum_is_refused(per_unit: str, minimum: str) -> None:
    with pytest.raises(InvalidInputError):
        PerUnitCommission(D(per_unit), D(minimum))


def test_no_commission_is_zero() -> None:
    assert NoCommission().commission(D(1000), D("100.00"), ORCL) == 0


# -- largest quantity a notional buys ------------------------------------------------------------------------
def test_without_commission_a_notional_buys_its_value_floored_to_the_lot() -> None:
    lot_001 = crypto(lot="0.001")

    assert NoCommission().max_quantity(D(1000), D("300.00"), lot_001) == D("3.333")


def test_bps_commission_is_paid_out_of_the_notional() -> None:
    lot_001 = crypto(lot="0.001")
    fee = BpsCommission(D(10))

    qty = fee.max_quantity(D(1000), D("300.00"), lot_001)

    assert qty == D("3.330")  # 3.330 × 300 × 1.001 = 999.999; 3.331 would cost 1000.2993


def test_per_share_minimum_is_paid_out_of_the_notional() -> None:
    fee = PerUnitCommission(D("0.005"), minimum=D(1))

    assert fee.max_quantity(D(1000), D("10.00"), ORCL) == D(99)  # 100 shares would cost 1001


def test_notional_under_one_lot_buys_nothing() -> None:
    assert BpsCommission(D(10)).max_quantity(D(5), D("10.00"), ORCL) == 0


def test_bps_notional_quantity_is_the_largest_lot_multiple_that_fits() -> None:
    # a coin traded in 1e-8 lots with a 60 bps taker fee (Coinbase retail tier); 1000 at 3000.00
    coin = crypto(lot="0.00000001")
    fee = BpsCommission(D(60))
    price = D("3000.00")

    qty = fee.max_quantity(D(1000), price, coin)

    def cost(q: Decimal) -> Decimal:
        return q * price + fee.commission(q, price, coin)

    assert cost(qty) <= 1000
    assert cost(qty + coin.lot_size) > 1000  # one more lot would not fit: 0.33134526, not 0.33133334


# -- slippage ------------------------------------------------------------------------------------------------
def test_tick_slippage_moves_buys_up_and_sells_down_by_whole_ticks() -> None:
    slip = TickSlippage(2)

    assert slip.adjust(D("100.00"), True, ORCL) == D("100.02")
    assert slip.adjust(D("100.00"), False, ORCL) == D("99.98")


def test_tick_slippage_never_pushes_a_sell_below_one_tick() -> None:
    assert TickSlippage(5).adjust(D("0.03"), False, ORCL) == D("0.01")


def test_tick_slippage_uses_the_instrument_tick() -> None:
    assert TickSlippage(1).adjust(D("4500.25"), True, ES) == D("4500.50")


@pytest.mark.parametrize(
    ("price", "buy", "expected"),
    [
        pytest.param("100.00", True, "100.05", id="buy-exactly-on-the-grid"),
        pytest.param("100.00", False, "99.95", id="sell-exactly-on-the-grid"),
        pytest.param("100.01", True, "100.07", id="buy-100.060005-rounds-up"),
        pytest.param("100.01", False, "99.95", id="sell-99.959995-rounds-down"),
        pytest.param("0.01", False, "0.01", id="sell-floored-at-one-tick"),
    ],
)
def test_bps_slippage_rounds_outward_to_the_tick_grid(price: str, buy: bool, expected: str) -> None:
    assert BpsSlippage(D(5)).adjust(D(price), buy, ORCL) == D(expected)


@pytest.mark.parametrize("price", ["4500.00", "4500.25", "4517.75", "3999.50"])
def test_bps_slippage_stays_on_a_coarse_tick_grid_and_against_the_trader(price: str) -> None:
    p = D(price)
    up = BpsSlippage(D(3)).adjust(p, True, ES)
    down = BpsSlippage(D(3)).adjust(p, False, ES)

    assert up % ES.tick_size == 0
    assert down % ES.tick_size == 0
    assert up >= p * D("1.0003")
    assert down <= p * D("0.9997")


def test_no_slippage_keeps_the_price() -> None:
    assert NoSlippage().adjust(D("100.37"), True, ORCL) == D("100.37")


# -- fill configuration --------------------------------------------------------------------------------------
@pytest.mark.parametrize("participation", ["0", "-0.1", "1.01"])
def test_participation_outside_zero_to_one_is_refused(participation: str) -> None:
    with pytest.raises(InvalidInputError, match="participation"):
        FillConfig(participation=D(participation))


def test_full_participation_is_allowed() -> None:
    assert FillConfig(participation=D(1)).participation == 1
