"""`microdc run`: the main job — plan, compare with baselines, simulate, and write the report."""

from __future__ import annotations

import math
import webbrowser
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from microdc.cli.common import EXIT_INPUT, console, err_console, fail, load_or_exit, report_problems
from microdc.model import ScenarioError
from microdc.report.horizon_data import HorizonRunResult


class RichRunProgress:
    """Shows each stage of the pipeline as a line with a spinner or a bar (microdc.run.RunProgress)."""

    def __init__(self, progress: Progress):
        self.p = progress
        self.tasks: dict[str, TaskID] = {}

    def stage(self, name: str, total: int | None = None) -> None:
        if name not in self.tasks:
            self.tasks[name] = self.p.add_task(name, total=total, note="")

    def advance(self, name: str, done: int, total: int | None = None, note: str = "") -> None:
        self.stage(name, total)
        fields: dict[str, Any] = {"note": note} if note else {}
        self.p.update(self.tasks[name], completed=done, total=total, **fields)

    def done(self, name: str, note: str = "") -> None:
        self.stage(name)
        task = self.tasks[name]
        total = self.p.tasks[task].total or 1
        self.p.update(task, completed=total, total=total, note=note)


def _fmt(x: float | None, nd: int = 1) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:,.{nd}f}"


def comparison_table(entries: list[dict[str, Any]], services: list[str]) -> Table:
    """Measures as rows, alternatives as columns (fits a narrow terminal)."""
    cur = entries[0]["currency"] if entries else ""
    table = Table(title="Alternatives compared (same period, weather, carbon, load and faults)")
    table.add_column("measure")
    for e in entries:
        table.add_column(e["alternative"], justify="right", style="bold" if e is entries[0] else None)

    def row(label: str, cells: list[str]) -> None:
        table.add_row(label, *cells)

    row(f"cost/year ({cur})", [_fmt(e["cost_per_year"], 0) for e in entries])
    for svc in services:
        cells = []
        for e in entries:
            lat = e["latency"][svc]
            txt = _fmt(lat["p95_ms"])
            slo = lat["slo_p95_ms"]
            if slo is not None and lat["p95_ms"] is not None and lat["p95_ms"] > slo:
                txt = f"[red]{txt}[/]"
            cells.append(txt)
        row(f"{svc} p95 ms", cells)
    row(
        "SLO violations",
        [
            "—" if e["slo_violation_rate"] is None else f"{100 * e['slo_violation_rate']:.2f}%"
            for e in entries
        ],
    )
    row("energy kWh", [_fmt(e["energy_kwh"], 0) for e in entries])
    row("PUE", [_fmt(e["pue"], 3) for e in entries])
    row("carbon kg CO2e", [_fmt(e["carbon_kg"], 0) for e in entries])
    row(
        "sovereignty violations",
        [f"[red]{v}[/]" if (v := e["sovereignty_violations"]) else "0" for e in entries],
    )
    row("demand unserved (plan)", [f"{100 * e['unserved_planned_fraction']:.1f}%" for e in entries])
    row("requests unserved (sim.)", [f"{100 * e['unserved_fraction']:.2f}%" for e in entries])
    return table


def npv_table(result: HorizonRunResult) -> Table:
    """Net present cost of microdc's build-out and of its two comparisons."""
    cur = result.scenario.economics.currency
    ours = result.ours.plan.npv
    table = Table(title=f"Net present cost over {result.ours.plan.years} years")
    for col in ("alternative", f"NPV ({cur})", "vs microdc", "status", "gap"):
        table.add_column(col, justify="left" if col in ("alternative", "status") else "right")
    for alt in result.alternatives:
        p = alt.plan
        vs = "—" if alt is result.ours or not ours else f"{(p.npv - ours) / ours:+.1%}"
        gap = "—" if p.gap is None else f"{100 * p.gap:.2f}%"
        table.add_row(alt.name, _fmt(p.npv, 0), vs, p.status, gap)
    return table


def horizon_table(result: HorizonRunResult, alternative: int = 0) -> Table:
    """One alternative's periods as columns: fleet, cost and the period's simulated figures."""
    alt = result.alternatives[alternative]
    cur = result.scenario.economics.currency
    table = Table(title=f"{alt.name}: each period simulated on its own fleet, demand and prices")
    table.add_column("measure")
    for pp in alt.plan.periods:
        table.add_column(f"period {pp.period}", justify="right")
    entries = [r.entry for r in alt.periods]
    periods = alt.plan.periods
    table.add_row("MDCs", *[str(len(pp.plan.sites)) for pp in periods])
    table.add_row("servers", *[str(sum(b.servers for b in pp.plan.sites)) for pp in periods])
    table.add_row(f"capex ({cur})", *[_fmt(pp.capex, 0) for pp in periods])
    table.add_row(f"opex/yr ({cur})", *[_fmt(pp.opex_per_year, 0) for pp in periods])
    for svc in result.scenario.services:
        cells = []
        for e in entries:
            lat = e["latency"][svc.id]
            txt = _fmt(lat["p95_ms"])
            slo = lat["slo_p95_ms"]
            if slo is not None and lat["p95_ms"] is not None and lat["p95_ms"] > slo:
                txt = f"[red]{txt}[/]"
            cells.append(txt)
        table.add_row(f"{svc.id} p95 ms", *cells)
    table.add_row(
        "SLO violations",
        *[
            "—" if e["slo_violation_rate"] is None else f"{100 * e['slo_violation_rate']:.2f}%"
            for e in entries
        ],
    )
    table.add_row("energy kWh", *[_fmt(e["energy_kwh"], 0) for e in entries])
    table.add_row("PUE", *[_fmt(e["pue"], 3) for e in entries])
    table.add_row("carbon kg CO2e", *[_fmt(e["carbon_kg"], 0) for e in entries])
    table.add_row(
        "sovereignty violations",
        *[f"[red]{v}[/]" if (v := e["sovereignty_violations"]) else "0" for e in entries],
    )
    return table


