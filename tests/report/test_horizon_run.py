"""`microdc run` on a horizon: every period of every alternative simulated on that period's scenario and
fleet, and the build-out report (timeline, a map per year behind a slider, NPV comparison)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import report_figures, tiny_horizon_scenario
from microdc.cli.main import app
from microdc.model import load_scenario
from microdc.report.data import CLOUD_PREFIX
from microdc.report.horizon_data import HORIZON_ALTERNATIVES, HorizonRunResult
from microdc.run import RunOptions
from microdc.run_horizon import run_horizon

Run = tuple[HorizonRunResult, Path]


def _figures(report: Path) -> dict[str, Any]:
    return report_figures(report.read_text(encoding="utf-8"))


def _simulated_sites(folder: Path) -> set[str]:
    ts = pd.read_parquet(folder / "timeseries.parquet", columns=["site"])
    return {str(x) for x in ts["site"].unique() if not str(x).startswith(CLOUD_PREFIX)}


def test_every_alternative_and_period_is_simulated(tiny_horizon_run: Run) -> None:
    result, out = tiny_horizon_run
    assert [a.name for a in result.alternatives] == list(HORIZON_ALTERNATIVES)
    for name in ("report.html", "comparison.json", "plan.json"):
        assert (out / name).is_file()
    for alt in result.alternatives:
        assert len(alt.periods) == len(alt.plan.periods) == 2
        for t in (1, 2):
            for name in ("plan.json", "timeseries.parquet", "service_latency.parquet", "summary.json"):
                assert (out / alt.name / f"period-{t}" / name).is_file(), f"{alt.name}/period-{t}/{name}"


def test_each_period_simulates_its_own_fleet_and_demand(tiny_horizon_run: Run) -> None:
    """Period 2 runs period 2's fleet on period 2's demand, not period 1's (the fleets differ here)."""
    result, out = tiny_horizon_run
    ours = result.ours
    fleets = [{b.site: b.servers for b in p.plan.sites} for p in ours.plan.periods]
    assert fleets[0] != fleets[1], "the test needs a fleet that grows"
    for alt in result.alternatives:
        for p in alt.plan.periods:
            folder = out / alt.name / f"period-{p.period}"
            written = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
            assert {b["site"]: b["servers"] for b in written["sites"]} == {
                b.site: b.servers for b in p.plan.sites
            }
            assert _simulated_sites(folder) == {b.site for b in p.plan.sites}
        offered = [sum(v["offered_rps_mean"] for v in r.entry["latency"].values()) for r in alt.periods]
        assert offered[1] == pytest.approx(150 * offered[0], rel=0.05)  # year 2's demand is 150× year 1's


def test_carbon_at_each_years_grid_intensity(tiny_horizon_run: Run) -> None:
    result, out = tiny_horizon_run
    for alt in result.alternatives:
        for r, factor in zip(alt.periods, (1.0, 0.5), strict=True):
            summary = json.loads((out / alt.name / f"period-{r.period}" / "summary.json").read_text())
            assert r.entry["grid_carbon_factor"] == factor
            assert r.entry["carbon_kg"] == pytest.approx(factor * summary["carbon_kg"]["total"], rel=1e-9)


def test_comparison_json_has_the_npvs_the_planner_priced(tiny_horizon_run: Run) -> None:
    result, out = tiny_horizon_run
    doc = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    alts = {a["alternative"]: a for a in doc["alternatives"]}
    assert list(alts) == list(HORIZON_ALTERNATIVES)
    planned = result.ours.plan.alternatives
    assert alts["build-all-now"]["npv"] == pytest.approx(planned["build_all_now"], rel=1e-9)
    assert alts["myopic"]["npv"] == pytest.approx(planned["myopic"], rel=1e-9)
    assert alts["microdc"]["npv"] <= min(a["npv"] for a in alts.values()) + 1e-6
    # build-all-now stands the last year's fleet from year 1
    first, last = alts["build-all-now"]["periods"]
    assert first["servers"] == last["servers"] == alts["microdc"]["periods"][-1]["servers"]
    for a in alts.values():
        for p in a["periods"]:
            assert p["simulated"]["sovereignty_violations"] == 0


