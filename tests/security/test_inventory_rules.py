"""Inventory input that used to answer 500 — and, once stored, broke every later workload create:
jurisdiction cycles, duplicate module names, unknown data classes. Each is now a named 4xx, and a bad
state stored before the rule existed no longer fails placements.

Rules: ``jurisdiction-tree`` (422), duplicate module names (422 in one body, 409 against a stored one),
``unknown-data-class`` (422 naming the configured classes).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from microdc.control.models import Site
from microdc.control.services import Services

from .conftest import Fleet, problem, site_body


def _site(site_id: str, jurisdiction: str, ancestors: list[str], **kw: Any) -> dict[str, Any]:
    return {**site_body(site_id), "jurisdiction": jurisdiction, "jurisdiction_ancestors": ancestors, **kw}


def _workload(wid: str, data_class: str = "personal", origin: str = "DE") -> dict[str, Any]:
    return {"id": wid, "data_class": data_class, "origin_jurisdiction": origin, "cores": 1}


SERVER = {
    "name": "s",
    "server_type": "s",
    "quantity": 2,
    "cores": 32,
    "memory_gb": 128,
    "idle_w": 100,
    "peak_w": 400,
}
MODULE = {"name": "m1", "rack_units": 42, "max_it_kw": 10, "cooling_kind": "free_air"}


# --- jurisdiction-tree -------------------------------------------------------------------------------


def test_a_chain_naming_itself_is_refused(client: TestClient, fleet: Fleet) -> None:
    r = client.post("/api/v1/sites", json=_site("a", "DE", ["EU", "DE"]), headers=fleet.admin_h)
    assert r.status_code == 422, r.text
    assert "jurisdiction-tree" in r.text and "cycle" in r.text


def test_two_sites_nesting_the_other_way_round_are_refused(client: TestClient, fleet: Fleet) -> None:
    h = fleet.admin_h
    assert client.post("/api/v1/sites", json=_site("a", "DE", ["EU"]), headers=h).status_code == 201
    body = problem(
        client.post("/api/v1/sites", json=_site("b", "EU", ["DE"]), headers=h), 422, "jurisdiction-tree"
    )
    assert body["rule"] == "jurisdiction-tree" and "cycle" in body["detail"] and "'b'" in body["detail"]
    # the same through PATCH and through import
    assert client.post("/api/v1/sites", json=_site("b", "FR", ["EU"]), headers=h).status_code == 201
    r = client.patch(
        "/api/v1/sites/b", json={"jurisdiction": "EU", "jurisdiction_ancestors": ["DE"]}, headers=h
    )
    problem(r, 422, "jurisdiction-tree")
    r = client.post("/api/v1/sites/import", json=[_site("b", "EU", ["DE"])], headers=h)
    problem(r, 422, "jurisdiction-tree")
    # nothing was stored, and workloads still place
    assert client.get("/api/v1/sites/b", headers=h).json()["jurisdiction"] == "FR"
    assert client.post("/api/v1/workloads", json=_workload("w1"), headers=h).status_code == 201


def test_one_code_with_two_parents_is_refused(client: TestClient, fleet: Fleet) -> None:
    h = fleet.admin_h
    assert client.post("/api/v1/sites", json=_site("a", "DE", ["EU"]), headers=h).status_code == 201
    body = problem(
        client.post("/api/v1/sites", json=_site("b", "DE", ["DACH"]), headers=h), 422, "jurisdiction-tree"
    )
    assert body["jurisdiction"] == "DE" and "one parent" in body["detail"]
    # a longer chain that agrees is fine
    assert client.post("/api/v1/sites", json=_site("c", "DE", ["EU", "WORLD"]), headers=h).status_code == 201


def test_a_cycle_stored_before_the_rule_does_not_break_every_workload_create(
    client: TestClient, fleet: Fleet, services: Services
) -> None:
    """A stored bad state (from before the rule, or written behind the API's back) must not 500 all."""
    h = fleet.admin_h
    for sid, code in (("a", "DE"), ("b", "FR")):  # up (enrolled, heartbeating) so they can take work
        body = _site(sid, code, ["EU"], modules=[{**MODULE, "servers": [SERVER]}])
        assert client.post("/api/v1/sites", json=body, headers=h).status_code == 201
        fleet.enroll(sid)
        assert (
            client.post(f"/api/v1/sites/{sid}/heartbeat", json={}, headers=fleet.site_h[sid]).status_code
            == 200
        )
    with services.db.session() as s:
        s.execute(update(Site).where(Site.id == "b").values(jurisdiction="EU", jurisdiction_ancestors=["DE"]))
    r = client.post("/api/v1/workloads", json=_workload("w1"), headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["site_id"] == "a"
    # sovereignty is not widened by the dropped link: an FR-only workload has nowhere to go
    r = client.post("/api/v1/workloads", json=_workload("w2", origin="FR"), headers=h)
    assert r.status_code == 201 and r.json()["site_id"] is None


# --- duplicate module names --------------------------------------------------------------------------


def test_duplicate_module_names_in_one_site_are_422(client: TestClient, fleet: Fleet) -> None:
    h = fleet.admin_h
    r = client.post("/api/v1/sites", json=_site("a", "DE", ["EU"], modules=[MODULE, MODULE]), headers=h)
    assert r.status_code == 422 and "duplicate module name" in r.text and "'m1'" in r.text
    r = client.post(
        "/api/v1/sites/import",
        json=[_site("a", "DE", ["EU"], modules=[MODULE, MODULE])],
        headers=h,
    )
    assert r.status_code == 422 and "duplicate module name" in r.text


def test_renaming_a_module_onto_another_is_409(client: TestClient, fleet: Fleet) -> None:
    h = fleet.admin_h
    body = _site("a", "DE", ["EU"], modules=[MODULE, {**MODULE, "name": "m2"}])
    assert client.post("/api/v1/sites", json=body, headers=h).status_code == 201
    mods = {m["name"]: m["id"] for m in client.get("/api/v1/sites/a/modules", headers=h).json()}
    r = client.patch(f"/api/v1/modules/{mods['m2']}", json={"name": "m1"}, headers=h)
    assert r.status_code == 409 and "'m1' already exists" in r.text
    assert client.patch(f"/api/v1/modules/{mods['m2']}", json={"name": "m3"}, headers=h).status_code == 200


# --- unknown-data-class ------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_kw", [{"data_classes": ("personal", "public", "health")}])
def test_unknown_data_class_is_refused_naming_the_known_ones(client: TestClient, fleet: Fleet) -> None:
    h = fleet.admin_h
    assert client.post("/api/v1/sites", json=_site("a", "DE", ["EU"]), headers=h).status_code == 201
    body = problem(
        client.post("/api/v1/workloads", json=_workload("w1", "personnal"), headers=h),
        422,
        "unknown-data-class",
    )
    assert body["known"] == ["health", "personal", "public"] and "'personnal'" in body["detail"]
    assert client.post("/api/v1/workloads", json=_workload("w1", "personal"), headers=h).status_code == 201
    problem(
        client.patch("/api/v1/workloads/w1", json={"data_class": "secret"}, headers=h),
        422,
        "unknown-data-class",
    )
    assert client.get("/api/v1/workloads/w1", headers=h).json()["data_class"] == "personal"


def test_serve_scenario_sets_the_known_classes() -> None:
    """`microdc serve --scenario eu-sovereign` accepts exactly that scenario's policies.data_classes."""
    from microdc.cli.common import load_or_exit
    from microdc.control.settings import Settings

    classes = tuple(sorted(load_or_exit("eu-sovereign").policies.data_classes))
    assert classes == ("health", "personal", "public")
    s = Settings(data_classes=classes)
    assert Settings.from_env(s.to_env()).data_classes == classes
    assert Settings.from_env({"MICRODC_DATA_CLASSES": "a, b"}).data_classes == ("a", "b")
