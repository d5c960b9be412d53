"""Performance statistics of a backtest: returns, risk ratios, drawdowns and trade statistics.

Conventions (each function says its source):

- **Returns** are simple per-bar returns of the equity curve, ``r_i = E_i / E_{i-1} - 1``
  (``n`` equity points give ``n - 1`` returns).
- **Annualization** multiplies a per-bar mean by ``P`` and a per-bar standard deviation by
  ``sqrt(P)``, where ``P = periods_per_year`` (see :func:`periods_per_year`). This is the
  arithmetic convention of Sharpe (1994) and of empyrical/pyfolio; backtesting.py instead
  compounds a geometric mean daily return (see ``tests/analytics/test_stats.py`` for the side by side).
- **Drawdowns** are measured from the running high-water mark ``H_i = max(E_0..E_i)`` as the
  positive fraction ``1 - E_i / H_i``.
- Statistics that are undefined for the input (no trades, a single bar, zero standard deviation,
  no losing trade...) are ``None``, never NaN or infinity, so :meth:`Stats.to_dict` is always
  valid strict JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from smart_trader.core.clock import NS_PER_SECOND, SECONDS_PER_DAY, ns_to_datetime
from smart_trader.core.errors import InvalidInputError

Side = Literal["long", "short"]

DAYS_PER_YEAR = 365.25
"""Length of a year for CAGR (Julian year, as backtesting.py and most references use)."""

_ZERO_STD = 1e-12
"""Per-bar standard deviations at or below this are rounding noise: the ratio that divides by it is ``None``."""


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One closed trade, from the fill that opened the position to the fill that closed it.

    Attributes:
        instrument_id: the instrument traded.
        side: ``"long"`` or ``"short"``.
        quantity: size traded (> 0, in the instrument's units).
        entry_ts: time of the opening fill, ns since the epoch (UTC).
        exit_ts: time of the closing fill, ns since the epoch (UTC); ``>= entry_ts``.
        entry_price: average entry price (quote currency).
        exit_price: average exit price (quote currency).
        pnl: realized P&L in the quote currency, after commission.
        commission: total commission paid on both fills (quote currency, >= 0).

    Raises:
        InvalidInputError: unknown side, non-positive quantity or exit before entry.
    """

    instrument_id: str
    side: Side
    quantity: Decimal
    entry_ts: int
    exit_ts: int
    entry_price: Decimal
    exit_price: Decimal
    pnl: Decimal
    commission: Decimal

    def __post_init__(self) -> None:
        if self.side not in ("long", "short"):
            raise InvalidInputError(f"round trip side {self.side!r} is not 'long' or 'short'")
        if self.quantity <= 0:
            raise InvalidInputError(f"round trip quantity {self.quantity} must be > 0")
        if self.exit_ts < self.entry_ts:
            raise InvalidInputError(f"round trip exit_ts {self.exit_ts} is before entry_ts {self.entry_ts}")


@dataclass(frozen=True, slots=True)
class Stats:
    """Performance statistics of one backtest run; build it with :func:`compute_stats`.

    Fractions are plain fractions (``0.12`` is 12 %). ``None`` means "undefined for this run".
    Money fields are exact :class:`Decimal` in the quote currency, taken from the ledger.

    Attributes:
        total_return: ``final_equity / starting_equity - 1``.
        cagr: compound annual growth rate over first..last timestamp (years of 365.25 days).
        annualized_volatility: ``std(r, ddof=1) * sqrt(P)``.
        sharpe: annualized Sharpe ratio (Sharpe 1994).
        sortino: annualized Sortino ratio, target 0 (Sortino & Price 1994).
        max_drawdown: largest fall from the high-water mark, positive fraction (0.0 if never under water).
        max_drawdown_duration_seconds: longest time from a high-water mark to the recovery of it, or to the
            last bar when it was never recovered (seconds).
        max_drawdown_duration_bars: the same episode counted in bars (index of recovery − index of peak).
        max_drawdown_duration_days: ``max_drawdown_duration_seconds`` in days of 86,400 s (what traders read).
        win_rate: fraction of round trips with ``pnl > 0``.
        profit_factor: gross profit / gross loss; ``None`` when there is no losing trade (it would be infinite).
        exposure: fraction of bars with an open position.
        number_of_trades: number of round trips.
        bars_processed: bars the engine processed.
        run_seconds: wall-clock time of the run.
        bars_per_second: ``bars_processed / run_seconds``.
        start: time of the first equity point (UTC).
        end: time of the last equity point (UTC).
        starting_equity: equity before the first bar, from the ledger.
        final_equity: equity after the last bar, from the ledger.
        avg_trade_pnl: mean round-trip P&L.
        best_trade: largest round-trip P&L.
        worst_trade: smallest round-trip P&L.
    """

    total_return: float | None
    cagr: float | None
    annualized_volatility: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    max_drawdown_duration_seconds: float
    max_drawdown_duration_bars: int
    max_drawdown_duration_days: float
    win_rate: float | None
    profit_factor: float | None
    exposure: float | None
    number_of_trades: int
    bars_processed: int
    run_seconds: float
    bars_per_second: float | None
    start: datetime | None
    end: datetime | None
    starting_equity: Decimal
    final_equity: Decimal
    avg_trade_pnl: Decimal | None
    best_trade: Decimal | None
    worst_trade: Decimal | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping, keys in field order.

        Decimals become strings (exact), datetimes ISO 8601 strings with ``+00:00``, floats stay
        floats; ``None`` stays ``None`` (JSON ``null``). Never contains NaN or infinity.
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, float) and not math.isfinite(value):
                value = None
            out[f.name] = value
        return out


