"""Test kit for challenge rules: instants from local wall clocks, program variants, event normalisation."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from smart_trader.challenges import ChallengeEvent, Program, get_program, program_from_dict
from smart_trader.challenges.days import datetime_to_ns

D = Decimal
HOUR_NS = 3_600 * 1_000_000_000
MINUTE_NS = 60 * 1_000_000_000


def local_ns(tz: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """ns UTC of a local wall-clock time, computed with datetime + zoneinfo (independent of DayClock)."""
    return datetime_to_ns(dt.datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)))


def utc_ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """ns of a UTC wall-clock time."""
    return datetime_to_ns(dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC))


def variant(program_id: str, phase_index: int = 0, *, top: dict[str, Any] | None = None, **phase: Any) -> Program:
    """A built-in preset with some fields of one phase (and of the program) replaced, re-validated."""
    data = get_program(program_id).model_dump()
    data["phases"] = [data["phases"][phase_index] | phase]
    data.update(top or {})
    return program_from_dict(data)


def norm(events: list[ChallengeEvent]) -> list[tuple[str, dict[str, Any]]]:
    """Events without their random ``event_id``, for comparisons."""
    out = []
    for event in events:
        fields = dataclasses.asdict(event)
        fields.pop("event_id")
        out.append((event.event_type, fields))
    return out


def types(events: list[ChallengeEvent]) -> list[str]:
    """The event types, in order."""
    return [e.event_type for e in events]
