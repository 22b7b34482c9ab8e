"""DIR/sweep.html: one self-contained page (plotly.js inlined, no network) answering three questions.

- Which parameter matters most? A tornado chart per measure (annual cost, SLO violations): for each
  parameter, the mean over the rest of the sweep at its lowest and at its highest value.
- How do two parameters interact? A heat map of the mean for each pair of the first parameters.
- How much spare capacity buys how much availability? Availability (share of requests within SLO)
  against spare capacity, one point per sweep point, with a 95 % confidence band over the replicas.

Pure functions from the sweep DataFrame to plotly figure dicts; `write_report` assembles the page.
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microdc.report.render import figures_json
from microdc.report.style import Figure, axis, colour, layout
from microdc.sweep.params import Param

OURS = "microdc"
MEASURES = {
    "cost_per_year.total": "annual cost",
    "slo_violation_rate": "SLO violation rate",
    "availability": "availability (requests within SLO)",
}
Z95 = 1.959963984540054


def _param_cols(params: list[Param]) -> list[str]:
    return [f"param.{p.path}" for p in params]


def _ok(df: pd.DataFrame, alternative: str | None = OURS) -> pd.DataFrame:
    ok = df[df["status"] == "ok"]
    return ok[ok["alternative"] == alternative] if alternative else ok


def _order(values: pd.Series) -> list[Any]:
    uniq = list(dict.fromkeys(values.tolist()))
    try:
        return sorted(uniq)
    except TypeError:
        return uniq


def tornado(df: pd.DataFrame, params: list[Param], measure: str, label: str) -> Figure:
    """For each parameter: mean `measure` of microdc's plan at its lowest and highest value."""
    ok = _ok(df)
    base = float(ok[measure].mean()) if len(ok) else math.nan
    rows = []
    for p, col in zip(params, _param_cols(params), strict=True):
        levels = _order(ok[col]) if col in ok else []
        if len(levels) < 2:
            continue
        lo = float(ok.loc[ok[col] == levels[0], measure].mean())
        hi = float(ok.loc[ok[col] == levels[-1], measure].mean())
        rows.append((p.path, levels[0], levels[-1], lo, hi))
    rows.sort(key=lambda r: abs(r[4] - r[3]) if math.isfinite(r[4] - r[3]) else -1)
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": "at the lowest value",
            "y": [r[0] for r in rows],
            "x": [r[3] - base for r in rows],
            "base": base,
            "text": [f"{r[0]}={r[1]}: {r[3]:,.4g}" for r in rows],
            "hoverinfo": "text",
            "marker": {"color": "#5470c6"},
        },
        {
            "type": "bar",
            "orientation": "h",
            "name": "at the highest value",
            "y": [r[0] for r in rows],
            "x": [r[4] - base for r in rows],
            "base": base,
            "text": [f"{r[0]}={r[2]}: {r[4]:,.4g}" for r in rows],
            "hoverinfo": "text",
            "marker": {"color": "#c23b3b"},
        },
    ]
    return {
        "data": data,
        "layout": layout(
            f"Sensitivity of {label} (microdc's plan; mean {base:,.4g})",
            barmode="overlay",
            xaxis=axis(label),
            yaxis=axis("", automargin=True),
            height=max(260, 120 + 48 * len(rows)),
        ),
    }


