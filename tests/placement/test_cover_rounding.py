"""The rounded cover [M] (placement/milp.py `cover_rounding_rows`): it keeps the optimum and it closes
the LP gap it is there for.

City-like problems: few large customers, many build options of a few capacity kinds whose fixed costs
all differ, an uncapacitated cloud that some customers may not use, and a penalty for unserved demand.
The strong model (with [M]) must give the same optimum as brute force over open sets and as the
textbook model (without it), and every one of its rows must hold at every integer plan.
"""

from __future__ import annotations

from typing import Any

import highspy
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_facility_solve import brute_force  # same directory (pytest puts it on the path)

from microdc.placement.facility import FacilityProblem
from microdc.placement.milp import build_model, cover_rounding_rows, solve_milp

TOL = 1e-6


@st.composite
def city_like(draw: Any) -> FacilityProblem:
    n_sites = draw(st.integers(2, 5))
    n_kinds = draw(st.integers(1, 2))
    n_c = draw(st.integers(1, 3))
    n_r = draw(st.integers(1, 2))
    n_plus = draw(st.sampled_from([0, 0, 1]))
    kind_cap = np.array(draw(st.lists(st.integers(1, 12), min_size=n_kinds * n_r, max_size=n_kinds * n_r)))
    kind_cap = kind_cap.reshape(n_kinds, n_r).astype(float)
    # One option of each kind per site (a group per site), plus one cloud region (uncapacitated).
    n_f = n_sites * n_kinds + 1
    cap = np.vstack([np.tile(kind_cap, (n_sites, 1)), np.full((1, n_r), np.inf)])
    group = np.concatenate([np.repeat(np.arange(n_sites), n_kinds), [-1]]).astype(np.int64)
    fixed = np.array(draw(st.lists(st.integers(5, 60), min_size=n_f, max_size=n_f)), float)
    fixed[-1] = 0.0
    usage = np.array(draw(st.lists(st.integers(0, 25), min_size=n_c * n_r, max_size=n_c * n_r)), float)
    usage = usage.reshape(n_c, n_r)
    cost = np.array(draw(st.lists(st.integers(0, 10), min_size=n_f * n_c, max_size=n_f * n_c)), float)
    cost = cost.reshape(n_f, n_c)
    cloud_cost = np.array(draw(st.lists(st.integers(0, 200), min_size=n_c, max_size=n_c)), float)
    cost[-1] = cloud_cost
    allowed = np.ones((n_f, n_c), bool)
    allowed[-1] = np.array(draw(st.lists(st.booleans(), min_size=n_c, max_size=n_c)))
    pen = np.array(draw(st.lists(st.integers(0, 400), min_size=n_c, max_size=n_c)), float)
    fixed_open = np.zeros(n_f, bool)
    fixed_open[-1] = draw(st.booleans())
    return FacilityProblem(
        fixed_cost=fixed,
        capacity=cap,
        usage=usage,
        assign_cost=cost,
        allowed=allowed,
        group=group,
        fixed_open=fixed_open,
        failure_domain=np.concatenate([np.repeat(np.arange(n_sites), n_kinds), [-1]]).astype(np.int64),
        n_plus=n_plus,
        unserved_penalty=pen if draw(st.booleans()) else None,
    )


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(city_like())
def test_strong_model_keeps_the_optimum(p: FacilityProblem) -> None:
    best, _ = brute_force(p)
    strong = solve_milp(p, heuristic=False)
    plain = solve_milp(p, formulation="textbook")
    if not np.isfinite(best):
        assert strong.status == plain.status == "infeasible"
        return
    assert strong.status == "optimal", strong.messages
    assert strong.objective == pytest.approx(best, rel=TOL, abs=TOL)
    assert plain.objective == pytest.approx(best, rel=TOL, abs=TOL)
    assert strong.lower_bound <= best + TOL * max(1.0, abs(best))
    assert p.violations(strong) == []


@SETTINGS
@given(city_like())
def test_every_rounded_cover_row_holds_at_the_optimal_plan(p: FacilityProblem) -> None:
    """Each [M] row evaluated at HiGHS's optimum of the textbook model (which has no [M] rows)."""
    plain = solve_milp(p, formulation="textbook")
    if not np.isfinite(plain.objective):
        return
    model = build_model(p)
    fac = model.facilities
    ycol = np.full(p.n_facilities, -1, np.int64)
    ycol[fac] = np.arange(fac.shape[0])
    pair_cols = [model.x0 + np.arange(model.n_pairs)]
    if model.z0 >= 0:
        pair_cols.append(model.z0 + np.arange(model.n_pairs))
    values = model.column_values(plain)
    for r in range(p.n_resources):
        rows = cover_rounding_rows(p, fac, ycol, model.pf, model.pc, pair_cols, model.u0, r)
        for _, cols, vals, lower in rows:
            assert float(vals @ values[cols]) >= lower - 1e-7


def _lp_value(p: FacilityProblem, *, with_rounding: bool) -> float:
    """The LP relaxation (y continuous) of the strong integer model, or of the textbook one."""
    model = build_model(p, formulation="strong" if with_rounding else "textbook")
    model.integer = False
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    model.to_highs(h)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(h.getInfo().objective_function_value)


def test_rounded_cover_closes_the_lp_gap_of_a_rounded_up_site() -> None:
    """Ten sites of capacity 10, every rent different, 33 units of demand: three sites are not enough,
    so the plan opens the four cheapest. The plain LP opens 3.3 sites; with [M] the LP already opens
    four (sum_f y_f + s / 3 >= 4, and the cloud costs far more than a site)."""
    n = 10
    fixed = 100.0 + np.arange(n, dtype=float)  # every rent different: no two options alike
    p = FacilityProblem(
        fixed_cost=np.concatenate([fixed, [0.0]]),
        capacity=np.concatenate([np.full((n, 1), 10.0), [[np.inf]]]),
        usage=np.array([[33.0]]),
        assign_cost=np.concatenate([np.full((n, 1), 5.0), [[1e5]]]),
        allowed=np.ones((n + 1, 1), bool),
        group=np.concatenate([np.arange(n), [-1]]).astype(np.int64),
        fixed_open=np.concatenate([np.zeros(n, bool), [True]]),
        failure_domain=np.full(n + 1, -1, np.int64),
        unserved_penalty=np.array([1e6]),
    )
    opt = solve_milp(p, heuristic=False)
    assert opt.status == "optimal"
    assert opt.objective == pytest.approx(100 + 101 + 102 + 103 + 5.0)
    assert _lp_value(p, with_rounding=False) < opt.objective - 50  # 3.3 sites
    assert _lp_value(p, with_rounding=True) == pytest.approx(opt.objective, rel=1e-9)
