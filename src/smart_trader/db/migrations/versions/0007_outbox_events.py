"""outbox rows carry their typed event: event_id (unique), version, stream, partition_key, ts_event, ts_init

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("stream", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("partition_key", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("ts_event", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("ts_init", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_outbox_event_id"), ["event_id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_outbox_event_id"), type_="unique")
        for name in ("ts_init", "ts_event", "partition_key", "stream", "version", "event_id"):
            batch_op.drop_column(name)
