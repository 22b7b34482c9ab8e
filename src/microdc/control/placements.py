"""Placement data layer: build the fleet view, run the placer, store results, bump desired versions.

Whatever placer is plugged in, its output is checked here against sovereignty and tier rules before
it is stored; an illegal proposal is stored as ``degraded`` instead (the work is never moved illegally).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from microdc.control import audit
from microdc.control.context import Ctx
from microdc.control.desired import Assignment, FleetSite, WorkloadSpec, legal
from microdc.control.models import Module, Server, Site, Workload

_NOT_PLACEABLE_STATUS = {"planned", "decommissioned"}
# A suspect site (silent, not corroborated dead) is placed like a link_down one: its work is held where
# it is and it gets no new work. Only `down` (corroborated, after the hold-down) re-places its work.
_PLACER_LIVENESS = {"suspect": "link_down"}
_RUNNING = ("assigned", "held")  # the placement states a site's desired state lists


def site_capacities(session: Session) -> dict[str, float]:
    rows = session.execute(
        select(Module.site_id, func.sum(Server.cores * Server.quantity))
        .join(Server, Server.module_id == Module.id)
        .group_by(Module.site_id)
    ).all()
    return {sid: float(c or 0) for sid, c in rows}


def fleet_view(session: Session) -> list[FleetSite]:
    caps = site_capacities(session)
    out = []
    for s in session.scalars(select(Site).order_by(Site.id)):
        liveness = (
            "down" if s.status in _NOT_PLACEABLE_STATUS else _PLACER_LIVENESS.get(s.liveness, s.liveness)
        )
        out.append(
            FleetSite(
                id=s.id,
                liveness=liveness,
                trusted=s.trusted,
                jurisdiction=s.jurisdiction,
                jurisdiction_ancestors=tuple(s.jurisdiction_ancestors or ()),
                security_tier=s.security_tier,
                capacity_cores=caps.get(s.id, 0.0),
            )
        )
    return out


def volume_jurisdictions(spec: dict[str, Any] | None) -> tuple[str, ...]:
    """The jurisdictions the workload's stored data is bound to (one per distinct volume tag)."""
    return tuple(sorted({str(v["jurisdiction"]) for v in (spec or {}).get("volumes", [])}))


def workload_spec(w: Workload) -> WorkloadSpec:
    return WorkloadSpec(
        id=w.id,
        data_class=w.data_class,
        origin_jurisdiction=w.origin_jurisdiction,
        allowed_jurisdictions=tuple(w.allowed_jurisdictions or ()),
        min_security_tier=w.min_security_tier,
        cores=w.cores,
        current_site=w.site_id,
        volume_jurisdictions=volume_jurisdictions(w.spec),
    )


def recompute(session: Session, ctx: Ctx) -> list[dict[str, Any]]:
    """Run the placer over the live fleet; store changes; return them (empty if nothing moved)."""
    fleet = fleet_view(session)
    by_site = {f.id: f for f in fleet}
    workloads = list(session.scalars(select(Workload).order_by(Workload.id).with_for_update()))
    if not workloads:
        return []
    specs = [workload_spec(w) for w in workloads]
    proposed = ctx.placer.place(fleet, specs).by_workload()
    changes: list[dict[str, Any]] = []
    touched: set[str] = set()
    for w, spec in zip(workloads, specs, strict=True):
        a = proposed.get(w.id) or Assignment(w.id, None, "degraded", "placer returned no assignment")
        if a.site_id is not None:
            target = by_site.get(a.site_id)
            if target is None or not legal(target, spec, ctx.settings.untrusted_security_tier):
                a = Assignment(w.id, None, "degraded", f"placer proposed illegal target {a.site_id}; refused")
        if (a.site_id, a.state) == (w.site_id, w.placement_state):
            if a.reason != w.placement_reason and a.state == "degraded":
                w.placement_reason = a.reason[:512]
            continue
        changes.append(
            {
                "workload_id": w.id,
                "from_site": w.site_id,
                "to_site": a.site_id,
                "state": a.state,
                "reason": a.reason,
            }
        )
        # a site's desired state (what desired_for_site lists) changes only if the workload moves or
        # starts/stops running there; assigned <-> held on the same site changes nothing the agent runs
        if w.site_id != a.site_id or (w.placement_state in _RUNNING) != (a.state in _RUNNING):
            for sid in (w.site_id, a.site_id):
                if sid is not None:
                    touched.add(sid)
        w.site_id = a.site_id
        w.placement_state = a.state
        w.placement_reason = a.reason[:512]
        w.placed_at = ctx.now
    if touched:
        for s in session.scalars(select(Site).where(Site.id.in_(touched)).with_for_update()):
            s.desired_version += 1
    if changes:
        audit.append(
            session,
            actor=ctx.actor,
            action="placement.recompute",
            target="workloads",
            client_ip=ctx.client_ip,
            details={"changes": changes[:200], "total": len(changes)},
            now=ctx.now,
        )
    session.flush()
    return changes


def desired_for_site(session: Session, site_id: str) -> list[Workload]:
    return list(
        session.scalars(
            select(Workload)
            .where(Workload.site_id == site_id, Workload.placement_state.in_(_RUNNING))
            .order_by(Workload.id)
        )
    )


def etag(site_id: str, version: int) -> str:
    return f'"{site_id}-v{version}"'
