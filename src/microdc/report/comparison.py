"""The headline figures of one alternative, as written to `comparison.json` and shown in the report.

Everything here is computed from the plan and the simulated outputs; nothing is typed in.

- cost per year, by part: `capex` (module and server capex annualized over their lifetimes at the
  discount rate, from the plan), `site` (lease, connection, maintenance), `energy` (simulated MDC
  facility energy, scaled from the simulated days to a year, at each site's energy price plus the
  carbon price), `cloud` (cloud compute and memory bill of the plan's cloud assignments) and `egress`
  (responses leaving the cloud plus request backhaul);
- latency per service: quantiles of the run's response-time distribution (`latency_math`), and the
  SLO violation rate (share of served requests over the SLO, as the simulator counted them);
- energy, PUE and carbon over the simulated period, MDCs and cloud regions together;
- sovereignty: assignments whose target breaks the data-class rule (`policy.PolicyBook`);
- unserved: demand the alternative does not serve, and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from microdc.model import Scenario
from microdc.placement.plan import Assignment, Plan
from microdc.policy import PolicyBook
from microdc.report.data import AlternativeRun
from microdc.report.latency_math import mixture_quantiles, weighted_mean

SECONDS_PER_YEAR = 8760.0 * 3600.0
COST_PARTS = ("capex", "energy", "cloud", "egress", "site")


def _finite(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def egress_per_year(s: Scenario, plan: Plan) -> float:
    """Annual egress (responses out of the cloud) and backhaul (requests to it) of cloud assignments."""
    regions = {r.id: r for r in s.cloud_regions}
    demand = {d.id: d for d in s.demand}
    total = 0.0
    for a in plan.primary():
        if a.kind != "cloud" or a.target not in regions:
            continue
        d = demand[a.demand]
        svc = s.service(d.service)
        rps = d.mean_rate_rps * a.fraction
        out_gb = rps * svc.response_kb * SECONDS_PER_YEAR / 1e6
        in_gb = rps * svc.payload_kb * SECONDS_PER_YEAR / 1e6
        total += out_gb * regions[a.target].egress_per_gb + in_gb * s.economics.network_price_per_gb
    return total


def energy_cost_per_year(s: Scenario, timeseries: pd.DataFrame, days: float) -> float:
    """Simulated MDC facility energy (and its carbon price), scaled to a year."""
    if timeseries.empty or days <= 0:
        return 0.0
    ts = timeseries[~timeseries["site"].astype(str).str.startswith("cloud:")]
    eco = s.economics
    price = {
        site.id: site.energy_price_per_kwh if site.energy_price_per_kwh is not None else eco.energy_price_per_kwh
        for site in s.sites
    }
    kwh = ts.groupby("site")["energy_kwh"].sum()
    carbon_g = float(ts["carbon_g"].sum())
    cost = sum(float(v) * price.get(str(k), eco.energy_price_per_kwh) for k, v in kwh.items())
    cost += eco.carbon_price_per_tonne * carbon_g / 1e6
    return cost * 365.0 / days


def cost_breakdown(s: Scenario, plan: Plan, timeseries: pd.DataFrame, days: float) -> dict[str, float]:
    c = plan.costs
    egress = egress_per_year(s, plan)
    return {
        "capex": c.get("module_capex", 0.0) + c.get("server_capex", 0.0),
        "energy": energy_cost_per_year(s, timeseries, days),
        "cloud": max(0.0, c.get("cloud", 0.0) - egress),
        "egress": egress,
        "site": c.get("site", 0.0),
    }


def sovereignty_violations(s: Scenario, assignments: Iterable[Assignment]) -> list[dict[str, Any]]:
    """Assignments whose target may not process or store that demand's data (or is below its tier)."""
    tree = s.tree
    book = PolicyBook(tree, s.policies.data_classes)
    demand = {d.id: d for d in s.demand}
    where = {x.id: (x.jurisdiction, x.security_tier) for x in s.sites}
    where.update({r.id: (r.jurisdiction, r.security_tier) for r in s.cloud_regions})
    out: list[dict[str, Any]] = []
    for a in assignments:
        d = demand.get(a.demand)
        if d is None or a.target not in where:
            continue
        jur, tier = where[a.target]
        ok = bool(book.sovereignty_mask([d.data_class], tree.indices([d.jurisdiction]), tree.indices([jur]))[0, 0])
        tier_ok = tier >= s.policy_for(d.data_class).min_security_tier
        if not (ok and tier_ok):
            rule = "process_in/store_in" if not ok else "min_security_tier"
            out.append({
                "demand": d.id, "data_class": d.data_class, "origin": d.jurisdiction, "target": a.target,
                "target_jurisdiction": jur, "role": a.role, "rule": rule,
                "rps": round(d.mean_rate_rps * a.fraction, 3),
            })
    return out


