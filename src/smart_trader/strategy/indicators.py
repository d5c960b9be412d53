"""Technical indicators, computed the same way in a backtest (whole series at once) and live (one value
at a time): each indicator has ``compute(values)`` for a series and ``update(value)`` for a stream, and
both give bit-identical numbers (tested), so a strategy decides the same in both.

Indicators are statistics of prices, computed in float64; orders and money stay exact Decimals.
Values before the indicator has enough data are NaN.
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

    def compute(self, values: FloatArray) -> FloatArray:
        """Indicator series for a whole input series (same length; NaN during warm-up)."""
        ...

    def update(self, value: float) -> float:
        """Feed one new value; return the indicator's current value (NaN during warm-up)."""
        ...


def _check_period(period: int) -> None:
    if period < 1:
        raise InvalidInputError(f"indicator period must be >= 1, got {period}")


class SMA:
    """Simple moving average of the last ``period`` values: mean(x[t-period+1 .. t]).

    Each value is ``numpy.mean`` of its own window in both modes (no running sum), so batch and
    stream agree to the bit.
    """

    def __init__(self, period: int) -> None:
        _check_period(period)
        self.period = period
        self.name = f"sma_{period}"
        self._window: deque[float] = deque(maxlen=period)

    def compute(self, values: FloatArray) -> FloatArray:
        """SMA series of ``values``."""
        out = np.full(len(values), np.nan)
        if len(values) >= self.period:
            windows = np.lib.stride_tricks.sliding_window_view(values, self.period)
            out[self.period - 1 :] = windows.mean(axis=1)
        return out

    def update(self, value: float) -> float:
        """Next SMA value."""
        self._window.append(value)
        if len(self._window) < self.period:
            return float("nan")
        return float(np.mean(np.fromiter(self._window, dtype=np.float64, count=self.period)))


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

    def compute(self, values: FloatArray) -> FloatArray:
        """RSI series of ``values`` (the stream recurrence applied over the series)."""
        fresh = RSI(self.period)
        return np.fromiter((fresh.update(float(v)) for v in values), dtype=np.float64, count=len(values))

    def update(self, value: float) -> float:
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

    def compute(self, values: FloatArray) -> FloatArray:
        """Signal series (+1, −1, 0) of ``values``."""
        return self._signal(self.fast.compute(values), self.slow.compute(values))

    def update(self, value: float) -> float:
        """Signal for the newest value."""
        f, s = self.fast.update(value), self.slow.update(value)
        prev, self._prev = self._prev, (f, s)
        if prev is None:
            return 0.0
        return float(self._signal(np.array([prev[0], f]), np.array([prev[1], s]))[1])
