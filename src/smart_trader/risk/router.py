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
from smart_trader.core.errors import InvalidInputError, NotFoundError
from smart_trader.core.ids import instrument_id
from smart_trader.gateway.deps import CurrentPrincipal, OwnedAccount, PlatformDep
from smart_trader.gateway.problems import ProblemError
from smart_trader.portfolio import store as portfolio_store
from smart_trader.portfolio.router import account_view, position_marks
from smart_trader.portfolio.tables import accounts
from smart_trader.risk import store
from smart_trader.risk.exposure import summarize
from smart_trader.risk.limits import RISK_CONTROL_TOPIC, effective
from smart_trader.risk.store import daily_closes
from smart_trader.risk.var import (
    CONFIDENCE_95,
    VAR_MIN_RETURNS,
    VAR_WINDOW_RETURNS,
    historical_var,
    parametric_var,
    simple_returns,
)

router = APIRouter(prefix="/api/v1", tags=["risk"])
MAX_LIMIT_OPEN = 100_000
MAX_LIMIT_RATE = 10_000
MAX_LIMIT_AMOUNT = Decimal("1e18")
"""Largest quantity, notional or position limit accepted (base units or quote currency)."""
MAX_COLLAR_BPS = Decimal(1_000_000)
"""Widest price collar accepted: 1,000,000 bps = 100 times the last price."""
LimitAmount = Annotated[Decimal, Field(gt=0, le=MAX_LIMIT_AMOUNT, max_digits=36, decimal_places=18)]
"""A quantity, notional or position limit: a positive decimal (base units or quote currency)."""


class LimitsOut(BaseModel):
    """An account's limits in force (``max_open_orders``, ``max_orders_per_second``: wall-clock seconds), whether
    each is the platform default, the pre-trade limits a risk manager set (``null``: not checked;
    ``max_order_quantity`` and ``max_position`` in the instrument's base units, ``max_order_notional`` in its quote
    currency, ``price_collar_bps`` in basis points of the last price), its trading state (``active`` | ``halted``)
    and why, and who changed them last (``updated_ns``: ns since the epoch, UTC)."""

    account_id: str
    max_open_orders: int
    max_orders_per_second: int
    default_max_open_orders: bool
    default_max_orders_per_second: bool
    max_order_quantity: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position: Decimal | None = None
    price_collar_bps: Decimal | None = None
    trading_state: str
    reason: str | None
    updated_ns: int | None
    updated_by: str | None


class LimitsIn(BaseModel):
    """Every limit of the account at once (a replacement): ``null`` (or absent) returns ``max_open_orders`` and
    ``max_orders_per_second`` to the platform defaults and removes the others. Positive decimal strings:
    ``max_order_quantity`` (most base units in one order), ``max_order_notional`` (most quote currency one order may
    be worth: quantity × limit, stop or last price × multiplier), ``max_position`` (largest absolute position of any
    instrument, base units, working orders of the same side counted), ``price_collar_bps`` (farthest a limit or stop
    price may be from the last price, basis points). They apply to the account's next order
    (``risk/checks.py``)."""

    model_config = ConfigDict(extra="forbid")
    max_open_orders: int | None = Field(default=None, ge=1, le=MAX_LIMIT_OPEN)
    max_orders_per_second: int | None = Field(default=None, ge=1, le=MAX_LIMIT_RATE)
    max_order_quantity: LimitAmount | None = None
    max_order_notional: LimitAmount | None = None
    max_position: LimitAmount | None = None
    price_collar_bps: Decimal | None = Field(default=None, gt=0, le=MAX_COLLAR_BPS, max_digits=20, decimal_places=6)


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
        max_order_quantity=s.max_order_quantity,
        max_order_notional=s.max_order_notional,
        max_position=s.max_position,
        price_collar_bps=s.price_collar_bps,
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


