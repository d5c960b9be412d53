"""RedisBus against the real Redis at 127.0.0.1:6379: cross-process delivery, exactly once on each hub.

Skips when Redis is unreachable; fails instead when ``CI`` is set (CI provides Redis).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import redis

from smart_trader.gateway.hub import Hub, Subscriber, quotes_topic
from smart_trader.gateway.redis_bus import RedisBus

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TOPIC = quotes_topic("BTC/USDT.BINANCE")


@pytest.fixture(scope="module")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except (redis.RedisError, OSError) as exc:
        msg = f"Redis not reachable at {REDIS_URL} ({exc}); start one with `docker run -p 6379:6379 redis:7`"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return REDIS_URL


def unique_prefix() -> str:
    """A channel namespace of its own, so concurrent test runs on the same Redis do not see each other."""
    return f"smart-trader-test-{uuid.uuid4().hex}:"


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def test_publish_on_one_hub_reaches_both_exactly_once(redis_url: str) -> None:
    async def scenario() -> None:
        prefix = unique_prefix()
        hub_a, hub_b = Hub(), Hub()
        bus_a, bus_b = RedisBus(redis_url, hub_a, prefix=prefix), RedisBus(redis_url, hub_b, prefix=prefix)
        await bus_a.start()
        await bus_b.start()
        try:
            assert hub_a.bus is bus_a and hub_b.bus is bus_b
            sub_a, sub_b = hub_a.attach(), hub_b.attach()
            other_b = hub_b.attach()
            hub_a.subscribe(sub_a, TOPIC)
            hub_b.subscribe(sub_b, TOPIC)
            hub_b.subscribe(other_b, quotes_topic("ETH/USDT.BINANCE"))
            messages = [f'{{"type":"quote","topic":"{TOPIC}","seq":{i}}}' for i in range(500)]

            for m in messages:
                hub_a.publish(TOPIC, m)
            assert sub_a.drain() == []  # with a bus, local delivery happens when Redis sends it back

            got_a: list[str] = []
            got_b: list[str] = []

            def collected() -> bool:
                got_a.extend(sub_a.drain())
                got_b.extend(sub_b.drain())
                return len(got_a) >= len(messages) and len(got_b) >= len(messages)

            await eventually(collected)
            await asyncio.sleep(0.2)  # anything duplicated would have arrived by now
            got_a.extend(sub_a.drain())
            got_b.extend(sub_b.drain())
            assert got_a == messages
            assert got_b == messages
            assert other_b.drain() == []
            assert bus_a.pending == 0
        finally:
            await bus_a.stop()
            await bus_b.stop()
        assert hub_a.bus is None
        hub_a.publish(TOPIC, "local")  # detached: in-process delivery again
        assert sub_a.drain() == ["local"]

    run(scenario)


def test_prefixes_isolate_namespaces(redis_url: str) -> None:
    async def scenario() -> None:
        hub_a, hub_b = Hub(), Hub()
        bus_a, bus_b = (
            RedisBus(redis_url, hub_a, prefix=unique_prefix()),
            RedisBus(redis_url, hub_b, prefix=unique_prefix()),
        )
        await bus_a.start()
        await bus_b.start()
        try:
            sub_a, sub_b = hub_a.attach(), hub_b.attach()
            hub_a.subscribe(sub_a, TOPIC)
            hub_b.subscribe(sub_b, TOPIC)
            hub_a.publish(TOPIC, "only-a")
            await eventually(lambda: len(sub_a.queue) == 1)
            await asyncio.sleep(0.1)
            assert sub_b.drain() == []
        finally:
            await bus_a.stop()
            await bus_b.stop()

    run(scenario)


def test_slow_subscriber_is_dropped_on_the_receiving_side(redis_url: str) -> None:
    async def scenario() -> None:
        hub = Hub(queue_size=10)
        bus = RedisBus(redis_url, hub, prefix=unique_prefix())
        await bus.start()
        try:
            slow: Subscriber = hub.attach()
            fast = hub.attach()
            hub.subscribe(slow, TOPIC)
            hub.subscribe(fast, TOPIC)
            got: list[str] = []
            for i in range(100):
                hub.publish(TOPIC, str(i))
                await eventually(lambda: bool(fast.queue))
                got.extend(fast.drain())
            assert got == [str(i) for i in range(100)]
            assert slow.dropped and hub.subscriber_count(TOPIC) == 1
        finally:
            await bus.stop()

    run(scenario)


def test_subscriber_reconnects_after_the_connection_is_killed(redis_url: str) -> None:
    async def scenario() -> None:
        name = f"smart-trader-test-{uuid.uuid4().hex}"
        hub = Hub()
        bus = RedisBus(redis_url, hub, prefix=unique_prefix(), client_name=name)
        await bus.start()
        admin = redis.Redis.from_url(redis_url)
        try:
            sub = hub.attach()
            hub.subscribe(sub, TOPIC)
            hub.publish(TOPIC, "before")
            await eventually(lambda: len(sub.queue) == 1)
            # kill this bus's listener connection (named, subscribed to a pattern)
            killed = 0
            for client in admin.client_list():
                if client.get("name") == name and int(client.get("psub", 0)) > 0:
                    killed += admin.client_kill_filter(_id=client["id"])
            assert killed >= 1

            async def delivered_after() -> None:
                while True:  # messages published while reconnecting are lost (pub/sub); keep publishing
                    hub.publish(TOPIC, "after")
                    await asyncio.sleep(0.05)
                    if "after" in sub.queue:
                        return

            await asyncio.wait_for(delivered_after(), 10)
            assert sub.drain()[0] == "before"
        finally:
            admin.close()
            await bus.stop()

    run(scenario)


def test_start_fails_fast_when_redis_is_unreachable() -> None:
    async def scenario() -> None:
        hub = Hub()
        bus = RedisBus("redis://127.0.0.1:1/0", hub)
        with pytest.raises((redis.RedisError, OSError)):
            await bus.start()
        assert hub.bus is None

    run(scenario)
