"""Performance statistics: hand-computed curves, edge cases, and agreement with two peers.

Peers: backtesting.py 0.6 (``backtesting._stats.compute_stats``) and vectorbt (``vectorbt.returns.nb``).
Every number either agrees with the peer or the test reproduces the peer's own named convention
from our per-bar returns, so the difference is explained rather than tolerated.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from backtesting._stats import compute_stats as bt_compute_stats
from hypothesis import given, settings
from hypothesis import strategies as st

from smart_trader.analytics import RoundTrip, Stats, compute_stats, drawdown, periods_per_year
from smart_trader.analytics.stats import max_drawdown_duration, simple_returns
from smart_trader.core.errors import InvalidInputError

# backtesting.py 0.6.6 calls DatetimeIndex.dayofweek, deprecated in pandas 3: not our warning to fix.
pytestmark = pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofweek is deprecated")

DAY_NS = 86_400 * 10**9
T0 = 1_672_531_200 * 10**9  # 2023-01-01T00:00:00Z


# --- test kit -------------------------------------------------------------------------------------


def daily_ts(n: int, start: int = T0) -> np.ndarray:
    return start + np.arange(n, dtype=np.int64) * DAY_NS


def trip(pnl: str, *, side: str = "long", entry_price: str = "100", exit_price: str = "101") -> RoundTrip:
    return RoundTrip(
        instrument_id="BTCUSDT.BINANCE",
        side=side,
        quantity=Decimal("1"),
        entry_ts=T0,
        exit_ts=T0 + DAY_NS,
        entry_price=Decimal(entry_price),
        exit_price=Decimal(exit_price),
        pnl=Decimal(pnl),
        commission=Decimal("0.1"),
    )


def stats_of(
    equity: Sequence[float] | np.ndarray,
    trips: Sequence[RoundTrip] = (),
    *,
    ts: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    ppy: float = 365.0,
    rf: float = 0.0,
    run_seconds: float = 2.0,
    starting: Decimal | None = None,
    final: Decimal | None = None,
) -> Stats:
    eq = np.asarray(equity, dtype=np.float64)
    n = eq.size
    return compute_stats(
        daily_ts(n) if ts is None else ts,
        eq,
        trips,
        exposure_mask=np.zeros(n, dtype=bool) if mask is None else mask,
        periods_per_year=ppy,
        bars_processed=n,
        run_seconds=run_seconds,
        starting_equity=(Decimal(repr(float(eq[0]))) if n else Decimal(0)) if starting is None else starting,
        final_equity=(Decimal(repr(float(eq[-1]))) if n else Decimal(0)) if final is None else final,
        risk_free_rate=rf,
    )


def strict_json(stats: Stats) -> str:
    return json.dumps(stats.to_dict(), allow_nan=False)


# --- hand-computed curves -------------------------------------------------------------------------


def test_hand_computed_curve_gives_textbook_numbers() -> None:
    # Equity 100 → 110 → 99 → 121 on consecutive days: returns +10 %, -10 %, +2/9.
    s = stats_of([100, 110, 99, 121])

    r = [0.1, -0.1, 2 / 9]
    mean = sum(r) / 3  # 0.0740740...
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)  # sample std (ddof=1) = 0.1626684...
    downside = math.sqrt((0.1**2) / 3)  # only -10 % is below target 0, averaged over all 3 periods
    assert s.total_return == pytest.approx(0.21, rel=1e-15)
    assert s.annualized_volatility == pytest.approx(std * math.sqrt(365), rel=1e-12)
    assert s.annualized_volatility == pytest.approx(3.10777, rel=1e-5)
    assert s.sharpe == pytest.approx(mean / std * math.sqrt(365), rel=1e-12)
    assert s.sharpe == pytest.approx(8.69982, rel=1e-5)
    assert s.sortino == pytest.approx(mean / downside * math.sqrt(365), rel=1e-12)
    assert s.sortino == pytest.approx(24.51169, rel=1e-5)
    # CAGR: 1.21 over 3 days of a 365.25-day year
    assert s.cagr == pytest.approx(1.21 ** (365.25 / 3) - 1, rel=1e-12)
    # 110 → 99 is the only dip: 10 %, from the peak on day 1 to the recovery on day 3
    assert s.max_drawdown == pytest.approx(0.1, rel=1e-12)
    assert s.max_drawdown_duration_seconds == 2 * 86_400
    assert s.max_drawdown_duration_bars == 2


def test_drawdown_never_recovered_runs_to_the_last_bar() -> None:
    s = stats_of([100, 120, 90, 60, 80])

    assert s.max_drawdown == pytest.approx(0.5)  # 120 → 60
    assert s.max_drawdown_duration_bars == 3  # peak at index 1 to the end at index 4
    assert s.max_drawdown_duration_seconds == 3 * 86_400
    np.testing.assert_allclose(drawdown(np.array([100, 120, 90, 60, 80.0])), [0, 0, 0.25, 0.5, 1 / 3])


def test_longest_drawdown_is_chosen_by_time_and_reported_in_bars_of_that_episode() -> None:
    # Episode A: 4 bars an hour apart (3 h); episode B: 2 bars across a weekend gap (3 days).
    hour = 3600 * 10**9
    ts = np.array([0, hour, 2 * hour, 3 * hour, 4 * hour, 4 * hour + 3 * DAY_NS, 5 * hour + 3 * DAY_NS]) + T0
    eq = np.array([100, 99, 98, 97, 101, 100, 102.0])

    seconds, bars = max_drawdown_duration(ts, eq)

    assert (seconds, bars) == (3 * 86_400 + 3600, 2)


def test_drawdown_starting_on_the_last_bar_lasts_one_bar() -> None:
    s = stats_of([100, 101, 99])

    assert s.max_drawdown == pytest.approx(2 / 101)
    assert (s.max_drawdown_duration_seconds, s.max_drawdown_duration_bars) == (86_400, 1)


def test_returns_are_simple_per_bar_returns() -> None:
    np.testing.assert_allclose(simple_returns(np.array([100, 110, 99.0])), [0.1, -0.1])
    assert simple_returns(np.array([5.0])).size == 0


def test_risk_free_rate_is_compounded_down_to_a_per_bar_rate() -> None:
    eq = [100, 101, 100.5, 102, 101.8, 103]
    r = [b / a - 1 for a, b in itertools.pairwise(eq)]
    rf_bar = 1.05 ** (1 / 365) - 1
    excess = [x - rf_bar for x in r]

    s = stats_of(eq, rf=0.05)

    expected = statistics.fmean(excess) / statistics.stdev(r) * math.sqrt(365)
    assert s.sharpe == pytest.approx(expected, rel=1e-12)
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    assert s.sortino == pytest.approx(statistics.fmean(excess) / downside * math.sqrt(365), rel=1e-12)


def test_trade_statistics_are_exact_decimals() -> None:
    trips = [trip("12.50"), trip("-4.25"), trip("0"), trip("7.10"), trip("-1.35")]

    s = stats_of([100, 101, 102], trips)

    assert s.number_of_trades == 5
    assert s.win_rate == pytest.approx(2 / 5)  # a zero-P&L trade is not a win
    assert s.profit_factor == pytest.approx(19.60 / 5.60)
    assert s.avg_trade_pnl == Decimal("2.8")
    assert s.best_trade == Decimal("12.50")
    assert s.worst_trade == Decimal("-4.25")


def test_exposure_is_the_fraction_of_bars_in_the_market() -> None:
    mask = np.array([False, True, True, False, True, False, False, False])

    s = stats_of([100.0] * 8, mask=mask)

    assert s.exposure == pytest.approx(3 / 8)


def test_total_return_uses_the_exact_ledger_equity() -> None:
    s = stats_of([100.0, 100.1], starting=Decimal("100.00"), final=Decimal("100.10"), run_seconds=0.5)

    assert s.total_return == float(Decimal("0.001"))
    assert s.bars_per_second == 4.0
    assert s.to_dict()["final_equity"] == "100.10"


def test_to_dict_is_json_ready_with_iso_utc_timestamps() -> None:
    s = stats_of([100, 110, 99, 121], [trip("3.5")])

    d = s.to_dict()

    assert d["start"] == "2023-01-01T00:00:00+00:00"
    assert d["end"] == "2023-01-04T00:00:00+00:00"
    assert s.start == datetime(2023, 1, 1, tzinfo=UTC)
    assert d["starting_equity"] == "100.0"
    assert d["best_trade"] == "3.5"
    assert isinstance(d["sharpe"], float)
    assert isinstance(d["max_drawdown_duration_bars"], int)
    assert d["profit_factor"] is None  # no losing trade: infinite, reported as null
    assert list(d) == [
        "total_return",
        "cagr",
        "annualized_volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "max_drawdown_duration_seconds",
        "max_drawdown_duration_bars",
        "max_drawdown_duration_days",
        "win_rate",
        "profit_factor",
        "exposure",
        "number_of_trades",
        "bars_processed",
        "run_seconds",
        "bars_per_second",
        "start",
        "end",
        "starting_equity",
        "final_equity",
        "avg_trade_pnl",
        "best_trade",
        "worst_trade",
    ]
    json.loads(strict_json(s))


# --- edge cases: null or 0, never NaN, never an exception -------------------------------------------


def test_flat_equity_without_trades_has_zero_risk_and_undefined_ratios() -> None:
    s = stats_of([1000.0] * 10)

    assert s.total_return == 0.0
    assert s.cagr == 0.0
    assert s.annualized_volatility == 0.0
    assert s.sharpe is None
    assert s.sortino is None
    assert s.max_drawdown == 0.0
    assert (s.max_drawdown_duration_seconds, s.max_drawdown_duration_bars) == (0.0, 0)
    assert s.win_rate is None
    assert s.profit_factor is None
    assert s.avg_trade_pnl is s.best_trade is s.worst_trade is None
    assert s.number_of_trades == 0
    strict_json(s)


def test_one_bar_gives_nulls_for_everything_that_needs_two() -> None:
    s = stats_of([1000.0])

    assert s.cagr is None
    assert s.annualized_volatility is s.sharpe is s.sortino is None
    assert s.max_drawdown == 0.0
    assert s.start == s.end
    strict_json(s)


def test_no_bars_at_all() -> None:
    s = stats_of([], run_seconds=0.0, starting=Decimal(1000), final=Decimal(1000))

    assert s.start is s.end is s.exposure is s.bars_per_second is None
    assert s.total_return == 0.0
    strict_json(s)


def test_two_bars_give_a_volatility_only_from_two_returns_upward() -> None:
    s = stats_of([100.0, 101.0])

    assert s.annualized_volatility is None  # one return has no sample standard deviation
    assert s.total_return == pytest.approx(0.01)


def test_steady_growth_without_losses_has_no_sortino() -> None:
    s = stats_of([100.0, 101.0, 102.5, 104.0])

    assert s.sortino is None  # no return below the target: downside deviation 0
    assert s.sharpe is not None


def test_blown_account_does_not_produce_nan() -> None:
    s = stats_of([100.0, 50.0, 0.0, 0.0], starting=Decimal(100), final=Decimal(0))

    assert s.total_return == -1.0
    assert s.cagr == -1.0
    assert s.max_drawdown == 1.0
    assert s.annualized_volatility is s.sharpe is s.sortino is None  # a return after equity 0 is undefined
    strict_json(s)


def test_zero_starting_equity_leaves_total_return_undefined() -> None:
    s = stats_of([0.0, 0.0], starting=Decimal(0), final=Decimal(0))

    assert s.total_return is None
    assert s.cagr is None
    strict_json(s)


@pytest.mark.parametrize(
    ("ts", "equity", "mask", "match"),
    [
        (daily_ts(3), np.ones(2), np.zeros(3, bool), "same length"),
        (daily_ts(3), np.ones(3), np.zeros(2, bool), "same length"),
        (daily_ts(3), np.array([1.0, np.nan, 1.0]), np.zeros(3, bool), "NaN"),
        (daily_ts(3)[::-1], np.ones(3), np.zeros(3, bool), "ascending"),
        (daily_ts(4).reshape(2, 2), np.ones((2, 2)), np.zeros((2, 2), bool), "one-dimensional"),
    ],
)
def test_malformed_inputs_are_refused(ts: np.ndarray, equity: np.ndarray, mask: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        compute_stats(
            ts,
            equity,
            [],
            exposure_mask=mask,
            periods_per_year=365,
            bars_processed=3,
            run_seconds=1,
            starting_equity=Decimal(1),
            final_equity=Decimal(1),
        )


def test_round_trip_refuses_an_unknown_side_and_an_exit_before_entry() -> None:
    with pytest.raises(InvalidInputError, match="side"):
        trip("1", side="flat")
    with pytest.raises(InvalidInputError, match="before"):
        RoundTrip("X", "long", Decimal(1), 10, 5, Decimal(1), Decimal(1), Decimal(0), Decimal(0))


@given(st.lists(st.floats(min_value=0.0, max_value=1e9, allow_nan=False), min_size=0, max_size=60))
@settings(max_examples=200, deadline=None)
def test_any_curve_gives_strict_json_and_a_drawdown_matching_a_plain_loop(values: list[float]) -> None:
    s = stats_of(values, starting=Decimal(1), final=Decimal(2))

    strict_json(s)
    peak, worst, start, longest = -math.inf, 0.0, 0, 0
    for i, v in enumerate(values):
        if v >= peak:
            if i - start > 1:
                longest = max(longest, i - start)
            peak, start = v, i
        elif peak > 0:
            worst = max(worst, 1 - v / peak)
    if values and values[-1] < peak:
        longest = max(longest, len(values) - 1 - start)
    assert s.max_drawdown == pytest.approx(worst, abs=1e-12)
    assert s.max_drawdown_duration_bars == longest  # daily bars: longest in time == longest in bars


# --- periods per year -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bar_seconds", "kwargs", "expected"),
    [
        (86_400, {}, 365.0),
        (3600, {}, 8760.0),
        (60, {}, 525_600.0),
        (86_400, {"trading_days": 252}, 252.0),
        (300, {"trading_days": 252, "session_seconds": 23_400}, 252 * 78.0),
        (86_400, {"trading_days": 252, "session_seconds": 23_400}, 252.0),
    ],
)
def test_periods_per_year(bar_seconds: int, kwargs: dict[str, int], expected: float) -> None:
    assert periods_per_year(bar_seconds, **kwargs) == expected


@pytest.mark.parametrize("bar_seconds", [0, -60, 86_401])
def test_periods_per_year_refuses_bars_outside_one_second_to_one_day(bar_seconds: int) -> None:
    with pytest.raises(InvalidInputError):
        periods_per_year(bar_seconds)


def test_non_positive_periods_per_year_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="periods_per_year"):
        stats_of([1.0, 2.0], ppy=0.0)


# --- peer agreement -------------------------------------------------------------------------------


def _random_curve(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 10_000 * np.cumprod(np.r_[1.0, 1 + rng.normal(0.0008, 0.012, n - 1)])


def _backtesting_py(index: pd.DatetimeIndex, equity: np.ndarray, trades: pd.DataFrame, rf: float = 0.0) -> pd.Series:
    return bt_compute_stats(trades, equity, pd.DataFrame({"Close": equity}, index=index), None, rf)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("freq", "trading_days"),
    [("D", 365), ("B", 252)],  # backtesting.py picks 365 when the index has weekends, else 252
)
def test_agrees_with_backtesting_py_on_the_same_equity_curve(freq: str, trading_days: int) -> None:
    n = 400
    index = pd.date_range("2022-01-03", periods=n, freq=freq, tz="UTC")
    ts = index.as_unit("ns").asi8.astype(np.int64)
    eq = _random_curve(n, seed=42)
    # Equal entry notional (100), so backtesting.py's return-based profit factor equals our P&L-based one.
    pnl = [Decimal("12.5"), Decimal("-4"), Decimal("3.25"), Decimal("-6.5"), Decimal("9")]
    bars = [(5, 20), (30, 31), (50, 90), (120, 121), (200, 260)]
    trades = pd.DataFrame(
        {
            "PnL": [float(p) for p in pnl],
            "ReturnPct": [float(p) / 100 for p in pnl],
            "EntryBar": [b[0] for b in bars],
            "ExitBar": [b[1] for b in bars],
            "Duration": [index[b[1]] - index[b[0]] for b in bars],
        }
    )
    mask = np.zeros(n, dtype=bool)
    for entry, exit_ in bars:
        mask[entry : exit_ + 1] = True  # backtesting.py counts both the entry and the exit bar
    rf = 0.02

    peer = _backtesting_py(index, eq, trades, rf)
    ours = compute_stats(
        ts,
        eq,
        [trip(str(p)) for p in pnl],
        exposure_mask=mask,
        periods_per_year=periods_per_year(86_400, trading_days=trading_days),
        bars_processed=n,
        run_seconds=1.0,
        starting_equity=Decimal(eq[0]),
        final_equity=Decimal(eq[-1]),
        risk_free_rate=rf,
    )

    # Same definitions: equal to float precision.
    assert ours.total_return == pytest.approx(peer["Return [%]"] / 100, rel=1e-12)
    assert ours.cagr == pytest.approx(peer["CAGR [%]"] / 100, rel=1e-12)  # both: years of 365.25 days
    assert ours.max_drawdown == pytest.approx(-peer["Max. Drawdown [%]"] / 100, rel=1e-12)
    # Both: peak to recovery, or to the last bar when never recovered.
    assert ours.max_drawdown_duration_seconds == peer["Max. Drawdown Duration"].total_seconds()
    assert ours.exposure == pytest.approx(peer["Exposure Time [%]"] / 100, rel=1e-12)
    assert ours.number_of_trades == peer["# Trades"]
    assert ours.win_rate == pytest.approx(peer["Win Rate [%]"] / 100, rel=1e-12)
    assert ours.profit_factor == pytest.approx(peer["Profit Factor"], rel=1e-12)

    # Different conventions, each reproduced from our own per-bar returns:
    r = simple_returns(eq)
    p = float(trading_days)
    g = math.exp(np.log1p(r).mean()) - 1  # backtesting.py: geometric mean per-bar return ...
    ann_geo = (1 + g) ** p - 1  # ... compounded over the year ("Return (Ann.)")
    assert ann_geo == pytest.approx(peer["Return (Ann.) [%]"] / 100, rel=1e-9)
    # Volatility of the compounded annual return (Tsay-style, ssrn 3054517) vs our std·sqrt(P):
    var = r.var(ddof=1)
    bt_vol = math.sqrt((var + (1 + g) ** 2) ** p - (1 + g) ** (2 * p))
    assert bt_vol == pytest.approx(peer["Volatility (Ann.) [%]"] / 100, rel=1e-9)
    assert ours.annualized_volatility == pytest.approx(math.sqrt(var) * math.sqrt(p), rel=1e-12)
    # Sharpe: backtesting.py = (annual geometric return − rf) / compounded vol; ours = arithmetic (Sharpe 1994).
    assert peer["Sharpe Ratio"] == pytest.approx((ann_geo - rf) / bt_vol, rel=1e-9)
    # Sortino: the same downside deviation (all periods, target 0, times sqrt(P)) in both;
    # only the numerator differs: annual geometric return − rf (theirs) vs mean excess per-bar return × P (ours).
    downside_ann = math.sqrt(np.mean(np.minimum(r, 0.0) ** 2)) * math.sqrt(p)
    assert peer["Sortino Ratio"] == pytest.approx((ann_geo - rf) / downside_ann, rel=1e-9)
    rf_bar = (1 + rf) ** (1 / p) - 1
    assert ours.sortino == pytest.approx((r.mean() - rf_bar) * p / downside_ann, rel=1e-12)
    # The conventions disagree by the compounding over a year, not by noise: same sign, same order.
    assert ours.sharpe is not None
    assert ours.sortino is not None
    assert np.sign(ours.sharpe) == np.sign(peer["Sharpe Ratio"])
    assert 0.5 < ours.sortino / peer["Sortino Ratio"] < 2


@pytest.mark.slow
def test_agrees_with_backtesting_py_on_a_drawdown_never_recovered() -> None:
    index = pd.date_range("2023-01-01", periods=6, freq="D", tz="UTC")
    eq = np.array([100, 120, 90, 60, 80, 110.0])
    trades = pd.DataFrame({"PnL": [], "ReturnPct": [], "EntryBar": [], "ExitBar": [], "Duration": []}).astype(
        {"EntryBar": int, "ExitBar": int}
    )

    peer = _backtesting_py(index, eq, trades)
    ours = stats_of(eq, ts=index.as_unit("ns").asi8.astype(np.int64))

    assert ours.max_drawdown == pytest.approx(-peer["Max. Drawdown [%]"] / 100)
    assert ours.max_drawdown_duration_seconds == peer["Max. Drawdown Duration"].total_seconds() == 4 * 86_400


@pytest.mark.slow
def test_agrees_exactly_with_vectorbt_arithmetic_conventions() -> None:
    # vectorbt (like empyrical/pyfolio) annualizes arithmetically, as we do: equal to float precision.
    nb = pytest.importorskip("vectorbt.returns.nb")
    eq = _random_curve(500, seed=7)
    r = simple_returns(eq)
    p = 8760.0  # hourly, 24/7

    ours = stats_of(eq, ts=T0 + np.arange(500, dtype=np.int64) * 3600 * 10**9, ppy=p)

    assert ours.annualized_volatility == pytest.approx(nb.annualized_volatility_1d_nb(r, p), rel=1e-12)
    assert ours.sharpe == pytest.approx(nb.sharpe_ratio_1d_nb(r, p), rel=1e-12)
    assert ours.sortino == pytest.approx(nb.sortino_ratio_1d_nb(r.copy(), p), rel=1e-12)
    assert ours.max_drawdown == pytest.approx(-nb.max_drawdown_1d_nb(r), rel=1e-12)
