"""A site may speak only for itself, within reason: per-site quotas (sensors, request rate, /metrics
series), readings inside their type's physical range, and sensors that keep their type.

Rules: ``site-sensor-limit`` and ``site-request-rate`` (429 with Retry-After, counted in
``microdc_site_limited_total{reason}``), ``value-range`` (422 naming the reading and the range),
``sensor-type-change`` (409 naming the sensor); each refusal also in ``microdc_refused_total``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from microdc.agent.readings import InvalidReading, make_reading
from microdc.control.models import Sensor, readings
from microdc.control.services import Services
from microdc.protocol.vocab import ReadingType, range_problem

from .conftest import Clock, Fleet, batch, counter, problem

REFUSED = "microdc_refused_total"
LIMITED = "microdc_site_limited_total"


def r(sensor: str, rtype: str, unit: str, ctx: str, value: float, ts: datetime) -> dict[str, Any]:
    return {
        "sensor_id": sensor,
        "reading_type": rtype,
        "unit": unit,
        "physical_context": ctx,
        "ts": ts.isoformat(),
        "value": value,
    }


def _stored(services: Services) -> tuple[int, int]:
    with services.db.read_session() as s:
        return (
            int(s.scalar(select(func.count()).select_from(Sensor)) or 0),
            int(s.scalar(select(func.count()).select_from(readings)) or 0),
        )


def _post(c: TestClient, h: dict[str, str], rs: list[dict[str, Any]], site: str = "a") -> Any:
    return c.post(f"/api/v1/sites/{site}/telemetry", json=batch(rs), headers=h)


# --- value-range --------------------------------------------------------------------------------------

OUT_OF_RANGE = [
    ("Humidity", "%", "Room", 120.0, "0 to 100 %"),
    ("Humidity", "%", "Intake", -1.0, "0 to 100 %"),
    ("Door", "1", "Door", 0.5, "one of 0, 1"),
    ("Door", "1", "Door", 2.0, "one of 0, 1"),
    ("Temperature", "Cel", "Intake", 85.5, "-40 to 85 Cel"),
    ("Temperature", "Cel", "Intake", -41.0, "-40 to 85 Cel"),
    ("UPSState", "1", "PowerSubsystem", 7.0, "one of 0, 1, 2, 3"),
    ("Runtime", "min", "Battery", -1.0, "0 to"),
    ("Intrusion", "1", "Chassis", 3.0, "one of 0, 1, 2"),
    ("Power", "kW", "ACUtilityInput", -5.0, "0 to"),
]


@pytest.mark.parametrize(("rtype", "unit", "ctx", "value", "rng"), OUT_OF_RANGE)
def test_out_of_range_reading_is_refused_naming_index_field_and_range(
    client: TestClient,
    fleet: Fleet,
    services: Services,
    clock: Clock,
    rtype: str,
    unit: str,
    ctx: str,
    value: float,
    rng: str,
) -> None:
    h = fleet.add_site("a")
    ok = r("ok", "Temperature", "Cel", "Intake", 22.0, clock.now)
    body = problem(_post(client, h, [ok, r("bad", rtype, unit, ctx, value, clock.now)]), 422, "value-range")
    assert body["rule"] == "value-range" and body["index"] == 1 and body["field"] == "readings[1].value"
    assert body["detail"].startswith("value-range: readings[1].value (sensor 'bad')"), body
    assert rng in body["detail"] and rtype in body["detail"], body
    assert _stored(services) == (0, 0), "nothing of a refused batch is stored"
    assert counter(services, REFUSED, rule="value-range", route="telemetry") == 1


def test_values_on_the_edges_of_their_range_are_accepted(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    h = fleet.add_site("a")
    rs = [
        r("rh", "Humidity", "%", "Room", 100.0, clock.now),
        r("rh0", "Humidity", "%", "Intake", 0.0, clock.now),
        r("in", "Temperature", "Cel", "Intake", -40.0, clock.now),
        r("in2", "Temperature", "Cel", "Intake", 85.0, clock.now),
        r("cpu", "Temperature", "Cel", "CPU", 98.0, clock.now),  # hot, but a CPU may be
        r("door", "Door", "1", "Door", 1.0, clock.now),
        r("ups", "UPSState", "1", "PowerSubsystem", 3.0, clock.now),
        r("rt", "Runtime", "min", "Battery", 0.0, clock.now),
        r("tamper", "Intrusion", "1", "Chassis", 2.0, clock.now),
    ]
    assert _post(client, h, rs).status_code == 201
    assert _stored(services) == (len(rs), len(rs))


def test_agent_checks_the_same_table_before_queueing(clock: Clock) -> None:
    """The agent refuses what the server would refuse, with the same words (protocol/vocab.py)."""
    for rtype, unit, ctx, value, rng in OUT_OF_RANGE:
        with pytest.raises(InvalidReading, match="value-range") as exc:
            make_reading("s", rtype, unit, ctx, clock.now, value)
        assert rng in str(exc.value)
        assert range_problem(ReadingType(rtype), unit, ctx, value) in str(exc.value)
    with pytest.raises(InvalidReading, match="timestamp-window"):
        make_reading("s", "Door", "1", "Door", datetime(1, 1, 1, tzinfo=clock.now.tzinfo), 0.0)
    assert make_reading("s", "Door", "1", "Door", clock.now, 1.0).value == 1.0


# --- sensor-type-change ------------------------------------------------------------------------------


def test_a_sensor_cannot_change_its_type_silently(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    h = fleet.add_site("a")
    assert _post(client, h, [r("s1", "Door", "1", "Door", 0.0, clock.now)]).status_code == 201
    changes = [
        r("s1", "Temperature", "Cel", "Door", 21.0, clock.now),  # type
        r("s1", "Door", "1", "Room", 0.0, clock.now),  # physical context
    ]
    for n, change in enumerate(changes, 1):
        body = problem(_post(client, h, [change]), 409, "sensor-type-change")
        assert body["sensor_id"] == "s1" and body["rule"] == "sensor-type-change"
        assert body["detail"].startswith("sensor-type-change: sensor 's1' was first reported as Door/1/Door")
        assert body["stored"]["reading_type"] == "Door"
        assert counter(services, REFUSED, rule="sensor-type-change", route="telemetry") == n
    unit_change = r("p", "Power", "W", "ACInput", 100.0, clock.now)
    assert _post(client, h, [unit_change]).status_code == 201
    body = problem(_post(client, h, [{**unit_change, "unit": "kW", "value": 0.1}]), 409, "sensor-type-change")
    assert "'p'" in body["detail"] and body["sent"]["unit"] == "kW"
    with services.db.read_session() as s:
        kinds = {sid: t for sid, t in s.execute(select(Sensor.sensor_id, Sensor.reading_type))}
    assert kinds == {"s1": "Door", "p": "Power"}


def test_two_types_for_one_sensor_in_one_batch_are_refused(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    h = fleet.add_site("a")
    rs = [r("x", "Door", "1", "Door", 0.0, clock.now), r("x", "Smoke", "1", "Door", 0.0, clock.now)]
    body = problem(_post(client, h, rs), 409, "sensor-type-change")
    assert body["sensor_id"] == "x" and "in this batch" in body["detail"]
    assert _stored(services) == (0, 0)


# --- site-sensor-limit -------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_kw", [{"site_max_sensors": 50}])
def test_a_site_flooding_sensors_is_capped_and_the_batch_kept_for_later(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    h = fleet.add_site("a")
    h_b = fleet.add_site("b")
    first = [r(f"t{i:03d}", "Temperature", "Cel", "Intake", 20.0, clock.now) for i in range(40)]
    assert _post(client, h, first).status_code == 201
    flood = [r(f"f{i:05d}", "Temperature", "Cel", "Intake", 20.0, clock.now) for i in range(2000)]
    resp = _post(client, h, flood)
    body = problem(resp, 429, "site-sensor-limit")
    assert int(resp.headers["retry-after"]) >= 60
    assert body["limit"] == 50 and body["sensors"] == 40 and body["new_sensors"] == 2000
    assert "site_max_sensors" in body["detail"] and "nothing of this batch was stored" in body["detail"]
    assert counter(services, LIMITED, reason="sensors") == 1
    assert counter(services, REFUSED, rule="site-sensor-limit", route="telemetry") == 1
    assert _stored(services) == (40, 40)
    # up to the limit is fine; known sensors keep reporting; another site has its own quota
    assert _post(client, h, flood[:10]).status_code == 201
    assert problem(_post(client, h, flood[10:11]), 429, "site-sensor-limit")
    assert _post(client, h, first).status_code == 201
    assert _post(client, h_b, flood[:50], site="b").status_code == 201


# --- site-request-rate -------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_kw", [{"site_request_burst": 5, "site_requests_per_s": 0.01}])
def test_a_site_is_rate_limited_on_every_route_alone(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    h = fleet.add_site("a", heartbeat=False)
    h_b = fleet.add_site("b", heartbeat=False)
    for _ in range(5):
        assert client.post("/api/v1/sites/a/heartbeat", json={}, headers=h).status_code == 200
    for resp in (
        client.post("/api/v1/sites/a/heartbeat", json={}, headers=h),
        _post(client, h, [r("d", "Door", "1", "Door", 0.0, clock.now)]),
        client.get("/api/v1/sites/a/desired-state", headers=h),
        client.post("/api/v1/probes", json={"target_site_id": "b", "reachable": True}, headers=h),
    ):
        body = problem(resp, 429, "site-request-rate")
        assert body["detail"].startswith("site-request-rate: site 'a'")
        assert int(resp.headers["retry-after"]) >= 1
    assert counter(services, LIMITED, reason="request-rate") == 4
    assert counter(services, REFUSED, rule="site-request-rate", route="telemetry") == 1
    # the other site is not starved, and people are not limited by a site's bucket
    assert client.post("/api/v1/sites/b/heartbeat", json={}, headers=h_b).status_code == 200
    assert client.get("/api/v1/sites/a/sensors", headers=fleet.admin_h).status_code == 200


# --- /metrics stays bounded --------------------------------------------------------------------------


@pytest.mark.parametrize("settings_kw", [{"site_metrics_series": 10}])
def test_metrics_cannot_be_blown_up_by_one_site(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    h = fleet.add_site("a")
    h_b = fleet.add_site("b")
    many = [r(f"in{i:04d}", "Temperature", "Cel", "Intake", 21.0, clock.now) for i in range(500)]
    assert _post(client, h, many).status_code == 201
    assert _post(client, h_b, many[:3], site="b").status_code == 201
    text = client.get("/metrics", headers=fleet.admin_h).text
    inlet = [ln for ln in text.splitlines() if ln.startswith("microdc_inlet_temperature_celsius{")]
    assert sum('site="a"' in ln for ln in inlet) == 10
    assert sum('site="b"' in ln for ln in inlet) == 3
    assert 'microdc_metrics_series_suppressed{site="a"} 490.0' in text


def test_made_up_alarm_kinds_share_one_metrics_series(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    h = fleet.add_site("a")
    for i in range(40):
        ev = {"event_id": f"e{i}", "action": "raise", "kind": f"made_up_{i}", "ts": clock.now.isoformat()}
        assert client.post("/api/v1/sites/a/alarm-events", json=ev, headers=h).status_code == 201
    ev = {"event_id": "s", "action": "raise", "kind": "smoke", "ts": clock.now.isoformat()}
    assert client.post("/api/v1/sites/a/alarm-events", json=ev, headers=h).status_code == 201
    text = client.get("/metrics", headers=fleet.admin_h).text
    series = [ln for ln in text.splitlines() if ln.startswith("microdc_alarms_open{")]
    assert 'microdc_alarms_open{kind="other",severity="warning"} 40.0' in series, series
    assert 'microdc_alarms_open{kind="smoke",severity="warning"} 1.0' in series
    assert len(series) == 2
