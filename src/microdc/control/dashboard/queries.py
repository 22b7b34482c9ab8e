"""Read models of the dashboard: fleet rows, site detail and time series, alarms, placement (with an
explanation of each workload's filters and ranking) and the audit log. Plain dicts, ready for JSON.

Everything here only reads (callers pass a read session) and reuses the control plane's own data
layer (`inventory`, `telemetry`, `placements`, `desired`) so that the dashboard shows exactly what the
API serves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from microdc.control import inventory, placements, telemetry
from microdc.control.desired import FleetSite, effective_tier, sovereign
from microdc.control.models import (
    Alarm,
    AuditEntry,
    AuditHead,
    MaintenanceWindow,
    Module,
    Sensor,
    Server,
    Site,
    SiteStateEvent,
    TelemetryBatch,
    Workload,
    WorkloadRunStatus,
)
from microdc.control.problems import ProblemError, not_found
from microdc.control.schemas import AlarmOut
from microdc.control.site_state import display_state
from microdc.protocol.alarm_rules import Thresholds
from microdc.protocol.vocab import FACILITY_POWER_CONTEXTS, IT_POWER_CONTEXTS, to_watts

STATES = ("up", "suspect", "link_down", "down", "untrusted", "unknown")
OPEN_ALARM_STATES = ("raised", "acknowledged")
RUNNING_STATES = ("assigned", "held")
UPS_LABELS = {0: "on mains", 1: "on battery", 2: "bypass", 3: "fault"}
SAFETY_LABELS: dict[str, dict[int, str]] = {
    "Door": {0: "closed", 1: "open"},
    "Smoke": {0: "clear", 1: "smoke detected"},
    "Leak": {0: "dry", 1: "leak detected"},
    "Intrusion": {0: "normal", 1: "hardware intrusion", 2: "tampering detected"},
}
SERIES_TYPES = ("Power", "Temperature", "Humidity", "Runtime", "UPSState")
LATE_AFTER_S = 120.0  # a batch whose newest reading is older than this on arrival was buffered


def iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt is not None else None


def _r(x: float | None, digits: int) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, digits)


# --- fleet -----------------------------------------------------------------------------------


def fleet_rows(session: Session, site_ids: Collection[str] | None = None) -> list[dict[str, Any]]:
    """One row per site (all sites, or those named) with its live figures. 5 queries in all."""
    t = Site.__table__.c
    q = select(
        t.id,
        t.name,
        t.lat,
        t.lon,
        t.jurisdiction,
        t.security_tier,
        t.status,
        t.liveness,
        t.trusted,
        t.liveness_since,
        t.last_heartbeat_at,
        t.liveness_reason,
        t.liveness_evidence,
    ).order_by(t.id)
    ids: list[str] | None = None
    if site_ids is not None:
        ids = sorted(set(site_ids))
        if not ids:
            return []
        q = q.where(t.id.in_(ids))
    sites = session.execute(q).all()
    if not sites:
        return []

    def scoped(stmt: Any, col: Any) -> Any:
        return stmt.where(col.in_(ids)) if ids is not None else stmt

    facility: dict[str, float] = {}
    it: dict[str, float] = {}
    inlet: dict[str, float] = {}
    cpu: dict[str, list[float]] = {}
    last: dict[str, datetime] = {}
    sc = Sensor.__table__.c
    for site_id, rtype, ctx, unit, value, ts in session.execute(
        scoped(
            select(sc.site_id, sc.reading_type, sc.physical_context, sc.unit, sc.latest_value, sc.latest_ts),
            sc.site_id,
        )
    ):
        if ts is not None and (site_id not in last or ts > last[site_id]):
            last[site_id] = ts
        if rtype == "Power":
            if ctx in FACILITY_POWER_CONTEXTS:
                facility[site_id] = facility.get(site_id, 0.0) + to_watts(value, unit)
            elif ctx in IT_POWER_CONTEXTS:
                it[site_id] = it.get(site_id, 0.0) + to_watts(value, unit)
        elif rtype == "Temperature" and ctx == "Intake":
            inlet[site_id] = max(inlet.get(site_id, -math.inf), value)
        elif rtype == "Percent" and ctx == "CPU":
            cpu.setdefault(site_id, []).append(value)

    alarms: dict[str, dict[str, int]] = {}
    for site_id, severity, state, n in session.execute(
        scoped(
            select(Alarm.site_id, Alarm.severity, Alarm.state, func.count())
            .where(Alarm.state.in_(OPEN_ALARM_STATES))
            .group_by(Alarm.site_id, Alarm.severity, Alarm.state),
            Alarm.site_id,
        )
    ):
        a = alarms.setdefault(site_id, {"critical": 0, "warning": 0, "unacked": 0})
        a[severity] = a.get(severity, 0) + int(n)
        if state == "raised":
            a["unacked"] += int(n)

    caps: dict[str, float] = {
        sid: float(c or 0)
        for sid, c in session.execute(
            scoped(
                select(Module.site_id, func.sum(Server.cores * Server.quantity))
                .join(Server, Server.module_id == Module.id)
                .group_by(Module.site_id),
                Module.site_id,
            )
        )
    }
    used: dict[str, float] = {
        sid: float(c or 0)
        for sid, c in session.execute(
            scoped(
                select(Workload.site_id, func.sum(Workload.cores))
                .where(Workload.placement_state.in_(RUNNING_STATES), Workload.site_id.is_not(None))
                .group_by(Workload.site_id),
                Workload.site_id,
            )
        )
    }

    rows = []
    for sid, name, lat, lon, jur, tier, status, liveness, trusted, since, hb, why, evidence in sites:
        it_w, fac_w = it.get(sid), facility.get(sid)
        cap = caps.get(sid, 0.0)
        if sid in cpu:
            util, util_src = sum(cpu[sid]) / len(cpu[sid]) / 100.0, "cpu"
        elif cap > 0:
            util, util_src = used.get(sid, 0.0) / cap, "cores"
        else:
            util, util_src = None, ""
        a = alarms.get(sid, {"critical": 0, "warning": 0, "unacked": 0})
        t_inlet = inlet.get(sid)
        rows.append(
            {
                "id": sid,
                "name": name,
                "lat": lat,
                "lon": lon,
                "jurisdiction": jur,
                "tier": tier,
                "status": status,
                "state": display_state(liveness, trusted),
                "since": iso(since),
                "state_reason": why or "",
                "state_evidence": evidence_lines(evidence or {}),
                "it_kw": _r(it_w / 1000.0, 3) if it_w is not None else None,
                "facility_kw": _r(fac_w / 1000.0, 3) if fac_w is not None else None,
                "pue": _r(fac_w / it_w, 3) if fac_w is not None and it_w else None,
                "inlet_c": _r(t_inlet, 2) if t_inlet is not None else None,
                "util": _r(util, 4),
                "util_src": util_src,
                "alarms_critical": a["critical"],
                "alarms_warning": a["warning"],
                "alarms_open": a["critical"] + a["warning"],
                "alarms_unacked": a["unacked"],
                "last_reading": iso(last.get(sid)),
                "heartbeat": iso(hb),
                "cores_used": used.get(sid, 0.0),
                "cores_cap": cap,
            }
        )
    return rows


def evidence_lines(evidence: dict[str, Any]) -> list[str]:
    """The liveness evidence a site was judged on, as short lines for people (empty when up)."""
    if not evidence:
        return []
    out = []
    if evidence.get("overdue_since"):
        out.append(f"heartbeats overdue since {evidence['overdue_since']}")
    reach, fail = evidence.get("probes_reachable", 0), evidence.get("probes_unreachable", 0)
    if reach or fail:
        since = evidence.get("probes_failing_since")
        tail = f" (failing since {since})" if since and fail else ""
        out.append(f"peer probes: {reach} observer(s) reached it, {fail} failed{tail}")
    else:
        out.append("peer probes: none since the last heartbeat")
    uplink = evidence.get("uplink_up")
    out.append(
        "uplink: no report"
        if uplink is None
        else f"uplink reported {'up' if uplink else 'down'} since {evidence.get('uplink_since')}"
    )
    ups = evidence.get("ups_on_battery")
    out.append("UPS: no telemetry" if ups is None else f"UPS {'on battery' if ups else 'on mains'}")
    if evidence.get("runtime_exhausted"):
        out.append(f"UPS runtime ran out at {evidence.get('runtime_exhausted_at')}")
    temps = evidence.get("inlet_temps_normal")
    if temps is not None:
        out.append(f"inlet temperatures {'normal' if temps else 'outside the allowable band'}")
    if evidence.get("buffered_readings_cover_gap"):
        out.append("buffered readings cover the gap")
    if evidence.get("hold_down_until"):
        out.append(f"hold-down until {evidence['hold_down_until']}")
    return out


def summary(session: Session) -> dict[str, Any]:
    """Fleet-wide counts for the header: sites by state, open alarms by severity, unacknowledged."""
    states = dict.fromkeys(STATES, 0)
    for liveness, trusted, n in session.execute(
        select(Site.liveness, Site.trusted, func.count()).group_by(Site.liveness, Site.trusted)
    ):
        key = display_state(liveness, trusted)
        states[key] = states.get(key, 0) + int(n)
    alarms = {"critical": 0, "warning": 0, "unacked": 0}
    for severity, state, n in session.execute(
        select(Alarm.severity, Alarm.state, func.count())
        .where(Alarm.state.in_(OPEN_ALARM_STATES))
        .group_by(Alarm.severity, Alarm.state)
    ):
        alarms[severity] = alarms.get(severity, 0) + int(n)
        if state == "raised":
            alarms["unacked"] += int(n)
    return {"sites": sum(states.values()), "states": states, "alarms": alarms}


# --- one site --------------------------------------------------------------------------------


def _sensor(s: Sensor, now: datetime) -> dict[str, Any]:
    return {
        "sensor": s.sensor_id,
        "type": s.reading_type,
        "context": s.physical_context,
        "unit": s.unit,
        "value": s.latest_value,
        "ts": iso(s.latest_ts),
        "age_s": round((now - s.latest_ts).total_seconds(), 1),
    }


def bands(th: Thresholds) -> dict[str, Any]:
    """The ASHRAE bands the alarm rules use (A1 class by default)."""
    return {
        "inlet_recommended_c": list(th.inlet_recommended_c),
        "inlet_allowable_c": list(th.inlet_allowable_c),
        "humidity_recommended_pct": [th.humidity_allowable_pct[0], th.humidity_recommended_max_pct],
        "humidity_allowable_pct": list(th.humidity_allowable_pct),
        "ups_runtime_warning_min": th.ups_runtime_warning_min,
        "ups_runtime_critical_min": th.ups_runtime_critical_min,
    }


def site_detail(
    session: Session, site_id: str, *, now: datetime, thresholds: Thresholds, heartbeat_timeout_s: float
) -> dict[str, Any]:
    site = inventory.get_site(session, site_id)
    out: dict[str, Any] = {"site": inventory.site_out(session, [site])[0].model_dump(mode="json")}
    out["row"] = fleet_rows(session, [site_id])[0]
    groups: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("temperature", "humidity", "power", "ups", "runtime", "safety", "other")
    }
    for s in telemetry.sensors_of(session, site_id):
        e = _sensor(s, now)
        rt = s.reading_type
        if rt == "Temperature":
            groups["temperature"].append(e)
        elif rt == "Humidity":
            groups["humidity"].append(e)
        elif rt == "Power":
            scope = (
                "facility"
                if s.physical_context in FACILITY_POWER_CONTEXTS
                else "it"
                if s.physical_context in IT_POWER_CONTEXTS
                else "other"
            )
            groups["power"].append({**e, "scope": scope})
        elif rt == "UPSState":
            v = round(s.latest_value)
            groups["ups"].append({**e, "label": UPS_LABELS.get(v, f"state {v}"), "ok": v == 0})
        elif rt == "Runtime":
            groups["runtime"].append(e)
        elif rt in SAFETY_LABELS:
            v = round(s.latest_value)
            groups["safety"].append({**e, "label": SAFETY_LABELS[rt].get(v, f"state {v}"), "ok": v == 0})
        else:
            groups["other"].append(e)
    out["sensors"] = groups

    wls = list(session.scalars(select(Workload).where(Workload.site_id == site_id).order_by(Workload.id)))
    runs = {
        r.workload_id: r
        for r in session.scalars(select(WorkloadRunStatus).where(WorkloadRunStatus.site_id == site_id))
    }
    out["workloads"] = [{**_workload(w), "run": _run(runs.get(w.id), w)} for w in wls]
    out["data_classes"] = sorted({w.data_class for w in wls if w.placement_state in RUNNING_STATES})

    last = session.execute(
        select(TelemetryBatch.received_at, TelemetryBatch.last_ts, TelemetryBatch.seq)
        .where(TelemetryBatch.site_id == site_id)
        .order_by(TelemetryBatch.received_at.desc())
        .limit(1)
    ).first()
    recent = now - timedelta(minutes=10)
    late = [
        (r, lt)
        for r, lt in session.execute(
            select(TelemetryBatch.received_at, TelemetryBatch.last_ts).where(
                TelemetryBatch.site_id == site_id, TelemetryBatch.received_at >= recent
            )
        )
        if lt is not None and (r - lt).total_seconds() > LATE_AFTER_S
    ]
    hb = site.last_heartbeat_at
    out["uplink"] = {
        "state": site.state,
        "liveness": site.liveness,
        "since": iso(site.liveness_since),
        "reason": site.liveness_reason,
        "evidence": evidence_lines(site.liveness_evidence or {}),
        "last_heartbeat": iso(hb),
        "heartbeat_age_s": round((now - hb).total_seconds(), 1) if hb else None,
        "heartbeat_timeout_s": heartbeat_timeout_s,
        "agent_version": site.agent_version,
        "last_batch_received": iso(last[0]) if last else None,
        "last_batch_seq": last[2] if last else None,
        "newest_reading": out["row"]["last_reading"],
        "late_batches_10min": len(late),
        "oldest_late_reading": iso(min(lt for _, lt in late)) if late else None,
        "trusted": site.trusted,
        "trust_reason": site.trust_reason,
    }
    acked = site.desired_acked_version
    out["desired"] = {
        "version": site.desired_version,
        "acked_version": acked,
        "acked_at": iso(site.desired_acked_at),
        "status": site.desired_ack_status,
        "message": site.desired_ack_message,
        "backlog": max(0, site.desired_version - (acked or 0)),
    }
    out["events"] = [
        {
            "from": e.from_state,
            "to": e.to_state,
            "reason": e.reason,
            "evidence": evidence_lines(e.evidence or {}),
            "at": iso(e.at),
        }
        for e in session.scalars(
            select(SiteStateEvent)
            .where(SiteStateEvent.site_id == site_id)
            .order_by(SiteStateEvent.id.desc())
            .limit(20)
        )
    ]
    out["alarms"] = [
        alarm_json(a)
        for a in session.scalars(
            select(Alarm)
            .where(Alarm.site_id == site_id)
            .order_by(Alarm.state.in_(OPEN_ALARM_STATES).desc(), Alarm.id.desc())
            .limit(30)
        )
    ]
    out["maintenance"] = [
        {"starts_at": iso(w.starts_at), "ends_at": iso(w.ends_at), "reason": w.reason, "by": w.created_by}
        for w in session.scalars(
            select(MaintenanceWindow)
            .where(MaintenanceWindow.site_id == site_id, MaintenanceWindow.ends_at > now)
            .order_by(MaintenanceWindow.starts_at)
            .limit(5)
        )
    ]
    out["bands"] = bands(thresholds)
    out["now"] = iso(now)
    return out


def _bucket_series(
    points: Iterable[tuple[datetime, float | None]], size: int
) -> dict[int, tuple[float, int]]:
    acc: dict[int, tuple[float, int]] = {}
    for ts, v in points:
        if v is None:
            continue
        b = int(ts.timestamp()) // size * size
        s, n = acc.get(b, (0.0, 0))
        acc[b] = (s + v, n + 1)
    return acc


def site_series(
    session: Session, site_id: str, *, hours: float, now: datetime, raw_retention: timedelta
) -> dict[str, Any]:
    """Every power, temperature, humidity and UPS sensor of a site over the last `hours`, on one time
    grid of at most ~400 points (means per bucket), plus facility/IT totals and PUE per bucket."""
    inventory.get_site(session, site_id)
    end = now
    start = end - timedelta(hours=hours)
    span = (end - start).total_seconds()
    size = max(10, math.ceil(span / 400))
    sensors = [s for s in telemetry.sensors_of(session, site_id) if s.reading_type in SERIES_TYPES]
    out_sensors = []
    facility: dict[int, float] = {}
    it: dict[int, float] = {}
    resolution = "raw"
    for s in sensors:
        res, pts = telemetry.history(
            session, site_id, s.sensor_id, start, end, "auto", 100_000, raw_retention=raw_retention, now=now
        )
        resolution = res
        grid = max(size, 300 if res == "5m" else 3600 if res == "1h" else size)
        acc = _bucket_series(((p.ts, p.value if res == "raw" else p.mean) for p in pts), grid)
        keys = sorted(acc)
        ys = [acc[k][0] / acc[k][1] for k in keys]
        entry = {
            "sensor": s.sensor_id,
            "type": s.reading_type,
            "context": s.physical_context,
            "unit": s.unit,
            "x": [iso(datetime.fromtimestamp(k, UTC)) for k in keys],
            "y": [round(y, 4) for y in ys],
        }
        if s.reading_type == "Power":
            scale = 1000.0 if s.unit == "kW" else 1.0
            target = (
                facility
                if s.physical_context in FACILITY_POWER_CONTEXTS
                else it
                if s.physical_context in IT_POWER_CONTEXTS
                else None
            )
            if target is not None:
                for k, y in zip(keys, ys, strict=True):
                    target[k] = target.get(k, 0.0) + y * scale
        out_sensors.append(entry)
    keys = sorted(set(facility) | set(it))
    pue_keys = [k for k in keys if k in facility and it.get(k)]
    return {
        "site_id": site_id,
        "start": iso(start),
        "end": iso(end),
        "hours": hours,
        "resolution": resolution,
        "bucket_s": size,
        "sensors": out_sensors,
        "power": {
            "x": [iso(datetime.fromtimestamp(k, UTC)) for k in keys],
            "facility_kw": [_r(facility[k] / 1000.0, 3) if k in facility else None for k in keys],
            "it_kw": [_r(it[k] / 1000.0, 3) if k in it else None for k in keys],
        },
        "pue": {
            "x": [iso(datetime.fromtimestamp(k, UTC)) for k in pue_keys],
            "y": [_r(facility[k] / it[k], 4) for k in pue_keys],
        },
    }


# --- alarms ----------------------------------------------------------------------------------


def alarm_json(a: Alarm) -> dict[str, Any]:
    d: dict[str, Any] = AlarmOut.model_validate(a).model_dump(mode="json")
    return d


def list_alarms(
    session: Session,
    *,
    state: str | None = None,
    severity: str | None = None,
    site: str | None = None,
    kind: str | None = None,
    text: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    q = select(Alarm)
    if state == "open":
        q = q.where(Alarm.state.in_(OPEN_ALARM_STATES))
    elif state:
        q = q.where(Alarm.state == state)
    if severity:
        q = q.where(Alarm.severity == severity)
    if site:
        q = q.where(Alarm.site_id == site)
    if kind:
        q = q.where(Alarm.kind == kind)
    if text:
        like = f"%{_escape_like(text)}%"
        q = q.where(
            or_(
                Alarm.message.like(like, escape="\\"),
                Alarm.site_id.like(like, escape="\\"),
                Alarm.kind.like(like, escape="\\"),
                Alarm.sensor_id.like(like, escape="\\"),
            )
        )
    return [alarm_json(a) for a in session.scalars(q.order_by(Alarm.id.desc()).limit(limit))]


def alarm_kinds(session: Session) -> list[str]:
    return sorted(k for (k,) in session.execute(select(Alarm.kind).distinct()))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- placement -------------------------------------------------------------------------------


def _run(r: WorkloadRunStatus | None, w: Workload) -> dict[str, Any] | None:
    """What the site's agent last reported of this workload (None: nothing reported yet)."""
    if r is None:
        return None
    return {
        "state": r.state,
        "healthy": r.healthy,
        "restarts": r.restarts,
        "exit_code": r.exit_code,
        "message": r.message,
        "since": r.since,
        "reported_at": iso(r.reported_at),
        "current_spec": w.spec_hash is None or r.spec_hash == w.spec_hash,
    }


