"""At most K serving targets per demand source (policies.max_serving_sites): the MILP keeps the limit,
the relaxation-first solve keeps the optimum exact across customer aggregation, and check-plan names a
plan that breaks it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microdc.model import Scenario, load_scenario
from microdc.placement.check import check_plan, rule_of
from microdc.placement.facility import FacilityProblem, Solution, infeasible_solution
from microdc.placement.milp import solve_restricted
from microdc.placement.planner import PlannerOptions, plan
from microdc.placement.solve import solve_facility, targets_per_customer


def _with_limit(s: Scenario, k: int) -> Scenario:
    return s.model_copy(update={"policies": s.policies.model_copy(update={"max_serving_sites": k})})


@pytest.fixture
def big_lyon(tiny_dir: Path) -> Scenario:
    # Lyon's public sensors need more than one cabinet: without a limit they are split over two sites.
    demand = tiny_dir / "demand.csv"
    demand.write_text(
        demand.read_text().replace(
            "sensors-lyon,45.76,4.84,500,FR,public,batch,0.5",
            "sensors-lyon,45.76,4.84,30000,FR,public,batch,0.5",
        )
    )
    return load_scenario(tiny_dir)


def _targets(p) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    out: dict[str, set[str]] = {}
    for a in p.primary():
        out.setdefault(a.demand, set()).add(a.target)
    return out


def test_single_sourcing_plans_one_target_per_source(big_lyon: Scenario) -> None:
    two, _pp, _sol = plan(_with_limit(big_lyon, 2), PlannerOptions(allow_unserved=True))
    assert len(_targets(two)["sensors-lyon"]) == 2 and two.max_serving_sites == 2
    s1 = _with_limit(big_lyon, 1)
    one, _pp, sol = plan(s1, PlannerOptions(allow_unserved=True))
    assert one.status == "optimal" and one.max_serving_sites == 1
    assert all(len(t) == 1 for t in _targets(one).values())
    assert one.objective > two.objective  # single sourcing costs a second cabinet here
    assert check_plan(s1, one, allow_unserved=True) == []
    assert any("split limit 1" in m for m in sol.messages)


def test_check_plan_names_a_split_beyond_the_limit(big_lyon: Scenario) -> None:
    two, _pp, _sol = plan(_with_limit(big_lyon, 2), PlannerOptions(allow_unserved=True))
    s1 = _with_limit(big_lyon, 1)
    report = check_plan(s1, two, allow_unserved=True)
    assert {rule_of(m) for m in report} == {"split", "plan field"}, report
    (msg,) = [m for m in report if rule_of(m) == "split"]
    assert "'sensors-lyon'" in msg and "'berlin'" in msg and "'paris'" in msg and "= 1" in msg
    assert any(m.startswith("plan field max_serving_sites:") for m in report)
    older = two.model_copy(update={"max_serving_sites": None})
    assert {rule_of(m) for m in check_plan(s1, older, allow_unserved=True)} == {"split"}


@st.composite
def problems(draw: st.DrawFn) -> FacilityProblem:
    n_f = draw(st.integers(2, 4))
    n_kinds = draw(st.integers(1, 3))
    copies = draw(st.lists(st.integers(1, 3), min_size=n_kinds, max_size=n_kinds))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    # Kinds of customers; copies of a kind are proportional (scaled), so aggregation merges them.
    base_cost = rng.uniform(1, 20, (n_f, n_kinds))
    base_use = rng.uniform(1, 5, n_kinds)
    allowed_kind = rng.random((n_f, n_kinds)) < 0.8
    allowed_kind[rng.integers(n_f), :] = True
    cols, use = [], []
    for k, n in enumerate(copies):
        for _ in range(n):
            scale = float(rng.choice([1.0, 2.0]))
            cols.append((k, scale))
            use.append(base_use[k] * scale)
    kinds = [k for k, _ in cols]
    scales = np.array([sc for _, sc in cols])
    usage = np.array(use)
    return FacilityProblem.build(
        fixed_cost=rng.uniform(5, 30, n_f),
        capacity=rng.uniform(0.3, 0.9, n_f) * usage.sum(),
        usage=usage,
        assign_cost=base_cost[:, kinds] * scales[None, :],
        allowed=allowed_kind[:, kinds],
        unserved_penalty=60.0 * scales,
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_split_limit_optimum(p: FacilityProblem) -> None:
    kw = {"time_limit_s": 30.0, "mip_rel_gap": 1e-9, "threads": 1}
    free = solve_facility(p, **kw)  # type: ignore[arg-type]
    large = solve_facility(replace(p, max_targets=p.n_facilities), **kw)  # type: ignore[arg-type]
    assert large.objective == pytest.approx(free.objective, rel=1e-6, abs=1e-6)
    one_p = replace(p, max_targets=1)
    one = solve_facility(one_p, **kw)  # type: ignore[arg-type]
    assert targets_per_customer(one.x, tol=1e-6).max() <= 1
    assert one_p.violations(one) == []
    direct = solve_restricted(one_p, **kw)  # type: ignore[arg-type]  # the limited MILP, no aggregation
    assert one.objective == pytest.approx(direct.objective, rel=1e-6, abs=1e-6)
    assert one.objective >= free.objective - 1e-6
    assert one.lower_bound <= one.objective + 1e-6


def test_split_limit_keeps_the_vertex_plan_when_the_limited_milp_finds_nothing(
    big_lyon: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limited MILP may run out of time without a plan (as it did on a 1,000-site city with every
    rent different, where it wrote a plan at 12x the cost): the simplex vertex on the relaxed plan's
    open sites, re-assigned under the limit, is a legal plan already and must not be thrown away."""
    import microdc.placement.solve as solve_mod

    real = solve_mod.solve_restricted

    def out_of_time(problem: FacilityProblem, **kw: object) -> Solution:
        if "facilities" not in kw and "warm_start" not in kw:  # the small re-assignment of split sources
            return real(problem, **kw)  # type: ignore[arg-type]
        return replace(infeasible_solution(problem, method="milp"), status="time_limit")

    monkeypatch.setattr(solve_mod, "solve_restricted", out_of_time)
    s1 = _with_limit(big_lyon, 1)
    one, _pp, _sol = plan(s1, PlannerOptions(allow_unserved=True, mip_rel_gap=0.0))
    assert np.isfinite(one.objective)
    assert all(len(t) == 1 for t in _targets(one).values())
    assert check_plan(s1, one, allow_unserved=True) == []


