"""Provider amounts made exact: Stripe's integer minor units by the currency's exponent in Stripe's API
(https://docs.stripe.com/currencies), PayPal's decimal strings; anything else refused by name."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smart_trader.core.errors import InvalidInputError
from smart_trader.payments.money import from_paypal_value, from_stripe_minor, stripe_exponent

D = Decimal


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (15500, "usd", D("155.00")),
        (1, "eur", D("0.01")),
        (500, "jpy", D("500")),  # zero-decimal
        (500, "UGX", D("500")),
        (5120, "kwd", D("5.120")),  # three-decimal
        (50000, "isk", D("500.00")),  # a "special case" Stripe's API still takes with two decimals
        (0, "usd", D("0.00")),
    ],
)
def test_stripe_minor_units_become_exact_major_units(amount: int, currency: str, expected: Decimal) -> None:
    value = from_stripe_minor(amount, currency)
    assert value == expected and str(value) == str(expected)


@pytest.mark.parametrize(
    ("amount", "currency"), [(1.5, "usd"), (True, "usd"), (-1, "usd"), ("100", "usd"), (100, "dollars"), (100, "")]
)
def test_a_stripe_amount_that_is_not_minor_units_is_refused(amount: object, currency: str) -> None:
    with pytest.raises(InvalidInputError):
        from_stripe_minor(amount, currency)


def test_exponents_follow_stripes_lists() -> None:
    assert [stripe_exponent(c) for c in ("usd", "JPY", "bhd", "huf", "twd")] == [2, 0, 3, 2, 2]


def test_paypal_values_are_decimal_strings() -> None:
    assert from_paypal_value("100.00") == D("100.00") and str(from_paypal_value("5.125")) == "5.125"
    for bad in ("1e3", "-1.00", "1.0000", 100, None, ""):
        with pytest.raises(InvalidInputError):
            from_paypal_value(bad)
