"""Order events: small frozen records; an order's status changes only by applying one.

Every event carries ``event_id``, ``ts_event`` (when it happened at the venue, ns since the
epoch, UTC) and ``ts_init`` (when Smart Trader learned of it, same unit), and the class-level ``version`` and
``event_type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from smart_trader.core.ids import ClientOrderId, FillId, InstrumentId, OrderId
from smart_trader.execution.enums import LiquiditySide, OrderSide

EVENT_VERSION = 1
"""Version of the order events' shape."""


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """Base of all order events: typed and versioned (``version`` of the event's shape, ``event_type`` its class
    name), like the challenges' events (:mod:`smart_trader.challenges.events`)."""

    event_id: str
    order_id: OrderId
    ts_event: int
    ts_init: int

    @property
    def event_type(self) -> str:
        """The event's type name (``"OrderAccepted"``, ``"OrderFilled"``...)."""
        return type(self).__name__

    @property
    def version(self) -> int:
        """Version of the event's shape (a property, not a class variable: mypyc's dataclasses take those for
        fields)."""
        return EVENT_VERSION


@dataclass(frozen=True, slots=True)
class OrderAccepted(OrderEvent):
    """The venue accepted the order; it is working."""


@dataclass(frozen=True, slots=True)
class OrderRejected(OrderEvent):
    """The order was refused; ``reason`` says which rule."""

    reason: str


@dataclass(frozen=True, slots=True)
class OrderCanceled(OrderEvent):
    """The order (or its unfilled remainder) was canceled; ``reason`` is e.g. ``"user"``, ``"ioc"``, ``"fok"``."""

    reason: str = "user"


@dataclass(frozen=True, slots=True)
class OrderExpired(OrderEvent):
    """A ``day`` order reached the end of its UTC day unfilled (or partly filled)."""


@dataclass(frozen=True, slots=True)
class OrderTriggered(OrderEvent):
    """A stop-limit order's stop price was reached; it now works as a limit order."""


class Fill(NamedTuple):
    """One execution of (part of) an order (an immutable record; a NamedTuple because the engine makes
    one per fill and a tuple is built several times faster than a frozen dataclass).

    Attributes:
        quantity: base units filled (positive); ``side`` gives the direction.
        price: fill price in the instrument's quote currency.
        commission: charged for this fill, in ``commission_currency`` (the quote currency).
        ts_event: when the fill happened (ns since the epoch, UTC).
    """

    fill_id: FillId
    order_id: OrderId
    client_order_id: ClientOrderId | None
    instrument_id: InstrumentId
    side: OrderSide
    quantity: Decimal
    price: Decimal
    commission: Decimal
    commission_currency: str
    liquidity_side: LiquiditySide
    ts_event: int


@dataclass(frozen=True, slots=True)
class OrderFilled(OrderEvent):
    """Part or all of the order executed; carries the :class:`Fill`."""

    fill: Fill
