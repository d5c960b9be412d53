"""audit_log keyed by (seq, ts_ns), unique (event_id, ts_ns); on PostgreSQL partitioned by month of ts_ns

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 11:00:00
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ARCHIVE_ONLY = "audit_log is append-only: UPDATE is refused, DELETE only of records an archive covers"
COVERED = "EXISTS (SELECT 1 FROM audit_archives a WHERE OLD.seq BETWEEN a.first_seq AND a.last_seq)"
COLUMNS = "seq, ts_ns, actor, action, subject, request_id, event_id, payload_hash, prev_hash, hash"


def _months(bind: sa.Connection) -> list[dt.date]:
    now = dt.datetime.now(dt.UTC)
    months = {dt.date(now.year, now.month, 1)}
    for (ts,) in bind.execute(sa.text("SELECT DISTINCT ts_ns / 86400000000000 FROM audit_log_unpartitioned")):
        d = dt.date(1970, 1, 1) + dt.timedelta(days=int(ts))
        months.add(dt.date(d.year, d.month, 1))
    return sorted(months)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_log RENAME TO audit_log_unpartitioned")
        op.execute("ALTER TABLE audit_log_unpartitioned RENAME CONSTRAINT pk_audit_log TO pk_audit_log_unpartitioned")
        op.execute(
            "ALTER TABLE audit_log_unpartitioned RENAME CONSTRAINT uq_audit_log_event_id "
            "TO uq_audit_log_unpartitioned_event_id"
        )
        op.execute(
            "CREATE TABLE audit_log (seq BIGINT NOT NULL, ts_ns BIGINT NOT NULL, actor VARCHAR(36), "
            "action VARCHAR(64) NOT NULL, subject VARCHAR(100), request_id VARCHAR(64), event_id VARCHAR(64), "
            "payload_hash VARCHAR(64) NOT NULL, prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL, "
            "CONSTRAINT pk_audit_log PRIMARY KEY (seq, ts_ns), "
            "CONSTRAINT uq_audit_log_event_id UNIQUE (event_id, ts_ns)) PARTITION BY RANGE (ts_ns)"
        )
        for month in _months(bind):
            nxt = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
            start = int(dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC).timestamp()) * 10**9
            end = int(dt.datetime(nxt.year, nxt.month, 1, tzinfo=dt.UTC).timestamp()) * 10**9
            name = f"audit_log_p{month.year:04d}{month.month:02d}"
            op.execute(f"CREATE TABLE {name} PARTITION OF audit_log FOR VALUES FROM ({start}) TO ({end})")
            op.execute(
                f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate()"
            )
        op.execute(f"INSERT INTO audit_log ({COLUMNS}) SELECT {COLUMNS} FROM audit_log_unpartitioned")
        op.execute("DROP TABLE audit_log_unpartitioned")  # its triggers go with it
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate()"
        )
        return
    # SQLite: the table made again with the new keys (batch mode), then its triggers
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    with op.batch_alter_table("audit_log", recreate="always") as batch_op:
        batch_op.drop_constraint("uq_audit_log_event_id", type_="unique")
        batch_op.drop_constraint("pk_audit_log", type_="primary")
        batch_op.create_primary_key("pk_audit_log", ["seq", "ts_ns"])
        batch_op.create_unique_constraint("uq_audit_log_event_id", ["event_id", "ts_ns"])
    op.execute(
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE and DELETE are refused'); END"
    )
    op.execute(
        f"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log WHEN NOT {COVERED} "
        f"BEGIN SELECT RAISE(ABORT, '{ARCHIVE_ONLY}'); END"
    )


def downgrade() -> None:
    raise NotImplementedError("the audit log's partitions are not undone (archive, then restore from a backup)")
