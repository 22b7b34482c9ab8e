"""Telemetry ingest (site credential), heartbeats, latest values and history."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response, Security, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import ValidationError

from microdc.control import clientclock, health, sitelimits, telemetry
from microdc.control.api.deps import (
    OwnSite,
    ServicesDep,
    SiteIdPath,
    SiteOrViewer,
    bearer,
    check_client_certificate,
    count_refusal,
    make_ctx,
    security_event,
    site_rate_limit,
)
from microdc.control.identity import lookup_principal
from microdc.control.problems import ProblemError, forbidden, problem_responses, unauthorized
from microdc.control.schemas import (
    AuditCheckpointOut,
    HeartbeatIn,
    HeartbeatOut,
    HistoryOut,
    SensorOut,
    SiteState,
    TelemetryAck,
    TelemetryBatchIn,
)
from microdc.control.security import Principal
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
        **problem_responses(400, 401, 403, 409, 413, 422, 429),
        200: {"model": TelemetryAck, "description": "duplicate batch: the original ack, nothing stored"},
    },
    status_code=status.HTTP_201_CREATED,
    openapi_extra=TELEMETRY_BODY_DOC,
)
async def post_telemetry(
    site_id: SiteIdPath,
    request: Request,
    response: Response,
    services: ServicesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> TelemetryAck:
    # The hot path, in one threadpool hop and one database transaction: authenticate (same rules as
    # the OwnSite dependency), validate the raw bytes with pydantic's JSON parser, ingest, commit.
    t0 = time.perf_counter()
    if creds is None or not creds.credentials:
        raise unauthorized("missing bearer token")
    raw = await request.body()
    try:
        res = await run_in_threadpool(
            _authenticate_and_ingest, request, services, creds.credentials, site_id, raw
        )
    except ProblemError as e:
        rule = count_refusal(request, e, "telemetry")
        if rule == telemetry.RULE_BATCH_CONFLICT:
            services.metrics.batches.labels(result="conflict").inc()
        elif rule == sitelimits.RULE_SENSOR_LIMIT:
            services.metrics.site_limited.labels(reason="sensors").inc()
        raise
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


def _parse(raw: bytes, max_readings: int) -> TelemetryBatchIn:
    try:
        body = TelemetryBatchIn.model_validate_json(raw)
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err.get("loc", ()))} for err in e.errors(include_url=False)]
        ) from None
    if len(body.readings) > max_readings:
        raise ProblemError(413, f"at most {max_readings} readings per batch")
    return body


def _authenticate_and_ingest(
    request: Request, services: Services, token: str, site_id: str, raw: bytes
) -> telemetry.IngestResult:
    denied: Principal | None = None
    conflict: ProblemError | None = None
    # only site_id's own credential may post here, so its client certificate must be site_id's too
    check_client_certificate(request, site_id, "anonymous", None)
    with services.db.session() as s:
        principal = lookup_principal(s, token, services.clock())
        if principal is not None and principal.kind == "site" and principal.site_id == site_id:
            request.state.principal = principal
            site_rate_limit(request, site_id)
            body = _parse(raw, services.settings.max_readings_per_batch)
            try:
                return telemetry.ingest(s, make_ctx(request, principal), site_id, body)
            except ProblemError as e:
                if e.extra.get("rule") != telemetry.RULE_BATCH_CONFLICT:
                    raise
                conflict = e  # nothing was written; audit it once the transaction is closed
        denied = principal
    if conflict is not None and principal is not None:
        security_event(
            request,
            "telemetry.batch_conflict",
            actor=principal.actor,
            target=f"site:{site_id}",
            details={k: conflict.extra.get(k) for k in ("rule", "batch_id", "stored_sha256", "sent_sha256")},
        )
        raise conflict
    # outside the transaction: record the security event, then refuse
    if denied is None:
        security_event(request, "auth.invalid_token", sample=True)
        raise unauthorized("invalid, expired or revoked token")
    security_event(request, "auth.forbidden_site", actor=denied.actor, target=f"site:{site_id}")
    raise forbidden("only this site's own credential may write its data")


@router.post(
    "/heartbeat",
    response_model=HeartbeatOut,
    summary="Agent: heartbeat (marks the site up; returns the desired-state version to fetch)",
    responses=problem_responses(401, 403, 422, 429),
)
def heartbeat(
    site_id: SiteIdPath, body: HeartbeatIn, request: Request, principal: OwnSite, services: ServicesDep
) -> HeartbeatOut:
    ctx = make_ctx(request, principal)
    if body.sent_at is not None:
        try:
            clientclock.check_live(
                "heartbeat sent_at", body.sent_at, ctx.now, services.settings.live_clock_window_s
            )
        except ProblemError as e:
            count_refusal(request, e, "heartbeat")
            raise
    with services.db.session() as s:
        site = health.heartbeat(s, ctx, site_id, seq=body.seq, agent_version=body.agent_version)
        cp = services.checkpoints.current(s, services.db.audit_keyring, ctx.now)
        return HeartbeatOut(
            site_id=site.id,
            state=SiteState(site.state),
            desired_version=site.desired_version,
            heartbeat_interval_s=services.settings.heartbeat_interval_s,
            server_time=ctx.now,
            audit_checkpoint=AuditCheckpointOut(**cp.to_json()),
        )


@router.get(
    "/sensors",
    response_model=list[SensorOut],
    summary="Latest value of every sensor of the site",
    responses=problem_responses(401, 403, 404, 429),
)
def sensors(site_id: SiteIdPath, principal: SiteOrViewer, services: ServicesDep) -> list[SensorOut]:
    with services.db.read_session() as s:
        return [SensorOut.model_validate(x) for x in telemetry.sensors_of(s, site_id)]


@router.get(
    "/sensors/{sensor_id}/history",
    response_model=HistoryOut,
    summary="A sensor's history: raw readings or 5-minute / 1-hour min/mean/max/count",
    responses=problem_responses(401, 403, 404, 422, 429),
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
