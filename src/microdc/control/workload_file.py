"""workloads.yaml: the fleet's workloads, with what each runs, declared in one file and applied to the API.

The scenario is the planning model (a layer below the wire protocol, so it cannot hold a run spec); the
workloads file is the operations side: the same fields as ``POST /api/v1/workloads`` — placement rules
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
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from microdc.control.schemas import WorkloadIn
from microdc.model.errors import Problem, ScenarioError
from microdc.model.yaml_source import SourceMap, YamlSyntaxError, load_yaml_with_lines
from microdc.protocol.workload import spec_hash

PATCHABLE = ("name", "data_class", "allowed_jurisdictions", "min_security_tier", "cores")


def json_schema() -> dict[str, Any]:
    """JSON Schema of a workloads file (`microdc workloads schema`)."""
    item = WorkloadIn.model_json_schema()
    defs = item.pop("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "microdc workloads file",
        "type": "object",
        "properties": {"workloads": {"type": "array", "items": item}},
        "required": ["workloads"],
        "additionalProperties": False,
        "$defs": defs,
    }


def parse_workloads(data: Any, file: str, smap: SourceMap | None = None) -> list[WorkloadIn]:
    """Validate a parsed workloads file; raise ScenarioError listing every problem."""
    smap = smap or SourceMap()
    if not isinstance(data, dict) or not isinstance(data.get("workloads"), list):
        raise ScenarioError(
            [Problem(file, 1, "workloads", "expected a mapping with a list under `workloads:`")]
        )
    extra = sorted(set(data) - {"workloads"})
    problems = [Problem(*smap.lookup((k,), file), k, "unknown top-level key") for k in extra]
    out: list[WorkloadIn] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(data["workloads"]):
        try:
            w = WorkloadIn.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ("workloads", i, *err["loc"])
                where, line = smap.lookup(loc, file)
                problems.append(Problem(where, line, ".".join(str(p) for p in loc), str(err["msg"])))
            continue
        if w.id in seen:
            where, line = smap.lookup(("workloads", i, "id"), file)
            problems.append(
                Problem(where, line, f"workloads.{i}.id", f"{w.id!r} repeats workloads.{seen[w.id]}")
            )
            continue
        seen[w.id] = i
        out.append(w)
    if problems:
        raise ScenarioError(problems)
    return out


def load_workloads(path: Path) -> list[WorkloadIn]:
    if not path.is_file():
        raise ScenarioError([Problem(str(path), None, "", "workloads file not found")])
    smap = SourceMap()
    try:
        data = load_yaml_with_lines(path, smap)
    except YamlSyntaxError as exc:
        raise ScenarioError([Problem(exc.file, exc.line, "", exc.message)]) from None
    return parse_workloads(data, str(path), smap)


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
