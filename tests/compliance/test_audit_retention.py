"""Retention of the audit trail (SQLite and PostgreSQL): `smart-trader audit archive` moves the records older than
the retention period to one Parquet file per UTC month, each carrying its chain head; the rest stays and the chain
still verifies from its first stored record; each file verifies alone and a changed file is refused naming the
record; the database still refuses UPDATE, and DELETE of any record no archive covers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from smart_trader.cli.main import app
from smart_trader.compliance import store
from smart_trader.db.engine import make_engine
from smart_trader.db.migrate import upgrade_to_head
from tests.conftest import fresh_database_url

runner = CliRunner()
DAY = 86_400 * 10**9


def _ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 10**9


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = fresh_database_url(request.param, request, tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SMART_TRADER_HOME", str(tmp_path / "home"))
    engine = make_engine(url)
    upgrade_to_head(engine)
    today = dt.datetime.now(dt.UTC).date()
    # 10 records a month over three months ending a year ago, then 5 from yesterday
    old = [today.replace(day=1) - dt.timedelta(days=400 - 30 * m) for m in range(3)]
    days = [d.replace(day=1) + dt.timedelta(days=k) for d in old for k in range(10)]
    days += [today - dt.timedelta(days=1)] * 5
    with engine.begin() as conn:
        store.append(conn, [{"action": "order.submitted", "payload": {"k": k}, "subject": "acct", "event_id": f"E{k}",
                             "ts_ns": _ns(d) + k} for k, d in enumerate(days)])  # fmt: skip
    engine.dispose()
    return url


def test_archive_moves_old_months_to_parquet_and_the_chain_still_verifies(database: str, tmp_path: Path) -> None:
    out = tmp_path / "archive"
    r = runner.invoke(app, ["audit", "archive", "--out-dir", str(out), "--retention-days", "30"])
    assert r.exit_code == 0, r.output
    files = sorted(out.glob("audit-*.parquet"))
    assert [f.name.split("-", 3)[3] for f in files] == ["1-10.parquet", "11-20.parquet", "21-30.parquet"]
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 0, r.output
    assert "5 records from 31" in r.output
    for f in files:
        r = runner.invoke(app, ["audit", "verify", "--file", str(f)])
        assert r.exit_code == 0 and "10 records" in r.output, r.output
    # a second run has nothing due
    r = runner.invoke(app, ["audit", "archive", "--out-dir", str(out), "--retention-days", "30"])
    assert r.exit_code == 0 and "nothing older than 30 days" in r.output
    # a changed archive file is refused, naming the record
    table = pq.read_table(files[1])
    actors = table.column("actor").to_pylist()
    actors[4] = "mallory"
    changed = table.set_column(table.schema.get_field_index("actor"), "actor", pa.array(actors, pa.string()))
    pq.write_table(changed.replace_schema_metadata(table.schema.metadata), files[1])
    r = runner.invoke(app, ["audit", "verify", "--file", str(files[1])])
    assert r.exit_code == 1 and "record 15" in r.output, r.output


def test_the_database_refuses_to_delete_records_no_archive_covers(database: str, tmp_path: Path) -> None:
    runner.invoke(app, ["audit", "archive", "--out-dir", str(tmp_path / "a"), "--retention-days", "30"])
    engine = make_engine(database)
    for sql in (
        "DELETE FROM audit_log WHERE seq = 33",
        "UPDATE audit_log SET actor = 'x' WHERE seq = 33",
        "DELETE FROM audit_archives",
        "UPDATE audit_archives SET head_hash = 'x'",
    ):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    engine.dispose()


def _partitions(engine: object) -> list[str]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return [
            r[0]
            for r in conn.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'audit_log' ORDER BY 1"
                )
            )
        ]


def test_postgresql_keeps_one_partition_per_month_and_retention_drops_archived_ones(
    database: str, tmp_path: Path
) -> None:
    engine = make_engine(database)
    if engine.dialect.name != "postgresql":
        engine.dispose()
        pytest.skip("partitions are PostgreSQL's (SQLite keeps one table)")
    today = dt.datetime.now(dt.UTC).date()
    old = [today.replace(day=1) - dt.timedelta(days=400 - 30 * m) for m in range(3)]
    months = {f"audit_log_p{d.year:04d}{d.month:02d}" for d in old} | {f"audit_log_p{today.year:04d}{today.month:02d}"}
    yesterday = today - dt.timedelta(days=1)
    months.add(f"audit_log_p{yesterday.year:04d}{yesterday.month:02d}")
    assert set(_partitions(engine)) == months  # made by the appends, one per month of the records
    with pytest.raises(Exception, match="TRUNCATE is refused"), engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {sorted(months)[0]}"))
    runner.invoke(app, ["audit", "archive", "--out-dir", str(tmp_path / "a"), "--retention-days", "30"])
    left = set(_partitions(engine))
    assert left == months - {f"audit_log_p{d.year:04d}{d.month:02d}" for d in old}  # archived months are gone
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 0 and "5 records from 31" in r.output, r.output
    engine.dispose()
