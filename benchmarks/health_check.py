"""Site liveness check cost (figures in docs/benchmarks.md, "Control plane: site liveness check").

    python benchmarks/health_check.py                                   # SQLite, 1,000 sites
    python benchmarks/health_check.py --db postgresql+psycopg://postgres@127.0.0.1:5432/bench
    python benchmarks/health_check.py --sites 1000 --silent 100 --workloads 500 --repeat 5

The periodic health job (`jobs.run_health`, every `maintenance_interval_s`, 10 s by default) must stay
far below its period on a large fleet. A fleet of `--sites` sites (one module of 64 cores each) with
`--workloads` placed workloads; every site heartbeats, then `--silent` of them fall silent and each gets
a failed probe from two peers. Timed: a steady pass (nothing to judge), the pass in which the silent
sites turn `suspect` (evidence gathered, alarms raised, the placer run per transition), passes while
they stay suspect (evidence gathered again), and the pass that declares them `down` after the hold-down
(their work re-placed). The given PostgreSQL database is dropped and re-created.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import create_engine, text, update
from sqlalchemy.engine import make_url

from microdc.control import jobs
from microdc.control.db import Database
from microdc.control.inventory import create_site
from microdc.control.models import ProbeReport, Site, Workload
from microdc.control.online_placer import OnlinePlacer
from microdc.control.placements import recompute
from microdc.control.schemas import SiteIn
from microdc.control.services import Services
from microdc.control.settings import Settings

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _site(k: int) -> SiteIn:
    return SiteIn.model_validate(
        {
            "id": f"s{k:05d}",
            "lat": 48 + (k % 100) / 100,
            "lon": 11 + (k // 100) / 100,
            "jurisdiction": "DE",
            "jurisdiction_ancestors": ["EU"],
            "security_tier": 3,
            "grid_power_kw": 30,
            "modules": [
                {
                    "name": "m1",
                    "rack_units": 42,
                    "max_it_kw": 20,
                    "cooling_kind": "dx",
                    "servers": [
                        {"name": "s", "server_type": "r650", "quantity": 2, "cores": 32, "memory_gb": 256,
                         "idle_w": 150, "peak_w": 600}
                    ],
                }
            ],
        }
    )  # fmt: skip


def _fresh_pg(url: str) -> str:
    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{u.database}"'))
    admin.dispose()
    return url


def build(
    url: str, n_sites: int, n_workloads: int, n_silent: int, clock: Clock, progress: Progress
) -> Services:
    db = Database(url)
    db.migrate()
    settings = Settings(db_url=url, down_hold_s=60, heartbeat_interval_s=30, heartbeat_missed_intervals=3)
    services = Services.build(settings, OnlinePlacer(), db)
    services.clock = clock
    jobs.record_watch(services, start=True)
    ctx = services.ctx("bench")
    task = progress.add_task("building the fleet", total=n_sites)
    with db.session() as s:
        for k in range(n_sites):
            site = create_site(s, ctx, _site(k))
            site.liveness, site.last_heartbeat_at, site.status = "up", T0, "active"
            progress.advance(task)
        for k in range(n_workloads):
            s.add(Workload(id=f"w{k:06d}", data_class="public", origin_jurisdiction="DE", cores=2.0))
        s.flush()
        recompute(s, ctx)
    # the silent sites (the first n_silent) were last heard at T0; two peers fail to reach them
    seen = T0 + timedelta(seconds=95)
    with db.session() as s:
        for k in range(n_silent):
            for peer in ("site:p1", "site:p2"):
                s.add(ProbeReport(observer=peer, kind="peer", target_site_id=f"s{k:05d}", reachable=False,
                                  path="icmp", observed_at=seen, received_at=seen))  # fmt: skip
    return services


def beat_others(services: Services, n_silent: int, now: datetime) -> None:
    """Every site but the silent ones heartbeats (not timed)."""
    with services.db.session() as s:
        s.execute(update(Site).where(Site.id >= f"s{n_silent:05d}").values(last_heartbeat_at=now))


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds of this process (the machine may be shared: CPU shows the work itself)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", help="PostgreSQL URL (dropped and re-created); default: a temporary SQLite file")
    ap.add_argument("--sites", type=int, default=1000)
    ap.add_argument("--silent", type=int, default=100)
    ap.add_argument("--workloads", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = _fresh_pg(args.db) if args.db else f"sqlite:///{Path(tmp.name) / 'health.db'}"
    console = Console()
    clock = Clock()
    with Progress(console=console, transient=True) as progress:
        services = build(url, args.sites, args.workloads, args.silent, clock, progress)
    rows: list[tuple[str, str, str, str]] = []

    def at(seconds: float) -> None:
        clock.now = T0 + timedelta(seconds=seconds)
        beat_others(services, args.silent, clock.now)

    def run() -> list[str]:
        return jobs.run_health(services)

    def row(label: str, runs: list[tuple[float, float, Any]]) -> None:
        wall = statistics.median(r[0] for r in runs) * 1000
        cpu = statistics.median(r[1] for r in runs) * 1000
        rows.append((label, f"{wall:.1f} ms", f"{cpu:.1f} ms", str(len(runs[-1][2]))))

    at(85)
    row("steady (all fresh)", [timed(run) for _ in range(args.repeat)])
    at(100)
    row(f"{args.silent} sites go suspect", [timed(run)])
    at(110)
    row(f"{args.silent} stay suspect (hold-down)", [timed(run) for _ in range(args.repeat)])
    at(160)
    row(f"{args.silent} declared down, work re-placed", [timed(run)])
    with services.db.read_session() as s:
        q = text("SELECT liveness, count(*) FROM sites GROUP BY liveness")
        states: dict[str, int] = {str(k): int(v) for k, v in s.execute(q).all()}
    services.db.dispose()
    table = Table(
        title=f"health check: {args.sites} sites, {args.workloads} workloads, {services.db.dialect}"
    )
    for col in ("pass", "wall (median)", "CPU (median)", "transitions"):
        table.add_column(col)
    for r in rows:
        table.add_row(*r)
    console.print(table)
    console.print(f"site states after: {states}")


if __name__ == "__main__":
    main()
