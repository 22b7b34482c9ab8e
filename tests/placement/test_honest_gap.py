"""The gap is reported on the cost the planner can change: penalties of demand nobody may legally serve
are a constant, reported apart (plan.unservable_penalty) and left out of the relative gap; check-plan
recomputes both independently."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from microdc.cli.main import app
from microdc.model import load_scenario
from microdc.placement.check import check_plan
from microdc.placement.facility import FacilityProblem
from microdc.placement.milp import solve_milp
from microdc.placement.planner import PlannerOptions, plan, solution_to_plan
from microdc.placement.solve import solve_facility

BERLIN_ONLY = (
    "id,name,lat,lon,jurisdiction,security_tier,grid_power_kw,annual_cost\nberlin,B,52.52,13.40,DE,3,30,1\n"
)


def _partly_unservable(tiny_dir: Path):  # type: ignore[no-untyped-def]
    # Only a German site: French personal data has nowhere legal to go; the rest is servable.
    (tiny_dir / "sites.csv").write_text(BERLIN_ONLY)
    s = load_scenario(tiny_dir)
    p, pp, sol = plan(s, PlannerOptions(allow_unserved=True))
    return s, p, pp, sol


def test_unservable_penalty_is_reported_apart(tiny_dir: Path) -> None:
    s, p, pp, sol = _partly_unservable(tiny_dir)
    paris = [i for i, d in enumerate(s.demand) if d.id == "cams-paris"]
    expected = float(pp.demand.mean_rps[paris].sum() * s.economics.unserved_penalty_per_rps_year)
    assert expected > 0
    assert p.unservable_penalty == pytest.approx(expected)
    assert sol.unservable_part == pytest.approx(expected)
    assert p.costs["unserved_penalty"] == pytest.approx(expected)
    assert p.objective - p.unservable_penalty > 0  # something is servable and costs money
    assert check_plan(s, p, allow_unserved=True) == []


def test_relative_gap_is_on_the_controllable_cost(tiny_dir: Path) -> None:
    s, p, pp, sol = _partly_unservable(tiny_dir)
    controllable = p.objective - p.unservable_penalty
    weaker = dataclasses.replace(sol, lower_bound=sol.objective - 0.01 * controllable)
    q = solution_to_plan(pp, weaker, alternative="microdc", allow_unserved=True)
    assert q.gap == pytest.approx(0.01)
    assert weaker.gap == pytest.approx(0.01)
    on_total = (q.objective - (q.lower_bound or 0.0)) / q.objective
    assert on_total < 0.005  # the penalty is large: the old gap would have looked at least twice as good
    assert check_plan(s, q, allow_unserved=True) == []

    flattering = q.model_copy(update={"gap": on_total})
    report = check_plan(s, flattering, allow_unserved=True)
    assert any(m.startswith("plan field gap:") and "unservable_penalty" in m for m in report), report

    hidden = q.model_copy(update={"unservable_penalty": 0.0})
    report = check_plan(s, hidden, allow_unserved=True)
    assert any(m.startswith("plan field unservable_penalty:") for m in report), report


def test_cli_summary_names_the_unservable_penalty(tiny_dir: Path, tmp_path: Path) -> None:
    (tiny_dir / "sites.csv").write_text(BERLIN_ONLY)
    out = tmp_path / "plan.json"
    res = CliRunner().invoke(
        app, ["plan", str(tiny_dir), "-o", str(out), "--allow-unserved", "--no-baselines"], terminal_width=200
    )
    assert res.exit_code == 0, res.output
    assert "unservable penalty" in res.output and "cost the plan controls" in res.output


def test_solver_drops_unservable_customers_without_changing_the_optimum() -> None:
    rng = np.random.default_rng(3)
    n_f, n_c = 5, 12
    allowed = rng.random((n_f, n_c)) < 0.7
    allowed[:, [2, 7]] = False  # two customers nobody may serve
    allowed[0, :] |= np.arange(n_c) % 5 == 0
    allowed[:, 2] = allowed[:, 7] = False
    p = FacilityProblem.build(
        fixed_cost=rng.uniform(50, 100, n_f),
        capacity=rng.uniform(20, 40, n_f),
        usage=rng.uniform(1, 6, n_c),
        assign_cost=rng.uniform(1, 30, (n_f, n_c)),
        allowed=allowed,
        unserved_penalty=np.full(n_c, 500.0),
    )
    direct = solve_milp(p, time_limit_s=30, mip_rel_gap=1e-9, threads=1)
    split = solve_facility(p, time_limit_s=30, mip_rel_gap=1e-9, threads=1)
    assert split.objective == pytest.approx(direct.objective, rel=1e-7)
    assert split.unservable_part == pytest.approx(1000.0)
    assert split.unserved[[2, 7]].tolist() == [1.0, 1.0]
    assert split.lower_bound <= split.objective + 1e-6
    assert p.violations(split) == []
