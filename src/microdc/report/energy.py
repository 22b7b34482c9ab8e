"""Energy and efficiency section: power over time, PUE against outdoor temperature, carbon against
grid intensity. Inputs are the simulator's per-step × site timeseries of each alternative."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from microdc.report.data import CLOUD_PREFIX
from microdc.report.style import LEGEND, Figure, axis, colour, layout

MAX_POINTS = 1500  # per line; longer runs are averaged into bins
MAX_SCATTER = 2000  # per alternative
REVERSED_LEGEND = {**LEGEND, "traceorder": "reversed"}  # traces are drawn last-first (see _on_top_first)


def _times(index: pd.Index) -> list[str]:
    t = pd.DatetimeIndex(index)
    if t.tz is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return [x.isoformat() for x in t]


def _thin(frame: pd.DataFrame, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """Average consecutive rows of a time-indexed frame so that at most `max_points` remain."""
    if len(frame) <= max_points:
        return frame
    k = int(np.ceil(len(frame) / max_points))
    groups = np.arange(len(frame)) // k
    out = frame.groupby(groups).mean()
    out.index = frame.index[::k][: len(out)]
    return out


def fleet_by_time(ts: pd.DataFrame, *, sites_only: bool = False) -> pd.DataFrame:
    """Per step: summed power, energy and carbon over the fleet, and energy-weighted conditions."""
    df = ts
    if sites_only:
        df = df[~df["site"].astype(str).str.startswith(CLOUD_PREFIX)]
    if df.empty:
        return pd.DataFrame(
            columns=[
                "it_w",
                "cooling_w",
                "total_w",
                "energy_kwh",
                "carbon_g",
                "pue",
                "outdoor_c",
                "intensity",
            ]
        )
    e = df["energy_kwh"].astype(float)
    work = pd.DataFrame(
        {
            "time": df["time"],
            "it_w": df["it_w"],
            "cooling_w": df["cooling_w"],
            "total_w": df["total_w"],
            "energy_kwh": e,
            "carbon_g": df["carbon_g"],
            "outdoor_e": df["outdoor_c"].astype(float) * e,
            "outdoor_w": e.where(df["outdoor_c"].notna(), 0.0),
            "intensity_e": df["carbon_intensity_g_per_kwh"].astype(float) * e,
        }
    )
    g = work.groupby("time").sum(numeric_only=True).sort_index()
    g["pue"] = g["total_w"] / g["it_w"].where(g["it_w"] > 0)
    g["outdoor_c"] = g["outdoor_e"] / g["outdoor_w"].where(g["outdoor_w"] > 0)
    g["intensity"] = g["intensity_e"] / g["energy_kwh"].where(g["energy_kwh"] > 0)
    return g[["it_w", "cooling_w", "total_w", "energy_kwh", "carbon_g", "pue", "outdoor_c", "intensity"]]


def _on_top_first(frames: Sequence[tuple[str, pd.DataFrame]]) -> list[tuple[int, tuple[str, pd.DataFrame]]]:
    """Draw order: baselines first, so the first alternative (microdc) is drawn on top of them."""
    return list(reversed(list(enumerate(frames))))


def _width(i: int) -> float:
    return 2.4 if i == 0 else 1.3


def _line(name: str, x: list[str], y: pd.Series, col: str, **extra: Any) -> dict[str, Any]:
    vals = [None if not np.isfinite(v) else round(float(v), 4) for v in y.to_numpy(dtype=float)]
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": x,
        "y": vals,
        "line": {"color": col, "width": 1.6, **extra.pop("line", {})},
        **extra,
    }


def power_over_time(frames: Sequence[tuple[str, pd.DataFrame]]) -> Figure:
    """IT power (solid) and cooling power (dotted) of the whole fleet, kW, per alternative."""
    data = []
    for i, (name, ts) in _on_top_first(frames):
        g = _thin(fleet_by_time(ts))
        x = _times(g.index)
        c = colour(name, i)
        data.append(
            _line(
                name,
                x,
                g["it_w"] / 1000.0,
                c,
                legendgroup=name,
                line={"width": _width(i)},
                hovertemplate=f"{name} IT: %{{y:.2f}} kW<extra></extra>",
            )
        )
        data.append(
            _line(
                f"{name}: cooling",
                x,
                g["cooling_w"] / 1000.0,
                c,
                legendgroup=name,
                showlegend=False,
                line={"dash": "dot", "width": _width(i)},
                hovertemplate=f"{name} cooling: %{{y:.2f}} kW<extra></extra>",
            )
        )
    return {
        "data": data,
        "layout": layout(
            "Power: IT (solid), cooling (dotted)",
            legend=REVERSED_LEGEND,
            xaxis=axis("time (UTC)"),
            yaxis=axis("power (kW)", rangemode="tozero"),
        ),
    }


def pue_over_time(frames: Sequence[tuple[str, pd.DataFrame]]) -> Figure:
    """Fleet PUE of the MDCs per step, with outdoor temperature at the sites on a second axis."""
    data = []
    temp: pd.Series | None = None
    for i, (name, ts) in _on_top_first(frames):
        g = _thin(fleet_by_time(ts, sites_only=True))
        if g.empty:
            continue
        data.append(_line(name, _times(g.index), g["pue"], colour(name, i), line={"width": _width(i)}))
        if temp is None or i == 0:
            temp = g["outdoor_c"]
    if temp is not None:
        data.append(
            _line(
                "outdoor °C (sites, energy-weighted)",
                _times(temp.index),
                temp,
                "#aaaaaa",
                yaxis="y2",
                line={"width": 1},
            )
        )
    return {
        "data": data,
        "layout": layout(
            "MDC PUE over time, with outdoor °C",
            legend=REVERSED_LEGEND,
            xaxis=axis("time (UTC)"),
            yaxis=axis("PUE"),
            yaxis2=axis("outdoor temperature (°C)", overlaying="y", side="right", showgrid=False),
            margin={"l": 60, "r": 60, "t": 48, "b": 110},
        ),
    }


def pue_vs_outdoor(frames: Sequence[tuple[str, pd.DataFrame]]) -> Figure:
    """Each point one MDC in one step: PUE against outdoor temperature."""
    data = []
    for i, (name, ts) in _on_top_first(frames):
        df = ts[~ts["site"].astype(str).str.startswith(CLOUD_PREFIX)]
        df = df[
            np.isfinite(df["pue"].astype(float))
            & np.isfinite(df["outdoor_c"].astype(float))
            & (df["it_w"].astype(float) > 0)
        ]
        if df.empty:
            continue
        step = int(np.ceil(len(df) / MAX_SCATTER))
        df = df.iloc[::step]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": np.round(df["outdoor_c"].to_numpy(dtype=float), 2).tolist(),
                "y": np.round(df["pue"].to_numpy(dtype=float), 4).tolist(),
                "marker": {
                    "size": 5 if i == 0 else 4,
                    "opacity": 0.6 if i == 0 else 0.4,
                    "color": colour(name, i),
                },
                "hovertemplate": f"{name}: PUE %{{y:.3f}} at %{{x:.1f}} °C<extra></extra>",
            }
        )
    if not data:
        return {"data": [], "layout": layout("PUE vs outdoor temperature (no MDC built)")}
    return {
        "data": data,
        "layout": layout(
            "PUE vs outdoor temperature (MDC × step)",
            legend=REVERSED_LEGEND,
            xaxis=axis("outdoor temperature (°C)"),
            yaxis=axis("PUE"),
        ),
    }


def carbon_over_time(frames: Sequence[tuple[str, pd.DataFrame]]) -> Figure:
    """Operational carbon of the fleet, kg per hour, with the grid's carbon intensity on a second axis."""
    data = []
    intensity: pd.Series | None = None
    for i, (name, ts) in _on_top_first(frames):
        g = fleet_by_time(ts)
        if g.empty:
            continue
        step_h = _step_hours(g.index)
        g = _thin(g)
        data.append(
            _line(
                name,
                _times(g.index),
                g["carbon_g"] / 1000.0 / step_h,
                colour(name, i),
                line={"width": _width(i)},
            )
        )
        if intensity is None or i == 0:
            intensity = g["intensity"]
    if intensity is not None:
        data.append(
            _line(
                "grid intensity (g/kWh)",
                _times(intensity.index),
                intensity,
                "#aaaaaa",
                yaxis="y2",
                line={"width": 1},
            )
        )
    return {
        "data": data,
        "layout": layout(
            "Carbon, with grid carbon intensity",
            legend=REVERSED_LEGEND,
            xaxis=axis("time (UTC)"),
            yaxis=axis("carbon (kg CO₂e per hour)", rangemode="tozero"),
            yaxis2=axis("grid carbon intensity (g CO₂e/kWh)", overlaying="y", side="right", showgrid=False),
            margin={"l": 60, "r": 60, "t": 48, "b": 110},
        ),
    }


def _step_hours(index: pd.Index) -> float:
    t = pd.DatetimeIndex(index)
    if len(t) < 2:
        return 1.0
    return float(np.median((t[1:] - t[:-1]).total_seconds())) / 3600.0
