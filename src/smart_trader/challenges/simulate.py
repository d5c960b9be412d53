"""Monte Carlo estimate of a challenge's pass probability from a list of closed trades (bootstrap).

"What are my odds of passing with this strategy?" — :func:`simulate` answers with the nonparametric bootstrap
(B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman & Hall, 1993): the trader's closed
trades are the empirical distribution of a trade's result, and each run resamples them with replacement into a
synthetic trading history that the real :class:`~smart_trader.challenges.evaluator.ChallengeEvaluator` judges
exactly (Decimal, the program's own floors, day boundaries, consistency gate and time limits). The peer approach
is LuxAlgo's prop-firm-sim [R2] (Monte Carlo over resampled trade outcomes against prop-firm rules); unlike a
simulator that re-implements the rules, this one reuses the evaluator, so simulated and live verdicts agree.

Method, per run (``numpy.random.Generator(PCG64(seed))``, one generator for all runs, so a seed reproduces
every run in order):

1. **Days.** Synthetic day ``d`` (``d = 0, 1, ...``) is the ``d``-th consecutive firm day of the program (its
   IANA zone and reset time) starting with the firm day of 2001-01-01; the dates carry no meaning. Only days
   with trades are simulated: days without trades in the original list are not reproduced, so a phase's
   ``max_days`` is counted in trading days (an optimistic reading of a calendar time limit) and inactivity
   never triggers.
2. **Trades per day.** The number of trades ``k`` of a synthetic day is the trade count of an original trading
   day (a day with at least one trade) drawn uniformly at random, i.e. ``k`` follows the empirical
   trades-per-day distribution (``P(k) = share of original trading days with k trades``).
3. **Trades.** The day's ``k`` trades are drawn independently and uniformly, with replacement, from all the
   original trades (the trades of a day are not kept together: their order and any dependence between them
   are not reproduced).
4. **Evaluation.** Trade ``j`` of day ``d`` (0-based) opens ``3j + 1`` seconds after the day's start (a fill
   with ``opened=True``, equity = balance), is valued ``3j + 2`` s after it at ``balance + mae`` when it has a
   negative ``mae``, and closes ``3j + 3`` s after it (balance and equity ``+ pnl``, flat). After the day's
   trades the evaluator is advanced to the next day boundary (day close: EOD trailing floors, trading days
   counted at the close, consistency, time limits). When a soft rule locks the account (e.g. the Apex daily loss
   limit) at a trade's ``mae`` point, the position is flattened there (the trade's result becomes its ``mae``)
   and the day's remaining trades are skipped; a lock at a close also skips them.
5. **Stop.** The run ends once the phase is passed or failed, or after ``max_days`` synthetic days (still
   active).

Without ``mae`` a trade goes straight from its open to its close: floating losses inside trades are not
simulated, so a daily-loss or trailing floor that an open trade would have crossed before recovering is
missed and the pass probability is overstated. ``pnl`` and ``mae`` are in the account currency, ``pnl`` net of
commissions; ``mae`` (maximum adverse excursion) is ``≤ 0``.

Outputs (:class:`SimulationResult`): the passed share with its 95 % Wilson score interval (E. B. Wilson, 1927),
the mean and median number of synthetic days to pass over the passed runs, each breach rule's share of all runs,
and the share still active at the cap.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from smart_trader.challenges.days import DayClock
from smart_trader.challenges.evaluator import ChallengeEvaluator
from smart_trader.challenges.program import Program, to_cents
from smart_trader.challenges.state import Status
from smart_trader.core.errors import InvalidInputError

NS_PER_SECOND = 1_000_000_000
DEFAULT_MAX_DAYS = 250
"""Default cap on synthetic days per run (about a trading year)."""
Z_95 = 1.959963984540054
"""Two-sided 95 % standard normal quantile."""
SYNTHETIC_START = dt.date(2001, 1, 1)
"""Label of the first synthetic firm day (meaningless, fixed for reproducibility)."""
_MAX_TRADES_PER_DAY = 20_000  # 3 s per trade must fit in a 23-hour (DST) firm day before any flat-by time
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class SimTrade:
    """One closed trade of the history being resampled.

    Attributes:
        pnl: realized result, account currency, net of commissions.
        day: the original trading day it belongs to (any hashable label, e.g. a date): used only to build the
            trades-per-day distribution.
        mae: maximum adverse excursion, account currency, ``≤ 0``; ``None`` when unknown (no floating loss).
    """

    pnl: Decimal
    day: Hashable
    mae: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Summary of :func:`simulate` (shares are fractions of ``runs``; days are synthetic trading days)."""

    program: str
    phase: str
    size: Decimal
    runs: int
    seed: int
    max_days: int
    trades: int
    trading_days: int
    trades_per_day: dict[int, float]
    passed: int
    passed_share: float
    passed_ci95: tuple[float, float]
    days_to_pass_mean: float | None
    days_to_pass_median: float | None
    breach_causes: dict[str, float]
    active_share: float
    with_mae: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (floats rounded to 6 decimals, the account size as a decimal string)."""
        return {
            "program": self.program,
            "phase": self.phase,
            "size": str(self.size),
            "runs": self.runs,
            "seed": self.seed,
            "max_days": self.max_days,
            "trades": self.trades,
            "trading_days": self.trading_days,
            "trades_per_day": {str(k): _r(v) for k, v in sorted(self.trades_per_day.items())},
            "passed": {
                "runs": self.passed,
                "share": _r(self.passed_share),
                "ci95": [_r(self.passed_ci95[0]), _r(self.passed_ci95[1])],
            },
            "days_to_pass": None
            if self.days_to_pass_mean is None
            else {"mean": _r(self.days_to_pass_mean), "median": _r(self.days_to_pass_median or 0.0)},
            "breach_causes": {rule: _r(share) for rule, share in sorted(self.breach_causes.items())},
            "active_share": _r(self.active_share),
            "floating_losses_simulated": self.with_mae,
        }


def _r(value: float) -> float:
    return round(value, 6)


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``successes / n`` (default 95 %).

    Raises:
        InvalidInputError: ``n < 1`` or ``successes`` outside ``0..n``.
    """
    if n < 1 or not 0 <= successes <= n:
        raise InvalidInputError(f"wilson_interval needs 0 <= successes <= n and n >= 1, got {successes}/{n}")
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, center - half)  # exact ends: the interval touches 0 (or 1) there
    high = 1.0 if successes == n else min(1.0, center + half)
    return low, high


