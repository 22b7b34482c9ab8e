"""Dashboard login, sessions, roles and CSRF (FastAPI TestClient, no browser)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from microdc.control.models import ApiToken, AuditEntry

from .conftest import LOGIN_CSRF, PASSWORD, World, build_app, login, make_users, settings

PAGES = ["/", "/dashboard/sites/t-de-0000", "/dashboard/alarms", "/dashboard/placement", "/dashboard/audit"]
API_GETS = [
    "/dashboard/api/session",
    "/dashboard/api/fleet",
    "/dashboard/api/sites/t-de-0000",
    "/dashboard/api/sites/t-de-0000/charts",
    "/dashboard/api/alarms",
    "/dashboard/api/placement",
    "/dashboard/api/audit",
    "/dashboard/api/audit/verify",
    "/dashboard/events",
]


def audit_actions(world: World, action: str) -> list[AuditEntry]:
    with world.services.db.read_session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)))


def raise_alarm(world: World, site: str = "t-de-0000") -> int:
    from datetime import UTC, datetime

    from microdc.control.dashboard.demo import reading

    world.fleet.post(site, [reading(f"{site}.smoke", "Smoke", "Room", 1.0, datetime.now(UTC))])
    alarms = world.client.get(
        "/api/v1/alarms", params={"site_id": site}, headers=world.bearer("alice")
    ).json()
    return int(next(a["id"] for a in alarms if a["kind"] == "smoke"))


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_anonymous_browsers_to_login(anon: TestClient, path: str) -> None:
    r = anon.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/dashboard/login?next=")
    assert path in r.headers["location"]


@pytest.mark.parametrize("path", API_GETS)
def test_json_and_stream_need_a_session(anon: TestClient, path: str) -> None:
    r = anon.get(path)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")


def test_password_login_sets_a_strict_httponly_session(world: World, anon: TestClient) -> None:
    page = anon.get("/dashboard/login")
    assert "mdc_login_csrf" in page.headers["set-cookie"]
    csrf = LOGIN_CSRF.search(page.text)
    assert csrf
    r = anon.post(
        "/dashboard/login",
        data={"csrf_token": csrf[1], "next": "/dashboard/alarms", "username": "vera", "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/alarms"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("mdc_session="))
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attrs
    assert "samesite=strict" in cookie.lower()
    assert "secure" not in attrs  # plain http here; see the https test
    assert anon.get("/dashboard/alarms").status_code == 200
    assert anon.get("/dashboard/api/session").json() == {"user": "vera", "role": "viewer", "via": "cookie"}
    # the session is an ordinary, expiring, audited user token
    with world.services.db.read_session() as s:
        tok = s.scalars(select(ApiToken).where(ApiToken.description == "dashboard session")).one()
        assert tok.expires_at is not None
    logins = audit_actions(world, "auth.login")
    assert logins[-1].actor == "user:vera" and '"via":"dashboard"' in logins[-1].details


def test_cookie_is_secure_over_https(world: World) -> None:
    with TestClient(world.app, base_url="https://testserver") as c:
        page = c.get("/dashboard/login")
        csrf = LOGIN_CSRF.search(page.text)
        assert csrf
        r = c.post(
            "/dashboard/login",
            data={"csrf_token": csrf[1], "username": "vera", "password": PASSWORD},
            follow_redirects=False,
        )
        cookie = next(x for x in r.headers.get_list("set-cookie") if x.startswith("mdc_session="))
        assert "secure" in cookie.lower()


def test_token_login(world: World, anon: TestClient) -> None:
    page = anon.get("/dashboard/login")
    csrf = LOGIN_CSRF.search(page.text)
    assert csrf
    r = anon.post(
        "/dashboard/login",
        data={"csrf_token": csrf[1], "token": world.tokens["otto"]},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert anon.get("/dashboard/api/session").json()["role"] == "operator"
    # the session is a new token: logging out does not revoke the API token it was opened with
    anon.post("/dashboard/logout", data={"csrf_token": _meta_csrf(anon)}, follow_redirects=False)
    assert world.client.get("/api/v1/auth/whoami", headers=world.bearer("otto")).status_code == 200


def _meta_csrf(client: TestClient) -> str:
    from .conftest import CSRF_META

    m = CSRF_META.search(client.get("/").text)
    assert m
    return m[1]


def test_site_credentials_cannot_open_the_dashboard(world: World, anon: TestClient) -> None:
    site_token = world.fleet.tokens["t-de-0000"]["Authorization"].split()[1]
    page = anon.get("/dashboard/login")
    csrf = LOGIN_CSRF.search(page.text)
    assert csrf
    r = anon.post(
        "/dashboard/login", data={"csrf_token": csrf[1], "token": site_token}, follow_redirects=False
    )
    assert r.status_code == 401
    assert "mdc_session" not in r.headers.get("set-cookie", "")
    anon.cookies.set("mdc_session", site_token)
    assert anon.get("/", follow_redirects=False).status_code == 303
    assert (
        anon.get("/dashboard/api/fleet", headers={"Authorization": f"Bearer {site_token}"}).status_code == 401
    )


def test_wrong_password_is_refused_and_audited(world: World, anon: TestClient) -> None:
    page = anon.get("/dashboard/login")
    csrf = LOGIN_CSRF.search(page.text)
    assert csrf
    r = anon.post(
        "/dashboard/login",
        data={"csrf_token": csrf[1], "username": "vera", "password": "wrong password!"},
        follow_redirects=False,
    )
    assert r.status_code == 401
    assert "invalid user name or password" in r.text
    assert "mdc_session" not in r.headers.get("set-cookie", "")
    failed = audit_actions(world, "auth.login_failed")
    assert failed and failed[-1].actor == "anonymous:vera"
    assert PASSWORD not in failed[-1].details and "wrong password" not in failed[-1].details


def test_login_form_needs_its_csrf_token(anon: TestClient) -> None:
    r = anon.post("/dashboard/login", data={"username": "vera", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 400
    anon.get("/dashboard/login")  # sets the cookie, but the field is still missing / wrong
    r = anon.post(
        "/dashboard/login",
        data={"csrf_token": "forged", "username": "vera", "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 400


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil", "javascript:alert(1)"]
)
def test_no_open_redirect_after_login(anon: TestClient, target: str) -> None:
    page = anon.get("/dashboard/login")
    csrf = LOGIN_CSRF.search(page.text)
    assert csrf
    r = anon.post(
        "/dashboard/login",
        data={"csrf_token": csrf[1], "next": target, "username": "vera", "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_logout_revokes_the_session(world: World, anon: TestClient) -> None:
    csrf = login(anon, "vera")
    secret = anon.cookies.get("mdc_session")
    assert secret
    r = anon.post("/dashboard/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"
    assert 'mdc_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    # the token itself is dead, not just the cookie
    assert (
        world.client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 401
    )
    with TestClient(world.app) as other:
        other.cookies.set("mdc_session", secret)
        assert other.get("/", follow_redirects=False).status_code == 303


def test_logout_needs_the_csrf_token(world: World, anon: TestClient) -> None:
    login(anon, "vera")
    r = anon.post("/dashboard/logout", data={"csrf_token": "nope"}, follow_redirects=False)
    assert r.status_code == 403
    assert anon.get("/dashboard/api/session").status_code == 200  # still logged in


def test_login_is_rate_limited(db_url: str) -> None:
    app = build_app(settings(db_url, login_burst=2))
    with TestClient(app) as c:
        make_users(app.state.services)
        codes = []
        for _ in range(4):
            page = c.get("/dashboard/login")
            csrf = LOGIN_CSRF.search(page.text)
            assert csrf
            r = c.post(
                "/dashboard/login",
                data={"csrf_token": csrf[1], "username": "vera", "password": "bad password!"},
                follow_redirects=False,
            )
            codes.append(r.status_code)
        assert codes[:2] == [401, 401] and codes[2:] == [429, 429]
        assert "Retry-After" in r.headers


def test_roles(world: World) -> None:
    alarm = raise_alarm(world)
    clients: dict[str, Any] = {}
    for user in ("vera", "otto", "alice"):
        c = TestClient(world.app, raise_server_exceptions=False)
        clients[user] = (c, login(c, user))
    # viewer: sees everything but the audit log; cannot acknowledge, clear or (un)trust
    vera, vcsrf = clients["vera"]
    h = {"X-CSRF-Token": vcsrf}
    for page in PAGES[:-1]:
        assert vera.get(page).status_code == 200, page
    assert vera.get("/dashboard/audit").status_code == 403
    assert vera.get("/dashboard/api/audit").status_code == 403
    assert vera.post(f"/dashboard/api/alarms/{alarm}/acknowledge", json={}, headers=h).status_code == 403
    assert vera.post(f"/dashboard/api/alarms/{alarm}/clear", json={}, headers=h).status_code == 403
    body = {"trusted": False, "reason": "x"}
    assert vera.post("/dashboard/api/sites/t-de-0000/trust", json=body, headers=h).status_code == 403
    assert (
        world.client.get(f"/api/v1/alarms/{alarm}", headers=world.bearer("vera")).json()["state"] == "raised"
    )
    forbidden = audit_actions(world, "auth.forbidden")
    assert any(e.actor == "user:vera" for e in forbidden)
    # operator: acknowledges and clears, with who and when; no audit log, no trust
    otto, ocsrf = clients["otto"]
    h = {"X-CSRF-Token": ocsrf}
    r = otto.post(f"/dashboard/api/alarms/{alarm}/acknowledge", json={"note": "looking"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "acknowledged" and r.json()["acknowledged_by"] == "user:otto"
    assert r.json()["acknowledged_at"]
    assert otto.get("/dashboard/audit").status_code == 403
    assert otto.post("/dashboard/api/sites/t-de-0000/trust", json=body, headers=h).status_code == 403
    r = otto.post(f"/dashboard/api/alarms/{alarm}/clear", json={"note": "done"}, headers=h)
    assert r.json()["state"] == "cleared" and r.json()["cleared_by"] == "user:otto"
    # admin: audit log and trust
    alice, acsrf = clients["alice"]
    assert alice.get("/dashboard/audit").status_code == 200
    assert alice.get("/dashboard/api/audit").status_code == 200
    r = alice.post("/dashboard/api/sites/t-de-0000/trust", json=body, headers={"X-CSRF-Token": acsrf})
    assert r.status_code == 200 and r.json()["state"] == "untrusted"
    for c, _ in clients.values():
        c.close()


def test_bearer_tokens_need_no_csrf(world: World) -> None:
    alarm = raise_alarm(world)
    r = world.client.post(
        f"/dashboard/api/alarms/{alarm}/acknowledge", json={"note": "script"}, headers=world.bearer("otto")
    )
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "user:otto"
    r = world.client.get("/dashboard/api/fleet", headers=world.bearer("vera"))
    assert r.status_code == 200 and len(r.json()["rows"]) == 6


class TestCsrf:
    def test_cookie_writes_need_the_token(self, world: World, anon: TestClient) -> None:
        alarm = raise_alarm(world)
        csrf = login(anon, "otto")
        url = f"/dashboard/api/alarms/{alarm}/acknowledge"
        assert anon.post(url, json={}).status_code == 403
        assert anon.post(url, json={}, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
        assert anon.post(url, json={}, headers={"X-CSRF-Token": csrf[:-1]}).status_code == 403
        assert (
            world.client.get(f"/api/v1/alarms/{alarm}", headers=world.bearer("vera")).json()["state"]
            == "raised"
        )
        assert any(e.actor == "user:otto" for e in audit_actions(world, "auth.csrf_failed"))

    def test_cross_origin_requests_are_refused_even_with_the_token(
        self, world: World, anon: TestClient
    ) -> None:
        alarm = raise_alarm(world)
        csrf = login(anon, "otto")
        url = f"/dashboard/api/alarms/{alarm}/acknowledge"
        for headers in (
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
        ):
            r = anon.post(url, json={}, headers={"X-CSRF-Token": csrf, **headers})
            assert r.status_code == 403, headers
        r = anon.post(
            url,
            json={},
            headers={"X-CSRF-Token": csrf, "Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        )
        assert r.status_code == 200

    def test_the_token_is_bound_to_the_session(self, world: World) -> None:
        alarm = raise_alarm(world)
        with TestClient(world.app) as a, TestClient(world.app) as b:
            csrf_a = login(a, "otto")
            login(b, "otto")
            r = b.post(
                f"/dashboard/api/alarms/{alarm}/acknowledge", json={}, headers={"X-CSRF-Token": csrf_a}
            )
            assert r.status_code == 403

    def test_pages_of_a_bearer_caller_carry_no_csrf_token(self, world: World) -> None:
        r = world.client.get("/", headers=world.bearer("vera"))
        assert r.status_code == 200
        assert '<meta name="csrf-token" content="">' in r.text