def _workload(w: Workload) -> dict[str, Any]:
    return {
        "id": w.id,
        "name": w.name,
        "data_class": w.data_class,
        "origin": w.origin_jurisdiction,
        "allowed": list(w.allowed_jurisdictions or []) or [w.origin_jurisdiction],
        "min_tier": w.min_security_tier,
        "cores": w.cores,
        "site_id": w.site_id,
        "state": w.placement_state,
        "reason": w.placement_reason,
        "placed_at": iso(w.placed_at),
    }


def change_kind(change: dict[str, Any]) -> str:
    """What a stored placement change was: re-placed (moved after a fault, drain or rule change),
    degraded (no legal site: left unassigned rather than moved illegally), held, placed, released."""
    state, src, dst = change.get("state"), change.get("from_site"), change.get("to_site")
    if state == "degraded":
        return "degraded"
    if state == "held":
        return "held"
    if src and dst and src != dst:
        return "re-placed"
    if dst and not src:
        return "placed"
    if src and not dst:
        return "released"
    return "updated"


def placement_overview(session: Session, *, history: int = 50) -> dict[str, Any]:
    wls = [_workload(w) for w in session.scalars(select(Workload).order_by(Workload.id))]
    counts: dict[str, int] = {}
    for w in wls:
        counts[w["state"]] = counts.get(w["state"], 0) + 1
    site_state = {
        sid: display_state(lv, tr)
        for sid, lv, tr in session.execute(select(Site.id, Site.liveness, Site.trusted))
    }
    for w in wls:
        w["site_state"] = site_state.get(w["site_id"]) if w["site_id"] else None
    return {"workloads": wls, "counts": counts, "history": placement_history(session, limit=history)}


