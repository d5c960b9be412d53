"""audit retention: audit_archives (append-only), and audit_log records may be deleted once an archive covers them

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

APPEND_ONLY = "audit_log is append-only: UPDATE and DELETE are refused"
ARCHIVE_ONLY = "audit_log is append-only: UPDATE is refused, DELETE only of records an archive covers"
ARCHIVES = "audit_archives is append-only: UPDATE and DELETE are refused"


def upgrade() -> None:
    op.create_table(
        "audit_archives",
        sa.Column("first_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("file", sa.String(length=500), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("archived_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("first_seq", name=op.f("pk_audit_archives")),
    )
    covered = "EXISTS (SELECT 1 FROM audit_archives a WHERE OLD.seq BETWEEN a.first_seq AND a.last_seq)"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF TG_OP = 'DELETE' AND {covered} THEN RETURN OLD; END IF; RAISE EXCEPTION '{ARCHIVE_ONLY}'; END $$"
        )
        op.execute(
            "CREATE FUNCTION audit_archives_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{ARCHIVES}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_archives_append_only BEFORE UPDATE OR DELETE ON audit_archives "
            "FOR EACH ROW EXECUTE FUNCTION audit_archives_append_only()"
        )
        op.execute(  # TRUNCATE skips row triggers: refused on both tables by a statement trigger
            "CREATE FUNCTION audit_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'the audit tables are append-only: TRUNCATE is refused'; END $$"
        )
        for table in ("audit_log", "audit_archives"):
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate()"
            )
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute(
            f"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log WHEN NOT {covered} "
            f"BEGIN SELECT RAISE(ABORT, '{ARCHIVE_ONLY}'); END"
        )
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_archives_no_{what.lower()} BEFORE {what} ON audit_archives "
                f"BEGIN SELECT RAISE(ABORT, '{ARCHIVES}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_archives_no_truncate ON audit_archives")
        op.execute("DROP FUNCTION IF EXISTS audit_no_truncate()")
        op.execute("DROP TRIGGER IF EXISTS audit_archives_append_only ON audit_archives")
        op.execute("DROP FUNCTION IF EXISTS audit_archives_append_only()")
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_archives_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_archives_no_delete")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
        )
    op.drop_table("audit_archives")
