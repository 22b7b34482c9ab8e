"""Plan a built-in example with its data classes' retention overridden, and print one JSON line: how much
data is kept, the plan's status, objective, bound, gap and time, and each built site's storage use
against its capacity (docs/storage.md).

    python benchmarks/plan_storage.py melbourne                      # the example as shipped
    python benchmarks/plan_storage.py melbourne --retention 0        # every class keeps nothing
    python benchmarks/plan_storage.py melbourne --retention personal=90 --time-limit 120

``--retention`` takes either one number of days for every class or CLASS=DAYS pairs (comma-separated).
``seconds`` is the wall-clock time of the planner call; ``cpu_seconds`` the CPU time of the process.
"""

from __future__ import annotations

import argparse
import json
import time

from microdc.examples import resolve_scenario
from microdc.model import Scenario, load_scenario
from microdc.placement import ledger
from microdc.placement.check import check_plan
from microdc.placement.planner import PlannerOptions, plan


def with_retention(s: Scenario, spec: str | None) -> Scenario:
    """The scenario with the retention of its data classes replaced as ``spec`` says."""
    if spec is None:
        return s
    classes = s.policies.data_classes
    if "=" in spec:
        days = {k.strip(): float(v) for k, v in (pair.split("=") for pair in spec.split(","))}
        unknown = sorted(set(days) - set(classes))
        if unknown:
            raise SystemExit(
                f"--retention: unknown data class(es) {unknown}; the scenario has {sorted(classes)}"
            )
    else:
        days = dict.fromkeys(classes, float(spec))
    new = {
        k: v.model_copy(update={"retention_days": days.get(k, v.retention_days)}) for k, v in classes.items()
    }
    return s.model_copy(update={"policies": s.policies.model_copy(update={"data_classes": new})})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("example", help="built-in example name or scenario path")
    ap.add_argument("--retention", default=None, help="DAYS, or CLASS=DAYS[,CLASS=DAYS...]")
    ap.add_argument("--time-limit", type=float, default=60.0, help="solver time limit, s (the CLI's default)")
    args = ap.parse_args()
    s = with_retention(load_scenario(resolve_scenario(args.example)), args.retention)
    kept = ledger.demand_stored_gb(s)
    t0, c0 = time.perf_counter(), time.process_time()
    p, _pp, _sol = plan(s, PlannerOptions(time_limit_s=args.time_limit))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    by_id = dict(zip((d.id for d in s.demand), kept.tolist(), strict=True))
    used: dict[str, float] = {}
    for a in p.assignments:
        if a.kind == "site":
            used[a.target] = used.get(a.target, 0.0) + a.fraction * by_id[a.demand] / ledger.GB_PER_TB
    out = {
        "example": args.example,
        "retention": {k: v.retention_days for k, v in s.policies.data_classes.items()},
        "stored_tb": round(float(kept.sum()) / ledger.GB_PER_TB, 3),
        "status": p.status,
        "objective": round(p.objective, 2),
        "lower_bound": None if p.lower_bound is None else round(p.lower_bound, 2),
        "gap": p.gap,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "sites": {b.site: [round(used.get(b.site, 0.0), 2), b.storage_tb] for b in p.sites},
        "storage_costs": {k: round(v, 2) for k, v in p.costs.items() if "storage" in k},
        "check_plan": check_plan(s, p),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
