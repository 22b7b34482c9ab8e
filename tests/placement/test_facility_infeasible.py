"""Infeasible problems are reported as such, with reasons the planner can show; unserved demand is priced."""

from __future__ import annotations

import numpy as np
import pytest

from microdc.placement.facility import FacilityProblem, diagnose_infeasibility
from microdc.placement.milp import solve_milp


def base(**kw: object) -> FacilityProblem:
    allowed = np.array([[True, True, False], [True, True, False]])
    args: dict[str, object] = dict(
        fixed_cost=[10.0, 12.0],
        capacity=[10.0, 10.0],
        usage=[3.0, 4.0, 2.0],
        assign_cost=np.ones((2, 3)),
        allowed=allowed,
        facility_names=["melbourne-1", "geelong-1"],
        customer_names=["cbd", "docklands", "sovereign-db"],
    )
    args.update(kw)
    return FacilityProblem.build(**args)  # type: ignore[arg-type]


def test_customer_without_allowed_facility() -> None:
    p = base()
    msgs = diagnose_infeasibility(p)
    assert msgs == ["sovereign-db has no allowed facility"]
    sol = solve_milp(p)
    assert sol.status == "infeasible"
    assert not np.isfinite(sol.objective)
    assert any("sovereign-db" in m for m in sol.messages)


def test_capacity_shortfall_is_named() -> None:
    p = base(allowed=np.ones((2, 3), bool), usage=[9.0, 9.0, 9.0])
    msgs = diagnose_infeasibility(p)
    assert any("total demand for resource 0 is 27" in m and "offer only 20" in m for m in msgs)
    assert solve_milp(p).status == "infeasible"
    # A single customer bigger than everything it may use.
    q = base(allowed=np.ones((2, 3), bool), usage=[1.0, 1.0, 25.0])
    assert any("sovereign-db needs 25" in m for m in diagnose_infeasibility(q))


def test_infeasible_without_simple_cause_still_reported() -> None:
    # Each customer fits somewhere and capacity suffices overall, but the two big customers may only
    # use facility 0 and together exceed it: only the solver can tell.
    allowed = np.array([[True, True, True], [False, False, True]])
    p = base(allowed=allowed, usage=[6.0, 6.0, 1.0])
    assert diagnose_infeasibility(p) == []
    sol = solve_milp(p)
    assert sol.status == "infeasible"
    assert sol.messages  # "HiGHS proved the problem infeasible ..."
    assert solve_milp(p, heuristic=True).status == "infeasible"


def test_unserved_penalty_prices_what_cannot_be_served() -> None:
    p = base(unserved_penalty=[100.0, 100.0, 7.0])
    assert diagnose_infeasibility(p) == []
    sol = solve_milp(p)
    assert sol.status == "optimal"
    assert sol.unserved[2] == pytest.approx(1.0)
    assert sol.unserved[:2] == pytest.approx([0.0, 0.0])
    assert sol.unserved_part == pytest.approx(7.0)
    assert sol.objective == pytest.approx(sol.fixed_part + sol.assignment_part + 7.0)
    assert p.violations(sol) == []


def test_unserved_when_cheaper_than_building() -> None:
    # Opening a facility costs more than the penalty for leaving its customer unserved.
    p = FacilityProblem.build([1000.0], [10.0], [1.0], [[1.0]], unserved_penalty=[50.0])
    sol = solve_milp(p)
    assert (
        not sol.open.any() and sol.unserved[0] == pytest.approx(1.0) and sol.objective == pytest.approx(50.0)
    )
    # Partial service when capacity is short: 4 of 10 units fit.
    q = FacilityProblem.build([0.0], [4.0], [10.0], [[10.0]], unserved_penalty=[100.0])
    sol = solve_milp(q)
    assert sol.unserved[0] == pytest.approx(0.6)
    assert sol.objective == pytest.approx(0.4 * 10.0 + 0.6 * 100.0)
