"""Workloads (operator writes) and their placements."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from sqlalchemy import select

from microdc.control import audit, dataclasses_known, placements
from microdc.control.api.deps import Operator, ServicesDep, Viewer, make_ctx
from microdc.control.models import Site, Workload
from microdc.control.problems import conflict, not_found, problem_responses
from microdc.control.schemas import PlacementChange, RecomputeOut, WorkloadIn, WorkloadOut, WorkloadPatch
from microdc.protocol.workload import WorkloadRunSpec, spec_hash

router = APIRouter(prefix="/api/v1", tags=["workloads"])


def set_spec(w: Workload, spec: WorkloadRunSpec | None) -> bool:
    """Store a run spec and its hash; True if it changed."""
    h = spec_hash(spec) if spec is not None else None
    if h == w.spec_hash:
        return False
    w.spec = spec.model_dump(mode="json") if spec is not None else None
    w.spec_hash = h
    return True
WorkloadIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=128)]


@router.get(
    "/workloads",
    response_model=list[WorkloadOut],
    summary="List workloads and where they run",
    responses=problem_responses(401, 403),
)
def list_workloads(principal: Viewer, services: ServicesDep) -> list[WorkloadOut]:
    with services.db.read_session() as s:
        return [WorkloadOut.model_validate(w) for w in s.scalars(select(Workload).order_by(Workload.id))]


@router.post(
    "/workloads",
    response_model=WorkloadOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a workload (placed immediately)",
    responses=problem_responses(401, 403, 409, 422),
)
def create_workload(
    body: WorkloadIn, request: Request, principal: Operator, services: ServicesDep
) -> WorkloadOut:
    ctx = make_ctx(request, principal)
    dataclasses_known.check(body.data_class, services.settings.data_classes)
    with services.db.session() as s:
        if s.get(Workload, body.id) is not None:
            raise conflict(f"workload {body.id!r} already exists")
        fields = body.model_dump(exclude={"spec"})
        w = Workload(**fields, created_at=ctx.now, updated_at=ctx.now, placement_state="pending")
        set_spec(w, body.spec)
        s.add(w)
        s.flush()
        audit.append(
            s,
            actor=ctx.actor,
            action="workload.create",
            target=f"workload:{w.id}",
            client_ip=ctx.client_ip,
            details=body.model_dump(mode="json"),
            now=ctx.now,
        )
        placements.recompute(s, ctx)
        return WorkloadOut.model_validate(w)


@router.get(
    "/workloads/{workload_id}",
    response_model=WorkloadOut,
    summary="Get a workload",
    responses=problem_responses(401, 403, 404),
)
def get_workload(workload_id: WorkloadIdPath, principal: Viewer, services: ServicesDep) -> WorkloadOut:
    with services.db.read_session() as s:
        w = s.get(Workload, workload_id)
        if w is None:
            raise not_found(f"workload {workload_id!r}")
        return WorkloadOut.model_validate(w)


@router.patch(
    "/workloads/{workload_id}",
    response_model=WorkloadOut,
    summary="Update a workload (re-placed if its rules changed)",
    responses=problem_responses(401, 403, 404, 422),
)
def patch_workload(
    workload_id: WorkloadIdPath,
    body: WorkloadPatch,
    request: Request,
    principal: Operator,
    services: ServicesDep,
) -> WorkloadOut:
    ctx = make_ctx(request, principal)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True, mode="json").items() if v is not None}
    if "data_class" in changes:
        dataclasses_known.check(changes["data_class"], services.settings.data_classes)
    with services.db.session() as s:
        w = s.get(Workload, workload_id, with_for_update=True)
        if w is None:
            raise not_found(f"workload {workload_id!r}")
        for k, v in changes.items():
            if k != "spec":
                setattr(w, k, v)
        if body.spec is not None and set_spec(w, body.spec) and w.site_id:
            site = s.get(Site, w.site_id, with_for_update=True)
            if site is not None:
                site.desired_version += 1  # the site replaces the running copy
        w.updated_at = ctx.now
        audit.append(
            s,
            actor=ctx.actor,
            action="workload.update",
            target=f"workload:{w.id}",
            client_ip=ctx.client_ip,
            details=changes,
            now=ctx.now,
        )
        s.flush()
        placements.recompute(s, ctx)
        return WorkloadOut.model_validate(w)


@router.delete(
    "/workloads/{workload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a workload",
    responses=problem_responses(401, 403, 404),
)
def delete_workload(
    workload_id: WorkloadIdPath, request: Request, principal: Operator, services: ServicesDep
) -> None:
    ctx = make_ctx(request, principal)
    with services.db.session() as s:
        w = s.get(Workload, workload_id, with_for_update=True)
        if w is None:
            raise not_found(f"workload {workload_id!r}")
        site_id = w.site_id
        s.delete(w)
        audit.append(
            s,
            actor=ctx.actor,
            action="workload.delete",
            target=f"workload:{workload_id}",
            client_ip=ctx.client_ip,
            details={"site_id": site_id},
            now=ctx.now,
        )
        if site_id:
            site = s.get(Site, site_id, with_for_update=True)
            if site is not None:
                site.desired_version += 1


@router.post(
    "/placements/recompute",
    response_model=RecomputeOut,
    summary="Run the placer now over the live fleet",
    responses=problem_responses(401, 403),
)
def recompute(request: Request, principal: Operator, services: ServicesDep) -> RecomputeOut:
    with services.db.session() as s:
        changes = placements.recompute(s, make_ctx(request, principal))
    return RecomputeOut(changes=[PlacementChange(**c) for c in changes])
