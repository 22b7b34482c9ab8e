"""The headline figures of one alternative, as written to `comparison.json` and shown in the report.

Everything is computed from the plan and the simulator's outputs; nothing is typed in. Where the
simulator's `summary.json` has a figure it is used (it is computed from the full latency mixture and
exact request counts); the per-step files are the fallback.

- cost per year, by part: `capex` (module, server and storage capex annualized over their lifetimes at
  the discount rate, from the plan), `site` (lease, connection, upkeep, from the plan), `energy`
  (simulated MDC energy at each site's price plus the carbon price, and the plan's storage energy),
  `egress` (responses out of the cloud and requests carried to it, from the simulated cloud load) and
  `cloud` (the rest of the simulated cloud bill: cores, memory, stored data, and sync backhaul);
  simulated parts are scaled from the simulated period to a year;
- latency per service: p50/p95/p99 over the run, and the SLO violation rate: the share of offered
  requests answered over the SLO or not answered at all;
- energy, PUE and carbon over the simulated period, MDCs and cloud regions together, and the network
  electricity of carrying each alternative's traffic (`transport_energy_kwh`, docs/fidelity.md);
- sovereignty: planned assignments whose target breaks the data-class rule (`policy.PolicyBook`), plus
  any the simulator counted while re-placing work during faults;
- unserved: demand the alternative does not serve by plan, and requests not served in the simulation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from microdc.model import Scenario
from microdc.placement.plan import Assignment, Plan
from microdc.policy import PolicyBook
from microdc.report.data import CLOUD_PREFIX, AlternativeRun
from microdc.report.latency_math import mixture_quantiles, weighted_mean

HOURS_PER_YEAR = 8760.0
COST_PARTS = ("capex", "energy", "cloud", "egress", "site")


def _num(x: Any) -> float | None:
    """A finite float, or None."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def period_hours(ts: pd.DataFrame, summary: dict[str, Any]) -> float:
    """Simulated hours: from the summary, else from the step grid of the timeseries."""
    h = _num(summary.get("cost", {}).get("period_hours"))
    if h:
        return h
    times = pd.DatetimeIndex(pd.unique(ts["time"])).sort_values()
    if len(times) < 2:
        return 1.0
    step = float(np.median((times[1:] - times[:-1]).total_seconds())) / 3600.0
    return step * len(times)


def _cloud_mix_kb(s: Scenario, plan: Plan) -> dict[str, tuple[float, float]]:
    """Per cloud region: request-weighted mean (request kB, response kB) of the plan's assignments there,
    with the whole demand's mix under the key '' for regions the plan sends nothing to."""
    demand = {d.id: d for d in s.demand}
    acc: dict[str, list[float]] = {"": [0.0, 0.0, 0.0]}
    for d in s.demand:
        svc = s.service(d.service)
        acc[""][0] += d.mean_rate_rps
        acc[""][1] += d.mean_rate_rps * svc.payload_kb
        acc[""][2] += d.mean_rate_rps * svc.response_kb
    for a in plan.primary():
        if a.kind != "cloud" or a.demand not in demand:
            continue
        d = demand[a.demand]
        svc = s.service(d.service)
        rps = d.mean_rate_rps * a.fraction
        w = acc.setdefault(a.target, [0.0, 0.0, 0.0])
        w[0] += rps
        w[1] += rps * svc.payload_kb
        w[2] += rps * svc.response_kb
    return {k: (v[1] / v[0], v[2] / v[0]) for k, v in acc.items() if v[0] > 0}


