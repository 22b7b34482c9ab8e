"""check-plan at scale (figures in docs/benchmarks.md, "check-plan").

    python benchmarks/check_plan.py                                  # 10,000 sites, 20,000 assignments
    python benchmarks/check_plan.py --sites 10000 --demand 10000 --repeat 3 --compare-old

The synthetic scenario of microdc.sim.synthetic (in memory, no files) with n_plus 1: every site built with
6 servers (a catalog size), every demand source's primary at the site the online placer picks and its
backup at the nearest other legal site, so 2 assignments per source. The plan's recorded values
(capacities, PUE, fixed costs, cost lines, objective, round trips, p95, latency summary) are written
with the *planner's* functions and formulas (placement/problem.py, planner.py), so the check must come
out clean: that also compares the checker's own sizing, latency and cost code with the planner's at
scale. Times `check_plan` (best of --repeat) and, with --compare-old, the per-assignment version of commit
ad0e480.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from microdc.model import Scenario
from microdc.model.series import ScenarioSeries
from microdc.physics.geo import great_circle_km
from microdc.physics.latency import LatencyModel
from microdc.physics.site_power import annual_pue
from microdc.placement.check import COST_LINES, check_plan
from microdc.placement.plan import Assignment, BuiltSite, Plan, ServiceLatency, read_plan
from microdc.placement.planner import _weighted_quantile
from microdc.placement.problem import (
    HOURS_PER_YEAR,
    capital_recovery_factor,
    device_rtt_ms,
    response_quantile_ms,
    size_demand,
)
from microdc.sim.synthetic import synthetic_plan, synthetic_scenario

SERVERS = 6


def build(n_sites: int, n_demand: int, seed: int) -> tuple[Scenario, Plan]:
    s = synthetic_scenario(n_sites, n_demand, seed=seed, n_plus=1)
    placed = synthetic_plan(s, servers_per_site=SERVERS)
    eco, srv, mod = s.economics, s.catalog.servers[0], s.catalog.modules[0]
    series = ScenarioSeries(s)
    size = size_demand(s)
    site_idx = {x.id: i for i, x in enumerate(s.sites)}
    region_idx = {r.id: k for k, r in enumerate(s.cloud_regions)}
    dem_idx = {d.id: c for c, d in enumerate(s.demand)}
    # --- sites, as the planner records them ---------------------------------------------------------
    it_w = SERVERS * (srv.idle_w + 0.5 * (srv.peak_w - srv.idle_w))
    pue_of = {
        c: annual_pue(
            it_w,
            series.year_outdoor_c(c),
            mod,
            it_capacity_w=SERVERS * srv.peak_w,
            dew_point_c=series.year_dew_point_c(c),
        )
        for c in {x.climate for x in s.sites}
    }
    price_of = {
        z: eco.energy_price_per_kwh + eco.carbon_price_per_tonne * series.mean_intensity(z) / 1e6
        for z in {x.grid_zone for x in s.sites}
    }
    parts = {"site": 0.0, "module_capex": 0.0, "server_capex": 0.0, "idle_energy": 0.0}
    sites = []
    for x in s.sites:
        pue, price = pue_of[x.climate], price_of[x.grid_zone]
        p = {
            "site": x.annual_cost,
            "module_capex": mod.capex * capital_recovery_factor(eco.discount_rate, mod.lifetime_years),
            "server_capex": SERVERS
            * srv.capex
            * capital_recovery_factor(eco.discount_rate, srv.lifetime_years),
            "idle_energy": SERVERS * srv.idle_w * HOURS_PER_YEAR / 1000.0 * pue * price,
        }
        for k, v in p.items():
            parts[k] += v
        sites.append(
            BuiltSite(
                site=x.id,
                module=mod.id,
                server=srv.id,
                servers=SERVERS,
                cores=SERVERS * srv.cores,
                memory_gb=SERVERS * srv.memory_gb,
                it_kw=SERVERS * srv.peak_w / 1000,
                annual_pue=round(pue, 4),
                fixed_cost=sum(p.values()),
            )
        )
    # --- backups: the nearest other site that may hold the demand's data ------------------------------
    lat = np.radians([x.lat for x in s.sites])
    lon = np.radians([x.lon for x in s.sites])
    xyz = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    tree = cKDTree(xyz)
    pairs: list[tuple[int, int, str, str]] = []  # demand, target, kind, role
    for a in placed.assignments:
        c = dem_idx[a.demand]
        d = s.demand[c]
        t = site_idx[a.target] if a.kind == "site" else len(s.sites) + region_idx[a.target]
        pairs.append((c, t, a.kind, "primary"))
        dl, dn = np.radians(d.lat), np.radians(d.lon)
        _, near = tree.query([np.cos(dl) * np.cos(dn), np.cos(dl) * np.sin(dn), np.sin(dl)], k=12)
        for k in near.tolist():
            site = s.sites[k]
            personal = d.data_class == "personal"
            if k != t and (not personal or (site.jurisdiction == d.jurisdiction and site.security_tier >= 2)):
                pairs.append((c, k, "site", "backup"))
                break
        else:
            raise SystemExit(f"no backup site for {d.id}")
    c_arr = np.array([p[0] for p in pairs])
    t_arr = np.array([p[1] for p in pairs])
    cloud = np.array([p[2] == "cloud" for p in pairs])
    t_lat = np.array([x.lat for x in s.sites] + [r.lat for r in s.cloud_regions])[t_arr]
    t_lon = np.array([x.lon for x in s.sites] + [r.lon for r in s.cloud_regions])[t_arr]
    d_lat = np.array([d.lat for d in s.demand])[c_arr]
    d_lon = np.array([d.lon for d in s.demand])[c_arr]
    dist = great_circle_km(d_lat, d_lon, t_lat, t_lon)
    model = LatencyModel(access_ms=s.network.access_ms)
    rtt = np.where(
        cloud, device_rtt_ms("cloud", dist, s.network, model), device_rtt_ms("site", dist, s.network, model)
    )
    util = np.array([s.service(d.service).target_utilization for d in s.demand])
    pool = float(min(v.cores for v in s.catalog.servers))
    q = {k: response_quantile_ms(size.service_s, size.cores_peak, util, k, pool) for k in (0.5, 0.95)}
    assignments = [
        Assignment(
            demand=s.demand[c].id,
            target=(s.sites[t].id if kind == "site" else s.cloud_regions[t - len(s.sites)].id),
            kind=kind,
            role=role,
            fraction=1.0,
            rtt_ms=round(float(rtt[i]), 3),
            p95_ms=round(float(rtt[i] + q[0.95][c]), 3),
        )
        for i, (c, t, kind, role) in enumerate(pairs)
    ]
    # --- costs, as in placement/problem.py and planner.solution_to_plan -----------------------------
    prim = np.array([p[3] == "primary" for p in pairs])
    site_p = prim & ~cloud
    pue_site = np.array([pue_of[x.climate] * price_of[x.grid_zone] for x in s.sites])
    dyn = (srv.peak_w - srv.idle_w) / srv.cores * HOURS_PER_YEAR / 1000.0
    costs = dict(parts)
    costs["site_dynamic_energy"] = float(
        (size.busy_cores_mean[c_arr[site_p]] * dyn * pue_site[t_arr[site_p]]).sum()
    )
    if (prim & cloud).any():
        raise SystemExit("the synthetic plan sends demand to the cloud; this benchmark prices sites only")
    for k in COST_LINES:  # the cloud, backhaul and penalty lines: nothing goes to the cloud here
        costs.setdefault(k, 0.0)
    costs["total"] = float(sum(costs.values()))
    latency = {}
    svc_of = np.array([d.service for d in s.demand])
    for svc in s.services:
        mine = prim & (svc_of[c_arr] == svc.id)
        w = size.mean_rps[c_arr[mine]]
        p50 = rtt[mine] + q[0.5][c_arr[mine]]
        p95 = rtt[mine] + q[0.95][c_arr[mine]]
        latency[svc.id] = ServiceLatency(
            p50_ms=round(_weighted_quantile(p50, w, 0.5), 3) if w.size else None,
            p95_ms=round(_weighted_quantile(p95, w, 0.95), 3) if w.size else None,
            worst_p95_ms=round(float(p95.max()), 3) if w.size else None,
            slo_p95_ms=svc.slo.p95_ms,
            slo_p99_ms=svc.slo.p99_ms,
        )
    plan = placed.model_copy(
        update={
            "sites": sites,
            "assignments": assignments,
            "costs": costs,
            "objective": costs["total"],
            "lower_bound": None,
            "gap": None,
            "latency": latency,
        }
    )
    return s, plan


#: The last commit with the per-assignment checker (before it recomputed everything, vectorized).
OLD_REV = "ad0e480"


def old_checker(rev: str = OLD_REV) -> types.ModuleType:
    """check.py as it was at git revision `rev`, loaded as a module."""
    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(
        ["git", "show", f"{rev}:src/microdc/placement/check.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    mod = types.ModuleType("old_check")
    exec(compile(src, "old_check.py", "exec"), mod.__dict__)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=10_000)
    ap.add_argument("--demand", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--compare-old", action="store_true", help="also time the old check.py once")
    ap.add_argument("--old-rev", default=OLD_REV, help="git revision of the old check.py")
    args = ap.parse_args()
    t0 = time.perf_counter()
    s, plan = build(args.sites, args.demand, args.seed)
    t_build = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:  # what the CLI adds: reading plan.json
        path = Path(tmp) / "plan.json"
        plan.write(path)
        t0 = time.perf_counter()
        plan = read_plan(path)
        t_read = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
    times = []
    problems: list[str] = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        problems = check_plan(s, plan, allow_unserved=False)
        times.append(time.perf_counter() - t0)
    out = {
        "sites": len(plan.sites),
        "assignments": len(plan.assignments),
        "demand": len(s.demand),
        "build_s": round(t_build, 2),
        "plan_json_mb": round(size_mb, 1),
        "read_plan_s": round(t_read, 3),
        "check_s_best": round(min(times), 3),
        "check_s_all": [round(t, 3) for t in times],
        "violations": len(problems),
    }
    if args.compare_old:
        old = old_checker(args.old_rev)
        t0 = time.perf_counter()
        old.check_plan(s, plan)
        out["old_check_s"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(out, indent=2))
    for m in problems[:10]:
        print("  ", m)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