def test_report_has_a_map_per_year_and_the_timeline(tiny_horizon_run: Run) -> None:
    result, out = tiny_horizon_run
    report = out / "report.html"
    html = report.read_text(encoding="utf-8")
    figures = _figures(report)
    assert {"timeline-fleet", "timeline-cost", "map"} <= set(figures)
    (slider,) = figures["map"]["layout"]["sliders"]
    steps = slider["steps"]
    assert [s["label"] for s in steps] == ["year 1", "year 2"]  # one map frame per period
    data = figures["map"]["data"]
    coords = {x.id: (x.lon, x.lat) for x in result.scenario.sites}
    for step, p in zip(steps, result.ours.plan.periods, strict=True):
        visible = step["args"][1]
        assert len(visible) == len(data)
        shown = [
            d for d, v in zip(data, visible, strict=True) if v and d.get("name", "").endswith("sites built")
        ]
        (sites,) = shown
        assert set(zip(sites["x"], sites["y"], strict=True)) == {coords[b.site] for b in p.plan.sites}
    for fid in ("timeline-fleet", "timeline-cost"):
        names = {d["name"].split(":")[0] for d in figures[fid]["data"]}
        assert names == set(HORIZON_ALTERNATIVES)
        assert all(d["x"] == ["year 1", "year 2"] for d in figures[fid]["data"])
    servers = next(d for d in figures["timeline-fleet"]["data"] if d["name"] == "microdc: servers")
    assert servers["y"] == [sum(b.servers for b in p.plan.sites) for p in result.ours.plan.periods]
    for text in ("Net present cost", "build-all-now", "myopic", "Map per year", "sovereignty violations"):
        assert text in html
    assert f"{result.ours.plan.npv:,.0f}" in html
    assert not re.search(  # self-contained, as the single-year report
        r"""<(script|link|img|iframe|source)\b[^>]*\b(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I
    )
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", html, re.I)


def test_cli_runs_a_horizon(tmp_path: Path) -> None:
    path = tiny_horizon_scenario(tmp_path)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(path),
            "-o",
            str(out),
            "--days",
            "1",
            "--step",
            "1h",
            "--no-faults",
            "--time-limit",
            "10",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "Net present cost" in res.output and "period 2" in res.output
    assert (out / "report.html").is_file() and (out / "myopic" / "period-2" / "summary.json").is_file()


@pytest.mark.slow
def test_melbourne_growth_run(tmp_path: Path) -> None:
    """The built-in five-year example with a short window and a small time limit."""
    from microdc.examples import resolve_scenario

    s = load_scenario(resolve_scenario("melbourne-growth"))
    result = run_horizon(s, tmp_path, RunOptions(days=0.25, step_s=3600, time_limit_s=8, fault_source="none"))
    assert [a.name for a in result.alternatives] == list(HORIZON_ALTERNATIVES)
    figures = _figures(tmp_path / "report.html")
    assert [st["label"] for st in figures["map"]["layout"]["sliders"][0]["steps"]] == [
        f"year {k}" for k in range(1, 6)
    ]
    assert len(figures["timeline-fleet"]["data"][0]["x"]) == 5
    for alt in result.alternatives:
        for p, r in zip(alt.plan.periods, alt.periods, strict=True):
            assert _simulated_sites(tmp_path / alt.name / f"period-{p.period}") == {
                b.site for b in p.plan.sites
            }
            assert r.entry["sovereignty_violations"] == 0


def test_cli_gives_a_horizon_the_plan_commands_time_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --time-limit a horizon gets 60 s (20 s leaves HiGHS no time after the heuristics);
    --time-limit wins."""
    import microdc.run_horizon as rh

    seen: list[float | None] = []

    def fake(s: object, out: Path, opts: RunOptions, progress: object) -> None:
        seen.append(opts.time_limit_s)
        raise SystemExit(0)

    monkeypatch.setattr(rh, "run_horizon", fake)
    path = tiny_horizon_scenario(tmp_path)
    for extra in ([], ["--time-limit", "7"]):
        CliRunner().invoke(app, ["run", str(path), "-o", str(tmp_path / "out"), *extra])
    assert seen == [rh.HORIZON_TIME_LIMIT_S, 7.0] and rh.HORIZON_TIME_LIMIT_S == 60.0
