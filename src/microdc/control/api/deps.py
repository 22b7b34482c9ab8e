"""Shared FastAPI dependencies: services, context, authentication, role checks, rate limiting."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from microdc.control import audit, certbind, proxies
from microdc.control.context import Ctx
from microdc.control.identity import lookup_principal
from microdc.control.problems import ProblemError, forbidden, unauthorized
from microdc.control.ratelimit import TokenBucket
from microdc.control.security import Principal, Role
from microdc.control.services import Services
from microdc.control.tlsext import peer_certificate

log = logging.getLogger("microdc.control")
bearer = HTTPBearer(auto_error=False, description="API token or site credential (mdc_u_… / mdc_s_…)")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _peer(request: Request) -> str:
    return request.client.host if request.client else ""


def from_trusted_proxy(request: Request) -> bool:
    """Whether the direct peer is one of `trusted_proxies` (only then do X-Forwarded-* headers count)."""
    services: Services = request.app.state.services
    return proxies.is_trusted(_peer(request), services.settings.trusted_proxies)


def client_ip(request: Request) -> str:
    """The IP that rate limits and the audit log see: X-Forwarded-For only via a trusted proxy."""
    services: Services = request.app.state.services
    fwd = request.headers.getlist("x-forwarded-for")
    return proxies.client_address(_peer(request), fwd, services.settings.trusted_proxies)[:64]


def security_event(
    request: Request,
    action: str,
    *,
    actor: str = "anonymous",
    target: str = "",
    details: dict[str, Any] | None = None,
    sample: bool = False,
) -> None:
    """Audit a security event in its own transaction.

    Events by authenticated callers, login and enrollment failures (themselves rate limited) are always
    audited. With `sample` (unauthenticated junk tokens) a per-IP token bucket caps how many get audited,
    so a flood cannot bloat the log; all are still counted in microdc_security_events_total.
    Call it only while no write transaction is open in this thread.
    """
    services: Services = request.app.state.services
    services.metrics.security_events.labels(action=action).inc()
    ip = client_ip(request)
    if sample and services.limits.security_audit_ip.take(ip) > 0:
        return
    try:
        with services.db.session() as s:
            audit.append(
                s,
                actor=actor,
                action=action,
                target=target or request.url.path,
                outcome="denied",
                client_ip=ip,
                details={"method": request.method, "path": request.url.path, **(details or {})},
                now=services.clock(),
            )
    except Exception:  # never turn a 401/403 into a 500
        log.exception("could not audit security event %s", action)


def count_refusal(request: Request, err: ProblemError, route: str) -> str | None:
    """Count a refusal by a named rule (problem member `rule`) in microdc_refused_total; returns the rule."""
    rule = err.extra.get("rule")
    if rule:
        services: Services = request.app.state.services
        services.metrics.refused.labels(rule=str(rule), route=route).inc()
    return str(rule) if rule else None


def rate_limit(request: Request, bucket: TokenBucket, key: str, scope: str) -> None:
    wait = bucket.take(key)
    if wait > 0:
        services: Services = request.app.state.services
        services.metrics.rate_limited.labels(scope=scope).inc()
        raise ProblemError(
            429,
            f"too many {scope} attempts; retry later",
            headers={"Retry-After": TokenBucket.retry_after(wait)},
        )


def bind_client_certificate(request: Request, principal: Principal) -> None:
    """403 when a site credential arrives over a TLS connection whose client certificate is another
    site's (or, with `site_cert_required`, without one); see microdc.control.certbind."""
    if principal.kind != "site" or principal.site_id is None:
        return
    check_client_certificate(request, principal.site_id, principal.actor, principal.token_id)


def check_client_certificate(request: Request, site_id: str, actor: str, token_id: int | None) -> None:
    """Refuse (403, counted, audited) unless this connection's client certificate may speak for `site_id`."""
    services: Services = request.app.state.services
    cert = peer_certificate(request.scope)
    refusal = certbind.check_site_certificate(site_id, cert, required=services.settings.site_cert_required)
    if refusal is None:
        return
    err = ProblemError(
        403, refusal.message, slug=refusal.rule, title="Client certificate refused", rule=refusal.rule
    )
    count_refusal(request, err, "auth")
    security_event(
        request,
        "auth.client_cert_refused",
        actor=actor,
        target=f"site:{site_id}",
        details={"rule": refusal.rule, "token_id": token_id},
    )
    raise err
