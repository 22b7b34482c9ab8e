"""Bad input the planner must refuse with a reason (exit 2), never a traceback, never a plan that
does not serve the demand: solver options out of range, a time limit that finds nothing, a scenario
where nothing can be built, and messages that name scenario things instead of array indices."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import microdc.placement.solve as solve_mod
from microdc.cli.main import app
from microdc.model import load_scenario
from microdc.placement.aggregate import aggregate_customers, expand_solution
from microdc.placement.facility import FacilityProblem, Solution, infeasible_solution, make_solution
from microdc.placement.planner import PlannerOptions, PlanningError, plan

DATA = Path(__file__).parents[1] / "data" / "tiny"

# Two camera groups that are the same in every respect but size: the planner merges them into one
# aggregate before solving (and must still speak of them by their ids).
TWIN_DEMAND = """id,lat,lon,devices,jurisdiction,data_class,service,rate_per_device_rps
cams-a,52.50,13.35,{a},DE,personal,vision,2
cams-b,52.51,13.36,{b},DE,personal,vision,2
sensors-lyon,45.76,4.84,500,FR,public,batch,0.5
"""


def _scenario(tmp_path: Path, a: int = 50, b: int = 100) -> Path:
    dst = tmp_path / "scn"
    shutil.copytree(DATA, dst)
    (dst / "demand.csv").write_text(TWIN_DEMAND.format(a=a, b=b))
    return dst


def _no_plan_within_time(problem: FacilityProblem, **_: object) -> Solution:
    """What solve_milp returns when HiGHS finds no feasible point before its time limit."""
    sol = infeasible_solution(
        problem, method="milp", messages=["no feasible plan found within the time limit"]
    )
    sol.status = "time_limit"
    sol.lower_bound = 0.0
    return sol


def _invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, " ".join(res.output.split())


# --------------------------------------------------------------------------- solver options


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--time-limit", "0"], "--time-limit"),
        (["--time-limit", "-5"], "--time-limit"),
        (["--gap", "2"], "--gap"),
        (["--gap", "1"], "--gap"),
        (["--gap", "-0.1"], "--gap"),
        (["--threads", "0"], "--threads"),
    ],
)
def test_out_of_range_solver_options_are_usage_errors(tmp_path: Path, args: list[str], named: str) -> None:
    out = tmp_path / "plan.json"
    code, text = _invoke("plan", str(DATA), "-o", str(out), "--no-baselines", *args)
    assert code == 2, text
    assert f"error: {named} must" in text
    assert not out.exists()


def test_option_messages_say_what_is_allowed(tmp_path: Path) -> None:
    code, text = _invoke("plan", str(DATA), "-o", str(tmp_path / "p.json"), "--gap", "2", "--threads", "0")
    assert code == 2
    assert "--gap must lie in [0, 1)" in text and "got 2" in text
    assert "--threads must be at least 1, got 0" in text


def test_planner_options_are_checked_for_library_callers_too() -> None:
    with pytest.raises(PlanningError, match=r"--gap must lie in \[0, 1\)"):
        PlannerOptions(mip_rel_gap=2.0)
    with pytest.raises(PlanningError, match="--time-limit must be a positive number"):
        PlannerOptions(time_limit_s=0.0)
    with pytest.raises(PlanningError, match="--threads must be at least 1"):
        PlannerOptions(threads=0)
    PlannerOptions(time_limit_s=0.5, mip_rel_gap=0.0, threads=1)  # the edges that are allowed


# --------------------------------------------------------------------------- no plan within the time limit


def test_expanding_no_solution_stays_no_solution() -> None:
    # Customers 0 and 1 are interchangeable (proportional rows): they are merged before solving.
    p = FacilityProblem.build(
        [5.0, 7.0],
        [10.0, 10.0],
        [1.0, 2.0, 3.0],
        [[1.0, 2.0, 9.0], [2.0, 4.0, 1.0]],
        customer_names=["a", "b", "c"],
    )
    agg = aggregate_customers(p)
    assert agg.reduced
    out = expand_solution(p, agg, _no_plan_within_time(agg.problem))
    assert not np.isfinite(out.objective)  # not a plan that costs 0 and serves nothing
    assert out.status == "time_limit" and out.lower_bound == 0.0
    assert out.x_dense().shape == (2, 3)


def test_time_limit_that_finds_nothing_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_scenario(_scenario(tmp_path))
    monkeypatch.setattr(solve_mod, "solve_milp", _no_plan_within_time)
    with pytest.raises(PlanningError) as e:
        plan(s, PlannerOptions(time_limit_s=0.001))
    assert e.value.reasons == ["no feasible solution found within the 0.001 s time limit; raise --time-limit"]


def test_cli_writes_no_plan_when_the_time_limit_finds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scn = _scenario(tmp_path)
    out = tmp_path / "plan.json"
    monkeypatch.setattr(solve_mod, "solve_milp", _no_plan_within_time)
    code, text = _invoke("plan", str(scn), "-o", str(out), "--time-limit", "0.001")
    assert code == 2, text
    assert "no feasible solution found within the 0.001 s time limit; raise --time-limit" in text
    assert not out.exists()


def test_a_plan_that_serves_nothing_is_never_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The safety net behind the solver: a 'solution' that leaves demand unserved without
    --allow-unserved is refused, whatever the solver says about it."""
    s = load_scenario(_scenario(tmp_path))

    def serves_nothing(problem: FacilityProblem, **_: object) -> Solution:
        n_f, n_c = problem.n_facilities, problem.n_customers
        return make_solution(
            problem,
            problem.fixed_open.copy(),
            np.zeros((n_f, n_c)),
            None,
            np.zeros(n_c),
            lower_bound=0.0,
            status="time_limit",
            method="milp",
        )

    monkeypatch.setattr(solve_mod, "solve_milp", serves_nothing)
    with pytest.raises(PlanningError) as e:
        plan(s, PlannerOptions(time_limit_s=5))
    assert "does not serve 3 demand source(s): 'cams-a', 'cams-b', 'sensors-lyon'" in e.value.reasons[0]


