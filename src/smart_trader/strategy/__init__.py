"""Strategy service: the strategy API, indicators, the event-driven engine, built-in strategies and backtests."""
