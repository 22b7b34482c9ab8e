"""One entry point from the planner to the facility-location solvers: a capacity-aware greedy plan
warm-starts the exact pipeline (Lagrangian bound and fixing, then HiGHS), which proves optimality or
reports its gap at the time limit.

Customers with no allowed facility (demand nobody may legally serve within its SLO) are taken out
before solving: their penalty is a constant no plan can change, so the solver's gap — and the gap the
plan reports — is on the cost the planner controls (`Solution.unservable_part` carries the constant).

Split limit (`max_targets` = K, the scenario's policies.max_serving_sites): the exact pipeline first
solves the problem *without* the limit — aggregated, Lagrangian, HiGHS — which is a relaxation, so its
bound is valid for the limited problem, and if every demand source of its plan has at most K serving
targets that plan is optimal for the limited problem too. Otherwise the limited MILP (a binary
"serves" indicator per pair, milp.py [S]) is solved on the original, un-aggregated sources: exact
aggregation does not carry over, since two interchangeable sources may each be single-sourced from a
different facility while their sum cannot. It is warm-started by a repair of the relaxed plan (its
open facilities kept, the assignment re-solved under the limit), and the relaxed bound is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from microdc.placement.aggregate import Aggregation, aggregate_customers, expand_solution
from microdc.placement.classes import applies, classify, expand, preferred_units, solve_classes
from microdc.placement.facility import (
    FacilityProblem,
    Solution,
    infeasible_solution,
    make_solution,
    pairs_to_matrix,
)
from microdc.placement.milp import (
    OPTIMAL_GAP,
    ProgressEvent,
    solve_assignment,
    solve_milp,
    solve_restricted,
)

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


def servable_part(problem: FacilityProblem) -> tuple[FacilityProblem | None, npt.NDArray[np.int64]]:
    """The problem restricted to customers with at least one allowed facility (None when there is none
    left), and the original index of each kept customer. Unchanged without an unserved penalty: then an
    unservable customer makes the problem infeasible, which the solver must report."""
    keep = np.flatnonzero(problem.allowed.any(axis=0))
    if problem.unserved_penalty is None or keep.size == problem.n_customers:
        return problem, np.arange(problem.n_customers, dtype=np.int64)
    if keep.size == 0:
        return None, keep.astype(np.int64)
    names = problem.customer_names
    sub = replace(
        problem,
        usage=problem.usage[keep],
        assign_cost=problem.assign_cost[:, keep],
        allowed=problem.allowed[:, keep],
        unserved_penalty=problem.unserved_penalty[keep],
        customer_names=None if names is None else tuple(names[c] for c in keep.tolist()),
    )
    return sub, keep.astype(np.int64)


Matrix: TypeAlias = npt.NDArray[np.float64] | sp.csr_array


def _widen(m: Matrix | None, keep: npt.NDArray[np.int64], n_c: int) -> Matrix | None:
    """Columns of the kept customers back into an (F, n_c) matrix (the dropped ones get zeros)."""
    if m is None:
        return None
    if sp.issparse(m):
        coo = sp.coo_array(m)
        return sp.csr_array((coo.data, (coo.row, keep[coo.col])), shape=(m.shape[0], n_c))
    out = np.zeros((m.shape[0], n_c))
    out[:, keep] = m
    return out


def _put_back(original: FacilityProblem, keep: npt.NDArray[np.int64], sol: Solution | None) -> Solution:
    """A solution of the servable part as a solution of the whole problem: the dropped customers are
    unserved, their penalty is added to objective and bound alike and recorded as the constant part."""
    n_c = original.n_customers
    unserved = np.ones(n_c)
    if sol is None:  # nothing is servable: only what is already built stays open
        open_ = original.fixed_open.copy()
        x = np.zeros((original.n_facilities, n_c))
        z = np.zeros_like(x) if original.n_plus else None
        out = make_solution(
            original, open_, x, z, unserved, lower_bound=np.inf, status="optimal", method="nothing servable"
        )
    else:
        if not np.isfinite(sol.objective):
            # No plan: stay "no plan", in the whole problem's shape (the caller may still look at it).
            none = infeasible_solution(
                original, seconds=sol.seconds, method=sol.method, messages=sol.messages
            )
            none.status, none.lower_bound, none.nodes = sol.status, sol.lower_bound, sol.nodes
            return none
        unserved[keep] = sol.unserved
        const = float(np.delete(np.asarray(original.unserved_penalty), keep).sum())
        out = make_solution(
            original,
            sol.open,
            _widen(sol.x, keep, n_c),
            _widen(sol.z, keep, n_c),
            unserved,
            lower_bound=sol.lower_bound + const,
            status=sol.status,
            seconds=sol.seconds,
            nodes=sol.nodes,
            method=sol.method,
            messages=sol.messages,
        )
    out.unservable_part = float(np.delete(np.asarray(original.unserved_penalty), keep).sum())
    return out


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
    timing: dict[str, float] = {}
    mark = [t0]

    def lap(phase: str) -> None:
        now = time.perf_counter()
        timing[phase] = timing.get(phase, 0.0) + now - mark[0]
        mark[0] = now

    # Aggregate first, then set the unservable customers apart: the copy servable_part makes is then
    # of the (small) aggregated problem, never of the city-sized (F, C) arrays.
    whole = problem
    limit = whole.max_targets
    original = replace(whole, max_targets=0) if limit else whole
    agg = aggregate_customers(original)
    servable, keep = servable_part(agg.problem)
    if servable is None:
        out = _put_back(agg.problem, keep, None)
        out = _unaggregated(original, agg, out)
        out.seconds = time.perf_counter() - t0
        return out
    problem = servable
    lap("aggregate")
    # With a split limit the relaxed solve leaves a share of the time for the limited re-solve.
    budget = time_limit_s
    if time_limit_s is not None:
        budget = max(time_limit_s - (time.perf_counter() - t0), 0.05) * (RELAXED_SHARE if limit else 1.0)
    sol = _solve_by_classes(problem, original, budget, mip_rel_gap, threads)
    lap("classes")
    if sol is None:
        greedy = solve_assignment(problem, greedy_open(problem), threads=threads)
        start = greedy.solution(problem) if greedy.feasible else None
        lap("warm_start")
        sol = solve_milp(
            problem,
            time_limit_s=budget if budget is None else max(budget - timing["classes"], 0.05),
            mip_rel_gap=mip_rel_gap,
            threads=threads,
            warm_start=start,
            progress=hook,
        )
    sol.seconds = time.perf_counter() - t0
    if servable is not agg.problem:
        sol = _put_back(agg.problem, keep, sol)
    expanded = _unaggregated(original, agg, sol)
    lap("solve")
    if limit:
        const = expanded.unservable_part
        expanded = _within_split_limit(whole, expanded, time_limit_s, mip_rel_gap, threads, hook, t0)
        expanded.unservable_part = const
        expanded.seconds = time.perf_counter() - t0
        lap("split_limit")
    expanded.timing = {**timing, **expanded.timing}
    return expanded


def _unaggregated(original: FacilityProblem, agg: Aggregation, sol: Solution) -> Solution:
    """`expand_solution`, keeping the constant unservable part (a property of the demand, not of the
    aggregation)."""
    out = expand_solution(original, agg, sol)
    out.unservable_part = sol.unservable_part
    return out


def _solve_by_classes(
    problem: FacilityProblem,
    original: FacilityProblem,
    time_limit_s: float | None,
    mip_rel_gap: float,
    threads: int | None,
) -> Solution | None:
    """The exact class MILP (placement.classes) when options are interchangeable enough; None when it
    does not apply or finds no plan (the caller then solves the facility MILP)."""
    if problem.n_plus or problem.max_targets:
        return None
    c = classify(problem)
    if not applies(problem, c):
        return None
    cs = solve_classes(problem, c, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, threads=threads)
    if cs is None:
        return None
    return expand(problem, c, cs, preferred_units(original))


def reassign_over_limit(
    problem: FacilityProblem,
    sol: Solution,
    over: npt.NDArray[np.int64],
    time_limit_s: float | None,
    mip_rel_gap: float,
    threads: int | None,
) -> Solution | None:
    """`sol` with the sources in `over` re-assigned under the split limit, by the limited MILP on just
    them, the open facilities and the capacity the other sources leave (no redundancy). None when that
    small MILP finds nothing."""
    open_ = np.flatnonzero(sol.open).astype(np.int64)
    x = sol.x
    f_all, c_all, v_all = _pairs(x)
    others = ~np.isin(c_all, over)
    load = np.zeros((problem.n_facilities, problem.n_resources))
    np.add.at(load, f_all[others], v_all[others, None] * problem.usage[c_all[others]])
    cap = problem.capacity[open_]
    room = np.where(np.isfinite(cap), np.maximum(cap - load[open_], 0.0), np.inf)
    sub = FacilityProblem(
        fixed_cost=np.zeros(open_.size),
        capacity=room,
        usage=problem.usage[over],
        assign_cost=problem.assign_cost[np.ix_(open_, over)],
        allowed=problem.allowed[np.ix_(open_, over)],
        group=np.full(open_.size, -1, np.int64),
        fixed_open=np.ones(open_.size, bool),
        failure_domain=problem.failure_domain[open_],
        unserved_penalty=None if problem.unserved_penalty is None else problem.unserved_penalty[over],
        max_targets=problem.max_targets,
    )
    part = solve_restricted(sub, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, threads=threads)
    if not np.isfinite(part.objective):
        return None
    fs, cs, vs = _pairs(part.x)
    unserved = np.asarray(sol.unserved, dtype=np.float64).copy()
    unserved[over] = part.unserved
    shape = (problem.n_facilities, problem.n_customers)
    merged = pairs_to_matrix(
        shape,
        np.concatenate([f_all[others], open_[fs]]),
        np.concatenate([c_all[others], over[cs]]),
        np.concatenate([v_all[others], vs]),
    )
    return make_solution(
        problem, sol.open, merged, None, unserved, lower_bound=sol.lower_bound, status="heuristic"
    )


def _pairs(m: Matrix) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(rows, cols, values) of the positive entries of a dense or sparse matrix."""
    if sp.issparse(m):
        coo = sp.coo_array(m)
        keep = coo.data > 0
        return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep]
    a = np.asarray(m)
    r, c = np.nonzero(a > 0)
    return r.astype(np.int64), c.astype(np.int64), a[r, c]


