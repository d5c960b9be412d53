"""Analytics: performance statistics of a backtest and its equity/drawdown chart."""

from smart_trader.analytics.chart import write_chart
from smart_trader.analytics.stats import RoundTrip, Stats, compute_stats, drawdown, periods_per_year

__all__ = ["RoundTrip", "Stats", "compute_stats", "drawdown", "periods_per_year", "write_chart"]
