"""Batch replay: run historical fills and price marks through an exact account model and the evaluator.

Used by ``challenge evaluate``: given a program, an account size, fills and marks, return a verdict dict.
The account model is deliberately small and exact (Decimal): a cash balance, a signed quantity and average
price per symbol, P&L realized on reductions, ``equity = balance + Σ qty·(mark − avg)·multiplier``; balance
and equity are quantized to cents (CHALLENGES.md §7.2 step 1). Commission is taken from the balance at the
fill. A soft lock is reported but not acted on (the fills are history: nothing is flattened).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from smart_trader.challenges.days import iso_utc
from smart_trader.challenges.evaluator import ChallengeEvaluator
from smart_trader.challenges.events import ChallengeEvent
from smart_trader.challenges.program import Program, to_cents
from smart_trader.core.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class ReplayFill:
    """A historical fill: ``qty`` > 0 in units (contracts), ``price`` and ``commission`` in account currency."""

    ts: int
    symbol: str
    side: Literal["buy", "sell"]
    qty: Decimal
    price: Decimal
    commission: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Mark:
    """A price observation of ``symbol`` at ``ts`` (ns UTC)."""

    ts: int
    symbol: str
    price: Decimal


@dataclass(slots=True)
class _Position:
    qty: Decimal = Decimal(0)
    avg: Decimal = Decimal(0)


@dataclass(slots=True)
class ReplayAccount:
    """The exact account model: ``balance`` (cash incl. realized P&L and commissions), positions and marks."""

    balance: Decimal
    multipliers: Mapping[str, Decimal] = field(default_factory=dict)
    positions: dict[str, _Position] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)

    def apply(self, fill: ReplayFill) -> bool:
        """Book ``fill``; returns True when it opened or increased a position (it may also flip one).

        Raises:
            InvalidInputError: non-positive quantity or an unknown side.
        """
        if fill.qty <= 0:
            raise InvalidInputError(f"fill at {iso_utc(fill.ts)}: qty must be > 0, got {fill.qty}")
        if fill.side not in ("buy", "sell"):
            raise InvalidInputError(f"fill at {iso_utc(fill.ts)}: side must be buy or sell, got {fill.side!r}")
        mult = self.multipliers.get(fill.symbol, Decimal(1))
        pos = self.positions.setdefault(fill.symbol, _Position())
        signed = fill.qty if fill.side == "buy" else -fill.qty
        realized = Decimal(0)
        opened = False
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
            pos.avg = (pos.qty * pos.avg + signed * fill.price) / (pos.qty + signed)
            pos.qty += signed
            opened = True
        else:
            closing = min(abs(signed), abs(pos.qty))
            direction = Decimal(1) if pos.qty > 0 else Decimal(-1)
            realized = closing * (fill.price - pos.avg) * direction * mult
            remainder = abs(signed) - closing
            pos.qty += signed
            if remainder > 0:  # flipped: the rest opens at the fill price
                pos.avg = fill.price
                opened = True
            elif pos.qty == 0:
                pos.avg = Decimal(0)
        self.balance = to_cents(self.balance + realized - fill.commission)
        self.marks[fill.symbol] = fill.price
        return opened

    def equity(self) -> Decimal:
        """Balance plus floating P&L at the last marks, quantized to cents."""
        floating = sum(
            (
                p.qty * (self.marks.get(s, p.avg) - p.avg) * self.multipliers.get(s, Decimal(1))
                for s, p in self.positions.items()
            ),
            Decimal(0),
        )
        return to_cents(self.balance + floating)

    @property
    def flat(self) -> bool:
        """No open position."""
        return all(p.qty == 0 for p in self.positions.values())

    def size(self, symbol: str) -> Decimal:
        """Absolute position in ``symbol``."""
        pos = self.positions.get(symbol)
        return abs(pos.qty) if pos else Decimal(0)


def _merged(fills: Iterable[ReplayFill], marks: Iterable[Mark]) -> Iterator[ReplayFill | Mark]:
    # fills before marks at the same ts; each stream keeps its own order
    ordered_fills = sorted(fills, key=lambda f: f.ts)
    keyed_fills: Iterator[tuple[int, int, int, ReplayFill | Mark]] = (
        (f.ts, 0, i, f) for i, f in enumerate(ordered_fills)
    )
    keyed_marks: Iterator[tuple[int, int, int, ReplayFill | Mark]] = ((m.ts, 1, i, m) for i, m in enumerate(marks))
    for _, _, _, item in heapq.merge(keyed_fills, keyed_marks, key=lambda k: (k[0], k[1], k[2])):
        yield item


def replay(
    program: Program,
    account_size: Decimal,
    fills: Iterable[ReplayFill],
    marks: Iterable[Mark],
    *,
    phase_index: int = 0,
    start_ts: int | None = None,
    until_ts: int | None = None,
    multipliers: Mapping[str, Decimal] | None = None,
) -> dict[str, Any]:
    """Evaluate one phase over historical fills and time-ordered marks.

    Args:
        start_ts: phase start (ns UTC); default the first input.
        until_ts: process day boundaries up to this instant after the last input (e.g. to close the last day).
        multipliers: per-symbol contract multiplier (default 1).

    Returns:
        ``{"status", "phase", "breach", "passed_ts", "trading_days", "best_day_share", "balance", "equity",
        "events"}`` — ``breach`` is ``{"rule", "ts" (ISO 8601 UTC), "equity", "floor"}`` (decimal strings) or
        ``None``; ``events`` lists every event's ``event_type``.

    Raises:
        InvalidInputError: marks out of time order, bad fills, size not offered by the program.
    """
    items = _merged(fills, marks)
    first = next(items, None)
    if first is None and start_ts is None:
        raise InvalidInputError("nothing to replay: no fills, no marks and no start_ts")
    if start_ts is not None:
        begin = start_ts
    else:
        assert first is not None
        begin = first.ts
    evaluator = ChallengeEvaluator(program, phase_index, account_size, begin)
    account = ReplayAccount(balance=to_cents(account_size), multipliers=dict(multipliers or {}))
    events: list[ChallengeEvent] = []

    def run_timers(upto: int) -> None:
        while (deadline := evaluator.next_deadline_ns()) is not None and deadline <= upto:
            events.extend(evaluator.on_time(deadline))

    last_ts = begin
    stream = items if first is None else itertools.chain([first], items)
    for item in stream:
        if item.ts < last_ts:
            raise InvalidInputError(f"input at {iso_utc(item.ts)} is earlier than the previous ({iso_utc(last_ts)})")
        last_ts = item.ts
        run_timers(item.ts)
        if isinstance(item, ReplayFill):
            opened = account.apply(item)
            events.extend(
                evaluator.on_fill(
                    item.ts,
                    balance=account.balance,
                    equity=account.equity(),
                    opened=opened,
                    flat=account.flat,
                    position_size=account.size(item.symbol),
                )
            )
        else:
            account.marks[item.symbol] = item.price
            events.extend(
                evaluator.on_valuation(item.ts, balance=account.balance, equity=account.equity(), flat=account.flat)
            )
    if until_ts is not None:
        run_timers(until_ts)
    return {
        **evaluator.verdict(details=False),
        "balance": str(account.balance),
        "equity": str(account.equity()),
        "events": [e.event_type for e in events],
    }
