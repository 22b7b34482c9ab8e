"""CLI of the site agent: `microdc agent` and `microdc demo-fleet`.

`register(app)` adds them to the main typer app (called by microdc.cli.main).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer


def _configure_logging(level: str) -> None:
    from microdc.control.security import RedactingFilter

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger("microdc")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def _problems_exit(exc: Exception) -> None:
    problems = getattr(exc, "problems", None)
    if problems:
        for p in problems:
            typer.echo(f"error: {p}", err=True)
    else:
        typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


async def _run_until_signal(agent: Any) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, agent.stop)
    await agent.run()


def agent(
    server: Annotated[
        str | None, typer.Option("--server", help="control-plane URL (or `server:` in agent.yaml)")
    ] = None,
    enroll: Annotated[
        str | None, typer.Option("--enroll", help="one-time enrollment token (first start only)")
    ] = None,
    credential: Annotated[
        Path | None,
        typer.Option("--credential", help="site credential file (JSON from /api/v1/enroll); kept up to date"),
    ] = None,
    config: Annotated[Path, typer.Option("--config", "-c", help="agent.yaml")] = Path("agent.yaml"),
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Run the site agent: sensors, local alarms, durable queue, uplink, desired state."""
    from microdc.agent.config import AgentConfigError, load_config
    from microdc.agent.runner import Agent, AgentError

    _configure_logging(log_level)
    try:
        cfg = load_config(config)
        a = Agent(cfg, server=server, enroll_token=enroll, credential_file=credential)
    except (AgentConfigError, AgentError) as e:
        _problems_exit(e)
        return
    try:
        asyncio.run(_run_until_signal(a))
    except AgentError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None


