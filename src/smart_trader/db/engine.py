"""Database engines: the embedded SQLite file (WAL) or PostgreSQL through psycopg 3.

SQLite is opened with ``journal_mode=WAL`` (readers never block the writer), ``synchronous=NORMAL``
(a commit is durable against a process crash — kill -9 — and the WAL is synced at checkpoints),
``foreign_keys=ON`` and a 5 s busy timeout. Automatic checkpoints are off: a checkpoint copies the WAL into the
database file and fsyncs it, and done inside a commit it made that commit ~1 ms slower on the writer's hot path.
:class:`Checkpointer` runs them from a worker thread instead (a thread blocked in fsync does not hold the GIL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from smart_trader.ops.metrics import DB_WRITER_PAUSE_SECONDS, track_pool

if TYPE_CHECKING:
    from smart_trader.db.writer import BatchWriter

log = logging.getLogger(__name__)
T = TypeVar("T")
# bytes the WAL file is cut back to when it restarts: above what a round writes at full load (~200 MB in 2 s at
# 5,000 orders/s), so a busy WAL is reused in place instead of cut and grown again every round
WAL_SIZE_LIMIT = 256 * 1024 * 1024


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """Create the engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    The SQLite file's folder is created when missing. Its pool is published as ``db_pool_*{pool="main"}``
    (``ops/metrics.py``).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 5}, pool_size=pool_size, max_overflow=8
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_size=pool_size, max_overflow=8, pool_pre_ping=True)
    track_pool(engine.pool, "main")
    return engine


def make_async_engine(url: str, *, pool_size: int = 6) -> AsyncEngine:
    """An asyncio engine (psycopg's async driver) for the PostgreSQL ``url`` (the writer's, see
    :class:`~smart_trader.db.writer.BatchWriter`); its pool is published as ``db_pool_*{pool="writer"}``."""
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=2, pool_pre_ping=True)
    track_pool(engine.sync_engine.pool, "writer")
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's recipe for pysqlite: take transaction control from the driver (which would not BEGIN before a
    # SAVEPOINT or a SELECT), and BEGIN ourselves in the "begin" event. Savepoints then nest inside the batch's
    # transaction, and a read sees one snapshot of the database for all its statements.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


