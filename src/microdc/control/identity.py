"""Users, API tokens, site credentials and one-time enrollment tokens (data layer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from microdc.control import audit
from microdc.control.context import Ctx
from microdc.control.models import ApiToken, EnrollmentToken, Site, User
from microdc.control.problems import ProblemError, conflict, not_found
from microdc.control.security import (
    PasswordPolicy,
    Principal,
    Role,
    TokenKind,
    hash_password,
    hash_token,
    new_token,
    password_needs_rehash,
)

# Rule names (they start the problem details and name the guard tests and mutants).
RULE_CURRENT_RENEWS = "credential-superseded"
RULE_REENROLL_REVOKES = "re-enrollment-revokes"
RULE_PASSWORD_ENDS_SESSIONS = "password-change-ends-sessions"


def lookup_principal(
    session: Session, token: str, now: datetime, *, site_expired_within: timedelta | None = None
) -> Principal | None:
    """The principal a bearer token stands for, or None if unknown, revoked, expired or disabled.

    `site_expired_within` admits a *site* credential that expired less than that long ago (and was
    never revoked): only the rotation route uses it, so an MDC that was offline for weeks can renew."""
    if not token.startswith(("mdc_u_", "mdc_s_")) or len(token) > 200:
        return None
    t = ApiToken.__table__.c
    row = session.execute(
        select(
            t.id,
            t.kind,
            t.user_id,
            t.site_id,
            t.expires_at,
            t.revoked_at,
            User.name,
            User.role,
            User.disabled,
        )
        .select_from(ApiToken.__table__)
        .outerjoin(User, User.id == t.user_id)
        .where(t.token_hash == hash_token(token))
    ).first()
    if row is None:
        return None
    tok_id, kind, user_id, site_id, expires_at, revoked_at, user_name, role, disabled = row
    if revoked_at is not None:
        return None
    if expires_at is not None and expires_at <= now:
        expired_ok = (
            kind == "site" and site_expired_within is not None and now - expires_at < site_expired_within
        )
        if not expired_ok:
            return None
    if kind == "user":
        if disabled or user_name is None:
            return None
        return Principal("user", tok_id, user_name, role=Role(role), user_id=user_id)
    return Principal("site", tok_id, f"site:{site_id}", site_id=site_id)


def create_user(session: Session, ctx: Ctx, name: str, role: Role, password: str | None) -> User:
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise conflict(f"user {name!r} already exists")
    user = User(
        name=name,
        role=role.value,
        password_hash=hash_password(password, ctx.settings.password_policy) if password else None,
        created_at=ctx.now,
    )
    session.add(user)
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action="user.create",
        target=f"user:{name}",
        client_ip=ctx.client_ip,
        details={"role": role.value, "password": bool(password)},
        now=ctx.now,
    )
    return user


def issue_user_token(
    session: Session, ctx: Ctx, user: User, *, description: str = "", ttl_s: int | None = None
) -> tuple[ApiToken, str]:
    secret = new_token(TokenKind.USER)
    tok = ApiToken(
        token_hash=hash_token(secret),
        kind="user",
        user_id=user.id,
        description=description[:256],
        created_at=ctx.now,
        expires_at=ctx.now + timedelta(seconds=ttl_s) if ttl_s else None,
    )
    session.add(tok)
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action="token.issue",
        target=f"user:{user.name}",
        client_ip=ctx.client_ip,
        details={"token_id": tok.id, "description": description, "expires_at": _iso(tok.expires_at)},
        now=ctx.now,
    )
    return tok, secret


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def revoke_token(session: Session, ctx: Ctx, token_id: int) -> ApiToken:
    tok = session.get(ApiToken, token_id, with_for_update=True)
    if tok is None:
        raise not_found(f"token {token_id}")
    if tok.revoked_at is None:
        tok.revoked_at = ctx.now
        tok.revoked_by = ctx.actor[:128]
        audit.append(
            session,
            actor=ctx.actor,
            action="token.revoke",
            target=f"token:{tok.id}",
            client_ip=ctx.client_ip,
            details={"kind": tok.kind, "site_id": tok.site_id, "user_id": tok.user_id},
            now=ctx.now,
        )
    return tok


def end_user_sessions(session: Session, ctx: Ctx, user: User, *, keep_token_id: int | None, why: str) -> int:
    """Revoke every live token of `user` except `keep_token_id` (the session that made the change)."""
    q = update(ApiToken).where(
        ApiToken.user_id == user.id, ApiToken.kind == "user", ApiToken.revoked_at.is_(None)
    )
    if keep_token_id is not None:
        q = q.where(ApiToken.id != keep_token_id)
    res = session.execute(q.values(revoked_at=ctx.now, revoked_by=f"{why} by {ctx.actor}"[:128]))
    n = int(getattr(res, "rowcount", 0) or 0)
    audit.append(
        session,
        actor=ctx.actor,
        action="user.sessions_end",
        target=f"user:{user.name}",
        client_ip=ctx.client_ip,
        details={"rule": RULE_PASSWORD_ENDS_SESSIONS, "reason": why, "revoked": n, "kept": keep_token_id},
        now=ctx.now,
    )
    return n


def set_password(session: Session, ctx: Ctx, user: User, password: str, *, keep_token_id: int | None) -> int:
    """Change a password; every other token of the user stops working (returns how many were revoked)."""
    user.password_hash = hash_password(password, ctx.settings.password_policy)
    return end_user_sessions(session, ctx, user, keep_token_id=keep_token_id, why="password change")


def rehash_after_login(session: Session, ctx: Ctx, user: User, password: str, policy: PasswordPolicy) -> bool:
    """After a successful login (`user` as read then, maybe detached), replace a legacy (scrypt) or
    differently tuned hash with argon2id at the current policy — transparently, so databases of older
    versions keep working. Returns whether it did."""
    old_hash = user.password_hash
    if not password_needs_rehash(old_hash, policy):
        return False
    new_hash = hash_password(password, policy)
    res = session.execute(
        update(User).where(User.id == user.id, User.password_hash == old_hash).values(password_hash=new_hash)
    )
    if not getattr(res, "rowcount", 0):
        return False  # changed meanwhile: keep the newer one
    scheme = "scrypt" if (old_hash or "").startswith("scrypt$") else "argon2id (other parameters)"
    audit.append(
        session,
        actor=ctx.actor,
        action="user.password_rehash",
        target=f"user:{user.name}",
        client_ip=ctx.client_ip,
        details={"from": scheme, "to": f"argon2id m={policy.memory_kib} t={policy.time_cost}"},
        now=ctx.now,
    )
    return True


def _revoke_site_tokens(session: Session, ctx: Ctx, site_id: str, by: str) -> int:
    res = session.execute(
        update(ApiToken)
        .where(ApiToken.site_id == site_id, ApiToken.kind == "site", ApiToken.revoked_at.is_(None))
        .values(revoked_at=ctx.now, revoked_by=by[:128])
    )
    return int(getattr(res, "rowcount", 0) or 0)


def revoke_site_credentials(session: Session, ctx: Ctx, site_id: str) -> int:
    n = _revoke_site_tokens(session, ctx, site_id, ctx.actor)
    audit.append(
        session,
        actor=ctx.actor,
        action="site.credentials_revoke",
        target=f"site:{site_id}",
        client_ip=ctx.client_ip,
        details={"revoked": n},
        now=ctx.now,
    )
    return n


def create_enrollment_token(session: Session, ctx: Ctx, site_id: str) -> tuple[EnrollmentToken, str]:
    if session.get(Site, site_id) is None:
        raise not_found(f"site {site_id!r}")
    secret = new_token(TokenKind.ENROLLMENT)
    et = EnrollmentToken(
        token_hash=hash_token(secret),
        site_id=site_id,
        created_by=ctx.actor[:128],
        created_at=ctx.now,
        expires_at=ctx.now + timedelta(seconds=ctx.settings.enrollment_ttl_s),
    )
    session.add(et)
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action="enrollment.token_create",
        target=f"site:{site_id}",
        client_ip=ctx.client_ip,
        details={"enrollment_token_id": et.id, "expires_at": et.expires_at.isoformat()},
        now=ctx.now,
    )
    return et, secret


@dataclass(frozen=True)
class EnrollOutcome:
    ok: bool
    site_id: str | None
    reason: str = ""
    token: ApiToken | None = None
    secret: str = ""


def _issue_site_token(session: Session, ctx: Ctx, site_id: str, description: str) -> tuple[ApiToken, str]:
    secret = new_token(TokenKind.SITE)
    tok = ApiToken(
        token_hash=hash_token(secret),
        kind="site",
        site_id=site_id,
        description=description,
        created_at=ctx.now,
        expires_at=ctx.now + timedelta(seconds=ctx.settings.site_token_ttl_s),
    )
    session.add(tok)
    session.flush()
    return tok, secret


def site_of_enrollment_token(session: Session, token: str) -> str | None:
    return session.scalar(
        select(EnrollmentToken.site_id).where(EnrollmentToken.token_hash == hash_token(token))
    )


def redeem_enrollment(session: Session, ctx: Ctx, token: str, agent_version: str | None) -> EnrollOutcome:
    """Exchange a one-time enrollment token for a site credential. Single use, TTL-bound."""
    et = session.scalar(
        select(EnrollmentToken).where(EnrollmentToken.token_hash == hash_token(token)).with_for_update()
    )
    if et is None:
        return EnrollOutcome(False, None, "unknown enrollment token")
    if et.used_at is not None:
        return EnrollOutcome(False, et.site_id, "enrollment token already used")
    if et.expires_at <= ctx.now:
        return EnrollOutcome(False, et.site_id, "enrollment token expired")
    # Single use even under concurrency: only one UPDATE can flip used_at from NULL.
    res = session.execute(
        update(EnrollmentToken)
        .where(EnrollmentToken.id == et.id, EnrollmentToken.used_at.is_(None))
        .values(used_at=ctx.now, used_by_ip=ctx.client_ip[:64])
    )
    if not getattr(res, "rowcount", 0):
        return EnrollOutcome(False, et.site_id, "enrollment token already used")
    # A fresh enrollment replaces the site's identity: every earlier credential dies now.
    revoked = _revoke_site_tokens(session, ctx, et.site_id, f"re-enrollment (enrollment token {et.id})")
    tok, secret = _issue_site_token(session, ctx, et.site_id, f"enrolled agent {agent_version or ''}".strip())
    site = session.get(Site, et.site_id)
    if site is not None and agent_version:
        site.agent_version = agent_version[:64]
    audit.append(
        session,
        actor=f"site:{et.site_id}",
        action="enrollment.redeem",
        target=f"site:{et.site_id}",
        client_ip=ctx.client_ip,
        details={
            "enrollment_token_id": et.id,
            "token_id": tok.id,
            "expires_at": _iso(tok.expires_at),
            "revoked_earlier_credentials": revoked,
        },
        now=ctx.now,
    )
    return EnrollOutcome(True, et.site_id, token=tok, secret=secret)


def rotate_site_credential(session: Session, ctx: Ctx, principal: Principal) -> tuple[ApiToken, str]:
    """New credential for the calling site; the old one stays valid for `rotation_grace_s` only.

    Only the site's *current* credential (no later one was issued) may renew, so a credential renews at
    most once and a copy that was already rotated (a stolen disk, a cloned agent) cannot mint more."""
    if principal.kind != "site" or principal.site_id is None:
        raise ProblemError(403, "only a site credential can be rotated here")
    old = session.get(ApiToken, principal.token_id, with_for_update=True)
    if old is None or old.revoked_at is not None:
        raise ProblemError(401, "credential no longer valid")
    newer = session.scalar(
        select(ApiToken.id)
        .where(ApiToken.site_id == principal.site_id, ApiToken.kind == "site", ApiToken.id > old.id)
        .limit(1)
    )
    if newer is not None:
        raise ProblemError(
            401,
            f"{RULE_CURRENT_RENEWS}: credential {old.id} was already renewed (credential {newer} replaced "
            "it); only the site's current credential may renew — re-enroll the site",
            slug=RULE_CURRENT_RENEWS,
            title="Credential already renewed",
            headers={"WWW-Authenticate": 'Bearer realm="microdc", error="invalid_token"'},
            rule=RULE_CURRENT_RENEWS,
            token_id=old.id,
        )
    renewing_expired = old.expires_at is not None and old.expires_at <= ctx.now
    tok, secret = _issue_site_token(session, ctx, principal.site_id, f"rotated from token {old.id}")
    grace_end = ctx.now + timedelta(seconds=ctx.settings.rotation_grace_s)
    if old.expires_at is None or old.expires_at > grace_end:
        old.expires_at = grace_end
    if ctx.settings.rotation_grace_s == 0 or renewing_expired:  # an expired credential renews only once
        old.revoked_at = ctx.now
        old.revoked_by = ctx.actor[:128]
    audit.append(
        session,
        actor=ctx.actor,
        action="site.credential_rotate",
        target=f"site:{principal.site_id}",
        client_ip=ctx.client_ip,
        details={
            "old_token_id": old.id,
            "new_token_id": tok.id,
            "old_valid_until": grace_end.isoformat(),
            "renewed_after_expiry": renewing_expired,
        },
        now=ctx.now,
    )
    return tok, secret
