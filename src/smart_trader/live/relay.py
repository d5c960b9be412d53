"""The outbox relay: delivers committed outbox events, then marks them published; the order it marks them in (a
strictly increasing ``published_ns`` per batch, batches one after the other) is the delivery order every ordered
consumer follows (:mod:`smart_trader.workers.outbox_source`). One relay per deployment: it runs in the process that
holds the trading runtime's lock.

At least once: an event is marked published in the same transaction that read it, after it was handed on; if the
process dies before that commit, the next relay delivers it again (consumers dedupe by ``event_id``, WebSocket clients
by ``outbox_id``). With ``REDIS_URL`` each event is appended to its family's Redis stream (the backbone's consumer
groups read them: :mod:`smart_trader.workers.streams`) and its WebSocket document published on Redis pub/sub (channel
``smart-trader:<topic>``, which the hub of every process listens to), both in one pipeline inside that transaction;
when Redis is down the transaction fails, nothing is marked, and the relay tries again (trading goes on; the outbox
holds the events). Without Redis the documents go to this process's hub and the in-process consumers are woken (they
read the published rows themselves).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, cast

import structlog
from sqlalchemy import Connection, func, select, update

from smart_trader.core.clock import now_ns as wall_clock_ns
from smart_trader.db.outbox import outbox
from smart_trader.db.writer import BatchWriter
from smart_trader.gateway.projections import ws_message

log = structlog.get_logger("smart_trader.relay")
Deliver = Callable[[Sequence[Any]], None]
"""Hands on a batch of ``outbox`` rows (in id order); raises when they could not be delivered."""
REDIS_PREFIX = "smart-trader:"
DEFAULT_STREAM_RETENTION_MS = 7 * 24 * 3600 * 1000


def redis_deliver(
    url: str,
    prefix: str = REDIS_PREFIX,
    retention_ms: int = DEFAULT_STREAM_RETENTION_MS,
    stream_prefix: str | None = None,
) -> Deliver:
    """A deliver function appending each event to its family's stream (trimmed to ``retention_ms`` by age) and
    publishing its WebSocket document, in one Redis pipeline (blocking).

    Raises:
        redis.exceptions.ConnectionError: Redis is unreachable (the relay retries later).
    """
    import redis

    from smart_trader.workers.envelope import row_fields
    from smart_trader.workers.streams import PREFIX, stream_key

    streams = PREFIX if stream_prefix is None else stream_prefix

    # bounded waits: an unreachable Redis fails the delivery in seconds (the relay retries), never hangs it
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)

    def deliver(rows: Sequence[Any]) -> None:
        pipe = client.pipeline(transaction=False)
        minid = max(0, time.time_ns() // 1_000_000 - retention_ms)
        for r in rows:
            if r.event_id is not None:
                pipe.xadd(stream_key(r.stream, streams), cast(Any, row_fields(r)), minid=minid, approximate=True)
            pipe.publish(prefix + r.topic, ws_message(r.payload, r.id))
        pipe.execute()

    return deliver


class OutboxRelay:
    """Moves outbox events to the bus; :meth:`wake` after a commit that wrote events, else it polls.

    Args:
        writer: the group-commit writer (the relay's read-and-mark runs as one of its jobs).
        deliver: hands on a list of outbox rows (:data:`Deliver`); runs in the writer's transaction.
        batch: events per transaction.
        poll_seconds: how often the outbox is read when nobody wakes the relay.
        now_ns: the wall clock of ``published_ns`` (ns UTC).
    """

    def __init__(
        self,
        writer: BatchWriter,
        deliver: Deliver,
        batch: int = 500,
        poll_seconds: float = 0.5,
        now_ns: Callable[[], int] = wall_clock_ns,
        blocking: bool = False,
    ) -> None:
        self.writer = writer
        self.blocking = blocking
        self.now_ns = now_ns
        self.deliver = deliver
        self.batch = batch
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self._last_stamp = -1  # the last published_ns written (read from the database at the first batch)

    def wake(self) -> None:
        """Events were committed: relay them now."""
        self._wake.set()

    def start(self) -> None:
        """Start relaying in the background."""
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Relay what is pending, then stop (a relay never started does nothing: one relay per deployment)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(Exception):
            while await self.relay_once() == self.batch:
                pass

    async def relay_once(self) -> int:
        """Publish one batch of pending events; returns how many.

        A ``blocking`` deliver (network I/O: Redis) runs in a thread between two writer transactions — read, deliver,
        mark — so a slow or unreachable Redis never holds the writer (orders and fills keep committing); a crash
        between the delivery and the mark delivers the batch again (consumers dedupe). A non-blocking deliver (this
        process's hub) runs inside one transaction with the read and the mark."""
        if not self.blocking:
            n: int = await self.writer.run(self._job)
        else:
            rows = await self.writer.run(self._read)
            n = len(rows)
            if rows:
                await asyncio.to_thread(self.deliver, rows)
                await self.writer.run(partial(self._mark, ids=[r.id for r in rows]))
        self.published += n
        return n

    def _read(self, conn: Connection) -> Sequence[Any]:
        q = select(outbox).where(outbox.c.published_ns.is_(None)).order_by(outbox.c.id).limit(self.batch)
        return conn.execute(q).all()

    def _mark(self, conn: Connection, ids: list[int]) -> None:
        conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(published_ns=self._stamp(conn)))

    def _stamp(self, conn: Connection) -> int:
        """The next batch's ``published_ns``: the wall clock, but always above the last one (a clock step back must
        not reorder deliveries)."""
        if self._last_stamp < 0:
            self._last_stamp = int(conn.execute(select(func.max(outbox.c.published_ns))).scalar() or 0)
        self._last_stamp = max(self.now_ns(), self._last_stamp + 1)
        return self._last_stamp

    def _job(self, conn: Connection) -> int:
        rows = self._read(conn)
        if not rows:
            return 0
        self.deliver(rows)
        self._mark(conn, [r.id for r in rows])
        return len(rows)

    async def _loop(self) -> None:
        failures = 0
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 a wait_for cancelled as its timeout fires could leave
            # this task "cancelling" for ever, and shutdown waited on it (seen in the test suite, ~1 run in 10)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while await self.relay_once() == self.batch:
                    pass
                failures = 0
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.exception("outbox relay failed; retrying (the events wait in the outbox)")
                else:
                    log.warning("outbox relay still failing", attempts=failures, error=repr(exc))
                await asyncio.sleep(min(5.0, self.poll_seconds * 2 ** min(failures, 4)))
