"""The audit keyring: the secrets that make the audit chain verifiable by no one who only has the database.

Each key has an HMAC-SHA256 secret (keys every audit entry) and an Ed25519 signing key (signs the
checkpoints published outside the database). The keyring lives in one JSON file, mode 0600, that the
control plane creates at first start (or `microdc audit keygen` creates beforehand). Rotation adds a new
key and makes it current; old keys stay so that old entries and checkpoints still verify.

A key's id is the first 16 hex digits of SHA-256 over its Ed25519 public key, so a checkpoint names the
key that signed it and an entry the key that hashed it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "microdc-audit-keyring/1"


class KeyringError(Exception):
    """The key file is missing, unreadable, too open or malformed (the message names the file and why)."""


@dataclass(frozen=True)
class AuditKey:
    id: str
    created: str
    hmac_key: bytes
    signing_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key.public_key()

    @staticmethod
    def generate(now: datetime | None = None) -> AuditKey:
        sk = Ed25519PrivateKey.generate()
        return AuditKey(
            id=key_id(sk.public_key()),
            created=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
            hmac_key=os.urandom(32),
            signing_key=sk,
        )


def _raw_public(pk: Ed25519PublicKey) -> bytes:
    return pk.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(pk: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(pk)).hexdigest()[:16]


def public_key_b64(pk: Ed25519PublicKey) -> str:
    return base64.b64encode(_raw_public(pk)).decode()


@dataclass
class Keyring:
    keys: dict[str, AuditKey]
    current_id: str
    path: Path | None = None
    # set once legacy (plain SHA-256) entries were re-keyed: a later legacy entry is then a rewrite
    legacy_rekeyed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def current(self) -> AuditKey:
        return self.keys[self.current_id]

    def get(self, kid: str) -> AuditKey | None:
        return self.keys.get(kid)

    @staticmethod
    def ephemeral() -> Keyring:
        """For in-memory databases only: the key dies with the database it keys."""
        k = AuditKey.generate()
        return Keyring({k.id: k}, k.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "current": self.current_id,
            "legacy_rekeyed": self.legacy_rekeyed,
            "keys": [
                {
                    "id": k.id,
                    "created": k.created,
                    "hmac_key": base64.b64encode(k.hmac_key).decode(),
                    "signing_key": base64.b64encode(
                        k.signing_key.private_bytes(
                            serialization.Encoding.Raw,
                            serialization.PrivateFormat.Raw,
                            serialization.NoEncryption(),
                        )
                    ).decode(),
                    "public_key": public_key_b64(k.public_key),
                }
                for k in self.keys.values()
            ],
        }

    def save(self, path: Path | None = None) -> None:
        """Write atomically with mode 0600 (the file is created 0600, never widened)."""
        target = Path(path or self.path or "")
        if not str(target):
            raise KeyringError("audit key file: no path to save the keyring to")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".audit-key-", dir=target.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(self.to_json(), f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.path = target

    def rotate(self, now: datetime | None = None) -> AuditKey:
        """Add a new current key; old keys stay for verifying what they keyed and signed."""
        k = AuditKey.generate(now)
        self.keys[k.id] = k
        self.current_id = k.id
        return k


def _b64(value: Any, path: Path, what: str, size: int) -> bytes:
    try:
        raw = base64.b64decode(str(value), validate=True)
    except (ValueError, TypeError):
        raise KeyringError(f"audit key file {path}: {what} is not base64") from None
    if len(raw) != size:
        raise KeyringError(f"audit key file {path}: {what} must be {size} bytes, got {len(raw)}")
    return raw


def load(path: Path) -> Keyring:
    """Read a key file; refuse one that others can read (it holds the secrets that key the chain)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyringError(
            f"audit key file {path}: not found (create it with `microdc audit keygen`)"
        ) from None
    if st.st_mode & 0o077:
        raise KeyringError(
            f"audit key file {path}: mode {st.st_mode & 0o777:o} lets others read it; chmod 600 {path}"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise KeyringError(f"audit key file {path}: not readable JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise KeyringError(f"audit key file {path}: 'format' must be {FORMAT!r}")
    keys: dict[str, AuditKey] = {}
    for i, item in enumerate(data.get("keys") or []):
        if not isinstance(item, dict):
            raise KeyringError(f"audit key file {path}: keys[{i}] must be an object")
        sk = Ed25519PrivateKey.from_private_bytes(
            _b64(item.get("signing_key"), path, f"keys[{i}].signing_key", 32)
        )
        kid = key_id(sk.public_key())
        if item.get("id") != kid:
            raise KeyringError(f"audit key file {path}: keys[{i}].id {item.get('id')!r} should be {kid!r}")
        keys[kid] = AuditKey(
            kid, str(item.get("created", "")), _b64(item.get("hmac_key"), path, f"keys[{i}].hmac_key", 32), sk
        )
    current = data.get("current")
    if current not in keys:
        raise KeyringError(f"audit key file {path}: 'current' {current!r} is not one of its keys")
    return Keyring(keys, str(current), path, bool(data.get("legacy_rekeyed", False)))


def load_or_create(path: Path) -> Keyring:
    """The keyring at `path`, generated (0600) on first use."""
    if path.exists():
        return load(path)
    ring = Keyring.ephemeral()
    ring.save(path)
    return ring


def default_key_path(db_url: str) -> Path | None:
    """Where the key lives when no `audit_key_file` is set: next to a SQLite file (``app.db`` →
    ``app.db.audit-key``), in ``$XDG_STATE_HOME/microdc/audit.key`` for a server database, and nowhere
    (ephemeral) for an in-memory database."""
    if db_url.startswith("sqlite"):
        name = db_url.split(":///", 1)[1] if ":///" in db_url else ""
        if not name or name == ":memory:" or "mode=memory" in name:
            return None
        return Path(name.split("?", 1)[0] + ".audit-key")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "microdc" / "audit.key"
