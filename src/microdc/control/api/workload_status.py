"""What runs at a site: its agent reports each desired workload's real state; operators read it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import delete, select

from microdc.control import audit, inventory
from microdc.control.api.deps import OwnSite, ServicesDep, SiteIdPath, SiteOrViewer, make_ctx
from microdc.control.models import WorkloadRunStatus
from microdc.control.problems import problem_responses
from microdc.control.schemas import WorkloadRunStatusOut, WorkloadStatusReportIn, WorkloadStatusReportOut

router = APIRouter(prefix="/api/v1/sites/{site_id}/workload-status", tags=["desired state"])


@router.post(
    "",
    response_model=WorkloadStatusReportOut,
    summary="Agent: report the real state of every workload it was told to run (replaces the last report)",
    responses=problem_responses(401, 403, 404, 422),
)
def report(
    site_id: SiteIdPath,
    body: WorkloadStatusReportIn,
    request: Request,
    principal: OwnSite,
    services: ServicesDep,
) -> WorkloadStatusReportOut:
    ctx = make_ctx(request, principal)
    with services.db.session() as s:
        inventory.get_site(s, site_id, lock=True)  # 404 for a site that is gone; serialises reports
        before = {
            r.workload_id: (r.state, r.restarts, r.healthy)
            for r in s.scalars(select(WorkloadRunStatus).where(WorkloadRunStatus.site_id == site_id))
        }
        changes = state_changes(before, body)
        s.execute(delete(WorkloadRunStatus).where(WorkloadRunStatus.site_id == site_id))
        for w in body.workloads:
            s.add(
                WorkloadRunStatus(
                    site_id=site_id,
                    workload_id=w.workload_id,
                    state=w.state,
                    spec_hash=w.spec_hash,
                    restarts=w.restarts,
                    exit_code=w.exit_code,
                    healthy=w.healthy,
                    message=w.message,
                    since=w.since,
                    desired_version=body.desired_version,
                    observed_at=body.observed_at,
                    reported_at=ctx.now,
                )
            )
        if changes:  # audited (and so pushed to the dashboard) only when something changed, not every report
            audit.append(
                s,
                actor=ctx.actor,
                action="site.workload_status",
                target=f"site:{site_id}",
                client_ip=ctx.client_ip,
                details={"changes": changes[:100], "total": len(changes)},
                now=ctx.now,
            )
        return WorkloadStatusReportOut(site_id=site_id, stored=len(body.workloads), received_at=ctx.now)


def state_changes(
    before: dict[str, tuple[str, int, bool | None]], report: WorkloadStatusReportIn
) -> list[dict[str, object]]:
    """Workloads whose state, restart count or health differ from the last report (and ones gone)."""
    out: list[dict[str, object]] = []
    seen = set()
    for w in report.workloads:
        seen.add(w.workload_id)
        old = before.get(w.workload_id)
        if old != (w.state, w.restarts, w.healthy):
            out.append(
                {
                    "workload_id": w.workload_id,
                    "from": old[0] if old else None,
                    "to": w.state,
                    "restarts": w.restarts,
                    "exit_code": w.exit_code,
                    "healthy": w.healthy,
                }
            )
    out += [
        {"workload_id": wid, "from": old[0], "to": None} for wid, old in before.items() if wid not in seen
    ]
    return out


@router.get(
    "",
    response_model=list[WorkloadRunStatusOut],
    summary="What the site's agent last reported of each workload (state, health, restarts, exit code)",
    responses=problem_responses(401, 403, 404),
)
def list_status(
    site_id: SiteIdPath, principal: SiteOrViewer, services: ServicesDep
) -> list[WorkloadRunStatusOut]:
    with services.db.read_session() as s:
        inventory.get_site(s, site_id)
        rows = s.scalars(
            select(WorkloadRunStatus)
            .where(WorkloadRunStatus.site_id == site_id)
            .order_by(WorkloadRunStatus.workload_id)
        )
        return [WorkloadRunStatusOut.model_validate(r) for r in rows]
