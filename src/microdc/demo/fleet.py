"""`microdc demo-fleet`: a control plane and N site agents with simulated sensors, on one machine.

The control plane runs in-process under uvicorn (a thread; `ControlPlaneThread`), wrapped in
`DecompressMiddleware` so the agents' gzip batches are read, with enrollment rate limits raised for the
fleet (N agents enroll from one IP). The scenario's first N sites are imported (jurisdiction and its
ancestors, security tier, grid power, the installed or first catalog module), each gets a one-time
enrollment token, and N `Agent`s run in one event loop, each with its own SQLite state file and a
`simulated` source driven by the twin's physics for its site. A schedule of faults from the twin's
vocabulary (`demo/faults.py`: a cooling failure, a door opened, an uplink cut, a site outage) is
injected into the agents as they run, so the dashboard shows alarms and recovery. Once the sites are up,
a few placement-only workloads are created on the scenario's data classes (where each may run follows
its class's policy), so a site outage shows the control plane re-placing work: the agent stops, its
peers report failed probes of it, and after the hold-down the site is declared down and its work moves
to legal sites. For demos and load tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from microdc.agent.config import parse_config
from microdc.agent.runner import Agent
from microdc.control.decompress import DecompressMiddleware
from microdc.control.devserver import free_port
from microdc.demo.faults import BUSIEST, OUTAGE_FAULTS, CuttableTransport, DemoFault, apply

log = logging.getLogger("microdc.demo.fleet")

PROBE_EVERY_S = 5.0  # how often the peers of a site in outage report failing to reach it
#: The most the last flush waits for every agent's queue to empty (longer than the demo's longest
#: uplink backoff, 30 s, so an agent whose link came back late still delivers).
LAST_FLUSH_S = 40.0


def demo_settings(n_sites: int, *, heartbeat_s: float = 10.0, down_hold_s: float = 20.0) -> dict[str, Any]:
    """Control-plane settings for the demo: enrollment limits for N agents from one IP, and liveness
    shortened so a site outage is declared (and its work re-placed) within about a minute, not three."""
    return {
        "enroll_burst": n_sites + 10,
        "enroll_per_s": max(1.0, n_sites / 10),
        "heartbeat_interval_s": heartbeat_s,
        "heartbeat_missed_intervals": 3,
        "down_hold_s": down_hold_s,
    }


def _allowed(where: Any, origin: str, site_jurisdictions: set[str]) -> set[str]:
    """Jurisdictions besides the origin a data class's `process_in`/`store_in` allows (empty: origin
    only); `any` is read as the demo's own sites' jurisdictions."""
    if where == "origin":
        return set()
    if where == "any":
        return site_jurisdictions - {origin}
    return set([where] if isinstance(where, str) else where) - {origin}


def demo_workloads(scenario: Any, sites: Sequence[Any], per_site: int = 1) -> list[dict[str, Any]]:
    """Placement-only workloads (`WorkloadIn`), `per_site` originating at each demo site, cycling over
    the scenario's data classes; each may run only where both its class's process_in and store_in allow
    and at its class's security tier (the control plane places it on legal sites only)."""
    classes = sorted(scenario.policies.data_classes.items())
    if not classes or per_site <= 0:
        return []
    juris = {s.jurisdiction for s in sites}
    out = []
    for k in range(len(sites) * per_site):
        site = sites[k % len(sites)]
        name, pol = classes[k % len(classes)]
        wheres = [pol.process_in] + ([pol.store_in] if pol.store_in is not None else [])
        allowed = set.intersection(*(_allowed(w, site.jurisdiction, juris) for w in wheres))
        out.append(
            {
                "id": f"demo-{k}",
                "name": f"demo {name} workload from {site.id}",
                "data_class": name,
                "origin_jurisdiction": site.jurisdiction,
                "allowed_jurisdictions": sorted(allowed),
                "min_security_tier": pol.min_security_tier,
                "cores": 1.0,
            }
        )
    return out


def create_admin(db_url: str, name: str = "demo-admin") -> str:
    """Migrate the database and create an admin user; returns its API token."""
    from microdc.control.db import Database
    from microdc.control.identity import create_user, issue_user_token
    from microdc.control.online_placer import OnlinePlacer
    from microdc.control.security import Role
    from microdc.control.services import Services
    from microdc.control.settings import Settings

    db = Database(db_url)
    try:
        db.migrate()
        services = Services.build(Settings(db_url=db_url), OnlinePlacer(), db)
        ctx = services.ctx("demo-fleet")
        with db.session() as s:
            user = create_user(s, ctx, name, Role.ADMIN, None)
            _, token = issue_user_token(s, ctx, user, description="demo-fleet")
    finally:
        db.dispose()
    return token


