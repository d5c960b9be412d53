"""One SHA-256 over the platform's durable state, to compare before a backup and after its restore.

What it covers, each part hashed on its own and then together (``state_sha256``):

- ``accounts``, ``positions``, ``orders``, ``fills``, ``ledger_entries``: every row, every column, in primary-key
  order, values in a canonical text form (exact decimals as stored, so ``1.50`` and ``1.5`` differ as they do in the
  database);
- ``audit``: the audit chain's record count, first and last ``seq`` and head hash, after verifying the chain
  (a broken chain makes the command fail);
- ``files``: every file under the Parquet folders of ``SMART_TRADER_HOME`` (``market-data``, the market-data store;
  ``audit-archive``, the audit trail's retention files, when present): relative path and SHA-256 of its bytes.

Usage: ``.venv/bin/python deploy/backup/state_hash.py [--database-url URL] [--home DIR] [--only PARTS] [--short]``
(defaults: ``DATABASE_URL`` and ``SMART_TRADER_HOME`` as the platform reads them). Prints a JSON document (each
part's row count and hash, and the total), or with ``--short`` the total alone; exit 1 when the audit chain is broken.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

TABLES = ("accounts", "positions", "orders", "fills", "ledger_entries")
PARQUET_DIRS = ("market-data", "audit-archive")
PARTS = (*TABLES, "audit", "files")


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _line(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode() + b"\n"


def table_part(conn: Any, name: str) -> dict[str, Any]:
    """Row count and SHA-256 of table ``name`` (columns by name, rows in primary-key order)."""
    from sqlalchemy import select

    from smart_trader.db.metadata import all_tables

    table = all_tables().tables[name]
    digest = hashlib.sha256()
    columns = [c.name for c in table.columns]
    digest.update(_line(columns))
    rows = 0
    for row in conn.execute(select(table).order_by(*table.primary_key.columns)):
        digest.update(_line([_canonical(v) for v in row]))
        rows += 1
    return {"rows": rows, "sha256": digest.hexdigest()}


def audit_part(conn: Any) -> dict[str, Any]:
    """The audit chain verified from its first stored record: count, first/last seq and head hash."""
    from sqlalchemy import func, select

    from smart_trader.compliance.store import verify_stored
    from smart_trader.compliance.tables import audit_log

    n, head, broken = verify_stored(conn)
    if broken is not None:
        raise SystemExit(f"audit chain broken at {broken}")
    first, last = conn.execute(select(func.min(audit_log.c.seq), func.max(audit_log.c.seq))).one()
    summary = {"records": n, "first_seq": first, "last_seq": last, "head_hash": head}
    return {"rows": n, "sha256": hashlib.sha256(_line(summary)).hexdigest(), **summary}


def files_part(home: Path) -> dict[str, Any]:
    """Relative path and SHA-256 of every file under the Parquet folders of ``home``."""
    digest = hashlib.sha256()
    count = 0
    for name in PARQUET_DIRS:
        root = home / name
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            file_hash = hashlib.sha256(path.read_bytes()).hexdigest()
            digest.update(_line([path.relative_to(home).as_posix(), file_hash]))
            count += 1
    return {"rows": count, "sha256": digest.hexdigest()}


def state(database_url: str, home: Path, parts: tuple[str, ...] = PARTS) -> dict[str, Any]:
    """Every part's summary and ``state_sha256``, the hash over the parts' hashes (in :data:`PARTS` order)."""
    from smart_trader.db.engine import make_engine

    out: dict[str, Any] = {}
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn, conn.begin():  # one snapshot for every table (REPEATABLE READ below)
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            for name in parts:
                if name in TABLES:
                    out[name] = table_part(conn, name)
                elif name == "audit":
                    out[name] = audit_part(conn)
    finally:
        engine.dispose()
    if "files" in parts:
        out["files"] = files_part(home)
    total = hashlib.sha256(b"".join(_line([p, out[p]["sha256"]]) for p in parts))
    return {"parts": out, "state_sha256": total.hexdigest()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: DATABASE_URL (the platform's settings)")
    parser.add_argument("--home", type=Path, help="default: SMART_TRADER_HOME (the platform's settings)")
    parser.add_argument("--only", help=f"comma-separated parts, of: {','.join(PARTS)}")
    parser.add_argument("--short", action="store_true", help="print the total hash alone")
    args = parser.parse_args(argv)
    from smart_trader.settings import Settings

    settings = Settings()
    url = args.database_url or settings.resolved_database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    parts = tuple(p.strip() for p in args.only.split(",")) if args.only else PARTS
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}: choose from {','.join(PARTS)}")
    result = state(url, args.home or settings.home_dir, parts)
    print(result["state_sha256"] if args.short else json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
