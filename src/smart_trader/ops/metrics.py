"""Prometheus metrics of the platform (names from PRODUCT.md's operational surface).

All metrics live in the default registry of ``prometheus_client``; ``/metrics`` renders it.
Units: money in the account currency (summed across accounts as plain numbers), durations in seconds.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.pool import Pool, QueuePool

from smart_trader.risk.aggregates import RiskGauges

API_RESPONSE_DURATION = Histogram(
    "api_response_duration_seconds",
    "HTTP response time by method, route template and status code (seconds).",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
WEBSOCKET_CONNECTIONS_ACTIVE = Gauge("websocket_connections_active", "Open WebSocket connections in this process.")
WEBSOCKET_MESSAGES_DROPPED = Counter(
    "websocket_messages_dropped_total", "Messages not delivered because a client's send queue was full."
)
WEBSOCKET_CLIENTS_DROPPED = Counter(
    "websocket_clients_dropped_total", "WebSocket clients disconnected for being too slow."
)
TRADING_PNL = Gauge(
    "trading_pnl_total", "Realized plus unrealized P&L of all accounts (account currency, summed).", ["currency"]
)
TRADING_VOLUME = Counter("trading_volume_total", "Notional traded by fills (quote currency, summed).", ["currency"])
RISK_GAUGES = RiskGauges(REGISTRY)
"""``portfolio_var_95`` and ``portfolio_drawdown`` over every loaded account: ``{stat="max"|"mean"|"p50"|"p95"}`` and
``_top{rank}``, never one series per account (``risk/aggregates.py``)."""
ORDERS = Counter("orders_total", "Order status changes seen by the broker, by resulting status.", ["status"])
ORDERS_SUBMITTED = Counter("orders_submitted_total", "Orders accepted for processing by the API.")
FILLS = Counter("fills_total", "Fills executed by the paper broker.")
MARKET_EVENTS = Counter("market_events_total", "Market-data events processed by the feed, by kind.", ["kind"])
DB_BATCH_JOBS = Histogram(
    "db_write_batch_jobs",
    "Jobs committed together by the group-commit writer (one transaction).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
DB_WRITER_PAUSE_SECONDS = Histogram(
    "db_writer_pause_seconds",
    "How long the group-commit writer was held for an SQLite RESTART checkpoint (seconds; writes queue meanwhile).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
DB_BATCH_SECONDS = Histogram(
    "db_write_batch_seconds",
    "Time the group-commit writer spent on one batch, from its first statement to its commit (seconds).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
# the event backbone (workers/): one series per consumer group (a handful), never per account
WORKER_QUEUE_LENGTH = Gauge(
    "worker_queue_length",
    "Events not yet processed by a consumer group: stream lag plus pending entries (Redis), or outbox rows after its "
    "offset (in process).",
    ["group"],
)
EVENT_PROCESSING_SECONDS = Histogram(
    "event_processing_seconds",
    "From the event's creation (ts_init) to its consumer's commit (seconds).",
    ["group"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
EVENTS_PROCESSED = Counter("events_processed_total", "Events applied by a consumer group.", ["group"])
EVENT_RETRIES = Counter(
    "event_retries_total", "Deliveries of an event retried after its consumer failed on it.", ["group"]
)
EVENT_DEAD_LETTERS = Counter(
    "event_dead_letters_total", "Events set aside after too many failed attempts (dead-letter).", ["group"]
)

# -- the deployment kit's metrics (deploy/monitoring: alert rules and dashboards use every one of them) -------------
LOGIN_FAILURES = Counter(
    "auth_login_failures_total",
    "Failed logins, by reason: credentials (wrong email or password at /auth/token), disabled (a disabled user's "
    "right password: answered as a wrong one), current-password (a wrong current password at /auth/password). "
    'Refusals while backing off or locked are the 429s of api_response_duration_seconds{route=~".*/auth/.*"}.',
    ["reason"],
)
LOGIN_FAILURE_REASONS: Final = ("credentials", "disabled", "current-password")
CACHE_REQUESTS = Counter(
    "cache_requests_total",
    "Cache lookups by cache and result: hit, miss, or error (the cache failed or timed out: served uncached).",
    ["cache", "result"],
)
CACHE_RESULTS: Final = ("hit", "miss", "error")
PORTFOLIO_EQUITY = Gauge(
    "portfolio_equity",
    "Equity (cash + marked-to-market positions) of all loaded accounts (account currency, summed).",
    ["currency"],
)
for _reason in LOGIN_FAILURE_REASONS:  # every series exists from the start (at 0): rate() and alerts see the first one
    LOGIN_FAILURES.labels(_reason)
for _result in CACHE_RESULTS:
    CACHE_REQUESTS.labels("leaderboard", _result)


def memory_limit_bytes(cgroup: Path = Path("/sys/fs/cgroup"), physical: Callable[[], int] | None = None) -> float:
    """The memory this process's container may use (bytes): the cgroup v2 ``memory.max`` or the cgroup v1
    ``memory/memory.limit_in_bytes``; the machine's physical memory when there is no limit (``max``, a v1 "no limit"
    value above the physical memory) or no cgroup file is readable."""
    phys = physical() if physical is not None else os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for name in ("memory.max", "memory/memory.limit_in_bytes"):
        try:
            raw = (cgroup / name).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and 0 < int(raw) < phys:
            return float(raw)
        return float(phys)
    return float(phys)


MEMORY_LIMIT = Gauge(
    "process_memory_limit_bytes",
    "Memory this process's container may use: its cgroup limit, or the physical memory without one (bytes). "
    "Alert on process_resident_memory_bytes / process_memory_limit_bytes.",
)
MEMORY_LIMIT.set_function(memory_limit_bytes)  # read at each scrape (a small file), never at import


class PoolCollector(Collector):
    """Database connection pools as gauges, read from the pools at each scrape (nothing on the checkout path):

    - ``db_pool_max_connections{pool}``: the most connections the pool opens (``pool_size + max_overflow``);
    - ``db_pool_checked_out_connections{pool}``: connections in use now;
    - ``db_pool_idle_connections{pool}``: connections open and waiting in the pool.

    ``pool`` names what the engine is for (``main``: reads and the SQLite writer; ``writer``: the PostgreSQL group
    commit). Pools of the same name in one process (tests open several platforms) are summed. A pool is held weakly:
    a disposed engine's pool disappears with it. Pools without a bound (``NullPool``, ``StaticPool``) are skipped.
    """

    def __init__(self) -> None:
        self._pools: weakref.WeakKeyDictionary[Pool, str] = weakref.WeakKeyDictionary()

    def track(self, pool: Pool, name: str) -> None:
        """Publish ``pool`` under ``pool=name`` from now on (QueuePool and its asyncio variant; others ignored)."""
        if isinstance(pool, QueuePool):
            self._pools[pool] = name

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats: dict[str, list[float]] = {}
        for pool, name in list(self._pools.items()):
            assert isinstance(pool, QueuePool)
            overflow: int = getattr(pool, "_max_overflow", 0)
            capacity = float("inf") if overflow < 0 else float(pool.size() + overflow)
            each = stats.setdefault(name, [0.0, 0.0, 0.0])
            each[0] += capacity
            each[1] += pool.checkedout()
            each[2] += pool.checkedin()
        families = (
            GaugeMetricFamily("db_pool_max_connections", "Most connections the pool opens.", labels=["pool"]),
            GaugeMetricFamily("db_pool_checked_out_connections", "Connections in use now.", labels=["pool"]),
            GaugeMetricFamily("db_pool_idle_connections", "Connections open, waiting in the pool.", labels=["pool"]),
        )
        for name, values in sorted(stats.items()):
            for family, value in zip(families, values, strict=True):
                family.add_metric([name], value)
        yield from families

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self.collect()


DB_POOLS = PoolCollector()
REGISTRY.register(DB_POOLS)


def track_pool(pool: Pool, name: str) -> None:
    """Publish a database engine's connection pool as ``db_pool_*{pool=name}`` (:class:`PoolCollector`)."""
    DB_POOLS.track(pool, name)
