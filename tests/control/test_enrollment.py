"""Enrollment tokens (single use, TTL), site credentials (expiry, rotate, revoke), login, rate limits."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from microdc.control.security import Role
from microdc.control.services import Services

from .conftest import Clock, Fleet, make_user, site_body


def _site_and_token(client: TestClient, admin_h: dict[str, str], site: str = "a") -> str:
    assert client.post("/api/v1/sites", json=site_body(site), headers=admin_h).status_code == 201
    r = client.post(f"/api/v1/sites/{site}/enrollment-tokens", headers=admin_h)
    assert r.status_code == 201
    token: str = r.json()["token"]
    assert token.startswith("mdc_e_")
    return token


def _audit_actions(client: TestClient, admin_h: dict[str, str]) -> list[str]:
    return [e["action"] for e in client.get("/api/v1/audit", headers=admin_h).json()]


def test_enrollment_token_is_single_use(client: TestClient, admin_h: dict[str, str]) -> None:
    token = _site_and_token(client, admin_h)
    r = client.post("/api/v1/enroll", json={"token": token, "agent_version": "1.2.3"})
    assert r.status_code == 201
    cred = r.json()
    assert cred["site_id"] == "a" and cred["token"].startswith("mdc_s_")
    r2 = client.post("/api/v1/enroll", json={"token": token})
    assert r2.status_code == 401 and "already used" in r2.json()["detail"]
    assert r2.headers["content-type"] == "application/problem+json"
    h = {"Authorization": f"Bearer {cred['token']}"}
    assert client.get("/api/v1/auth/whoami", headers=h).json()["site_id"] == "a"
    actions = _audit_actions(client, admin_h)
    assert "enrollment.token_create" in actions and "enrollment.redeem" in actions
    assert "enrollment.failed" in actions
    assert client.get("/api/v1/sites/a", headers=admin_h).json()["agent_version"] == "1.2.3"


def test_enrollment_token_expires(client: TestClient, admin_h: dict[str, str], clock: Clock) -> None:
    token = _site_and_token(client, admin_h)
    clock.advance(15 * 60 + 1)
    r = client.post("/api/v1/enroll", json={"token": token})
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_unknown_enrollment_token(client: TestClient) -> None:
    r = client.post("/api/v1/enroll", json={"token": "mdc_e_nope"})
    assert r.status_code == 401 and r.json()["type"] == "urn:microdc:problem:enrollment-failed"


def test_site_credential_expires(client: TestClient, fleet: Fleet, clock: Clock) -> None:
    h = fleet.add_site("a")
    clock.advance(7 * 86400 + 1)
    r = client.post("/api/v1/sites/a/heartbeat", json={}, headers=h)
    assert r.status_code == 401


def test_credential_expired_while_offline_renews_once(
    client: TestClient, fleet: Fleet, clock: Clock, admin_h: dict[str, str]
) -> None:
    old = fleet.add_site("a")
    clock.advance(30 * 86400)  # a month offline: the 7-day credential expired meanwhile
    assert client.post("/api/v1/sites/a/heartbeat", json={}, headers=old).status_code == 401
    r = client.post("/api/v1/site-credentials/rotate", headers=old)
    assert r.status_code == 201, r.text
    new = {"Authorization": f"Bearer {r.json()['token']}"}
    assert client.post("/api/v1/sites/a/heartbeat", json={}, headers=new).status_code == 200
    # The expired credential renewed once; it cannot mint a second one.
    assert client.post("/api/v1/site-credentials/rotate", headers=old).status_code == 401
    assert client.post("/api/v1/sites/a/heartbeat", json={}, headers=old).status_code == 401


def test_long_expired_or_revoked_credential_cannot_renew(
    client: TestClient, fleet: Fleet, clock: Clock, admin_h: dict[str, str]
) -> None:
    old = fleet.add_site("a")
    clock.advance(7 * 86400 + 91 * 86400)
    assert client.post("/api/v1/site-credentials/rotate", headers=old).status_code == 401
    h = fleet.add_site("b")
    client.post("/api/v1/sites/b/credentials/revoke", headers=admin_h)
    assert client.post("/api/v1/site-credentials/rotate", headers=h).status_code == 401


def test_rotate_with_grace_then_old_fails(
    client: TestClient, fleet: Fleet, clock: Clock, admin_h: dict[str, str]
) -> None:
    old = fleet.add_site("a")
    r = client.post("/api/v1/site-credentials/rotate", headers=old)
    assert r.status_code == 201
    new = {"Authorization": f"Bearer {r.json()['token']}"}
    assert r.json()["expires_at"] > clock.now.isoformat()
    assert client.post("/api/v1/sites/a/heartbeat", json={}, headers=new).status_code == 200
    assert client.post("/api/v1/sites/a/heartbeat", json={}, headers=old).status_code == 200  # grace
    clock.advance(121)
    assert client.post("/api/v1/sites/a/heartbeat", json={}, headers=old).status_code == 401
    assert client.post("/api/v1/sites/a/heartbeat", json={}, headers=new).status_code == 200
    assert "site.credential_rotate" in _audit_actions(client, admin_h)


def test_admin_revokes_a_credential(client: TestClient, fleet: Fleet, admin_h: dict[str, str]) -> None:
    h = fleet.add_site("a")
    creds = client.get("/api/v1/sites/a/credentials", headers=admin_h).json()
    assert len(creds) == 1 and "token" not in creds[0] and "token_hash" not in creds[0]
    r = client.delete(f"/api/v1/tokens/{creds[0]['id']}", headers=admin_h)
    assert r.status_code == 200 and r.json()["revoked_at"] and r.json()["revoked_by"] == "user:alice"
    assert client.post("/api/v1/sites/a/heartbeat", json={}, headers=h).status_code == 401
    assert "token.revoke" in _audit_actions(client, admin_h)


def test_admin_revokes_all_credentials_of_a_site(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str]
) -> None:
    h = fleet.add_site("a")
    r = client.post("/api/v1/site-credentials/rotate", headers=h)
    h2 = {"Authorization": f"Bearer {r.json()['token']}"}
    r = client.post("/api/v1/sites/a/credentials/revoke", headers=admin_h)
    assert r.status_code == 200 and all(t["revoked_at"] for t in r.json())
    for hh in (h, h2):
        assert client.post("/api/v1/sites/a/heartbeat", json={}, headers=hh).status_code == 401


def test_user_token_revocation_and_logout(
    client: TestClient, services: Services, admin_h: dict[str, str]
) -> None:
    h = make_user(services, "bob", Role.OPERATOR)
    assert client.get("/api/v1/auth/whoami", headers=h).json()["role"] == "operator"
    assert client.post("/api/v1/auth/logout", headers=h).status_code == 204
    assert client.get("/api/v1/auth/whoami", headers=h).status_code == 401


def test_disabled_user_is_locked_out(client: TestClient, services: Services, admin_h: dict[str, str]) -> None:
    h = make_user(services, "bob", Role.VIEWER)
    uid = next(u for u in client.get("/api/v1/users", headers=admin_h).json() if u["name"] == "bob")["id"]
    assert client.patch(f"/api/v1/users/{uid}", json={"disabled": True}, headers=admin_h).status_code == 200
    assert client.get("/api/v1/sites", headers=h).status_code == 401


def test_password_login(client: TestClient, admin_h: dict[str, str], clock: Clock) -> None:
    r = client.post(
        "/api/v1/users",
        json={"name": "pat", "role": "viewer", "password": "correct horse battery"},
        headers=admin_h,
    )
    assert r.status_code == 201 and r.json()["has_password"]
    bad = client.post("/api/v1/auth/login", json={"username": "pat", "password": "wrong password!!"})
    assert bad.status_code == 401
    nouser = client.post("/api/v1/auth/login", json={"username": "nobody", "password": "whatever it is"})
    assert nouser.status_code == 401 and nouser.json()["detail"] == bad.json()["detail"]
    ok = client.post("/api/v1/auth/login", json={"username": "pat", "password": "correct horse battery"})
    assert ok.status_code == 201
    h = {"Authorization": f"Bearer {ok.json()['token']}"}
    assert client.get("/api/v1/sites", headers=h).status_code == 200
    clock.advance(12 * 3600 + 1)
    assert client.get("/api/v1/sites", headers=h).status_code == 401
    actions = _audit_actions(client, admin_h)
    assert actions.count("auth.login_failed") == 2 and "auth.login" in actions


class TestRateLimits:
    @pytest.fixture
    def settings_kw(self) -> dict[str, Any]:
        return {"enroll_burst": 3, "login_burst": 2, "rotate_burst": 1}

    def test_enrollment_rate_limited_per_ip(self, client: TestClient, admin_h: dict[str, str]) -> None:
        codes = [
            client.post("/api/v1/enroll", json={"token": f"mdc_e_guess{i}"}).status_code for i in range(5)
        ]
        assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]
        r = client.post("/api/v1/enroll", json={"token": "mdc_e_more"})
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        body = r.json()
        assert r.headers["content-type"] == "application/problem+json"
        assert body["status"] == 429 and body["type"] == "urn:microdc:problem:rate-limited"

    def test_login_rate_limited(self, client: TestClient) -> None:
        codes = [
            client.post("/api/v1/auth/login", json={"username": "x", "password": "y"}).status_code
            for _ in range(4)
        ]
        assert codes == [401, 401, 429, 429]

    def test_rotation_rate_limited_per_site(self, client: TestClient, fleet: Fleet) -> None:
        h = fleet.add_site("a")
        assert client.post("/api/v1/site-credentials/rotate", headers=h).status_code == 201
        r = client.post("/api/v1/site-credentials/rotate", headers=h)
        assert r.status_code == 429 and "retry-after" in r.headers
