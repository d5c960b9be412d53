"""Pure matching rules on raw ints (price precision 2: 10_000 is 100.00).

Bars are walked open → low → high → close when close >= open, and open → high → low → close otherwise.
"""

from __future__ import annotations

import pytest

from smart_trader.execution.matching import (
    bar_path,
    match_limit_bar,
    match_limit_price,
    match_stop_bar,
    match_stop_limit_bar,
    stop_reached,
)

BUY, SELL = True, False

# o, h, l, c
UP_BAR = bar_path(10_000, 10_300, 9_800, 10_100)  # 100 → 98 → 103 → 101
DOWN_BAR = bar_path(10_000, 10_300, 9_800, 9_900)  # 100 → 103 → 98 → 99


def test_up_bar_visits_the_low_before_the_high() -> None:
    assert UP_BAR == (10_000, 9_800, 10_300, 10_100)


def test_down_bar_visits_the_high_before_the_low() -> None:
    assert DOWN_BAR == (10_000, 10_300, 9_800, 9_900)


def test_flat_bar_is_walked_as_an_up_bar() -> None:
    assert bar_path(10_000, 10_100, 9_900, 10_000) == (10_000, 9_900, 10_100, 10_000)


# -- limit orders in a bar -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("buy", "limit", "path", "expected"),
    [
        pytest.param(BUY, 9_900, UP_BAR, 9_900, id="buy-low-reaches-limit-fills-at-limit"),
        pytest.param(BUY, 9_800, UP_BAR, 9_800, id="buy-low-touches-limit-exactly"),
        pytest.param(BUY, 9_799, UP_BAR, None, id="buy-limit-under-low-no-fill"),
        pytest.param(BUY, 10_050, DOWN_BAR, 10_000, id="buy-open-under-limit-fills-at-open"),
        pytest.param(BUY, 10_000, DOWN_BAR, 10_000, id="buy-open-at-limit-fills-at-open"),
        pytest.param(SELL, 10_200, UP_BAR, 10_200, id="sell-high-reaches-limit-fills-at-limit"),
        pytest.param(SELL, 10_301, UP_BAR, None, id="sell-limit-over-high-no-fill"),
        pytest.param(SELL, 9_950, UP_BAR, 10_000, id="sell-open-over-limit-fills-at-open"),
    ],
)
def test_limit_in_a_bar(buy: bool, limit: int, path: tuple[int, int, int, int], expected: int | None) -> None:
    assert match_limit_bar(buy, limit, path) == expected


def test_limit_buy_on_a_gap_down_fills_at_the_open_not_at_the_limit() -> None:
    gap_down = bar_path(9_500, 9_600, 9_400, 9_550)

    assert match_limit_bar(BUY, 10_000, gap_down) == 9_500


def test_limit_never_fills_at_a_price_worse_than_its_limit() -> None:
    for path in (UP_BAR, DOWN_BAR, bar_path(9_500, 9_600, 9_400, 9_550), bar_path(10_500, 10_600, 10_400, 10_450)):
        for limit in range(9_300, 10_700, 50):
            buy_px = match_limit_bar(BUY, limit, path)
            sell_px = match_limit_bar(SELL, limit, path)
            assert buy_px is None or buy_px <= limit
            assert sell_px is None or sell_px >= limit


# -- stop orders in a bar ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("buy", "stop", "path", "expected"),
    [
        pytest.param(BUY, 10_200, UP_BAR, (10_200, 2), id="buy-up-bar-triggers-on-the-low-to-high-leg"),
        pytest.param(BUY, 10_200, DOWN_BAR, (10_200, 1), id="buy-down-bar-triggers-on-the-open-to-high-leg"),
        pytest.param(BUY, 10_300, UP_BAR, (10_300, 2), id="buy-high-touches-stop-exactly"),
        pytest.param(BUY, 10_301, UP_BAR, None, id="buy-stop-over-high-no-trigger"),
        pytest.param(BUY, 9_900, UP_BAR, (10_000, 0), id="buy-open-through-stop-fills-at-open"),
        pytest.param(SELL, 9_900, DOWN_BAR, (9_900, 2), id="sell-down-bar-triggers-on-the-high-to-low-leg"),
        pytest.param(SELL, 9_900, UP_BAR, (9_900, 1), id="sell-up-bar-triggers-on-the-open-to-low-leg"),
        pytest.param(SELL, 9_799, DOWN_BAR, None, id="sell-stop-under-low-no-trigger"),
        pytest.param(SELL, 10_100, DOWN_BAR, (10_000, 0), id="sell-open-through-stop-fills-at-open"),
    ],
)
def test_stop_in_a_bar(buy: bool, stop: int, path: tuple[int, int, int, int], expected: tuple[int, int] | None) -> None:
    assert match_stop_bar(buy, stop, path) == expected


def test_sell_stop_on_a_gap_down_fills_at_the_open_below_the_stop() -> None:
    gap_down = bar_path(9_200, 9_300, 9_100, 9_250)

    assert match_stop_bar(SELL, 9_500, gap_down) == (9_200, 0)