def placement_history(session: Session, *, limit: int = 50) -> list[dict[str, Any]]:
    """The last `limit` placement runs that changed something, newest first, from the audit log (the
    control plane records each run's changes there; only the placement fields are exposed here)."""
    out = []
    for e in session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "placement.recompute")
        .order_by(AuditEntry.seq.desc())
        .limit(limit)
    ):
        try:
            d = json.loads(e.details)
        except ValueError:
            continue
        changes = [
            {
                "workload_id": str(c.get("workload_id")),
                "from_site": c.get("from_site"),
                "to_site": c.get("to_site"),
                "state": c.get("state"),
                "reason": str(c.get("reason", "")),
                "kind": change_kind(c),
            }
            for c in d.get("changes", [])
            if isinstance(c, dict)
        ]
        out.append(
            {
                "seq": e.seq,
                "ts": e.ts,
                "trigger": e.actor,
                "total": d.get("total", len(changes)),
                "changes": changes,
            }
        )
    return out


def explain(session: Session, workload_id: str, *, untrusted_tier: int, placer: str) -> dict[str, Any]:
    """Why a workload runs where it does: the hard rules the control plane enforces on any placer's
    proposal, in order (the first one that rejects a site names the reason), and the feasible sites
    ranked the way the configured placer scores them (the online placer: "balance", the largest free
    share of capacity after placing it; the rule placer: origin jurisdiction first, then most free
    cores). The control plane stores only the outcome and the placer's reason per workload, so this is
    recomputed from the live fleet now."""
    w = session.get(Workload, workload_id)
    if w is None:
        raise not_found(f"workload {workload_id!r}")
    spec = placements.workload_spec(w)
    fleet = placements.fleet_view(session)
    used: dict[str, float] = {}
    for sid, cores in session.execute(
        select(Workload.site_id, func.sum(Workload.cores))
        .where(
            Workload.placement_state.in_(RUNNING_STATES),
            Workload.site_id.is_not(None),
            Workload.id != workload_id,
        )
        .group_by(Workload.site_id)
    ):
        used[str(sid)] = float(cores or 0)
    allowed = sorted(spec.allowed())

    def reject(s: FleetSite) -> tuple[str, str] | None:
        if not sovereign(s, spec):
            return "jurisdiction", f"{'/'.join(s.jurisdictions())} is not in {allowed}"
        tier = effective_tier(s, untrusted_tier)
        if tier < spec.min_security_tier:
            why = f"untrusted: counts as tier {tier}" if not s.trusted else f"tier {tier}"
            return "security tier", f"{why} < {spec.min_security_tier}"
        holding = s.id == spec.current_site and s.liveness == "link_down" and s.trusted
        if s.liveness != "up" and not holding:
            return "state", f"site is {s.state}"
        free = s.capacity_cores - used.get(s.id, 0.0)
        if free < spec.cores and not holding:
            return "capacity", f"{free:g} free cores < {spec.cores:g}"
        return None

    filters: dict[str, dict[str, Any]] = {
        name: {"name": name, "excluded": 0, "examples": []}
        for name in ("jurisdiction", "security tier", "state", "capacity")
    }
    feasible: list[dict[str, Any]] = []
    for s in fleet:
        r = reject(s)
        if r is None:
            free = s.capacity_cores - used.get(s.id, 0.0)
            feasible.append(
                {
                    "site": s.id,
                    "jurisdiction": s.jurisdiction,
                    "origin_match": s.jurisdiction == spec.origin_jurisdiction,
                    "free_cores": free,
                    "free_after": free - spec.cores,
                    "score": (free - spec.cores) / s.capacity_cores if s.capacity_cores > 0 else 0.0,
                    "state": s.state,
                }
            )
            continue
        f = filters[r[0]]
        f["excluded"] += 1
        if len(f["examples"]) < 25:
            f["examples"].append({"site": s.id, "reason": r[1]})
    if placer == "RulePlacer":
        ranking = "origin jurisdiction first, then most free cores (the rule placer's order)"
        feasible.sort(key=lambda c: (not c["origin_match"], -float(c["free_cores"]), str(c["site"])))
    else:
        ranking = "by the balance score: largest free share of capacity after placing it"
        feasible.sort(key=lambda c: (-float(c["score"]), str(c["site"])))
    for rank, c in enumerate(feasible, 1):
        c["rank"] = rank
    return {
        "workload": _workload(w),
        "placer": placer,
        "sites": len(fleet),
        "filters": list(filters.values()),
        "feasible": feasible[:25],
        "feasible_total": len(feasible),
        "ranking": ranking,
    }


