"""HTTP routes of risk controls: an account's limits (read by its owner and risk managers, set by risk managers),
halting and resuming an account, and the risk managers' view of every account (``gateway/access.py`` has the
rules). A change reaches the trading runtime at once (hub topic :data:`~smart_trader.risk.limits.RISK_CONTROL_TOPIC`):
a halted account's new orders are rejected with the reason (cancels still work); limits apply to the next order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from smart_trader.app.platform import Platform
from smart_trader.gateway.deps import CurrentPrincipal, OwnedAccount, PlatformDep
from smart_trader.portfolio.tables import accounts
from smart_trader.risk import store
from smart_trader.risk.limits import RISK_CONTROL_TOPIC, effective

router = APIRouter(prefix="/api/v1", tags=["risk"])
MAX_LIMIT_OPEN = 100_000
MAX_LIMIT_RATE = 10_000


class LimitsOut(BaseModel):
    """An account's limits in force (``max_open_orders``, ``max_orders_per_second``: wall-clock seconds), whether
    each is the platform default, its trading state (``active`` | ``halted``) and why, and who changed them last
    (``updated_ns``: ns since the epoch, UTC)."""

    account_id: str
    max_open_orders: int
    max_orders_per_second: int
    default_max_open_orders: bool
    default_max_orders_per_second: bool
    trading_state: str
    reason: str | None
    updated_ns: int | None
    updated_by: str | None


class LimitsIn(BaseModel):
    """New limits; ``null`` (or absent) returns a limit to the platform default."""

    model_config = ConfigDict(extra="forbid")
    max_open_orders: int | None = Field(default=None, ge=1, le=MAX_LIMIT_OPEN)
    max_orders_per_second: int | None = Field(default=None, ge=1, le=MAX_LIMIT_RATE)


class HaltIn(BaseModel):
    """Why the account is halted (shown to the trader in each rejected order)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


class RiskAccountOut(BaseModel):
    """An account as a risk manager lists it: owner, currency, cash, equity peak (account currency) and limits."""

    id: str
    user_id: str
    name: str
    currency: str
    cash: Decimal
    equity_peak: Decimal
    limits: LimitsOut


def limits_out(platform: Platform, s: store.StoredLimits) -> LimitsOut:
    """The API view of stored limits with the platform defaults filled in."""
    settings = platform.settings
    halted = s.reason if s.trading_state == store.HALTED else None
    e = effective(s.max_open_orders, s.max_orders_per_second, halted, settings.max_open_orders,
                  settings.max_orders_per_second)  # fmt: skip
    return LimitsOut(
        account_id=s.account_id,
        max_open_orders=e.max_open_orders,
        max_orders_per_second=e.max_orders_per_second,
        default_max_open_orders=s.max_open_orders is None,
        default_max_orders_per_second=s.max_orders_per_second is None,
        trading_state=s.trading_state,
        reason=s.reason,
        updated_ns=s.updated_ns,
        updated_by=s.updated_by,
    )


async def _changed(platform: Platform, account_id: str) -> None:
    """Tell the trading runtime; in its own process, wait until it applied the change (so an order placed after this
    response meets it); elsewhere the runtime applies it before taking that account's next order."""
    if platform.runtime is not None:
        await platform.runtime.limits_changed(account_id)
    else:
        platform.hub.publish(RISK_CONTROL_TOPIC, account_id)


@router.get("/accounts/{account_id}/limits", response_model=LimitsOut)
async def get_limits(account_id: OwnedAccount, platform: PlatformDep) -> LimitsOut:
    """The account's limits in force and its trading state."""
    return limits_out(platform, await platform.read(lambda c: store.limits_of(c, account_id)))


@router.put("/accounts/{account_id}/limits", response_model=LimitsOut)
async def put_limits(
    account_id: OwnedAccount, body: LimitsIn, who: CurrentPrincipal, platform: PlatformDep
) -> LimitsOut:
    """Set the account's limits (risk managers); they apply to its next order."""
    saved = await platform.writer.run(
        lambda c: store.set_limits(c, account_id, body.max_open_orders, body.max_orders_per_second, who.user_id)
    )
    await _changed(platform, account_id)
    return limits_out(platform, saved)


@router.post("/accounts/{account_id}/halt", response_model=LimitsOut)
async def halt(account_id: OwnedAccount, body: HaltIn, who: CurrentPrincipal, platform: PlatformDep) -> LimitsOut:
    """Halt trading on the account (risk managers): new orders are rejected with ``reason``; working orders stay
    (cancel them, or let them fill) and cancels still work."""
    saved = await platform.writer.run(lambda c: store.set_state(c, account_id, store.HALTED, body.reason, who.user_id))
    await _changed(platform, account_id)
    return limits_out(platform, saved)


@router.post("/accounts/{account_id}/resume", response_model=LimitsOut)
async def resume(account_id: OwnedAccount, who: CurrentPrincipal, platform: PlatformDep) -> LimitsOut:
    """Resume trading on a halted account (risk managers)."""
    saved = await platform.writer.run(lambda c: store.set_state(c, account_id, store.ACTIVE, None, who.user_id))
    await _changed(platform, account_id)
    return limits_out(platform, saved)


@router.get("/risk/accounts", response_model=list[RiskAccountOut])
async def every_account(
    who: CurrentPrincipal,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[RiskAccountOut]:
    """Every account of every user with its limits and state (risk managers), oldest first, paginated."""

    def load(conn: Connection) -> list[tuple[Any, store.StoredLimits]]:
        q = select(accounts).order_by(accounts.c.created_ns, accounts.c.id).limit(limit).offset(offset)
        rows = list(conn.execute(q))
        stored = store.all_limits(conn, [r.id for r in rows])
        return [(r, stored.get(r.id) or store.StoredLimits(r.id)) for r in rows]

    return [
        RiskAccountOut(
            id=r.id,
            user_id=r.user_id,
            name=r.name,
            currency=r.currency,
            cash=r.cash,
            equity_peak=r.equity_peak,
            limits=limits_out(platform, s),
        )
        for r, s in await platform.read(load)
    ]
