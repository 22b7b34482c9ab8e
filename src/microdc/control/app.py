"""App factory: `create_app(settings) -> FastAPI`. Nothing (engine, registry, limits) is global.

For uvicorn worker processes, `app_from_env` rebuilds the settings from MICRODC_* variables.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import FastAPI, Request, Security
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials

from microdc import __version__
from microdc.control import dashboard, jobs
from microdc.control.api import (
    admin,
    alarms,
    audit,
    auth,
    desired,
    enrollment,
    health,
    maintenance_windows,
    metrics,
    modules,
    power_feeds,
    probes,
    servers,
    sites,
    telemetry,
    users,
    workload_status,
    workloads,
)
from microdc.control.api.deps import bearer, get_principal
from microdc.control.db import Database
from microdc.control.decompress import DecompressMiddleware
from microdc.control.desired import Placer
from microdc.control.middleware import AccessLogMiddleware, BodySizeLimitMiddleware
from microdc.control.online_placer import OnlinePlacer
from microdc.control.problems import add_bad_request_docs, install_problem_handlers
from microdc.control.schemas import TelemetryBatchIn
from microdc.control.security import install_log_redaction
from microdc.control.services import Services
from microdc.control.settings import Settings

log = logging.getLogger("microdc.control.app")

DESCRIPTION = """\
Control plane for fleets of micro data centers: inventory, identity and enrollment, telemetry ingest,
alarms, site liveness and desired state. Every route needs a bearer token except `/health` and
`/api/v1/enroll` (which takes a one-time enrollment token in its body). Errors are RFC 9457
`application/problem+json`.
"""

ROUTERS = (
    health,
    auth,
    users,
    sites,
    modules,
    servers,
    power_feeds,
    enrollment,
    telemetry,
    alarms,
    maintenance_windows,
    probes,
    workloads,
    workload_status,
    desired,
    audit,
    admin,
    metrics,
    dashboard,
)


def create_app(
    settings: Settings | None = None,
    *,
    placer: Placer | None = None,
    db: Database | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    settings = settings or Settings()
    services = Services.build(settings, placer or OnlinePlacer(), db)
    if clock is not None:
        services.clock = clock

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_log_redaction("uvicorn", "uvicorn.access", "uvicorn.error")
        if settings.migrate_on_start:
            await asyncio.to_thread(services.db.migrate)
        # this process start is part of the control plane's own liveness record (a gap before it is an
        # outage: silent sites get the restart grace, see watch.py)
        try:
            await asyncio.to_thread(jobs.record_watch, services, start=True)
        except Exception:  # database unreachable: /health says so; the periodic tick records it later
            log.exception("could not record the control plane's start in its watch")
        stop = asyncio.Event()
        task = asyncio.create_task(jobs.periodic(services, stop)) if settings.background_tasks else None
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            services.db.dispose()

    app = FastAPI(
        title="microdc control plane",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.services = services
    install_problem_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router)
    add_bad_request_docs(app, extra_models=(TelemetryBatchIn,))

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json(
        request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
    ) -> JSONResponse:
        if not settings.public_docs:
            get_principal(request, creds)
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(
        request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
    ) -> HTMLResponse:
        if not settings.public_docs:
            get_principal(request, creds)
        return get_swagger_ui_html(openapi_url="/openapi.json", title="microdc control plane")

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLogMiddleware)
    # Outermost: agents send gzip/zstd batches; the size limits above then apply to the decoded body.
    if settings.accept_compressed_bodies:
        app.add_middleware(DecompressMiddleware, max_bytes=settings.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory (``microdc.control.app:app_from_env``) used for multi-worker serving."""
    return create_app(Settings.from_env())
