"""`microdc demo-fleet`: example names, the scenario checked before anything starts, faults from the
twin's vocabulary injected on a schedule (a cooling failure, a door opened, an uplink cut, a site outage),
and demo workloads re-placed — on legal sites only — when a site goes down."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from microdc.agent.config import SimulatedSource, parse_config
from microdc.agent.sensors.simulated import SimulatedSite
from microdc.cli.main import app
from microdc.demo.faults import BUSIEST, CuttableTransport, DemoFault, apply, default_schedule, parse_schedule

MELBOURNE = Path(__file__).parents[2] / "src" / "microdc" / "examples" / "melbourne"


def test_default_schedule_has_one_of_each_in_the_first_two_minutes() -> None:
    s = default_schedule(5)
    assert [f.kind for f in s] == ["cooling_failure", "door_open", "uplink_cut", "site_outage"]
    assert len({f.site for f in s}) == 4 and max(f.at_s for f in s) <= 120
    assert all(f.site in (0, BUSIEST) for f in default_schedule(1))
    assert s[-1].site == BUSIEST  # the outage hits the site holding the most work, so work moves


def test_parse_schedule() -> None:
    assert parse_schedule("none", 3) == []
    assert parse_schedule("uplink_cut:2@30+60,door_open:0@5s+10s", 3) == [
        DemoFault("door_open", 0, 5.0, 10.0),
        DemoFault("uplink_cut", 2, 30.0, 60.0),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("meteor:0@1+1", "unknown fault 'meteor'"),
        ("door_open:7@1+1", "site 7 but the demo runs sites 0..2"),
        ("door_open@1", r"expected KIND:SITE@START\+DURATION"),
    ],
)
def test_bad_schedule_is_a_clear_error(text: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        parse_schedule(text, 3)


def test_a_cut_uplink_refuses_every_request_and_comes_back() -> None:
    async def go() -> tuple[str, int]:
        t = CuttableTransport()
        f = DemoFault("uplink_cut", 0, 0, 1)
        apply(f, True, [], t)
        async with httpx.AsyncClient(transport=t) as c:
            try:
                await c.get("http://127.0.0.1:9/")
                cut = "passed"
            except httpx.ConnectError as exc:
                cut = str(exc)
        apply(f, False, [], t)
        return cut, int(t.cut)

    cut, after = asyncio.run(go())
    assert "uplink cut" in cut and after == 0


def test_door_and_cooling_faults_reach_the_simulated_sensors() -> None:
    cfg = SimulatedSource(kind="simulated", name="twin", scenario=str(MELBOURNE / "scenario.yaml"),
                          site="optus-10003026", time_scale=60.0)  # fmt: skip
    agent = parse_config({"policy": {"jurisdiction": "AU-VIC", "upstream_jurisdiction": "AU-VIC"}})
    site = SimulatedSite(cfg, agent, site_id="optus-10003026", base_dir=MELBOURNE)
    t = datetime(2023, 1, 10, 12, tzinfo=UTC)
    site.step(t)
    apply(DemoFault("door_open", 0, 0, 60), True, [site], CuttableTransport())
    apply(DemoFault("cooling_failure", 0, 0, 60), True, [site], CuttableTransport())
    hot = site.step(t + timedelta(minutes=5))  # 5 wall minutes = 5 simulated hours
    assert hot["door"] == 1.0 and hot["inlet_c"] > cfg.setpoint_c + 5
    apply(DemoFault("door_open", 0, 0, 60), False, [site], CuttableTransport())
    apply(DemoFault("cooling_failure", 0, 0, 60), False, [site], CuttableTransport())
    back = site.step(t + timedelta(minutes=6))
    assert back["door"] == 0.0 and abs(back["inlet_c"] - cfg.setpoint_c) < 3


def test_demo_fleet_checks_the_scenario_before_starting(tmp_path: Path) -> None:
    broken = tmp_path / "scenario.yaml"
    broken.write_text("name: x\njurisdictions: []\n")
    r = CliRunner().invoke(app, ["demo-fleet", str(broken), "--workdir", str(tmp_path / "wd")])
    assert r.exit_code == 2 and "problem" in r.output
    assert not (tmp_path / "wd").exists()  # nothing was started
    r = CliRunner().invoke(
        app, ["demo-fleet", "melbourne", "--faults", "meteor:0@1+1", "--workdir", str(tmp_path / "w2")]
    )
    assert r.exit_code == 2 and "unknown fault 'meteor'" in r.output
    assert not (tmp_path / "w2").exists()


@pytest.mark.slow
def test_demo_fleet_injects_faults_and_recovers(tmp_path: Path) -> None:
    from microdc.demo.fleet import ControlPlaneThread, create_admin, run_fleet

    db = f"sqlite:///{tmp_path / 'cp.db'}"
    token = create_admin(db)
    cp = ControlPlaneThread(db, settings={"enroll_burst": 20, "heartbeat_interval_s": 30}).start()
    try:
        faults = parse_schedule("door_open:0@3+8,uplink_cut:1@3+8", 2)
        result = asyncio.run(
            run_fleet(MELBOURNE / "scenario.yaml", 2, workdir=tmp_path, duration_s=22, server_url=cp.url,
                      admin_token=token, poll_s=1.0, flush_s=2.0, faults=faults, workloads_per_site=0,
                      heartbeat_s=30)
        )  # fmt: skip
        alarms = httpx.get(f"{cp.url}/api/v1/alarms", headers={"Authorization": f"Bearer {token}"}).json()
    finally:
        cp.stop()
    a, b = result.sites
    assert any(x["kind"] == "door_open" and x["site_id"] == a for x in alarms), alarms
    assert [line.split(": ", 1)[1] for line in result.fault_log] == [
        f"start door open at {a} for 8 s",
        f"start uplink cut at {b} for 8 s",
        f"end door open at {a} for 8 s",
        f"end uplink cut at {b} for 8 s",
    ]
    assert result.per_site[b]["counters"].get("readings_acked", 0) > 0  # delivered after the link returned
    assert result.per_site[b]["pending_readings"] == 0


def test_demo_workloads_follow_their_data_class_policy() -> None:
    from microdc.demo.fleet import demo_workloads
    from microdc.model import load_scenario

    s = load_scenario(MELBOURNE / "scenario.yaml")
    sites = list(s.sites)[:3]
    out = demo_workloads(s, sites, per_site=2)
    assert len(out) == 6 and len({w["id"] for w in out}) == 6
    by_class = {w["data_class"]: w for w in out}
    # personal: process_in/store_in origin → may run only in its origin jurisdiction, at tier 2
    assert (
        by_class["personal"]["allowed_jurisdictions"] == [] and by_class["personal"]["min_security_tier"] == 2
    )
    assert {w["origin_jurisdiction"] for w in out} == {x.jurisdiction for x in sites}
    assert demo_workloads(s, sites, per_site=0) == []
    # across jurisdictions: origin-only stays home, `any` may go to the demo's other jurisdictions, codes
    # are kept, and a class with process_in any but store_in origin stays home (the stricter wins)
    from types import SimpleNamespace

    from microdc.model.policies import DataClassPolicy

    classes = {
        "a-home": DataClassPolicy(process_in="origin"),
        "b-any": DataClassPolicy(process_in="any"),
        "c-codes": DataClassPolicy(process_in=["FR", "DE"]),
        "d-stored-home": DataClassPolicy(process_in="any", store_in="origin"),
    }
    fake = SimpleNamespace(policies=SimpleNamespace(data_classes=classes))
    fr, de, at = (SimpleNamespace(id=f"s-{j}", jurisdiction=j) for j in ("FR", "DE", "AT"))
    got = {w["data_class"]: w["allowed_jurisdictions"] for w in demo_workloads(fake, [fr, de, at, fr])}
    assert got == {"a-home": [], "b-any": ["AT", "FR"], "c-codes": ["DE", "FR"], "d-stored-home": []}


def test_a_site_outage_is_not_a_sensor_fault() -> None:
    with pytest.raises(ValueError, match="stops the agent"):
        apply(DemoFault("site_outage", 0, 0, 1), True, [], CuttableTransport())


@pytest.mark.slow
def test_demo_fleet_site_outage_re_places_its_work_and_the_site_recovers(tmp_path: Path) -> None:
    from microdc.demo.fleet import ControlPlaneThread, create_admin, demo_settings, run_fleet
    from microdc.model import load_scenario

    scenario = load_scenario(MELBOURNE / "scenario.yaml")
    db = f"sqlite:///{tmp_path / 'cp.db'}"
    token = create_admin(db)
    h = {"Authorization": f"Bearer {token}"}
    settings = {**demo_settings(3, heartbeat_s=2, down_hold_s=4), "maintenance_interval_s": 1,
                "data_classes": tuple(sorted(scenario.policies.data_classes))}  # fmt: skip
    cp = ControlPlaneThread(db, settings=settings).start()
    try:
        result = asyncio.run(
            run_fleet(MELBOURNE / "scenario.yaml", 3, workdir=tmp_path, duration_s=40, server_url=cp.url,
                      admin_token=token, poll_s=1.0, flush_s=2.0, workloads_per_site=2, heartbeat_s=2,
                      faults=parse_schedule("site_outage:0@4+20", 3))
        )  # fmt: skip
        out_site = result.sites[0]
        events = httpx.get(f"{cp.url}/api/v1/sites/{out_site}/state-events", headers=h).json()
        audit = httpx.get(
            f"{cp.url}/api/v1/audit", params={"action": "placement.recompute"}, headers=h
        ).json()
        sites = {x["id"]: x for x in httpx.get(f"{cp.url}/api/v1/sites", headers=h).json()}
        workloads = {w["id"]: w for w in httpx.get(f"{cp.url}/api/v1/workloads", headers=h).json()}
    finally:
        cp.stop()
    assert [line.split(": ", 1)[1] for line in result.fault_log] == [
        f"start site outage at {out_site} for 20 s",
        f"end site outage at {out_site} for 20 s",
    ]
    held_there = [w for w, s in result.placed.items() if s == out_site]
    assert held_there, result.placed  # the outage hit a site with work
    # its work moved, to another site, and each move is an audited placement change
    assert set(result.moved) == set(held_there), (result.placed, result.final)
    changes = [c for e in audit for c in json.loads(e["details"])["changes"]]
    moves = [c for c in changes if c["from_site"] == out_site]
    assert {c["workload_id"] for c in moves if c["to_site"] not in (None, out_site)} == set(held_there)
    for w in held_there:
        target = workloads[w]["site_id"]
        assert target != out_site and target is not None
        # legal: in the workload's origin or an allowed jurisdiction, at its security tier
        legal = {workloads[w]["origin_jurisdiction"], *workloads[w]["allowed_jurisdictions"]}
        assert {sites[target]["jurisdiction"], *sites[target]["jurisdiction_ancestors"]} & legal
        assert sites[target]["security_tier"] >= workloads[w]["min_security_tier"]
    # declared down (corroborated by the peers' failed probes), then back up when the agent restarted
    # in commit order (id): ``at`` is each request's start time, so a heartbeat that began just before a
    # maintenance tick but committed after it carries the earlier ``at`` (CI saw up/link_down swapped)
    states = [e["to_state"] for e in sorted(events, key=lambda e: e["id"])]
    assert "down" in states and states[-1] == "up", events
    assert sites[out_site]["liveness"] == "up"
