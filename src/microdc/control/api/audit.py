"""Audit log: read and verify (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from microdc.control import audit, jobs
from microdc.control.api.deps import Admin, ServicesDep
from microdc.control.models import AuditEntry
from microdc.control.problems import problem_responses
from microdc.control.schemas import (
    AuditCheckpointOut,
    AuditEntryOut,
    AuditVerifyOut,
    CheckpointPublishedOut,
)

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get(
    "",
    response_model=list[AuditEntryOut],
    summary="Audit entries in chain order (page with after_seq)",
    responses=problem_responses(401, 403, 422),
)
def list_entries(
    principal: Admin,
    services: ServicesDep,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AuditEntryOut]:
    q = select(AuditEntry).where(AuditEntry.seq > after_seq).order_by(AuditEntry.seq).limit(limit)
    if action:
        q = q.where(AuditEntry.action == action)
    with services.db.read_session() as s:
        return [AuditEntryOut.model_validate(e) for e in s.scalars(q)]


@router.get(
    "/verify",
    response_model=AuditVerifyOut,
    summary="Recompute the hash chain and report the first bad entry",
    responses=problem_responses(401, 403),
)
def verify(principal: Admin, services: ServicesDep) -> AuditVerifyOut:
    with services.db.read_session() as s:
        r = audit.verify(s)
    return AuditVerifyOut(ok=r.ok, checked=r.checked, first_bad_seq=r.first_bad_seq, reason=r.reason)


@router.post(
    "/checkpoints",
    response_model=CheckpointPublishedOut,
    status_code=status.HTTP_201_CREATED,
    summary="Sign the chain's head now and write it to audit_checkpoint_dir (if set)",
    responses=problem_responses(401, 403),
)
async def publish_checkpoint(principal: Admin, services: ServicesDep) -> CheckpointPublishedOut:
    cp, path = await run_in_threadpool(jobs.publish_checkpoint, services)
    return CheckpointPublishedOut(
        checkpoint=AuditCheckpointOut(**cp.to_json()), path=str(path) if path else None
    )
