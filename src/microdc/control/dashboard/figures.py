"""Plotly figures of the dashboard as plain data, in the offline report's look (`report.style`).

The map is a plain scatter on longitude/latitude with equal ground distances along both axes over the
report's offline Natural Earth basemap (no geo or mapbox trace: those fetch tiles from the network;
street tiles only from a tile server the operator names). The view leaves out sites far from all the
others (a bad coordinate), as the report's map does. The browser fills the map's points from the live
rows; the site charts are built here from `queries.site_series`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from microdc.report.basemap import ATTRIBUTION, basemap_layout, basemap_traces, tile_images
from microdc.report.fleet_map import far_from_the_rest, lonlat_axes
from microdc.report.style import Figure, axis, layout

STATE_COLOURS = {
    "up": "#1b7f5b",
    "suspect": "#d27a1e",
    "link_down": "#e6a100",
    "down": "#c23b3b",
    "untrusted": "#7b3fb5",
    "unknown": "#9a9a9a",
}
STATE_LABELS = {
    "up": "up",
    "suspect": "suspect (silent, not corroborated)",
    "link_down": "link down",
    "down": "down",
    "untrusted": "untrusted",
    "unknown": "unknown (never heard from)",
}
RECOMMENDED_FILL = "rgba(27,127,91,0.13)"
ALLOWABLE_FILL = "rgba(230,161,0,0.11)"
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def _view(
    rows: Sequence[dict[str, Any]], far: frozenset[int] = frozenset(), pad: float = 0.08
) -> tuple[float, float, float, float]:
    kept = [r for i, r in enumerate(rows) if i not in far]
    lats = [r["lat"] for r in kept] or [0.0]
    lons = [r["lon"] for r in kept] or [0.0]
    dlat = max(max(lats) - min(lats), 0.05) * pad
    dlon = max(max(lons) - min(lons), 0.05) * pad
    return min(lats) - dlat, min(lons) - dlon, max(lats) + dlat, max(lons) + dlon


def fleet_map(rows: Sequence[dict[str, Any]], tile_url: str | None = None) -> Figure:
    """The basemap, and one (empty) marker trace per state; the page fills x/y/text from its rows."""
    far_idx = frozenset(far_from_the_rest([r["lat"] for r in rows], [r["lon"] for r in rows]))
    v = _view(rows, far_idx)
    far = [rows[i]["id"] for i in sorted(far_idx)]
    note = ATTRIBUTION + (f"; off the map, far from all other sites: {', '.join(far)}" if far else "")
    data = [*basemap_traces(v, fills=tile_url is None)] + [
        {
            "type": "scatter",
            "mode": "markers",
            "name": STATE_LABELS[state],
            "meta": state,
            "x": [],
            "y": [],
            "text": [],
            "customdata": [],
            "hoverinfo": "text",
            "marker": {
                "size": 10,
                "color": colour,
                "opacity": 0.9,
                "line": {"color": "#ffffff", "width": 1},
            },
        }
        for state, colour in STATE_COLOURS.items()
    ]
    return {
        "data": data,
        "layout": layout(
            "",
            height=460,
            margin={"l": 56, "r": 10, "t": 16, "b": 44},
            **lonlat_axes(v),
            legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
            uirevision="fleet-map",
            images=tile_images(v, tile_url) if tile_url else [],
            annotations=[
                {
                    "text": note,
                    "showarrow": False,
                    "xref": "paper",
                    "yref": "paper",
                    "x": 1,
                    "y": 0,
                    "xanchor": "right",
                    "yanchor": "bottom",
                    "font": {"size": 9, "color": "#666"},
                    "bgcolor": "rgba(255,255,255,0.6)",
                }
            ],
            **basemap_layout(),
        ),
    }


def _time_layout(title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "height": 320,
        "margin": {"l": 60, "r": 70, "t": 40, "b": 30},
        "xaxis": {"type": "date", "gridcolor": "#e6e6e6", "zeroline": False},
        "yaxis": axis(y_title),
        "legend": {"orientation": "h", "x": 0, "y": -0.15, "yanchor": "top"},
        "uirevision": title,
    }
    return layout(title, **{**base, **extra})


def _no_data(fig: Figure, what: str) -> Figure:
    if not any(t.get("x") for t in fig["data"]):
        fig["layout"]["annotations"] = [
            *fig["layout"].get("annotations", []),
            {
                "text": f"no {what} readings in this window",
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "font": {"color": "#777"},
            },
        ]
    return fig


def _band(y0: float, y1: float, fill: str) -> dict[str, Any]:
    return {
        "type": "rect",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "yref": "y",
        "y0": y0,
        "y1": y1,
        "fillcolor": fill,
        "line": {"width": 0},
        "layer": "below",
    }


def _band_label(y: float, text: str, colour: str) -> dict[str, Any]:
    return {
        "text": text,
        "xref": "paper",
        "x": 1.0,
        "xanchor": "right",
        "yref": "y",
        "y": y,
        "yanchor": "top",
        "showarrow": False,
        "font": {"size": 10, "color": colour},
    }


def _values(series: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [s for s in series["sensors"] if s["type"] == rtype]


def _range(traces: list[dict[str, Any]], lo: float, hi: float) -> list[float]:
    ys = [y for t in traces for y in t["y"] if y is not None]
    return [min([lo, *ys]) - 1.0, max([hi, *ys]) + 1.0]


def power_figure(series: dict[str, Any]) -> Figure:
    p = series["power"]
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "facility (utility input)",
            "x": p["x"],
            "y": p["facility_kw"],
            "line": {"color": "#5470c6", "width": 1.6},
            "connectgaps": False,
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "IT (UPS output / PSUs)",
            "x": p["x"],
            "y": p["it_kw"],
            "line": {"color": "#1b7f5b", "width": 1.6},
            "connectgaps": False,
        },
    ]
    if not p["x"]:
        data = []
    fig: Figure = {"data": data, "layout": _time_layout("Power", "kW", hovermode="x unified")}
    return _no_data(fig, "power")


def pue_figure(series: dict[str, Any]) -> Figure:
    p = series["pue"]
    data = (
        [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "PUE",
                "x": p["x"],
                "y": p["y"],
                "line": {"color": "#9c4fb5", "width": 1.6},
            }
        ]
        if p["x"]
        else []
    )
    ys = [y for y in p["y"] if y is not None]
    fig: Figure = {
        "data": data,
        "layout": _time_layout(
            "PUE (facility ÷ IT power)",
            "PUE",
            yaxis=axis("PUE", range=[1.0, max([1.6, *ys]) + 0.05]),
            hovermode="x unified",
            showlegend=False,
        ),
    }
    return _no_data(fig, "facility and IT power")


def temperature_figure(series: dict[str, Any], bands: dict[str, Any]) -> Figure:
    rec, allow = bands["inlet_recommended_c"], bands["inlet_allowable_c"]
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"{s['sensor']} ({s['context']})",
            "x": s["x"],
            "y": s["y"],
            "line": {
                "width": 1.8 if s["context"] == "Intake" else 1.1,
                "dash": "solid" if s["context"] == "Intake" else "dot",
            },
        }
        for s in _values(series, "Temperature")
    ]
    fig: Figure = {
        "data": data,
        "layout": _time_layout(
            "Temperatures against the ASHRAE bands",
            "°C",
            yaxis=axis("°C", range=_range(data, allow[0], allow[1])),
            shapes=[_band(allow[0], allow[1], ALLOWABLE_FILL), _band(rec[0], rec[1], RECOMMENDED_FILL)],
            annotations=[
                _band_label(rec[1], f"recommended {rec[0]:g}–{rec[1]:g} °C", "#1b7f5b"),
                _band_label(allow[1], f"allowable {allow[0]:g}–{allow[1]:g} °C", "#a87500"),
            ],
        ),
    }
    return _no_data(fig, "temperature")


def humidity_figure(series: dict[str, Any], bands: dict[str, Any]) -> Figure:
    rec, allow = bands["humidity_recommended_pct"], bands["humidity_allowable_pct"]
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"{s['sensor']} ({s['context']})",
            "x": s["x"],
            "y": s["y"],
            "line": {"width": 1.5},
        }
        for s in _values(series, "Humidity")
    ]
    fig: Figure = {
        "data": data,
        "layout": _time_layout(
            "Relative humidity against the ASHRAE bands",
            "%RH",
            yaxis=axis("%RH", range=[0, 100]),
            shapes=[_band(allow[0], allow[1], ALLOWABLE_FILL), _band(rec[0], rec[1], RECOMMENDED_FILL)],
            annotations=[
                _band_label(rec[1], f"recommended ≤ {rec[1]:g} %RH", "#1b7f5b"),
                _band_label(allow[1], f"allowable {allow[0]:g}–{allow[1]:g} %RH", "#a87500"),
            ],
        ),
    }
    return _no_data(fig, "humidity")


def ups_figure(series: dict[str, Any], bands: dict[str, Any]) -> Figure:
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"runtime {s['sensor']}",
            "x": s["x"],
            "y": s["y"],
            "line": {"color": "#2b8cbe", "width": 1.6},
        }
        for s in _values(series, "Runtime")
    ]
    data += [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"state {s['sensor']}",
            "x": s["x"],
            "y": [round(y) for y in s["y"]],
            "yaxis": "y2",
            "line": {"color": "#c23b3b", "width": 1.2, "shape": "hv"},
        }
        for s in _values(series, "UPSState")
    ]
    warn, crit = bands["ups_runtime_warning_min"], bands["ups_runtime_critical_min"]
    fig: Figure = {
        "data": data,
        "layout": _time_layout(
            "UPS: runtime left and state",
            "runtime (min)",
            yaxis=axis("runtime (min)", rangemode="tozero"),
            yaxis2={
                "overlaying": "y",
                "side": "right",
                "range": [-0.2, 3.2],
                "tickvals": [0, 1, 2, 3],
                "ticktext": ["mains", "battery", "bypass", "fault"],
                "showgrid": False,
            },
            shapes=[
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "yref": "y",
                    "y0": v,
                    "y1": v,
                    "line": {"color": c, "width": 1, "dash": "dash"},
                }
                for v, c in ((warn, "#e6a100"), (crit, "#c23b3b"))
            ],
        ),
    }
    return _no_data(fig, "UPS")


def _finish(fig: Figure, series: dict[str, Any]) -> Figure:
    """Show the whole requested window, and markers where points are too sparse to draw a line."""
    start, end = datetime.fromisoformat(series["start"]), datetime.fromisoformat(series["end"])
    fig["layout"]["xaxis"]["range"] = [series["start"], (end + (end - start) * 0.02).isoformat()]
    for t in fig["data"]:
        if len(t.get("x") or []) < 60:
            t["mode"] = "lines+markers"
            t["marker"] = {
                "size": 5,
                **({"color": t["line"]["color"]} if "color" in t.get("line", {}) else {}),
            }
    return fig


def site_figures(series: dict[str, Any], bands: dict[str, Any]) -> dict[str, Figure]:
    figs = {
        "power": power_figure(series),
        "pue": pue_figure(series),
        "temperature": temperature_figure(series, bands),
        "humidity": humidity_figure(series, bands),
        "ups": ups_figure(series, bands),
    }
    return {k: _finish(f, series) for k, f in figs.items()}
