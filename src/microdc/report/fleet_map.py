"""The fleet on a map: candidate and chosen sites, demand, who serves whom, cloud regions, borders.

Drawn as a plain scatter on longitude/latitude axes with equal ground distances along both, over the
shipped Natural Earth basemap (`basemap.py`: land, coast, country and state borders, lakes, rivers),
so the report opens with no network; street tiles only when a user names their own tile server.
Jurisdictions are drawn as their GeoJSON shapes when the scenario gives them, else as their bounding
boxes. The view is chosen from where most points are, so one bad coordinate (a site at 0, 0) cannot
shrink the fleet to a dot: such points are named in a note, as are cloud regions outside the view.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from microdc.model import Scenario
from microdc.model.components import DemandSource
from microdc.model.geometry import jurisdiction_rings
from microdc.physics.geo import great_circle_km
from microdc.placement.plan import Plan
from microdc.report.basemap import ATTRIBUTION, basemap_layout, basemap_traces, tile_images
from microdc.report.style import Figure, axis, colour, layout

COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
View = tuple[float, float, float, float]  # min_lat, min_lon, max_lat, max_lon


OUTLIER_FACTOR = 5.0  # a point this many times the typical spread away from the rest is off the map
OUTLIER_FLOOR_KM = 20.0  # and never closer than this


def far_from_the_rest(lats: Sequence[float], lons: Sequence[float]) -> list[int]:
    """Indices of points far from where the others are (a typo, a 0,0 default), by a robust rule.

    Distance from the coordinate-wise median, against the 75th percentile of those distances: the
    bulk sets the scale, so a few stray points cannot stretch it. Two cities of equal weight stay
    both in view (the percentile then spans the gap).
    """
    if len(lats) < 3:
        return []
    lat = np.asarray(lats, dtype=np.float64)
    lon = np.asarray(lons, dtype=np.float64)
    d = great_circle_km(np.median(lat), np.median(lon), lat, lon)
    limit = max(OUTLIER_FACTOR * float(np.percentile(d, 75)), OUTLIER_FLOOR_KM)
    return [int(i) for i in np.flatnonzero(d > limit)]


def view_and_outliers(s: Scenario, pad: float = 0.08) -> tuple[View, list[str]]:
    """The area of sites and demand without far-off points, padded, and a line naming each of those."""
    points = [("site", x.id, x.lat, x.lon) for x in s.sites] + [
        ("demand", d.id, d.lat, d.lon) for d in s.demand
    ]
    far = set(far_from_the_rest([p[2] for p in points], [p[3] for p in points]))
    kept = [p for i, p in enumerate(points) if i not in far]
    lats = [p[2] for p in kept]
    lons = [p[3] for p in kept]
    dlat = max(max(lats) - min(lats), 0.01) * pad
    dlon = max(max(lons) - min(lons), 0.01) * pad
    view = (min(lats) - dlat, min(lons) - dlon, max(lats) + dlat, max(lons) + dlon)
    notes = [f"{points[i][0]} {points[i][1]} at ({points[i][2]:g}, {points[i][3]:g})" for i in sorted(far)]
    return view, notes


def view_box(s: Scenario, pad: float = 0.08) -> View:
    """The area of sites and demand (without points far from all the others), padded."""
    return view_and_outliers(s, pad)[0]


def bearing(lat0: float, lon0: float, lat1: float, lon1: float) -> str:
    """8-point compass direction from one point to another."""
    p0, p1, dl = math.radians(lat0), math.radians(lat1), math.radians(lon1 - lon0)
    y = math.sin(dl) * math.cos(p1)
    x = math.cos(p0) * math.sin(p1) - math.sin(p0) * math.cos(p1) * math.cos(dl)
    deg = (math.degrees(math.atan2(y, x)) + 360.0) % 360.0
    return COMPASS[int((deg + 22.5) // 45) % 8]


def _inside(lat: float, lon: float, v: View) -> bool:
    return v[0] <= lat <= v[2] and v[1] <= lon <= v[3]


def border_traces(s: Scenario, v: View) -> tuple[list[dict[str, Any]], list[str]]:
    """Rectangles of jurisdictions whose bbox crosses the view, and the codes that enclose all of it."""
    traces: list[dict[str, Any]] = []
    enclosing: list[str] = []
    shapes = jurisdiction_rings(s)
    for code in s.tree.codes:
        if code in shapes:
            traces += _shape_traces(code, shapes[code], first=not traces)
            continue
        box = s.tree.bbox[code]
        if box is None:
            continue
        lat0, lon0, lat1, lon1 = box
        if lat1 < v[0] or lat0 > v[2] or lon1 < v[1] or lon0 > v[3]:
            continue  # entirely off the map
        if lat0 <= v[0] and lon0 <= v[1] and lat1 >= v[2] and lon1 >= v[3]:
            enclosing.append(code)
            continue
        label_lat, label_lon = min(lat1, v[2]), max(lon0, v[1])
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "jurisdiction borders (bbox)",
                "legendgroup": "borders",
                "showlegend": not traces,
                "hoverinfo": "text",
                "text": f"jurisdiction {code}",
                "line": {"color": "#888", "width": 1.2, "dash": "dash"},
                "x": [lon0, lon1, lon1, lon0, lon0],
                "y": [lat0, lat0, lat1, lat1, lat0],
            }
        )
        traces.append(
            {
                "type": "scatter",
                "mode": "text",
                "x": [label_lon],
                "y": [label_lat],
                "text": [code],
                "textposition": "bottom right",
                "showlegend": False,
                "hoverinfo": "skip",
                "legendgroup": "borders",
                "textfont": {"color": "#777", "size": 11},
            }
        )
    return traces, enclosing


def _shape_traces(code: str, rings: list[list[tuple[float, float]]], first: bool) -> list[dict[str, Any]]:
    """A jurisdiction's outline from its GeoJSON shape, labelled at its first vertex."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for ring in rings:
        xs += [lon for lon, _ in ring] + [None]
        ys += [lat for _, lat in ring] + [None]
    return [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "jurisdictions",
            "legendgroup": "borders",
            "showlegend": first,
            "meta": f"jurisdiction-{code}",
            "hoverinfo": "text",
            "text": f"jurisdiction {code}",
            "line": {"color": "#6b5b95", "width": 1.6, "dash": "dash"},
            "x": xs,
            "y": ys,
        }
    ]