def site_rate_limit(request: Request, site_id: str) -> None:
    """Rule ``site-request-rate``: one site credential gets a bounded share of the control plane.
    Counted in microdc_site_limited_total{reason="request-rate"} and microdc_rate_limited_total."""
    services: Services = request.app.state.services
    wait = services.limits.site.take(site_id)
    if wait > 0:
        services.metrics.site_limited.labels(reason="request-rate").inc()
        services.metrics.rate_limited.labels(scope="site").inc()
        raise ProblemError(
            429,
            f"site-request-rate: site {site_id!r} sends more than {services.settings.site_requests_per_s:g} "
            f"requests/s (burst {services.settings.site_request_burst}); retry later",
            slug="site-request-rate",
            title="Too many requests from one site",
            headers={"Retry-After": TokenBucket.retry_after(wait)},
            rule="site-request-rate",
        )


def get_principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal:
    services: Services = request.app.state.services
    if creds is None or not creds.credentials:
        raise unauthorized("missing bearer token")
    with services.db.lookup_session() as s:
        principal = lookup_principal(s, creds.credentials, services.clock())
    if principal is None:
        security_event(request, "auth.invalid_token", sample=True)
        raise unauthorized("invalid, expired or revoked token")
    bind_client_certificate(request, principal)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_renewing_site(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal:
    """Like get_principal, but a site credential that expired while the site was offline (within
    `expired_renewal_s`, never revoked) is accepted — for the rotation route only."""
    services: Services = request.app.state.services
    if creds is None or not creds.credentials:
        raise unauthorized("missing bearer token")
    window = timedelta(seconds=services.settings.expired_renewal_s)
    with services.db.lookup_session() as s:
        principal = lookup_principal(s, creds.credentials, services.clock(), site_expired_within=window)
    if principal is None:
        security_event(request, "auth.invalid_token", sample=True)
        raise unauthorized("invalid, revoked or long-expired token")
    bind_client_certificate(request, principal)
    request.state.principal = principal
    return principal


RenewingPrincipalDep = Annotated[Principal, Depends(get_renewing_site)]


def require(role: Role) -> Callable[..., Principal]:
    def dep(request: Request, principal: PrincipalDep) -> Principal:
        if not principal.has_role(role):
            security_event(request, "auth.forbidden", actor=principal.actor, details={"needed": role.value})
            raise forbidden(f"requires role {role.value}")
        return principal

    dep.__name__ = f"require_{role.value}"
    return dep


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
SiteIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=128)]


def own_site(request: Request, site_id: SiteIdPath, principal: PrincipalDep) -> Principal:
    """Only the site's own credential may write its data."""
    if principal.kind != "site" or principal.site_id != site_id:
        security_event(
            request, "auth.forbidden_site", actor=principal.actor, target=f"site:{site_id}", details={}
        )
        raise forbidden("only this site's own credential may write its data")
    site_rate_limit(request, site_id)
    return principal


def site_or_viewer(request: Request, site_id: SiteIdPath, principal: PrincipalDep) -> Principal:
    """Users (viewer and up) or the site's own credential may read."""
    if principal.kind == "site" and principal.site_id == site_id:
        site_rate_limit(request, site_id)
        return principal
    if principal.has_role(Role.VIEWER):
        return principal
    security_event(request, "auth.forbidden_site", actor=principal.actor, target=f"site:{site_id}")
    raise forbidden("a site credential may only read its own site")


OwnSite = Annotated[Principal, Depends(own_site)]
SiteOrViewer = Annotated[Principal, Depends(site_or_viewer)]


def make_ctx(request: Request, principal: Principal | None) -> Ctx:
    services: Services = request.app.state.services
    return services.ctx(principal.actor if principal else "anonymous", client_ip(request))
