"""Telemetry ingest (site credential), heartbeats, latest values and history."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from microdc.control import health, telemetry
from microdc.control.api.deps import OwnSite, ServicesDep, SiteIdPath, SiteOrViewer, make_ctx
from microdc.control.context import Ctx
from microdc.control.problems import ProblemError, problem_responses
from microdc.control.schemas import (
    HeartbeatIn,
    HeartbeatOut,
    HistoryOut,
    SensorOut,
    SiteState,
    TelemetryAck,
    TelemetryBatchIn,
)
from microdc.control.services import Services

router = APIRouter(prefix="/api/v1/sites/{site_id}", tags=["telemetry"])
SensorIdPath = Annotated[str, Path(min_length=1, max_length=128)]


TELEMETRY_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TelemetryBatchIn"}}},
    }
}


@router.post(
    "/telemetry",
    response_model=TelemetryAck,
    summary="Agent: post a batch of readings (idempotent on batch_id; a retry returns the original ack)",
    responses={
        **problem_responses(400, 401, 403, 413, 422),
        200: {"model": TelemetryAck, "description": "duplicate batch: the original ack, nothing stored"},
    },
    status_code=status.HTTP_201_CREATED,
    openapi_extra=TELEMETRY_BODY_DOC,
)
async def post_telemetry(
    site_id: SiteIdPath,
    request: Request,
    response: Response,
    principal: OwnSite,
    services: ServicesDep,
) -> TelemetryAck:
    # The hot path: validate the raw bytes in one pass (pydantic's JSON parser) instead of json.loads
    # followed by validation of Python objects, and run the database work in the threadpool.
    t0 = time.perf_counter()
    raw = await request.body()
    try:
        body = TelemetryBatchIn.model_validate_json(raw)
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err.get("loc", ()))} for err in e.errors(include_url=False)]
        ) from None
    if len(body.readings) > services.settings.max_readings_per_batch:
        raise ProblemError(413, f"at most {services.settings.max_readings_per_batch} readings per batch")
    ctx = make_ctx(request, principal)
    res = await run_in_threadpool(_ingest, services, ctx, site_id, body)
    m = services.metrics
    if res.duplicate:
        response.status_code = status.HTTP_200_OK
        m.batches.labels(result="duplicate").inc()
    else:
        m.batches.labels(result="accepted").inc()
        m.readings.inc(res.accepted)
    m.latency.observe(time.perf_counter() - t0)
    return TelemetryAck(
        site_id=res.site_id,
        batch_id=res.batch_id,
        seq=res.seq,
        accepted=res.accepted,
        duplicate=res.duplicate,
        received_at=res.received_at,
    )


def _ingest(services: Services, ctx: Ctx, site_id: str, body: TelemetryBatchIn) -> telemetry.IngestResult:
    with services.db.session() as s:
        return telemetry.ingest(s, ctx, site_id, body)


@router.post(
    "/heartbeat",
    response_model=HeartbeatOut,
    summary="Agent: heartbeat (marks the site up; returns the desired-state version to fetch)",
    responses=problem_responses(401, 403, 422),
)
def heartbeat(
    site_id: SiteIdPath, body: HeartbeatIn, request: Request, principal: OwnSite, services: ServicesDep
) -> HeartbeatOut:
    ctx = make_ctx(request, principal)
    with services.db.session() as s:
        site = health.heartbeat(s, ctx, site_id, seq=body.seq, agent_version=body.agent_version)
        return HeartbeatOut(
            site_id=site.id,
            state=SiteState(site.state),
            desired_version=site.desired_version,
            heartbeat_interval_s=services.settings.heartbeat_interval_s,
            server_time=ctx.now,
        )


@router.get(
    "/sensors",
    response_model=list[SensorOut],
    summary="Latest value of every sensor of the site",
    responses=problem_responses(401, 403, 404),
)
def sensors(site_id: SiteIdPath, principal: SiteOrViewer, services: ServicesDep) -> list[SensorOut]:
    with services.db.read_session() as s:
        return [SensorOut.model_validate(x) for x in telemetry.sensors_of(s, site_id)]


@router.get(
    "/sensors/{sensor_id}/history",
    response_model=HistoryOut,
    summary="A sensor's history: raw readings or 5-minute / 1-hour min/mean/max/count",
    responses=problem_responses(401, 403, 404, 422),
)
def sensor_history(
    site_id: SiteIdPath,
    sensor_id: SensorIdPath,
    principal: SiteOrViewer,
    services: ServicesDep,
    start: Annotated[datetime | None, Query(description="default: end - 1 h")] = None,
    end: Annotated[datetime | None, Query(description="default: now")] = None,
    resolution: Literal["auto", "raw", "5m", "1h"] = "auto",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> HistoryOut:
    now = services.clock()
    end_ = _aware(end) if end else now
    start_ = _aware(start) if start else end_ - timedelta(hours=1)
    with services.db.read_session() as s:
        res, points = telemetry.history(
            s,
            site_id,
            sensor_id,
            start_,
            end_,
            resolution,
            limit,
            raw_retention=timedelta(days=services.settings.raw_retention_days),
            now=now,
        )
    return HistoryOut(
        site_id=site_id,
        sensor_id=sensor_id,
        resolution=res,
        start=start_,
        end=end_,
        points=points,
    )


def _aware(dt: datetime) -> datetime:
    if dt.year < 1971 or dt.year > 9998:
        raise ProblemError(422, "timestamp out of range")
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