def heatmap(df: pd.DataFrame, a: Param, b: Param, measure: str, label: str) -> Figure:
    """Mean `measure` of microdc's plan for each pair of values of two parameters."""
    ok = _ok(df)
    ca, cb = f"param.{a.path}", f"param.{b.path}"
    xs, ys = _order(ok[ca]), _order(ok[cb])
    means = ok.groupby([cb, ca])[measure].mean()
    z = [[_finite(means.get((y, x), math.nan)) for x in xs] for y in ys]
    return {
        "data": [
            {
                "type": "heatmap",
                "x": [str(x) for x in xs],
                "y": [str(y) for y in ys],
                "z": z,
                "colorscale": "Viridis",
                "colorbar": {"title": {"text": label}},
                "hovertemplate": f"{a.path}=%{{x}}<br>{b.path}=%{{y}}<br>{label}=%{{z:,.4g}}<extra></extra>",
            }
        ],
        "layout": layout(
            f"{label}: {a.path} × {b.path} (microdc's plan)",
            xaxis=axis(a.path, type="category"),
            yaxis=axis(b.path, type="category"),
            height=420,
        ),
    }


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def availability_bands(df: pd.DataFrame) -> Figure:
    """Availability against spare capacity per alternative: the mean over the runs at each level of spare
    capacity (replicas, and points whose plans have the same headroom), with a 95 % band."""
    ok = _ok(df, None)
    data: list[dict[str, Any]] = []
    for i, alt in enumerate(dict.fromkeys(ok["alternative"])):
        sub = ok[(ok["alternative"] == alt) & np.isfinite(ok["spare_capacity"].astype(float))]
        if sub.empty:
            continue
        # one level per distinct spare capacity (points whose plans have the same headroom pool together)
        sub = sub.assign(level=sub["spare_capacity"].astype(float).map(lambda v: float(f"{v:.3g}")))
        g = sub.groupby("level").agg(
            x=("spare_capacity", "mean"),
            y=("availability", "mean"),
            sd=("availability", "std"),
            n=("availability", "count"),
        )
        g = g.sort_values("x")
        half = (Z95 * g["sd"].fillna(0.0) / np.sqrt(g["n"].clip(lower=1))).to_numpy()
        x = g["x"].tolist()
        y = g["y"].to_numpy()
        col = colour(str(alt), i)
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": x + x[::-1],
                "y": list(np.minimum(y + half, 1.0)) + list(np.maximum(y - half, 0.0))[::-1],
                "fill": "toself",
                "fillcolor": col,
                "opacity": 0.2,
                "line": {"width": 0},
                "name": f"{alt}: 95 % band",
                "hoverinfo": "skip",
                "showlegend": False,
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": x,
                "y": y.tolist(),
                "name": str(alt),
                "line": {"color": col},
                "text": [f"{int(n)} run(s)" for n in g["n"]],
            }
        )
    return {
        "data": data,
        "layout": layout(
            "Availability against spare capacity (mean over replicas, 95 % confidence band)",
            xaxis=axis("spare capacity (installed MDC cores / mean CPU need − 1)", tickformat=".0%"),
            yaxis=axis("requests within SLO", tickformat=".2%"),
        ),
    }


def summary_table(df: pd.DataFrame, params: list[Param]) -> str:
    """Mean and 95 % interval of the headline measures per alternative."""
    ok = _ok(df, None)
    cols = [
        "cost_per_year.total",
        "slo_violation_rate",
        "availability",
        "unserved_fraction",
        "carbon_kg",
        "sovereignty_violations",
        "fault_hours",
    ]
    head = "".join(f"<th class='num'>{html.escape(c)}</th>" for c in cols)
    body = []
    for alt in dict.fromkeys(ok["alternative"]):
        sub = ok[ok["alternative"] == alt]
        cells = []
        for c in cols:
            v = sub[c].astype(float)
            m, sd, n = v.mean(), v.std(), v.count()
            half = Z95 * sd / math.sqrt(n) if n > 1 and math.isfinite(sd) else 0.0
            cells.append(f"<td class='num'>{m:,.4g} ± {half:,.2g}</td>")
        body.append(f"<tr><td>{html.escape(str(alt))}</td>{''.join(cells)}</tr>")
    return f"<table><thead><tr><th>alternative</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def failures_table(df: pd.DataFrame, params: list[Param]) -> str:
    bad = df[df["status"] != "ok"]
    if bad.empty:
        return "<p>No run failed.</p>"
    rows = []
    for _, r in bad.head(50).iterrows():
        vals = ", ".join(f"{p.path}={r[f'param.{p.path}']}" for p in params)
        err = str(r.get("error") or "").splitlines()[0] if r.get("error") else ""
        rows.append(
            f"<tr><td>{int(r['point'])}</td><td>{int(r['replica'])}</td><td>{html.escape(vals)}</td>"
            f"<td>{html.escape(err)}</td></tr>"
        )
    more = f"<p>… and {len(bad) - 50} more in sweep.parquet</p>" if len(bad) > 50 else ""
    return (
        "<table><thead><tr><th>point</th><th>replica</th><th>parameters</th><th>error</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{more}"
    )


