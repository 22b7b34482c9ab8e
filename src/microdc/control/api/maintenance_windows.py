"""Maintenance windows per site (a door opened inside one raises no alarm); operator writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from sqlalchemy import select

from microdc.control import audit, inventory
from microdc.control.api.deps import Operator, ServicesDep, SiteIdPath, Viewer, make_ctx
from microdc.control.models import MaintenanceWindow
from microdc.control.problems import not_found, problem_responses
from microdc.control.schemas import MaintenanceWindowIn, MaintenanceWindowOut

router = APIRouter(prefix="/api/v1", tags=["maintenance windows"])
WindowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get(
    "/sites/{site_id}/maintenance-windows",
    response_model=list[MaintenanceWindowOut],
    summary="List a site's maintenance windows",
    responses=problem_responses(401, 403, 404),
)
def list_windows(site_id: SiteIdPath, principal: Viewer, services: ServicesDep) -> list[MaintenanceWindowOut]:
    with services.db.read_session() as s:
        inventory.get_site(s, site_id)
        q = (
            select(MaintenanceWindow)
            .where(MaintenanceWindow.site_id == site_id)
            .order_by(MaintenanceWindow.starts_at)
        )
        return [MaintenanceWindowOut.model_validate(w) for w in s.scalars(q)]


@router.post(
    "/sites/{site_id}/maintenance-windows",
    response_model=MaintenanceWindowOut,
    status_code=status.HTTP_201_CREATED,
    summary="Schedule a maintenance window",
    responses=problem_responses(401, 403, 404, 422),
)
def add_window(
    site_id: SiteIdPath,
    body: MaintenanceWindowIn,
    request: Request,
    principal: Operator,
    services: ServicesDep,
) -> MaintenanceWindowOut:
    ctx = make_ctx(request, principal)
    with services.db.session() as s:
        inventory.get_site(s, site_id)
        w = MaintenanceWindow(
            site_id=site_id,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            reason=body.reason,
            created_by=ctx.actor[:128],
            created_at=ctx.now,
        )
        s.add(w)
        s.flush()
        audit.append(
            s,
            actor=ctx.actor,
            action="maintenance.create",
            target=f"site:{site_id}",
            client_ip=ctx.client_ip,
            details={"id": w.id, **body.model_dump(mode="json")},
            now=ctx.now,
        )
        return MaintenanceWindowOut.model_validate(w)


@router.delete(
    "/maintenance-windows/{window_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Cancel a maintenance window",
    responses=problem_responses(401, 403, 404),
)
def delete_window(window_id: WindowId, request: Request, principal: Operator, services: ServicesDep) -> None:
    ctx = make_ctx(request, principal)
    with services.db.session() as s:
        w = s.get(MaintenanceWindow, window_id)
        if w is None:
            raise not_found(f"maintenance window {window_id}")
        s.delete(w)
        audit.append(
            s,
            actor=ctx.actor,
            action="maintenance.delete",
            target=f"site:{w.site_id}",
            client_ip=ctx.client_ip,
            details={"id": window_id},
            now=ctx.now,
        )
