"""Live paper trading: market-data feeds (replay and exchange), live bars, and the trading runtime."""