def demo_fleet(
    scenario: Annotated[str, typer.Argument(help="example name, or scenario file or directory")],
    sites: Annotated[int, typer.Option("--sites", "-n", min=1, max=1000, help="number of agents")] = 5,
    duration: Annotated[float, typer.Option(help="seconds to run (Ctrl-C stops earlier)")] = 60.0,
    port: Annotated[int, typer.Option(help="control-plane port (0: a free one)")] = 0,
    workdir: Annotated[
        Path | None, typer.Option(help="state files and database (default: a temp dir)")
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="control-plane database URL (default: SQLite in workdir)")
    ] = None,
    poll_s: Annotated[float, typer.Option(help="sensor poll period, s")] = 5.0,
    time_scale: Annotated[float, typer.Option(help="simulated seconds per wall second")] = 60.0,
    upstream: Annotated[
        str | None, typer.Option(help="jurisdiction of the control plane (default: each site's top ancestor)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "warning",
    faults: Annotated[
        str,
        typer.Option(
            help="faults to inject: 'demo' (a cooling failure at 20 s, a door opened at 40 s, an uplink cut "
            "at 60 s, a site outage at 75 s on the busiest site, whose work is re-placed), 'none', or "
            "KIND:SITE@START+DURATION,… in seconds (kinds: cooling_failure, grid_outage, door_open, "
            "uplink_cut, site_outage; SITE: 0..N-1)"
        ),
    ] = "demo",
    workloads: Annotated[
        int,
        typer.Option(
            min=0,
            max=100,
            help="placement-only workloads per site, on the scenario's data classes (0: none)",
        ),
    ] = 1,
    heartbeat_s: Annotated[
        float, typer.Option(min=1.0, help="heartbeat interval; a site is overdue after 3 missed")
    ] = 10.0,
    down_hold_s: Annotated[
        float, typer.Option(min=0.0, help="hold-down before a corroborated silent site is declared down")
    ] = 20.0,
) -> None:
    """Start a control plane and N site agents with simulated sensors (demos, load tests).

    The scenario is checked before anything starts; faults are injected on a schedule so the dashboard
    shows alarms, a link going down and recovery within the first minutes; a site outage (the agent
    stopped, its peers' probes failing) has the control plane re-place that site's workloads.
    """
    from rich.console import Console
    from rich.table import Table

    from microdc.cli.common import fail, load_or_exit
    from microdc.demo.faults import parse_schedule
    from microdc.demo.fleet import ControlPlaneThread, create_admin, demo_settings, run_fleet
    from microdc.examples import resolve_scenario
    from microdc.model import ScenarioError

    loaded = load_or_exit(scenario)  # every problem named, exit 2, before anything starts
    scenario_path = resolve_scenario(scenario)
    n_run = min(sites, len(loaded.sites))
    try:
        schedule = parse_schedule(faults, n_run)
    except ValueError as exc:
        fail(str(exc))
    _configure_logging(log_level)
    wd = workdir or Path(tempfile.mkdtemp(prefix="microdc-fleet-"))
    wd.mkdir(parents=True, exist_ok=True)
    db_url = db or f"sqlite:///{wd / 'control.db'}"
    console = Console(stderr=True)
    token = create_admin(db_url)
    cp = ControlPlaneThread(
        db_url,
        port=port or None,
        settings={
            **demo_settings(sites, heartbeat_s=heartbeat_s, down_hold_s=down_hold_s),
            "data_classes": tuple(sorted(loaded.policies.data_classes)),
        },
    ).start()
    console.print(f"control plane on {cp.url} (db {db_url}); admin token in {wd / 'admin.token'}")
    (wd / "admin.token").write_text(token + "\n", encoding="utf-8")
    (wd / "admin.token").chmod(0o600)
    stop = asyncio.Event()

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        return await run_fleet(
            scenario_path, sites, workdir=wd, duration_s=duration, server_url=cp.url, admin_token=token,
            poll_s=poll_s, time_scale=time_scale, upstream=upstream, stop=stop, faults=schedule,
            on_fault=lambda line: console.print(f"[yellow]fault[/] {line}"),
            workloads_per_site=workloads, heartbeat_s=heartbeat_s,
        )  # fmt: skip

    try:
        result = asyncio.run(main())
    except ScenarioError as e:
        cp.stop()
        _problems_exit(e)
        return
    finally:
        cp.stop()
    table = Table(title=f"demo fleet: {len(result.sites)} sites, {result.duration_s:.0f} s")
    for col in ("site", "readings acked", "alarm events", "bytes up", "B/s up", "queued"):
        table.add_column(col, justify="right" if col != "site" else "left")
    for sid, st in result.per_site.items():
        c = st.get("counters", {})
        table.add_row(
            sid,
            str(c.get("readings_acked", 0)),
            str(c.get("alarm_events_acked", 0)),
            str(st.get("bytes_out", 0)),
            f"{st.get('bytes_out', 0) / max(result.duration_s, 1e-9):.0f}",
            str(st.get("pending_readings", 0)),
        )
    Console().print(table)
    for wid, (src, dst) in sorted(result.moved.items()):
        console.print(f"[cyan]re-placed[/] {wid}: {src or 'unplaced'} → {dst or 'unplaced'}")
    typer.echo(
        json.dumps(
            {
                "sites": len(result.sites),
                "duration_s": round(result.duration_s, 1),
                "readings_acked": result.readings_acked,
                "bytes_out": result.bytes_out,
                "server_sensors": result.server_sensors,
                "workloads": len(result.placed),
                "workloads_placed": sum(1 for s in result.final.values() if s is not None),
                "re_placed": len(result.moved),
                "workdir": str(wd),
            }
        )
    )


def agent_checkpoint(
    state: Annotated[Path, typer.Argument(help="the agent's state database (state_path in agent.yaml)")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="folder to write it to, for `microdc audit verify --checkpoints`"),
    ] = None,
) -> None:
    """Show the latest signed audit checkpoint this agent received from the control plane."""
    from microdc.agent.state import State

    if not state.exists():
        typer.echo(f"error: {state}: no such agent state file", err=True)
        raise typer.Exit(2)
    st = State(state)
    try:
        cp = st.audit_checkpoint()
        regressions = st.counter("audit_checkpoint_regressions")
    finally:
        st.close()
    if cp is None:
        typer.echo("error: this agent has not received an audit checkpoint yet", err=True)
        raise typer.Exit(1)
    body = json.dumps(cp, indent=2)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"agent-{state.stem}-checkpoint-{int(cp['seq']):012d}.json"
        target.write_text(body)
        typer.echo(f"written to {target}", err=True)
    else:
        typer.echo(body)
    if regressions:
        typer.echo(f"warning: the control plane sent {regressions} older checkpoint(s) since", err=True)


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)
    app.command("agent-checkpoint")(agent_checkpoint)
    app.command("demo-fleet")(demo_fleet)
