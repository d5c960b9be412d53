"""Risk of every account as a few Prometheus series: aggregates and a top-N, never one series per account.

Why not ``portfolio_var_95{account_id="…"}``: every label value is its own time series, stored and indexed by
Prometheus for as long as it is retained. 50,000 accounts would be 50,000 series per metric — more than most
Prometheus servers are sized for in total — each scraped every 15 s, most of them flat, and every new account a new
series forever (the "high cardinality" warning of the Prometheus documentation, *Metric and label naming*: "do not
use labels to store dimensions with high cardinality … such as user IDs"). An operator's dashboard needs the shape of
the distribution and the worst few; the account behind a number is one API call away (``GET /api/v1/risk/accounts``,
``GET /api/v1/accounts/{id}/risk``). So each metric is published as

- ``<name>{stat="max"|"mean"|"p50"|"p95"}``: 4 series, whatever the number of accounts;
- ``<name>_top{rank="1".."N"}``: the N largest values (N = 10 by default), rank 1 the largest: N series. The rank
  carries no account id (an id label would be a new series each time the ranking changes).

Metrics (unitless fractions, so that accounts of any size and currency aggregate):

- ``portfolio_var_95``: one-day 95 % VaR of each account as a fraction of its equity (``risk/var.py``);
- ``portfolio_drawdown``: each account's drawdown from its high-water mark as a fraction of the peak
  (``risk/drawdown.py``).

Quantiles p50 and p95 use the same convention as the historical VaR (:func:`~smart_trader.risk.var.empirical_quantile`:
the ``ceil(n p)``-th smallest value). Prometheus stores floats: values are converted at this edge.

The platform's gauges are ``ops/metrics.py``'s ``RISK_GAUGES``, in the default registry (served by ``/metrics``),
set every few seconds by the trading runtime from its loaded accounts
(:meth:`smart_trader.live.accounts.AccountRegistry.publish_risk`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from decimal import Decimal
from typing import Final

from prometheus_client import CollectorRegistry, Gauge

from smart_trader.core.errors import InvalidInputError
from smart_trader.risk.var import empirical_quantile

STATS: Final = ("max", "mean", "p50", "p95")
"""The values of the ``stat`` label."""
TOP_N: Final = 10
"""How many ranks the ``_top`` gauges publish by default."""

_P50 = Decimal("0.5")
_P95 = Decimal("0.95")


class AggregateGauge:
    """One risk measure of every account as ``name{stat}`` and ``name_top{rank}`` gauges (module docstring).

    Args:
        name: the metric name (``portfolio_var_95``); the top-N gauge is ``name + "_top"``.
        documentation: what one account's value is, with its unit.
        registry: where the gauges are registered.
        top_n: ranks published (1..``top_n``).

    Raises:
        InvalidInputError: ``top_n`` < 1.
        ValueError: the registry already holds one of the names (``prometheus_client``).
    """

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry, top_n: int = TOP_N) -> None:
        if top_n < 1:
            raise InvalidInputError(f"top_n must be at least 1, got {top_n}")
        self.top_n = top_n
        self.stats = Gauge(
            name, f"{documentation} Aggregated over accounts: max, mean, p50, p95.", ["stat"], registry=registry
        )
        self.top = Gauge(
            f"{name}_top",
            f"{documentation} The {top_n} largest over accounts, rank 1 the largest.",
            ["rank"],
            registry=registry,
        )

    def publish(self, values: Mapping[str, Decimal]) -> None:
        """Set the gauges from every account's value (account id → value). Ranks beyond the number of accounts, and
        every series when there are none, are removed rather than left at a stale value."""
        ordered = sorted(values.values())
        if not ordered:
            self.stats.clear()
            self.top.clear()
            return
        n = len(ordered)
        stat = {
            "max": ordered[-1],
            "mean": sum(ordered, Decimal(0)) / n,
            "p50": empirical_quantile(ordered, _P50),
            "p95": empirical_quantile(ordered, _P95),
        }
        for key in STATS:
            self.stats.labels(key).set(float(stat[key]))
        for rank in range(1, self.top_n + 1):
            if rank <= n:
                self.top.labels(str(rank)).set(float(ordered[-rank]))
            else:
                with suppress(KeyError):  # not published before
                    self.top.remove(str(rank))


class RiskGauges:
    """The risk gauges of the platform: ``portfolio_var_95`` and ``portfolio_drawdown`` (module docstring)."""

    def __init__(self, registry: CollectorRegistry, top_n: int = TOP_N) -> None:
        self.var_95 = AggregateGauge(
            "portfolio_var_95",
            "One-day 95% historical value at risk of an account as a fraction of its equity (0.02 = 2%).",
            registry,
            top_n,
        )
        self.drawdown = AggregateGauge(
            "portfolio_drawdown",
            "Drawdown of an account from its equity high-water mark as a fraction of the peak (0..1).",
            registry,
            top_n,
        )


def publish(
    gauges: RiskGauges,
    var_95: Mapping[str, Decimal] | None = None,
    drawdown: Mapping[str, Decimal] | None = None,
) -> None:
    """Publish every account's values (account id → fraction) to ``gauges``: ``var_95`` to ``portfolio_var_95``,
    ``drawdown`` to ``portfolio_drawdown`` (``None``: that metric left as it is). See :meth:`AggregateGauge.publish`.
    """
    if var_95 is not None:
        gauges.var_95.publish(var_95)
    if drawdown is not None:
        gauges.drawdown.publish(drawdown)
