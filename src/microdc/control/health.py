"""Site liveness: heartbeats, corroborating evidence, transitions (see site_state.py for the machine)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from microdc.control import alarms, audit, placements
from microdc.control.context import Ctx
from microdc.control.models import ProbeReport, Sensor, Site, SiteStateEvent, TelemetryBatch
from microdc.control.problems import not_found
from microdc.control.site_state import Evidence, Liveness, assess, display_state
from microdc.protocol.alarm_rules import Reading, heartbeat_overdue, inlet_temperatures_normal
from microdc.protocol.vocab import ReadingType, UpsState


def transition(session: Session, ctx: Ctx, site: Site, new: Liveness, reason: str) -> bool:
    if site.liveness == new.value:
        return False
    before = site.state
    site.liveness = new.value
    site.liveness_since = ctx.now
    after = display_state(new.value, site.trusted)
    session.add(
        SiteStateEvent(site_id=site.id, from_state=before, to_state=after, reason=reason[:512], at=ctx.now)
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
    elif new in (Liveness.DOWN, Liveness.LINK_DOWN):
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


def gather_evidence(session: Session, ctx: Ctx, site: Site) -> Evidence:
    latest = latest_readings(session, site.id)
    ups = [r for r, _ in latest if r.reading_type == ReadingType.UPS_STATE]
    on_battery: bool | None = None
    if ups:
        on_battery = any(round(r.value) == UpsState.ON_BATTERY for r in ups)
    exhausted = False
    for r, ts in latest:
        if r.reading_type == ReadingType.RUNTIME:
            remaining_s = r.value * 60.0 - (ctx.now - ts).total_seconds() if on_battery else r.value * 60.0
            exhausted = exhausted or remaining_s <= 0
    temps_ok = inlet_temperatures_normal([r for r, _ in latest], ctx.thresholds)
    since = site.last_heartbeat_at or site.liveness_since
    oldest = ctx.now - timedelta(seconds=ctx.settings.probe_max_age_s)
    probes = session.scalars(
        select(ProbeReport)
        .where(
            ProbeReport.target_site_id == site.id,
            ProbeReport.observed_at > since,
            ProbeReport.observed_at >= oldest,
        )
        .order_by(ProbeReport.observed_at)
    ).all()
    latest_by_observer: dict[str, bool] = {}
    for p in probes:
        latest_by_observer[p.observer] = p.reachable
    reachable = sum(1 for v in latest_by_observer.values() if v)
    unreachable = sum(1 for v in latest_by_observer.values() if not v)
    cover = False
    if site.last_heartbeat_at is not None:
        gap_start = site.last_heartbeat_at + timedelta(seconds=ctx.settings.heartbeat_timeout_s)
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
        runtime_exhausted=exhausted,
        inlet_temps_normal=temps_ok,
        probes_reachable=reachable,
        probes_unreachable=unreachable,
        buffered_readings_cover_gap=cover,
    )


def heartbeat_fresh(site: Site, ctx: Ctx) -> bool:
    return site.last_heartbeat_at is not None and not heartbeat_overdue(
        site.last_heartbeat_at, ctx.now, ctx.thresholds
    )


def check_site(session: Session, ctx: Ctx, site: Site) -> str | None:
    """Re-assess one site; returns a description of the transition, if any."""
    fresh = heartbeat_fresh(site, ctx)
    if fresh and site.liveness == Liveness.UP:
        return None
    if site.last_heartbeat_at is None and site.liveness == Liveness.UNKNOWN:
        return None
    evidence = Evidence() if fresh else gather_evidence(session, ctx, site)
    new, reason = assess(Liveness(site.liveness), heartbeat_fresh=fresh, evidence=evidence)
    before = site.liveness
    if transition(session, ctx, site, new, reason):
        return f"{site.id}: {before} -> {new.value} ({reason})"
    return None


def check_all(session: Session, ctx: Ctx) -> list[str]:
    out = []
    sites = session.scalars(select(Site).where(Site.liveness != Liveness.UNKNOWN.value).order_by(Site.id))
    for site in sites:
        msg = check_site(session, ctx, site)
        if msg:
            out.append(msg)
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
) -> tuple[ProbeReport, Site]:
    site = session.get(Site, target, with_for_update=True)
    if site is None:
        raise not_found(f"site {target!r}")
    report = ProbeReport(
        observer=observer[:160],
        target_site_id=target,
        reachable=reachable,
        path=path[:256],
        observed_at=observed_at,
        received_at=ctx.now,
    )
    session.add(report)
    session.flush()
    if site.liveness in (Liveness.DOWN, Liveness.LINK_DOWN) or (
        site.liveness == Liveness.UP and not heartbeat_fresh(site, ctx)
    ):
        check_site(session, ctx, site)
    return report, site
