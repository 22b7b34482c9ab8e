"""`microdc run` on a scenario with a horizon: plan the staged build-out, then simulate a representative
window of every period for it and for the two comparisons the horizon planner prices (build everything
in year 1, re-plan each year myopically), and write the build-out report.

Each period is simulated by the single-period path (`microdc.run.simulate_alternative`, the one
simulator) on that period's scenario (`placement.periods.period_scenario`: grown demand, that year's
prices and servers) and that period's fleet and assignment. Every period uses the run's window (the
scenario's start, `--days`): the weather and carbon series cover one year, so the periods differ by
what the horizon changes, not by the season. The simulator reads one year of grid carbon; a period's
carbon is that times the horizon's grid-carbon factor for the year (carbon is energy × intensity, so
the scaling is exact), and the carbon price of the period scenario already carries the same factor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from microdc.model import Scenario
from microdc.placement.horizon import HorizonProblem, Schedule, schedule_npv
from microdc.placement.horizon_plan import HorizonPlan
from microdc.report.comparison import compare
from microdc.report.horizon_data import HorizonAlternative, HorizonRunResult, PeriodRun
from microdc.run import (
    RunOptions,
    RunProgress,
    _clean,
    _fault_list,
    _Quiet,
    faults_of_run,
    simulate_alternative,
    window_start,
)

#: The CLI's planner budget on a horizon (`microdc plan`'s default): at the single-year run's 20 s the
#: heuristics take most of it and HiGHS proves no bound on melbourne-growth.
HORIZON_TIME_LIMIT_S = 60.0

#: planner name of a comparison schedule → the alternative's name in the run
COMPARISONS = {"build_all_now": "build-all-now", "myopic": "myopic"}


def grid_carbon_factor(s: Scenario, period: int) -> float:
    """The horizon's multiplier of grid carbon intensity in the year a period starts (1 without one)."""
    h = s.horizon
    if h is None or h.grid_carbon is None:
        return 1.0
    return h.grid_carbon.factor(h.start_year(period))


def as_alternative(hp: HorizonProblem, sch: Schedule, name: str) -> HorizonPlan:
    """A comparison schedule as a horizon plan (no bound: a heuristic), its periods named after it."""
    from microdc.placement.horizon_planner import to_horizon_plan

    npv = schedule_npv(hp, sch)[0]
    out = to_horizon_plan(hp, sch, npv=npv, bound=-np.inf, gap=np.nan, status="heuristic", method=name)
    return rename(out, name)


def rename(plan: HorizonPlan, name: str) -> HorizonPlan:
    periods = [
        p.model_copy(update={"plan": p.plan.model_copy(update={"alternative": f"{name}-period-{p.period}"})})
        for p in plan.periods
    ]
    return plan.model_copy(update={"alternative": name, "periods": periods})


def plan_horizon_alternatives(
    s: Scenario, opts: RunOptions, progress: RunProgress
) -> tuple[list[HorizonPlan], HorizonProblem]:
    """microdc's horizon plan first, then build-all-now and myopic as the planner priced them."""
    from microdc.placement.horizon_planner import plan_horizon_with_alternatives
    from microdc.placement.planner import PlannerOptions

    progress.stage("plan horizon")
    ours, hp, schedules = plan_horizon_with_alternatives(
        s, PlannerOptions(time_limit_s=opts.time_limit_s, allow_unserved=opts.allow_unserved)
    )
    gap = "n/a" if ours.gap is None else f"{ours.gap:.1%}"
    progress.done("plan horizon", f"{hp.n_periods} periods, {ours.status}, gap {gap}")
    plans = [rename(ours, "microdc")]
    for key, name in COMPARISONS.items():
        sch = schedules.get(key)
        if sch is not None:
            plans.append(as_alternative(hp, sch, name))
    return plans, hp


