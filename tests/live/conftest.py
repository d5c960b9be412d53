"""Fixtures of the live-feed tests: a market-data service over a fresh SMART_TRADER_HOME, and helpers to drain
async feeds from synchronous tests."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterable
from pathlib import Path
from typing import TypeVar

import pytest

from smart_trader.data.service import MarketDataService

T = TypeVar("T")


@pytest.fixture
def service(home: Path) -> MarketDataService:
    """A market-data service whose store lives in the test's own SMART_TRADER_HOME."""
    return MarketDataService(home)


async def take(feed: AsyncIterable[T], limit: int | None = None) -> list[T]:
    """The first ``limit`` items of ``feed`` (all of them when ``None``)."""
    out: list[T] = []
    if limit == 0:
        return out
    async for item in feed:
        out.append(item)
        if limit is not None and len(out) >= limit:
            break
    return out


def drain(feed: AsyncIterable[T], limit: int | None = None, timeout_s: float = 20.0) -> list[T]:
    """:func:`take` run in a fresh event loop, failing after ``timeout_s`` instead of hanging."""
    return asyncio.run(asyncio.wait_for(take(feed, limit), timeout_s))


def pairwise_non_decreasing(values: list[int]) -> bool:
    """Whether ``values`` never go down."""
    return all(a <= b for a, b in itertools.pairwise(values))
