"""Value at risk: the loss over one period (a day, for daily returns) that is exceeded with probability 1 − c
(c = 0.95: one day in twenty), in the account currency, a positive number being a loss.

Both estimates start from the series of simple returns ``r_t = V_t / V_{t−1} − 1`` of the account's equity and
scale to the current equity ``V`` (Jorion, *Value at Risk*, 3rd ed., 2007, ch. 5; RiskMetrics — Technical Document,
4th ed., J.P. Morgan/Reuters 1996, §6):

- **historical** (historical simulation, Jorion §10.2): ``VaR = −Q(1 − c) × V``, ``Q`` the empirical quantile of the
  observed returns with the inverse of the empirical distribution function, ``Q(p) = min{r : F_n(r) ≥ p}`` — the
  ``ceil(n p)``-th smallest return (Hyndman & Fan 1996, definition 1; ``numpy.quantile(..., method="inverted_cdf")``).
  With 250 returns the 5 % quantile is the 13th worst day, a loss that actually happened.
- **parametric** (variance–covariance, normal returns, Jorion §5.2): ``VaR = (z σ − μ) × V`` with ``μ`` the mean,
  ``σ`` the sample standard deviation (n − 1) of the returns and ``z = Φ⁻¹(c)`` (1.6449 for c = 0.95). RiskMetrics
  sets ``μ = 0``; keeping it makes the estimate the same quantile of the fitted normal the historical one is of the
  data (``−norm.ppf(1 − c, μ, σ) × V``).

A negative VaR means even the quantile return was a gain. Arithmetic is decimal (``VAR_CONTEXT``, 34 significant
digits); ``z`` comes from :class:`statistics.NormalDist` (binary floating point, 17 significant digits).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Context, Decimal
from itertools import pairwise
from statistics import NormalDist

from smart_trader.core.errors import InvalidInputError

VAR_CONTEXT = Context(prec=34)
"""The decimal context of the estimates (returns, mean, variance, square root)."""

CONFIDENCE_95 = Decimal("0.95")
VAR_WINDOW_RETURNS = 250
"""Daily returns a VaR rests on at most: about a year of trading days (Basel's minimum observation period for
historical VaR)."""
VAR_MIN_RETURNS = 20
"""Fewer daily returns than this and no VaR is given: the 5 % tail of 20 returns is already a single day."""


def z_score(confidence: Decimal) -> Decimal:
    """``Φ⁻¹(confidence)`` of the standard normal (1.6448536269514722 for 0.95).

    Raises:
        InvalidInputError: ``confidence`` not strictly between 0 and 1.
    """
    _check_confidence(confidence)
    return Decimal(repr(NormalDist().inv_cdf(float(confidence))))


def simple_returns(values: Sequence[Decimal]) -> list[Decimal]:
    """``V_t / V_{t−1} − 1`` of consecutive values (equity in the account currency; a price works too).

    Raises:
        InvalidInputError: a value the next return divides by is not positive (an account wiped out has no return).
    """
    out: list[Decimal] = []
    for prev, cur in pairwise(values):
        if prev <= 0:
            raise InvalidInputError(f"a return needs a positive starting value, got {prev}")
        out.append(VAR_CONTEXT.subtract(VAR_CONTEXT.divide(cur, prev), Decimal(1)))
    return out


def empirical_quantile(values: Sequence[Decimal], p: Decimal) -> Decimal:
    """The ``p`` quantile of ``values`` by the inverse empirical distribution function: the ``ceil(n p)``-th smallest
    (the smallest for ``p`` = 0) — Hyndman & Fan definition 1, ``numpy.quantile(method="inverted_cdf")``. Exact: one
    of the values.

    Raises:
        InvalidInputError: no values, or ``p`` outside [0, 1].
    """
    if not values:
        raise InvalidInputError("the quantile of no values is undefined")
    if not 0 <= p <= 1:
        raise InvalidInputError(f"a quantile needs 0 <= p <= 1, got {p}")
    ordered = sorted(values)
    k = int((len(ordered) * p).to_integral_value(ROUND_CEILING))
    return ordered[max(k, 1) - 1]


def historical_var(returns: Sequence[Decimal], value: Decimal, confidence: Decimal = CONFIDENCE_95) -> Decimal:
    """Historical-simulation VaR of ``value`` (account currency): ``−Q(1 − confidence) × value`` (module docstring).

    Raises:
        InvalidInputError: no returns, or ``confidence`` not strictly between 0 and 1.
    """
    _check_confidence(confidence)
    q = empirical_quantile(returns, 1 - confidence)
    return VAR_CONTEXT.multiply(-q, value)


def mean_and_stdev(returns: Sequence[Decimal]) -> tuple[Decimal, Decimal]:
    """Mean and sample standard deviation (divisor n − 1) of ``returns``.

    Raises:
        InvalidInputError: fewer than two returns.
    """
    n = len(returns)
    if n < 2:
        raise InvalidInputError(f"a standard deviation needs at least 2 returns, got {n}")
    ctx = VAR_CONTEXT
    mean = ctx.divide(sum(returns, Decimal(0)), Decimal(n))
    squares = sum((ctx.power(ctx.subtract(r, mean), 2) for r in returns), Decimal(0))
    return mean, ctx.sqrt(ctx.divide(squares, Decimal(n - 1)))


def parametric_var(returns: Sequence[Decimal], value: Decimal, confidence: Decimal = CONFIDENCE_95) -> Decimal:
    """Variance–covariance VaR of ``value`` (account currency) under normal returns: ``(z σ − μ) × value`` (module
    docstring).

    Raises:
        InvalidInputError: fewer than two returns, or ``confidence`` not strictly between 0 and 1.
    """
    mean, stdev = mean_and_stdev(returns)
    z = z_score(confidence)
    return VAR_CONTEXT.multiply(VAR_CONTEXT.subtract(VAR_CONTEXT.multiply(z, stdev), mean), value)


@dataclass(frozen=True, slots=True)
class VarEstimate:
    """Both VaR estimates of one series (account currency, positive = loss), the number of returns they rest on, the
    value they scale (the last of the series) and the confidence."""

    historical: Decimal
    parametric: Decimal
    observations: int
    value: Decimal
    confidence: Decimal = CONFIDENCE_95


def var_of_values(values: Sequence[Decimal], confidence: Decimal = CONFIDENCE_95) -> VarEstimate:
    """Historical and parametric VaR of a series of values (one per period: daily closes of equity give one-day VaR),
    scaled to its last value.

    Raises:
        InvalidInputError: fewer than three values (two returns), a non-positive value a return divides by, or
            ``confidence`` not strictly between 0 and 1.
    """
    returns = simple_returns(values)
    if len(returns) < 2:
        raise InvalidInputError(f"VaR needs at least 3 values (2 returns), got {len(values)}")
    value = values[-1]
    return VarEstimate(
        historical_var(returns, value, confidence),
        parametric_var(returns, value, confidence),
        len(returns),
        value,
        confidence,
    )


class DailyCloses:
    """One account's equity at the close of its latest UTC days, kept in memory as the market clock moves on, and the
    one-day 95 % historical VaR they give as a fraction of equity (``−Q(5 %)`` of the daily returns: the historical VaR
    of an equity of 1; :func:`historical_var`).

    Each observation is the account's equity at some time of a UTC day (``day`` = ns UTC // ``NS_PER_DAY``): the last
    one seen in a day becomes that day's close when a later day is observed. Only closed days count (the day in
    progress moves with every price, its VaR would too), so the VaR is computed once per day change and cached.

    Args:
        closes: ``(day, equity)`` of past days, oldest first (the stored snapshots' daily closes,
            :func:`smart_trader.risk.store.daily_close_points`); a last point of ``today`` or later is taken as the
            day in progress.
        today: the UTC day now (market clock).
        window: returns kept at most (``window + 1`` closes).
        min_returns: fewer returns than this give no VaR.
    """

    __slots__ = ("_var", "_var_known", "closes", "day", "last", "min_returns")

    def __init__(
        self,
        closes: Iterable[tuple[int, Decimal]] = (),
        today: int | None = None,
        window: int = VAR_WINDOW_RETURNS,
        min_returns: int = VAR_MIN_RETURNS,
    ) -> None:
        points = list(closes)
        self.day: int | None = None  # the UTC day of ``last``
        self.last: Decimal | None = None  # the latest equity of that day
        if points and today is not None and points[-1][0] >= today:
            self.day, self.last = points.pop()
        self.closes: deque[Decimal] = deque((e for _d, e in points), maxlen=window + 1)
        self.min_returns = min_returns
        self._var: Decimal | None = None
        self._var_known = False

    def observe(self, day: int, equity: Decimal) -> None:
        """The account's ``equity`` (account currency) at a time of UTC ``day``; a later day closes the previous one
        at its last observed equity."""
        if self.day is not None and day > self.day and self.last is not None:
            self.closes.append(self.last)
            self._var_known = False
        if self.day is None or day >= self.day:
            self.day, self.last = day, equity

    @property
    def var_95(self) -> Decimal | None:
        """The historical one-day 95 % VaR of the closed days as a fraction of equity (positive = loss), or ``None``
        with fewer than ``min_returns`` returns or a close ≤ 0 a return divides by."""
        if not self._var_known:
            self._var_known = True
            self._var = None
            if len(self.closes) > self.min_returns:
                try:
                    returns = simple_returns(list(self.closes))
                except InvalidInputError:
                    returns = []
                if len(returns) >= self.min_returns:
                    self._var = historical_var(returns, Decimal(1))
        return self._var


def _check_confidence(confidence: Decimal) -> None:
    if not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must be strictly between 0 and 1, got {confidence}")
