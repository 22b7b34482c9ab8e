"""Faults: file validation, plan mismatches, n+1 survival, sovereignty under any fault schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.sim.twin import assign, built, twin_plan, write_twin
from typer.testing import CliRunner

from microdc.cli.main import app
from microdc.model import Scenario, ScenarioError, load_scenario
from microdc.placement.plan import Plan
from microdc.sim import Fault, FaultKind, FaultSpec, SimConfig, load_faults, simulate
from microdc.sim.fleet import check_plan

T0 = pd.Timestamp("2023-01-01T00:00Z")
BUILT = ["berlin", "hamburg", "paris", "lyon"]


def _faults_file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "faults.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_faults_file_loads(tmp_path: Path) -> None:
    p = _faults_file(
        tmp_path,
        """
faults:
  - {kind: site_outage, site: paris, time: 2023-01-01T02:00:00Z, duration: 2h}
  - {kind: uplink_cut, site: berlin, time: "2023-01-01 06:00", until: "2023-01-01 07:30"}
  - {kind: break_in, site: lyon, time: 2023-01-01T08:00:00+01:00}
random:
  seed: 3
  grid_outage: {mtbf_hours: 100, mttr_hours: 1}
""",
    )
    spec = load_faults(p, BUILT, {"munich", *BUILT})
    assert [f.kind for f in spec.faults] == [FaultKind.SITE_OUTAGE, FaultKind.UPLINK_CUT, FaultKind.BREAK_IN]
    assert spec.faults[0].end == T0 + pd.Timedelta(hours=4)
    assert spec.faults[1].end == T0 + pd.Timedelta(hours=7, minutes=30)
    assert spec.faults[2].start == T0 + pd.Timedelta(hours=7) and spec.faults[2].end is None
    assert spec.faults[0].source == "faults.yaml:3"
    assert spec.random is not None and spec.random.seed == 3


def test_bad_faults_file_names_file_line_and_field(tmp_path: Path) -> None:
    p = _faults_file(
        tmp_path,
        """faults:
  - {kind: site_outage, site: pariss, time: 2023-01-01T02:00:00Z}
  - {kind: meteor, site: paris, time: 2023-01-01T02:00:00Z}
  - {kind: site_outage, site: munich, time: not-a-time, duration: 2h}
  - {kind: grid_outage, site: lyon, time: 2023-01-01T02:00:00Z, duration: soon, colour: red}
