"""Alarm data layer: apply rule events, lifecycle (raised → acknowledged → cleared), break-ins.

One open alarm per (site, kind, sensor): a new event for the same key updates it. Every lifecycle
change is audited; a break-in marks the site untrusted, which drains work needing a higher tier.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from microdc.control import audit
from microdc.control.context import Ctx
from microdc.control.models import AgentAlarmEvent, Alarm, Site
from microdc.control.problems import ProblemError, not_found
from microdc.control.schemas import AgentAlarmEventIn
from microdc.control.trust import set_trust
from microdc.protocol.alarm_rules import AlarmEvent

OPEN_STATES = ("raised", "acknowledged")
# Rule alarm-clear-by-people: a site's own credential (its telemetry or its agent's events) cannot clear
# these alarms about itself — an intruder who owns the cabinet would simply close them. Only a person
# (operator role) clears them; heartbeat_lost also clears when the server itself sees the site live again.
RULE_PEOPLE_CLEAR = "alarm-clear-by-people"
PEOPLE_CLEAR_KINDS = frozenset({"heartbeat_lost", "door_open", "tamper"})


def people_must_clear(alarm: Alarm) -> bool:
    return alarm.break_in or alarm.kind in PEOPLE_CLEAR_KINDS


def _audit(
    session: Session, ctx: Ctx, action: str, alarm: Alarm, details: dict[str, Any] | None = None
) -> None:
    audit.append(
        session,
        actor=ctx.actor,
        action=action,
        target=f"alarm:{alarm.id}",
        client_ip=ctx.client_ip,
        details={
            "site_id": alarm.site_id,
            "kind": alarm.kind,
            "sensor_id": alarm.sensor_id,
            "severity": alarm.severity,
            **(details or {}),
        },
        now=ctx.now,
    )


def find_open(session: Session, site_id: str, kind: str, sensor_id: str | None) -> Alarm | None:
    q = select(Alarm).where(Alarm.site_id == site_id, Alarm.kind == kind, Alarm.state.in_(OPEN_STATES))
    q = q.where(Alarm.sensor_id.is_(None) if sensor_id is None else Alarm.sensor_id == sensor_id)
    return session.scalars(q.order_by(Alarm.id.desc()).limit(1)).first()


def _break_in(session: Session, ctx: Ctx, alarm: Alarm, why: str) -> None:
    site = session.get(Site, alarm.site_id, with_for_update=True)
    if site is not None:
        set_trust(session, ctx, site, False, f"break-in: {why} (alarm {alarm.id})")


def raise_or_update(
    session: Session,
    ctx: Ctx,
    site_id: str,
    *,
    kind: str,
    severity: str,
    sensor_id: str | None,
    message: str,
    value: float | None,
    source: str,
    break_in: bool = False,
    at: Any = None,
) -> Alarm:
    alarm = find_open(session, site_id, kind, sensor_id)
    if alarm is None:
        alarm = Alarm(
            site_id=site_id,
            kind=kind,
            severity=severity,
            sensor_id=sensor_id,
            state="raised",
            source=source,
            message=message[:1024],
            value=value,
            break_in=break_in,
            raised_at=at or ctx.now,
            updated_at=ctx.now,
        )
        session.add(alarm)
        session.flush()
        _audit(session, ctx, "alarm.raise", alarm, {"message": message, "value": value, "break_in": break_in})
    else:
        changed = alarm.severity != severity or (break_in and not alarm.break_in)
        alarm.severity = severity
        alarm.message = message[:1024]
        alarm.value = value
        alarm.updated_at = ctx.now
        if changed:
            alarm.break_in = alarm.break_in or break_in
            _audit(
                session,
                ctx,
                "alarm.update",
                alarm,
                {"message": message, "value": value, "break_in": break_in},
            )
    if break_in:
        _break_in(session, ctx, alarm, message)
    return alarm


def clear_open(
    session: Session, ctx: Ctx, site_id: str, kind: str, sensor_id: str | None, why: str
) -> Alarm | None:
    alarm = find_open(session, site_id, kind, sensor_id)
    if alarm is None:
        return None
    alarm.state = "cleared"
    alarm.cleared_at = ctx.now
    alarm.cleared_by = ctx.actor[:128]
    alarm.updated_at = ctx.now
    _audit(session, ctx, "alarm.clear", alarm, {"reason": why})
    return alarm


def apply_rule_events(session: Session, ctx: Ctx, site_id: str, events: Iterable[AlarmEvent]) -> int:
    """Apply the rules' events for the site's own readings (so a clear is the site's say-so)."""
    n = 0
    for ev in events:
        n += 1
        if ev.action == "clear":
            alarm = find_open(session, site_id, ev.kind, ev.sensor_id)
            if alarm is not None and people_must_clear(alarm):
                # stays open until an operator clears it; the reading itself is stored as usual
                _audit(
                    session, ctx, "alarm.clear_refused", alarm, {"rule": RULE_PEOPLE_CLEAR, "why": ev.message}
                )
                continue
            clear_open(session, ctx, site_id, ev.kind, ev.sensor_id, ev.message)
        else:
            raise_or_update(
                session,
                ctx,
                site_id,
                kind=ev.kind,
                severity=ev.severity or "warning",
                sensor_id=ev.sensor_id,
                message=ev.message,
                value=ev.value,
                source="rules",
                break_in=ev.break_in,
                at=ev.ts,
            )
    return n


def get_alarm(session: Session, alarm_id: int, *, lock: bool = False) -> Alarm:
    alarm = session.get(Alarm, alarm_id, with_for_update=lock)
    if alarm is None:
        raise not_found(f"alarm {alarm_id}")
    return alarm


def acknowledge(session: Session, ctx: Ctx, alarm_id: int, note: str) -> Alarm:
    alarm = get_alarm(session, alarm_id, lock=True)
    if alarm.state == "cleared":
        raise ProblemError(409, f"alarm {alarm_id} is already cleared")
    if alarm.state == "raised":
        alarm.state = "acknowledged"
        alarm.acknowledged_at = ctx.now
        alarm.acknowledged_by = ctx.actor[:128]
        alarm.updated_at = ctx.now
        _audit(session, ctx, "alarm.acknowledge", alarm, {"note": note})
    return alarm


def clear(session: Session, ctx: Ctx, alarm_id: int, note: str) -> Alarm:
    alarm = get_alarm(session, alarm_id, lock=True)
    if alarm.state != "cleared":
        alarm.state = "cleared"
        alarm.cleared_at = ctx.now
        alarm.cleared_by = ctx.actor[:128]
        alarm.updated_at = ctx.now
        _audit(session, ctx, "alarm.clear", alarm, {"note": note})
    return alarm


def mark_break_in(session: Session, ctx: Ctx, alarm_id: int, break_in: bool, note: str) -> Alarm:
    alarm = get_alarm(session, alarm_id, lock=True)
    if alarm.break_in != break_in:
        alarm.break_in = break_in
        alarm.updated_at = ctx.now
        _audit(session, ctx, "alarm.break_in" if break_in else "alarm.not_break_in", alarm, {"note": note})
        if break_in:
            _break_in(session, ctx, alarm, note or alarm.message)
    return alarm


def agent_event(session: Session, ctx: Ctx, site_id: str, ev: AgentAlarmEventIn) -> tuple[Alarm | None, bool]:
    """Apply an agent-evaluated event once (idempotent on event_id). Returns (alarm, duplicate)."""
    seen = session.scalar(
        select(AgentAlarmEvent).where(
            AgentAlarmEvent.site_id == site_id, AgentAlarmEvent.event_id == ev.event_id
        )
    )
    if seen is not None:
        return (session.get(Alarm, seen.alarm_id) if seen.alarm_id else None), True
    if ev.action == "clear":
        target = find_open(session, site_id, ev.kind, ev.sensor_id)
        if target is not None and people_must_clear(target):
            raise ProblemError(
                403,
                f"{RULE_PEOPLE_CLEAR}: alarm {target.id} ({target.kind}"
                f"{', break-in' if target.break_in else ''}) is cleared only by an operator, "
                "never by the site it is about",
                slug=RULE_PEOPLE_CLEAR,
                title="Only an operator may clear this alarm",
                rule=RULE_PEOPLE_CLEAR,
                alarm_id=target.id,
            )
        alarm = clear_open(session, ctx, site_id, ev.kind, ev.sensor_id, ev.message or "cleared by agent")
    else:
        alarm = raise_or_update(
            session,
            ctx,
            site_id,
            kind=ev.kind,
            severity=ev.severity,
            sensor_id=ev.sensor_id,
            message=ev.message,
            value=ev.value,
            source="agent",
            break_in=ev.break_in,
            at=ev.ts,
        )
    session.add(
        AgentAlarmEvent(
            site_id=site_id, event_id=ev.event_id, alarm_id=alarm.id if alarm else None, received_at=ctx.now
        )
    )
    session.flush()
    return alarm, False
