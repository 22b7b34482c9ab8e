"""What every command shares: the console, loading a scenario with clean errors, exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from microdc.examples import resolve_scenario
from microdc.model import Scenario, ScenarioError, load_scenario

console = Console()
err_console = Console(stderr=True)

EXIT_INPUT = 2  # bad input: the user can fix it


def fail(message: str, code: int = EXIT_INPUT) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def report_problems(exc: ScenarioError) -> NoReturn:
    n = len(exc.problems)
    err_console.print(f"[bold red]{n} problem{'s' if n != 1 else ''} found:[/]")
    for p in exc.problems:
        err_console.print(f"  • {escape(str(p))}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INPUT)


def output_file_or_exit(path: Path) -> None:
    """Before any long work: make the output file's folder, or stop naming why it cannot be written
    (a plan that took minutes should not be lost to a missing folder)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{path}: cannot create its folder {path.parent}: {exc.strerror or exc}")
    if path.is_dir():
        fail(f"{path}: is a folder; give a file name for the output")


def load_or_exit(scenario: str) -> Scenario:
    """Load an example name or a path; on any problem print them all and exit 2, never a traceback."""
    path = resolve_scenario(scenario)
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        report_problems(exc)
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{Path(path)}: cannot read: {exc}")
