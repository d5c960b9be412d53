"""Analytics: performance statistics of a backtest (``stats``) and its equity/drawdown chart (``chart``,
which imports matplotlib: import it where a chart is drawn)."""

from smart_trader.analytics.stats import RoundTrip, Stats, compute_stats, drawdown, periods_per_year

__all__ = ["RoundTrip", "Stats", "compute_stats", "drawdown", "periods_per_year"]
