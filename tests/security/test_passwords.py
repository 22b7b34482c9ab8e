"""Passwords: argon2id at (at least) OWASP cost, old scrypt hashes upgraded on login, a minimum strength
(rule ``password-strength``), and a password change ends the user's other sessions (rule
``password-change-ends-sessions``; the session that made the change keeps working)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from microdc.control.models import User
from microdc.control.security import (
    PasswordPolicy,
    hash_password,
    password_needs_rehash,
    password_problem,
    verify_password,
)
from microdc.control.services import Services
from microdc.control.settings import Settings

from .conftest import PASSWORD, audit_entries, bearer, problem


def _legacy_scrypt(password: str, n: int = 2**14) -> str:
    """A hash exactly as microdc wrote it before argon2id (security.hash_password of older versions)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, dklen=32, maxmem=2**27)
    b64 = base64.b64encode
    return f"scrypt${n}$8$1${b64(salt).decode()}${b64(digest).decode()}"


def _stored_hash(services: Services, name: str) -> str | None:
    with services.db.read_session() as s:
        return s.scalar(select(User.password_hash).where(User.name == name))


def _login(c: TestClient, name: str, password: str) -> Any:
    return c.post("/api/v1/auth/login", json={"username": name, "password": password})


def _user_id(c: TestClient, admin_h: dict[str, str], name: str) -> int:
    return int(next(u for u in c.get("/api/v1/users", headers=admin_h).json() if u["name"] == name)["id"])


def test_passwords_are_argon2id_at_owasp_cost_or_more(
    client: TestClient, services: Services, admin_h: dict[str, str]
) -> None:
    r = client.post(
        "/api/v1/users", json={"name": "pat", "role": "viewer", "password": PASSWORD}, headers=admin_h
    )
    assert r.status_code == 201, r.text
    stored = _stored_hash(services, "pat")
    assert stored is not None and stored.startswith("$argon2id$v=19$")
    params = dict(kv.split("=") for kv in stored.split("$")[3].split(","))
    assert int(params["m"]) >= 19456 and int(params["t"]) >= 2 and int(params["p"]) >= 1
    assert PASSWORD not in stored
    # the production default is RFC 9106's low-memory profile (argon2-cffi's default), above the floor
    default = Settings().password_policy
    assert (default.memory_kib, default.time_cost, default.parallelism) == (65536, 3, 4)
    assert hash_password("another long one", default).startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert _login(client, "pat", PASSWORD).status_code == 201
    assert _login(client, "pat", PASSWORD + "x").status_code == 401


def test_cost_below_owasp_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="OWASP"):
        PasswordPolicy(memory_kib=19455, time_cost=2, parallelism=1)
    with pytest.raises(ValueError, match="OWASP"):
        PasswordPolicy(memory_kib=65536, time_cost=1, parallelism=1)
    with pytest.raises(ValidationError, match="password_memory_kib"):
        Settings(password_memory_kib=4096)
    with pytest.raises(ValidationError, match="password_time_cost"):
        Settings(password_time_cost=1)


def test_legacy_scrypt_hash_logs_in_and_is_rehashed(
    client: TestClient, services: Services, admin_h: dict[str, str]
) -> None:
    """An existing database keeps working: the old hash verifies once, then it is argon2id."""
    assert (
        client.post("/api/v1/users", json={"name": "old", "role": "viewer"}, headers=admin_h).status_code
        == 201
    )
    legacy = _legacy_scrypt(PASSWORD)
    with services.db.session() as s:
        s.get(User, _user_id(client, admin_h, "old")).password_hash = legacy  # type: ignore[union-attr]
    assert _login(client, "old", "wrong password here").status_code == 401
    assert _stored_hash(services, "old") == legacy  # a failed login changes nothing
    assert _login(client, "old", PASSWORD).status_code == 201
    upgraded = _stored_hash(services, "old")
    assert upgraded is not None and upgraded.startswith("$argon2id$") and upgraded != legacy
    assert not password_needs_rehash(upgraded, services.settings.password_policy)
    [entry] = audit_entries(services, "user.password_rehash")
    assert entry["details"]["from"] == "scrypt" and PASSWORD not in str(entry)
    assert _login(client, "old", PASSWORD).status_code == 201  # and it still logs in
    assert len(audit_entries(services, "user.password_rehash")) == 1  # only once


def test_weaker_argon2_parameters_are_upgraded(
    client: TestClient, services: Services, admin_h: dict[str, str]
) -> None:
    client.post(
        "/api/v1/users", json={"name": "pat", "role": "viewer", "password": PASSWORD}, headers=admin_h
    )
    stronger = Settings(
        password_memory_kib=32768, password_time_cost=2, password_parallelism=1
    ).password_policy
    stored = _stored_hash(services, "pat")
    assert password_needs_rehash(stored, stronger) and not password_needs_rehash(
        stored, services.settings.password_policy
    )
    assert verify_password(PASSWORD, stored, stronger)  # argon2 hashes carry their own parameters


