"""One market-event dispatch for backtests and the live platform, with two indexes per instrument:

- **working**: the sessions with orders working on the instrument; their brokers match each event;
- **exposed**: the sessions holding a position in it whose monitors want valuations. Each one is kept with its quiet
  *price band*, the prices between which no monitor can learn anything new (its equity band, see
  :meth:`~smart_trader.trading.session.Monitor.equity_band`, turned into prices through the position). The band
  edges sit in two heaps (lows as a max-heap, highs as a min-heap), so a price move visits only the sessions whose
  band it leaves: with 50,000 accounts holding the instrument a trade costs two heap peeks when nothing is crossed,
  the way :mod:`smart_trader.execution.resting` keeps resting limits by price. A session holding several
  instruments cannot reduce its equity to one price and is valued on every move of each of them.

A session's band is recomputed after each of its valuations and whenever it says it changed
(:meth:`AccountSession.mark_stale`: a fill, a day reset).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from smart_trader.core.ids import InstrumentId
from smart_trader.core.instruments import Instrument
from smart_trader.trading.session import AccountSession

Marks = Callable[[InstrumentId], Decimal | None]


class _Exposure:
    """The sessions exposed to one instrument (see the module docstring)."""

    __slots__ = ("always", "highs", "lows", "members")

    def __init__(self) -> None:
        self.lows: list[tuple[Decimal, int, AccountSession]] = []  # (-low price, version, session)
        self.highs: list[tuple[Decimal, int, AccountSession]] = []  # (high price, version, session)
        self.always: set[AccountSession] = set()
        self.members: dict[AccountSession, int] = {}  # session → version of its live heap entries

    def __bool__(self) -> bool:
        return bool(self.members)


class MarketDispatcher:
    """Routes market events to sessions: brokers match them (working index), then the exposed sessions whose price
    band the move leaves are valued (exposure index).

    Args:
        instruments: looks an instrument up by id (its multiplier and tick size turn equity into prices).
        marks: the current mark of an instrument (quote currency), used for the instruments an event is not about.
    """

    def __init__(self, instruments: Callable[[InstrumentId], Instrument], marks: Marks) -> None:
        self.instruments = instruments
        self.marks = marks
        self.working: dict[InstrumentId, set[AccountSession]] = {}
        self.exposed: dict[InstrumentId, _Exposure] = {}
        self._where: dict[AccountSession, tuple[InstrumentId, ...]] = {}  # session → instruments it is indexed on
        self._version = 0
        self.stale: list[AccountSession] = []

    # -- working orders -------------------------------------------------------------------
    def work(self, session: AccountSession, instrument_id: InstrumentId) -> None:
        """``session`` has an order working on ``instrument_id``: its broker sees that instrument's events."""
        self.working.setdefault(instrument_id, set()).add(session)

    def unwork(self, instrument_id: InstrumentId) -> None:
        """Drop the sessions with nothing working any more on ``instrument_id`` from its working index."""
        sessions = self.working.get(instrument_id)
        if sessions:
            for s in [s for s in sessions if not s.broker.has_open_orders(instrument_id)]:
                sessions.discard(s)

    def forget(self, session: AccountSession) -> None:
        """Remove ``session`` from every index."""
        for sessions in self.working.values():
            sessions.discard(session)
        self._unindex(session)

    # -- exposure -------------------------------------------------------------------------
    def watch(self, session: AccountSession) -> None:
        """Let ``session`` report band changes (:meth:`AccountSession.mark_stale`) and index it now."""
        if session.monitors:
            session.on_stale = self.stale.append
            self.reindex(session)

    def reindex(self, session: AccountSession) -> None:
        """Place ``session`` in the exposure index of every instrument it holds, with its current band."""
        self._unindex(session)
        if not session.monitors:
            return
        held = [(iid, p) for iid, p in session.account.positions.items() if p.quantity]
        if not held:
            return
        self._version += 1
        version = self._version
        where = tuple(iid for iid, _ in held)
        self._where[session] = where
        if len(held) > 1:
            for iid in where:
                ex = self.exposed.setdefault(iid, _Exposure())
                ex.always.add(session)
                ex.members[session] = version
            return
        iid, pos = held[0]
        ex = self.exposed.setdefault(iid, _Exposure())
        ex.members[session] = version
        mark = self.marks(iid)
        if mark is None:
            ex.always.add(session)
            return
        low, high = session.equity_band()
        if low is None and high is None:
            return
        equity = session.account.equity
        instrument = self.instruments(iid)
        slope = pos.quantity * instrument.multiplier  # equity change per unit of price
        # edges rounded outwards far below the tick (Decimal division is rounded at 28 digits), so a price on or past
        # the exact edge always visits; a visit a hair early costs one valuation, never a missed breach
        quantum = Decimal(1).scaleb(-(instrument.price_precision + 6))
        for edge, is_low_equity in ((low, True), (high, False)):
            if edge is None:
                continue
            price = mark + (edge - equity) / slope
            # a falling price lowers a long's equity: the low equity edge is a low price for longs, a high one for
            # shorts
            if (slope > 0) == is_low_equity:
                heapq.heappush(ex.lows, (-price.quantize(quantum, ROUND_CEILING), version, session))
            else:
                heapq.heappush(ex.highs, (price.quantize(quantum, ROUND_FLOOR), version, session))

    def _unindex(self, session: AccountSession) -> None:
        for iid in self._where.pop(session, ()):
            ex = self.exposed.get(iid)
            if ex is not None:
                ex.members.pop(session, None)
                ex.always.discard(session)

    def on_price(self, instrument_id: InstrumentId, ts: int, price: Decimal) -> None:
        """A price of ``instrument_id`` at ``ts`` (ns UTC): value every exposed session whose band it leaves (at
        ``price`` for this instrument, the current marks for the others), then re-index them."""
        ex = self.exposed.get(instrument_id)
        if ex is None or not ex.members:
            return
        visit: list[AccountSession] = list(ex.always)
        members = ex.members
        lows, highs = ex.lows, ex.highs
        neg = -price
        while lows and lows[0][0] <= neg:
            _p, version, s = heapq.heappop(lows)
            if members.get(s) == version:
                members[s] = -1  # visited once per event, whichever edge it crossed
                visit.append(s)
        while highs and highs[0][0] <= price:
            _p, version, s = heapq.heappop(highs)
            if members.get(s) == version:
                members[s] = -1
                visit.append(s)
        if not visit:
            return
        marks = self.marks

        def mark(iid: InstrumentId) -> Decimal | None:
            return price if iid == instrument_id else marks(iid)

        for s in visit:
            s.value(ts, mark)
            self.reindex(s)
            if s.stale_reported and not s.deferred:  # just valued and re-indexed: nothing left for flush_stale
                s.stale_reported = False
        self.flush_stale(ts)

    def flush_stale(self, ts: int, marks: Marks | None = None) -> None:
        """Run the deferred actions of the sessions that reported a change (fills, resets) since the last call, then
        value them at ``marks`` (default: their own) and re-index them."""
        stale = self.stale
        while stale:
            batch = list(dict.fromkeys(stale))
            stale.clear()
            for s in batch:
                if not s.stale_reported:  # handled since it reported (valued and re-indexed by on_price)
                    continue
                s.stale_reported = False
                if s.deferred:
                    s.settle(ts)
                    for iid in s.broker.working_instruments():  # orders the deferred actions submitted work too
                        self.work(s, iid)
                s.value(ts, marks)
                self.reindex(s)

    def exposed_sessions(self, instrument_id: InstrumentId) -> list[AccountSession]:
        """The sessions holding ``instrument_id`` that are watched."""
        ex = self.exposed.get(instrument_id)
        return [] if ex is None else list(ex.members)
