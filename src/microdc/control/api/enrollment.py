"""Site enrollment: one-time tokens (admin) → site credentials (agent); rotation; revocation."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, status
from sqlalchemy import select

from microdc.control import identity, site_certs
from microdc.control.api.deps import (
    Admin,
    RenewingPrincipalDep,
    ServicesDep,
    SiteIdPath,
    client_ip,
    make_ctx,
    rate_limit,
    security_event,
)
from microdc.control.models import ApiToken
from microdc.control.problems import ProblemError, forbidden, problem_responses
from microdc.control.schemas import EnrollIn, EnrollmentTokenOut, SiteCredentialOut, TokenInfo
from microdc.protocol.wire import RotateIn

router = APIRouter(prefix="/api/v1", tags=["enrollment"])


def _credential(
    services_ttl_s: int,
    site_id: str,
    tok: ApiToken,
    secret: str,
    cert: site_certs.IssuedCert | None = None,
) -> SiteCredentialOut:
    assert tok.expires_at is not None
    return SiteCredentialOut(
        site_id=site_id,
        token=secret,
        token_id=tok.id,
        expires_at=tok.expires_at,
        renew_after=tok.expires_at - timedelta(seconds=services_ttl_s // 3),
        client_certificate=cert.cert_pem if cert else None,
        ca_certificate=cert.ca_pem if cert else None,
    )


@router.post(
    "/sites/{site_id}/enrollment-tokens",
    response_model=EnrollmentTokenOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a one-time enrollment token for a site (shown once; short TTL)",
    responses=problem_responses(401, 403, 404),
)
def create_enrollment_token(
    site_id: SiteIdPath, request: Request, principal: Admin, services: ServicesDep
) -> EnrollmentTokenOut:
    with services.db.session() as s:
        et, secret = identity.create_enrollment_token(s, make_ctx(request, principal), site_id)
        return EnrollmentTokenOut(token=secret, site_id=site_id, expires_at=et.expires_at)


@router.post(
    "/enroll",
    response_model=SiteCredentialOut,
    status_code=status.HTTP_201_CREATED,
    summary="Agent: exchange a one-time enrollment token for a site credential (rate limited)",
    responses=problem_responses(401, 422, 429),
    openapi_extra={"security": []},
)
def enroll(body: EnrollIn, request: Request, services: ServicesDep) -> SiteCredentialOut:
    ip = client_ip(request)
    rate_limit(request, services.limits.enroll_ip, ip, "enrollment")
    with services.db.read_session() as s:
        site_hint = identity.site_of_enrollment_token(s, body.token)
    if site_hint is not None:
        rate_limit(request, services.limits.enroll_site, site_hint, "enrollment")
    settings = services.settings
    csr = site_certs.checked_csr(settings.ca_dir, body.csr)  # a bad CSR does not spend the token
    ctx = make_ctx(request, None)
    with services.db.session() as s:
        outcome = identity.redeem_enrollment(s, ctx, body.token, body.agent_version)
        cred = None
        if outcome.ok and outcome.token is not None and outcome.site_id is not None:
            cert = (
                site_certs.sign_for_site(
                    s, ctx, settings.ca_dir, outcome.site_id, csr, settings.site_cert_days
                )
                if csr is not None and settings.ca_dir
                else None
            )
            cred = _credential(
                settings.site_token_ttl_s, outcome.site_id, outcome.token, outcome.secret, cert
            )
    if cred is None:
        security_event(
            request,
            "enrollment.failed",
            target=f"site:{outcome.site_id}" if outcome.site_id else "",
            details={"reason": outcome.reason},
        )
        raise ProblemError(401, outcome.reason, slug="enrollment-failed", title="Enrollment failed")
    return cred


@router.post(
    "/site-credentials/rotate",
    response_model=SiteCredentialOut,
    status_code=status.HTTP_201_CREATED,
    summary="Agent: replace the calling site credential (the old one stays valid for a short grace period)",
    responses=problem_responses(401, 403, 422, 429),
)
def rotate(
    request: Request,
    principal: RenewingPrincipalDep,
    services: ServicesDep,
    body: RotateIn | None = None,
) -> SiteCredentialOut:
    if principal.kind != "site" or principal.site_id is None:
        security_event(
            request, "auth.forbidden", actor=principal.actor, details={"needed": "site credential"}
        )
        raise forbidden("only a site credential can be rotated")
    rate_limit(request, services.limits.rotate_site, principal.site_id, "credential rotation")
    settings = services.settings
    csr = site_certs.checked_csr(settings.ca_dir, body.csr if body else None)
    try:
        with services.db.session() as s:
            ctx = make_ctx(request, principal)
            tok, secret = identity.rotate_site_credential(s, ctx, principal)
            cert = (
                site_certs.sign_for_site(
                    s, ctx, settings.ca_dir, principal.site_id, csr, settings.site_cert_days
                )
                if csr is not None and settings.ca_dir
                else None
            )
            return _credential(settings.site_token_ttl_s, principal.site_id, tok, secret, cert)
    except ProblemError as e:
        if e.extra.get("rule") == identity.RULE_CURRENT_RENEWS:  # a copy of a rotated credential
            security_event(
                request,
                "auth.superseded_credential",
                actor=principal.actor,
                target=f"site:{principal.site_id}",
                details={"token_id": principal.token_id, "rule": identity.RULE_CURRENT_RENEWS},
            )
        raise


@router.get(
    "/sites/{site_id}/credentials",
    response_model=list[TokenInfo],
    summary="List a site's credentials (never their secrets)",
    responses=problem_responses(401, 403),
)
def list_credentials(site_id: SiteIdPath, principal: Admin, services: ServicesDep) -> list[TokenInfo]:
    with services.db.read_session() as s:
        q = select(ApiToken).where(ApiToken.site_id == site_id).order_by(ApiToken.id)
        return [TokenInfo.model_validate(t) for t in s.scalars(q)]


@router.post(
    "/sites/{site_id}/credentials/revoke",
    response_model=list[TokenInfo],
    summary="Revoke every credential of a site (the agent must enroll again)",
    responses=problem_responses(401, 403),
)
def revoke_all(
    site_id: SiteIdPath, request: Request, principal: Admin, services: ServicesDep
) -> list[TokenInfo]:
    with services.db.session() as s:
        identity.revoke_site_credentials(s, make_ctx(request, principal), site_id)
        q = select(ApiToken).where(ApiToken.site_id == site_id).order_by(ApiToken.id)
        return [TokenInfo.model_validate(t) for t in s.scalars(q)]
