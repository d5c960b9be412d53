"""Monthly partitions of the audit log on PostgreSQL (``audit_log`` is ``PARTITION BY RANGE (ts_ns)``, migration
0014): one partition per UTC month, ``audit_log_pYYYYMM``, made when the first record of the month is appended; each
refuses TRUNCATE like the parent (a statement on a partition does not fire the parent's trigger). Retention archives
whole months and drops their emptied partitions (:mod:`smart_trader.compliance.archive`). SQLite has no partitions:
everything here does nothing there."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Connection, text


def month_of(ts_ns: int) -> dt.date:
    """The first day of the UTC month of ``ts_ns`` (ns since the epoch)."""
    d = dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC)
    return dt.date(d.year, d.month, 1)


def _bounds(month: dt.date) -> tuple[int, int]:
    nxt = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    start = dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(nxt.year, nxt.month, 1, tzinfo=dt.UTC)
    return int(start.timestamp()) * 1_000_000_000, int(end.timestamp()) * 1_000_000_000


def partition_name(month: dt.date) -> str:
    """``audit_log_pYYYYMM``."""
    return f"audit_log_p{month.year:04d}{month.month:02d}"


def ensure(conn: Connection, ts_ns: Iterable[int]) -> None:
    """Make the partitions of the months of ``ts_ns`` that do not exist yet (PostgreSQL; in the caller's
    transaction)."""
    if conn.dialect.name != "postgresql":
        return
    for month in sorted({month_of(t) for t in ts_ns}):
        name = partition_name(month)
        # asked each time (one catalog lookup per batch and month), never cached: a rolled-back batch undoes its DDL
        if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None:
            continue
        start, end = _bounds(month)
        conn.execute(
            text(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF audit_log FOR VALUES FROM ({start}) TO ({end})")
        )
        exists = conn.execute(
            text("SELECT 1 FROM pg_trigger WHERE tgname = :t AND NOT tgisinternal"), {"t": f"{name}_no_truncate"}
        ).first()
        if exists is None:
            conn.execute(
                text(
                    f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION audit_no_truncate()"
                )
            )


def drop_empty_before(conn: Connection, before_ns: int) -> list[str]:
    """Drop the partitions of months that end before ``before_ns`` and hold no record any more (archived); returns
    their names (PostgreSQL; nothing on SQLite)."""
    if conn.dialect.name != "postgresql":
        return []
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'audit_log' ORDER BY c.relname"
        )
    ).all()
    dropped = []
    for (name,) in rows:
        try:
            month = dt.date(int(name[11:15]), int(name[15:17]), 1)
        except ValueError:
            continue
        if _bounds(month)[1] > before_ns:
            continue
        if conn.execute(text(f"SELECT 1 FROM {name} LIMIT 1")).first() is None:
            conn.execute(text(f"DROP TABLE {name}"))
            dropped.append(name)
    return dropped
