"""The control plane's own watch: a gap in it (not running, or its periodic loop stalled) is recorded, and
sites silent since before it are not judged until the restart grace has passed (heartbeat timeout +
margin) — then by what arrived after the control plane came back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from microdc.control import jobs, watch
from microdc.control.app import create_app
from microdc.control.db import Database
from microdc.control.security import Role
from microdc.control.settings import Settings

from .conftest import T0, Clock, Fleet, make_user, test_settings

KW: dict[str, Any] = {"heartbeat_interval_s": 10, "heartbeat_missed_intervals": 3, "down_hold_s": 0}


def _settings(db_url: str, **kw: Any) -> Settings:
    return test_settings(db_url, **{**KW, **kw})


def test_grace_and_gap_settings() -> None:
    s = Settings(heartbeat_interval_s=30, heartbeat_missed_intervals=3, restart_grace_margin_s=60)
    assert s.restart_grace_s == 150  # never shorter than the heartbeat timeout
    assert s.watch_gap_s == 30
    assert Settings(maintenance_interval_s=20).watch_gap_s == 60


def test_record_detects_gaps_and_audits_them(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    settings = _settings(url, restart_grace_margin_s=5)
    db = Database(url)
    db.migrate()
    try:
        with db.session() as s:
            v = watch.record(s, T0, settings, start=True, actor="t")
        assert v.watching_since == T0  # first ever: nothing before it was watched
        with db.session() as s:  # a tick within the gap threshold (3 x 10 s): no gap
            v = watch.record(s, T0 + timedelta(seconds=25), settings, start=False, actor="t")
        assert v.watching_since == T0 and v.last_gap_from is None
        later = T0 + timedelta(seconds=25 + 31)
        with db.session() as s:
            v = watch.record(s, later, settings, start=False, actor="t")
        assert v.watching_since == later
        assert (v.last_gap_from, v.last_gap_to) == (T0 + timedelta(seconds=25), later)
        with db.read_session() as s:
            from microdc.control.models import AuditEntry, ControlPlaneWatch

            row = s.get(ControlPlaneWatch, 1)
            assert row is not None and row.gaps == 1
            actions = [a.action for a in s.query(AuditEntry).order_by(AuditEntry.seq)]
        assert actions == ["control_plane.gap"]
        # the tick that ends a long health pass is no gap: requests were served meanwhile
        with db.session() as s:
            v2 = watch.record(s, later + timedelta(seconds=300), settings, start=False, actor="t", busy=True)
        assert v2.watching_since == later
        # grace: a site silent since before `later` is not judged until later + 30 + 5 s
        hb = T0
        assert watch.in_restart_grace(v, hb, later + timedelta(seconds=34), settings)
        assert not watch.in_restart_grace(v, hb, later + timedelta(seconds=35), settings)
        # a site heard from after the control plane came back is judged by its own heartbeats
        assert not watch.in_restart_grace(
            v, later + timedelta(seconds=1), later + timedelta(seconds=2), settings
        )
    finally:
        db.dispose()


def test_restart_after_outage_judges_sites_by_what_arrives_after(tmp_path: Any) -> None:
    """Stop the control plane for 10 minutes, start it again: no site goes suspect/down, no alarm, no
    placement change during the grace; a site that stays silent after it is judged then."""
    url = f"sqlite:///{tmp_path}/restart.db"
    clock = Clock()
    app = create_app(_settings(url, restart_grace_margin_s=10), clock=clock)
    with TestClient(app, raise_server_exceptions=False) as c:
        admin = make_user(app.state.services, "root", Role.ADMIN)
        fleet = Fleet(c, admin)
        fleet.add_site("a")
        fleet.add_site("b")
        r = c.post(
            "/api/v1/workloads",
            json={"id": "w1", "data_class": "public", "origin_jurisdiction": "DE", "cores": 4},
            headers=admin,
        )
        assert r.status_code == 201
        before = {
            s["id"]: (s["state"], s["desired_version"]) for s in c.get("/api/v1/sites", headers=admin).json()
        }
        w_before = c.get("/api/v1/workloads/w1", headers=admin).json()
    assert {k: v[0] for k, v in before.items()} == {"a": "up", "b": "up"}
    assert w_before["site_id"] in ("a", "b") and w_before["placement_state"] == "assigned"

    clock.advance(600)  # the control plane is down for 10 minutes; the agents keep trying
    app2 = create_app(_settings(url, restart_grace_margin_s=10), clock=clock)
    with TestClient(app2, raise_server_exceptions=False) as c:
        view = jobs.record_watch(app2.state.services, start=False)
        assert view.watching_since == clock.now and view.last_gap_to == clock.now
        # within the grace (30 s timeout + 10 s margin): nothing is judged, however stale the heartbeats
        for _ in range(3):
            out = c.post("/api/v1/admin/maintenance", headers=admin).json()
            assert out["transitions"] == []
            clock.advance(13)
        # site a's agent gets through; b stays silent
        assert c.post("/api/v1/sites/a/heartbeat", json={}, headers=fleet.site_h["a"]).status_code == 200
        after = {
            s["id"]: (s["state"], s["desired_version"]) for s in c.get("/api/v1/sites", headers=admin).json()
        }
        assert after == before
        assert c.get("/api/v1/alarms", headers=admin).json() == []
        assert c.get("/api/v1/workloads/w1", headers=admin).json() == w_before
        # the grace is over (39 s + 1 s): b, silent since before the outage, is judged now
        clock.advance(2)
        out = c.post("/api/v1/admin/maintenance", headers=admin).json()
        assert len(out["transitions"]) == 1 and out["transitions"][0].startswith("b: up -> suspect")
        actions = [e["action"] for e in c.get("/api/v1/audit", headers=admin).json()]
        assert "control_plane.gap" in actions
