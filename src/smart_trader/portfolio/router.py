"""HTTP routes of the portfolio: accounts (cash, equity, buying power, P&L), positions, fills, equity history.

Valuation uses the core's rules (:func:`~smart_trader.portfolio.account.market_value`,
:func:`~smart_trader.portfolio.account.unrealized_pnl`, :func:`~smart_trader.portfolio.account.buying_power`)
on the stored positions, marked at the latest market price (else the position's last fill price).
Money is returned as decimal strings in the account currency; timestamps in ns since the epoch, UTC.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection

from smart_trader.app.platform import Platform
from smart_trader.core.clock import MAX_TIMESTAMP_NS
from smart_trader.core.ids import InstrumentId
from smart_trader.execution import store as order_store
from smart_trader.gateway.deps import CurrentUser, OwnedAccount, PlatformDep
from smart_trader.gateway.problems import ProblemError
from smart_trader.portfolio import store
from smart_trader.portfolio.account import AccountType, buying_power, market_value, unrealized_pnl

router = APIRouter(prefix="/api/v1", tags=["accounts"])
MAX_BALANCE = Decimal("1e15")


class AccountIn(BaseModel):
    """A new paper account: ``starting_balance`` (decimal string or number, > 0) deposited in ``currency``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    starting_balance: Decimal = Field(gt=0, le=MAX_BALANCE, max_digits=34, decimal_places=18)
    currency: str = Field(min_length=2, max_length=16, pattern=r"^[A-Za-z0-9]+$")
    account_type: AccountType = AccountType.CASH

    @field_validator("starting_balance", mode="before")
    @classmethod
    def _no_float(cls, v: Any) -> Any:
        if isinstance(v, float):
            return Decimal(repr(v))  # JSON numbers arrive as floats: take their shortest decimal text
        return v


class AccountOut(BaseModel):
    """An account with its valuation (account currency)."""

    id: str
    name: str
    currency: str
    account_type: str
    starting_balance: Decimal
    cash: Decimal
    equity: Decimal
    buying_power: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    commissions: Decimal
    equity_peak: Decimal
    drawdown: Decimal
    created_ns: int


class PositionOut(BaseModel):
    """A netting position: signed ``quantity`` (base units), average entry price, P&L (quote currency)."""

    instrument_id: str
    quantity: Decimal
    avg_entry_price: Decimal | None
    cost_basis: Decimal
    mark_price: Decimal | None
    market_value: Decimal | None
    unrealized_pnl: Decimal | None
    realized_pnl: Decimal
    commissions: Decimal
    fills: int
    ts_opened: int | None
    ts_last: int


class FillOut(BaseModel):
    """One execution (``ts_event`` ns UTC; price and commission in the quote currency)."""

    id: str
    order_id: str
    instrument_id: str
    side: str
    quantity: Decimal
    price: Decimal
    commission: Decimal
    commission_currency: str
    liquidity_side: str
    ts_event: int


class EquityPoint(BaseModel):
    """An equity snapshot at market time ``ts`` (ns UTC)."""

    ts: int
    cash: Decimal
    equity: Decimal
    unrealized_pnl: Decimal
    drawdown: Decimal


def position_marks(platform: Platform, rows: list[Any]) -> dict[InstrumentId, Decimal | None]:
    """The mark of each position row's instrument (quote currency): the platform's latest price, else the position's
    last fill price; what :func:`account_view` values positions at."""
    marks: dict[InstrumentId, Decimal | None] = {}
    for r in rows:
        iid = InstrumentId(r.instrument_id)
        marks[iid] = platform.mark(iid) or r.last_fill_price
    return marks


def account_view(platform: Platform, row: Any, position_rows: list[Any]) -> AccountOut:
    """Value an account row with its positions at the latest marks."""
    positions = [store.position_of(p) for p in position_rows]
    marks = position_marks(platform, position_rows)
    value = market_value(positions, marks.get)
    unrealized = unrealized_pnl(positions, marks.get)
    equity = row.cash + value
    peak = max(row.equity_peak, equity)
    return AccountOut(
        id=row.id,
        name=row.name,
        currency=row.currency,
        account_type=row.account_type,
        starting_balance=row.starting_balance,
        cash=row.cash,
        equity=equity,
        buying_power=buying_power(AccountType(row.account_type), row.cash, equity),
        realized_pnl=sum((p.realized_pnl for p in positions), Decimal(0)),
        unrealized_pnl=unrealized,
        commissions=row.commissions,
        equity_peak=peak,
        drawdown=store.drawdown(equity, peak),
        created_ns=row.created_ns,
    )


