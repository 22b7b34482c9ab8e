"""Fixtures for the attack suite: an app on a temporary SQLite file with a controllable clock, users of
every role, enrolled sites, and helpers to read the audit log and the Prometheus counters.

Each test in this folder is an attack that must fail, next to the legitimate path that must still work.
Passwords use argon2id at OWASP's minimum cost (the floor the settings allow) to keep the tests quick.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*", category=Warning)

from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import select  # noqa: E402

# the control-plane tests' clock, user helper and settings (pytest imports that conftest as
# control.conftest, with tests/ on sys.path); T0 and Clock are re-exported for the tests here
from control.conftest import T0, Clock, make_user, test_settings  # noqa: E402, F401
from microdc.control.app import create_app  # noqa: E402
from microdc.control.models import AuditEntry  # noqa: E402
from microdc.control.security import Role  # noqa: E402
from microdc.control.services import Services  # noqa: E402
from microdc.control.settings import Settings  # noqa: E402

PASSWORD = "correct horse battery"


def sec_settings(db_url: str, **kw: Any) -> Settings:
    """The control-plane tests' settings (cheap argon2id, generous rate limits), alarms with no dwell."""
    return test_settings(db_url, **({"temperature_dwell_s": 0} | kw))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings_kw() -> dict[str, Any]:
    """Override in a test module (or class) to change settings."""
    return {}


@pytest.fixture
def peer() -> tuple[str, int]:
    """The TCP peer the test client appears as (override to act as a proxy or a local process)."""
    return ("testclient", 50000)


@pytest.fixture
def app(tmp_path: Any, clock: Clock, settings_kw: dict[str, Any]) -> FastAPI:
    return create_app(sec_settings(f"sqlite:///{tmp_path}/sec.db", **settings_kw), clock=clock)


@pytest.fixture
def client(app: FastAPI, peer: tuple[str, int]) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, client=peer) as c:
        yield c


@pytest.fixture
def services(app: FastAPI, client: TestClient) -> Services:
    s: Services = app.state.services
    return s


@pytest.fixture
def admin_h(services: Services) -> dict[str, str]:
    return make_user(services, "alice", Role.ADMIN)


@pytest.fixture
def operator_h(services: Services) -> dict[str, str]:
    return make_user(services, "otto", Role.OPERATOR)


def site_body(site_id: str) -> dict[str, Any]:
    return {
        "id": site_id,
        "name": site_id.title(),
        "lat": 48.1,
        "lon": 11.5,
        "jurisdiction": "DE",
        "jurisdiction_ancestors": ["EU"],
        "security_tier": 3,
        "grid_power_kw": 30.0,
    }


@dataclass
class Fleet:
    client: TestClient
    admin_h: dict[str, str]
    site_h: dict[str, dict[str, str]] = field(default_factory=dict)

    def create(self, site_id: str) -> None:
        r = self.client.post("/api/v1/sites", json=site_body(site_id), headers=self.admin_h)
        assert r.status_code == 201, r.text

    def enroll(self, site_id: str) -> dict[str, Any]:
        """A fresh enrollment of an existing site: the new credential (SiteCredentialOut)."""
        r = self.client.post(f"/api/v1/sites/{site_id}/enrollment-tokens", headers=self.admin_h)
        assert r.status_code == 201, r.text
        r = self.client.post("/api/v1/enroll", json={"token": r.json()["token"]})
        assert r.status_code == 201, r.text
        cred: dict[str, Any] = r.json()
        self.site_h[site_id] = bearer(cred["token"])
        return cred

    def add_site(self, site_id: str, *, heartbeat: bool = True) -> dict[str, str]:
        self.create(site_id)
        self.enroll(site_id)
        h = self.site_h[site_id]
        if heartbeat:
            r = self.client.post(f"/api/v1/sites/{site_id}/heartbeat", json={}, headers=h)
            assert r.status_code == 200, r.text
        return h


@pytest.fixture
def fleet(client: TestClient, admin_h: dict[str, str]) -> Fleet:
    return Fleet(client, admin_h)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


UNITS = {"Temperature": "Cel", "Door": "1", "Intrusion": "1", "Smoke": "1"}
CONTEXTS = {"Temperature": "Intake", "Door": "Door", "Intrusion": "Chassis", "Smoke": "Room"}


def reading(sensor: str, rtype: str, value: float, ts: datetime | str) -> dict[str, Any]:
    return {
        "sensor_id": sensor,
        "reading_type": rtype,
        "unit": UNITS[rtype],
        "physical_context": CONTEXTS[rtype],
        "ts": ts if isinstance(ts, str) else ts.isoformat(),
        "value": value,
    }


def batch(readings: list[dict[str, Any]], *, batch_id: str | None = None, seq: int = 0) -> dict[str, Any]:
    return {"batch_id": batch_id or uuid.uuid4().hex, "seq": seq, "readings": readings}


def audit_entries(services: Services, action: str) -> list[dict[str, Any]]:
    """Audit entries of one action, oldest first, with `details` decoded."""
    with services.db.read_session() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq))
        return [
            {
                "actor": e.actor,
                "target": e.target,
                "outcome": e.outcome,
                "client_ip": e.client_ip,
                "details": json.loads(e.details),
            }
            for e in rows
        ]


def counter(services: Services, name: str, **labels: str) -> float:
    """Current value of a Prometheus counter sample of the app (0 when never incremented)."""
    v = services.metrics.registry.get_sample_value(name, labels)
    return float(v or 0.0)


def problem(r: Any, status: int, slug: str) -> dict[str, Any]:
    """Assert `r` is an RFC 9457 problem of the given status and type; return its body."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body: dict[str, Any] = r.json()
    assert body["type"] == f"urn:microdc:problem:{slug}", body
    return body
