"""The in-process hub: fan-out, unsubscribe, and slow consumers dropped without slowing fast ones."""

from __future__ import annotations

import asyncio
import time

import pytest

from smart_trader.gateway.hub import Hub, Subscriber, bars_topic, quotes_topic
from smart_trader.ops.metrics import WEBSOCKET_CLIENTS_DROPPED, WEBSOCKET_MESSAGES_DROPPED

QUOTES = quotes_topic("BTC/USDT.BINANCE")
OTHER = quotes_topic("ETH/USDT.BINANCE")


def test_topic_names() -> None:
    assert QUOTES == "quotes.BTC/USDT.BINANCE"
    assert bars_topic("BTC/USDT.BINANCE", "1m") == "bars.BTC/USDT.BINANCE.1m"


def test_fan_out_reaches_every_subscriber_of_the_topic_only() -> None:
    hub = Hub(queue_size=10)
    a, b, c = hub.attach(), hub.attach(), hub.attach()
    hub.subscribe(a, QUOTES)
    hub.subscribe(b, QUOTES)
    hub.subscribe(c, OTHER)
    message = '{"type":"quote","topic":"quotes.BTC/USDT.BINANCE"}'

    hub.publish(QUOTES, message)
    hub.publish("quotes.NOBODY.X", "ignored")

    assert a.drain() == [message]
    assert b.drain() == [message]
    assert c.drain() == []
    # serialized once, the very same object queued for everyone
    hub.publish(QUOTES, message)
    assert a.queue[0] is b.queue[0] is message
    assert hub.subscriber_count(QUOTES) == 2
    assert hub.subscriber_count(OTHER) == 1


def test_subscribe_is_idempotent_and_unsubscribe_stops_delivery() -> None:
    hub = Hub()
    sub = hub.attach()
    assert hub.subscribe(sub, QUOTES) is True
    assert hub.subscribe(sub, QUOTES) is False
    hub.publish(QUOTES, "1")
    assert hub.unsubscribe(sub, QUOTES) is True
    assert hub.unsubscribe(sub, QUOTES) is False
    hub.publish(QUOTES, "2")
    assert sub.drain() == ["1"]
    assert hub.subscriber_count(QUOTES) == 0
    assert QUOTES not in hub.topics()


def test_detach_removes_from_every_topic_and_closes() -> None:
    hub = Hub()
    sub = hub.attach()
    hub.subscribe(sub, QUOTES)
    hub.subscribe(sub, OTHER)
    hub.publish(QUOTES, "pending")
    hub.detach(sub)
    hub.detach(sub)  # idempotent
    hub.publish(QUOTES, "after")
    assert sub.closed and not sub.dropped
    assert sub.drain() == []
    assert hub.subscriber_count(QUOTES) == hub.subscriber_count(OTHER) == 0
    assert hub.connection_count == 0
    with pytest.raises(ValueError, match="closed"):
        hub.subscribe(sub, QUOTES)


def test_full_queue_drops_the_subscriber_and_counts_it() -> None:
    hub = Hub(queue_size=3)
    dropped: list[Subscriber] = []
    slow = hub.attach()
    slow.on_drop = lambda: dropped.append(slow)
    hub.subscribe(slow, QUOTES)
    hub.subscribe(slow, OTHER)
    clients_before = WEBSOCKET_CLIENTS_DROPPED._value.get()
    messages_before = WEBSOCKET_MESSAGES_DROPPED._value.get()

    for i in range(5):
        hub.publish(QUOTES, str(i))

    assert dropped == [slow]
    assert slow.dropped and slow.closed
    assert hub.subscriber_count(QUOTES) == hub.subscriber_count(OTHER) == 0
    assert WEBSOCKET_CLIENTS_DROPPED._value.get() == clients_before + 1
    # the 4th message did not fit and the 3 queued ones are discarded with the client
    assert WEBSOCKET_MESSAGES_DROPPED._value.get() == messages_before + 4
    assert slow.put("reply") is False


def test_put_beyond_capacity_drops_too() -> None:
    hub = Hub(queue_size=2)
    sub = hub.attach()
    hub.subscribe(sub, QUOTES)
    assert sub.put("a") and sub.put("b")
    assert sub.put("c") is False
    assert sub.dropped and hub.subscriber_count(QUOTES) == 0


def test_wait_wakes_on_message_and_on_detach() -> None:
    async def scenario() -> None:
        hub = Hub()
        sub = hub.attach()
        hub.subscribe(sub, QUOTES)
        waiter = asyncio.create_task(sub.wait())
        await asyncio.sleep(0)
        assert not waiter.done()
        hub.publish(QUOTES, "x")
        await asyncio.wait_for(waiter, 1)
        assert sub.drain() == ["x"]

        waiter = asyncio.create_task(sub.wait())
        await asyncio.sleep(0)
        hub.detach(sub)
        await asyncio.wait_for(waiter, 1)
        assert sub.closed

    asyncio.run(scenario())


def test_slow_consumer_is_dropped_without_slowing_a_fast_one() -> None:
    """A consumer that never reads is dropped; a consumer that keeps up receives every message, in order."""
    n = 20_000

    async def scenario() -> None:
        hub = Hub(queue_size=100)
        fast, slow = hub.attach(), hub.attach()
        slow_dropped = asyncio.Event()
        slow.on_drop = slow_dropped.set
        hub.subscribe(fast, QUOTES)
        hub.subscribe(slow, QUOTES)
        received: list[str] = []

        async def drain_fast() -> None:
            while len(received) < n:
                await fast.wait()
                received.extend(fast.drain())

        consumer = asyncio.create_task(drain_fast())
        publish_s = 0.0
        for i in range(n):
            t0 = time.perf_counter()
            hub.publish(QUOTES, f'{{"seq":{i}}}')
            publish_s += time.perf_counter() - t0
            if i % 50 == 49:
                await asyncio.sleep(0)  # the publisher yields as a real feed does; the fast consumer runs
        await asyncio.wait_for(consumer, 5)

        assert slow_dropped.is_set() and slow.dropped
        assert received == [f'{{"seq":{i}}}' for i in range(n)]
        assert not fast.dropped
        assert hub.subscriber_count(QUOTES) == 1
        # publish never waits for anyone: 20k publishes take far less than a second (measured: ~10 ms)
        assert publish_s < 0.5

    asyncio.run(scenario())


def test_fan_out_cost_is_per_subscriber_of_the_topic() -> None:
    """Publishing to a topic with one subscriber is not slowed by 10,000 subscribers of other topics."""
    hub = Hub()
    for i in range(10_000):
        hub.subscribe(hub.attach(), quotes_topic(f"S{i}.X"))
    lonely = hub.attach()
    hub.subscribe(lonely, QUOTES)
    t0 = time.perf_counter()
    for _ in range(500):
        hub.publish(QUOTES, "m")
        lonely.drain()
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.1  # ~1 µs each; a scan of all subscribers would be ~0.5 s
