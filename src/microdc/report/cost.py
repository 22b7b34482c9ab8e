"""Cost section: total cost of ownership per year, by part, per alternative (stacked bars)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from microdc.report.comparison import COST_PARTS
from microdc.report.style import Figure, axis, layout

PART_COLOURS = {
    "capex": "#4c72b0",
    "energy": "#dd8452",
    "cloud": "#55a868",
    "egress": "#8172b3",
    "site": "#937860",
}
PART_LABELS = {
    "capex": "capex (annualized)",
    "energy": "energy",
    "cloud": "cloud compute",
    "egress": "egress & backhaul",
    "site": "site lease & upkeep",
}


def cost_bars(entries: Sequence[dict[str, Any]]) -> Figure:
    """Stacked bars of `cost_breakdown` from comparison entries; unserved demand is noted on the bar."""
    names = [e["alternative"] for e in entries]
    currency = entries[0]["currency"] if entries else ""
    data = [
        {
            "type": "bar",
            "name": PART_LABELS[part],
            "x": names,
            "y": [round(float(e["cost_breakdown"].get(part, 0.0)), 2) for e in entries],
            "marker": {"color": PART_COLOURS[part]},
            "hovertemplate": f"%{{x}} — {PART_LABELS[part]}: {currency} %{{y:,.0f}}/year<extra></extra>",
        }
        for part in COST_PARTS
    ]
    annotations = []
    for e in entries:
        label = f"{currency} {e['cost_per_year']:,.0f}"
        if e.get("unserved_planned_fraction", 0.0) > 0:
            label += f"<br>(leaves {100 * e['unserved_planned_fraction']:.0f}% of demand unserved)"
        annotations.append(
            {
                "x": e["alternative"],
                "y": e["cost_per_year"],
                "text": label,
                "showarrow": False,
                "yanchor": "bottom",
                "font": {"size": 11},
            }
        )
    return {
        "data": data,
        "layout": layout(
            "Total cost of ownership per year",
            barmode="stack",
            legend={"orientation": "h", "x": 0, "y": -0.12, "yanchor": "top", "traceorder": "normal"},
            margin={"l": 60, "r": 20, "t": 48, "b": 70},
            xaxis=axis(""),
            yaxis=axis(f"{currency} per year", rangemode="tozero"),
            annotations=annotations,
            height=420,
        ),
    }