def _site_trace(s: Scenario) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "candidate sites",
        "x": [x.lon for x in s.sites],
        "y": [x.lat for x in s.sites],
        "text": [f"{x.id} {x.name}<br>tier {x.security_tier}, grid {x.grid_power_kw:g} kW" for x in s.sites],
        "hoverinfo": "text",
        "marker": {"symbol": "circle-open", "size": 6, "color": "#9a9a9a"},
    }


def _demand_traces(s: Scenario) -> list[dict[str, Any]]:
    """One marker per demand location (sources at the same place are merged), sized by its requests."""
    places: dict[tuple[float, float], list[DemandSource]] = {}
    for d in s.demand:
        places.setdefault((round(d.lat, 6), round(d.lon, 6)), []).append(d)
    rps = [sum(d.mean_rate_rps for d in ds) for ds in places.values()]
    biggest = max(rps, default=1.0) or 1.0
    return [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "demand (size ∝ req/s)",
            "x": [lon for _, lon in places],
            "y": [lat for lat, _ in places],
            "hoverinfo": "text",
            "text": [
                "<br>".join(
                    f"{d.id}: {d.devices} devices, {d.mean_rate_rps:,.0f} req/s, {d.data_class} from "
                    f"{d.jurisdiction}"
                    for d in ds
                )
                for ds in places.values()
            ],
            "marker": {
                "symbol": "diamond",
                "color": "#4a4a4a",
                "opacity": 0.7,
                "size": [4 + 6 * math.sqrt(r / biggest) for r in rps],
            },
        }
    ]


