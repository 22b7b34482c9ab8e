"""`python -m microdc.control serve|admin create|audit verify` — the control-plane commands on their own
(same as `microdc serve` …), used by the benchmark and the restart test to run the server in a subprocess."""

from __future__ import annotations

import typer

from microdc.cli.control_cmds import register

app = typer.Typer(help="microdc control plane", no_args_is_help=True)


@app.callback()
def _main() -> None:
    """microdc control plane."""


register(app)

if __name__ == "__main__":
    app()
