"""Group commit: many small write transactions from async code, committed together by one thread.

Each job is a function of a SQLAlchemy :class:`~sqlalchemy.Connection`; it runs inside a savepoint of the
batch's transaction, so a job that raises is undone alone and its exception goes back to its caller, while the
others commit. The batch commits once; only then are the callers' futures resolved. A caller that got a result
knows its change is durable (SQLite WAL with ``synchronous=NORMAL``: survives a process crash; PostgreSQL:
fsynced at commit). If the commit itself fails, every job of the batch gets the error and nothing of it is kept.

A batch first runs without savepoints (they cost a statement each); only when a job raises is the batch
rolled back and redone with a savepoint per job. Jobs must therefore be safe to run twice in a rolled-back
transaction (they only touch the database through ``conn``).

This is how 64 concurrent order submissions cost a handful of commits instead of 64.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from smart_trader.ops.metrics import DB_BATCH_JOBS, DB_BATCH_SECONDS

T = TypeVar("T")
Job = Callable[[Connection], Any]
_STOP = object()


@dataclass(frozen=True, slots=True)
class Bulk:
    """A job that can run together with others of the same ``fn``: the writer calls ``fn(conn, items)`` once for
    all the items of a batch and ``fn`` returns one result per item, in order (one executemany instead of one
    statement per caller). If ``fn`` raises, each item is retried alone so only the failing one gets the error."""

    fn: Callable[[Connection, list[Any]], list[Any]]
    item: Any


class BatchWriter:
    """One writer thread committing queued jobs in batches of up to ``max_batch``.

    Use :meth:`run` from async code (``await writer.run(job)``) or :meth:`submit` from threads.
    """

    def __init__(self, engine: Engine, max_batch: int = 256) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="db-writer", daemon=True)
        self._started = False
        self.batches = 0
        self.jobs = 0

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        """Finish every queued job, then stop the thread."""
        if self._started:
            self._queue.put(_STOP)
            self._thread.join()
            self._started = False

    def submit(self, job: Callable[[Connection], T]) -> Future[T]:
        """Queue ``job``; the future gets its result after the batch committed (or its exception)."""
        fut: Future[T] = Future()
        self._queue.put((job, fut))
        return fut

    def submit_bulk(self, fn: Callable[[Connection, list[Any]], list[Any]], item: Any) -> Future[Any]:
        """Queue one item of a :class:`Bulk` job; the future gets its own result after the commit."""
        fut: Future[Any] = Future()
        self._queue.put((Bulk(fn, item), fut))
        return fut

    async def run_bulk(self, fn: Callable[[Connection, list[Any]], list[Any]], item: Any) -> Any:
        """Queue ``item`` for ``fn`` (see :class:`Bulk`) and wait for its committed result."""
        return await asyncio.wrap_future(self.submit_bulk(fn, item))

    async def run(self, job: Callable[[Connection], T]) -> T:
        """Queue ``job`` and wait for its committed result.

        Raises:
            whatever ``job`` raised, or the database error that failed the batch's commit.
        """
        return await asyncio.wrap_future(self.submit(job))

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(b is _STOP for b in batch)
            work = [b for b in batch if b is not _STOP]
            if work:
                self._commit(work)
            if stop:
                return

    def _commit(self, work: list[tuple[Any, Future[Any]]]) -> None:
        start = time.perf_counter()
        live = [(job, fut) for job, fut in work if fut.set_running_or_notify_cancel()]
        try:
            try:  # fast path: every job in one transaction, no savepoints
                with self.engine.begin() as conn:
                    results = self._run_all(conn, live, isolate=False)
            except _JobFailedError:  # a job raised: redo the batch with a savepoint per job
                with self.engine.begin() as conn:
                    results = self._run_all(conn, live, isolate=True)
        except Exception as exc:  # the commit failed: nothing of the batch is kept
            for _job, fut in live:
                fut.set_exception(exc)
            return
        self.batches += 1
        self.jobs += len(live)
        DB_BATCH_JOBS.observe(len(live))
        DB_BATCH_SECONDS.observe(time.perf_counter() - start)
        for fut, ok, value in results:
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    @staticmethod
    def _run_all(conn: Connection, work: list[tuple[Any, Future[Any]]], isolate: bool) -> list[_Result]:
        results: list[_Result] = []
        bulks: dict[Any, list[tuple[Any, Future[Any]]]] = {}
        for job, fut in work:
            if isinstance(job, Bulk):
                bulks.setdefault(job.fn, []).append((job.item, fut))
            elif isolate:
                results.append(_run_one(conn, job, fut))
            else:
                try:
                    results.append((fut, True, job(conn)))
                except Exception as exc:
                    raise _JobFailedError from exc
        for fn, entries in bulks.items():
            if isolate:
                results += _run_bulk(conn, fn, entries)
            else:
                try:
                    values = fn(conn, [item for item, _fut in entries])
                except Exception as exc:
                    raise _JobFailedError from exc
                results += [(fut, True, v) for (_item, fut), v in zip(entries, values, strict=True)]
        return results


class _JobFailedError(Exception):
    """A job of an unisolated batch raised: the batch is redone with a savepoint per job."""


_Result = tuple[Future[Any], bool, Any]


def _run_one(conn: Connection, job: Job, fut: Future[Any]) -> tuple[Future[Any], bool, Any]:
    """Run a job in its own savepoint: its failure is undone alone and reported to its caller."""
    try:
        with conn.begin_nested():
            return fut, True, job(conn)
    except Exception as exc:
        return fut, False, exc


def _run_bulk(
    conn: Connection, fn: Callable[[Connection, list[Any]], list[Any]], entries: list[tuple[Any, Future[Any]]]
) -> list[tuple[Future[Any], bool, Any]]:
    """All items in one call; when it fails, each item alone (so one bad item fails only its caller)."""
    try:
        with conn.begin_nested():
            values = fn(conn, [item for item, _fut in entries])
        return [(fut, True, value) for (_item, fut), value in zip(entries, values, strict=True)]
    except Exception:
        if len(entries) == 1:
            item, fut = entries[0]
            return [_run_one(conn, lambda c: fn(c, [item])[0], fut)]
        return [r for e in entries for r in _run_bulk(conn, fn, [e])]
