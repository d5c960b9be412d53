"""Amounts as the payment providers send them, made exact: Stripe's integer minor units scaled by the currency's
exponent in Stripe's API, PayPal's decimal strings.

Stripe (https://docs.stripe.com/currencies, "Minor units in API amounts"): amounts are integers in the currency's
smallest unit — ``1000`` is 10.00 USD; the zero-decimal currencies listed there take the amount as is (``500`` is
500 JPY); the three-decimal currencies (BHD, JOD, KWD, OMR, TND) are in thousandths; every other currency,
including the "special cases" ISK, HUF and TWD that Stripe's API still takes with two decimals, in hundredths.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from smart_trader.core.errors import InvalidInputError

STRIPE_ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
"""Stripe's zero-decimal currencies (https://docs.stripe.com/currencies#zero-decimal)."""
STRIPE_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
"""Stripe's three-decimal currencies (https://docs.stripe.com/currencies#three-decimal)."""
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_PAYPAL_VALUE = re.compile(r"^\d{1,32}(\.\d{1,3})?$")  # PayPal Money.value (https://developer.paypal.com/api/rest/)


def currency_code(text: object) -> str:
    """An ISO 4217 code as stored: three letters, upper case.

    Raises:
        InvalidInputError: not three letters.
    """
    if not isinstance(text, str) or not _CURRENCY.match(text):
        raise InvalidInputError(f"currency must be a three-letter ISO 4217 code, not {text!r}")
    return text.upper()


def stripe_exponent(currency: str) -> int:
    """Decimal places of ``currency``'s minor unit in Stripe's API: 0, 2 or 3 (see the module docstring)."""
    code = currency.upper()
    if code in STRIPE_ZERO_DECIMAL:
        return 0
    if code in STRIPE_THREE_DECIMAL:
        return 3
    return 2


def from_stripe_minor(amount: object, currency: str) -> Decimal:
    """A Stripe amount (integer minor units of ``currency``) in major units, exact: ``(1999, "usd")`` → ``19.99``,
    ``(500, "jpy")`` → ``500``, ``(5120, "kwd")`` → ``5.120``.

    Raises:
        InvalidInputError: the amount is not a non-negative integer (JSON ``true`` is not one), or the currency is
            not a three-letter code.
    """
    code = currency_code(currency)
    if type(amount) is not int or amount < 0:
        raise InvalidInputError(f"a Stripe amount is a non-negative integer of minor units, not {amount!r}")
    return Decimal(amount).scaleb(-stripe_exponent(code))


def from_paypal_value(value: object) -> Decimal:
    """A PayPal ``Money.value`` (a decimal string such as ``"100.00"``; up to three decimals) as a ``Decimal``.

    Raises:
        InvalidInputError: not such a string.
    """
    if not isinstance(value, str) or not _PAYPAL_VALUE.match(value):
        raise InvalidInputError(f"a PayPal amount is a decimal string such as '100.00', not {value!r}")
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise InvalidInputError(f"a PayPal amount is a decimal string, not {value!r}") from None