def egress_cost(s: Scenario, plan: Plan, ts: pd.DataFrame) -> float:
    """Egress of responses and backhaul of requests for the load the cloud regions carried (period)."""
    cloud = ts[ts["site"].astype(str).str.startswith(CLOUD_PREFIX)]
    if cloud.empty:
        return 0.0
    times = pd.DatetimeIndex(pd.unique(ts["time"])).sort_values()
    step_s = float(np.median((times[1:] - times[:-1]).total_seconds())) if len(times) > 1 else 3600.0
    mix = _cloud_mix_kb(s, plan)
    regions = {r.id: r for r in s.cloud_regions}
    total = 0.0
    for site, rows in cloud.groupby(cloud["site"].astype(str), observed=True):
        rid = site.removeprefix(CLOUD_PREFIX)
        req_kb, resp_kb = mix.get(rid, mix.get("", (0.0, 0.0)))
        requests = float(rows["load_rps"].sum()) * step_s
        price = regions[rid].egress_per_gb if rid in regions else 0.0
        total += requests * (resp_kb * price + req_kb * s.economics.network_price_per_gb) / 1e6
    return total


def cost_breakdown(s: Scenario, alt: AlternativeRun) -> dict[str, float]:
    """Annual cost by part (see the module docstring)."""
    plan, ts, summary = alt.plan, alt.timeseries, alt.summary
    scale = HOURS_PER_YEAR / period_hours(ts, summary)
    c = plan.costs
    sim_cost = summary.get("cost", {})
    energy = _num(sim_cost.get("energy"))
    if energy is None:  # no simulator summary: price the simulated MDC energy here
        sites = ts[~ts["site"].astype(str).str.startswith(CLOUD_PREFIX)]
        prices = {x.id: x.energy_price_per_kwh for x in s.sites}
        eco = s.economics
        kwh = sites.groupby(sites["site"].astype(str), observed=True)["energy_kwh"].sum()
        energy = sum(float(v) * (prices.get(str(k)) or eco.energy_price_per_kwh) for k, v in kwh.items())
        energy += eco.carbon_price_per_tonne * float(sites["carbon_g"].sum()) / 1e6
    egress = egress_cost(s, plan, ts)
    cloud_bill = _num(sim_cost.get("cloud"))
    if cloud_bill is None:
        cloud_bill = max(0.0, c.get("cloud", 0.0) / scale)
    else:
        cloud_bill += _num(sim_cost.get("network")) or 0.0
    return {
        "capex": c.get("module_capex", 0.0) + c.get("server_capex", 0.0) + c.get("storage_capex", 0.0),
        # Storage power is priced as a fixed line (docs/storage.md), not in the simulated energy.
        "energy": energy * scale + c.get("storage_energy", 0.0),
        "cloud": max(0.0, cloud_bill - egress) * scale,
        "egress": egress * scale,
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
        ok = bool(
            book.sovereignty_mask([d.data_class], tree.indices([d.jurisdiction]), tree.indices([jur]))[0, 0]
        )
        tier_ok = tier >= s.policy_for(d.data_class).min_security_tier
        if not (ok and tier_ok):
            out.append(
                {
                    "demand": d.id,
                    "data_class": d.data_class,
                    "origin": d.jurisdiction,
                    "target": a.target,
                    "target_jurisdiction": jur,
                    "role": a.role,
                    "rule": "process_in/store_in" if not ok else "min_security_tier",
                    "rps": round(d.mean_rate_rps * a.fraction, 3),
                }
            )
    return out


def latency_by_service(s: Scenario, alt: AlternativeRun) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    sim = alt.summary.get("latency", {})
    for svc in s.services:
        df = alt.latency[alt.latency["service"].astype(str) == svc.id]
        got = sim.get(svc.id, {})
        have = all(_num(got.get(k)) is not None for k in ("p50_ms", "p95_ms", "p99_ms"))
        mix = mixture_quantiles(df) if not have and not df.empty else [float("nan")] * 3
        served = float(df["served_rps"].sum())
        unserved = float(df["unserved_rps"].sum())
        offered = df["served_rps"] + df["unserved_rps"]
        viol = _num(got.get("requests_over_slo_fraction"))
        if viol is None and not df.empty:
            viol = _num(weighted_mean(df["slo_violation_fraction"], offered))
        unserved_frac = _num(got.get("unserved_fraction"))
        out[svc.id] = {
            **{
                k: _first(_num(got.get(k)), _num(m))
                for k, m in zip(("p50_ms", "p95_ms", "p99_ms"), mix, strict=True)
            },
            "slo_p95_ms": svc.slo.p95_ms,
            "slo_p99_ms": svc.slo.p99_ms,
            "slo_violation_rate": viol,
            "unserved_fraction": unserved_frac
            if unserved_frac is not None
            else (unserved / (served + unserved) if served + unserved > 0 else 0.0),
            "offered_rps_mean": float(offered.mean()) if not df.empty else 0.0,
        }
    return out


def _overall_violation(lat: dict[str, dict[str, Any]]) -> float | None:
    num = den = 0.0
    for v in lat.values():
        if v["slo_violation_rate"] is not None:
            num += v["slo_violation_rate"] * v["offered_rps_mean"]
            den += v["offered_rps_mean"]
    return num / den if den > 0 else None


def compare(s: Scenario, alt: AlternativeRun) -> dict[str, Any]:
    """One `comparison.json` entry for an alternative."""
    ts, lat, plan, summary = alt.timeseries, alt.latency, alt.plan, alt.summary
    breakdown = cost_breakdown(s, alt)
    hours = period_hours(ts, summary)
    ekwh = summary.get("energy_kwh", {})
    it_kwh = _num(ekwh.get("it"))
    if it_kwh is None:
        it_kwh = float((ts["it_w"] * ts["energy_kwh"] / ts["total_w"].where(ts["total_w"] > 0)).sum())
    energy_kwh = _num(ekwh.get("facility"))
    if energy_kwh is None:
        energy_kwh = float(ts["energy_kwh"].sum())
    carbon_kg = _num(summary.get("carbon_kg", {}).get("total"))
    if carbon_kg is None:
        carbon_kg = float(ts["carbon_g"].sum()) / 1000.0
    planned = sovereignty_violations(s, plan.assignments)
    simulated = int(_num(summary.get("sovereignty_violations")) or 0)
    security = int(_num(summary.get("security_violations")) or 0)
    latency = latency_by_service(s, alt)
    served = float(lat["served_rps"].sum())
    unserved = float(lat["unserved_rps"].sum())
    sim_unserved = _num(summary.get("unserved", {}).get("fraction"))
    mean_rps = {d.id: d.mean_rate_rps for d in s.demand}
    total_rps = sum(mean_rps.values())
    return {
        "alternative": alt.name,
        "method": plan.method,
        "status": plan.status,
        "currency": plan.currency,
        "sites_built": len(plan.sites),
        "it_kw_built": round(sum(b.it_kw for b in plan.sites), 3),
        "cost_per_year": float(sum(breakdown.values())),
        "cost_breakdown": breakdown,
        "latency": latency,
        "slo_violation_rate": _overall_violation(latency),
        "energy_kwh": energy_kwh,
        "energy_kwh_per_year": energy_kwh * HOURS_PER_YEAR / hours,
        # network electricity of carrying the alternative's traffic and synced data (physics.transport)
        "transport_energy_kwh": _num(ekwh.get("transport")),
        "it_energy_kwh": it_kwh,
        "pue": energy_kwh / it_kwh if it_kwh > 0 else None,
        "carbon_kg": carbon_kg,
        "sovereignty_violations": len(planned) + simulated,
        "sovereignty_violations_planned": len(planned),
        "sovereignty_violations_simulated": simulated,
        "security_violations_simulated": security,
        **{  # (site, step) pairs over a hard limit in the simulation (summary.json, docs/simulator.md)
            f"{k}_simulated": int(_num((summary.get(k) or {}).get("site_steps")) or 0)
            for k in ("grid_cap_violations", "module_kw_violations", "memory_violations")
        },
        "sovereignty_violation_details": planned,
        "unserved_fraction": sim_unserved
        if sim_unserved is not None
        else (unserved / (served + unserved) if served + unserved > 0 else 0.0),
        "unserved_planned_fraction": (
            sum(mean_rps.get(u.demand, 0.0) * u.fraction for u in plan.unserved) / total_rps
            if total_rps
            else 0.0
        ),
        "unserved": [u.model_dump() for u in plan.unserved],
        "faults": len(summary.get("faults", []) or []),
    }
