"""n_plus = 1: losing any one failure domain must leave a feasible assignment on the survivors.

Checked two ways: by re-solving a feasibility LP without the failed domain (independent of the
formulation), and by building the repair the proof in milp.py describes (x' = x + (L/S) z).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.optimize import linprog
from scipy.sparse import lil_matrix

from microdc.placement.facility import FacilityProblem, Solution
from microdc.placement.milp import solve_milp


def survives(p: FacilityProblem, sol: Solution, failed: int) -> bool:
    """Is there x' >= 0 on open, allowed, surviving facilities serving each c exactly 1 - u_c?"""
    usable = sol.open & (p.failure_domain != failed)
    pairs = [
        (f, c) for f in range(p.n_facilities) for c in range(p.n_customers) if usable[f] and p.allowed[f, c]
    ]
    need = 1.0 - sol.unserved
    if not pairs:
        return bool(np.all(need <= 1e-7))
    a_eq = lil_matrix((p.n_customers, len(pairs)))
    for k, (_, c) in enumerate(pairs):
        a_eq[c, k] = 1.0
    rows, rhs = [], []
    for f in np.flatnonzero(usable):
        for r in range(p.n_resources):
            if np.isfinite(p.capacity[f, r]):
                rows.append([p.usage[c, r] if ff == f else 0.0 for ff, c in pairs])
                rhs.append(p.capacity[f, r] * (1 + 1e-9) + 1e-9)
    res = linprog(
        np.zeros(len(pairs)),
        A_ub=np.array(rows) if rows else None,
        b_ub=np.array(rhs) if rows else None,
        A_eq=a_eq.tocsr(),
        b_eq=need,
        bounds=(0, 1),
        method="highs",
    )
    return bool(res.status == 0)


def proof_repair(p: FacilityProblem, sol: Solution, failed: int) -> NDArray[np.float64]:
    """The assignment the proof constructs: survivors keep x and absorb the lost share pro rata to z."""
    x, z = sol.x_dense(), sol.z_dense()
    assert z is not None
    in_d = p.failure_domain == failed
    lost = x[in_d].sum(axis=0)
    backup = z[~in_d].sum(axis=0)
    scale = np.divide(lost, backup, out=np.zeros_like(lost), where=backup > 0)
    xr = np.where(in_d[:, None], 0.0, x + z * scale[None, :])
    return xr


def check_all_domains(p: FacilityProblem, sol: Solution) -> None:
    assert sol.z is not None
    for d in np.unique(p.failure_domain[sol.open & (p.failure_domain >= 0)]):
        assert survives(p, sol, int(d)), f"losing failure domain {d} leaves no feasible assignment"
        xr = proof_repair(p, sol, int(d))
        assert np.allclose(xr.sum(axis=0) + sol.unserved, 1.0, atol=1e-6)
        assert np.all(xr[~sol.open] <= 1e-9) and np.all(xr[~p.allowed] <= 1e-9)
        load = xr @ p.usage
        fin = np.isfinite(p.capacity)
        assert np.all(load[fin] <= p.capacity[fin] * (1 + 1e-7) + 1e-6)


@st.composite
def redundant_problems(draw: Any) -> FacilityProblem:
    n_f = draw(st.integers(2, 6))
    n_c = draw(st.integers(1, 5))
    ints = st.integers

    def arr(elements: st.SearchStrategy[Any], *shape: int) -> NDArray[Any]:
        n = int(np.prod(shape))
        return np.array(draw(st.lists(elements, min_size=n, max_size=n))).reshape(shape)

    return FacilityProblem.build(
        fixed_cost=arr(ints(0, 30), n_f).astype(float),
        capacity=arr(ints(3, 15), n_f).astype(float),
        usage=arr(ints(0, 5), n_c).astype(float),
        assign_cost=arr(ints(0, 20), n_f, n_c).astype(float),
        allowed=arr(st.sampled_from([True, True, False]), n_f, n_c),
        failure_domain=arr(ints(-1, 2), n_f),
        n_plus=1,
        unserved_penalty=arr(ints(5, 60), n_c).astype(float) if draw(st.booleans()) else None,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(redundant_problems())
def test_any_single_domain_failure_is_survivable(p: FacilityProblem) -> None:
    sol = solve_milp(p)
    if sol.status == "infeasible":
        return
    assert sol.status == "optimal"
    assert p.violations(sol) == []
    check_all_domains(p, sol)


def three_sites_and_a_cloud() -> FacilityProblem:
    """Sites 0-2 offer a small and a large module (a group each); a cloud region never fails."""
    n_c = 6
    rng = np.random.default_rng(0)
    fixed = np.array([30, 50, 30, 50, 30, 50, 0.0])
    cap = np.array([[8, 32], [16, 64], [8, 32], [16, 64], [8, 32], [16, 64], [np.inf, np.inf]])
    usage = np.column_stack([rng.integers(1, 5, n_c), rng.integers(2, 16, n_c)]).astype(float)
    cost = np.vstack([np.repeat(rng.uniform(1, 5, (3, n_c)), 2, axis=0), np.full((1, n_c), 40.0)])
    allowed = np.ones((7, n_c), bool)
    allowed[6, :2] = False  # the first two customers may not leave the country (no cloud)
    return FacilityProblem.build(
        fixed_cost=fixed,
        capacity=cap,
        usage=usage,
        assign_cost=cost,
        allowed=allowed,
        group=[0, 0, 1, 1, 2, 2, -1],
        fixed_open=[False] * 6 + [True],
        failure_domain=[0, 0, 1, 1, 2, 2, -1],
        n_plus=1,
    )


def test_sites_with_module_options_and_cloud() -> None:
    p = three_sites_and_a_cloud()
    sol = solve_milp(p)
    assert sol.status == "optimal"
    assert p.violations(sol) == []
    check_all_domains(p, sol)
    z = sol.z_dense()
    assert z is not None
    # Customers that may not use the cloud keep primary + backup on two different sites.
    for c in (0, 1):
        per_site = [(sol.x_dense()[2 * s : 2 * s + 2, c] + z[2 * s : 2 * s + 2, c]).sum() for s in range(3)]
        assert max(per_site) <= 1 + 1e-6 and sum(per_site) == pytest.approx(2.0)
    # Redundancy costs something: the plan without it is never dearer.
    p0 = FacilityProblem(**{**p.__dict__, "n_plus": 0})
    assert solve_milp(p0).objective <= sol.objective + 1e-6


def test_pipeline_with_heuristic_keeps_redundancy() -> None:
    p = three_sites_and_a_cloud()
    a = solve_milp(p, heuristic=True)
    b = solve_milp(p, heuristic=False)
    assert a.objective == pytest.approx(b.objective, rel=1e-9)
    check_all_domains(p, a)
