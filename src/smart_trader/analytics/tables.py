"""The analytics tables: the projection's compact inputs and its precomputed statistics.

- ``analytics_accounts``: one row per account the projection has seen — who owns it, its program (challenge
  accounts), initial balance, the clock of its days, the last cumulative realized P&L and event time applied, and the
  challenge status.
- ``analytics_days``: one row per account per day — the day's last equity and its realized trade outcomes (counts and
  gross sums). The daily equity series of the statistics (``analytics/performance.py``).
- ``analytics_fill_days``: fills and commissions per account per day (from the ``orders`` stream; kept apart from
  ``analytics_days`` so the two streams never write the same row).
- ``analytics_performance``: the statistics of each account per period (``day``, ``week``, ``month``, ``all``) for
  the window holding its latest day — what the leaderboards read, by the index on
  (program, period, window start, return).

Money is exact (:class:`~smart_trader.db.types.ExactDecimal`, account currency); ratios are floats; days are ISO
dates (``YYYY-MM-DD``); timestamps ns since the epoch, UTC.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, Index, Integer, String, Table

from smart_trader.db.metadata import metadata
from smart_trader.db.types import ExactDecimal

analytics_accounts = Table(
    "analytics_accounts",
    metadata,
    Column("account_id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False),
    Column("program_id", String(100), nullable=True),  # a challenge account's program; NULL for a plain account
    Column("challenge_id", String(36), nullable=True),
    Column("phase", String(100), nullable=True),
    Column("currency", String(16), nullable=False),
    Column("initial_balance", ExactDecimal, nullable=False),
    Column("day_tz", String(64), nullable=False),  # IANA zone of the account's days (UTC for a plain account)
    Column("day_reset", String(5), nullable=False),  # local reset time of the days, HH:MM
    Column("realized_pnl", ExactDecimal, nullable=False),  # cumulative realized P&L of the last event applied
    Column("events", Integer, nullable=False),  # account events applied (the version of its daily series)
    Column("last_ts", BigInteger, nullable=True),  # ts_event of the last account event applied
    Column("status", String(16), nullable=True),  # the challenge's status, from its latest event
    Column("status_ts", BigInteger, nullable=True),
)

analytics_days = Table(
    "analytics_days",
    metadata,
    Column("account_id", String(36), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("equity", ExactDecimal, nullable=False),  # last equity of the day
    Column("ts", BigInteger, nullable=False),  # ts_event of that equity
    Column("wins", Integer, nullable=False),
    Column("losses", Integer, nullable=False),
    Column("gross_profit", ExactDecimal, nullable=False),
    Column("gross_loss", ExactDecimal, nullable=False),  # positive
)

analytics_fill_days = Table(
    "analytics_fill_days",
    metadata,
    Column("account_id", String(36), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("fills", Integer, nullable=False),
    Column("commissions", ExactDecimal, nullable=False),  # in the fills' commission currency as reported
)

analytics_performance = Table(
    "analytics_performance",
    metadata,
    Column("account_id", String(36), primary_key=True),
    Column("period", String(8), primary_key=True),  # day | week | month | all
    Column("program_id", String(100), nullable=True),
    Column("user_id", String(36), nullable=False),
    Column("period_start", String(10), nullable=False),  # the window's first day; "" for all time
    Column("first_day", String(10), nullable=False),
    Column("last_day", String(10), nullable=False),
    Column("start_equity", ExactDecimal, nullable=False),
    Column("end_equity", ExactDecimal, nullable=False),
    Column("profit", ExactDecimal, nullable=False),
    Column("total_return", Double, nullable=True),  # a fraction; NULL when the window starts at equity <= 0
    Column("sharpe", Double, nullable=True),
    Column("sortino", Double, nullable=True),
    Column("max_drawdown", Double, nullable=False),
    Column("win_rate", Double, nullable=True),
    Column("profit_factor", Double, nullable=True),
    Column("consistency", Double, nullable=True),
    Column("best_day", ExactDecimal, nullable=True),
    Column("trades", Integer, nullable=False),
    Column("days", Integer, nullable=False),
    Column("updated_ts", BigInteger, nullable=False),  # ts_event of the last event applied
    Index("ix_analytics_performance_board", "program_id", "period", "period_start", "total_return", "account_id"),
)
