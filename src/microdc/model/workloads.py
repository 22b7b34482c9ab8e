"""Declared workloads: one format for a workloads.yaml and a scenario's `workloads:` section.

The item is `protocol.workload.WorkloadIn`, the body of ``POST /api/v1/workloads``, so what the loader
accepts is exactly what the API accepts. Parsing is pure (data in, models or problems out); the
references a workload makes — its data class, its jurisdictions, its volumes' data class and
jurisdiction — are checked against a scenario by `workload_problems`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from microdc.model.errors import Problem, ScenarioError
from microdc.model.yaml_source import Loc, SourceMap, YamlSyntaxError, load_yaml_with_lines
from microdc.protocol.workload import WorkloadIn


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
    for i, raw in enumerate(data["workloads"]):
        try:
            out.append(WorkloadIn.model_validate(raw))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ("workloads", i, *err["loc"])
                where, line = smap.lookup(loc, file)
                problems.append(Problem(where, line, ".".join(str(p) for p in loc), str(err["msg"])))
    for loc, message in duplicate_ids(out):
        where, line = smap.lookup(loc, file)
        problems.append(Problem(where, line, ".".join(str(p) for p in loc), message))
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


def duplicate_ids(workloads: list[WorkloadIn]) -> Iterator[tuple[Loc, str]]:
    seen: dict[str, int] = {}
    for i, w in enumerate(workloads):
        if w.id in seen:
            yield ("workloads", i, "id"), f"{w.id!r} repeats workloads.{seen[w.id]}"
        else:
            seen[w.id] = i


def workload_problems(
    workloads: list[WorkloadIn], jurisdictions: Iterable[str], data_classes: Iterable[str]
) -> Iterator[tuple[Loc, str]]:
    """Every reference a declared workload makes that the scenario does not define."""
    known_j, known_c = sorted(jurisdictions), sorted(data_classes)
    yield from duplicate_ids(workloads)

    def jurisdiction(loc: Loc, code: str) -> Iterator[tuple[Loc, str]]:
        if code not in known_j:
            yield loc, f"unknown jurisdiction {code!r}; known: {', '.join(known_j)}"

    def data_class(loc: Loc, name: str) -> Iterator[tuple[Loc, str]]:
        if name not in known_c:
            yield (
                loc,
                f"data class {name!r} has no policy under policies.data_classes; known: {', '.join(known_c)}",
            )

    for i, w in enumerate(workloads):
        yield from data_class(("workloads", i, "data_class"), w.data_class)
        yield from jurisdiction(("workloads", i, "origin_jurisdiction"), w.origin_jurisdiction)
        for k, code in enumerate(w.allowed_jurisdictions):
            yield from jurisdiction(("workloads", i, "allowed_jurisdictions", k), code)
        for v, vol in enumerate(w.spec.volumes if w.spec else []):
            loc: Loc = ("workloads", i, "spec", "volumes", v)
            yield from data_class((*loc, "data_class"), vol.data_class)
            yield from jurisdiction((*loc, "jurisdiction"), vol.jurisdiction)
