"""``smart-trader db upgrade`` / ``db status``: the deployment's migration step (Helm hook Job, Compose migrate)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from smart_trader.cli.main import app
from smart_trader.db.migrate import head_revision

runner = CliRunner()


def test_status_says_pending_then_upgrade_brings_the_schema_to_head(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{home / 'fresh.db'}")
    home.mkdir(parents=True)
    pending = runner.invoke(app, ["db", "status"])
    assert pending.exit_code == 1, pending.output
    assert "current (empty)" in pending.output and "migrations pending" in pending.output

    first = runner.invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert f"database schema at {head_revision()} (upgraded from an empty database)" in first.output
    again = runner.invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0 and "already at head" in again.output

    done = runner.invoke(app, ["db", "status"])
    assert done.exit_code == 0, done.output
    assert f"current {head_revision()}" in done.output


def test_an_unreachable_database_is_a_temporary_error_not_a_traceback(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output
    assert "try again later" in result.output
