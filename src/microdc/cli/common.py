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


def load_or_exit(scenario: str) -> Scenario:
    """Load an example name or a path; on any problem print them all and exit 2, never a traceback."""
    path = resolve_scenario(scenario)
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        report_problems(exc)
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{Path(path)}: cannot read: {exc}")
