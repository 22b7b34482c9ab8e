"""Sweep throughput (figures in docs/benchmarks.md, "microdc sweep"): runs per second for the
eu-sovereign and Melbourne examples, a serial loop in one process vs Ray with 1 and 2 workers, the
scaling efficiency, and Ray's overhead per run.

    python benchmarks/sweep_scale.py                         # 8 points × 1 replica, 2 days at 1 h steps
    python benchmarks/sweep_scale.py --points 16 --days 7 --json out.json

A *run* is one point × replica: apply the point's parameters, build the planning problem, plan the three
baselines, and simulate all four alternatives (microdc's plan is planned once up front and reused with
--plan, so a solver time limit does not turn the measurement into a wall-clock wait). Random faults per
candidate site are on. Ray is started and its workers warmed up (microdc imported in each) before the
timed part; start-up, warm-up and the cost of an empty Ray task are reported on their own. Every Ray
variant must produce the same sweep.parquet as the serial loop, which the script checks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from microdc.examples import resolve_scenario
from microdc.model import load_scenario
from microdc.placement.planner import PlannerOptions, plan
from microdc.sweep import sweep


def _timed_sweep(scenario: object, vary: list[str], out: Path, **kw: object) -> tuple[float, pd.DataFrame]:
    t0 = time.perf_counter()
    df = sweep(scenario, vary, out, html=False, **kw)  # type: ignore[arg-type]
    return time.perf_counter() - t0, df


def _import_runner(_: int) -> float:
    t0 = time.perf_counter()
    import microdc.sweep.runner  # noqa: F401  (what every sweep task needs)

    time.sleep(1.0)  # hold the worker so the next warm-up task lands on another one
    return time.perf_counter() - t0


def _noop(x: int) -> int:
    return x


def _warm_up(ray: Any, workers: int) -> tuple[float, float]:
    """Import microdc in every worker (a one-off cost a long sweep pays once per worker), then time
    200 empty tasks: Ray's own cost per task on this machine."""
    t0 = time.perf_counter()
    ray.get([ray.remote(num_cpus=1)(_import_runner).remote(i) for i in range(workers)])
    warm_s = time.perf_counter() - t0
    noop = ray.remote(num_cpus=1)(_noop)
    t1 = time.perf_counter()
    ray.get([noop.remote(i) for i in range(200)])
    return warm_s, (time.perf_counter() - t1) / 200 * 1000


def bench(name: str, points: int, days: float, workdir: Path, console: Console) -> dict[str, object]:
    import ray

    s = load_scenario(resolve_scenario(name))
    ours, _, _ = plan(s, PlannerOptions(time_limit_s=30, threads=1))
    plan_path = workdir / f"{name}-plan.json"
    ours.write(plan_path)
    price = s.economics.carbon_price_per_tonne
    vary = [f"economics.carbon_price_per_tonne={price}:{price + 140}:{points}"]
    kw: dict[str, object] = {
        "plan": plan_path,
        "days": days,
        "step_s": 3600,
        "replicas": 1,
        "faults": "random",
    }
    out: dict[str, object] = {
        "scenario": name,
        "runs": points,
        "days": days,
        "sites": len(s.sites),
        "demand": len(s.demand),
        "built": len(ours.sites),
    }
    serial_s, serial = _timed_sweep(s, vary, workdir / f"{name}-serial", engine="serial", **kw)
    out["serial_s"] = serial_s
    console.print(f"{name}: serial {points} runs in {serial_s:.1f} s")
    for workers in (1, 2):
        t0 = time.perf_counter()
        ray.init(
            address="local",
            num_cpus=workers,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        start_s = time.perf_counter() - t0
        warm_s, noop_ms = _warm_up(ray, workers)
        out[f"ray{workers}_warm_s"] = warm_s
        out[f"ray{workers}_noop_task_ms"] = noop_ms
        try:
            ray_s, df = _timed_sweep(s, vary, workdir / f"{name}-ray{workers}", batch_size=1, **kw)
        finally:
            ray.shutdown()
        pd.testing.assert_frame_equal(df, serial)  # same results whatever runs them
        out[f"ray{workers}_s"] = ray_s
        out[f"ray{workers}_start_s"] = start_s
        console.print(
            f"{name}: Ray with {workers} worker(s) {points} runs in {ray_s:.1f} s (+{start_s:.1f} s start)"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--scenarios", default="eu-sovereign,melbourne")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    console = Console(stderr=True)
    results = []
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        for name in args.scenarios.split(","):
            results.append(bench(name, args.points, args.days, Path(tmp), console))
    table = Table(title=f"microdc sweep: {args.points} runs per variant, {args.days:g} simulated days each")
    for col in (
        "scenario",
        "serial runs/s",
        "Ray 1 runs/s",
        "Ray 2 runs/s",
        "scaling eff. (2 vs 1)",
        "Ray overhead/run (1 worker)",
        "empty Ray task",
        "Ray start",
    ):
        table.add_column(col, justify="right")
    for r in results:
        n = float(r["runs"])  # type: ignore[arg-type]
        s, r1, r2 = float(r["serial_s"]), float(r["ray1_s"]), float(r["ray2_s"])  # type: ignore[arg-type]
        r["serial_runs_per_s"], r["ray1_runs_per_s"], r["ray2_runs_per_s"] = n / s, n / r1, n / r2
        r["scaling_efficiency"] = (n / r2) / (2 * n / r1)
        r["overhead_per_run_s"] = (r1 - s) / n
        table.add_row(
            str(r["scenario"]),
            f"{n / s:.3f}",
            f"{n / r1:.3f}",
            f"{n / r2:.3f}",
            f"{r['scaling_efficiency']:.0%}",
            f"{(r1 - s) / n * 1000:+.0f} ms",
            f"{float(r['ray1_noop_task_ms']):.1f} ms",  # type: ignore[arg-type]
            f"{float(r['ray1_start_s']):.1f} s",
        )  # type: ignore[arg-type]
    Console().print(table)
    load1 = os.getloadavg()
    print(
        f"load average (1 min) before {load0[0]:.1f}, after {load1[0]:.1f}; cores {os.cpu_count()}",
        file=sys.stderr,
    )
    if args.json:
        args.json.write_text(json.dumps({"results": results, "load": [load0, load1]}, indent=2))


if __name__ == "__main__":
    main()