#: With a split limit, the share of the time limit the relaxed (unlimited) solve may use.
RELAXED_SHARE = 0.7
#: Above this many allowed pairs the split-limited MILP runs on the relaxed plan's neighbourhood only.
SPLIT_FULL_MAX_PAIRS = 400_000
#: Above this many allowed pairs in that neighbourhood the limited MILP is not run at all when the
#: vertex plan already keeps the limit (it is the plan, with the relaxed bound).
SPLIT_NEIGHBOURHOOD_MAX_PAIRS = 1_000_000


def split_neighbourhood(problem: FacilityProblem, open_: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Facilities the limited MILP may use when the whole one is too large: every option in a group
    (site) of an open facility, the open facilities, and every facility outside groups that has no
    finite capacity (cloud regions) or is pre-built."""
    g = problem.group
    open_groups = np.unique(g[open_ & (g >= 0)])
    keep = open_ | np.isin(g, open_groups) & (g >= 0)
    keep |= (g < 0) & (~np.isfinite(problem.capacity).all(axis=1) | problem.fixed_open)
    return np.flatnonzero(keep).astype(np.int64)


def targets_per_customer(x: Matrix, tol: float = 1e-9) -> npt.NDArray[np.int64]:
    """How many facilities serve a positive share of each customer."""
    if sp.issparse(x):
        return np.asarray((sp.csr_array(x) > tol).sum(axis=0)).ravel().astype(np.int64)
    return np.asarray((np.asarray(x) > tol).sum(axis=0), dtype=np.int64)


def _within_split_limit(
    problem: FacilityProblem,
    relaxed: Solution,
    time_limit_s: float | None,
    mip_rel_gap: float,
    threads: int | None,
    hook: Callable[[ProgressEvent], None],
    t0: float,
) -> Solution:
    """The relaxed plan if it keeps the split limit; else the limited MILP, warm-started by a repair."""
    if not np.isfinite(relaxed.objective):
        return relaxed
    k = problem.max_targets
    over = int((targets_per_customer(relaxed.x) > k).sum())
    if over == 0:
        return relaxed

    def left() -> float | None:
        return None if time_limit_s is None else max(time_limit_s - (time.perf_counter() - t0), 0.05)

    # First the cheapest assignment to the relaxed plan's open set by the simplex: a vertex splits at
    # most as many customers as there are binding capacity rows, so it often keeps the limit already.
    const = relaxed.unservable_part  # gaps below are on the cost a plan controls
    vertex = solve_assignment(problem, relaxed.open, threads=threads)
    kept: Solution | None = None  # the vertex (re-assigned) when it keeps the limit: a plan to beat
    fixed_up = ""
    if vertex.feasible:
        v: Solution | None = vertex.solution(problem, lower_bound=relaxed.lower_bound)
        assert v is not None
        still = np.flatnonzero(targets_per_customer(v.x) > k)
        if still.size and not problem.n_plus:
            v = reassign_over_limit(problem, v, still, left(), mip_rel_gap, threads)
            fixed_up = f", after re-assigning the {still.size} source(s) it split over more"
        if v is not None:
            v.unservable_part = const
            if int((targets_per_customer(v.x) > k).sum()) == 0:
                kept = v
        if kept is not None and kept.gap <= mip_rel_gap:
            v = kept
            v.status = "optimal" if v.gap <= OPTIMAL_GAP else "gap_limit"
            v.method = f"{relaxed.method}+split-limit"
            v.messages = [
                *relaxed.messages,
                f"split limit {k}: the plan without it split {over} demand source(s) over more targets; "
                f"the simplex assignment to its open sites keeps the limit{fixed_up} (bound of the "
                "unlimited plan)",
            ]
            return v
    whole = int(problem.allowed.sum()) <= SPLIT_FULL_MAX_PAIRS
    facilities = None if whole else split_neighbourhood(problem, relaxed.open)
    near_pairs = 0 if facilities is None else int(problem.allowed[facilities].sum())
    if kept is not None and near_pairs > SPLIT_NEIGHBOURHOOD_MAX_PAIRS:
        # A limited MILP this size (a binary per pair) would take far more memory and time than the
        # problem itself (13 GB and 5 minutes at 10,000 sites): keep the legal vertex plan, gap honest.
        gap = kept.gap
        kept.status = "optimal" if gap <= OPTIMAL_GAP else "gap_limit" if gap <= mip_rel_gap else "time_limit"
        kept.method = f"{relaxed.method}+split-limit"
        kept.messages = [
            *relaxed.messages,
            f"split limit {k}: the plan without it split {over} demand source(s) over more targets; the "
            f"simplex assignment to its open sites keeps the limit{fixed_up}; the limited MILP on "
            f"{near_pairs:,} pairs was not run (more than {SPLIT_NEIGHBOURHOOD_MAX_PAIRS:,}; bound of the "
            "unlimited plan)",
        ]
        return kept
    opened = np.flatnonzero(relaxed.open).astype(np.int64)
    repair = solve_restricted(
        problem,
        time_limit_s=left(),
        mip_rel_gap=mip_rel_gap,
        threads=threads,
        facilities=opened,
        force_open=opened,
        t0=t0,
    )
    start = repair if np.isfinite(repair.objective) else None
    repair.unservable_part = const
    if kept is not None and (start is None or kept.objective < start.objective):
        start = kept  # the repair MILP ran out of time with a worse plan than the vertex already had
    notes = []
    if start is not None and start.objective - relaxed.lower_bound <= mip_rel_gap * abs(start.controllable):
        # The repair is within the gap of the relaxed bound: nothing left to prove.
        gap = (start.objective - relaxed.lower_bound) / max(abs(start.controllable), 1e-9)
        full = make_solution(
            problem,
            start.open,
            start.x,
            start.z,
            start.unserved,
            lower_bound=relaxed.lower_bound,
            status="optimal" if gap <= OPTIMAL_GAP else "gap_limit",
            method=start.method,
        )
    else:
        # Beyond SPLIT_FULL_MAX_PAIRS the limited MILP (a binary per pair) would not fit in memory: it
        # is solved on the neighbourhood of the relaxed plan (a heuristic restriction, so only the
        # relaxed bound is claimed: external_incumbent = -inf keeps HiGHS's restricted bound out).
        full = solve_restricted(
            problem,
            time_limit_s=left(),
            mip_rel_gap=mip_rel_gap,
            threads=threads,
            warm_start=start,
            progress=hook,
            external_bound=relaxed.lower_bound,
            external_incumbent=np.inf if whole else -np.inf,
            facilities=facilities,
            t0=t0,
        )
        full.unservable_part = const
        if not whole:
            if full.status == "optimal" and full.gap > OPTIMAL_GAP:
                full.status = "gap_limit" if full.gap <= mip_rel_gap else "heuristic"
            n_near = 0 if facilities is None else int(facilities.size)
            notes.append(
                f"split limit: {int(problem.allowed.sum()):,} allowed pairs are more than "
                f"{SPLIT_FULL_MAX_PAIRS:,}; the limited MILP ran on the {n_near} options at the relaxed "
                "plan's sites and the cloud regions (bound: the relaxed one)"
            )
    best = full
    if start is not None and (not np.isfinite(full.objective) or start.objective < full.objective):
        best = make_solution(
            problem,
            start.open,
            start.x,
            start.z,
            start.unserved,
            lower_bound=max(full.lower_bound, relaxed.lower_bound),
            status="time_limit" if full.status != "optimal" else full.status,
            nodes=full.nodes,
            method=full.method,
            messages=full.messages,
        )
    best.messages = [
        *relaxed.messages,
        *best.messages,
        *notes,
        f"split limit {k}: the plan without it split {over} demand source(s) over more targets; "
        "re-solved with a serves indicator per pair (bound of the unlimited plan kept)",
    ]
    best.method = f"{relaxed.method}+split-limit"
    return best
