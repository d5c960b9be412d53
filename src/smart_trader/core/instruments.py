"""Instruments: what can be traded, where, and the increments its prices and sizes move in.

Rules checked here (raise :class:`~smart_trader.core.errors.RejectedByRulesError`):
- a price must be a whole multiple of ``tick_size``;
- a quantity must be positive, a whole multiple of ``lot_size`` and at least one lot;
- an order's notional (price × quantity × multiplier) must reach ``min_notional``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from smart_trader.core.errors import InvalidInputError, RejectedByRulesError
from smart_trader.core.ids import InstrumentId, instrument_id
from smart_trader.core.values import DecimalLike, Price, Quantity, decimals_of, to_decimal


class AssetClass(StrEnum):
    """Broad class of an instrument."""

    EQUITY = "equity"
    FX = "fx"
    CRYPTO = "crypto"
    FUTURE = "future"
    INDEX = "index"
    COMMODITY = "commodity"


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable instrument on one venue.

    Attributes:
        symbol: venue symbol, e.g. ``"BTC/USDT"``, ``"ORCL"``, ``"GBP/USD"``.
        venue: venue code, upper case, e.g. ``"BINANCE"``, ``"NASDAQ"``, ``"FXCM"``.
        asset_class: see :class:`AssetClass`.
        base_currency: unit of quantity (``"BTC"``; the share symbol for equities).
        quote_currency: currency prices and P&L are in (``"USDT"``, ``"USD"``).
        tick_size: smallest price increment (quote currency).
        lot_size: smallest quantity increment (base units); also the minimum quantity.
        price_precision: decimals of prices (derived from ``tick_size`` when omitted).
        size_precision: decimals of quantities (derived from ``lot_size`` when omitted).
        min_notional: smallest order value in quote currency (0 = none).
        multiplier: contract multiplier (1 for spot).
    """

    symbol: str
    venue: str
    asset_class: AssetClass
    base_currency: str
    quote_currency: str
    tick_size: Decimal
    lot_size: Decimal
    price_precision: int = -1
    size_precision: int = -1
    min_notional: Decimal = Decimal(0)
    multiplier: Decimal = Decimal(1)
    id: InstrumentId = field(init=False)

    def __post_init__(self) -> None:
        if not self.symbol or not self.venue:
            raise InvalidInputError("instrument needs a symbol and a venue")
        for name in ("tick_size", "lot_size"):
            v = getattr(self, name)
            if not isinstance(v, Decimal) or v <= 0:
                raise InvalidInputError(f"{name} must be a positive Decimal, got {v!r}")
        object.__setattr__(self, "venue", self.venue.upper())
        if self.price_precision < 0:
            object.__setattr__(self, "price_precision", decimals_of(self.tick_size))
        if self.size_precision < 0:
            object.__setattr__(self, "size_precision", decimals_of(self.lot_size))
        if decimals_of(self.tick_size) > self.price_precision:
            raise InvalidInputError(f"tick_size {self.tick_size} finer than price_precision {self.price_precision}")
        object.__setattr__(self, "id", instrument_id(self.symbol, self.venue))

    @classmethod
    def create(
        cls,
        symbol: str,
        venue: str,
        *,
        asset_class: AssetClass | str,
        base_currency: str,
        quote_currency: str,
        tick_size: DecimalLike,
        lot_size: DecimalLike,
        min_notional: DecimalLike = 0,
        multiplier: DecimalLike = 1,
    ) -> Instrument:
        """Build an instrument from plain values (str/int/Decimal; floats are refused)."""
        return cls(
            symbol=symbol,
            venue=venue,
            asset_class=AssetClass(asset_class),
            base_currency=base_currency.upper(),
            quote_currency=quote_currency.upper(),
            tick_size=to_decimal(tick_size, "tick_size"),
            lot_size=to_decimal(lot_size, "lot_size"),
            min_notional=to_decimal(min_notional, "min_notional"),
            multiplier=to_decimal(multiplier, "multiplier"),
        )

    def check_price(self, price: Decimal, what: str = "price") -> None:
        """Raise :class:`RejectedByRulesError` unless ``price`` is positive and on the tick grid."""
        if price <= 0:
            raise RejectedByRulesError(f"{what} {price} must be positive")
        if price % self.tick_size != 0:
            raise RejectedByRulesError(f"{what} {price} is off the tick size {self.tick_size} of {self.id}")

    def check_quantity(self, quantity: Decimal) -> None:
        """Raise :class:`RejectedByRulesError` unless ``quantity`` is >= one lot and a multiple of the lot size."""
        if quantity < self.lot_size:
            raise RejectedByRulesError(f"quantity {quantity} is under the lot size {self.lot_size} of {self.id}")
        if quantity % self.lot_size != 0:
            raise RejectedByRulesError(
                f"quantity {quantity} is not a multiple of the lot size {self.lot_size} of {self.id}"
            )

    def make_price(self, value: DecimalLike) -> Price:
        """A :class:`Price` of this instrument from text, an int or a Decimal (floats raise TypeError).

        Raises:
            RejectedByRulesError: the price is not positive or is off the tick size.
        """
        price = Price(value)
        self.check_price(price.value)
        return price

    def make_qty(self, value: DecimalLike) -> Quantity:
        """A :class:`Quantity` of this instrument (base units) from text, an int or a Decimal.

        Raises:
            RejectedByRulesError: under one lot or not a multiple of the lot size.
        """
        qty = Quantity(value)
        self.check_quantity(qty.value)
        return qty

    def check_notional(self, price: Decimal, quantity: Decimal) -> None:
        """Raise :class:`RejectedByRulesError` when price × quantity × multiplier < ``min_notional``."""
        value = price * quantity * self.multiplier
        if value < self.min_notional:
            raise RejectedByRulesError(
                f"order value {value} {self.quote_currency} is under the minimum notional "
                f"{self.min_notional} of {self.id}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly mapping (decimals as strings) that :meth:`from_dict` reads back."""
        return {
            "symbol": self.symbol,
            "venue": self.venue,
            "asset_class": self.asset_class.value,
            "base_currency": self.base_currency,
            "quote_currency": self.quote_currency,
            "tick_size": str(self.tick_size),
            "lot_size": str(self.lot_size),
            "price_precision": self.price_precision,
            "size_precision": self.size_precision,
            "min_notional": str(self.min_notional),
            "multiplier": str(self.multiplier),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Instrument:
        """Inverse of :meth:`to_dict`.

        Raises:
            InvalidInputError: a field is missing or malformed.
        """
        try:
            return cls(
                symbol=d["symbol"],
                venue=d["venue"],
                asset_class=AssetClass(d["asset_class"]),
                base_currency=d["base_currency"],
                quote_currency=d["quote_currency"],
                tick_size=Decimal(d["tick_size"]),
                lot_size=Decimal(d["lot_size"]),
                price_precision=int(d.get("price_precision", -1)),
                size_precision=int(d.get("size_precision", -1)),
                min_notional=Decimal(d.get("min_notional", "0")),
                multiplier=Decimal(d.get("multiplier", "1")),
            )
        except (KeyError, ValueError, ArithmeticError) as exc:
            raise InvalidInputError(f"bad instrument definition {d!r}: {exc}") from None
