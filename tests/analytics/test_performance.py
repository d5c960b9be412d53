"""Account performance statistics (``analytics/performance.py``) equal quantstats and empyrical(-reloaded) on the same
daily series, to 1e-9, on real equity series; and behave as documented on small hand-made ones.

Real series: backtests of the built-in strategies (``sma_cross`` fast 10 / slow 30, ``buy_and_hold``) over the real
recordings in ``../shared/data`` — ORCL and NVDA daily bars (Yahoo), ETH/BTC and LTC/BTC 5-minute bars (Binance) —
turned into daily equity series the way the projection does: the last equity of each UTC day.

Peers and conventions (quantstats 0.0.86, empyrical-reloaded 0.7.1): periods per year 365 (``periods=365``,
``annualization=365``: our series has every calendar day), risk-free rate 0, sample standard deviation (``ddof=1``).

- Sharpe: ``quantstats.stats.sharpe(r, rf=0, periods=365)``, ``empyrical.sharpe_ratio(r, annualization=365)``.
- Sortino: ``quantstats.stats.sortino(r, rf=0, periods=365)``, ``empyrical.sortino_ratio(r, annualization=365)``.
- Max drawdown: ``quantstats.stats.max_drawdown(r)``, ``empyrical.max_drawdown(r)`` (both negative: ours is the
  positive fraction).
- Total return: ``quantstats.stats.comp(r)``, ``empyrical.cum_returns_final(r)``.
- Win rate and profit factor on daily returns: ``quantstats.stats.win_rate(r)``, ``quantstats.stats.profit_factor(r)``
  (empyrical has neither). On trades, ours equal the backtest's own (``analytics/stats.py``) on its round trips.
"""

from __future__ import annotations

import datetime as dt
import warnings
from decimal import Decimal
from pathlib import Path

import empyrical
import numpy as np
import pandas as pd
import pytest

from smart_trader.analytics.performance import (
    DayPoint,
    Period,
    all_windows,
    calendar_equity,
    consistency,
    daily_returns,
    day_pnls,
    max_drawdown,
    performance,
    period_start,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
    win_rate,
    window,
    window_performance,
)
from smart_trader.core.errors import InvalidInputError
from smart_trader.data.catalog import infer_instrument
from smart_trader.data.readers import read_file
from smart_trader.strategy.api import Strategy
from smart_trader.strategy.builtin.buy_and_hold import BuyAndHold
from smart_trader.strategy.builtin.sma_cross import SmaCross
from smart_trader.strategy.engine import BacktestEngine
from smart_trader.strategy.results import BacktestResult

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import quantstats as qs

TOL = 1e-9
D = Decimal


# -- the real series ---------------------------------------------------------------------------------------------------

CASES = {
    "sma_cross ORCL 1995-2014 daily": ("bars/ORCL_1995-2014_1d.yahoo.csv", "ORCL", "100000", SmaCross),
    "buy_and_hold NVDA 1999-2014 daily": ("bars/NVDA_1999-2014_1d.yahoo.csv", "NVDA", "100000", BuyAndHold),
    "sma_cross ETH/BTC 2018-01 5m": ("bars/ETH-BTC_2018-01_5m.binance.feather", "ETH/BTC", "10", SmaCross),
    "buy_and_hold LTC/BTC 2018-01 5m": ("bars/LTC-BTC_2018-01_5m.binance.feather", "LTC/BTC", "10", BuyAndHold),
}


def backtest(shared_data: Path, file: str, symbol: str, cash: str, strategy: type[Strategy]) -> BacktestResult:
    r = read_file(shared_data / file)
    instrument = infer_instrument(symbol, "LOCAL", r.price_precision, r.size_precision)
    engine = BacktestEngine(starting_cash=D(cash))
    engine.add_bars(instrument, r.table, r.timeframe)
    return engine.run(strategy())


def daily_points(result: BacktestResult) -> list[DayPoint]:
    """The last equity of each UTC day of a backtest's equity curve (the float's shortest decimal text)."""
    last: dict[dt.date, float] = {}
    for ts, equity in zip(result.equity_ts.tolist(), result.equity.tolist(), strict=True):
        last[dt.datetime.fromtimestamp(ts / 1e9, dt.UTC).date()] = equity
    return [DayPoint(day, D(repr(e))) for day, e in sorted(last.items())]


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def real(request: pytest.FixtureRequest, shared_data: Path) -> tuple[BacktestResult, list[DayPoint]]:
    result = backtest(shared_data, *CASES[request.param])
    points = daily_points(result)
    assert len(points) >= 20
    return result, points


def as_series(start: dt.date, returns: np.ndarray) -> pd.Series:
    return pd.Series(returns, index=pd.date_range(start, periods=len(returns), freq="D"))


# -- equality with the peers on real series ----------------------------------------------------------------------------


