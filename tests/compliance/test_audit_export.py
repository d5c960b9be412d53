"""`smart-trader audit export` writes a self-checking file (SQLite and PostgreSQL): `audit verify --file` accepts it
and recomputes every hash independently of the database; a record changed in the file, an event payload changed,
a line deleted, and two lines swapped are each found, naming the record; a range by date or by record number starts
at the right link."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smart_trader.cli.main import app
from smart_trader.compliance.consumer import AuditConsumer
from smart_trader.workers.runner import ConsumerRunner
from tests.conftest import fresh_database_url
from tests.workers.support import migrated, order_events, write, writer_for

runner = CliRunner()
DAY_NS = 86_400 * 10**9


@pytest.fixture(params=["sqlite", "postgres"])
def exported(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = fresh_database_url(request.param, request, tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SMART_TRADER_HOME", str(tmp_path / "home"))
    engine = migrated(url)
    write(engine, order_events(30, ts0=1_767_225_600 * 10**9))  # from 2026-01-01T00:00Z, 1 ns apart

    async def audit() -> None:
        w = writer_for(engine)
        await ConsumerRunner(AuditConsumer(), w, engine).drain()
        w.stop()

    asyncio.run(audit())
    engine.dispose()
    out = tmp_path / "audit.jsonl"
    r = runner.invoke(app, ["audit", "export", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "exported 30 audit records" in r.output
    return out


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _save(path: Path, lines: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_an_export_checks_itself(exported: Path) -> None:
    r = runner.invoke(app, ["audit", "verify", "--file", str(exported)])
    assert r.exit_code == 0, r.output
    assert "30 records" in r.output
    header, *records = _lines(exported)
    assert header["records"] == 30 and header["head_hash"] == records[-1]["hash"]
    # recomputed here with hashlib and json alone, as a regulator would
    prev = header["prev_hash"]
    for rec in records:
        canon = json.dumps(rec["payload"], sort_keys=True, separators=(",", ":")).encode()
        assert hashlib.sha256(canon).hexdigest() == rec["payload_hash"]
        fields = [rec[k] for k in ("seq", "ts_ns", "actor", "action", "subject", "request_id", "event_id")]
        digest = json.dumps([*fields, rec["payload_hash"], prev], separators=(",", ":")).encode()
        assert rec["prev_hash"] == prev and hashlib.sha256(digest).hexdigest() == rec["hash"]
        prev = rec["hash"]


@pytest.mark.parametrize("tamper", ["record", "payload", "deleted", "swapped"])
def test_a_tampered_export_is_refused_naming_the_record(exported: Path, tamper: str) -> None:
    lines = _lines(exported)
    if tamper == "record":
        lines[8]["actor"] = "mallory"  # record 8
    elif tamper == "payload":
        lines[8]["payload"]["status"] = "cancelled"  # type: ignore[index]
    elif tamper == "deleted":
        del lines[8]
    else:
        lines[8], lines[9] = lines[9], lines[8]
    _save(exported, lines)
    r = runner.invoke(app, ["audit", "verify", "--file", str(exported)])
    assert r.exit_code == 1, r.output
    assert "record 8" in r.output and "broken" in r.output


def test_an_export_by_range_links_to_the_record_before(exported: Path, tmp_path: Path) -> None:
    part = tmp_path / "part.jsonl"
    r = runner.invoke(app, ["audit", "export", "--out", str(part), "--from", "11", "--to", "20"])
    assert r.exit_code == 0, r.output
    header, *records = _lines(part)
    full = _lines(exported)
    assert header["prev_hash"] == full[10]["hash"] and [x["seq"] for x in records] == list(range(11, 21))
    assert runner.invoke(app, ["audit", "verify", "--file", str(part)]).exit_code == 0
    r = runner.invoke(app, ["audit", "export", "--out", str(part), "--from", "2026-01-02"])
    assert r.exit_code == 2 and "no audit record" in r.output
    r = runner.invoke(app, ["audit", "export", "--out", str(part), "--from", "2026-01-01", "--to", "2026-01-02"])
    assert r.exit_code == 0 and "exported 30" in r.output
    r = runner.invoke(app, ["audit", "export", "--out", str(part), "--from", "yesterday"])
    assert r.exit_code == 2 and "record number or a date" in r.output
