"""The fleet planner: solve the planning problem exactly (HiGHS), explain what cannot be served, and
write the result as a Plan.

Unservable demand is never dropped silently: before solving, every demand source without a legal,
SLO-meeting target is named with the reason and a fix; the planner refuses to plan unless the user
asks for `allow_unserved`, which prices unserved demand with a penalty instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import scipy.sparse as sp

from microdc.model import Scenario
from microdc.placement.facility import Solution
from microdc.placement.plan import Assignment, BuiltSite, Plan, ServiceLatency, Unserved
from microdc.placement.problem import PlanningProblem, build_problem

ProgressCallback = Callable[[str, float, float, float], None]  # phase, seconds, objective, bound


class PlanningError(ValueError):
    """The scenario cannot be planned as asked; `reasons` says why and what would fix it."""

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__("\n".join(reasons))


@dataclass(frozen=True)
class PlannerOptions:
    time_limit_s: float | None = None
    mip_rel_gap: float = 1e-6
    threads: int | None = None
    allow_unserved: bool = False
    progress: ProgressCallback | None = None
    #: Memory the per-site horizon MILP may take, bytes (None: half of the memory available; above it
    #: that MILP is skipped and the heuristic plan is kept, placement.horizon_milp).
    memory_budget_bytes: float | None = None

    def __post_init__(self) -> None:
        reasons = option_problems(self.time_limit_s, self.mip_rel_gap, self.threads)
        if self.memory_budget_bytes is not None and not self.memory_budget_bytes > 0:
            reasons.append(
                f"the memory budget must be a positive number of bytes, got {self.memory_budget_bytes:g}"
            )
        if reasons:
            raise PlanningError(reasons)


def option_problems(time_limit_s: float | None, mip_rel_gap: float, threads: int | None) -> list[str]:
    """What is wrong with the solver options (each message names the command-line option)."""
    out: list[str] = []
    if time_limit_s is not None and not time_limit_s > 0:  # also catches NaN
        out.append(f"--time-limit must be a positive number of seconds, got {time_limit_s:g}")
    if not 0 <= mip_rel_gap < 1:  # also catches NaN
        out.append(
            f"--gap must lie in [0, 1) (a relative optimality gap, e.g. 0.01 for 1 %), got {mip_rel_gap:g}"
        )
    if threads is not None and threads < 1:
        out.append(f"--threads must be at least 1, got {threads}")
    return out


def unbuildable_reasons(s: Scenario) -> list[str]:
    """Why nothing at all could serve the demand: no site can power even the smallest module option
    within its grid cap, and there is no cloud region. Empty when some site option or region exists."""
    from microdc.placement.options import DESIGN_OUTDOOR_C, default_counts, design_facility_kw

    if s.cloud_regions or any(site.existing for site in s.sites):
        return []
    # The same rule as enumerate_options (an option fits where its design power <= the site's cap),
    # without building every site's options: only the smallest option and the largest cap matter.
    head = "nothing can serve the demand: no site can power any module and the scenario has no cloud region"
    fix_cloud = "or add a cloud region under cloud_regions"
    options = [
        (design_facility_kw(n * v.peak_w / 1000.0, m), m.id, v.id, n)
        for m in s.catalog.modules
        for v in s.catalog.servers
        for n in default_counts(m, v)
    ]
    if not options:
        return [
            head,
            "no server type fits into any module (each module's rack_units and max_it_kw admit none of "
            "the catalog's servers, by rack_units and peak_w)",
            f"fix: add a larger module or a smaller server type to the catalog, {fix_cloud}",
        ]
    smallest = min(options)
    if max(site.grid_power_kw for site in s.sites) >= smallest[0]:
        return []
    kw, module, server, n = smallest
    by_cap = sorted(s.sites, key=lambda x: -x.grid_power_kw)
    shown = ", ".join(f"{x.id} {x.grid_power_kw:g} kW" for x in by_cap[:8])
    more = f" and {len(by_cap) - 8} more site(s) with less" if len(by_cap) > 8 else ""
    return [
        head,
        f"the smallest module option, {module!r} with {n} x {server!r}, needs {kw:.3g} kW of grid power "
        f"at the {DESIGN_OUTDOOR_C:g} °C design temperature, but every site's grid_power_kw is lower: "
        f"{shown}{more}",
        f"fix: raise grid_power_kw of a site to at least {kw:.3g} kW, add a smaller module or server type, "
        f"{fix_cloud}",
    ]


def unservable_reasons(pp: PlanningProblem) -> dict[int, list[str]]:
    """For each demand with no legal, SLO-meeting target at all: why, and what would fix it."""
    s = pp.scenario
    out: dict[int, list[str]] = {}
    allowed = pp.facility.allowed
    for c in np.flatnonzero(~allowed.any(axis=0)):
        d = s.demand[c]
        pol = s.policy_for(d.data_class)
        reasons: list[str] = []
        sov = pp.sovereign[:, c]
        if not sov.any():
            reasons.append(
                f"no site or cloud region where {d.data_class!r} data from {d.jurisdiction} may be processed "
                f"(policy process_in={pol.process_in!r}); fix: add a candidate site or region there"
            )
        elif not (sov & pp.tier_ok[:, c]).any():
            reasons.append(
                f"every legal target has a security tier below {pol.min_security_tier} required for "
                f"{d.data_class!r}; fix: add or upgrade a site to tier {pol.min_security_tier}"
            )
        else:
            legal = np.flatnonzero(sov & pp.tier_ok[:, c])
            best = float(np.min(pp.rtt_rows(legal, np.array([c]))[:, 0] + pp.queue_ms[1, c]))
            slo = s.service(d.service).slo
            reasons.append(
                f"no legal target meets the {d.service!r} SLO (p95 {slo.p95_ms} ms / p99 {slo.p99_ms} ms): "
                f"best predicted p95 is {best:.1f} ms; fix: add a candidate site closer to "
                f"({d.lat:.4f}, {d.lon:.4f}) in {d.jurisdiction}, or relax the SLO"
            )
        out[int(c)] = reasons
    return out


def _solve(pp: PlanningProblem, opts: PlannerOptions, spent_s: float = 0.0) -> Solution:
    """Solve within what is left of the time limit after `spent_s` (the build), at least MIN_SOLVE_S."""
    from microdc.placement.solve import solve_facility

    limit = opts.time_limit_s
    return solve_facility(
        pp.facility,
        time_limit_s=None if limit is None else max(limit - spent_s, MIN_SOLVE_S),
        mip_rel_gap=opts.mip_rel_gap,
        threads=opts.threads,
        progress=opts.progress,
    )


def _served(sol: Solution) -> np.ndarray:
    """(C,) fraction of each customer that the solution serves or explicitly leaves unserved."""
    x = sol.x
    primary = np.asarray(x.sum(axis=0)).ravel() if sp.issparse(x) else np.asarray(x).sum(axis=0)
    return np.asarray(primary + np.asarray(sol.unserved), dtype=np.float64)


def _no_plan_reason(opts: PlannerOptions, sol: Solution) -> str:
    t = opts.time_limit_s
    if t is not None and math.isfinite(t):
        return f"no feasible solution found within the {t:g} s time limit; raise --time-limit"
    return f"no feasible solution found (solver status {sol.status})"


#: The solver gets at least this long even when building the problem used up the time limit.
MIN_SOLVE_S = 1.0


def plan(s: Scenario, opts: PlannerOptions | None = None) -> tuple[Plan, PlanningProblem, Solution]:
    """Build, solve and write the plan. The time limit counts from here (the build is part of it);
    the plan's `timing` says how long each phase took."""
    t0 = time.perf_counter()
    opts = opts or PlannerOptions()
    nothing = unbuildable_reasons(s)
    if nothing:
        raise PlanningError(nothing)
    pp = build_problem(s, allow_unserved=opts.allow_unserved)
    blocked = unservable_reasons(pp)
    build_s = time.perf_counter() - t0
    if blocked and not opts.allow_unserved:
        lines = [f"demand {s.demand[c].id!r}: {r}" for c, rs in blocked.items() for r in rs]
        raise PlanningError(
            [
                f"{len(blocked)} demand source(s) cannot be served legally within their SLO:",
                *lines,
                "or plan anyway with --allow-unserved (unserved demand is priced with a penalty)",
            ]
        )
    sol = _solve(pp, opts, build_s)
    sol.timing = {"build": build_s, **sol.timing}
    if sol.status == "infeasible":
        raise PlanningError(
            [
                "no plan serves all demand within capacity (a demand source's allowed facilities are the "
                "site modules and cloud regions where it may legally run within its SLO):",
                *sol.messages,
                "fix: add candidate sites or larger modules, or plan with --allow-unserved",
            ]
        )
    if not np.isfinite(sol.objective):
        raise PlanningError([_no_plan_reason(opts, sol)])
    short = np.flatnonzero(_served(sol) < 1 - 1e-6)
    if short.size:
        # A safety net: never hand back (or write) a plan that silently drops demand.
        ids = ", ".join(repr(s.demand[int(c)].id) for c in short[:10])
        more = f" and {short.size - 10} more" if short.size > 10 else ""
        raise PlanningError(
            [
                f"the solver ({sol.method}, {sol.status}) returned a plan that does not serve "
                f"{short.size} demand source(s): {ids}{more}; no plan written",
                _no_plan_reason(opts, sol)
                if sol.status == "time_limit"
                else "this is a bug; please report it",
            ]
        )
    t1 = time.perf_counter()
    out = solution_to_plan(
        pp, sol, alternative="microdc", blocked=blocked, allow_unserved=opts.allow_unserved
    )
    timing = {**sol.timing, "plan_file": time.perf_counter() - t1}
    return out.model_copy(update={"timing": {k: round(v, 3) for k, v in timing.items()}}), pp, sol