def test_all_time_statistics_equal_quantstats_and_empyrical(real: tuple[BacktestResult, list[DayPoint]]) -> None:
    result, points = real
    initial = result.stats.starting_equity
    ours = performance(initial, points)
    r = as_series(points[0].day, daily_returns(initial, points))
    assert len(r) == (points[-1].day - points[0].day).days + 1  # every calendar day, weekends of stocks filled

    assert ours.sharpe is not None and ours.sortino is not None
    assert ours.sharpe == pytest.approx(qs.stats.sharpe(r, rf=0.0, periods=365), abs=TOL)
    assert ours.sharpe == pytest.approx(empyrical.sharpe_ratio(r, risk_free=0, annualization=365), abs=TOL)
    assert ours.sortino == pytest.approx(qs.stats.sortino(r, rf=0, periods=365), abs=TOL)
    assert ours.sortino == pytest.approx(empyrical.sortino_ratio(r, required_return=0, annualization=365), abs=TOL)
    assert ours.max_drawdown > 0
    assert -ours.max_drawdown == pytest.approx(qs.stats.max_drawdown(r), abs=TOL)
    assert -ours.max_drawdown == pytest.approx(empyrical.max_drawdown(r), abs=TOL)
    assert ours.total_return == pytest.approx(qs.stats.comp(r), abs=TOL)
    assert ours.total_return == pytest.approx(empyrical.cum_returns_final(r), abs=TOL)
    # win rate and profit factor where quantstats defines them: on the daily returns
    assert win_rate(r.to_numpy()) == pytest.approx(qs.stats.win_rate(r), abs=TOL)
    assert profit_factor(r.to_numpy()) == pytest.approx(qs.stats.profit_factor(r), abs=TOL)
    # exact money: the profit is the last day's equity minus the initial balance, to the cent and beyond
    assert ours.profit == points[-1].equity - initial


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_window_statistics_equal_the_peers_on_the_window_returns(
    real: tuple[BacktestResult, list[DayPoint]], period: Period
) -> None:
    result, points = real
    initial = result.stats.starting_equity
    ours, start = window_performance(initial, points, period)
    base, inside, _ = window(initial, points, period)
    assert start is not None and inside[0].day >= start and all(p.day >= start for p in inside)
    assert base == next((p.equity for p in reversed(points) if p.day < start), initial)
    r = as_series(inside[0].day, daily_returns(base, inside))

    assert ours.total_return == pytest.approx(empyrical.cum_returns_final(r), abs=TOL)
    assert -ours.max_drawdown == pytest.approx(empyrical.max_drawdown(r), abs=TOL)
    if len(r) >= 2 and ours.sharpe is not None:
        assert ours.sharpe == pytest.approx(qs.stats.sharpe(r, periods=365), abs=TOL)
        assert ours.sharpe == pytest.approx(empyrical.sharpe_ratio(r, annualization=365), abs=TOL)
    if ours.sortino is not None:
        assert ours.sortino == pytest.approx(empyrical.sortino_ratio(r, annualization=365), abs=TOL)
    if period == "day":
        assert len(r) == 1 and ours.sharpe is None and ours.sortino is None  # one return has no dispersion


def test_trade_win_rate_and_profit_factor_equal_the_backtests_on_its_round_trips(
    real: tuple[BacktestResult, list[DayPoint]],
) -> None:
    result, _ = real
    pnls = [t.pnl for t in result.round_trips]
    assert win_rate(pnls) == result.stats.win_rate
    assert profit_factor(pnls) == result.stats.profit_factor
    assert (win_rate(pnls) is None) == (not pnls)  # buy and hold closes no trade: undefined in both


# -- hand-made series --------------------------------------------------------------------------------------------------

DAY0 = dt.date(2026, 3, 2)  # a Monday


def points_of(*equities: str, start: dt.date = DAY0, step: int = 1) -> list[DayPoint]:
    return [DayPoint(start + dt.timedelta(days=i * step), D(e)) for i, e in enumerate(equities)]


def test_the_daily_series_fills_missing_days_with_the_previous_equity() -> None:
    pts = [DayPoint(DAY0, D(110)), DayPoint(DAY0 + dt.timedelta(days=3), D(99))]
    assert calendar_equity(D(100), pts).tolist() == [100.0, 110.0, 110.0, 110.0, 99.0]
    assert daily_returns(D(100), pts).tolist() == pytest.approx([0.1, 0.0, 0.0, -0.1])
    assert calendar_equity(D(100), []).tolist() == [100.0]


def test_points_out_of_day_order_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="increasing"):
        calendar_equity(D(1), [DayPoint(DAY0, D(1)), DayPoint(DAY0, D(2))])


