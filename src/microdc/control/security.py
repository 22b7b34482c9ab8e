"""Tokens, password hashing, roles and log redaction. No FastAPI or database imports.

* API tokens and site credentials: ``mdc_<kind>_<43 url-safe chars>`` (256 bits from `secrets`), shown
  once, stored as SHA-256 hex (a high-entropy token needs no slow hash; lookups stay O(1)).
* Passwords (optional, for `/auth/login`): scrypt from hashlib with a per-user salt.
* `redact()` and `RedactingFilter` remove anything token- or password-shaped from log records.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


class TokenKind(StrEnum):
    USER = "u"
    SITE = "s"
    ENROLLMENT = "e"


def new_token(kind: TokenKind) -> str:
    return f"mdc_{kind.value}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str, *, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=2**27)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        # Burn comparable time so unknown users are not distinguishable by latency.
        hashlib.scrypt(password.encode("utf-8"), salt=b"0" * 16, n=2**14, r=8, p=1, dklen=32)
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=32,
            maxmem=2**27,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (with a role) or a site agent (bound to one site)."""

    kind: str  # "user" | "site"
    token_id: int
    name: str
    role: Role | None = None
    user_id: int | None = None
    site_id: str | None = None

    @property
    def actor(self) -> str:
        return f"user:{self.name}" if self.kind == "user" else f"site:{self.site_id}"

    def has_role(self, needed: Role) -> bool:
        return self.kind == "user" and self.role is not None and self.role.allows(needed)


_REDACTIONS = [
    (re.compile(r"mdc_[a-z]_[A-Za-z0-9_\-]{6,}"), "mdc_***"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]+"), r"\1***"),
    (re.compile(r"(?i)(\"?(?:password|token|secret|authorization)\"?\s*[:=]\s*\"?)[^\"\s,}]+"), r"\1***"),
]


def redact(text: str) -> str:
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and args) with secrets removed. Attach to handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        return True


def install_log_redaction(*logger_names: str) -> RedactingFilter:
    """Put a RedactingFilter on every handler of the root logger and of the named loggers."""
    flt = RedactingFilter()
    for name in ("", *logger_names):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(flt)
    return flt
