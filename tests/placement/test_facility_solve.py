"""The solvers against brute force on small random problems (independent LP oracle via scipy).

For every open set that respects fixed_open and the groups, the best assignment is an LP; the
minimum over open sets is the optimum. The MILP must match it, every bound must lie below it, and the
Lagrangian's reduced-cost fixings must never exclude a plan cheaper than its incumbent.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.optimize import linprog
from scipy.sparse import lil_matrix

from microdc.placement.facility import OPTIMAL_GAP, FacilityProblem
from microdc.placement.lagrangian import lagrangian_heuristic
from microdc.placement.milp import ProgressEvent, solve_assignment, solve_milp

TOL = 1e-6


def oracle_lp(p: FacilityProblem, open_: NDArray[np.bool_]) -> float:
    """Fixed cost of the open set plus its best assignment, written independently of milp.py."""
    n_f, n_c = p.n_facilities, p.n_customers
    pairs = [(f, c) for f in range(n_f) for c in range(n_c) if open_[f] and p.allowed[f, c]]
    nx = len(pairs)
    nz = nx if p.n_plus else 0
    nu = n_c if p.unserved_penalty is not None else 0
    nv = nx + nz + nu
    cost = np.zeros(nv)
    for k, (f, c) in enumerate(pairs):
        cost[k] = p.assign_cost[f, c]
    if nu:
        cost[nx + nz :] = p.unserved_penalty
    a_eq = lil_matrix((n_c * (2 if p.n_plus else 1), max(nv, 1)))
    for k, (_, c) in enumerate(pairs):
        a_eq[c, k] = 1
        if p.n_plus:
            a_eq[n_c + c, nx + k] = 1
    for c in range(nu):
        a_eq[c, nx + nz + c] = 1
        if p.n_plus:
            a_eq[n_c + c, nx + nz + c] = 1
    rows: list[dict[int, float]] = []
    rhs: list[float] = []
    for f in range(n_f):
        for r in range(p.n_resources):
            if not open_[f] or not np.isfinite(p.capacity[f, r]):
                continue
            row = {}
            for k, (ff, c) in enumerate(pairs):
                if ff == f:
                    row[k] = p.usage[c, r]
                    if p.n_plus:
                        row[nx + k] = p.usage[c, r]
            rows.append(row)
            rhs.append(p.capacity[f, r])
    if p.n_plus:
        for k in range(nx):
            rows.append({k: 1.0, nx + k: 1.0})
            rhs.append(1.0)
        for c in range(n_c):
            for d in set(p.failure_domain.tolist()) - {-1}:
                row = {}
                for k, (f, cc) in enumerate(pairs):
                    if cc == c and p.failure_domain[f] == d:
                        row[k] = 1.0
                        row[nx + k] = 1.0
                if nu:
                    row[nx + nz + c] = 1.0
                rows.append(row)
                rhs.append(1.0)
    a_ub = lil_matrix((max(len(rows), 1), max(nv, 1)))
    for i, row in enumerate(rows):
        for k, v in row.items():
            a_ub[i, k] = v
    if nv == 0:
        return float(p.fixed_cost[open_].sum()) if n_c == 0 else np.inf
    res = linprog(
        cost,
        A_ub=a_ub.tocsr() if rows else None,
        b_ub=np.array(rhs) if rows else None,
        A_eq=a_eq.tocsr(),
        b_eq=np.ones(a_eq.shape[0]),
        bounds=(0, 1),
        method="highs",
    )
    if res.status != 0:
        return np.inf
    return float(p.fixed_cost[open_].sum() + res.fun)


def open_sets(p: FacilityProblem) -> list[NDArray[np.bool_]]:
    out = []
    for bits in itertools.product([False, True], repeat=p.n_facilities):
        s = np.array(bits)
        if np.any(p.fixed_open & ~s):
            continue
        g = p.group[s & (p.group >= 0)]
        if g.size != np.unique(g).size:
            continue
        out.append(s)
    return out


def brute_force(p: FacilityProblem) -> tuple[float, dict[bytes, float]]:
    values = {s.tobytes(): oracle_lp(p, s) for s in open_sets(p)}
    return min(values.values(), default=np.inf), values


def arr(draw: Any, elements: st.SearchStrategy[Any], *shape: int) -> NDArray[Any]:
    n = int(np.prod(shape))
    return np.array(draw(st.lists(elements, min_size=n, max_size=n))).reshape(shape)


@st.composite
def problems(draw: Any, n_plus: int | None = None, penalty: bool | None = None) -> FacilityProblem:
    n_f = draw(st.integers(1, 5))
    n_c = draw(st.integers(1, 4))
    n_r = draw(st.integers(1, 2))
    ints = st.integers
    fixed = arr(draw, ints(0, 30), n_f).astype(float)
    cap = arr(draw, ints(0, 12), n_f, n_r).astype(float)
    cap[arr(draw, st.booleans(), n_f, n_r)] = np.inf
    usage = arr(draw, ints(0, 5), n_c, n_r).astype(float)
    cost = arr(draw, ints(0, 20), n_f, n_c).astype(float)
    allowed = arr(draw, st.sampled_from([True, True, True, False]), n_f, n_c)
    group = arr(draw, st.sampled_from([-1, -1, 0, 1]), n_f)
    fixed_open = np.zeros(n_f, bool)
    if draw(st.booleans()):
        f = draw(ints(0, n_f - 1))
        fixed_open[f] = True
    domain = arr(draw, ints(-1, 2), n_f)
    np_ = draw(st.sampled_from([0, 1])) if n_plus is None else n_plus
    pen_on = draw(st.booleans()) if penalty is None else penalty
    pen = arr(draw, ints(0, 40), n_c).astype(float) if pen_on else None
    return FacilityProblem(
        fixed_cost=fixed,
        capacity=cap,
        usage=usage,
        assign_cost=cost,
        allowed=allowed,
        group=group.astype(np.int64),
        fixed_open=fixed_open,
        failure_domain=domain.astype(np.int64),
        n_plus=np_,
        unserved_penalty=pen,
    )


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(problems())
def test_milp_matches_brute_force(p: FacilityProblem) -> None:
    best, _ = brute_force(p)
    sol = solve_milp(p)
    if not np.isfinite(best):
        assert sol.status == "infeasible"
        return
    assert sol.status == "optimal", sol.messages
    assert sol.objective == pytest.approx(best, rel=TOL, abs=TOL)
    assert sol.lower_bound <= best + TOL * max(1.0, abs(best))
    assert p.violations(sol) == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_baseline_formulations_match_brute_force(p: FacilityProblem) -> None:
    """The benchmark's plain baselines must be correct models too, only weaker ones."""
    best, _ = brute_force(p)
    for form in ("textbook", "weak"):
        sol = solve_milp(p, formulation=form)
        if not np.isfinite(best):
            assert sol.status == "infeasible"
            continue
        assert sol.objective == pytest.approx(best, rel=TOL, abs=TOL)
        assert p.violations(sol) == []


