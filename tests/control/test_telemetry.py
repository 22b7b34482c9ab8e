"""Telemetry ingest: acks, idempotent retries, per-site isolation, validation, latest and history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from microdc.control.models import TelemetryBatch, readings
from microdc.control.services import Services

from .conftest import Clock, Fleet, batch, reading


def _count(services: Services) -> int:
    with services.db.read_session() as s:
        return int(s.scalar(select(func.count()).select_from(readings)) or 0)


def _temps(clock: Clock, n: int = 10, sensors: int = 3, base: float = 22.0) -> list[dict[str, Any]]:
    return [
        reading(f"inlet-{i}", "Temperature", base + j * 0.1, clock.now - timedelta(seconds=n - j))
        for i in range(sensors)
        for j in range(n)
    ]


def test_ingest_and_idempotent_retry(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    h = fleet.add_site("a")
    b = batch(_temps(clock), batch_id="batch-1", seq=7)
    r = client.post("/api/v1/sites/a/telemetry", json=b, headers=h)
    assert r.status_code == 201, r.text
    ack = r.json()
    assert (ack["accepted"], ack["duplicate"], ack["seq"]) == (30, False, 7)
    assert _count(services) == 30
    clock.advance(5)
    r2 = client.post("/api/v1/sites/a/telemetry", json=b, headers=h)
    assert r2.status_code == 200
    assert r2.json() == {**ack, "duplicate": True}
    # the same batch id with different content is a conflict (tests/security), and is not stored either
    b3 = {**b, "readings": b["readings"][:1]}
    assert client.post("/api/v1/sites/a/telemetry", json=b3, headers=h).status_code == 409
    assert _count(services) == 30
    with services.db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(TelemetryBatch)) == 1


def test_same_batch_id_at_two_sites_is_two_batches(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    ha, hb = fleet.add_site("a"), fleet.add_site("b")
    for site, h in (("a", ha), ("b", hb)):
        r = client.post(f"/api/v1/sites/{site}/telemetry", json=batch(_temps(clock), batch_id="x"), headers=h)
        assert r.status_code == 201
    assert _count(services) == 60


def test_site_credential_cannot_write_another_sites_data(
    client: TestClient, fleet: Fleet, services: Services, admin_h: dict[str, str], clock: Clock
) -> None:
    fleet.add_site("a")
    hb = fleet.add_site("b")
    tries = [
        ("/api/v1/sites/a/telemetry", batch(_temps(clock))),
        ("/api/v1/sites/a/heartbeat", {"seq": 1}),
        (
            "/api/v1/sites/a/alarm-events",
            {"event_id": "e1", "action": "raise", "kind": "fake", "ts": clock.now.isoformat()},
        ),
        ("/api/v1/sites/a/desired-state/ack", {"version": 0, "status": "applied"}),
    ]
    for path, body in tries:
        r = client.post(path, json=body, headers=hb)
        assert r.status_code == 403, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert client.get("/api/v1/sites/a/desired-state", headers=hb).status_code == 403
    assert client.get("/api/v1/sites/a/sensors", headers=hb).status_code == 403
    assert _count(services) == 0
    assert client.get("/api/v1/alarms", headers=admin_h).json() == []
    site = client.get("/api/v1/sites/a", headers=admin_h).json()
    assert site["desired_acked_version"] is None


def test_users_cannot_post_telemetry(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], clock: Clock
) -> None:
    fleet.add_site("a")
    assert (
        client.post("/api/v1/sites/a/telemetry", json=batch(_temps(clock)), headers=admin_h).status_code
        == 403
    )


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: r.update(unit="W"), "not valid for Temperature"),
        (lambda r: r.update(reading_type="Wind"), "reading_type"),
        (lambda r: r.update(physical_context="Moon"), "physical_context"),
        (lambda r: r.update(ts="2026-03-02T12:00:00"), "timezone"),
        (lambda r: r.update(value="NaN"), "value"),
        (lambda r: r.pop("sensor_id"), "sensor_id"),
    ],
)
def test_validation_errors(
    client: TestClient, fleet: Fleet, clock: Clock, mutate: Any, fragment: str
) -> None:
    h = fleet.add_site("a")
    rs = _temps(clock, n=1, sensors=1)
    mutate(rs[0])
    r = client.post("/api/v1/sites/a/telemetry", json=batch(rs), headers=h)
    assert r.status_code == 422
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert body["status"] == 422 and body["errors"]
    assert fragment.lower() in r.text.lower()


def test_future_timestamps_rejected(client: TestClient, fleet: Fleet, clock: Clock) -> None:
    h = fleet.add_site("a")
    rs = [reading("t", "Temperature", 22, clock.now + timedelta(hours=1))]
    r = client.post("/api/v1/sites/a/telemetry", json=batch(rs), headers=h)
    assert r.status_code == 422 and "future" in r.json()["detail"]


def test_latest_and_history(client: TestClient, fleet: Fleet, viewer_h: dict[str, str], clock: Clock) -> None:
    h = fleet.add_site("a")
    t0 = clock.now
    rs = [reading("inlet", "Temperature", 20.0 + k, t0 + timedelta(minutes=k)) for k in range(12)]
    clock.advance(13 * 60)
    client.post("/api/v1/sites/a/telemetry", json=batch(rs[6:]), headers=h)
    client.post("/api/v1/sites/a/telemetry", json=batch(rs[:6]), headers=h)  # older batch arrives later
    latest = client.get("/api/v1/sites/a/sensors", headers=viewer_h).json()
    assert [(x["sensor_id"], x["latest_value"]) for x in latest] == [("inlet", 31.0)]
    assert client.get("/api/v1/sites/a/sensors", headers=h).status_code == 200  # own site may read
    q = {"start": t0.isoformat(), "end": (t0 + timedelta(minutes=12)).isoformat()}
    raw = client.get(
        "/api/v1/sites/a/sensors/inlet/history", params={**q, "resolution": "raw"}, headers=viewer_h
    )
    assert [p["value"] for p in raw.json()["points"]] == [20.0 + k for k in range(12)]
    agg = client.get(
        "/api/v1/sites/a/sensors/inlet/history", params={**q, "resolution": "5m"}, headers=viewer_h
    )
    pts = agg.json()["points"]
    assert [(p["min"], p["max"], p["count"]) for p in pts] == [
        (20.0, 24.0, 5),
        (25.0, 29.0, 5),
        (30.0, 31.0, 2),
    ]
    assert pts[0]["mean"] == pytest.approx(22.0)
    auto = client.get("/api/v1/sites/a/sensors/inlet/history", params=q, headers=viewer_h).json()
    assert auto["resolution"] == "raw"
    assert client.get("/api/v1/sites/a/sensors/nope/history", headers=viewer_h).status_code == 404


@pytest.fixture
def settings_kw() -> dict[str, Any]:
    return {"max_readings_per_batch": 50, "max_body_bytes": 64 * 1024}


def test_batch_and_body_limits(client: TestClient, fleet: Fleet, clock: Clock) -> None:
    h = fleet.add_site("a")
    r = client.post("/api/v1/sites/a/telemetry", json=batch(_temps(clock, n=20, sensors=3)), headers=h)
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    big = batch(_temps(clock, n=100, sensors=5))
    r = client.post("/api/v1/sites/a/telemetry", json=big, headers=h)
    assert r.status_code == 413 and "exceeds" in r.json()["detail"]


def test_deleting_a_site_deletes_its_readings(
    client: TestClient, fleet: Fleet, services: Services, admin_h: dict[str, str], clock: Clock
) -> None:
    ha, hb = fleet.add_site("a"), fleet.add_site("b")
    for site, h in (("a", ha), ("b", hb)):
        client.post(f"/api/v1/sites/{site}/telemetry", json=batch(_temps(clock)), headers=h)
    assert _count(services) == 60
    assert client.delete("/api/v1/sites/a", headers=admin_h).status_code == 204
    assert _count(services) == 30
