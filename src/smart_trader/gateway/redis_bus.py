"""Cross-process delivery of hub messages through Redis pub/sub (used when ``REDIS_URL`` is set).

Every process runs one :class:`RedisBus` attached to its :class:`~smart_trader.gateway.hub.Hub`.
``hub.publish(topic, message)`` then queues the message here; a publisher task sends the queue to Redis in
pipelined batches (``PUBLISH {prefix}{topic} {message}``). A listener task ``PSUBSCRIBE``s ``{prefix}*`` and hands
each message back to ``hub.deliver_local(topic, message)``, so every process, the publishing one included,
delivers each message exactly once to its own WebSocket clients.

Delivery guarantees are Redis pub/sub's: at most once while connected; messages published while a process is
disconnected from Redis are not replayed to it. Both tasks reconnect with exponential backoff (0.1 s doubling
to 5 s). A batch whose send failed is retried after reconnecting, so a connection lost in the middle of a
pipeline may deliver part of that batch twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub

from smart_trader.gateway.hub import Hub
from smart_trader.live.relay import REDIS_PREFIX

log = logging.getLogger(__name__)

DEFAULT_PREFIX = REDIS_PREFIX  # the channels the outbox relay publishes to
BATCH_SIZE = 1000
"""Most messages sent in one pipeline round trip."""
MAX_PENDING = 100_000
"""Most messages waiting to be sent to Redis; beyond it (Redis down for long) the oldest are discarded."""
BACKOFF_INITIAL_S = 0.1
BACKOFF_MAX_S = 5.0
SUBSCRIBE_TIMEOUT_S = 5.0
_POLL_S = 5.0  # listener read timeout: lets the client's health check (PING) run on a quiet connection


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class RedisBus:
    """Publish hub messages to Redis and deliver what comes back to the local hub.

    Args:
        url: Redis URL, e.g. ``redis://127.0.0.1:6379/0``.
        hub: the local hub; ``start`` attaches this bus to it (``hub.set_bus``), ``stop`` detaches it.
        prefix: channel namespace; a topic ``quotes.X`` travels on channel ``{prefix}quotes.X``. Processes that
            must see each other's messages use the same prefix (tests use a unique one).
        client_name: name of the bus's Redis connections (``CLIENT LIST`` shows it).

    Attributes:
        discarded: messages thrown away because more than ``MAX_PENDING`` were waiting for Redis.
    """

    def __init__(self, url: str, hub: Hub, prefix: str = DEFAULT_PREFIX, client_name: str = "smart-trader-bus") -> None:
        self.url = url
        self.client_name = client_name
        self.hub = hub
        self.prefix = prefix
        self.discarded = 0
        self._pending: deque[tuple[str, str]] = deque()
        self._wake = asyncio.Event()
        self._redis: Redis | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pending(self) -> int:
        """Messages queued and not yet sent to Redis."""
        return len(self._pending)

    async def start(self) -> None:
        """Connect, subscribe (waiting for Redis to confirm), start both tasks and attach to the hub.

        Once it returns, every message published to Redis under ``prefix`` reaches ``hub.deliver_local``.

        Raises:
            redis.exceptions.RedisError, OSError, TimeoutError: Redis unreachable at start (no retry here; after a
                successful start, connection losses are retried forever).
        """
        if self._redis is not None:
            raise RuntimeError("RedisBus already started")
        self._stopping = False
        self._redis = Redis.from_url(
            self.url,
            decode_responses=True,
            health_check_interval=15,
            socket_keepalive=True,
            client_name=self.client_name,
        )
        try:
            pubsub = await self._subscribe()
        except BaseException:
            await self._redis.aclose()
            self._redis = None
            raise
        self._listener = asyncio.create_task(self._listen(pubsub), name="redis-bus-listener")
        self._publisher = asyncio.create_task(self._publish_loop(), name="redis-bus-publisher")
        self.hub.set_bus(self)

    async def stop(self, flush_timeout: float = 2.0) -> None:
        """Detach from the hub, send what is still queued (for at most ``flush_timeout`` seconds), then close."""
        if self._redis is None:
            return
        if self.hub.bus is self:
            self.hub.set_bus(None)
        self._stopping = True
        self._wake.set()
        if self._publisher is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._publisher), flush_timeout)
            except TimeoutError:
                log.warning("redis bus: %d messages not sent at shutdown", len(self._pending))
            except (RedisError, OSError):
                pass
        for task in (self._publisher, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                    await task
        self._publisher = self._listener = None
        await self._redis.aclose()
        self._redis = None

    def publish(self, topic: str, message: str) -> None:
        """Queue ``message`` for Redis (non-blocking; called by ``Hub.publish``)."""
        pending = self._pending
        if len(pending) >= MAX_PENDING:
            pending.popleft()
            self.discarded += 1
            if self.discarded == 1 or self.discarded % 10_000 == 0:
                log.warning("redis bus: %d messages discarded, Redis not keeping up or unreachable", self.discarded)
        pending.append((topic, message))
        if not self._wake.is_set():
            self._wake.set()

    # -- tasks -----------------------------------------------------------------------------------------------

    async def _subscribe(self) -> PubSub:
        assert self._redis is not None
        pubsub = self._redis.pubsub()
        try:
            await pubsub.psubscribe(_glob_escape(self.prefix) + "*")
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                while True:
                    msg = await pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT_S)
                    if msg is not None and msg["type"] == "psubscribe":
                        return pubsub
        except BaseException:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise

    async def _listen(self, pubsub: PubSub | None) -> None:
        prefix_len = len(self.prefix)
        deliver = self.hub.deliver_local
        backoff = BACKOFF_INITIAL_S
        while True:
            try:
                if pubsub is None:
                    pubsub = await self._subscribe()
                    log.info("redis bus: subscriber reconnected")
                    backoff = BACKOFF_INITIAL_S
                get_message = pubsub.get_message
                while True:
                    msg: dict[str, Any] | None = await get_message(ignore_subscribe_messages=True, timeout=_POLL_S)
                    if msg is None or msg["type"] != "pmessage":
                        continue
                    try:
                        deliver(msg["channel"][prefix_len:], msg["data"])
                    except Exception:
                        log.exception("redis bus: local delivery failed")
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("redis bus: subscriber connection lost (%s); retrying in %.1fs", exc, backoff)
                if pubsub is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
                    pubsub = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _publish_loop(self) -> None:
        assert self._redis is not None
        redis = self._redis
        pending = self._pending
        backoff = BACKOFF_INITIAL_S
        while True:
            if not pending:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [pending.popleft() for _ in range(min(BATCH_SIZE, len(pending)))]
            try:
                pipe = redis.pipeline(transaction=False)
                prefix = self.prefix
                for topic, message in batch:
                    pipe.publish(prefix + topic, message)
                await pipe.execute()
                backoff = BACKOFF_INITIAL_S
            except (RedisError, OSError, TimeoutError) as exc:
                pending.extendleft(reversed(batch))
                if self._stopping:
                    raise
                log.warning("redis bus: publish failed (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
