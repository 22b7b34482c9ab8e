"""The figure builders and the numbers behind them, on small made-up inputs (data in → figure out)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_fakes import fake_plan, fake_run

from microdc.model import Scenario, load_scenario
from microdc.report import RunResult, render_report
from microdc.report.comparison import compare, sovereignty_violations
from microdc.report.cost import cost_bars
from microdc.report.energy import carbon_over_time, fleet_by_time, power_over_time, pue_vs_outdoor
from microdc.report.faults import fault_timeline, parse_events, parse_spans
from microdc.report.fleet_map import bearing, fleet_map, view_box
from microdc.report.latency import latency_cdf
from microdc.report.latency_math import mixture_cdf, mixture_quantiles
from microdc.report.render import figures_json
from microdc.report.summary import summarize
from microdc.run import fault_drill, faults_for

TINY = Path(__file__).parents[1] / "data" / "tiny" / "scenario.yaml"


@pytest.fixture(scope="module")
def tiny() -> Scenario:
    return load_scenario(TINY)


def _steps(rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["p50_ms", "p95_ms", "p99_ms", "served_rps"])


def test_mixture_of_one_step_returns_its_quantiles() -> None:
    df = _steps([(10.0, 30.0, 50.0, 5.0)])
    q = mixture_quantiles(df)
    assert q == pytest.approx([10.0, 30.0, 50.0], rel=1e-6)
    assert mixture_cdf(df, [0.0, 10.0, 30.0, 50.0, 55.0, 1e6]) == pytest.approx(
        [0, 0.5, 0.95, 0.99, 1.0, 1.0]
    )


def test_mixture_weights_by_served_requests() -> None:
    # 90% of the requests fast, 10% slow: the median is the fast step's, the p99 is in the slow one.
    df = _steps([(10, 20, 30, 9.0), (100, 200, 300, 1.0), (1, 2, 3, 0.0)])
    p50, _, p99 = mixture_quantiles(df)
    assert 9 < p50 < 12
    assert p99 > 100
    cdf = mixture_cdf(df, np.geomspace(0.1, 1000, 50))
    assert np.all(np.diff(cdf) >= -1e-12) and cdf[-1] == pytest.approx(1.0)


def test_nothing_served_gives_nan() -> None:
    df = _steps([(10, 20, 30, 0.0)])
    assert all(math.isnan(x) for x in mixture_quantiles(df))


def test_map_view_and_notes(tiny: Scenario) -> None:
    v = view_box(tiny)
    assert v[0] < 45.76 and v[2] > 52.52 and v[1] < 2.30 and v[3] > 13.40
    fig = fleet_map(tiny, [fake_plan(tiny, "microdc"), fake_plan(tiny, "cloud-only", cloud=True)])
    names = [t.get("name") for t in fig["data"]]
    assert "candidate sites" in names and "microdc: sites built" in names
    assert "jurisdiction borders (bbox)" in names  # DE and FR boxes cross the view
    note = fig["layout"]["annotations"][0]["text"]
    assert "us-east" in note and "km" in note and "EU" in note  # the US region is off the map; EU encloses it
    assert fig["layout"]["yaxis"]["scaleanchor"] == "x"
    json.loads(figures_json({"map": fig}))  # plain JSON, no NaN
    assert not any(
        t.get("type", "scatter") in ("scattergeo", "scattermapbox", "scattermap") for t in fig["data"]
    )


def test_bearing() -> None:
    assert bearing(0, 0, 1, 0) == "N"
    assert bearing(0, 0, 0, 1) == "E"
    assert bearing(-37.8, 145.0, -33.9, 151.2) == "NE"


def test_latency_cdf_has_one_curve_per_alternative_and_slo_line(tiny: Scenario) -> None:
    runs = [
        fake_run(tiny, fake_plan(tiny, "microdc")),
        fake_run(tiny, fake_plan(tiny, "cloud-only", cloud=True), slow=6),
    ]
    fig = latency_cdf(tiny.service("vision"), [(r.name, r.latency) for r in runs])
    assert sorted(t["name"] for t in fig["data"]) == ["cloud-only", "microdc"]
    slo = tiny.service("vision").slo.p95_ms
    assert any(sh["x0"] == slo for sh in fig["layout"]["shapes"])
    assert fig["layout"]["xaxis"]["type"] == "log"


def test_energy_figures(tiny: Scenario) -> None:
    run = fake_run(tiny, fake_plan(tiny, "microdc"), days=1)
    g = fleet_by_time(run.timeseries)
    assert len(g) == 24 and (g["pue"] > 1).all()
    frames = [(run.name, run.timeseries)]
    assert len(power_over_time(frames)["data"]) == 2  # IT and cooling
    assert pue_vs_outdoor(frames)["data"][0]["mode"] == "markers"
    carbon = carbon_over_time(frames)
    assert carbon["data"][-1]["yaxis"] == "y2"  # grid intensity on the second axis


def test_comparison_cost_and_summary(tiny: Scenario) -> None:
    ours = fake_run(tiny, fake_plan(tiny, "microdc"))
    cloud = fake_run(tiny, fake_plan(tiny, "cloud-only", cloud=True), slow=6)
    entries = [compare(tiny, ours), compare(tiny, cloud)]
    assert entries[0]["cost_per_year"] == pytest.approx(sum(entries[0]["cost_breakdown"].values()))
    assert entries[1]["cost_breakdown"]["egress"] > 0 and entries[1]["cost_breakdown"]["capex"] == 0
    assert entries[1]["unserved_planned_fraction"] == pytest.approx(360 / 610)
    bars = cost_bars(entries)
    assert [t["name"] for t in bars["data"]][:2] == ["capex (annualized)", "energy"]
    assert "unserved" in bars["layout"]["annotations"][1]["text"]
    lines = {line.topic: line.text for line in summarize(entries, 2)}
    assert {"Plan", "Latency", "Energy and carbon", "Cost", "Sovereignty"} <= set(lines)
    assert "cloud-only cannot legally serve 59.0% of the demand" in lines["Sovereignty"]
    html = render_report(RunResult(tiny, [ours, cloud], entries, 2, 60))
    assert "moved 3 services" not in html  # made-up events of another schema are not invented into the table
    assert '<section id="faults"' in html


def test_sovereignty_violation_is_counted(tiny: Scenario) -> None:
    plan = fake_plan(tiny, "bad", cloud=True)
    illegal = plan.assignments[0].model_copy(update={"demand": "cams-berlin"})
    found = sovereignty_violations(tiny, [illegal])
    assert found and found[0]["origin"] == "DE" and found[0]["target_jurisdiction"] == "US"


def test_faults_from_simulator_outputs() -> None:
    summary = {
        "faults": [
            {
                "kind": "site_outage",
                "site": "a",
                "start": "2023-01-01T06:00:00+00:00",
                "end": "2023-01-01T08:00:00+00:00",
                "displaced": 2,
                "re_placed": 1,
                "degraded": 0,
                "unserved": 1,
                "unserved_requests_while_active": 10.0,
            }
        ]
    }
    events = [
        {
            "time": "2023-01-01T06:00:00+00:00",
            "kind": "site_outage",
            "phase": "start",
            "site": "a",
            "displaced": ["x", "y"],
            "replaced": {"x": "b"},
            "degraded": {},
            "unserved": {"y": "no room"},
            "restored": [],
        },
        {
            "time": "2023-01-01T08:00:00+00:00",
            "kind": "site_outage",
            "phase": "end",
            "site": "a",
            "displaced": [],
            "replaced": {},
            "degraded": {},
            "unserved": {},
            "restored": ["x", "y"],
        },
    ]
    spans = parse_spans(summary)
    evs = parse_events(events)
    assert spans[0].re_placed == 1 and spans[0].end == pd.Timestamp("2023-01-01T08:00:00")
    assert [e.outcome for e in evs] == ["unserved", "restored"]
    assert "1 re-placed (→b)" in evs[0].detail
    fig = fault_timeline(spans, evs, None)
    assert {t["name"] for t in fig["data"]} == {"site outage", "event: unserved", "event: restored"}


def test_fault_drill_hits_the_largest_sites(tiny: Scenario) -> None:
    plan = fake_plan(tiny, "microdc")
    start = pd.Timestamp("2023-01-01", tz="UTC")
    spec = fault_drill(plan, start, 4)
    assert [f.kind.value for f in spec.faults] == ["site_outage", "cooling_failure", "uplink_cut"]
    assert spec.faults[0].start == start + pd.Timedelta(days=1)
    assert all(f.end is not None and f.end > f.start for f in spec.faults)
    cloud = fake_plan(tiny, "cloud-only", cloud=True)
    assert faults_for(spec, cloud).faults == ()
    assert fault_drill(cloud, start, 4).faults == ()


def test_network_transport_energy_is_shown_for_every_alternative(tiny: Scenario) -> None:
    """Carrying traffic costs energy too: the twin's energy_kwh.transport reaches comparison.json, the
    table and the summary line for each alternative (docs/fidelity.md)."""
    ours = fake_run(tiny, fake_plan(tiny, "microdc"))
    cloud = fake_run(tiny, fake_plan(tiny, "cloud-only", cloud=True))
    ours.summary.setdefault("energy_kwh", {})["transport"] = 1234.0
    cloud.summary.setdefault("energy_kwh", {})["transport"] = 5678.0
    entries = [compare(tiny, ours), compare(tiny, cloud)]
    assert [e["transport_energy_kwh"] for e in entries] == [1234.0, 5678.0]
    lines = {line.topic: line.text for line in summarize(entries, 2)}
    assert "1,234 kWh of network energy against 5,678 kWh" in lines["Energy and carbon"]
    html = render_report(RunResult(tiny, [ours, cloud], entries, 2, 60))
    assert "network transport energy (kWh)" in html and "5,678" in html
