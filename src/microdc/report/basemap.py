"""Real geography under the fleet map, with no network: Natural Earth shapes shipped in the package.

`assets/basemap.npz` (built by `tools/build_basemap.py`; sources and licence in `assets/README.md`)
holds land and country borders at 1:10m, state borders, lakes and rivers at 1:50m. A map crops them
to its view and thins them to its scale, so a city map embeds a few kB, not the world. Both the
report's fleet map and the dashboard draw these traces on longitude/latitude axes; a user may add
their own street tiles (`tile_images`), which are off unless a tile server URL is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

View = tuple[float, float, float, float]  # min_lat, min_lon, max_lat, max_lon
FloatArray = npt.NDArray[np.float64]

SCALE = 100_000  # stored units per degree (tools/build_basemap.py)
OCEAN = "#dfeaf3"
LAND = "#f4f1ea"
COAST = "#9bb3c7"
WATER = "#c6dbec"
ATTRIBUTION = "Basemap: Natural Earth (public domain)"
POLYGON_LAYERS = ("land", "lakes")
LAYERS = ("land", "lakes", "rivers", "states", "borders")
MAX_TILES = 36


@dataclass(frozen=True)
class Layer:
    """Polylines of one layer: all points, where each line starts, and each line's bounding box."""

    points: FloatArray  # (n, 2) lon, lat
    offsets: npt.NDArray[np.int64]  # (lines + 1,)
    boxes: FloatArray  # (lines, 4) min_lon, min_lat, max_lon, max_lat

    def line(self, i: int) -> FloatArray:
        return self.points[self.offsets[i] : self.offsets[i + 1]]


@lru_cache(maxsize=1)
def load_basemap() -> dict[str, Layer]:
    """Every layer of the shipped basemap, decoded once per process."""
    with resources.files("microdc.report").joinpath("assets/basemap.npz").open("rb") as fh:
        data = np.load(fh)
        layers = {}
        for name in LAYERS:
            points = np.cumsum(data[f"{name}_coords"].astype(np.int64), axis=0) / SCALE
            offsets = data[f"{name}_offsets"].astype(np.int64)
            starts, ends = offsets[:-1], offsets[1:]
            boxes = np.column_stack(
                [
                    np.minimum.reduceat(points[:, 0], starts),
                    np.minimum.reduceat(points[:, 1], starts),
                    np.maximum.reduceat(points[:, 0], starts),
                    np.maximum.reduceat(points[:, 1], starts),
                ]
            )
            assert np.all(ends > starts)
            layers[name] = Layer(points, offsets, boxes)
    return layers


def _clip_half(ring: FloatArray, axis: int, bound: float, keep_below: bool) -> FloatArray:
    """One Sutherland-Hodgman pass: the part of a closed ring on one side of a line x or y = bound."""
    if len(ring) == 0:
        return ring
    cur = ring
    prev = np.roll(ring, 1, axis=0)
    cur_in = cur[:, axis] <= bound if keep_below else cur[:, axis] >= bound
    prev_in = np.roll(cur_in, 1)
    crossing = cur_in != prev_in
    denom = np.where(crossing, cur[:, axis] - prev[:, axis], 1.0)
    t = np.where(crossing, (bound - prev[:, axis]) / denom, 0.0)
    cut = prev + t[:, None] * (cur - prev)
    slots = np.stack([cut, cur], axis=1)  # (n, 2, 2): the crossing point first, then the vertex
    keep = np.stack([crossing, cur_in], axis=1)
    return np.asarray(slots[keep], dtype=np.float64)


def clip_ring(ring: FloatArray, v: View) -> FloatArray:
    """A polygon ring clipped to the view rectangle (may be empty)."""
    out = _clip_half(ring, 0, v[1], keep_below=False)
    out = _clip_half(out, 0, v[3], keep_below=True)
    out = _clip_half(out, 1, v[0], keep_below=False)
    return _clip_half(out, 1, v[2], keep_below=True)


def clip_line(line: FloatArray, v: View) -> list[FloatArray]:
    """The runs of a polyline that touch the view (with one point beyond each end, so lines run on)."""
    inside = (line[:, 0] >= v[1]) & (line[:, 0] <= v[3]) & (line[:, 1] >= v[0]) & (line[:, 1] <= v[2])
    near = (
        inside
        | np.roll(inside, 1) & (np.arange(len(line)) > 0)
        | np.roll(inside, -1) & (np.arange(len(line)) < len(line) - 1)
    )
    runs: list[FloatArray] = []
    idx = np.flatnonzero(near)
    if len(idx) == 0:
        return runs
    breaks = np.flatnonzero(np.diff(idx) > 1) + 1
    for chunk in np.split(idx, breaks):
        if len(chunk) >= 2:
            runs.append(line[chunk])
    return runs


def thin(line: FloatArray, step: float) -> FloatArray:
    """Drop points that fall in the same grid cell of size `step` as the point before them."""
    if len(line) < 3 or step <= 0:
        return line
    cells = np.floor(line / step)
    keep = np.ones(len(line), dtype=bool)
    keep[1:] = np.any(cells[1:] != cells[:-1], axis=1)
    keep[-1] = True
    return line[keep]


def _intersecting(layer: Layer, v: View) -> npt.NDArray[np.int64]:
    b = layer.boxes
    hit = (b[:, 2] >= v[1]) & (b[:, 0] <= v[3]) & (b[:, 3] >= v[0]) & (b[:, 1] <= v[2])
    return np.flatnonzero(hit)


