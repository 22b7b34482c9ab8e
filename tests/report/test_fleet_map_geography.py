"""The fleet map on real geography: the shipped basemap, jurisdiction shapes, and a view that one bad
coordinate cannot collapse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from microdc.model import ScenarioError, load_scenario
from microdc.model.geometry import contains, read_shape
from microdc.report.basemap import basemap_traces, clip_ring, load_basemap, tile_images
from microdc.report.fleet_map import far_from_the_rest, fleet_map, view_and_outliers

MELBOURNE = Path(__file__).parents[2] / "src" / "microdc" / "examples" / "melbourne"


def _traces(fig: dict, meta: str) -> list[dict]:
    return [t for t in fig["data"] if t.get("meta") == meta]


def test_basemap_holds_every_layer_worldwide() -> None:
    layers = load_basemap()
    assert set(layers) == {"land", "lakes", "rivers", "states", "borders"}
    land = layers["land"]
    assert len(land.offsets) > 1000  # 1:10m land: thousands of islands
    assert land.points[:, 0].min() >= -180 and land.points[:, 0].max() <= 180
    assert land.points[:, 1].min() >= -90 and land.points[:, 1].max() <= 90


def test_melbourne_region_has_land_sea_and_state_border() -> None:
    # Victoria and southern NSW: coast on the south, the VIC/NSW border (Murray river) to the north.
    traces = {t["meta"]: t for t in basemap_traces((-39.0, 141.0, -35.0, 149.0))}
    assert {"basemap-land", "basemap-states"} <= set(traces)
    xs = [x for x in traces["basemap-land"]["x"] if x is not None]
    assert len(xs) > 200 and traces["basemap-land"]["fill"] == "toself"
    # Melbourne's CBD is on land, the middle of Bass Strait is not.
    land = load_basemap()["land"]
    rings = [land.line(int(i)).tolist() for i in range(len(land.offsets) - 1) if _box_hits(land, i)]
    assert contains(rings, -37.8136, 144.9631)[0]
    assert not contains(rings, -39.5, 146.0)[0]


def _box_hits(layer, i: int) -> bool:  # type: ignore[no-untyped-def]
    b = layer.boxes[i]
    return b[0] <= 146.0 and b[2] >= 144.0 and b[1] <= -37.0 and b[3] >= -40.0


def test_clipping_keeps_a_ring_closed_inside_the_view() -> None:
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], dtype=float)
    out = clip_ring(square, (2.0, 3.0, 5.0, 6.0))  # min_lat, min_lon, max_lat, max_lon
    assert out[:, 0].min() == 3.0 and out[:, 0].max() == 6.0
    assert out[:, 1].min() == 2.0 and out[:, 1].max() == 5.0
    assert len(clip_ring(square, (20.0, 20.0, 30.0, 30.0))) == 0


def test_one_bad_coordinate_does_not_collapse_the_view(tmp_path: Path) -> None:
    shutil.copytree(MELBOURNE, tmp_path / "m")
    sites = (tmp_path / "m" / "sites.csv").read_text().splitlines()
    sites.append("typo-site,a typo,0.0,0.0,1,8.0,6000.0")
    (tmp_path / "m" / "sites.csv").write_text("\n".join(sites) + "\n")
    data = yaml.safe_load((tmp_path / "m" / "scenario.yaml").read_text())
    data["jurisdictions"][0].pop("bbox")  # let the bad site load, as an unbounded scenario would
    data["jurisdictions"][0]["children"][0].pop("bbox")
    (tmp_path / "m" / "scenario.yaml").write_text(yaml.safe_dump(data))
    s = load_scenario(tmp_path / "m")
    v, far = view_and_outliers(s)
    assert v[0] > -38.0 and v[2] < -37.6 and v[1] > 144.8 and v[3] < 145.1  # Melbourne's CBD, not the globe
    assert far == ["site typo-site at (0, 0)"]
    fig = fleet_map(s, [])
    note = fig["layout"]["annotations"][0]["text"]
    assert "typo-site at (0, 0)" in note and "check their coordinates" in note
    assert _traces(fig, "basemap-land")


def test_far_points_rule() -> None:
    lats = [48.85, 48.86, 48.87, 52.52, 52.51, 52.50]  # Paris and Berlin, three points each
    lons = [2.35, 2.36, 2.34, 13.40, 13.41, 13.39]
    assert far_from_the_rest(lats, lons) == []
    assert far_from_the_rest([*lats, 0.0], [*lons, 0.0]) == [6]


def test_the_real_map_is_offline_unless_tiles_are_asked_for() -> None:
    s = load_scenario(MELBOURNE)
    fig = fleet_map(s, [])
    assert fig["layout"]["images"] == []
    assert "Natural Earth" in fig["layout"]["annotations"][0]["text"]
    assert fig["layout"]["plot_bgcolor"] != "#ffffff"  # the sea
    text = json.dumps(fig)
    assert "http" not in text
    tiled = fleet_map(s, [], tile_url="https://tiles.example.org/{z}/{x}/{y}.png")
    images = tiled["layout"]["images"]
    assert 1 <= len(images) <= 36 and images[0]["source"].startswith("https://tiles.example.org/")
    assert not _traces(tiled, "basemap-land")  # no land fill over the streets


def test_tile_url_without_placeholders_is_refused() -> None:
    with pytest.raises(ValueError, match=r"lacks \{z\}"):
        tile_images((0, 0, 1, 1), "https://tiles.example.org/tile.png")


SQUARE = {
    "type": "Polygon",
    "coordinates": [[[144.9, -37.9], [145.0, -37.9], [145.0, -37.8], [144.9, -37.8], [144.9, -37.9]]],
}


def test_jurisdiction_shape_is_drawn(tmp_path: Path) -> None:
    shutil.copytree(MELBOURNE, tmp_path / "m")
    (tmp_path / "m" / "cbd.geojson").write_text(json.dumps({"type": "Feature", "geometry": SQUARE}))
    data = yaml.safe_load((tmp_path / "m" / "scenario.yaml").read_text())
    data["jurisdictions"][0]["children"][0]["geometry"] = "cbd.geojson"
    (tmp_path / "m" / "scenario.yaml").write_text(yaml.safe_dump(data))
    s = load_scenario(tmp_path / "m")
    shape = _traces(fleet_map(s, []), "jurisdiction-AU-VIC")
    assert len(shape) == 1 and shape[0]["x"][:2] == [144.9, 145.0]
    assert contains(
        read_shape(tmp_path / "m" / "cbd.geojson"), [-37.85, -37.95], [144.95, 144.95]
    ).tolist() == [
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "file not found"),
        ("{not json", "not JSON"),
        (json.dumps({"type": "Point", "coordinates": [1, 2]}), "'Point' is not a shape"),
        (
            json.dumps(
                {
                    "type": "Polygon",
                    "coordinates": [[[144.9, -37.9], [145.0, -97.9], [145, -37.8], [144.9, -37.9]]],
                }
            ),
            "coordinates[0][1]: [145, -97.9] is not [lon, lat]",
        ),
    ],
)
def test_bad_geometry_is_a_clear_error(tmp_path: Path, content: str | None, expected: str) -> None:
    shutil.copytree(MELBOURNE, tmp_path / "m")
    if content is not None:
        (tmp_path / "m" / "vic.geojson").write_text(content)
    data = yaml.safe_load((tmp_path / "m" / "scenario.yaml").read_text())
    data["jurisdictions"][0]["children"][0]["geometry"] = "vic.geojson"
    (tmp_path / "m" / "scenario.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError) as err:
        load_scenario(tmp_path / "m")
    text = str(err.value)
    assert "jurisdictions.0.children.0.geometry" in text and "'AU-VIC'" in text and expected in text
