"""HTTP API of challenges: the programs, taking a challenge (its paper account is opened with it), a trader's
challenges with their floors and objectives, and a challenge's events. Money as decimal strings in the account
currency; timestamps ns since the epoch, UTC.

The trading runtime judges the challenge (``challenges/monitor.py``) and stores the evaluator's state and events;
these routes read what it stored, valued at the current marks like the account routes.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from smart_trader.challenges import store
from smart_trader.challenges.days import iso_utc
from smart_trader.challenges.evaluator import ChallengeEvaluator
from smart_trader.challenges.program import Program, programs
from smart_trader.core.errors import InvalidInputError, NotFoundError, RejectedByRulesError
from smart_trader.gateway.access import Role
from smart_trader.gateway.deps import CurrentPrincipal, CurrentUser, PlatformDep
from smart_trader.gateway.problems import ProblemError
from smart_trader.portfolio import store as account_store
from smart_trader.portfolio.router import account_view

router = APIRouter(prefix="/api/v1", tags=["challenges"])


class ProgramOut(BaseModel):
    """A challenge program (``smart-trader challenge programs``): who runs it, the sizes offered, its day boundary
    (IANA zone and local reset time), its phases and the sources its rules were taken from."""

    id: str
    firm: str
    name: str
    currency: str
    sizes: list[Decimal]
    tz: str
    reset_time: str
    breach_on_equal: bool
    phases: list[dict[str, Any]]
    sources: list[dict[str, Any]]
    verified_on: str
    unconfirmed: list[str]


class ChallengeIn(BaseModel):
    """Take a challenge: a program id (``GET /api/v1/challenges/programs``) at one of its sizes; ``currency`` of the
    paper account, default the program's (it must be the quote currency of the instruments traded)."""

    model_config = ConfigDict(extra="forbid")

    program: str = Field(min_length=1, max_length=100)
    account_size: Decimal = Field(gt=0, allow_inf_nan=False)
    currency: str | None = Field(default=None, min_length=2, max_length=16)


class ChallengeOut(BaseModel):
    """A challenge now: phase, status (``active`` | ``locked`` | ``passed`` | ``failed`` | ``promoted``), the paper
    account of the phase, today's permitted loss (equity − daily floor), the maximum permitted loss (equity − max-loss
    floor), profit against the target, trading days, best-day share, and the breach with its evidence."""

    id: str
    program: str
    account_size: Decimal
    phase: str
    phase_index: int
    account_id: str
    status: str
    equity: Decimal
    balance: Decimal
    daily_floor: Decimal | None
    max_loss_floor: Decimal | None
    todays_permitted_loss: Decimal | None
    max_permitted_loss: Decimal | None
    profit: Decimal
    target: Decimal | None
    profit_to_target: Decimal | None
    trading_days: int
    min_trading_days: int
    best_day_share: Decimal | None
    next_reset: str | None
    breach: dict[str, Any] | None
    previous_id: str | None
    created_ns: int


class ChallengeEventOut(BaseModel):
    """One stored challenge event (``payload``: its fields, decimals as strings)."""

    id: int
    event_id: str
    event_type: str
    version: int
    ts_event: int
    ts_init: int
    payload: dict[str, Any]


def program_out(p: Program) -> ProgramOut:
    """The API shape of a program."""
    return ProgramOut(
        id=p.id,
        firm=p.firm,
        name=p.name,
        currency=p.currency,
        sizes=list(p.sizes),
        tz=p.tz,
        reset_time=p.reset_time.strftime("%H:%M"),
        breach_on_equal=p.breach_on_equal,
        phases=[ph.model_dump(mode="json", exclude_none=True) for ph in p.phases],
        sources=[s.model_dump(mode="json") for s in p.sources],
        verified_on=p.verified_on.isoformat(),
        unconfirmed=list(p.unconfirmed),
    )


@router.get("/challenges/programs", response_model=list[ProgramOut])
async def list_programs(who: CurrentPrincipal, platform: PlatformDep) -> list[ProgramOut]:
    """Every challenge program: the built-in presets, then those defined through the API, with rules and sources."""
    del who  # any signed-in user
    custom = await platform.read(store.custom_programs)
    return [program_out(p) for p in (*programs().values(), *custom)]


@router.post("/challenges/programs", status_code=201, response_model=ProgramOut)
async def define_program(definition: dict[str, Any], who: CurrentPrincipal, platform: PlatformDep) -> ProgramOut:
    """Define a custom program (risk managers and admins): the JSON shape of a program YAML file (see the presets,
    ``GET /challenges/programs``). 422 names each field that breaks a rule (``phases[0].daily_loss.reference: must be
    one of balance, equity, max``); 409 for an id already taken (a program is never redefined: the challenges taken
    under it are judged by it)."""
    try:
        program = await platform.writer.run(lambda c: store.save_program(c, definition, who.user_id))
    except InvalidInputError as exc:
        raise ProblemError(422, str(exc), "invalid-program") from None
    except RejectedByRulesError as exc:
        raise ProblemError(409, str(exc), "program-id-taken") from None
    return program_out(program)


async def _program(platform: Any, program_id: str) -> Program:
    try:
        program: Program = await platform.read(lambda c: store.program_of(c, program_id))
    except NotFoundError as exc:
        raise ProblemError(422, str(exc), "invalid-input") from None
    return program