def _load(conn: Connection, account_id: str) -> tuple[Any, list[Any]]:
    return store.get_account(conn, account_id), store.positions_of(conn, account_id)


@router.post("/accounts", status_code=201, response_model=AccountOut, responses={409: {"description": "too many"}})
async def create_account(body: AccountIn, user_id: CurrentUser, platform: PlatformDep) -> AccountOut:
    """Open a paper account funded with ``starting_balance`` in ``currency``. 409 when the user already has
    ``MAX_ACCOUNTS_PER_USER`` accounts."""
    most = platform.settings.max_accounts_per_user

    def create(conn: Connection) -> Any:
        if len(store.accounts_of(conn, user_id)) >= most:
            raise ProblemError(409, f"a user may open at most {most} accounts (MAX_ACCOUNTS_PER_USER)", "too-many")
        return store.create_account(
            conn, user_id, body.name, body.currency, body.starting_balance, body.account_type, actor=user_id
        )

    row = await platform.writer.run(create)
    saved, positions = await platform.read(lambda c: _load(c, row["id"]))
    return account_view(platform, saved, positions)


@router.get("/accounts", response_model=list[AccountOut])
async def list_accounts(user_id: CurrentUser, platform: PlatformDep) -> list[AccountOut]:
    """The caller's accounts, oldest first."""

    def load(conn: Connection) -> list[tuple[Any, list[Any]]]:
        return [(a, store.positions_of(conn, a.id)) for a in store.accounts_of(conn, user_id)]

    return [account_view(platform, a, p) for a, p in await platform.read(load)]


@router.get("/accounts/{account_id}", response_model=AccountOut)
async def get_account(account_id: OwnedAccount, platform: PlatformDep) -> AccountOut:
    """One account: cash, equity, buying power, realized and unrealized P&L."""
    row, positions = await platform.read(lambda c: _load(c, account_id))
    if row is None:
        raise ProblemError(404, f"no account {account_id}", "not-found")
    return account_view(platform, row, positions)


@router.get("/accounts/{account_id}/positions", response_model=list[PositionOut])
async def list_positions(
    account_id: OwnedAccount, platform: PlatformDep, include_flat: bool = False
) -> list[PositionOut]:
    """Open positions (``include_flat=true`` adds closed ones, which keep their realized P&L)."""
    rows = await platform.read(lambda c: store.positions_of(c, account_id))
    marks = position_marks(platform, rows)
    out = []
    for r in rows:
        p = store.position_of(r)
        if p.is_flat and not include_flat:
            continue
        mark = marks.get(p.instrument_id)
        out.append(
            PositionOut(
                instrument_id=p.instrument_id,
                quantity=p.quantity,
                avg_entry_price=p.avg_entry_price,
                cost_basis=p.cost_basis,
                mark_price=mark,
                market_value=None if mark is None else p.market_value(mark),
                unrealized_pnl=None if mark is None else p.unrealized_pnl(mark),
                realized_pnl=p.realized_pnl,
                commissions=p.commissions,
                fills=p.fills,
                ts_opened=p.ts_opened,
                ts_last=p.ts_last,
            )
        )
    return out


@router.get("/accounts/{account_id}/fills", response_model=list[FillOut])
async def list_fills(
    account_id: OwnedAccount,
    platform: PlatformDep,
    order_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[FillOut]:
    """Fills in execution order, optionally of one order; paginated with ``limit``/``offset``."""
    rows = await platform.read(
        lambda c: order_store.fills_of(c, account_id, order_id=order_id, limit=limit, offset=offset)
    )
    return [FillOut.model_validate(r._mapping) for r in rows]


@router.get("/accounts/{account_id}/equity", response_model=list[EquityPoint])
async def equity_history(
    account_id: OwnedAccount,
    platform: PlatformDep,
    start: Annotated[int | None, Query(ge=0, le=MAX_TIMESTAMP_NS, description="ns since the epoch, UTC")] = None,
    end: Annotated[int | None, Query(ge=0, le=MAX_TIMESTAMP_NS, description="ns since the epoch, UTC")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[EquityPoint]:
    """Equity history (snapshots at each change and every second while positions are open)."""
    rows = await platform.read(lambda c: store.equity_history(c, account_id, start, end, limit))
    return [EquityPoint.model_validate(r._mapping) for r in rows]
