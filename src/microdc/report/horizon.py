"""The build-out report of a horizon run: what each alternative builds and spends year by year, a map
per year behind a slider, the net present cost of microdc's plan against build-all-now and myopic
yearly planning, and each period's simulated figures. One self-contained HTML file, like the
single-year report (same style sheet, script, plotly and offline basemap)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from microdc.report.fleet_map import fleet_map_by_period
from microdc.report.horizon_data import HorizonAlternative, HorizonRunResult
from microdc.report.render import render_page
from microdc.report.style import LEGEND, Figure, axis, colour, fmt, layout, money, pct

DASH = {"microdc": "solid", "build-all-now": "dash", "myopic": "dot"}


def year_labels(alt: HorizonAlternative) -> list[str]:
    """'year 1', or 'years 1-2' for a period of several years."""
    out = []
    for p in alt.plan.periods:
        first, last = p.start_year + 1, p.start_year + p.years
        out.append(f"year {first}" if first == last else f"years {first}-{last}")
    return out


def fleet_rows(alt: HorizonAlternative) -> list[dict[str, Any]]:
    """Per period: sites (each with one module), modules by type, servers and cores standing."""
    rows = []
    for p in alt.plan.periods:
        by_module: dict[str, int] = {}
        for b in p.plan.sites:
            by_module[b.module] = by_module.get(b.module, 0) + 1
        rows.append(
            {
                "sites": len(p.plan.sites),
                "modules": by_module,
                "servers": sum(b.servers for b in p.plan.sites),
                "cores": sum(b.cores for b in p.plan.sites),
                "capex": p.capex,
                "opex_per_year": p.opex_per_year,
                "npv": p.npv,
                "bought_modules": sum(x.modules for x in p.purchases),
                "bought_servers": sum(x.servers for x in p.purchases),
            }
        )
    return rows


def bar_and_line_traces(
    result: HorizonRunResult,
    bar: tuple[str, str, str],
    line: tuple[str, str, str],
    line_axis: str | None = None,
) -> list[dict[str, Any]]:
    """Per alternative a bar and a line over the periods, in the alternative's colour. ``bar`` and
    ``line``: (fleet_rows key, trace name suffix, hover text after the x label, "%{y...}" included)."""
    labels = year_labels(result.ours)
    data: list[dict[str, Any]] = []
    for i, alt in enumerate(result.alternatives):
        rows = fleet_rows(alt)
        c = colour(alt.name, i)
        (bkey, bname, bhover), (lkey, lname, lhover) = bar, line
        data.append(
            {
                "type": "bar",
                "name": f"{alt.name}: {bname}",
                "legendgroup": alt.name,
                "x": labels,
                "y": [r[bkey] for r in rows],
                "marker": {"color": c, "opacity": 0.55},
                "hovertemplate": "%{x}: " + bhover + "<extra>" + alt.name + "</extra>",
            }
        )
        trace: dict[str, Any] = {
            "type": "scatter",
            "mode": "lines+markers",
            "name": f"{alt.name}: {lname}",
            "legendgroup": alt.name,
            "x": labels,
            "y": [r[lkey] for r in rows],
            "line": {"color": c, "dash": DASH.get(alt.name, "solid"), "width": 2.5},
            "hovertemplate": "%{x}: " + lhover + "<extra>" + alt.name + "</extra>",
        }
        if line_axis:
            trace["yaxis"] = line_axis
        data.append(trace)
    return data


def timeline_fleet(result: HorizonRunResult) -> Figure:
    """Modules standing per year (bars, by alternative) and servers standing (lines, right axis)."""
    data = bar_and_line_traces(
        result,
        ("sites", "modules (sites)", "%{y} modules"),
        ("servers", "servers", "%{y} servers"),
        line_axis="y2",
    )
    return {
        "data": data,
        "layout": layout(
            "Fleet standing each year — modules (bars) and servers (lines)",
            barmode="group",
            xaxis=axis("period"),
            yaxis=axis("modules (one per site)", rangemode="tozero"),
            yaxis2=axis("servers", overlaying="y", side="right", rangemode="tozero", showgrid=False),
            legend=dict(LEGEND),
        ),
    }


def timeline_cost(result: HorizonRunResult) -> Figure:
    """Capex bought each period (bars) and yearly operating cost (lines), undiscounted."""
    cur = result.scenario.economics.currency
    data = bar_and_line_traces(
        result,
        ("capex", "capex bought", "%{y:,.0f} " + cur + " capex"),
        ("opex_per_year", "opex per year", "%{y:,.0f} " + cur + "/yr opex"),
    )
    return {
        "data": data,
        "layout": layout(
            f"Cost each year ({cur}, undiscounted) — hardware bought (bars) and operating cost (lines)",
            barmode="group",
            xaxis=axis("period"),
            yaxis=axis(cur, rangemode="tozero"),
        ),
    }


def p95_over_years(result: HorizonRunResult, service: str, slo: float | None) -> Figure:
    """Simulated p95 of one service per period, per alternative, with its SLO."""
    labels = year_labels(result.ours)
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": alt.name,
            "x": labels,
            "y": [r.entry["latency"][service]["p95_ms"] for r in alt.periods],
            "line": {"color": colour(alt.name, i), "dash": DASH.get(alt.name, "solid")},
        }
        for i, alt in enumerate(result.alternatives)
    ]
    if slo is not None:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"SLO p95 {slo:g} ms",
                "x": labels,
                "y": [slo] * len(labels),
                "line": {"color": "#c23b3b", "dash": "dash", "width": 1.5},
            }
        )
    return {
        "data": data,
        "layout": layout(
            f"{service}: simulated p95 each year",
            xaxis=axis("period"),
            yaxis=axis("p95 (ms)", rangemode="tozero"),
        ),
    }


def npv_rows(result: HorizonRunResult) -> list[dict[str, str]]:
    cur = result.scenario.economics.currency
    ours = result.ours.plan.npv
    rows = []
    for alt in result.alternatives:
        p = alt.plan
        diff = (p.npv - ours) / ours if ours else None
        rows.append(
            {
                "alternative": alt.name,
                "method": p.method,
                "status": p.status,
                "npv": money(p.npv, cur),
                "vs": "—" if alt is result.ours else ("+" if (diff or 0) >= 0 else "") + pct(diff, 1),
                "bound": money(p.lower_bound, cur) if p.lower_bound is not None else "none (heuristic)",
                "gap": pct(p.gap, 2) if p.gap is not None else "n/a",
            }
        )
    return rows


def period_tables(result: HorizonRunResult) -> list[dict[str, Any]]:
    """Per alternative: one row per period with the fleet, costs and simulated figures (as text)."""
    cur = result.scenario.economics.currency
    services = [v.id for v in result.scenario.services]
    labels = year_labels(result.ours)
    out = []
    for alt in result.alternatives:
        rows = []
        for label, fr, run in zip(labels, fleet_rows(alt), alt.periods, strict=True):
            e = run.entry
            p95 = []
            for svc in services:
                lat = e["latency"][svc]
                slo = lat["slo_p95_ms"]
                bad = slo is not None and lat["p95_ms"] is not None and lat["p95_ms"] > slo
                p95.append({"text": fmt(lat["p95_ms"]), "bad": bad})
            rows.append(
                {
                    "label": label,
                    "sites": fr["sites"],
                    "modules": ", ".join(f"{n}× {m}" for m, n in sorted(fr["modules"].items())) or "—",
                    "servers": fr["servers"],
                    "bought": f"+{fr['bought_modules']} mod, +{fr['bought_servers']} srv",
                    "capex": money(fr["capex"], cur),
                    "opex": money(fr["opex_per_year"], cur),
                    "npv": money(fr["npv"], cur),
                    "p95": p95,
                    "slo": pct(e["slo_violation_rate"], 2),
                    "energy": fmt(e["energy_kwh"], 0),
                    "pue": fmt(e["pue"], 3),
                    "carbon": fmt(e["carbon_kg"], 1),
                    "sovereignty": e["sovereignty_violations"],
                    "unserved": pct(e["unserved_fraction"], 2),
                }
            )
        out.append({"alternative": alt.name, "rows": rows})
    return out


def build_horizon(
    result: HorizonRunResult, tile_url: str | None = None
) -> tuple[dict[str, Any], dict[str, Figure]]:
    """Template context and figures (id → figure) of a horizon run."""
    s = result.scenario
    labels = year_labels(result.ours)
    figures: dict[str, Figure] = {
        "timeline-fleet": timeline_fleet(result),
        "timeline-cost": timeline_cost(result),
        "map": fleet_map_by_period(s, [p.plan for p in result.ours.plan.periods], labels, tile_url=tile_url),
    }
    services = []
    for k, svc in enumerate(s.services):
        figures[f"p95-{k}"] = p95_over_years(result, svc.id, svc.slo.p95_ms)
        services.append((f"p95-{k}", svc))
    ours = result.ours.plan
    context = {
        "scenario": s,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "days": fmt(result.days, 0 if float(result.days).is_integer() else 1),
        "step_minutes": fmt(result.step_minutes, 0),
        "alternatives": [a.name for a in result.alternatives],
        "years": ours.years,
        "step_years": ours.step_years,
        "n_periods": len(ours.periods),
        "discount_rate": pct(ours.discount_rate, 1),
        "npv": npv_rows(result),
        "tables": period_tables(result),
        "service_ids": [v.id for v in s.services],
        "services": services,
        "notes": ours.notes,
        "seconds": {k: fmt(v, 1) for k, v in result.seconds.items()},
        "tile_server": tile_url.split("/{z}")[0] if tile_url else None,
    }
    return context, figures


def render_horizon_report(result: HorizonRunResult, tile_url: str | None = None) -> str:
    context, figures = build_horizon(result, tile_url)
    return render_page("horizon.html.j2", context, figures)


def write_horizon_report(result: HorizonRunResult, path: Path, tile_url: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_horizon_report(result, tile_url), encoding="utf-8")
    return path