class ControlPlaneThread:
    """The control plane under uvicorn in a background thread (stop() to end it)."""

    def __init__(
        self,
        db_url: str,
        *,
        port: int | None = None,
        settings: dict[str, Any] | None = None,
        wrap: Callable[[Any], Any] | None = None,
        decompress: bool = True,
    ):
        self.db_url = db_url
        self.port = port or free_port()
        self.settings_kw = settings or {}
        self.wrap = wrap  # wraps the app inside the decompression layer (sees decoded bodies)
        self.decompress = decompress
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.app: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> ControlPlaneThread:
        import uvicorn

        from microdc.control.app import create_app
        from microdc.control.settings import Settings

        # Decompression is layered here, outside `wrap`, so a wrapper sees decoded bodies.
        settings = Settings(
            db_url=self.db_url, port=self.port, accept_compressed_bodies=False, **self.settings_kw
        )
        app = create_app(settings)
        self.app = app
        asgi: Any = self.wrap(app) if self.wrap is not None else app
        if self.decompress:
            asgi = DecompressMiddleware(asgi, max_bytes=settings.max_body_bytes)
        config = uvicorn.Config(asgi, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                lifespan="on")  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="control-plane", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.server.started:
                return self
            if not self.thread.is_alive():
                raise RuntimeError("control plane failed to start")
            time.sleep(0.05)
        raise TimeoutError("control plane did not start")

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=15)
        self.server = None
        self.thread = None


