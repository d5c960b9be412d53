"""Backtest chart, written as a PNG: the traded price with entries and exits (when prices are given), the equity
curve beside a buy-and-hold benchmark of the same price, and the drawdown under water in percent.

Uses matplotlib's object API with the Agg canvas directly (no pyplot, no global backend switch,
no display needed), so it is safe in servers, workers and tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from smart_trader.analytics.stats import RoundTrip, drawdown
from smart_trader.core.errors import InvalidInputError

WIDTH_PX = 1200
HEIGHT_PX = 700
DPI = 100

_EQUITY_COLOR = "#1f5fa8"
_DRAWDOWN_COLOR = "#c0392b"
_PRICE_COLOR = "0.25"
_BENCHMARK_COLOR = "#e67e22"
_ENTRY_COLOR = "#1e8449"
_EXIT_COLOR = "#c0392b"
WITH_PRICE_HEIGHT_PX = 950


def write_chart(
    path: Path,
    ts_ns: npt.NDArray[np.int64],
    equity: npt.NDArray[np.float64],
    *,
    title: str,
    price_ts: npt.NDArray[np.int64] | None = None,
    prices: Sequence[float] | npt.NDArray[np.float64] | None = None,
    round_trips: Sequence[RoundTrip] = (),
) -> Path:
    """Write the backtest chart as a PNG: 1200×700 px with the equity curve (top) and the drawdown under water in %
    (bottom); with ``prices``, 1200×950 px with a price panel on top (entries ▲ green for longs / ▼ for shorts,
    exits ✕ red, from ``round_trips``) and a buy-and-hold benchmark beside the equity (the starting equity put
    into the instrument at the first price, marked at each price).

    Args:
        path: file to write; parent folders are created. Overwritten if it exists.
        ts_ns: shape ``(n,)`` int64, time of each point, ns since the epoch (UTC), ascending.
        equity: shape ``(n,)`` float64, equity at each point (quote currency).
        title: chart title.
        price_ts: shape ``(m,)`` int64, time of each price (ns UTC, a bar's open time), ascending.
        prices: shape ``(m,)`` float64, the traded instrument's close prices (quote currency).
        round_trips: closed trades whose entries and exits are marked on the price.

    Returns:
        ``path``.

    Raises:
        InvalidInputError: arrays not one-dimensional, of different lengths, or empty; ``prices`` without
            ``price_ts`` or of another length.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != eq.shape:
        raise InvalidInputError(f"ts_ns {ts.shape} and equity {eq.shape} must be one-dimensional of the same length")
    if ts.size == 0:
        raise InvalidInputError("cannot chart an empty equity curve")
    px_ts = px = None
    if prices is not None:
        if price_ts is None:
            raise InvalidInputError("prices need price_ts")
        px_ts, px = np.asarray(price_ts, dtype=np.int64), np.asarray(prices, dtype=np.float64)
        if px_ts.ndim != 1 or px_ts.shape != px.shape or px.size == 0:
            raise InvalidInputError(f"price_ts {px_ts.shape} and prices {px.shape}: one-dimensional, same length")

    dates = ts.astype("datetime64[ns]")
    under_water = -100.0 * drawdown(eq)

    height = HEIGHT_PX if px is None else WITH_PRICE_HEIGHT_PX
    fig = Figure(figsize=(WIDTH_PX / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    if px is None or px_ts is None:
        ax_eq, ax_dd = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    else:
        ax_px, ax_eq, ax_dd = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [2.6, 2.2, 1.1]})
        _price_panel(ax_px, px_ts, px, round_trips)
    fig.suptitle(title, fontsize=15, fontweight="bold")
    ax_eq.set_title(_summary(eq, under_water), loc="left", fontsize=10, color="0.3")

    marker = "o" if ts.size == 1 else None
    ax_eq.plot(dates, eq, color=_EQUITY_COLOR, linewidth=1.4, marker=marker, label="strategy equity")
    if px is not None and px_ts is not None and px[0] > 0:
        benchmark = eq[0] * px / px[0]
        ax_eq.plot(
            px_ts.astype("datetime64[ns]"), benchmark, color=_BENCHMARK_COLOR, linewidth=1.0, alpha=0.9,
            label="buy and hold",
        )  # fmt: skip
    ax_eq.axhline(eq[0], color="0.45", linewidth=0.8, linestyle="--", label="starting equity")
    ax_eq.set_ylabel("Equity", fontsize=11)
    ax_eq.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"))
    ax_eq.grid(True, alpha=0.3)
    ax_eq.legend(loc="best", fontsize=9, framealpha=0.85)

    ax_dd.fill_between(
        dates,
        under_water,
        0.0,
        color=_DRAWDOWN_COLOR,
        alpha=0.35,
        linewidth=0,
    )
    ax_dd.plot(dates, under_water, color=_DRAWDOWN_COLOR, linewidth=1.0, marker=marker)
    ax_dd.set_ylabel("Drawdown", fontsize=11)
    low = float(under_water.min())
    ax_dd.yaxis.set_major_formatter(PercentFormatter(decimals=1 if low > -10 else 0))
    ax_dd.set_ylim(min(low * 1.1, -1.0), 0.0)
    ax_dd.grid(True, alpha=0.3)
    ax_dd.set_xlabel("Date (UTC)", fontsize=11)

    locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]  # untyped in matplotlib's stubs
    ax_dd.xaxis.set_major_locator(locator)
    ax_dd.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
    if ts.size > 1:
        ax_dd.set_xlim(dates[0], dates[-1])
    else:
        day = np.timedelta64(1, "D")
        ax_dd.set_xlim(dates[0] - day, dates[0] + day)

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def _price_panel(
    ax: Axes, price_ts: npt.NDArray[np.int64], prices: npt.NDArray[np.float64], round_trips: Sequence[RoundTrip]
) -> None:
    """The price line with entry and exit markers (entries green ▲ long / ▼ short, exits red ✕)."""
    ax.plot(price_ts.astype("datetime64[ns]"), prices, color=_PRICE_COLOR, linewidth=1.0, label="price (close)")
    for side, symbol in (("long", "^"), ("short", "v")):
        trips = [t for t in round_trips if t.side == side]
        if trips:
            ax.scatter(
                np.array([t.entry_ts for t in trips], dtype="datetime64[ns]"),
                [float(t.entry_price) for t in trips],
                marker=symbol, color=_ENTRY_COLOR, s=36, zorder=3, label=f"{side} entry",
            )  # fmt: skip
    if round_trips:
        ax.scatter(
            np.array([t.exit_ts for t in round_trips], dtype="datetime64[ns]"),
            [float(t.exit_price) for t in round_trips],
            marker="x", color=_EXIT_COLOR, s=36, zorder=3, label="exit",
        )  # fmt: skip
    ax.set_ylabel("Price", fontsize=11)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.4g}"))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9, framealpha=0.85)


def _summary(equity: npt.NDArray[np.float64], under_water: npt.NDArray[np.float64]) -> str:
    """One line above the equity panel: start → end equity, total return and max drawdown."""
    first, last = float(equity[0]), float(equity[-1])
    change = f"{(last / first - 1) * 100:+.2f} %" if first > 0 else "n/a"
    return (
        f"{first:,.2f} → {last:,.2f}   return {change}   "
        f"max drawdown {-float(under_water.min()):.2f} %   {equity.size:,} point{'s' if equity.size != 1 else ''}"
    )
