"""Run a sweep: every point plans (or reuses a plan) and simulates every alternative, per replica.

Work is cut into *batches* of points (one Ray task each, so scheduling overhead stays small against a
run); each finished batch is written at once as a Parquet part under DIR/parts/, so a sweep that stops
half-way keeps what it did and a rerun skips the (point, replica) pairs already there. A point that
raises is retried, then recorded as failed with its error; the sweep goes on. Seeds: replica r of every
point uses the seed derived from (master seed, r) (common random numbers: the same demand noise and the
same site faults at every point, so differences between points are the parameters' and not the dice's);
results therefore do not depend on how the work was split or how many workers ran it.
"""

from __future__ import annotations

import math
import os
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from microdc.model import Scenario
from microdc.placement.plan import Plan
from microdc.report.faults import exposure
from microdc.sim import FaultSpec, SimConfig, simulate, simulate_replicas
from microdc.sim.fault_rates import site_faults
from microdc.sweep.metrics import row
from microdc.sweep.params import Param, Point, apply

PARTS = "parts"
KEY = ["point", "replica", "alternative"]
Engine = Literal["ray", "serial"]


class SweepError(RuntimeError):
    """The sweep could not start (Ray missing, cluster unreachable, DIR unusable...)."""


@dataclass(frozen=True)
class SweepOptions:
    """days/step_s: simulated window per run; replicas: runs per point with independent seeds;
    faults: 'random' (per candidate site from the scenario's failure rates) or 'none'; seed: master
    seed; time_limit_s: planner budget per point; plan: reuse this plan for microdc at every point."""

    days: float = 7.0
    step_s: int = 3600
    replicas: int = 1
    faults: Literal["random", "none"] = "random"
    seed: int = 0
    time_limit_s: float | None = 10.0
    baselines: tuple[str, ...] = ("cloud-only", "nearest", "greedy")
    plan: Plan | None = None
    retries: int = 2
    allow_unserved: bool = False
    noise_cv: float = 0.05

    def __post_init__(self) -> None:
        from microdc.placement.baselines import BASELINES

        if not (math.isfinite(self.days) and self.days > 0):
            raise ValueError(f"--days must be a positive number, not {self.days!r}")
        if not 0 < self.step_s <= 86400:
            raise ValueError(f"--step must lie in (0 s, 1 day], not {self.step_s} s")
        if self.replicas < 1:
            raise ValueError(f"--replicas must be at least 1, not {self.replicas}")
        if self.faults not in ("random", "none"):
            raise ValueError(f"--faults must be random or none, not {self.faults!r}")
        if self.retries < 0:
            raise ValueError(f"--retries must be >= 0, not {self.retries}")
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0, not {self.seed}")
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise ValueError(f"unknown baseline(s) {', '.join(unknown)}; known: {', '.join(BASELINES)}")


def replica_seed(master: int, replica: int) -> int:
    """The seed of replica r: independent streams from one master seed (numpy SeedSequence)."""
    return int(np.random.SeedSequence([master, replica]).generate_state(1, dtype=np.uint32)[0])


def _plans(s: Scenario, opts: SweepOptions) -> list[Plan]:
    from microdc.placement.baselines import BASELINES
    from microdc.placement.planner import PlannerOptions
    from microdc.placement.planner import plan as make_plan
    from microdc.placement.problem import build_problem

    if opts.plan is not None:
        pp = build_problem(s, allow_unserved=opts.allow_unserved)
        ours = opts.plan
    else:
        # one solver thread: workers already use every core, and one thread keeps HiGHS deterministic
        ours, pp, _ = make_plan(
            s, PlannerOptions(time_limit_s=opts.time_limit_s, threads=1, allow_unserved=opts.allow_unserved)
        )
    return [ours] + [BASELINES[name](pp) for name in opts.baselines]


