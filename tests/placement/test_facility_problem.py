"""FacilityProblem validation: bad input fails at construction with a message that says what is wrong."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from microdc.placement.facility import FacilityProblem, Solution, diagnose_infeasibility


def kwargs(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        fixed_cost=np.array([10.0, 20.0]),
        capacity=np.array([[5.0], [np.inf]]),
        usage=np.array([[1.0], [2.0], [3.0]]),
        assign_cost=np.ones((2, 3)),
        allowed=np.ones((2, 3), bool),
        group=np.array([-1, -1]),
        fixed_open=np.array([False, False]),
        failure_domain=np.array([0, -1]),
    )
    base.update(over)
    return base


def test_valid_problem_and_defaults() -> None:
    p = FacilityProblem(**kwargs())
    assert (p.n_facilities, p.n_customers, p.n_resources) == (2, 3, 1)
    b = FacilityProblem.build([1.0, 2.0], [3.0, 4.0], [1.0, 1.0, 1.0], np.zeros((2, 3)))
    assert b.capacity.shape == (2, 1) and b.usage.shape == (3, 1)
    assert b.allowed.all() and (b.group == -1).all() and not b.fixed_open.any()
    assert b.failure_domain.tolist() == [0, 1]


def test_arrays_are_read_only() -> None:
    p = FacilityProblem(**kwargs())
    with pytest.raises(ValueError):
        p.fixed_cost[0] = 1.0


def test_forbidden_cost_is_ignored() -> None:
    cost = np.ones((2, 3))
    cost[0, 0] = np.inf
    allowed = np.ones((2, 3), bool)
    allowed[0, 0] = False
    p = FacilityProblem(**kwargs(assign_cost=cost, allowed=allowed))
    assert p.assign_cost[0, 0] == 0.0


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"fixed_cost": np.array([[1.0, 2.0]])}, "fixed_cost must be 1-D"),
        ({"fixed_cost": np.array([1.0, -2.0])}, "fixed_cost must be finite and >= 0"),
        ({"capacity": np.ones((3, 1))}, "capacity must have shape"),
        ({"capacity": np.array([[np.nan], [1.0]])}, "capacity must be >= 0"),
        ({"usage": np.ones((3, 2))}, "usage must have shape"),
        ({"usage": -np.ones((3, 1))}, "usage must be finite and >= 0"),
        ({"assign_cost": np.ones((3, 2))}, "assign_cost must have shape"),
        ({"assign_cost": np.full((2, 3), np.nan)}, r"assign_cost\[0, 0\] is not finite"),
        ({"allowed": np.ones((2, 3))}, "allowed must be a boolean array"),
        ({"allowed": np.ones((2, 2), bool)}, "allowed must have shape"),
        ({"group": np.array([-2, 0])}, "group ids must be >= 0"),
        ({"group": np.array([0.5, 1.0])}, "group must be an integer array"),
        ({"fixed_open": np.array([1, 0])}, "fixed_open must be a boolean array"),
        ({"fixed_open": np.array([True, True]), "group": np.array([3, 3])}, "share a group"),
        ({"failure_domain": np.array([0])}, "failure_domain must be an integer array"),
        ({"n_plus": 2}, "n_plus must be 0 or 1"),
        ({"unserved_penalty": np.array([1.0, 2.0])}, "unserved_penalty must have shape"),
        ({"unserved_penalty": np.array([1.0, -2.0, 1.0])}, "unserved_penalty must be finite"),
        ({"facility_names": ("a",)}, "facility_names has 1 entries"),
    ],
)
def test_invalid_input(over: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FacilityProblem(**kwargs(**over))


def test_violations_report_broken_rules() -> None:
    p = FacilityProblem(**kwargs(facility_names=("edge", "cloud"), customer_names=("a", "b", "c")))
    x = np.zeros((2, 3))
    x[0] = 1.0  # edge takes everyone: load 6 > capacity 5
    sol = Solution(
        open=np.array([True, False]),
        x=x,
        z=None,
        unserved=np.zeros(3),
        objective=0.0,
        lower_bound=0.0,
        status="heuristic",
    )
    msgs = p.violations(sol)
    assert any("edge resource 0: load 6" in m for m in msgs)
    x[0, 0], x[1, 0] = 0.5, 0.5  # now a closed facility serves
    assert any("closed facility" in m for m in p.violations(sol))


def test_diagnose_group_and_domain_limits() -> None:
    # Two options at one site (group 0): only the larger counts towards what the site can offer.
    p = FacilityProblem.build(
        [1.0, 1.0],
        [4.0, 5.0],
        [6.0],
        np.ones((2, 1)),
        group=[0, 0],
        customer_names=["dc-load"],
    )
    msgs = diagnose_infeasibility(p)
    assert any("dc-load needs 6" in m and "offer only 5" in m for m in msgs)
    # Redundancy: both allowed facilities in one failure domain leaves no place for the backup.
    q = FacilityProblem.build([1.0, 1.0], [9.0, 9.0], [1.0], np.ones((2, 1)), failure_domain=[3, 3], n_plus=1)
    assert any("backup in another failure domain" in m for m in diagnose_infeasibility(q))
