"""Assemble the report: figures from the section modules, tables, the summary, one HTML file.

Everything the page needs is inline: plotly.js (from the installed plotly package), the style sheet
and script under `assets/`, and every figure as JSON. The page loads nothing from anywhere.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from microdc.report.comparison import COST_PARTS
from microdc.report.cost import PART_LABELS, cost_bars
from microdc.report.data import RunResult
from microdc.report.energy import carbon_over_time, power_over_time, pue_over_time, pue_vs_outdoor
from microdc.report.faults import fault_timeline, parse_events, parse_spans
from microdc.report.fleet_map import fleet_map
from microdc.report.latency import latency_cdf
from microdc.report.sovereignty import sovereignty_rows, unserved_reasons
from microdc.report.style import Figure, fmt, money, pct
from microdc.report.summary import summarize

MAX_EVENT_ROWS = 200
MAX_REASONS = 8


def _asset(name: str) -> str:
    return resources.files("microdc.report").joinpath("assets", name).read_text(encoding="utf-8")


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, datetime):
        return o.isoformat()
    return str(o)


def _clean(o: Any) -> Any:
    """NaN/inf → null, so the JSON is valid for JSON.parse."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    return o


def figures_json(figures: dict[str, Figure]) -> str:
    """The figures as JSON safe to put inside a <script> element."""
    text = json.dumps(_clean(figures), default=_json_default, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def comparison_rows(result: RunResult) -> list[dict[str, Any]]:
    """Rows of the comparison table: a label and one formatted value per alternative."""
    entries = result.comparison
    cur = entries[0]["currency"] if entries else ""
    rows: list[dict[str, Any]] = []

    def add(label: str, values: list[str], group: bool = False) -> None:
        rows.append({"label": label, "values": values, "group": group})

    add(f"Cost per year ({cur})", [], group=True)
    add("total", [money(e["cost_per_year"], cur) for e in entries])
    for part in COST_PARTS:
        add(PART_LABELS[part], [money(e["cost_breakdown"][part], cur) for e in entries])
    add("Latency over the run (ms)", [], group=True)
    for svc in result.scenario.services:
        for q in ("p50", "p95", "p99"):
            add(f"{svc.id} {q}", [fmt(e["latency"][svc.id][f"{q}_ms"]) for e in entries])
        add(f"{svc.id} SLO violations", [pct(e["latency"][svc.id]["slo_violation_rate"], 2) for e in entries])
    add("all services: SLO violation rate", [pct(e["slo_violation_rate"], 2) for e in entries])
    add("Energy and carbon", [], group=True)
    add("energy (kWh)", [fmt(e["energy_kwh"], 0) for e in entries])
    add("fleet PUE", [fmt(e["pue"], 3) for e in entries])
    add("network transport energy (kWh)", [fmt(e.get("transport_energy_kwh"), 0) for e in entries])
    add("carbon (kg CO₂e)", [fmt(e["carbon_kg"], 1) for e in entries])
    add("Fleet and rules", [], group=True)
    add("sites built", [str(e["sites_built"]) for e in entries])
    add("IT kW built", [fmt(e["it_kw_built"]) for e in entries])
    add("sovereignty violations (plan)", [str(e["sovereignty_violations_planned"]) for e in entries])
    add("sovereignty violations (simulated)", [str(e["sovereignty_violations_simulated"]) for e in entries])
    add("demand unserved (planned)", [pct(e["unserved_planned_fraction"]) for e in entries])
    add("requests unserved (simulated)", [pct(e["unserved_fraction"], 2) for e in entries])
    return rows


def _run_window(ts: Any) -> tuple[Any, Any]:
    """First step and end of the simulated window (last step plus one step), tz-naive UTC, or None."""
    import pandas as pd

    if ts.empty:
        return None, None
    times = pd.DatetimeIndex(pd.unique(ts["time"])).sort_values()
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    step = times[1] - times[0] if len(times) > 1 else pd.Timedelta(hours=1)
    return times[0], times[-1] + step


def build(result: RunResult, tile_url: str | None = None) -> tuple[dict[str, Any], dict[str, Figure]]:
    """Template context and figures (id → figure) for a run; `tile_url`: street tiles under the map."""
    s = result.scenario
    alts = result.alternatives
    ts_frames = [(a.name, a.timeseries) for a in alts]
    lat_frames = [(a.name, a.latency) for a in alts]
    figures: dict[str, Figure] = {"map": fleet_map(s, [a.plan for a in alts], tile_url=tile_url)}
    for k, svc in enumerate(s.services):
        figures[f"latency-{k}"] = latency_cdf(svc, lat_frames)
    figures["power"] = power_over_time(ts_frames)
    figures["pue-time"] = pue_over_time(ts_frames)
    figures["pue-scatter"] = pue_vs_outdoor(ts_frames)
    figures["carbon"] = carbon_over_time(ts_frames)
    figures["cost"] = cost_bars(result.comparison)
    entries = {e["alternative"]: e for e in result.comparison}
    sovereignty = []
    faults = []
    run_start, run_end = _run_window(alts[0].timeseries)
    for i, a in enumerate(alts):
        e = entries[a.name]
        reasons = unserved_reasons(a.plan)
        sovereignty.append(
            {
                "alternative": a.name,
                "rows": sovereignty_rows(s, a.plan, e["sovereignty_violation_details"]),
                "violations": e["sovereignty_violations"],
                "planned": e["sovereignty_violations_planned"],
                "simulated": e["sovereignty_violations_simulated"],
                "details": e["sovereignty_violation_details"][:50],
                "unserved_fraction": e["unserved_planned_fraction"],
                "unserved_pct": pct(e["unserved_planned_fraction"]),
                "reasons": reasons[:MAX_REASONS],
                "more_reasons": max(0, len(reasons) - MAX_REASONS),
            }
        )
        events = parse_events(a.events)
        spans = parse_spans(a.summary)
        fid = f"faults-{i}"
        if events or spans:
            figures[fid] = fault_timeline(
                spans, events, run_end, f"Faults and responses — {a.name}", run_start
            )
        faults.append(
            {
                "alternative": a.name,
                "exposure": e.get("fault_exposure"),
                "figure": fid if events or spans else None,
                "spans": spans,
                "count": len(spans),
                "events": events[:MAX_EVENT_ROWS],
                "more": max(0, len(events) - MAX_EVENT_ROWS),
            }
        )
    context = {
        "scenario": s,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "days": fmt(result.days, 0 if float(result.days).is_integer() else 1),
        "step_minutes": fmt(result.step_minutes, 0),
        "alternatives": [a.name for a in alts],
        "summary": summarize(result.comparison, result.days),
        "comparison": comparison_rows(result),
        "services": [(f"latency-{k}", svc) for k, svc in enumerate(s.services)],
        "sovereignty": sovereignty,
        "faults": faults,
        "plans": [a.plan for a in alts],
        "seconds": {k: fmt(v, 1) for k, v in result.seconds.items()},
        "tile_server": tile_url.split("/{z}")[0] if tile_url else None,
    }
    return context, figures


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("microdc.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_page(template_name: str, context: dict[str, Any], figures: dict[str, Any]) -> str:
    """A report template rendered as one self-contained HTML document: the report's CSS, script and
    plotly.js inlined, the figures as JSON (the single-year and the horizon report)."""
    template = _environment().get_template(template_name)
    return template.render(
        **context,
        css=_asset("report.css"),
        app_js=_asset("report.js"),
        plotly_js=_plotly_js(),
        figures_json=figures_json(figures),
    )


def render_report(result: RunResult, tile_url: str | None = None) -> str:
    """The whole report as one self-contained HTML document (it fetches map tiles only from `tile_url`)."""
    context, figures = build(result, tile_url)
    return render_page("report.html.j2", context, figures)


def write_report(result: RunResult, path: Path, tile_url: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(result, tile_url), encoding="utf-8")
    return path