def build_figures(df: pd.DataFrame, params: list[Param]) -> dict[str, Figure]:
    figs: dict[str, Figure] = {}
    if _ok(df).empty:
        return figs
    for key in ("cost_per_year.total", "slo_violation_rate"):
        figs[f"tornado-{key}"] = tornado(df, params, key, MEASURES[key])
    multi = [p for p in params if len(p.values) > 1]
    for i in range(min(len(multi), 3)):
        for j in range(i + 1, min(len(multi), 3)):
            for key in ("cost_per_year.total", "availability"):
                figs[f"heat-{i}-{j}-{key}"] = heatmap(df, multi[i], multi[j], key, MEASURES[key])
    figs["availability"] = availability_bands(df)
    return figs


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>microdc sweep — {title}</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;
  padding:1rem;color:#222}}
table{{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}}
td,th{{border-bottom:1px solid #ddd;padding:.25rem .5rem;text-align:left}}
.num{{text-align:right;font-variant-numeric:tabular-nums}} .figure{{min-height:260px}} .note{{color:#555}}
</style>
<script>{plotly}</script></head><body>
<h1>Sweep: {title}</h1>
<p class="note">{meta}</p>
<h2>Headline (every point and replica; mean ± 95 % interval)</h2>{summary}
<h2>Sensitivity</h2>
<p class="note">Each bar: the mean over every other parameter value and replica, at a parameter's
lowest (blue) and highest (red) value, relative to the sweep's mean. Longest bar first from the top.</p>
{tornado}
<h2>Two parameters at once</h2>{heat}
<h2>Availability against spare capacity</h2>
<p class="note">Availability is the share of requests served within their SLO; spare capacity is the
installed micro-data-center cores over the CPU the plan's MDC-served demand needs at its mean rate, minus
one. The band is a 95 % normal interval of the mean over replicas (faults drawn per site from failure
rates, demand noise).</p>
{avail}
<h2>Failed runs</h2>{failures}
<script id="figures" type="application/json">{figures}</script>
<script>
const F = JSON.parse(document.getElementById('figures').textContent);
for (const el of document.querySelectorAll('[data-figure]')) {{
  const f = F[el.dataset.figure];
  if (f) Plotly.newPlot(el, f.data, f.layout, {{responsive: true, displaylogo: false}});
}}
</script></body></html>
"""


def _divs(keys: list[str]) -> str:
    return "".join(f'<div class="figure" data-figure="{html.escape(k)}"></div>' for k in keys)


def render(df: pd.DataFrame, params: list[Param], meta: dict[str, Any], currency: str = "") -> str:
    from microdc.report.render import _plotly_js

    figs = build_figures(df, params)
    vary = "; ".join(f"{p.path} ∈ {{{', '.join(map(str, p.values))}}}" for p in params)
    info = (
        f"{meta.get('points')} point(s) × {meta.get('replicas')} replica(s) × alternatives; faults: "
        f"{meta.get('faults')}; master seed {meta.get('seed')}; {meta.get('days')} simulated day(s) per run; "
        f"costs in {currency}/year. Varied: {vary}. Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}."
    )
    heat = [k for k in figs if k.startswith("heat-")]
    return PAGE.format(
        title=html.escape(str(meta.get("scenario", ""))),
        plotly=_plotly_js(),
        meta=html.escape(info),
        summary=summary_table(df, params) if not _ok(df, None).empty else "<p>No run succeeded.</p>",
        tornado=_divs([k for k in figs if k.startswith("tornado-")]),
        heat=_divs(heat) if heat else "<p class='note'>Vary two or more parameters for heat maps.</p>",
        avail=_divs(["availability"] if "availability" in figs else []),
        failures=failures_table(df, params),
        figures=figures_json(figs).replace("</", "<\\/"),
    )


def write_report(
    df: pd.DataFrame, params: list[Param], meta: dict[str, Any], path: Path, currency: str = ""
) -> Path:
    path.write_text(render(df, params, meta, currency), encoding="utf-8")
    return path


__all__ = ["availability_bands", "build_figures", "heatmap", "render", "tornado", "write_report"]