def _normal(value: Decimal | None) -> Decimal | None:
    """A limit as stored and shown: without an exponent or trailing zeros (``1.50`` → ``1.5``, ``1E+3`` → ``1000``)."""
    if value is None:
        return None
    return Decimal(format(value.normalize(), "f"))


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
        lambda c: store.set_limits(
            c,
            account_id,
            body.max_open_orders,
            body.max_orders_per_second,
            who.user_id,
            max_order_quantity=_normal(body.max_order_quantity),
            max_order_notional=_normal(body.max_order_notional),
            max_position=_normal(body.max_position),
            price_collar_bps=_normal(body.price_collar_bps),
        )
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


INSTRUMENT_HALTS = "*instruments"
"""The risk-control message that says the halted instruments changed (an account id never starts with ``*``)."""


class InstrumentHaltIn(BaseModel):
    """An instrument to halt for every account (``symbol`` and ``venue`` as in orders) and why: the reason is quoted in
    each rejected order."""

    model_config = ConfigDict(extra="forbid")
    symbol: str = Field(min_length=1, max_length=64)
    venue: str = Field(min_length=1, max_length=32)
    reason: str = Field(min_length=1, max_length=500)


class InstrumentIn(BaseModel):
    """An instrument (``symbol`` and ``venue`` as in orders)."""

    model_config = ConfigDict(extra="forbid")
    symbol: str = Field(min_length=1, max_length=64)
    venue: str = Field(min_length=1, max_length=32)


class InstrumentHaltOut(BaseModel):
    """A halted instrument and why."""

    instrument_id: str
    reason: str


async def _instrument_halts_changed(platform: Platform) -> None:
    """Tell the trading runtime the halted instruments changed (in its process: applied before this answer)."""
    if platform.runtime is not None:
        await platform.runtime.accounts.reload_instrument_halts()
    else:
        platform.hub.publish(RISK_CONTROL_TOPIC, INSTRUMENT_HALTS)


def _known_instrument(platform: Platform, symbol: str, venue: str) -> str:
    iid = instrument_id(symbol, venue)
    try:
        platform.instrument(iid)
    except NotFoundError:
        raise ProblemError(
            422, f"unknown instrument {iid}: see GET /api/v1/instruments", "unknown-instrument"
        ) from None
    return str(iid)


@router.get("/risk/instrument-halts", response_model=list[InstrumentHaltOut])
async def instrument_halts(who: CurrentPrincipal, platform: PlatformDep) -> list[InstrumentHaltOut]:
    """The instruments halted for every account, with their reasons (risk managers)."""
    del who
    halted = await platform.read(store.halted_instruments)
    return [InstrumentHaltOut(instrument_id=i, reason=r) for i, r in halted.items()]


@router.post("/risk/instrument-halts", response_model=list[InstrumentHaltOut])
async def halt_instrument(
    body: InstrumentHaltIn, who: CurrentPrincipal, platform: PlatformDep
) -> list[InstrumentHaltOut]:
    """Halt an instrument for every account: each new order on it is rejected with the reason (``instrument … is
    halted``); cancels work, positions stay. 422 for an unknown instrument. Returns every halted instrument."""
    iid = _known_instrument(platform, body.symbol, body.venue)
    await platform.writer.run(lambda c: store.halt_instrument(c, iid, body.reason, who.user_id))
    await _instrument_halts_changed(platform)
    return await instrument_halts(who, platform)


@router.post("/risk/instrument-halts/resume", response_model=list[InstrumentHaltOut])
async def resume_instrument(
    body: InstrumentIn, who: CurrentPrincipal, platform: PlatformDep
) -> list[InstrumentHaltOut]:
    """Lift an instrument's halt (nothing to do when it was not halted). Returns every halted instrument left."""
    iid = _known_instrument(platform, body.symbol, body.venue)
    await platform.writer.run(lambda c: store.resume_instrument(c, iid, who.user_id))
    await _instrument_halts_changed(platform)
    return await instrument_halts(who, platform)
