"""Bootstrap simulation of a challenge from closed trades: reproducibility, the certain cases (all winners, all
losers, a floating loss, a soft lock) and agreement with the gambler's-ruin closed form."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from smart_trader.challenges import get_program
from smart_trader.challenges.simulate import SimTrade, simulate, wilson_interval
from smart_trader.core.errors import InvalidInputError
from tests.challenges.kit import D


def daily(pnl: str, per_day: int = 1, days: int = 3, mae: str | None = None) -> list[SimTrade]:
    """``days`` original days each holding ``per_day`` identical trades."""
    return [
        SimTrade(D(pnl), day=f"d{d}", mae=None if mae is None else D(mae)) for d in range(days) for _ in range(per_day)
    ]


def test_the_same_seed_gives_the_same_result_and_another_seed_another() -> None:
    trades = [SimTrade(D(v), day=f"d{i % 7}") for i, v in enumerate([900, -700, 1500, -400, 300, -1200, 2000, -50])]
    program = get_program("ftmo-2step")
    first = simulate(program, D(100000), trades, runs=150, seed=2024)
    assert first == simulate(program, D(100000), trades, runs=150, seed=2024)
    assert first.to_dict() != simulate(program, D(100000), trades, runs=150, seed=2025).to_dict()
    assert first.seed == 2024 and first.runs == 150
    total = first.passed_share + sum(first.breach_causes.values()) + first.active_share
    assert math.isclose(total, 1.0)


def test_without_a_seed_the_drawn_seed_is_reported_and_reproduces_the_run() -> None:
    trades = [SimTrade(D(v), day=str(i)) for i, v in enumerate([2500, -2500, 1000])]
    program = get_program("ftmo-2step")
    drawn = simulate(program, D(100000), trades, runs=40)
    assert drawn == simulate(program, D(100000), trades, runs=40, seed=drawn.seed)


@pytest.mark.parametrize(
    ("program_id", "size", "trades", "days"),
    [
        # FTMO 2-Step: target 10 % = 10,000; 4 minimum trading days [S2]
        pytest.param("ftmo-2step", "100000", daily("3000"), 4, id="ftmo-ceil-4"),
        pytest.param("ftmo-2step", "100000", daily("1000"), 10, id="ftmo-ceil-10"),
        pytest.param("ftmo-2step", "100000", daily("6000"), 4, id="ftmo-min-days"),
        pytest.param("ftmo-2step", "100000", daily("1500", per_day=2), 4, id="ftmo-two-a-day"),
        # FundedNext Phase 1: target 8 % of 50,000 = 4,000, 5 minimum trading days
        pytest.param("fundednext-stellar-2step", "50000", daily("700"), 6, id="fundednext-ceil-6"),
        # The5ers: 8 % of 10,000 = 800 and 3 days with profit ≥ 0.5 % (counted at the day close)
        pytest.param("the5ers-high-stakes", "10000", daily("500"), 3, id="the5ers-min-profitable-days"),
    ],
)
def test_all_winners_pass_surely_in_ceil_target_over_daily_profit_days_at_least_the_minimum(
    program_id: str, size: str, trades: list[SimTrade], days: int
) -> None:
    program = get_program(program_id)
    phase = program.phases[0]
    assert phase.profit_target is not None
    target = phase.profit_target.resolve(D(size), D(size))
    per_day = sum(t.pnl for t in trades) / len({t.day for t in trades})
    assert days == max(math.ceil(target / per_day), phase.min_trading_days)  # the expectation, by hand
    result = simulate(program, D(size), trades, runs=25, seed=5)
    assert result.passed_share == 1.0 and result.passed_ci95[1] == 1.0
    assert result.days_to_pass_mean == days and result.days_to_pass_median == days
    assert result.breach_causes == {} and result.active_share == 0.0


def test_the_consistency_gate_delays_a_pass_the_target_alone_would_allow() -> None:
    """Topstep $50K: target $3,000 in one day, but the best day must be ≤ 50 % of the profit [S20]: day 2."""
    result = simulate(get_program("topstep-combine"), D(50000), daily("3000"), runs=10, seed=1)
    assert result.passed_share == 1.0 and result.days_to_pass_mean == 2.0


def test_all_losers_fail_surely_on_the_maximum_loss() -> None:
    """−1,500 twice a day: −3,000 a day stays inside the 5,000 daily loss; the static 90,000 floor breaks on the 7th
    trade (89,500)."""
    result = simulate(get_program("ftmo-2step"), D(100000), daily("-1500", per_day=2), runs=30, seed=9)
    assert result.passed_share == 0.0 and result.breach_causes == {"max_loss": 1.0}
    assert result.days_to_pass_mean is None and result.active_share == 0.0
    assert result.passed_ci95[0] == 0.0


def test_a_floating_loss_beyond_the_daily_limit_fails_winning_trades() -> None:
    """+1,000 trades that went −6,000 against the trader first: equity 94,000 < 95,000 fails the daily loss [S1]."""
    result = simulate(get_program("ftmo-2step"), D(100000), daily("1000", mae="-6000"), runs=20, seed=3)
    assert result.breach_causes == {"daily_loss": 1.0} and result.with_mae
    no_mae = simulate(get_program("ftmo-2step"), D(100000), daily("1000"), runs=20, seed=3)
    assert no_mae.passed_share == 1.0 and not no_mae.with_mae  # without mae the floating loss is not seen


def test_a_soft_lock_flattens_at_the_mae_and_skips_the_rest_of_the_day() -> None:
    """Apex EOD $100K: soft daily loss $1,500, EOD-trailing max loss $3,000 (floor 97,000). Three +100 trades a day
    with mae −2,000: the first one locks the day at 98,000 (flattened there, the others skipped); on day 2 the
    first mae takes equity to 96,000 < 97,000: max loss. Without flattening the trades would end at +100."""
    result = simulate(get_program("apex-eod"), D(100000), daily("100", per_day=3, mae="-2000"), runs=10, seed=4)
    assert result.breach_causes == {"max_loss": 1.0}


def test_a_run_neither_passed_nor_failed_by_the_cap_is_active() -> None:
    result = simulate(get_program("ftmo-2step"), D(100000), daily("0"), runs=5, seed=0, max_days=12)
    assert result.active_share == 1.0 and result.passed_share == 0.0 and result.max_days == 12


def _ruin(start: int, top: int) -> tuple[Fraction, Fraction]:
    """Symmetric ±1 walk on 0..top absorbed at both ends, from ``start``: (P(hit top first),
    E[steps | hit top first]) — the gambler's ruin: start/top and (top² − start²)/3 (Feller, vol. 1, XIV)."""
    return Fraction(start, top), Fraction(top * top - start * start, 3)


