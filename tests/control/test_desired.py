"""Placement rules, drain on break-in (sovereignty kept), desired state with ETag and acks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient

from microdc.control.app import create_app
from microdc.control.desired import Assignment, FleetSite, PlacementResult, RulePlacer, WorkloadSpec

from .conftest import T0, Clock, Fleet, batch, make_user, reading, test_settings


def site(
    id_: str,
    j: str = "DE",
    tier: int = 3,
    cores: float = 64,
    liveness: str = "up",
    trusted: bool = True,
    anc: tuple[str, ...] = ("EU",),
) -> FleetSite:
    return FleetSite(id_, liveness, trusted, j, tier, cores, anc)


def wl(
    id_: str,
    *,
    origin: str = "DE",
    allowed: tuple[str, ...] = (),
    tier: int = 1,
    cores: float = 8,
    cur: str | None = None,
) -> WorkloadSpec:
    return WorkloadSpec(id_, "personal", origin, cores, tier, allowed, cur)


def place(fleet: list[FleetSite], wls: list[WorkloadSpec], untrusted_tier: int = 0) -> dict[str, Assignment]:
    return RulePlacer(untrusted_tier).place(fleet, wls).by_workload()


def test_sovereignty_including_ancestors() -> None:
    fleet = [site("fr", j="FR"), site("de", j="DE"), site("us", j="US", anc=())]
    out = place(fleet, [wl("a"), wl("b", allowed=("EU",)), wl("c", origin="US")])
    assert out["a"].site_id == "de"
    assert out["b"].site_id in {"fr", "de"}
    assert out["c"].site_id == "us"


def test_tier_capacity_and_degraded() -> None:
    fleet = [site("low", tier=1), site("small", tier=3, cores=4)]
    out = place(fleet, [wl("a", tier=2, cores=8)])
    assert out["a"].state == "degraded" and out["a"].site_id is None
    assert "no legal target" in out["a"].reason


def test_sticky_held_and_replaced() -> None:
    fleet = [site("a"), site("b"), site("c", liveness="link_down"), site("d", liveness="down")]
    out = place(fleet, [wl("keep", cur="b"), wl("held", cur="c"), wl("moved", cur="d")])
    assert (out["keep"].site_id, out["keep"].state) == ("b", "assigned")
    assert (out["held"].site_id, out["held"].state) == ("c", "held")
    assert out["moved"].site_id in {"a", "b"} and out["moved"].state == "assigned"


def test_untrusted_site_drains_by_tier() -> None:
    fleet = [site("a", trusted=False), site("b", j="FR")]
    out = place(fleet, [wl("pub", cur="a", tier=1), wl("sec", cur="a", tier=2)], untrusted_tier=1)
    assert out["pub"].site_id == "a"
    assert out["sec"].state == "degraded"  # only FR is left and personal data must stay in DE


@pytest.fixture
def settings_kw() -> dict[str, Any]:
    return {"untrusted_security_tier": 1, "ups_dwell_s": 0}


def _wl(c: TestClient, h: dict[str, str], id_: str, **kw: Any) -> dict[str, Any]:
    body = {"id": id_, "data_class": "personal", "origin_jurisdiction": "DE", "cores": 8, **kw}
    r = c.post("/api/v1/workloads", json=body, headers=h)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_break_in_drains_but_never_breaks_sovereignty(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], operator_h: dict[str, str], clock: Clock
) -> None:
    fleet.add_site("de-1", tier=3)
    fleet.add_site("de-2", tier=1)
    fleet.add_site("fr-1", jurisdiction="FR", tier=3)
    assert _wl(client, operator_h, "personal-de", min_security_tier=2)["site_id"] == "de-1"
    assert _wl(client, operator_h, "health-eu", allowed_jurisdictions=["EU"], min_security_tier=2, cores=60)[
        "site_id"
    ] in {"de-1", "fr-1"}
    client.patch("/api/v1/workloads/health-eu", json={"cores": 8}, headers=operator_h)
    pub = _wl(client, operator_h, "public-de", data_class="public", min_security_tier=1, cores=1)
    # force everything onto de-1 for the scenario: the other sites are full
    assert pub["site_id"] in {"de-1", "de-2"}
    # door opened outside any maintenance window, then the operator confirms a break-in
    r = client.post(
        "/api/v1/sites/de-1/telemetry",
        json=batch([reading("door", "Door", 1, clock.now)]),
        headers=fleet.site_h["de-1"],
    )
    assert r.status_code == 201
    alarm = client.get(
        "/api/v1/alarms", params={"site_id": "de-1", "open_only": True}, headers=admin_h
    ).json()[0]
    assert alarm["kind"] == "door_open" and alarm["severity"] == "critical" and not alarm["break_in"]
    before = client.get("/api/v1/sites/de-1/desired-state", headers=fleet.site_h["de-1"]).json()
    r = client.post(
        f"/api/v1/alarms/{alarm['id']}/break-in", json={"note": "lock forced"}, headers=operator_h
    )
    assert r.status_code == 200 and r.json()["break_in"]
    assert client.get("/api/v1/sites/de-1", headers=admin_h).json()["state"] == "untrusted"
    wls = {w["id"]: w for w in client.get("/api/v1/workloads", headers=admin_h).json()}
    # personal DE data needing tier 2: de-2 is tier 1, fr-1 is outside DE → unassigned, not moved illegally
    assert wls["personal-de"]["site_id"] is None and wls["personal-de"]["placement_state"] == "degraded"
    # EU health data may go to France
    assert wls["health-eu"]["site_id"] == "fr-1"
    # public data (tier 1) may stay on a site that still provides tier 1 when untrusted
    assert wls["public-de"]["placement_state"] == "assigned"
    after = client.get("/api/v1/sites/de-1/desired-state", headers=fleet.site_h["de-1"]).json()
    assert after["version"] > before["version"]
    assert {w["id"] for w in after["workloads"]} <= {"public-de"}
    for w in wls.values():
        if w["site_id"] == "fr-1":
            assert "EU" in w["allowed_jurisdictions"]


def test_desired_state_etag_and_ack(client: TestClient, fleet: Fleet, operator_h: dict[str, str]) -> None:
    h = fleet.add_site("a")
    r = client.get("/api/v1/sites/a/desired-state", headers=h)
    assert r.status_code == 200 and r.json()["workloads"] == []
    tag = r.headers["etag"]
    assert client.get("/api/v1/sites/a/desired-state", headers={**h, "If-None-Match": tag}).status_code == 304
    _wl(client, operator_h, "w")
    r = client.get("/api/v1/sites/a/desired-state", headers={**h, "If-None-Match": tag})
    assert r.status_code == 200 and [w["id"] for w in r.json()["workloads"]] == ["w"]
    v = r.json()["version"]
    r = client.post("/api/v1/sites/a/desired-state/ack", json={"version": v, "status": "applied"}, headers=h)
    assert r.status_code == 200 and r.json()["up_to_date"]
    r = client.post(
        "/api/v1/sites/a/desired-state/ack", json={"version": v + 5, "status": "applied"}, headers=h
    )
    assert r.status_code == 409
    assert client.get("/api/v1/sites/a", headers=operator_h).json()["desired_acked_version"] == v


class EvilPlacer:
    def place(self, fleet: Sequence[FleetSite], workloads: Sequence[WorkloadSpec]) -> PlacementResult:
        return PlacementResult([Assignment(w.id, "us-1", "assigned", "cheapest") for w in workloads])


def test_illegal_proposals_from_a_plugged_placer_are_refused(tmp_path: Any) -> None:
    app = create_app(test_settings(f"sqlite:///{tmp_path}/p.db"), placer=EvilPlacer(), clock=Clock(T0))
    with TestClient(app) as c:
        h = make_user(
            app.state.services, "root", __import__("microdc.control.security").control.security.Role.ADMIN
        )
        f = Fleet(c, h)
        f.add_site("de-1")
        f.add_site("us-1", jurisdiction="US", ancestors=[])
        w = _wl(c, h, "personal-de")
        assert w["site_id"] is None and w["placement_state"] == "degraded"
        assert "illegal" in w["placement_reason"]
