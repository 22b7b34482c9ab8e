"""HTML pages and static files: security headers, no external assets, caching."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from microdc.control.dashboard.assets import STATIC_DIR

from .conftest import World, login

TEMPLATES = STATIC_DIR.with_name("templates")
EXTERNAL = re.compile(r"""(?:src|href|url)\s*[=(]\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.fixture
def admin(world: World) -> TestClient:
    login(world.client, "alice")
    return world.client


@pytest.mark.parametrize(
    ("path", "page"),
    [
        ("/", "fleet"),
        ("/dashboard/sites/t-fr-0001", "site"),
        ("/dashboard/alarms", "alarms"),
        ("/dashboard/placement", "placement"),
        ("/dashboard/audit", "audit"),
    ],
)
def test_pages_render_with_security_headers(admin: TestClient, path: str, page: str) -> None:
    r = admin.get(path)
    assert r.status_code == 200
    assert f'data-page="{page}"' in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "'unsafe-eval'" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert not EXTERNAL.search(r.text), "no external asset"
    boot = json.loads(re.search(r'<script type="application/json" id="boot">(.*?)</script>', r.text, re.S)[1])
    assert boot["role"] == "admin" and boot["cursor"]


def test_fleet_page_embeds_rows_and_the_map_layout(admin: TestClient) -> None:
    r = admin.get("/")
    boot = json.loads(re.search(r'<script type="application/json" id="boot">(.*?)</script>', r.text, re.S)[1])
    assert len(boot["rows"]) == 6
    fig = boot["map"]
    assert {t["type"] for t in fig["data"]} == {"scatter"}  # plain scatter: no geo/mapbox tiles
    states = [t["meta"] for t in fig["data"] if not t["meta"].startswith("basemap-")]
    assert states == ["up", "suspect", "link_down", "down", "untrusted", "unknown"]  # one trace per state
    land = [t for t in fig["data"] if t["meta"] == "basemap-land"]
    assert land and len(land[0]["x"]) > 10  # the Natural Earth land under the sites, shipped, not fetched
    assert "Natural Earth" in fig["layout"]["annotations"][0]["text"]
    assert fig["layout"]["images"] == []
    assert fig["layout"]["yaxis"]["scaleanchor"] == "x"


def test_operator_tile_server_is_allowed_by_the_page_policy(world: World) -> None:
    from microdc.control.dashboard.figures import fleet_map
    from microdc.control.dashboard.router import page_headers

    url = "https://tiles.example.org/{z}/{x}/{y}.png"
    csp = page_headers(url)["Content-Security-Policy"]
    assert "img-src 'self' data: https://tiles.example.org;" in csp
    assert "tiles.example.org" not in page_headers(None)["Content-Security-Policy"]
    fig = fleet_map([{"id": "a", "lat": 48.1, "lon": 11.5}, {"id": "b", "lat": 48.2, "lon": 11.6}], url)
    assert fig["layout"]["images"][0]["source"].startswith("https://tiles.example.org/")
    assert not [t for t in fig["data"] if t["meta"] == "basemap-land"]


def test_a_tile_url_without_placeholders_is_refused() -> None:
    import pytest
    from pydantic import ValidationError

    from microdc.control.settings import Settings

    with pytest.raises(ValidationError, match=r"expected http\(s\)://host/\{z\}/\{x\}/\{y\}.png"):
        Settings(map_tile_url="https://tiles.example.org/tile.png")
    assert Settings(map_tile_url="").map_tile_url == ""


def test_a_site_at_zero_zero_is_left_out_of_the_view() -> None:
    from microdc.control.dashboard.figures import fleet_map

    rows = [{"id": f"s{i}", "lat": 48.1 + i * 0.01, "lon": 11.5 + i * 0.01} for i in range(5)]
    fig = fleet_map([*rows, {"id": "typo", "lat": 0.0, "lon": 0.0}])
    assert fig["layout"]["yaxis"]["range"][0] > 47.0 and fig["layout"]["xaxis"]["range"][0] > 11.0
    assert "typo" in fig["layout"]["annotations"][0]["text"]


def test_boot_json_cannot_break_out_of_its_script_tag(world: World, admin: TestClient) -> None:
    r = world.client.patch(
        "/api/v1/sites/t-de-0000",
        json={"name": "</script><script>alert(1)</script>"},
        headers=world.bearer("alice"),
    )
    assert r.status_code == 200
    html = admin.get("/").text
    assert "<script>alert(1)" not in html
    assert html.count("</script>") == html.count("<script")


def test_unknown_site_is_a_404_page(admin: TestClient) -> None:
    r = admin.get("/dashboard/sites/nope")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]


def test_dashboard_root_redirects(admin: TestClient) -> None:
    r = admin.get("/dashboard", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"


@pytest.mark.parametrize("name", ["dashboard.js", "dashboard.css", "plotly.min.js"])
def test_static_files_are_served_from_the_package(world: World, name: str) -> None:
    c = world.client
    page = c.get("/dashboard/login").text
    m = re.search(rf'"(/dashboard/static/{re.escape(name)}\?v=([0-9a-f]+))"', page)
    assert m, f"{name} is referenced with a version"
    r = c.get(m[1], headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-encoding"] == "gzip"
    assert len(r.content) > 1000
    etag = r.headers["etag"]
    assert c.get(m[1], headers={"If-None-Match": etag}).status_code == 304
    plain = c.get(f"/dashboard/static/{name}", headers={"Accept-Encoding": "identity"})
    assert plain.headers["cache-control"] == "no-cache" and "content-encoding" not in plain.headers
    assert plain.content == r.content


def test_plotly_comes_from_the_installed_package(world: World) -> None:
    from plotly.offline import get_plotlyjs

    r = world.client.get("/dashboard/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"  # the client decoded it
    assert r.content.decode("utf-8") == get_plotlyjs()


@pytest.mark.parametrize(
    "name", ["../templates/base.html.j2", "..%2Fassets.py", ".hidden.js", "assets.py", "x.js"]
)
def test_static_refuses_other_files(world: World, name: str) -> None:
    assert world.client.get(f"/dashboard/static/{name}").status_code == 404


def test_own_assets_reference_nothing_external() -> None:
    files = [*STATIC_DIR.iterdir(), *TEMPLATES.iterdir()]
    assert len(files) >= 10
    for f in files:
        text = Path(f).read_text(encoding="utf-8")
        assert not re.search(r"https?://", text), f"{f.name} mentions an external URL"
        assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", text), f.name
