"""The SQLite engine: WAL checkpoints happen in the background (not inside commits), savepoints nest in a real
transaction, and a read sees one snapshot."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from smart_trader.db.engine import Checkpointer, make_engine
from smart_trader.db.writer import BatchWriter


def _wal_bytes(wal: Path) -> int:
    """What the WAL file holds; a WAL removed by the last connection to close holds nothing."""
    return wal.stat().st_size if wal.exists() else 0


def test_checkpointer_moves_the_wal_into_the_database_and_truncates_it(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": "y" * 200} for _ in range(2000)])
    wal = tmp_path / "c.db-wal"
    assert wal.stat().st_size > 100_000  # no automatic checkpoint ran inside the commit

    async def main() -> None:
        checkpointer = Checkpointer(engine, every=0.05)
        checkpointer.start()
        await asyncio.sleep(0.3)
        assert checkpointer.rounds >= 1
        await checkpointer.stop()
        engine.dispose()  # every other connection closed before the checkpointer's: see Checkpointer.close
        await checkpointer.close()

    asyncio.run(main())
    assert _wal_bytes(wal) == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2000
    engine.dispose()


def _commit_steadily(engine: Engine, stop: threading.Event) -> int:
    """Commit small transactions back to back until ``stop`` (a writer that never leaves the WAL idle)."""
    commits = 0
    with engine.connect() as conn:
        while not stop.is_set():
            with conn.begin():
                conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": "y" * 200} for _ in range(50)])
            commits += 1
    return commits


def test_the_wal_restarts_under_a_steady_stream_of_commits(tmp_path: Path) -> None:
    """A PASSIVE checkpoint alone never finds the WAL fully copied while commits keep coming, so SQLite never
    restarted the WAL and it only grew; the checkpointer's RESTART round makes the next commit write it from its
    beginning again."""

    def run(name: str, checkpoints: bool) -> tuple[int, int, int]:
        engine = make_engine(f"sqlite:///{tmp_path / name}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x TEXT)"))
        wal_file = tmp_path / f"{name}-wal"

        async def main() -> tuple[int, int, int]:
            checkpointer = Checkpointer(engine, every=0.05)
            if checkpoints:
                checkpointer.start()
            stop = threading.Event()
            writing = asyncio.create_task(asyncio.to_thread(_commit_steadily, engine, stop))
            await asyncio.sleep(1.5)
            stop.set()
            commits = await writing
            wal = wal_file.stat().st_size  # the file's size: the most the WAL ever held
            if checkpoints:
                await checkpointer.stop()
                engine.dispose()
                await checkpointer.close()
                assert _wal_bytes(wal_file) == 0
            return wal, commits, checkpointer.restarts

        wal, commits, restarts = asyncio.run(main())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == commits * 50  # nothing lost
        engine.dispose()
        return wal, commits, restarts

    grown, _, _ = run("no-checkpoints.db", checkpoints=False)
    kept, commits, restarts = run("checkpoints.db", checkpoints=True)
    assert restarts >= 3
    assert commits > 100
    assert grown > 1_000_000  # without checkpoints the WAL holds every commit
    assert kept < grown / 3  # with them it was written from its beginning again, round after round


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


def test_checkpoint_rounds_only_follow_commits(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'idle.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
    writer = BatchWriter(engine, inline=True)

    async def main() -> tuple[int, int]:
        checkpointer = Checkpointer(engine, writer, every=0.02)
        checkpointer.start()
        await asyncio.sleep(0.3)
        idle = checkpointer.rounds
        await writer.run(lambda conn: conn.execute(text("INSERT INTO t VALUES ('x')")))
        await asyncio.sleep(0.3)
        after_commit = checkpointer.rounds
        await checkpointer.stop()
        writer.stop()
        engine.dispose()
        await checkpointer.close()
        return idle, after_commit

    idle, after_commit = asyncio.run(main())
    assert idle == 1  # the first round (whatever start-up wrote), then nothing while nothing was committed
    assert after_commit == 2


def _open_and_close_for(path: str, seconds: float) -> subprocess.Popen[bytes]:
    """Another process that keeps opening the database, reading it and closing it (as a backup tool or a reporting
    script would): the last connection to close checkpoints and deletes the WAL, so if this process's locks were
    ever dropped, that process would delete the WAL under our writer."""
    code = (
        "import sqlite3, time\n"
        f"end = time.monotonic() + {seconds}\n"
        "while time.monotonic() < end:\n"
        f"    c = sqlite3.connect({path!r}, timeout=5)\n"
        "    c.execute('SELECT count(*) FROM t').fetchone()\n"
        "    c.close()\n"
    )
    return subprocess.Popen([sys.executable, "-c", code])


def test_no_commit_is_lost_while_another_process_opens_and_closes_the_database(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))

    checkpointer = Checkpointer(engine, every=0.02)

    async def main() -> tuple[int, int]:
        checkpointer.start()
        stop = threading.Event()
        writing = asyncio.create_task(asyncio.to_thread(_commit_steadily, engine, stop))
        other = _open_and_close_for(str(path), 1.5)
        reader_exit = await asyncio.to_thread(other.wait)
        stop.set()
        commits = await writing
        await checkpointer.stop()
        engine.dispose()
        await checkpointer.close()
        assert reader_exit == 0  # the other process always found the database whole
        return commits, checkpointer.restarts

    commits, restarts = asyncio.run(main())
    assert restarts >= 3 and commits > 50
    with sqlite3.connect(path) as conn:  # a fresh look from outside, after everything closed
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == commits * 50


def test_a_failing_round_does_not_end_checkpointing(tmp_path: Path) -> None:
    """A round that fails (here the database file's descriptor cannot be synced) is logged and the next round
    runs; shutting down still empties the WAL."""
    engine = make_engine(f"sqlite:///{tmp_path / 'f.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
    checkpointer = Checkpointer(engine, every=0.02)
    checkpointer._db_fd = 10_000  # not an open descriptor: the first round's fsync fails with EBADF

    async def main() -> None:
        checkpointer.start()
        await asyncio.sleep(0.1)
        assert checkpointer.rounds == 0 and checkpointer._task is not None and not checkpointer._task.done()
        checkpointer._db_fd = None  # the next round opens its own descriptor again
        await asyncio.sleep(0.2)
        assert checkpointer.rounds >= 1
        await checkpointer.stop()
        engine.dispose()
        await checkpointer.close()

    asyncio.run(main())
    assert _wal_bytes(tmp_path / "f.db-wal") == 0
