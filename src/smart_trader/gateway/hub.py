"""In-process fan-out of live updates to WebSocket subscribers (the hub of the ``/ws`` stream).

Topics are plain strings:

- ``quotes.{instrument_id}``, ``trades.{instrument_id}`` (instrument id ``"SYMBOL.VENUE"``, e.g.
  ``"quotes.BTC/USDT.BINANCE"``),
- ``bars.{instrument_id}.{timeframe}`` with the canonical timeframe text (``str(Timeframe.parse("60s"))`` is
  ``"1m"``),
- ``orders.{account_id}``, ``accounts.{account_id}``, ``challenges.{account_id}``,
- ``notifications.{user_id}``.

A message is already-serialized JSON text: it is encoded once by the publisher and the same ``str`` object is
queued for every subscriber of its topic. Each subscriber (one WebSocket connection) has a bounded queue drained
by its own writer task; a subscriber whose queue is full is dropped (its ``on_drop`` callback runs, it is removed
from every topic, and ``websocket_clients_dropped_total`` counts it), so a slow client never slows ``publish``
nor the other clients.

Everything here runs on one asyncio event loop and is not thread-safe: call ``publish`` from the loop's thread
(from another thread use ``loop.call_soon_threadsafe(hub.publish, topic, message)``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from smart_trader.ops.metrics import WEBSOCKET_CLIENTS_DROPPED, WEBSOCKET_MESSAGES_DROPPED

if TYPE_CHECKING:
    from smart_trader.gateway.redis_bus import RedisBus

DEFAULT_QUEUE_SIZE = 1000
"""Messages one subscriber may have waiting before it is dropped (``settings.ws_queue_size``'s default)."""


def quotes_topic(instrument_id: str) -> str:
    """Topic of the quotes of one instrument (``"quotes.BTC/USDT.BINANCE"``)."""
    return f"quotes.{instrument_id}"


def trades_topic(instrument_id: str) -> str:
    """Topic of the trades of one instrument (``"trades.BTC/USDT.BINANCE"``)."""
    return f"trades.{instrument_id}"


def bars_topic(instrument_id: str, timeframe: str) -> str:
    """Topic of the bars of one instrument and timeframe (``"bars.BTC/USDT.BINANCE.1m"``).

    ``timeframe`` must be the canonical text ``str(Timeframe)`` (``"1m"``, not ``"60s"``), as the WebSocket
    endpoint normalizes what clients send that way.
    """
    return f"bars.{instrument_id}.{timeframe}"


def orders_topic(account_id: str) -> str:
    """Topic of the order updates of one account (``"orders.{account_id}"``)."""
    return f"orders.{account_id}"


def accounts_topic(account_id: str) -> str:
    """Topic of the account (balance, equity, positions) updates of one account (``"accounts.{account_id}"``)."""
    return f"accounts.{account_id}"


def challenges_topic(account_id: str) -> str:
    """Topic of the challenge updates of one challenge account (``"challenges.{account_id}"``): status, floors, room
    left, objectives, warnings and breaches."""
    return f"challenges.{account_id}"


def notifications_topic(user_id: str) -> str:
    """Topic of one user's notifications (``"notifications.{user_id}"``): a WebSocket client subscribes to its own
    only (channel ``notifications``, no fields)."""
    return f"notifications.{user_id}"


class Subscriber:
    """One consumer of the hub (one WebSocket connection): a bounded FIFO of messages and its topics.

    Created by :meth:`Hub.attach`. The owner drains it with :meth:`wait` then ``popleft()`` on :attr:`queue`
    (one writer task per connection), or :meth:`drain` in tests. Messages are ``str`` (JSON text) as published.

    Attributes:
        queue: pending messages, oldest first. Never longer than :attr:`maxsize`.
        maxsize: capacity of the queue; one more message drops the subscriber.
        topics: topics this subscriber is subscribed to (read-only for callers; use the hub's methods).
        dropped: True once dropped for a full queue (it then receives nothing more).
        closed: True once detached or dropped.
        on_drop: called once, synchronously inside ``publish``, when the subscriber is dropped; it must not block
            (typically it cancels the connection's writer task).
    """

    __slots__ = ("_hub", "_waiter", "closed", "dropped", "maxsize", "on_drop", "queue", "topics")

    def __init__(self, hub: Hub, maxsize: int, on_drop: Callable[[], None] | None = None) -> None:
        if maxsize <= 0:
            raise ValueError(f"queue size must be positive, got {maxsize}")
        self.queue: deque[str] = deque()
        self.maxsize = maxsize
        self.topics: set[str] = set()
        self.dropped = False
        self.closed = False
        self.on_drop = on_drop
        self._hub = hub
        self._waiter: asyncio.Future[None] | None = None

    def put(self, message: str) -> bool:
        """Queue one message for this subscriber alone (e.g. a reply to its own request).

        Returns False (and drops the subscriber as :meth:`Hub.publish` would) when the queue is full, or when
        the subscriber is already closed.
        """
        if self.closed:
            return False
        if len(self.queue) >= self.maxsize:
            self._drop(1)
            return False
        self.queue.append(message)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return True

    async def wait(self) -> None:
        """Return once the queue holds at least one message, or the subscriber is closed (check ``closed``)."""
        if self.queue or self.closed:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None

    def drain(self) -> list[str]:
        """Take every pending message (oldest first), leaving the queue empty."""
        items = list(self.queue)
        self.queue.clear()
        return items

    def _close(self) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _drop(self, undelivered: int) -> None:
        """Mark dropped: count the undelivered messages and the client, wake the writer, call ``on_drop``."""
        if self.dropped:
            return
        self.dropped = True
        self._hub._forget(self)
        WEBSOCKET_MESSAGES_DROPPED.inc(undelivered + len(self.queue))
        WEBSOCKET_CLIENTS_DROPPED.inc()
        self.queue.clear()
        self._close()
        if self.on_drop is not None:
            self.on_drop()


class Hub:
    """Topic → subscribers fan-out on the running asyncio loop; optionally shared across processes via Redis.

    ``publish`` costs O(subscribers of the topic): one ``deque.append`` per subscriber (plus waking its writer
    when it was idle). It never awaits, so a slow subscriber cannot slow it.

    Args:
        queue_size: default capacity of a subscriber's queue (``settings.ws_queue_size``).
    """

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size <= 0:
            raise ValueError(f"queue size must be positive, got {queue_size}")
        self.queue_size = queue_size
        self._topics: dict[str, set[Subscriber]] = {}
        self._subscribers: set[Subscriber] = set()
        self._bus: RedisBus | None = None

    # -- wiring ----------------------------------------------------------------------------------------------

    @property
    def bus(self) -> RedisBus | None:
        """The attached :class:`~smart_trader.gateway.redis_bus.RedisBus`, or None (in-process only)."""
        return self._bus

    def set_bus(self, bus: RedisBus | None) -> None:
        """Route ``publish`` through ``bus`` (None: deliver locally). Done by ``RedisBus.start``/``stop``."""
        self._bus = bus

    # -- subscribers -----------------------------------------------------------------------------------------

    def attach(self, queue_size: int | None = None, on_drop: Callable[[], None] | None = None) -> Subscriber:
        """Register a new subscriber (one connection) with no topics yet.

        Args:
            queue_size: its queue capacity; None: the hub's ``queue_size``.
            on_drop: called once if it is dropped for a full queue (see :class:`Subscriber`).
        """
        sub = Subscriber(self, self.queue_size if queue_size is None else queue_size, on_drop)
        self._subscribers.add(sub)
        return sub

    def detach(self, sub: Subscriber) -> None:
        """Unsubscribe ``sub`` from every topic and close it (idempotent). Pending messages are discarded."""
        self._forget(sub)
        sub.queue.clear()
        sub._close()

    def subscribe(self, sub: Subscriber, topic: str) -> bool:
        """Subscribe ``sub`` to ``topic``; True if it was not subscribed already.

        Raises:
            ValueError: ``sub`` is closed (detached or dropped).
        """
        if sub.closed:
            raise ValueError("subscriber is closed")
        if topic in sub.topics:
            return False
        subs = self._topics.get(topic)
        if subs is None:
            subs = self._topics[topic] = set()
        subs.add(sub)
        sub.topics.add(topic)
        return True

    def unsubscribe(self, sub: Subscriber, topic: str) -> bool:
        """Unsubscribe ``sub`` from ``topic``; True if it was subscribed."""
        if topic not in sub.topics:
            return False
        sub.topics.discard(topic)
        subs = self._topics.get(topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._topics[topic]
        return True

    def subscriber_count(self, topic: str) -> int:
        """How many subscribers ``topic`` has in this process."""
        subs = self._topics.get(topic)
        return len(subs) if subs else 0

    @property
    def connection_count(self) -> int:
        """Attached (not yet detached or dropped) subscribers in this process."""
        return len(self._subscribers)

    def topics(self) -> Iterable[str]:
        """Topics with at least one local subscriber."""
        return self._topics.keys()

    # -- messages --------------------------------------------------------------------------------------------

    def publish(self, topic: str, message: str) -> None:
        """Send ``message`` (JSON text, serialized once) to every subscriber of ``topic``. Never blocks.

        With a Redis bus attached the message goes to Redis and is delivered locally when it comes back (so each
        process, this one included, delivers it exactly once); without, it is delivered locally right away.
        Subscribers whose queue is full are dropped.
        """
        bus = self._bus
        if bus is not None:
            bus.publish(topic, message)
        else:
            self.deliver_local(topic, message)

    def deliver_local(self, topic: str, message: str) -> None:
        """Queue ``message`` for this process's subscribers of ``topic`` (the bus calls this for each message)."""
        subs = self._topics.get(topic)
        if not subs:
            return
        overflowed: list[Subscriber] | None = None
        for sub in subs:
            queue = sub.queue
            if len(queue) >= sub.maxsize:
                if overflowed is None:
                    overflowed = []
                overflowed.append(sub)
                continue
            queue.append(message)
            waiter = sub._waiter
            if waiter is not None:
                sub._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
        if overflowed is not None:
            for sub in overflowed:
                sub._drop(1)

    def _forget(self, sub: Subscriber) -> None:
        """Remove ``sub`` from every topic and from the attached set."""
        self._subscribers.discard(sub)
        for topic in sub.topics:
            subs = self._topics.get(topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._topics[topic]
        sub.topics.clear()