def periods_per_year(bar_seconds: int, *, trading_days: int = 365, session_seconds: int = SECONDS_PER_DAY) -> float:
    """Number of bars in a year, the ``P`` used to annualize per-bar statistics.

    ``P = trading_days * session_seconds / bar_seconds`` for bars shorter than the session, else
    ``trading_days`` (one bar per trading day). Use ``trading_days=365`` for crypto, which trades
    every day around the clock, and ``trading_days=252`` for equities (the usual count of exchange
    trading days a year); for intraday equity bars also pass the session length, e.g.
    ``session_seconds=23_400`` for the 6.5 h NYSE regular session.

    Examples: daily crypto → 365; hourly crypto → 8760; daily equities → 252; 5-minute NYSE → 19 656.

    Raises:
        InvalidInputError: ``bar_seconds`` outside 1..86 400, or non-positive ``trading_days`` / ``session_seconds``.
    """
    if not 1 <= bar_seconds <= SECONDS_PER_DAY:
        raise InvalidInputError(f"bar_seconds {bar_seconds} must be between 1 and {SECONDS_PER_DAY}")
    if trading_days <= 0 or not 0 < session_seconds <= SECONDS_PER_DAY:
        raise InvalidInputError("trading_days must be > 0 and session_seconds between 1 and 86400")
    if bar_seconds >= session_seconds:
        return float(trading_days)
    return trading_days * session_seconds / bar_seconds


