"""Retention of the audit trail: records older than the retention period (``AUDIT_RETENTION_DAYS``, default 7 years,
the ``003`` document's figure) move to Parquet files, one per UTC month, each carrying its chain head; then they leave
the database.

What stays verifiable: each file's metadata holds the hash of the record before it (``prev_hash``) and of its last
record (``head_hash``); ``audit_archives`` keeps the same for every file (append-only), so the stored chain verifies
from its first remaining record on, and ``smart-trader audit verify --file audit-2026-01-1-5000.parquet`` checks a file
alone. Only a prefix of the chain is archived (records ``1..S`` with every record before the cut-off), and the database
refuses to delete any record no archive covers (migration 0013's triggers).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from smart_trader.compliance import partitions, store
from smart_trader.compliance.chain import GENESIS, AuditRecord, BrokenLink, verify
from smart_trader.compliance.tables import audit_archives, audit_log
from smart_trader.core.errors import InvalidInputError

FORMAT = "smart-trader-audit-archive/1"


@dataclass(frozen=True, slots=True)
class Archived:
    """One archive file written: its path, UTC month, first and last ``seq`` and chain hashes."""

    path: Path
    period: str
    first_seq: int
    last_seq: int
    prev_hash: str
    head_hash: str


def _month(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).strftime("%Y-%m")


def archive(conn: Connection, out_dir: Path, before_ns: int, now_ns: int) -> list[Archived]:
    """Move the chain's prefix of records older than ``before_ns`` (ns UTC) to Parquet files in ``out_dir``, one per
    run of records of one UTC month, record them in ``audit_archives`` and delete them from ``audit_log``, in the
    caller's transaction. The prefix stops at the first record at or after ``before_ns`` (records after it stay even
    when older: the chain is cut only at one place). Returns the files written (none when nothing is due)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = conn.execute(select(func.min(audit_log.c.seq))).scalar()
    if first is None:
        return []
    stop = conn.execute(select(func.min(audit_log.c.seq)).where(audit_log.c.ts_ns >= before_ns)).scalar()
    last = (int(stop) - 1) if stop is not None else int(conn.execute(select(func.max(audit_log.c.seq))).scalar_one())
    if last < int(first):
        return []
    prev_hash = chain_base(conn, int(first))
    records = list(store.records(conn, int(first), last))
    runs: list[list[AuditRecord]] = []
    for r in records:
        if runs and _month(runs[-1][-1].ts_ns) == _month(r.ts_ns):
            runs[-1].append(r)
        else:
            runs.append([r])
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Archived] = []
    names = [f.name for f in fields(AuditRecord)]
    for run in runs:
        period = _month(run[0].ts_ns)
        path = out_dir / f"audit-{period}-{run[0].seq}-{run[-1].seq}.parquet"
        table = pa.Table.from_pylist([asdict(r) for r in run]).select(names)
        meta = {"format": FORMAT, "prev_hash": prev_hash, "head_hash": run[-1].hash,
                "first_seq": str(run[0].seq), "last_seq": str(run[-1].seq)}  # fmt: skip
        table = table.replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})
        pq.write_table(table, path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        conn.execute(
            insert(audit_archives).values(
                first_seq=run[0].seq, last_seq=run[-1].seq, period=period, records=len(run), prev_hash=prev_hash,
                head_hash=run[-1].hash, file=path.name, file_sha256=digest, archived_ns=now_ns,
            )
        )  # fmt: skip
        written.append(Archived(path, period, run[0].seq, run[-1].seq, prev_hash, run[-1].hash))
        prev_hash = run[-1].hash
    conn.execute(delete(audit_log).where(audit_log.c.seq <= last))
    partitions.drop_empty_before(conn, before_ns)  # PostgreSQL: whole archived months leave as partitions
    return written


def chain_base(conn: Connection, first: int) -> str:
    """The hash the record ``first`` must link to: :data:`GENESIS` for record 1, else the stored record ``first − 1``
    or the head of the archive that ends there.

    Raises:
        InvalidInputError: neither is stored (the chain cannot be checked from ``first``).
    """
    if first <= 1:
        return GENESIS
    row = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == first - 1)).scalar()
    if row is not None:
        return str(row)
    head = conn.execute(select(audit_archives.c.head_hash).where(audit_archives.c.last_seq == first - 1)).scalar()
    if head is None:
        raise InvalidInputError(f"record {first - 1} is neither stored nor archived")
    return str(head)


def archives_linked(conn: Connection) -> BrokenLink | None:
    """The archives' own chain: each starts where the one before ended (its ``prev_hash`` is that one's head)."""
    prev: Any = None
    for a in conn.execute(select(audit_archives).order_by(audit_archives.c.first_seq)):
        if prev is None and (a.first_seq != 1 or a.prev_hash != GENESIS):
            return BrokenLink(int(a.first_seq), "the first archive does not start the chain")
        if prev is not None and (a.first_seq != prev.last_seq + 1 or a.prev_hash != prev.head_hash):
            return BrokenLink(int(a.first_seq), f"archive {a.file} does not follow {prev.file}")
        prev = a
    return None


def check_parquet(path: Path) -> tuple[int, str, BrokenLink | None]:
    """Check an archive file alone: its records chain from its ``prev_hash`` to its ``head_hash``.

    Raises:
        InvalidInputError: the file is not an audit archive.
    """
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise InvalidInputError(f"{path} is not a Parquet file: {exc}") from None
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if meta.get("format") != FORMAT:
        raise InvalidInputError(f"{path} is not an audit archive ({FORMAT})")
    records: Sequence[AuditRecord] = [AuditRecord(**row) for row in table.to_pylist()]
    n, head, broken = verify(records, meta["prev_hash"], int(meta["first_seq"]))
    if broken is None and (head != meta["head_hash"] or n == 0 or records[-1].seq != int(meta["last_seq"])):
        broken = BrokenLink(int(meta["first_seq"]) + n, "the file ends early: its head is not the recorded one")
    return n, head, broken
