"""Fixtures for control-plane tests: an app on a temporary SQLite file, a controllable clock,
users per role with auth headers, and enrolled sites with their own credentials.

PostgreSQL tests (marked ``services``) use a throw-away database created on the server given by
$MICRODC_TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test) and skip, naming
the reason, only if that server is unreachable.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*", category=Warning)

from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from microdc.control.app import create_app  # noqa: E402
from microdc.control.identity import create_user, issue_user_token  # noqa: E402
from microdc.control.security import Role  # noqa: E402
from microdc.control.services import Services  # noqa: E402
from microdc.control.settings import Settings  # noqa: E402

PG_URL = os.environ.get("MICRODC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now = self.now + timedelta(seconds=seconds)
        return self.now


def test_settings(db_url: str, **kw: Any) -> Settings:
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
    }
    base.update(kw)
    return Settings(**base)


test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings_kw() -> dict[str, Any]:
    """Override in a test module to change settings."""
    return {}


@pytest.fixture
def db_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/control.db"


@pytest.fixture
def app(db_url: str, clock: Clock, settings_kw: dict[str, Any]) -> FastAPI:
    return create_app(test_settings(db_url, **settings_kw), clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def services(app: FastAPI, client: TestClient) -> Services:
    s: Services = app.state.services
    return s


def make_user(services: Services, name: str, role: Role, password: str | None = None) -> dict[str, str]:
    ctx = services.ctx("test:setup")
    with services.db.session() as s:
        u = create_user(s, ctx, name, role, password)
        _, secret = issue_user_token(s, ctx, u)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def admin_h(services: Services) -> dict[str, str]:
    return make_user(services, "alice", Role.ADMIN)


@pytest.fixture
def operator_h(services: Services) -> dict[str, str]:
    return make_user(services, "otto", Role.OPERATOR)


@pytest.fixture
def viewer_h(services: Services) -> dict[str, str]:
    return make_user(services, "vera", Role.VIEWER)


@pytest.fixture
def role_headers(
    admin_h: dict[str, str], operator_h: dict[str, str], viewer_h: dict[str, str]
) -> dict[str, Any]:
    return {"admin": admin_h, "operator": operator_h, "viewer": viewer_h, "anonymous": {}}


def site_body(
    site_id: str,
    *,
    jurisdiction: str = "DE",
    ancestors: list[str] | None = None,
    tier: int = 3,
    cores: int = 64,
) -> dict[str, Any]:
    return {
        "id": site_id,
        "name": site_id.title(),
        "lat": 48.1,
        "lon": 11.5,
        "jurisdiction": jurisdiction,
        "jurisdiction_ancestors": ["EU"] if ancestors is None else ancestors,
        "security_tier": tier,
        "grid_power_kw": 30.0,
        "modules": [
            {
                "name": "m1",
                "rack_units": 42,
                "max_it_kw": 20,
                "cooling_kind": "dx",
                "servers": [
                    {
                        "name": "s",
                        "server_type": "r650",
                        "quantity": 1,
                        "cores": cores,
                        "memory_gb": 256,
                        "idle_w": 150,
                        "peak_w": 600,
                    }
                ],
            }
        ],
        "power_feeds": [{"name": "A", "voltage_v": 400, "amps_a": 32, "phase": 3}],
    }


@dataclass
class Fleet:
    client: TestClient
    admin_h: dict[str, str]
    site_h: dict[str, dict[str, str]] = field(default_factory=dict)

    def add_site(self, site_id: str, *, heartbeat: bool = True, **kw: Any) -> dict[str, str]:
        r = self.client.post("/api/v1/sites", json=site_body(site_id, **kw), headers=self.admin_h)
        assert r.status_code == 201, r.text
        r = self.client.post(f"/api/v1/sites/{site_id}/enrollment-tokens", headers=self.admin_h)
        assert r.status_code == 201, r.text
        r = self.client.post("/api/v1/enroll", json={"token": r.json()["token"]})
        assert r.status_code == 201, r.text
        h = {"Authorization": f"Bearer {r.json()['token']}"}
        self.site_h[site_id] = h
        if heartbeat:
            assert (
                self.client.post(f"/api/v1/sites/{site_id}/heartbeat", json={}, headers=h).status_code == 200
            )
        return h


@pytest.fixture
def fleet(client: TestClient, admin_h: dict[str, str]) -> Fleet:
    return Fleet(client, admin_h)


def reading(
    sensor: str, rtype: str, value: float, ts: datetime, *, unit: str | None = None, ctx: str | None = None
) -> dict[str, Any]:
    units = {
        "Temperature": "Cel",
        "Humidity": "%",
        "Power": "W",
        "UPSState": "1",
        "Door": "1",
        "Smoke": "1",
        "Leak": "1",
        "Runtime": "min",
        "Intrusion": "1",
        "Voltage": "V",
    }
    contexts = {
        "Temperature": "Intake",
        "Humidity": "Room",
        "Power": "ACOutput",
        "UPSState": "PowerSupply",
        "Door": "Door",
        "Smoke": "Room",
        "Leak": "Room",
        "Runtime": "Battery",
        "Intrusion": "Chassis",
        "Voltage": "ACInput",
    }
    return {
        "sensor_id": sensor,
        "reading_type": rtype,
        "unit": unit or units[rtype],
        "physical_context": ctx or contexts[rtype],
        "ts": ts.isoformat(),
        "value": value,
    }


def batch(readings: list[dict[str, Any]], *, batch_id: str | None = None, seq: int = 0) -> dict[str, Any]:
    return {"batch_id": batch_id or uuid.uuid4().hex, "seq": seq, "readings": readings}


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {type(e).__name__}: {str(e).splitlines()[0]}")
    finally:
        engine.dispose()
    return PG_URL


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"microdc_ctl_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
