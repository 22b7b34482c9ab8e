"""Prometheus families the dashboard adds to /metrics, and the Grafana dashboard that uses them."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from microdc.control.dashboard.demo import reading

from .conftest import World, build_app, make_users, settings

GRAFANA = Path(__file__).parents[2] / "deploy" / "grafana" / "microdc-dashboard.json"
SITE = "t-de-0000"


def scrape(world: World) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    r = world.client.get("/metrics", headers=world.bearer("vera"))
    assert r.status_code == 200
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def value(m: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    want = set(labels.items())
    hits = [v for k, v in m[name].items() if want <= set(k)]
    assert len(hits) == 1, (name, labels, hits)
    return float(hits[0])


def test_per_site_families(world: World) -> None:
    t = datetime.now(UTC)
    world.fleet.post(
        SITE,
        [
            reading(f"{SITE}.ups.state", "UPSState", "PowerSupply", 1.0, t),
            reading(f"{SITE}.ups.runtime", "Runtime", "Battery", 9.5, t),
            reading(f"{SITE}.door", "Door", "Door", 1.0, t),
            reading(f"{SITE}.cpu", "Percent", "CPU", 55.0, t),
            reading(f"{SITE}.rh", "Humidity", "Room", 44.0, t),
            reading(f"{SITE}.exhaust", "Temperature", "Exhaust", 35.5, t),
        ],
    )
    world.fleet.workload("w-1", origin="DE", data_class="health", cores=8)
    world.client.put(
        "/api/v1/sites/t-fr-0001/trust",
        json={"trusted": False, "reason": "x"},
        headers=world.bearer("alice"),
    )
    m = scrape(world)
    assert value(m, "microdc_site_state", site=SITE, state="up") == 1
    assert value(m, "microdc_site_state", site=SITE, state="down") == 0
    assert value(m, "microdc_site_state", site="t-fr-0001", state="untrusted") == 1
    assert value(m, "microdc_site_info", site=SITE, jurisdiction="DE") == 1
    assert value(m, "microdc_site_utilization_ratio", site=SITE) == 0.55
    assert value(m, "microdc_site_alarms_open", site=SITE, severity="critical") >= 1  # door open
    assert value(m, "microdc_site_alarms_unacknowledged", site=SITE) >= 2
    assert value(m, "microdc_site_temperature_celsius", site=SITE, context="Exhaust") == 35.5
    assert value(m, "microdc_site_humidity_percent", site=SITE) == 44.0
    assert value(m, "microdc_site_ups_state", site=SITE) == 1
    assert value(m, "microdc_site_ups_runtime_minutes", site=SITE) == 9.5
    assert value(m, "microdc_site_door_open", site=SITE) == 1
    assert value(m, "microdc_site_smoke_detected", site=SITE) == 0
    assert value(m, "microdc_site_leak_detected", site=SITE) == 0
    assert abs(value(m, "microdc_site_last_heartbeat_timestamp_seconds", site=SITE) - time.time()) < 120
    assert abs(value(m, "microdc_site_last_reading_timestamp_seconds", site=SITE) - t.timestamp()) < 1
    assert value(m, "microdc_site_desired_backlog", site=SITE) == value(
        m, "microdc_site_desired_version", site=SITE
    )
    assert value(m, "microdc_site_workloads", site=SITE, state="assigned") == 1
    assert value(m, "microdc_site_data_class_workloads", site=SITE, data_class="health") == 1
    assert value(m, "microdc_site_cores", site=SITE, kind="allocated") == 8
    assert value(m, "microdc_workload_placement", workload="w-1", site=SITE, state="assigned") == 1
    assert value(m, "microdc_alarms_open_by_state", state="raised", severity="critical") >= 1
    assert value(m, "microdc_audit_entries") > 10
    # the control plane's own families are still there
    assert value(m, "microdc_site_pue", site=SITE) > 1


def test_audit_chain_status_is_exported_after_verification(world: World) -> None:
    st = world.app.state.dashboard
    st.verifier.verify_now()
    m = scrape(world)
    assert value(m, "microdc_audit_chain_ok") == 1
    assert value(m, "microdc_audit_chain_verified_entries") > 10
    assert value(m, "microdc_audit_chain_first_bad_seq") == 0


def test_dashboard_counters(world: World) -> None:
    world.client.get("/dashboard/events", headers=world.bearer("vera"))
    m = scrape(world)
    assert value(m, "microdc_dashboard_sse_clients") == 0
    assert sum(v for k, v in m["microdc_dashboard_events_total"].items() if ("kind", "lifetime") in k) >= 1


def test_registration_survives_a_restart_of_the_app(db_url: str) -> None:
    app = build_app(settings(db_url))
    tokens: dict[str, str] = {}
    for _ in range(2):  # the lifespan unregisters on shutdown and registers again on start
        with TestClient(app) as c:
            tokens = tokens or make_users(app.state.services)
            r = c.get("/metrics", headers={"Authorization": f"Bearer {tokens['vera']}"})
            assert r.status_code == 200 and "microdc_site_state" in r.text


def test_grafana_dashboard_uses_existing_metrics(world: World) -> None:
    dash = json.loads(GRAFANA.read_text(encoding="utf-8"))
    assert dash["__inputs"][0]["name"] == "DS_PROMETHEUS" and dash["__inputs"][0]["pluginId"] == "prometheus"
    t = datetime.now(UTC)
    world.fleet.post(SITE, [reading(f"{SITE}.ups.runtime", "Runtime", "Battery", 30.0, t)])
    world.fleet.workload("w-1", origin="DE", cores=2)
    world.app.state.dashboard.verifier.verify_now()
    text = world.client.get("/metrics", headers=world.bearer("vera")).text
    scraped = set(scrape(world))  # samples, plus families that have none right now:
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        scraped |= {name, f"{name}_total"} if kind == "counter" else {name, f"{name}_bucket"}
    exprs = []
    for p in dash["panels"]:
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"]
        for tgt in p["targets"]:
            assert tgt["datasource"]["uid"] == "${DS_PROMETHEUS}"
            exprs.append(tgt["expr"])
    used = {n for e in exprs for n in re.findall(r"\bmicrodc_[a-z_]+", e)}
    assert len(used) >= 30
    missing = sorted(n for n in used if n not in scraped)
    assert missing == [], "metrics the Grafana dashboard queries but /metrics does not export"
    var = dash["templating"]["list"][0]
    assert var["datasource"]["uid"] == "${DS_PROMETHEUS}" and "microdc_site_info" in var["query"]["query"]
    assert "http" not in json.dumps(dash).replace("https://grafana", "")
