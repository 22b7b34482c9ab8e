"""A scenario's `workloads:` into the control plane's database, with the rules of `microdc workloads apply`.

`microdc sites import` calls this after the sites: what changes is computed by `workload_file.plan_changes`
(the same function `workloads apply` uses, without ``--prune``: an import never deletes a workload), so
a second import of the same scenario writes nothing. A workload whose origin jurisdiction changed is a
conflict: the import stops before writing anything and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from microdc.control import audit
from microdc.control.api.workloads import set_spec
from microdc.control.context import Ctx
from microdc.control.models import Site, Workload
from microdc.control.schemas import WorkloadOut
from microdc.control.workload_file import Change, plan_changes
from microdc.protocol.workload import WorkloadIn, WorkloadRunSpec


class WorkloadConflict(ValueError):
    """The scenario asks for a change the API cannot make in place."""


def plan_workloads(session: Session, wanted: Sequence[WorkloadIn]) -> list[Change]:
    """What importing `wanted` would create or update (reads only; never deletes)."""
    rows = session.scalars(select(Workload).order_by(Workload.id))
    existing = [WorkloadOut.model_validate(w).model_dump(mode="json") for w in rows]
    return plan_changes(existing, list(wanted), prune=False)


def conflicts(changes: Sequence[Change]) -> list[str]:
    return [f"workload {c.workload_id}: {c.why}" for c in changes if c.action == "conflict"]


def apply_workloads(session: Session, ctx: Ctx, changes: Sequence[Change]) -> None:
    """Carry out planned creates and updates, audited like the API's (the caller re-runs placement)."""
    problems = conflicts(changes)
    known = ctx.settings.data_classes  # the API's rule unknown-data-class, when the plane has classes set
    problems += [
        f"workload {c.workload_id}: data_class {c.body['data_class']!r} is not one of the control plane's "
        f"configured classes ({', '.join(sorted(known))})"
        for c in changes
        if known and "data_class" in c.body and c.body["data_class"] not in known
    ]
    if problems:
        raise WorkloadConflict("; ".join(problems))
    for ch in changes:
        if ch.action == "create":
            body = WorkloadIn.model_validate(ch.body)
            w = Workload(
                **body.model_dump(exclude={"spec"}),
                created_at=ctx.now,
                updated_at=ctx.now,
                placement_state="pending",
            )
            set_spec(w, body.spec)
            session.add(w)
            action = "workload.create"
        elif ch.action == "update":
            found = session.get(Workload, ch.workload_id, with_for_update=True)
            assert found is not None  # planned from the same session
            w = found
            for k, v in ch.body.items():
                if k != "spec":
                    setattr(w, k, v)
            if (
                "spec" in ch.body
                and set_spec(w, WorkloadRunSpec.model_validate(ch.body["spec"]))
                and w.site_id
            ):
                site = session.get(Site, w.site_id, with_for_update=True)
                if site is not None:
                    site.desired_version += 1  # the site replaces the running copy
            w.updated_at = ctx.now
            action = "workload.update"
        else:  # plan_changes without prune yields no deletes; conflicts were refused above
            continue
        session.flush()
        audit.append(
            session,
            actor=ctx.actor,
            action=action,
            target=f"workload:{ch.workload_id}",
            client_ip=ctx.client_ip,
            details=ch.body,
            now=ctx.now,
        )
