"""Desired state per site: agents GET it (ETag / If-None-Match) and POST acks."""

from __future__ import annotations

from fastapi import APIRouter, Header, Request, Response

from microdc.control import audit, inventory, placements
from microdc.control.api.deps import OwnSite, ServicesDep, SiteIdPath, SiteOrViewer, make_ctx
from microdc.control.problems import ProblemError, problem_responses
from microdc.control.schemas import DesiredAckIn, DesiredAckOut, DesiredStateOut, DesiredWorkload, SiteState

router = APIRouter(prefix="/api/v1/sites/{site_id}/desired-state", tags=["desired state"])


@router.get(
    "",
    response_model=DesiredStateOut,
    summary="The workloads this site should run, with a version and ETag (304 if unchanged)",
    responses={**problem_responses(401, 403, 404, 429), 304: {"description": "not modified"}},
)
def get_desired(
    site_id: SiteIdPath,
    response: Response,
    principal: SiteOrViewer,
    services: ServicesDep,
    if_none_match: str | None = Header(default=None, max_length=256),
) -> DesiredStateOut | Response:
    with services.db.read_session() as s:
        site = inventory.get_site(s, site_id)
        tag = placements.etag(site.id, site.desired_version)
        if if_none_match is not None and tag in [t.strip() for t in if_none_match.split(",")]:
            return Response(status_code=304, headers={"ETag": tag})
        workloads = placements.desired_for_site(s, site_id)
        response.headers["ETag"] = tag
        return DesiredStateOut(
            site_id=site.id,
            version=site.desired_version,
            etag=tag,
            state=SiteState(site.state),
            workloads=[
                DesiredWorkload(
                    id=w.id,
                    name=w.name,
                    data_class=w.data_class,
                    cores=w.cores,
                    state=w.placement_state,
                    spec=w.spec,
                    spec_hash=w.spec_hash,
                )
                for w in workloads
            ],
        )


@router.post(
    "/ack",
    response_model=DesiredAckOut,
    summary="Agent: acknowledge that a desired-state version was applied (or failed)",
    responses=problem_responses(401, 403, 404, 409, 422, 429),
)
def ack(
    site_id: SiteIdPath, body: DesiredAckIn, request: Request, principal: OwnSite, services: ServicesDep
) -> DesiredAckOut:
    ctx = make_ctx(request, principal)
    with services.db.session() as s:
        site = inventory.get_site(s, site_id, lock=True)
        if body.version > site.desired_version:
            raise ProblemError(
                409, f"version {body.version} was never issued (current {site.desired_version})"
            )
        site.desired_acked_version = body.version
        site.desired_acked_at = ctx.now
        site.desired_ack_status = body.status
        site.desired_ack_message = body.message[:1024]
        audit.append(
            s,
            actor=ctx.actor,
            action="desired.ack",
            target=f"site:{site_id}",
            client_ip=ctx.client_ip,
            details=body.model_dump(mode="json"),
            now=ctx.now,
        )
        return DesiredAckOut(
            site_id=site_id,
            acked_version=body.version,
            current_version=site.desired_version,
            status=body.status,
            up_to_date=body.version == site.desired_version and body.status == "applied",
        )