def test_agrees_with_the_gamblers_ruin_closed_form() -> None:
    """FTMO $100K with one trade a day of ±2,500 (equally likely): the balance is a ±1 walk in units of 2,500.
    Passed at +4 units (+10,000, and ≥ 4 days holds since +4 needs ≥ 4 steps); failed below the 90,000 floor, i.e.
    at −5 units (−4 units = 90,000 is not below, FTMO breaches only below [S1]); the daily loss of 5,000 is never
    reached by one 2,500 trade. On 0..9 from 5: P(pass) = 5/9, E[days | pass] = (81 − 25)/3 = 56/3."""
    runs = 3000
    trades = [SimTrade(D(2500), day="a"), SimTrade(D(-2500), day="b")]
    result = simulate(get_program("ftmo-2step"), D(100000), trades, runs=runs, seed=20240601)
    p, mean_days = _ruin(5, 9)
    low, high = result.passed_ci95
    assert low <= float(p) <= high
    assert result.breach_causes == {"max_loss": pytest.approx(1 - result.passed_share)}
    # the conditional duration's standard deviation is 15.85 (exact, from the chain): 4 standard errors
    assert result.days_to_pass_mean == pytest.approx(float(mean_days), abs=4 * 15.85 / math.sqrt(result.passed))


def test_wilson_interval_known_values() -> None:
    """Wilson (1927) 95 % intervals: 0/10 → [0, 0.2775]; 5/10 → [0.2366, 0.7634]; 10/10 → [0.7225, 1]."""
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.27753, abs=1e-5))
    assert wilson_interval(5, 10) == (pytest.approx(0.23659, abs=1e-5), pytest.approx(0.76341, abs=1e-5))
    assert wilson_interval(10, 10) == (pytest.approx(0.72247, abs=1e-5), 1.0)
    with pytest.raises(InvalidInputError):
        wilson_interval(3, 2)


@pytest.mark.parametrize(
    ("trades", "kwargs", "needle"),
    [
        ([], {}, "no trades"),
        (daily("1", mae="5"), {}, "trade 1: mae must be <= 0"),
        (daily("1"), {"runs": 0}, "runs must be >= 1"),
        (daily("1"), {"max_days": 0}, "max_days must be >= 1"),
        (daily("1"), {"size": D(12345)}, "account size 12345 not offered"),
        (daily("1"), {"phase_index": 7}, "has no phase 7"),
    ],
)
def test_bad_input_is_refused(trades: list[SimTrade], kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {"runs": 3, "seed": 1} | kwargs
    size = args.pop("size", D(100000))
    with pytest.raises(InvalidInputError, match=needle):
        simulate(get_program("ftmo-2step"), size, trades, **args)  # type: ignore[arg-type]
