"""Jurisdiction shapes from GeoJSON files: read, checked with errors naming the file and the part.

A shape is a list of rings, each a list of (lon, lat) in degrees; holes are kept as rings too (maps
draw outlines, and `contains` uses the even-odd rule, so a hole is outside).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from microdc.model.jurisdiction import Jurisdiction
from microdc.model.yaml_source import Loc

if TYPE_CHECKING:
    from microdc.model.scenario import Scenario

Ring = list[tuple[float, float]]


class GeometryError(ValueError):
    """A GeoJSON file that is not a usable polygon shape; the message names the part and expectation."""


def _ring(coords: Any, where: str) -> Ring:
    if not isinstance(coords, list) or len(coords) < 4:
        raise GeometryError(f"{where}: expected a closed ring of at least 4 [lon, lat] positions")
    out: Ring = []
    for k, pos in enumerate(coords):
        if (
            not isinstance(pos, list)
            or len(pos) < 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in pos[:2])
        ):
            raise GeometryError(f"{where}[{k}]: expected a [lon, lat] position of numbers, got {pos!r}")
        lon, lat = float(pos[0]), float(pos[1])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise GeometryError(
                f"{where}[{k}]: [{lon:g}, {lat:g}] is not [lon, lat] in degrees (lon -180..180, lat -90..90)"
            )
        out.append((lon, lat))
    return out


def _polygons(geom: Any, where: str) -> Iterator[Ring]:
    if not isinstance(geom, dict):
        raise GeometryError(f"{where}: expected a GeoJSON object")
    kind = geom.get("type")
    if kind == "FeatureCollection":
        features = geom.get("features")
        if not isinstance(features, list) or not features:
            raise GeometryError(f"{where}.features: expected a non-empty list of features")
        for i, f in enumerate(features):
            yield from _polygons(f, f"{where}.features[{i}]")
    elif kind == "Feature":
        yield from _polygons(geom.get("geometry"), f"{where}.geometry")
    elif kind == "Polygon":
        rings = geom.get("coordinates")
        if not isinstance(rings, list) or not rings:
            raise GeometryError(f"{where}.coordinates: expected a list of rings")
        for r, ring in enumerate(rings):
            yield _ring(ring, f"{where}.coordinates[{r}]")
    elif kind == "MultiPolygon":
        polys = geom.get("coordinates")
        if not isinstance(polys, list) or not polys:
            raise GeometryError(f"{where}.coordinates: expected a list of polygons")
        for p, poly in enumerate(polys):
            yield from _polygons({"type": "Polygon", "coordinates": poly}, f"{where}.coordinates[{p}]")
    else:
        raise GeometryError(
            f"{where}: GeoJSON type {kind!r} is not a shape; expected Polygon, MultiPolygon, Feature or "
            "FeatureCollection"
        )


def read_shape(path: Path) -> list[Ring]:
    """Every ring of a GeoJSON polygon file; GeometryError naming the file and the broken part."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GeometryError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GeometryError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise GeometryError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    try:
        return list(_polygons(data, "GeoJSON"))
    except GeometryError as exc:
        raise GeometryError(f"{path}: {exc}") from None


def _walk(nodes: list[Jurisdiction], prefix: Loc) -> Iterator[tuple[Loc, Jurisdiction]]:
    for i, node in enumerate(nodes):
        yield (*prefix, i), node
        yield from _walk(node.children, (*prefix, i, "children"))


def geometry_problems(s: Scenario) -> Iterator[tuple[Loc, str]]:
    """A problem for every jurisdiction geometry file that is missing or is not a polygon shape."""
    for loc, node in _walk(s.jurisdictions, ("jurisdictions",)):
        if node.geometry is None:
            continue
        try:
            read_shape(s.resolve(node.geometry))
        except GeometryError as exc:
            yield (*loc, "geometry"), f"jurisdiction {node.code!r}: {exc}"


def jurisdiction_rings(s: Scenario) -> dict[str, list[Ring]]:
    """code → rings, for every jurisdiction that names a geometry (the loader has checked them)."""
    return {
        node.code: read_shape(s.resolve(node.geometry))
        for _, node in _walk(s.jurisdictions, ("jurisdictions",))
        if node.geometry is not None
    }


def contains(rings: list[Ring], lat: npt.ArrayLike, lon: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Which points lie inside the shape (even-odd rule over all rings, so holes are outside)."""
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    inside = np.zeros(la.shape, dtype=bool)
    for ring in rings:
        xy = np.asarray(ring, dtype=np.float64)
        x0, y0 = xy[:-1, 0][:, None], xy[:-1, 1][:, None]
        x1, y1 = xy[1:, 0][:, None], xy[1:, 1][:, None]
        straddles = (y0 > la) != (y1 > la)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x0 + (la - y0) * (x1 - x0) / (y1 - y0)
        crossings = np.sum(straddles & (lo < x_cross), axis=0)
        inside ^= (crossings % 2).astype(bool)
    return inside