def site_in(scenario: Any, site: Any) -> dict[str, Any]:
    """A scenario site as the control plane's `SiteIn` (with its installed or first catalog module)."""
    tree = scenario.tree
    installed = site.existing[0] if site.existing else None
    module = scenario.module(installed.module) if installed else scenario.catalog.modules[0]
    server = scenario.server(installed.server) if installed else scenario.catalog.servers[0]
    count = installed.count if installed else max(1, int(module.max_it_kw * 600 // server.peak_w))
    return {
        "id": site.id,
        "name": site.name or site.id,
        "lat": site.lat,
        "lon": site.lon,
        "jurisdiction": site.jurisdiction,
        "jurisdiction_ancestors": tree.ancestors(site.jurisdiction)[1:],
        "security_tier": site.security_tier,
        "grid_power_kw": site.grid_power_kw,
        "modules": [
            {
                "name": module.id,
                "rack_units": module.rack_units,
                "max_it_kw": module.max_it_kw,
                "cooling_kind": module.cooling.kind.value,
                "servers": [
                    {
                        "name": server.id,
                        "server_type": server.id,
                        "quantity": count,
                        "cores": server.cores,
                        "memory_gb": server.memory_gb,
                        "idle_w": server.idle_w,
                        "peak_w": max(server.peak_w, server.idle_w),
                    }
                ],
            }
        ],
    }


@dataclass
class FleetResult:
    sites: list[str]
    duration_s: float
    per_site: dict[str, dict[str, Any]] = field(default_factory=dict)
    server_sensors: int = 0
    fault_log: list[str] = field(default_factory=list)  # what was injected and ended, with times
    placed: dict[str, str | None] = field(default_factory=dict)  # workload → site when created
    final: dict[str, str | None] = field(default_factory=dict)  # workload → site at the end

    @property
    def moved(self) -> dict[str, tuple[str | None, str | None]]:
        """Workloads placed at first whose site is another at the end (re-placed), from → to."""
        return {
            w: (s, self.final.get(w))
            for w, s in self.placed.items()
            if s is not None and w in self.final and self.final[w] != s
        }

    @property
    def readings_acked(self) -> int:
        return sum(int(s["counters"].get("readings_acked", 0)) for s in self.per_site.values())

    @property
    def bytes_out(self) -> int:
        return sum(int(s["bytes_out"]) for s in self.per_site.values())


async def run_fleet(
    scenario_path: Path,
    n_sites: int,
    *,
    workdir: Path,
    duration_s: float,
    server_url: str,
    admin_token: str,
    poll_s: float = 5.0,
    time_scale: float = 60.0,
    upstream: str | None = None,
    flush_s: float = 10.0,
    stop: asyncio.Event | None = None,
    faults: Sequence[DemoFault] = (),
    on_fault: Callable[[str], None] | None = None,
    workloads_per_site: int = 1,
    up_timeout_s: float = 30.0,
    heartbeat_s: float = 10.0,
) -> FleetResult:
    """Run the agents for `duration_s`; `heartbeat_s` should match the control plane's interval (the
    agents learn it from the first answer, but the first beat after enrollment waits this long)."""
    from microdc.model import load_scenario

    scenario = load_scenario(scenario_path)
    sites = list(scenario.sites)[:n_sites]
    if len(sites) < n_sites:
        log.warning("the scenario has %d sites; running %d agents", len(sites), len(sites))
    admin = {"Authorization": f"Bearer {admin_token}"}
    tokens: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=server_url, timeout=30, headers=admin) as c:
        r = await c.post("/api/v1/sites/import", json=[site_in(scenario, s) for s in sites])
        r.raise_for_status()
        for s in sites:
            r = await c.post(f"/api/v1/sites/{s.id}/enrollment-tokens")
            r.raise_for_status()
            tokens[s.id] = r.json()["token"]
    configs = []
    for k, s in enumerate(sites):
        juris = s.jurisdiction
        up = upstream or scenario.tree.ancestors(juris)[-1]
        cfg = parse_config(
            {
                "site_id": s.id,
                "state_path": str(workdir / "agents" / f"{s.id}.db"),
                "intervals": {"poll_s": poll_s, "heartbeat_s": heartbeat_s, "housekeeping_s": 30},
                "uplink": {"flush_s": flush_s, "backoff": {"seed": k, "max_s": 30}},
                "policy": {
                    "jurisdiction": juris,
                    "upstream_jurisdiction": up,
                    "scenario": str(scenario_path),
                },
                "sensors": [
                    {
                        "kind": "simulated",
                        "name": "twin",
                        "scenario": str(scenario_path),
                        "site": s.id,
                        "seed": k,
                        "time_scale": time_scale,
                    }
                ],
            },
            file="<demo-fleet>",
        )
        configs.append(cfg)
    fleet = _Fleet(configs, server_url, tokens)
    for k in range(len(sites)):
        fleet.build(k)
    stop = stop or asyncio.Event()
    t0 = time.monotonic()
    for k in range(len(sites)):
        fleet.start(k)
    tasks = fleet.tasks
    fault_log: list[str] = []
    if faults:
        tasks.append(
            asyncio.create_task(
                _inject(faults, fleet, [s.id for s in sites], t0, fault_log, on_fault, admin),
                name="demo-faults",
            )
        )
    placed: dict[str, str | None] = {}
    specs = demo_workloads(scenario, sites, workloads_per_site)
    if specs:
        placed = await _place_workloads(server_url, admin, [s.id for s in sites], specs, up_timeout_s)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, duration_s - (time.monotonic() - t0)))
    agents = fleet.agents
    # A last flush so the summary shows what was delivered: no more readings, then the uplinks are
    # woken until every queue is empty (an agent still backing off after an uplink cut sends when its
    # delay ends), or LAST_FLUSH_S has passed. Its statuses are taken at once (no await in between).
    for a in agents:
        a.pause_polling()
    deadline = time.monotonic() + LAST_FLUSH_S
    while True:
        for a in agents:
            a.flush_now()
        await asyncio.sleep(0.2)
        statuses = {
            a.site_id or "?": a.status() if a.ingestor is not None else {"counters": {}, "bytes_out": 0}
            for a in agents
        }
        if all(s.get("pending_readings", 0) == 0 for s in statuses.values()) or time.monotonic() > deadline:
            break
    for a in agents:
        a.stop()
    for t in tasks:
        if t.get_name().startswith("demo-"):
            t.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await t
    result = FleetResult([s.id for s in sites], time.monotonic() - t0, per_site=statuses, fault_log=fault_log)
    result.placed = placed
    async with httpx.AsyncClient(base_url=server_url, timeout=30, headers=admin) as c:
        if placed:
            r = await c.get("/api/v1/workloads")
            if r.status_code == 200:
                result.final = {w["id"]: w["site_id"] for w in r.json() if w["id"] in placed}
        for s in sites:
            r = await c.get(f"/api/v1/sites/{s.id}/sensors")
            if r.status_code == 200:
                result.server_sensors += len(r.json())
    return result


class _Fleet:
    """The demo's agents, by site index: a site outage stops one and later starts a fresh one from the
    same configuration and state file (its credential is there, so it does not enroll again)."""

    def __init__(self, configs: list[Any], server_url: str, tokens: dict[str, str]):
        self.configs = configs
        self.server_url = server_url
        self.tokens = tokens
        self.agents: list[Agent] = []
        self.transports: list[CuttableTransport] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.down: set[int] = set()

    def build(self, k: int) -> None:
        """A fresh agent for site k (constructing one loads its scenario: seconds, so done before t0)."""
        cfg = self.configs[k]
        transport = CuttableTransport()
        agent = Agent(cfg, server=self.server_url, enroll_token=self.tokens[cfg.site_id], transport=transport)
        if k < len(self.agents):
            self.agents[k], self.transports[k] = agent, transport
        else:
            self.agents.append(agent)
            self.transports.append(transport)

    def start(self, k: int, *, fresh: bool = False) -> None:
        if fresh:
            self.build(k)
        self.tasks.append(asyncio.create_task(self.agents[k].run(), name=f"agent:{self.configs[k].site_id}"))
        self.down.discard(k)

    def stop(self, k: int) -> None:
        self.down.add(k)
        self.agents[k].stop()


