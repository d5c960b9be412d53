"""The evaluator's state, its records (breach, closed day) and their plain-JSON form.

Kept apart from the rules so that :meth:`ChallengeEvaluator.snapshot` / ``restore`` are one obvious mapping:
every field here is persisted, nothing else is. Money is :class:`~decimal.Decimal` (account currency), stored
as text; instants are ``int`` ns UTC; firm days are :class:`datetime.date` (ISO text when stored).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from smart_trader.core.errors import InvalidInputError

SNAPSHOT_VERSION = 1


class Status(StrEnum):
    """Status of one account in one phase."""

    ACTIVE = "active"
    PASSED = "passed"
    FAILED = "failed"
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class Breach:
    """Evidence of a hard breach: rule id, floor (``None`` for time rules), equity and balance at ``ts`` (ns UTC).
    ``details`` holds the caller's extra evidence (prices, positions) as text."""

    rule: str
    kind: str
    floor: Decimal | None
    equity: Decimal
    balance: Decimal
    ts: int
    details: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {
            "rule": self.rule,
            "kind": self.kind,
            "floor": _dec_out(self.floor),
            "equity": str(self.equity),
            "balance": str(self.balance),
            "ts": self.ts,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Breach:
        """Inverse of :meth:`to_dict`."""
        return cls(
            rule=str(data["rule"]),
            kind=str(data["kind"]),
            floor=_dec_in(data["floor"]),
            equity=Decimal(data["equity"]),
            balance=Decimal(data["balance"]),
            ts=int(data["ts"]),
            details={str(k): str(v) for k, v in data["details"].items()},
        )


@dataclass(frozen=True, slots=True)
class DayRecord:
    """A closed firm day: day-start and day-end balance and equity (account currency)."""

    day: dt.date
    sod_balance: Decimal
    sod_equity: Decimal
    eod_balance: Decimal
    eod_equity: Decimal
    counted: bool

    def pnl(self, kind: str) -> Decimal:
        """Day P&L: ``realized`` = balance change, ``equity_delta`` = equity change (R9)."""
        if kind == "equity_delta":
            return self.eod_equity - self.sod_equity
        return self.eod_balance - self.sod_balance

    def to_list(self) -> list[Any]:
        """Compact JSON-able form."""
        return [
            self.day.isoformat(),
            str(self.sod_balance),
            str(self.sod_equity),
            str(self.eod_balance),
            str(self.eod_equity),
            self.counted,
        ]

    @classmethod
    def from_list(cls, row: list[Any]) -> DayRecord:
        """Inverse of :meth:`to_list`."""
        return cls(
            dt.date.fromisoformat(row[0]),
            Decimal(row[1]),
            Decimal(row[2]),
            Decimal(row[3]),
            Decimal(row[4]),
            bool(row[5]),
        )


def _dec_out(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _dec_in(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass(slots=True)
class EvaluatorState:
    """Everything the evaluator remembers between calls (see the evaluator for what each field means)."""

    status: Status
    balance: Decimal
    equity: Decimal
    flat: bool
    last_ts: int
    day: dt.date
    next_boundary: int
    sod_balance: Decimal
    sod_equity: Decimal
    daily_amount: Decimal | None
    daily_floor: Decimal | None
    day_peak: Decimal
    hwm: Decimal
    max_floor: Decimal | None
    flat_by_ts: int | None
    flat_by_done: bool
    last_activity_day: dt.date
    opened_today: bool = False
    trading_days: set[dt.date] = field(default_factory=set)
    days: list[DayRecord] = field(default_factory=list)
    warned: set[str] = field(default_factory=set)
    lock_rule: str | None = None
    lock_until: int | None = None
    breach: Breach | None = None
    passed_ts: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (Decimal as text, dates as ISO text)."""
        return {
            "status": self.status.value,
            "balance": str(self.balance),
            "equity": str(self.equity),
            "flat": self.flat,
            "last_ts": self.last_ts,
            "day": self.day.isoformat(),
            "next_boundary": self.next_boundary,
            "sod_balance": str(self.sod_balance),
            "sod_equity": str(self.sod_equity),
            "daily_amount": _dec_out(self.daily_amount),
            "daily_floor": _dec_out(self.daily_floor),
            "day_peak": str(self.day_peak),
            "hwm": str(self.hwm),
            "max_floor": _dec_out(self.max_floor),
            "flat_by_ts": self.flat_by_ts,
            "flat_by_done": self.flat_by_done,
            "last_activity_day": self.last_activity_day.isoformat(),
            "opened_today": self.opened_today,
            "trading_days": sorted(d.isoformat() for d in self.trading_days),
            "days": [r.to_list() for r in self.days],
            "warned": sorted(self.warned),
            "lock_rule": self.lock_rule,
            "lock_until": self.lock_until,
            "breach": None if self.breach is None else self.breach.to_dict(),
            "passed_ts": self.passed_ts,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluatorState:
        """Inverse of :meth:`to_dict`. Raises InvalidInputError on a malformed snapshot."""
        try:
            return cls(
                status=Status(data["status"]),
                balance=Decimal(data["balance"]),
                equity=Decimal(data["equity"]),
                flat=bool(data["flat"]),
                last_ts=int(data["last_ts"]),
                day=dt.date.fromisoformat(data["day"]),
                next_boundary=int(data["next_boundary"]),
                sod_balance=Decimal(data["sod_balance"]),
                sod_equity=Decimal(data["sod_equity"]),
                daily_amount=_dec_in(data["daily_amount"]),
                daily_floor=_dec_in(data["daily_floor"]),
                day_peak=Decimal(data["day_peak"]),
                hwm=Decimal(data["hwm"]),
                max_floor=_dec_in(data["max_floor"]),
                flat_by_ts=None if data["flat_by_ts"] is None else int(data["flat_by_ts"]),
                flat_by_done=bool(data["flat_by_done"]),
                last_activity_day=dt.date.fromisoformat(data["last_activity_day"]),
                opened_today=bool(data["opened_today"]),
                trading_days={dt.date.fromisoformat(d) for d in data["trading_days"]},
                days=[DayRecord.from_list(r) for r in data["days"]],
                warned={str(w) for w in data["warned"]},
                lock_rule=data["lock_rule"],
                lock_until=None if data["lock_until"] is None else int(data["lock_until"]),
                breach=None if data["breach"] is None else Breach.from_dict(data["breach"]),
                passed_ts=None if data["passed_ts"] is None else int(data["passed_ts"]),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise InvalidInputError(f"malformed challenge evaluator snapshot: {exc!r}") from None
