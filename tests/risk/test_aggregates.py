"""Risk aggregates for Prometheus (``risk/aggregates.py``): a bounded number of series whatever the number of
accounts."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import REGISTRY, CollectorRegistry

from smart_trader.ops.metrics import RISK_GAUGES
from smart_trader.risk.aggregates import RiskGauges, publish

D = Decimal


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name == name
    }


def test_stats_and_top_n_of_many_accounts_are_a_bounded_set_of_series() -> None:
    registry = CollectorRegistry()
    gauges = RiskGauges(registry, top_n=3)
    values = {f"acct-{i}": D(i) / 1000 for i in range(1, 50_001)}  # 0.001 .. 50

    publish(gauges, var_95=values, drawdown={"a": D("0.1"), "b": D("0.3")})

    var = samples(registry, "portfolio_var_95")
    assert var == {
        (("stat", "max"),): 50.0,
        (("stat", "mean"),): 25.0005,
        (("stat", "p50"),): 25.0,  # the 25,000th smallest of 50,000
        (("stat", "p95"),): 47.5,
    }
    assert samples(registry, "portfolio_var_95_top") == {
        (("rank", "1"),): 50.0,
        (("rank", "2"),): 49.999,
        (("rank", "3"),): 49.998,
    }
    assert samples(registry, "portfolio_drawdown_top") == {(("rank", "1"),): 0.3, (("rank", "2"),): 0.1}
    assert samples(registry, "portfolio_drawdown")[(("stat", "p50"),)] == 0.1


def test_fewer_accounts_remove_the_ranks_left_over_and_none_remove_every_series() -> None:
    registry = CollectorRegistry()
    gauges = RiskGauges(registry, top_n=3)
    publish(gauges, var_95={"a": D(1), "b": D(2), "c": D(3)})
    publish(gauges, var_95={"a": D(1)})
    assert samples(registry, "portfolio_var_95_top") == {(("rank", "1"),): 1.0}
    publish(gauges, var_95={})
    assert samples(registry, "portfolio_var_95_top") == {} and samples(registry, "portfolio_var_95") == {}


def test_the_platforms_gauges_are_in_the_default_registry_under_these_names_only() -> None:
    """``/metrics`` renders the default registry: the aggregates are there, and no other collector holds their names
    (the old unlabelled ``portfolio_drawdown`` gauge is gone)."""
    names = {"portfolio_var_95", "portfolio_var_95_top", "portfolio_drawdown", "portfolio_drawdown_top"}
    ours = {m.name for g in (RISK_GAUGES.var_95, RISK_GAUGES.drawdown) for c in (g.stats, g.top) for m in c.collect()}
    assert ours == names
    owners = [m for m in REGISTRY.collect() if m.name in names]
    assert len(owners) == 4 and all(not s.labels.keys() - {"stat", "rank"} for m in owners for s in m.samples)
