"""The same service on PostgreSQL: COPY ingest, idempotency under concurrent retries, audit chain under
concurrent writers, rollups. Marked `services` (CI starts PostgreSQL; skipped only if unreachable)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from microdc.control import audit
from microdc.control.app import create_app
from microdc.control.models import readings
from microdc.control.security import Role

from .conftest import Clock, Fleet, batch, make_user, reading, test_settings

pytestmark = pytest.mark.services


@pytest.fixture
def pg_client(pg_url: str, clock: Clock) -> Iterator[tuple[TestClient, Fleet, Any]]:
    app = create_app(test_settings(pg_url), clock=clock)
    with TestClient(app) as c:
        h = make_user(app.state.services, "root", Role.ADMIN)
        yield c, Fleet(c, h), app.state.services


def _count(services: Any) -> int:
    with services.db.read_session() as s:
        return int(s.scalar(select(func.count()).select_from(readings)) or 0)


def test_ingest_copy_and_idempotency(pg_client: tuple[TestClient, Fleet, Any], clock: Clock) -> None:
    c, fleet, services = pg_client
    h = fleet.add_site("a")
    rs = [
        reading(f"s{i}", "Temperature", 20 + i % 5, clock.now - timedelta(seconds=j))
        for i in range(20)
        for j in range(10)
    ]
    b = batch(rs, batch_id="b-1", seq=1)
    results: list[int] = []

    def post() -> None:
        results.append(c.post("/api/v1/sites/a/telemetry", json=b, headers=h).status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] * 5 + [201]
    assert _count(services) == 200
    latest = c.get("/api/v1/sites/a/sensors", headers=fleet.admin_h).json()
    assert len(latest) == 20
    clock.advance(3600)
    out = c.post("/api/v1/admin/maintenance", headers=fleet.admin_h).json()
    assert out["rollup_5m_buckets"] >= 20
    q = {
        "start": (clock.now - timedelta(hours=2)).isoformat(),
        "end": clock.now.isoformat(),
        "resolution": "5m",
    }
    pts = c.get("/api/v1/sites/a/sensors/s0/history", params=q, headers=fleet.admin_h).json()["points"]
    assert sum(p["count"] for p in pts) == 10


def test_audit_chain_under_concurrency(pg_client: tuple[TestClient, Fleet, Any]) -> None:
    _, _, services = pg_client
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(20):
                with services.db.session() as s:
                    audit.append(s, actor=f"w{k}", action="race", details={"i": i})
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with services.db.read_session() as s:
        r = audit.verify(s)
    assert r.ok, r.describe()


def test_state_machine_and_placement_on_postgres(
    pg_client: tuple[TestClient, Fleet, Any], clock: Clock
) -> None:
    c, fleet, _ = pg_client
    fleet.add_site("a")
    r = c.post(
        "/api/v1/workloads",
        json={"id": "w", "data_class": "p", "origin_jurisdiction": "DE", "cores": 4},
        headers=fleet.admin_h,
    )
    assert r.json()["site_id"] == "a"
    clock.advance(3600)
    c.post("/api/v1/admin/maintenance", headers=fleet.admin_h)
    # silence alone: suspect, the work held where it is
    assert c.get("/api/v1/sites/a", headers=fleet.admin_h).json()["state"] == "suspect"
    assert c.get("/api/v1/workloads/w", headers=fleet.admin_h).json()["placement_state"] == "held"
    # corroborated (a failed probe) for the hold-down: down, the work re-placed (nowhere legal: degraded)
    probe = {"target_site_id": "a", "reachable": False}
    assert c.post("/api/v1/probes", json=probe, headers=fleet.admin_h).status_code == 201
    clock.advance(120)
    c.post("/api/v1/probes", json=probe, headers=fleet.admin_h)
    c.post("/api/v1/admin/maintenance", headers=fleet.admin_h)
    assert c.get("/api/v1/sites/a", headers=fleet.admin_h).json()["state"] == "down"
    assert c.get("/api/v1/workloads/w", headers=fleet.admin_h).json()["placement_state"] == "degraded"
    assert c.get("/api/v1/audit/verify", headers=fleet.admin_h).json()["ok"]
