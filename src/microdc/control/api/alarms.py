"""Alarms: list/get (viewer), acknowledge/clear/break-in (operator), agent-evaluated events (site)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from sqlalchemy import select

from microdc.control import alarms, clientclock
from microdc.control.api.deps import (
    Operator,
    OwnSite,
    ServicesDep,
    SiteIdPath,
    Viewer,
    count_refusal,
    make_ctx,
    security_event,
)
from microdc.control.models import Alarm
from microdc.control.problems import ProblemError, problem_responses
from microdc.control.schemas import AgentAlarmEventIn, AlarmNoteIn, AlarmOut, AlarmState, BreakInIn

router = APIRouter(prefix="/api/v1", tags=["alarms"])
AlarmId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get(
    "/alarms",
    response_model=list[AlarmOut],
    summary="List alarms",
    responses=problem_responses(401, 403, 422),
)
def list_alarms(
    principal: Viewer,
    services: ServicesDep,
    site_id: Annotated[str | None, Query(max_length=128)] = None,
    state: AlarmState | None = None,
    open_only: Annotated[bool, Query(description="raised or acknowledged")] = False,
    severity: Literal["warning", "critical"] | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[AlarmOut]:
    q = select(Alarm).order_by(Alarm.id.desc()).limit(limit)
    if site_id:
        q = q.where(Alarm.site_id == site_id)
    if state is not None:
        q = q.where(Alarm.state == state.value)
    if open_only:
        q = q.where(Alarm.state.in_(alarms.OPEN_STATES))
    if severity:
        q = q.where(Alarm.severity == severity)
    with services.db.read_session() as s:
        return [AlarmOut.model_validate(a) for a in s.scalars(q)]


@router.get(
    "/alarms/{alarm_id}",
    response_model=AlarmOut,
    summary="Get an alarm",
    responses=problem_responses(401, 403, 404),
)
def get_alarm(alarm_id: AlarmId, principal: Viewer, services: ServicesDep) -> AlarmOut:
    with services.db.read_session() as s:
        return AlarmOut.model_validate(alarms.get_alarm(s, alarm_id))


@router.post(
    "/alarms/{alarm_id}/acknowledge",
    response_model=AlarmOut,
    summary="Acknowledge a raised alarm (records who and when)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def acknowledge(
    alarm_id: AlarmId, body: AlarmNoteIn, request: Request, principal: Operator, services: ServicesDep
) -> AlarmOut:
    with services.db.session() as s:
        return AlarmOut.model_validate(
            alarms.acknowledge(s, make_ctx(request, principal), alarm_id, body.note)
        )


@router.post(
    "/alarms/{alarm_id}/clear",
    response_model=AlarmOut,
    summary="Clear an alarm (records who and when)",
    responses=problem_responses(401, 403, 404, 422),
)
def clear(
    alarm_id: AlarmId, body: AlarmNoteIn, request: Request, principal: Operator, services: ServicesDep
) -> AlarmOut:
    with services.db.session() as s:
        return AlarmOut.model_validate(alarms.clear(s, make_ctx(request, principal), alarm_id, body.note))


@router.post(
    "/alarms/{alarm_id}/break-in",
    response_model=AlarmOut,
    summary="Mark an alarm as a break-in (the site becomes untrusted and sensitive work is drained)",
    responses=problem_responses(401, 403, 404, 422),
)
def break_in(
    alarm_id: AlarmId, body: BreakInIn, request: Request, principal: Operator, services: ServicesDep
) -> AlarmOut:
    with services.db.session() as s:
        return AlarmOut.model_validate(
            alarms.mark_break_in(s, make_ctx(request, principal), alarm_id, body.break_in, body.note)
        )


@router.post(
    "/sites/{site_id}/alarm-events",
    response_model=AlarmOut | None,
    status_code=status.HTTP_201_CREATED,
    summary="Agent: report an alarm event it evaluated locally (idempotent on event_id)",
    responses={
        **problem_responses(401, 403, 422, 429),
        200: {"description": "duplicate event: nothing changed"},
    },
    description="A site cannot clear heartbeat_lost, door_open, tamper or break-in alarms about itself "
    "(403 alarm-clear-by-people): only an operator clears those.",
)
def agent_event(
    site_id: SiteIdPath,
    body: AgentAlarmEventIn,
    request: Request,
    response: Response,
    principal: OwnSite,
    services: ServicesDep,
) -> AlarmOut | None:
    ctx = make_ctx(request, principal)
    try:
        clientclock.check_recorded("alarm event ts", body.ts, ctx.now, services.settings.max_clock_skew_s)
        with services.db.session() as s:
            alarm, duplicate = alarms.agent_event(s, ctx, site_id, body)
            if duplicate:
                response.status_code = status.HTTP_200_OK
            return AlarmOut.model_validate(alarm) if alarm is not None else None
    except ProblemError as e:
        if count_refusal(request, e, "alarm_event") == alarms.RULE_PEOPLE_CLEAR:
            security_event(
                request,
                "alarm.clear_refused",
                actor=principal.actor,
                target=f"alarm:{e.extra.get('alarm_id')}",
                details={"rule": alarms.RULE_PEOPLE_CLEAR, "kind": body.kind, "event_id": body.event_id},
            )
        raise
