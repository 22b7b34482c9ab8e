"""GET /health — the only unauthenticated route."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from microdc import __version__
from microdc.control.api.deps import ServicesDep
from microdc.control.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthOut,
    summary="Liveness and database reachability (no authentication)",
    responses={503: {"model": HealthOut, "description": "database unreachable"}},
)
def health(services: ServicesDep) -> HealthOut | JSONResponse:
    try:
        with services.db.read_session() as s:
            s.execute(text("SELECT 1"))
    except Exception:
        body = HealthOut(status="degraded", database="unreachable", version=__version__)
        return JSONResponse(body.model_dump(), status_code=503)
    return HealthOut(status="ok", database="ok", version=__version__)
