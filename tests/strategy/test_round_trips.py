"""Round trips rebuilt from fills, hand-computed, and their agreement with the account's realized P&L.

The random-fill agreement (100,000 fills) lives in ``tests/portfolio/test_accounting_properties.py``.
"""

from __future__ import annotations

from decimal import Decimal

from smart_trader.portfolio.exact import EXACT
from smart_trader.strategy.round_trips import build_round_trips
from tests.portfolio.kit import BTC, BUY, ES, SELL, D, FillMaker, make_account, make_instrument

ACME = make_instrument("ACME", "NASDAQ", asset_class="equity", base="ACME", tick="0.01", lot="1")
MULTIPLIERS = {i.id: i.multiplier for i in (BTC, ES, ACME)}


def exact_sum(values: list[Decimal]) -> Decimal:
    total = Decimal(0)
    for v in values:
        total = EXACT.add(total, v)
    return total


def test_a_long_round_trip_with_an_add_averages_the_entry_and_pays_every_commission() -> None:
    fill = FillMaker()
    fills = [
        fill(ACME, BUY, "10", "100", "1"),
        fill(ACME, BUY, "5", "106", "0.5"),
        fill(ACME, SELL, "15", "110", "1.5"),
    ]

    [rt] = build_round_trips(fills, MULTIPLIERS)

    assert rt.instrument_id == ACME.id
    assert rt.side == "long"
    assert rt.quantity == D("15")
    assert rt.entry_price == D("102")
    assert rt.exit_price == D("110")
    assert rt.commission == D("3")
    assert rt.pnl == D("117")  # (110 − 102) × 15 − 3
    assert (rt.entry_ts, rt.exit_ts) == (fills[0].ts_event, fills[2].ts_event)


def test_a_scaled_exit_averages_the_exit_price() -> None:
    fill = FillMaker()
    fills = [fill(ACME, BUY, "10", "100"), fill(ACME, SELL, "4", "105"), fill(ACME, SELL, "6", "103")]

    [rt] = build_round_trips(fills, MULTIPLIERS)

    assert rt.exit_price == D("103.8")  # (4 × 105 + 6 × 103) / 10
    assert rt.pnl == D("38")
    assert rt.exit_ts == fills[2].ts_event


def test_a_short_round_trip_with_a_multiplier() -> None:
    fill = FillMaker()
    fills = [fill(ES, SELL, "2", "4500.25", "2.10"), fill(ES, BUY, "2", "4490.75", "2.10")]

    [rt] = build_round_trips(fills, MULTIPLIERS)

    assert rt.side == "short"
    assert rt.quantity == D("2")
    assert rt.pnl == D("945.80")  # (4500.25 − 4490.75) × 2 × 50 − 4.20
    assert rt.commission == D("4.20")


def test_a_flip_closes_one_round_trip_and_opens_the_next_splitting_its_commission_pro_rata() -> None:
    fill = FillMaker()
    fills = [
        fill(ACME, BUY, "2", "100", "1"),
        fill(ACME, SELL, "6", "110", "3"),  # closes 2 (commission 1), opens short 4 (commission 2)
        fill(ACME, BUY, "4", "105", "2"),
    ]

    first, second = build_round_trips(fills, MULTIPLIERS)

    assert (first.side, first.quantity, first.commission, first.pnl) == ("long", D("2"), D("2"), D("18"))
    assert (first.entry_ts, first.exit_ts) == (fills[0].ts_event, fills[1].ts_event)
    assert (second.side, second.quantity, second.commission, second.pnl) == ("short", D("4"), D("4"), D("16"))
    assert (second.entry_price, second.exit_price) == (D("110"), D("105"))
    assert (second.entry_ts, second.exit_ts) == (fills[1].ts_event, fills[2].ts_event)


def test_open_positions_are_left_out_and_round_trips_come_in_exit_order() -> None:
    fill = FillMaker()
    fills = [
        fill(BTC, BUY, "0.5", "40000"),
        fill(ES, BUY, "1", "5000"),
        fill(ACME, BUY, "3", "10"),  # never closed
        fill(ES, SELL, "1", "5001"),
        fill(BTC, SELL, "0.5", "41000"),
    ]

    trips = build_round_trips(fills, MULTIPLIERS)

    assert [(rt.instrument_id, rt.pnl) for rt in trips] == [(ES.id, D("50")), (BTC.id, D("500"))]


def test_an_instrument_missing_from_the_multipliers_counts_with_multiplier_one() -> None:
    fill = FillMaker()

    [rt] = build_round_trips([fill(ES, BUY, "1", "5000"), fill(ES, SELL, "1", "5001")], {})

    assert rt.pnl == D("1")


def test_round_trips_sum_to_the_accounts_realized_pnl_minus_commissions() -> None:
    fill = FillMaker()
    fills = [
        fill(ACME, BUY, "10", "100", "1.00"),
        fill(ACME, BUY, "5", "106", "0.53"),
        fill(ACME, SELL, "6", "110", "0.66"),
        fill(ACME, SELL, "12", "95", "1.14"),
        fill(ES, SELL, "2", "4500.25", "2.10"),
        fill(ACME, BUY, "3", "90", "0.27"),
        fill(ES, BUY, "4", "4490.75", "4.20"),
        fill(ES, SELL, "2", "4491.00", "2.10"),
    ]
    account = make_account("100000")
    for f in fills:
        account.apply_fill(f, ACME if f.instrument_id == ACME.id else ES)

    trips = build_round_trips(fills, MULTIPLIERS)

    assert [(rt.instrument_id, rt.side) for rt in trips] == [
        (ACME.id, "long"),
        (ACME.id, "short"),
        (ES.id, "short"),
        (ES.id, "long"),
    ]
    assert account.realized_pnl == D("975")  # ACME 48 − 63 + 15; ES 9.50 × 2 × 50 + 0.25 × 2 × 50
    assert exact_sum([rt.pnl for rt in trips]) == account.realized_pnl - account.commissions
    assert exact_sum([rt.commission for rt in trips]) == account.commissions == D("12.00")


def test_the_commissions_of_round_trips_add_up_to_the_fills_commissions() -> None:
    fill = FillMaker()
    fills = [
        fill(ACME, BUY, "1", "10", "5.12"),
        fill(ACME, SELL, "3", "10", "1"),  # a third of the commission closes the long, two thirds open the short
        fill(ACME, BUY, "2", "10", "0"),
    ]

    trips = build_round_trips(fills, MULTIPLIERS)

    assert len(trips) == 2
    assert exact_sum([rt.commission for rt in trips]) == D("6.12")
    assert exact_sum([rt.pnl for rt in trips]) == D("-6.12")


def test_a_round_trip_of_large_precise_notionals_matches_the_accounts_realized_pnl() -> None:
    wide = make_instrument("XYZ/USD", "TEST", base="XYZ", tick="0.00000001", lot="0.00000001")
    fill = FillMaker()
    fills = [
        fill(wide, BUY, "12345678.12345678", "12345678.12345678"),
        fill(wide, SELL, "12345678.12345678", "12345678.12345679"),
    ]
    account = make_account("1")
    for f in fills:
        account.apply_fill(f, wide)

    [rt] = build_round_trips(fills, {wide.id: wide.multiplier})

    assert account.realized_pnl == D("0.1234567812345678")
    assert rt.pnl == account.realized_pnl
