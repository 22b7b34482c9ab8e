"""Shared look of every figure: one colour per alternative, a plain layout, number formatting."""

from __future__ import annotations

import math
from typing import Any

Figure = dict[str, Any]  # a plotly figure as plain data: {"data": [...], "layout": {...}}

ALTERNATIVE_COLOURS = {
    "microdc": "#1b7f5b",
    "cloud-only": "#5470c6",
    "nearest": "#e6842a",
    "greedy": "#9c4fb5",
}
EXTRA_COLOURS = ("#c23b3b", "#3ba3c2", "#8a8a2a", "#555555")
SERVICE_COLOURS = ("#2b8cbe", "#e34a33", "#31a354", "#756bb1", "#fd8d3c", "#636363")


LEGEND = {"orientation": "h", "x": 0, "y": -0.3, "yanchor": "top"}


def colour(alternative: str, index: int = 0) -> str:
    return ALTERNATIVE_COLOURS.get(alternative, EXTRA_COLOURS[index % len(EXTRA_COLOURS)])


def layout(title: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        "margin": {"l": 60, "r": 20, "t": 48, "b": 110},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "legend": dict(LEGEND),
        "hovermode": "closest",
        "height": 420,
    }
    base.update(extra)
    return base


def axis(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "gridcolor": "#e6e6e6", "zeroline": False, **extra}


def fmt(x: float | None, digits: int = 1, unit: str = "") -> str:
    """A number for people: thousands separators, fixed digits, 'n/a' for missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    s = f"{x:,.{digits}f}"
    return f"{s} {unit}".rstrip() if unit else s


def money(x: float | None, currency: str) -> str:
    return "n/a" if x is None else f"{currency} {x:,.0f}"


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100.0 * x:.{digits}f}%"
