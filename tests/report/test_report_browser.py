"""Open the real report in headless Chromium with the network off: the map and every chart must render,
with no console error and no request other than the file itself. Keeps a screenshot in test-artifacts/."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from cdp_pipe import CHROMIUM, Browser

from conftest import report_figures
from microdc.report.data import RunResult
from microdc.report.horizon_data import HorizonRunResult

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"

pytestmark = pytest.mark.browser


def _chromium() -> Path:
    found = CHROMIUM if CHROMIUM.is_file() else None
    if found is None and shutil.which("chromium"):
        found = Path(str(shutil.which("chromium")))
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def _wait_for_plots(b: Browser, expected: int, timeout_s: float = 30.0) -> int:
    """Wait until `expected` plots have drawn and the count of plotly SVG layers stops changing."""
    until = time.monotonic() + timeout_s
    last = -1
    while time.monotonic() < until:
        plots = b.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        svgs = b.evaluate("document.querySelectorAll('.main-svg').length")
        if plots >= expected and svgs == last:
            return int(svgs)
        last = svgs
        time.sleep(0.3)
    return int(last)


def test_report_renders_offline(tiny_run: tuple[RunResult, Path], tmp_path: Path) -> None:
    exe = _chromium()
    report = tiny_run[1] / "report.html"
    html = report.read_text(encoding="utf-8")
    figures = report_figures(html)
    ARTIFACTS.mkdir(exist_ok=True)
    with Browser(tmp_path / "profile", executable=exe) as b:
        b.navigate(report.resolve().as_uri())
        svgs = _wait_for_plots(b, len(figures))
        drawn = b.evaluate(
            "Array.from(document.querySelectorAll('[data-figure]'))"
            ".filter(d => d.querySelector('.main-svg')).map(d => d.getAttribute('data-figure'))"
        )
        map_points = b.evaluate(
            "document.querySelectorAll('[data-figure=\"map\"] .scatterlayer .point').length"
        )
        bars = b.evaluate("document.querySelectorAll('[data-figure=\"cost\"] .bars .point').length")
        b.screenshot(ARTIFACTS / "report-tiny.png")
        errors = b.errors()
        requests = b.requests()
    assert sorted(drawn) == sorted(figures), "every figure is drawn"
    assert svgs >= 2 * len(figures)  # plotly draws at least two .main-svg layers per plot
    assert map_points >= 3  # candidate sites, demand and built sites are on the map
    assert bars > 0
    assert errors == []
    assert [u for u in requests if not u.startswith(("file://", "data:"))] == []
    assert (ARTIFACTS / "report-tiny.png").stat().st_size > 10_000


def test_report_map_draws_the_offline_basemap(tiny_run: tuple[RunResult, Path], tmp_path: Path) -> None:
    """The fleet map shows real geography (Natural Earth land and borders shipped in the package) with
    the network off: the land is a filled SVG path under the sites, not an empty axis."""
    exe = _chromium()
    report = tiny_run[1] / "report.html"
    html = report.read_text(encoding="utf-8")
    n_figures = len(report_figures(html))
    with Browser(tmp_path / "profile", executable=exe) as b:
        b.navigate(report.resolve().as_uri())
        _wait_for_plots(b, n_figures)
        layers = b.evaluate(
            "Array.from(document.querySelector('[data-figure=\"map\"]')._fullData || [])"
            ".filter(t => String(t.meta || '').startsWith('basemap-')).map(t => t.meta)"
        )
        fill_len = b.evaluate(
            "Math.max(0, ...Array.from(document.querySelectorAll("
            "'[data-figure=\"map\"] .scatterlayer .js-fill')).map(p => (p.getAttribute('d') || '').length))"
        )
        bg = b.evaluate("getComputedStyle(document.querySelector('[data-figure=\"map\"] .bglayer .bg')).fill")
        b.screenshot(ARTIFACTS / "report-map-basemap.png")
        requests = b.requests()
        errors = b.errors()
    assert "basemap-land" in layers and "basemap-borders" in layers  # DE/FR: land and the border between
    assert fill_len > 200, "the land is drawn as a filled shape"
    assert bg == "rgb(223, 234, 243)"  # the sea behind the land
    assert errors == []
    assert [u for u in requests if not u.startswith(("file://", "data:"))] == []


def test_horizon_report_renders_offline_with_a_year_slider(
    tiny_horizon_run: tuple[HorizonRunResult, Path], tmp_path: Path
) -> None:
    """The build-out report: every figure drawn with the network off, and the map's slider has one step
    per period."""
    exe = _chromium()
    result, out = tiny_horizon_run
    report = out / "report.html"
    html = report.read_text(encoding="utf-8")
    figures = report_figures(html)
    ARTIFACTS.mkdir(exist_ok=True)
    with Browser(tmp_path / "profile", executable=exe) as b:
        b.navigate(report.resolve().as_uri())
        _wait_for_plots(b, len(figures))
        drawn = b.evaluate(
            "Array.from(document.querySelectorAll('[data-figure]'))"
            ".filter(d => d.querySelector('.main-svg')).map(d => d.getAttribute('data-figure'))"
        )
        labels = b.evaluate(
            "Array.from(document.querySelectorAll('[data-figure=\"map\"] .slider-label-group .slider-label'))"
            ".map(e => e.textContent)"
        )
        fill_len = b.evaluate(
            "Math.max(0, ...Array.from(document.querySelectorAll("
            "'[data-figure=\"map\"] .scatterlayer .js-fill')).map(p => (p.getAttribute('d') || '').length))"
        )
        b.screenshot(ARTIFACTS / "report-horizon.png")
        errors = b.errors()
        requests = b.requests()
    assert sorted(drawn) == sorted(figures), "every figure is drawn"
    assert labels == [f"year {p.period}" for p in result.ours.plan.periods]
    assert fill_len > 200, "the offline basemap's land is drawn under the map"
    assert errors == []
    assert [u for u in requests if not u.startswith(("file://", "data:"))] == []
