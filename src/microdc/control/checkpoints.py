"""Signed audit checkpoints, kept outside the database: they catch what the keyed chain cannot.

A checkpoint is ``{format, seq, head_hash, time, key_id, signature}``: an Ed25519 signature (the audit
key's signing key) over the canonical JSON of the other fields. The control plane publishes one to the
folder the operator names (`audit_checkpoint_dir`, periodically and on demand) and hands the latest to
every agent in its heartbeat answer, which keeps it in its local state.

`check_against` compares a chain with the checkpoints. A checkpoint says "entry `seq` existed and had
hash `head_hash`", so:

* ``truncation:`` the log ends before a checkpoint's seq (tail cut, head row fixed to match);
* ``wipe:`` the log is empty although a checkpoint saw entries;
* ``rewrite:`` the entry at a checkpoint's seq has another hash (the chain was recomputed);
* ``checkpoint:`` a checkpoint file is unreadable, forged (bad signature) or signed by an unknown key —
  a verifier must not silently skip evidence.

Each finding names the first bad sequence.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from sqlalchemy import select
from sqlalchemy.orm import Session

from microdc.control.audit import GENESIS_HASH, canonical_json
from microdc.control.auditkeys import Keyring
from microdc.control.models import AuditEntry, AuditHead

FORMAT = "microdc-audit-checkpoint/1"
LATEST = "latest.json"


class CheckpointError(Exception):
    """A checkpoint that cannot be trusted (its file and why)."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    time: str
    key_id: str
    signature: str = ""

    def message(self) -> bytes:
        return canonical_json(
            {
                "format": FORMAT,
                "seq": self.seq,
                "head_hash": self.head_hash,
                "time": self.time,
                "key_id": self.key_id,
            }
        ).encode()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "seq": self.seq,
            "head_hash": self.head_hash,
            "time": self.time,
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @staticmethod
    def from_json(data: Any, where: str) -> Checkpoint:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"{where}: not a {FORMAT} checkpoint")
        try:
            cp = Checkpoint(
                seq=int(data["seq"]),
                head_hash=str(data["head_hash"]),
                time=str(data["time"]),
                key_id=str(data["key_id"]),
                signature=str(data["signature"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{where}: field {e} missing or malformed") from None
        if cp.seq < 0:
            raise CheckpointError(f"{where}: seq must be >= 0")
        return cp


def sign(ring: Keyring, seq: int, head_hash: str, now: datetime) -> Checkpoint:
    key = ring.current
    unsigned = Checkpoint(seq, head_hash, now.astimezone(UTC).isoformat(timespec="seconds"), key.id)
    sig = key.signing_key.sign(unsigned.message())
    return Checkpoint(unsigned.seq, unsigned.head_hash, unsigned.time, key.id, base64.b64encode(sig).decode())


def check_signature(cp: Checkpoint, ring: Keyring, where: str) -> None:
    key = ring.get(cp.key_id)
    if key is None:
        raise CheckpointError(f"{where}: signed by key id {cp.key_id!r}, which is not in the audit key file")
    try:
        key.public_key.verify(base64.b64decode(cp.signature, validate=True), cp.message())
    except (InvalidSignature, ValueError):
        raise CheckpointError(f"{where}: signature does not verify (forged or altered checkpoint)") from None


def of_head(session: Session, ring: Keyring, now: datetime) -> Checkpoint:
    """A signed checkpoint of the chain's head as this session sees it."""
    head = session.get(AuditHead, 1)
    seq, h = (head.last_seq, head.last_hash) if head is not None else (0, GENESIS_HASH)
    return sign(ring, seq, h, now)


def publish(folder: Path, cp: Checkpoint) -> Path:
    """Write `checkpoint-<seq>.json` (never overwriting an earlier one) and `latest.json`, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    body = json.dumps(cp.to_json(), indent=2)
    target = folder / f"checkpoint-{cp.seq:012d}.json"
    if not target.exists():
        _atomic_write(target, body)
    _atomic_write(folder / LATEST, body)
    return target


def _atomic_write(path: Path, body: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".cp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_folder(folder: Path) -> list[tuple[str, Any]]:
    """(file name, parsed JSON or the read error) of every ``*.json`` in `folder`, sorted by name."""
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a folder of checkpoints")
    out: list[tuple[str, Any]] = []
    for p in sorted(folder.glob("*.json")):
        try:
            out.append((str(p), json.loads(p.read_text())))
        except (OSError, ValueError) as e:
            out.append((str(p), CheckpointError(f"{p}: not readable JSON ({e})")))
    return out


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    checkpoints: int
    first_bad_seq: int | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"checkpoints agree: {self.checkpoints} signed checkpoint(s) match the chain"
        where = f" at entry seq={self.first_bad_seq}" if self.first_bad_seq is not None else ""
        return f"audit chain BROKEN{where}: {self.reason}"


def check_against(session: Session, ring: Keyring, files: Iterable[tuple[str, Any]]) -> CheckResult:
    """Compare the chain in `session` with checkpoint files; the finding with the lowest seq wins."""
    cps: list[tuple[str, Checkpoint]] = []
    for where, data in files:
        if isinstance(data, Exception):
            return CheckResult(False, len(cps), None, f"checkpoint: {data}")
        try:
            cp = Checkpoint.from_json(data, where)
            check_signature(cp, ring, where)
        except CheckpointError as e:
            return CheckResult(False, len(cps), None, f"checkpoint: {e}")
        cps.append((where, cp))
    if not cps:
        return CheckResult(False, 0, None, "checkpoint: no checkpoints to check against")
    last_seq = session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1)) or 0
    wanted = sorted({cp.seq for _, cp in cps if 0 < cp.seq <= last_seq})
    stored: dict[int, str] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        for seq, h in session.execute(
            select(AuditEntry.seq, AuditEntry.hash).where(AuditEntry.seq.in_(chunk))
        ):
            stored[seq] = h
    findings: list[tuple[int, str]] = []
    for where, cp in cps:
        if cp.seq == 0:
            continue
        if last_seq == 0:
            findings.append(
                (1, f"wipe: the log is empty but {where} (signed {cp.time}) saw {cp.seq} entries")
            )
        elif cp.seq > last_seq:
            findings.append(
                (
                    last_seq + 1,
                    f"truncation: the log ends at seq={last_seq} but {where} (signed {cp.time}) "
                    f"saw seq={cp.seq}",
                )
            )
        elif cp.seq not in stored:
            findings.append((cp.seq, f"truncation: entry seq={cp.seq} named by {where} is missing"))
        elif stored[cp.seq] != cp.head_hash:
            findings.append(
                (
                    cp.seq,
                    f"rewrite: entry seq={cp.seq} has another hash than {where} (signed {cp.time}) "
                    "recorded — the chain was recomputed",
                )
            )
    if findings:
        seq, reason = min(findings)
        return CheckResult(False, len(cps), seq, reason)
    return CheckResult(True, len(cps))


class Signer:
    """Signs the head once per change (a heartbeat answer should not cost a signature each time)."""

    def __init__(self) -> None:
        self._last: Checkpoint | None = None
        self._lock = threading.Lock()

    def current(self, session: Session, ring: Keyring, now: datetime) -> Checkpoint:
        head = session.get(AuditHead, 1)
        seq, h = (head.last_seq, head.last_hash) if head is not None else (0, GENESIS_HASH)
        with self._lock:
            last = self._last
            if last is None or (last.seq, last.head_hash, last.key_id) != (seq, h, ring.current_id):
                last = self._last = sign(ring, seq, h, now)
            return last
