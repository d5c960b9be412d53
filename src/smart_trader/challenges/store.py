"""Storage of challenges: rows of ``challenges`` and ``challenge_events`` (``challenges/tables.py``), opened with their
paper account (``portfolio/store.py``). Functions take a SQLAlchemy connection; writes run inside the caller's
transaction (the platform's batch writer). Timestamps are ns since the epoch, UTC; money is exact."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from smart_trader.challenges.days import iso_utc
from smart_trader.challenges.events import ChallengeEvent, to_payload
from smart_trader.challenges.program import Program, program_from_dict, programs
from smart_trader.challenges.tables import challenge_events, challenge_programs, challenges
from smart_trader.core.clock import now_ns
from smart_trader.core.errors import InvalidInputError, NotFoundError, RejectedByRulesError
from smart_trader.db.outbox import event_row, outbox
from smart_trader.gateway.hub import challenges_topic
from smart_trader.portfolio import store as account_store
from smart_trader.portfolio.account import AccountType

OPEN_STATUSES = ("active", "locked")  # the runtime judges these; passed, failed, promoted and revoked are over
REVOKED = "revoked"  # a phase whose purchase was refunded or disputed


def create_challenge(
    conn: Connection,
    user_id: str,
    program: Program,
    account_size: Decimal,
    currency: str | None = None,
    phase_index: int = 0,
    previous_id: str | None = None,
    *,
    actor: str | None = None,
) -> dict[str, Any]:
    """Open a challenge of ``program`` at ``account_size`` for ``user_id``: a fresh margin paper account funded with the
    size (in ``currency``, default the program's) and the challenge row (status ``active``, no evaluator state yet:
    the trading runtime starts judging it at its market clock), with their ``account.opened`` and
    ``challenge.started`` events (for the audit trail; ``actor``: who opened it — the trader, the administrator or the
    payment provider of a grant —, ``None`` for the platform's own, a promotion's next phase). Returns the challenge
    row.

    Raises:
        InvalidInputError: a size the program does not offer (the message lists the sizes), a phase it has not.
    """
    if account_size not in program.sizes:
        sizes = ", ".join(str(s) for s in program.sizes)
        raise InvalidInputError(f"account_size {account_size} is not offered by {program.id}: one of {sizes}")
    if not 0 <= phase_index < len(program.phases):
        raise InvalidInputError(f"{program.id} has no phase {phase_index}")
    phase = program.phases[phase_index]
    name = f"{program.name} — {phase.name}"[:200]
    account = account_store.create_account(
        conn, user_id, name, currency or program.currency, account_size, AccountType.MARGIN, actor=actor
    )
    now = now_ns()
    row = {
        "id": str(uuid.uuid4()),
        "user_id": user_id,
        "program_id": program.id,
        "account_size": account_size,
        "phase_index": phase_index,
        "account_id": account["id"],
        "status": "active",
        "state": None,
        "breach": None,
        "previous_id": previous_id,
        "created_ns": now,
        "updated_ns": now,
    }
    conn.execute(insert(challenges), [row])
    conn.execute(insert(outbox), [_started(row, phase.name, str(account["currency"]), actor)])
    return row


def _started(row: Mapping[str, Any], phase: str, currency: str, actor: str | None) -> dict[str, Any]:
    """The ``challenge.started`` outbox row of a new challenge row (its WebSocket document's type:
    ``challenge_started``). It has neither the ``event`` / ``data`` of the evaluator's events nor their ``challenge``
    view: the notification rules and the analytics projection, which read those, pass it by."""
    account_id = str(row["account_id"])
    topic = challenges_topic(account_id)
    body = {
        "type": "challenge_started",
        "topic": topic,
        "challenge_id": row["id"],
        "account_id": account_id,
        "user_id": row["user_id"],
        "actor": actor,
        "program": row["program_id"],
        "account_size": str(row["account_size"]),
        "currency": currency,
        "phase_index": row["phase_index"],
        "phase": phase,
        "previous_id": row["previous_id"],
        "created_ns": row["created_ns"],
    }
    created = int(row["created_ns"])
    return event_row(topic, "challenge.started", body, created, stream="challenges", partition_key=account_id)


def get_challenge(conn: Connection, challenge_id: str) -> Row[Any] | None:
    """The challenge row, or ``None``."""
    return conn.execute(select(challenges).where(challenges.c.id == challenge_id)).first()


def challenges_of(conn: Connection, user_id: str) -> list[Row[Any]]:
    """A user's challenges, oldest first."""
    q = select(challenges).where(challenges.c.user_id == user_id).order_by(challenges.c.created_ns, challenges.c.id)
    return list(conn.execute(q))