class Checkpointer:
    """Keeps an SQLite WAL bounded: every ``every`` seconds (when anything was committed), two ``PASSIVE``
    checkpoints and an fsync of the database file from a worker thread while the writer goes on (the second
    checkpoint catches up with what was committed during the first), then, with the ``writer`` paused, a
    ``RESTART`` checkpoint of the last few milliseconds' commits, so the next commit writes the WAL from its
    beginning again. Truncates the WAL at :meth:`close`. Nothing to do for other databases.

    Why: under a steady stream of commits a ``PASSIVE`` checkpoint never finds the WAL fully copied at the moment a
    transaction starts, so SQLite never restarted the WAL; it grew by ~60 MB a second under the order benchmark,
    and every commit then appended to fresh file pages the kernel had to allocate and zero (~9% of the process's
    CPU). The writer's pause is the ``RESTART``'s own copy and fsyncs: ~8 ms every 2 s at 5,000 orders/s (metric
    ``db_writer_pause_seconds``); without the fsync beforehand it was 12-30 ms, since SQLite syncs the database
    file only at a checkpoint that reaches the end of the WAL.

    Life cycle: :meth:`start`; :meth:`stop` before the writer stops; :meth:`close` after ``engine.dispose()``. The
    checkpointer keeps its own descriptor of the database file for that fsync, open until :meth:`close`, which must
    come after every other connection of this process to the database is closed: closing a descriptor drops all of
    the process's POSIX locks on the file, SQLite's included (https://sqlite.org/howtocorrupt.html, section 2.2).

    Args:
        engine: the SQLite engine (its database file; the checkpointer uses its own connection).
        writer: the batch writer to pause around ``RESTART`` (``None``: nothing to pause; SQLite's busy handler
            then holds other writers for its duration).
        every: seconds between rounds (a round is skipped when the writer committed nothing since the last).
        busy_seconds: how long a ``RESTART`` waits for readers still using the WAL before it gives up for this
            round (the writer is paused meanwhile).
    """

    def __init__(
        self, engine: Engine, writer: BatchWriter | None = None, every: float = 2.0, busy_seconds: float = 0.1
    ) -> None:
        self.engine = engine
        self.writer = writer
        self.every = every
        self.busy_seconds = busy_seconds
        self.enabled = engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")
        self._task: asyncio.Task[None] | None = None
        # all of the checkpointer's blocking work runs on this one thread, in order: a round never waits behind the
        # shared default executor (API reads, password hashing) while the writer is paused, and nothing of a
        # cancelled round can still run when :meth:`close` does
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
        self._raw: sqlite3.Connection | None = None
        self._db_fd: int | None = None  # the database file, for fsync; closed by :meth:`close` only
        self.rounds = 0
        self.restarts = 0

    def start(self) -> None:
        """Start checkpointing in the background (SQLite only; call from the event loop)."""
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sqlite-checkpoint")

    async def stop(self) -> None:
        """Stop the rounds, after the one in progress (if any) has left its thread; call it before the writer
        stops, so that no round pauses or resumes a stopped writer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._in_thread(lambda: None)  # whatever a cancelled round left running there has finished

    async def close(self) -> None:
        """Empty the WAL (``TRUNCATE``), then close the checkpointer's connection and its descriptor of the database
        file. Call it only once every other connection to the database in this process is closed (after
        ``engine.dispose()``): closing any descriptor of a file drops every POSIX lock the process holds on it,
        SQLite's included, and another process could then take itself for the last user of the database and
        delete the WAL under us (https://sqlite.org/howtocorrupt.html, section 2.2)."""
        await self.stop()
        if self.enabled:
            try:
                await self._in_thread(lambda: self._checkpoint("TRUNCATE", 5.0))
            except (sqlite3.Error, OSError):  # the next start checkpoints what is left
                log.warning("final sqlite checkpoint failed", exc_info=True)
        await self._in_thread(self._close_files)
        self._thread.shutdown(wait=True)

    async def checkpoint(self) -> None:
        """One round: ``PASSIVE`` twice and an fsync of the database file while the writer goes on, then
        ``RESTART`` with the writer paused.

        Raises:
            sqlite3.Error, OSError: the database or its file failed (the writer is resumed).
        """
        await self._in_thread(lambda: self._checkpoint("PASSIVE", self.busy_seconds))
        await self._in_thread(lambda: self._checkpoint("PASSIVE", self.busy_seconds))
        await self._in_thread(self._sync_database_file)
        pause = self.writer.paused() if self.writer is not None else contextlib.nullcontext()
        start = time.perf_counter()
        async with pause:
            if await self._in_thread(lambda: self._checkpoint("RESTART", self.busy_seconds)):
                self.restarts += 1
        DB_WRITER_PAUSE_SECONDS.observe(time.perf_counter() - start)
        self.rounds += 1

    async def _run(self) -> None:
        written = -1  # the writer's batch count at the last round (-1: the first round always runs)
        while True:
            await asyncio.sleep(self.every)
            if self.writer is not None:
                if self.writer.batches == written:
                    continue  # nothing committed since the last round
                written = self.writer.batches
            try:
                await self.checkpoint()
            except Exception:  # a locked database, a failing disk, no descriptor left: the next round tries again
                log.warning("sqlite checkpoint failed", exc_info=True)

    async def _in_thread(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    def _close_files(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        if self._db_fd is not None:
            os.close(self._db_fd)
            self._db_fd = None

    def _sync_database_file(self) -> None:
        """fsync the database file while the writer goes on. A ``PASSIVE`` checkpoint overtaken by new commits copies
        pages into the database file but does not sync it (SQLite syncs it only at a checkpoint that reaches the end
        of the WAL, under load only the ``RESTART``); synced here, the ``RESTART`` has only its own pages to sync
        while the writer waits. The descriptor stays open until :meth:`close`."""
        if self._db_fd is None:
            self._db_fd = os.open(str(self.engine.url.database), os.O_RDONLY)
        os.fdatasync(self._db_fd)

    def _checkpoint(self, mode: str, busy_seconds: float) -> bool:
        """Run ``PRAGMA wal_checkpoint(mode)`` (on the checkpointer's thread); True when it completed (not busy)."""
        if self._raw is None:
            self._raw = sqlite3.connect(str(self.engine.url.database), isolation_level=None, check_same_thread=False)
        self._raw.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
        busy, _frames, _copied = self._raw.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return not busy
