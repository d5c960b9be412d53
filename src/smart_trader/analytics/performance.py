"""Performance statistics of a trading account from its daily equity series and its realized trade outcomes.

Pure functions (no I/O): the projection (``analytics/projection.py``) keeps the inputs current from the events and
stores what :func:`performance` returns; the leaderboards read the stored rows.

Conventions (each function names its formula and source):

- **Daily equity series.** One point per day: the last equity of the day (account currency). Days are the
  account's days: UTC calendar days for a plain account, the challenge program's firm days (its IANA zone and
  reset time, ``challenges/days.py``) for a challenge account. The series starts with a base point — the initial
  balance, or for a window the last equity before it — and runs over every calendar day from the first day to the
  last: a day without a point carries the previous equity (a day without any account event is a day the equity did
  not move, since the runtime reports every change), i.e. a zero return.
- **Returns** are simple daily returns ``r_d = E_d / E_{d-1} - 1`` (``analytics.stats.simple_returns``).
- **Annualization**: :data:`PERIODS_PER_YEAR` = 365 (calendar days: the series has every calendar day, and crypto
  trades every day), risk-free rate 0; sample standard deviation (``ddof=1``). These are the conventions of
  quantstats (``periods=365, rf=0``) and empyrical (``annualization=365``); the tests check equality to 1e-9.
- **Undefined** statistics are ``None``, never NaN or infinity.

Money stays :class:`~decimal.Decimal` (profit, equity, day P&L); ratios are floats.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import numpy as np
import numpy.typing as npt

from smart_trader.analytics.stats import drawdown, simple_returns
from smart_trader.core.errors import InvalidInputError

Period = Literal["day", "week", "month", "all"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "all")
"""The windows statistics are kept for: the account's latest day, its ISO week (Monday first), its calendar month,
and all time."""

PERIODS_PER_YEAR = 365
"""Daily points a year, the ``P`` of the annualization (calendar days: the series is gap-filled)."""

_ZERO_STD = 1e-12
"""Daily standard deviations at or below this are rounding noise: the ratio dividing by it is ``None``
(the threshold of ``analytics/stats.py``)."""

ZERO = Decimal(0)
ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DayPoint:
    """One day of an account.

    Attributes:
        day: the day's label (a UTC date, or the firm day of a challenge program).
        equity: the last equity of the day (account currency).
        wins: realized trade outcomes of the day with a profit (count).
        losses: realized trade outcomes of the day with a loss (count).
        gross_profit: sum of the winning outcomes (>= 0, account currency).
        gross_loss: minus the sum of the losing outcomes (>= 0, account currency).
    """

    day: dt.date
    equity: Decimal
    wins: int = 0
    losses: int = 0
    gross_profit: Decimal = ZERO
    gross_loss: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Performance:
    """Statistics of one account over one window of days.

    Attributes:
        start_equity: the base the window starts from: the initial balance, or the last equity before the window.
        end_equity: the last equity of the window's last day.
        profit: ``end_equity - start_equity`` (exact, account currency).
        total_return: ``profit / start_equity`` (a fraction; ``None`` when ``start_equity`` is not positive).
        sharpe: :func:`sharpe_ratio` of the daily returns.
        sortino: :func:`sortino_ratio` of the daily returns.
        max_drawdown: :func:`max_drawdown` of the daily equity series (a positive fraction, 0 when never under water).
        win_rate: :func:`win_rate_of` the window's realized trade outcomes.
        profit_factor: :func:`profit_factor_of` the window's realized trade outcomes.
        consistency: :func:`consistency` of the daily P&L (best day ÷ total profit).
        best_day: the largest daily P&L (exact), ``None`` without days.
        trades: realized trade outcomes (wins + losses).
        wins: winning outcomes.
        losses: losing outcomes.
        days: calendar days in the window from its first to its last day with a point.
        first_day: the window's first day with a point (``None`` when empty).
        last_day: the window's last day with a point (``None`` when empty).
    """

    start_equity: Decimal
    end_equity: Decimal
    profit: Decimal
    total_return: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    win_rate: float | None
    profit_factor: float | None
    consistency: float | None
    best_day: Decimal | None
    trades: int
    wins: int
    losses: int
    days: int
    first_day: dt.date | None
    last_day: dt.date | None


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def calendar_equity(start_equity: Decimal, points: Sequence[DayPoint]) -> npt.NDArray[np.float64]:
    """The daily equity series as floats: ``[start_equity, E(first day), ..., E(last day)]``, one value per calendar
    day from the first point's day to the last point's day, a missing day carrying the previous equity.

    Shape ``(1 + days,)``; ``(1,)`` without points.

    Raises:
        InvalidInputError: points not in strictly increasing day order.
    """
    if not points:
        return np.array([float(start_equity)], dtype=np.float64)
    first = points[0].day
    n = (points[-1].day - first).days + 1
    idx = np.empty(len(points), dtype=np.int64)
    values = np.empty(len(points), dtype=np.float64)
    for i, p in enumerate(points):
        idx[i] = (p.day - first).days
        values[i] = float(p.equity)
    if len(points) > 1 and (np.diff(idx) <= 0).any():
        raise InvalidInputError("day points must be in strictly increasing day order")
    out = np.empty(n + 1, dtype=np.float64)
    out[0] = float(start_equity)
    # forward fill: every calendar day takes the value of the latest point at or before it
    which = np.searchsorted(idx, np.arange(n), side="right") - 1
    out[1:] = values[which]
    return out


def daily_returns(start_equity: Decimal, points: Sequence[DayPoint]) -> npt.NDArray[np.float64]:
    """Simple daily returns of :func:`calendar_equity` (shape ``(days,)``; NaN after an equity at or below zero)."""
    return simple_returns(calendar_equity(start_equity, points))


def sharpe_ratio(returns: npt.NDArray[np.float64], periods_per_year: float = PERIODS_PER_YEAR) -> float | None:
    """Annualized Sharpe ratio, risk-free rate 0: ``mean(r) / std(r, ddof=1) * sqrt(P)``.

    Source: Sharpe, W. F. (1994), "The Sharpe Ratio", Journal of Portfolio Management 21(1) (ex-post ratio);
    the same formula as ``quantstats.stats.sharpe(returns, rf=0, periods=P)`` and
    ``empyrical.sharpe_ratio(returns, risk_free=0, annualization=P)``.

    ``None`` with fewer than two returns, a non-finite return, or a standard deviation of (numerically) zero.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2 or not np.isfinite(r).all():
        return None
    std = float(np.std(r, ddof=1))
    if not std > _ZERO_STD:
        return None
    return _finite(float(np.mean(r)) / std * math.sqrt(periods_per_year))