def test_split_limit_keeps_the_vertex_plan_rather_than_a_huge_limited_milp(
    big_lyon: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the relaxed plan's neighbourhood has more pairs than SPLIT_NEIGHBOURHOOD_MAX_PAIRS (at
    10,000 sites the limited MILP there took 13 GB and 5 minutes), the legal vertex plan is returned
    with the relaxed bound, and no limited MILP on facilities is run."""
    import microdc.placement.solve as solve_mod

    real = solve_mod.solve_restricted
    calls: list[object] = []

    def watched(problem: FacilityProblem, **kw: object) -> Solution:
        if "facilities" in kw:
            calls.append(kw["facilities"])
        return real(problem, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(solve_mod, "solve_restricted", watched)
    monkeypatch.setattr(solve_mod, "SPLIT_FULL_MAX_PAIRS", 0)
    monkeypatch.setattr(solve_mod, "SPLIT_NEIGHBOURHOOD_MAX_PAIRS", 0)
    s1 = _with_limit(big_lyon, 1)
    one, _pp, sol = plan(s1, PlannerOptions(allow_unserved=True, mip_rel_gap=0.0))
    assert np.isfinite(one.objective)
    assert all(len(t) == 1 for t in _targets(one).values())
    assert check_plan(s1, one, allow_unserved=True) == []
    assert calls == []
    assert any("was not run" in m for m in sol.messages)
