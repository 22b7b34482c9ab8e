"""workloads.yaml: the fleet's workloads, with what each runs, declared in one file and applied to the API.

Parsing lives in `model.workloads` (a scenario's `workloads:` section uses the same format); this module
is the operations side: the same fields as ``POST /api/v1/workloads`` — placement rules
and the `WorkloadRunSpec` — validated with the API's own models, every problem named by file, line and
field. `plan_changes` compares it with what the control plane holds (pure), so a dry run shows exactly
what `microdc workloads apply` would create, update or (with ``--prune``) delete::

    workloads:
      - id: web
        data_class: public
        origin_jurisdiction: DE
        cores: 1
        spec: {image: "localhost/busybox-httpd:1.35", command: [/bin/httpd, -f, -p, "18081"], ports: [18081]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from microdc.model.workloads import json_schema, load_workloads, parse_workloads
from microdc.protocol.workload import WorkloadIn, spec_hash

__all__ = ["PATCHABLE", "Change", "json_schema", "load_workloads", "parse_workloads", "plan_changes"]

PATCHABLE = ("name", "data_class", "allowed_jurisdictions", "min_security_tier", "cores")


@dataclass(frozen=True)
class Change:
    action: Literal["create", "update", "delete", "conflict"]
    workload_id: str
    body: dict[str, Any] = field(default_factory=dict)
    why: str = ""


def plan_changes(existing: list[dict[str, Any]], wanted: list[WorkloadIn], *, prune: bool) -> list[Change]:
    """What applying `wanted` to the API's current workloads (`GET /api/v1/workloads`) does."""
    have = {str(w["id"]): w for w in existing}
    out: list[Change] = []
    for w in wanted:
        cur = have.get(w.id)
        if cur is None:
            out.append(Change("create", w.id, w.model_dump(mode="json", exclude_none=True)))
            continue
        if cur["origin_jurisdiction"] != w.origin_jurisdiction:
            out.append(
                Change(
                    "conflict",
                    w.id,
                    why=f"origin_jurisdiction {cur['origin_jurisdiction']} → "
                    f"{w.origin_jurisdiction} cannot change: delete and re-create",
                )
            )
            continue
        patch = {k: getattr(w, k) for k in PATCHABLE if getattr(w, k) != cur.get(k)}
        if w.spec is not None and spec_hash(w.spec) != cur.get("spec_hash"):
            patch["spec"] = w.spec.model_dump(mode="json")
        if w.spec is None and cur.get("spec") is not None:
            out.append(Change("conflict", w.id, why="the file has no spec but the workload has one: set it"))
            continue
        if patch:
            out.append(Change("update", w.id, patch, why=", ".join(sorted(patch))))
    if prune:
        wanted_ids = {w.id for w in wanted}
        out += [Change("delete", wid) for wid in sorted(set(have) - wanted_ids)]
    return out
