"""The plan file (`plan.json`): what to build where, who is served from where, what it costs, and
how sure we are (objective, bound, gap). Shared by the planner, the checker, the simulator and reports.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from microdc.model.errors import Problem, ScenarioError

M = TypeVar("M", bound=BaseModel)


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BuiltSite(_Base):
    site: str
    module: str
    server: str
    servers: int
    cores: float
    memory_gb: float
    storage_tb: float = 0.0  # the servers' storage, TB (absent in plans written before storage)
    it_kw: float
    annual_pue: float
    existing: bool = False
    fixed_cost: float


class Assignment(_Base):
    demand: str
    target: str
    kind: Literal["site", "cloud"]
    role: Literal["primary", "backup"] = "primary"
    fraction: float = Field(ge=0, le=1)
    rtt_ms: float
    p95_ms: float


class Unserved(_Base):
    demand: str
    fraction: float
    reasons: list[str]


class ServiceLatency(_Base):
    """Predicted (planning-time) latency, request-weighted over the demand of the service."""

    p50_ms: float | None  # None when none of the service's demand is served
    p95_ms: float | None
    worst_p95_ms: float | None
    slo_p95_ms: float | None
    slo_p99_ms: float | None


class ExpectedYear(_Base):
    """The plan's year when nothing fails, hour by hour through the twin's own functions
    (placement.expected): what the twin must match with no faults and no demand noise."""

    hours: int
    energy_kwh: dict[
        str, float
    ]  # it, cooling, ups_loss, distribution_loss, misc, facility, sites_*, cloud_*,
    # transport (network energy of carrying the traffic and the synced data; not part of facility)
    pue: dict[str, float | None]  # sites_annualized, cloud, overall
    carbon_kg: dict[str, float]  # sites, cloud
    costs: dict[str, float]  # site, module_capex, server_capex and placement.ledger.LOAD_LINES, total
    site_pue: dict[str, float]  # per built site, energy-weighted over the year


class Plan(_Base):
    scenario: str
    alternative: str = "microdc"
    method: str
    status: str
    objective: float
    lower_bound: float | None  # None: no bound proven (baselines)
    gap: (
        float | None
    )  # (objective − lower_bound) / (objective − unservable_penalty): on what the plan controls
    seconds: float
    #: Where the time went, seconds per phase (build, aggregate, warm_start, solve, split_limit,
    #: plan_file); empty in older plans and in baselines.
    timing: dict[str, float] = Field(default_factory=dict)
    currency: str
    n_plus: int
    #: The split limit the plan was made under (policies.max_serving_sites); None in older plans.
    max_serving_sites: int | None = None
    allow_unserved: bool = False
    #: Penalty (part of costs.unserved_penalty) of demand no site or region may legally serve within
    #: its SLO: a constant no plan can change, reported apart and left out of the relative gap.
    unservable_penalty: float = 0.0
    costs: dict[str, float]
    sites: list[BuiltSite]
    assignments: list[Assignment]
    unserved: list[Unserved] = Field(default_factory=list)
    latency: dict[str, ServiceLatency] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    expected: ExpectedYear | None = None

    def primary(self) -> list[Assignment]:
        return [a for a in self.assignments if a.role == "primary"]

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")


def read_plan(path: Path) -> Plan:
    """Read a plan file; a malformed one raises ScenarioError naming the file and field."""
    return read_model(path, lambda _data: Plan)


def read_model(path: Path, choose: Callable[[Any], type[M]]) -> M:
    """Read a JSON file into the pydantic model ``choose`` picks from its parsed content; an unreadable,
    malformed or invalid file raises ScenarioError naming the file and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([Problem(str(path), None, "", f"cannot read plan: {exc.strerror}")]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError([Problem(str(path), exc.lineno, "", f"not valid JSON: {exc.msg}")]) from None
    try:
        return choose(data).model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(
            [
                Problem(str(path), None, ".".join(str(p) for p in e["loc"]), str(e["msg"]))
                for e in exc.errors()
            ]
        ) from None
