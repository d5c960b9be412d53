"""The SQLite engine: WAL checkpoints happen in the background (not inside commits), savepoints nest in a real
transaction, and a read sees one snapshot."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from smart_trader.db.engine import Checkpointer, make_engine


def test_checkpointer_moves_the_wal_into_the_database_and_truncates_it(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": "y" * 200} for _ in range(2000)])
    wal = tmp_path / "c.db-wal"
    assert wal.stat().st_size > 100_000  # no automatic checkpoint ran inside the commit
    checkpointer = Checkpointer(engine, every=0.05)
    checkpointer.start()
    time.sleep(0.3)
    checkpointer.stop()
    assert wal.stat().st_size == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2000
    engine.dispose()


def test_a_failed_savepoint_does_not_commit_on_its_own(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))

    def savepoint_then_fail() -> None:
        with engine.begin() as conn:
            with conn.begin_nested():  # the first statement of the transaction: a SAVEPOINT
                conn.execute(text("INSERT INTO t VALUES (1)"))
            raise RuntimeError("the outer transaction fails")

    with pytest.raises(RuntimeError):
        savepoint_then_fail()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0  # the released savepoint was rolled back
    engine.dispose()
