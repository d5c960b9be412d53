"""challenges: a user's challenges (program, size, phase, account, status, evaluator state) and their events

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smart_trader.db.types import ExactDecimal

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "challenges",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("program_id", sa.String(length=100), nullable=False),
        sa.Column("account_size", ExactDecimal(), nullable=False),
        sa.Column("phase_index", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("breach", sa.Text(), nullable=True),
        sa.Column("previous_id", sa.String(length=36), nullable=True),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_challenges_account_id_accounts")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_challenges_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenges")),
        sa.UniqueConstraint("account_id", name=op.f("uq_challenges_account_id")),
    )
    with op.batch_alter_table("challenges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_challenges_user_id"), ["user_id"], unique=False)
    op.create_table(
        "challenge_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("challenge_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("ts_event", sa.BigInteger(), nullable=False),
        sa.Column("ts_init", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["challenge_id"], ["challenges.id"], name=op.f("fk_challenge_events_challenge_id_challenges")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenge_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_challenge_events_event_id")),
    )
    with op.batch_alter_table("challenge_events", schema=None) as batch_op:
        batch_op.create_index("ix_challenge_events_challenge_id_id", ["challenge_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("challenge_events", schema=None) as batch_op:
        batch_op.drop_index("ix_challenge_events_challenge_id_id")
    op.drop_table("challenge_events")
    with op.batch_alter_table("challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_challenges_user_id"))
    op.drop_table("challenges")
