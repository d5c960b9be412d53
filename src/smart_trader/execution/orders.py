"""Orders: the request a trader or strategy makes, and the order whose status only events change.

Transition table (from NautilusTrader's order state machine, reduced to the statuses we use):

=================  ==============================================================
from               allowed to
=================  ==============================================================
new                accepted, rejected, canceled
accepted           partially_filled, filled, canceled, expired
partially_filled   partially_filled (another fill), filled, canceled, expired
filled, canceled,  — (terminal)
rejected, expired
=================  ==============================================================

``OrderTriggered`` changes no status: it applies once, to a working stop-limit order. Events must not go
back in time (``ts_event`` >= the order's last event). Applying an event whose transition is not in the
table, or that breaks these rules, raises
:class:`~smart_trader.core.errors.InvalidStateTransitionError` and leaves the order unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from smart_trader.core.errors import InvalidInputError, InvalidStateTransitionError, RejectedByRulesError
from smart_trader.core.ids import ClientOrderId, InstrumentId, OrderId
from smart_trader.core.instruments import Instrument
from smart_trader.execution.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from smart_trader.execution.events import (
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderTriggered,
)

S = OrderStatus
TRANSITIONS: frozenset[tuple[OrderStatus, OrderStatus]] = frozenset(
    {
        (S.NEW, S.ACCEPTED),
        (S.NEW, S.REJECTED),
        (S.NEW, S.CANCELED),
        (S.ACCEPTED, S.PARTIALLY_FILLED),
        (S.ACCEPTED, S.FILLED),
        (S.ACCEPTED, S.CANCELED),
        (S.ACCEPTED, S.EXPIRED),
        (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED),  # another partial fill
        (S.PARTIALLY_FILLED, S.FILLED),
        (S.PARTIALLY_FILLED, S.CANCELED),
        (S.PARTIALLY_FILLED, S.EXPIRED),
    }
)

_TERMINAL: dict[type[OrderEvent], OrderStatus] = {
    OrderRejected: OrderStatus.REJECTED,
    OrderCanceled: OrderStatus.CANCELED,
    OrderExpired: OrderStatus.EXPIRED,
}


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a trader or strategy asks for. Exactly one of ``quantity`` (base units) or ``notional``
    (quote currency; market orders only: buys or sells that much quote currency at the fill price).

    Prices are in the instrument's quote currency. Use :meth:`validate` before submitting.
    """

    instrument_id: InstrumentId
    side: OrderSide
    type: OrderType = OrderType.MARKET
    quantity: Decimal | None = None
    notional: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    client_order_id: ClientOrderId | None = None

    def validate(self, instrument: Instrument) -> None:
        """Check the request's shape and the instrument's rules.

        Raises:
            InvalidInputError: missing or contradictory fields (no quantity, limit order without
                a limit price, notional on a non-market order, ...).
            RejectedByRulesError: a price off the tick size, a quantity under or not a multiple
                of the lot size, a value under the minimum notional.
        """
        if self.instrument_id != instrument.id:
            raise InvalidInputError(f"order is for {self.instrument_id}, instrument is {instrument.id}")
        if (self.quantity is None) == (self.notional is None):
            raise InvalidInputError("give exactly one of quantity or notional")
        if self.notional is not None:
            if self.type is not OrderType.MARKET:
                raise InvalidInputError("notional is only for market orders; give a quantity")
            if self.notional <= 0:
                raise InvalidInputError(f"notional must be positive, got {self.notional}")
            if self.notional < instrument.min_notional:
                raise RejectedByRulesError(
                    f"notional {self.notional} is under the minimum notional "
                    f"{instrument.min_notional} of {instrument.id}"
                )
        needs_limit = self.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_limit != (self.limit_price is not None):
            raise InvalidInputError(f"{self.type} order {'needs' if needs_limit else 'takes no'} limit_price")
        if needs_stop != (self.stop_price is not None):
            raise InvalidInputError(f"{self.type} order {'needs' if needs_stop else 'takes no'} stop_price")
        if self.limit_price is not None:
            instrument.check_price(self.limit_price, "limit_price")
        if self.stop_price is not None:
            instrument.check_price(self.stop_price, "stop_price")
        if self.quantity is not None:
            instrument.check_quantity(self.quantity)
            ref = self.limit_price if self.limit_price is not None else self.stop_price
            if ref is not None:
                instrument.check_notional(ref, self.quantity)


