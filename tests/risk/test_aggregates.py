"""Risk aggregates for Prometheus (``risk/aggregates.py``): a bounded number of series whatever the number of
accounts."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import CollectorRegistry

from smart_trader.risk.aggregates import REGISTRY, RiskGauges, publish

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

    publish(var_95=values, drawdown={"a": D("0.1"), "b": D("0.3")}, gauges=gauges)

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
    publish(var_95={"a": D(1), "b": D(2), "c": D(3)}, gauges=gauges)
    publish(var_95={"a": D(1)}, gauges=gauges)
    assert samples(registry, "portfolio_var_95_top") == {(("rank", "1"),): 1.0}
    publish(var_95={}, gauges=gauges)
    assert samples(registry, "portfolio_var_95_top") == {} and samples(registry, "portfolio_var_95") == {}


def test_the_module_gauges_have_their_own_registry() -> None:
    names = {m.name for m in REGISTRY.collect()}
    assert names == {"portfolio_var_95", "portfolio_var_95_top", "portfolio_drawdown", "portfolio_drawdown_top"}