def run_point(base: Scenario, point: Point, replicas: list[int], opts: SweepOptions) -> list[dict[str, Any]]:
    """Plan (or reuse the plan) at this point, then simulate every alternative for each replica."""
    s = apply(base, point.as_dict())
    plans = _plans(s, opts)
    start = pd.Timestamp(s.start).tz_localize("UTC")
    end = start + pd.Timedelta(days=opts.days)
    rows: list[dict[str, Any]] = []
    seeds = [replica_seed(opts.seed, r) for r in replicas]
    base_cfg = SimConfig(
        days=opts.days, step_s=opts.step_s, seed=seeds[0] if seeds else 0, noise_cv=opts.noise_cv
    )
    # without faults, each plan's replicas share one pass (simulate_replicas: the same summaries)
    batch = (
        [simulate_replicas(s, p, base_cfg, seeds=seeds) for p in plans] if opts.faults != "random" else None
    )
    for i, (r, seed) in enumerate(zip(replicas, seeds, strict=True)):
        spec = site_faults(s, start, opts.days, seed) if opts.faults == "random" else FaultSpec(())
        for j, p in enumerate(plans):
            if batch is not None:
                res = batch[j][i]
            else:
                built = {b.site for b in p.sites}
                mine = FaultSpec(tuple(f for f in spec.faults if f.site in built))
                res = simulate(s, p, replace(base_cfg, seed=seed), faults=mine)
            summary = dict(res.summary)
            metrics = row(s, p, summary, exposure(s, p, spec.faults, start, end, summary))
            rows.append(
                {
                    "point": point.index,
                    "point_id": point.id,
                    "replica": r,
                    "seed": seed,
                    "alternative": p.alternative,
                    "status": "ok",
                    "error": None,
                    **{f"param.{k}": v for k, v in point.values},
                    **metrics,
                }
            )
    return rows


def _failed_rows(point: Point, replicas: list[int], opts: SweepOptions, error: str) -> list[dict[str, Any]]:
    return [
        {
            "point": point.index,
            "point_id": point.id,
            "replica": r,
            "seed": replica_seed(opts.seed, r),
            "alternative": None,
            "status": "failed",
            "error": error[-2000:],
            **{f"param.{k}": v for k, v in point.values},
        }
        for r in replicas
    ]


def run_batch(
    base: Scenario, batch: list[tuple[Point, list[int]]], opts: SweepOptions
) -> list[dict[str, Any]]:
    """A Ray task's work: each point of the batch, retried up to opts.retries times, failures recorded."""
    out: list[dict[str, Any]] = []
    for point, replicas in batch:
        error = ""
        for _attempt in range(opts.retries + 1):
            try:
                out.extend(run_point(base, point, replicas, opts))
                break
            except Exception as exc:  # any failure of one run is recorded, never fatal
                error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
        else:
            out.extend(_failed_rows(point, replicas, opts, error))
    return out


# --- results on disk -------------------------------------------------------------------------------


