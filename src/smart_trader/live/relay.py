"""The outbox relay: publishes committed outbox events to the event bus, then marks them published.

At least once: an event is marked published in the same transaction that read it, after it was handed on;
if the process dies before that commit, the next relay publishes it again (consumers dedupe by ``outbox_id``).
With ``REDIS_URL`` events are published to Redis pub/sub synchronously inside that transaction (channel
``smart-trader:<topic>``, the channel the WebSocket hub of every process listens to); without Redis they go to
this process's hub. On PostgreSQL, rows are locked with ``FOR UPDATE SKIP LOCKED`` so several processes
can relay at once without publishing the same event twice in the normal case.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from sqlalchemy import Connection, select, update

from smart_trader.core.clock import now_ns as wall_clock_ns
from smart_trader.db.outbox import outbox
from smart_trader.db.writer import BatchWriter

log = structlog.get_logger("smart_trader.relay")
Deliver = Callable[[list[tuple[str, str]]], None]
REDIS_PREFIX = "smart-trader:"


def redis_deliver(url: str, prefix: str = REDIS_PREFIX) -> Deliver:
    """A deliver function publishing (topic, message) pairs to Redis in one pipeline (blocking).

    Raises:
        redis.exceptions.ConnectionError: Redis is unreachable (the relay retries later).
    """
    import redis

    client = redis.Redis.from_url(url)

    def deliver(messages: list[tuple[str, str]]) -> None:
        pipe = client.pipeline(transaction=False)
        for topic, message in messages:
            pipe.publish(prefix + topic, message)
        pipe.execute()

    return deliver


class OutboxRelay:
    """Moves outbox events to the bus; :meth:`wake` after a commit that wrote events, else it polls.

    Args:
        writer: the group-commit writer (the relay's read-and-mark runs as one of its jobs).
        deliver: publishes a list of (topic, JSON text); runs in the writer thread and must be thread-safe.
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
    ) -> None:
        self.writer = writer
        self.now_ns = now_ns
        self.deliver = deliver
        self.batch = batch
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def wake(self) -> None:
        """Events were committed: relay them now."""
        self._wake.set()

    def start(self) -> None:
        """Start relaying in the background."""
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Relay what is pending, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            while await self.relay_once() == self.batch:
                pass

    async def relay_once(self) -> int:
        """Publish one batch of pending events; returns how many."""
        n: int = await self.writer.run(self._job)
        self.published += n
        return n

    def _job(self, conn: Connection) -> int:
        q = select(outbox.c.id, outbox.c.topic, outbox.c.payload).where(outbox.c.published_ns.is_(None))
        q = q.order_by(outbox.c.id).limit(self.batch)
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rows = conn.execute(q).all()
        if not rows:
            return 0
        self.deliver([(r.topic, _with_id(r.payload, r.id)) for r in rows])
        ids = [r.id for r in rows]
        conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(published_ns=self.now_ns()))
        return len(rows)

    async def _loop(self) -> None:
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
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(self.poll_seconds)


def _with_id(payload: str, outbox_id: int) -> str:
    """The payload (a JSON object) with its ``outbox_id`` first (consumers dedupe on it); no re-encoding."""
    if payload.startswith("{}"):
        return '{"outbox_id":' + str(outbox_id) + "}"
    return '{"outbox_id":' + str(outbox_id) + "," + payload[1:]
