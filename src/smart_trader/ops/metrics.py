"""Prometheus metrics of the platform (names from PRODUCT.md's operational surface).

All metrics live in the default registry of ``prometheus_client``; ``/metrics`` renders it.
Units: money in the account currency (summed across accounts as plain numbers), durations in seconds.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

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
