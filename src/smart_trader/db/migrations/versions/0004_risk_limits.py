"""risk limits: per-account order quantity, order notional, position and price collar limits on account_limits

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smart_trader.db.types import ExactDecimal

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# every column nullable: NULL is "no such limit" (risk/tables.py)
COLUMNS = ("max_order_quantity", "max_order_notional", "max_position", "price_collar_bps")


def upgrade() -> None:
    with op.batch_alter_table("account_limits", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, ExactDecimal(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_limits", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
