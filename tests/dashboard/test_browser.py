"""The dashboard in headless Chromium (network off except the loopback server) against a running control
plane with a simulated fleet: log in, see the fleet on the map and in the table, watch a live update
arrive, open a site, acknowledge an alarm, explain a placement, verify the audit chain — with no console
error and no request leaving the server. Screenshots go to test-artifacts/."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from microdc.control.dashboard.demo import reading

from .browser import Browser, chromium, js, log_in, log_out, page_errors, wait_for
from .conftest import ARTIFACTS, PASSWORD, LiveServer, World

pytestmark = pytest.mark.browser


def _only_local(b: Browser, base: str) -> list[str]:
    host = urlsplit(base).netloc
    return [u for u in b.requests() if not (urlsplit(u).netloc == host or u.startswith("data:"))]


def test_operator_session(live_world: tuple[World, LiveServer], tmp_path: Path) -> None:
    world, srv = live_world
    fleet = world.fleet
    ids = list(fleet.sims)
    hot, target = ids[0], ids[1]
    fleet.backfill(hot, hours=6, step_s=120)  # history for the site's charts
    # an alarm to acknowledge: inlet above the allowable band (dwell 0 in the test settings)
    fleet.post(hot, [reading(f"{hot}.inlet", "Temperature", "Intake", 34.0, datetime.now(UTC))])
    # a second alarm at the site that sorts last by id, so "open alarms first" is visible in the order
    last = sorted(ids)[-1]
    fleet.post(last, [reading(f"{last}.inlet", "Temperature", "Intake", 34.0, datetime.now(UTC))])
    # workloads needing tier 2: one may only run in the target's jurisdiction, one anywhere in the EU
    origin = world.client.get(f"/api/v1/sites/{target}", headers=world.bearer("vera")).json()["jurisdiction"]
    fleet.workload("wl-a", origin=origin, data_class="health", cores=4, min_tier=2)
    wl_b = fleet.workload("wl-b", origin=origin, data_class="personal", cores=2, min_tier=2, allowed=["EU"])
    ARTIFACTS.mkdir(exist_ok=True)
    base = srv.base_url

    errors: list[str] = []
    outside: list[str] = []
    with Browser(tmp_path / "profile", executable=chromium()) as b:

        def collect() -> None:  # before every navigation (which clears the event log)
            errors.extend(page_errors(b))
            outside.extend(_only_local(b, base))

        # 1. unauthenticated → login page; log in as the operator
        errors += log_in(b, base, "otto", PASSWORD)
        assert b.evaluate("location.pathname") == "/"
        assert b.evaluate("document.body.dataset.page") == "fleet"
        n = len(ids)
        assert wait_for(b, f"document.querySelectorAll('#fleet tbody tr').length === {n}")
        wait_for(b, "document.querySelector('#map[data-drawn]') !== null")
        pts = wait_for(b, "document.querySelectorAll('#map .scatterlayer .point').length")
        assert pts == n
        # real geography under the sites, shipped (Natural Earth), not fetched: a filled land shape
        layers = b.evaluate(
            "document.querySelector('#map')._fullData.map(t => String(t.meta))"
            ".filter(m => m.startsWith('basemap-'))"
        )
        assert "basemap-land" in layers
        assert (
            b.evaluate(
                "Math.max(0, ...Array.from(document.querySelectorAll('#map .scatterlayer .js-fill'))"
                ".map(p => (p.getAttribute('d') || '').length))"
            )
            > 200
        )
        # sites with open alarms first: the hot site (one open alarm) heads the table by default
        order = b.evaluate(
            "Array.from(document.querySelectorAll('#fleet tbody tr')).map(r => r.dataset.site)"
        )
        assert set(order[:2]) == {hot, last} and order[2:] == sorted(order[2:]), order
        assert (
            b.evaluate(
                f"document.querySelector('tr[data-site={js(hot)}] td[data-k=alarms_open]').textContent"
            )
            == "1"
        )
        wait_for(b, "document.querySelector('#live').classList.contains('on')")
        b.screenshot(ARTIFACTS / "dashboard-fleet.png")

        # 2. a live update: post telemetry, watch the table change
        cell = f"document.querySelector('tr[data-site={js(target)}] td[data-k=inlet_c]')"
        t0 = time.monotonic()
        fleet.post(target, [reading(f"{target}.inlet", "Temperature", "Intake", 26.3, datetime.now(UTC))])
        wait_for(b, f"{cell} && {cell}.textContent === '26.3'", timeout_s=10)
        latency = time.monotonic() - t0
        assert latency < 3.0, f"update took {latency:.2f} s"
        assert not b.evaluate(f"{cell}.classList.contains('warn')")  # inside the recommended band
        assert b.evaluate("window.MDC.updates") >= 1

        collect()
        # 3. the site page: tiles and the five charts against the ASHRAE bands
        b.navigate(f"{base}/dashboard/sites/{hot}")
        wait_for(b, "window.MDC && window.MDC.ready")
        wait_for(b, "document.querySelectorAll('.charts .plot[data-drawn]').length === 5")
        assert b.evaluate("document.querySelectorAll('#c-temperature .shapelayer path').length") >= 2
        assert b.evaluate("document.querySelectorAll('#c-temperature .scatterlayer .trace').length") == 2
        assert (
            b.evaluate("document.querySelector('#c-power .scatterlayer path.js-line').getTotalLength()") > 100
        )
        assert "34" in b.evaluate("document.querySelector('#t-env').textContent")
        assert "on mains" in b.evaluate("document.querySelector('#t-ups').textContent")
        assert "closed" in b.evaluate("document.querySelector('#t-safety').textContent")
        assert b.evaluate("document.querySelectorAll('#site-alarms tbody tr').length") >= 1
        b.screenshot(ARTIFACTS / "dashboard-site.png")

        collect()
        # 4. alarms: acknowledge (the operator's name and the time appear)
        b.navigate(f"{base}/dashboard/alarms")
        row = "document.querySelector('#alarms tbody tr[data-state=raised]')"
        wait_for(b, f"{row} !== null")
        alarm_id = b.evaluate(f"{row}.dataset.alarm")
        b.evaluate("document.querySelector('#alarm-note').value = 'on it'; true")
        b.evaluate(f"{row}.querySelector('button[data-action=acknowledge]').click(); true")
        acked = f"document.querySelector('#alarms tbody tr[data-alarm=\"{alarm_id}\"]')"
        wait_for(b, f"{acked} && {acked}.dataset.state === 'acknowledged'")
        assert "user:otto" in b.evaluate(f"{acked}.querySelector('td[data-k=ack]').textContent")
        b.screenshot(ARTIFACTS / "dashboard-alarms.png")
        a = world.client.get(f"/api/v1/alarms/{alarm_id}", headers=world.bearer("vera")).json()
        assert a["state"] == "acknowledged" and a["acknowledged_by"] == "user:otto"

        collect()
        # 5. placement: a fault moves work; the page shows it live and explains it
        b.navigate(f"{base}/dashboard/placement")
        wait_for(b, "document.querySelectorAll('#workloads tbody tr').length === 2")
        # untrusted sites count as tier 1: wl-b is re-placed elsewhere in the EU, wl-a (its origin only)
        # is degraded rather than moved out of its jurisdiction
        for site in dict.fromkeys((wl_b["site_id"], target)):
            r = world.client.put(
                f"/api/v1/sites/{site}/trust",
                json={"trusted": False, "reason": "test: door forced"},
                headers=world.bearer("alice"),
            )
            assert r.status_code == 200, r.text
        wait_for(b, "document.querySelector('#history .tag.re-placed') !== null", timeout_s=10)
        wait_for(b, "document.querySelector('#history .tag.degraded') !== null", timeout_s=10)
        wait_for(b, "document.querySelector('[data-count=degraded]').textContent === '1'", timeout_s=10)
        b.evaluate("document.querySelector('#workloads tbody tr[data-workload=\"wl-a\"]').click(); true")
        wait_for(b, "document.querySelector('#explain-filters') !== null")
        assert b.evaluate("document.querySelectorAll('#explain-filters tbody tr').length") == 4
        b.screenshot(ARTIFACTS / "dashboard-placement.png")
        assert b.evaluate("document.querySelector('a[href=\"/dashboard/audit\"]')") is None

        collect()
        # 6. the admin's audit page: chain verified, searchable
        log_out(b)
        errors += log_in(b, base, "alice", PASSWORD, next_="/dashboard/audit")
        wait_for(b, "document.querySelector('#verify-status').classList.contains('ok')", timeout_s=20)
        wait_for(b, "document.querySelectorAll('#audit tbody tr').length > 5")
        b.evaluate(
            "document.querySelector('#a-q').value = 'alarm.acknowledge';"
            "document.querySelector('#audit-search').requestSubmit(); true"
        )
        wait_for(
            b,
            "Array.from(document.querySelectorAll('#audit tbody tr')).length === 1 && "
            "document.querySelector('#audit tbody tr td:nth-child(4)').textContent === 'alarm.acknowledge'",
        )
        b.screenshot(ARTIFACTS / "dashboard-audit.png")
        collect()

    assert errors == []
    assert outside == []
    for name in ("fleet", "site", "alarms", "placement", "audit"):
        assert (ARTIFACTS / f"dashboard-{name}.png").stat().st_size > 10_000