@dataclass(slots=True)
class Order:
    """An order and its state. Mutated only through :meth:`apply`.

    ``quantity`` is ``None`` for a notional order until its first fill fixes it.
    ``filled_qty`` and ``avg_px`` (quote currency) summarize the fills so far.
    """

    order_id: OrderId
    request: OrderRequest
    ts_init: int
    status: OrderStatus = OrderStatus.NEW
    quantity: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    filled_cost: Decimal = Decimal(0)
    triggered: bool = False
    ts_last: int = 0
    reject_reason: str | None = None
    events: list[OrderEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.quantity is None:
            self.quantity = self.request.quantity

    @property
    def instrument_id(self) -> InstrumentId:
        """Instrument of the order."""
        return self.request.instrument_id

    @property
    def side(self) -> OrderSide:
        """Buy or sell."""
        return self.request.side

    @property
    def type(self) -> OrderType:
        """Order type."""
        return self.request.type

    @property
    def client_order_id(self) -> ClientOrderId | None:
        """The client's own id of the order, if given."""
        return self.request.client_order_id

    @property
    def leaves_qty(self) -> Decimal | None:
        """Quantity still to fill (``None`` while a notional order has not filled yet)."""
        return None if self.quantity is None else self.quantity - self.filled_qty

    @property
    def avg_px(self) -> Decimal | None:
        """Volume-weighted average fill price, ``None`` before the first fill."""
        return None if self.filled_qty == 0 else self.filled_cost / self.filled_qty

    @property
    def is_open(self) -> bool:
        """True while the order can still fill."""
        return self.status.is_open

    def fix_quantity(self, quantity: Decimal) -> None:
        """Fix the base quantity of a notional order (done once, by the broker, at its first fill price).

        Raises:
            InvalidStateTransitionError: the order already has a quantity.
        """
        if self.quantity is not None:
            raise InvalidStateTransitionError(f"order {self.order_id} already has quantity {self.quantity}")
        self.quantity = quantity

    def apply(self, event: OrderEvent) -> None:
        """Apply ``event`` and move to the status it implies.

        Raises:
            InvalidStateTransitionError: the transition is not in :data:`TRANSITIONS`, the event is
                for another order, or a fill exceeds the order's quantity. The order is unchanged.
        """
        if event.order_id != self.order_id:
            raise InvalidStateTransitionError(f"event for {event.order_id} applied to {self.order_id}")
        if event.ts_event < self.ts_last:
            raise InvalidStateTransitionError(
                f"order {self.order_id}: {type(event).__name__} at {event.ts_event} ns is before its last "
                f"event at {self.ts_last} ns"
            )
        kind = type(event)
        if kind is OrderFilled:
            assert isinstance(event, OrderFilled)
            fill = event.fill
            quantity = self.quantity if self.quantity is not None else fill.quantity
            filled = self.filled_qty + fill.quantity
            if fill.quantity <= 0 or filled > quantity:
                raise InvalidStateTransitionError(
                    f"fill of {fill.quantity} exceeds the {quantity - self.filled_qty} left on order {self.order_id}"
                )
            target = OrderStatus.FILLED if filled == quantity else OrderStatus.PARTIALLY_FILLED
        elif kind is OrderAccepted:
            target = OrderStatus.ACCEPTED
        elif kind is OrderTriggered:
            if self.type is not OrderType.STOP_LIMIT or self.triggered or not self.status.is_open:
                raise InvalidStateTransitionError(
                    f"order {self.order_id}: a trigger applies once, to a working stop-limit order "
                    f"(this is a {self.type} order, status {self.status}, triggered={self.triggered})"
                )
            target = self.status
        else:
            target = _TERMINAL.get(kind, OrderStatus.NEW)
            if target is OrderStatus.NEW:
                raise InvalidStateTransitionError(f"unknown event {kind.__name__}")
        if kind is not OrderTriggered and (self.status, target) not in TRANSITIONS:
            raise InvalidStateTransitionError(
                f"order {self.order_id}: {type(event).__name__} does not apply in status {self.status}"
            )
        if isinstance(event, OrderFilled):
            self.quantity = quantity
            self.filled_qty = filled
            self.filled_cost += event.fill.quantity * event.fill.price
        elif kind is OrderTriggered:
            self.triggered = True
        elif isinstance(event, OrderRejected):
            self.reject_reason = event.reason
        self.status = target
        self.ts_last = event.ts_event
        self.events.append(event)