@SETTINGS
@given(problems())
def test_lagrangian_bound_plan_and_fixing_are_valid(p: FacilityProblem) -> None:
    best, values = brute_force(p)
    res = lagrangian_heuristic(p, time_limit_s=5.0, max_iter=300)
    tol = TOL * max(1.0, abs(best)) if np.isfinite(best) else TOL
    assert res.lower_bound <= best + tol
    if res.solution is None:
        return
    assert np.isfinite(best)
    assert res.solution.objective >= best - tol
    assert p.violations(res.solution) == []
    ub = res.solution.objective
    for key, val in values.items():
        s = np.frombuffer(key, dtype=bool)
        # A plan that opens a facility proven closed (or closes one proven open) is never cheaper.
        if np.any(s & res.fix_closed) or np.any(~s & res.fix_open):
            assert val >= ub - tol


@SETTINGS
@given(problems())
def test_heuristic_pipeline_matches_brute_force(p: FacilityProblem) -> None:
    best, _ = brute_force(p)
    sol = solve_milp(p, heuristic=True)
    if not np.isfinite(best):
        assert sol.status == "infeasible"
        return
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(best, rel=TOL, abs=TOL)
    assert sol.lower_bound <= best + TOL * max(1.0, abs(best))
    assert p.violations(sol) == []


@SETTINGS
@given(problems(n_plus=0, penalty=False))
def test_assignment_lp_matches_oracle(p: FacilityProblem) -> None:
    for s in open_sets(p)[:6]:
        ref = oracle_lp(p, s)
        res = solve_assignment(p, s)
        if np.isfinite(ref):
            assert res.feasible and res.objective == pytest.approx(ref, rel=TOL, abs=TOL)
        else:
            assert not res.feasible


def random_problem(seed: int, n_f: int = 40, n_c: int = 400) -> FacilityProblem:
    rng = np.random.default_rng(seed)
    pos_f, pos_c = rng.random((n_f, 2)), rng.random((n_c, 2))
    demand = rng.integers(5, 50, n_c).astype(float)
    dist = np.linalg.norm(pos_f[:, None] - pos_c[None], axis=2)
    return FacilityProblem.build(
        fixed_cost=rng.uniform(500, 1500, n_f),
        capacity=np.full(n_f, demand.sum() / n_f * 4),
        usage=demand,
        assign_cost=dist * demand[None, :] * 20,
        allowed=dist < 0.6,
        group=np.arange(n_f) // 2,
    )


