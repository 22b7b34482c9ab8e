"""/metrics: auth, fleet gauges from the database, ingest counters, per-app registries."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from microdc.control.app import create_app

from .conftest import Clock, Fleet, batch, reading, test_settings


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_needs_a_user_token(client: TestClient, fleet: Fleet, viewer_h: dict[str, str]) -> None:
    h = fleet.add_site("a")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=h).status_code == 403
    assert client.get("/metrics", headers=viewer_h).status_code == 200


def test_fleet_and_ingest_metrics(
    client: TestClient, fleet: Fleet, viewer_h: dict[str, str], operator_h: dict[str, str], clock: Clock
) -> None:
    h = fleet.add_site("a")
    rs = [
        reading("grid", "Power", 12.0, clock.now, unit="kW", ctx="ACUtilityInput"),
        reading("ups-out", "Power", 10000.0, clock.now, ctx="ACOutput"),
        reading("inlet-1", "Temperature", 23.5, clock.now),
        reading("smoke", "Smoke", 1, clock.now),
    ]
    b = batch(rs)
    assert client.post("/api/v1/sites/a/telemetry", json=b, headers=h).status_code == 201
    assert client.post("/api/v1/sites/a/telemetry", json=b, headers=h).status_code == 200
    client.post(
        "/api/v1/workloads",
        json={"id": "w", "data_class": "x", "origin_jurisdiction": "DE", "cores": 1},
        headers=operator_h,
    )
    text = client.get("/metrics", headers=viewer_h).text
    m = _samples(text)
    assert m[("microdc_site_power_watts", (("scope", "facility"), ("site", "a")))] == 12000.0
    assert m[("microdc_site_power_watts", (("scope", "it"), ("site", "a")))] == 10000.0
    assert m[("microdc_site_pue", (("site", "a"),))] == pytest.approx(1.2)
    assert m[("microdc_inlet_temperature_celsius", (("sensor", "inlet-1"), ("site", "a")))] == 23.5
    assert m[("microdc_alarms_open", (("kind", "smoke"), ("severity", "critical")))] == 1
    assert m[("microdc_placements", (("state", "assigned"),))] == 1
    assert m[("microdc_sites", (("state", "up"),))] == 1
    assert m[("microdc_ingest_readings_total", ())] == 4
    assert m[("microdc_ingest_batches_total", (("result", "accepted"),))] == 1
    assert m[("microdc_ingest_batches_total", (("result", "duplicate"),))] == 1
    assert m[("microdc_ingest_latency_seconds_count", ())] == 2


def test_registries_are_per_app(tmp_path: Any) -> None:
    a = create_app(test_settings(f"sqlite:///{tmp_path}/a.db", metrics_public=True))
    b = create_app(test_settings(f"sqlite:///{tmp_path}/b.db", metrics_public=True))
    assert a.state.services.metrics.registry is not b.state.services.metrics.registry
    with TestClient(a) as ca, TestClient(b) as cb:
        a.state.services.metrics.readings.inc(5)
        assert "microdc_ingest_readings_total 5.0" in ca.get("/metrics").text
        assert "microdc_ingest_readings_total 0.0" in cb.get("/metrics").text
