"""Plan a horizon: the rolling (myopic) heuristic, build-everything-now, the exact MILP, and the plan file.

The myopic plan re-plans each period with what already stands as sunk cost (a standing site may only
add servers to its module); it is the MILP's warm start and, with build-all-now, the comparison the
plan reports. All three are priced by the same accounting (``horizon.schedule_npv``).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from microdc.model import Scenario
from microdc.placement.facility import OPTIMAL_GAP, FacilityProblem, Solution
from microdc.placement.horizon import (
    HorizonProblem,
    Schedule,
    build_horizon,
    period_opex,
    schedule_from,
    schedule_npv,
)
from microdc.placement.horizon_milp import solve_horizon_milp, within_split_limit
from microdc.placement.horizon_plan import HorizonPlan, PeriodPlan, Purchase
from microdc.placement.milp import solve_assignment
from microdc.placement.planner import PlannerOptions, PlanningError, solution_to_plan, unservable_reasons


def _solve_period(fp: FacilityProblem, opts: PlannerOptions) -> Solution:
    """A heuristic single-period plan: solved without the split limit, then re-assigned under it on the
    same open set (the exact single-period split-limit MILP is too slow to run once per period here)."""
    from microdc.placement.solve import solve_facility

    sol = solve_facility(
        replace(fp, max_targets=0),
        time_limit_s=opts.time_limit_s,
        mip_rel_gap=max(opts.mip_rel_gap, 1e-6),
        threads=opts.threads,
    )
    if not np.isfinite(sol.objective):
        return sol
    return within_split_limit(fp, sol, opts.threads, opts.time_limit_s)


def myopic(hp: HorizonProblem, opts: PlannerOptions) -> Schedule | None:
    """Plan period by period; what stands is kept (sunk), a standing site may only add servers."""
    sols: list[Solution] = []
    prev: np.ndarray | None = None
    for pp in hp.periods:
        fp = pp.facility
        fixed = fp.fixed_cost.copy()
        allowed = fp.allowed.copy()
        keep: dict[int, int] = {}  # site group -> option standing in the previous period
        if prev is not None:
            parts = pp.fixed_parts
            for f in np.flatnonzero(prev[: hp.n_opt] & (hp.chain >= 0)):
                g = int(fp.group[f])
                keep[g] = int(f)
                same = np.flatnonzero(fp.group == g)
                for o in same:
                    if hp.chain[o] == hp.chain[f] and hp.servers[o] >= hp.servers[f]:
                        added = (hp.servers[o] - hp.servers[f]) / hp.servers[o]
                        fixed[o] = (
                            parts["site"][o]
                            + parts["idle_energy"][o]
                            + parts["storage_energy"][o]
                            + added * (parts["server_capex"][o] + parts["storage_capex"][o])
                        )
                    else:
                        allowed[o] = False
        sol = _solve_period(
            replace(fp, fixed_cost=fixed, allowed=allowed),
            PlannerOptions(
                time_limit_s=opts.time_limit_s,
                mip_rel_gap=opts.mip_rel_gap,
                threads=opts.threads,
                allow_unserved=opts.allow_unserved,
            ),
        )
        if not np.isfinite(sol.objective):
            return None
        open_ = sol.open.copy()
        for g, kept in keep.items():
            grp = np.flatnonzero(fp.group == g)
            ok = [
                o
                for o in grp
                if open_[o] and hp.chain[o] == hp.chain[kept] and hp.servers[o] >= hp.servers[kept]
            ]
            open_[grp] = False
            open_[ok[0] if ok else kept] = True
        sols.append(_on(pp.facility, sol, open_))
        prev = open_
    return schedule_from(hp, sols)


def _on(fp: object, sol: Solution, open_: np.ndarray) -> Solution:
    from microdc.placement.facility import make_solution

    return make_solution(
        fp,  # type: ignore[arg-type]
        open_,
        sol.x,
        sol.z,
        sol.unserved,
        lower_bound=-np.inf,
        status="heuristic",
        method=sol.method,
    )


def build_all_now(hp: HorizonProblem, opts: PlannerOptions) -> Schedule | None:
    """The last period's optimal fleet, built in period 1 and kept; each period assigned optimally."""
    last = _solve_period(hp.periods[-1].facility, opts)
    if not np.isfinite(last.objective):
        return None
    sols = []
    for pp in hp.periods:
        ar = solve_assignment(pp.facility, last.open, threads=opts.threads)
        if not ar.feasible:
            return None
        sol = within_split_limit(pp.facility, ar.solution(pp.facility), opts.threads, opts.time_limit_s)
        sols.append(_on(pp.facility, sol, sol.open))
    return schedule_from(hp, sols)