def challenge_of_account(conn: Connection, account_id: str) -> Row[Any] | None:
    """The challenge whose phase trades on ``account_id``, or ``None`` (a plain paper account)."""
    return conn.execute(select(challenges).where(challenges.c.account_id == account_id)).first()


def open_challenge_accounts(conn: Connection) -> list[str]:
    """Accounts of the challenges still being judged (the runtime loads them at start: their day resets and flat-by
    times run even without orders or positions)."""
    q = select(challenges.c.account_id).where(challenges.c.status.in_(OPEN_STATUSES))
    return [str(r.account_id) for r in conn.execute(q)]


def save_state(
    conn: Connection, challenge_id: str, status: str, state: dict[str, Any], breach: dict[str, Any] | None
) -> None:
    """Store the evaluator's snapshot, status and breach evidence of a challenge; a ``promoted`` phase keeps that
    status (a batch written twice, or a change after the promotion, must not make it ``passed`` again and promote it
    twice), and so does a ``revoked`` one (a refund revoked it while the runtime was still judging it)."""
    values = {
        "state": json.dumps(state, separators=(",", ":")),
        "breach": None if breach is None else json.dumps(breach, separators=(",", ":")),
        "updated_ns": now_ns(),
    }
    row = challenges.c
    conn.execute(update(challenges).where(row.id == challenge_id).values(**values))
    conn.execute(
        update(challenges).where(row.id == challenge_id, row.status.notin_(("promoted", REVOKED))).values(status=status)
    )


def revoke(conn: Connection, challenge_id: str, now_ns: int) -> bool:
    """Set a challenge phase that is still judged (``active`` or ``locked``) to ``revoked`` (a refund or a dispute of
    its purchase); ``False`` when it was not open any more (passed, failed, promoted, revoked) and nothing changed.
    :func:`block_reason` then refuses the account's orders ("challenge phase revoked"), and :func:`save_state` never
    writes another status over it."""
    result = conn.execute(
        update(challenges)
        .where(challenges.c.id == challenge_id, challenges.c.status.in_(OPEN_STATUSES))
        .values(status=REVOKED, updated_ns=now_ns)
    )
    return bool(result.rowcount)


def event_rows(challenge_id: str, events: Sequence[ChallengeEvent]) -> list[dict[str, Any]]:
    """Rows of ``challenge_events`` for ``events``."""
    return [
        {
            "challenge_id": challenge_id,
            "event_id": e.event_id,
            "event_type": e.event_type,
            "version": e.version,
            "ts_event": e.ts_event,
            "ts_init": e.ts_init,
            "payload": json.dumps(to_payload(e), separators=(",", ":")),
        }
        for e in events
    ]


def append_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Append event rows, skipping those whose ``event_id`` is already stored (a batch written twice)."""
    if not rows:
        return
    known = {
        str(r.event_id)
        for r in conn.execute(
            select(challenge_events.c.event_id).where(challenge_events.c.event_id.in_([r["event_id"] for r in rows]))
        )
    }
    fresh = [r for r in rows if r["event_id"] not in known]
    if fresh:
        conn.execute(insert(challenge_events), fresh)


def events_of(conn: Connection, challenge_id: str, after_id: int = 0, limit: int = 500) -> list[Row[Any]]:
    """A challenge's events in the order they were stored, after the row id ``after_id``, at most ``limit``."""
    q = (
        select(challenge_events)
        .where(challenge_events.c.challenge_id == challenge_id, challenge_events.c.id > after_id)
        .order_by(challenge_events.c.id)
        .limit(limit)
    )
    return list(conn.execute(q))


