"""Sites: inventory CRUD (admin writes), trust, state history, bulk import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import select

from microdc.control import inventory, site_import
from microdc.control.api.deps import Admin, ServicesDep, SiteIdPath, Viewer, make_ctx
from microdc.control.models import Site, SiteStateEvent
from microdc.control.problems import conflict, problem_responses
from microdc.control.schemas import (
    ImportResult,
    SiteIn,
    SiteOut,
    SitePatch,
    SiteState,
    SiteStateEventOut,
    TrustIn,
)
from microdc.control.trust import set_trust

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])


@router.get(
    "", response_model=list[SiteOut], summary="List sites", responses=problem_responses(401, 403, 422)
)
def list_sites(
    principal: Viewer,
    services: ServicesDep,
    state: SiteState | None = None,
    jurisdiction: Annotated[str | None, Query(max_length=64)] = None,
) -> list[SiteOut]:
    with services.db.read_session() as s:
        q = select(Site).order_by(Site.id)
        if jurisdiction:
            q = q.where(Site.jurisdiction == jurisdiction)
        sites = list(s.scalars(q))
        if state is not None:
            sites = [x for x in sites if x.state == state.value]
        return inventory.site_out(s, sites)


@router.post(
    "",
    response_model=SiteOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a site (with optional modules, servers and power feeds)",
    responses=problem_responses(401, 403, 409, 422),
)
def create_site(body: SiteIn, request: Request, principal: Admin, services: ServicesDep) -> SiteOut:
    with services.db.session() as s:
        site = inventory.create_site(s, make_ctx(request, principal), body)
        return inventory.site_out(s, [site])[0]


@router.post(
    "/import",
    response_model=ImportResult,
    summary="Create or update many sites (as from a scenario file); idempotent on a live fleet",
    description="Adds new sites and updates the inventory of existing ones; never changes the status of "
    "an existing site (except planned → active), its liveness, trust or desired state, and never deletes "
    "modules or feeds. With `dry_run=true` it reports what would change and writes nothing.",
    responses=problem_responses(401, 403, 409, 422),
)
def import_sites(
    body: list[SiteIn],
    request: Request,
    principal: Admin,
    services: ServicesDep,
    dry_run: Annotated[bool, Query(description="report what would change; write nothing")] = False,
) -> ImportResult:
    try:
        if dry_run:
            with services.db.read_session() as s:
                report = site_import.plan_import(s, body)
        else:
            with services.db.session() as s:
                report = site_import.apply_import(s, make_ctx(request, principal), body)
    except ValueError as e:
        raise conflict(str(e)) from None
    return ImportResult.from_report(report, dry_run=dry_run)


@router.get(
    "/{site_id}", response_model=SiteOut, summary="Get a site", responses=problem_responses(401, 403, 404)
)
def get_site(site_id: SiteIdPath, principal: Viewer, services: ServicesDep) -> SiteOut:
    with services.db.read_session() as s:
        return inventory.site_out(s, [inventory.get_site(s, site_id)])[0]


@router.patch(
    "/{site_id}",
    response_model=SiteOut,
    summary="Update a site's descriptive fields",
    responses=problem_responses(401, 403, 404, 422),
)
def patch_site(
    site_id: SiteIdPath, body: SitePatch, request: Request, principal: Admin, services: ServicesDep
) -> SiteOut:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    with services.db.session() as s:
        site = inventory.update_site(s, make_ctx(request, principal), site_id, changes)
        return inventory.site_out(s, [site])[0]


@router.delete(
    "/{site_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a site and everything recorded about it",
    responses=problem_responses(401, 403, 404),
)
def delete_site(site_id: SiteIdPath, request: Request, principal: Admin, services: ServicesDep) -> None:
    with services.db.session() as s:
        inventory.delete_site(s, make_ctx(request, principal), site_id)


@router.put(
    "/{site_id}/trust",
    response_model=SiteOut,
    summary="Mark a site trusted or untrusted (untrusted drains work needing a higher tier)",
    responses=problem_responses(401, 403, 404, 422),
)
def put_trust(
    site_id: SiteIdPath, body: TrustIn, request: Request, principal: Admin, services: ServicesDep
) -> SiteOut:
    with services.db.session() as s:
        site = inventory.get_site(s, site_id, lock=True)
        set_trust(s, make_ctx(request, principal), site, body.trusted, body.reason)
        return inventory.site_out(s, [site])[0]


@router.get(
    "/{site_id}/state-events",
    response_model=list[SiteStateEventOut],
    summary="The site's state transitions, newest first",
    responses=problem_responses(401, 403, 404, 422),
)
def state_events(
    site_id: SiteIdPath,
    principal: Viewer,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SiteStateEventOut]:
    with services.db.read_session() as s:
        inventory.get_site(s, site_id)
        q = (
            select(SiteStateEvent)
            .where(SiteStateEvent.site_id == site_id)
            .order_by(SiteStateEvent.id.desc())
            .limit(limit)
        )
        return [SiteStateEventOut.model_validate(e) for e in s.scalars(q)]
