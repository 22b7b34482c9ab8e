"""GET /metrics (Prometheus text format); needs a viewer token unless `metrics_public` is set."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from microdc.control.api.deps import ServicesDep, bearer, get_principal, require
from microdc.control.problems import problem_responses
from microdc.control.security import Role

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (bearer token of any user unless the server runs with --metrics-public)",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}},
        **problem_responses(401, 403),
    },
)
def metrics(
    request: Request,
    services: ServicesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Response:
    if not services.settings.metrics_public:
        principal = get_principal(request, creds)
        require(Role.VIEWER)(request, principal)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