def cropped(name: str, v: View, step: float) -> list[FloatArray]:
    """One layer's lines inside the view, clipped (polygons stay closed) and thinned to `step` degrees."""
    layer = load_basemap()[name]
    out: list[FloatArray] = []
    for i in _intersecting(layer, v):
        line = thin(layer.line(int(i)), step)  # thin first: a continent's coast has 10^5 points
        b = layer.boxes[i]
        whole = b[0] >= v[1] and b[2] <= v[3] and b[1] >= v[0] and b[3] <= v[2]
        if whole:
            out.append(line)
        elif name in POLYGON_LAYERS:
            ring = clip_ring(line, v)
            if len(ring) >= 3:
                out.append(np.vstack([ring, ring[:1]]))
        else:
            out.extend(clip_line(line, v))
    return out


def _xy(lines: list[FloatArray]) -> tuple[list[float | None], list[float | None]]:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for ln in lines:
        xs += [round(float(x), 5) for x in ln[:, 0]] + [None]
        ys += [round(float(y), 5) for y in ln[:, 1]] + [None]
    return xs, ys


def padded(v: View, fraction: float) -> View:
    dlat, dlon = (v[2] - v[0]) * fraction, (v[3] - v[1]) * fraction
    return (
        max(v[0] - dlat, -90.0),
        max(v[1] - dlon, -180.0),
        min(v[2] + dlat, 90.0),
        min(v[3] + dlon, 180.0),
    )


STYLE: dict[str, dict[str, Any]] = {
    "land": {"fill": "toself", "fillcolor": LAND, "line": {"color": COAST, "width": 0.8}},
    "lakes": {"fill": "toself", "fillcolor": WATER, "line": {"color": COAST, "width": 0.5}},
    "rivers": {"line": {"color": WATER, "width": 1.0}},
    "states": {"line": {"color": "#b4a9c4", "width": 0.8, "dash": "dot"}},
    "borders": {"line": {"color": "#8e83a3", "width": 1.2}},
}


def basemap_traces(v: View, *, fills: bool = True) -> list[dict[str, Any]]:
    """Plotly scatter traces of the basemap around a view (a margin beyond it, for panning).

    Each trace carries `meta: "basemap-<layer>"` so a page (and its tests) can find it. With
    `fills=False` (street tiles underneath) only the lines are drawn.
    """
    area = padded(v, 0.5)
    step = max(area[2] - area[0], area[3] - area[1]) / 700.0
    traces: list[dict[str, Any]] = []
    for name in LAYERS:
        if not fills and name in POLYGON_LAYERS:
            continue
        lines = cropped(name, area, step)
        if not lines:
            continue
        xs, ys = _xy(lines)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": name,
                "meta": f"basemap-{name}",
                "x": xs,
                "y": ys,
                "hoverinfo": "skip",
                "showlegend": False,
                **STYLE[name],
            }
        )
    return traces


def basemap_layout() -> dict[str, Any]:
    """Layout keys of a map drawn over the basemap: the sea as the plot background."""
    return {"plot_bgcolor": OCEAN}


def _tile_xy(lat: float, lon: float, z: int) -> tuple[float, float]:
    n = 2.0**z
    lat_r = math.radians(max(min(lat, 85.05), -85.05))
    return (lon + 180.0) / 360.0 * n, (1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n


def _tile_lat(y: float, z: int) -> float:
    return math.degrees(math.atan(math.sinh(math.pi * (1.0 - 2.0 * y / 2.0**z))))


def check_tile_url(url: str) -> str:
    """The URL of a user's own slippy-map tile server, checked (one rule for the report and the dashboard).

    ValueError names what was expected: http(s), with {z}, {x} and {y} to fill in.
    """
    expected = "expected http(s)://host/{z}/{x}/{y}.png"
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"tile URL {url!r} is not http(s); {expected}")
    for key in ("{z}", "{x}", "{y}"):
        if key not in url:
            raise ValueError(f"tile URL {url!r} lacks {key}; {expected}")
    return url


def tile_images(v: View, url: str, max_tiles: int = MAX_TILES) -> list[dict[str, Any]]:
    """Layout images of slippy-map tiles ({z}/{x}/{y} in `url`) covering the view, under the traces.

    The zoom is the deepest at which the view needs at most `max_tiles` tiles. Within one tile the
    map's linear latitude axis and the tiles' Web Mercator differ by far less than a tile at the
    zooms of a city or a region.
    """
    check_tile_url(url)
    for z in range(19, -1, -1):
        x0, y0 = _tile_xy(v[2], v[1], z)
        x1, y1 = _tile_xy(v[0], v[3], z)
        tx = range(math.floor(x0), math.floor(x1) + 1)
        ty = range(math.floor(y0), math.floor(y1) + 1)
        if len(tx) * len(ty) <= max_tiles:
            break
    images = []
    for x in tx:
        for y in ty:
            west = x / 2.0**z * 360.0 - 180.0
            north = _tile_lat(y, z)
            images.append(
                {
                    "source": url.replace("{z}", str(z)).replace("{x}", str(x % 2**z)).replace("{y}", str(y)),
                    "xref": "x",
                    "yref": "y",
                    "x": west,
                    "y": north,
                    "sizex": 360.0 / 2.0**z,
                    "sizey": north - _tile_lat(y + 1, z),
                    "sizing": "stretch",
                    "xanchor": "left",
                    "yanchor": "top",
                    "layer": "below",
                }
            )
    return images
