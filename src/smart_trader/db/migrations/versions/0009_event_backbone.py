"""event backbone: consumed (idempotency marks per consumer) and consumer_offsets (outbox readers' positions)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consumed",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("applied_ns", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_consumed")),
    )
    op.create_table(
        "consumer_offsets",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("published_ns", sa.BigInteger(), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", name=op.f("pk_consumer_offsets")),
    )


def downgrade() -> None:
    op.drop_table("consumer_offsets")
    op.drop_table("consumed")