def test_time_limit_without_a_plan_writes_no_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A solver that runs out of time before any feasible plan: exit 2, the limit named, no plan file.
    (The real solver can no longer be made to fail here: it gets at least MIN_SOLVE_S whatever the
    limit, and the class solver proves Melbourne optimal in a fraction of that.)"""

    def out_of_time(problem: FacilityProblem, **_: object) -> Solution:
        return dataclasses.replace(infeasible_solution(problem, method="milp"), status="time_limit")

    monkeypatch.setattr(solve_mod, "solve_facility", out_of_time)
    out = tmp_path / "plan.json"
    code, text = _invoke("plan", "melbourne", "-o", str(out), "--time-limit", "0.001", "--no-baselines")
    assert code == 2, text
    assert "no feasible solution found within the 0.001 s time limit" in text
    assert not out.exists()


# --------------------------------------------------------------------------- nothing can be built


def _powerless(tmp_path: Path) -> Path:
    dst = tmp_path / "powerless"
    shutil.copytree(DATA, dst)
    sites = (dst / "sites.csv").read_text()
    sites = sites.replace("DE,3,30,20000", "DE,3,1.5,20000").replace("DE,1,10,9000", "DE,1,0.5,9000")
    (dst / "sites.csv").write_text(sites.replace("FR,2,30,22000", "FR,2,1,22000"))
    yaml_text = (dst / "scenario.yaml").read_text()
    region = re.search(r"cloud_regions:\n(  - .*\n)+", yaml_text)
    assert region is not None
    (dst / "scenario.yaml").write_text(yaml_text.replace(region.group(0), ""))
    return dst


def test_no_site_can_power_a_module_and_no_cloud(tmp_path: Path) -> None:
    scn = _powerless(tmp_path)
    code, text = _invoke("plan", str(scn), "-o", str(tmp_path / "p.json"), "--no-baselines")
    assert code == 2, text
    assert "no site can power any module and the scenario has no cloud region" in text
    assert "berlin 1.5 kW, paris 1 kW, munich 0.5 kW" in text
    m = re.search(r"the smallest module option, 'cab' with \d+ x 'srv', needs ([\d.]+) kW", text)
    assert m is not None, text
    assert float(m.group(1)) > 1.5  # more than the largest cap: that is why nothing fits
    assert not (tmp_path / "p.json").exists()
    # validate rejects it too, with the same reason
    code, text = _invoke("validate", str(scn), "--no-physics")
    assert code == 2 and "no site can power any module" in text and "sites.grid_power_kw" in text


def test_a_cloud_region_is_enough_when_no_site_has_power(tmp_path: Path) -> None:
    scn = tmp_path / "cloud-only"
    shutil.copytree(_powerless(tmp_path), scn)
    text = (DATA / "scenario.yaml").read_text()
    region = re.search(r"cloud_regions:\n(  - .*\n)+", text)
    assert region is not None
    doc = (scn / "scenario.yaml").read_text().replace("services:", region.group(0) + "services:", 1)
    (scn / "scenario.yaml").write_text(doc)
    (scn / "demand.csv").write_text(
        "id,lat,lon,devices,jurisdiction,data_class,service,rate_per_device_rps\n"
        "sensors-lyon,45.76,4.84,500,FR,public,batch,0.5\n"
    )
    result, _pp, _sol = plan(load_scenario(scn), PlannerOptions(time_limit_s=10))
    assert result.sites == [] and {a.target for a in result.assignments} == {"us-east"}


# --------------------------------------------------------------------------- messages name scenario things


def test_capacity_messages_name_demand_ids_and_resources(tmp_path: Path) -> None:
    # Far more camera load than the one tier-3 site in Germany can hold (personal data may not leave DE).
    s = load_scenario(_scenario(tmp_path, a=50_000, b=100_000))
    with pytest.raises(PlanningError) as e:
        plan(s, PlannerOptions(time_limit_s=10))
    text = "\n".join(e.value.reasons)
    assert re.search(r"cams-a \+ cams-b needs [\d.]+ cores but", text), text
    assert re.search(r"cams-a \+ cams-b needs [\d.]+ memory_gb but", text), text
    assert not re.search(r"\b(customer|resource|facility) \d", text), text


def test_no_server_fits_any_module_and_no_cloud(tmp_path: Path) -> None:
    scn = _powerless(tmp_path)
    text = (scn / "scenario.yaml").read_text()
    (scn / "scenario.yaml").write_text(text.replace("max_it_kw: 6", "max_it_kw: 0.3"))  # < one 400 W server
    code, out = _invoke("plan", str(scn), "-o", str(tmp_path / "p.json"), "--no-baselines")
    assert code == 2, out
    assert "no server type fits into any module" in out and "no cloud region" in out
