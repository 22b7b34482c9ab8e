"""Tamper-evident audit log: an append-only hash chain.

Each entry stores ``prev_hash`` and ``hash = SHA-256(canonical JSON of {seq, ts, actor, action, target,
outcome, client_ip, details, prev_hash})``. The single `audit_head` row holds the last seq and hash;
appends lock it (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite transactions start with BEGIN IMMEDIATE,
so writers are already serialized) so that two concurrent appends can never fork the chain.

`verify()` walks the chain in seq order and reports the first entry that was edited (hash mismatch),
deleted (seq gap / broken link / head mismatch) or reordered (broken link). Each reason starts with the
name of the check that failed: ``sequence:``, ``link:``, ``hash:`` or ``head:``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from microdc.control.models import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def entry_hash(fields: dict[str, Any], prev_hash: str) -> str:
    payload = canonical_json({**fields, "prev_hash": prev_hash})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _fields(e: AuditEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "ts": e.ts,
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "outcome": e.outcome,
        "client_ip": e.client_ip,
        "details": e.details,
    }


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str = "",
    outcome: str = "success",
    client_ip: str = "",
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (commit with the change it records)."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    ts = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
    entry = AuditEntry(
        seq=head.last_seq + 1,
        ts=ts,
        actor=actor[:160],
        action=action[:64],
        target=target[:256],
        outcome=outcome[:16],
        client_ip=client_ip[:64],
        details=canonical_json(details or {}),
        prev_hash=head.last_hash,
    )
    entry.hash = entry_hash(_fields(entry), head.last_hash)
    session.add(entry)
    head.last_seq = entry.seq
    head.last_hash = entry.hash
    session.flush()
    return entry


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.checked} entries verified"
        return f"audit chain BROKEN at entry seq={self.first_bad_seq}: {self.reason}"


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch))
    for e in rows.scalars():
        if e.seq != expected_seq:
            missing = expected_seq if e.seq > expected_seq else e.seq
            return VerifyResult(
                False,
                checked,
                missing,
                f"sequence: entry seq={expected_seq} is missing (next present is seq={e.seq})",
            )
        if e.prev_hash != prev_hash:
            return VerifyResult(
                False,
                checked,
                e.seq,
                "link: prev_hash does not link to the previous entry (deleted or reordered)",
            )
        if entry_hash(_fields(e), e.prev_hash) != e.hash:
            return VerifyResult(
                False, checked, e.seq, "hash: stored hash does not match its contents (edited)"
            )
        prev_hash = e.hash
        expected_seq += 1
        checked += 1
    head = session.get(AuditHead, 1)
    if head is None:
        return VerifyResult(False, checked, None, "head: chain head row is missing")
    if head.last_seq != checked or head.last_hash != prev_hash:
        bad = checked + 1 if head.last_seq > checked else head.last_seq
        return VerifyResult(
            False,
            checked,
            bad,
            f"head: chain head says seq={head.last_seq} but the log ends at seq={checked}"
            " (tail deleted or head edited)",
        )
    return VerifyResult(True, checked)
