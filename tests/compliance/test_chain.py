"""The audit hash chain detects a changed record, a deleted one and two swapped ones, naming the record; an intact
chain verifies; hashes are SHA-256 of canonical JSON, computed here independently with hashlib and json."""

from __future__ import annotations

import dataclasses
import hashlib
import json

from smart_trader.compliance.chain import GENESIS, AuditRecord, link, verify


def chain(n: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    prev = None
    for k in range(n):
        payload = {"order_id": f"O-{k}", "qty": "0.01", "side": "buy"}
        prev = link(prev, 1_700_000_000_000_000_000 + k, "order.submitted", payload, actor="u1", subject="acct-1",
                    event_id=f"E-{k}")  # fmt: skip
        records.append(prev)
    return records


def test_an_intact_chain_verifies_and_its_hashes_are_sha256_of_canonical_json() -> None:
    records = chain(50)
    n, head, broken = verify(records)
    assert (n, head, broken) == (50, records[-1].hash, None)
    r = records[0]
    payload = json.dumps({"order_id": "O-0", "qty": "0.01", "side": "buy"}, sort_keys=True, separators=(",", ":"))
    assert r.payload_hash == hashlib.sha256(payload.encode()).hexdigest()
    fields = [r.seq, r.ts_ns, r.actor, r.action, r.subject, r.request_id, r.event_id, r.payload_hash, GENESIS]
    assert r.hash == hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


def test_a_changed_record_is_named() -> None:
    records = chain(10)
    records[4] = dataclasses.replace(records[4], actor="someone-else")
    _n, _head, broken = verify(records)
    assert broken is not None and broken.seq == 5 and "changed" in broken.reason


def test_a_deleted_record_is_named() -> None:
    records = chain(10)
    del records[6]
    n, _head, broken = verify(records)
    assert broken is not None and broken.seq == 7 and "missing" in broken.reason and n == 6


def test_two_swapped_records_are_named() -> None:
    records = chain(10)
    records[2], records[3] = records[3], records[2]
    _n, _head, broken = verify(records)
    assert broken is not None and broken.seq == 3 and "out of order" in broken.reason


def test_a_record_rehashed_after_a_change_still_breaks_the_next_link() -> None:
    records = chain(10)
    forged = dataclasses.replace(records[4], action="order.canceled")
    records[4] = dataclasses.replace(forged, hash=forged.expected_hash())
    _n, _head, broken = verify(records)
    assert broken is not None and broken.seq == 6 and "prev_hash" in broken.reason
