"""HTTP routes of risk controls: an account's limits (read by its owner and risk managers, set by risk managers),
halting and resuming an account, the risk managers' view of every account, and an account's risk figures (exposure,
leverage, drawdown, value at risk); ``gateway/access.py`` has the rules. A change reaches the trading runtime at
once (hub topic :data:`~smart_trader.risk.limits.RISK_CONTROL_TOPIC`): a halted account's new orders are rejected
with the reason (cancels still work); limits apply to the next order.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from smart_trader.app.platform import Platform
from smart_trader.core.clock import NS_PER_DAY
from smart_trader.core.errors import InvalidInputError
from smart_trader.gateway.deps import CurrentPrincipal, OwnedAccount, PlatformDep
from smart_trader.gateway.problems import ProblemError
from smart_trader.portfolio import store as portfolio_store
from smart_trader.portfolio.router import _marks as position_marks  # the marks account_view values positions at
from smart_trader.portfolio.router import account_view
from smart_trader.portfolio.tables import accounts, equity_snapshots
from smart_trader.risk import store
from smart_trader.risk.exposure import summarize
from smart_trader.risk.limits import RISK_CONTROL_TOPIC, effective
from smart_trader.risk.var import CONFIDENCE_95, historical_var, parametric_var, simple_returns

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


# -- an account's risk figures -----------------------------------------------------------------------------------------
VAR_WINDOW_RETURNS = 250
"""Daily returns the VaR rests on at most: about a year of trading days (Basel's minimum observation period for
historical VaR)."""
VAR_MIN_RETURNS = 20
"""Fewer daily returns than this and no VaR is given: the 5 % tail of 20 returns is already a single day."""
VAR_PLACES = Decimal("1e-8")
"""VaR is an estimate: rounded to 8 decimal places of the account currency."""


class ExposureOut(BaseModel):
    """One open position's exposure: signed ``quantity`` (base units), ``mark_price`` (quote currency),
    ``multiplier``, ``exposure`` = quantity × mark × multiplier (signed) and ``gross_exposure`` = |exposure| (account
    currency)."""

    instrument_id: str
    quantity: Decimal
    mark_price: Decimal
    multiplier: Decimal
    exposure: Decimal
    gross_exposure: Decimal


class RiskOut(BaseModel):
    """An account's risk now (money as decimal strings in the account currency; ratios as decimal strings).

    - ``equity``, ``cash``: as ``GET /accounts/{id}`` values them (positions at the latest marks);
    - ``positions``: exposure of each open position; ``gross_exposure`` Σ|exposure|, ``net_exposure`` Σ exposure;
      ``leverage`` gross / equity (``null`` when equity ≤ 0);
    - ``equity_peak``: the high-water mark (the stored peak of the equity snapshots, or equity now when higher);
      ``drawdown_amount`` peak − equity; ``drawdown`` the same as a fraction of the peak;
    - ``var_95_historical``, ``var_95_parametric``: one-day 95 % value at risk (positive = loss) from the daily
      returns of the account's equity (last snapshot of each UTC day that has one, at most 250 returns), scaled to
      equity now (``risk/var.py`` gives the methods); ``null`` with ``var_note`` saying why when they cannot be
      estimated; ``var_returns`` the returns used;
    - ``limits``: the limits in force and the trading state.
    """

    account_id: str
    currency: str
    equity: Decimal
    cash: Decimal
    positions: list[ExposureOut]
    gross_exposure: Decimal
    net_exposure: Decimal
    leverage: Decimal | None
    equity_peak: Decimal
    drawdown_amount: Decimal
    drawdown: Decimal
    var_95_historical: Decimal | None
    var_95_parametric: Decimal | None
    var_returns: int
    var_note: str | None
    limits: LimitsOut


@dataclass(frozen=True, slots=True)
class _Loaded:
    account: Any
    positions: list[Any]
    limits: store.StoredLimits
    closes: list[Decimal]


def daily_closes(conn: Connection, account_id: str, days: int) -> list[Decimal]:
    """The equity of the last snapshot of each of the latest ``days`` UTC days (market clock) having a snapshot,
    oldest first. One index seek per day (``ix_equity_snapshots_account_ts``), however many snapshots a day holds (one
    a second while positions are open). Days without a snapshot are skipped, not filled: the runtime snapshots every
    second while positions are open, so such a day is one whose equity did not move, or one the platform did not
    run (its move then lands in the next day's return)."""
    s = equity_snapshots.c
    closes: list[Decimal] = []
    before: int | None = None
    for _ in range(days):
        q = select(s.ts, s.equity).where(s.account_id == account_id)
        if before is not None:
            q = q.where(s.ts < before)
        row = conn.execute(q.order_by(s.ts.desc(), s.id.desc()).limit(1)).first()
        if row is None:
            break
        closes.append(row.equity)
        before = row.ts - row.ts % NS_PER_DAY  # the start of its UTC day
    closes.reverse()
    return closes


def _var(closes: list[Decimal], equity: Decimal) -> tuple[Decimal | None, Decimal | None, int, str | None]:
    """Historical and parametric VaR of ``equity`` from daily ``closes``, the returns used, and why none."""
    try:
        returns = simple_returns(closes)
    except InvalidInputError:
        return None, None, 0, "the equity was zero or negative on a day of the window: returns are undefined"
    n = len(returns)
    if n < VAR_MIN_RETURNS:
        return (
            None,
            None,
            n,
            (f"{n} daily returns (UTC days with an equity snapshot, minus one); VaR needs at least {VAR_MIN_RETURNS}"),
        )
    hist = historical_var(returns, equity, CONFIDENCE_95).quantize(VAR_PLACES)
    para = parametric_var(returns, equity, CONFIDENCE_95).quantize(VAR_PLACES)
    return hist, para, n, None


@router.get("/accounts/{account_id}/risk", response_model=RiskOut)
async def account_risk(account_id: OwnedAccount, platform: PlatformDep) -> RiskOut:
    """The account's exposure, leverage, high-water mark and drawdown, one-day 95 % VaR and limits in force."""

    def load(conn: Connection) -> _Loaded | None:
        row = portfolio_store.get_account(conn, account_id)
        if row is None:
            return None
        return _Loaded(
            row,
            portfolio_store.positions_of(conn, account_id),
            store.limits_of(conn, account_id),
            daily_closes(conn, account_id, VAR_WINDOW_RETURNS + 1),
        )

    loaded = await platform.read(load)
    if loaded is None:
        raise ProblemError(404, f"no account {account_id}", "not-found")
    view = account_view(platform, loaded.account, loaded.positions)
    marks = position_marks(platform, loaded.positions)
    exposure = summarize([portfolio_store.position_of(p) for p in loaded.positions], marks.get, view.equity)
    hist, para, n, note = _var(loaded.closes, view.equity)
    return RiskOut(
        account_id=account_id,
        currency=view.currency,
        equity=view.equity,
        cash=view.cash,
        positions=[
            ExposureOut(
                instrument_id=e.instrument_id,
                quantity=e.quantity,
                mark_price=e.mark,
                multiplier=e.multiplier,
                exposure=e.net,
                gross_exposure=e.gross,
            )
            for e in exposure.positions
        ],
        gross_exposure=exposure.gross,
        net_exposure=exposure.net,
        leverage=exposure.leverage,
        equity_peak=view.equity_peak,
        drawdown_amount=view.equity_peak - view.equity,
        drawdown=view.drawdown,
        var_95_historical=hist,
        var_95_parametric=para,
        var_returns=n,
        var_note=note,
        limits=limits_out(platform, loaded.limits),
    )