def simple_returns(equity: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Simple per-bar returns ``E[1:] / E[:-1] - 1`` (shape ``(n - 1,)``; empty for fewer than 2 points).

    A return after a non-positive equity is undefined and comes out as NaN.
    """
    e = np.asarray(equity, dtype=np.float64)
    if e.size < 2:
        return np.empty(0, dtype=np.float64)
    prev = e[:-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.where(prev > 0, e[1:] / prev - 1.0, np.nan)
    return r


def drawdown(equity: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Drawdown of every point from the running high-water mark, ``1 - E_i / max(E_0..E_i)``.

    Shape ``(n,)``, values in ``[0, 1]`` for positive equity (``> 1`` once equity goes negative);
    0 where equity stands at its high-water mark. Points whose high-water mark is not positive get 0.
    """
    e = np.asarray(equity, dtype=np.float64)
    if e.size == 0:
        return np.empty(0, dtype=np.float64)
    hwm = np.maximum.accumulate(e)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(hwm > 0, 1.0 - e / hwm, 0.0)
    return np.maximum(dd, 0.0)


def max_drawdown_duration(ts_ns: npt.NDArray[np.int64], equity: npt.NDArray[np.float64]) -> tuple[float, int]:
    """Longest drawdown episode as ``(seconds, bars)``.

    An episode starts at a bar where equity stands at its high-water mark and ends at the next bar
    where it is back at (or above) it — the recovery — or at the last bar if it never recovers.
    The episode chosen is the longest in time; ``bars`` counts its steps (recovery index − peak
    index). Same convention as backtesting.py's "Max. Drawdown Duration", except that a drawdown
    that starts on the very last bar counts here (one bar) and is ignored there. ``(0.0, 0)`` when
    equity never goes under water.
    """
    n = len(equity)
    if n < 2:
        return 0.0, 0
    e = np.asarray(equity, dtype=np.float64)
    at_peak = e >= np.maximum.accumulate(e)
    idx = np.flatnonzero(at_peak)  # already sorted and unique
    if idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    episodes = np.diff(idx) > 1  # under water between two consecutive peaks
    episodes[-1] |= not at_peak[-1]  # ... or from the last peak to a last bar still under water
    if not episodes.any():
        return 0.0, 0
    starts, ends = idx[:-1][episodes], idx[1:][episodes]
    ts = np.asarray(ts_ns, dtype=np.int64)
    durations_ns = ts[ends] - ts[starts]
    k = int(np.argmax(durations_ns))
    return float(durations_ns[k]) / NS_PER_SECOND, int(ends[k] - starts[k])


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _return_stats(
    returns: npt.NDArray[np.float64], p: float, risk_free_rate: float
) -> tuple[float | None, float | None, float | None]:
    """``(annualized_volatility, sharpe, sortino)`` of per-bar returns; ``None`` where undefined."""
    if returns.size < 2 or not np.isfinite(returns).all():
        return None, None, None
    rf_per_bar = (1.0 + risk_free_rate) ** (1.0 / p) - 1.0
    with np.errstate(over="ignore", invalid="ignore"):  # absurd curves overflow to inf, reported as None
        std = float(np.std(returns, ddof=1))
        mean_excess = float(np.mean(returns - rf_per_bar))
        downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if not (math.isfinite(std) and math.isfinite(mean_excess) and math.isfinite(downside)):
        return None, None, None
    vol = _finite(std * math.sqrt(p))
    sharpe = _finite(mean_excess / std * math.sqrt(p)) if std > _ZERO_STD else None
    sortino = _finite(mean_excess / downside * math.sqrt(p)) if downside > _ZERO_STD else None
    return vol, sharpe, sortino


def _cagr(total_return: float | None, ts_ns: npt.NDArray[np.int64]) -> float | None:
    """``(1 + total_return) ** (1 / years) - 1`` with years = (last − first timestamp) / 365.25 days."""
    if total_return is None or ts_ns.size < 2:
        return None
    years = float(ts_ns[-1] - ts_ns[0]) / NS_PER_SECOND / (DAYS_PER_YEAR * SECONDS_PER_DAY)
    if years <= 0:
        return None
    growth = 1.0 + total_return
    if growth <= 0:
        return -1.0  # everything (or more) was lost
    try:
        return _finite(growth ** (1.0 / years) - 1.0)
    except OverflowError:
        return None


def _check_inputs(ts: npt.NDArray[np.int64], eq: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_]) -> None:
    if ts.ndim != 1 or eq.ndim != 1 or mask.ndim != 1:
        raise InvalidInputError("ts_ns, equity and exposure_mask must be one-dimensional")
    if not ts.shape == eq.shape == mask.shape:
        raise InvalidInputError(
            f"ts_ns {ts.shape}, equity {eq.shape} and exposure_mask {mask.shape} must have the same length"
        )
    if not np.isfinite(eq).all():
        raise InvalidInputError("equity contains NaN or infinity")
    if ts.size > 1 and (np.diff(ts) < 0).any():
        raise InvalidInputError("ts_ns must be sorted ascending")


