"""`microdc simulate`: run the digital twin of a plan and write its time series, events and summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from microdc.cli.common import console, err_console, fail, load_or_exit, report_problems
from microdc.model import ScenarioError
from microdc.placement.plan import read_plan


def _fmt(x: Any, nd: int = 1) -> str:
    if x is None or (isinstance(x, float) and (x != x or x in (float("inf"), float("-inf")))):
        return "-"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return str(x)


def print_summary(summary: dict[str, Any], out_dir: Path) -> None:
    lat = Table(
        title=f"Simulated {summary['scenario']!r}: {summary['steps']:,} steps of {summary['step_s']} s "
        f"({summary['mode']} mode, seed {summary['seed']})"
    )
    for col in ("service", "p50 ms", "p95 ms", "p99 ms", "SLO p95", "SLO p99", "SLO violation", "unserved"):
        lat.add_column(col, justify="left" if col == "service" else "right", no_wrap=col == "service")
    for name, v in summary["latency"].items():
        lat.add_row(
            name,
            _fmt(v["p50_ms"]),
            _fmt(v["p95_ms"]),
            _fmt(v["p99_ms"]),
            _fmt(v["slo_p95_ms"], 0),
            _fmt(v["slo_p99_ms"], 0),
            f"{100 * v['slo_violation_rate']:.2f} %",
            f"{100 * v['unserved_fraction']:.2f} %",
        )
    console.print(lat)
    e, c = summary["energy_kwh"], summary["cost"]
    tot = Table(show_header=False, title="Totals")
    tot.add_column("figure")
    tot.add_column("value", justify="right")
    rows = [
        ("IT energy", f"{_fmt(e['it'])} kWh"),
        ("facility energy", f"{_fmt(e['facility'])} kWh"),
        ("PUE (sites, energy-weighted)", _fmt(summary["pue"]["sites_annualized"], 3)),
        ("carbon", f"{_fmt(summary['carbon_kg']['total'])} kg CO2e"),
        ("cost (energy + fixed pro rata + cloud + network)", f"{_fmt(c['total'], 2)} {c['currency']}"),
        (
            "unserved requests",
            f"{_fmt(summary['unserved']['requests'], 0)} ({100 * summary['unserved']['fraction']:.3f} %)",
        ),
        ("sovereignty violations", str(summary["sovereignty_violations"])),
        ("faults", str(len(summary["faults"]))),
    ]
    for k, v in rows:
        tot.add_row(k, v)
    console.print(tot)
    console.print(f"wrote {out_dir}/timeseries.parquet, service_latency.parquet, events.json, summary.json")


def simulate(
    scenario: str = typer.Argument(..., help="Example name or path to scenario.yaml"),
    plan: Path = typer.Option(..., "--plan", help="plan.json from `microdc plan`"),
    out: Path = typer.Option(..., "-o", "--out", help="Output directory"),
    start: str | None = typer.Option(
        None, "--start", help="First step (ISO date/time, UTC); default: scenario start"
    ),
    days: float = typer.Option(1.0, "--days", help="Simulated days"),
    step: str = typer.Option("5min", "--step", help="Step length, e.g. 1min, 5min, 1h"),
    faults: Path | None = typer.Option(None, "--faults", help="faults.yaml (see docs/simulator.md)"),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same results)"),
    mode: str = typer.Option(
        "fluid", "--mode", help="fluid (scale) or requests (discrete-event ground truth)"
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar"),
    replicas: int = typer.Option(
        1,
        "--replicas",
        min=1,
        help="Run N seeds (--seed, --seed+1, …) in one pass; writes OUT/replica-<seed>/summary.json and "
        "events.json per replica and OUT/replicas.json (no time series)",
    ),
) -> None:
    """Simulate a plan: demand, queueing latency, power, cooling, carbon, cost and faults over time."""
    from microdc.sim import SimConfig, SimConfigError, load_faults, parse_step
    from microdc.sim.engine import Simulation

    s = load_or_exit(scenario)
    if mode not in ("fluid", "requests"):
        fail(f"--mode must be fluid or requests, not {mode!r}")
    try:
        step_s = parse_step(step)
        t0 = None
        if start is not None:
            t0 = pd.Timestamp(start)
            if pd.isna(t0):
                raise ValueError
    except SimConfigError as exc:
        fail(str(exc))
    except (ValueError, TypeError):
        fail(f"--start {start!r} is not a date/time; expected e.g. 2023-07-01 or 2023-07-01T06:00Z")
    try:
        the_plan = read_plan(plan)
        sim_faults = None
        if faults is not None:
            built = [b.site for b in the_plan.sites]
            sim_faults = load_faults(faults, built, {x.id for x in s.sites})
        holder: dict[str, Any] = {}

        def tick(done: int, total: int) -> None:
            bar = holder.get("bar")
            if bar is not None:
                bar.update(holder["task"], completed=done, total=total)

        cfg = SimConfig(
            start=t0,
            days=days,
            step_s=step_s,
            seed=seed,
            mode=mode,  # type: ignore[arg-type]
            progress=tick if progress else None,
        )
        out.mkdir(parents=True, exist_ok=True)
        if replicas > 1:
            _replicas(s, the_plan, cfg, sim_faults, plan, out, seed, replicas)
            return
        sim = Simulation.create(s, the_plan, cfg, sim_faults, plan_path=plan)
        if progress:
            with Progress(
                TextColumn("[bold]simulating"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} steps"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            ) as bar:
                holder["bar"] = bar
                holder["task"] = bar.add_task("sim", total=sim.n_steps)
                result = sim.run(out)
        else:
            result = sim.run(out)
    except ScenarioError as exc:
        report_problems(exc)
    except SimConfigError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {out}: {exc}")
    print_summary(result.summary, out)


def _replicas(
    s: Any, the_plan: Any, cfg: Any, sim_faults: Any, plan: Path, out: Path, seed: int, n: int
) -> None:
    """``--replicas N``: one summary per seed, and a table of the headline figures of all of them."""
    from dataclasses import replace

    from microdc.sim import simulate_replicas
    from microdc.sim.output import OutputWriter

    seeds = list(range(seed, seed + n))
    with err_console.status(f"simulating {n} replicas"):
        results = simulate_replicas(
            s, the_plan, replace(cfg, progress=None), seeds=seeds, faults=sim_faults, plan_path=plan
        )
    rows = []
    for sd, res in zip(seeds, results, strict=True):
        d = out / f"replica-{sd}"
        d.mkdir(parents=True, exist_ok=True)
        OutputWriter.write_json(d, res.summary, res.events)
        sm = res.summary
        rows.append(
            {
                "seed": sd,
                "energy_kwh": sm["energy_kwh"]["facility"],
                "cost_total": sm["cost"]["total"],
                "unserved_fraction": sm["unserved"]["fraction"],
                "slo_violation_rate": sm["slo_violation_rate"],
                "sovereignty_violations": sm["sovereignty_violations"],
            }
        )
    import json

    (out / "replicas.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    tab = Table(title=f"{n} replicas (seeds {seeds[0]}–{seeds[-1]})")
    for col in ("seed", "energy kWh", "cost", "unserved", "SLO violation rate"):
        tab.add_column(col, justify="right")
    for r in rows:
        tab.add_row(
            str(r["seed"]),
            f"{r['energy_kwh']:,.1f}",
            f"{r['cost_total']:,.2f}",
            f"{r['unserved_fraction']:.4%}",
            f"{r['slo_violation_rate']:.4%}",
        )
    console.print(tab)
    console.print(f"wrote {out}/replica-<seed>/summary.json, events.json and {out}/replicas.json")


def register(app: typer.Typer) -> None:
    app.command(name="simulate")(simulate)
