"""Live updates: the change feed (`changes_since`), the SSE stream through TestClient (short stream
lifetime) and through a real uvicorn server (telemetry POST → event)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from microdc.control.dashboard.demo import reading
from microdc.control.dashboard.events import Cursor, DashboardConfig, changes_since, current_cursor

from .conftest import LiveServer, World

SITE = "t-de-0000"
CFG = DashboardConfig()


def parse_sse(body: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(event, id, data) for every event in a text/event-stream body."""
    out = []
    for block in body.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            k, _, v = line.partition(":")
            fields[k] = v.strip()
        if "event" in fields:
            out.append((fields["event"], fields.get("id"), json.loads(fields.get("data", "{}"))))
    return out


def cursor(world: World) -> Cursor:
    with world.services.db.read_session() as s:
        return current_cursor(s)


def changes(world: World, since: Cursor, **kw: Any) -> Any:
    with world.services.db.read_session() as s:
        return changes_since(s, since, config=CFG, **kw)


def test_cursor_text() -> None:
    c = Cursor(12, 34)
    assert str(c) == "12.34" and Cursor.parse("12.34") == c
    for bad in (None, "", "12", "a.b", "1.2.3", "-1.2"):
        assert Cursor.parse(bad) is None
    assert Cursor(5, 5).covers(Cursor(5, 4)) and not Cursor(5, 5).covers(Cursor(6, 1))


def test_nothing_happened(world: World) -> None:
    c = cursor(world)
    u = changes(world, c)
    assert u.empty and u.cursor == c and u.summary is None


def test_telemetry_updates_the_sites_row(world: World) -> None:
    c = cursor(world)
    world.fleet.post(SITE, [reading(f"{SITE}.inlet", "Temperature", "Intake", 23.7, datetime.now(UTC))])
    u = changes(world, c)
    assert [r["id"] for r in u.sites] == [SITE] and u.sites[0]["inlet_c"] == 23.7
    assert u.cursor.batch == c.batch + 1 and u.cursor.audit == c.audit
    assert u.alarms == [] and not u.placement and u.summary is not None
    assert changes(world, u.cursor).empty


def test_alarm_changes_carry_the_alarm(world: World) -> None:
    world.fleet.post(SITE, [reading(f"{SITE}.smoke", "Smoke", "Room", 1.0, datetime.now(UTC))])
    alarm = world.client.get("/api/v1/alarms", headers=world.bearer("vera")).json()[0]
    c = cursor(world)
    r = world.client.post(f"/api/v1/alarms/{alarm['id']}/acknowledge", json={}, headers=world.bearer("otto"))
    assert r.status_code == 200
    u = changes(world, c)
    assert [(a["id"], a["state"], a["acknowledged_by"]) for a in u.alarms] == [
        (alarm["id"], "acknowledged", "user:otto")
    ]
    assert [r["id"] for r in u.sites] == [SITE] and u.sites[0]["alarms_unacked"] == 0
    assert u.audit_seq == u.cursor.audit > c.audit
    assert "audit_seq" in u.payload(admin=True) and "audit_seq" not in u.payload(admin=False)


def test_placement_and_inventory_changes(world: World) -> None:
    c = cursor(world)
    world.fleet.workload("w1", origin="DE", cores=2)
    u = changes(world, c)
    assert u.placement and SITE in {r["id"] for r in u.sites}
    c = u.cursor
    assert world.client.delete("/api/v1/sites/t-no-0005", headers=world.bearer("alice")).status_code == 204
    u = changes(world, c)
    assert u.removed == ["t-no-0005"] and "t-no-0005" not in {r["id"] for r in u.sites}


def test_a_huge_gap_asks_for_a_reload(world: World) -> None:
    u = changes(world, Cursor(0, 0))
    assert u.sites  # a small gap is replayed
    with world.services.db.read_session() as s:
        u = changes_since(s, Cursor(0, 0), config=DashboardConfig(max_catchup_audit=3))
    assert u.resync and u.payload(admin=False) == {"cursor": str(u.cursor), "resync": True}