def compute_stats(
    ts_ns: npt.NDArray[np.int64],
    equity: npt.NDArray[np.float64],
    round_trips: Sequence[RoundTrip],
    *,
    exposure_mask: npt.NDArray[np.bool_],
    periods_per_year: float,
    bars_processed: int,
    run_seconds: float,
    starting_equity: Decimal,
    final_equity: Decimal,
    risk_free_rate: float = 0.0,
) -> Stats:
    """Performance statistics of an equity curve and its closed trades.

    Args:
        ts_ns: shape ``(n,)`` int64, time of each equity point, ns since the epoch (UTC), ascending.
        equity: shape ``(n,)`` float64, marked-to-market equity at each point (quote currency).
        round_trips: the closed trades of the run.
        exposure_mask: shape ``(n,)`` bool, True where a position was open at that bar.
        periods_per_year: bars per year ``P`` used to annualize (see :func:`periods_per_year`).
        bars_processed: bars the engine processed.
        run_seconds: wall-clock duration of the run.
        starting_equity: equity before the first bar, exact from the ledger.
        final_equity: equity after the last bar, exact from the ledger.
        risk_free_rate: annual risk-free rate as a fraction; turned into a per-bar rate by
            compounding, ``(1 + rf) ** (1 / P) - 1``.

    Formulas (``r`` = simple per-bar returns of ``equity``, ``P`` = periods_per_year):

    - total return = ``final_equity / starting_equity - 1`` (exact Decimal division, then float).
    - CAGR = ``(1 + total return) ** (1 / years) - 1``, years = (last − first ts) / 365.25 days;
      -1.0 when equity ends at or below zero.
    - annualized volatility = ``std(r, ddof=1) * sqrt(P)``.
    - Sharpe = ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(P)`` — Sharpe, W. F. (1994),
      "The Sharpe Ratio", Journal of Portfolio Management 21(1), ex-post ratio annualized by sqrt(P).
    - Sortino = ``mean(r - rf) / DD * sqrt(P)`` with downside deviation over all periods and target 0,
      ``DD = sqrt(mean(min(r, 0) ** 2))`` — Sortino, F. & Price, L. (1994), "Performance Measurement
      in a Downside Risk Framework", Journal of Investing 3(3).
    - max drawdown = ``max(1 - E_i / max(E_0..E_i))`` (see :func:`drawdown`, :func:`max_drawdown_duration`).
    - win rate = share of round trips with ``pnl > 0``; profit factor = ``sum(pnl > 0) / |sum(pnl < 0)|``.
    - exposure = ``mean(exposure_mask)``.

    Undefined values are ``None``: ratios with fewer than two returns, a zero standard deviation
    (Sharpe) or no negative return (Sortino); volatility/Sharpe/Sortino after equity at or below
    zero; trade statistics without trades; profit factor without a losing trade; CAGR over a zero
    time span; total return from a zero starting equity; bars per second for a zero run time.

    Raises:
        InvalidInputError: arrays not one-dimensional or of different lengths, equity not finite,
            timestamps not ascending, or ``periods_per_year`` not positive.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    mask = np.asarray(exposure_mask, dtype=np.bool_)
    _check_inputs(ts, eq, mask)
    if not periods_per_year > 0 or not math.isfinite(periods_per_year):
        raise InvalidInputError(f"periods_per_year {periods_per_year} must be a positive number")

    total_return = float(final_equity / starting_equity - 1) if starting_equity != 0 else None
    vol, sharpe, sortino = _return_stats(simple_returns(eq), periods_per_year, risk_free_rate)
    dd = drawdown(eq)
    dd_seconds, dd_bars = max_drawdown_duration(ts, eq)

    pnls = [t.pnl for t in round_trips]
    n_trades = len(pnls)
    gross_profit = sum((p for p in pnls if p > 0), Decimal(0))
    gross_loss = -sum((p for p in pnls if p < 0), Decimal(0))

    return Stats(
        total_return=total_return,
        cagr=_cagr(total_return, ts),
        annualized_volatility=vol,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=float(dd.max()) if dd.size else 0.0,
        max_drawdown_duration_seconds=dd_seconds,
        max_drawdown_duration_bars=dd_bars,
        max_drawdown_duration_days=dd_seconds / SECONDS_PER_DAY,
        win_rate=sum(1 for p in pnls if p > 0) / n_trades if n_trades else None,
        profit_factor=float(gross_profit / gross_loss) if gross_loss > 0 else None,
        exposure=float(mask.mean()) if mask.size else None,
        number_of_trades=n_trades,
        bars_processed=bars_processed,
        run_seconds=float(run_seconds),
        bars_per_second=_finite(bars_processed / run_seconds) if run_seconds > 0 else None,
        start=ns_to_datetime(int(ts[0])) if ts.size else None,
        end=ns_to_datetime(int(ts[-1])) if ts.size else None,
        starting_equity=starting_equity,
        final_equity=final_equity,
        avg_trade_pnl=sum(pnls, Decimal(0)) / n_trades if n_trades else None,
        best_trade=max(pnls) if pnls else None,
        worst_trade=min(pnls) if pnls else None,
    )
