"""What a planner wants to know about a plan beyond its total: where demand is served from far away,
what unserved demand costs, and how two plans compare on the demand both serve legally.

A baseline that leaves personal data unserved, or serves it outside its SLO, looks cheap on its total;
comparing totals rewards breaking the rules. So plans are compared on the *common legal* demand: the
sources that both plans serve completely, every share at a target that is sovereign, of a high enough
security tier and within the SLO (the planner's own masks in `PlanningProblem`). A source's cost is its
assignment costs plus a share of the fixed cost of every site serving it, in proportion to the peak
cores it takes there (the share of the module it uses); the cloud has no fixed cost. Sites a plan
builds but sends no demand to serve nobody: their fixed cost is added in full to the plan's side of
every comparison (the "nearest" baseline builds at every site, and pays for it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from microdc.physics.geo import great_circle_km
from microdc.placement.plan import Plan
from microdc.placement.problem import PlanningProblem

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
#: A source counts as completely served when its primary fractions sum to at least 1 minus this.
SERVED_TOL = 1e-6


@dataclass(frozen=True)
class SourceLedger:
    """Per demand source of one plan: its cost (assignments + share of fixed cost) and whether it is
    served completely and legally (sovereign, tier, SLO) by that plan."""

    cost: FloatArray  # (C,)
    legal: BoolArray  # (C,)
    idle_fixed: float  # fixed cost of built sites that serve no demand


@dataclass(frozen=True)
class FarService:
    """Demand served from an MDC beyond the metro radius (over the Internet path, not metro fibre)."""

    sources: int  # demand sources with a share served from beyond the radius
    rps: float  # mean requests per second served from beyond the radius
    share: float  # of all served requests
    farthest_km: float
    farthest: str  # "demand → site"


@dataclass(frozen=True)
class Comparison:
    """A plan and a baseline on the demand both serve completely and legally."""

    baseline: str
    common_sources: int
    common_rps_share: float  # of all demand's mean requests
    plan_cost: float
    baseline_cost: float


def _facility_index(pp: PlanningProblem, plan: Plan) -> dict[str, int]:
    """Target name in the plan → facility of the planning problem (the built option at a site)."""
    s = pp.scenario
    option = {(s.sites[o.site].id, o.module, o.server, o.servers): f for f, o in enumerate(pp.options)}
    out = {r.id: pp.n_sites_options + k for k, r in enumerate(s.cloud_regions)}
    for b in plan.sites:
        f = option.get((b.site, b.module, b.server, b.servers))
        if f is None:
            raise ValueError(
                f"plan {plan.alternative!r}: site {b.site!r} builds an option the scenario has not"
            )
        out[b.site] = f
    return out


def source_ledger(pp: PlanningProblem, plan: Plan) -> SourceLedger:
    """Cost and legality of each demand source under `plan` (see the module docstring)."""
    s = pp.scenario
    n_c = len(s.demand)
    index = {d.id: i for i, d in enumerate(s.demand)}
    fac = _facility_index(pp, plan)
    rows = [(fac[a.target], index[a.demand], a.fraction) for a in plan.primary()]
    f = np.array([r[0] for r in rows], dtype=np.int64)
    c = np.array([r[1] for r in rows], dtype=np.int64)
    frac = np.array([r[2] for r in rows], dtype=np.float64)
    cost = np.asarray(np.bincount(c, weights=frac * pp.pair_raw_cost(f, c), minlength=n_c), dtype=np.float64)
    cores = frac * pp.facility.usage[c, 0]
    load = np.bincount(f, weights=cores, minlength=pp.n_facilities)
    fixed = pp.facility.fixed_cost[f] * np.divide(cores, load[f], out=np.zeros_like(cores), where=load[f] > 0)
    cost += np.bincount(c, weights=fixed, minlength=n_c)
    ok = pp.pair_allowed(f, c)
    broken = np.bincount(c, weights=(~ok).astype(float), minlength=n_c) > 0
    served = np.bincount(c, weights=frac, minlength=n_c) >= 1 - SERVED_TOL
    built = np.array(sorted({fac[b.site] for b in plan.sites}), dtype=np.int64)
    idle = float(pp.facility.fixed_cost[built[load[built] <= 0]].sum()) if built.size else 0.0
    return SourceLedger(cost=cost, legal=served & ~broken, idle_fixed=idle)


def compare(pp: PlanningProblem, plan: Plan, baselines: list[Plan]) -> list[Comparison]:
    """The plan against each baseline, each time on the demand both serve completely and legally."""
    mine = source_ledger(pp, plan)
    rps = pp.demand.mean_rps
    total = float(rps.sum()) or 1.0
    out = []
    for b in baselines:
        theirs = source_ledger(pp, b)
        both = mine.legal & theirs.legal
        out.append(
            Comparison(
                baseline=b.alternative,
                common_sources=int(both.sum()),
                common_rps_share=float(rps[both].sum()) / total,
                plan_cost=float(mine.cost[both].sum()) + mine.idle_fixed,
                baseline_cost=float(theirs.cost[both].sum()) + theirs.idle_fixed,
            )
        )
    return out


def far_service(pp: PlanningProblem, plan: Plan) -> FarService:
    """Demand the plan serves from MDCs beyond `network.metro_radius_km` of the demand."""
    s = pp.scenario
    index = {d.id: i for i, d in enumerate(s.demand)}
    site = {x.id: x for x in s.sites}
    at_site = [a for a in plan.primary() if a.kind == "site"]
    rps = pp.demand.mean_rps
    served = sum(a.fraction * rps[index[a.demand]] for a in plan.primary())
    if not at_site:
        return FarService(0, 0.0, 0.0, 0.0, "")
    c = np.array([index[a.demand] for a in at_site])
    d_lat = np.array([s.demand[i].lat for i in c])
    d_lon = np.array([s.demand[i].lon for i in c])
    t_lat = np.array([site[a.target].lat for a in at_site])
    t_lon = np.array([site[a.target].lon for a in at_site])
    km = great_circle_km(d_lat, d_lon, t_lat, t_lon)
    frac = np.array([a.fraction for a in at_site])
    far = km > s.network.metro_radius_km
    far_rps = float((frac * rps[c])[far].sum())
    k = int(np.argmax(km))
    return FarService(
        sources=int(np.unique(c[far]).size),
        rps=far_rps,
        share=far_rps / served if served > 0 else 0.0,
        farthest_km=float(km[k]),
        farthest=f"{at_site[k].demand} → {at_site[k].target}",
    )
