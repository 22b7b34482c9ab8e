"""Probe/peer reachability reports used to tell `link_down` from `down`."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from microdc.control import clientclock, health
from microdc.control.api.deps import (
    PrincipalDep,
    ServicesDep,
    count_refusal,
    make_ctx,
    security_event,
    site_rate_limit,
)
from microdc.control.problems import ProblemError, forbidden, problem_responses
from microdc.control.schemas import ProbeIn, ProbeOut, SiteState
from microdc.control.security import Role

router = APIRouter(prefix="/api/v1", tags=["probes"])


@router.post(
    "/probes",
    response_model=ProbeOut,
    status_code=status.HTTP_201_CREATED,
    summary="Report whether a site was reachable by another path (operator, or a peer site's credential)",
    responses=problem_responses(401, 403, 404, 422, 429),
)
def post_probe(body: ProbeIn, request: Request, principal: PrincipalDep, services: ServicesDep) -> ProbeOut:
    if principal.kind == "site":
        observer = f"site:{principal.site_id}"  # a peer states its own observation
        if principal.site_id == body.target_site_id:
            security_event(request, "auth.forbidden", actor=principal.actor, details={"why": "self-probe"})
            raise forbidden("a site cannot vouch for itself")
        site_rate_limit(request, principal.site_id or "")
    elif principal.has_role(Role.OPERATOR):
        observer = f"monitor:{body.observer or principal.name}"
    else:
        security_event(request, "auth.forbidden", actor=principal.actor, details={"needed": "operator"})
        raise forbidden("requires role operator or a site credential")
    ctx = make_ctx(request, principal)
    if body.observed_at is not None:  # a probe dated 2099 would pin the target's liveness for ever
        try:
            clientclock.check_live(
                "probe observed_at", body.observed_at, ctx.now, services.settings.live_clock_window_s
            )
        except ProblemError as e:
            count_refusal(request, e, "probe")
            raise
    with services.db.session() as s:
        report, site = health.record_probe(
            s,
            ctx,
            observer=observer,
            target=body.target_site_id,
            reachable=body.reachable,
            path=body.path,
            observed_at=body.observed_at or ctx.now,
            kind=body.kind,
        )
        return ProbeOut(
            id=report.id,
            observer=report.observer,
            target_site_id=report.target_site_id,
            reachable=report.reachable,
            kind=report.kind,
            path=report.path,
            observed_at=report.observed_at,
            site_state=SiteState(site.state),
        )
