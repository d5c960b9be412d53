"""Round trips (closed trades) rebuilt from fills, independently of the position code.

A round trip runs from the fill that takes a position away from flat to the fill that brings it back
to flat. A fill that flips the position through zero closes one round trip and opens the next with
the rest of its quantity. P&L is exact: exit value − entry value (sign-adjusted for shorts) ×
multiplier − the commissions of its fills (a flipping fill's commission is split pro rata).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from smart_trader.analytics.stats import RoundTrip
from smart_trader.core.ids import InstrumentId
from smart_trader.execution.enums import OrderSide
from smart_trader.execution.events import Fill
from smart_trader.portfolio.exact import AVERAGE, EXACT

ZERO = Decimal(0)


@dataclass
class _Open:
    long: bool
    entry_ts: int
    entry_qty: Decimal = ZERO
    entry_value: Decimal = ZERO
    exit_qty: Decimal = ZERO
    exit_value: Decimal = ZERO
    commission: Decimal = ZERO


def build_round_trips(fills: Iterable[Fill], multipliers: Mapping[InstrumentId, Decimal]) -> list[RoundTrip]:
    """Closed round trips of ``fills`` (in fill order), sorted by exit time; open positions are left out."""
    out: list[RoundTrip] = []
    qty: dict[InstrumentId, Decimal] = {}
    open_: dict[InstrumentId, _Open] = {}
    for f in fills:
        iid = f.instrument_id
        q = qty.get(iid, ZERO)
        signed = f.quantity if f.side is OrderSide.BUY else -f.quantity
        rest, commission = f.quantity, f.commission
        if q != 0 and (q > 0) != (signed > 0):  # reducing
            closing = min(abs(q), f.quantity)
            rt = open_[iid]
            part_comm = (
                commission if closing == f.quantity else AVERAGE.divide(EXACT.multiply(commission, closing), f.quantity)
            )
            rt.exit_qty = EXACT.add(rt.exit_qty, closing)
            rt.exit_value = EXACT.add(rt.exit_value, EXACT.multiply(closing, f.price))
            rt.commission = EXACT.add(rt.commission, part_comm)
            rest, commission = EXACT.subtract(f.quantity, closing), EXACT.subtract(commission, part_comm)
            if rt.exit_qty == rt.entry_qty:
                out.append(_close(iid, rt, f.ts_event, multipliers.get(iid, Decimal(1))))
                del open_[iid]
        if rest > 0:  # opening or adding
            rt = open_.get(iid) or open_.setdefault(iid, _Open(signed > 0, f.ts_event))
            rt.entry_qty = EXACT.add(rt.entry_qty, rest)
            rt.entry_value = EXACT.add(rt.entry_value, EXACT.multiply(rest, f.price))
            rt.commission = EXACT.add(rt.commission, commission)
        qty[iid] = EXACT.add(q, signed)
    return sorted(out, key=lambda r: (r.exit_ts, r.entry_ts))


def _close(iid: InstrumentId, rt: _Open, ts: int, multiplier: Decimal) -> RoundTrip:
    gross = EXACT.subtract(rt.exit_value, rt.entry_value) if rt.long else EXACT.subtract(rt.entry_value, rt.exit_value)
    return RoundTrip(
        instrument_id=iid,
        side="long" if rt.long else "short",
        quantity=rt.entry_qty,
        entry_ts=rt.entry_ts,
        exit_ts=ts,
        entry_price=AVERAGE.divide(rt.entry_value, rt.entry_qty),
        exit_price=AVERAGE.divide(rt.exit_value, rt.exit_qty),
        pnl=EXACT.subtract(EXACT.multiply(gross, multiplier), rt.commission),
        commission=rt.commission,
    )