def test_unknown_user_and_wrong_password_look_alike(client: TestClient, admin_h: dict[str, str]) -> None:
    client.post(
        "/api/v1/users", json={"name": "pat", "role": "viewer", "password": PASSWORD}, headers=admin_h
    )
    a = _login(client, "pat", "not the password")
    b = _login(client, "nobody", "not the password")
    assert a.status_code == b.status_code == 401 and a.json()["detail"] == b.json()["detail"]
    assert (
        not verify_password("x", None)
        and not verify_password("x", "")
        and not verify_password("x", "garbage")
    )


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short pass1", "at least 12 characters (got 11)"),
        ("password1234", "common passwords"),
        ("Password 1234", "common passwords"),
        ("QWERTY123456", "common passwords"),
        ("aaaaaaaaaaaaaaaa", "too few distinct characters"),
        ("ababababababab", "too few distinct characters"),
        ("mallory-is-the-best", "must not contain the user name"),
    ],
)
def test_weak_passwords_are_refused_with_the_rule_name(
    client: TestClient, admin_h: dict[str, str], password: str, fragment: str
) -> None:
    r = client.post(
        "/api/v1/users", json={"name": "mallory", "role": "viewer", "password": password}, headers=admin_h
    )
    body = problem(r, 422, "validation-error")
    msgs = " ".join(e["msg"] for e in body["errors"])
    assert "password-strength:" in msgs and fragment in msgs, msgs
    assert password not in r.text  # the refused password is not echoed back
    # the same rule on a password change (no user name is known there, so skip that case)
    if "user name" not in fragment:
        client.post("/api/v1/users", json={"name": "m2", "role": "viewer"}, headers=admin_h)
        uid = _user_id(client, admin_h, "m2")
        r = client.patch(f"/api/v1/users/{uid}", json={"password": password}, headers=admin_h)
        assert "password-strength:" in " ".join(
            e["msg"] for e in problem(r, 422, "validation-error")["errors"]
        )


def test_the_strength_rule_accepts_good_passwords() -> None:
    assert password_problem("short") is not None
    for ok in (PASSWORD, "Tr0ub4dor&3-extended", "exactly12chr", "a long passphrase with spaces"):
        assert password_problem(ok) is None, ok
    assert password_problem("exactly11ch") is not None  # 11 characters


def test_password_change_ends_the_users_other_sessions(
    client: TestClient, services: Services, admin_h: dict[str, str]
) -> None:
    client.post(
        "/api/v1/users", json={"name": "pat", "role": "operator", "password": PASSWORD}, headers=admin_h
    )
    uid = _user_id(client, admin_h, "pat")
    laptop = bearer(_login(client, "pat", PASSWORD).json()["token"])
    phone = bearer(_login(client, "pat", PASSWORD).json()["token"])
    api = bearer(
        client.post(f"/api/v1/users/{uid}/tokens", json={"description": "ci"}, headers=admin_h).json()[
            "token"
        ]
    )
    for h in (laptop, phone, api):
        assert client.get("/api/v1/auth/whoami", headers=h).status_code == 200
    new_pw = "a brand new passphrase"
    assert client.patch(f"/api/v1/users/{uid}", json={"password": new_pw}, headers=admin_h).status_code == 200
    for h in (laptop, phone, api):  # every token issued before the change is dead
        assert client.get("/api/v1/auth/whoami", headers=h).status_code == 401
    [ended] = audit_entries(services, "user.sessions_end")
    assert ended["target"] == "user:pat" and ended["details"]["revoked"] == 3
    assert ended["details"]["rule"] == "password-change-ends-sessions"
    # the old password is dead too; the new one works and its session lives
    assert _login(client, "pat", PASSWORD).status_code == 401
    fresh = bearer(_login(client, "pat", new_pw).json()["token"])
    assert client.get("/api/v1/auth/whoami", headers=fresh).status_code == 200
    # the admin who made the change keeps working, and other users' tokens are untouched
    assert client.get("/api/v1/users", headers=admin_h).status_code == 200
    # a role change alone does not end sessions
    assert client.patch(f"/api/v1/users/{uid}", json={"role": "viewer"}, headers=admin_h).status_code == 200
    assert client.get("/api/v1/auth/whoami", headers=fresh).status_code == 200


def test_own_password_change_keeps_the_changing_session(
    client: TestClient, services: Services, admin_h: dict[str, str]
) -> None:
    """Documented choice: the session that changes its own user's password continues; the others end."""
    client.post(
        "/api/v1/users", json={"name": "root2", "role": "admin", "password": PASSWORD}, headers=admin_h
    )
    uid = _user_id(client, admin_h, "root2")
    me = bearer(_login(client, "root2", PASSWORD).json()["token"])
    other = bearer(_login(client, "root2", PASSWORD).json()["token"])
    r = client.patch(f"/api/v1/users/{uid}", json={"password": "rotated admin passphrase"}, headers=me)
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/auth/whoami", headers=me).status_code == 200
    assert client.get("/api/v1/auth/whoami", headers=other).status_code == 401


def test_dashboard_login_also_upgrades_a_legacy_hash(
    client: TestClient, services: Services, admin_h: dict[str, str]
) -> None:
    assert (
        client.post("/api/v1/users", json={"name": "web", "role": "viewer"}, headers=admin_h).status_code
        == 201
    )
    legacy = _legacy_scrypt(PASSWORD)
    with services.db.session() as s:
        s.get(User, _user_id(client, admin_h, "web")).password_hash = legacy  # type: ignore[union-attr]
    page = client.get("/dashboard/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, "login form has a CSRF field"
    form = {"csrf_token": csrf[1], "next": "/", "username": "web", "password": PASSWORD}
    r = client.post("/dashboard/login", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    upgraded = _stored_hash(services, "web")
    assert upgraded is not None and upgraded.startswith("$argon2id$")
    assert [e["target"] for e in audit_entries(services, "user.password_rehash")] == ["user:web"]
