"""A self-checking export of the audit trail for a regulator: a JSON Lines file whose first line says what it holds
(the range, the hash of the record before it, the head hash, the number of records, how the hashes are made) and whose
other lines are the records with the event each one records. Anyone can check it without Smart Trader: recompute each
record's hash from its fields and the previous hash (SHA-256 over canonical JSON, :mod:`smart_trader.compliance.chain`)
and each payload's hash; ``smart-trader audit verify --file`` does exactly that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import Connection, func, select

from smart_trader.compliance import store
from smart_trader.compliance.chain import GENESIS, AuditRecord, BrokenLink, payload_hash, verify
from smart_trader.compliance.tables import audit_log
from smart_trader.core.errors import InvalidInputError
from smart_trader.db.outbox import outbox

FORMAT = "smart-trader-audit-export/1"
ALGORITHM = (
    "hash = sha256(canonical_json([seq, ts_ns, actor, action, subject, request_id, event_id, payload_hash, "
    "prev_hash])), payload_hash = sha256(canonical_json(payload)); canonical JSON: keys sorted, no whitespace, UTF-8; "
    "the first record's prev_hash is the header's prev_hash"
)


def seq_range(conn: Connection, first_ns: int | None, last_ns: int | None) -> tuple[int, int] | None:
    """The first and last ``seq`` of the records with ``first_ns ≤ ts_ns < last_ns`` (ns UTC; ``None``: open), or
    ``None`` when there are none."""
    q = select(func.min(audit_log.c.seq), func.max(audit_log.c.seq))
    if first_ns is not None:
        q = q.where(audit_log.c.ts_ns >= first_ns)
    if last_ns is not None:
        q = q.where(audit_log.c.ts_ns < last_ns)
    lo, hi = conn.execute(q).one()
    return None if lo is None else (int(lo), int(hi))


def export(conn: Connection, out: IO[bytes], first: int = 1, last: int | None = None, batch: int = 5000) -> int:
    """Write the records ``first..last`` (seq) with their events to ``out``; returns how many.

    Raises:
        InvalidInputError: the record before ``first`` is not stored (the file could not be checked).
    """
    prev_hash = GENESIS
    if first > 1:
        before = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == first - 1)).scalar()
        if before is None:
            raise InvalidInputError(f"record {first - 1} (before --from) is not stored")
        prev_hash = str(before)
    top = conn.execute(select(func.max(audit_log.c.seq))).scalar() or 0
    last = min(int(top), last) if last is not None else int(top)
    records = list(store.records(conn, first, last)) if last >= first else []
    head = records[-1].hash if records else prev_hash
    header = {
        "format": FORMAT, "from": first, "to": last, "records": len(records), "prev_hash": prev_hash,
        "head_hash": head, "algorithm": ALGORITHM,
    }  # fmt: skip
    out.write(orjson.dumps(header) + b"\n")
    for k in range(0, len(records), batch):
        chunk = records[k : k + batch]
        ids = [r.event_id for r in chunk if r.event_id]
        payloads = {
            str(r.event_id): orjson.loads(r.payload)
            for r in conn.execute(select(outbox.c.event_id, outbox.c.payload).where(outbox.c.event_id.in_(ids)))
        }
        for r in chunk:
            line = dataclasses.asdict(r) | {"payload": payloads.get(r.event_id or "")}
            out.write(orjson.dumps(line) + b"\n")
    return len(records)


@dataclasses.dataclass(frozen=True, slots=True)
class FileCheck:
    """The outcome of checking an export: records checked, the head reached, the first problem or ``None``."""

    records: int
    head_hash: str
    broken: BrokenLink | None


def check_file(path: Path) -> FileCheck:
    """Check an export (see the module docstring): the chain from the header's ``prev_hash``, the header's count and
    head, and every included payload against its record's ``payload_hash``.

    Raises:
        InvalidInputError: the file is not an export.
    """
    with path.open("rb") as f:
        try:
            header = orjson.loads(f.readline())
        except orjson.JSONDecodeError:
            raise InvalidInputError(f"{path} is not an audit export (no header line)") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise InvalidInputError(f"{path} is not an audit export ({FORMAT})")
        bad_payload: list[BrokenLink] = []
        records = list(_records(f, bad_payload))
    n, head, broken = verify(records, str(header["prev_hash"]), int(header["from"]))
    if broken is None and bad_payload:
        broken = bad_payload[0]
    if broken is None and (n != int(header["records"]) or head != header["head_hash"]):
        broken = BrokenLink(int(header["from"]) + n, f"the file ends early: header says {header['records']} records")
    return FileCheck(n, head, broken)


def _records(lines: Iterable[bytes], bad: list[BrokenLink]) -> Iterator[AuditRecord]:
    names = [f.name for f in dataclasses.fields(AuditRecord)]
    for raw in lines:
        if not raw.strip():
            continue
        d: dict[str, Any] = orjson.loads(raw)
        record = AuditRecord(**{k: d[k] for k in names})
        payload = d.get("payload")
        if payload is not None and payload_hash(payload) != record.payload_hash and not bad:
            bad.append(BrokenLink(record.seq, "its event's payload does not give its payload_hash"))
        yield record