def plan_horizon(s: Scenario, opts: PlannerOptions | None = None) -> tuple[HorizonPlan, HorizonProblem]:
    """The least net-present-cost staged build-out, with its proven bound and the two comparisons."""
    out, hp, _ = plan_horizon_with_alternatives(s, opts)
    return out, hp


def plan_horizon_with_alternatives(
    s: Scenario, opts: PlannerOptions | None = None
) -> tuple[HorizonPlan, HorizonProblem, dict[str, Schedule | None]]:
    """`plan_horizon`, also returning the comparison schedules it priced ("myopic", "build_all_now";
    None: no feasible plan), so `microdc run` can simulate them without planning them again."""
    opts = opts or PlannerOptions()
    t0 = time.perf_counter()
    hp = build_horizon(s, allow_unserved=opts.allow_unserved)
    for t, pp in enumerate(hp.periods):
        blocked = unservable_reasons(pp)
        if blocked and not opts.allow_unserved:
            lines = [f"demand {s.demand[c].id!r}: {r}" for c, rs in blocked.items() for r in rs]
            raise PlanningError(
                [
                    f"period {t + 1}: {len(blocked)} demand source(s) cannot be served legally within "
                    "their SLO:",
                    *lines,
                ]
            )
    t1 = time.perf_counter()
    # The heuristics only warm-start and compare: each single-period solve gets a share of the time
    # limit and stops at a 0.01 % gap.
    share = None if opts.time_limit_s is None else opts.time_limit_s / (4 * hp.n_periods)
    quick = PlannerOptions(
        time_limit_s=share,
        mip_rel_gap=max(opts.mip_rel_gap, 1e-4),
        threads=opts.threads,
        allow_unserved=opts.allow_unserved,
    )
    greedy = myopic(hp, quick)
    t2 = time.perf_counter()
    allnow = build_all_now(hp, quick)
    t3 = time.perf_counter()
    remaining = (
        None if opts.time_limit_s is None else max(opts.time_limit_s - (time.perf_counter() - t0), 1.0)
    )
    res = solve_horizon_milp(
        hp,
        warm=greedy,
        time_limit_s=remaining,
        mip_rel_gap=opts.mip_rel_gap,
        threads=opts.threads,
        repair_time_s=share,
        memory_budget_bytes=opts.memory_budget_bytes,
    )
    if res.solutions is None and greedy is None and allnow is None:
        if res.status == "infeasible":
            raise PlanningError(
                [
                    "no staged build-out serves every period's demand within capacity",
                    "fix: add candidate sites or larger modules, or plan with --allow-unserved",
                ]
            )
        if res.skipped is not None:
            raise PlanningError(["no heuristic horizon plan was found, and " + res.skipped])
        raise PlanningError([f"no feasible horizon plan found within the {opts.time_limit_s} s time limit"])
    notes = [
        f"build {t1 - t0:.2f} s, myopic {t2 - t1:.2f} s, build-all-now {t3 - t2:.2f} s, "
        f"HiGHS on all periods {res.seconds:.2f} s ({res.nodes} nodes)"
    ]
    if res.skipped is not None:
        notes.append(res.skipped)
    alts = {
        "myopic": None if greedy is None else schedule_npv(hp, greedy)[0],
        "build_all_now": None if allnow is None else schedule_npv(hp, allnow)[0],
    }
    # The best plan found: HiGHS's, unless a heuristic plan is cheaper (HiGHS stopped at its time limit,
    # or a split-limit repair cost more than the heuristic's).
    candidates = [(n, sch) for n, sch in (("myopic", greedy), ("build_all_now", allnow)) if sch is not None]
    if res.solutions is not None:
        candidates.insert(0, ("milp", schedule_from(hp, res.solutions)))
    priced = [(schedule_npv(hp, sch)[0], k, name, sch) for k, (name, sch) in enumerate(candidates)]
    npv, _, chosen, best = min(priced, key=lambda p: (p[0], p[1]))
    if res.solutions is None:
        pass  # no HiGHS plan to compare with (its reason is in the notes or the status)
    elif chosen != "milp":
        notes.append(f"the {chosen} plan was cheaper than the plan HiGHS returned; it is the plan written")
    elif abs(npv - res.objective) > 1e-6 * max(1.0, abs(npv)):
        notes.append(f"solver objective {res.objective:.6g} vs recomputed net present cost {npv:.6g}")
    # HiGHS calling the relaxed horizon infeasible while a heuristic plan exists is numerical trouble:
    # then no bound is claimed.
    bound = -np.inf if res.status == "infeasible" else min(res.bound, npv)
    gap = (npv - bound) / max(abs(npv), 1e-9)
    status = "time_limit" if res.status == "infeasible" else res.status
    if status == "optimal" and gap > OPTIMAL_GAP:
        status = "gap_limit"
    out = to_horizon_plan(hp, best, npv=npv, bound=bound, gap=gap, status=status)
    out = out.model_copy(
        update={"seconds": round(time.perf_counter() - t0, 3), "alternatives": alts, "notes": notes}
    )
    return out, hp, {"myopic": greedy, "build_all_now": allnow}


