"""Inventory CRUD (sites, modules, servers, power feeds) and the importer."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient

from microdc.control.schemas import SiteIn, feed_power_kw

from .conftest import site_body


def test_feed_power() -> None:
    assert feed_power_kw(400, 32, 3, 0.8) == pytest.approx(400 * 32 * 0.8 * math.sqrt(3) / 1000)
    assert feed_power_kw(230, 16, 1, 1.0) == pytest.approx(3.68)


def test_site_crud_and_derived_fields(
    client: TestClient, admin_h: dict[str, str], operator_h: dict[str, str]
) -> None:
    r = client.post("/api/v1/sites", json=site_body("a", cores=32), headers=admin_h)
    assert r.status_code == 201
    s = r.json()
    assert s["capacity_cores"] == 32 and s["max_it_kw"] == 20
    assert s["power_feed_kw"] == pytest.approx(feed_power_kw(400, 32, 3, 0.8), rel=1e-6)
    assert client.post("/api/v1/sites", json=site_body("a"), headers=admin_h).status_code == 409
    r = client.patch("/api/v1/sites/a", json={"name": "Alpha", "security_tier": 2}, headers=admin_h)
    assert r.json()["name"] == "Alpha" and r.json()["security_tier"] == 2
    mod = client.post(
        "/api/v1/sites/a/modules",
        json={"name": "m2", "rack_units": 24, "max_it_kw": 10, "cooling_kind": "free_air"},
        headers=operator_h,
    ).json()
    srv = client.post(
        f"/api/v1/modules/{mod['id']}/servers",
        json={
            "name": "gpu",
            "server_type": "xe",
            "quantity": 2,
            "cores": 16,
            "memory_gb": 512,
            "idle_w": 300,
            "peak_w": 1500,
        },
        headers=operator_h,
    )
    assert srv.status_code == 201
    assert client.get("/api/v1/sites/a", headers=admin_h).json()["capacity_cores"] == 32 + 32
    bad = client.patch(f"/api/v1/servers/{srv.json()['id']}", json={"idle_w": 2000}, headers=operator_h)
    assert bad.status_code == 409
    feed = client.post(
        "/api/v1/sites/a/power-feeds",
        json={"name": "B", "voltage_v": 230, "amps_a": 16, "phase": 1, "utilization": 1.0},
        headers=operator_h,
    ).json()
    assert feed["power_kw"] == pytest.approx(3.68)
    assert client.patch(f"/api/v1/power-feeds/{feed['id']}", json={"phase": 3}, headers=operator_h).json()[
        "power_kw"
    ] == pytest.approx(230 * 16 * math.sqrt(3) / 1000)
    assert client.delete(f"/api/v1/modules/{mod['id']}", headers=operator_h).status_code == 204
    assert client.get(f"/api/v1/servers/{srv.json()['id']}", headers=operator_h).status_code == 404
    assert client.delete("/api/v1/sites/a", headers=admin_h).status_code == 204
    assert client.get("/api/v1/sites/a", headers=admin_h).status_code == 404
    actions = [e["action"] for e in client.get("/api/v1/audit", headers=admin_h).json()]
    for a in (
        "site.create",
        "site.update",
        "module.create",
        "server.create",
        "power_feed.create",
        "module.delete",
        "site.delete",
    ):
        assert a in actions


def test_site_in_schema_is_strict() -> None:
    with pytest.raises(ValueError):
        SiteIn.model_validate({**site_body("a"), "security_tier": 5})
    with pytest.raises(ValueError):
        SiteIn.model_validate({**site_body("a"), "colour": "blue"})
