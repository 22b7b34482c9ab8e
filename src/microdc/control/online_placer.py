"""The control plane's desired state from the real online placer (`microdc.placement.online`).

The control plane stores, per workload, the jurisdictions it may run in and its minimum tier; the
online placer asks the one policy module (`microdc.policy.PolicyBook`). This adapter turns the live
fleet into that module's terms — a jurisdiction tree from the sites' ancestor chains, and one policy
per distinct (allowed set, tier) — so sovereignty and tier are decided by the same code as in the
planner and the twin, and an untrusted site counts as tier 1 there too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from microdc.control.desired import Assignment, FleetSite, PlacementResult, WorkloadSpec
from microdc.model.jurisdiction import Jurisdiction, JurisdictionTree
from microdc.model.policies import DataClassPolicy
from microdc.placement.online import FleetState, Outcome, Placer, PlacerConfig, WorkloadTable
from microdc.policy import PolicyBook


def _tree(fleet: Sequence[FleetSite], workloads: Sequence[WorkloadSpec]) -> JurisdictionTree:
    """Rebuild the jurisdiction tree from nearest-first ancestor chains; unknown codes become roots.

    Writes refuse chains that do not form a tree (control/jurisdictions.py), but a bad state stored
    before that rule must not fail every placement: a link that would close a cycle is left out. That
    only narrows what a site counts as inside (a workload allowed in the dropped ancestor does not go
    there), so sovereignty is never widened by it."""
    parent: dict[str, str | None] = {}

    def closes_cycle(child: str, up: str) -> bool:
        code: str | None = up
        while code is not None:
            if code == child:
                return True
            code = parent.get(code)
        return False

    for s in fleet:
        chain = s.jurisdictions()
        for child, up in zip(chain, (*chain[1:], None), strict=True):
            if parent.get(child) is None:
                parent[child] = None if up is not None and closes_cycle(child, up) else up
    for w in workloads:
        for code in (w.origin_jurisdiction, *w.allowed(), *w.volume_jurisdictions):
            parent.setdefault(code, None)
    nodes = {code: Jurisdiction(code=code) for code in parent}
    for code, up in parent.items():
        if up is not None:
            nodes[up].children.append(nodes[code])
    return JurisdictionTree([nodes[c] for c, up in parent.items() if up is None])


def _store_in(tree: JurisdictionTree, volumes: Sequence[str]) -> list[str] | None:
    """Where stored data may sit: inside every volume's jurisdiction — the narrowest, if they nest;
    none at all (an empty list) if two are disjoint. None: no volumes, the process rule applies."""
    if not volumes:
        return None
    for v in volumes:
        if all(tree.is_inside(v, other) for other in volumes):
            return [v]
    return []


class OnlinePlacer:
    """Implements the control plane's `Placer` protocol with the filter-and-score online placer."""

    def __init__(self, config: PlacerConfig | None = None) -> None:
        # No device coordinates or SLOs here: balance decides among legal, healthy sites with room.
        self.config = config or PlacerConfig(scores={"balance": 1.0})

    def place(self, fleet: Sequence[FleetSite], workloads: Sequence[WorkloadSpec]) -> PlacementResult:
        if not workloads:
            return PlacementResult([])
        tree = _tree(fleet, workloads)
        policies: dict[str, DataClassPolicy] = {}
        classes: list[str] = []
        for w in workloads:
            store = _store_in(tree, w.volume_jurisdictions)
            key = f"{w.data_class}|{','.join(sorted(w.allowed()))}|{w.min_security_tier}|{store}"
            policies.setdefault(
                key,
                DataClassPolicy(
                    process_in=sorted(w.allowed()), store_in=store, min_security_tier=w.min_security_tier
                ),
            )
            classes.append(key)
        index = {s.id: k for k, s in enumerate(fleet)}
        n_w, n_s = len(workloads), len(fleet)
        table = WorkloadTable.build(
            ids=[w.id for w in workloads],
            data_class=classes,
            origin=tree.indices(w.origin_jurisdiction for w in workloads),
            service=["control"] * n_w,
            lat=np.zeros(n_w),
            lon=np.zeros(n_w),
            cores=[w.cores for w in workloads],
            memory_gb=np.zeros(n_w),
            current=[index.get(w.current_site, -1) if w.current_site else -1 for w in workloads],
        )
        liveness = [s.liveness for s in fleet]
        state = FleetState(
            ids=tuple(s.id for s in fleet),
            is_cloud=np.zeros(n_s, bool),
            lat=np.zeros(n_s),
            lon=np.zeros(n_s),
            jurisdiction=tree.indices(s.jurisdiction for s in fleet),
            tier=np.array([s.security_tier for s in fleet], dtype=np.int64),
            trusted=np.array([s.trusted for s in fleet]),
            alive=np.array([x in ("up", "link_down") for x in liveness]),
            accepting=np.array([x == "up" for x in liveness]),
            capacity=np.column_stack([[s.capacity_cores for s in fleet], np.full(n_s, np.inf)]),
            used=np.zeros((n_s, 2)),
            carbon_g_per_kwh=np.full(n_s, np.nan),
            pue=np.full(n_s, np.nan),
        )
        result = Placer(PolicyBook(tree, policies), self.config).place(table, state)
        out: list[Assignment] = []
        for k, w in enumerate(workloads):
            t = int(result.target[k])
            site = fleet[t].id if t >= 0 else None
            reason = result.reasons[k]
            if result.outcome[k] == Outcome.UNSERVED or site is None:
                out.append(Assignment(w.id, None, "degraded", reason))
            elif liveness[t] == "link_down" and site == w.current_site:
                out.append(Assignment(w.id, site, "held", f"{site} is link_down: kept, assumed running"))
            elif result.outcome[k] == Outcome.DEGRADED:
                out.append(Assignment(w.id, site, "degraded", reason))
            else:
                out.append(Assignment(w.id, site, "assigned", "unchanged" if not result.moved[k] else reason))
        return PlacementResult(out)
