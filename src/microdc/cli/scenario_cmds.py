"""Commands about the scenario itself: validate, schema, examples."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from microdc.cli.common import console, err_console, load_or_exit, report_problems
from microdc.examples import list_examples, resolve_scenario
from microdc.model import Problem, Scenario, ScenarioError


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
    _print_explanation(s)
    if physics:
        from microdc.cli.physics_summary import print_physics_summary

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HumidityMissingWarning)  # printed above
            print_physics_summary(s)


def _print_explanation(s: Scenario) -> None:
    """What the scenario holds, and warnings (not errors) about what looks unusual."""
    from microdc.placement.explain import explain

    ex = explain(s)
    found = Table(title="What it holds", show_header=False)
    found.add_column("what", style="bold")
    found.add_column("found")
    for what, text in ex.facts:
        found.add_row(what, escape(text))
    console.print(found)
    for w in ex.warnings:
        err_console.print(f"[bold yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    if not ex.warnings:
        console.print("nothing unusual: every site has demand in reach and every demand a legal target")


def schema(
    markdown: bool = typer.Option(
        False, "--markdown", help="print the reference of every section and field as Markdown instead"
    ),
) -> None:
    """Print the JSON Schema of a scenario (for editor completion and validation), or its reference."""
    if markdown:
        from microdc.model.reference import scenario_reference

        typer.echo(scenario_reference(), nl=False)
        return
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


def new(
    out_dir: Path = typer.Argument(..., help="folder to write the scenario into (created)"),
    sites: Path = typer.Option(..., "--sites", help="CSV of candidate sites: one row per place"),
    demand: Path = typer.Option(..., "--demand", help="CSV of users or traffic: one row per place"),
    from_example: str = typer.Option(
        "melbourne", "--from-example", help="built-in example giving catalog, services, policies, series"
    ),
    lat_col: str | None = typer.Option(None, "--lat-col", help="latitude column of both tables"),
    lon_col: str | None = typer.Option(None, "--lon-col", help="longitude column of both tables"),
    id_col: str | None = typer.Option(None, "--id-col", help="site id column (default: id, site_id, …)"),
    name_col: str | None = typer.Option(None, "--name-col", help="site name column"),
    demand_lat_col: str | None = typer.Option(
        None, "--demand-lat-col", help="demand latitude, if it differs"
    ),
    demand_lon_col: str | None = typer.Option(
        None, "--demand-lon-col", help="demand longitude, if it differs"
    ),
    demand_id_col: str | None = typer.Option(None, "--demand-id-col", help="demand place id column"),
    weight_col: str | None = typer.Option(
        None, "--weight-col", help="devices/users per demand row (default: devices, users, …; else 1 each)"
    ),
    devices_per_unit: float = typer.Option(
        1.0, "--devices-per-unit", min=0.0, help="devices per unit of the weight column (e.g. 0.3 per user)"
    ),
    jurisdiction: str | None = typer.Option(
        None, "--jurisdiction", help="jurisdiction code of every row (default: the example's sites')"
    ),
    jurisdiction_col: str | None = typer.Option(
        None, "--jurisdiction-col", help="column of the sites table with each row's jurisdiction code"
    ),
    demand_jurisdiction_col: str | None = typer.Option(
        None, "--demand-jurisdiction-col", help="column of the demand table with each row's jurisdiction code"
    ),
    infer_bbox: bool = typer.Option(
        False,
        "--infer-bbox",
        help="give each jurisdiction the bounding box of its rows (widening existing ones)",
    ),
    name: str | None = typer.Option(None, "--name", help="scenario name (default: the folder's name)"),
    force: bool = typer.Option(False, "--force", help="write into a folder that already has a scenario.yaml"),
) -> None:
    """Write a scenario folder from your own tables of sites and demand, then validate it.

    Columns are found by their usual names (lat/latitude, lon/lng/longitude, id, name, devices/users)
    or named with the flags. Everything the tables do not say comes from the example; edit it after.
    """
    from microdc.cli.new_scenario import Columns, NewScenario, build

    if (out_dir / "scenario.yaml").exists() and not force:
        from microdc.cli.common import fail

        fail(f"{out_dir / 'scenario.yaml'} exists; choose another folder or pass --force")
    req = NewScenario(
        out_dir=out_dir,
        sites=sites,
        demand=demand,
        example=from_example,
        site_cols=Columns(lat=lat_col, lon=lon_col, id=id_col, name=name_col, jurisdiction=jurisdiction_col),
        demand_cols=Columns(
            lat=demand_lat_col or lat_col,
            lon=demand_lon_col or lon_col,
            id=demand_id_col,
            weight=weight_col,
            jurisdiction=demand_jurisdiction_col,
        ),
        jurisdiction=jurisdiction,
        infer_bbox=infer_bbox,
        devices_per_unit=devices_per_unit,
        name=name,
    )
    try:
        path = build(req)
    except ScenarioError as exc:
        report_problems(exc)
    console.print(f"wrote {escape(str(path))} and its tables; checking it:")
    validate(str(path), physics=False)
    console.print(f"next: [bold]microdc run {escape(str(out_dir))}[/] (or edit {escape(str(path))} first)")


def register(app: typer.Typer) -> None:
    app.command()(new)
    app.command()(validate)
    app.command()(schema)
    app.command()(examples)
