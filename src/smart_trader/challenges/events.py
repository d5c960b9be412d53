"""Challenge events: small frozen records the evaluator returns.

Every event carries ``event_id`` (a UUIDv7 string), ``ts_event`` (the instant the rule took effect: the
valuation, fill or boundary time, ns since the epoch UTC) and ``ts_init`` (the time of the call that produced
it, same unit), plus the class-level ``version`` and ``event_type``. ``account_id`` is the id given to the
evaluator (``None`` when the caller did not give one; the caller may ``dataclasses.replace`` it).
Money fields are :class:`~decimal.Decimal` in the account currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, ClassVar

from uuid_utils import uuid7


def new_event_id() -> str:
    """A fresh UUIDv7 as text (time-ordered)."""
    return str(uuid7())


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengeEvent:
    """Base of all challenge events. ``phase`` is the phase name, ``rule`` the rule id when one applies."""

    version: ClassVar[int] = 1
    event_type: ClassVar[str] = "ChallengeEvent"

    event_id: str
    ts_event: int
    ts_init: int
    phase: str
    account_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengeWarning(ChallengeEvent):
    """``room_used`` (a fraction) of a floor's room reached ``level`` (e.g. 0.8); emitted once per rule and level
    per firm day. ``value`` is the compared equity (or balance), ``floor`` the rule's floor."""

    event_type: ClassVar[str] = "ChallengeWarning"

    rule: str
    level: Decimal
    room_used: Decimal
    floor: Decimal
    value: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengeBreached(ChallengeEvent):
    """A hard rule was broken: the phase is failed. ``floor`` / ``equity`` are the evidence (``floor`` is
    ``None`` for time rules: ``max_days``, ``inactivity``). ``details`` is room for the caller's evidence
    (prices, positions) as text."""

    event_type: ClassVar[str] = "ChallengeBreached"

    rule: str
    kind: str
    floor: Decimal | None
    equity: Decimal
    balance: Decimal
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengeLocked(ChallengeEvent):
    """A soft rule was hit (soft daily loss [S22], flat-by time): trading is locked until ``until_ts``.
    ``flatten`` true asks the caller to close all positions and cancel orders now."""

    event_type: ClassVar[str] = "ChallengeLocked"

    rule: str
    floor: Decimal | None
    equity: Decimal
    until_ts: int
    flatten: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengeUnlocked(ChallengeEvent):
    """The lock of ``rule`` ended at the day boundary ``ts_event``."""

    event_type: ClassVar[str] = "ChallengeUnlocked"

    rule: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChallengePassed(ChallengeEvent):
    """All pass conditions of the phase held at ``ts_event`` (R7)."""

    event_type: ClassVar[str] = "ChallengePassed"

    balance: Decimal
    equity: Decimal
    trading_days: int
    best_day_share: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DayClosed(ChallengeEvent):
    """Firm day ``day`` (ISO date) closed at boundary ``ts_event``: its realized P&L (balance change), day-end
    balance and equity, whether it counted as a trading day, and the floors of the new day."""

    event_type: ClassVar[str] = "DayClosed"

    day: str
    pnl: Decimal
    eod_balance: Decimal
    eod_equity: Decimal
    counted_trading_day: bool
    daily_floor: Decimal | None
    max_loss_floor: Decimal | None


def to_payload(event: ChallengeEvent) -> dict[str, Any]:
    """The event as a JSON-able dict: its fields (decimals as strings, ``None`` kept) plus ``event_type`` and
    ``version``; the shape stored in ``challenge_events.payload`` and sent on the ``challenges`` WebSocket topic."""
    out: dict[str, Any] = {"event_type": event.event_type, "version": event.version}
    for f in fields(event):
        value = getattr(event, f.name)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, Mapping):
            value = {str(k): str(v) for k, v in value.items()}
        out[f.name] = value
    return out