def _plan_traces(s: Scenario, plan: Plan, index: int, visible: bool) -> list[dict[str, Any]]:
    c = colour(plan.alternative, index)
    where = {x.id: (x.lat, x.lon) for x in s.sites} | {r.id: (r.lat, r.lon) for r in s.cloud_regions}
    demand = {d.id: d for d in s.demand}
    xs: list[float | None] = []
    ys: list[float | None] = []
    for a in plan.primary():
        d = demand.get(a.demand)
        if d is None or a.target not in where:
            continue
        lat, lon = where[a.target]
        xs += [d.lon, lon, None]
        ys += [d.lat, lat, None]
    vis: bool | str = True if visible else "legendonly"
    group = f"plan-{plan.alternative}"
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"{plan.alternative}: serves",
            "legendgroup": group,
            "x": xs,
            "y": ys,
            "hoverinfo": "skip",
            "visible": vis,
            "line": {"color": c, "width": 0.8},
            "opacity": 0.45,
        }
    ]
    if plan.sites:
        biggest = max(b.it_kw for b in plan.sites) or 1.0
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{plan.alternative}: sites built",
                "legendgroup": group,
                "visible": vis,
                "x": [where[b.site][1] for b in plan.sites],
                "y": [where[b.site][0] for b in plan.sites],
                "text": [
                    f"{b.site}: {b.module}, {b.servers}× {b.server}, {b.it_kw:g} kW IT, "
                    f"PUE {b.annual_pue:.2f}"
                    for b in plan.sites
                ],
                "hoverinfo": "text",
                "marker": {
                    "size": [9 + 16 * math.sqrt(b.it_kw / biggest) for b in plan.sites],
                    "color": c,
                    "opacity": 0.85,
                    "line": {"color": "#fff", "width": 1},
                },
            }
        )
    return traces


def cloud_note(s: Scenario, v: View) -> tuple[list[dict[str, Any]], list[str]]:
    """Cloud regions in view as stars; those outside as lines of a note (distance, bearing)."""
    clat, clon = (v[0] + v[2]) / 2, (v[1] + v[3]) / 2
    inside = [r for r in s.cloud_regions if _inside(r.lat, r.lon, v)]
    notes = [
        f"{r.name or r.id} ({r.id}, {r.jurisdiction}): "
        f"{float(great_circle_km(clat, clon, r.lat, r.lon)):,.0f} km {bearing(clat, clon, r.lat, r.lon)}"
        for r in s.cloud_regions
        if not _inside(r.lat, r.lon, v)
    ]
    traces = []
    if inside:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": "cloud regions",
                "x": [r.lon for r in inside],
                "y": [r.lat for r in inside],
                "text": [r.id for r in inside],
                "textposition": "top center",
                "hoverinfo": "text",
                "marker": {
                    "symbol": "star",
                    "size": 16,
                    "color": "#333",
                    "line": {"color": "#fff", "width": 1},
                },
            }
        )
    return traces, notes


