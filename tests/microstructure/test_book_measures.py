"""Spread, mid, microprice, depth imbalance and order-flow imbalance per book event, checked by hand."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pytest

from smart_trader.core.errors import InvalidInputError
from smart_trader.microstructure import GapPolicy, book_measures
from smart_trader.microstructure.measures import order_flow_imbalance
from tests.microstructure.kit import ToyEvent, real_book, toy_book

D = Decimal
F = Fraction


def test_measures_of_the_real_book_after_snapshot_and_update(shared_data: Path) -> None:
    m = book_measures(real_book(shared_data), levels=5, policy=GapPolicy.CONTINUE)
    rows = m.table.to_pylist()

    after_snapshot, after_update = rows
    assert (after_snapshot["best_bid"], after_snapshot["best_bid_size"]) == (D("20377.0"), D("1.770"))
    assert after_snapshot["best_ask"] is None and after_snapshot["spread"] is None and after_snapshot["mid"] is None
    assert after_snapshot["microprice"] is None and after_snapshot["ofi"] is None
    assert after_snapshot["imbalance_5"] == 1.0  # bids only
    assert after_snapshot["synced"] is True
    # After the update (book hand-checked in test_book_builder): bid 20472.1 × 22.276, ask 20472.2 × 4.211;
    # top-5 sizes: bids 22.276+2.864+0.853+1.223+1.553 = 28.769, asks 4.211+0.001+0.126+0.509+0.127 = 4.974.
    assert (after_update["best_bid"], after_update["best_ask"]) == (D("20472.1"), D("20472.2"))
    assert (after_update["spread"], after_update["mid"]) == (D("0.1"), D("20472.15"))
    micro = (F("20472.1") * F("4.211") + F("20472.2") * F("22.276")) / (F("22.276") + F("4.211"))
    assert after_update["microprice"] == float(micro) == pytest.approx(20472.1841016)
    assert after_update["imbalance_5"] == float((F("28.769") - F("4.974")) / (F("28.769") + F("4.974")))
    assert after_update["ofi"] is None  # the snapshot had no ask: e_n needs both sides before and after
    assert after_update["synced"] is False  # applied across the recording's gap (GapPolicy.CONTINUE)
    assert m.table.schema.field("mid").type == pa.decimal128(38, 2)
    assert len(m.gaps) == 1 and (m.events_applied, m.events_skipped) == (2, 0)


def test_the_default_policy_reports_nothing_past_a_gap(shared_data: Path) -> None:
    m = book_measures(real_book(shared_data))

    assert m.table.num_rows == 1 and len(m.gaps) == 1 and m.events_skipped == 1


def test_imbalance_at_one_level_is_two_i_minus_one(shared_data: Path) -> None:
    row = book_measures(real_book(shared_data), levels=1, policy=GapPolicy.CONTINUE).table.to_pylist()[1]

    i = F("22.276") / (F("22.276") + F("4.211"))
    assert row["imbalance_1"] == float(2 * i - 1)


def test_order_flow_imbalance_follows_cont_kukanov_stoikov_event_by_event() -> None:
    events = [
        ToyEvent(1, [("bid", 99, 5), ("ask", 102, 5)], snapshot=True),
        ToyEvent(2, [("bid", 99, 7)]),  # bid size up at the same price: +2
        ToyEvent(3, [("ask", 102, 2)]),  # ask size down at the same price: -(2 - 5) = +3
        ToyEvent(4, [("bid", 100, 1)]),  # a better bid: +1 (its size)
        ToyEvent(5, [("ask", 101, 4)]),  # a better ask: -4
        ToyEvent(6, [("bid", 100, 0)]),  # the best bid leaves, best back to 99: -1 (the size that left)
    ]

    table = book_measures(toy_book(events)).table

    assert table.column("ofi").to_pylist() == [None, D(2), D(3), D(1), D(-4), D(-1)]
    assert order_flow_imbalance((99, 5, 102, 5), (98, 3, 103, 1)) == -5 + 5  # both sides receded


def test_levels_must_be_at_least_one(shared_data: Path) -> None:
    with pytest.raises(InvalidInputError, match="levels"):
        book_measures(real_book(shared_data), levels=0)