def sortino_ratio(returns: npt.NDArray[np.float64], periods_per_year: float = PERIODS_PER_YEAR) -> float | None:
    """Annualized Sortino ratio, target 0: ``mean(r) / DD * sqrt(P)`` with the downside deviation over all periods
    ``DD = sqrt(mean(min(r, 0) ** 2))``.

    Source: Sortino, F. & Price, L. (1994), "Performance Measurement in a Downside Risk Framework", Journal of
    Investing 3(3); the same formula as ``quantstats.stats.sortino(returns, rf=0, periods=P)`` and
    ``empyrical.sortino_ratio(returns, required_return=0, annualization=P)``.

    ``None`` with fewer than two returns, a non-finite return, or no return below 0 (the downside deviation is 0).
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2 or not np.isfinite(r).all():
        return None
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if not downside > _ZERO_STD:
        return None
    return _finite(float(np.mean(r)) / downside * math.sqrt(periods_per_year))


def max_drawdown(equity: npt.NDArray[np.float64]) -> float:
    """Largest fall from the running high-water mark, as a positive fraction: ``max_i(1 - E_i / max(E_0..E_i))``
    (:func:`smart_trader.analytics.stats.drawdown`); 0.0 when never under water or without points.

    The base point (the initial balance) counts as a high-water mark, as in ``empyrical.max_drawdown`` (which
    compounds the returns from a starting value) and ``quantstats.stats.max_drawdown`` (which adds a baseline before
    the first price); both return the negative of this number.
    """
    dd = drawdown(np.asarray(equity, dtype=np.float64))
    return float(dd.max()) if dd.size else 0.0


def win_rate_of(wins: int, losses: int) -> float | None:
    """``wins / (wins + losses)``: the share of winning outcomes among the non-zero ones; ``None`` without any."""
    n = wins + losses
    return wins / n if n else None


def profit_factor_of(gross_profit: Decimal, gross_loss: Decimal) -> float | None:
    """``gross_profit / gross_loss`` (both >= 0); ``None`` without a loss (it would be infinite, or 0/0)."""
    return float(gross_profit / gross_loss) if gross_loss > 0 else None


def win_rate(outcomes: Iterable[Decimal | float]) -> float | None:
    """Share of positive values among the non-zero ``outcomes`` (trade P&L, or daily returns).

    Source: the usual trade-journal definition (winning trades ÷ trades); on daily returns it is
    ``quantstats.stats.win_rate(returns)`` (positive periods ÷ non-zero periods). ``None`` without a non-zero value.
    """
    wins = losses = 0
    for x in outcomes:
        if x > 0:
            wins += 1
        elif x < 0:
            losses += 1
    return win_rate_of(wins, losses)


def profit_factor(outcomes: Iterable[Decimal | float]) -> float | None:
    """Gross profit ÷ gross loss: ``sum(x > 0) / |sum(x < 0)|`` of ``outcomes`` (trade P&L, or daily returns).

    Source: the usual definition (e.g. backtesting.py's "Profit Factor"); on daily returns it is
    ``quantstats.stats.profit_factor(returns)``. ``None`` without a losing outcome (quantstats gives infinity).
    """
    values = list(outcomes)
    exact = [x for x in values if isinstance(x, Decimal)]
    if len(exact) == len(values):  # exact trade P&L
        gain = sum((x for x in exact if x > 0), ZERO)
        loss = -sum((x for x in exact if x < 0), ZERO)
        return profit_factor_of(gain, loss)
    f = np.asarray([float(x) for x in values], dtype=np.float64)
    loss_f = -float(f[f < 0].sum())
    return _finite(float(f[f > 0].sum()) / loss_f) if loss_f > 0 else None


def day_pnls(start_equity: Decimal, points: Sequence[DayPoint]) -> list[Decimal]:
    """Each day's P&L, exact: ``P(d) = E(d) - E(previous point)`` (``start_equity`` before the first), the equity
    delta per day of CHALLENGES.md R9 ("realized, or equity delta — configurable": equity delta here)."""
    out: list[Decimal] = []
    prev = start_equity
    for p in points:
        out.append(p.equity - prev)
        prev = p.equity
    return out


def consistency(pnls: Sequence[Decimal], total_profit: Decimal) -> float | None:
    """Best-day share: the largest day's profit ÷ the total profit, ``max_d P(d) / (E_end - E_start)``.

    Source: CHALLENGES.md §7 R9 with the ``net_total`` denominator — FTMO's Best Day Rule "in relation to your total
    profit" [S5], Topstep's "Best Day Profit ÷ Overall Profit" [S23], E8's "40 % of your total profit" [S44]; a
    program passes the gate when this is at most its threshold (e.g. 0.5). ``None`` when the total profit is not
    positive or no day made a profit (the rule has nothing to measure). May exceed 1 (a best day larger than the
    total, later days having lost).
    """
    if total_profit <= 0 or not pnls:
        return None
    best = max(pnls)
    if best <= 0:
        return None
    return float(best / total_profit)


def performance(
    start_equity: Decimal, points: Sequence[DayPoint], *, periods_per_year: float = PERIODS_PER_YEAR
) -> Performance:
    """The statistics of one window: ``points`` are its days (increasing), ``start_equity`` the equity before them.

    Return and profit from the exact equities; Sharpe, Sortino and max drawdown from the gap-filled daily series
    (:func:`calendar_equity`); win rate and profit factor from the days' realized trade outcomes; consistency from
    the daily P&L. Without points everything is flat: profit 0, return 0, ratios ``None``.

    Raises:
        InvalidInputError: points not in strictly increasing day order.
    """
    return _performance(start_equity, points, calendar_equity(start_equity, points), periods_per_year)


def _performance(
    start_equity: Decimal, points: Sequence[DayPoint], equity: npt.NDArray[np.float64], periods_per_year: float
) -> Performance:
    """:func:`performance` with the window's :func:`calendar_equity` already made."""
    end = points[-1].equity if points else start_equity
    profit = end - start_equity
    returns = simple_returns(equity)
    wins = losses = 0
    gross_profit = gross_loss = ZERO
    for p in points:
        wins += p.wins
        losses += p.losses
        gross_profit += p.gross_profit
        gross_loss += p.gross_loss
    pnls = day_pnls(start_equity, points)
    return Performance(
        start_equity=start_equity,
        end_equity=end,
        profit=profit,
        total_return=float(profit / start_equity) if start_equity > 0 else None,
        sharpe=sharpe_ratio(returns, periods_per_year),
        sortino=sortino_ratio(returns, periods_per_year),
        max_drawdown=max_drawdown(equity),
        win_rate=win_rate_of(wins, losses),
        profit_factor=profit_factor_of(gross_profit, gross_loss),
        consistency=consistency(pnls, profit),
        best_day=max(pnls) if pnls else None,
        trades=wins + losses,
        wins=wins,
        losses=losses,
        days=equity.size - 1,
        first_day=points[0].day if points else None,
        last_day=points[-1].day if points else None,
    )


def period_start(period: Period, day: dt.date) -> dt.date | None:
    """The first day of the ``period`` window holding ``day``: the day itself, the Monday of its ISO week, the first
    of its month; ``None`` for ``all`` (no start).

    Raises:
        InvalidInputError: an unknown period (the message lists the known ones).
    """
    if period == "day":
        return day
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "all":
        return None
    raise InvalidInputError(f"unknown period {period!r}: one of {', '.join(PERIODS)}")


def window(
    initial_balance: Decimal, points: Sequence[DayPoint], period: Period
) -> tuple[Decimal, Sequence[DayPoint], dt.date | None]:
    """The ``period`` window holding the last point: ``(start_equity, its points, its first day)``.

    ``start_equity`` is the last equity before the window, or ``initial_balance`` when the window holds the first
    point; the first day is :func:`period_start` of the last point's day (``None`` for ``all``, or without points).
    """
    if not points:
        return initial_balance, points, None
    start = period_start(period, points[-1].day)
    if start is None:
        return initial_balance, points, None
    k = len(points)
    while k > 0 and points[k - 1].day >= start:
        k -= 1
    base = points[k - 1].equity if k > 0 else initial_balance
    return base, points[k:], start


def window_performance(
    initial_balance: Decimal, points: Sequence[DayPoint], period: Period
) -> tuple[Performance, dt.date | None]:
    """:func:`performance` of the ``period`` :func:`window` holding the last point, with the window's first day."""
    base, inside, start = window(initial_balance, points, period)
    return performance(base, inside), start


def all_windows(
    initial_balance: Decimal, points: Sequence[DayPoint]
) -> list[tuple[Period, Performance, dt.date | None]]:
    """:func:`window_performance` of every period in :data:`PERIODS`, the daily series made once: a window's
    gap-filled series is a suffix of the whole one (its base, the last equity before its first point, is the whole
    series' value on the day before that point), so the numbers are those of :func:`window_performance`.

    Raises:
        InvalidInputError: points not in strictly increasing day order.
    """
    whole = calendar_equity(initial_balance, points)
    out: list[tuple[Period, Performance, dt.date | None]] = []
    for period in PERIODS:
        base, inside, start = window(initial_balance, points, period)
        offset = (inside[0].day - points[0].day).days if inside else whole.size - 1
        out.append((period, _performance(base, inside, whole[offset:], PERIODS_PER_YEAR), start))
    return out
