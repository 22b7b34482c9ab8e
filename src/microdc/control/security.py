"""Tokens, password hashing, roles and log redaction. No FastAPI or database imports.

* API tokens and site credentials: ``mdc_<kind>_<43 url-safe chars>`` (256 bits from `secrets`), shown
  once, stored as SHA-256 hex (a high-entropy token needs no slow hash; lookups stay O(1)).
* Passwords (optional, for `/auth/login`): argon2id (argon2-cffi) at RFC 9106's low-memory profile, never
  below OWASP's minimum; scrypt hashes of older versions still verify and are re-hashed on login.
  `password_problem()` is the strength rule (length >= 12, not a common password).
* `redact()` and `RedactingFilter` remove anything token- or password-shaped from log records.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2 import Type as Argon2Type
from argon2.exceptions import InvalidHashError, VerificationError


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


OWASP_MIN_MEMORY_KIB = 19456  # 19 MiB
OWASP_MIN_TIME_COST = 2


@dataclass(frozen=True)
class PasswordPolicy:
    """argon2id cost. The default is RFC 9106's low-memory profile (argon2-cffi's own default:
    64 MiB, t=3, p=4); nothing below OWASP's minimum (19 MiB, t=2, p=1) is accepted."""

    memory_kib: int = 65536
    time_cost: int = 3
    parallelism: int = 4

    def __post_init__(self) -> None:
        if self.memory_kib < OWASP_MIN_MEMORY_KIB or self.time_cost < OWASP_MIN_TIME_COST:
            raise ValueError(
                f"argon2id below the OWASP minimum (m={OWASP_MIN_MEMORY_KIB} KiB, t={OWASP_MIN_TIME_COST})"
            )
        if self.parallelism < 1:
            raise ValueError("argon2id parallelism must be at least 1")


DEFAULT_PASSWORD_POLICY = PasswordPolicy()


@functools.lru_cache(maxsize=8)
def _hasher(policy: PasswordPolicy) -> PasswordHasher:
    return PasswordHasher(
        time_cost=policy.time_cost,
        memory_cost=policy.memory_kib,
        parallelism=policy.parallelism,
        hash_len=32,
        salt_len=16,
        type=Argon2Type.ID,
    )


@functools.lru_cache(maxsize=8)
def _dummy_hash(policy: PasswordPolicy) -> str:
    return _hasher(policy).hash(secrets.token_urlsafe(16))


def hash_password(password: str, policy: PasswordPolicy = DEFAULT_PASSWORD_POLICY) -> str:
    """argon2id PHC string (``$argon2id$v=19$m=…,t=…,p=…$salt$hash``), per-password random salt."""
    return _hasher(policy).hash(password)


def verify_password(
    password: str, stored: str | None, policy: PasswordPolicy = DEFAULT_PASSWORD_POLICY
) -> bool:
    """argon2id hashes, and scrypt hashes written by older versions (re-hash those on login)."""
    if not stored:
        # Burn comparable time so unknown users are not distinguishable by latency.
        with contextlib.suppress(VerificationError, InvalidHashError):
            _hasher(policy).verify(_dummy_hash(policy), password)
        return False
    if stored.startswith("scrypt$"):
        return _verify_scrypt(password, stored)
    try:
        return bool(_hasher(policy).verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored: str | None, policy: PasswordPolicy = DEFAULT_PASSWORD_POLICY) -> bool:
    """True for a legacy (scrypt) hash or argon2 parameters other than the policy's."""
    if not stored:
        return False
    if not stored.startswith("$argon2id$"):
        return True
    try:
        return bool(_hasher(policy).check_needs_rehash(stored))
    except (InvalidHashError, ValueError):
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
    """The pre-argon2 format: ``scrypt$n$r$p$salt$digest`` (hashlib.scrypt, 32-byte digest)."""
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


# --- password strength ------------------------------------------------------------------------

MIN_PASSWORD_LENGTH = 12
# Passwords of 12+ characters that appear near the top of public breach lists (compared case-insensitively,
# ignoring spaces). Short ones need no entry: the length rule already refuses them.
COMMON_PASSWORDS = frozenset(
    """
    123456789012 1234567890123 12345678901234 123456789123 1234567891011 111111111111 000000000000
    123123123123 123412341234 121212121212 147258369147 098765432109 987654321098 112233445566
    qwertyuiop12 qwertyuiopas qwertyuiop123 qwerty123456 123456qwerty 1q2w3e4r5t6y 1qaz2wsx3edc
    qazwsxedcrfv asdfghjkl123 zxcvbnm12345 abc123456789 abcdefghijkl abcd12345678 aaaaaaaaaaaa
    password1234 password12345 password123456 passwordpassword password@123 p@ssw0rd1234
    p@ssword1234 passw0rd1234 mypassword123 changeme1234 changeme123! welcome12345 welcome@1234
    letmein12345 letmeinplease iloveyou1234 iloveyouforever sunshine1234 princess1234 football1234
    baseball1234 starwars1234 superman1234 batman123456 dragon123456 monkey123456 trustno1trustno1
    administrator admin1234567 administrator1 adminadmin123 rootroot1234 qwerty12345!
    correcthorsebatterystaple correcthorse1 thequickbrownfox 1234567890qwerty secret123456
    default12345 microdc12345 microdcadmin microdc-admin computer1234 internet1234 liverpool123
    chelsea12345
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def password_problem(password: str, *, user_name: str | None = None) -> str | None:
    """Why a password is too weak (a message starting ``password-strength:``), or None if acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password-strength: at least {MIN_PASSWORD_LENGTH} characters (got {len(password)})"
    folded = "".join(password.lower().split())
    if folded in COMMON_PASSWORDS:
        return "password-strength: this password is on the list of common passwords"
    if len(set(folded)) <= 2:
        return "password-strength: too few distinct characters"
    if user_name and len(user_name) >= 3 and user_name.lower() in folded:
        return "password-strength: must not contain the user name"
    return None


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
