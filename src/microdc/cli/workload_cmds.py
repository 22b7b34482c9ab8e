"""`microdc workloads apply|schema`: declare the fleet's workloads (and what each runs) in one file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

workloads_app = typer.Typer(help="Declare workloads and their run specs in a file.", no_args_is_help=True)


@workloads_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="workloads.yaml")],
    server: Annotated[str, typer.Option("--server", help="control-plane URL")] = "http://127.0.0.1:8080",
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="operator API token (default: $MICRODC_TOKEN)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would change, change nothing")
    ] = False,
    prune: Annotated[bool, typer.Option("--prune", help="delete workloads the file does not list")] = False,
) -> None:
    """Create and update workloads so the control plane holds what the file says (placed at once)."""
    import httpx

    from microdc.cli.common import console, fail, report_problems
    from microdc.control.workload_file import load_workloads, plan_changes
    from microdc.model import ScenarioError

    try:
        wanted = load_workloads(file)
    except ScenarioError as exc:
        report_problems(exc)
    token = token_file.read_text().strip().splitlines()[-1] if token_file else os.environ.get("MICRODC_TOKEN")
    if not token:
        fail("no API token: pass --token-file FILE or set MICRODC_TOKEN")
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        try:
            r = c.get("/api/v1/workloads")
        except httpx.HTTPError as exc:
            fail(f"cannot reach {server}: {exc}")
        if r.status_code != 200:
            fail(f"GET /api/v1/workloads: {r.status_code} {r.text[:300]}")
        changes = plan_changes(r.json(), wanted, prune=prune)
        conflicts = [ch for ch in changes if ch.action == "conflict"]
        for ch in changes:
            console.print(
                f"{'would ' if dry_run else ''}{ch.action} {ch.workload_id}"
                + (f": {ch.why}" if ch.why else "")
            )
        if conflicts:
            fail(f"{len(conflicts)} conflict(s); nothing changed")
        if not changes:
            console.print("nothing to change")
        if dry_run:
            return
        for ch in changes:
            if ch.action == "create":
                r = c.post("/api/v1/workloads", json=ch.body)
            elif ch.action == "update":
                r = c.patch(f"/api/v1/workloads/{ch.workload_id}", json=ch.body)
            else:
                r = c.delete(f"/api/v1/workloads/{ch.workload_id}")
            if r.status_code >= 300:
                fail(f"{ch.action} {ch.workload_id}: {r.status_code} {r.text[:500]}")
            if ch.action != "delete":
                w = r.json()
                console.print(
                    f"  {w['id']}: {w['placement_state']} at {w['site_id'] or '—'} ({w['placement_reason']})"
                )


@workloads_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of a workloads file."""
    from microdc.control.workload_file import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    app.add_typer(workloads_app, name="workloads")