def latency_by_service(s: Scenario, latency: pd.DataFrame) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for svc in s.services:
        df = latency[latency["service"] == svc.id]
        p50, p95, p99 = mixture_quantiles(df) if not df.empty else [float("nan")] * 3
        served = df["served_rps"].to_numpy(dtype=float) if not df.empty else np.zeros(0)
        unserved = df["unserved_rps"].to_numpy(dtype=float) if not df.empty else np.zeros(0)
        viol = weighted_mean(df["slo_violation_fraction"], df["served_rps"]) if not df.empty else float("nan")
        asked = float(np.nansum(served) + np.nansum(unserved))
        out[svc.id] = {
            "p50_ms": _finite(p50), "p95_ms": _finite(p95), "p99_ms": _finite(p99),
            "slo_p95_ms": svc.slo.p95_ms, "slo_p99_ms": svc.slo.p99_ms,
            "slo_violation_rate": _finite(viol),
            "unserved_fraction": float(np.nansum(unserved)) / asked if asked > 0 else 0.0,
        }
    return out


def compare(s: Scenario, alt: AlternativeRun, days: float) -> dict[str, Any]:
    """One `comparison.json` entry for an alternative."""
    ts, lat, plan = alt.timeseries, alt.latency, alt.plan
    breakdown = cost_breakdown(s, plan, ts, days)
    it_kwh = float((ts["it_w"] * ts["energy_kwh"] / ts["total_w"].where(ts["total_w"] > 0)).sum())
    energy_kwh = float(ts["energy_kwh"].sum())
    served = float(lat["served_rps"].sum())
    unserved = float(lat["unserved_rps"].sum())
    violations = sovereignty_violations(s, plan.assignments)
    sim_violations = alt.summary.get("sovereignty_violations")
    if isinstance(sim_violations, list):
        violations += [v for v in sim_violations if isinstance(v, dict)]
    elif isinstance(sim_violations, int | float) and sim_violations > len(violations):
        violations += [{"source": "simulation", "count": int(sim_violations) - len(violations)}]
    mean_rps = {d.id: d.mean_rate_rps for d in s.demand}
    total_rps = sum(mean_rps.values())
    return {
        "alternative": alt.name,
        "method": plan.method,
        "currency": plan.currency,
        "sites_built": len(plan.sites),
        "it_kw_built": round(sum(b.it_kw for b in plan.sites), 3),
        "cost_per_year": sum(breakdown.values()),
        "cost_breakdown": breakdown,
        "latency": latency_by_service(s, lat),
        "slo_violation_rate": _finite(weighted_mean(lat["slo_violation_fraction"], lat["served_rps"])),
        "energy_kwh": energy_kwh,
        "energy_kwh_per_year": energy_kwh * 365.0 / days if days > 0 else None,
        "pue": _finite(energy_kwh / it_kwh) if it_kwh > 0 else None,
        "carbon_kg": float(ts["carbon_g"].sum()) / 1000.0,
        "sovereignty_violations": len(violations),
        "sovereignty_violation_details": violations,
        "unserved_fraction": unserved / (served + unserved) if served + unserved > 0 else 0.0,
        "unserved_planned_fraction": (
            sum(mean_rps.get(u.demand, 0.0) * u.fraction for u in plan.unserved) / total_rps if total_rps else 0.0
        ),
        "unserved": [u.model_dump() for u in plan.unserved],
    }
