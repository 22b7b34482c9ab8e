"""Site liveness: heartbeats, corroborating evidence, transitions (see site_state.py for the machine)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from microdc.control import alarms, audit, placements, watch
from microdc.control.context import Ctx
from microdc.control.models import ProbeReport, Sensor, Site, SiteStateEvent, TelemetryBatch
from microdc.control.problems import not_found
from microdc.control.site_state import Evidence, Liveness, assess, display_state
from microdc.control.watch import WatchView
from microdc.protocol.alarm_rules import Reading, heartbeat_overdue, inlet_temperatures_normal
from microdc.protocol.vocab import ReadingType, UpsState


def transition(
    session: Session,
    ctx: Ctx,
    site: Site,
    new: Liveness,
    reason: str,
    evidence: dict[str, Any] | None = None,
    *,
    replace: bool = True,
) -> bool:
    """Record the site's state, reason and evidence; on a change, log it, raise/clear the alarm and (if
    `replace`) re-run the placer. `check_all` passes replace=False and runs the placer once at the end."""
    evidence = evidence or {}
    site.liveness_reason = reason[:512]
    site.liveness_evidence = evidence
    if site.liveness == new.value:
        return False
    before = site.state
    site.liveness = new.value
    site.liveness_since = ctx.now
    after = display_state(new.value, site.trusted)
    session.add(
        SiteStateEvent(
            site_id=site.id,
            from_state=before,
            to_state=after,
            reason=reason[:512],
            evidence=evidence,
            at=ctx.now,
        )
    )
    audit.append(
        session,
        actor=ctx.actor,
        action="site.state",
        target=f"site:{site.id}",
        client_ip=ctx.client_ip,
        details={"from": before, "to": after, "liveness": new.value, "reason": reason},
        now=ctx.now,
    )
    if new == Liveness.UP:
        alarms.clear_open(session, ctx, site.id, "heartbeat_lost", None, "heartbeat received")
    elif new in (Liveness.DOWN, Liveness.LINK_DOWN, Liveness.SUSPECT):
        alarms.raise_or_update(
            session,
            ctx,
            site.id,
            kind="heartbeat_lost",
            severity="critical" if new == Liveness.DOWN else "warning",
            sensor_id=None,
            message=f"{new.value}: {reason}",
            value=None,
            source="system",
        )
    session.flush()
    if replace:
        placements.recompute(session, ctx)
    return True


def latest_readings(session: Session, site_id: str) -> list[tuple[Reading, datetime]]:
    rows = session.scalars(
        select(Sensor).where(
            Sensor.site_id == site_id,
            Sensor.reading_type.in_((ReadingType.UPS_STATE.value, ReadingType.RUNTIME.value, "Temperature")),
        )
    )
    return [
        (
            Reading(s.sensor_id, s.reading_type, s.physical_context, s.latest_ts, s.latest_value, s.unit),
            s.latest_ts,
        )
        for s in rows
    ]


def _probe_evidence(
    session: Session, site_id: str, since: datetime, oldest: datetime, kind: str
) -> list[ProbeReport]:
    return list(
        session.scalars(
            select(ProbeReport)
            .where(
                ProbeReport.target_site_id == site_id,
                ProbeReport.kind == kind,
                ProbeReport.observed_at > since,
                ProbeReport.observed_at >= oldest,
            )
            .order_by(ProbeReport.observed_at, ProbeReport.id)
        )
    )


def _failing_since(probes: list[ProbeReport]) -> datetime | None:
    """Start of the current run of failed probes: the first failure after the last success (any observer)."""
    start: datetime | None = None
    for p in probes:
        if p.reachable:
            start = None
        elif start is None:
            start = p.observed_at
    return start


def gather_evidence(session: Session, ctx: Ctx, site: Site) -> Evidence:
    latest = latest_readings(session, site.id)
    ups = [r for r, _ in latest if r.reading_type == ReadingType.UPS_STATE]
    on_battery: bool | None = None
    if ups:
        on_battery = any(round(r.value) == UpsState.ON_BATTERY for r in ups)
    exhausted_at: datetime | None = None
    for r, ts in latest:
        if r.reading_type == ReadingType.RUNTIME and on_battery:
            runs_out = ts + timedelta(minutes=r.value)
            if runs_out <= ctx.now:
                exhausted_at = runs_out if exhausted_at is None else min(exhausted_at, runs_out)
        elif r.reading_type == ReadingType.RUNTIME and r.value <= 0:
            exhausted_at = ts if exhausted_at is None else min(exhausted_at, ts)
    temps_ok = inlet_temperatures_normal([r for r, _ in latest], ctx.thresholds)
    since = site.last_heartbeat_at or site.liveness_since
    oldest = ctx.now - timedelta(seconds=ctx.settings.probe_max_age_s)
    probes = _probe_evidence(session, site.id, since, oldest, "peer")
    latest_by_observer: dict[str, bool] = {}
    for p in probes:
        latest_by_observer[p.observer] = p.reachable
    reachable = sum(1 for v in latest_by_observer.values() if v)
    unreachable = sum(1 for v in latest_by_observer.values() if not v)
    uplinks = _probe_evidence(session, site.id, since, oldest, "uplink")
    uplink_up = uplinks[-1].reachable if uplinks else None
    uplink_since: datetime | None = None
    for p in reversed(uplinks):  # the start of the latest run of same-state uplink reports
        if p.reachable != uplink_up:
            break
        uplink_since = p.observed_at
    cover = False
    overdue_since: datetime | None = None
    if site.last_heartbeat_at is not None:
        gap_start = site.last_heartbeat_at + timedelta(seconds=ctx.settings.heartbeat_timeout_s)
        overdue_since = gap_start
        cover = (
            session.scalar(
                select(TelemetryBatch.id)
                .where(
                    and_(
                        TelemetryBatch.site_id == site.id,
                        TelemetryBatch.received_at >= oldest,
                        TelemetryBatch.first_ts <= gap_start,
                        TelemetryBatch.last_ts > gap_start,
                    )
                )
                .limit(1)
            )
            is not None
        )
    return Evidence(
        ups_on_battery=on_battery,
        runtime_exhausted=exhausted_at is not None,
        runtime_exhausted_at=exhausted_at,
        inlet_temps_normal=temps_ok,
        probes_reachable=reachable,
        probes_unreachable=unreachable,
        probes_failing_since=_failing_since(probes) if unreachable else None,
        uplink_up=uplink_up,
        uplink_since=uplink_since,
        buffered_readings_cover_gap=cover,
        overdue_since=overdue_since,
    )


def heartbeat_fresh(site: Site, ctx: Ctx) -> bool:
    return site.last_heartbeat_at is not None and not heartbeat_overdue(
        site.last_heartbeat_at, ctx.now, ctx.thresholds
    )


def check_site(
    session: Session, ctx: Ctx, site: Site, view: WatchView | None = None, *, replace: bool = True
) -> str | None:
    """Re-assess one site; returns a description of the transition, if any.

    Not while the control plane's restart grace covers the site (silent since before the control plane
    came back): an outage of the control plane never marks a site down, raises an alarm or moves work.
    """
    fresh = heartbeat_fresh(site, ctx)
    if fresh and site.liveness == Liveness.UP:
        return None
    if site.last_heartbeat_at is None and site.liveness == Liveness.UNKNOWN:
        return None
    view = view if view is not None else watch.current(session)
    if not fresh and watch.in_restart_grace(view, site.last_heartbeat_at, ctx.now, ctx.settings):
        return None
    evidence = Evidence() if fresh else gather_evidence(session, ctx, site)
    verdict = assess(
        Liveness(site.liveness),
        heartbeat_fresh=fresh,
        evidence=evidence,
        now=ctx.now,
        hold_down_s=ctx.settings.down_hold_s,
    )
    recorded = evidence.as_dict() if not fresh else {}
    if verdict.hold_down_until is not None:
        recorded["hold_down_until"] = verdict.hold_down_until.isoformat()
    before = site.liveness
    if transition(session, ctx, site, verdict.liveness, verdict.reason, recorded, replace=replace):
        return f"{site.id}: {before} -> {verdict.liveness.value} ({verdict.reason})"
    return None


def check_all(session: Session, ctx: Ctx) -> list[str]:
    out = []
    view = watch.current(session)
    sites = session.scalars(select(Site).where(Site.liveness != Liveness.UNKNOWN.value).order_by(Site.id))
    for site in sites:
        msg = check_site(session, ctx, site, view, replace=False)
        if msg:
            out.append(msg)
    if out:  # one placer run for all of this pass's transitions, not one per site
        placements.recompute(session, ctx)
    return out


def heartbeat(
    session: Session, ctx: Ctx, site_id: str, *, seq: int | None, agent_version: str | None
) -> Site:
    site = session.get(Site, site_id, with_for_update=True)
    if site is None:
        raise not_found(f"site {site_id!r}")
    site.last_heartbeat_at = ctx.now
    if seq is not None:
        site.last_heartbeat_seq = seq
    if agent_version:
        site.agent_version = agent_version[:64]
    if site.liveness != Liveness.UP:
        transition(session, ctx, site, Liveness.UP, "heartbeat received")
    return site


def record_probe(
    session: Session,
    ctx: Ctx,
    *,
    observer: str,
    target: str,
    reachable: bool,
    path: str,
    observed_at: datetime,
    kind: str = "peer",
) -> tuple[ProbeReport, Site]:
    site = session.get(Site, target, with_for_update=True)
    if site is None:
        raise not_found(f"site {target!r}")
    report = ProbeReport(
        observer=observer[:160],
        kind=kind,
        target_site_id=target,
        reachable=reachable,
        path=path[:256],
        observed_at=observed_at,
        received_at=ctx.now,
    )
    session.add(report)
    session.flush()
    if site.liveness in (Liveness.DOWN, Liveness.LINK_DOWN, Liveness.SUSPECT) or (
        site.liveness == Liveness.UP and not heartbeat_fresh(site, ctx)
    ):
        check_site(session, ctx, site)
    return report, site
