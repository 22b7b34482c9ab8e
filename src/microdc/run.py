"""The main job behind `microdc run`: plan a fleet, plan the baselines, simulate every alternative over
the same period, weather, grid carbon, load and faults, compare them and write the report.

    DIR/plan.json                 microdc's plan
    DIR/<alternative>/            plan.json, timeseries.parquet, service_latency.parquet, events.json,
                                  summary.json (the simulator's outputs, docs/simulator.md)
    DIR/comparison.json           one entry per alternative (microdc.report.comparison)
    DIR/report.html               the self-contained report

Faults: unless told otherwise, faults are drawn at random for every physical candidate site from the
scenario's failure rates (`microdc.sim.fault_rates`, docs/reliability.md), seeded by the run's seed. The
same schedule applies to every alternative: one that built a micro data center at a site suffers that
site's faults, one that did not is unaffected (cloud regions do not fail in the simulator). The report
shows each alternative's exposure. `fault_drill` (three faults on microdc's largest sites) remains as a
demonstration on request.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import pandas as pd

from microdc.model import Scenario
from microdc.placement.plan import Plan
from microdc.report.comparison import compare
from microdc.report.data import AlternativeRun, RunResult
from microdc.report.faults import exposure
from microdc.report.render import write_report
from microdc.sim import Fault, FaultKind, FaultSpec, SimConfig, simulate
from microdc.sim.fault_rates import site_faults

DEFAULT_DAYS = 14.0
DEFAULT_STEP_S = 900
DEFAULT_TIME_LIMIT_S = 20.0
DEFAULT_BASELINES = ("cloud-only", "nearest", "greedy")
OURS = "microdc"

# The fault drill: (kind, share of the run at which it starts, hours it lasts, rank of the site by IT kW).
DRILL: tuple[tuple[FaultKind, float, float, int], ...] = (
    (FaultKind.SITE_OUTAGE, 0.25, 4.0, 0),
    (FaultKind.COOLING_FAILURE, 0.50, 3.0, 1),
    (FaultKind.UPLINK_CUT, 0.75, 2.0, 2),
)


class RunProgress(Protocol):
    """What the pipeline reports as it goes; the CLI shows it with rich."""

    def stage(self, name: str, total: int | None = None) -> None: ...

    def advance(self, name: str, done: int, total: int | None = None, note: str = "") -> None: ...

    def done(self, name: str, note: str = "") -> None: ...


class _Quiet:
    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, name: str, done: int, total: int | None = None, note: str = "") -> None:
        pass

    def done(self, name: str, note: str = "") -> None:
        pass


@dataclass(frozen=True)
class RunOptions:
    """days/step_s: the simulated window; time_limit_s: the planner's budget; faults: a fault schedule
    (None: `fault_source` says where faults come from: random per candidate site from the scenario's
    failure rates, the built-in drill on microdc's largest sites, or none); tile_url: the user's own
    slippy-map tile server for street maps under the report's fleet map (the page then loads images from
    it; empty, the default: offline Natural Earth basemap only)."""

    days: float = DEFAULT_DAYS
    step_s: int = DEFAULT_STEP_S
    seed: int = 0
    time_limit_s: float | None = DEFAULT_TIME_LIMIT_S
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    faults: FaultSpec | None = None
    fault_source: Literal["rates", "drill", "none"] = "rates"
    allow_unserved: bool = False
    write_html: bool = True
    tile_url: str = ""  # the user's own street-map tiles under the fleet map; empty: the report stays offline

    def __post_init__(self) -> None:
        if not (math.isfinite(self.days) and self.days > 0):
            raise ValueError(f"days must be a positive number, not {self.days!r}")
        if not 0 < self.step_s <= 86400:
            raise ValueError(f"step must lie in (0 s, 1 day], not {self.step_s!r} s")
        from microdc.placement.baselines import BASELINES

        if self.fault_source not in ("rates", "drill", "none"):
            raise ValueError(f"unknown fault source {self.fault_source!r}; expected rates, drill or none")
        if self.tile_url:
            from microdc.report.basemap import check_tile_url

            check_tile_url(self.tile_url)
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise ValueError(f"unknown baseline(s) {', '.join(unknown)}; known: {', '.join(BASELINES)}")


def window_start(s: Scenario) -> pd.Timestamp:
    return pd.Timestamp(s.start).tz_localize("UTC")


def fault_drill(plan: Plan, start: pd.Timestamp, days: float) -> FaultSpec:
    """A site outage, a cooling failure and an uplink cut on microdc's largest sites, spread over the run.

    Each starts on a whole hour at its share of the run and lasts its hours (at most a tenth of the run);
    with fewer sites than faults, the largest sites take more than one. No sites, no faults."""
    sites = [b.site for b in sorted(plan.sites, key=lambda b: (-b.it_kw, b.site))]
    if not sites:
        return FaultSpec(())
    span = pd.Timedelta(days=days)
    faults = []
    for kind, at, hours, rank in DRILL:
        begin = (start + span * at).floor("h")
        length = min(pd.Timedelta(hours=hours), span / 10)
        if length <= pd.Timedelta(0) or begin >= start + span:
            continue
        faults.append(Fault(kind, sites[rank % len(sites)], begin, begin + length, "fault drill"))
    return FaultSpec(tuple(faults))


def faults_of_run(s: Scenario, ours: Plan, start: pd.Timestamp, opts: RunOptions) -> FaultSpec:
    """The one fault schedule every alternative of a run faces."""
    if opts.faults is not None:
        return opts.faults
    if opts.fault_source == "rates":
        return site_faults(s, start, opts.days, opts.seed)
    if opts.fault_source == "drill":
        return fault_drill(ours, start, opts.days)
    return FaultSpec(())


def faults_for(spec: FaultSpec, plan: Plan) -> FaultSpec:
    """The part of a fault schedule that hits this alternative: faults at sites it built."""
    built = {b.site for b in plan.sites}
    random = spec.random
    if random is not None and random.sites is not None:
        random = replace(random, sites=tuple(x for x in random.sites if x in built))
    return FaultSpec(tuple(f for f in spec.faults if f.site in built), random)


def _fault_list(spec: FaultSpec) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "kind": f.kind.value,
            "site": f.site,
            "start": f.start.isoformat(),
            "end": f.end.isoformat() if f.end is not None else None,
            "source": f.source,
        }
        for f in spec.faults
    ]
    if spec.random is not None:
        out.append(
            {
                "kind": "random",
                "rates": {k.value: list(v) for k, v in spec.random.rates.items()},
                "sites": list(spec.random.sites) if spec.random.sites is not None else "every built site",
            }
        )
    return out


def plan_alternatives(s: Scenario, opts: RunOptions, progress: RunProgress) -> list[Plan]:
    """microdc's plan first, then the baselines on the same planning problem."""
    from microdc.placement.baselines import BASELINES
    from microdc.placement.planner import PlannerOptions
    from microdc.placement.planner import plan as make_plan

    progress.stage("plan")

    def on_solver(phase: str, seconds: float, objective: float, bound: float) -> None:
        gap = (objective - bound) / abs(objective) if math.isfinite(objective) and objective else float("inf")
        progress.advance("plan", 0, None, f"{phase}: gap {gap:.1%} after {seconds:.0f} s")

    ours, pp, _ = make_plan(
        s,
        PlannerOptions(
            time_limit_s=opts.time_limit_s, allow_unserved=opts.allow_unserved, progress=on_solver
        ),
    )
    progress.done("plan", f"{len(ours.sites)} MDCs, {ours.status}, gap {ours.gap or 0.0:.1%}")
    plans = [ours]
    progress.stage("baselines", len(opts.baselines))
    for i, name in enumerate(opts.baselines):
        plans.append(BASELINES[name](pp))
        progress.advance("baselines", i + 1, len(opts.baselines), name)
    progress.done("baselines", ", ".join(opts.baselines))
    return plans


