"""The stored audit trail on SQLite and PostgreSQL: the database refuses UPDATE and DELETE on it (triggers);
`smart-trader audit verify` reports an intact chain, and — after someone with the rights to drop the triggers changed
one record, deleted one, or swapped two — names the first broken record and exits 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from smart_trader.cli.main import app
from smart_trader.compliance import store
from smart_trader.db.engine import make_engine
from smart_trader.db.migrate import upgrade_to_head
from tests.conftest import fresh_database_url

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = fresh_database_url(request.param, request, tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SMART_TRADER_HOME", str(tmp_path / "home"))
    return url


def _filled(url: str, n: int = 20) -> Engine:
    engine = make_engine(url)
    upgrade_to_head(engine)
    with engine.begin() as conn:
        store.append(conn, [{"action": "order.submitted", "payload": {"k": k}, "subject": "acct", "event_id": f"E{k}"}
                            for k in range(n)])  # fmt: skip
    return engine


def _untriggered(engine: Engine, sql: str) -> None:
    """What an attacker with DDL rights does: drop the guards, then change the table."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(text(statement))


def test_the_database_refuses_to_update_or_delete_audit_records(database: str) -> None:
    engine = _filled(database)
    for sql in ("UPDATE audit_log SET actor = 'x' WHERE seq = 3", "DELETE FROM audit_log WHERE seq = 3"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 0, r.output
    assert "20 records" in r.output
    engine.dispose()


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 7", "record 7"),
        ("DELETE FROM audit_log WHERE seq = 7", "record 7"),
        (
            "UPDATE audit_log SET seq = -1 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = 5;"
            "UPDATE audit_log SET seq = 5 WHERE seq = -1",
            "record 4",
        ),
    ],
    ids=["changed", "deleted", "swapped"],
)
def test_audit_verify_names_the_first_broken_record(database: str, tamper: str, named: str) -> None:
    engine = _filled(database)
    _untriggered(engine, tamper)
    r = runner.invoke(app, ["audit", "verify"])
    assert r.exit_code == 1, r.output
    assert named in r.output and "broken" in r.output
    engine.dispose()
