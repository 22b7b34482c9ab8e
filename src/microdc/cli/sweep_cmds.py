"""`microdc sweep`: what-if and Monte-Carlo studies on Ray, with a rich progress bar."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from microdc.cli.common import console, err_console, fail, load_or_exit, report_problems
from microdc.model import ScenarioError


def sweep(
    scenario: str = typer.Argument(..., help="Example name or path to scenario.yaml"),
    vary: list[str] = typer.Option(
        ...,
        "--vary",
        help="PATH=VALUES: a dotted path into the scenario (services.ID.slo.p95_ms, demand.scale, "
        "sites.*.grid_power_kw) and a,b,c or lo:hi:n; repeat for more parameters",
    ),
    out: Path = typer.Option(..., "-o", "--out", help="Output directory (resumed if it holds a sweep)"),
    sample: int | None = typer.Option(None, "--sample", help="Run K seeded random grid points, not all"),
    replicas: int = typer.Option(1, "--replicas", help="Runs per point with independent seeds"),
    faults: str = typer.Option(
        "random", "--faults", help="random (per candidate site from the scenario's failure rates) or none"
    ),
    plan: Path | None = typer.Option(None, "--plan", help="Reuse this plan.json at every point"),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster address (default: RAY_ADDRESS, else Ray embedded here)"
    ),
    workers: int | None = typer.Option(None, "--workers", help="CPUs for an embedded Ray (default: all)"),
    seed: int = typer.Option(0, "--seed", help="Master seed (same seed, same sweep.parquet)"),
    days: float = typer.Option(7.0, "--days", help="Simulated days per run"),
    step: str = typer.Option("1h", "--step", help="Simulation step, e.g. 15min, 1h"),
    time_limit: float = typer.Option(10.0, "--time-limit", help="Planner time limit per point, seconds"),
    baselines: str = typer.Option("cloud-only,nearest,greedy", "--baselines", help="Baselines to compare"),
    batch: int | None = typer.Option(None, "--batch", help="Points per Ray task (default: automatic)"),
    retries: int = typer.Option(2, "--retries", help="Retries of a failing run before it is recorded"),
) -> None:
    """Vary scenario parameters; plan and simulate every alternative at each point on Ray."""
    from microdc.sim import SimConfigError, parse_step
    from microdc.sweep import SweepError, SweepParamError
    from microdc.sweep import sweep as run_sweep
    from microdc.sweep.params import check, parse_vary
    from microdc.sweep.runner import Tally

    s = load_or_exit(scenario)
    try:
        params = [parse_vary(v) for v in vary]
        check(s, params)
    except SweepParamError as exc:
        fail(str(exc))
    try:
        step_s = parse_step(step)
    except SimConfigError as exc:
        fail(str(exc))
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=30),
        TextColumn("{task.completed:.0f}/{task.fields[runs]} runs"),
        TextColumn("[cyan]{task.fields[running]} running[/] [red]{task.fields[failed]} failed[/]"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    t0 = time.perf_counter()
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task("sweep", total=None, runs="?", running=0, failed=0)

        def show(t: Tally) -> None:
            bar.update(
                task, total=t.total, completed=t.done, runs=t.total, running=t.running, failed=t.failed
            )

        try:
            df = run_sweep(
                s,
                params,
                out,
                sample=sample,
                replicas=replicas,
                faults=faults,
                seed=seed,
                days=days,
                step_s=step_s,
                time_limit_s=time_limit,
                plan=plan,
                baselines=[b.strip() for b in baselines.split(",") if b.strip()],
                address=address,
                workers=workers,
                batch_size=batch,
                retries=retries,
                progress=show,
            )
        except ScenarioError as exc:  # a bad --plan file
            bar.stop()
            report_problems(exc)
        except (SweepParamError, SweepError, ValueError) as exc:
            bar.stop()
            fail(str(exc))
        except OSError as exc:
            bar.stop()
            fail(f"cannot write the sweep to {out}: {exc}")
    failed = int((df["status"] != "ok").sum()) if not df.empty else 0
    console.print(
        f"wrote {out / 'sweep.parquet'} ({len(df)} rows, {failed} failed) and {out / 'sweep.html'} "
        f"in {time.perf_counter() - t0:.1f} s"
    )


def register(app: typer.Typer) -> None:
    app.command()(sweep)
