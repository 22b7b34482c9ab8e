"""Workload run specs in the API: validation naming the field, the spec in desired state, a changed spec
bumping the site's version, volume sovereignty in placement (rule and online placers), status reports."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from microdc.control.dashboard import queries
from microdc.control.desired import FleetSite, RulePlacer, WorkloadSpec
from microdc.control.online_placer import OnlinePlacer
from microdc.control.services import Services
from microdc.protocol.alarm_rules import Thresholds
from microdc.protocol.workload import WorkloadRunSpec, spec_hash

from .conftest import T0, Fleet

SPEC: dict[str, Any] = {
    "image": "localhost/web:1.2",
    "command": ["/bin/httpd", "-f", "-p", "8080"],
    "env": {"MODE": "prod"},
    "cpus": 1.5,
    "memory_mb": 256,
    "ports": [8080],
    "health": {"probe": {"kind": "http", "port": 8080, "path": "/healthz"}, "interval_s": 5, "retries": 3},
    "restart": {"policy": "on-failure", "backoff_initial_s": 2, "backoff_max_s": 60},
    "volumes": [{"name": "records", "path": "/data", "data_class": "personal", "jurisdiction": "DE"}],
}


def body(wid: str, spec: dict[str, Any] | None = SPEC, **kw: Any) -> dict[str, Any]:
    b = {
        "id": wid,
        "data_class": "personal",
        "origin_jurisdiction": "DE",
        "allowed_jurisdictions": ["EU"],
        "cores": 2,
        **kw,
    }
    if spec is not None:
        b["spec"] = spec
    return b


def test_spec_round_trip_and_desired_state(client: TestClient, fleet: Fleet, admin_h: dict[str, str]) -> None:
    site_h = fleet.add_site("de1")
    r = client.post("/api/v1/workloads", json=body("w1"), headers=admin_h)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["spec"]["image"] == "localhost/web:1.2" and out["site_id"] == "de1"
    assert out["spec_hash"] == spec_hash(WorkloadRunSpec.model_validate(SPEC))
    d = client.get("/api/v1/sites/de1/desired-state", headers=site_h).json()
    (w,) = d["workloads"]
    assert WorkloadRunSpec.model_validate(w["spec"]) == WorkloadRunSpec.model_validate(SPEC)
    assert w["spec_hash"] == out["spec_hash"]
    v = d["version"]
    # a changed spec: the site gets a new version (it replaces the running copy); the same spec: none
    r = client.patch(
        "/api/v1/workloads/w1", json={"spec": {**SPEC, "env": {"MODE": "canary"}}}, headers=admin_h
    )
    assert r.status_code == 200, r.text
    d2 = client.get("/api/v1/sites/de1/desired-state", headers=site_h).json()
    assert d2["version"] > v and d2["workloads"][0]["spec"]["env"] == {"MODE": "canary"}
    client.patch("/api/v1/workloads/w1", json={"spec": {**SPEC, "env": {"MODE": "canary"}}}, headers=admin_h)
    assert client.get("/api/v1/sites/de1/desired-state", headers=site_h).json()["version"] == d2["version"]


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"args": ["x"]}, "spec", "image (podman) or a command"),
        ({"image": "busybox"}, "spec", "pinned by a tag or a digest"),
        ({"image": "Busy Box:1"}, "spec.image", "pattern"),
        ({"command": ["x"], "cpus": 0}, "spec.cpus", "greater than 0"),
        ({"command": ["x"], "ports": [70000]}, "spec.ports.0", "less than or equal to 65535"),
        ({"command": ["x"], "health": {"probe": {"kind": "smtp"}}}, "spec.health.probe", "kind"),
        ({"command": ["x"], "restart": {"policy": "sometimes"}}, "spec.restart.policy", "always"),
        (
            {"command": ["x"], "restart": {"backoff_initial_s": 9, "backoff_max_s": 1}},
            "spec.restart",
            "backoff_max_s",
        ),
        (
            {
                "command": ["x"],
                "volumes": [{"name": "d", "path": "rel", "data_class": "p", "jurisdiction": "DE"}],
            },
            "spec.volumes.0.path",
            "pattern",
        ),
        (
            {"command": ["x"], "volumes": [{"name": "d", "path": "/d", "data_class": "p"}]},
            "spec.volumes.0.jurisdiction",
            "required",
        ),
        ({"command": ["x"], "env": {"1BAD": "v"}}, "spec.env.1BAD", "pattern"),
    ],
)
def test_bad_specs_are_422_naming_the_field(
    client: TestClient, admin_h: dict[str, str], spec: dict[str, Any], field: str, words: str
) -> None:
    r = client.post("/api/v1/workloads", json=body("bad", spec), headers=admin_h)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    locs = [".".join(str(p) for p in e["loc"][1:]) for e in errors]
    assert any(loc == field or loc.startswith(field + ".") for loc in locs), locs
    assert any(words.lower() in e["msg"].lower() for e in errors), errors


def test_volume_jurisdiction_restricts_placement(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str]
) -> None:
    fleet.add_site("fr1", jurisdiction="FR")
    fleet.add_site("de1", jurisdiction="DE")
    # may run anywhere in the EU, but its volume's data must stay in FR: only fr1 is legal
    spec = {**SPEC, "volumes": [{**SPEC["volumes"][0], "jurisdiction": "FR"}]}
    r = client.post("/api/v1/workloads", json=body("w-fr", spec, origin_jurisdiction="DE"), headers=admin_h)
    assert r.json()["site_id"] == "fr1", r.json()
    # volumes bound to a jurisdiction with no site: not placed (degraded), never placed elsewhere
    spec_at = {**SPEC, "volumes": [{**SPEC["volumes"][0], "jurisdiction": "AT"}]}
    w = client.post("/api/v1/workloads", json=body("w-at", spec_at), headers=admin_h).json()
    assert w["site_id"] is None and w["placement_state"] == "degraded"
    assert "'AT'" in w["placement_reason"]  # the reason names the volume's jurisdiction


@pytest.mark.parametrize("placer", [RulePlacer(), OnlinePlacer()], ids=["rule", "online"])
def test_both_placers_keep_stored_data_in_its_jurisdiction(placer: Any) -> None:
    fleet = [
        FleetSite("de", "up", True, "DE", 3, 64, ("EU",)),
        FleetSite("fr", "up", True, "FR", 3, 64, ("EU",)),
    ]
    free = WorkloadSpec("free", "personal", "DE", 1, 1, ("EU",))
    bound = WorkloadSpec("bound", "personal", "DE", 1, 1, ("EU",), volume_jurisdictions=("FR",))
    nested = WorkloadSpec("nested", "personal", "DE", 1, 1, ("EU",), volume_jurisdictions=("EU", "FR"))
    split = WorkloadSpec("split", "personal", "DE", 1, 1, ("EU",), volume_jurisdictions=("DE", "FR"))
    out = placer.place(fleet, [free, bound, nested, split]).by_workload()
    assert out["free"].site_id in {"de", "fr"}
    assert out["bound"].site_id == "fr"
    assert out["nested"].site_id == "fr"
    assert out["split"].site_id is None  # data bound to DE and to FR: no site holds both


def test_status_report_is_stored_and_shown(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], services: Services
) -> None:
    site_h = fleet.add_site("de1")
    other_h = fleet.add_site("de2")
    client.post("/api/v1/workloads", json=body("w1"), headers=admin_h)
    report = {
        "desired_version": 1,
        "observed_at": T0.isoformat(),
        "workloads": [
            {
                "workload_id": "w1",
                "state": "failed",
                "exit_code": 3,
                "restarts": 4,
                "spec_hash": "abc",
                "message": "exited with code 3",
                "healthy": False,
            },
        ],
    }
    assert client.post("/api/v1/sites/de1/workload-status", json=report, headers=other_h).status_code == 403
    r = client.post("/api/v1/sites/de1/workload-status", json=report, headers=site_h)
    assert r.status_code == 200, r.text and r.json()["stored"] == 1
    rows = client.get("/api/v1/sites/de1/workload-status", headers=admin_h).json()
    assert [(x["workload_id"], x["state"], x["exit_code"], x["restarts"]) for x in rows] == [
        ("w1", "failed", 3, 4)
    ]
    with services.db.read_session() as s:  # the dashboard's site page shows the agent's word, not "applied"
        detail = queries.site_detail(s, "de1", now=T0, thresholds=Thresholds(), heartbeat_timeout_s=90)
    (w,) = detail["workloads"]
    assert w["run"]["state"] == "failed" and w["run"]["exit_code"] == 3 and w["run"]["current_spec"] is False
    # the next report replaces the last one
    report["workloads"] = [{"workload_id": "w1", "state": "running", "healthy": True}]
    client.post("/api/v1/sites/de1/workload-status", json=report, headers=site_h)
    rows = client.get("/api/v1/sites/de1/workload-status", headers=admin_h).json()
    assert [(x["state"], x["healthy"], x["exit_code"]) for x in rows] == [("running", True, None)]
    # a change of state is audited (the dashboard's event stream follows the audit log); a repeat is not
    audited = client.get("/api/v1/audit", params={"action": "site.workload_status"}, headers=admin_h).json()
    assert [json.loads(e["details"])["changes"][0]["to"] for e in audited] == ["failed", "running"]
    client.post("/api/v1/sites/de1/workload-status", json=report, headers=site_h)
    again = client.get("/api/v1/audit", params={"action": "site.workload_status"}, headers=admin_h).json()
    assert len(again) == 2
    bad = {**report, "workloads": [{"workload_id": "w1", "state": "sleeping"}]}
    r = client.post("/api/v1/sites/de1/workload-status", json=bad, headers=site_h)
    assert r.status_code == 422 and "state" in r.text
