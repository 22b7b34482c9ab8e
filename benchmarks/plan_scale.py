"""Planning a whole city: a generated, city-like scenario at a chosen number of candidate sites.

    /usr/bin/time -v python benchmarks/plan_scale.py --sites 2000 --what baselines
    /usr/bin/time -v python benchmarks/plan_scale.py --sites 2000 --what baselines --old-baselines
    /usr/bin/time -v python benchmarks/plan_scale.py --sites 1000 --what horizon --years 5 --check

The city (fixed seed): a synthetic population density over a 60 km × 60 km metro area — a dense centre
and a dozen suburban centres of random weight and spread (log-normal), over a thin rural floor.
Candidate sites are placed like base stations: drawn from the density (operators put cells where people
are) with a few hundred metres of jitter, so they cluster in the centres. Two demand rows per site (the
cell's video cameras — personal data that must stay in the state — and its IoT telemetry, public), each
sized by the density at the cell; a third, lighter service (AR guidance, public) on every fifth cell.
Two cloud regions: one in the country, one abroad (personal data may not go there). Constant weather and
carbon, so no files are needed. Prints the time of each phase; `/usr/bin/time -v` gives wall, CPU and peak
RSS of the whole run (figures in docs/benchmarks.md, "Fleet planner: a generated city").
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from microdc.model import Scenario

CENTRE = (-37.81, 144.96)  # a southern-hemisphere metro; only the geometry matters
HALF_DEG = 0.27  # ~30 km each way


# --what horizon: the growth of the built-in melbourne-growth example (docs/benchmarks.md states it).
CITY_GROWTH: dict[str, Any] = {
    "step_years": 1,
    "allow_retire": False,
    "demand_growth": {"default": {"rate_per_year": 0.15}, "services": {"ar": {"rate_per_year": 0.30}}},
    "server_capex": {"rate_per_year": -0.08},
    "server_watts": {"rate_per_year": -0.05},
    "energy_price": {"rate_per_year": 0.03},
    "grid_carbon": {"rate_per_year": -0.06},
}


def city_scenario(
    n_sites: int, *, seed: int = 7, varied_costs: bool = False, years: int | None = None
) -> Scenario:
    """The generated city (see the module docstring); `years`: with a horizon growing like CITY_GROWTH."""
    rng = np.random.default_rng(seed)
    n_centres = 12
    c_lat = CENTRE[0] + rng.uniform(-0.8, 0.8, n_centres) * HALF_DEG
    c_lon = CENTRE[1] + rng.uniform(-0.8, 0.8, n_centres) * HALF_DEG
    weight = rng.lognormal(0.0, 0.6, n_centres)
    spread = rng.uniform(0.01, 0.04, n_centres)  # degrees (~1-4 km)
    c_lat = np.append(c_lat, CENTRE[0])
    c_lon = np.append(c_lon, CENTRE[1])
    weight = np.append(weight, 3.0 * weight.max())
    spread = np.append(spread, 0.03)

    def density(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        d2 = (lat[:, None] - c_lat[None]) ** 2 + (lon[:, None] - c_lon[None]) ** 2
        return np.asarray(0.02 + (weight * np.exp(-d2 / (2 * spread**2))).sum(axis=1))

    # Sites from the density (mixture sampling), 5 % rural ones uniformly, jittered ~300 m.
    pick = rng.choice(n_centres + 1, size=n_sites, p=weight / weight.sum())
    lat = c_lat[pick] + rng.normal(0, 1, n_sites) * spread[pick]
    lon = c_lon[pick] + rng.normal(0, 1, n_sites) * spread[pick]
    rural = rng.random(n_sites) < 0.05
    lat[rural] = CENTRE[0] + rng.uniform(-1, 1, rural.sum()) * HALF_DEG
    lon[rural] = CENTRE[1] + rng.uniform(-1, 1, rural.sum()) * HALF_DEG
    lat = np.clip(lat + rng.normal(0, 0.003, n_sites), CENTRE[0] - HALF_DEG, CENTRE[0] + HALF_DEG)
    lon = np.clip(lon + rng.normal(0, 0.003, n_sites), CENTRE[1] - HALF_DEG, CENTRE[1] + HALF_DEG)
    people = density(lat, lon)
    people = people / people.mean()  # 1 = an average cell
    state = "AU-VIC"
    demand: list[dict[str, Any]] = []
    for i in range(n_sites):
        jl, jn = lat[i] + rng.normal(0, 0.002), lon[i] + rng.normal(0, 0.002)
        common = {"lat": float(jl), "lon": float(jn), "jurisdiction": state, "profile": "day"}
        demand.append(
            {
                **common,
                "id": f"cam{i:05d}",
                "devices": max(1, round(60 * people[i])),
                "data_class": "personal",
                "service": "video",
                "rate_per_device_rps": 2.0,
                "data_gb_per_day": 1.0,
            }
        )
        demand.append(
            {
                **common,
                "id": f"iot{i:05d}",
                "devices": max(1, round(200 * people[i])),
                "data_class": "public",
                "service": "telemetry",
                "rate_per_device_rps": 0.2,
                "data_gb_per_day": 0.05,
            }
        )
        if i % 5 == 0:
            demand.append(
                {
                    **common,
                    "id": f"ar{i:05d}",
                    "devices": max(1, round(5 * people[i])),
                    "data_class": "public",
                    "service": "ar",
                    "rate_per_device_rps": 1.0,
                }
            )
    # --varied-costs: every site its own rent (log-normal, sigma 0.3), so no two build options are
    # interchangeable and the exact class aggregation has nothing to merge (the general case)
    rent = np.random.default_rng(seed + 1).lognormal(0.0, 0.3, n_sites) if varied_costs else np.ones(n_sites)
    data: dict[str, Any] = {
        "name": f"city-{n_sites}",
        "description": "generated city (benchmarks/plan_scale.py)",
        "jurisdictions": [
            {
                "code": "AU",
                "bbox": [-44.0, 112.0, -10.0, 154.0],
                "children": [
                    {"code": state, "bbox": [-39.2, 140.9, -33.9, 150.0]},
                    {"code": "AU-NSW", "bbox": [-37.5, 141.0, -28.1, 153.7]},
                ],
            },
            {"code": "US"},
        ],
        "sites": [
            {
                "id": f"bs{i:05d}",
                "lat": float(lat[i]),
                "lon": float(lon[i]),
                "jurisdiction": state,
                "security_tier": 2 + int(i % 4 == 0),
                "grid_power_kw": 25.0,
                "annual_cost": round((4000.0 + 4000.0 * float(people[i] > 1.5)) * float(rent[i]), 2),
                "grid_zone": "vic",
                "climate": "melb",
            }
            for i in range(n_sites)
        ],
        "catalog": {
            "modules": [
                {
                    "id": "cabinet",
                    "rack_units": 12,
                    "max_it_kw": 8,
                    "cooling": {"kind": "free_air"},
                    "ups": {"energy_kwh": 4},
                    "capex": 25000,
                    "lifetime_years": 10,
                    "server_counts": [2, 6],
                }
            ],
            "servers": [
                {"id": "srv", "cores": 32, "memory_gb": 256, "idle_w": 110, "peak_w": 380, "capex": 9000}
            ],
        },
        "cloud_regions": [
            {
                "id": "au-southeast",
                "lat": -37.82,
                "lon": 144.95,
                "jurisdiction": "AU-NSW",
                "price_per_core_hour": 0.05,
                "egress_per_gb": 0.09,
                "grid_zone": "vic",
            },
            {
                "id": "us-west",
                "lat": 45.6,
                "lon": -121.2,
                "jurisdiction": "US",
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
                "slo": {"p95_ms": 40, "p99_ms": 60},
            },
            {
                "id": "telemetry",
                "cpu_seconds_per_request": 0.002,
                "memory_gb_per_instance": 1,
                "requests_per_instance": 1000,
                "payload_kb": 1,
                "slo": {"p95_ms": 250},
            },
            {
                "id": "ar",
                "cpu_seconds_per_request": 0.01,
                "memory_gb_per_instance": 4,
                "requests_per_instance": 50,
                "payload_kb": 50,
                "slo": {"p95_ms": 30},
            },
        ],
        "profiles": {"day": {"kind": "diurnal", "hourly": [0.4] * 6 + [1.0] * 6 + [1.4] * 6 + [1.0] * 6}},
        "demand": demand,
        "policies": {
            "data_classes": {
                "personal": {"process_in": "origin", "min_security_tier": 2},
                "public": {"process_in": "any"},
            },
        },
        "timeseries": {
            "carbon": {"vic": {"format": "constant", "constant_gco2_per_kwh": 800.0}},
            "weather": {"melb": {"format": "constant", "constant_c": 15.0}},
        },
    }
    if years:
        data["horizon"] = {"years": years, **CITY_GROWTH}
    return Scenario.model_validate(data)


def _rss_mb() -> float:
    """Resident memory now, MB (Linux /proc; the peak of the whole run is /usr/bin/time -v's)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _peak_mb() -> float:
    """Peak resident memory of this process so far, MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--what", choices=("baselines", "plan", "horizon"), default="baselines")
    ap.add_argument("--old-baselines", action="store_true", help="time the loop baselines of commit 90154c2")
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--years", type=int, default=5, help="--what horizon: one-year periods")
    ap.add_argument("--check", action="store_true", help="run check-plan on the plan (not timed in total)")
    ap.add_argument("--gap", type=float, default=1e-4, help="relative gap to stop the plan's solve at")
    ap.add_argument(
        "--varied-costs", action="store_true", help="every site its own annual cost (no two options alike)"
    )
    ap.add_argument(
        "--memory-budget-gb",
        type=float,
        default=None,
        help="--what horizon: memory budget of the per-site horizon MILP (default: half of MemAvailable)",
    )
    a = ap.parse_args()
    t0 = time.perf_counter()
    years = a.years if a.what == "horizon" else None
    s = city_scenario(a.sites, seed=a.seed, varied_costs=a.varied_costs, years=years)
    t1 = time.perf_counter()
    print(f"scenario: {len(s.sites)} sites, {len(s.demand)} demand rows, generated in {t1 - t0:.2f} s")
    if a.what == "horizon":
        _horizon(s, a.time_limit, a.gap, a.check, a.memory_budget_gb)
        print(f"total {time.perf_counter() - t0:.2f} s")
        return
    from microdc.placement.problem import build_problem

    pp = build_problem(s, allow_unserved=True)
    t2 = time.perf_counter()
    n_f, n_c = pp.facility.n_facilities, pp.facility.n_customers
    print(
        f"problem: {n_f} facilities x {n_c} customers, {int(pp.facility.allowed.sum())} allowed pairs, "
        f"built in {t2 - t1:.2f} s, rss {_rss_mb():,.0f} MB"
    )
    if a.what == "baselines":
        if a.old_baselines:
            import importlib.util
            import subprocess
            import sys
            import tempfile

            src = subprocess.run(
                ["git", "show", "90154c2:src/microdc/placement/baselines.py"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            path = tempfile.NamedTemporaryFile("w", suffix="_old_baselines.py", delete=False)  # noqa: SIM115
            path.write(src)
            path.close()
            spec = importlib.util.spec_from_file_location("old_baselines", path.name)
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            sys.modules["old_baselines"] = mod
            spec.loader.exec_module(mod)
            baselines = mod.BASELINES
        else:
            from microdc.placement.baselines import BASELINES as baselines
        for name, fn in baselines.items():
            tb, cb = time.perf_counter(), time.process_time()
            p = fn(pp)
            print(
                f"baseline {name}: {time.perf_counter() - tb:.2f} s wall, "
                f"{time.process_time() - cb:.2f} s CPU, cost {p.objective:,.0f}, {len(p.sites)} sites, "
                f"peak rss so far {_peak_mb():,.0f} MB"
            )
    else:
        from microdc.placement.planner import PlannerOptions, solution_to_plan
        from microdc.placement.planner import _solve as solve

        def progress(phase: str, seconds: float, objective: float, bound: float) -> None:
            rss = _rss_mb()
            print(f"  {phase} {seconds:7.1f} s  best {objective:,.0f}  bound {bound:,.0f}  rss {rss:,.0f} MB")

        opts = PlannerOptions(
            time_limit_s=a.time_limit, allow_unserved=True, mip_rel_gap=a.gap, progress=progress
        )
        sol = solve(pp, opts, t2 - t0)  # the time limit counts from the start, as `microdc plan`'s does
        t3 = time.perf_counter()
        print(f"solve: {sol.status} {sol.method}, {t3 - t2:.2f} s, rss now {_rss_mb():,.0f} MB")
        print("  timing: " + ", ".join(f"{k} {v:.2f} s" for k, v in sol.timing.items()))
        for m in sol.messages:
            print(f"  {m}")
        if not np.isfinite(sol.objective):
            print("no plan within the time limit")
        else:
            p = solution_to_plan(pp, sol, alternative="microdc", allow_unserved=True)
            print(
                f"plan: cost {p.objective:,.0f}, gap {p.gap}, {len(p.sites)} sites, "
                f"plan written in {time.perf_counter() - t3:.2f} s"
            )
            if a.check:
                from microdc.placement.check import check_plan

                t4 = time.perf_counter()
                problems = check_plan(s, p, allow_unserved=True)
                print(f"check-plan: {len(problems)} problem(s) in {time.perf_counter() - t4:.2f} s")
                for msg in problems[:10]:
                    print(f"  {msg}")
    print(f"total {time.perf_counter() - t0:.2f} s")


def _horizon(s: Scenario, time_limit: float, gap: float, check: bool, budget_gb: float | None = None) -> None:
    """Plan the city over its horizon (unserved demand allowed, as in `plan`), print the figures."""
    from microdc.placement.horizon_milp import per_site_model_size, period_aggregations
    from microdc.placement.horizon_planner import plan_horizon
    from microdc.placement.planner import PlannerOptions

    t0, c0 = time.perf_counter(), time.process_time()
    budget = None if budget_gb is None else budget_gb * 1e9
    opts = PlannerOptions(
        time_limit_s=time_limit, allow_unserved=True, mip_rel_gap=gap, memory_budget_bytes=budget
    )
    plan, hp = plan_horizon(s, opts)
    print(
        f"horizon: {hp.n_periods} periods, {hp.periods[0].facility.n_facilities} facilities x "
        f"{hp.periods[0].facility.n_customers} customers per period"
    )
    print(
        f"plan: {plan.status}, npv {plan.npv:,.0f}, bound {plan.lower_bound or float('nan'):,.0f}, "
        f"gap {plan.gap}, {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU, "
        f"peak rss {_peak_mb():,.0f} MB"
    )
    print(f"  alternatives: {plan.alternatives}")
    print(f"  sites per period: {[len(p.plan.sites) for p in plan.periods]}")
    print(f"  servers bought per period: {[sum(b.servers for b in p.purchases) for p in plan.periods]}")
    for n in plan.notes:
        print(f"  {n}")
    # after the plan: not in its peak RSS
    size = per_site_model_size([a.problem for a in period_aggregations(hp)])
    print(f"  per-site horizon MILP estimate: {size.columns:,} columns, {size.nonzeros:,} nonzeros")
    if check:
        from microdc.placement.check_horizon import check_horizon_plan

        t1 = time.perf_counter()
        problems = check_horizon_plan(s, plan, allow_unserved=True)
        print(
            f"check-plan (every period + horizon rules): {len(problems)} problem(s) "
            f"in {time.perf_counter() - t1:.1f} s"
        )
        for msg in problems[:10]:
            print(f"  {msg}")


if __name__ == "__main__":
    main()
