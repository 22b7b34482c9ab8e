"""Time from a desired-state change at the control plane to the workload running, healthy, at the site.

A real control plane (uvicorn, SQLite, in a thread), a real agent (its own event loop in a thread) with
the process or podman executor, one HTTP service health-checked over HTTP. Each of `--changes` changes
(default 20) PATCHes the workload's spec (a new port and version, so it is replaced start-first) and
times, from the PATCH's answer:

* **fetched**  — the agent has stored the new desired state (heartbeat announces it, then a GET);
* **healthy**  — the new copy passed its health check at the site (the agent's own status);
* **reported** — the control plane shows the new copy running and healthy (the agent's status report).

The heartbeat interval (`--heartbeat`, the server's `heartbeat_interval_s`) bounds the fetch delay: the
agent learns of a new version from the next heartbeat answer (expect ≈ half an interval on average).

    python benchmarks/workload_latency.py                       # process executor, 20 changes
    python benchmarks/workload_latency.py --executor podman     # podman (busybox httpd image)
    python benchmarks/workload_latency.py --heartbeat 30 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress

from microdc.agent.config import parse_config
from microdc.agent.executors.podman import PodmanExecutor, import_busybox_image
from microdc.agent.executors.process import ProcessExecutor
from microdc.agent.runner import Agent
from microdc.control.devserver import free_port
from microdc.demo.fleet import ControlPlaneThread, create_admin
from microdc.protocol.workload import WorkloadRunSpec, spec_hash

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS_CONF = ROOT / "deploy" / "podman" / "containers.conf"
IMAGE = "localhost/microdc-test-busybox:1"
SITE = "bench-1"


def spec(executor: str, port: int, version: int) -> dict[str, Any]:
    health = {
        "probe": {"kind": "http", "port": port},
        "interval_s": 0.1,
        "timeout_s": 1,
        "retries": 3,
        "start_period_s": 30,
    }
    common = {"ports": [port], "env": {"VERSION": str(version)}, "health": health, "stop_timeout_s": 1}
    if executor == "podman":
        return {
            "image": IMAGE,
            "command": ["/bin/httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
            **common,
        }
    return {"command": [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], **common}


def site_body() -> dict[str, Any]:
    server = {
        "name": "s",
        "server_type": "r650",
        "quantity": 2,
        "cores": 32,
        "memory_gb": 256,
        "idle_w": 150,
        "peak_w": 600,
    }
    return {
        "id": SITE,
        "name": SITE,
        "lat": 48.1,
        "lon": 11.5,
        "jurisdiction": "DE",
        "jurisdiction_ancestors": ["EU"],
        "security_tier": 3,
        "grid_power_kw": 30,
        "modules": [
            {"name": "m1", "rack_units": 42, "max_it_kw": 20, "cooling_kind": "dx", "servers": [server]}
        ],
    }


class AgentThread:
    def __init__(self, agent: Agent):
        self.agent = agent
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(agent.run()), daemon=True)

    def start(self) -> AgentThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.agent.stop)
        self.thread.join(30)


def wait(pred: Any, timeout: float, what: str, every: float = 0.005) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return time.monotonic()
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def healthy_with(state: Any, h: str) -> bool:
    st = state.workload_status().get("web") or {}
    return st.get("spec_hash") == h and st.get("healthy") is True


def one_change(admin: httpx.Client, state: Any, executor: str, i: int) -> dict[str, float]:
    """PATCH a new spec; seconds until the site fetched it, ran it healthy, and the control plane knew."""
    body = spec(executor, free_port(), i)
    h = spec_hash(WorkloadRunSpec.model_validate(body))
    t0 = time.monotonic()
    admin.patch("/api/v1/workloads/web", json={"spec": body}).raise_for_status()
    version = admin.get(f"/api/v1/sites/{SITE}").json()["desired_version"]
    t_fetch = wait(lambda: (state.get("desired") or {}).get("version", -1) >= version, 120, "fetch")
    t_ok = wait(lambda: healthy_with(state, h), 120, "healthy")

    def reported() -> bool:
        got = admin.get(f"/api/v1/sites/{SITE}/workload-status").json()
        return any(w["spec_hash"] == h and w["healthy"] for w in got)

    t_rep = wait(reported, 120, "reported", every=0.02)
    return {"fetched": t_fetch - t0, "healthy": t_ok - t0, "reported": t_rep - t0}


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1] if len(xs) > 1 else xs[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--executor", choices=["process", "podman"], default="process")
    ap.add_argument("--heartbeat", type=float, default=2.0, help="server heartbeat_interval_s (s)")
    ap.add_argument("--supervise", type=float, default=0.2, help="agent intervals.supervise_s (s)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="microdc-wl-bench-"))
    db_url = f"sqlite:///{tmp}/control.db"
    token = create_admin(db_url)
    base = {"enroll_burst": 1000, "rotate_burst": 1000, "heartbeat_interval_s": args.heartbeat}
    cp = ControlPlaneThread(db_url, settings=base).start()
    admin = httpx.Client(base_url=cp.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    site_ex: Any
    if args.executor == "podman":
        site_ex = PodmanExecutor(SITE, containers_conf=str(CONTAINERS_CONF))
        import_busybox_image(site_ex, IMAGE)
    else:
        site_ex = ProcessExecutor(SITE, tmp / "run")
    admin.post("/api/v1/sites", json=site_body()).raise_for_status()
    enroll = admin.post(f"/api/v1/sites/{SITE}/enrollment-tokens").json()["token"]
    cfg = parse_config(
        {
            "site_id": SITE,
            "state_path": str(tmp / "agent" / "state.db"),
            "intervals": {
                "poll_s": 60,
                "heartbeat_s": args.heartbeat,
                "desired_s": 300,
                "supervise_s": args.supervise,
                "status_s": 30,
            },
            "policy": {"jurisdiction": "DE", "upstream_jurisdiction": "DE"},
            "executor": {
                "kind": args.executor,
                "work_dir": str(tmp / "work"),
                "podman": {"containers_conf": str(CONTAINERS_CONF)},
            },
        },
        base_dir=tmp,
    )
    at = AgentThread(Agent(cfg, server=cp.url, enroll_token=enroll)).start()
    rows: list[dict[str, float]] = []
    try:
        port = free_port()
        first = spec(args.executor, port, 0)
        admin.post(
            "/api/v1/workloads",
            json={
                "id": "web",
                "data_class": "public",
                "origin_jurisdiction": "DE",
                "cores": 1,
                "spec": first,
            },
        ).raise_for_status()
        state = at.agent.state
        first_hash = spec_hash(WorkloadRunSpec.model_validate(first))
        wait(lambda: healthy_with(state, first_hash), 120, "first deployment")
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{args.changes} spec changes ({args.executor})", total=args.changes)
            for i in range(1, args.changes + 1):
                rows.append(one_change(admin, state, args.executor, i))
                progress.advance(task)
    finally:
        at.stop()
        for inst in site_ex.instances():
            site_ex.stop(inst, 1)
        cp.stop()
    out: dict[str, Any] = {
        "executor": args.executor,
        "changes": len(rows),
        "heartbeat_s": args.heartbeat,
        "supervise_s": args.supervise,
    }
    for k in ("fetched", "healthy", "reported"):
        xs = [r[k] for r in rows]
        out[k] = {
            "p50_s": round(statistics.median(xs), 3),
            "p95_s": round(pct(xs, 95), 3),
            "max_s": round(max(xs), 3),
        }
        console.print(
            f"{k:>9}: p50 {out[k]['p50_s']:.3f} s   p95 {out[k]['p95_s']:.3f} s   max {out[k]['max_s']:.3f} s"
        )
    if args.json:
        args.json.write_text(json.dumps({**out, "samples": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
