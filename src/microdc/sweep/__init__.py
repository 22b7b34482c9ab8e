"""What-if and Monte-Carlo studies: vary scenario parameters, plan and simulate every alternative at
every point and replica, on Ray (embedded, or a cluster), into DIR/sweep.parquet and DIR/sweep.html.

    import microdc
    df = microdc.sweep("melbourne", ["demand.scale=0.5:2:4"], "out", replicas=3)

`microdc.sweep` is this package, callable (it calls :func:`sweep`); docs/sweep.md has the details.
"""

from __future__ import annotations

import json
import sys
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from microdc.model import Scenario, load_scenario
from microdc.sweep.params import Param, Point, SweepParamError, check, parse_vary, points
from microdc.sweep.runner import (
    Engine,
    SweepError,
    SweepOptions,
    Tally,
    auto_batch_size,
    consolidate,
    done_pairs,
    make_batches,
    ray_session,
    run_ray,
    run_serial,
    todo_list,
)


def _scenario(scenario: Scenario | str | Path) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    from microdc.examples import resolve_scenario

    return load_scenario(resolve_scenario(str(scenario)))


def sweep(
    scenario: Scenario | str | Path,
    vary: Sequence[str | Param],
    out_dir: str | Path,
    *,
    sample: int | None = None,
    replicas: int = 1,
    faults: str = "random",
    seed: int = 0,
    days: float = 7.0,
    step_s: int = 3600,
    time_limit_s: float | None = 10.0,
    plan: Any = None,
    baselines: Sequence[str] = ("cloud-only", "nearest", "greedy"),
    address: str | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    engine: Engine = "ray",
    retries: int = 2,
    html: bool = True,
    progress: Callable[[Tally], None] | None = None,
) -> pd.DataFrame:
    """Run the sweep and return sweep.parquet as a DataFrame (one row per point × replica × alternative).

    Points already in `out_dir` are skipped (resume). `engine='serial'` runs in this process without Ray."""
    from microdc.placement.plan import Plan, read_plan

    base = _scenario(scenario)
    params = [p if isinstance(p, Param) else parse_vary(p) for p in vary]
    check(base, params)
    the_plan = read_plan(Path(plan)) if isinstance(plan, str | Path) else plan
    if the_plan is not None and not isinstance(the_plan, Plan):
        raise SweepParamError("--plan must be a plan.json file")
    opts = SweepOptions(
        days=days,
        step_s=step_s,
        replicas=replicas,
        faults=faults,  # type: ignore[arg-type]  # checked by SweepOptions
        seed=seed,
        time_limit_s=time_limit_s,
        baselines=tuple(baselines),
        plan=the_plan,
        retries=retries,
    )
    pts = points(params, sample, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    todo = todo_list(pts, replicas, done_pairs(out))
    tally = Tally(total=len(pts) * replicas, done=len(pts) * replicas - sum(len(r) for _, r in todo))
    report = progress or (lambda _t: None)
    t0 = time.perf_counter()
    if todo:
        if engine == "serial":
            batches = make_batches(todo, batch_size or 1)
            run_serial(base, batches, opts, out, tally, report)
        elif engine == "ray":
            ray, started = ray_session(address, workers)
            try:
                cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
                batches = make_batches(todo, batch_size or auto_batch_size(len(todo), cpus))
                run_ray(base, batches, opts, out, tally, report, ray, max_in_flight=2 * cpus)
            finally:
                if started:
                    ray.shutdown()
        else:
            raise SweepError(f"unknown engine {engine!r}; expected ray or serial")
    df = consolidate(out, pts, params, opts)
    meta = {
        "scenario": base.name,
        "vary": [{"path": p.path, "values": list(p.values)} for p in params],
        "points": len(pts),
        "sample": sample,
        "replicas": replicas,
        "faults": faults,
        "seed": seed,
        "days": days,
        "step_s": step_s,
        "time_limit_s": time_limit_s,
        "baselines": list(baselines),
        "plan": str(plan) if isinstance(plan, str | Path) else None,
        "engine": engine,
        "seconds": round(time.perf_counter() - t0, 3),
        "failed_runs": int(((df["status"] != "ok").sum()) if not df.empty else 0),
    }
    (out / "sweep.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    if html and not df.empty:
        from microdc.sweep.report import write_report

        write_report(df, params, meta, out / "sweep.html", currency=base.economics.currency)
    return df


class _CallableModule(types.ModuleType):
    """Lets notebooks write `microdc.sweep(...)` for :func:`sweep`."""

    def __call__(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = [
    "Param",
    "Point",
    "SweepError",
    "SweepOptions",
    "SweepParamError",
    "parse_vary",
    "points",
    "sweep",
]