# --- audit -----------------------------------------------------------------------------------


def audit_search(
    session: Session,
    *,
    text: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    before_seq: int | None = None,
    limit: int = 200,
) -> dict[str, Any]:
    q = select(AuditEntry)
    if before_seq:
        q = q.where(AuditEntry.seq < before_seq)
    if action:
        q = (
            q.where(AuditEntry.action.like(f"{_escape_like(action[:-1])}%", escape="\\"))
            if action.endswith("*")
            else q.where(AuditEntry.action == action)
        )
    if actor:
        q = q.where(AuditEntry.actor.like(f"%{_escape_like(actor)}%", escape="\\"))
    if text:
        like = f"%{_escape_like(text)}%"
        q = q.where(
            or_(
                AuditEntry.actor.like(like, escape="\\"),
                AuditEntry.action.like(like, escape="\\"),
                AuditEntry.target.like(like, escape="\\"),
                AuditEntry.details.like(like, escape="\\"),
                AuditEntry.client_ip.like(like, escape="\\"),
            )
        )
    entries = [
        {
            "seq": e.seq,
            "ts": e.ts,
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "outcome": e.outcome,
            "client_ip": e.client_ip,
            "details": e.details,
            "hash": e.hash,
        }
        for e in session.scalars(q.order_by(AuditEntry.seq.desc()).limit(limit))
    ]
    head = session.get(AuditHead, 1)
    return {"entries": entries, "head_seq": head.last_seq if head else 0}


def audit_actions(session: Session) -> list[str]:
    return sorted(a for (a,) in session.execute(select(AuditEntry.action).distinct()))


def audit_head(session: Session) -> tuple[int, str]:
    head = session.get(AuditHead, 1)
    return (head.last_seq, head.last_hash) if head else (0, "")


def check_hours(hours: float) -> float:
    if not (0 < hours <= 24 * 90):
        raise ProblemError(422, "hours must be in (0, 2160]")
    return hours