def simulate_periods(
    hp: HorizonProblem,
    plan: HorizonPlan,
    ours: HorizonPlan,
    opts: RunOptions,
    out_dir: Path,
    progress: RunProgress,
) -> tuple[list[PeriodRun], list[list[dict[str, Any]]]]:
    """Simulate every period of one alternative on its own period scenario and fleet.

    The fault schedule of a period is the run's (`faults_of_run` on that period's scenario, and for the
    drill on microdc's fleet of that period), the same for every alternative."""
    s = hp.scenario
    start = window_start(s)
    runs: list[PeriodRun] = []
    faults: list[list[dict[str, Any]]] = []
    for t, period in enumerate(plan.periods):
        ps = hp.periods[t].scenario
        spec = faults_of_run(ps, ours.periods[t].plan, start, opts)
        alt = simulate_alternative(ps, period.plan, spec, opts, out_dir / f"period-{t + 1}", progress)
        entry = compare(ps, alt)
        factor = grid_carbon_factor(s, t)
        entry["grid_carbon_factor"] = factor
        entry["carbon_kg"] = entry["carbon_kg"] * factor
        runs.append(PeriodRun(period=t + 1, start_year=period.start_year, entry=entry))
        faults.append(_fault_list(spec))
    return runs, faults


def run_horizon(
    s: Scenario,
    out_dir: Path,
    opts: RunOptions | None = None,
    progress: RunProgress | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> HorizonRunResult:
    """The whole horizon pipeline; writes every file under `out_dir` and returns what the report shows."""
    from microdc.report.horizon import write_horizon_report

    opts = opts or RunOptions()
    progress = progress or _Quiet()
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = clock()
    plans, hp = plan_horizon_alternatives(s, opts, progress)
    seconds["planning"] = clock() - t0
    plans[0].write(out_dir / "plan.json")
    t1 = clock()
    alternatives = []
    faults: list[list[dict[str, Any]]] = []
    for plan in plans:
        folder = out_dir / plan.alternative
        folder.mkdir(parents=True, exist_ok=True)
        plan.write(folder / "plan.json")
        runs, faults = simulate_periods(hp, plan, plans[0], opts, folder, progress)
        alternatives.append(HorizonAlternative(name=plan.alternative, plan=plan, periods=runs))
    seconds["simulation"] = clock() - t1
    progress.stage("report")
    result = HorizonRunResult(
        scenario=s,
        alternatives=alternatives,
        days=opts.days,
        step_minutes=opts.step_s / 60.0,
        seconds=seconds,
    )
    if opts.write_html:
        t2 = clock()
        write_horizon_report(result, out_dir / "report.html", tile_url=opts.tile_url or None)
        seconds["report"] = clock() - t2
    seconds["total"] = clock() - t0
    write_horizon_comparison(result, out_dir / "comparison.json", seed=opts.seed, faults=faults)
    progress.done("report")
    return result


def horizon_comparison(
    result: HorizonRunResult, *, seed: int, faults: list[list[dict[str, Any]]]
) -> dict[str, Any]:
    """The run as plain data: per alternative its net present cost and, per period, fleet and figures."""
    s = result.scenario
    ours = result.ours.plan
    alternatives = []
    for alt in result.alternatives:
        p = alt.plan
        periods = []
        for pp, run in zip(p.periods, alt.periods, strict=True):
            periods.append(
                {
                    "period": pp.period,
                    "start_year": pp.start_year,
                    "sites": len(pp.plan.sites),
                    "modules": len(pp.plan.sites),
                    "servers": sum(b.servers for b in pp.plan.sites),
                    "capex": pp.capex,
                    "opex_per_year": pp.opex_per_year,
                    "npv": pp.npv,
                    "simulated": run.entry,
                }
            )
        alternatives.append(
            {
                "alternative": alt.name,
                "method": p.method,
                "status": p.status,
                "npv": p.npv,
                "npv_vs_microdc": (p.npv - ours.npv) / ours.npv if ours.npv else None,
                "lower_bound": p.lower_bound,
                "gap": p.gap,
                "periods": periods,
            }
        )
    return {
        "scenario": s.name,
        "start": window_start(s).isoformat(),
        "days": result.days,
        "step_minutes": result.step_minutes,
        "seed": seed,
        "currency": s.economics.currency,
        "horizon": {"years": ours.years, "step_years": ours.step_years, "discount_rate": ours.discount_rate},
        "faults_per_period": faults,
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        "alternatives": alternatives,
    }


def write_horizon_comparison(
    result: HorizonRunResult, path: Path, *, seed: int, faults: list[list[dict[str, Any]]]
) -> None:
    doc = horizon_comparison(result, seed=seed, faults=faults)
    path.write_text(json.dumps(_clean(doc), indent=2) + "\n", encoding="utf-8")


__all__ = ["grid_carbon_factor", "horizon_comparison", "run_horizon"]
