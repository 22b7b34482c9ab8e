"""Authorization matrix: every route × every kind of caller.

Rules: viewer < operator < admin for users; a site credential may only write its own site's data and
read its own sensors and desired state; anonymous callers get 401 everywhere except /health (and the
token-in-body endpoints /auth/login and /enroll, tested in test_enrollment / test_auth).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Route

from microdc.control.app import create_app
from microdc.control.security import Role

from .conftest import T0, Clock, Fleet, batch, make_user, reading, site_body, test_settings

USER_ROLES = ("viewer", "operator", "admin")
CALLERS = ("anonymous", "viewer", "operator", "admin", "own_site", "other_site")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db = tmp_path_factory.mktemp("authz") / "authz.db"
    clock = Clock()
    app = create_app(test_settings(f"sqlite:///{db}"), clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        services = app.state.services
        heads = {r: make_user(services, f"u-{r}", Role(r)) for r in USER_ROLES}
        fleet = Fleet(client, heads["admin"])
        fleet.add_site("s1")
        fleet.add_site("s2")
        fleet.add_site("victim")
        fleet.add_site("s3")
        a = heads["admin"]

        def post(path: str, body: Any) -> dict[str, Any]:
            r = client.post(path, json=body, headers=a)
            assert r.status_code in (200, 201), (path, r.text)
            out: dict[str, Any] = r.json()
            return out

        mod = client.get("/api/v1/sites/s1/modules", headers=a).json()[0]
        victim_mod = client.get("/api/v1/sites/victim/modules", headers=a).json()[0]
        server = client.get(f"/api/v1/modules/{mod['id']}/servers", headers=a).json()[0]
        victim_server = client.get(f"/api/v1/modules/{victim_mod['id']}/servers", headers=a).json()[0]
        feed = client.get("/api/v1/sites/s1/power-feeds", headers=a).json()[0]
        victim_feed = client.get("/api/v1/sites/victim/power-feeds", headers=a).json()[0]
        win = {"starts_at": T0.isoformat(), "ends_at": (T0 + timedelta(hours=1)).isoformat(), "reason": "x"}
        window = post("/api/v1/sites/s1/maintenance-windows", win)
        victim_window = post("/api/v1/sites/s1/maintenance-windows", win)
        wl = {"id": "w1", "data_class": "personal", "origin_jurisdiction": "DE", "cores": 1}
        post("/api/v1/workloads", wl)
        post("/api/v1/workloads", {**wl, "id": "victim-w"})
        # an alarm at s1: smoke
        r = client.post(
            "/api/v1/sites/s1/telemetry",
            json=batch([reading("smoke1", "Smoke", 1, T0)]),
            headers=fleet.site_h["s1"],
        )
        assert r.status_code == 201, r.text
        alarm = client.get("/api/v1/alarms", headers=a).json()[0]
        user = client.get("/api/v1/users", headers=a).json()[0]
        victim_tok = post(f"/api/v1/users/{user['id']}/tokens", {"description": "victim"})
        sensor_id = "smoke1"
        yield {
            "client": client,
            "services": services,
            "heads": {
                **heads,
                "anonymous": {},
                "own_site": fleet.site_h["s1"],
                "other_site": fleet.site_h["s2"],
            },
            "ids": {
                "site": "s1",
                "victim_site": "victim",
                "module": mod["id"],
                "victim_module": victim_mod["id"],
                "server": server["id"],
                "victim_server": victim_server["id"],
                "feed": feed["id"],
                "victim_feed": victim_feed["id"],
                "window": window["id"],
                "victim_window": victim_window["id"],
                "alarm": alarm["id"],
                "user": user["id"],
                "victim_token": victim_tok["token_id"],
                "sensor": sensor_id,
                "workload": "w1",
                "victim_workload": "victim-w",
            },
        }


def _t(sensor: str = "t1") -> dict[str, Any]:
    return batch([reading(sensor, "Temperature", 22.0, T0)])


# (method, path template, rule, body)
ROUTES: list[tuple[str, str, str, Any]] = [
    ("GET", "/health", "public", None),
    ("GET", "/openapi.json", "any", None),
    ("GET", "/docs", "any", None),
    ("GET", "/metrics", "viewer", None),
    ("GET", "/api/v1/auth/whoami", "any", None),
    ("POST", "/api/v1/auth/logout", "any", None),
    ("GET", "/api/v1/users", "admin", None),
    ("POST", "/api/v1/users", "admin", {"name": "new-{caller}", "role": "viewer"}),
    ("GET", "/api/v1/users/{user}", "admin", None),
    ("PATCH", "/api/v1/users/{user}", "admin", {}),
    ("POST", "/api/v1/users/{user}/tokens", "admin", {"description": "t"}),
    ("GET", "/api/v1/tokens", "admin", None),
    ("DELETE", "/api/v1/tokens/{victim_token}", "admin", None),
    ("GET", "/api/v1/sites", "viewer", None),
    ("POST", "/api/v1/sites", "admin", "SITE"),
    ("POST", "/api/v1/sites/import", "admin", [site_body("imported")]),
    ("GET", "/api/v1/sites/{site}", "viewer", None),
    ("PATCH", "/api/v1/sites/{site}", "admin", {"name": "S1"}),
    ("DELETE", "/api/v1/sites/{victim_site}", "admin", None),
    ("PUT", "/api/v1/sites/{site}/trust", "admin", {"trusted": True, "reason": "ok"}),
    ("GET", "/api/v1/sites/{site}/state-events", "viewer", None),
    ("GET", "/api/v1/sites/{site}/modules", "viewer", None),
    (
        "POST",
        "/api/v1/sites/{site}/modules",
        "operator",
        {"name": "m-{caller}", "rack_units": 10, "max_it_kw": 5, "cooling_kind": "dx"},
    ),
    ("GET", "/api/v1/modules/{module}", "viewer", None),
    ("PATCH", "/api/v1/modules/{module}", "operator", {"enclosure": "cab"}),
    ("DELETE", "/api/v1/modules/{victim_module}", "operator", None),
    ("GET", "/api/v1/modules/{module}/servers", "viewer", None),
    (
        "POST",
        "/api/v1/modules/{module}/servers",
        "operator",
        {"name": "x", "server_type": "t", "cores": 8, "memory_gb": 32, "idle_w": 50, "peak_w": 200},
    ),
    ("GET", "/api/v1/servers/{server}", "viewer", None),
    ("PATCH", "/api/v1/servers/{server}", "operator", {"quantity": 2}),
    ("DELETE", "/api/v1/servers/{victim_server}", "operator", None),
    ("GET", "/api/v1/sites/{site}/power-feeds", "viewer", None),
    (
        "POST",
        "/api/v1/sites/{site}/power-feeds",
        "operator",
        {"name": "B", "voltage_v": 230, "amps_a": 16, "phase": 1},
    ),
    ("GET", "/api/v1/power-feeds/{feed}", "viewer", None),
    ("PATCH", "/api/v1/power-feeds/{feed}", "operator", {"utilization": 0.5}),
    ("DELETE", "/api/v1/power-feeds/{victim_feed}", "operator", None),
    ("POST", "/api/v1/sites/{site}/enrollment-tokens", "admin", None),
    ("POST", "/api/v1/site-credentials/rotate", "site_any", None),
    ("GET", "/api/v1/sites/{site}/credentials", "admin", None),
    ("POST", "/api/v1/sites/{victim_site}/credentials/revoke", "admin", None),
    ("POST", "/api/v1/sites/{site}/telemetry", "own_site", "TELEMETRY"),
    ("POST", "/api/v1/sites/{site}/heartbeat", "own_site", {"seq": 1}),
    ("GET", "/api/v1/sites/{site}/sensors", "site_or_viewer", None),
    ("GET", "/api/v1/sites/{site}/sensors/{sensor}/history", "site_or_viewer", None),
    ("GET", "/api/v1/alarms", "viewer", None),
    ("GET", "/api/v1/alarms/{alarm}", "viewer", None),
    ("POST", "/api/v1/alarms/{alarm}/acknowledge", "operator", {"note": "seen"}),
    ("POST", "/api/v1/alarms/{alarm}/clear", "operator", {"note": "done"}),
    ("POST", "/api/v1/alarms/{alarm}/break-in", "operator", {"break_in": False}),
    ("POST", "/api/v1/sites/{site}/alarm-events", "own_site", "ALARM_EVENT"),
    ("GET", "/api/v1/sites/{site}/maintenance-windows", "viewer", None),
    (
        "POST",
        "/api/v1/sites/{site}/maintenance-windows",
        "operator",
        {"starts_at": T0.isoformat(), "ends_at": (T0 + timedelta(hours=2)).isoformat()},
    ),
    ("DELETE", "/api/v1/maintenance-windows/{victim_window}", "operator", None),
    ("POST", "/api/v1/probes", "operator_or_site", {"target_site_id": "s3", "reachable": True}),
    ("GET", "/api/v1/workloads", "viewer", None),
    (
        "POST",
        "/api/v1/workloads",
        "operator",
        {"id": "wl-{caller}", "data_class": "public", "origin_jurisdiction": "DE", "cores": 1},
    ),
    ("GET", "/api/v1/workloads/{workload}", "viewer", None),
    ("PATCH", "/api/v1/workloads/{workload}", "operator", {"name": "renamed"}),
    ("DELETE", "/api/v1/workloads/{victim_workload}", "operator", None),
    ("POST", "/api/v1/placements/recompute", "operator", None),
    ("GET", "/api/v1/sites/{site}/desired-state", "site_or_viewer", None),
    ("POST", "/api/v1/sites/{site}/desired-state/ack", "own_site", {"version": 0, "status": "applied"}),
    (
        "POST",
        "/api/v1/sites/{site}/workload-status",
        "own_site",
        {"observed_at": T0.isoformat(), "workloads": [{"workload_id": "w1", "state": "running"}]},
    ),
    ("GET", "/api/v1/sites/{site}/workload-status", "site_or_viewer", None),
    ("GET", "/api/v1/audit", "admin", None),
    ("GET", "/api/v1/audit/verify", "admin", None),
    ("POST", "/api/v1/admin/maintenance", "admin", None),
]
# Routes whose anonymous use is the point (credential in the body); covered in dedicated tests.
BODY_CREDENTIAL_ROUTES = {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/enroll")}


def allowed(rule: str, caller: str) -> bool:
    rank = {"viewer": 1, "operator": 2, "admin": 3}
    if rule == "public":
        return True
    if caller == "anonymous":
        return False
    if rule == "any":
        return True
    if rule in rank:
        return caller in rank and rank[caller] >= rank[rule]
    if rule == "own_site":
        return caller == "own_site"
    if rule == "site_any":
        return caller in ("own_site", "other_site")
    if rule == "site_or_viewer":
        return caller != "other_site"
    if rule == "operator_or_site":
        return caller in ("operator", "admin", "own_site", "other_site")
    raise AssertionError(rule)


def _body(spec: Any, caller: str, counter: list[int]) -> Any:
    counter[0] += 1
    n = counter[0]
    if spec == "SITE":
        return site_body(f"new-{caller}-{n}")
    if spec == "TELEMETRY":
        return _t()
    if spec == "ALARM_EVENT":
        return {"event_id": f"e-{caller}-{n}", "action": "raise", "kind": "custom", "ts": T0.isoformat()}
    if isinstance(spec, dict):
        return {
            k: (v.replace("{caller}", f"{caller}-{n}") if isinstance(v, str) else v) for k, v in spec.items()
        }
    return spec


def test_matrix_covers_every_route(world: dict[str, Any]) -> None:
    app = world["client"].app
    declared = {(m, p) for m, p, _, _ in ROUTES} | BODY_CREDENTIAL_ROUTES
    actual = set()
    for r in app.routes:
        if isinstance(r, APIRoute | Route) and r.methods:
            for m in r.methods - {"HEAD", "OPTIONS"}:
                actual.add((m, r.path))
    templated = {(m, p) for m, p in declared}
    # normalise the matrix's concrete placeholders to the app's path parameter names
    norm = {
        "{user}": "{user_id}",
        "{victim_token}": "{token_id}",
        "{site}": "{site_id}",
        "{victim_site}": "{site_id}",
        "{module}": "{module_id}",
        "{victim_module}": "{module_id}",
        "{server}": "{server_id}",
        "{victim_server}": "{server_id}",
        "{feed}": "{feed_id}",
        "{victim_feed}": "{feed_id}",
        "{alarm}": "{alarm_id}",
        "{victim_window}": "{window_id}",
        "{workload}": "{workload_id}",
        "{victim_workload}": "{workload_id}",
        "{sensor}": "{sensor_id}",
    }
    normalised = set()
    for m, p in templated:
        for k, v in norm.items():
            p = p.replace(k, v)
        normalised.add((m, p))
    assert actual - normalised == set(), "routes missing from the authorization matrix"


@pytest.mark.parametrize(
    ("method", "path", "rule", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
def test_route_authorization(world: dict[str, Any], method: str, path: str, rule: str, body: Any) -> None:
    client: TestClient = world["client"]
    url = path.format(**world["ids"])
    counter = [0]
    for caller in CALLERS:
        headers = dict(world["heads"][caller])
        if path.endswith("/logout") and caller != "anonymous":
            headers = _fresh_headers(world, caller)
        if path.endswith("/rotate") and caller in ("own_site", "other_site"):
            headers = dict(headers)
        r = client.request(method, url, json=_body(body, caller, counter), headers=headers)
        assert r.status_code < 500, (caller, r.status_code, r.text)
        if allowed(rule, caller):
            assert r.status_code not in (401, 403), (caller, r.status_code, r.text)
        else:
            expected = 401 if caller == "anonymous" else 403
            assert r.status_code == expected, (caller, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            if expected == 401:
                assert r.headers.get("www-authenticate", "").startswith("Bearer")


def _fresh_headers(world: dict[str, Any], caller: str) -> dict[str, str]:
    client: TestClient = world["client"]
    if caller in USER_ROLES:
        admin = world["heads"]["admin"]
        users = {u["name"]: u["id"] for u in client.get("/api/v1/users", headers=admin).json()}
        r = client.post(f"/api/v1/users/{users['u-' + caller]}/tokens", json={}, headers=admin)
        return {"Authorization": f"Bearer {r.json()['token']}"}
    site = "s1" if caller == "own_site" else "s2"
    admin = world["heads"]["admin"]
    et = client.post(f"/api/v1/sites/{site}/enrollment-tokens", headers=admin).json()["token"]
    tok = client.post("/api/v1/enroll", json={"token": et}).json()["token"]
    # Re-enrolling revoked the site's earlier credentials (tests/security): rotate, so the world keeps a
    # current credential; the enrolled one stays valid for the rotation grace, for the caller to use.
    r = client.post("/api/v1/site-credentials/rotate", headers={"Authorization": f"Bearer {tok}"})
    world["heads"][caller] = {"Authorization": f"Bearer {r.json()['token']}"}
    return {"Authorization": f"Bearer {tok}"}


def test_forbidden_attempts_are_audited(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    r = client.post("/api/v1/sites/s1/telemetry", json=_t(), headers=world["heads"]["other_site"])
    assert r.status_code == 403
    entries = client.get(
        "/api/v1/audit",
        params={"action": "auth.forbidden_site", "limit": 10000},
        headers=world["heads"]["admin"],
    ).json()
    assert any(
        e["actor"] == "site:s2" and e["target"] == "site:s1" and e["outcome"] == "denied" for e in entries
    )


def test_a_site_cannot_vouch_for_itself(world: dict[str, Any]) -> None:
    """A probe says "this site was reachable by another path": the site itself is no other path."""
    client: TestClient = world["client"]
    body = {"target_site_id": "s1", "reachable": True}
    r = client.post("/api/v1/probes", json=body, headers=world["heads"]["own_site"])
    assert r.status_code == 403, r.text
    assert "vouch for itself" in r.json()["detail"]
    peer = client.post("/api/v1/probes", json=body, headers=world["heads"]["other_site"])
    assert peer.status_code == 201, peer.text  # the clean case: a peer may
