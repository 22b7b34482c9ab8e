"""`microdc plan` and `microdc check-plan`."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from microdc.cli.common import (
    EXIT_INPUT,
    console,
    err_console,
    fail,
    load_or_exit,
    output_file_or_exit,
    report_problems,
)
from microdc.model import ScenarioError
from microdc.placement.horizon_plan import HorizonPlan
from microdc.placement.plan import Plan

if TYPE_CHECKING:
    from microdc.model import Scenario
    from microdc.placement.problem import PlanningProblem


def _money(x: float, currency: str) -> str:
    return f"{x:,.0f} {currency}" if math.isfinite(x) else "—"


def print_comparison(plans: list[Plan]) -> None:
    """One row per alternative: yearly cost, sites, predicted p95 per service, unserved."""
    services = list(plans[0].latency)
    table = Table(title="Plans compared (annual cost; predicted p95 latency per service)")
    table.add_column("alternative", style="bold")
    table.add_column("cost / year", justify="right")
    table.add_column("MDCs", justify="right")
    for svc in services:
        table.add_column(f"{svc} p95 ms", justify="right")
    table.add_column("not legally servable", justify="right")
    for p in plans:
        row = [p.alternative, _money(p.objective, p.currency), str(len([s for s in p.sites]))]
        for svc in services:
            lat = p.latency.get(svc)
            slo = lat.slo_p95_ms if lat else None
            val = lat.p95_ms if lat and lat.p95_ms is not None else float("nan")
            txt = "—" if not math.isfinite(val) else f"{val:.1f}"
            if slo is not None and math.isfinite(val) and val > slo:
                txt = f"[red]{txt}[/]"
            row.append(txt)
        row.append(str(len(p.unserved)) if p.unserved else "0")
        table.add_row(*row)
    console.print(table)


def plan(
    scenario: str = typer.Argument(..., help="Example name or path to scenario.yaml"),
    output: Path = typer.Option(Path("plan.json"), "-o", "--output", help="Where to write the plan"),
    time_limit: float | None = typer.Option(
        60.0, "--time-limit", help="Solver time limit, seconds (the plan reports its proven gap)"
    ),
    gap: float = typer.Option(1e-6, "--gap", help="Relative optimality gap to stop at"),
    threads: int | None = typer.Option(None, "--threads", help="Solver threads"),
    allow_unserved: bool = typer.Option(
        False, "--allow-unserved", help="Price unservable demand instead of failing"
    ),
    baselines: bool = typer.Option(
        True, "--baselines/--no-baselines", help="Also plan the baselines and compare"
    ),
    memory_budget_gb: float | None = typer.Option(
        None,
        "--memory-budget-gb",
        help="On a horizon: memory the per-site MILP may take, GB (default: half of the memory available); "
        "above it the heuristic plan is kept and no bound is claimed",
    ),
) -> None:
    """Plan the fleet: which sites get an MDC, with which modules, serving which demand — at least cost."""
    from microdc.placement.baselines import BASELINES
    from microdc.placement.planner import PlannerOptions, PlanningError, option_problems
    from microdc.placement.planner import plan as make_plan

    bad_options = option_problems(time_limit, gap, threads)
    if bad_options:  # a usage error: say which option and what it takes, before any work
        for msg in bad_options:
            err_console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INPUT)
    s = load_or_exit(scenario)
    output_file_or_exit(output)
    if s.horizon is not None:
        budget = None if memory_budget_gb is None else memory_budget_gb * 1e9
        plan_horizon_cmd(s, output, time_limit, gap, threads, allow_unserved, budget)
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("building the planning problem…")

        def on_progress(phase: str, seconds: float, objective: float, bound: float) -> None:
            g = (
                (objective - bound) / abs(objective)
                if math.isfinite(objective) and objective
                else float("inf")
            )
            progress.update(
                task,
                description=f"{phase}: best {_money(objective, s.economics.currency)}, "
                f"bound {_money(bound, s.economics.currency)}, gap {g:.2%}",
            )

        try:
            result, pp, _sol = make_plan(
                s,
                PlannerOptions(
                    time_limit_s=time_limit,
                    mip_rel_gap=gap,
                    threads=threads,
                    allow_unserved=allow_unserved,
                    progress=on_progress,
                ),
            )
        except PlanningError as exc:
            progress.stop()
            err_console.print("[bold red]cannot plan:[/]")
            for r in exc.reasons:
                err_console.print(f"  • {r}", highlight=False, soft_wrap=True, markup=False)
            raise typer.Exit(EXIT_INPUT) from None
        except ScenarioError as exc:
            progress.stop()
            report_problems(exc)
        tb = time.perf_counter()
        others = [fn(pp) for fn in BASELINES.values()] if baselines else []
        baseline_s = time.perf_counter() - tb
    try:
        result.write(output)
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror}")
    summary = Table(title=f"Plan for {s.name!r} → {output}", show_header=False)
    summary.add_row("status", f"{result.status} ({result.method})")
    summary.add_row("objective", _money(result.objective, result.currency) + " / year")
    summary.add_row("lower bound", _money(result.lower_bound or float("nan"), result.currency))
    if result.unservable_penalty:
        cur = result.currency
        summary.add_row("cost the plan controls", _money(result.objective - result.unservable_penalty, cur))
        summary.add_row(
            "unservable penalty", _money(result.unservable_penalty, cur) + " (no legal target; constant)"
        )
    summary.add_row(
        "gap",
        (f"{result.gap:.4%}" + (" of the cost the plan controls" if result.unservable_penalty else ""))
        if result.gap is not None
        else "—",
    )
    summary.add_row("solver time", f"{result.seconds:.2f} s")
    if result.timing:
        spent = ", ".join(f"{k} {v:.1f} s" for k, v in result.timing.items())
        if others:
            spent += f"; baselines {baseline_s:.1f} s (not in the time limit)"
        summary.add_row("time", spent)
    summary.add_row("MDCs built", f"{len(result.sites)} of {len(s.sites)} candidate sites")
    summary.add_row("redundancy", f"n+{result.n_plus}")
    for k, v in result.costs.items():
        summary.add_row(f"  {k}", _money(v, result.currency))
    console.print(summary)
    print_digest(pp, result, others)


def print_digest(pp: PlanningProblem, result: Plan, others: list[Plan]) -> None:
    """Far service, the cost of unserved demand, and each baseline compared on common legal demand."""
    from microdc.placement.compare import compare, far_service

    cur = result.currency
    radius = pp.scenario.network.metro_radius_km
    far = far_service(pp, result)
    if far.sources:
        console.print(
            f"[yellow]{far.sources} demand source(s) served from an MDC beyond the {radius:g} km metro "
            f"radius ({far.rps:,.1f} req/s, {far.share:.1%} of served requests); farthest {far.farthest} "
            f"{far.farthest_km:,.0f} km[/]"
        )
    else:
        console.print(f"no demand is served from an MDC beyond the {radius:g} km metro radius")
    if result.unserved:
        rps = pp.demand.mean_rps
        index = {d.id: i for i, d in enumerate(pp.scenario.demand)}
        lost = sum(u.fraction * rps[index[u.demand]] for u in result.unserved)
        console.print(
            f"[yellow]{len(result.unserved)} demand source(s) left unserved ({lost:,.1f} req/s, "
            f"{lost / max(float(rps.sum()), 1e-12):.1%} of requests), costing "
            f"{_money(result.costs.get('unserved_penalty', 0.0), cur)} / year in penalties, of which "
            f"{_money(result.unservable_penalty, cur)} no plan can avoid (see plan.json)[/]"
        )
    if not others:
        return
    print_comparison([result, *others])
    table = Table(title="On the demand both plans serve completely and legally (sovereignty, tier, SLO)")
    for col in ("baseline", "sources", "of requests", f"{result.alternative} / year", "baseline / year"):
        table.add_column(col, justify="right" if col != "baseline" else "left")
    table.add_column("baseline ÷ plan", justify="right")
    for cmp in compare(pp, result, others):
        ratio = cmp.baseline_cost / cmp.plan_cost if cmp.plan_cost > 0 else float("nan")
        table.add_row(
            cmp.baseline,
            str(cmp.common_sources),
            f"{cmp.common_rps_share:.1%}",
            _money(cmp.plan_cost, cur),
            _money(cmp.baseline_cost, cur),
            f"{ratio:.2f}" if math.isfinite(ratio) else "—",
        )
    console.print(table)


def check_plan_cmd(
    scenario: str = typer.Argument(..., help="Example name or path to scenario.yaml"),
    plan_file: Path = typer.Argument(..., help="plan.json to check"),
    allow_unserved: bool = typer.Option(
        False,
        "--allow-unserved",
        help="Demand may be left unserved (as planned with --allow-unserved); the plan is not trusted",
    ),
) -> None:
    """Re-check every hard rule of a plan independently of the solver, recomputing every recorded value
    (capacities, costs, objective, latency) from the scenario; exit 1 naming each violation."""
    from microdc.placement.check import RULES, check_plan, rule_of
    from microdc.placement.check_horizon import HORIZON_RULES, check_horizon_plan
    from microdc.placement.horizon_plan import HorizonPlan, read_any_plan

    s = load_or_exit(scenario)
    try:
        p = read_any_plan(plan_file)
    except ScenarioError as exc:
        report_problems(exc)
    try:
        if isinstance(p, HorizonPlan):
            problems = check_horizon_plan(s, p, allow_unserved=allow_unserved)
        else:
            problems = check_plan(s, p, allow_unserved=allow_unserved)
    except ScenarioError as exc:  # a time series or trace the check needs cannot be read
        report_problems(exc)
    if problems:
        counts = {r: 0 for r in (*RULES, *HORIZON_RULES)}
        for msg in problems:
            rule = rule_of(msg) or next((r for r in HORIZON_RULES if msg.startswith(r + ":")), "other")
            counts[rule] = counts.get(rule, 0) + 1
        table = Table(title=f"{len(problems)} violation(s) in {plan_file.name}")
        table.add_column("rule", style="bold red")
        table.add_column("violations", justify="right")
        for rule, n in counts.items():
            if n:
                table.add_row(rule, str(n))
        err_console.print(table)
        for msg in problems:
            err_console.print(f"  • {msg}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if isinstance(p, HorizonPlan):
        console.print(
            f"[green]plan {plan_file} satisfies every hard rule of {s.name!r} in each of its "
            f"{len(p.periods)} periods[/] (capacity never shrinks unless retiring is allowed; purchases and "
            "net present cost recomputed and in agreement)"
        )
        return
    console.print(
        f"[green]plan {plan_file} satisfies every hard rule of {s.name!r}[/] "
        f"({len(p.sites)} sites, {len(p.assignments)} assignments; capacities, costs, objective and "
        "latency recomputed and in agreement)"
    )


def plan_horizon_cmd(
    s: Scenario,
    output: Path,
    time_limit: float | None,
    gap: float,
    threads: int | None,
    allow_unserved: bool,
    memory_budget_bytes: float | None = None,
) -> None:
    """Plan the staged build-out over the scenario's horizon; print the build schedule."""
    from microdc.placement.horizon_planner import plan_horizon
    from microdc.placement.planner import PlannerOptions, PlanningError

    with console.status("planning the horizon (myopic warm start, then HiGHS on all periods)…"):
        try:
            result, _hp = plan_horizon(
                s,
                PlannerOptions(
                    time_limit_s=time_limit,
                    mip_rel_gap=gap,
                    threads=threads,
                    allow_unserved=allow_unserved,
                    memory_budget_bytes=memory_budget_bytes,
                ),
            )
        except PlanningError as exc:
            err_console.print("[bold red]cannot plan:[/]")
            for r in exc.reasons:
                err_console.print(f"  • {r}", highlight=False, soft_wrap=True, markup=False)
            raise typer.Exit(EXIT_INPUT) from None
    try:
        result.write(output)
    except OSError as exc:
        fail(f"{output}: cannot write: {exc.strerror}")
    print_horizon_summary(result, output)


