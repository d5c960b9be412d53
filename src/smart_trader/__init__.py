"""Smart Trader: market data, paper broker, exact portfolio accounting, strategies and backtests."""

__version__ = "0.1.0"
