"""Liveness state machine: pure transitions, then each transition through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from microdc.control.site_state import Evidence, Liveness, assess, display_state

from .conftest import Clock, Fleet, batch, reading

L = Liveness


T = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
OVERDUE = T - timedelta(seconds=100)  # heartbeats overdue for 100 s


def _ev(**kw: Any) -> Evidence:
    return Evidence(overdue_since=OVERDUE, **kw)


FAILED = {"probes_unreachable": 2, "probes_failing_since": T - timedelta(seconds=90)}


@pytest.mark.parametrize(
    ("current", "fresh", "evidence", "expected"),
    [
        (L.UNKNOWN, True, _ev(), L.UP),
        (L.DOWN, True, _ev(), L.UP),
        (L.SUSPECT, True, _ev(), L.UP),
        (L.LINK_DOWN, True, _ev(), L.UP),
        (L.UNKNOWN, False, _ev(), L.UNKNOWN),
        # missed heartbeats alone never declare a site down: suspect, its work held
        (L.UP, False, _ev(), L.SUSPECT),
        (L.LINK_DOWN, False, _ev(), L.SUSPECT),
        # on battery is no corroboration by itself; a probe that reaches it is no proof of death either
        (L.UP, False, _ev(ups_on_battery=True, probes_reachable=1, inlet_temps_normal=True), L.SUSPECT),
        (L.UP, False, _ev(ups_on_battery=True), L.SUSPECT),
        (L.UP, False, _ev(ups_on_battery=False, probes_reachable=1, inlet_temps_normal=True), L.LINK_DOWN),
        (L.UP, False, _ev(ups_on_battery=False, probes_reachable=1, inlet_temps_normal=False), L.SUSPECT),
        # corroborated by failed probes for longer than the hold-down: down
        (L.UP, False, _ev(ups_on_battery=False, **FAILED), L.DOWN),
        (L.LINK_DOWN, False, _ev(ups_on_battery=False, **FAILED), L.DOWN),
        (L.SUSPECT, False, _ev(**FAILED), L.DOWN),
        # a probe that reached it outweighs others that failed
        (L.SUSPECT, False, _ev(probes_reachable=1, **FAILED), L.SUSPECT),
        # the uplink: up while the agent is silent corroborates; down explains the silence (work held)
        (L.SUSPECT, False, _ev(uplink_up=True, uplink_since=T - timedelta(seconds=90)), L.DOWN),
        (L.SUSPECT, False, _ev(uplink_up=False, uplink_since=T - timedelta(seconds=90)), L.LINK_DOWN),
        (L.SUSPECT, False, _ev(uplink_up=False, **FAILED), L.LINK_DOWN),
        (L.UP, False, _ev(buffered_readings_cover_gap=True), L.LINK_DOWN),
        (
            L.UP,
            False,
            _ev(buffered_readings_cover_gap=True, runtime_exhausted=True, runtime_exhausted_at=OVERDUE),
            L.DOWN,
        ),
        (L.DOWN, False, _ev(ups_on_battery=False, probes_reachable=1, inlet_temps_normal=True), L.LINK_DOWN),
        # once down, it stays down until there is evidence of life (its work has already moved)
        (L.DOWN, False, _ev(), L.DOWN),
    ],
)
def test_assess(current: Liveness, fresh: bool, evidence: Evidence, expected: Liveness) -> None:
    v = assess(current, heartbeat_fresh=fresh, evidence=evidence, now=T, hold_down_s=60)
    assert v.liveness == expected and v.reason


@pytest.mark.parametrize(
    "evidence",
    [
        _ev(**FAILED),
        _ev(uplink_up=True, uplink_since=T - timedelta(seconds=90)),
        _ev(runtime_exhausted=True, runtime_exhausted_at=T - timedelta(seconds=90)),
    ],
)
def test_hold_down(evidence: Evidence) -> None:
    """Corroborated for 90 s: down with a 60 s hold-down, suspect (and says until when) with 120 s."""
    assert assess(L.UP, heartbeat_fresh=False, evidence=evidence, now=T, hold_down_s=60).liveness == L.DOWN
    v = assess(L.UP, heartbeat_fresh=False, evidence=evidence, now=T, hold_down_s=120)
    assert v.liveness == L.SUSPECT and "hold-down until 2026-03-02 12:00:30" in v.reason
    assert v.hold_down_until == T + timedelta(seconds=30)


def test_hold_down_counts_from_when_heartbeats_became_overdue() -> None:
    """A probe failing long before the heartbeats were overdue does not shorten the hold-down."""
    ev = Evidence(
        overdue_since=T - timedelta(seconds=10),
        probes_unreachable=1,
        probes_failing_since=T - timedelta(hours=1),
    )
    assert assess(L.UP, heartbeat_fresh=False, evidence=ev, now=T, hold_down_s=60).liveness == L.SUSPECT
    later = T + timedelta(seconds=50)
    assert assess(L.UP, heartbeat_fresh=False, evidence=ev, now=later, hold_down_s=60).liveness == L.DOWN


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
    return {"heartbeat_interval_s": 10, "heartbeat_missed_intervals": 3, "ups_dwell_s": 0, "down_hold_s": 20}


def _site(c: TestClient, h: dict[str, str], site: str) -> dict[str, Any]:
    out: dict[str, Any] = c.get(f"/api/v1/sites/{site}", headers=h).json()
    return out


def _open_alarms(c: TestClient, h: dict[str, str], site: str) -> list[tuple[str, str]]:
    alarms = c.get("/api/v1/alarms", params={"site_id": site, "open_only": True}, headers=h).json()
    return [(x["kind"], x["severity"]) for x in alarms]


def _probe(c: TestClient, h: dict[str, str], site: str, reachable: bool, **kw: Any) -> dict[str, Any]:
    r = c.post("/api/v1/probes", json={"target_site_id": site, "reachable": reachable, **kw}, headers=h)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _workload(c: TestClient, h: dict[str, str], wid: str) -> dict[str, Any]:
    body = {"id": wid, "data_class": "public", "origin_jurisdiction": "DE", "cores": 4}
    r = c.post("/api/v1/workloads", json=body, headers=h)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_missed_heartbeats_alone_never_declare_down(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], clock: Clock
) -> None:
    """Silence without corroboration: suspect for ever, a warning, the work held, desired state unchanged."""
    fleet.add_site("a", heartbeat=False)
    assert _state(client, admin_h, "a") == "unknown"
    _tick(client, admin_h)
    assert _state(client, admin_h, "a") == "unknown"
    client.post("/api/v1/sites/a/heartbeat", json={}, headers=fleet.site_h["a"])
    fleet.add_site("b")
    w = _workload(client, admin_h, "w1")
    assert w["site_id"] == "a" or w["site_id"] == "b"
    on = w["site_id"]
    other = "b" if on == "a" else "a"
    client.post(f"/api/v1/sites/{other}/heartbeat", json={}, headers=fleet.site_h[other])
    versions = {s: _site(client, admin_h, s)["desired_version"] for s in ("a", "b")}
    clock.advance(29)
    assert _tick(client, admin_h)["transitions"] == []
    for _ in range(10):  # silent for 10 minutes; the other site keeps beating
        clock.advance(60)
        client.post(f"/api/v1/sites/{other}/heartbeat", json={}, headers=fleet.site_h[other])
        _tick(client, admin_h)
    got = _site(client, admin_h, on)
    assert got["state"] == "suspect", got
    assert "not corroborated" in got["liveness_reason"]
    assert got["liveness_evidence"]["probes_unreachable"] == 0
    assert _open_alarms(client, admin_h, on) == [("heartbeat_lost", "warning")]
    wl = client.get("/api/v1/workloads/w1", headers=admin_h).json()
    assert (wl["site_id"], wl["placement_state"]) == (on, "held")
    assert {s: _site(client, admin_h, s)["desired_version"] for s in ("a", "b")} == versions
    client.post(f"/api/v1/sites/{on}/heartbeat", json={}, headers=fleet.site_h[on])
    assert _state(client, admin_h, on) == "up"
    assert _open_alarms(client, admin_h, on) == []
    events = client.get(f"/api/v1/sites/{on}/state-events", headers=admin_h).json()
    assert [(e["from_state"], e["to_state"]) for e in reversed(events)][-2:] == [
        ("up", "suspect"),
        ("suspect", "up"),
    ]


def test_failed_probe_after_hold_down_declares_down_and_moves_work(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], operator_h: dict[str, str], clock: Clock
) -> None:
    fleet.add_site("a")
    _workload(client, admin_h, "w1")
    wl = client.get("/api/v1/workloads/w1", headers=admin_h).json()
    assert wl["site_id"] == "a"
    fleet.add_site("b")
    clock.advance(31)
    client.post("/api/v1/sites/b/heartbeat", json={}, headers=fleet.site_h["b"])
    _tick(client, admin_h)
    assert _state(client, admin_h, "a") == "suspect"
    out = _probe(client, operator_h, "a", False, path="icmp")
    assert out["site_state"] == "suspect"
    got = _site(client, admin_h, "a")
    assert "hold-down until 2026-03-02 12:00:51" in got["liveness_reason"], got["liveness_reason"]
    assert got["liveness_evidence"]["probes_unreachable"] == 1
    # within the hold-down: still suspect, work still held where it is
    clock.advance(15)
    client.post("/api/v1/sites/b/heartbeat", json={}, headers=fleet.site_h["b"])
    _probe(client, operator_h, "a", False, path="icmp")
    _tick(client, admin_h)
    assert _state(client, admin_h, "a") == "suspect"
    assert client.get("/api/v1/workloads/w1", headers=admin_h).json()["site_id"] == "a"
    b_version = _site(client, admin_h, "b")["desired_version"]
    # hold-down over, the probes still fail: down, critical alarm, work re-placed
    clock.advance(6)
    client.post("/api/v1/sites/b/heartbeat", json={}, headers=fleet.site_h["b"])
    out = _tick(client, admin_h)
    assert out["transitions"] and "suspect -> down" in out["transitions"][0]
    got = _site(client, admin_h, "a")
    assert got["state"] == "down" and "probe observer(s) fail to reach it" in got["liveness_reason"]
    assert _open_alarms(client, admin_h, "a") == [("heartbeat_lost", "critical")]
    assert client.get("/api/v1/workloads/w1", headers=admin_h).json()["site_id"] == "b"
    assert _site(client, admin_h, "b")["desired_version"] == b_version + 1
    events = client.get("/api/v1/sites/a/state-events", headers=admin_h).json()
    assert events[0]["to_state"] == "down" and events[0]["evidence"]["probes_unreachable"] == 1


def test_uplink_state_reports(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], operator_h: dict[str, str], clock: Clock
) -> None:
    """Uplink down explains the silence (link_down, work held); uplink up while silent corroborates."""
    fleet.add_site("a")
    fleet.add_site("b")
    clock.advance(31)
    _tick(client, admin_h)
    out = _probe(client, operator_h, "a", False, kind="uplink", path="carrier")
    assert out["kind"] == "uplink" and out["site_state"] == "link_down"
    assert "uplink is reported down" in _site(client, admin_h, "a")["liveness_reason"]
    clock.advance(30)
    assert _probe(client, operator_h, "b", True, kind="uplink")["site_state"] == "suspect"
    clock.advance(21)
    _probe(client, operator_h, "b", True, kind="uplink")
    assert _state(client, admin_h, "b") == "down"
    assert "uplink is reported up yet the agent is silent" in _site(client, admin_h, "b")["liveness_reason"]
    assert _state(client, admin_h, "a") == "link_down"


def test_link_down_by_probe_and_healthy_telemetry(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], operator_h: dict[str, str], clock: Clock
) -> None:
    fleet.add_site("a")
    _healthy(client, fleet, "a", clock)
    clock.advance(40)
    _tick(client, admin_h)
    assert _state(client, admin_h, "a") == "suspect"
    assert _probe(client, operator_h, "a", True, path="lte")["site_state"] == "link_down"
    assert _open_alarms(client, admin_h, "a") == [("heartbeat_lost", "warning")]
    # the probe later fails: suspect at once (no longer vouched for), down once the hold-down has passed
    clock.advance(5)
    _probe(client, operator_h, "a", False)
    assert _state(client, admin_h, "a") == "suspect"
    clock.advance(20)
    _tick(client, admin_h)
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


def test_ups_on_battery_is_suspect_until_its_runtime_runs_out(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], operator_h: dict[str, str], clock: Clock
) -> None:
    fleet.add_site("a")
    rs = [reading("ups", "UPSState", 1, clock.now), reading("rt", "Runtime", 1.0, clock.now)]
    client.post("/api/v1/sites/a/telemetry", json=batch(rs), headers=fleet.site_h["a"])
    clock.advance(40)
    _probe(client, operator_h, "a", True)
    _tick(client, admin_h)
    got = _site(client, admin_h, "a")
    assert got["state"] == "suspect" and got["liveness_evidence"]["ups_on_battery"] is True
    clock.advance(30)  # the runtime ran out at +60 s; the hold-down ends at +80 s
    _tick(client, admin_h)
    assert _state(client, admin_h, "a") == "suspect"
    clock.advance(11)
    _tick(client, admin_h)
    got = _site(client, admin_h, "a")
    assert got["state"] == "down" and "UPS runtime ran out" in got["liveness_reason"]


def test_buffered_readings_covering_gap_mean_link_down(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], clock: Clock
) -> None:
    fleet.add_site("a")
    start = clock.now
    clock.advance(60)
    _tick(client, admin_h)
    assert _state(client, admin_h, "a") == "suspect"
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