""",
    )
    with pytest.raises(ScenarioError) as exc:
        load_faults(p, BUILT, {"munich", *BUILT})
    got = [str(x) for x in exc.value.problems]
    f = str(p)
    assert f"{f}:2 [faults.0.site]: unknown site 'pariss'; built sites: berlin, hamburg, paris, lyon" in got
    assert any(g.startswith(f"{f}:3 [faults.1.kind]: unknown fault kind 'meteor'") for g in got)
    assert (
        f"{f}:4 [faults.2.site]: site 'munich' is in the scenario but not built by the plan; built sites: "
        "berlin, hamburg, paris, lyon" in got
    )
    assert any(g.startswith(f"{f}:4 [faults.2.time]: bad time 'not-a-time'") for g in got)
    assert any(g.startswith(f"{f}:5 [faults.3.duration]: bad duration 'soon'") for g in got)
    assert any(g.startswith(f"{f}:5 [faults.3.colour]: unknown field") for g in got)


def test_mismatched_plan_is_a_clear_error(twin: Scenario) -> None:
    bad = twin_plan().model_copy(
        update={
            "sites": [
                built("berlin"),
                built("atlantis"),
                built("paris").model_copy(update={"module": "rack-9000"}),
            ],
            "assignments": [
                assign("cams-berlin", "berlin"),
                assign("ghosts", "berlin"),
                assign("cams-paris", "lyon"),
                assign("sensors-lyon", "mars-1", kind="cloud"),
            ],
        }
    )
    with pytest.raises(ScenarioError) as exc:
        check_plan(twin, bad, "plan.json")
    got = [str(x) for x in exc.value.problems]
    assert "plan.json [sites.1.site]: unknown site 'atlantis' (not in scenario 'twin')" in got
    assert any(g.startswith("plan.json [sites.2.module]: unknown module 'rack-9000'") for g in got)
    assert "plan.json [assignments.1.demand]: unknown demand source 'ghosts'" in got
    assert "plan.json [assignments.2.target]: site 'lyon' is not built by this plan" in got
    assert "plan.json [assignments.3.target]: unknown cloud region 'mars-1'" in got
    other = twin_plan().model_copy(update={"scenario": "melbourne"})
    with pytest.raises(ScenarioError, match="plan was made for scenario 'melbourne', not 'twin'"):
        check_plan(twin, other)


def test_cli_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    root = write_twin(tmp_path / "twin")
    plan_path = tmp_path / "plan.json"
    twin_plan().model_copy(update={"sites": [built("atlantis")]}).write(plan_path)
    runner = CliRunner()
    r = runner.invoke(
        app, ["simulate", str(root), "--plan", str(plan_path), "-o", str(tmp_path / "o"), "--no-progress"]
    )
    assert r.exit_code == 2, r.output
    assert "unknown site 'atlantis'" in r.output and "Traceback" not in r.output
    twin_plan().write(plan_path)
    faults = _faults_file(tmp_path, "faults:\n  - {kind: flood, site: paris, time: 2023-01-01}\n")
    r = runner.invoke(
        app,
        [
            "simulate",
            str(root),
            "--plan",
            str(plan_path),
            "-o",
            str(tmp_path / "o"),
            "--faults",
            str(faults),
            "--no-progress",
        ],
    )
    assert r.exit_code == 2 and "unknown fault kind 'flood'" in r.output
    r = runner.invoke(
        app,
        [
            "simulate",
            str(root),
            "--plan",
            str(plan_path),
            "-o",
            str(tmp_path / "o"),
            "--step",
            "-5min",
            "--no-progress",
        ],
    )
    assert r.exit_code == 2 and "bad step" in r.output
    r = runner.invoke(
        app,
        [
            "simulate",
            str(root),
            "--plan",
            str(tmp_path / "missing.json"),
            "-o",
            str(tmp_path / "o"),
            "--no-progress",
        ],
    )
    assert r.exit_code == 2 and "cannot read plan" in r.output


def test_cli_runs_and_writes_outputs(tmp_path: Path) -> None:
    root = write_twin(tmp_path / "twin", n_plus=1)
    plan_path = tmp_path / "plan.json"
    twin_plan().write(plan_path)
    faults = _faults_file(
        tmp_path, "faults:\n  - {kind: site_outage, site: paris, time: 2023-01-01T03:00Z, duration: 1h}\n"
    )
    out = tmp_path / "out"
    r = CliRunner().invoke(
        app,
        [
            "simulate",
            str(root),
            "--plan",
            str(plan_path),
            "-o",
            str(out),
            "--days",
            "0.25",
            "--step",
            "10min",
            "--faults",
            str(faults),
            "--seed",
            "2",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 36 and summary["sovereignty_violations"] == 0
    assert summary["faults"][0]["displaced"] == 1 and summary["faults"][0]["re_placed"] == 1
    events = json.loads((out / "events.json").read_text())
    assert events[0]["kind"] == "site_outage" and events[0]["replaced"] == {"cams-paris": "lyon"}
    assert "sovereignty violations" in r.output


@pytest.mark.parametrize("site", BUILT)
def test_n_plus_one_outage_loses_no_demand(twin: Scenario, plan: Plan, site: str) -> None:
    faults = FaultSpec(
        (Fault(FaultKind.SITE_OUTAGE, site, T0 + pd.Timedelta(hours=2), T0 + pd.Timedelta(hours=5), "test"),)
    )
    res = simulate(twin, plan, SimConfig(days=0.25, step_s=600, seed=7), faults=faults)
    assert res.summary["unserved"]["requests"] == 0
    assert res.summary["sovereignty_violations"] == 0
    impact = res.summary["faults"][0]
    assert impact["unserved"] == 0 and impact["re_placed"] == impact["displaced"]
    restored = next(e for e in res.events if e["phase"] == "end")["restored"]
    assert len(restored) == impact["displaced"]  # back home after the repair


def test_break_in_drains_personal_data_to_legal_targets_only(twin: Scenario, plan: Plan) -> None:
    faults = FaultSpec(
        (Fault(FaultKind.BREAK_IN, "paris", T0 + pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=2), "test"),)
    )
    res = simulate(twin, plan, SimConfig(days=0.125, step_s=600, seed=1), faults=faults, keep_frames=True)
    start = res.events[0]
    assert start["displaced"] == ["cams-paris"] and start["replaced"] == {"cams-paris": "lyon"}
    assert res.summary["sovereignty_violations"] == 0 and res.summary["security_violations"] == 0
    ts = res.timeseries
    states = ts[ts["site"] == "paris"].set_index("time")["state"].astype(str)
    assert states.loc[T0 + pd.Timedelta(hours=1)] == "untrusted"


def test_random_faults_are_seeded(twin: Scenario, plan: Plan, tmp_path: Path) -> None:
    p = _faults_file(
        tmp_path,
        "random:\n  site_outage: {mtbf_hours: 5, mttr_hours: 1}\n"
        "  uplink_cut: {mtbf_hours: 5, mttr_hours: 1}\n",
    )
    spec = load_faults(p, BUILT)
    a = simulate(twin, plan, SimConfig(days=0.5, step_s=600, seed=11), faults=spec)
    b = simulate(twin, plan, SimConfig(days=0.5, step_s=600, seed=11), faults=spec)
    c = simulate(twin, plan, SimConfig(days=0.5, step_s=600, seed=12), faults=spec)
    assert a.summary["faults"] == b.summary["faults"] and len(a.summary["faults"]) > 0
    assert a.summary["faults"] != c.summary["faults"]


KINDS = list(FaultKind)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(KINDS), st.sampled_from(BUILT), st.integers(0, 23), st.integers(1, 12)),
        min_size=1,
        max_size=8,
    ),
    st.integers(0, 3),
)
def test_no_sovereignty_violation_under_any_fault_schedule(tmp_path_factory, faults, seed) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("twin")
    s = load_scenario(write_twin(root, n_plus=1, ups_kwh=0.5, outdoor_c=38.0))
    spec = FaultSpec(
        tuple(
            Fault(
                k,
                site,
                T0 + pd.Timedelta(minutes=30 * a),
                T0 + pd.Timedelta(minutes=30 * (a + d)),
                "hypothesis",
            )
            for k, site, a, d in faults
        )
    )
    res = simulate(s, twin_plan(), SimConfig(days=0.5, step_s=900, seed=seed), faults=spec)
    assert res.summary["sovereignty_violations"] == 0
    assert res.summary["security_violations"] == 0
    for ev in res.events:
        for piece, target in ev["replaced"].items():
            origin = "DE" if piece == "cams-berlin" else "FR"
            if piece.startswith("cams"):  # personal: only its own country, tier >= 2, never the US cloud
                assert target in {"DE": {"berlin", "hamburg"}, "FR": {"paris", "lyon"}}[origin]