@router.post("/challenges", status_code=201, response_model=ChallengeOut)
async def take_challenge(body: ChallengeIn, user_id: CurrentUser, platform: PlatformDep) -> ChallengeOut:
    """Take a challenge: opens its paper account (a margin account funded with ``account_size``) and starts the first
    phase; the trading runtime judges it from its market clock on. 409 when the user already has
    ``MAX_ACCOUNTS_PER_USER`` accounts; 422 for a program or size that does not exist (the message lists them)."""
    program = await _program(platform, body.program)
    most = platform.settings.max_accounts_per_user

    def create(conn: Connection) -> dict[str, Any]:
        if len(account_store.accounts_of(conn, user_id)) >= most:
            raise ProblemError(409, f"a user may open at most {most} accounts (MAX_ACCOUNTS_PER_USER)", "too-many")
        return store.create_challenge(conn, user_id, program, body.account_size, body.currency, actor=user_id)

    row = await platform.writer.run(create)
    return await _view(platform, str(row["id"]))


@router.get("/challenges", response_model=list[ChallengeOut])
async def list_challenges(user_id: CurrentUser, platform: PlatformDep) -> list[ChallengeOut]:
    """The caller's challenges, oldest first (each phase of a promoted challenge is one, linked by ``previous_id``)."""
    rows = await platform.read(lambda c: store.challenges_of(c, user_id))
    return [await _view(platform, str(r.id)) for r in rows]


async def _owned(request: Request, challenge_id: str, who: Any) -> None:
    platform = request.app.state.platform
    row = await platform.read(lambda c: store.get_challenge(c, challenge_id))
    if row is None or (row.user_id != who.user_id and not who.has({Role.RISK_MANAGER})):
        raise ProblemError(404, f"no challenge {challenge_id}", "not-found")


@router.get("/challenges/{challenge_id}", response_model=ChallengeOut)
async def get_challenge(
    challenge_id: str, request: Request, who: CurrentPrincipal, platform: PlatformDep
) -> ChallengeOut:
    """One challenge: phase, status, floors and room at the current marks, objectives, breach. 404 for a challenge
    that does not exist or is someone else's (risk managers see every one)."""
    await _owned(request, challenge_id, who)
    return await _view(platform, challenge_id)


@router.get("/challenges/{challenge_id}/events", response_model=list[ChallengeEventOut])
async def challenge_events(
    challenge_id: str,
    request: Request,
    who: CurrentPrincipal,
    platform: PlatformDep,
    after: Annotated[int, Query(ge=0, description="only events stored after this event row id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[ChallengeEventOut]:
    """A challenge's events (warnings, breaches, locks, passes, closed days) in the order they happened."""
    await _owned(request, challenge_id, who)
    rows = await platform.read(lambda c: store.events_of(c, challenge_id, after, limit))
    return [
        ChallengeEventOut(
            id=r.id,
            event_id=r.event_id,
            event_type=r.event_type,
            version=r.version,
            ts_event=r.ts_event,
            ts_init=r.ts_init,
            payload=json.loads(r.payload),
        )
        for r in rows
    ]


async def _view(platform: Any, challenge_id: str) -> ChallengeOut:
    """The challenge valued now: the stored evaluator state (or a fresh one before the runtime started it) with the
    account's equity at the current marks."""

    def load(conn: Connection) -> tuple[Any, Any, list[Any]]:
        row = store.get_challenge(conn, challenge_id)
        if row is None:
            return None, None, []
        return row, account_store.get_account(conn, row.account_id), account_store.positions_of(conn, row.account_id)

    row, account_row, positions = await platform.read(load)
    if row is None or account_row is None:
        raise ProblemError(404, f"no challenge {challenge_id}", "not-found")
    program = await _program(platform, row.program_id)
    account = account_view(platform, account_row, positions)
    if row.state is not None:
        evaluator = ChallengeEvaluator.restore(program, json.loads(row.state))
    else:
        evaluator = ChallengeEvaluator(program, row.phase_index, row.account_size, row.created_ns)
    view = evaluator.view()
    equity = account.equity
    balance = equity - account.unrealized_pnl
    phase = program.phases[row.phase_index]
    over = row.status in ("failed", "passed", "promoted", "revoked")
    daily, most = view.daily_floor, view.max_loss_floor
    return ChallengeOut(
        id=row.id,
        program=row.program_id,
        account_size=row.account_size,
        phase=phase.name,
        phase_index=row.phase_index,
        account_id=row.account_id,
        status=row.status,
        equity=equity,
        balance=balance,
        daily_floor=daily,
        max_loss_floor=most,
        todays_permitted_loss=None if daily is None or over else equity - daily,
        max_permitted_loss=None if most is None or over else equity - most,
        profit=balance - row.account_size,
        target=view.target,
        profit_to_target=None if view.target is None else view.target - (balance - row.account_size),
        trading_days=view.trading_days,
        min_trading_days=phase.min_trading_days,
        best_day_share=view.best_day_share,
        next_reset=None if over else iso_utc(view.next_reset_ts),
        breach=None if row.breach is None else json.loads(row.breach),
        previous_id=row.previous_id,
        created_ns=row.created_ns,
    )
