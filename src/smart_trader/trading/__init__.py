"""The trading pipeline shared by backtests and the live platform: per-account sessions (pre-trade checks → broker →
account → monitors) and the market-event dispatch with its working-order and exposure indexes."""
