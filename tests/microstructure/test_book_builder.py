"""Rebuilding the real ../shared/data/orderbook book gives the hand-checked levels; sequence gaps are reported,
never applied silently.

About the real files: the snapshot (100 bid levels, ``lastUpdateId`` 2098021528332, 2022-11-01 23:49:39.146
UTC) and the update (one event of 100 rows, ``U`` 2098041693435 .. ``u`` 2098041696700, ``pu`` 2098041693400,
23:59:59.939) are 10 minutes and ~20 million update ids apart: under Binance's rule the update does not
straddle the snapshot, so the recording itself has a gap. The strict builder reports it; the hand-checked
book after the update is built with ``GapPolicy.CONTINUE``, which applies it and records the gap.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from smart_trader.microstructure import ASK, BID, BookBuilder, BookGapError, BookLevel, GapPolicy, OrderBook
from tests.microstructure.kit import ToyEvent, real_book, toy_book

D = Decimal
SNAPSHOT_ROWS = 100


def levels(pairs: list[tuple[str, str]]) -> list[BookLevel]:
    return [BookLevel(D(p), D(s)) for p, s in pairs]


# Expected books, derived by hand from the CSV rows (and cross-checked with an awk replay of the rows:
# key side+price, qty 0 deletes, sort bids descending / asks ascending), independently of this code.
# Point 1 — after the 100 snapshot rows: bids only, rows 1-5 of the snapshot file are its 5 best levels
# (it lists prices 20377.00 down to 20365.90, 100 distinct prices, no qty 0).
POINT1_BIDS = [("20377.0", "1.770"), ("20376.9", "0.001"), ("20376.8", "0.009"), ("20376.7", "1.216"),
               ("20376.6", "0.011")]  # fmt: skip
# Point 2 — inside the update event, after its row 60: rows 1-37 set asks (29 non-zero, 8 qty 0 on levels
# the book does not hold; the 5 lowest non-zero are below), rows 38-60 set bids: 20 new levels above and
# below the snapshot's (20472.10 × 22.276 is the new best) and 3 qty-0 rows (20472.20, 20472.90, 20486.60)
# removing levels the book never had. 120 bids, 29 asks; the ask at 20472.20 is only set at row 62.
POINT2_BIDS = [("20472.1", "22.276"), ("20469.2", "2.864"), ("20468.7", "0.853"), ("20467.8", "1.223"),
               ("20467.5", "1.553")]  # fmt: skip
POINT2_ASKS = [("20473.3", "0.001"), ("20473.6", "0.126"), ("20473.8", "0.509"), ("20474.3", "0.127"),
               ("20474.8", "0.123")]  # fmt: skip
# Point 3 — after the whole event (row 100): rows 61-100 add the ask 20472.20 × 4.211 (row 62); 20457.70
# and 20472.30 are qty 0 (absent anyway); rows 64-100 repeat rows 1-37 with the same values. 120 bids, 30 asks.
POINT3_ASKS = [("20472.2", "4.211"), *POINT2_ASKS[:4]]


def test_the_real_snapshot_plus_update_gives_the_hand_checked_book_at_three_points(shared_data: Path) -> None:
    table = real_book(shared_data)
    builder = BookBuilder(1, 3, GapPolicy.CONTINUE)

    list(builder.feed(table, stop=SNAPSHOT_ROWS))
    point1 = (builder.book.top(BID, 5), builder.book.top(ASK, 5), builder.book.count(BID))
    list(builder.feed(table.slice(SNAPSHOT_ROWS), stop=60))
    point2 = (builder.book.top(BID, 5), builder.book.top(ASK, 5), builder.book.count(BID), builder.book.count(ASK))
    in_event = builder.in_event

    full = BookBuilder(1, 3, GapPolicy.CONTINUE)
    events = list(full.feed(table))

    assert point1 == (levels(POINT1_BIDS), [], 100)
    assert point2 == (levels(POINT2_BIDS), levels(POINT2_ASKS), 120, 29)
    assert in_event
    assert [len(range(e.start, e.end)) for e in events] == [100, 100]
    assert full.book.top(BID, 5) == levels(POINT2_BIDS)
    assert full.book.top(ASK, 5) == levels(POINT3_ASKS)
    assert (full.book.count(BID), full.book.count(ASK)) == (120, 30)
    assert full.book.top(BID)[-1] == BookLevel(D("2047.3"), D("0.009"))  # update row 38, far below the touch
    assert full.book.size_at(BID, 203_770) == 1770  # 20377.0 × 1.770 from the snapshot, untouched
    assert not full.book.is_crossed()


def test_the_real_update_does_not_straddle_the_snapshot_and_the_gap_is_reported(shared_data: Path) -> None:
    builder = BookBuilder(1, 3, GapPolicy.RAISE)

    with pytest.raises(BookGapError) as err:
        list(builder.feed(real_book(shared_data)))

    gap = err.value.gap
    assert (gap.held_update_id, gap.first_update_id, gap.last_update_id, gap.prev_update_id) == (
        2098021528332,
        2098041693435,
        2098041696700,
        2098041693400,
    )
    assert gap.ts_event == 1667347199939 * 1_000_000 and gap.row == SNAPSHOT_ROWS
    assert "2022-11-01T23:59:59.939" in str(err.value) and "does not cover" in str(err.value)
    assert builder.book.count(ASK) == 0 and builder.book.top(BID, 1) == levels(POINT1_BIDS[:1])  # not applied


def test_resync_records_the_gap_and_drops_updates_until_the_next_snapshot(shared_data: Path) -> None:
    table = real_book(shared_data)
    builder = BookBuilder(1, 3, GapPolicy.RESYNC)

    events = list(builder.feed(table))

    assert [e.is_snapshot for e in events] == [True]
    assert len(builder.gaps) == 1 and not builder.synced
    assert builder.book.count(ASK) == 0 and builder.events_skipped == 1

    again = list(builder.feed(table.slice(0, SNAPSHOT_ROWS)))  # the next snapshot resynchronises

    assert [e.is_snapshot for e in again] == [True] and builder.synced


def test_continue_applies_the_update_but_flags_the_book_out_of_sync(shared_data: Path) -> None:
    builder = BookBuilder(1, 3, GapPolicy.CONTINUE)

    events = list(builder.feed(real_book(shared_data)))

    assert len(events) == 2 and len(builder.gaps) == 1
    assert not builder.synced


def _chain(drop: int | None = None) -> list[ToyEvent]:
    """A snapshot with lastUpdateId 100, then updates 95..105 (straddles), 106..110 (pu 105), 111..120 (pu 110)."""
    events = [
        ToyEvent(1, [("bid", 99, 5), ("ask", 101, 5)], snapshot=True, first=100, last=100),
        ToyEvent(2, [("bid", 99, 7)], first=95, last=105, prev=94),
        ToyEvent(3, [("ask", 101, 2)], first=106, last=110, prev=105),
        ToyEvent(4, [("bid", 100, 1)], first=111, last=120, prev=110),
    ]
    return [e for i, e in enumerate(events) if i != drop]


def test_an_update_chain_linked_by_pu_applies_without_gaps() -> None:
    builder = BookBuilder(0, 0, GapPolicy.RAISE)

    events = list(builder.feed(toy_book(_chain())))

    assert len(events) == 4 and builder.gaps == [] and builder.synced
    assert builder.book.levels(BID) == [(100, 1), (99, 7)] and builder.book.levels(ASK) == [(101, 2)]


def test_a_missing_update_breaks_the_pu_chain_and_is_reported_with_its_ids() -> None:
    builder = BookBuilder(0, 0, GapPolicy.RAISE)

    with pytest.raises(BookGapError, match=r"pu 110 is not the previous update's last_update_id 105") as err:
        list(builder.feed(toy_book(_chain(drop=2))))

    assert (err.value.gap.held_update_id, err.value.gap.first_update_id, err.value.gap.row) == (105, 111, 3)
    assert builder.book.levels(BID) == [(99, 7)]  # the update after the gap was not applied


def test_updates_older_than_the_snapshot_are_dropped_and_updates_before_any_snapshot_skipped() -> None:
    stale = ToyEvent(2, [("bid", 99, 1)], first=80, last=90, prev=79)
    early = ToyEvent(0, [("bid", 98, 3)], first=1, last=2, prev=0)
    chain = _chain()
    builder = BookBuilder(0, 0, GapPolicy.RAISE)

    list(builder.feed(toy_book([early, chain[0], stale, *chain[1:]])))

    assert builder.events_skipped == 2 and builder.gaps == []
    assert builder.book.size_at(BID, 98) == 0


def test_spot_updates_without_pu_must_follow_on_by_one() -> None:
    snapshot = ToyEvent(1, [("bid", 99, 5)], snapshot=True, first=100, last=100)
    first = ToyEvent(2, [("bid", 99, 6)], first=101, last=103)
    skipped = ToyEvent(3, [("bid", 99, 7)], first=105, last=107)
    builder = BookBuilder(0, 0, GapPolicy.RESYNC)

    list(builder.feed(toy_book([snapshot, first, skipped])))

    assert len(builder.gaps) == 1 and "does not follow" in builder.gaps[0].reason
    assert builder.book.size_at(BID, 99) == 6


def test_sources_without_update_ids_are_applied_in_order_and_a_new_snapshot_replaces_the_book() -> None:
    events = [
        ToyEvent(1, [("bid", 99, 5), ("ask", 102, 1)], snapshot=True),
        ToyEvent(2, [("ask", 101, 4)]),
        ToyEvent(3, [("bid", 90, 1)], snapshot=True),
    ]
    builder = BookBuilder(0, 0, GapPolicy.RAISE)

    applied = list(builder.feed(toy_book(events)))

    assert len(applied) == 3 and builder.gaps == []
    assert builder.book.levels(BID) == [(90, 1)] and builder.book.levels(ASK) == []


def test_order_book_levels_are_exact_sorted_and_zero_removes() -> None:
    book = OrderBook(1, 3)
    book.set_level(BID, 203_770, 1_770)
    book.set_level(BID, 203_769, 1)
    book.set_level(ASK, 204_722, 4_211)
    book.set_level(BID, 204_722, 0)  # removing an absent level is allowed (Binance step 9)
    book.set_level(BID, 203_769, 0)

    assert book.top(BID) == [BookLevel(D("20377.0"), D("1.770"))]
    assert book.best(ASK) == (204_722, 4_211) and book.depth(BID, 5) == 1_770
    with pytest.raises(ValueError, match="negative"):
        book.set_level(ASK, 1, -1)