def run(
    scenario: str = typer.Argument("melbourne", help="Example name or path to scenario.yaml"),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Output directory (default: microdc-run/<scenario name>)"
    ),
    days: float | None = typer.Option(None, "--days", help="Simulated days (default: 14)"),
    step: str = typer.Option("15min", "--step", help="Simulation step, e.g. 5min, 15min, 1h"),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same results)"),
    time_limit: float | None = typer.Option(
        None,
        "--time-limit",
        help="Planner time limit, seconds (default: 20; on a scenario with a horizon 60, as microdc plan: "
        "the whole horizon, heuristics and HiGHS, shares it)",
    ),
    faults: str = typer.Option(
        "random",
        "--faults",
        help="random (per candidate site from the scenario's failure rates, seeded by --seed), drill (three "
        "faults on the plan's largest sites), none, or a faults.yaml file",
    ),
    no_faults: bool = typer.Option(False, "--no-faults", help="Same as --faults none"),
    baselines: str = typer.Option(
        "cloud-only,nearest,greedy", "--baselines", help="Comma-separated baselines to compare with"
    ),
    allow_unserved: bool = typer.Option(
        False, "--allow-unserved", help="Plan even if some demand is unservable"
    ),
    open_report: bool = typer.Option(False, "--open", help="Open the report in a web browser when done"),
    tiles: str = typer.Option(
        "",
        "--tiles",
        envvar="MICRODC_MAP_TILE_URL",
        show_envvar=True,
        help="your own tile server for street maps under the report's fleet map, "
        "https://host/{z}/{x}/{y}.png (the report then loads images from it; default: none, the report "
        "stays offline with the Natural Earth basemap)",
    ),
) -> None:
    """Plan a fleet, compare it with baselines in simulation, and write a self-contained HTML report.

    On a scenario with a horizon: plan the staged build-out, simulate each period for it, build-all-now
    and myopic yearly planning, and write the build-out report (--baselines does not apply)."""
    from microdc.placement.planner import PlanningError
    from microdc.run import DEFAULT_DAYS, DEFAULT_TIME_LIMIT_S, RunOptions
    from microdc.run import run as run_pipeline
    from microdc.run_horizon import HORIZON_TIME_LIMIT_S
    from microdc.sim import SimConfigError, load_faults, parse_step

    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<24}"),
        BarColumn(bar_width=28),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[note]}"),
    )
    with Progress(*columns, console=err_console, transient=False) as bar:
        progress = RichRunProgress(bar)
        progress.stage("validate")
        s = load_or_exit(scenario)
        progress.done("validate", f"{s.name}: {len(s.sites)} sites, {len(s.demand)} demand sources")
        try:
            spec = None
            source = "none" if no_faults else faults
            if source not in ("random", "drill", "none"):
                ids = [x.id for x in s.sites]
                spec = load_faults(Path(source), ids, set(ids))
            opts = RunOptions(
                days=DEFAULT_DAYS if days is None else days,
                step_s=parse_step(step),
                seed=seed,
                time_limit_s=time_limit
                if time_limit is not None
                else HORIZON_TIME_LIMIT_S
                if s.horizon is not None
                else DEFAULT_TIME_LIMIT_S,
                baselines=tuple(b.strip() for b in baselines.split(",") if b.strip()),
                faults=spec,
                fault_source="rates" if source == "random" else "drill" if source == "drill" else "none",
                allow_unserved=allow_unserved,
                tile_url=tiles.strip(),
            )
        except ScenarioError as exc:
            bar.stop()
            report_problems(exc)
        except (SimConfigError, ValueError) as exc:  # bad options
            bar.stop()
            fail(str(exc))
        target = out if out is not None else Path("microdc-run") / s.name
        try:
            if s.horizon is not None:
                from microdc.run_horizon import run_horizon

                hresult = run_horizon(s, target, opts, progress)
            else:
                result = run_pipeline(s, target, opts, progress)
        except PlanningError as exc:
            bar.stop()
            err_console.print("[bold red]cannot plan:[/]")
            for r in exc.reasons:
                err_console.print(f"  • {r}", highlight=False, soft_wrap=True, markup=False)
            raise typer.Exit(EXIT_INPUT) from None
        except ScenarioError as exc:  # e.g. a weather or carbon file the simulator cannot read
            bar.stop()
            report_problems(exc)
        except SimConfigError as exc:
            bar.stop()
            fail(str(exc))
        except OSError as exc:
            bar.stop()
            fail(f"cannot write the run to {target}: {exc}")
    report = target / "report.html"
    if s.horizon is not None:
        console.print(npv_table(hresult))
        console.print(horizon_table(hresult))
        names, seconds, folders = (
            [a.name for a in hresult.alternatives],
            hresult.seconds,
            " with one folder per period",
        )
    else:
        console.print(comparison_table(result.comparison, [v.id for v in s.services]))
        names, seconds, folders = [a.name for a in result.alternatives], result.seconds, ""
    console.print(
        f"wrote {report}, {target / 'comparison.json'}, {target / 'plan.json'} and one folder per "
        f"alternative ({', '.join(names)}){folders} in {seconds.get('total', 0.0):.1f} s"
    )
    if open_report:
        webbrowser.open(report.resolve().as_uri())


def register(app: typer.Typer) -> None:
    app.command()(run)
