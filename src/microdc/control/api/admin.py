"""Admin operations: run the periodic maintenance (liveness check, rollups, retention) now."""

from __future__ import annotations

from fastapi import APIRouter, Request

from microdc.control import audit, jobs
from microdc.control.api.deps import Admin, ServicesDep, make_ctx
from microdc.control.problems import problem_responses
from microdc.control.schemas import MaintenanceRunOut

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.post(
    "/maintenance",
    response_model=MaintenanceRunOut,
    summary="Run liveness checks, downsampling and retention now",
    responses=problem_responses(401, 403),
)
def run_maintenance(request: Request, principal: Admin, services: ServicesDep) -> MaintenanceRunOut:
    out = jobs.run_all(services)
    ctx = make_ctx(request, principal)
    with services.db.session() as s:
        audit.append(
            s,
            actor=ctx.actor,
            action="admin.maintenance",
            target="telemetry",
            client_ip=ctx.client_ip,
            details=out.model_dump(mode="json"),
            now=ctx.now,
        )
    return out
