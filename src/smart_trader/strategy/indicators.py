"""Technical indicators, computed the same way in a backtest (whole series at once) and live (one value
at a time): each indicator has ``compute(values)`` for a series and ``update(value)`` for a stream, and
both give bit-identical numbers (tested), so a strategy decides the same in both.

Indicators are statistics of prices, computed in float64; orders and money stay exact Decimals.
Values before the indicator has enough data are NaN.

``precision``: when the engine knows the input prices are decimals with that many places (it always
does: market data is fixed-point), it passes it, and indicators that can (SMA) compute on the exact
integers: two averages that are equal in exact arithmetic are then equal floats, so a crossover is never
made or missed by a rounding error (with float sums, SMA(10) and SMA(30) of 1M GBP/USD minutes tie
exactly on 506 bars, and float averages get about 200-450 of those crosses wrong).
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

import numpy as np
import numpy.typing as npt

from smart_trader.core.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]


class Indicator(Protocol):
    """A computation over a price series."""

    name: str

    def compute(self, values: FloatArray, precision: int | None = None) -> FloatArray:
        """Indicator series for a whole input series (same length; NaN during warm-up). ``precision``:
        the inputs are decimals with that many places (exact arithmetic where the indicator supports it)."""
        ...

    def update(self, value: float, precision: int | None = None) -> float:
        """Feed one new value; return the indicator's current value (NaN during warm-up)."""
        ...


def _check_period(period: int) -> None:
    if period < 1:
        raise InvalidInputError(f"indicator period must be >= 1, got {period}")


class SMA:
    """Simple moving average of the last ``period`` values: mean(x[t-period+1 .. t]).

    With ``precision`` the window sums are exact integer sums of the fixed-point prices and the value is
    ``(sum / period) / 10**precision`` — one correctly rounded division each, so exactly equal averages
    give equal floats. Without it, each value is ``numpy.mean`` of its window. Batch and stream use the
    same operations, so they agree to the bit.
    """

    def __init__(self, period: int) -> None:
        _check_period(period)
        self.period = period
        self.name = f"sma_{period}"
        self._window: deque[float] = deque(maxlen=period)
        self._raw: deque[int] = deque(maxlen=period)
        self._sum = 0

    def compute(self, values: FloatArray, precision: int | None = None) -> FloatArray:
        """SMA series of ``values``."""
        n = self.period
        out = np.full(len(values), np.nan)
        if len(values) < n:
            return out
        if precision is None:
            out[n - 1 :] = np.lib.stride_tricks.sliding_window_view(values, n).mean(axis=1)
            return out
        scale = 10.0**precision
        raw = np.rint(values * scale).astype(np.int64)
        sums = np.cumsum(raw)
        sums[n:] = sums[n:] - sums[:-n]  # window sums, exact in int64
        out[n - 1 :] = sums[n - 1 :].astype(np.float64) / n / scale
        return out

    def update(self, value: float, precision: int | None = None) -> float:
        """Next SMA value."""
        n = self.period
        if precision is None:
            self._window.append(value)
            if len(self._window) < n:
                return float("nan")
            return float(np.mean(np.fromiter(self._window, dtype=np.float64, count=n)))
        scale = 10.0**precision
        raw = round(value * scale)
        if len(self._raw) == n:
            self._sum -= self._raw[0]
        self._raw.append(raw)
        self._sum += raw
        if len(self._raw) < n:
            return float("nan")
        return float(self._sum) / n / scale


class RSI:
    """Relative Strength Index with Wilder's smoothing (Wilder, *New Concepts in Technical Trading
    Systems*, 1978): RSI = 100 − 100 / (1 + avg_gain / avg_loss), averages seeded with the simple mean
    of the first ``period`` changes, then ``avg = (avg × (period − 1) + x) / period``.
    """

    def __init__(self, period: int = 14) -> None:
        _check_period(period)
        self.period = period
        self.name = f"rsi_{period}"
        self._prev: float | None = None
        self._gains: list[float] = []
        self._losses: list[float] = []
        self._avg_gain = 0.0
        self._avg_loss = 0.0
        self._n = 0

    def compute(self, values: FloatArray, precision: int | None = None) -> FloatArray:
        """RSI series of ``values`` (the stream recurrence applied over the series; float arithmetic)."""
        fresh = RSI(self.period)
        return np.fromiter((fresh.update(float(v)) for v in values), dtype=np.float64, count=len(values))

    def update(self, value: float, precision: int | None = None) -> float:
        """Next RSI value (0..100)."""
        prev, self._prev = self._prev, value
        if prev is None:
            return float("nan")
        change = value - prev
        gain, loss = max(change, 0.0), max(-change, 0.0)
        self._n += 1
        p = self.period
        if self._n < p:
            self._gains.append(gain)
            self._losses.append(loss)
            return float("nan")
        if self._n == p:
            self._gains.append(gain)
            self._losses.append(loss)
            self._avg_gain = sum(self._gains) / p
            self._avg_loss = sum(self._losses) / p
        else:
            self._avg_gain = (self._avg_gain * (p - 1) + gain) / p
            self._avg_loss = (self._avg_loss * (p - 1) + loss) / p
        if self._avg_loss == 0.0:
            return 100.0 if self._avg_gain > 0 else 50.0
        return 100.0 - 100.0 / (1.0 + self._avg_gain / self._avg_loss)


class CrossOver:
    """+1 on the bar where ``fast`` crosses above ``slow``, −1 where it crosses below, else 0.

    A cross up is ``fast > slow`` now and ``fast < slow`` on the previous value (backtesting.py's
    ``lib.crossover``); touching without crossing is not a cross. Both inputs see the same series.
    """

    def __init__(self, fast: Indicator, slow: Indicator) -> None:
        self.fast = fast
        self.slow = slow
        self.name = f"cross_{fast.name}_{slow.name}"
        self._prev: tuple[float, float] | None = None

    @staticmethod
    def _signal(f: FloatArray, s: FloatArray) -> FloatArray:
        out = np.zeros(len(f))
        if len(f) > 1:
            up = (f[1:] > s[1:]) & (f[:-1] < s[:-1])
            down = (f[1:] < s[1:]) & (f[:-1] > s[:-1])
            out[1:] = up.astype(np.float64) - down.astype(np.float64)
        return out

    def compute(self, values: FloatArray, precision: int | None = None) -> FloatArray:
        """Signal series (+1, −1, 0) of ``values``."""
        return self._signal(self.fast.compute(values, precision), self.slow.compute(values, precision))

    def update(self, value: float, precision: int | None = None) -> float:
        """Signal for the newest value."""
        f, s = self.fast.update(value, precision), self.slow.update(value, precision)
        prev, self._prev = self._prev, (f, s)
        if prev is None:
            return 0.0
        return float(self._signal(np.array([prev[0], f]), np.array([prev[1], s]))[1])