def test_medium_random_problem_pipeline_agrees_with_plain_milp() -> None:
    p = random_problem(3, n_f=30, n_c=300)
    a = solve_milp(p, heuristic=True)
    b = solve_milp(p, heuristic=False)
    assert a.status == b.status == "optimal"
    assert a.objective == pytest.approx(b.objective, rel=1e-7)
    assert p.violations(a) == [] and p.violations(b) == []
    assert a.fixed_part + a.assignment_part + a.unserved_part == pytest.approx(a.objective)


def test_time_limit_returns_valid_bound_and_progress_events() -> None:
    p = random_problem(5, n_f=60, n_c=600)
    events: list[ProgressEvent] = []
    sol = solve_milp(p, time_limit_s=1.0, progress=events.append)
    assert sol.status in ("optimal", "time_limit", "gap_limit")
    assert np.isfinite(sol.objective) and sol.lower_bound <= sol.objective + 1e-6
    assert p.violations(sol) == []
    assert events and all(e.phase in ("lagrangian", "milp") for e in events)
    assert all(e.bound <= e.objective + 1e-6 * abs(e.objective) for e in events if np.isfinite(e.objective))


def test_warm_start_with_open_vector() -> None:
    p = random_problem(7, n_f=20, n_c=150)
    ref = solve_milp(p)
    sol = solve_milp(p, warm_start=ref.open)
    assert sol.objective == pytest.approx(ref.objective, rel=1e-9)


def test_progress_hook_can_stop_the_solve() -> None:
    p = random_problem(11, n_f=60, n_c=600)
    seen: list[ProgressEvent] = []

    def stop(e: ProgressEvent) -> bool:
        seen.append(e)
        return True

    sol = solve_milp(p, progress=stop)
    assert seen
    assert sol.status in ("time_limit", "optimal")
    assert np.isfinite(sol.objective) and sol.lower_bound <= sol.objective + 1e-6
    assert p.violations(sol) == []


def test_gap_tolerance_is_reported() -> None:
    p = random_problem(13, n_f=40, n_c=400)
    sol = solve_milp(p, mip_rel_gap=0.05)
    assert sol.status in ("optimal", "gap_limit")
    assert sol.gap <= 0.05 + 1e-12
    assert (sol.status == "optimal") == (sol.gap <= OPTIMAL_GAP)


def planner_like_problem(seed: int, n_sites: int = 25, n_c: int = 120) -> FacilityProblem:
    """Sites with three module sizes (a group each), two resources, and an unlimited cloud region."""
    rng = np.random.default_rng(seed)
    pos_s, pos_c = rng.random((n_sites, 2)), rng.random((n_c, 2))
    sizes = np.array([[32.0, 256.0], [64.0, 512.0], [128.0, 1024.0]])
    cap = np.vstack([np.tile(sizes, (n_sites, 1)), [[np.inf, np.inf]]])
    fixed = np.concatenate(
        [np.tile([900.0, 1500.0, 2600.0], n_sites) * rng.uniform(0.8, 1.2, 3 * n_sites), [0.0]]
    )
    usage = np.column_stack([rng.uniform(1, 12, n_c), rng.uniform(4, 80, n_c)])
    dist = np.linalg.norm(pos_s[:, None] - pos_c[None], axis=2)
    cost = np.vstack([np.repeat(dist * usage[None, :, 0] * 30, 3, axis=0), usage[None, :, 0] * 60])
    allowed = np.vstack([np.repeat(dist < 0.5, 3, axis=0), rng.random((1, n_c)) < 0.7])
    return FacilityProblem.build(
        fixed_cost=fixed,
        capacity=cap,
        usage=usage,
        assign_cost=cost,
        allowed=allowed,
        group=np.concatenate([np.repeat(np.arange(n_sites), 3), [-1]]),
        fixed_open=np.concatenate([np.zeros(3 * n_sites, bool), [True]]),
        failure_domain=np.concatenate([np.repeat(np.arange(n_sites), 3), [-1]]),
    )


@pytest.mark.parametrize(("n_plus", "seed"), [(0, 17), (1, 7)])
def test_planner_like_pipeline_agrees_with_plain_milp(n_plus: int, seed: int) -> None:
    base = planner_like_problem(seed, n_sites=8, n_c=50)
    p = FacilityProblem(**{**base.__dict__, "n_plus": n_plus})
    a = solve_milp(p, heuristic=True, mip_rel_gap=1e-7)
    b = solve_milp(p, heuristic=False, mip_rel_gap=1e-7)
    assert a.status in ("optimal", "gap_limit") and b.status in ("optimal", "gap_limit")
    assert a.objective == pytest.approx(b.objective, rel=1e-6)
    assert p.violations(a) == [] and p.violations(b) == []