def test_batch_ids_that_commit_late_are_found(world: World) -> None:
    """PostgreSQL mode: an id below the newest one that was not visible yet (its transaction still
    open) is looked for again by the next polls."""
    from microdc.control.models import TelemetryBatch

    c = cursor(world)
    now = datetime.now(UTC)

    def add(bid: int, site: str) -> None:
        with world.services.db.session() as s:
            s.add(TelemetryBatch(id=bid, site_id=site, batch_id=f"late-{bid}", seq=0, received_at=now,
                                 reading_count=0, first_ts=now, last_ts=now))  # fmt: skip

    add(c.batch + 2, SITE)  # id c+1 is "still in flight"
    holes: dict[int, float] = {}
    u = changes(world, c, holes=holes, now=100.0)
    assert [r["id"] for r in u.sites] == [SITE] and u.cursor.batch == c.batch + 2
    assert holes == {c.batch + 1: 100.0}
    add(c.batch + 1, "t-fr-0001")  # ... commits now, below the cursor
    u = changes(world, u.cursor, holes=holes, now=101.0)
    assert [r["id"] for r in u.sites] == ["t-fr-0001"] and holes == {}
    assert changes(world, u.cursor, holes=holes, now=102.0).empty
    # a hole that never fills (a rolled-back transaction) is forgotten after hole_ttl_s
    add(c.batch + 4, SITE)
    u = changes(world, u.cursor, holes=holes, now=200.0)
    assert holes == {c.batch + 3: 200.0}
    changes(world, u.cursor, holes=holes, now=200.0 + CFG.hole_ttl_s + 1)
    assert holes == {}


def test_stream_says_hello_then_ends_after_its_lifetime(world: World) -> None:
    t0 = time.monotonic()
    r = world.client.get("/dashboard/events", headers=world.bearer("vera"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-store"
    assert r.text.startswith("retry: ")
    events = parse_sse(r.text)
    assert events[0][0] == "hello" and events[0][1] == str(cursor(world))
    assert events[-1][0] == "bye"
    assert ": keepalive" in r.text
    assert 0.9 < time.monotonic() - t0 < 10


def test_stream_catches_up_from_a_cursor(world: World) -> None:
    c = cursor(world)
    world.fleet.post(SITE, [reading(f"{SITE}.inlet", "Temperature", "Intake", 21.3, datetime.now(UTC))])
    r = world.client.get("/dashboard/events", params={"cursor": str(c)}, headers=world.bearer("vera"))
    ev, eid, data = parse_sse(r.text)[0]
    assert ev == "update" and eid == data["cursor"] == str(cursor(world))
    assert [s["id"] for s in data["sites"]] == [SITE] and data["sites"][0]["inlet_c"] == 21.3
    # a reconnecting browser's Last-Event-ID wins over the page's cursor
    r = world.client.get(
        "/dashboard/events", params={"cursor": str(c)}, headers={**world.bearer("vera"), "Last-Event-ID": eid}
    )
    assert parse_sse(r.text)[0][0] == "hello"


def test_stream_needs_a_viewer(world: World) -> None:
    site_cred = world.fleet.tokens[SITE]
    assert world.client.get("/dashboard/events", headers=site_cred).status_code == 401


@pytest.mark.timeout(60)
def test_live_update_over_a_real_server(live_world: tuple[World, LiveServer]) -> None:
    world, srv = live_world
    got: list[tuple[float, dict[str, Any]]] = []
    with (
        httpx.Client(base_url=srv.base_url, timeout=30) as c,
        c.stream("GET", "/dashboard/events", headers=world.bearer("vera")) as stream,
    ):
        lines = stream.iter_lines()
        for line in lines:
            if line.startswith("event: hello"):
                break
        t0 = time.monotonic()
        world.fleet.post(SITE, [reading(f"{SITE}.inlet", "Temperature", "Intake", 26.9, datetime.now(UTC))])
        for line in lines:
            if line.startswith("data: "):
                data = json.loads(line[6:])
                got.append((time.monotonic() - t0, data))
                if any(r["id"] == SITE and r["inlet_c"] == 26.9 for r in data.get("sites", [])):
                    break
    latency, data = got[-1]
    assert latency < 2.0
    assert data["summary"]["sites"] == 6
    hub = world.app.state.dashboard.hub
    deadline = time.monotonic() + 5
    while hub.clients and time.monotonic() < deadline:  # the server noticed the disconnect
        time.sleep(0.05)
    assert hub.clients == 0


def test_config_from_the_environment() -> None:
    c = DashboardConfig.from_env(
        {"MICRODC_DASHBOARD_POLL_INTERVAL_S": "0.5", "MICRODC_DASHBOARD_RETRY_MS": "900"}
    )
    assert (
        c.poll_interval_s == 0.5
        and c.retry_ms == 900
        and c.stream_lifetime_s == DashboardConfig().stream_lifetime_s
    )