@dataclass(frozen=True, slots=True)
class _RunOutcome:
    status: Status
    days: int
    rule: str | None


def _status(evaluator: ChallengeEvaluator) -> Status:
    return evaluator.status  # a call, so type narrowing does not outlive the evaluator's next input


def _one_run(
    program: Program,
    phase_index: int,
    size: Decimal,
    pnls: Sequence[Decimal],
    maes: Sequence[Decimal | None],
    counts: np.ndarray[Any, np.dtype[np.int64]],
    rng: np.random.Generator,
    clock: DayClock,
    max_days: int,
) -> _RunOutcome:
    start = clock.start_of(SYNTHETIC_START)
    evaluator = ChallengeEvaluator(program, phase_index, size, start)
    balance = to_cents(size)
    done = (Status.PASSED, Status.FAILED)
    one_day = dt.timedelta(days=1)
    for d in range(max_days):
        day_start = clock.start_of(SYNTHETIC_START + d * one_day)
        k = int(counts[rng.integers(len(counts))])
        picks = rng.integers(len(pnls), size=k)
        for j, index in enumerate(picks.tolist()):
            if _status(evaluator) is not Status.ACTIVE:
                break  # passed, failed or locked until the next boundary
            at = day_start + (3 * j + 1) * NS_PER_SECOND
            evaluator.on_fill(at, balance=balance, equity=balance, opened=True, flat=False)
            if _status(evaluator) in done:
                break
            pnl, mae = pnls[index], maes[index]
            if mae is not None and mae < 0:
                evaluator.on_valuation(at + NS_PER_SECOND, balance=balance, equity=balance + mae, flat=False)
                status = _status(evaluator)
                if status in done:
                    break
                if status is Status.LOCKED:
                    pnl = mae  # a soft lock flattens the position where it triggered
            balance = to_cents(balance + pnl)
            evaluator.on_fill(at + 2 * NS_PER_SECOND, balance=balance, equity=balance, opened=False, flat=True)
        if _status(evaluator) not in done:
            evaluator.on_time(clock.start_of(SYNTHETIC_START + (d + 1) * one_day))
        if _status(evaluator) in done:
            breach = evaluator.breach
            return _RunOutcome(_status(evaluator), d + 1, None if breach is None else breach.rule)
    return _RunOutcome(evaluator.status, max_days, None)


