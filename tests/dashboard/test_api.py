"""The dashboard's JSON reads: fleet rows, site detail and charts, alarms, placement, audit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from microdc.control.dashboard import queries
from microdc.control.dashboard.demo import reading

from .conftest import World

SITE = "t-de-0000"


def now() -> datetime:
    return datetime.now(UTC)


def get(world: World, path: str, user: str = "vera", **params: object) -> dict:  # type: ignore[type-arg]
    r = world.client.get(path, params=params, headers=world.bearer(user))
    assert r.status_code == 200, r.text
    out: dict = r.json()  # type: ignore[type-arg]
    return out


def row(world: World, site: str = SITE) -> dict:  # type: ignore[type-arg]
    return next(r for r in get(world, "/dashboard/api/fleet")["rows"] if r["id"] == site)


def test_fleet_rows_follow_the_latest_telemetry(world: World) -> None:
    t = now()
    world.fleet.post(
        SITE,
        [
            reading(f"{SITE}.it_power", "Power", "ACOutput", 8000.0, t),
            reading(f"{SITE}.facility_power", "Power", "ACUtilityInput", 10_000.0, t),
            reading(f"{SITE}.inlet", "Temperature", "Intake", 24.5, t),
            reading(f"{SITE}.inlet2", "Temperature", "Intake", 25.5, t),
            reading(f"{SITE}.cpu", "Percent", "CPU", 40.0, t),
        ],
    )
    r = row(world)
    assert r["it_kw"] == 8.0 and r["facility_kw"] == 10.0 and r["pue"] == 1.25
    assert r["inlet_c"] == 25.5  # the hottest inlet
    assert r["util"] == pytest.approx(0.4) and r["util_src"] == "cpu"
    assert r["state"] == "up" and r["alarms_open"] == 0
    assert r["last_reading"].startswith(t.strftime("%Y-%m-%dT%H:%M"))
    summary = get(world, "/dashboard/api/fleet")["summary"]
    assert summary["sites"] == 6 and summary["states"]["up"] == 6


def test_utilization_falls_back_to_allocated_cores(world: World) -> None:
    with world.services.db.session() as s:
        s.execute(text("DELETE FROM sensors WHERE reading_type = 'Percent'"))
    world.fleet.workload("w1", origin="DE", cores=16)
    r = row(world)
    assert r["util_src"] == "cores" and r["util"] == pytest.approx(r["cores_used"] / r["cores_cap"])
    assert r["cores_used"] == 16


def test_open_alarms_per_site(world: World) -> None:
    t = now()
    world.fleet.post(SITE, [reading(f"{SITE}.inlet", "Temperature", "Intake", 29.0, t)])  # warning (dwell 0)
    world.fleet.post(SITE, [reading(f"{SITE}.leak", "Leak", "Room", 1.0, t)])  # critical
    r = row(world)
    assert (r["alarms_critical"], r["alarms_warning"], r["alarms_unacked"]) == (1, 1, 2)
    s = get(world, "/dashboard/api/fleet")["summary"]["alarms"]
    assert s == {"critical": 1, "warning": 1, "unacked": 2}


def test_site_detail(world: World) -> None:
    t = now()
    world.fleet.post(
        SITE,
        [
            reading(f"{SITE}.ups.state", "UPSState", "PowerSupply", 1.0, t),
            reading(f"{SITE}.ups.runtime", "Runtime", "Battery", 12.0, t),
            reading(f"{SITE}.door", "Door", "Door", 1.0, t),
        ],
    )
    world.fleet.workload("w-health", origin="DE", data_class="health", cores=4)
    d = get(world, f"/dashboard/api/sites/{SITE}")
    assert d["site"]["id"] == SITE and d["site"]["capacity_cores"] > 0
    ups = {u["sensor"]: u for u in d["sensors"]["ups"]}
    assert ups[f"{SITE}.ups.state"]["label"] == "on battery" and not ups[f"{SITE}.ups.state"]["ok"]
    assert d["sensors"]["runtime"][0]["value"] == 12.0
    safety = {x["type"]: x for x in d["sensors"]["safety"]}
    assert safety["Door"]["label"] == "open" and safety["Smoke"]["label"] == "clear"
    assert safety["Leak"]["label"] == "dry"
    assert {p["scope"] for p in d["sensors"]["power"]} == {"it", "facility"}
    assert [t_["context"] for t_ in d["sensors"]["temperature"]] == ["Exhaust", "Intake"]
    assert d["sensors"]["humidity"][0]["context"] == "Room"
    assert d["data_classes"] == ["health"] and d["workloads"][0]["id"] == "w-health"
    up = d["uplink"]
    assert up["state"] == "up" and up["heartbeat_age_s"] < 60 and up["agent_version"] == "sim-1"
    assert up["last_batch_seq"] >= 2 and up["late_batches_10min"] == 0
    assert d["desired"]["version"] >= 1 and d["desired"]["backlog"] == d["desired"]["version"]
    kinds = {a["kind"] for a in d["alarms"]}
    assert {"ups_on_battery", "door_open", "ups_low_runtime"} <= kinds
    assert d["bands"]["inlet_recommended_c"] == [18.0, 27.0] and d["bands"]["inlet_allowable_c"] == [
        15.0,
        32.0,
    ]
    assert d["events"][0]["to"] == "up"


def test_backlog_uploads_show_as_late_batches(world: World) -> None:
    world.fleet.backfill(SITE, hours=1, step_s=300)
    up = get(world, f"/dashboard/api/sites/{SITE}")["uplink"]
    assert up["late_batches_10min"] == 1 and up["oldest_late_reading"] is not None


def test_site_charts_against_the_ashrae_bands(world: World) -> None:
    world.fleet.backfill(SITE, hours=3, step_s=60)
    c = get(world, f"/dashboard/api/sites/{SITE}/charts", hours=6)
    assert c["resolution"] == "raw" and c["hours"] == 6
    figs = c["figures"]
    assert set(figs) == {"power", "pue", "temperature", "humidity", "ups"}
    temp = figs["temperature"]
    bands = sorted((sh["y0"], sh["y1"]) for sh in temp["layout"]["shapes"])
    assert bands == [(15.0, 32.0), (18.0, 27.0)]
    assert {t["name"].split(" ")[1] for t in temp["data"]} == {"(Intake)", "(Exhaust)"}
    assert len(temp["data"][0]["x"]) > 100
    hum = sorted((sh["y0"], sh["y1"]) for sh in figs["humidity"]["layout"]["shapes"])
    assert hum == [(8.0, 60.0), (8.0, 80.0)]
    pue = figs["pue"]["data"][0]["y"]
    assert pue and all(1.0 < p < 1.6 for p in pue)
    power = {t["name"]: t for t in figs["power"]["data"]}
    assert len(power) == 2 and all(len(t["x"]) > 100 for t in power.values())
    assert figs["ups"]["layout"]["yaxis2"]["ticktext"] == ["mains", "battery", "bypass", "fault"]
    # longer windows come from the 5-minute rollups and raw data past their watermark
    assert get(world, f"/dashboard/api/sites/{SITE}/charts", hours=48)["resolution"] == "5m"
    r = world.client.get(f"/dashboard/api/sites/{SITE}/charts?hours=0", headers=world.bearer("vera"))
    assert r.status_code == 422


def test_alarm_list_filters(world: World) -> None:
    t = now()
    world.fleet.post(SITE, [reading(f"{SITE}.leak", "Leak", "Room", 1.0, t)])
    world.fleet.post("t-fr-0001", [reading("t-fr-0001.inlet", "Temperature", "Intake", 28.0, t)])
    items = get(world, "/dashboard/api/alarms", state="open")["alarms"]
    assert {(a["site_id"], a["kind"]) for a in items} == {(SITE, "leak"), ("t-fr-0001", "inlet_temperature")}
    assert [a["kind"] for a in get(world, "/dashboard/api/alarms", severity="critical")["alarms"]] == ["leak"]
    assert [a["kind"] for a in get(world, "/dashboard/api/alarms", site="t-fr-0001")["alarms"]] == [
        "inlet_temperature"
    ]
    assert len(get(world, "/dashboard/api/alarms", q="28.0")["alarms"]) == 1
    assert get(world, "/dashboard/api/alarms", q="%")["alarms"] == []  # LIKE wildcards are literal
    leak = next(a for a in items if a["kind"] == "leak")
    r = world.client.post(
        f"/dashboard/api/alarms/{leak['id']}/clear", json={"note": "dried"}, headers=world.bearer("otto")
    )
    assert r.json()["cleared_by"] == "user:otto"
    assert [a["id"] for a in get(world, "/dashboard/api/alarms", state="cleared")["alarms"]] == [leak["id"]]
    r = world.client.get("/dashboard/api/alarms?state=bogus", headers=world.bearer("vera"))
    assert r.status_code == 422


def test_placement_history_shows_re_placed_and_degraded_work(world: World) -> None:
    f = world.fleet
    f.workload("w-de", origin="DE", data_class="health", cores=4, min_tier=2)  # DE only: one DE site
    w_eu = f.workload("w-eu", origin="DE", data_class="personal", cores=4, min_tier=2, allowed=["EU"])
    assert get(world, "/api/v1/workloads/w-de")["site_id"] == SITE
    for site in dict.fromkeys((w_eu["site_id"], SITE)):
        r = world.client.put(
            f"/api/v1/sites/{site}/trust",
            json={"trusted": False, "reason": "break-in"},
            headers=world.bearer("alice"),
        )
        assert r.status_code == 200
    p = get(world, "/dashboard/api/placement")
    by = {w["id"]: w for w in p["workloads"]}
    assert by["w-de"]["state"] == "degraded" and by["w-de"]["site_id"] is None
    assert by["w-eu"]["state"] == "assigned" and by["w-eu"]["site_state"] == "up"
    assert p["counts"] == {"degraded": 1, "assigned": 1}
    kinds = [c["kind"] for run in p["history"] for c in run["changes"]]
    assert "re-placed" in kinds and "degraded" in kinds and kinds.count("placed") == 2
    degraded = next(c for run in p["history"] for c in run["changes"] if c["kind"] == "degraded")
    assert degraded["from_site"] == SITE and degraded["to_site"] is None and "tier" in degraded["reason"]
    assert p["history"][0]["trigger"] == "user:alice"

    x = get(world, "/dashboard/api/placement/w-de")
    filters = {f_["name"]: f_ for f_ in x["filters"]}
    assert filters["jurisdiction"]["excluded"] == 5  # everything but the DE site
    assert filters["security tier"]["excluded"] == 1
    assert "untrusted" in filters["security tier"]["examples"][0]["reason"]
    assert x["feasible_total"] == 0 and x["placer"] == "OnlinePlacer"
    x = get(world, "/dashboard/api/placement/w-eu")
    assert x["feasible_total"] >= 1
    assert [c["rank"] for c in x["feasible"]] == list(range(1, len(x["feasible"]) + 1))
    scores = [c["score"] for c in x["feasible"]]
    assert scores == sorted(scores, reverse=True)
    r = world.client.get("/dashboard/api/placement/nope", headers=world.bearer("vera"))
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"state": "assigned", "from_site": None, "to_site": "a"}, "placed"),
        ({"state": "assigned", "from_site": "a", "to_site": "b"}, "re-placed"),
        ({"state": "degraded", "from_site": "a", "to_site": None}, "degraded"),
        ({"state": "held", "from_site": "a", "to_site": "a"}, "held"),
        ({"state": "assigned", "from_site": "a", "to_site": None}, "released"),
    ],
)
def test_change_kinds(change: dict, kind: str) -> None:  # type: ignore[type-arg]
    assert queries.change_kind(change) == kind


def test_audit_search_and_verification(world: World) -> None:
    a = get(world, "/dashboard/api/audit", "alice")
    assert a["head_seq"] == a["entries"][0]["seq"] and len(a["entries"]) > 10
    seqs = [e["seq"] for e in a["entries"]]
    assert seqs == sorted(seqs, reverse=True)
    creates = get(world, "/dashboard/api/audit", "alice", action="site.create")["entries"]
    assert creates == [] or all(e["action"] == "site.create" for e in creates)
    enroll = get(world, "/dashboard/api/audit", "alice", action="enrollment.*")["entries"]
    assert {e["action"] for e in enroll} == {"enrollment.token_create", "enrollment.redeem"}
    assert {e["actor"] for e in get(world, "/dashboard/api/audit", "alice", actor="vera")["entries"]} <= {
        "user:vera"
    }
    found = get(world, "/dashboard/api/audit", "alice", q="t-nl-0002")["entries"]
    assert found and all("t-nl-0002" in (e["target"] + e["details"]) for e in found)
    older = get(world, "/dashboard/api/audit", "alice", before_seq=seqs[4], limit=3)["entries"]
    assert [e["seq"] for e in older] == seqs[5:8]

    v = get(world, "/dashboard/api/audit/verify", "alice", fresh="true")
    assert v["ok"] and v["checked"] == a["head_seq"] and v["first_bad_seq"] is None
    # tamper with an entry: the next verification names it
    with world.services.db.session() as s:
        s.execute(text("UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 5"))
    v = get(world, "/dashboard/api/audit/verify", "alice", fresh="true")
    assert not v["ok"] and v["first_bad_seq"] == 5 and "edited" in v["reason"]
    cached = get(world, "/dashboard/api/audit/verify", "alice")
    assert cached == v


def test_fleet_and_site_pages_show_why_a_site_is_in_its_state(world: World) -> None:
    """A silent site with a failed probe: suspect, its reason and the evidence on both pages."""
    from datetime import timedelta

    from microdc.control.models import ControlPlaneWatch, Site

    long_ago = now() - timedelta(minutes=10)
    with world.services.db.session() as s:
        site = s.get(Site, SITE)
        assert site is not None
        site.last_heartbeat_at = long_ago  # silent for 10 minutes, while the control plane was watching
        watch = s.get(ControlPlaneWatch, 1)
        assert watch is not None
        watch.watching_since = long_ago - timedelta(hours=1)
    r = world.client.post(
        "/api/v1/probes",
        json={"target_site_id": SITE, "reachable": False, "path": "icmp from the ISP"},
        headers=world.bearer("otto"),
    )
    assert r.status_code == 201 and r.json()["site_state"] == "suspect", r.text

    fleet = get(world, "/dashboard/api/fleet")
    assert fleet["summary"]["states"]["suspect"] == 1
    r = next(x for x in fleet["rows"] if x["id"] == SITE)
    assert r["state"] == "suspect" and "hold-down until" in r["state_reason"]
    assert "peer probes: 0 observer(s) reached it, 1 failed" in " ".join(r["state_evidence"])
    others = [x for x in fleet["rows"] if x["id"] != SITE]
    assert {x["state"] for x in others} == {"up"} and all(x["state_evidence"] == [] for x in others)

    detail = get(world, f"/dashboard/api/sites/{SITE}")
    assert detail["uplink"]["reason"] == r["state_reason"]
    assert any(line.startswith("heartbeats overdue since") for line in detail["uplink"]["evidence"])
    assert detail["events"][0]["to"] == "suspect"
    assert any("hold-down until" in line for line in detail["events"][0]["evidence"])