def _finite_or_none(x: float) -> float | None:
    """JSON has no inf/NaN: a missing bound (a baseline proves none) is written as null."""
    return float(x) if np.isfinite(x) else None


def unservable_penalty(pp: PlanningProblem, unserved: np.ndarray) -> float:
    """The penalty of demand left unserved that no target may legally serve within its SLO: a constant
    no plan can change (reported apart and left out of the relative gap)."""
    pen = pp.facility.unserved_penalty
    if pen is None:
        return 0.0
    blocked = ~pp.facility.allowed.any(axis=0)
    return float((pen * unserved)[blocked].sum())


def relative_gap(objective: float, lower_bound: float, unservable: float) -> float:
    """(objective − bound) / the cost the planner controls (objective − unservable penalties)."""
    return (objective - lower_bound) / max(abs(objective - unservable), 1e-9)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    if values.size == 0 or weights.sum() <= 0:
        return float("nan")
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, q * cum[-1])])


Matrix: TypeAlias = np.ndarray | sp.csr_array


def matrix_pairs(m: Matrix, tol: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, values) of the entries above `tol`, row-major, of a dense or sparse (F, C) matrix."""
    if sp.issparse(m):
        coo = sp.coo_array(sp.csr_array(m))
        coo.sum_duplicates()
        keep = coo.data > tol
        return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep]
    a: np.ndarray = np.asarray(m)
    fs, cs = np.nonzero(a > tol)
    return fs.astype(np.int64), cs.astype(np.int64), a[fs, cs]


def solution_to_plan(
    pp: PlanningProblem,
    sol: Solution,
    *,
    alternative: str,
    blocked: dict[int, list[str]] | None = None,
    allow_unserved: bool = False,
    notes: list[str] | None = None,
) -> Plan:
    s = pp.scenario
    n_opt = pp.n_sites_options
    sites: list[BuiltSite] = []
    for f in sol.open_facilities:
        if f >= n_opt:
            continue
        o = pp.options[f]
        sites.append(
            BuiltSite(
                site=s.sites[o.site].id,
                module=o.module,
                server=o.server,
                servers=o.servers,
                cores=o.cores,
                memory_gb=o.memory_gb,
                storage_tb=o.storage_tb,
                it_kw=o.it_kw,
                annual_pue=round(float(pp.annual_pue[f]), 4),
                existing=o.existing,
                fixed_cost=float(pp.facility.fixed_cost[f]),
            )
        )

    def target_name(f: int) -> tuple[str, str]:
        if f < n_opt:
            return s.sites[pp.options[f].site].id, "site"
        return s.cloud_regions[int(pp.target_cloud[f])].id, "cloud"

    # Only the pairs a plan uses are looked up (never an (F, C) array): x may be dense or CSR.
    xf, xc, xv = matrix_pairs(sol.x)
    assignments: list[Assignment] = []
    Role = Literal["primary", "backup"]
    roles: tuple[tuple[Role, Matrix | None], ...] = (("primary", sol.x), ("backup", sol.z))
    for role, mat in roles:
        if mat is None:
            continue
        fs, cs, vs = matrix_pairs(mat, 1e-9)
        rtt = pp.pair_rtt(fs, cs)
        p95 = rtt + pp.queue_ms[1, cs]
        for i, (f, c) in enumerate(zip(fs.tolist(), cs.tolist(), strict=True)):
            name, kind = target_name(f)
            assignments.append(
                Assignment(
                    demand=s.demand[c].id,
                    target=name,
                    kind=kind,
                    role=role,
                    fraction=float(min(1.0, vs[i])),
                    rtt_ms=round(float(rtt[i]), 3),
                    p95_ms=round(float(p95[i]), 3),
                )
            )
    blocked = blocked or {}
    unserved = [
        Unserved(
            demand=s.demand[c].id,
            fraction=float(sol.unserved[c]),
            reasons=blocked.get(int(c), ["serving it costs more than the unserved penalty"]),
        )
        for c in np.flatnonzero(sol.unserved > 1e-9)
    ]
    # Cost breakdown: fixed parts of open site options, site energy of assignments, cloud bills.
    open_ = sol.open
    costs = {k: float(v[open_].sum()) for k, v in pp.fixed_parts.items()}
    # Raw costs, not the solver's masked ones: a baseline may route where an SLO is missed, and pays.
    for part, per_pair in pp.pair_parts(xf, xc).items():
        costs[part] = float((per_pair * xv).sum())
    costs["unserved_penalty"] = float(sol.unserved_part)
    costs["total"] = float(sum(costs.values()))
    unservable = unservable_penalty(pp, np.asarray(sol.unserved))
    latency: dict[str, ServiceLatency] = {}
    service_of = np.array([d.service for d in s.demand])
    rtt_x = pp.pair_rtt(xf, xc)
    for svc in s.services:
        mine = service_of[xc] == svc.id
        cs = xc[mine]
        w = xv[mine] * pp.demand.mean_rps[cs]
        p50 = rtt_x[mine] + pp.queue_ms[0, cs]
        p95 = rtt_x[mine] + pp.queue_ms[1, cs]
        keep = w > 0
        latency[svc.id] = ServiceLatency(
            p50_ms=_finite_or_none(round(_weighted_quantile(p50[keep], w[keep], 0.5), 3)),
            p95_ms=_finite_or_none(round(_weighted_quantile(p95[keep], w[keep], 0.95), 3)),
            worst_p95_ms=round(float(p95[keep].max()), 3) if keep.any() else None,
            slo_p95_ms=svc.slo.p95_ms,
            slo_p99_ms=svc.slo.p99_ms,
        )
    out = Plan(
        scenario=s.name,
        alternative=alternative,
        method=sol.method,
        status=sol.status,
        objective=costs["total"],
        lower_bound=_finite_or_none(sol.lower_bound),
        gap=_finite_or_none(relative_gap(costs["total"], sol.lower_bound, unservable)),
        unservable_penalty=unservable,
        seconds=round(float(sol.seconds), 3),
        currency=s.economics.currency,
        n_plus=pp.facility.n_plus,
        max_serving_sites=s.policies.max_serving_sites,
        allow_unserved=allow_unserved,
        costs=costs,
        sites=sites,
        assignments=assignments,
        unserved=unserved,
        latency=latency,
        notes=list(notes or []) + list(sol.messages),
    )
    from microdc.placement.expected import expected_year

    return out.model_copy(update={"expected": expected_year(s, out, pp.series)})