def simulate(
    program: Program,
    size: Decimal,
    trades: Sequence[SimTrade],
    *,
    runs: int,
    seed: int | None = None,
    phase_index: int = 0,
    max_days: int = DEFAULT_MAX_DAYS,
) -> SimulationResult:
    """Bootstrap ``runs`` synthetic histories from ``trades`` and judge each with the real evaluator.

    See the module docstring for the exact resampling and timing.

    Args:
        program: the challenge program.
        size: account size (one of ``program.sizes``), account currency.
        trades: the closed trades to resample (at least one).
        runs: number of synthetic histories (≥ 1).
        seed: seed of ``numpy.random.Generator(PCG64(seed))``; ``None`` draws one from the OS (reported in the
            result, so the run can be repeated).
        phase_index: the phase to simulate (0 = first).
        max_days: cap on synthetic days per run (≥ 1); runs neither passed nor failed by then count as active.

    Raises:
        InvalidInputError: no trades, a positive ``mae``, ``runs`` or ``max_days`` < 1, too many trades on one
            original day, an unknown phase or a size the program does not offer.
    """
    if not trades:
        raise InvalidInputError("no trades to resample")
    if runs < 1:
        raise InvalidInputError(f"runs must be >= 1, got {runs}")
    if max_days < 1:
        raise InvalidInputError(f"max_days must be >= 1, got {max_days}")
    if not 0 <= phase_index < len(program.phases):
        raise InvalidInputError(f"program {program.id} has no phase {phase_index}")
    if size not in program.sizes:
        sizes = ", ".join(str(s) for s in program.sizes)
        raise InvalidInputError(f"program {program.id}: account size {size} not offered (sizes: {sizes})")
    for number, trade in enumerate(trades, 1):
        if trade.mae is not None and trade.mae > 0:
            raise InvalidInputError(f"trade {number}: mae must be <= 0 (a loss), got {trade.mae}")
    per_day = Counter(t.day for t in trades)
    busiest = max(per_day.values())
    if busiest > _MAX_TRADES_PER_DAY:
        raise InvalidInputError(f"a day holds {busiest} trades; at most {_MAX_TRADES_PER_DAY} per day are simulated")
    counts = np.array(list(per_day.values()), dtype=np.int64)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy) % 2**63  # type: ignore[arg-type]
    rng = np.random.Generator(np.random.PCG64(seed))
    clock = DayClock(program.tz, program.reset_time)
    pnls = [t.pnl for t in trades]
    maes = [t.mae for t in trades]
    outcomes = [_one_run(program, phase_index, size, pnls, maes, counts, rng, clock, max_days) for _ in range(runs)]
    passed_days = [o.days for o in outcomes if o.status is Status.PASSED]
    failures = Counter(o.rule or "unknown" for o in outcomes if o.status is Status.FAILED)
    active = sum(1 for o in outcomes if o.status in (Status.ACTIVE, Status.LOCKED))
    count_share = Counter(counts.tolist())
    return SimulationResult(
        program=program.id,
        phase=program.phases[phase_index].name,
        size=size,
        runs=runs,
        seed=seed,
        max_days=max_days,
        trades=len(trades),
        trading_days=len(per_day),
        trades_per_day={int(k): n / len(per_day) for k, n in count_share.items()},
        passed=len(passed_days),
        passed_share=len(passed_days) / runs,
        passed_ci95=wilson_interval(len(passed_days), runs),
        days_to_pass_mean=statistics.fmean(passed_days) if passed_days else None,
        days_to_pass_median=float(statistics.median(passed_days)) if passed_days else None,
        breach_causes={rule: n / runs for rule, n in failures.items()},
        active_share=active / runs,
        with_mae=any(t.mae is not None for t in trades),
    )
