"""The report of a real run on the tiny scenario: sections, numbers, and nothing fetched from the network."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import report_figures
from microdc.report import load_run, render_report
from microdc.report.data import RunResult
from microdc.report.style import fmt, money, pct

SECTIONS = ("summary", "comparison", "map", "latency", "energy", "cost", "sovereignty", "faults", "method")


def test_files_written(tiny_run: tuple[RunResult, Path]) -> None:
    result, out = tiny_run
    for name in ("report.html", "comparison.json", "plan.json"):
        assert (out / name).is_file(), name
    for alt in result.alternatives:
        for name in (
            "plan.json",
            "timeseries.parquet",
            "service_latency.parquet",
            "events.json",
            "summary.json",
        ):
            assert (out / alt.name / name).is_file(), f"{alt.name}/{name}"
    assert [a.name for a in result.alternatives] == ["microdc", "cloud-only", "nearest", "greedy"]


def test_sections_present(tiny_run: tuple[RunResult, Path]) -> None:
    html = (tiny_run[1] / "report.html").read_text(encoding="utf-8")
    for sid in SECTIONS:
        assert f'<section id="{sid}"' in html, sid
    figures = report_figures(html)
    assert {"map", "power", "pue-time", "pue-scatter", "carbon", "cost", "latency-0", "latency-1"} <= set(
        figures
    )
    for fid in figures:
        assert f'data-figure="{fid}"' in html
    assert "faults-0" in figures  # the fault drill hit microdc's sites


def test_numbers_from_comparison_appear(tiny_run: tuple[RunResult, Path]) -> None:
    out = tiny_run[1]
    html = (out / "report.html").read_text(encoding="utf-8")
    doc = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert [e["alternative"] for e in doc["alternatives"]] == ["microdc", "cloud-only", "nearest", "greedy"]
    for e in doc["alternatives"]:
        cur = e["currency"]
        assert money(e["cost_per_year"], cur) in html
        for part, value in e["cost_breakdown"].items():
            assert money(value, cur) in html, part
        assert fmt(e["energy_kwh"], 0) in html
        assert fmt(e["carbon_kg"], 1) in html
        assert fmt(e["pue"], 3) in html
        assert pct(e["slo_violation_rate"], 2) in html
        for svc, lat in e["latency"].items():
            for q in ("p50_ms", "p95_ms", "p99_ms"):
                assert fmt(lat[q]) in html, (e["alternative"], svc, q)


def test_summary_states_the_computed_changes(tiny_run: tuple[RunResult, Path]) -> None:
    result, out = tiny_run
    html = (out / "report.html").read_text(encoding="utf-8")
    ours = result.comparison[0]
    ref = next(e for e in result.comparison if e["alternative"] == "cloud-only")
    assert f"microdc builds {ours['sites_built']} micro data center(s)" in html
    assert money(ours["cost_per_year"], ours["currency"]) in html
    change = (ours["cost_per_year"] - ref["cost_per_year"]) / ref["cost_per_year"]
    assert f"{100 * abs(change):.0f}% {'less' if change < 0 else 'more'} than cloud-only" in html


def test_sovereignty(tiny_run: tuple[RunResult, Path]) -> None:
    result, out = tiny_run
    html = (out / "report.html").read_text(encoding="utf-8")
    entries = {e["alternative"]: e for e in result.comparison}
    assert entries["microdc"]["sovereignty_violations"] == 0
    assert '<span class="good">0 sovereignty violations</span>' in html
    # Personal data from DE/FR may not go to the US region: cloud-only says so instead of breaking the rule.
    cloud = entries["cloud-only"]
    assert cloud["unserved_planned_fraction"] > 0
    assert cloud["sovereignty_violations"] == 0
    assert f"cloud-only cannot legally serve {pct(cloud['unserved_planned_fraction'])} of the demand" in html
    assert "would break the sovereignty rule" in html


def test_self_contained(tiny_run: tuple[RunResult, Path]) -> None:
    html = (tiny_run[1] / "report.html").read_text(encoding="utf-8")
    assert not re.search(
        r"""<(script|link|img|iframe|source)\b[^>]*\b(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I
    )
    assert not re.search(r"<link\b", html, re.I)
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", html, re.I)
    assert not re.search(r"@import\s+url", html, re.I)
    assert html.count("Plotly.newPlot") == 1  # our bootstrap; plotly.js itself is inline once
    assert html.count("plotly.js v") <= 2


def test_reload_and_render_again(tiny_run: tuple[RunResult, Path]) -> None:
    result, out = tiny_run
    again = load_run(out, result.scenario)
    assert [a.name for a in again.alternatives] == [a.name for a in result.alternatives]
    html = render_report(again)
    assert '<section id="faults"' in html
    assert money(result.comparison[0]["cost_per_year"], result.comparison[0]["currency"]) in html
