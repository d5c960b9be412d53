"""Runs one consumer: reads its events from the transport, applies them exactly once, acknowledges, retries and
dead-letters; publishes the backbone's metrics.

Two transports (see :mod:`~smart_trader.workers.outbox_source` and :mod:`~smart_trader.workers.streams`):

- **outbox** (no Redis, and every ordered consumer): read, apply and move the offset in ONE transaction of the
  group-commit writer. An event its consumer fails on is retried alone (``event_retries_total``) after a back-off;
  after ``max_attempts`` it is marked consumed with its error (``consumed.error``: a dead letter,
  ``event_dead_letters_total``) so the consumer goes on. An ordered consumer never skips an event otherwise.
- **Redis Streams**: read a batch from the group, apply it in one transaction, then ``XACK``. When the batch fails,
  its events are applied one per transaction; failing ones stay pending and come back (``XAUTOCLAIM``) until their
  delivery count passes ``max_attempts``, then go to the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import structlog
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smart_trader.db.writer import BatchWriter
from smart_trader.ops.metrics import (
    EVENT_DEAD_LETTERS,
    EVENT_PROCESSING_SECONDS,
    EVENT_RETRIES,
    EVENTS_PROCESSED,
    WORKER_QUEUE_LENGTH,
)
from smart_trader.workers import outbox_source
from smart_trader.workers.consumer import Consumer, apply
from smart_trader.workers.envelope import Envelope
from smart_trader.workers.leader import ConsumerLock
from smart_trader.workers.streams import Delivery, StreamSource
from smart_trader.workers.tables import consumed

log = structlog.get_logger("smart_trader.workers")
BACKSTOP = 10
"""An entry delivered more than ``BACKSTOP × max_attempts`` times is dead-lettered whatever this replica counted."""


class ConsumerRunner:
    """Feeds ``consumer`` its events until stopped.

    Args:
        consumer: the consumer.
        writer: the group-commit writer its transactions run on.
        engine: for reads outside the writer (queue length).
        source: the Redis stream reader of its group, or ``None`` for the outbox transport.
        batch: events per transaction.
        poll_seconds: how often the outbox is read when nobody wakes the runner.
        max_attempts: failed attempts after which an event is dead-lettered.
        now_ns: wall clock (ns UTC) for the latency histogram.
    """

    def __init__(
        self,
        consumer: Consumer,
        writer: BatchWriter,
        engine: Engine,
        source: StreamSource | None = None,
        *,
        batch: int = 500,
        poll_seconds: float = 0.5,
        max_attempts: int = 5,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.consumer = consumer
        self.writer = writer
        self.engine = engine
        self.source = source
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self.now_ns = now_ns
        # without Redis every consumer has one reader at a time (its position is one row), however many replicas run
        self.lock = ConsumerLock(engine, consumer.name) if source is None else None
        self.applied = 0
        self._attempts: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._metric_task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        """The consumer group's name."""
        return self.consumer.name

    def wake(self) -> None:
        """Events were committed: read now (outbox transport)."""
        self._wake.set()

    def start(self) -> None:
        """Run in the background (and refresh ``worker_queue_length`` every 5 s)."""
        self._task = asyncio.create_task(self._loop())
        self._metric_task = asyncio.create_task(self._measure_loop())

    async def stop(self) -> None:
        """Stop reading (what was committed stays applied; the rest comes again to the next runner)."""
        for t in (self._task, self._metric_task):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        if self.lock is not None:
            await asyncio.to_thread(self.lock.release)

    async def run_once(self) -> int:
        """Process one batch; returns the events read (0: nothing to do, or another replica holds the order lock)."""
        if self.source is not None:
            return await self._stream_once()
        if self.lock is not None and not await asyncio.to_thread(self.lock.try_acquire):
            return 0
        return await self._outbox_once()

    async def drain(self, idle_rounds: int = 2) -> int:
        """Process until nothing is left (tests, shutdown); returns the events read."""
        total, idle = 0, 0
        while idle < idle_rounds:
            n = await self.run_once()
            total += n
            idle = idle + 1 if n == 0 else 0
        return total

    async def queue_length(self) -> int:
        """Events waiting for this consumer group (see ``worker_queue_length``)."""
        if self.source is not None:
            return await asyncio.to_thread(self.source.lag)

        def count() -> int:
            with self.engine.connect() as conn:
                return outbox_source.lag(conn, self.consumer.name, self.consumer.streams)

        return await asyncio.to_thread(count)

    # -- outbox transport ------------------------------------------------------------------------
    async def _outbox_once(self) -> int:
        c = self.consumer

        def job(conn: Connection) -> list[Envelope]:
            events = outbox_source.read(conn, c.name, c.streams, self.batch)
            if events:
                apply(conn, c, events)
                outbox_source.advance(conn, c.name, events[-1].published_ns, events[-1].outbox_id)
            return events

        try:
            events = await self.writer.run(job)
        except Exception as exc:
            if _unavailable(exc):
                raise  # the database is down: the loop backs off; nothing is counted against the events
            return await self._outbox_one_by_one()
        self._done(events)
        return len(events)

    async def _outbox_one_by_one(self) -> int:
        """The batch failed: apply its events one per transaction up to the one that fails."""
        c = self.consumer
        events = await self.writer.run(lambda conn: outbox_source.read(conn, c.name, c.streams, self.batch))
        n = 0
        for e in events:

            def one(conn: Connection, e: Envelope = e) -> None:
                apply(conn, c, [e])
                outbox_source.advance(conn, c.name, e.published_ns, e.outbox_id)

            try:
                await self.writer.run(one)
            except Exception as exc:
                if _unavailable(exc):
                    raise
                if self._failed(e.event_id, exc, getattr(c, "dead_letters", True)):
                    await self.writer.run(partial(_mark_dead, consumer=c.name, e=e, error=repr(exc)))
                    n += 1
                    continue
                await asyncio.sleep(min(5.0, 0.1 * 2 ** self._attempts.get(e.event_id, 1)))
                return n
            self._done([e])
            n += 1
        return n

    # -- Redis Streams transport ----------------------------------------------------------------
    async def _stream_once(self) -> int:
        assert self.source is not None
        source = self.source
        got: list[Delivery] = await asyncio.to_thread(source.read, self.batch)
        if not got:
            return 0
        good: list[Delivery] = []
        for d in got:
            if d.event is None:
                await asyncio.to_thread(source.dead_letter, d, "not an event envelope")
                EVENT_DEAD_LETTERS.labels(self.name).inc()
            elif (
                self._attempts.get(d.event.event_id, 0) >= self.max_attempts
                or d.attempts > BACKSTOP * self.max_attempts
            ):
                # its handler failed max_attempts times here, or it was delivered so often that it must be killing
                # the replicas that take it (their in-memory counts died with them)
                tries = max(self._attempts.pop(d.event.event_id, 0), d.attempts - 1)
                await asyncio.to_thread(source.dead_letter, d, f"failed {tries} times")
                EVENT_DEAD_LETTERS.labels(self.name).inc()
                log.error("event dead-lettered", group=self.name, event_id=d.event.event_id, attempts=tries)
            else:
                if d.attempts > 1:
                    EVENT_RETRIES.labels(self.name).inc()
                good.append(d)
        if not good:
            return len(got)
        c = self.consumer
        events = [d.event for d in good if d.event is not None]
        try:
            await self.writer.run(lambda conn: apply(conn, c, events))
            await asyncio.to_thread(source.ack, good)
            self._done(events)
        except Exception as exc:
            if _unavailable(exc):
                raise  # the database is down: entries stay pending, nothing counted against them; the loop backs off
            for d in good:
                assert d.event is not None
                try:
                    await self.writer.run(partial(_apply_one, consumer=c, event=d.event))
                except Exception as exc:  # stays pending: XAUTOCLAIM brings it back; its handler's failures count
                    if _unavailable(exc):
                        raise
                    self._attempts[d.event.event_id] = self._attempts.get(d.event.event_id, 0) + 1
                    log.warning("event failed", group=self.name, event_id=d.event.event_id, error=repr(exc))
                    continue
                await asyncio.to_thread(source.ack, [d])
                self._done([d.event])
        return len(got)

    # -- both ------------------------------------------------------------------------------------
    def _done(self, events: Sequence[Envelope]) -> None:
        if not events:
            return
        now = self.now_ns()
        hist = EVENT_PROCESSING_SECONDS.labels(self.name)
        for e in events:
            hist.observe(max(0, now - (e.created_ns or e.ts_init)) / 1e9)
            self._attempts.pop(e.event_id, None)
        EVENTS_PROCESSED.labels(self.name).inc(len(events))
        self.applied += len(events)
        after = getattr(self.consumer, "after_commit", None)  # e.g. the analytics' leaderboard cache invalidation
        if callable(after):
            try:
                after()
            except Exception:
                log.exception("after_commit failed", group=self.name)

    def _failed(self, event_id: str, exc: Exception, may_dead_letter: bool = True) -> bool:
        """Count a failed attempt; True when the event is to be dead-lettered. A consumer with ``dead_letters =
        False`` (the audit chain: a record must never be skipped) retries for ever, logging an error."""
        n = self._attempts.get(event_id, 0) + 1
        self._attempts[event_id] = n
        EVENT_RETRIES.labels(self.name).inc()
        log.warning("event failed", group=self.name, event_id=event_id, attempt=n, error=repr(exc))
        if n >= self.max_attempts and not may_dead_letter:
            log.error(
                "event refused again and again; this consumer never skips one", group=self.name, event_id=event_id
            )
            return False
        if n >= self.max_attempts:
            EVENT_DEAD_LETTERS.labels(self.name).inc()
            log.error("event dead-lettered", group=self.name, event_id=event_id, attempts=n)
            self._attempts.pop(event_id, None)
            return True
        return False

    async def _loop(self) -> None:
        failures = 0
        while True:
            try:
                n = await self.run_once()
                failures = 0
            except Exception as exc:  # the transport or the database is down: back off, up to 5 s
                failures += 1
                if failures == 1:
                    log.exception("consumer failed; retrying", group=self.name)
                else:
                    log.warning("consumer still failing", group=self.name, attempts=failures, error=repr(exc))
                await asyncio.sleep(min(5.0, self.poll_seconds * 2 ** min(failures, 4)))
                continue
            if n < self.batch and self.source is None:  # caught up: gather a poll period's events into one batch
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()
                self._wake.clear()
            elif n == 0:
                await asyncio.sleep(0)  # the stream read already blocked

    async def _measure_loop(self, every: float = 5.0) -> None:
        while True:
            with contextlib.suppress(Exception):
                WORKER_QUEUE_LENGTH.labels(self.name).set(await self.queue_length())
            await asyncio.sleep(every)


def _unavailable(exc: BaseException) -> bool:
    """The database (or the network to it) is down, as opposed to a handler refusing an event: such failures are
    retried with back-off and never count towards dead-lettering."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _apply_one(conn: Connection, consumer: Consumer, event: Envelope) -> int:
    return apply(conn, consumer, [event])


def _mark_dead(conn: Connection, consumer: str, e: Envelope, error: str) -> None:
    """Set ``e`` aside for ``consumer``: marked consumed with its error, the offset moved past it."""
    ins = pg_insert(consumed) if conn.dialect.name == "postgresql" else sqlite_insert(consumed)
    row: dict[str, Any] = {
        "consumer": consumer, "event_id": e.event_id, "outbox_id": e.outbox_id, "applied_ns": time.time_ns(),
        "error": error[:500],
    }  # fmt: skip
    conn.execute(ins.on_conflict_do_nothing(), [row])
    outbox_source.advance(conn, consumer, e.published_ns, e.outbox_id)