def to_horizon_plan(
    hp: HorizonProblem,
    sch: Schedule,
    *,
    npv: float,
    bound: float,
    gap: float,
    status: str,
    method: str = "horizon-milp",
) -> HorizonPlan:
    s, h = hp.scenario, hp.horizon
    _, capex, opex = schedule_npv(hp, sch)
    periods = []
    for t, (pp, sol) in enumerate(zip(hp.periods, sch.solutions, strict=True)):
        buys = []
        for k, (site, module, server) in enumerate(hp.chain_labels):
            m, n = int(sch.module_buys[t, k]), int(sch.server_buys[t, k])
            if m or n:
                buys.append(
                    Purchase(
                        site=site,
                        module=module,
                        server=server,
                        modules=m,
                        servers=n,
                        capex=float(m * hp.module_price[t, k] + n * hp.server_price[t, k]),
                        salvage=float(m * hp.module_salvage[t, k] + n * hp.server_salvage[t, k]),
                    )
                )
        plan = solution_to_plan(
            pp, sol, alternative=f"microdc-period-{t + 1}", allow_unserved=hp.allow_unserved
        )
        periods.append(
            PeriodPlan(
                period=t + 1,
                start_year=h.start_year(t),
                years=h.step_years,
                scenario=pp.scenario.name,
                purchases=buys,
                capex=float(sum(b.capex for b in buys)),
                opex_per_year=period_opex(hp, t, sol),
                discounted_capex=float(capex[t]),
                discounted_opex=float(opex[t]),
                npv=float(capex[t] + opex[t]),
                plan=plan,
            )
        )
    return HorizonPlan(
        scenario=s.name,
        method=method,
        status=status,
        npv=npv,
        lower_bound=bound if np.isfinite(bound) else None,
        gap=gap if np.isfinite(gap) else None,
        seconds=0.0,
        currency=s.economics.currency,
        years=h.years,
        step_years=h.step_years,
        allow_retire=h.allow_retire,
        discount_rate=s.economics.discount_rate,
        periods=periods,
    )


__all__ = ["build_all_now", "myopic", "plan_horizon", "plan_horizon_with_alternatives", "to_horizon_plan"]
