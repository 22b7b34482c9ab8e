"""The one `microdc` command. Each group of subcommands lives in its own module and registers here."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="microdc",
    help="Plan, place, simulate and operate fleets of micro data centers between the edge and the cloud.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that add commands; one that is missing (an optional part not installed) is skipped.
COMMAND_MODULES = (
    "microdc.cli.scenario_cmds",
    "microdc.cli.plan_cmds",
    "microdc.cli.sim_cmds",
    "microdc.cli.run_cmds",
    "microdc.cli.sweep_cmds",
    "microdc.cli.control_cmds",
    "microdc.cli.agent_cmds",
    "microdc.cli.ca_cmds",
    "microdc.cli.workload_cmds",
)

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as exc:
        if exc.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
