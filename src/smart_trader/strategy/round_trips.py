"""Round trips (closed trades) rebuilt from fills, independently of the position code.

A round trip runs from the fill that takes a position away from flat to the fill that brings it back
to flat. A fill that flips the position through zero closes one round trip and opens the next with
the rest of its quantity. P&L is exact: exit value − entry value (sign-adjusted for shorts) ×
multiplier − the commissions of its fills (a flipping fill's commission is split pro rata).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, localcontext
from typing import Any

from smart_trader.analytics.stats import RoundTrip
from smart_trader.core.ids import InstrumentId
from smart_trader.execution.enums import OrderSide
from smart_trader.execution.events import Fill
from smart_trader.portfolio.exact import AVERAGE, EXACT

ZERO = Decimal(0)
ONE = Decimal(1)


def build_round_trips(fills: Iterable[Fill], multipliers: Mapping[InstrumentId, Decimal]) -> list[RoundTrip]:
    """Closed round trips of ``fills`` (in fill order), sorted by exit time; open positions are left out.

    Sums and products run in the exact context (rounding raises); only average prices and a flipping
    fill's pro-rata commission are quotients (28 digits).
    """
    out: list[RoundTrip] = []
    qty: dict[InstrumentId, Decimal] = {}
    # per instrument: [long, entry_ts, entry_qty, entry_value, exit_qty, exit_value, commission]
    open_: dict[InstrumentId, list[Any]] = {}
    buy = OrderSide.BUY
    with localcontext(EXACT):
        for f in fills:
            iid = f.instrument_id
            q = qty.get(iid, ZERO)
            fq = f.quantity
            signed = fq if f.side is buy else -fq
            rest, commission = fq, f.commission
            if q and (q > 0) != (signed > 0):  # reducing
                closing = min(abs(q), fq)
                rt = open_[iid]
                part = commission if closing == fq else AVERAGE.divide(commission * closing, fq)
                rt[4] += closing
                rt[5] += closing * f.price
                rt[6] += part
                rest, commission = fq - closing, commission - part
                if rt[4] == rt[2]:
                    out.append(_close(iid, rt, f.ts_event, multipliers.get(iid, ONE)))
                    del open_[iid]
            if rest:  # opening or adding
                trip = open_.get(iid)
                if trip is None:
                    trip = open_[iid] = [signed > 0, f.ts_event, ZERO, ZERO, ZERO, ZERO, ZERO]
                trip[2] += rest
                trip[3] += rest * f.price
                trip[6] += commission
            qty[iid] = q + signed
    out.sort(key=lambda r: (r.exit_ts, r.entry_ts))
    return out


def _close(iid: InstrumentId, rt: list[Any], ts: int, multiplier: Decimal) -> RoundTrip:
    long, entry_ts, entry_qty, entry_value, exit_qty, exit_value, commission = rt
    gross = exit_value - entry_value if long else entry_value - exit_value
    return RoundTrip(
        instrument_id=iid,
        side="long" if long else "short",
        quantity=entry_qty,
        entry_ts=entry_ts,
        exit_ts=ts,
        entry_price=AVERAGE.divide(entry_value, entry_qty),
        exit_price=AVERAGE.divide(exit_value, exit_qty),
        pnl=gross * multiplier - commission,
        commission=commission,
    )
