"""Users and API tokens (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from sqlalchemy import select

from microdc.control import audit
from microdc.control.api.deps import Admin, ServicesDep, make_ctx
from microdc.control.identity import create_user, issue_user_token, revoke_token, set_password
from microdc.control.models import ApiToken, User
from microdc.control.problems import not_found, problem_responses
from microdc.control.schemas import IssuedToken, TokenCreateIn, TokenInfo, UserIn, UserOut, UserPatch
from microdc.control.security import Role

router = APIRouter(prefix="/api/v1", tags=["users"])
UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]
TokenId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _out(u: User) -> UserOut:
    return UserOut(
        id=u.id,
        name=u.name,
        role=Role(u.role),
        disabled=u.disabled,
        created_at=u.created_at,
        has_password=u.password_hash is not None,
    )


@router.get(
    "/users", response_model=list[UserOut], summary="List users", responses=problem_responses(401, 403)
)
def list_users(principal: Admin, services: ServicesDep) -> list[UserOut]:
    with services.db.read_session() as s:
        return [_out(u) for u in s.scalars(select(User).order_by(User.id))]


@router.post(
    "/users",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a user (optionally with a password for /auth/login)",
    responses=problem_responses(401, 403, 409, 422),
)
def create(body: UserIn, request: Request, principal: Admin, services: ServicesDep) -> UserOut:
    with services.db.session() as s:
        return _out(create_user(s, make_ctx(request, principal), body.name, body.role, body.password))


@router.get(
    "/users/{user_id}",
    response_model=UserOut,
    summary="Get a user",
    responses=problem_responses(401, 403, 404),
)
def get(user_id: UserId, principal: Admin, services: ServicesDep) -> UserOut:
    with services.db.read_session() as s:
        u = s.get(User, user_id)
        if u is None:
            raise not_found(f"user {user_id}")
        return _out(u)


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    summary="Change a user's role, password or disabled flag (a new password ends the user's other tokens)",
    responses=problem_responses(401, 403, 404, 422),
)
def patch(
    user_id: UserId, body: UserPatch, request: Request, principal: Admin, services: ServicesDep
) -> UserOut:
    ctx = make_ctx(request, principal)
    with services.db.session() as s:
        u = s.get(User, user_id, with_for_update=True)
        if u is None:
            raise not_found(f"user {user_id}")
        changes = body.model_dump(exclude_unset=True)
        if "role" in changes and changes["role"] is not None:
            u.role = Role(changes["role"]).value
        if "disabled" in changes and changes["disabled"] is not None:
            u.disabled = bool(changes["disabled"])
        if changes.get("password"):
            # Every token of the user issued before the change dies; the caller's own session survives.
            keep = principal.token_id if principal.user_id == u.id else None
            set_password(s, ctx, u, changes["password"], keep_token_id=keep)
        audit.append(
            s,
            actor=ctx.actor,
            action="user.update",
            target=f"user:{u.name}",
            client_ip=ctx.client_ip,
            details={k: (v if k != "password" else "(changed)") for k, v in changes.items()},
            now=ctx.now,
        )
        s.flush()
        return _out(u)


@router.post(
    "/users/{user_id}/tokens",
    response_model=IssuedToken,
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API token for a user (the secret is shown once)",
    responses=problem_responses(401, 403, 404, 422),
)
def issue(
    user_id: UserId, body: TokenCreateIn, request: Request, principal: Admin, services: ServicesDep
) -> IssuedToken:
    with services.db.session() as s:
        u = s.get(User, user_id)
        if u is None:
            raise not_found(f"user {user_id}")
        tok, secret = issue_user_token(
            s, make_ctx(request, principal), u, description=body.description, ttl_s=body.ttl_s
        )
        return IssuedToken(token=secret, token_id=tok.id, kind="user", expires_at=tok.expires_at)


@router.get(
    "/tokens",
    response_model=list[TokenInfo],
    summary="List API tokens and site credentials (never their secrets)",
    responses=problem_responses(401, 403, 422),
)
def list_tokens(
    principal: Admin,
    services: ServicesDep,
    site_id: Annotated[str | None, Query(max_length=128)] = None,
    include_revoked: bool = False,
) -> list[TokenInfo]:
    with services.db.read_session() as s:
        q = select(ApiToken).order_by(ApiToken.id)
        if site_id is not None:
            q = q.where(ApiToken.site_id == site_id)
        if not include_revoked:
            q = q.where(ApiToken.revoked_at.is_(None))
        return [TokenInfo.model_validate(t) for t in s.scalars(q)]


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenInfo,
    summary="Revoke an API token or site credential",
    responses=problem_responses(401, 403, 404),
)
def revoke(token_id: TokenId, request: Request, principal: Admin, services: ServicesDep) -> TokenInfo:
    with services.db.session() as s:
        return TokenInfo.model_validate(revoke_token(s, make_ctx(request, principal), token_id))