# -- stop-limit orders in a bar ------------------------------------------------------------------------------
def test_stop_limit_buy_triggered_within_its_limit_fills_at_the_stop() -> None:
    assert match_stop_limit_bar(BUY, 10_200, 10_250, UP_BAR, triggered=False) == (True, 10_200)


def test_stop_limit_buy_triggers_then_fills_at_the_limit_when_a_down_bar_falls_back() -> None:
    # 100 → 103 (stop 101 triggers on the way up) → 98 (limit 99.50 reached on the way down) → 99
    assert match_stop_limit_bar(BUY, 10_100, 9_950, DOWN_BAR, triggered=False) == (True, 9_950)


def test_stop_limit_buy_triggers_on_an_up_bar_and_rests_when_the_price_never_comes_back() -> None:
    # 100 → 98 → 103 (stop 101 triggers here) → 101: the low came before the trigger, so no fill
    assert match_stop_limit_bar(BUY, 10_100, 9_950, UP_BAR, triggered=False) == (True, None)


def test_stop_limit_buy_triggered_on_an_up_bar_fills_if_the_close_comes_back_to_the_limit() -> None:
    path = bar_path(10_000, 10_300, 9_800, 10_050)  # 100 → 98 → 103 (trigger at 101) → 100.50

    assert match_stop_limit_bar(BUY, 10_100, 10_050, path, triggered=False) == (True, 10_050)


def test_stop_limit_buy_gapping_over_its_limit_fills_at_the_limit_if_the_bar_comes_back() -> None:
    gap_up = bar_path(10_500, 10_600, 10_150, 10_200)  # 105 → 106 → 101.50 → 102

    assert match_stop_limit_bar(BUY, 10_100, 10_200, gap_up, triggered=False) == (True, 10_200)
    assert match_stop_limit_bar(BUY, 10_100, 10_100, gap_up, triggered=False) == (True, None)


def test_stop_limit_buy_gapping_within_its_limit_fills_at_the_open() -> None:
    gap_up = bar_path(10_150, 10_300, 10_100, 10_250)

    assert match_stop_limit_bar(BUY, 10_100, 10_200, gap_up, triggered=False) == (True, 10_150)


def test_stop_limit_sell_triggers_on_an_up_bar_and_fills_at_the_limit_on_the_way_up() -> None:
    # 100 → 98 (stop 99 triggers on the way down, limit 101 above) → 103 (limit reached) → 101
    assert match_stop_limit_bar(SELL, 9_900, 10_100, UP_BAR, triggered=False) == (True, 10_100)


def test_stop_limit_sell_triggered_at_or_above_its_limit_fills_at_the_stop() -> None:
    assert match_stop_limit_bar(SELL, 9_900, 9_850, DOWN_BAR, triggered=False) == (True, 9_900)


def test_stop_limit_not_reached_is_neither_triggered_nor_filled() -> None:
    assert match_stop_limit_bar(BUY, 10_400, 10_500, UP_BAR, triggered=False) == (False, None)
    assert match_stop_limit_bar(SELL, 9_700, 9_600, UP_BAR, triggered=False) == (False, None)


def test_triggered_stop_limit_works_as_a_plain_limit_including_the_open() -> None:
    # the stop (105) is far above this bar, but the order was triggered earlier: only the limit matters
    assert match_stop_limit_bar(BUY, 10_500, 10_050, DOWN_BAR, triggered=True) == (True, 10_000)
    assert match_stop_limit_bar(BUY, 10_500, 9_700, DOWN_BAR, triggered=True) == (True, None)


# -- single prices (trades, quote sides) ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("buy", "limit", "price", "expected"),
    [
        pytest.param(BUY, 10_000, 9_995, 9_995, id="buy-fills-at-the-better-trade-price"),
        pytest.param(BUY, 10_000, 10_000, 10_000, id="buy-fills-at-its-limit"),
        pytest.param(BUY, 10_000, 10_001, None, id="buy-never-through-its-limit"),
        pytest.param(SELL, 10_000, 10_005, 10_005, id="sell-fills-at-the-better-trade-price"),
        pytest.param(SELL, 10_000, 9_999, None, id="sell-never-through-its-limit"),
    ],
)
def test_limit_against_one_price(buy: bool, limit: int, price: int, expected: int | None) -> None:
    assert match_limit_price(buy, limit, price) == expected


@pytest.mark.parametrize(
    ("buy", "stop", "price", "expected"),
    [
        pytest.param(BUY, 10_000, 10_000, True, id="buy-at-stop"),
        pytest.param(BUY, 10_000, 10_010, True, id="buy-through-stop"),
        pytest.param(BUY, 10_000, 9_999, False, id="buy-under-stop"),
        pytest.param(SELL, 10_000, 10_000, True, id="sell-at-stop"),
        pytest.param(SELL, 10_000, 9_990, True, id="sell-through-stop"),
        pytest.param(SELL, 10_000, 10_001, False, id="sell-over-stop"),
    ],
)
def test_stop_reached_at_or_through_the_stop(buy: bool, stop: int, price: int, expected: bool) -> None:
    assert stop_reached(buy, stop, price) is expected
