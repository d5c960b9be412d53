"""Exact value types: never from binary floats, exact arithmetic, clear errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smart_trader.core.errors import RejectedByRulesError
from smart_trader.core.instruments import Instrument
from smart_trader.core.values import Money, Price, Quantity, floor_to_step, from_raw, to_decimal, to_raw


@pytest.mark.parametrize("make", [Price, Quantity, lambda v: Money(v, "USD"), to_decimal])
def test_binary_floats_are_refused(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="float"):
        make(0.1)


def test_values_keep_every_decimal_given() -> None:
    assert Price("0.1").value + Price("0.2").value == Decimal("0.3")
    assert str(Quantity(3)) == "3"
    assert to_decimal(Price("1.25")) == Decimal("1.25")


@pytest.mark.parametrize("text", ["abc", "NaN", "Infinity", ""])
def test_malformed_or_non_finite_text_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="price"):
        Price(text)


def test_quantity_is_never_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        Quantity("-1")


def test_money_adds_in_one_currency_only() -> None:
    assert Money("1.10", "usd") + Money("2.20", "USD") == Money("3.30", "USD")
    assert -Money("1", "EUR") == Money("-1", "EUR")
    with pytest.raises(ValueError, match="currency mismatch"):
        Money("1", "USD") + Money("1", "EUR")


def test_fixed_point_round_trip_is_exact_and_refuses_rounding() -> None:
    assert to_raw(Decimal("1.57608"), 5) == 157608
    assert from_raw(157608, 5) == Decimal("1.57608")
    with pytest.raises(ValueError, match="more than 2 decimals"):
        to_raw(Decimal("1.005"), 2)


def test_floor_to_step_rounds_down_to_the_lot() -> None:
    assert floor_to_step(Decimal("0.123456789"), Decimal("0.001")) == Decimal("0.123")


def test_instrument_makes_prices_on_its_tick_and_quantities_on_its_lot() -> None:
    es = Instrument.create(
        "ES", "CME", asset_class="future", base_currency="ES", quote_currency="USD", tick_size="0.25", lot_size="1",
        multiplier=50,
    )  # fmt: skip
    assert es.make_price("4500.75") == Price("4500.75")
    assert es.make_qty(2) == Quantity(2)
    with pytest.raises(RejectedByRulesError, match=r"off the tick size 0\.25"):
        es.make_price("4500.10")
    with pytest.raises(RejectedByRulesError, match="under the lot size"):
        es.make_qty("0.5")
    assert es.price_precision == 2 and es.size_precision == 0
