"""Enumerations of the order domain (values are the lower-case wire names used in files and APIs)."""

from __future__ import annotations

from enum import StrEnum


class OrderSide(StrEnum):
    """Side of an order or fill."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buy, -1 for sell."""
        return 1 if self is OrderSide.BUY else -1


class OrderType(StrEnum):
    """Order types the paper broker matches."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    """How long an order stays working.

    - ``day``: until the end of the UTC day of the first market event it meets (so an order placed
      after a session's last bar, e.g. at Friday's daily close, works through the next session);
    - ``gtc``: good till canceled;
    - ``ioc``: immediate or cancel — fill what the next price event allows, cancel the rest;
    - ``fok``: fill or kill — fill the whole quantity on the next price event or cancel it all.
    """

    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(StrEnum):
    """Order status; changes only by applying an order event (see :mod:`.orders`)."""

    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        """True while the order can still fill (accepted or partially filled)."""
        return self in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


class LiquiditySide(StrEnum):
    """Whether a fill took liquidity (taker) or rested on the book (maker)."""

    MAKER = "maker"
    TAKER = "taker"