def _map_base(
    s: Scenario, tile_url: str | None
) -> tuple[View, list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The view, the traces under every plan (basemap, borders, candidate sites, demand), the cloud
    traces drawn over them, and the note lines under the map."""
    v, far = view_and_outliers(s)
    borders, enclosing = border_traces(s, v)
    clouds, notes = cloud_note(s, v)
    under: list[dict[str, Any]] = [
        *basemap_traces(v, fills=tile_url is None),
        *borders,
        _site_trace(s),
        *_demand_traces(s),
    ]
    lines = []
    if enclosing:
        lines.append("whole view inside: " + ", ".join(enclosing))
    if notes:
        lines.append("off the map: " + "; ".join(notes))
    if far:
        shown = "; ".join(far[:8]) + (f"; and {len(far) - 8} more" if len(far) > 8 else "")
        lines.append(f"far from all the others, left out of the view (check their coordinates): {shown}")
    lines.append(ATTRIBUTION + ("; street tiles: " + tile_url.split("/{z}")[0] if tile_url else ""))
    return v, under, clouds, lines


def lonlat_axes(v: View) -> dict[str, Any]:
    """x = longitude, y = latitude over the view, a degree of latitude drawn cos(mid-latitude) times
    as long as one of longitude, so distances look right (the report's and the dashboard's maps)."""
    mid_lat = (v[0] + v[2]) / 2
    return {
        "xaxis": axis("longitude (°)", range=[v[1], v[3]], constrain="domain"),
        "yaxis": axis(
            "latitude (°)",
            range=[v[0], v[2]],
            scaleanchor="x",
            scaleratio=1.0 / max(math.cos(math.radians(mid_lat)), 0.05),
            constrain="domain",
        ),
    }


def _map_layout(title: str, v: View, lines: list[str], tile_url: str | None, **extra: Any) -> dict[str, Any]:
    return layout(
        title,
        height=620,
        **lonlat_axes(v),
        legend={"orientation": "v", "x": 1.01, "y": 1.0},
        margin={"l": 60, "r": 10, "t": 48, "b": 48 + 16 * len(lines)},
        images=tile_images(v, tile_url) if tile_url else [],
        **basemap_layout(),
        annotations=[
            {
                "text": "<br>".join(lines),
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": -0.08,
                "xanchor": "left",
                "yanchor": "top",
                "align": "left",
                "font": {"size": 11, "color": "#555"},
            }
        ],
        **extra,
    )


def fleet_map(s: Scenario, plans: Sequence[Plan], tile_url: str | None = None) -> Figure:
    """The map figure; the first plan is shown, the others can be switched on from the legend.

    `tile_url` (`https://host/{z}/{x}/{y}.png`, the user's own tile server) adds street tiles under
    the traces; without it the map needs no network.
    """
    v, data, clouds, lines = _map_base(s, tile_url)
    for i, p in enumerate(plans):
        data += _plan_traces(s, p, i, visible=i == 0)
    data += clouds
    return {
        "data": data,
        "layout": _map_layout(
            "Fleet map — sites built (size ∝ IT kW), demand and who serves it", v, lines, tile_url
        ),
    }


def fleet_map_by_period(
    s: Scenario, plans: Sequence[Plan], labels: Sequence[str], tile_url: str | None = None
) -> Figure:
    """One map per period of a build-out with a slider between them (same offline basemap).

    `plans[t]` is period t's fleet and assignment, `labels[t]` its slider label. Each period adds its
    own traces (who serves whom, sites standing, sites new that period); a slider step shows one
    period's traces and hides the others, so the page holds every year and needs no network."""
    v, data, clouds, lines = _map_base(s, tile_url)
    shared = len(data)
    owner: list[int] = []  # period of each period trace
    before: set[str] = set()
    for t, p in enumerate(plans):
        traces = _plan_traces(s, p.model_copy(update={"alternative": "microdc"}), 0, visible=True)
        new = [b for b in p.sites if b.site not in before]
        if new:
            where = {x.id: (x.lat, x.lon) for x in s.sites}
            traces.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": f"{labels[t]}: new sites",
                    "x": [where[b.site][1] for b in new],
                    "y": [where[b.site][0] for b in new],
                    "text": [f"{b.site}: new in {labels[t]}" for b in new],
                    "hoverinfo": "text",
                    "marker": {
                        "symbol": "circle-open",
                        "size": 22,
                        "color": "#c23b3b",
                        "line": {"width": 2.5},
                    },
                }
            )
        before |= {b.site for b in p.sites}
        for tr in traces:
            tr["visible"] = t == 0
            tr["name"] = tr["name"].replace("microdc:", f"{labels[t]}:")
        data += traces
        owner += [t] * len(traces)
    data += clouds
    n = len(data)
    steps = []
    for t, label in enumerate(labels):
        visible = [True] * shared + [o == t for o in owner] + [True] * (n - shared - len(owner))
        steps.append({"label": label, "method": "restyle", "args": ["visible", visible]})
    slider = {
        "active": 0,
        "steps": steps,
        "currentvalue": {"prefix": "shown: "},
        "pad": {"t": 40 + 16 * len(lines)},
    }
    return {
        "data": data,
        "layout": _map_layout(
            "Build-out map — sites standing each year (size ∝ IT kW), new sites circled, who serves whom",
            v,
            lines,
            tile_url,
            sliders=[slider],
        ),
    }
