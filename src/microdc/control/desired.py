"""Desired state: which workload runs where. The `Placer` protocol and a rule-based default.

The real online placer (`microdc.placement.online`) implements `Placer`; until it lands,
`RulePlacer` keeps the service useful and honours the same hard rules:

* sovereignty — a workload may only run at a site whose jurisdiction (or one of its ancestors, e.g.
  ``DE`` inside ``EU``) is in the workload's allowed set (default: its origin jurisdiction);
* volume sovereignty — and only at a site inside the jurisdiction of every data volume it writes
  (stored data stays where its tag says, whatever the workload's own allowed set);
* security — the site's tier must reach the workload's minimum; an untrusted site counts as tier 0;
* capacity — cores of the site's servers;
* state — new work only goes to ``up`` sites; work on a ``link_down`` site is held where it is.

If no legal target exists, the workload is left unassigned (``degraded``) — never moved illegally.
Pure module: no database or web imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

PlacementState = Literal["assigned", "held", "degraded"]


@dataclass(frozen=True)
class FleetSite:
    id: str
    liveness: str  # unknown | up | link_down | down
    trusted: bool
    jurisdiction: str
    security_tier: int
    capacity_cores: float
    jurisdiction_ancestors: tuple[str, ...] = ()

    @property
    def state(self) -> str:
        return "untrusted" if not self.trusted else self.liveness

    def jurisdictions(self) -> tuple[str, ...]:
        return (self.jurisdiction, *self.jurisdiction_ancestors)


@dataclass(frozen=True)
class WorkloadSpec:
    id: str
    data_class: str
    origin_jurisdiction: str
    cores: float
    min_security_tier: int = 1
    allowed_jurisdictions: tuple[str, ...] = ()
    current_site: str | None = None
    volume_jurisdictions: tuple[str, ...] = ()  # each volume's data must stay inside its jurisdiction

    def allowed(self) -> frozenset[str]:
        return frozenset(self.allowed_jurisdictions or (self.origin_jurisdiction,))


@dataclass(frozen=True)
class Assignment:
    workload_id: str
    site_id: str | None
    state: PlacementState
    reason: str


@dataclass(frozen=True)
class PlacementResult:
    assignments: list[Assignment] = field(default_factory=list)

    def by_workload(self) -> dict[str, Assignment]:
        return {a.workload_id: a for a in self.assignments}


class Placer(Protocol):
    """Computes desired placements from the live fleet. Must never violate sovereignty."""

    def place(self, fleet: Sequence[FleetSite], workloads: Sequence[WorkloadSpec]) -> PlacementResult: ...


def effective_tier(site: FleetSite, untrusted_tier: int = 0) -> int:
    return site.security_tier if site.trusted else untrusted_tier


def sovereign(site: FleetSite, w: WorkloadSpec) -> bool:
    allowed = w.allowed()
    inside = site.jurisdictions()
    return any(j in allowed for j in inside) and all(v in inside for v in w.volume_jurisdictions)


def legal(site: FleetSite, w: WorkloadSpec, untrusted_tier: int = 0) -> bool:
    return sovereign(site, w) and effective_tier(site, untrusted_tier) >= w.min_security_tier


class RulePlacer:
    """Sticky first-fit: keep legal placements, move the rest to the legal `up` site with most room."""

    def __init__(self, untrusted_tier: int = 0) -> None:
        self.untrusted_tier = untrusted_tier

    def place(self, fleet: Sequence[FleetSite], workloads: Sequence[WorkloadSpec]) -> PlacementResult:
        sites = {s.id: s for s in fleet}
        free = {s.id: s.capacity_cores for s in fleet}
        out: dict[str, Assignment] = {}
        todo: list[tuple[WorkloadSpec, str]] = []
        for w in sorted(workloads, key=lambda w: (-w.cores, w.id)):
            cur = sites.get(w.current_site) if w.current_site else None
            if cur is None:
                todo.append((w, "new" if not w.current_site else f"site {w.current_site} no longer exists"))
                continue
            if not legal(cur, w, self.untrusted_tier):
                why = "untrusted" if not cur.trusted else "no longer allowed"
                todo.append((w, f"drained from {cur.id} ({why}: tier/sovereignty rule)"))
                continue
            if cur.liveness == "link_down" and cur.trusted:
                free[cur.id] -= w.cores
                out[w.id] = Assignment(w.id, cur.id, "held", f"{cur.id} is link_down: kept, assumed running")
                continue
            if cur.liveness == "up" and free[cur.id] >= w.cores:
                free[cur.id] -= w.cores
                out[w.id] = Assignment(w.id, cur.id, "assigned", "unchanged")
                continue
            todo.append((w, f"moved from {cur.id} ({cur.state})"))
        for w, why in todo:
            candidates = [
                s
                for s in fleet
                if s.liveness == "up" and legal(s, w, self.untrusted_tier) and free[s.id] >= w.cores
            ]
            if not candidates:
                n_legal = sum(1 for s in fleet if legal(s, w, self.untrusted_tier))
                vols = sorted(set(w.volume_jurisdictions))
                out[w.id] = Assignment(
                    w.id,
                    None,
                    "degraded",
                    f"no legal target ({why}): {n_legal} site(s) satisfy jurisdiction "
                    f"{sorted(w.allowed())}"
                    + (f", volumes in {vols}" if vols else "")
                    + f" and tier >= {w.min_security_tier}, none up with "
                    f"{w.cores:g} free cores",
                )
                continue
            best = min(candidates, key=lambda s: (s.jurisdiction != w.origin_jurisdiction, -free[s.id], s.id))
            free[best.id] -= w.cores
            out[w.id] = Assignment(w.id, best.id, "assigned", why)
        return PlacementResult([out[w.id] for w in workloads])
