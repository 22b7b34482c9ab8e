"""The online placer's batch API, and builders that turn a scenario and a plan into its tables.

    placer = Placer.for_scenario(scenario)               # default plugins and weights
    fleet = fleet_from_plan(scenario, plan)               # built sites + cloud regions
    table, pieces = workloads_from_plan(scenario, plan, fleet)
    result = placer.place(table, fleet)                   # Placement: target, outcome, code, reasons

``place`` is pure: it reads the tables and returns a Placement; the caller applies it (the simulator
moves its routing, the control plane writes desired state). To re-place what a fault displaced, pass the
affected workloads with ``current`` set (-1 when their target is gone) and the fleet's state after the
fault: workloads whose current target still passes every filter stay; the rest move, or are reported
DEGRADED (kept in place over capacity, or served beyond their SLO) or UNSERVED with the exact reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from microdc.model import Scenario
from microdc.placement.online.framework import (
    RESOURCES,
    FleetState,
    Framework,
    Placement,
    PlacerConfig,
    PlacerContext,
    PlacerError,
    Registry,
    WorkloadTable,
)
from microdc.placement.online.plugins import default_registry
from microdc.placement.plan import Plan
from microdc.placement.problem import response_quantile_ms, size_demand
from microdc.policy import PolicyBook

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CLOUD_PREFIX = "cloud:"


class Placer:
    """A configured online placer. Thread-compatible (no state between calls)."""

    def __init__(
        self, policy: PolicyBook, config: PlacerConfig | None = None, registry: Registry | None = None
    ) -> None:
        self.policy = policy
        self.framework = Framework(registry or default_registry(), PlacerContext(policy), config)

    @classmethod
    def for_scenario(
        cls, scenario: Scenario, config: PlacerConfig | None = None, registry: Registry | None = None
    ) -> Placer:
        return cls(PolicyBook(scenario.tree, scenario.policies.data_classes), config, registry)

    @property
    def config(self) -> PlacerConfig:
        return self.framework.config

    def place(self, workloads: WorkloadTable, fleet: FleetState) -> Placement:
        """Place a batch; see the module docstring and framework.Framework for the cycle."""
        return self.framework.place(workloads, fleet)


def place(
    workloads: WorkloadTable, fleet: FleetState, policy: PolicyBook, config: PlacerConfig | None = None
) -> Placement:
    """One-shot convenience: ``Placer(policy, config).place(workloads, fleet)``."""
    return Placer(policy, config).place(workloads, fleet)


# ------------------------------------------------------------------------------------------ builders


@dataclass(frozen=True)
class DemandSizes:
    """Per demand source (D,): what one whole source reserves and its latency budget, as the planner
    sizes it (peak hour of its profile at the service's target utilization)."""

    mean_rps: FloatArray
    peak_rps: FloatArray
    cores_peak: FloatArray
    memory_gb: FloatArray
    service_s: FloatArray
    target_utilization: FloatArray
    slo_p95_ms: FloatArray
    slo_p99_ms: FloatArray
    service_p95_ms: FloatArray
    service_p99_ms: FloatArray


def demand_sizes(s: Scenario) -> DemandSizes:
    """The planner's sizing and SLO latency model (placement.problem), so placer and planner agree."""
    d = size_demand(s)
    svc = {v.id: v for v in s.services}
    util = np.array([svc[x.service].target_utilization for x in s.demand], dtype=np.float64)
    pool = float(min(v.cores for v in s.catalog.servers))

    def quantile_ms(q: float) -> FloatArray:
        if d.mean_rps.size == 0:
            return np.zeros(0)
        return response_quantile_ms(d.service_s, d.cores_peak, util, q, pool)

    return DemandSizes(
        mean_rps=d.mean_rps,
        peak_rps=d.peak_rps,
        cores_peak=d.cores_peak,
        memory_gb=d.memory_gb,
        service_s=d.service_s,
        target_utilization=util,
        slo_p95_ms=d.slo_p95_ms,
        slo_p99_ms=d.slo_p99_ms,
        service_p95_ms=quantile_ms(0.95),
        service_p99_ms=quantile_ms(0.99),
    )


def target_id(kind: str, target: str) -> str:
    """The fleet id of a plan assignment's target: the site id, or ``cloud:<region id>``."""
    return f"{CLOUD_PREFIX}{target}" if kind == "cloud" else target


def fleet_from_plan(s: Scenario, plan: Plan, *, carbon_g_per_kwh: npt.ArrayLike | None = None) -> FleetState:
    """Targets: the plan's built sites (in plan order), then every cloud region of the scenario.

    Raises PlacerError naming any built site the scenario does not know."""
    sites = {x.id: x for x in s.sites}
    unknown = [b.site for b in plan.sites if b.site not in sites]
    if unknown:
        raise PlacerError(f"plan builds sites the scenario does not have: {', '.join(unknown)}")
    built = [sites[b.site] for b in plan.sites]
    regions = list(s.cloud_regions)
    n = len(built) + len(regions)
    tree = s.tree
    cap = np.array(
        [[b.cores, b.memory_gb] for b in plan.sites] + [[np.inf] * len(RESOURCES)] * len(regions),
        dtype=np.float64,
    ).reshape(n, len(RESOURCES))
    carbon = (
        np.full(n, np.nan) if carbon_g_per_kwh is None else np.asarray(carbon_g_per_kwh, dtype=np.float64)
    )
    return FleetState(
        ids=tuple([x.id for x in built] + [CLOUD_PREFIX + r.id for r in regions]),
        is_cloud=np.array([False] * len(built) + [True] * len(regions)),
        lat=np.array([x.lat for x in built] + [r.lat for r in regions], dtype=np.float64),
        lon=np.array([x.lon for x in built] + [r.lon for r in regions], dtype=np.float64),
        jurisdiction=tree.indices([x.jurisdiction for x in built] + [r.jurisdiction for r in regions]),
        tier=np.array([x.security_tier for x in built] + [r.security_tier for r in regions], dtype=np.int64),
        trusted=np.ones(n, dtype=bool),
        alive=np.ones(n, dtype=bool),
        accepting=np.ones(n, dtype=bool),
        capacity=cap,
        used=np.zeros_like(cap),
        carbon_g_per_kwh=carbon,
        pue=np.array([b.annual_pue for b in plan.sites] + [r.pue for r in regions], dtype=np.float64),
        access_ms=s.network.access_ms,
        edge_extra_ms=s.network.edge_extra_ms,
        metro_radius_km=s.network.metro_radius_km,
    )


@dataclass(frozen=True)
class Pieces:
    """The plan's primary assignments as workload rows: piece k serves ``fraction[k]`` of demand
    source ``demand[k]`` on fleet target ``home[k]`` (its planned target); ``backup[k]`` is the plan's
    backup target for that source (-1 if none)."""

    demand: IntArray
    fraction: FloatArray
    home: IntArray
    backup: IntArray


def workloads_from_plan(
    s: Scenario, plan: Plan, fleet: FleetState, sizes: DemandSizes | None = None
) -> tuple[WorkloadTable, Pieces]:
    """One workload per primary assignment of the plan, sized by its fraction; ``current`` = planned target.

    Raises PlacerError naming unknown demand sources or targets."""
    sizes = sizes or demand_sizes(s)
    d_index = {d.id: i for i, d in enumerate(s.demand)}
    t_index = {t: i for i, t in enumerate(fleet.ids)}
    problems: list[str] = []
    backup: dict[int, int] = {}
    for a in plan.assignments:
        if a.role == "backup" and a.demand in d_index and target_id(a.kind, a.target) in t_index:
            backup.setdefault(d_index[a.demand], t_index[target_id(a.kind, a.target)])
    dem: list[int] = []
    frac: list[float] = []
    home: list[int] = []
    for i, a in enumerate(plan.assignments):
        if a.role != "primary":
            continue
        if a.demand not in d_index:
            problems.append(f"assignments.{i}.demand: unknown demand source {a.demand!r}")
            continue
        tid = target_id(a.kind, a.target)
        if tid not in t_index:
            what = "cloud region" if a.kind == "cloud" else "built site"
            problems.append(f"assignments.{i}.target: {a.target!r} is not a {what} of this plan and scenario")
            continue
        dem.append(d_index[a.demand])
        frac.append(a.fraction)
        home.append(t_index[tid])
    if problems:
        raise PlacerError("; ".join(problems))
    d = np.array(dem, dtype=np.int64)
    f = np.array(frac, dtype=np.float64)
    h = np.array(home, dtype=np.int64)
    b = np.array([backup.get(int(x), -1) for x in d], dtype=np.int64)
    table = workloads_for_demand(s, d, f, sizes=sizes, current=h, preferred=b)
    return table, Pieces(demand=d, fraction=f, home=h, backup=b)


def workloads_for_demand(
    s: Scenario,
    demand: IntArray,
    fraction: npt.ArrayLike | None = None,
    *,
    sizes: DemandSizes | None = None,
    current: npt.ArrayLike | None = None,
    preferred: npt.ArrayLike | None = None,
    ids: Sequence[str] | None = None,
) -> WorkloadTable:
    """Workloads for (a fraction of) demand sources, by index into ``s.demand``."""
    sizes = sizes or demand_sizes(s)
    d = np.asarray(demand, dtype=np.int64)
    f = np.ones(d.size) if fraction is None else np.asarray(fraction, dtype=np.float64)
    src = s.demand
    if ids is None:
        seen: dict[int, int] = {}
        names: list[str] = []
        for x in d.tolist():
            k = seen.get(x, 0)
            seen[x] = k + 1
            names.append(src[x].id if k == 0 else f"{src[x].id}#{k}")
        ids = names
    return WorkloadTable.build(
        ids=list(ids),
        data_class=[src[x].data_class for x in d.tolist()],
        origin=s.tree.indices(src[x].jurisdiction for x in d.tolist()),
        service=[src[x].service for x in d.tolist()],
        lat=np.array([src[x].lat for x in d.tolist()]),
        lon=np.array([src[x].lon for x in d.tolist()]),
        cores=sizes.cores_peak[d] * f,
        memory_gb=sizes.memory_gb[d] * f,
        slo_p95_ms=sizes.slo_p95_ms[d],
        slo_p99_ms=sizes.slo_p99_ms[d],
        service_p95_ms=sizes.service_p95_ms[d],
        service_p99_ms=sizes.service_p99_ms[d],
        current=current,
        preferred=preferred,
    )
