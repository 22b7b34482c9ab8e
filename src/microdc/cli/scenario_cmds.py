"""Commands about the scenario itself: validate, schema, examples."""

from __future__ import annotations

import json
import warnings

import typer
from rich.markup import escape
from rich.table import Table

from microdc.cli.common import console, err_console, load_or_exit, report_problems
from microdc.examples import list_examples, resolve_scenario
from microdc.model import Problem, ScenarioError


def validate(
    scenario: str = typer.Argument(..., help="Example name or path to scenario.yaml"),
    physics: bool = typer.Option(True, "--physics/--no-physics", help="Also print a physics summary"),
) -> None:
    """Check a scenario; exit 0 if valid, 2 with every problem found (file, line, field, expected).

    Besides the scenario file and its tables, it reads every time series and load profile the
    scenario names, as `plan` and `simulate` do, so it rejects what they would reject.
    """
    from microdc.model.series import HumidityMissingWarning, read_everything
    from microdc.placement.planner import unbuildable_reasons

    s = load_or_exit(scenario)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        problems = read_everything(s)
    for w in caught:
        if issubclass(w.category, HumidityMissingWarning):
            err_console.print(f"[bold yellow]warning:[/] {escape(str(w.message))}", highlight=False)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    reasons = unbuildable_reasons(s)
    if reasons:
        path = resolve_scenario(scenario)
        where = str(path / "scenario.yaml" if path.is_dir() else path)
        problems.append(Problem(where, None, "sites.grid_power_kw", "; ".join(reasons)))
    if problems:
        report_problems(ScenarioError(problems))
    table = Table(title=f"Scenario {s.name!r} is valid", show_header=True)
    table.add_column("part")
    table.add_column("count", justify="right")
    for part, n in (
        ("jurisdictions", len(s.tree.codes)),
        ("candidate/existing sites", len(s.sites)),
        ("module types", len(s.catalog.modules)),
        ("server types", len(s.catalog.servers)),
        ("cloud regions", len(s.cloud_regions)),
        ("services", len(s.services)),
        ("demand sources", len(s.demand)),
        ("devices", sum(d.devices for d in s.demand)),
        ("data classes", len(s.policies.data_classes)),
    ):
        table.add_row(part, f"{n:,}")
    console.print(table)
    if physics:
        from microdc.cli.physics_summary import print_physics_summary

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HumidityMissingWarning)  # printed above
            print_physics_summary(s)


def schema() -> None:
    """Print the JSON Schema of a scenario (for editor completion and validation)."""
    from microdc.model.loader import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))


def examples() -> None:
    """List the built-in example scenarios."""
    table = Table(title="Built-in examples (use the name wherever a SCENARIO is asked)")
    table.add_column("name", style="bold")
    table.add_column("description")
    for name, desc in list_examples().items():
        table.add_row(name, desc)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(schema)
    app.command()(examples)
