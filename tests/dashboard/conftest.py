"""Fixtures for the dashboard's tests: an app on a temporary SQLite file (real clock), users of every
role with passwords, a simulated fleet posting through the real API, dashboard logins (cookie + CSRF
token) and, for the live tests, a real uvicorn server in a thread on a free port."""

from __future__ import annotations

import re
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*", category=Warning)

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from microdc.control import app as app_module  # noqa: E402
from microdc.control.dashboard.demo import SimFleet, site_specs  # noqa: E402
from microdc.control.dashboard.events import DashboardConfig  # noqa: E402
from microdc.control.devserver import free_port  # noqa: E402
from microdc.control.identity import create_user, issue_user_token  # noqa: E402
from microdc.control.security import Role  # noqa: E402
from microdc.control.services import Services  # noqa: E402
from microdc.control.settings import Settings  # noqa: E402

PASSWORD = "correct horse battery"
ROLES = {"alice": Role.ADMIN, "otto": Role.OPERATOR, "vera": Role.VIEWER}
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


def settings(db_url: str, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "db_url": db_url,
        "background_tasks": False,
        # argon2id at OWASP's minimum, the cheapest the settings accept: quick tests, real hashing
        "password_memory_kib": 19456,
        "password_time_cost": 2,
        "password_parallelism": 1,
        "login_burst": 1000,
        "enroll_burst": 1000,
        "rotate_burst": 1000,
        # quick alarms: raised on the first reading out of band
        "temperature_dwell_s": 0,
        "humidity_dwell_s": 0,
        "ups_dwell_s": 0,
    }
    base.update(kw)
    return Settings(**base)


def build_app(s: Settings, config: DashboardConfig | None = None) -> FastAPI:
    app = app_module.create_app(s)
    if config is not None:
        app.state.dashboard_config = config
    return app


@dataclass
class World:
    """An app with users of every role (passwords and API tokens) and a seeded fleet."""

    app: FastAPI
    client: Any  # TestClient or httpx.Client
    tokens: dict[str, str]
    fleet: SimFleet

    @property
    def services(self) -> Services:
        s: Services = self.app.state.services
        return s

    def bearer(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


def make_users(services: Services) -> dict[str, str]:
    ctx = services.ctx("test:setup")
    out = {}
    with services.db.session() as s:
        for name, role in ROLES.items():
            u = create_user(s, ctx, name, role, PASSWORD)
            _tok, secret = issue_user_token(s, ctx, u, description="test")
            out[name] = secret
    return out


def seed(fleet: SimFleet, n: int = 6) -> list[str]:
    ids = fleet.add_sites(site_specs(n, seed=3, prefix="t"))
    for sid in ids:
        fleet.heartbeat(sid)
        fleet.tick(sid)
    return ids


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
LOGIN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def login(client: Any, user: str, password: str = PASSWORD, *, next_: str = "/") -> str:
    """Log in through the login form; returns the session's CSRF token (cookie kept by the client)."""
    page = client.get("/dashboard/login", params={"next": next_})
    assert page.status_code == 200, page.text
    token = LOGIN_CSRF.search(page.text)
    assert token, "login form has a CSRF field"
    r = client.post(
        "/dashboard/login",
        data={"csrf_token": token[1], "next": next_, "username": user, "password": password},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    home = client.get(next_)
    m = CSRF_META.search(home.text)
    assert m and m[1], "page carries the session's CSRF token"
    return m[1]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/dash.db"


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    app = build_app(
        settings(db_url), DashboardConfig(poll_interval_s=0.05, stream_lifetime_s=1.0, keepalive_s=0.5)
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        tokens = make_users(app.state.services)
        fleet = SimFleet(client, tokens["alice"])
        seed(fleet)
        yield World(app, client, tokens, fleet)


@pytest.fixture
def anon(world: World) -> Iterator[TestClient]:
    """A second client (own cookie jar) on the same app."""
    c = TestClient(world.app, raise_server_exceptions=False)
    try:
        yield c
    finally:
        c.close()


class LiveServer:
    """uvicorn serving an app in a background thread on 127.0.0.1:<free port>."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=2
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def live_world(db_url: str) -> Iterator[tuple[World, LiveServer]]:
    app = build_app(settings(db_url), DashboardConfig(poll_interval_s=0.1, stream_lifetime_s=20.0))
    srv = LiveServer(app).start()
    try:
        with httpx.Client(base_url=srv.base_url, timeout=30) as client:
            tokens = make_users(app.state.services)
            fleet = SimFleet(client, tokens["alice"])
            seed(fleet)
            yield World(app, client, tokens, fleet), srv
    finally:
        srv.stop()
