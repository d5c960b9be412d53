"""Value at risk (``risk/var.py``): the historical estimate is numpy's ``inverted_cdf`` quantile of the returns and
the parametric one scipy's normal quantile, on a real series (Oracle's daily closes of 2014, ``../shared/data``), and
both behave as documented on small hand-made series."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from smart_trader.core.errors import InvalidInputError
from smart_trader.risk.var import (
    VAR_CONTEXT,
    DailyCloses,
    empirical_quantile,
    historical_var,
    mean_and_stdev,
    parametric_var,
    simple_returns,
    var_of_values,
    z_score,
)

D = Decimal
ORCL_DAILY = "bars/ORCL_1995-2014_1d.yahoo.csv"


@pytest.fixture(scope="module")
def orcl_2014(shared_data: Path) -> list[Decimal]:
    """Oracle's 252 daily closes of 2014 (USD, Yahoo Finance export; no split that year), read in place."""
    with (shared_data / ORCL_DAILY).open(newline="") as f:
        closes = [D(row["Close"]) for row in csv.DictReader(f) if row["Date"].startswith("2014-")]
    assert len(closes) == 252
    return closes


def test_historical_var_is_numpys_inverted_cdf_quantile_of_real_daily_returns(orcl_2014: list[Decimal]) -> None:
    returns = simple_returns(orcl_2014)
    value = orcl_2014[-1] * 1000  # 1,000 shares at the last close

    var = historical_var(returns, value)

    floats = np.array([float(c) for c in orcl_2014])
    expected = -np.quantile(floats[1:] / floats[:-1] - 1, 0.05, method="inverted_cdf") * float(value)
    assert float(var) == pytest.approx(expected, rel=1e-12)
    assert var > 0  # 2014 had down days: a loss
    # the 5 % quantile of 251 returns is the ceil(12.55) = 13th worst
    assert var == VAR_CONTEXT.multiply(-sorted(returns)[12], value)


def test_parametric_var_is_scipys_normal_quantile_of_the_fitted_returns(orcl_2014: list[Decimal]) -> None:
    norm = pytest.importorskip("scipy.stats").norm
    returns = simple_returns(orcl_2014)
    value = D(1_000_000)

    var = parametric_var(returns, value)

    floats = np.array([float(r) for r in returns])
    expected = -norm.ppf(0.05, loc=floats.mean(), scale=floats.std(ddof=1)) * float(value)
    assert float(var) == pytest.approx(expected, rel=1e-9)


def test_the_z_score_of_95_percent_is_1_6449() -> None:
    assert z_score(D("0.95")).quantize(D("0.0001")) == D("1.6449")
    assert float(z_score(D("0.99"))) == pytest.approx(2.3263478740408408, rel=1e-15)


def test_var_of_values_scales_to_the_last_value() -> None:
    equity = [D(100), D(110), D(99), D(99), D("108.9")]  # returns +10 %, −10 %, 0, +10 %

    est = var_of_values(equity)

    assert est.observations == 4 and est.value == D("108.9")
    assert est.historical == D("0.1") * D("108.9")  # the worst of 4 returns (ceil(0.2) = 1st)
    mean, stdev = mean_and_stdev(simple_returns(equity))
    assert mean == D("0.025")
    assert float(stdev) == pytest.approx((0.0275 / 3) ** 0.5, rel=1e-15)  # deviations .075, −.125, −.025, .075
    assert float(est.parametric) == pytest.approx((1.6448536269514722 * float(stdev) - 0.025) * 108.9, rel=1e-12)


def test_var_is_negative_when_even_the_worst_return_was_a_gain() -> None:
    assert historical_var([D("0.01"), D("0.02")], D(100)) == D(-1)


def test_empirical_quantile_picks_the_ceil_n_p_th_smallest_value() -> None:
    values = [D(v) for v in (5, 1, 4, 2, 3)]
    assert [empirical_quantile(values, D(p)) for p in ("0", "0.2", "0.21", "0.5", "1")] == [1, 1, 2, 3, 5]
    for p in (0.05, 0.33, 0.5, 0.95):
        assert float(empirical_quantile(values, D(str(p)))) == np.quantile([5, 1, 4, 2, 3], p, method="inverted_cdf")


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: simple_returns([D(100), D(0), D(5)]), "positive"),
        (lambda: var_of_values([D(1), D(2)]), "at least 3 values"),
        (lambda: mean_and_stdev([D(1)]), "at least 2 returns"),
        (lambda: historical_var([], D(1)), "no values"),
        (lambda: historical_var([D(1)], D(1), D(1)), "confidence"),
        (lambda: empirical_quantile([D(1)], D("1.5")), "0 <= p <= 1"),
    ],
)
def test_what_cannot_be_estimated_raises_saying_why(call: object, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        call()  # type: ignore[operator]


# -- daily closes kept in memory (the runtime's VaR gauge) -------------------------------------------------------------
def test_daily_closes_take_a_seeded_day_in_progress_and_close_days_as_the_clock_moves() -> None:
    seeded = [(10 + d, D(100) + d % 3) for d in range(22)]  # days 10..31; day 31 is today: still in progress
    closes = DailyCloses(seeded, today=31, window=250, min_returns=20)
    assert list(closes.closes) == [e for _d, e in seeded[:-1]] and (closes.day, closes.last) == seeded[-1]
    assert closes.var_95 == historical_var(simple_returns(list(closes.closes)), D(1))  # 20 returns

    closes.observe(31, D(90))
    closes.observe(31, D(95))  # the last equity of the day is its close
    closes.observe(30, D(1))  # an earlier day is ignored
    closes.observe(32, D(96))
    assert list(closes.closes)[-1] == D(95) and (closes.day, closes.last) == (32, D(96))
    assert closes.var_95 == historical_var(simple_returns([e for _d, e in seeded[:-1]] + [D(95)]), D(1))


def test_daily_closes_give_no_var_with_too_few_returns_or_a_close_at_zero() -> None:
    assert DailyCloses([(d, D(100 + d)) for d in range(20)], today=99).var_95 is None  # 19 returns
    window = DailyCloses([(d, D(100 + d)) for d in range(5)], today=99, window=3, min_returns=2)
    assert len(window.closes) == 4 and window.var_95 is not None  # the window's last 4 closes, 3 returns
    assert DailyCloses([(d, D(d % 2)) for d in range(30)], today=99).var_95 is None
