"""security: user roles and state, API key use, sessions (refresh-token families), account limits

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("roles", sa.String(length=200), server_default="trader", nullable=False))
        batch_op.add_column(sa.Column("disabled_ns", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("password_changed_ns", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("updated_ns", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_users_updated_ns"), ["updated_ns"], unique=False)
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used_ns", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_keys_revoked_ns"), ["revoked_ns"], unique=False)
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("refresh_jti", sa.String(length=64), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("refreshed_ns", sa.BigInteger(), nullable=True),
        sa.Column("expires_ns", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ns", sa.BigInteger(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sessions_revoked_ns"), ["revoked_ns"], unique=False)
    op.create_table(
        "account_limits",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("max_open_orders", sa.Integer(), nullable=True),
        sa.Column("max_orders_per_second", sa.Integer(), nullable=True),
        sa.Column("trading_state", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_account_limits_account_id_accounts")),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_limits")),
    )


def downgrade() -> None:
    op.drop_table("account_limits")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_revoked_ns"))
        batch_op.drop_index(batch_op.f("ix_sessions_user_id"))
    op.drop_table("sessions")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_revoked_ns"))
        batch_op.drop_column("last_used_ns")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_updated_ns"))
        batch_op.drop_column("updated_ns")
        batch_op.drop_column("password_changed_ns")
        batch_op.drop_column("disabled_ns")
        batch_op.drop_column("roles")