def print_horizon_summary(result: HorizonPlan, output: Path) -> None:
    cur = result.currency
    summary = Table(title=f"Horizon plan for {result.scenario!r} → {output}", show_header=False)
    summary.add_row("status", f"{result.status} ({result.method})")
    summary.add_row("net present cost", _money(result.npv, cur))
    summary.add_row(
        "lower bound", _money(result.lower_bound if result.lower_bound is not None else math.nan, cur)
    )
    summary.add_row("gap", f"{result.gap:.4%}" if result.gap is not None else "—")
    summary.add_row(
        "horizon",
        f"{result.years} years in {len(result.periods)} periods, discount rate {result.discount_rate:g}",
    )
    summary.add_row("solver time", f"{result.seconds:.2f} s")
    for name, value in result.alternatives.items():
        txt = "no feasible plan" if value is None else f"{_money(value, cur)} ({value / result.npv - 1:+.2%})"
        summary.add_row(f"  {name.replace('_', ' ')}", txt)
    console.print(summary)
    for note in result.notes[1:]:  # the first note is the timing line
        console.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)
    table = Table(
        title=f"Build schedule ({cur}; +mod, +srv: modules and servers bought at the start of the period)"
    )
    for col in ("period", "years", "MDCs", "cores", "+mod", "+srv", "capex", "opex/yr", "NPV"):
        table.add_column(col, justify="right")
    for p in result.periods:
        table.add_row(
            str(p.period),
            f"{p.start_year + 1}-{p.start_year + p.years}",
            str(len(p.plan.sites)),
            f"{sum(b.cores for b in p.plan.sites):,.0f}",
            str(sum(b.modules for b in p.purchases)),
            str(sum(b.servers for b in p.purchases)),
            f"{p.capex:,.0f}",
            f"{p.opex_per_year:,.0f}",
            f"{p.npv:,.0f}",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(plan)
    app.command("check-plan")(check_plan_cmd)
