"""A site may speak only for itself, within reason: a compromised site cannot clear the alarms that
watch it, cannot date its words outside a window around the server's clock, and cannot overwrite a
batch it already sent.

Rules: ``alarm-clear-by-people``, ``timestamp-window``, ``batch-conflict``; each refusal is a named
RFC 9457 problem and is counted in ``microdc_refused_total{rule, route}``.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from microdc.control.models import ProbeReport, TelemetryBatch, readings
from microdc.control.services import Services

from .conftest import Clock, Fleet, audit_entries, batch, counter, problem, reading

REFUSED = "microdc_refused_total"


def _open_alarms(c: TestClient, h: dict[str, str], site: str = "a") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = c.get(
        "/api/v1/alarms", params={"site_id": site, "open_only": True}, headers=h
    ).json()
    return out


def _agent_clear(
    c: TestClient, h: dict[str, str], kind: str, sensor: str | None, at: datetime, n: int
) -> Any:
    ev = {
        "event_id": f"clear-{n}",
        "action": "clear",
        "kind": kind,
        "sensor_id": sensor,
        "ts": at.isoformat(),
    }
    return c.post("/api/v1/sites/a/alarm-events", json=ev, headers=h)


def _readings_stored(services: Services) -> int:
    with services.db.read_session() as s:
        return int(s.scalar(select(func.count()).select_from(readings)) or 0)


# --- alarm-clear-by-people --------------------------------------------------------------------------


def test_site_cannot_clear_its_heartbeat_lost_alarm(
    client: TestClient, fleet: Fleet, services: Services, operator_h: dict[str, str], clock: Clock
) -> None:
    h = fleet.add_site("a")
    clock.advance(120)  # no heartbeat for 4 intervals
    assert client.post("/api/v1/admin/maintenance", headers=fleet.admin_h).status_code == 200
    [alarm] = _open_alarms(client, operator_h)
    assert alarm["kind"] == "heartbeat_lost"
    body = problem(
        _agent_clear(client, h, "heartbeat_lost", None, clock.now, 1), 403, "alarm-clear-by-people"
    )
    assert body["detail"].startswith("alarm-clear-by-people:") and body["alarm_id"] == alarm["id"]
    assert [a["id"] for a in _open_alarms(client, operator_h)] == [alarm["id"]]
    assert counter(services, REFUSED, rule="alarm-clear-by-people", route="alarm_event") == 1
    [refusal] = audit_entries(services, "alarm.clear_refused")
    assert refusal["actor"] == "site:a" and refusal["outcome"] == "denied"
    # legitimate: the server clears it itself when it hears the site again (its own evidence) ...
    assert client.post("/api/v1/sites/a/heartbeat", json={}, headers=h).status_code == 200
    got = client.get(f"/api/v1/alarms/{alarm['id']}", headers=operator_h).json()
    assert got["state"] == "cleared"


def test_operator_clears_heartbeat_lost(
    client: TestClient, fleet: Fleet, operator_h: dict[str, str], clock: Clock
) -> None:
    fleet.add_site("a")
    clock.advance(120)
    client.post("/api/v1/admin/maintenance", headers=fleet.admin_h)
    [alarm] = _open_alarms(client, operator_h)
    r = client.post(f"/api/v1/alarms/{alarm['id']}/clear", json={"note": "site visited"}, headers=operator_h)
    assert r.status_code == 200 and r.json()["cleared_by"] == "user:otto"


def test_break_in_alarm_stays_open_until_an_operator_clears_it(
    client: TestClient, fleet: Fleet, services: Services, operator_h: dict[str, str], clock: Clock
) -> None:
    h = fleet.add_site("a")
    post = client.post(
        "/api/v1/sites/a/telemetry", json=batch([reading("lid", "Intrusion", 2, clock.now)]), headers=h
    )
    assert post.status_code == 201
    [alarm] = _open_alarms(client, operator_h)
    assert alarm["kind"] == "tamper" and alarm["break_in"]
    # the intruder, now owning the agent, reports the lid closed: the reading is stored, the alarm stays
    clock.advance(10)
    r = client.post(
        "/api/v1/sites/a/telemetry", json=batch([reading("lid", "Intrusion", 0, clock.now)]), headers=h
    )
    assert r.status_code == 201
    assert [a["id"] for a in _open_alarms(client, operator_h)] == [alarm["id"]]
    [kept] = audit_entries(services, "alarm.clear_refused")
    assert kept["details"]["rule"] == "alarm-clear-by-people"
    # ... and asks to clear it outright
    problem(_agent_clear(client, h, "tamper", "lid", clock.now, 1), 403, "alarm-clear-by-people")
    assert [a["id"] for a in _open_alarms(client, operator_h)] == [alarm["id"]]
    # a person does it
    r = client.post(f"/api/v1/alarms/{alarm['id']}/clear", json={"note": "inspected"}, headers=operator_h)
    assert r.status_code == 200 and r.json()["state"] == "cleared"


def test_marked_break_in_cannot_be_cleared_by_the_site(
    client: TestClient, fleet: Fleet, operator_h: dict[str, str], clock: Clock
) -> None:
    """Any alarm an operator marked a break-in is people-only, whatever its kind."""
    h = fleet.add_site("a")
    ev = {
        "event_id": "r1",
        "action": "raise",
        "kind": "fan_failure",
        "sensor_id": "fan",
        "ts": clock.now.isoformat(),
    }
    alarm = client.post("/api/v1/sites/a/alarm-events", json=ev, headers=h).json()
    r = client.post(f"/api/v1/alarms/{alarm['id']}/break-in", json={"break_in": True}, headers=operator_h)
    assert r.status_code == 200
    problem(_agent_clear(client, h, "fan_failure", "fan", clock.now, 1), 403, "alarm-clear-by-people")


def test_door_alarm_is_cleared_by_people_only(
    client: TestClient, fleet: Fleet, operator_h: dict[str, str], clock: Clock
) -> None:
    h = fleet.add_site("a")
    client.post("/api/v1/sites/a/telemetry", json=batch([reading("door", "Door", 1, clock.now)]), headers=h)
    [alarm] = _open_alarms(client, operator_h)
    assert alarm["kind"] == "door_open"
    clock.advance(5)
    client.post("/api/v1/sites/a/telemetry", json=batch([reading("door", "Door", 0, clock.now)]), headers=h)
    assert [a["id"] for a in _open_alarms(client, operator_h)] == [alarm["id"]]
    problem(_agent_clear(client, h, "door_open", "door", clock.now, 1), 403, "alarm-clear-by-people")
    assert client.post(f"/api/v1/alarms/{alarm['id']}/clear", json={}, headers=operator_h).status_code == 200


def test_site_still_clears_its_ordinary_alarms(
    client: TestClient, fleet: Fleet, operator_h: dict[str, str], clock: Clock
) -> None:
    """The legitimate path: a temperature excursion or a fan alarm ends when the site says so."""
    h = fleet.add_site("a")
    client.post(
        "/api/v1/sites/a/telemetry", json=batch([reading("inlet", "Temperature", 35, clock.now)]), headers=h
    )
    ev = {
        "event_id": "r1",
        "action": "raise",
        "kind": "fan_failure",
        "sensor_id": "fan",
        "ts": clock.now.isoformat(),
    }
    assert client.post("/api/v1/sites/a/alarm-events", json=ev, headers=h).status_code == 201
    assert {a["kind"] for a in _open_alarms(client, operator_h)} == {"inlet_temperature", "fan_failure"}
    clock.advance(10)
    client.post(
        "/api/v1/sites/a/telemetry", json=batch([reading("inlet", "Temperature", 22, clock.now)]), headers=h
    )
    r = _agent_clear(client, h, "fan_failure", "fan", clock.now, 2)
    assert r.status_code == 201 and r.json()["state"] == "cleared"
    assert _open_alarms(client, operator_h) == []


# --- timestamp-window ------------------------------------------------------------------------------


def _probe(c: TestClient, h: dict[str, str], observed_at: datetime | None) -> Any:
    body: dict[str, Any] = {"target_site_id": "a", "reachable": True}
    if observed_at is not None:
        body["observed_at"] = observed_at.isoformat()
    return c.post("/api/v1/probes", json=body, headers=h)


@pytest.mark.parametrize(
    "when",
    [
        datetime(2099, 1, 1, tzinfo=UTC),  # the reported attack: pins a's liveness for ever
        "future_11min",
        "past_11min",
        datetime(1999, 12, 31, tzinfo=UTC),
    ],
)
def test_peer_probe_outside_the_window_is_refused(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock, when: Any
) -> None:
    fleet.add_site("a")
    peer = fleet.add_site("peer")
    offsets = {"future_11min": 660, "past_11min": -660}
    at = clock.now + timedelta(seconds=offsets[when]) if isinstance(when, str) else when
    body = problem(_probe(client, peer, at), 422, "timestamp-window")
    assert (
        body["detail"].startswith("timestamp-window: probe observed_at")
        and body["field"] == "probe observed_at"
    )
    assert counter(services, REFUSED, rule="timestamp-window", route="probe") == 1
    with services.db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(ProbeReport)) == 0


def test_peer_probe_inside_the_window_is_accepted(client: TestClient, fleet: Fleet, clock: Clock) -> None:
    fleet.add_site("a")
    peer = fleet.add_site("peer")
    for at in (clock.now - timedelta(minutes=9), clock.now + timedelta(minutes=9), clock.now, None):
        assert _probe(client, peer, at).status_code == 201


@pytest.mark.parametrize(
    ("ts", "why"),
    [
        ("future", "in the future"),
        ("1999-12-31T23:59:59+00:00", "before 2000-01-01"),
        ("0001-01-01T00:00:00+00:00", "before 2000-01-01"),
    ],
)
def test_readings_dated_outside_the_window_are_refused(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock, ts: str, why: str
) -> None:
    h = fleet.add_site("a")
    when = (clock.now + timedelta(seconds=301)).isoformat() if ts == "future" else ts
    good = reading("t1", "Temperature", 22, clock.now)
    r = client.post(
        "/api/v1/sites/a/telemetry", json=batch([good, reading("t2", "Temperature", 22, when)]), headers=h
    )
    body = problem(r, 422, "timestamp-window")
    assert body["detail"].startswith("timestamp-window: reading timestamp") and why in body["detail"]
    assert _readings_stored(services) == 0  # the whole batch is refused, nothing half-stored
    assert counter(services, REFUSED, rule="timestamp-window", route="telemetry") == 1


def test_old_readings_queued_offline_are_accepted(client: TestClient, fleet: Fleet, clock: Clock) -> None:
    h = fleet.add_site("a")
    rs = [reading("t", "Temperature", 22, clock.now - timedelta(days=d)) for d in (30, 3, 0)]
    rs.append(reading("t", "Temperature", 22, clock.now + timedelta(seconds=299)))  # small skew is fine
    assert client.post("/api/v1/sites/a/telemetry", json=batch(rs), headers=h).status_code == 201


def test_alarm_event_and_heartbeat_timestamps_are_bounded(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    h = fleet.add_site("a")
    ev = {"event_id": "e1", "action": "raise", "kind": "fan_failure", "ts": "2099-01-01T00:00:00+00:00"}
    problem(client.post("/api/v1/sites/a/alarm-events", json=ev, headers=h), 422, "timestamp-window")
    ev["ts"] = (clock.now - timedelta(days=2)).isoformat()  # raised while offline: fine
    assert client.post("/api/v1/sites/a/alarm-events", json=ev, headers=h).status_code == 201
    hb = {"sent_at": "2099-01-01T00:00:00+00:00"}
    problem(client.post("/api/v1/sites/a/heartbeat", json=hb, headers=h), 422, "timestamp-window")
    hb["sent_at"] = (clock.now - timedelta(minutes=11)).isoformat()
    problem(client.post("/api/v1/sites/a/heartbeat", json=hb, headers=h), 422, "timestamp-window")
    hb["sent_at"] = clock.now.isoformat()
    assert client.post("/api/v1/sites/a/heartbeat", json=hb, headers=h).status_code == 200
    assert counter(services, REFUSED, rule="timestamp-window", route="alarm_event") == 1
    assert counter(services, REFUSED, rule="timestamp-window", route="heartbeat") == 2


# --- batch-conflict --------------------------------------------------------------------------------


def test_reused_batch_id_with_other_content_is_a_counted_audited_conflict(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    h = fleet.add_site("a")
    first = batch([reading("t", "Temperature", 22.5, clock.now)], batch_id="b-1", seq=1)
    assert client.post("/api/v1/sites/a/telemetry", json=first, headers=h).status_code == 201
    variants = [
        {**first, "readings": [reading("t", "Temperature", 35.0, clock.now)]},  # another value
        {**first, "readings": [reading("t", "Temperature", 22.5, clock.now - timedelta(seconds=1))]},
        {**first, "readings": [*first["readings"], reading("u", "Temperature", 1.0, clock.now)]},  # more data
        {**first, "seq": 2},
    ]
    for n, other in enumerate(variants, 1):
        body = problem(client.post("/api/v1/sites/a/telemetry", json=other, headers=h), 409, "batch-conflict")
        assert body["detail"].startswith("batch-conflict: batch_id 'b-1'") and body["batch_id"] == "b-1"
        assert body["stored_sha256"] != body["sent_sha256"]
        assert counter(services, REFUSED, rule="batch-conflict", route="telemetry") == n
    assert counter(services, "microdc_ingest_batches_total", result="conflict") == len(variants)
    assert _readings_stored(services) == 1
    events = audit_entries(services, "telemetry.batch_conflict")
    assert len(events) == len(variants) and {e["actor"] for e in events} == {"site:a"}
    assert events[0]["details"]["batch_id"] == "b-1" and events[0]["outcome"] == "denied"


def test_same_content_is_an_idempotent_replay(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    """The legitimate retry — even re-serialised (other timestamp spelling, 22.5 vs 22.50) and gzipped."""
    h = fleet.add_site("a")
    first = batch([reading("t", "Temperature", 22.5, clock.now)], batch_id="b-1", seq=1)
    r1 = client.post("/api/v1/sites/a/telemetry", json=first, headers=h)
    assert r1.status_code == 201
    assert client.post("/api/v1/sites/a/telemetry", json=first, headers=h).json() == {
        **r1.json(),
        "duplicate": True,
    }
    respelled = json.dumps(first).replace("+00:00", "Z").replace("22.5", "22.50").encode()
    r3 = client.post(
        "/api/v1/sites/a/telemetry",
        content=gzip.compress(respelled),
        headers={**h, "content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r3.status_code == 200 and r3.json()["duplicate"] is True
    assert _readings_stored(services) == 1
    assert audit_entries(services, "telemetry.batch_conflict") == []


def test_batches_stored_before_the_digest_replay_as_before(
    client: TestClient, fleet: Fleet, services: Services, clock: Clock
) -> None:
    """Rows written by an older version have no digest: a retry of them is still a 200, not a 409."""
    h = fleet.add_site("a")
    first = batch([reading("t", "Temperature", 22.5, clock.now)], batch_id="b-1", seq=1)
    client.post("/api/v1/sites/a/telemetry", json=first, headers=h)
    with services.db.session() as s:
        s.execute(update(TelemetryBatch).values(content_sha256=None))
    assert client.post("/api/v1/sites/a/telemetry", json=first, headers=h).status_code == 200