def simulate_alternative(
    s: Scenario, plan: Plan, spec: FaultSpec, opts: RunOptions, out_dir: Path, progress: RunProgress
) -> AlternativeRun:
    name = plan.alternative
    stage = f"simulate {name}"
    progress.stage(stage)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan_path = out_dir / "plan.json"
    plan.write(plan_path)

    def tick(done: int, total: int) -> None:
        progress.advance(stage, done, total)

    cfg = SimConfig(days=opts.days, step_s=opts.step_s, seed=opts.seed, progress=tick)
    res = simulate(
        s, plan, cfg, faults=faults_for(spec, plan), out_dir=out_dir, plan_path=plan_path, keep_frames=True
    )
    assert res.timeseries is not None and res.service_latency is not None
    progress.done(stage)
    return AlternativeRun(
        name=name,
        plan=plan,
        timeseries=res.timeseries,
        latency=res.service_latency,
        events=list(res.events),
        summary=dict(res.summary),
    )


def run(
    s: Scenario,
    out_dir: Path,
    opts: RunOptions | None = None,
    progress: RunProgress | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> RunResult:
    """The whole pipeline; writes every file under `out_dir` and returns what the report shows."""
    opts = opts or RunOptions()
    progress = progress or _Quiet()
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = clock()
    plans = plan_alternatives(s, opts, progress)
    seconds["planning"] = clock() - t0
    plans[0].write(out_dir / "plan.json")
    start = window_start(s)
    spec = faults_of_run(s, plans[0], start, opts)
    t1 = clock()
    alts = [simulate_alternative(s, p, spec, opts, out_dir / p.alternative, progress) for p in plans]
    seconds["simulation"] = clock() - t1
    progress.stage("report")
    entries = [compare(s, a) for a in alts]
    end = start + pd.Timedelta(days=opts.days)
    for entry, alt in zip(entries, alts, strict=True):
        entry["fault_exposure"] = exposure(s, alt.plan, spec.faults, start, end, alt.summary)
    result = RunResult(
        scenario=s,
        alternatives=alts,
        comparison=entries,
        days=opts.days,
        step_minutes=opts.step_s / 60.0,
        seconds=seconds,
    )
    write_comparison(
        result, out_dir / "comparison.json", start=start, seed=opts.seed, faults=_fault_list(spec)
    )
    if opts.write_html:
        t2 = clock()
        write_report(result, out_dir / "report.html", tile_url=opts.tile_url or None)
        seconds["report"] = clock() - t2
    seconds["total"] = clock() - t0
    write_comparison(
        result, out_dir / "comparison.json", start=start, seed=opts.seed, faults=_fault_list(spec)
    )
    progress.done("report")
    return result


def write_comparison(
    result: RunResult, path: Path, *, start: pd.Timestamp, seed: int, faults: list[dict[str, Any]]
) -> None:
    doc = {
        "scenario": result.scenario.name,
        "start": start.isoformat(),
        "days": result.days,
        "step_minutes": result.step_minutes,
        "seed": seed,
        "currency": result.scenario.economics.currency,
        "faults": faults,
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        "alternatives": result.comparison,
    }
    path.write_text(json.dumps(_clean(doc), indent=2) + "\n", encoding="utf-8")


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
