"""The worker side of a process: which consumers run, on which transport (composition; the consumers live in their
services: compliance, analytics, notifications).

``smart-trader up`` runs them in its own process; ``smart-trader serve --role worker`` runs them alone (any number of
replicas: parallel consumers share their Redis consumer groups, ordered ones run on the replica holding their lock).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

from sqlalchemy import Engine

from smart_trader.db.writer import BatchWriter
from smart_trader.settings import Settings
from smart_trader.workers.consumer import Consumer
from smart_trader.workers.runner import ConsumerRunner


def consumers(settings: Settings | None = None) -> list[Consumer]:
    """Every consumer of the backbone, in the order they are started: the audit chain (ordered), the analytics
    projection (performance, leaderboards; its Redis cache invalidated when ``REDIS_URL`` is set) and the
    notifications (e-mail deliveries when ``SMTP_HOST`` is set). Without ``settings``: their defaults (rebuilds)."""
    from smart_trader.analytics.projection import AnalyticsProjection
    from smart_trader.compliance.consumer import AuditConsumer
    from smart_trader.notifications.consumer import NotificationConsumer

    cache = None
    if settings is not None and settings.redis_url:
        import redis

        from smart_trader.analytics.leaderboard import LeaderboardCache

        cache = LeaderboardCache(redis.Redis.from_url(settings.redis_url))
    notifications = NotificationConsumer() if settings is None else NotificationConsumer.from_settings(settings)
    return [AuditConsumer(), AnalyticsProjection(cache), notifications]


def runners(
    settings: Settings, engine: Engine, writer: BatchWriter, chosen: Sequence[Consumer] | None = None
) -> list[ConsumerRunner]:
    """A runner per consumer: ordered consumers read the outbox (one replica at a time, by lock); the others read
    their Redis consumer group when ``REDIS_URL`` is set, else the outbox in this process."""
    client = None
    if settings.redis_url:
        import redis

        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=10)
    me = f"{socket.gethostname()}-{os.getpid()}"
    out: list[ConsumerRunner] = []
    for c in consumers(settings) if chosen is None else chosen:
        source = None
        if client is not None and not c.ordered:
            from smart_trader.workers.streams import StreamSource

            source = StreamSource(
                client,
                c.name,
                c.streams,
                me,
                claim_ms=int(settings.worker_claim_seconds * 1000),
                max_attempts=settings.worker_max_attempts,
                prefix=settings.event_stream_prefix,
            )
        # the outbox readers poll once a second instead of being woken at every relay batch: one batch then carries
        # about a second of events, and per-batch work (the chain's head, an account's statistics) is paid once for
        # them — woken per relay batch, `up`'s order path cost 2–4× the CPU per order (docs/benchmarks.md §8)
        out.append(
            ConsumerRunner(
                c, writer, engine, source, batch=2000, poll_seconds=1.0, max_attempts=settings.worker_max_attempts
            )
        )
    return out
