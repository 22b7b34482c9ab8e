"""Tamper-evident audit log: an append-only chain keyed with a secret that is not in the database.

Each entry stores ``prev_hash``, the ``key_id`` of the key that keyed it and ``hash = HMAC-SHA256(key,
canonical JSON of {seq, ts, actor, action, target, outcome, client_ip, details, key_id, prev_hash})``.
The key lives in the audit key file (control/auditkeys.py), so someone with write access to the database
alone cannot recompute a hash after editing, and cannot rewrite the whole chain. Truncation and wipe
need no key (cut the tail, point the head at the new last entry); signed checkpoints published outside
the database catch those (control/checkpoints.py). The single `audit_head` row holds the last seq and hash;
appends lock it (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite transactions start with BEGIN IMMEDIATE,
so writers are already serialized) so that two concurrent appends can never fork the chain.

`verify()` walks the chain in seq order and reports the first entry that was edited (hash mismatch),
deleted (seq gap / broken link / head mismatch) or reordered (broken link). Each reason starts with the
name of the check that failed: ``sequence:``, ``link:``, ``key:``, ``hash:`` or ``head:``.

Chains written before keying (plain SHA-256, ``key_id`` NULL) are re-keyed once by `rekey_legacy` when
the database is migrated: the legacy chain is verified as before, every entry is re-hashed with the key,
and an ``audit.rekeyed`` entry records how many entries were re-keyed, the legacy head hash and whether
the legacy chain was intact. The key file then remembers that re-keying happened, so a plain entry that
appears later is a rewrite and fails verification (``key:``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from microdc.control.auditkeys import Keyring
from microdc.control.models import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64
log = logging.getLogger("microdc.control.audit")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def legacy_hash(fields: dict[str, Any], prev_hash: str) -> str:
    """The hash of a chain written before keying: plain SHA-256 anyone can recompute."""
    payload = canonical_json({**fields, "prev_hash": prev_hash})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def keyed_hash(fields: dict[str, Any], prev_hash: str, key_id: str, secret: bytes) -> str:
    payload = canonical_json({**fields, "key_id": key_id, "prev_hash": prev_hash})
    return hmac.new(secret, payload.encode("utf-8"), hashlib.sha256).hexdigest()


def keyring_of(session: Session) -> Keyring:
    """The keyring of the Database that opened `session` (db.Database puts itself in session.info)."""
    db = session.info.get("microdc_db")
    if db is None:
        raise RuntimeError("audit: this session was not opened by microdc.control.db.Database (no key)")
    ring: Keyring = db.audit_keyring
    return ring


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
    key = keyring_of(session).current
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
        key_id=key.id,
    )
    entry.hash = keyed_hash(_fields(entry), head.last_hash, key.id, key.hmac_key)
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


def _entry_problem(e: AuditEntry, ring: Keyring) -> tuple[str, str] | None:
    """(check, reason) when the entry's own hash does not hold, else None."""
    if e.key_id is None:
        if ring.legacy_rekeyed:
            return (
                "key",
                "key: entry is not keyed (plain SHA-256) although the chain was re-keyed (rewritten)",
            )
        if legacy_hash(_fields(e), e.prev_hash) != e.hash:
            return "hash", "hash: stored hash does not match its contents (edited)"
        return None
    key = ring.get(e.key_id)
    if key is None:
        return "key", f"key: entry was keyed with key id {e.key_id!r}, which is not in the audit key file"
    if not hmac.compare_digest(keyed_hash(_fields(e), e.prev_hash, e.key_id, key.hmac_key), e.hash):
        return "hash", "hash: stored hash does not match its contents (edited, or re-hashed without the key)"
    return None


def verify(session: Session, batch: int = 5000, keyring: Keyring | None = None) -> VerifyResult:
    ring = keyring or keyring_of(session)
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
        problem = _entry_problem(e, ring)
        if problem is not None:
            return VerifyResult(False, checked, e.seq, problem[1])
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


def rekey_legacy(session: Session, ring: Keyring, now: datetime | None = None) -> int:
    """Re-key a chain written before keying (see the module docstring); returns entries re-keyed.

    Runs once per key file: with ``legacy_rekeyed`` set, plain entries are left for `verify` to flag.
    The caller saves the keyring (its ``legacy_rekeyed`` flag) after the transaction commits.
    """
    legacy = session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.key_id.is_(None)))
    if not legacy:
        return 0
    if ring.legacy_rekeyed:
        log.error(
            "audit: %d entries are not keyed although this key file already re-keyed the chain; "
            "not re-keying again (that would launder a rewrite) — run `microdc audit verify`",
            legacy,
        )
        return 0
    legacy_check = verify(session, keyring=ring)
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    legacy_head = (head.last_seq, head.last_hash)
    key = ring.current
    prev = GENESIS_HASH
    n = 0
    for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        e.prev_hash = prev
        e.key_id = key.id
        e.hash = keyed_hash(_fields(e), prev, key.id, key.hmac_key)
        prev = e.hash
        n += 1
    head.last_hash = prev
    session.flush()
    ring.legacy_rekeyed = True
    append(
        session,
        actor="system:audit",
        action="audit.rekeyed",
        target="audit",
        outcome="success" if legacy_check.ok else "warning",
        details={
            "rekeyed_entries": n,
            "key_id": key.id,
            "legacy_head_seq": legacy_head[0],
            "legacy_head_sha256": legacy_head[1],
            "legacy_chain": "intact" if legacy_check.ok else legacy_check.describe(),
        },
        now=now,
    )
    if not legacy_check.ok:
        log.error("audit: the legacy chain was already broken when re-keyed: %s", legacy_check.describe())
    return n
