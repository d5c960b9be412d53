"""HTTP routes of order management: place (idempotent by ``client_order_id``), list, get, cancel.

An order placed here is validated against its instrument (tick size, lot size, minimum notional: 422 with
the rule when it breaks one), stored with status ``new`` together with an ``order.submitted`` outbox event,
and answered 201; the paper broker then accepts or rejects it (buying power, short selling) and fills it
against the market data, which the order's status, ``GET .../fills`` and the WebSocket show.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Row

from smart_trader.app.platform import Platform
from smart_trader.core.errors import InvalidInputError, NotFoundError, RejectedByRulesError
from smart_trader.core.ids import ClientOrderId, instrument_id
from smart_trader.execution import store
from smart_trader.execution.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from smart_trader.execution.intake import Received, store_orders
from smart_trader.execution.orders import OrderRequest
from smart_trader.gateway.deps import CurrentUser, OwnedAccount, PlatformDep, owned_account, principal
from smart_trader.gateway.problems import ProblemError
from smart_trader.ops import metrics
from smart_trader.ops.logging import REQUEST_ID

router = APIRouter(prefix="/api/v1/accounts/{account_id}", tags=["orders"])
CANCEL_WAIT_SECONDS = 2.0
PositiveDecimal = Annotated[Decimal, Field(gt=0, max_digits=34, decimal_places=18)]


class OrderIn(BaseModel):
    """An order ticket. Exactly one of ``qty`` (base units) or ``notional`` (quote currency, market orders);
    ``limit_price`` for limit and stop-limit orders, ``stop_price`` for stop and stop-limit orders."""

    model_config = ConfigDict(extra="forbid")
    symbol: str = Field(min_length=1, max_length=64)
    venue: str = Field(min_length=1, max_length=32)
    side: OrderSide
    type: OrderType = OrderType.MARKET
    qty: PositiveDecimal | None = None
    notional: PositiveDecimal | None = None
    limit_price: PositiveDecimal | None = None
    stop_price: PositiveDecimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    client_order_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")

    @model_validator(mode="after")
    def _one_size(self) -> OrderIn:
        if (self.qty is None) == (self.notional is None):
            raise ValueError("give exactly one of qty or notional")
        return self


class OrderOut(BaseModel):
    """An order and its state. Quantities in base units, prices in the quote currency, ``created_ns`` wall-clock
    and ``ts_last`` market time (ns since the epoch, UTC)."""

    id: str
    account_id: str
    client_order_id: str | None
    symbol: str
    venue: str
    instrument_id: str
    side: OrderSide
    type: OrderType
    time_in_force: TimeInForce
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    status: OrderStatus
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    reason: str | None
    cancel_requested: bool
    created_ns: int
    ts_last: int | None


def order_out(row: Any) -> OrderOut:
    """The API model of an order row (a SQLAlchemy row or a mapping)."""
    return OrderOut(**store.order_view(row))


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    responses={
        200: {"description": "a retry: the order first placed with this client_order_id, with the same content"},
        409: {"description": "the client_order_id was already used for an order with different content"},
    },
)
async def place_order(account_id: OwnedAccount, body: OrderIn, request: Request) -> Response:
    """Place an order. A retry with the same ``client_order_id`` and the same content returns the original order
    (200) and creates nothing; the same ``client_order_id`` with different content (another side, quantity, price...)
    is 409, naming each difference. 422 when the instrument is unknown or the order breaks its tick size, lot size
    or minimum notional.

    The hot path: well-formed orders are answered before FastAPI's routing by
    :class:`~smart_trader.execution.fast_path.PlaceOrderFastPath` with the same :func:`place`; this route answers
    the rest (and declares the operation in OpenAPI).
    """
    content, status = await place(account_id, body, request)
    return Response(content, status_code=status, media_type="application/json")


async def place(account_id: str, body: OrderIn, request: Request) -> tuple[bytes, int]:
    """Check, store and hand over one order; returns the order's JSON (``OrderOut``'s document, written from
    :func:`~smart_trader.execution.store.order_view` without validating a model again) and the status, 201 or
    200 for a ``client_order_id`` retry.

    It calls :func:`~smart_trader.gateway.deps.owned_account` itself instead of through FastAPI's dependencies
    (each dependency node costs per request); the OpenAPI document declares the security all the same.

    Raises:
        ProblemError: 401/404 as :func:`~smart_trader.gateway.deps.owned_account`; 422 for an unknown instrument or
            an order breaking its tick size, lot size or minimum notional; 409 when the ``client_order_id`` names a
            stored order whose content differs (:func:`differences`), or when the account's challenge takes no orders
            (failed: the message names the rule; locked; phase over). Nothing is stored then.
    """
    await owned_account(account_id, request)
    actor = (await principal(request)).user_id  # the caller owned_account checked (kept in the request's state)
    platform: Platform = request.app.state.platform
    blocked = await platform.trading_block(account_id)
    if blocked is not None:
        raise ProblemError(409, blocked, "trading-blocked")
    iid = instrument_id(body.symbol, body.venue)
    try:
        instrument = platform.instrument(iid)
    except NotFoundError:
        raise ProblemError(
            422, f"unknown instrument {iid}: see GET /api/v1/instruments", "unknown-instrument"
        ) from None
    order_request = OrderRequest(
        iid,
        body.side,
        body.type,
        body.qty,
        body.notional,
        body.limit_price,
        body.stop_price,
        body.time_in_force,
        ClientOrderId(body.client_order_id) if body.client_order_id else None,
    )
    try:
        order_request.validate(instrument)
    except (InvalidInputError, RejectedByRulesError) as exc:
        raise ProblemError(422, str(exc), "invalid-order") from None
    received = Received(account_id, order_request, instrument.symbol, instrument.venue, actor, REQUEST_ID.get())
    row, created = await platform.writer.run_bulk(store_orders, received)
    if created:
        metrics.ORDERS_SUBMITTED.inc()
        platform.notify_orders([row])
    else:
        changed = differences(received, row)
        if changed:
            raise ProblemError(
                409,
                f"client_order_id {body.client_order_id} was used for a different order: {', '.join(changed)}",
                "idempotency-key-reused",
            )
    return orjson.dumps(store.order_view(row), default=str), 201 if created else 200


def differences(received: Received, row: Any) -> list[str]:
    """What differs between an order received with a ``client_order_id`` and the order stored under it, one
    ``"<field> <stored> ≠ <received>"`` per field of :class:`OrderIn` (names as the API spells them; the instrument as
    resolved, so ``binance`` and ``BINANCE`` are one venue; decimals by value, so ``1.0`` is ``1``; a field left to
    its default counts as that default)."""
    stored = store.request_of(row)
    mapping = row._mapping if isinstance(row, Row) else row
    new = received.request
    pairs: list[tuple[str, Any, Any]] = [
        ("symbol", mapping["symbol"], received.symbol),
        ("venue", mapping["venue"], received.venue),
        ("side", stored.side.value, new.side.value),
        ("type", stored.type.value, new.type.value),
        ("qty", stored.quantity, new.quantity),
        ("notional", stored.notional, new.notional),
        ("limit_price", stored.limit_price, new.limit_price),
        ("stop_price", stored.stop_price, new.stop_price),
        ("time_in_force", stored.time_in_force.value, new.time_in_force.value),
    ]
    return [f"{name} {_shown(old)} ≠ {_shown(value)}" for name, old, value in pairs if old != value]


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


@router.get("/orders", response_model=list[OrderOut])
async def list_orders(
    account_id: OwnedAccount,
    platform: PlatformDep,
    status: Annotated[list[OrderStatus] | None, Query(description="any of these statuses")] = None,
    state: Annotated[Literal["open", "closed", "all"], Query(description="open, closed or all")] = "all",
    symbol: str | None = None,
    venue: str | None = None,
    side: OrderSide | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[OrderOut]:
    """An account's orders, newest first. Filter by ``status`` (repeatable), ``state`` (open: new, accepted,
    partially filled), ``symbol`` + ``venue`` and ``side``; paginate with ``limit``/``offset``."""
    wanted = [s.value for s in status or []]
    if state != "all":
        group = {s.value for s in OrderStatus if s.is_open or s is OrderStatus.NEW}
        pick = group if state == "open" else {s.value for s in OrderStatus} - group
        wanted = [s for s in (wanted or sorted(pick)) if s in pick] or ["-none-"]
    if (symbol is None) != (venue is None):
        raise ProblemError(422, "give symbol and venue together", "invalid-filter")
    iid = instrument_id(symbol, venue) if symbol and venue else None
    rows = await platform.read(
        lambda c: store.list_orders(
            c,
            account_id,
            status=wanted,
            instrument_id=iid,
            side=side.value if side else None,
            limit=limit,
            offset=offset,
        )
    )
    return [order_out(r) for r in rows]


@router.get("/orders/{order_id}", response_model=OrderOut)
async def get_order(account_id: OwnedAccount, order_id: str, platform: PlatformDep) -> OrderOut:
    """One order."""
    row = await platform.read(lambda c: store.get_order(c, account_id, order_id))
    if row is None:
        raise ProblemError(404, f"no order {order_id} in account {account_id}", "not-found")
    return order_out(row)


@router.delete(
    "/orders/{order_id}",
    response_model=OrderOut,
    responses={
        202: {"description": "cancel requested; the broker has not confirmed it yet"},
        409: {"description": "the order is not open (filled, canceled, rejected or expired)"},
    },
)
async def cancel_order(
    account_id: OwnedAccount, order_id: str, user_id: CurrentUser, platform: PlatformDep, response: Response
) -> OrderOut:
    """Cancel an open order (recorded as ``order.cancel_requested``). 200 with the canceled order once the broker
    confirms (within 2 s), else 202 with ``cancel_requested``; 409 when the order is already filled, canceled,
    rejected or expired, or closes some other way (a fill) before the cancel takes effect."""
    before = await platform.writer.run(lambda c: store.request_cancel(c, account_id, order_id, user_id))
    if before is None:
        raise ProblemError(404, f"no order {order_id} in account {account_id}", "not-found")
    if before.status not in (OrderStatus.NEW.value, *store.OPEN_STATUSES):
        raise ProblemError(
            409, f"order {order_id} is {before.status}; only open orders can be canceled", "order-not-open"
        )
    platform.notify_orders()
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    while True:
        row = await platform.read(lambda c: store.get_order(c, account_id, order_id))
        assert row is not None
        if row.status not in (OrderStatus.NEW.value, *store.OPEN_STATUSES) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    if row.status in (OrderStatus.NEW.value, *store.OPEN_STATUSES):
        response.status_code = 202
    elif row.status != OrderStatus.CANCELED.value:  # it filled, expired or was rejected before the cancel landed
        raise ProblemError(
            409, f"order {order_id} is {row.status}; it closed before the cancel took effect", "order-not-open"
        )
    return order_out(row)
