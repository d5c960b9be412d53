"""Redis Streams as the event backbone's transport (when ``REDIS_URL`` is set).

- One stream per event family: ``smart-trader:events:<family>`` (``orders``, ``accounts``, ``challenges``, ...). The
  relay appends with ``XADD ... MINID ~ <now − retention>`` (trimmed by age, approximately, at each append).
- One consumer group per consumer (its ``name``), created at the stream's start (id ``0``) so a new group reads the
  retained history (and made again when Redis comes back without its data: ``NOGROUP``); every worker replica is one
  consumer of the group (``XREADGROUP``): the group shares the load. Used by consumers whose effects do not depend on
  the order of events across accounts (notifications); ordered ones read the outbox.
- A replica killed before it acknowledged leaves its entries pending: another replica (or itself restarted under a new
  name) takes them with ``XAUTOCLAIM`` once idle for ``claim_ms``. An entry whose handler failed ``max_attempts``
  times (counted by the runner; database outages do not count), or delivered ``10 × max_attempts`` times (it kills
  the replicas that take it), or that is not an envelope, goes to the dead-letter stream
  ``smart-trader:events:dead-letter`` (with its group, stream, id and reason) and is acknowledged.
- Acknowledge (``XACK``) only after the consumer's transaction committed: delivery is at least once, the consumer's
  ``consumed`` marks make the effect exactly once.

Sources: https://redis.io/docs/latest/develop/data-types/streams/ (consumer groups, XAUTOCLAIM, XPENDING delivery
counts, MINID trimming).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis

from smart_trader.workers.envelope import Envelope, from_fields

PREFIX = "smart-trader:events:"
DEAD_LETTER = PREFIX + "dead-letter"


def stream_key(family: str, prefix: str = PREFIX) -> str:
    """The Redis key of an event family's stream."""
    return prefix + family


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stream entry handed to a consumer: ``event`` is ``None`` when the entry is not an envelope."""

    key: str
    entry_id: str
    event: Envelope | None
    attempts: int


class StreamSource:
    """One replica's reader of a consumer group over the streams of ``families`` (blocking redis-py calls: run it in a
    thread).

    Args:
        client: a synchronous ``redis.Redis``.
        group: the consumer group (the consumer's name).
        families: the event families it reads.
        consumer_id: this replica's name in the group (unique per running process).
        claim_ms: idle time after which another replica's pending entry is taken over.
        max_attempts: deliveries after which an entry is dead-lettered.
        prefix: the streams' key prefix (:data:`PREFIX`; its ``dead-letter`` stream beside them).
    """

    def __init__(
        self,
        client: redis.Redis,
        group: str,
        families: tuple[str, ...],
        consumer_id: str,
        claim_ms: int = 30_000,
        max_attempts: int = 5,
        prefix: str = PREFIX,
    ) -> None:
        self.client = client
        self.group = group
        self.keys = [stream_key(f, prefix) for f in families]
        self.dead_letter_key = prefix + "dead-letter"
        self.consumer_id = consumer_id
        self.claim_ms = claim_ms
        self.max_attempts = max_attempts
        self._ready = False

    def ensure_groups(self) -> None:
        """Create the group on every stream (from the beginning of the retained history) where it is missing."""
        for key in self.keys:
            try:
                self.client.xgroup_create(key, self.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._ready = True

    def read(self, count: int = 500, block_ms: int = 500) -> list[Delivery]:
        """Entries to process: first those idle too long in the group's pending list (taken over), then new ones
        (waiting up to ``block_ms`` when there are none)."""
        if not self._ready:
            self.ensure_groups()
        try:
            out = self._claim(count)
            if out:
                return out
            got: Any = self.client.xreadgroup(
                self.group, self.consumer_id, dict.fromkeys(self.keys, ">"), count=count, block=block_ms
            )
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis restarted without its data: make the groups again, read on
                self._ready = False
                return []
            raise
        for key, entries in got or []:
            k = key.decode() if isinstance(key, bytes) else str(key)
            for entry_id, fields in entries:
                out.append(_delivery(k, entry_id, fields, 1))
        return out

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge processed entries (after their transaction committed)."""
        by_key: dict[str, list[str]] = {}
        for d in deliveries:
            by_key.setdefault(d.key, []).append(d.entry_id)
        if by_key:
            pipe = self.client.pipeline(transaction=False)
            for key, ids in by_key.items():
                pipe.xack(key, self.group, *ids)
            pipe.execute()

    def dead_letter(self, d: Delivery, reason: str) -> None:
        """Move an entry to the dead-letter stream and acknowledge it."""
        fields = d.event.fields() if d.event is not None else {}
        fields.update({"group": self.group, "source_stream": d.key, "source_id": d.entry_id, "reason": reason[:500]})
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.dead_letter_key, cast(Any, fields))
        pipe.xack(d.key, self.group, d.entry_id)
        pipe.execute()

    def lag(self) -> int:
        """Entries of the group's streams not yet delivered plus those delivered and not acknowledged (Redis ≥ 7.0
        ``XINFO GROUPS`` ``lag`` + ``pending``)."""
        total = 0
        for key in self.keys:
            try:
                groups: Any = self.client.xinfo_groups(key)
            except redis.ResponseError:
                continue
            for g in groups:
                name = g.get("name")
                if (name.decode() if isinstance(name, bytes) else name) == self.group:
                    total += int(g.get("lag") or 0) + int(g.get("pending") or 0)
        return total

    def _claim(self, count: int) -> list[Delivery]:
        out: list[Delivery] = []
        for key in self.keys:
            res: Any = self.client.xautoclaim(key, self.group, self.consumer_id, self.claim_ms, "0-0", count=count)
            entries = res[1] if res else []
            if not entries:
                continue
            pipe = self.client.pipeline(transaction=False)  # each entry's own delivery count (claims are rare)
            for e in entries:
                pipe.xpending_range(key, self.group, min=e[0], max=e[0], count=1)
            counts = {_text(p["message_id"]): int(p["times_delivered"]) for got in pipe.execute() for p in got}
            for entry_id, fields in entries:
                if fields is None:  # deleted by trimming while pending
                    self.client.xack(key, self.group, entry_id)
                    continue
                out.append(_delivery(key, entry_id, fields, counts.get(_text(entry_id), 2)))
        return out


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _delivery(key: str, entry_id: Any, fields: Any, attempts: int) -> Delivery:
    try:
        event: Envelope | None = from_fields(fields)
    except (KeyError, ValueError):
        event = None
    return Delivery(key, _text(entry_id), event, attempts)
