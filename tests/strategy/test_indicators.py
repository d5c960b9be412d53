"""Indicators give the same numbers in a backtest (whole series) and live (one value at a time)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from smart_trader.data.readers import read_file
from smart_trader.strategy.indicators import RSI, SMA, CrossOver, Indicator


@pytest.fixture(scope="module")
def gbpusd_closes(shared_data: Path) -> np.ndarray:
    r = read_file(shared_data / "bars" / "GBPUSD_2012_1m_bid.fxcm.csv")
    return np.asarray(r.table.column("close").to_numpy().astype(float))[:5000]


@pytest.mark.parametrize(
    "make", [lambda: SMA(10), lambda: SMA(30), lambda: RSI(14), lambda: CrossOver(SMA(10), SMA(30))]
)
@pytest.mark.parametrize("precision", [None, 5])
def test_stream_updates_equal_batch_values_to_the_bit(
    make: type[Indicator], precision: int | None, gbpusd_closes: np.ndarray
) -> None:
    batch = make().compute(gbpusd_closes, precision)
    live = make()
    streamed = np.array([live.update(float(v), precision) for v in gbpusd_closes])
    assert np.array_equal(batch, streamed, equal_nan=True)


def test_exact_sma_ties_exactly_equal_averages_that_float_sums_split() -> None:
    closes = np.array([0.2, 0.1, 0.3])  # mean(0.2, 0.1, 0.3) == mean(0.1, 0.3) == 0.2 exactly
    assert SMA(3).compute(closes)[2] != SMA(2).compute(closes)[2]  # float sums split the tie
    assert SMA(3).compute(closes, 1)[2] == SMA(2).compute(closes, 1)[2] == 0.2
    # so a "cross" out of that tie is not a strict cross: previous bar equal, not below
    closes = np.array([0.2, 0.1, 0.3, 0.5])
    assert CrossOver(SMA(2), SMA(3)).compute(closes, 1).tolist() == [0.0, 0.0, 0.0, 0.0]


def test_sma_is_the_mean_of_its_window_and_nan_during_warm_up() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    out = SMA(3).compute(values)
    assert math.isnan(out[0]) and math.isnan(out[1])
    assert out[2:].tolist() == [2.0, 3.0, 4.0]


def test_rsi_of_a_rising_series_is_100_and_of_a_falling_one_is_0() -> None:
    assert RSI(3).compute(np.arange(1.0, 10.0))[-1] == 100.0
    assert RSI(3).compute(np.arange(10.0, 1.0, -1.0))[-1] == 0.0


def test_rsi_matches_wilders_recurrence_computed_by_hand() -> None:
    closes = np.array([10.0, 11.0, 10.5, 11.5, 12.0, 11.0])
    # changes: +1, -0.5, +1, +0.5, -1 ; period 3 seeds with the mean of the first 3
    ag, al = (1 + 0 + 1) / 3, (0 + 0.5 + 0) / 3
    expected3 = 100 - 100 / (1 + ag / al)
    ag, al = (ag * 2 + 0.5) / 3, (al * 2 + 0) / 3
    expected4 = 100 - 100 / (1 + ag / al)
    ag, al = (ag * 2 + 0) / 3, (al * 2 + 1) / 3
    expected5 = 100 - 100 / (1 + ag / al)
    out = RSI(3).compute(closes)
    assert out[3] == pytest.approx(expected3, abs=1e-12)
    assert out[4] == pytest.approx(expected4, abs=1e-12)
    assert out[5] == pytest.approx(expected5, abs=1e-12)


def test_crossover_marks_strict_crosses_only() -> None:
    fast = np.array([1.0, 3.0, 3.0, 1.0, 2.0, 2.0])
    slow = np.array([2.0, 2.0, 3.0, 2.0, 2.0, 1.0])
    sig = CrossOver._signal(fast, slow)
    # 1->3 vs 2->2 crosses up; touching at 3==3 then going below is no cross (previous not strictly above)
    assert sig.tolist() == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
