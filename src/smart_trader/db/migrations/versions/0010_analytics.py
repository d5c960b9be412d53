"""analytics: performance and leaderboards

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import smart_trader.db.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_accounts",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("program_id", sa.String(length=100), nullable=True),
        sa.Column("challenge_id", sa.String(length=36), nullable=True),
        sa.Column("phase", sa.String(length=100), nullable=True),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("initial_balance", smart_trader.db.types.ExactDecimal(), nullable=False),
        sa.Column("day_tz", sa.String(length=64), nullable=False),
        sa.Column("day_reset", sa.String(length=5), nullable=False),
        sa.Column("realized_pnl", smart_trader.db.types.ExactDecimal(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("last_ts", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("status_ts", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_analytics_accounts")),
    )
    op.create_table(
        "analytics_days",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("equity", smart_trader.db.types.ExactDecimal(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.Column("losses", sa.Integer(), nullable=False),
        sa.Column("gross_profit", smart_trader.db.types.ExactDecimal(), nullable=False),
        sa.Column("gross_loss", smart_trader.db.types.ExactDecimal(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "day", name=op.f("pk_analytics_days")),
    )
    op.create_table(
        "analytics_fill_days",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("fills", sa.Integer(), nullable=False),
        sa.Column("commissions", smart_trader.db.types.ExactDecimal(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "day", name=op.f("pk_analytics_fill_days")),
    )
    op.create_table(
        "analytics_performance",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("program_id", sa.String(length=100), nullable=True),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("period_start", sa.String(length=10), nullable=False),
        sa.Column("first_day", sa.String(length=10), nullable=False),
        sa.Column("last_day", sa.String(length=10), nullable=False),
        sa.Column("start_equity", smart_trader.db.types.ExactDecimal(), nullable=False),
        sa.Column("end_equity", smart_trader.db.types.ExactDecimal(), nullable=False),
        sa.Column("profit", smart_trader.db.types.ExactDecimal(), nullable=False),
        sa.Column("total_return", sa.Double(), nullable=True),
        sa.Column("sharpe", sa.Double(), nullable=True),
        sa.Column("sortino", sa.Double(), nullable=True),
        sa.Column("max_drawdown", sa.Double(), nullable=False),
        sa.Column("win_rate", sa.Double(), nullable=True),
        sa.Column("profit_factor", sa.Double(), nullable=True),
        sa.Column("consistency", sa.Double(), nullable=True),
        sa.Column("best_day", smart_trader.db.types.ExactDecimal(), nullable=True),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "period", name=op.f("pk_analytics_performance")),
    )
    op.create_index(
        "ix_analytics_performance_board",
        "analytics_performance",
        ["program_id", "period", "period_start", "total_return", "account_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_analytics_performance_board", table_name="analytics_performance")
    op.drop_table("analytics_performance")
    op.drop_table("analytics_fill_days")
    op.drop_table("analytics_days")
    op.drop_table("analytics_accounts")