def read_parts(out_dir: Path) -> pd.DataFrame:
    files = sorted((out_dir / PARTS).glob("*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def done_pairs(out_dir: Path) -> set[tuple[str, int]]:
    """(point id, replica) pairs that already ran successfully (failed ones are tried again)."""
    df = read_parts(out_dir)
    if df.empty:
        return set()
    ok = df[df["status"] == "ok"]
    return set(zip(ok["point_id"].astype(str), ok["replica"].astype(int), strict=True))


def write_part(out_dir: Path, rows: list[dict[str, Any]]) -> Path:
    parts = out_dir / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    path = parts / f"part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = path.with_suffix(".tmp")
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    tmp.replace(path)  # atomic: a killed sweep never leaves half a part
    return path


def consolidate(out_dir: Path, points: list[Point], params: list[Param], opts: SweepOptions) -> pd.DataFrame:
    """sweep.parquet: this sweep's points, one row per point × replica × alternative, in a fixed order.

    A pair that succeeded in any part wins over failed attempts; failures that were never fixed stay."""
    df = read_parts(out_dir)
    if df.empty:
        return df
    wanted = {p.id for p in points}
    df = df[df["point_id"].isin(wanted) & (df["replica"] < opts.replicas)].copy()
    ok = df[df["status"] == "ok"]
    ok_pairs = set(zip(ok["point_id"], ok["replica"], strict=True))
    failed = df[df["status"] != "ok"]
    failed = failed[
        [(a, b) not in ok_pairs for a, b in zip(failed["point_id"], failed["replica"], strict=True)]
    ]
    alt_order = {name: i for i, name in enumerate(["microdc", *opts.baselines])}
    df = pd.concat([ok, failed], ignore_index=True)
    df["_alt"] = df["alternative"].map(alt_order).fillna(len(alt_order))
    df = df.drop_duplicates(subset=["point_id", "replica", "alternative", "status"], keep="last")
    df = df.sort_values(["point", "replica", "_alt"], kind="stable").drop(columns="_alt")
    param_cols = [f"param.{p.path}" for p in params]
    front = ["point", "point_id", "replica", "seed", "alternative", "status", "error", *param_cols]
    cols = [c for c in front if c in df.columns] + [c for c in df.columns if c not in front]
    df = df[cols].reset_index(drop=True)
    df.to_parquet(out_dir / "sweep.parquet", index=False)
    return df


# --- executors ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the progress bar shows: runs (point × replica) done, running and failed."""

    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    started: float = field(default_factory=time.perf_counter)


Report = Callable[[Tally], None]
Batch = list[tuple[Point, list[int]]]


def make_batches(todo: list[tuple[Point, list[int]]], batch_size: int) -> list[Batch]:
    return [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]


def _count(rows: list[dict[str, Any]]) -> tuple[int, int]:
    pairs = {(r["point_id"], r["replica"]) for r in rows}
    failed = {(r["point_id"], r["replica"]) for r in rows if r["status"] != "ok"}
    return len(pairs), len(failed)


def run_serial(
    base: Scenario, batches: list[Batch], opts: SweepOptions, out_dir: Path, tally: Tally, report: Report
) -> None:
    """The same work in this process, one batch after another (no Ray; for comparison and debugging)."""
    for batch in batches:
        tally.running = sum(len(r) for _, r in batch)
        report(tally)
        rows = run_batch(base, batch, opts)
        write_part(out_dir, rows)
        n, bad = _count(rows)
        tally.done += n
        tally.failed += bad
        tally.running = 0
        report(tally)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SweepError(
            "microdc sweep runs on Ray, which is not installed; install it with "
            "pip install 'microdc[sweep]' (or use engine='serial' in Python)"
        ) from None
    return ray


def ray_session(address: str | None, workers: int | None) -> tuple[Any, bool]:
    """Connect to a cluster (address or RAY_ADDRESS) or start Ray embedded in this process.

    Returns (ray, started_here). An embedded Ray never attaches to a cluster someone else started on
    this machine (address='local'), so a sweep only uses the cores it was given."""
    ray = _ray()
    if ray.is_initialized():
        return ray, False
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(address="local", num_cpus=workers or os.cpu_count() or 1, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "an embedded Ray"
        raise SweepError(f"cannot start or reach Ray at {where}: {exc}") from None
    return ray, True


def run_ray(
    base: Scenario,
    batches: list[Batch],
    opts: SweepOptions,
    out_dir: Path,
    tally: Tally,
    report: Report,
    ray: Any,
    max_in_flight: int,
) -> None:
    """Submit batches as Ray tasks (at most max_in_flight at once), write each result as it arrives."""
    remote = ray.remote(num_cpus=1, max_retries=opts.retries)(run_batch)
    base_ref = ray.put(base)
    queue = list(batches)
    pending: dict[Any, Batch] = {}

    def submit() -> None:
        while queue and len(pending) < max_in_flight:
            b = queue.pop(0)
            pending[remote.remote(base_ref, b, opts)] = b

    submit()
    tally.running = sum(len(r) for b in pending.values() for _, r in b)
    report(tally)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        for ref in ready:
            batch = pending.pop(ref)
            try:
                rows = ray.get(ref)
            except Exception as exc:  # a worker that died despite Ray retries
                rows = [
                    r
                    for point, reps in batch
                    for r in _failed_rows(point, reps, opts, f"{type(exc).__name__}: {exc}")
                ]
            write_part(out_dir, rows)
            n, bad = _count(rows)
            tally.done += n
            tally.failed += bad
        submit()
        tally.running = sum(len(r) for b in pending.values() for _, r in b)
        report(tally)


def todo_list(
    points: list[Point], replicas: int, done: set[tuple[str, int]]
) -> list[tuple[Point, list[int]]]:
    out = []
    for p in points:
        missing = [r for r in range(replicas) if (p.id, r) not in done]
        if missing:
            out.append((p, missing))
    return out


def auto_batch_size(n_points: int, workers: int) -> int:
    """Enough batches for every worker to get about four (load balance), no more (overhead)."""
    return max(1, math.ceil(n_points / max(1, 4 * workers)))
