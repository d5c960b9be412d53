"""Rebuilding an order book from a normalized book table: snapshot, then updates in sequence, gaps reported.

A table in the book schema (:func:`smart_trader.data.schema.book_schema`) is a stream of *events* (runs of
rows ending with ``last_in_event``). A snapshot event replaces the book; an update event sets levels.
Where the source carries update ids, :class:`BookBuilder` checks them as Binance documents for USD-M
futures ("How to manage a local order book correctly", developers.binance.com):

1. updates before the first snapshot are skipped (Tardis gives the same advice for its CSV files);
2. an update whose last id ``u`` is below the snapshot's ``lastUpdateId`` is older than the snapshot:
   dropped;
3. the first update applied must straddle the snapshot: ``U <= lastUpdateId <= u`` (spot, without
   ``pu``: ``U <= lastUpdateId + 1 <= u``);
4. then each update's ``pu`` must equal the previous update's ``u`` (spot: ``U`` = previous ``u`` + 1).

A broken rule is a :class:`BookGap`: updates are missing, so the book would silently diverge from the
venue's. What happens then is the caller's :class:`GapPolicy`. Sources without ids (Tardis) are applied
as they come: their gaps are not visible in the data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smart_trader.core.clock import ns_to_datetime
from smart_trader.core.errors import InvalidInputError
from smart_trader.data.book_rules import event_bounds, int_column
from smart_trader.data.schema import Int64OverflowError, raw_from_decimal, single_array, ts_ns
from smart_trader.microstructure.book import ASK, BID, OrderBook

_NULL = np.iinfo(np.int64).min


class GapPolicy(StrEnum):
    """What :class:`BookBuilder` does on a sequence gap (every policy records it in ``gaps``).

    - ``raise`` — stop: :class:`BookGapError`.
    - ``resync`` — drop updates until the next snapshot, which makes the book valid again; no
      book state is reported in between.
    - ``continue`` — apply the updates anyway and keep reporting, flagged out of sync until the next
      snapshot (for recordings known to be cut, e.g. a snapshot saved apart from its updates).
    """

    RAISE = "raise"
    RESYNC = "resync"
    CONTINUE = "continue"


@dataclass(frozen=True, slots=True)
class BookGap:
    """A break in the venue's update sequence.

    Attributes:
        ts_event: ns UTC of the update that revealed the gap.
        row: 0-based table row where that update starts.
        held_update_id: last update id the book holds (the snapshot's ``lastUpdateId`` or the previous ``u``).
        first_update_id, last_update_id, prev_update_id: the update's ``U``, ``u`` and ``pu`` (``None``
            when the source has no ``pu``).
        reason: which rule broke.
    """

    ts_event: int
    row: int
    held_update_id: int
    first_update_id: int
    last_update_id: int
    prev_update_id: int | None
    reason: str

    def __str__(self) -> str:
        pu = "" if self.prev_update_id is None else f", pu {self.prev_update_id}"
        return (
            f"sequence gap at {ns_to_datetime(self.ts_event).isoformat()} (row {self.row + 1}): {self.reason}; "
            f"the book holds updates up to id {self.held_update_id}, the update covers ids "
            f"{self.first_update_id}..{self.last_update_id}{pu}"
        )


class BookGapError(InvalidInputError):
    """Raised under :attr:`GapPolicy.RAISE`; ``gap`` says where and why."""

    def __init__(self, gap: BookGap) -> None:
        self.gap = gap
        super().__init__(str(gap))


@dataclass(frozen=True, slots=True)
class BookEvent:
    """One event of a book table: rows ``start``..``end`` (0-based, end exclusive), ``ts_event`` and
    ``ts_recv`` in ns UTC (``ts_recv`` ``None`` when the source has none), the update ids (``None`` when absent)."""

    start: int
    end: int
    ts_event: int
    ts_recv: int | None
    is_snapshot: bool
    first_update_id: int | None
    last_update_id: int | None
    prev_update_id: int | None


def _opt(value: int) -> int | None:
    return None if value == _NULL else value


class BookBuilder:
    """Applies book tables to an :class:`OrderBook` in sequence (module docstring).

    Attributes:
        book: the book (levels as raw integers at the given precisions).
        gaps: every gap met, in order.
        synced: a snapshot is applied and no gap has been met since.
        in_event: :meth:`feed` stopped inside an event (the book is between two venue states).
        events_applied, events_skipped: update and snapshot events applied; updates skipped (before
            the first snapshot, older than the snapshot, or dropped while resynchronising).
    """

    def __init__(self, price_precision: int, size_precision: int, policy: GapPolicy = GapPolicy.RAISE) -> None:
        self.book = OrderBook(price_precision, size_precision)
        self.policy = GapPolicy(policy)
        self.gaps: list[BookGap] = []
        self.synced = False
        self.in_event = False
        self.events_applied = 0
        self.events_skipped = 0
        self._has_book = False
        self._held_id: int | None = None
        self._awaiting_first = False

    def feed(self, table: pa.Table, stop: int | None = None) -> Iterator[BookEvent]:
        """Apply the rows ``[0, stop)`` of ``table`` (all when ``None``), yielding each event once applied.

        Events skipped or dropped are not yielded. When ``stop`` falls inside an event, that event's first
        rows are applied, ``in_event`` is set and the event is not yielded. Rows after the table's last
        complete event are ignored.

        Raises:
            BookGapError: a gap under :attr:`GapPolicy.RAISE` (the book stays as before that update).
            InvalidInputError: a price or size too large for a 64-bit fixed-point integer.
        """
        starts, ends = event_bounds(table)
        if len(starts) == 0:
            return
        columns = _Columns(table)
        limit = table.num_rows if stop is None else min(stop, table.num_rows)
        self.in_event = False
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            if start >= limit:
                return
            event = columns.event(start, end)
            if not self._admit(event):
                continue
            last = min(end, limit)
            for i in range(start, last):
                self.book.set_level(BID if columns.is_bid[i] else ASK, columns.price[i], columns.size[i])
            if last < end:
                self.in_event = True
                return
            self.events_applied += 1
            yield event

    def _admit(self, event: BookEvent) -> bool:
        """Decide whether ``event`` is applied (clearing the book for a snapshot); records gaps."""
        if event.is_snapshot:
            self.book.clear()
            self._has_book = True
            self.synced = True
            self._held_id = event.last_update_id
            self._awaiting_first = event.last_update_id is not None
            return True
        if not self._has_book:
            self.events_skipped += 1
            return False
        held, first, last, prev = self._held_id, event.first_update_id, event.last_update_id, event.prev_update_id
        if held is None or first is None or last is None:
            return True  # no sequence numbers: nothing to check
        if self._awaiting_first:
            if last < held:
                self.events_skipped += 1  # older than the snapshot (Binance step 4)
                return False
            ok = first <= held if prev is not None else first <= held + 1
            reason = "the first update after the snapshot does not cover the snapshot's last_update_id"
        elif prev is not None:
            ok = prev == held
            reason = f"pu {prev} is not the previous update's last_update_id {held}"
        else:
            ok = first == held + 1
            reason = f"first_update_id {first} does not follow the previous update's last_update_id {held}"
        self._awaiting_first = False
        if not ok and not self._on_gap(BookGap(event.ts_event, event.start, held, first, last, prev, reason)):
            return False
        self._held_id = last
        return True

    def _on_gap(self, gap: BookGap) -> bool:
        """Record ``gap``; True when the update is applied all the same (:attr:`GapPolicy.CONTINUE`)."""
        self.gaps.append(gap)
        self.synced = False
        if self.policy is GapPolicy.RAISE:
            raise BookGapError(gap)
        if self.policy is GapPolicy.RESYNC:
            self._has_book = False
            self.events_skipped += 1
            return False
        return True


class _Columns:
    """The columns of a book table the builder reads, as Python lists (one conversion per table)."""

    def __init__(self, table: pa.Table) -> None:
        try:
            self.price: list[int] = raw_from_decimal(table.column("price")).tolist()
            self.size: list[int] = raw_from_decimal(table.column("size")).tolist()
        except Int64OverflowError as exc:
            raise InvalidInputError(f"book row {exc.row + 1}: a price or size does not fit a 64-bit integer") from None
        self.is_bid: list[bool] = np.asarray(pc.equal(single_array(table.column("side")), BID), dtype=bool).tolist()
        self.ts: list[int] = ts_ns(table).tolist()
        self.recv: list[int] = int_column(table, "ts_recv").tolist()
        self.snapshot: list[int] = int_column(table, "is_snapshot").tolist()
        self.first: list[int] = int_column(table, "first_update_id").tolist()
        self.last: list[int] = int_column(table, "last_update_id").tolist()
        self.prev: list[int] = int_column(table, "prev_update_id").tolist()

    def event(self, start: int, end: int) -> BookEvent:
        return BookEvent(
            start,
            end,
            self.ts[start],
            _opt(self.recv[start]),
            self.snapshot[start] == 1,
            _opt(self.first[start]),
            _opt(self.last[start]),
            _opt(self.prev[start]),
        )
