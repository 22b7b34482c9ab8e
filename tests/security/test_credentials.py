"""Credentials that die when they should: forged, cross-site, rotated, re-enrolled and long-expired site
credentials are refused; the current credential renews exactly once.

Rules: ``credential-superseded`` (only a site's current credential may renew) and
``re-enrollment-revokes`` (a fresh enrollment kills every earlier credential of the site).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from microdc.control.services import Services

from .conftest import Clock, Fleet, audit_entries, batch, bearer, counter, problem, reading

SITE_ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/api/v1/sites/a/heartbeat", {}),
    ("GET", "/api/v1/sites/a/sensors", None),
    ("GET", "/api/v1/sites/a/desired-state", None),
    ("GET", "/api/v1/auth/whoami", None),
    ("POST", "/api/v1/probes", {"target_site_id": "b", "reachable": True}),
]


def _rotate(c: TestClient, h: dict[str, str]) -> Any:
    return c.post("/api/v1/site-credentials/rotate", headers=h)


def _works(c: TestClient, h: dict[str, str], clock: Clock) -> bool:
    r = c.post("/api/v1/sites/a/heartbeat", json={}, headers=h)
    return bool(r.status_code == 200)


def _refused_everywhere(c: TestClient, h: dict[str, str], clock: Clock) -> None:
    for method, path, body in SITE_ROUTES:
        r = c.request(method, path, json=body, headers=h)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
    r = c.post(
        "/api/v1/sites/a/telemetry", json=batch([reading("t", "Temperature", 22, clock.now)]), headers=h
    )
    assert r.status_code == 401, r.text
    assert _rotate(c, h).status_code == 401


def test_forged_and_cross_site_credentials_are_refused(
    client: TestClient, fleet: Fleet, clock: Clock
) -> None:
    fleet.add_site("a")
    hb = fleet.add_site("b")
    forged = bearer("mdc_s_" + "A" * 43)
    _refused_everywhere(client, forged, clock)
    # a real credential of site b cannot write or read site a
    r = client.post("/api/v1/sites/a/heartbeat", json={}, headers=hb)
    problem(r, 403, "forbidden")
    assert client.get("/api/v1/sites/a/sensors", headers=hb).status_code == 403
    # the legitimate path: a's own credential works
    assert _works(client, fleet.site_h["a"], clock)


def test_rotated_credential_cannot_renew_again(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    old = fleet.add_site("a")
    fleet.add_site("b")
    r = _rotate(client, old)
    assert r.status_code == 201, r.text  # the current credential renews ...
    new = bearer(r.json()["token"])
    assert _works(client, new, clock)
    assert _works(client, old, clock)  # (within the 120 s grace for requests in flight)
    # ... exactly once: the rotated copy (a stolen disk, a cloned agent) cannot mint another one
    body = problem(_rotate(client, old), 401, "credential-superseded")
    assert body["detail"].startswith("credential-superseded:") and "already renewed" in body["detail"]
    assert body["rule"] == "credential-superseded"
    [event] = audit_entries(services, "auth.superseded_credential")
    assert event["actor"] == "site:a" and event["outcome"] == "denied"
    assert counter(services, "microdc_security_events_total", action="auth.superseded_credential") == 1
    # the copy did not get a credential: the site still has exactly the two it had
    creds = client.get("/api/v1/sites/a/credentials", headers=fleet.admin_h).json()
    assert len(creds) == 2
    # the new, current credential renews in turn (once)
    r2 = _rotate(client, new)
    assert r2.status_code == 201
    problem(_rotate(client, new), 401, "credential-superseded")
    # The original hole: a month later the rotated copy has expired but is inside the 90-day renewal
    # window meant for offline sites — it still may not renew; the current credential may.
    clock.advance(30 * 86400)
    problem(_rotate(client, old), 401, "credential-superseded")
    problem(_rotate(client, new), 401, "credential-superseded")
    r3 = _rotate(client, bearer(r2.json()["token"]))
    assert r3.status_code == 201, r3.text
    assert _works(client, bearer(r3.json()["token"]), clock)
    assert len(audit_entries(services, "auth.superseded_credential")) == 4


def test_rotated_credential_dies_after_grace(client: TestClient, fleet: Fleet, clock: Clock) -> None:
    old = fleet.add_site("a")
    fleet.add_site("b")
    new = bearer(_rotate(client, old).json()["token"])
    clock.advance(121)
    _refused_everywhere(client, old, clock)
    assert _works(client, new, clock)


def test_expired_current_credential_renews_once(client: TestClient, fleet: Fleet, clock: Clock) -> None:
    """The legitimate offline case: a site offline for a month renews its expired (current) credential."""
    old = fleet.add_site("a")
    fleet.add_site("b")
    clock.advance(30 * 86400)
    assert not _works(client, old, clock)
    r = _rotate(client, old)
    assert r.status_code == 201, r.text
    assert _works(client, bearer(r.json()["token"]), clock)
    assert _rotate(client, old).status_code == 401


def test_expired_beyond_renewal_window_fails(client: TestClient, fleet: Fleet, clock: Clock) -> None:
    old = fleet.add_site("a")
    fleet.add_site("b")
    clock.advance(7 * 86400 + 90 * 86400 + 1)  # 7-day lifetime, then the 90-day renewal window
    _refused_everywhere(client, old, clock)
    problem(_rotate(client, old), 401, "unauthorized")


def test_reenrollment_revokes_every_earlier_credential(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    first = fleet.add_site("a")
    fleet.add_site("b")
    rotated = bearer(_rotate(client, first).json()["token"])  # two live credentials now (grace)
    cred = fleet.enroll("a")  # the site is re-installed: a new identity
    fresh = bearer(cred["token"])
    for h in (first, rotated):
        _refused_everywhere(client, h, clock)
    assert _works(client, fresh, clock)
    creds = client.get("/api/v1/sites/a/credentials", headers=fleet.admin_h).json()
    live = [c for c in creds if c["revoked_at"] is None]
    assert [c["id"] for c in live] == [cred["token_id"]]
    assert all(c["revoked_by"].startswith("re-enrollment") for c in creds if c["revoked_at"])
    redeems = audit_entries(services, "enrollment.redeem")
    assert redeems[-1]["details"]["revoked_earlier_credentials"] == 2
    # another site's credential is untouched by a's re-enrollment
    assert client.post("/api/v1/sites/b/heartbeat", json={}, headers=fleet.site_h["b"]).status_code == 200
