"""Random faults per candidate site from failure rates: statistics, independence, the scenario's rules,
and one schedule for every alternative of `microdc run`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microdc.model import ScenarioError, load_scenario
from microdc.model.reliability import DEFAULT_RATES, FailureRate, Reliability
from microdc.placement.plan import Assignment, BuiltSite, Plan
from microdc.report.faults import exposure
from microdc.sim import Fault, FaultKind
from microdc.sim.fault_rates import draw_schedule, site_faults

START = pd.Timestamp("2023-01-01", tz="UTC")


def test_up_and_repair_times_have_the_declared_means() -> None:
    rate = FailureRate(mtbf_hours=100.0, mttr_hours=5.0)
    spans = draw_schedule(rate, 2_000_000.0, np.random.default_rng(1), repair_sigma=1.0)
    repairs = np.array([b - a for a, b in spans])
    starts = np.array([a for a, _ in spans])
    ends = np.array([b for _, b in spans])
    ups = np.diff(np.concatenate([[0.0], ends]))[: len(starts)] - repairs
    ups[0] = starts[0]
    assert repairs.mean() == pytest.approx(5.0, rel=0.03)
    assert ups.mean() == pytest.approx(100.0, rel=0.03)
    assert np.median(repairs) < repairs.mean()  # lognormal: right-skewed, most repairs are quick
    assert all(b > a for a, b in spans)  # faults never overlap themselves


def test_class_overrides_only_what_it_names() -> None:
    rel = Reliability.model_validate(
        {
            "defaults": {"grid_outage": {"mtbf_hours": 1000, "mttr_hours": 1}},
            "classes": {"street": {"break_in": {"mtbf_hours": 500, "mttr_hours": 48}}},
        }
    )
    street = rel.rates_for("street")
    assert street["break_in"].mtbf_hours == 500
    assert street["grid_outage"].mtbf_hours == 1000  # the scenario default
    assert street["site_outage"] == DEFAULT_RATES["site_outage"]  # microdc's default
    assert rel.rates_for(None)["break_in"] == DEFAULT_RATES["break_in"]


def test_schedule_is_seeded_per_site_and_independent_of_other_sites(tiny_dir: Path) -> None:
    s = load_scenario(tiny_dir / "scenario.yaml")
    a = site_faults(s, START, 3650, seed=7)
    assert a == site_faults(s, START, 3650, seed=7)
    assert a != site_faults(s, START, 3650, seed=8)
    assert {f.site for f in a.faults} == {x.id for x in s.sites}  # every candidate site, built or not
    starts = {x.id: [f.start for f in a.faults if f.site == x.id] for x in s.sites}
    assert starts["berlin"] != starts["paris"]  # each site has its own stream
    fewer = s.model_copy(update={"sites": [x for x in s.sites if x.id != "munich"]})
    b = site_faults(fewer, START, 3650, seed=7)
    assert [f for f in a.faults if f.site != "munich"] == list(b.faults)
    kinds = {f.kind for f in a.faults}
    assert kinds == set(FaultKind)  # ten years: every kind happens somewhere


def test_unknown_failure_class_names_the_field(tiny_dir: Path) -> None:
    csv = tiny_dir / "sites.csv"
    lines = csv.read_text().splitlines()
    lines[0] += ",failure_class"
    lines[1] += ",rooftop"
    lines[2] += ","
    lines[3] += ","
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(tiny_dir / "scenario.yaml")
    text = str(err.value)
    assert "failure_class" in text and "rooftop" in text and "reliability.classes" in text
    y = tiny_dir / "scenario.yaml"
    y.write_text(
        y.read_text()
        + "reliability:\n  classes:\n    rooftop: {site_outage: {mtbf_hours: 100, mttr_hours: 2}}\n"
    )
    s = load_scenario(y)
    assert s.sites[0].failure_class == "rooftop"
    per_year = len([f for f in site_faults(s, START, 365, 1).faults if f.site == "berlin"])
    assert per_year > 40  # one site outage every ~100 h


def test_bad_rate_is_reported_with_its_field(tiny_dir: Path) -> None:
    y = tiny_dir / "scenario.yaml"
    y.write_text(
        y.read_text() + "reliability:\n  defaults:\n    uplink_cut: {mtbf_hours: 0, mttr_hours: 2}\n"
    )
    with pytest.raises(ScenarioError) as err:
        load_scenario(y)
    assert "reliability.defaults.uplink_cut.mtbf_hours" in str(err.value)


def _plan(sites: list[str], assign: list[tuple[str, str, float]]) -> Plan:
    return Plan(
        scenario="tiny",
        method="test",
        status="optimal",
        objective=0.0,
        lower_bound=None,
        gap=None,
        seconds=0.0,
        currency="EUR",
        n_plus=0,
        costs={},
        sites=[
            BuiltSite(
                site=x,
                module="cab",
                server="srv",
                servers=1,
                cores=32,
                memory_gb=256,
                it_kw=1,
                annual_pue=1.2,
                fixed_cost=0,
            )
            for x in sites
        ],
        assignments=[
            Assignment(
                demand=d, target=t, kind="site" if t in sites else "cloud", fraction=f, rtt_ms=1, p95_ms=5
            )
            for d, t, f in assign
        ],
    )


def test_exposure_counts_only_faults_at_built_sites_within_the_run(tiny_dir: Path) -> None:
    s = load_scenario(tiny_dir / "scenario.yaml")
    h = pd.Timedelta(hours=1)
    faults = [
        Fault(FaultKind.SITE_OUTAGE, "berlin", START + 2 * h, START + 5 * h, "t"),  # 3 h
        Fault(FaultKind.UPLINK_CUT, "berlin", START + 47 * h, START + 60 * h, "t"),  # 1 h inside
        Fault(FaultKind.GRID_OUTAGE, "paris", START, START + 10 * h, "t"),  # not built
    ]
    plan = _plan(["berlin"], [("cams-berlin", "berlin", 0.5), ("cams-paris", "us-east", 1.0)])
    x = exposure(s, plan, faults, START, START + 48 * h)
    assert x["faults"] == 2 and x["sites_hit"] == 1 and x["sites_built"] == 1
    assert x["fault_hours"] == pytest.approx(4.0)
    assert x["fault_hours_by_kind"] == {"site_outage": 3.0, "uplink_cut": 1.0}
    assert x["demand_affected_rps_hours"] == pytest.approx(4.0 * 0.5 * 100 * 2)  # 100 cams at 2 req/s
    cloud = _plan([], [("cams-berlin", "us-east", 1.0)])
    assert exposure(s, cloud, faults, START, START + 48 * h)["fault_hours"] == 0.0


def test_run_applies_one_schedule_to_every_alternative(tiny_dir: Path, tmp_path: Path) -> None:
    from microdc.run import RunOptions, faults_for, faults_of_run

    s = load_scenario(tiny_dir / "scenario.yaml")
    ours = _plan(["berlin"], [])
    greedy = _plan(["berlin", "paris"], [])
    opts = RunOptions(days=400, seed=3)
    spec = faults_of_run(s, ours, START, opts)
    assert spec == site_faults(s, START, 400, 3)  # not drawn from the plan
    assert spec == faults_of_run(s, greedy, START, opts)
    mine = faults_for(spec, ours).faults
    theirs = faults_for(spec, greedy).faults
    assert mine and set(mine) < set(theirs)
    assert [f for f in theirs if f.site == "berlin"] == list(mine)
    assert faults_of_run(s, ours, START, RunOptions(fault_source="none")).faults == ()
