"""The audit trail's hash chain, pure: each record's hash covers its fields and the previous record's hash, so changing,
deleting or reordering a stored record breaks the chain at that record (the pattern of a Merkle/hash chain as in
certificate-transparency logs and RFC 6962 §2, reduced to a linear chain).

A record: ``seq`` (1, 2, 3… without gaps), ``ts_ns`` (when it was appended, ns UTC), ``actor`` (user id, or None for the
platform), ``action`` (``order.submitted``, ``challenge.ChallengeBreached``, ``auth.login``…), ``subject`` (what it
acted on: an account, an order, a user), ``request_id``, ``event_id`` (the domain event's id), ``payload_hash`` (SHA-256
of the event's canonical JSON), ``prev_hash`` and ``hash`` (SHA-256 hex of the canonical JSON of every field before it).
Canonical JSON: keys sorted, no spaces, UTF-8 (RFC 8785's spirit for the plain strings and integers used here).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

GENESIS = "0" * 64
"""The ``prev_hash`` of the first record."""


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes of ``value`` (keys sorted, no whitespace; decimals and other non-JSON values as ``str``)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str)


def payload_hash(payload: Mapping[str, Any]) -> str:
    """SHA-256 hex of an event payload's canonical JSON."""
    return hashlib.sha256(canonical(payload)).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One link of the chain (see the module docstring for the fields)."""

    seq: int
    ts_ns: int
    actor: str | None
    action: str
    subject: str | None
    request_id: str | None
    event_id: str | None
    payload_hash: str
    prev_hash: str
    hash: str

    def expected_hash(self) -> str:
        """The hash this record's fields and ``prev_hash`` give."""
        return record_hash(
            self.seq, self.ts_ns, self.actor, self.action, self.subject, self.request_id, self.event_id,
            self.payload_hash, self.prev_hash,
        )  # fmt: skip


def record_hash(
    seq: int,
    ts_ns: int,
    actor: str | None,
    action: str,
    subject: str | None,
    request_id: str | None,
    event_id: str | None,
    payload_sha: str,
    prev_hash: str,
) -> str:
    """SHA-256 hex of a record's fields (in this order) and the previous record's hash."""
    fields = [seq, ts_ns, actor, action, subject, request_id, event_id, payload_sha, prev_hash]
    return hashlib.sha256(canonical(fields)).hexdigest()


def link(
    prev: AuditRecord | None,
    ts_ns: int,
    action: str,
    payload: Mapping[str, Any],
    *,
    actor: str | None = None,
    subject: str | None = None,
    request_id: str | None = None,
    event_id: str | None = None,
) -> AuditRecord:
    """The record that follows ``prev`` (``None``: the first, after :data:`GENESIS`)."""
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS if prev is None else prev.hash
    p_hash = payload_hash(payload)
    h = record_hash(seq, ts_ns, actor, action, subject, request_id, event_id, p_hash, prev_hash)
    return AuditRecord(seq, ts_ns, actor, action, subject, request_id, event_id, p_hash, prev_hash, h)


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """Where the chain breaks: the record's ``seq`` (as stored, or the one expected when a record is missing) and
    what is wrong."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"record {self.seq}: {self.reason}"


def verify(
    records: Iterable[AuditRecord], prev_hash: str = GENESIS, first_seq: int = 1
) -> tuple[int, str, BrokenLink | None]:
    """Check records in ``seq`` order from ``first_seq`` after ``prev_hash`` (the chain head before them):
    ``(records checked, the last good hash, the first broken link or None)``. A changed record fails its own hash; a
    deleted one leaves a gap in ``seq`` (and the next record's ``prev_hash`` points at it); two swapped records break
    the sequence where the first one stands."""
    expected_seq, head, n = first_seq, prev_hash, 0
    for r in records:
        if r.seq != expected_seq:
            what = "missing or out of order" if r.seq > expected_seq else "out of order"
            return n, head, BrokenLink(expected_seq, f"{what}: found record {r.seq} where {expected_seq} should be")
        if r.prev_hash != head:
            return n, head, BrokenLink(r.seq, "prev_hash does not match the previous record's hash")
        if r.expected_hash() != r.hash:
            return n, head, BrokenLink(r.seq, "its fields do not give its hash (the record was changed)")
        head, expected_seq, n = r.hash, expected_seq + 1, n + 1
    return n, head, None
