"""Merging interchangeable customers never changes the optimum."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from microdc.placement.aggregate import aggregate_customers, expand_solution
from microdc.placement.facility import FacilityProblem
from microdc.placement.milp import solve_milp


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_plus=st.integers(0, 1), penalty=st.booleans())
def test_aggregation_is_exact(seed: int, n_plus: int, penalty: bool) -> None:
    rng = np.random.default_rng(seed)
    n_f, n_base = 5, 3
    base_use = rng.uniform(1, 5, (n_base, 2))
    base_cost = rng.uniform(1, 20, (n_f, n_base))
    base_allowed = rng.random((n_f, n_base)) < 0.8
    base_allowed[0] = True  # one facility everyone may use
    copies = rng.integers(1, 4, n_base)
    cols = np.repeat(np.arange(n_base), copies)
    scale = rng.uniform(0.5, 2.0, cols.size)
    p = FacilityProblem.build(
        fixed_cost=rng.uniform(5, 30, n_f),
        capacity=np.tile(rng.uniform(5, 25, (n_f, 1)), (1, 2)),
        usage=base_use[cols] * scale[:, None],
        assign_cost=base_cost[:, cols] * scale[None, :],
        allowed=base_allowed[:, cols],
        n_plus=n_plus,
        unserved_penalty=(100.0 * scale) if penalty else None,
    )
    agg = aggregate_customers(p)
    assert agg.problem.n_customers <= n_base
    direct = solve_milp(p)
    merged = expand_solution(p, agg, solve_milp(agg.problem))
    assert direct.status == merged.status
    if direct.status == "optimal":
        assert abs(direct.objective - merged.objective) <= 1e-6 * max(1.0, abs(direct.objective))
        assert p.violations(merged) == []


def test_different_allowed_sets_are_not_merged() -> None:
    p = FacilityProblem.build(
        fixed_cost=[1.0, 1.0],
        capacity=[10.0, 10.0],
        usage=[1.0, 2.0],
        assign_cost=[[1.0, 2.0], [1.0, 2.0]],
        allowed=[[True, True], [True, False]],
    )
    assert not aggregate_customers(p).reduced
