"""The fluid twin at the sizes of its peers' benchmarks (issue #19), side by side in one run.

    python benchmarks/sim_peers.py                    # every case
    python benchmarks/sim_peers.py --case small       # one case: leaf | small | edgesimpy | huge | replicas
    python benchmarks/sim_peers.py --case huge --progress   # progress on stderr (run it under time -v)

Cases (synthetic fleets from microdc.sim.synthetic, every site built, demand placed by the online placer,
fluid mode, no output files; CPU time (process_time), wall time and the process's peak RSS):
- leaf: LEAF's smart-city size (20 nodes, 120 devices), 24 h at 1-second steps (86,400 steps);
- small: 6 sites + 6 sources, 600 steps of 1 min (EdgeSimPy's 6-server tutorial sample);
- edgesimpy: 384 sites x 10,000 sources, 100 steps of 1 min;
- huge: 10,000 sites x 1,000,000 sources, 1 day at 1-minute steps (run it under /usr/bin/time -v);
- replicas: eu-sovereign, a week at 15-minute steps, N seeds (--replicas, default 100):
  `simulate_replicas` (one pass) against N separate `simulate` calls (same scenario object and plan),
  --rounds times (default 3) in turn after an untimed warm-up of each; the median of the rounds' ratios.

The peers themselves (LEAF: `pip install leafsim`; EdgeSimPy: `pip install edgesimpy`) are not microdc
dependencies; where they are not installed, the peer column gives the figures measured on this
machine for issue #19 (LEAF 117 s; EdgeSimPy's engine, monitoring off, 0.047 s on the 6-server
sample and about 11 steps/s at 384 x 10,000), marked "reference".
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import resource
import sys
import time
from typing import Any

from microdc.sim import SimConfig, simulate
from microdc.sim.engine import Simulation
from microdc.sim.synthetic import synthetic_plan, synthetic_scenario

#: Peer figures measured on this machine for issue #19 (seconds), used when the peer is not installed.
REFERENCE_S = {"leaf": 117.0, "small": 0.047, "edgesimpy": 100 / 11.0}
PEER_PACKAGE = {"leaf": "leaf", "small": "edge_sim_py", "edgesimpy": "edge_sim_py"}
SIZES = {  # sites, sources, steps, step_s
    "leaf": (20, 120, 86_400, 1),
    "small": (6, 6, 600, 60),
    "edgesimpy": (384, 10_000, 100, 60),
    "huge": (10_000, 1_000_000, 1_440, 60),
}


def _progress(done: int, total: int) -> None:
    """A line on stderr every tenth of the run (long cases), with the CPU time so far."""
    if done == total or done * 10 // total != (done - 1) * 10 // total:
        print(f"  {done}/{total} steps, {time.process_time():.0f} s CPU", file=sys.stderr, flush=True)


def run_synthetic(case: str, seed: int, progress: bool = False) -> dict[str, Any]:
    sites, sources, steps, step_s = SIZES[case]
    t0 = time.perf_counter()
    s = synthetic_scenario(sites, sources, seed=seed)
    plan = synthetic_plan(s)
    setup = time.perf_counter() - t0
    cfg = SimConfig(
        days=steps * step_s / 86400, step_s=step_s, seed=seed, progress=_progress if progress else None
    )
    sim = Simulation(s, plan, cfg)
    w0, c0 = time.perf_counter(), time.process_time()
    res = sim.run(None)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    peer = PEER_PACKAGE.get(case)
    installed = peer is not None and importlib.util.find_spec(peer) is not None
    ref = REFERENCE_S.get(case)
    return {
        "case": case,
        "sites": sites,
        "sources": sources,
        "steps": sim.n_steps,
        "scenario_and_plan_s": round(setup, 2),
        "run_wall_s": round(wall, 3),
        "run_cpu_s": round(cpu, 3),
        "steps_per_s_cpu": round(sim.n_steps / max(cpu, 1e-9), 1),
        "peer_s": ref,
        "peer_source": "installed, not run by this script" if installed else "reference (issue #19)",
        "speedup_vs_peer_cpu": round(ref / cpu, 2) if ref else None,
        "sovereignty_violations": res.summary["sovereignty_violations"],
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run_replicas(n: int, rounds: int = 3) -> dict[str, Any]:
    """``rounds`` rounds of (N separate runs, then one pass): this machine's speed drifts by up to a
    third over minutes, so each round's ratio compares neighbours in time; the median is reported."""
    import statistics

    from microdc.examples import resolve_scenario
    from microdc.model import load_scenario
    from microdc.sim import simulate_replicas

    s = load_scenario(resolve_scenario("eu-sovereign"))
    plan = synthetic_plan(s)
    cfg = SimConfig(days=7, step_s=900)
    seeds = list(range(n))
    # warm-up (untimed): one separate run and a pass of two, so neither side pays first-call costs
    simulate(s, plan, cfg)
    simulate_replicas(s, plan, cfg, seeds=seeds[:2])
    separate_s, batch_s, same = [], [], True
    for _ in range(rounds):
        c0 = time.process_time()
        separate = [simulate(s, plan, SimConfig(days=7, step_s=900, seed=seed)).summary for seed in seeds]
        separate_s.append(time.process_time() - c0)
        c0 = time.process_time()
        batch = [r.summary for r in simulate_replicas(s, plan, cfg, seeds=seeds)]
        batch_s.append(time.process_time() - c0)
        same = same and json.dumps(separate, sort_keys=True) == json.dumps(batch, sort_keys=True)
    ratios = [a / max(b, 1e-9) for a, b in zip(separate_s, batch_s, strict=True)]
    return {
        "case": "replicas",
        "replicas": n,
        "steps_each": 672,
        "separate_cpu_s": [round(x, 2) for x in separate_s],
        "one_pass_cpu_s": [round(x, 2) for x in batch_s],
        "speedup_per_round": [round(x, 2) for x in ratios],
        "speedup": round(statistics.median(ratios), 2),
        "identical_summaries": same,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=(*SIZES, "replicas", "all"), default="all")
    ap.add_argument("--replicas", type=int, default=100)
    ap.add_argument(
        "--rounds", type=int, default=3, help="replicas case: rounds of (separate runs, one pass)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--progress", action="store_true", help="report progress on stderr (long cases)")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    cases = [args.case] if args.case != "all" else [c for c in SIZES if c != "huge"] + ["replicas"]
    results = []
    for case in cases:
        if case == "replicas":
            r = run_replicas(args.replicas, args.rounds)
        else:
            r = run_synthetic(case, args.seed, args.progress)
        print(json.dumps(r))
        results.append(r)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
