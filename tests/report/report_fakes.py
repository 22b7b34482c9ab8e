"""Simulator-shaped outputs made up for report tests (the report must not depend on simulator details)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from microdc.model import Scenario
from microdc.placement.plan import Assignment, BuiltSite, Plan, Unserved
from microdc.report.data import AlternativeRun


def fake_plan(s: Scenario, alternative: str, *, cloud: bool = False) -> Plan:
    """microdc-like plan (each demand at its jurisdiction's best site) or a cloud-only one."""
    sites: list[BuiltSite] = []
    assignments: list[Assignment] = []
    unserved: list[Unserved] = []
    region = s.cloud_regions[0]
    for d in s.demand:
        if cloud:
            if s.policy_for(d.data_class).process_in == "origin" and region.jurisdiction != d.jurisdiction:
                unserved.append(
                    Unserved(
                        demand=d.id,
                        fraction=1.0,
                        reasons=[
                            f"{d.data_class!r} data from {d.jurisdiction} may not be processed "
                            f"in {region.jurisdiction}"
                        ],
                    )
                )
                continue
            assignments.append(
                Assignment(
                    demand=d.id, target=region.id, kind="cloud", fraction=1.0, rtt_ms=90.0, p95_ms=120.0
                )
            )
            continue
        site = max(
            (x for x in s.sites if x.jurisdiction == d.jurisdiction),
            key=lambda x: x.security_tier,
            default=s.sites[0],
        )
        if site.id not in {b.site for b in sites}:
            sites.append(
                BuiltSite(
                    site=site.id,
                    module="cab",
                    server="srv",
                    servers=3,
                    cores=96,
                    memory_gb=768,
                    it_kw=1.2,
                    annual_pue=1.09,
                    fixed_cost=20000.0,
                )
            )
        assignments.append(
            Assignment(demand=d.id, target=site.id, kind="site", fraction=1.0, rtt_ms=3.0, p95_ms=18.0)
        )
    costs = {
        "site": 20000.0 * len(sites),
        "module_capex": 2800.0 * len(sites),
        "server_capex": 3100.0 * len(sites),
        "idle_energy": 500.0,
        "site_dynamic_energy": 50.0,
        "cloud": 0.0 if not cloud else 15000.0,
        "unserved_penalty": 0.0,
    }
    costs["total"] = sum(costs.values())
    return Plan(
        scenario=s.name,
        alternative=alternative,
        method="fake",
        status="optimal",
        objective=costs["total"],
        lower_bound=costs["total"],
        gap=0.0,
        seconds=0.1,
        currency=s.economics.currency,
        n_plus=0,
        costs=costs,
        sites=sites,
        assignments=assignments,
        unserved=unserved,
    )


def fake_run(
    s: Scenario, plan: Plan, *, days: int = 2, step_minutes: int = 60, slow: float = 1.0
) -> AlternativeRun:
    times = pd.date_range(
        "2023-01-01", periods=days * 24 * 60 // step_minutes, freq=f"{step_minutes}min", tz="UTC"
    )
    step_h = step_minutes / 60
    rng = np.random.default_rng(7)
    targets = [b.site for b in plan.sites] + sorted(
        {f"cloud:{a.target}" for a in plan.assignments if a.kind == "cloud"}
    )
    rows = []
    for t in times:
        outdoor = 10 + 8 * np.sin(2 * np.pi * (t.hour - 9) / 24)
        for site in targets:
            it = 600 + 400 * rng.random()
            cooling = it * (0.05 + 0.01 * max(outdoor - 15, 0))
            total = it + cooling + 30
            intensity = 300 + 50 * np.cos(2 * np.pi * t.hour / 24)
            energy = total * step_h / 1000
            rows.append(
                {
                    "time": t,
                    "site": site,
                    "state": "up",
                    "load_rps": 500.0,
                    "utilization": it / 1200,
                    "it_w": it,
                    "cooling_w": cooling,
                    "ups_loss_w": 20.0,
                    "distribution_loss_w": 5.0,
                    "misc_w": 5.0,
                    "total_w": total,
                    "pue": total / it,
                    "outdoor_c": np.nan if site.startswith("cloud:") else outdoor,
                    "inlet_c": 22.0,
                    "carbon_intensity_g_per_kwh": intensity,
                    "carbon_g": energy * intensity,
                    "energy_kwh": energy,
                    "sync_backlog_gb": 0.0,
                }
            )
    lat_rows = []
    for t in times:
        for svc in s.services:
            base = 8.0 * slow * (1 + 0.2 * rng.random())
            lat_rows.append(
                {
                    "time": t,
                    "service": svc.id,
                    "p50_ms": base,
                    "p95_ms": base * 2,
                    "p99_ms": base * 3,
                    "served_rps": 100.0,
                    "unserved_rps": 0.0,
                    "slo_violation_fraction": 0.0 if slow < 2 else 0.3,
                }
            )
    events = [
        {
            "time": times[3].isoformat(),
            "end": times[6].isoformat(),
            "kind": "site-failure",
            "site": targets[0],
            "detail": "power cut",
        },
        {"time": times[3].isoformat(), "kind": "re-place", "site": targets[0], "detail": "moved 3 services"},
    ]
    return AlternativeRun(
        name=plan.alternative,
        plan=plan,
        timeseries=pd.DataFrame(rows),
        latency=pd.DataFrame(lat_rows),
        events=events,
        summary={},
    )
