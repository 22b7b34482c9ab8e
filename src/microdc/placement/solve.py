"""One entry point from the planner to the facility-location solvers: a capacity-aware greedy plan
warm-starts the exact pipeline (Lagrangian bound and fixing, then HiGHS), which proves optimality or
reports its gap at the time limit."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from microdc.placement.aggregate import aggregate_customers, expand_solution
from microdc.placement.facility import FacilityProblem, Solution
from microdc.placement.milp import ProgressEvent, solve_assignment, solve_milp

BIG = 1e15


def _capacity_aware_cost(
    p: FacilityProblem, open_: npt.NDArray[np.bool_], cost: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Per-customer cost when customers, largest first, take their cheapest open facility with room
    (BIG for a customer the open facilities cannot hold), so the add step sees capacity shortfalls."""
    room = p.capacity.copy()
    out = np.full(p.n_customers, BIG)
    opened = np.flatnonzero(open_)
    for c in np.argsort(-p.usage[:, 0], kind="stable"):
        row = cost[opened, c]
        left, paid = 1.0, 0.0
        for k in np.argsort(row, kind="stable"):
            if not np.isfinite(row[k]) or left <= 1e-12:
                break
            f = opened[k]
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = float(np.nanmin(np.where(p.usage[c] > 0, room[f] / p.usage[c], np.inf)))
            take = min(left, max(frac, 0.0))
            if take <= 1e-12:
                continue
            room[f] -= take * p.usage[c]
            left -= take
            paid += take * row[k]
        if left <= 1e-9:
            out[c] = paid
    return out


def greedy_open(problem: FacilityProblem, max_rounds: int = 1000) -> npt.NDArray[np.bool_]:
    """The classic "add" heuristic: open the facility whose capacity-limited saving beats its fixed
    cost by most, until none does and every customer has an open, allowed facility."""
    p = problem
    open_ = p.fixed_open.copy()
    blocked_groups = set(p.group[open_ & (p.group >= 0)].tolist())
    cost = np.where(p.allowed, p.assign_cost, np.inf)
    cores = np.maximum(p.usage[:, 0], 1e-9)
    for _ in range(max_rounds):
        current = _capacity_aware_cost(p, open_, cost)
        saving = np.clip(current[None, :] - cost, 0.0, None)
        saving[~np.isfinite(saving)] = 0.0
        gain = np.full(p.n_facilities, -np.inf)
        for f in np.flatnonzero(~open_ & (saving.sum(axis=1) > p.fixed_cost)):
            if int(p.group[f]) in blocked_groups:
                continue
            idx = np.flatnonzero(saving[f] > 0)
            idx = idx[np.argsort(-saving[f, idx] / cores[idx])]
            fits = np.cumsum(p.usage[idx, 0]) <= p.capacity[f, 0]
            gain[f] = saving[f, idx[fits]].sum() - p.fixed_cost[f]
        f_best = int(np.argmax(gain))
        if not np.isfinite(gain[f_best]) or gain[f_best] <= 0:
            break
        open_[f_best] = True
        if p.group[f_best] >= 0:
            blocked_groups.add(int(p.group[f_best]))
    return open_


def solve_facility(
    problem: FacilityProblem,
    *,
    time_limit_s: float | None,
    mip_rel_gap: float,
    threads: int | None,
    progress: Callable[[str, float, float, float], None] | None = None,
) -> Solution:
    """Greedy "add" plan as a warm start, then the exact pipeline of `solve_milp` (Lagrangian bound and
    fixing, HiGHS), which keeps the better plan and reports the proven bound."""

    def hook(e: ProgressEvent) -> None:
        if progress is not None:
            progress(e.phase, e.seconds, e.objective, e.bound)

    t0 = time.perf_counter()
    original = problem
    agg = aggregate_customers(problem)
    problem = agg.problem
    greedy = solve_assignment(problem, greedy_open(problem), threads=threads)
    start = greedy.solution(problem) if greedy.feasible else None
    sol = solve_milp(
        problem,
        time_limit_s=time_limit_s,
        mip_rel_gap=mip_rel_gap,
        threads=threads,
        warm_start=start,
        progress=hook,
    )
    sol.seconds = time.perf_counter() - t0
    return expand_solution(original, agg, sol)
