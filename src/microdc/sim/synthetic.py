"""Synthetic scenarios and plans at any scale, for benchmarks and tests.

A country of four states over a ~1,000 km square; N candidate MDC sites at random places; D demand
sources, each a cell a few km from a site; two services (video analytics on personal data that must
stay in its state, IoT telemetry on public data that may go anywhere); two cloud regions (one in the
country, one abroad). Weather and carbon are constant per state so no files are needed. The plan builds
every site with the same module and places every source with the online placer (so it is a valid,
sovereign plan, not an optimal one).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from microdc.model import Scenario
from microdc.placement.online import Outcome, Placer, fleet_from_plan, workloads_for_demand
from microdc.placement.plan import Assignment, BuiltSite, Plan

STATES = ("XX-N", "XX-E", "XX-S", "XX-W")
LAT0, LAT1, LON0, LON1 = 40.0, 49.0, 0.0, 12.0


def synthetic_scenario(n_sites: int, n_demand: int, *, seed: int = 0, n_plus: int = 0) -> Scenario:
    rng = np.random.default_rng(seed)
    site_lat = rng.uniform(LAT0 + 0.1, LAT1 - 0.1, n_sites)
    site_lon = rng.uniform(LON0 + 0.1, LON1 - 0.1, n_sites)

    def state_of(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        north = lat >= (LAT0 + LAT1) / 2
        east = lon >= (LON0 + LON1) / 2
        return np.where(north, np.where(east, 1, 0), np.where(east, 2, 3))

    home = rng.integers(0, n_sites, n_demand)
    dist_deg = rng.uniform(0.0, 0.02, n_demand)  # within ~2 km of a site
    angle = rng.uniform(0, 2 * np.pi, n_demand)
    d_lat = np.clip(site_lat[home] + dist_deg * np.cos(angle), LAT0 + 0.01, LAT1 - 0.01)
    d_lon = np.clip(site_lon[home] + dist_deg * np.sin(angle), LON0 + 0.01, LON1 - 0.01)
    d_state = state_of(d_lat, d_lon)
    video = rng.random(n_demand) < 0.6
    s_state = state_of(site_lat, site_lon)
    half = (LAT1 - LAT0) / 2, (LON1 - LON0) / 2
    boxes = {
        "XX-N": [LAT0 + half[0], LON0, LAT1, LON0 + half[1]],
        "XX-E": [LAT0 + half[0], LON0 + half[1], LAT1, LON1],
        "XX-S": [LAT0, LON0 + half[1], LAT0 + half[0], LON1],
        "XX-W": [LAT0, LON0, LAT0 + half[0], LON0 + half[1]],
    }
    data: dict[str, Any] = {
        "name": f"synthetic-{n_sites}x{n_demand}",
        "description": "synthetic benchmark scenario",
        "jurisdictions": [
            {
                "code": "XX",
                "bbox": [LAT0 - 0.5, LON0 - 0.5, LAT1 + 0.5, LON1 + 0.5],
                "children": [{"code": c, "bbox": boxes[c]} for c in STATES],
            },
            {"code": "YY"},
        ],
        "sites": [
            {
                "id": f"s{i:05d}",
                "lat": float(site_lat[i]),
                "lon": float(site_lon[i]),
                "jurisdiction": STATES[int(s_state[i])],
                "security_tier": 2 + int(i % 3 == 0),
                "grid_power_kw": 40.0,
                "annual_cost": 6000.0,
                "grid_zone": STATES[int(s_state[i])],
                "climate": STATES[int(s_state[i])],
            }
            for i in range(n_sites)
        ],
        "catalog": {
            "modules": [
                {
                    "id": "rack",
                    "rack_units": 24,
                    "max_it_kw": 12,
                    "cooling": {"kind": "free_air"},
                    "ups": {"energy_kwh": 5},
                    "capex": 40000,
                    "lifetime_years": 10,
                }
            ],
            "servers": [
                {"id": "srv", "cores": 32, "memory_gb": 256, "idle_w": 110, "peak_w": 380, "capex": 9000}
            ],
        },
        "cloud_regions": [
            {
                "id": "cloud-in",
                "lat": 45.0,
                "lon": 6.0,
                "jurisdiction": "XX-N",
                "price_per_core_hour": 0.05,
                "egress_per_gb": 0.08,
                "grid_zone": "XX-N",
            },
            {
                "id": "cloud-out",
                "lat": 38.9,
                "lon": -77.0,
                "jurisdiction": "YY",
                "price_per_core_hour": 0.04,
                "egress_per_gb": 0.08,
            },
        ],
        "services": [
            {
                "id": "video",
                "cpu_seconds_per_request": 0.004,
                "memory_gb_per_instance": 2,
                "requests_per_instance": 100,
                "payload_kb": 100,
                "slo": {"p95_ms": 80, "p99_ms": 120},
            },
            {
                "id": "telemetry",
                "cpu_seconds_per_request": 0.002,
                "memory_gb_per_instance": 1,
                "requests_per_instance": 1000,
                "payload_kb": 1,
                "slo": {"p95_ms": 250},
            },
        ],
        "profiles": {
            "day": {
                "kind": "diurnal",
                "hourly": [
                    0.4,
                    0.3,
                    0.3,
                    0.3,
                    0.4,
                    0.6,
                    0.9,
                    1.2,
                    1.4,
                    1.3,
                    1.2,
                    1.3,
                    1.4,
                    1.3,
                    1.3,
                    1.3,
                    1.4,
                    1.5,
                    1.4,
                    1.2,
                    1.0,
                    0.8,
                    0.6,
                    0.5,
                ],
            }
        },
        "demand": [
            {
                "id": f"d{i:06d}",
                "lat": float(d_lat[i]),
                "lon": float(d_lon[i]),
                "devices": 10,
                "jurisdiction": STATES[int(d_state[i])],
                "data_class": "personal" if video[i] else "public",
                "service": "video" if video[i] else "telemetry",
                "rate_per_device_rps": 5.0 if video[i] else 10.0,
                "profile": "day",
                "data_gb_per_day": 2.0 if video[i] else 0.1,
            }
            for i in range(n_demand)
        ],
        "policies": {
            "data_classes": {
                "personal": {"process_in": "origin", "min_security_tier": 2},
                "public": {"process_in": "any"},
            },
            "redundancy": {"n_plus": n_plus},
        },
        "timeseries": {
            "carbon": {
                c: {"format": "constant", "constant_gco2_per_kwh": 150.0 + 80.0 * k}
                for k, c in enumerate(STATES)
            },
            "weather": {
                c: {"format": "constant", "constant_c": 12.0 + 3.0 * k} for k, c in enumerate(STATES)
            },
        },
    }
    return Scenario.model_validate(data)


def synthetic_plan(s: Scenario, *, servers_per_site: int = 4) -> Plan:
    """Build every site with ``servers_per_site`` servers; place all demand with the online placer."""
    srv = s.catalog.servers[0]
    mod = s.catalog.modules[0]
    sites = [
        BuiltSite(
            site=x.id,
            module=mod.id,
            server=srv.id,
            servers=servers_per_site,
            cores=float(servers_per_site * srv.cores),
            memory_gb=float(servers_per_site * srv.memory_gb),
            it_kw=servers_per_site * srv.peak_w / 1000.0,
            annual_pue=1.1,
            fixed_cost=x.annual_cost,
        )
        for x in s.sites
    ]
    plan = Plan(
        scenario=s.name,
        alternative="synthetic",
        method="online-placer",
        status="feasible",
        objective=0.0,
        lower_bound=0.0,
        gap=1.0,
        seconds=0.0,
        currency=s.economics.currency,
        n_plus=s.policies.redundancy.n_plus,
        costs={},
        sites=sites,
        assignments=[],
    )
    fleet = fleet_from_plan(s, plan)
    table = workloads_for_demand(s, np.arange(len(s.demand)))
    result = Placer.for_scenario(s).place(table, fleet)
    assignments = []
    for i, d in enumerate(s.demand):
        t = int(result.target[i])
        if t < 0 or result.outcome[i] == Outcome.UNSERVED:
            continue
        tid = fleet.ids[t]
        cloud = tid.startswith("cloud:")
        assignments.append(
            Assignment(
                demand=d.id,
                target=tid.removeprefix("cloud:"),
                kind="cloud" if cloud else "site",
                fraction=1.0,
                rtt_ms=0.0,
                p95_ms=0.0,
            )
        )
    return plan.model_copy(update={"assignments": assignments})
