"""Login (password → short-lived token), whoami, logout."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlalchemy import select

from microdc.control import audit
from microdc.control.api.deps import (
    PrincipalDep,
    ServicesDep,
    client_ip,
    make_ctx,
    rate_limit,
    security_event,
)
from microdc.control.identity import issue_user_token, rehash_after_login, revoke_token
from microdc.control.models import ApiToken, User
from microdc.control.problems import problem_responses, unauthorized
from microdc.control.schemas import IssuedToken, LoginIn, WhoAmI
from microdc.control.security import verify_password

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/login",
    response_model=IssuedToken,
    status_code=status.HTTP_201_CREATED,
    summary="Exchange a user name and password for a short-lived API token (rate limited)",
    responses=problem_responses(401, 422, 429),
)
def login(body: LoginIn, request: Request, services: ServicesDep) -> IssuedToken:
    ip = client_ip(request)
    rate_limit(request, services.limits.login_ip, ip, "login")
    rate_limit(request, services.limits.login_user, body.username, "login")
    with services.db.read_session() as s:
        user = s.scalar(select(User).where(User.name == body.username))
        policy = services.settings.password_policy
        ok = verify_password(body.password, user.password_hash if user else None, policy)
        ok = ok and user is not None and not user.disabled
    if not ok or user is None:
        security_event(request, "auth.login_failed", actor=f"anonymous:{body.username[:64]}")
        raise unauthorized("invalid user name or password")
    ctx = make_ctx(request, None).as_actor(f"user:{user.name}", ip)
    with services.db.session() as s:
        rehash_after_login(s, ctx, user, body.password, policy)
        fresh = s.get(User, user.id)
        assert fresh is not None
        tok, secret = issue_user_token(
            s, ctx, fresh, description="login session", ttl_s=services.settings.user_token_ttl_s
        )
        audit.append(
            s, actor=ctx.actor, action="auth.login", target=f"user:{user.name}", client_ip=ip, now=ctx.now
        )
    return IssuedToken(token=secret, token_id=tok.id, kind="user", expires_at=tok.expires_at)


@router.get(
    "/whoami", response_model=WhoAmI, summary="The caller's identity", responses=problem_responses(401)
)
def whoami(principal: PrincipalDep) -> WhoAmI:
    return WhoAmI(
        kind="user" if principal.kind == "user" else "site",
        name=principal.name,
        role=principal.role,
        site_id=principal.site_id,
        token_id=principal.token_id,
    )


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke the token used for this request",
    responses=problem_responses(401),
)
def logout(request: Request, principal: PrincipalDep, services: ServicesDep) -> None:
    ctx = make_ctx(request, principal)
    with services.db.session() as s:
        if s.get(ApiToken, principal.token_id) is not None:
            revoke_token(s, ctx, principal.token_id)
