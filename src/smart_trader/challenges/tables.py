"""Tables of the challenges service: a user's challenges and their events.

``challenges`` holds one row per challenge a user took (a program at a size): the phase it is in, the paper account of
that phase (a fresh one at each promotion), its status, the evaluator's state (``state``: the JSON of
:meth:`~smart_trader.challenges.evaluator.ChallengeEvaluator.snapshot`, ``NULL`` until the runtime starts judging it)
and the breach's evidence. ``challenge_events`` is the append-only record of what happened (warnings, breaches, locks,
passes, closed days), idempotent by ``event_id``. Timestamps are ns since the epoch, UTC.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from smart_trader.db.metadata import metadata
from smart_trader.db.types import ExactDecimal

challenges = Table(
    "challenges",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("program_id", String(100), nullable=False),
    Column("account_size", ExactDecimal, nullable=False),
    Column("phase_index", Integer, nullable=False),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # active | locked | passed | failed | promoted
    Column("state", Text, nullable=True),  # the evaluator's snapshot (JSON); NULL before the runtime starts it
    Column("breach", Text, nullable=True),  # JSON evidence of the hard breach
    Column("previous_id", String(36), nullable=True),  # the challenge row of the phase before (promotion)
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
)

challenge_events = Table(
    "challenge_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("challenge_id", String(36), ForeignKey("challenges.id"), nullable=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Column("ts_event", BigInteger, nullable=False),
    Column("ts_init", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),  # JSON, decimals as strings
    Index("ix_challenge_events_challenge_id_id", "challenge_id", "id"),
)

challenge_programs = Table(
    "challenge_programs",
    metadata,
    Column("id", String(100), primary_key=True),  # the program id (never a built-in preset's)
    Column("definition", Text, nullable=False),  # the program as JSON (the YAML/JSON shape of program.py)
    Column("created_by", String(36), nullable=True),  # user id of the risk manager or admin
    Column("created_ns", BigInteger, nullable=False),
)
