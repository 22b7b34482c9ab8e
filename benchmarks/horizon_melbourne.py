"""Staged expansion of Melbourne over five years (the melbourne-growth example): time, peak memory, and
the net present cost against building everything in year 1 and against re-planning each year myopically.

    python benchmarks/horizon_melbourne.py [--time-limit 600] [--gap 1e-6] [--scenario melbourne-growth]

Prints one JSON line (record `uptime`'s load average next to the figures: the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

from microdc.examples import resolve_scenario
from microdc.model import load_scenario
from microdc.placement.check_horizon import check_horizon_plan
from microdc.placement.horizon_planner import plan_horizon
from microdc.placement.planner import PlannerOptions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenario", default="melbourne-growth")
    ap.add_argument("--time-limit", type=float, default=600.0)
    ap.add_argument("--gap", type=float, default=1e-6)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    s = load_scenario(resolve_scenario(args.scenario))
    t0 = time.perf_counter()
    plan, _ = plan_horizon(
        s, PlannerOptions(time_limit_s=args.time_limit, mip_rel_gap=args.gap, threads=args.threads)
    )
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    problems = check_horizon_plan(s, plan)
    check_s = time.perf_counter() - t1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    alts = plan.alternatives
    print(
        json.dumps(
            {
                "scenario": s.name,
                "periods": len(plan.periods),
                "status": plan.status,
                "seconds": round(seconds, 1),
                "peak_rss_mb": round(peak_mb),
                "npv": round(plan.npv),
                "bound": None if plan.lower_bound is None else round(plan.lower_bound),
                "gap": plan.gap,
                "myopic": None if alts.get("myopic") is None else round(alts["myopic"] or 0),
                "build_all_now": None
                if alts.get("build_all_now") is None
                else round(alts["build_all_now"] or 0),
                "sites_per_period": [len(p.plan.sites) for p in plan.periods],
                "servers_bought": [sum(b.servers for b in p.purchases) for p in plan.periods],
                "check_plan_violations": len(problems),
                "check_seconds": round(check_s, 1),
                "notes": plan.notes,
                "load_average": os.getloadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()
