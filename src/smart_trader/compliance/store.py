"""Storage of the audit trail: append records to the chain and read them back for verification (``audit_log``, an
append-only table). Functions take a SQLAlchemy connection; appends run in the caller's transaction, one appender at a
time (the chain's order is its ``seq``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, select

from smart_trader.compliance import partitions
from smart_trader.compliance.chain import GENESIS, AuditRecord, BrokenLink, link, verify
from smart_trader.compliance.tables import audit_log
from smart_trader.core.clock import now_ns
from smart_trader.core.errors import InvalidInputError


def head(conn: Connection) -> AuditRecord | None:
    """The last record of the chain, or ``None`` when it is empty."""
    row = conn.execute(select(audit_log).order_by(audit_log.c.seq.desc()).limit(1)).first()
    return None if row is None else _record(row)


def append(conn: Connection, entries: Sequence[Mapping[str, Any]]) -> list[AuditRecord]:
    """Append ``entries`` (each: ``action``, ``payload`` and optional ``actor``, ``subject``, ``request_id``,
    ``event_id``, ``ts_ns``) after the chain's head; returns the records written."""
    prev = head(conn)
    out: list[AuditRecord] = []
    for e in entries:
        prev = link(
            prev, int(e.get("ts_ns") or now_ns()), str(e["action"]), e["payload"], actor=e.get("actor"),
            subject=e.get("subject"), request_id=e.get("request_id"), event_id=e.get("event_id"),
        )  # fmt: skip
        out.append(prev)
    if out:
        partitions.ensure(conn, (r.ts_ns for r in out))  # PostgreSQL: the months' partitions exist first
        conn.execute(insert(audit_log), [_row(r) for r in out])
    return out


def records(conn: Connection, first: int = 1, last: int | None = None, batch: int = 10_000) -> Iterator[AuditRecord]:
    """The records with ``first ≤ seq ≤ last`` in ``seq`` order, read ``batch`` at a time."""
    after = first - 1
    while True:
        q = select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(batch)
        if last is not None:
            q = q.where(audit_log.c.seq <= last)
        rows = list(conn.execute(q))
        if not rows:
            return
        for r in rows:
            yield _record(r)
        after = int(rows[-1].seq)


def verify_stored(conn: Connection, first: int = 1, last: int | None = None) -> tuple[int, str, BrokenLink | None]:
    """Verify the stored chain from ``first`` to ``last`` (see :func:`~smart_trader.compliance.chain.verify`); the
    ``prev_hash`` of ``first`` is the hash of record ``first − 1`` (:data:`GENESIS` for the first), or the head of the
    archive that ended there (retention: :mod:`~smart_trader.compliance.archive`). From record 1 on a database whose
    oldest records were archived, the check starts at the first stored record, after checking the archives link up."""
    from smart_trader.compliance.archive import archives_linked, chain_base

    stored_first = conn.execute(select(func.min(audit_log.c.seq))).scalar()
    if first == 1 and stored_first is not None and int(stored_first) > 1:
        broken = archives_linked(conn)
        if broken is not None:
            return 0, GENESIS, broken
        first = int(stored_first)
    try:
        prev_hash = chain_base(conn, first)
    except InvalidInputError:
        return 0, GENESIS, BrokenLink(first - 1, "missing: the record before the range is neither stored nor archived")
    return verify(records(conn, first, last), prev_hash, first)


def _row(r: AuditRecord) -> dict[str, Any]:
    return {
        "seq": r.seq, "ts_ns": r.ts_ns, "actor": r.actor, "action": r.action, "subject": r.subject,
        "request_id": r.request_id, "event_id": r.event_id, "payload_hash": r.payload_hash,
        "prev_hash": r.prev_hash, "hash": r.hash,
    }  # fmt: skip


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        int(row.seq), int(row.ts_ns), row.actor, str(row.action), row.subject, row.request_id, row.event_id,
        str(row.payload_hash), str(row.prev_hash), str(row.hash),
    )  # fmt: skip