def test_hand_computed_statistics() -> None:
    perf = performance(D("10000"), points_of("10100", "9999", "10302.5"))
    # returns: 0.01, -0.01, 0.030350...
    r = np.array([0.01, 9999 / 10100 - 1, 10302.5 / 9999 - 1])
    assert perf.profit == D("302.5")
    assert perf.total_return == pytest.approx(0.03025, abs=1e-15)
    assert perf.sharpe == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(365), rel=1e-12)
    assert perf.sortino == pytest.approx(r.mean() / np.sqrt((r[1] ** 2) / 3) * np.sqrt(365), rel=1e-12)
    assert perf.max_drawdown == pytest.approx(1 - 9999 / 10100, rel=1e-12)
    assert perf.best_day == D("303.5")  # 9999 → 10302.5
    assert perf.consistency == pytest.approx(303.5 / 302.5)  # the best day made more than the total
    assert perf.days == 3 and perf.first_day == DAY0 and perf.last_day == DAY0 + dt.timedelta(days=2)


def test_undefined_statistics_are_none() -> None:
    flat = performance(D(1000), points_of("1000", "1000", "1000"))
    assert flat.sharpe is None and flat.sortino is None  # zero dispersion
    assert flat.win_rate is None and flat.profit_factor is None and flat.consistency is None
    assert flat.max_drawdown == 0.0 and flat.total_return == 0.0
    rising = performance(D(1000), points_of("1001", "1003", "1010"))
    assert rising.sortino is None and rising.sharpe is not None  # no return below 0
    empty = performance(D(1000), [])
    assert empty.total_return == 0.0 and empty.profit == 0 and empty.days == 0 and empty.best_day is None
    blown = performance(D(1000), points_of("500", "0", "0"))
    assert blown.sharpe is None and blown.max_drawdown == 1.0  # a return after equity 0 is undefined
    assert performance(D(0), points_of("0")).total_return is None


def test_win_rate_and_profit_factor_of_trade_outcomes() -> None:
    pnl = [D("120.5"), D("-40"), D("0"), D("60"), D("-20.5")]
    assert win_rate(pnl) == 0.5  # the zero outcome is neither (quantstats' convention)
    assert profit_factor(pnl) == pytest.approx(180.5 / 60.5)
    assert profit_factor([D(1), D(2)]) is None  # no loss: infinite
    assert win_rate([]) is None


def test_consistency_follows_the_ftmo_best_day_example() -> None:
    # FTMO Best Day Rule FAQ [S5]: $5,000 best day and $5,000 made on the other days: 50 % — the rule is met.
    pnls = day_pnls(D(100_000), points_of("105000", "106000", "108000", "110000"))
    assert pnls == [D(5000), D(1000), D(2000), D(2000)]
    assert consistency(pnls, D(10_000)) == 0.5
    assert consistency(pnls, D(0)) is None and consistency([D(-1)], D(5)) is None


def test_max_drawdown_counts_the_initial_balance_as_a_peak() -> None:
    assert max_drawdown(np.array([100.0, 90.0, 120.0, 60.0])) == pytest.approx(0.5)
    assert max_drawdown(np.array([100.0])) == 0.0
    assert sharpe_ratio(np.array([0.01])) is None and sortino_ratio(np.array([-0.01])) is None


@pytest.mark.parametrize(
    ("period", "day", "expected"),
    [
        ("day", dt.date(2026, 3, 29), dt.date(2026, 3, 29)),
        ("week", dt.date(2026, 3, 29), dt.date(2026, 3, 23)),  # a Sunday: its ISO week began on Monday the 23rd
        ("week", dt.date(2026, 3, 23), dt.date(2026, 3, 23)),
        ("month", dt.date(2026, 2, 28), dt.date(2026, 2, 1)),
        ("all", dt.date(2026, 2, 28), None),
    ],
)
def test_period_start(period: Period, day: dt.date, expected: dt.date | None) -> None:
    assert period_start(period, day) == expected


def test_an_unknown_period_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="day, week, month, all"):
        period_start("year", DAY0)  # type: ignore[arg-type]


def test_a_window_starts_from_the_equity_before_it() -> None:
    pts = points_of("101", "102", "103", "104", "105", "106", "107", "108")  # Mon 2 Mar .. Mon 9 Mar 2026
    base, inside, start = window(D(100), pts, "week")
    assert start == dt.date(2026, 3, 9) and base == D(107) and [p.equity for p in inside] == [D(108)]
    base, inside, start = window(D(100), pts, "month")
    assert start == dt.date(2026, 3, 1) and base == D(100) and len(inside) == 8


def test_every_window_at_once_equals_each_window_alone(real: tuple[BacktestResult, list[DayPoint]]) -> None:
    result, points = real
    initial = result.stats.starting_equity
    for period, perf, start in all_windows(initial, points):
        assert (perf, start) == window_performance(initial, points, period)
    assert [p for p, _, _ in all_windows(initial, [])] == ["day", "week", "month", "all"]
