"""Latency section: per service, the run's response-time CDF of each alternative against the SLO."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from microdc.model.components import Service
from microdc.report.latency_math import grid_ms, mixture_cdf
from microdc.report.style import LEGEND, Figure, axis, colour, layout


def latency_cdf(service: Service, frames: Sequence[tuple[str, pd.DataFrame]]) -> Figure:
    """CDF of response time for one service; `frames` are (alternative, service_latency rows)."""
    slo = service.slo.p95_ms if service.slo.p95_ms is not None else service.slo.p99_ms
    data: list[dict[str, Any]] = []
    for i, (name, df) in reversed(list(enumerate(frames))):
        rows = df[df["service"] == service.id]
        if rows.empty or float(rows["served_rps"].sum()) <= 0:
            continue
        x = grid_ms(rows, extra=slo)
        y = mixture_cdf(rows, x)
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": name,
                "x": np.round(x, 3).tolist(),
                "y": np.round(y, 5).tolist(),
                "line": {
                    "color": colour(name, i),
                    "width": 3 if i == 0 else 1.8,
                    "dash": "solid" if i == 0 else ("dash", "dot", "dashdot")[(i - 1) % 3],
                },
                "hovertemplate": f"{name}: %{{y:.1%}} of requests ≤ %{{x:.1f}} ms<extra></extra>",
            }
        )
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for q, limit in (("p95", service.slo.p95_ms), ("p99", service.slo.p99_ms)):
        if limit is None:
            continue
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": limit,
                "x1": limit,
                "y0": 0,
                "y1": 1,
                "line": {"color": "#c23b3b", "width": 1.5, "dash": "dash" if q == "p95" else "dot"},
            }
        )
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "yref": "y",
                "x0": 0,
                "x1": 1,
                "y0": 0.95 if q == "p95" else 0.99,
                "y1": 0.95 if q == "p95" else 0.99,
                "line": {"color": "#c23b3b", "width": 0.8, "dash": "dot"},
            }
        )
        annotations.append(
            {
                "x": float(np.log10(limit)),
                "y": 0.02 if q == "p95" else 0.12,
                "xref": "x",
                "yref": "paper",
                "text": f"SLO {q} {limit:g} ms",
                "showarrow": False,
                "xanchor": "left",
                "font": {"color": "#c23b3b", "size": 11},
            }
        )
    if not data:
        annotations.append(
            {
                "text": "no requests served",
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
            }
        )
    return {
        "data": data,
        "layout": layout(
            f"{service.id} — response time CDF",
            xaxis=axis("response time (ms, log scale)", type="log"),
            legend={**LEGEND, "traceorder": "reversed"},
            yaxis=axis("share of served requests", range=[0, 1.02], tickformat=".0%"),
            shapes=shapes,
            annotations=annotations,
            height=360,
        ),
    }
