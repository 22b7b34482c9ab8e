"""Simulator scale benchmarks (figures in docs/benchmarks.md, "Digital twin and online placer").

    python benchmarks/sim_scale.py                 # both cases
    python benchmarks/sim_scale.py --case synthetic --sites 1000 --demand 100000 --days 1 --step 1min
    python benchmarks/sim_scale.py --case melbourne   # a full year at 1-hour steps

synthetic: a generated fleet (microdc.sim.synthetic) of N sites and D demand sources, every site built,
demand placed by the online placer; fluid mode, outputs written to a temporary directory.
melbourne: the built-in example with every site built and demand placed by the online placer (or, with
--planner, the planner's plan), simulated for a year at 1-hour steps.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from microdc.examples import resolve_scenario
from microdc.model import Scenario, load_scenario
from microdc.placement.plan import Plan
from microdc.sim import SimConfig, parse_step
from microdc.sim.engine import Simulation
from microdc.sim.synthetic import synthetic_plan, synthetic_scenario


def _melbourne_plan(s: Scenario, use_planner: bool) -> tuple[Plan, str]:
    if use_planner:
        from microdc.placement.planner import plan

        p, _, _ = plan(s)
        return p, "planner"
    return synthetic_plan(s), "every site built, demand placed by the online placer"


def run_case(name: str, s: Scenario, plan: Plan, days: float, step_s: int, seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        sim = Simulation(s, plan, SimConfig(days=days, step_s=step_s, seed=seed))
        t1 = time.perf_counter()
        res = sim.run(Path(tmp))
        t2, c2 = time.perf_counter(), time.process_time()
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    return {
        "case": name,
        "sites": res.summary["built_sites"],
        "targets": res.summary["targets"],
        "demand_sources": len(s.demand),
        "pieces": int(sim.route.size),
        "steps": sim.n_steps,
        "step_s": step_s,
        "setup_s": round(t1 - t0, 2),
        "run_s": round(t2 - t1, 2),
        "total_s": round(t2 - t0, 2),
        "cpu_s": round(c2 - c0, 2),  # process CPU time: robust to other load on a shared machine
        "steps_per_s": round(sim.n_steps / (t2 - t1), 1),
        "output_mb": round(size / 1e6, 1),
        "sovereignty_violations": res.summary["sovereignty_violations"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=("synthetic", "melbourne", "all"), default="all")
    ap.add_argument("--sites", type=int, default=1000)
    ap.add_argument("--demand", type=int, default=100_000)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--step", default="1min")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--planner", action="store_true", help="melbourne: plan with the planner (slower)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    results = []
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    if args.case in ("synthetic", "all"):
        t0 = time.perf_counter()
        s = synthetic_scenario(args.sites, args.demand, seed=args.seed)
        plan = synthetic_plan(s)
        gen = time.perf_counter() - t0
        r = run_case(
            f"synthetic {args.sites} sites x {args.demand} demand, {args.days:g} day(s) at {args.step}",
            s,
            plan,
            args.days,
            parse_step(args.step),
            args.seed,
        )
        r["generate_s"] = round(gen, 2)
        results.append(r)
        print(json.dumps(r))
    if args.case in ("melbourne", "all"):
        s = load_scenario(resolve_scenario("melbourne"))
        t0 = time.perf_counter()
        plan, how = _melbourne_plan(s, args.planner)
        r = run_case("melbourne, 365 days at 1h", s, plan, 365.0, 3600, args.seed)
        r["plan"] = how
        r["plan_s"] = round(time.perf_counter() - t0 - float(r["total_s"]), 2)  # type: ignore[arg-type]
        results.append(r)
        print(json.dumps(r))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
