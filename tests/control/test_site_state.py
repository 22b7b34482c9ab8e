"""Liveness state machine: pure transitions, then each transition through the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from microdc.control.site_state import Evidence, Liveness, assess, display_state

from .conftest import Clock, Fleet, batch, reading

L = Liveness


@pytest.mark.parametrize(
    ("current", "fresh", "evidence", "expected"),
    [
        (L.UNKNOWN, True, Evidence(), L.UP),
        (L.DOWN, True, Evidence(), L.UP),
        (L.LINK_DOWN, True, Evidence(), L.UP),
        (L.UNKNOWN, False, Evidence(), L.UNKNOWN),
        (L.UP, False, Evidence(), L.DOWN),
        (L.UP, False, Evidence(ups_on_battery=True, probes_reachable=1, inlet_temps_normal=True), L.DOWN),
        (
            L.UP,
            False,
            Evidence(ups_on_battery=False, probes_reachable=1, inlet_temps_normal=True),
            L.LINK_DOWN,
        ),
        (L.UP, False, Evidence(ups_on_battery=False, probes_reachable=1, inlet_temps_normal=False), L.DOWN),
        (L.UP, False, Evidence(ups_on_battery=False, probes_unreachable=2), L.DOWN),
        (L.UP, False, Evidence(buffered_readings_cover_gap=True), L.LINK_DOWN),
        (L.UP, False, Evidence(buffered_readings_cover_gap=True, runtime_exhausted=True), L.DOWN),
        (
            L.DOWN,
            False,
            Evidence(ups_on_battery=False, probes_reachable=1, inlet_temps_normal=True),
            L.LINK_DOWN,
        ),
        (L.LINK_DOWN, False, Evidence(ups_on_battery=False, probes_unreachable=1), L.DOWN),
    ],
)
def test_assess(current: Liveness, fresh: bool, evidence: Evidence, expected: Liveness) -> None:
    new, reason = assess(current, heartbeat_fresh=fresh, evidence=evidence)
    assert new == expected and reason


def test_display_state() -> None:
    assert display_state("up", True) == "up"
    assert display_state("up", False) == "untrusted"


def _state(c: TestClient, h: dict[str, str], site: str) -> str:
    return str(c.get(f"/api/v1/sites/{site}", headers=h).json()["state"])


def _tick(c: TestClient, h: dict[str, str]) -> dict[str, Any]:
    r = c.post("/api/v1/admin/maintenance", headers=h)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _healthy(c: TestClient, fleet: Fleet, site: str, clock: Clock, ups: float = 0) -> None:
    rs = [reading("inlet", "Temperature", 22, clock.now), reading("ups", "UPSState", ups, clock.now)]
    assert (
        c.post(f"/api/v1/sites/{site}/telemetry", json=batch(rs), headers=fleet.site_h[site]).status_code
        == 201
    )


@pytest.fixture
def settings_kw() -> dict[str, Any]:
    return {"heartbeat_interval_s": 10, "heartbeat_missed_intervals": 3, "ups_dwell_s": 0}


def test_unknown_to_up_to_down_without_evidence(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], clock: Clock
) -> None:
    fleet.add_site("a", heartbeat=False)
    assert _state(client, admin_h, "a") == "unknown"
    _tick(client, admin_h)
    assert _state(client, admin_h, "a") == "unknown"
    client.post("/api/v1/sites/a/heartbeat", json={}, headers=fleet.site_h["a"])
    assert _state(client, admin_h, "a") == "up"
    clock.advance(29)
    assert _tick(client, admin_h)["transitions"] == []
    clock.advance(5)
    out = _tick(client, admin_h)
    assert out["transitions"] and "down" in out["transitions"][0]
    assert _state(client, admin_h, "a") == "down"
    alarms = client.get("/api/v1/alarms", params={"site_id": "a", "open_only": True}, headers=admin_h).json()
    assert [(x["kind"], x["severity"]) for x in alarms] == [("heartbeat_lost", "critical")]
    client.post("/api/v1/sites/a/heartbeat", json={}, headers=fleet.site_h["a"])
    assert _state(client, admin_h, "a") == "up"
    alarms = client.get("/api/v1/alarms", params={"site_id": "a"}, headers=admin_h).json()
    assert alarms[0]["state"] == "cleared"
    events = client.get("/api/v1/sites/a/state-events", headers=admin_h).json()
    assert [(e["from_state"], e["to_state"]) for e in reversed(events)] == [
        ("unknown", "up"),
        ("up", "down"),
        ("down", "up"),
    ]


def test_link_down_by_probe_and_healthy_telemetry(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], operator_h: dict[str, str], clock: Clock
) -> None:
    fleet.add_site("a")
    _healthy(client, fleet, "a", clock)
    clock.advance(40)
    _tick(client, admin_h)
    assert _state(client, admin_h, "a") == "down"
    r = client.post(
        "/api/v1/probes", json={"target_site_id": "a", "reachable": True, "path": "lte"}, headers=operator_h
    )
    assert r.status_code == 201 and r.json()["site_state"] == "link_down"
    alarm = client.get("/api/v1/alarms", params={"site_id": "a", "open_only": True}, headers=admin_h).json()[
        0
    ]
    assert (alarm["kind"], alarm["severity"]) == ("heartbeat_lost", "warning")
    # the probe later fails: now it is down
    clock.advance(5)
    client.post("/api/v1/probes", json={"target_site_id": "a", "reachable": False}, headers=operator_h)
    assert _state(client, admin_h, "a") == "down"


def test_peer_site_probe_counts(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], clock: Clock
) -> None:
    fleet.add_site("a")
    fleet.add_site("peer")
    _healthy(client, fleet, "a", clock)
    clock.advance(40)
    client.post("/api/v1/sites/peer/heartbeat", json={}, headers=fleet.site_h["peer"])
    r = client.post(
        "/api/v1/probes", json={"target_site_id": "a", "reachable": True}, headers=fleet.site_h["peer"]
    )
    assert r.status_code == 201
    assert r.json()["observer"] == "site:peer" and r.json()["site_state"] == "link_down"


def test_ups_on_battery_means_down_even_if_probe_reaches(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], operator_h: dict[str, str], clock: Clock
) -> None:
    fleet.add_site("a")
    _healthy(client, fleet, "a", clock, ups=1)
    clock.advance(40)
    client.post("/api/v1/probes", json={"target_site_id": "a", "reachable": True}, headers=operator_h)
    _tick(client, admin_h)
    assert _state(client, admin_h, "a") == "down"


def test_buffered_readings_covering_gap_mean_link_down(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], clock: Clock
) -> None:
    fleet.add_site("a")
    start = clock.now
    clock.advance(60)
    _tick(client, admin_h)
    assert _state(client, admin_h, "a") == "down"
    # the agent uploads what it buffered while its heartbeat was not getting through
    rs = [reading("inlet", "Temperature", 22, start + timedelta(seconds=s)) for s in range(0, 60, 5)]
    r = client.post("/api/v1/sites/a/telemetry", json=batch(rs), headers=fleet.site_h["a"])
    assert r.status_code == 201
    assert _state(client, admin_h, "a") == "link_down"
    client.post("/api/v1/sites/a/heartbeat", json={}, headers=fleet.site_h["a"])
    assert _state(client, admin_h, "a") == "up"


def test_untrusted_and_back(client: TestClient, fleet: Fleet, admin_h: dict[str, str]) -> None:
    fleet.add_site("a")
    r = client.put("/api/v1/sites/a/trust", json={"trusted": False, "reason": "door forced"}, headers=admin_h)
    assert r.status_code == 200 and r.json()["state"] == "untrusted" and r.json()["liveness"] == "up"
    client.post("/api/v1/sites/a/heartbeat", json={}, headers=fleet.site_h["a"])
    assert _state(client, admin_h, "a") == "untrusted"
    r = client.put("/api/v1/sites/a/trust", json={"trusted": True, "reason": "inspected"}, headers=admin_h)
    assert r.json()["state"] == "up"
    actions = [e["action"] for e in client.get("/api/v1/audit", headers=admin_h).json()]
    assert "site.untrust" in actions and "site.trust" in actions