def promote(conn: Connection, row: Row[Any], program: Program) -> dict[str, Any] | None:
    """A passed phase moves on: the row becomes ``promoted`` and the next phase opens on a fresh account at the same
    size (CHALLENGES.md §1: each phase restarts at B0). Returns the new challenge row, or ``None`` after the last
    phase."""
    nxt = int(row.phase_index) + 1
    if nxt >= len(program.phases):
        return None
    conn.execute(update(challenges).where(challenges.c.id == row.id).values(status="promoted", updated_ns=now_ns()))
    account = account_store.get_account(conn, row.account_id)
    currency = None if account is None else str(account.currency)
    return create_challenge(conn, row.user_id, program, row.account_size, currency, nxt, previous_id=row.id)


NOT_A_CHALLENGE = "not a challenge account"
"""What :func:`block_reason` answers for a plain paper account (it never becomes a challenge account)."""


def block_reason(conn: Connection, account_id: str) -> str | None:
    """Why ``account_id`` takes no new orders because of its challenge, as stored: ``None`` while it trades, or
    :data:`NOT_A_CHALLENGE`; a failed phase names the rule, the floor, the equity and the instant; a locked one the
    rule and when it unlocks; a passed or promoted phase says so."""
    row = challenge_of_account(conn, account_id)
    if row is None:
        return NOT_A_CHALLENGE
    if row.status == "active":
        return None
    if row.status == "failed":
        breach = json.loads(row.breach) if row.breach else {}
        rule = breach.get("rule", "a rule")
        floor = breach.get("floor")
        where = "" if floor is None else f" (equity {breach.get('equity')} vs floor {floor})"
        return f"challenge failed: {rule}{where} at {breach.get('ts', '?')}"
    if row.status == "locked":
        state = json.loads(row.state).get("state", {}) if row.state else {}
        until = state.get("lock_until")
        return f"challenge locked by {state.get('lock_rule') or 'a soft rule'}" + (
            f" until {iso_utc(int(until))}" if until is not None else ""
        )
    return f"challenge phase {row.status}: this account takes no more orders"


def program_of(conn: Connection, program_id: str) -> Program:
    """A built-in preset or a program defined through the API, by id.

    Raises:
        NotFoundError: no such program (the message lists the known ids).
    """
    built_in = programs()
    if program_id in built_in:
        return built_in[program_id]
    row = conn.execute(select(challenge_programs).where(challenge_programs.c.id == program_id)).first()
    if row is None:
        known = sorted([*built_in, *(str(r.id) for r in conn.execute(select(challenge_programs.c.id)))])
        raise NotFoundError(f"unknown challenge program {program_id!r} (known: {', '.join(known)})")
    return program_from_dict(json.loads(row.definition))


def custom_programs(conn: Connection) -> list[Program]:
    """The programs defined through the API, by id."""
    rows = conn.execute(select(challenge_programs).order_by(challenge_programs.c.id))
    return [program_from_dict(json.loads(r.definition)) for r in rows]


def save_program(conn: Connection, definition: dict[str, Any], user_id: str | None) -> Program:
    """Validate and store a program defined through the API (a risk manager's or an admin's, ``user_id``), with its
    ``challenge.program_defined`` event (stream ``admin``, partition key the program id; the definition as stored).

    Raises:
        InvalidInputError: a field breaks a rule (each problem names its field path).
        RejectedByRulesError: the id is a built-in preset's or already defined (programs are never redefined: the
            challenges taken under one are judged by it).
    """
    program = program_from_dict(definition)
    taken = (
        program.id in programs()
        or conn.execute(select(challenge_programs.c.id).where(challenge_programs.c.id == program.id)).first()
    )
    if taken:
        raise RejectedByRulesError(f"program id {program.id!r} is taken: choose another id")
    stored = program.model_dump(mode="json")
    now = now_ns()
    conn.execute(
        insert(challenge_programs),
        [{"id": program.id, "definition": json.dumps(stored), "created_by": user_id, "created_ns": now}],
    )
    body = {"program": program.id, "actor": user_id, "definition": stored}
    event = event_row(
        f"admin.{program.id}", "challenge.program_defined", body, now, stream="admin", partition_key=program.id
    )
    conn.execute(insert(outbox), [event])
    return program