async def _place_workloads(
    server_url: str, admin: dict[str, str], site_ids: list[str], specs: list[dict[str, Any]], timeout_s: float
) -> dict[str, str | None]:
    """Wait (up to `timeout_s`) until every demo site is up — a site that is not gets no work — then
    create the workloads; returns where each was placed (None: no legal site, held unplaced)."""
    async with httpx.AsyncClient(base_url=server_url, timeout=30, headers=admin) as c:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            r = await c.get("/api/v1/sites")
            if r.status_code == 200 and all(s["liveness"] == "up" for s in r.json() if s["id"] in site_ids):
                break
            await asyncio.sleep(0.5)
        placed: dict[str, str | None] = {}
        for spec in specs:
            r = await c.post("/api/v1/workloads", json=spec)
            r.raise_for_status()
            placed[spec["id"]] = r.json()["site_id"]
    log.warning("demo workloads placed: %s", placed)
    return placed


async def _busiest(server_url: str, admin: dict[str, str], site_ids: list[str]) -> int:
    """Index of the demo site holding the most placed workloads now (the first site if none or unknown)."""
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
        async with httpx.AsyncClient(base_url=server_url, timeout=10, headers=admin) as c:
            r = await c.get("/api/v1/workloads")
            held = [w["site_id"] for w in r.json()] if r.status_code == 200 else []
            counts = {k: held.count(sid) for k, sid in enumerate(site_ids)}
            best = max(counts, key=lambda k: (counts[k], -k))
            return best if counts[best] > 0 else 0
    return 0


async def _probe_failures(fleet: _Fleet, target: int, site_ids: list[str]) -> None:
    """While site `target` is out, every running peer reports (with its own site credential) that it
    cannot reach it: the corroboration the control plane needs before declaring the site down."""
    async with httpx.AsyncClient(base_url=fleet.server_url, timeout=10) as c:
        while True:
            for k, agent in enumerate(fleet.agents):
                token = (agent.credential or {}).get("token")
                if k == target or k in fleet.down or not token:
                    continue
                body = {"target_site_id": site_ids[target], "reachable": False, "kind": "peer",
                        "path": "demo peer probe"}  # fmt: skip
                with contextlib.suppress(httpx.HTTPError):
                    r = await c.post(
                        "/api/v1/probes", json=body, headers={"Authorization": f"Bearer {token}"}
                    )
                    if r.status_code >= 400:
                        log.warning(
                            "peer probe of %s refused: %s %s", site_ids[target], r.status_code, r.text
                        )
            await asyncio.sleep(PROBE_EVERY_S)


async def _inject(
    faults: Sequence[DemoFault],
    fleet: _Fleet,
    site_ids: list[str],
    t0: float,
    log_to: list[str],
    on_fault: Callable[[str], None] | None,
    admin: dict[str, str] | None = None,
) -> None:
    """Start and end each fault at its time (seconds after the agents started)."""
    resolved: dict[int, int] = {}  # id(fault) → site index, for faults on the BUSIEST site
    events = sorted(
        [(f.at_s, True, f) for f in faults] + [(f.at_s + f.duration_s, False, f) for f in faults],
        key=lambda e: (e[0], e[1]),
    )
    probes: dict[int, asyncio.Task[None]] = {}
    try:
        for at_s, active, f in events:
            await asyncio.sleep(max(0.0, t0 + at_s - time.monotonic()))
            if f.site == BUSIEST:
                if id(f) not in resolved:
                    resolved[id(f)] = await _busiest(fleet.server_url, admin or {}, site_ids)
                f = DemoFault(f.kind, resolved[id(f)], f.at_s, f.duration_s)
            if f.kind in OUTAGE_FAULTS:
                ok = True
                if active:
                    fleet.stop(f.site)
                    probes[f.site] = asyncio.create_task(_probe_failures(fleet, f.site, site_ids))
                else:
                    if (task := probes.pop(f.site, None)) is not None:
                        task.cancel()
                    fleet.start(f.site, fresh=True)
            else:
                ok = apply(f, active, fleet.agents[f.site].sources, fleet.transports[f.site])
            what = f.describe(site_ids[f.site])
            line = f"t+{at_s:.0f} s: {'start' if active else 'end'} {what}" + (
                "" if ok else " (no simulated sensor)"
            )
            log_to.append(line)
            log.warning("demo fault: %s", line)
            if on_fault is not None:
                on_fault(line)
    finally:
        for task in probes.values():
            task.cancel()
