"""Downsampling (5 min / 1 h min-mean-max-count), late data and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from microdc.control.models import Rollup, readings
from microdc.control.services import Services

from .conftest import Clock, Fleet, batch, reading


def _post_minutes(client: TestClient, h: dict[str, str], start: datetime, minutes: int, value: Any) -> None:
    # Exhaust, not Intake: values up to 119 °C are in range there (an inlet stops at 85 °C)
    rs = [
        reading("inlet", "Temperature", value(k), start + timedelta(minutes=k), ctx="Exhaust")
        for k in range(minutes)
    ]
    for i in range(0, len(rs), 500):
        r = client.post("/api/v1/sites/a/telemetry", json=batch(rs[i : i + 500]), headers=h)
        assert r.status_code == 201, r.text


def _rollups(services: Services, size: int) -> list[tuple[int, float, float, float, int]]:
    with services.db.read_session() as s:
        rows = s.scalars(select(Rollup).where(Rollup.bucket_s == size).order_by(Rollup.bucket_start))
        return [(r.bucket_start, r.min, r.max, r.sum / r.count, r.count) for r in rows]


def test_rollups_and_retention(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], services: Services, clock: Clock
) -> None:
    h = fleet.add_site("a")
    start = clock.now  # 12:00 UTC
    clock.advance(2 * 3600 + 120)  # 14:02
    _post_minutes(client, h, start, 120, lambda k: float(k))
    out = client.post("/api/v1/admin/maintenance", headers=admin_h).json()
    assert out["rollup_5m_buckets"] == 24 and out["rollup_1h_buckets"] == 2
    five = _rollups(services, 300)
    assert len(five) == 24
    first = five[0]
    assert first[0] == int(start.timestamp())
    assert first[1:] == (0.0, 4.0, 2.0, 5)
    hours = _rollups(services, 3600)
    assert [(r[1], r[2], r[3], r[4]) for r in hours] == [(0.0, 59.0, 29.5, 60), (60.0, 119.0, 89.5, 60)]
    # re-running changes nothing (recent batches may be re-scanned; results are identical)
    client.post("/api/v1/admin/maintenance", headers=admin_h)
    assert _rollups(services, 300) == five and _rollups(services, 3600) == hours

    # 1h history comes from the rollups
    q = {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat(), "resolution": "1h"}
    pts = client.get("/api/v1/sites/a/sensors/inlet/history", params=q, headers=admin_h).json()["points"]
    assert [(p["min"], p["max"], p["count"]) for p in pts] == [(0.0, 59.0, 60), (60.0, 119.0, 60)]

    # late data for an already rolled-up bucket is folded in on the next run
    late = [reading("inlet", "Temperature", -10.0, start + timedelta(minutes=2, seconds=30), ctx="Exhaust")]
    assert client.post("/api/v1/sites/a/telemetry", json=batch(late), headers=h).status_code == 201
    out = client.post("/api/v1/admin/maintenance", headers=admin_h).json()
    assert _rollups(services, 300)[0][1:] == (-10.0, 4.0, 0.0, 6)
    assert _rollups(services, 3600)[0][1] == -10.0 and _rollups(services, 3600)[0][4] == 61

    # retention: 8 days later raw readings are gone, rollups stay and still answer history
    clock.advance(8 * 86400)
    out = client.post("/api/v1/admin/maintenance", headers=admin_h).json()
    assert out["deleted_raw"] == 121 and out["deleted_batches"] >= 1
    with services.db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(readings)) == 0
    pts = client.get(
        "/api/v1/sites/a/sensors/inlet/history", params={**q, "resolution": "5m"}, headers=admin_h
    ).json()["points"]
    assert len(pts) == 24 and pts[0]["min"] == -10.0
    # and 5-minute rollups expire after their own retention (90 days)
    clock.advance(91 * 86400)
    client.post("/api/v1/admin/maintenance", headers=admin_h)
    assert _rollups(services, 300) == [] and len(_rollups(services, 3600)) == 2


def test_rollups_function_directly(
    services: Services, fleet: Fleet, client: TestClient, clock: Clock
) -> None:
    """The periodic job's function, called with an explicit clock, on an empty database."""
    from microdc.control import rollups

    with services.db.session() as s:
        rep = rollups.run_rollups(s, services.ctx())
    assert rep.rollup_5m_buckets == 0
    h = fleet.add_site("a")
    start = clock.now
    clock.advance(600)
    _post_minutes(client, h, start, 10, lambda k: 1.0)
    clock.advance(3000)
    with services.db.session() as s:
        rep = rollups.run_rollups(s, services.ctx())
    assert rep.rollup_5m_buckets == 2
    assert datetime.fromtimestamp(_rollups(services, 300)[0][0], tz=UTC) == clock.now - timedelta(hours=1)
